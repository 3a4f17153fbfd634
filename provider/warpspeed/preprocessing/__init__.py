"""Feature preprocessing: raw sources, the incremental refresh planner and the service that runs it."""

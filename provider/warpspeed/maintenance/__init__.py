"""Iceberg table maintenance: the pure planner, the service that runs it and its before/after report."""

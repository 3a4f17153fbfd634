"""The local backend: the warm Spark engine, its runs, and the single-node engine in the worker."""

"""The EMR backend: the cluster pool, its lease, RunJobFlow requests and step building."""

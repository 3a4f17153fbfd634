"""Lineage: the one naming of every dataset Warp Speed reads or writes, and its OpenLineage and Spark forms."""

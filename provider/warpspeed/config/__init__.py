"""Configuration: the [warpspeed] settings and the DAG bundle's YAML files, each validated on load."""

"""Models: the flavour registry, what a workload scores, and the plan-time probe of model versions."""

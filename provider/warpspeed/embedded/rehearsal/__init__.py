"""The production rehearsal (``make rehearsal``, docs/emr.md): the EMR and Glue path run for real on loopback.

Real: Airflow and the product's code, the steps' command lines (executed verbatim, but for the
documented ``--deploy-mode cluster`` -> ``client``), Spark (a standalone master and workers from
pyspark's jars: executors and Python workers are separate processes), the S3 API (S3Proxy), the
profile's bootstrap action and Configurations. Emulated: the EMR and Glue control planes (a patched
moto server), ``command-runner.jar``'s node (the step runner), Spot reclamation.
"""

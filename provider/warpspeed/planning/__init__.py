"""Planning a scoring window: which requests run in which batch, on which engine.

Pure (no Airflow, no AWS, no I/O), returning dataclasses: ``batches`` plans a window into
batches (``packing`` packs tenants under the row cap), ``routing`` picks each batch's engine,
``documents`` turns a plan into batch manifests and ``plan.json``. ``service`` runs a window's
plan with storage and hooks (carry-over, model probe, refusals, the documents) for the plan
task; ``refusals`` sends refused requests to the dead-letter queue once across retries.
"""

"""Where Spark jobs run: the backend interface (:mod:`.base`), its local and EMR backends, and their parts.

Nothing is imported here, so importing one part never loads the others; use
:func:`warpspeed.compute.factory.compute_backend_for` to get the configured backend.
"""

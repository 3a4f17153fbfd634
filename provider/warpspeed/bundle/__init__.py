"""The DAG bundle a user starts from: ``warpspeed init DIR`` writes it, the user edits it.

The templates are the repository's own ``dags/`` (DAG files and ``config/*.yaml``), shipped in
the wheel as ``warpspeed/bundle/dags/`` (see :mod:`warpspeed.jobs`), plus the example models and
a short README from ``example/``.
"""

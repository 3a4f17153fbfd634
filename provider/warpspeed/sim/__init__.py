"""The cost simulator (extra ``[sim]``): replay a request trace under three strategies, price a month of each.

Strategies:

``serverless``
    Per-request EMR Serverless: every request is its own Spark application (the case study's
    MVP). Billed per worker-second (driver + executors), at least a minute per worker.
``cluster_per_request``
    Per-request EMR on EC2: every request launches a cluster (on-demand master and core), runs
    one step and terminates. Billed for provisioning and bootstrap too.
``warpspeed``
    Warp Speed: requests are planned per 30-minute window by the real batch planner
    (:func:`warpspeed.planning.batches.plan_window` with ``dags/config/workloads.yaml``); each workload
    has one long-lived cluster (master and core on RI-covered on-demand capacity) that runs
    every batch as a step, and a Spot task fleet sized per window by managed scaling; tables
    are maintained (compaction, snapshot expiry), which cuts S3 requests.

Everything the model assumes is a field of :class:`SimAssumptions` with its default and why;
``warpspeed simulate`` prints them next to the result. Prices come from the price table
(:mod:`warpspeed.ledger.cost`). The trace is either generated (:meth:`Trace.generate`, shaped
like the case study: ~1,500-2,000 scores per 30-minute window over a few hundred tenants) or
read from a CSV/JSONL file (:meth:`Trace.from_file`). A trace of ``d`` days is scaled to a
month (30.4 days).
"""

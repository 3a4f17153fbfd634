"""``make soak``: the live stack under hostile load and random crashes, then an audit.

* :mod:`.producer` sends valid requests, producer duplicates and hostile messages and records
  every message it sent (``sent.jsonl``);
* :mod:`.fault_proxy` sits between the pipeline and the SQS server and fails a share of calls;
* :mod:`.chaos` SIGKILLs the scheduler, the triggerer and running task processes;
* :mod:`.evidence` reads what the pipeline left (queue, DLQ, manifests, ledger, scores table);
* :mod:`.audit` decides, from that evidence alone, what was scored once, lost or doubled;
* :mod:`.run` ties them together and prints ``SOAK {json}``.
"""

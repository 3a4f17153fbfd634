"""The ledger: Warp Speed's own Iceberg tables, their commits, and what each batch cost."""

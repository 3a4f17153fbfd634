"""Services: orchestration that spans several hooks and storage (operators stay thin and call these).

``preprocessing`` plans, runs and publishes feature refreshes; ``maintenance`` plans, runs and
records Iceberg table maintenance.
"""

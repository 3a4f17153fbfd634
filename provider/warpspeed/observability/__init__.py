"""What ops see of a window outside its task logs: metrics through Airflow's ``Stats``, and the deadline alert."""

"""nova-scheduler: picks the compute (or volume) host for new work."""

"""Delivery: a command in, one row per device, jobs out to the adapters, acks and status back,
the sweeper and the on-time release; every row ends in one terminal state."""

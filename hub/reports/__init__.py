"""Reports: statistics for a commune, a district, the province and upward, built from the delivery
rows and the as-run log (next); and the outputs runner (`outputs.py`: the outputs file in
`output_config.py`, one thread per output in `output_worker.py`, what outputs may read in
`output_context.py`).

Layer: above broadcast, below the interfaces.
"""

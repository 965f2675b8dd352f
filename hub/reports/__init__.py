"""Reports: the as-run log as people read it (`as_run.py`); statistics for a commune, a district,
the province and upward (`statistics.py`, what they count in `statistics_facts.py`, CSV, XLSX and a
printable page in `statistics_export.py` with `templates/`), built from the as-run log, the delivery
rows and the devices' life; and the outputs runner (`outputs.py`: the outputs file in
`output_config.py`, one thread per output in `output_worker.py`, what outputs may read in
`output_context.py`).

Layer: above broadcast, below the interfaces.
"""

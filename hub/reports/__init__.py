"""Reports: statistics for a commune, a district, the province and upward, built from the delivery
rows and the as-run log. (Built by the reports issue; empty now.)

Layer: above broadcast, below the interfaces.
"""

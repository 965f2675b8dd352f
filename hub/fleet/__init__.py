"""The fleet: areas, devices and groups, target selectors, each device's health and status."""

"""Modbus TCP controllers of LED boards and their amplifiers for the hub: adapter, register map
and a simulator that acts on writes like the real controller."""

__version__ = "0.1.0"

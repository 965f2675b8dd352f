"""Integration hub for Vietnam's grassroots information system (hệ thống thông tin nguồn)."""

__version__ = "0.1.0"

"""Conformance suite for hub vendor plugins.

`hub certify PLUGIN` runs the cases in `hub_conformance.suite` (a pytest plugin,
`hub_conformance.pytest_plugin`) against a plugin's simulator or real devices and writes JSON,
HTML and JUnit reports; `hub_conformance.proof` proves the suite catches the faults it claims to.
"""

__version__ = "0.1.0"
SUITE_NAME = "hub-conformance"

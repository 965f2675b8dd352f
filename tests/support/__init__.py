"""Helpers shared by the hub's test modules, which are not tests themselves: a test module imports
from here (or gets a fixture from a conftest.py), never from another test module
(tests/test_suite_hygiene.py)."""

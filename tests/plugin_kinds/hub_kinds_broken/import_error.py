"""Fails to import: a dependency that is not installed."""
import hub_kinds_no_such_dependency  # noqa: F401

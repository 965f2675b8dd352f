"""National push: a period's statistics POSTed to the national source-information system."""

__version__ = "0.1.0"

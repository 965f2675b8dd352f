"""The conformance checks. Modules named check_*.py, functions named check_*, so a plain pytest
run of a repository never collects them; `hub certify` points pytest here with conformance.ini."""

from setuptools import find_namespace_packages, setup

setup(
    name="hub-core",
    version="0.1.0",
    description="Integration hub for Vietnam's grassroots information system (hệ thống thông tin nguồn)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    # namespace discovery: the data folders (console templates, catalogues, demo data) are packages
    # to setuptools too; plain find_packages left them out and every install printed a warning each
    packages=find_namespace_packages(include=["hub", "hub.*"], exclude=["*.__pycache__"]),
    include_package_data=True,
    # the console's pages, scripts and message catalogues (compiled in memory at start: no .mo file)
    package_data={"hub.console": ["templates/*.html", "static/*", "translations/*/LC_MESSAGES/*.po"],
                  "hub.devkit": ["demo_data/*.xml"], "hub.reports": ["templates/*.html"]},
    install_requires=[
        "flask>=3.0,<4",
        "flask-smorest>=0.45,<1",
        "marshmallow>=3.20,<5",
        "apispec>=6.6",
        "pluggy>=1.5,<2",
        "rq>=2.0,<4",
        "redis>=5",
        "paho-mqtt>=2.1,<3",
        "SQLAlchemy>=2.0,<3",
        "PyYAML>=6",
        "click>=8.1",
        "vietnam-provinces>=2025.10.1",
        "zxcvbn>=4.4",  # the password policy's strength estimate and common-password lists
        "swagger-ui-bundle>=1.1,<2",  # Swagger UI served locally: works without Internet
        "shapely>=2",  # which devices lie in an alert's polygon (hub.geography)
        "numpy>=1.21",  # hub.geography tests many devices against a shape at once (shapely needs it too)
        "icalendar>=6",  # programmes (hub.broadcast) are stored, imported and exported as iCalendar
        "recurring-ical-events>=3",  # expands a programme's RRULE, RDATE, EXDATE and moved occurrences
        "python-dateutil<3",  # recurring-ical-events requires it so
        "flask-babel>=4,<5",  # the console's languages (Vietnamese, English) and times in the province's zone
        "openpyxl>=3.1",  # statistics reports as XLSX (hub.reports.statistics_export)
    ],
    extras_require={
        "embedded": ["fakeredis>=2.20", "amqtt>=0.11"],
        "postgres": ["psycopg[binary]>=3.1"],
        "server": ["gunicorn>=25.1"],
        "test": ["pytest>=8", "pytest-timeout>=2.3", "fakeredis>=2.20", "amqtt>=0.11", "psycopg[binary]>=3.1",
                 "jsonschema>=4.20", "schemathesis>=4.0,<5", "hypothesis>=6.100",
                 "pytest-xdist>=3.5",
                 "playwright>=1.40",  # the console's browser tests, driving Debian's chromium (no browser download)
                 "frictionless[json]>=5.18,<6"],  # the open-data output's tests: the Table Schema's own validator
    },
    entry_points={"console_scripts": ["hub=hub.cli.main:main"]},
)

"""WSGI entry point for production: `gunicorn -w 4 -b 127.0.0.1:8080 hub.wsgi:app`."""
import logging

from sqlalchemy.exc import SQLAlchemyError

from hub.api import create_app
from hub.access.audit import AuditError, record_config
from hub.runtime import get_runtime

app = create_app()
try:  # changed settings go into the audit log (once, however many workers start)
    with get_runtime().db.session() as _s:
        record_config(_s, get_runtime().settings, "api")
except (SQLAlchemyError, AuditError) as _exc:  # an uninitialised database: /api/health says so
    logging.getLogger("hub.api").warning("settings not recorded in the audit log: %s", _exc)

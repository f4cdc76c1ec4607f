"""The in-process trace recorder: `core` builds and delivers entries, `watchers` hooks them into Flask,
SQLAlchemy, Redis, Celery, requests and logging, `wiring` attaches those hooks per kind of process."""

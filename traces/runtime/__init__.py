"""The trace runtime, its own process: `app` is the Flask app (signed ingest, dashboard, JSON API) and
`server` runs it (`python -m traces serve`) and maintains its store. Slim on purpose: nothing here may
import Celery, Redis, Docker, SQLAlchemy or the deployer's tasks, web or cli packages."""

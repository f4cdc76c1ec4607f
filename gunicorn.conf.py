"""gunicorn settings for the web service (docker compose, or by hand):

    gunicorn -c gunicorn.conf.py

The same options `deployer serve` uses, from the same settings (DEPLOYER_WEB_WORKERS,
DEPLOYER_WEB_THREADS); the app comes from the factory, so nothing is built at import time.
"""

from deployer.settings import load_settings
from web.server import gunicorn_options

_settings = load_settings()
wsgi_app = "web:create_app()"
globals().update(gunicorn_options(host="0.0.0.0", port=8000, workers=_settings.web_workers,
                                  threads=_settings.web_threads))  # fmt: skip

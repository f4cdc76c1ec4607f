"""gunicorn settings for the web service (docker compose, or by hand):

    gunicorn -c gunicorn.conf.py

The same options `deployer serve` uses, from the same settings (DEPLOYER_WEB_WORKERS,
DEPLOYER_WEB_THREADS); the app comes from the factory, so nothing is built at import time. It listens
on loopback unless DEPLOYER_WEB_HOST says otherwise: deployments can reach the host's other addresses.
"""

import os

from deployer.settings import load_settings
from web.server import gunicorn_options

_settings = load_settings()
wsgi_app = "web:create_app()"
_host = os.environ.get("DEPLOYER_WEB_HOST", "127.0.0.1")
globals().update(gunicorn_options(host=_host, port=8000, workers=_settings.web_workers,
                                  threads=_settings.web_threads))  # fmt: skip

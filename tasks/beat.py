"""Entry point of the schedule runtime: `celery -A tasks.beat beat`.

Slim on purpose: the configuration and the schedule, no task bodies, so the scheduler never imports
Flask, the Docker SDK or the database layer (a test holds it to that). Dispatch goes through
`tasks.leader.LeaderScheduler`, which only sends while it holds the leader lease.
"""

from __future__ import annotations

from deployer.settings import load_settings
from tasks.app import base_app

app = base_app(load_settings())

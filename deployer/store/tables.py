"""The typed table handles, defined once: SQLModel does not declare `__table__` on its classes, so the
`type: ignore` that reaching for it needs is paid in this module only."""

from __future__ import annotations

from sqlalchemy import Table

from deployer.store.models import ApiToken, Deployment, DeploymentLog, DeploymentMetric, PortAllocation

DEPLOYMENT: Table = Deployment.__table__  # type: ignore[attr-defined]
DEPLOYMENT_LOG: Table = DeploymentLog.__table__  # type: ignore[attr-defined]
DEPLOYMENT_METRIC: Table = DeploymentMetric.__table__  # type: ignore[attr-defined]
PORTS: Table = PortAllocation.__table__  # type: ignore[attr-defined]
API_TOKENS: Table = ApiToken.__table__  # type: ignore[attr-defined]

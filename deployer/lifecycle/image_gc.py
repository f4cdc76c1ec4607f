"""Removal of per-deployment images nobody will start again (part of the retention pass).

Decide (pure): from the `deployer/app-<id>:<digest>` tags on the host and the rows they belong to,
which tags go. An active deployment keeps every tag (a build may have tagged an image it has not
recorded yet); a terminal one keeps the image it last ran until it has been stopped for the retention
period; its superseded builds go. A tag whose row is not in our database is never touched: another
installation (or another test database) on the same Docker host may own it. Apply: untag through the Docker
SDK, touching only images that carry our `deployer.managed` label (Coolify#11582: never anyone
else's), and clear `deployment.image` for a pruned image so the row does not point at nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, update

from deployer.store.rows import DEPLOYMENT as _dep
from deployer.store.states import TERMINAL

APP_REPO_PREFIX = "deployer/app-"


@dataclass(frozen=True)
class Owner:
    status: str
    image: str | None
    stopped_at: datetime | None


@dataclass
class PruneReport:
    removed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def deployment_of(tag: str) -> str | None:
    repo, _, _ = tag.rpartition(":")
    return repo[len(APP_REPO_PREFIX):] if repo.startswith(APP_REPO_PREFIX) else None


def stale_tags(tags: list[str], owners: dict[str, Owner], *, now: datetime, keep_days: int) -> list[str]:
    """Tags to remove; keep_days 0 keeps every image a row still refers to."""
    stale = []
    for tag in tags:
        dep = deployment_of(tag)
        if dep is None:
            continue
        owner = owners.get(dep)
        if owner is None or owner.status not in TERMINAL:
            continue
        elif tag != owner.image or _expired(owner, now, keep_days):
            stale.append(tag)
    return stale


def _expired(owner: Owner, now: datetime, keep_days: int) -> bool:
    if keep_days <= 0 or owner.stopped_at is None:
        return False
    stopped = owner.stopped_at if owner.stopped_at.tzinfo else owner.stopped_at.replace(tzinfo=now.tzinfo)
    return now - stopped > timedelta(days=keep_days)


def app_tags(docker: Any, installation: str) -> list[str]:
    """This installation's app images (another's on the same engine are never ours to remove)."""
    tags: list[str] = []
    labels = ["deployer.managed=true", "deployer.role=app", f"deployer.installation={installation}"]
    for image in docker.images.list(filters={"label": labels}):
        tags.extend(t for t in image.tags if deployment_of(t) is not None)
    return tags


def owners(engine: Engine, deployment_ids: set[str]) -> dict[str, Owner]:
    if not deployment_ids:
        return {}
    query = select(_dep.c.id, _dep.c.status, _dep.c.image, _dep.c.stopped_at).where(_dep.c.id.in_(deployment_ids))
    with engine.connect() as conn:
        return {r.id: Owner(r.status, r.image, r.stopped_at) for r in conn.execute(query)}


def prune_images(engine: Engine, docker: Any, *, now: datetime, keep_days: int, installation: str) -> PruneReport:
    tags = app_tags(docker, installation)
    found = owners(engine, {d for t in tags if (d := deployment_of(t))})
    report = PruneReport()
    for tag in stale_tags(tags, found, now=now, keep_days=keep_days):
        try:
            docker.images.remove(tag)  # by tag: an image shared by identical bundles is only untagged
        except Exception as exc:  # e.g. a kept crashed container still uses it: the next pass retries
            report.errors.append(f"{tag}: {exc}")
            continue
        report.removed.append(tag)
        with engine.begin() as conn:
            conn.execute(
                update(_dep).where(_dep.c.image == tag, _dep.c.status.in_(TERMINAL)).values(image=None)
            )
    return report

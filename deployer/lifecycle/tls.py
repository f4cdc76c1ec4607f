"""Which hosts Caddy may get a certificate for (the on-demand `ask`, docs/architecture.md#routing): the dashboard's
host, and `<slug>.<DEPLOYER_WILDCARD_DOMAIN>` while that deployment is active. Nothing else, so
nobody can make Caddy ask a public CA for certificates of names we do not serve."""

from __future__ import annotations

from sqlalchemy import Engine, select

from deployer.bundles.slug import is_dns_label
from deployer.settings import Settings
from deployer.store.rows import DEPLOYMENT as _dep
from deployer.store.states import ACTIVE


def slug_of(host: str, domain: str) -> str | None:
    """`<slug>` of `<slug>.<domain>` (one label, any case, a port ignored), else None."""
    name = host.strip().lower().rsplit(":", 1)[0] if host.count(":") == 1 else host.strip().lower()
    suffix = f".{domain.lower()}"
    if not name.endswith(suffix):
        return None
    label = name[: -len(suffix)]
    return label if is_dns_label(label) else None


def may_have_certificate(engine: Engine, settings: Settings, host: str) -> bool:
    if settings.dashboard_host and host.strip().lower() == settings.dashboard_host.lower():
        return True
    slug = slug_of(host, settings.wildcard_domain)
    if slug is None:
        return False
    with engine.connect() as conn:
        status = conn.execute(select(_dep.c.status).where(_dep.c.slug == slug)).scalar_one_or_none()
    return status is not None and status in {s.value for s in ACTIVE}

"""Typed settings, loaded once from the environment by `load_settings` and passed down.

Each field names its environment variable, unit and meaning in its metadata, so the loader, the
validation messages and `.env.example` all come from one table.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployer.errors import ConfigError


def _var(env: str, default: Any, unit: str, help: str, **bounds: int) -> Any:
    return field(default=default, metadata={"env": env, "unit": unit, "help": help, **bounds})


@dataclass(frozen=True)
class Settings:
    env: str = _var("DEPLOYER_ENV", "production", "dev|production", "dev relaxes checks meant for exposed hosts")
    data_root: Path = _var("DEPLOYER_DATA_ROOT", Path(".deployer"), "path", "Bundles, keys, workdirs")
    database_url: str = _var(
        "DATABASE_URL", "", "url", "postgresql+psycopg://… or sqlite:///…; default: SQLite in the data root"
    )
    celery_broker_url: str = _var(
        "CELERY_BROKER_URL", "", "url", "redis://…; default: a broker in the data root that needs no server"
    )
    redis_url: str = _var("REDIS_URL", "", "url", "Pub/sub for live logs and status events; empty = poll DB")
    age_identity_path: Path = _var(
        "AGE_IDENTITY_PATH", Path(""), "path", "Master age identity (mode 600); default: <data root>/age.key"
    )
    web_workers: int = _var("DEPLOYER_WEB_WORKERS", 2, "count", "gunicorn worker processes of the web app", min=1)
    web_threads: int = _var(
        "DEPLOYER_WEB_THREADS", 640, "count", "Threads per web worker; each open log stream holds one", min=4
    )
    secret_key: str = _var(
        "DEPLOYER_SECRET_KEY", "", "string", "Signs dashboard sessions; unset: a random key made once in the data root"
    )
    installation_id: str = _var(
        "DEPLOYER_INSTALLATION_ID", "", "name", "Labels what this installation owns on Docker; unset: made once"
    )
    wildcard_domain: str = _var("DEPLOYER_WILDCARD_DOMAIN", "deployer.localhost", "domain", "Routes <slug>.<this>")
    public_scheme: str = _var("DEPLOYER_PUBLIC_SCHEME", "https", "http|https", "Scheme of deployment URLs")
    registry_url: str = _var("ZYND_REGISTRY_URL", "https://dns01.zynd.ai", "url", "Passed to agents; empty = default")
    max_active: int = _var("DEPLOYER_MAX_ACTIVE", 50, "count", "Active deployments allowed at once", min=1)
    port_min: int = _var("DEPLOYER_PORT_MIN", 13000, "port", "First host port for containers", min=1, max=65535)
    port_max: int = _var("DEPLOYER_PORT_MAX", 14000, "port", "Last host port (inclusive)", min=1, max=65535)
    container_mem_mb: int = _var("DEPLOYER_CONTAINER_MEM_MB", 1536, "MB", "Memory limit per container", min=16)
    container_cpu_millis: int = _var(
        "DEPLOYER_CONTAINER_CPU_MILLIS", 1000, "millicpu", "CPU limit per container", min=10
    )
    container_tmpfs_mb: int = _var("DEPLOYER_CONTAINER_TMPFS_MB", 512, "MB", "Size of /tmp in containers", min=1)
    container_pids_limit: int = _var("DEPLOYER_CONTAINER_PIDS_LIMIT", 512, "count", "Processes per container", min=8)
    container_log_max_mb: int = _var(
        "DEPLOYER_CONTAINER_LOG_MAX_MB", 20, "MB", "Docker's json-file log of a container, per file (3 files)", min=1
    )
    log_rate_lines: int = _var(
        "DEPLOYER_LOG_RATE_LINES", 2000, "lines/s", "Output lines stored per deployment per second (0: no cap)"
    )
    log_burst_lines: int = _var(
        "DEPLOYER_LOG_BURST_LINES", 50000, "lines", "…of which this many may come at once", min=1
    )
    max_upload_mb: int = _var("DEPLOYER_MAX_UPLOAD_MB", 50, "MB", "Largest accepted zip", min=1)
    max_unpacked_mb: int = _var("DEPLOYER_MAX_UNPACKED_MB", 200, "MB", "Largest unpacked bundle", min=1)
    max_files: int = _var("DEPLOYER_MAX_FILES", 5000, "count", "Most files in a bundle", min=1)
    boot_health_timeout_ms: int = _var(
        "DEPLOYER_BOOT_HEALTH_TIMEOUT_MS", 120000, "ms", "How long a new container may take to answer /health", min=1
    )
    stop_grace_sec: int = _var("DEPLOYER_STOP_GRACE_SEC", 10, "s", "SIGTERM grace before SIGKILL on stop", min=0)
    skip_caddy: bool = _var("DEPLOYER_SKIP_CADDY", False, "bool", "Do not register Caddy routes")
    health_interval_sec: int = _var("DEPLOYER_HEALTH_INTERVAL_SEC", 60, "s", "Steady-state /health probes", min=1)
    metrics_interval_sec: int = _var("DEPLOYER_METRICS_INTERVAL_SEC", 30, "s", "CPU/memory sampling", min=1)
    retention_interval_min: int = _var("DEPLOYER_RETENTION_INTERVAL_MIN", 60, "min", "Retention pass", min=1)
    log_retention_days: int = _var("DEPLOYER_LOG_RETENTION_DAYS", 7, "days", "stdout/stderr kept; 0 = forever", min=0)
    system_log_retention_days: int = _var(
        "DEPLOYER_SYSTEM_LOG_RETENTION_DAYS", 30, "days", "System lines kept; 0 = forever", min=0
    )
    metric_retention_days: int = _var(
        "DEPLOYER_METRIC_RETENTION_DAYS", 3, "days", "Metric samples kept; 0 = forever", min=0
    )
    image_retention_days: int = _var(
        "DEPLOYER_IMAGE_RETENTION_DAYS", 7, "days", "Built image of a stopped deployment kept; 0 = forever", min=0
    )
    keep_crashed_containers: bool = _var(
        "DEPLOYER_KEEP_CRASHED_CONTAINERS", False, "bool", "Leave crashed containers for inspection"
    )
    restart_policy: str = _var("DEPLOYER_RESTART_POLICY", "no", "no|on-failure:N", "Restart crashed deployments")
    pip_index_url: str = _var("DEPLOYER_PIP_INDEX_URL", "", "url", "pip index used inside image builds")
    pip_find_links: str = _var("DEPLOYER_PIP_FIND_LINKS", "", "path|url", "Wheelhouse used inside image builds")
    npm_registry: str = _var("DEPLOYER_NPM_REGISTRY", "", "url", "npm registry used inside image builds")
    build_ca_bundle: str = _var(
        "DEPLOYER_BUILD_CA_BUNDLE", "", "path",
        "CA bundle (PEM, replaces the default roots for pip) for installs inside image builds, e.g. behind a "
        "TLS-intercepting proxy; kept out of every image",
    )  # fmt: skip
    build_mem_mb: int = _var(
        "DEPLOYER_BUILD_MEM_MB", 2048, "MB", "Memory limit of each step of an image build (no swap beyond it)", min=64
    )
    build_cpu_millis: int = _var("DEPLOYER_BUILD_CPU_MILLIS", 2000, "millicpu", "CPU limit of an image build", min=100)
    build_timeout_sec: int = _var(
        "DEPLOYER_BUILD_TIMEOUT_SEC", 900, "s", "An image build still going after this long fails the deployment", min=1
    )
    zynd_sdk_version: str = _var(
        "DEPLOYER_ZYND_SDK_VERSION", "0.6.5", "version", "zyndai-agent[heartbeat] preinstalled in the Python bases"
    )
    agent_base_image: str = _var("AGENT_BASE_IMAGE", "deployer/agent-base:latest", "image", "Python agents")
    service_base_image: str = _var("SERVICE_BASE_IMAGE", "deployer/service-base:latest", "image", "Python services")
    node_agent_base_image: str = _var(
        "NODE_AGENT_BASE_IMAGE", "deployer/node-agent-base:latest", "image", "Node agents"
    )
    node_service_base_image: str = _var(
        "NODE_SERVICE_BASE_IMAGE", "deployer/node-service-base:latest", "image", "Node services"
    )
    caddy_admin_url: str = _var("CADDY_ADMIN_URL", "http://127.0.0.1:2019", "url", "Caddy admin API")
    caddy_server_name: str = _var("CADDY_SERVER_NAME", "deployer", "name", "Caddy server holding the routes")
    caddy_http_listen: str = _var("CADDY_HTTP_LISTEN", ":80", "address", "Where that Caddy server listens")
    caddy_https_listen: str = _var(
        "CADDY_HTTPS_LISTEN", ":443", "address", "Where that server listens instead when DEPLOYER_PUBLIC_SCHEME=https"
    )
    tls: str = _var(
        "DEPLOYER_TLS", "auto", "auto|internal|on_demand",
        "https certificates: Caddy's local CA, or public ones on demand (gated by /caddy/ask); auto: "
        "internal for .localhost/.test/.internal/.local domains",
    )  # fmt: skip
    public_port: int = _var(
        "DEPLOYER_PUBLIC_PORT", 0, "port", "Port shown in deployment URLs; 0 = the scheme's own", min=0, max=65535
    )
    dashboard_host: str = _var(
        "DEPLOYER_DASHBOARD_HOST", "", "domain", "Caddy serves the dashboard and API here; empty = deployer.<domain>"
    )
    dashboard_upstream: str = _var(
        "DEPLOYER_DASHBOARD_UPSTREAM", "127.0.0.1:8000", "address", "Where Caddy finds the web app (and /caddy/ask)"
    )
    flower_upstream: str = _var(
        "FLOWER_UPSTREAM", "", "address", "Flower (started with --url_prefix=flower), at the dashboard host's /flower"
    )
    stage_lease_sec: int = _var(
        "DEPLOYER_STAGE_LEASE_SEC", 30, "s", "A boot stage silent this long is resumed by another worker", min=2
    )
    queue: str = _var("DEPLOYER_QUEUE", "deployer", "name", "Celery queue (lets installations share a broker)")
    worker_concurrency: int = _var("DEPLOYER_WORKER_CONCURRENCY", 8, "count", "Worker processes", min=1)
    debian_mirror: str = _var(
        "DEPLOYER_DEBIAN_MIRROR", "http://deb.debian.org/debian", "url", "Mirror for `images bootstrap`"
    )
    bootstrap_image: str = _var(
        "DEPLOYER_BOOTSTRAP_IMAGE", "deployer/debian-base:trixie", "image", "Offline base made by debootstrap"
    )
    schedule_leader_lock_ttl_ms: int = _var(
        "SCHEDULE_LEADER_LOCK_TTL_MS", 30000, "ms", "Beat leader lease", min=1000
    )
    schedule_backoff_initial_sec: float = _var(
        "SCHEDULE_BACKOFF_INITIAL_SEC", 5.0, "s", "A failing schedule is held back this long after its first failure"
    )
    schedule_backoff_max_sec: float = _var(
        "SCHEDULE_BACKOFF_MAX_SEC", 300.0, "s", "…doubling per failure up to this (10 % jitter)"
    )
    url: str = _var("DEPLOYER_URL", "http://127.0.0.1:8000", "url", "Where the CLI finds the API")
    token: str = _var("DEPLOYER_TOKEN", "", "string", "API token the CLI sends")
    trace_enabled: bool = _var("TRACE_ENABLED", False, "bool", "Record what the deployer does")
    trace_proxy: bool = _var("TRACE_PROXY", False, "bool", "Send entries to the trace runtime")
    trace_proxy_url: str = _var("TRACE_PROXY_URL", "http://127.0.0.1:7778", "url", "Trace runtime base URL")
    trace_proxy_path: str = _var("TRACE_PROXY_PATH", "/zin/trace/write", "path", "Signed ingest path")
    trace_proxy_key_id: str = _var("TRACE_PROXY_KEY_ID", "", "string", "Ingest key id")
    trace_proxy_secret: str = _var("TRACE_PROXY_SECRET", "", "string", "Ingest HMAC secret")
    trace_proxy_signing_window_ms: int = _var(
        "TRACE_PROXY_SIGNING_WINDOW_MS", 60000, "ms", "Accepted clock skew of signed requests", min=1
    )
    trace_proxy_timeout_ms: int = _var("TRACE_PROXY_TIMEOUT_MS", 5000, "ms", "Ingest request timeout", min=1)
    trace_proxy_mode: str = _var(
        "TRACE_PROXY_MODE", "single", "single|batch", "single: one request an entry, as the reference; batch: ours only"
    )
    trace_prune_hours: int = _var("TRACE_PRUNE_HOURS", 72, "h", "Trace entries kept", min=1)
    trace_dashboard_token: str = _var(
        "TRACE_DASHBOARD_TOKEN", "", "string", "Logs in to the trace dashboard and its API; empty = closed"
    )
    trace_watchers: str = _var(
        "TRACE_WATCHERS", "request,query,exception,log,job,schedule,client_request,command,event,auth", "list",
        "Which watchers record (comma-separated)",
    )
    trace_redact_headers: str = _var(
        "TRACE_REDACT_HEADERS", "", "list", "Headers masked in entries (*x* = contains x); empty = the defaults"
    )
    trace_redact_body_keys: str = _var(
        "TRACE_REDACT_BODY_KEYS", "", "list", "Body keys masked in entries; empty = the defaults"
    )
    trace_base_path: str = _var("TRACE_BASE_PATH", "/trace", "path", "Trace dashboard mount point")
    trace_slow_query_ms: int = _var("TRACE_SLOW_QUERY_MS", 100, "ms", "Queries tagged slow above this", min=0)
    trace_db_path: Path = _var(
        "DB_DATABASE_SQLITE", Path(".deployer/dbs/trace-runtime.sqlite"), "path", "Trace runtime SQLite file"
    )

    @property
    def bundles_dir(self) -> Path:
        return self.data_root / "bundles"

    @property
    def keys_dir(self) -> Path:
        return self.data_root / "keys"

    @property
    def work_dir(self) -> Path:
        return self.data_root / "work"

    @property
    def public_host_suffix(self) -> str:
        """`<domain>` or `<domain>:<port>`: what follows `<slug>.` in a deployment's URL."""
        return f"{self.wildcard_domain}:{self.public_port}" if self.public_port else self.wildcard_domain

    @property
    def tls_issuer(self) -> str:
        """`internal` (Caddy's local CA) or `on_demand` (public certificates as hosts are asked for)."""
        if self.tls != "auto":
            return self.tls
        local = (".localhost", ".test", ".internal", ".local", ".example", ".invalid")
        return "internal" if f".{self.wildcard_domain}".endswith(local) else "on_demand"

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    @property
    def max_unpacked_bytes(self) -> int:
        return self.max_unpacked_mb * 1024 * 1024


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_RESTART_POLICY = re.compile(r"^(no|on-failure:[1-9][0-9]{0,3})$")


def env_fields() -> list[dataclasses.Field[Any]]:
    return list(dataclasses.fields(Settings))


def _parse(f: dataclasses.Field[Any], raw: str) -> Any:
    name = f.metadata["env"]
    if f.type in ("int", int):
        try:
            value = int(raw.strip())
        except ValueError:
            raise ConfigError(f"{name}: expected an integer, got {raw!r}") from None
        lo, hi = f.metadata.get("min"), f.metadata.get("max")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ConfigError(f"{name}: {value} is out of range ({lo}..{hi if hi is not None else '∞'})")
        return value
    if f.type in ("bool", bool):
        lowered = raw.strip().lower()
        if lowered not in _TRUE | _FALSE:
            raise ConfigError(f"{name}: expected true or false, got {raw!r}")
        return lowered in _TRUE
    if f.type in ("Path", Path):
        return Path(raw).expanduser()
    return raw.strip()


# (attribute, variable, pattern a set value must match, what it should look like)
_SHAPES = (
    ("wildcard_domain", "DEPLOYER_WILDCARD_DOMAIN", r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", "a valid domain"),
    ("dashboard_host", "DEPLOYER_DASHBOARD_HOST", r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", "a host name"),
    ("installation_id", "DEPLOYER_INSTALLATION_ID", r"[a-z0-9][a-z0-9-]{0,31}", "1-32 of a-z, 0-9 and -"),
    ("zynd_sdk_version", "DEPLOYER_ZYND_SDK_VERSION", r"[0-9][0-9A-Za-z.+!-]*", "a version such as 0.6.5"),
)

_CHOICES = (
    ("env", "DEPLOYER_ENV", ("dev", "production")),
    ("public_scheme", "DEPLOYER_PUBLIC_SCHEME", ("http", "https")),
    ("tls", "DEPLOYER_TLS", ("auto", "internal", "on_demand")),
    ("trace_proxy_mode", "TRACE_PROXY_MODE", ("single", "batch")),
)


def _check(s: Settings) -> None:
    for attr, name, allowed in _CHOICES:
        if getattr(s, attr) not in allowed:
            raise ConfigError(f"{name}: expected {' or '.join(allowed)}, got {getattr(s, attr)!r}")
    if s.port_min > s.port_max:
        raise ConfigError(f"DEPLOYER_PORT_MIN: {s.port_min} is above DEPLOYER_PORT_MAX {s.port_max}")
    if not _RESTART_POLICY.match(s.restart_policy):
        raise ConfigError(f"DEPLOYER_RESTART_POLICY: expected 'no' or 'on-failure:N', got {s.restart_policy!r}")
    if not s.database_url.startswith(("sqlite:///", "postgresql+psycopg://")):
        raise ConfigError("DATABASE_URL: expected a postgresql+psycopg:// or sqlite:/// URL")
    for attr, name, pattern, shape in _SHAPES:
        value = getattr(s, attr)
        if (value or attr not in ("installation_id", "dashboard_host")) and not re.fullmatch(pattern, value):
            raise ConfigError(f"{name}: expected {shape}, got {value!r}")
    if s.secret_key and len(s.secret_key) < 16:
        raise ConfigError("DEPLOYER_SECRET_KEY: use a random value of at least 16 characters, or leave it unset")
    if s.trace_proxy and not (s.trace_proxy_key_id and s.trace_proxy_secret):
        raise ConfigError("TRACE_PROXY_SECRET: TRACE_PROXY=true needs TRACE_PROXY_KEY_ID and TRACE_PROXY_SECRET")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every variable, fill the derived defaults, and validate. Raises ConfigError naming the variable."""
    source = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in env_fields():
        raw = source.get(f.metadata["env"])
        if raw is not None:
            values[f.name] = _parse(f, raw)
    settings = Settings(**values)
    data_root = settings.data_root.resolve()
    derived: dict[str, Any] = {"data_root": data_root}
    if not settings.database_url:
        derived["database_url"] = f"sqlite:///{data_root / 'deployer.sqlite'}"
    if not settings.celery_broker_url:
        derived["celery_broker_url"] = "filesystem://"
    if not settings.dashboard_host:
        derived["dashboard_host"] = f"deployer.{settings.wildcard_domain}"
    if settings.age_identity_path == Path(""):
        derived["age_identity_path"] = data_root / "age.key"
    settings = dataclasses.replace(settings, **derived)
    _check(settings)
    return settings


def env_example() -> str:
    """The text of `.env.example`: every variable with its default, unit and meaning."""
    lines = ["# Deployer configuration. Every variable, its default, and its unit.", ""]
    for f in env_fields():
        default = f.default
        shown = "" if default in ("", Path("")) else str(default).lower() if isinstance(default, bool) else default
        lines.append(f"# {f.metadata['help']} [{f.metadata['unit']}]")
        lines.append(f"{f.metadata['env']}={shown}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(env_example(), end="")

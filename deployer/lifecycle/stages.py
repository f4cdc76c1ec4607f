"""The boot pipeline's stages (docs/architecture.md#boot-pipeline). Each is idempotent and guarded by the driver token.

A stage enters its status with a conditional transition from the previous one (or finds the row
already there, when a new driver resumes after a worker died), does its work, and returns True to let
the chain go on. It returns False — end quietly — when the row moved on without it: stopped by the
user (then it tears down what exists), failed, or handed to another driver.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from deployer.bundles import workdir
from deployer.bundles.archive import Limits, extract
from deployer.bundles.envblock import entity_url, render_env, rewrite_config
from deployer.bundles.rules import BundleInfo, inspect_bundle
from deployer.bundles.secrets import open_env, read_encrypted
from deployer.bundles.uploads import bundle_path
from deployer.errors import BootFailed
from deployer.lifecycle import containers, images, ports
from deployer.lifecycle.context import Context
from deployer.lifecycle.entity import find_entity_id
from deployer.lifecycle.health import wait_healthy
from deployer.lifecycle.teardown import stop_teardown
from deployer.store import rows
from deployer.store.loglines import append_system, clean_text, quoted
from deployer.store.rows import Row
from deployer.store.states import PIPELINE, Status
from deployer.store.transitions import transition

log = logging.getLogger(__name__)




def system(ctx: Context, deployment_id: str, *lines: str) -> None:
    rows.note(ctx.engine, deployment_id, *lines, now=ctx.now)


def heartbeat(ctx: Context, deployment_id: str, token: str) -> bool:
    return rows.save_if_driven(ctx.engine, deployment_id, token, heartbeat_at=ctx.now())


@contextmanager
def keep_alive(ctx: Context, deployment_id: str, token: str) -> Iterator[None]:
    """Heartbeats while a long stage works, so drain_queue does not take the row for abandoned."""
    stop = threading.Event()
    every = max(1.0, ctx.settings.stage_lease_sec / 3)

    def beat() -> None:
        while not stop.wait(every):
            heartbeat(ctx, deployment_id, token)

    thread = threading.Thread(target=beat, name=f"heartbeat-{deployment_id[:8]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def enter(ctx: Context, deployment_id: str, token: str, stage: Status) -> Row | None:
    """The row, now in `stage` and driven by `token`; None when this driver must end quietly."""
    row = rows.load(ctx.engine, deployment_id)
    if row is None:
        return None
    if row["status"] == Status.STOPPED:
        stop_teardown(ctx, deployment_id)
        return None
    if row["driver_token"] != token:
        return None
    if row["status"] == stage:
        heartbeat(ctx, deployment_id, token)
        return row
    previous = PIPELINE[PIPELINE.index(stage) - 1]
    values: dict[str, Any] = {"heartbeat_at": ctx.now()}
    if stage is Status.RUNNING:
        values["started_at"] = ctx.now()
    if transition(ctx.engine, deployment_id, expected=previous, to=stage, values=values,
                  where={"driver_token": token}, now=ctx.now, on_transition=ctx.on_transition):  # fmt: skip
        return rows.load(ctx.engine, deployment_id)
    return enter(ctx, deployment_id, token, stage) if _moved_to(ctx, deployment_id, stage) else None


def _moved_to(ctx: Context, deployment_id: str, stage: Status) -> bool:
    row = rows.load(ctx.engine, deployment_id)
    return row is not None and row["status"] in (stage, Status.STOPPED)


# ---- stages --------------------------------------------------------------------------------------


def _inspect(ctx: Context, row: Row) -> BundleInfo:
    app = workdir.app_dir(ctx.settings, row["id"])
    files = [p.relative_to(app).as_posix() for p in app.rglob("*") if p.is_file()]
    return inspect_bundle(app, files, name=row["name"], runtime=row["runtime"])


def unpacking(ctx: Context, deployment_id: str, token: str) -> bool:
    row = enter(ctx, deployment_id, token, Status.UNPACKING)
    if row is None:
        return False
    workdir.remove(ctx.settings, deployment_id)
    app = workdir.app_dir(ctx.settings, deployment_id)
    app.mkdir(parents=True)
    bundle = read_encrypted(ctx.master_key, bundle_path(ctx.settings, deployment_id))
    extract(io.BytesIO(bundle), app, Limits(ctx.settings.max_unpacked_bytes, ctx.settings.max_files))
    info = _inspect(ctx, row)  # validated again: the rules may have changed since the upload
    system(ctx, deployment_id, f"unpacked {len(bundle)} bytes; {info.runtime} {info.entity_type}")
    return True


def allocating_port(ctx: Context, deployment_id: str, token: str) -> bool:
    if enter(ctx, deployment_id, token, Status.ALLOCATING_PORT) is None:
        return False
    port = ports.allocate(ctx.engine, deployment_id, ctx.settings.port_min, ctx.settings.port_max, now=ctx.now)
    rows.save(ctx.engine, deployment_id, now=ctx.now, port=port)
    system(ctx, deployment_id, f"port {port}")
    return True


def writing_config(ctx: Context, deployment_id: str, token: str) -> bool:
    row = enter(ctx, deployment_id, token, Status.WRITING_CONFIG)
    if row is None:
        return False
    info = _inspect(ctx, row)
    s = ctx.settings
    if info.config_file:
        path = workdir.app_dir(s, deployment_id) / info.config_file
        path.write_text(json.dumps(rewrite_config(json.loads(path.read_text()), registry_url=s.registry_url), indent=2))
    base = images.base_for(s, info.runtime, info.entity_type)
    # Nothing deployment-specific in the image: identical bundles then share Docker's build cache.
    labels = {"deployer.managed": "true", "deployer.role": "app", "deployer.installation": ctx.installation}
    images.write_app_context(workdir.context_dir(s, deployment_id), s, base, info.launch, labels)
    if info.launch.compile:
        system(ctx, deployment_id, f"compile at build time: {' '.join(info.launch.compile)}")
    system(ctx, deployment_id, f"launch: {' '.join(info.launch.command)}")
    return True


class LineBatcher:
    """Build output into the log as it comes, quoted (it is the build's words, not the deployer's): a
    line is stored, and published to live streams, at most `delay` seconds after it was printed — also
    when the build then goes quiet — and lines that come fast share one transaction."""

    def __init__(self, ctx: Context, deployment_id: str, *, size: int = 500, delay: float = 0.1) -> None:
        self.ctx, self.deployment_id, self.size, self.delay = ctx, deployment_id, size, delay
        self.pending: list[str] = []
        self._lock = threading.Lock()  # guards `pending`
        self._writing = threading.Lock()  # one writer at a time, so lines keep their order
        self._wake, self._closed = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"build-log-{deployment_id[:8]}", daemon=True)
        self._thread.start()

    def __call__(self, line: str) -> None:
        with self._lock:
            self.pending.append(quoted(line[:2000]))
            full = len(self.pending) >= self.size
        if full:
            self.flush()
        else:
            self._wake.set()

    def _run(self) -> None:
        while not self._closed.is_set():
            self._wake.wait()
            self._closed.wait(self.delay)  # let the lines printed with this one join its batch
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # the database is away for now: these lines are lost, later ones still come
                log.warning("could not store build output of %s", self.deployment_id, exc_info=True)

    def flush(self) -> None:
        with self._writing:
            with self._lock:
                lines, self.pending = self.pending, []
            if not lines:
                return
            now = self.ctx.now()
            with self.ctx.engine.begin() as conn:
                last = append_system(conn, self.deployment_id, *lines, now=now)
            if self.ctx.publisher is not None:
                first, ts = last - len(lines) + 1, now.isoformat()
                self.ctx.publisher.log_batch(self.deployment_id, [
                    {"line_no": first + i, "stream": "system", "text": clean_text(t), "ts": ts}
                    for i, t in enumerate(lines)
                ])  # fmt: skip

    def close(self) -> None:
        """Stop the background writer and store what is left."""
        self._closed.set()
        self._wake.set()
        self._thread.join(timeout=10)
        self.flush()


def building(ctx: Context, deployment_id: str, token: str) -> bool:
    row = enter(ctx, deployment_id, token, Status.BUILDING)
    if row is None:
        return False
    context = workdir.context_dir(ctx.settings, deployment_id)
    base = images.base_for(ctx.settings, row["runtime"], row["entity_type"])
    base_id = images.image_id(ctx.docker, base)
    if base_id is None:
        raise BootFailed(f"Base image {base} is missing; run `deployer images build`")
    digest = images.context_digest(context, base_id)
    tag = f"{images.app_tag(deployment_id)}:{digest[:12]}"
    if images.image_id(ctx.docker, tag):
        system(ctx, deployment_id, f"image {tag} is up to date; not rebuilt")
    else:
        limits = images.BuildLimits.of(ctx.settings)
        system(ctx, deployment_id, f"building {tag}: memory {limits.mem_mb} MB, CPU {limits.cpu_millis} millicpu, "
                                   f"deadline {limits.timeout_sec} s")  # fmt: skip
        out = LineBatcher(ctx, deployment_id)
        try:
            ctx.build_image(ctx.docker, context=images.tar_context(context), tag=tag, on_line=out, limits=limits)
        finally:
            out.close()
    rows.save(ctx.engine, deployment_id, now=ctx.now, image=tag)
    return True


def starting(ctx: Context, deployment_id: str, token: str) -> bool:
    row = enter(ctx, deployment_id, token, Status.STARTING)
    if row is None:
        return False
    s = ctx.settings
    keypair = workdir.write_keypair(s, ctx.master_key, deployment_id, owner=containers.APP_UID)
    containers.ensure_network(ctx.docker, ctx.installation, s.data_root / "network.lock")
    url = entity_url(slug=row["slug"], port=row["port"], domain=s.public_host_suffix, scheme=s.public_scheme,
                     skip_caddy=s.skip_caddy)  # fmt: skip
    user_env = open_env(ctx.master_key, row["env"] or {})
    env = render_env(user_env, entity_type=row["entity_type"], registry_url=s.registry_url, url=url,
                     has_keypair=keypair is not None)  # fmt: skip
    limits = containers.Limits(row["memory_mb"], row["cpu_millis"], s.container_tmpfs_mb, s.container_pids_limit,
                               s.container_log_max_mb)  # fmt: skip
    spec = containers.container_spec(deployment_id=deployment_id, entity_type=row["entity_type"], image=row["image"],
                                     port=row["port"], env=env, limits=limits, keypair_path=keypair,
                                     installation=ctx.installation)  # fmt: skip
    container_id = containers.run(ctx.docker, spec)
    rows.save(ctx.engine, deployment_id, now=ctx.now, container_id=container_id, host_url=url)
    system(ctx, deployment_id, f"container {container_id[:12]} started on 127.0.0.1:{row['port']}")
    return True


def _boot_output(ctx: Context, container_id: str) -> str:
    return containers.output_note(ctx.docker, container_id, 20, silent="; it printed nothing")


def health_checking(ctx: Context, deployment_id: str, token: str) -> bool:
    row = enter(ctx, deployment_id, token, Status.HEALTH_CHECKING)
    if row is None:
        return False
    cid, timeout = row["container_id"], ctx.settings.boot_health_timeout_ms

    def alive() -> bool:
        st = containers.state(ctx.docker, cid)
        return st is not None and st.running

    outcome = wait_healthy(f"http://127.0.0.1:{row['port']}/health", timeout_ms=timeout, alive=alive,
                               session=ctx.http)  # fmt: skip
    if outcome == "healthy":
        return True
    st = containers.state(ctx.docker, cid)
    if outcome == "died" and st is not None:
        reason = containers.crash_reason(st.exit_code, st.oom_killed, row["memory_mb"]) + " during boot"
        rows.save(ctx.engine, deployment_id, now=ctx.now, last_exit_code=st.exit_code)
        raise BootFailed(reason + _boot_output(ctx, cid))
    raise BootFailed(f"Container did not become healthy within {timeout} ms" + _boot_output(ctx, cid))


def registering_route(ctx: Context, deployment_id: str, token: str) -> bool:
    row = enter(ctx, deployment_id, token, Status.REGISTERING_ROUTE)
    if row is None:
        return False
    if ctx.caddy is None:
        system(ctx, deployment_id, "route skipped (DEPLOYER_SKIP_CADDY)")
        return True
    ctx.caddy.ensure_server()
    ctx.caddy.upsert_route(deployment_id, row["slug"], ctx.settings.wildcard_domain, row["port"])
    system(ctx, deployment_id, f"route {row['slug']}.{ctx.settings.wildcard_domain} -> 127.0.0.1:{row['port']}")
    return True


def running(ctx: Context, deployment_id: str, token: str) -> bool:
    row = enter(ctx, deployment_id, token, Status.RUNNING)
    if row is None:
        return False
    entity = find_entity_id(ctx.http, f"http://127.0.0.1:{row['port']}")
    if entity:
        rows.save(ctx.engine, deployment_id, now=ctx.now, entity_id=entity)
    return True


StageFn = Callable[[Context, str, str], bool]
STAGES: dict[Status, StageFn] = {
    Status.UNPACKING: unpacking,
    Status.ALLOCATING_PORT: allocating_port,
    Status.WRITING_CONFIG: writing_config,
    Status.BUILDING: building,
    Status.STARTING: starting,
    Status.HEALTH_CHECKING: health_checking,
    Status.REGISTERING_ROUTE: registering_route,
    Status.RUNNING: running,
}


def run_stage(ctx: Context, stage: Status, deployment_id: str, token: str) -> bool:
    """Run one stage, heartbeating all the while so drain_queue does not take the row for abandoned.
    Trouble that may pass is raised as a `TransientError`: the stage is idempotent, so it may run again."""
    with keep_alive(ctx, deployment_id, token), containers.docker_reachable():
        return STAGES[stage](ctx, deployment_id, token)


def stages_from(status: Status) -> list[Status]:
    """The stages a driver runs when it takes a row in `status` (queued starts at unpacking)."""
    start = Status.UNPACKING if status is Status.QUEUED else status
    return list(PIPELINE[PIPELINE.index(start) :])

"""Running deployment containers as docs/architecture.md#containers-and-images says.

Decide: `container_spec` turns a deployment into the keyword arguments of `containers.run` (pure, so
every limit and label is testable without Docker). Apply: run, inspect, read output, stop and remove.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from deployer.bundles.envblock import CONTAINER_PORT, KEYPAIR_IN_CONTAINER
from deployer.errors import DockerUnreachable
from deployer.interfaces import ContainerRuntime
from deployer.store.loglines import quoted

MANAGED_LABEL = "deployer.managed"
INSTALLATION_LABEL = "deployer.installation"  # several installations may share one engine
APP_UID = 10001  # deployments run as this uid, never root; it needs no entry in the image's passwd
ICC_OFF = {"com.docker.network.bridge.enable_icc": "false"}


def network_name(installation: str) -> str:
    return f"deployer-net-{installation}"


@contextmanager
def docker_reachable() -> Iterator[None]:
    """The Docker SDK talks HTTP over the daemon's socket and lets `requests`' connection errors
    through: a daemon restarting, or a socket not there for a moment. Inside this block they become
    `DockerUnreachable`, which the stage driver retries."""
    try:
        yield
    except requests.ConnectionError as exc:
        raise DockerUnreachable(f"Docker API unreachable: {type(exc).__name__}: {exc}") from exc


def container_name(deployment_id: str) -> str:
    return f"deployer-{deployment_id}"


@dataclass(frozen=True)
class Limits:
    memory_mb: int
    cpu_millis: int
    tmpfs_mb: int
    pids: int
    log_max_mb: int = 20


def labels_for(deployment_id: str, entity_type: str, installation: str) -> dict[str, str]:
    return {"deployer.deployment": deployment_id, "deployer.kind": entity_type, MANAGED_LABEL: "true",
            INSTALLATION_LABEL: installation}  # fmt: skip


def ours(installation: str) -> list[str]:
    """The label filter that selects this installation's deployment containers and nothing else."""
    return [f"{MANAGED_LABEL}=true", f"{INSTALLATION_LABEL}={installation}", "deployer.deployment"]


def container_spec(
    *,
    deployment_id: str,
    entity_type: str,
    image: str,
    port: int,
    env: Mapping[str, str],
    limits: Limits,
    keypair_path: Path | None,
    installation: str,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "image": image,
        "name": container_name(deployment_id),
        "detach": True,
        "labels": labels_for(deployment_id, entity_type, installation),
        "ports": {f"{CONTAINER_PORT}/tcp": ("127.0.0.1", port)},
        "environment": {"HOME": "/tmp", **env},  # the uid has no home; /tmp is the writable place
        "user": f"{APP_UID}:{APP_UID}",
        "network": network_name(installation),
        "mem_limit": f"{limits.memory_mb}m",
        "memswap_limit": f"{limits.memory_mb}m",
        "nano_cpus": limits.cpu_millis * 1_000_000,
        "read_only": True,
        "tmpfs": {"/tmp": f"rw,exec,nosuid,nodev,size={limits.tmpfs_mb}m"},
        "security_opt": ["no-new-privileges"],
        "cap_drop": ["ALL"],
        "pids_limit": limits.pids,
        "privileged": False,
        "init": True,
        "restart_policy": {"Name": "no"},
        # Docker's own copy of the output is only the tailer's source: bounded, rotated.
        "log_config": {"type": "json-file", "config": {"max-size": f"{limits.log_max_mb}m", "max-file": "3"}},
    }
    if keypair_path is not None:
        spec["volumes"] = {str(keypair_path): {"bind": KEYPAIR_IN_CONTAINER, "mode": "ro"}}
    return spec


def run(client: ContainerRuntime, spec: Mapping[str, Any]) -> str:
    """Start the container (replacing a leftover of the same name); return its id."""
    remove(client, str(spec["name"]), grace_sec=0)
    container = client.containers.run(**spec)
    return str(container.id)


def get(client: ContainerRuntime, name_or_id: str) -> Any | None:
    import docker.errors

    try:
        return client.containers.get(name_or_id)
    except docker.errors.NotFound:
        return None


def remove(client: ContainerRuntime, name_or_id: str, *, grace_sec: int) -> bool:
    """Stop (SIGTERM, then SIGKILL after the grace) and remove. Returns whether a container existed."""
    import docker.errors

    container = get(client, name_or_id)
    if container is None:
        return False
    try:
        if container.status == "running" and grace_sec > 0:
            container.stop(timeout=grace_sec)
        container.remove(force=True)
    except docker.errors.NotFound:
        pass  # removed meanwhile: the outcome we wanted
    except docker.errors.APIError as exc:
        if "already in progress" not in str(exc):
            raise
    return True


@dataclass(frozen=True)
class ExitState:
    running: bool
    exit_code: int | None
    oom_killed: bool
    error: str


def state(client: ContainerRuntime, name_or_id: str) -> ExitState | None:
    container = get(client, name_or_id)
    if container is None:
        return None
    s = container.attrs.get("State", {})
    return ExitState(
        running=bool(s.get("Running")),
        exit_code=None if s.get("Running") else s.get("ExitCode"),
        oom_killed=bool(s.get("OOMKilled")),
        error=str(s.get("Error") or ""),
    )


def crash_reason(exit_code: int | None, oom: bool, memory_mb: int) -> str:
    """A dead container's cause in words, for the log: the boot stage and crash detection both say it."""
    if oom:
        return f"Container OOM-killed (memory limit {memory_mb} MB)"
    if exit_code is None:
        return "Container disappeared"
    return f"Container exited {exit_code}"


def last_output(client: ContainerRuntime, name_or_id: str, lines: int = 50) -> list[str]:
    container = get(client, name_or_id)
    if container is None:
        return []
    raw: bytes = container.logs(stdout=True, stderr=True, tail=lines)
    return [ln.rstrip("\r") for ln in raw.decode("utf-8", "replace").splitlines()]


def output_note(client: ContainerRuntime, name_or_id: str, lines: int = 20, *, silent: str = "") -> str:
    """The container's last lines as the tail of an error message (each quoted: they are its words,
    not the deployer's); `silent` when it printed nothing."""
    output = last_output(client, name_or_id, lines)
    return ("; last output:\n" + "\n".join(map(quoted, output))) if output else silent


def managed(client: ContainerRuntime, installation: str) -> list[Any]:
    """This installation's deployment containers. Images pass their labels to every container made
    from them (build steps too), so only a container that names its deployment counts; one of another
    installation on the same engine is never ours to judge or remove."""
    return list(client.containers.list(all=True, filters={"label": ours(installation)}))


def ensure_network(client: ContainerRuntime, installation: str, lock_path: Path) -> str:
    """The installation's bridge for deployments, with inter-container traffic off: a deployment can
    reach the outside world and be reached through its published port, but not another deployment.
    Docker 20.10 lets two creates make two networks of one name, so creation is serialised."""
    import fcntl

    name = network_name(installation)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not [n for n in client.networks.list(names=[name]) if n.name == name]:
            labels = {MANAGED_LABEL: "true", INSTALLATION_LABEL: installation}
            client.networks.create(name, driver="bridge", options=ICC_OFF, labels=labels, check_duplicate=True)
    return name

"""Images: the offline Debian base, the four runtime bases, and one image per deployment.

Decide: Dockerfile text, build-context digests and which base applies (pure). Apply: debootstrap +
`docker import`, and builds through the Docker API with their output handed to a callback line by line.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployer.errors import DeployerError
from deployer.runtime import LaunchPlan
from deployer.settings import Settings

DOCKERFILES = Path(__file__).with_name("dockerfiles")
PUBLIC_BASES = {"python": "python:3.11-slim", "node": "node:20-slim"}
BOOTSTRAP_PACKAGES = ("python3", "python3-pip", "python3-venv", "nodejs", "ca-certificates")
OnLine = Callable[[str], None]


class BuildFailed(DeployerError):
    code = "build_failed"


@dataclass(frozen=True)
class BaseImage:
    setting: str  # Settings attribute holding the tag
    runtime: str
    kind: str


BASE_IMAGES = (
    BaseImage("agent_base_image", "python", "agent"),
    BaseImage("service_base_image", "python", "service"),
    BaseImage("node_agent_base_image", "node", "agent"),
    BaseImage("node_service_base_image", "node", "service"),
)


def base_for(settings: Settings, runtime: str, entity_type: str) -> str:
    for b in BASE_IMAGES:
        if b.runtime == runtime and b.kind == entity_type:
            return str(getattr(settings, b.setting))
    raise ValueError(f"no base image for {runtime}/{entity_type}")


def app_tag(deployment_id: str) -> str:
    return f"deployer/app-{deployment_id}"


def render_app_dockerfile(base: str, plan: LaunchPlan, *, labels: dict[str, str], pip_index_url: str = "",
                          has_wheels: bool = False, npm_registry: str = "") -> str:  # fmt: skip
    # Few instructions: on slow storage drivers every step is a container commit.
    lines = [f"FROM {base}"]
    if has_wheels:
        lines.append("COPY wheels /wheels")
    lines.append("COPY app /app")
    if plan.install:
        env = []
        if plan.runtime == "python":
            if pip_index_url:
                env.append(f"PIP_INDEX_URL={json.dumps(pip_index_url)}")
            if has_wheels:
                env.append("PIP_FIND_LINKS=/wheels")
                if not pip_index_url:
                    env.append("PIP_NO_INDEX=1")
        elif npm_registry:
            env.append(f"npm_config_registry={json.dumps(npm_registry)}")
        lines.append("RUN " + " ".join([*env, *plan.install]))
    lines.append("LABEL " + " ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items())))
    lines.append(f"CMD {json.dumps(list(plan.command))}")
    return "\n".join(lines) + "\n"


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def context_digest(context: Path, base_id: str) -> str:
    h = hashlib.sha256(base_id.encode())
    for p in _files(context):
        h.update(p.relative_to(context).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def tar_context(context: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for p in _files(context):
            info = tar.gettarinfo(str(p), arcname=p.relative_to(context).as_posix())
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            with p.open("rb") as fh:
                tar.addfile(info, fh)
    return buf.getvalue()


def stream_build(client: Any, *, context: bytes, tag: str, on_line: OnLine,
                 buildargs: dict[str, str] | None = None, dockerfile: str = "Dockerfile") -> None:  # fmt: skip
    """Build through the Docker API (classic builder, never pulling); raise BuildFailed with the reason."""
    tail: list[str] = []
    events: Iterable[dict[str, Any]] = client.api.build(
        fileobj=io.BytesIO(context), custom_context=True, tag=tag, rm=True, forcerm=True, pull=False,
        buildargs=buildargs or {}, dockerfile=dockerfile, decode=True,
    )  # fmt: skip
    for event in events:
        if "error" in event:
            raise BuildFailed(f"Image build failed: {str(event['error']).strip()[:300]}\n" + "\n".join(tail[-20:]))
        for line in str(event.get("stream", "")).splitlines():
            if line.strip():
                tail.append(line)
                on_line(line)


def image_labels(client: Any, tag: str) -> dict[str, str] | None:
    import docker.errors

    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None
    return dict(image.labels or {})


def image_id(client: Any, tag: str) -> str | None:
    import docker.errors

    try:
        return str(client.images.get(tag).id)
    except docker.errors.ImageNotFound:
        return None


# ---- base images ---------------------------------------------------------------------------------


def bootstrap_base(client: Any, settings: Settings, on_line: OnLine) -> str:
    """A Debian bookworm rootfs by debootstrap, imported as `settings.bootstrap_image`; reused if present."""
    tag = settings.bootstrap_image
    if image_id(client, tag):
        on_line(f"{tag} is present; not rebuilt")
        return tag
    if shutil.which("debootstrap") is None:
        raise BuildFailed("debootstrap is not installed (apt-get install debootstrap)")
    with tempfile.TemporaryDirectory(prefix="deployer-rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        _run(["debootstrap", "--variant=minbase", f"--include={','.join(BOOTSTRAP_PACKAGES)}", "bookworm",
              str(root), settings.debian_mirror], on_line)  # fmt: skip
        # npm's dependency cycles defeat debootstrap's resolver; apt inside the rootfs handles them.
        shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
        _run(["chroot", str(root), "apt-get", "install", "-y", "-q", "--no-install-recommends", "npm"], on_line)
        _run(["chroot", str(root), "apt-get", "clean"], on_line)
        shutil.rmtree(root / "var/lib/apt/lists", ignore_errors=True)
        (root / "etc/resolv.conf").unlink(missing_ok=True)
        tarball = Path(tmp) / "rootfs.tar"
        _run(["tar", "-C", str(root), "-cf", str(tarball), "."], on_line)
        on_line(f"importing {tarball.stat().st_size // (1024 * 1024)} MB as {tag}")
        repo, _, version = tag.rpartition(":")
        client.api.import_image_from_file(
            str(tarball), repository=repo, tag=version,
            changes=["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "ENV LANG=C.UTF-8",
                     'CMD ["/bin/bash"]', "LABEL deployer.managed=true deployer.role=bootstrap"],
        )  # fmt: skip
    return tag


def _run(cmd: list[str], on_line: OnLine) -> None:
    on_line("$ " + " ".join(cmd[:4]) + (" …" if len(cmd) > 4 else ""))
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if proc.returncode != 0:
        raise BuildFailed(f"{cmd[0]} failed ({proc.returncode}): {(proc.stderr or proc.stdout)[-500:]}")


def build_base_images(client: Any, settings: Settings, *, base_override: str | None, on_line: OnLine) -> list[str]:
    """The four runtime bases from the Dockerfiles in the repo; `base_override` replaces the public base."""
    built = []
    for b in BASE_IMAGES:
        tag = str(getattr(settings, b.setting))
        dockerfile = (DOCKERFILES / f"{b.runtime}.Dockerfile").read_bytes()
        context = _single_file_tar("Dockerfile", dockerfile)
        base = base_override or PUBLIC_BASES[b.runtime]
        on_line(f"building {tag} FROM {base}")
        stream_build(client, context=context, tag=tag, on_line=on_line, buildargs={"BASE": base, "KIND": b.kind})
        built.append(tag)
    return built


def _single_file_tar(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def bases_present(client: Any, settings: Settings) -> bool:
    return all(image_id(client, str(getattr(settings, b.setting))) for b in BASE_IMAGES)


def public_bases_reachable(client: Any, on_line: OnLine) -> bool:
    """True when the public bases are local or can be pulled (False on a machine with no registry)."""
    import docker.errors

    for ref in PUBLIC_BASES.values():
        if image_id(client, ref):
            continue
        try:
            on_line(f"pulling {ref}")
            client.images.pull(ref)
        except docker.errors.APIError as exc:
            on_line(f"cannot pull {ref}: {str(exc)[:160]}")
            return False
    return True


def ensure_base_images(client: Any, settings: Settings, on_line: OnLine) -> None:
    """What `deployer up` and `images build` need: the bases, bootstrapping offline when no registry answers."""
    if bases_present(client, settings):
        on_line("base images present")
        return
    override = None if public_bases_reachable(client, on_line) else bootstrap_base(client, settings, on_line)
    build_base_images(client, settings, base_override=override, on_line=on_line)


def list_images(client: Any) -> list[dict[str, Any]]:
    rows = []
    for image in client.images.list(filters={"label": "deployer.managed=true"}):
        rows.append({
            "id": image.short_id, "tags": list(image.tags), "role": image.labels.get("deployer.role", ""),
            "size_mb": round(image.attrs.get("Size", 0) / (1024 * 1024), 1), "created": image.attrs.get("Created"),
        })  # fmt: skip
    return rows

"""Images: the offline Debian base, the four runtime bases, and one image per deployment.

Decide: Dockerfile text, build-context digests and which base applies (pure). Apply: debootstrap +
`docker import`, and builds through the Docker API with their output handed to a callback line by line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from deployer.bundles.runtime import APP_DEPS, LaunchPlan
from deployer.errors import BuildFailed
from deployer.interfaces import ContainerRuntime
from deployer.lifecycle import dockerapi
from deployer.settings import Settings
from deployer.store.loglines import quoted
from deployer.terminal import strip_controls

DOCKERFILES = Path(__file__).with_name("dockerfiles")
PUBLIC_BASES = {"python": "python:3.12-slim", "node": "node:20-slim"}
BOOTSTRAP_SUITE = "trixie"  # Python 3.13 (the Zynd SDK needs >= 3.12), nodejs 20, esbuild, corepack
BOOTSTRAP_PACKAGES = ("python3", "python3-venv", "nodejs", "ca-certificates")
# npm's dependency cycles defeat debootstrap's resolver; apt inside the rootfs installs these.
BOOTSTRAP_APT_PACKAGES = ("npm", "node-corepack", "esbuild")
# What a runtime base's Dockerfile copies into its build stage, beside the settings (see build_dir_files).
RECIPE_FILES = {"python": ("deployer_app_deps.py",), "node": ("node-tools.sh",)}
BUILD_DIR = "build"  # in a build context: install settings and the CA, seen by a build stage only
STAGE_ROOT = "/deployer-build"  # where a build stage has the context (build/, and app/ for app images)
MOUNTED = f"{STAGE_ROOT}/{BUILD_DIR}"
NODE_TOOLS = "/opt/deployer/node-tools"  # written by node-tools.sh: one "<tool> <version>" a line
OnLine = Callable[[str], None]


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


# ---- build settings (pure) -----------------------------------------------------------------------


@dataclass(frozen=True)
class BuildSettings:
    """How installs inside a build reach their packages. Never written into an image: a build stage
    sources them from build/env, and only what it installed is copied into the image."""

    pip_index_url: str = ""
    pip_find_links: str = ""  # a URL (a local wheelhouse is copied into build/wheels instead)
    npm_registry: str = ""
    has_wheels: bool = False  # a wheelhouse in build/wheels
    has_ca: bool = False  # a CA bundle in build/ca.crt
    zynd_sdk_version: str = ""  # the Python bases' pin

    @classmethod
    def of(cls, settings: Settings) -> BuildSettings:
        links = settings.pip_find_links
        return cls(settings.pip_index_url, links if "://" in links else "", settings.npm_registry,
                   local_wheelhouse(settings) is not None, bool(settings.build_ca_bundle))  # fmt: skip


def local_wheelhouse(settings: Settings) -> Path | None:
    links = settings.pip_find_links
    return Path(links) if links and "://" not in links and Path(links).is_dir() else None


def render_build_env(b: BuildSettings) -> str:
    """build/env: sourced by the install step (its values never appear in a Dockerfile nor in the output)."""
    values: list[tuple[str, str]] = []
    if b.pip_index_url:
        values.append(("PIP_INDEX_URL", b.pip_index_url))
    if b.has_wheels:
        values.append(("PIP_FIND_LINKS", f"{MOUNTED}/wheels"))
        if not b.pip_index_url:
            values.append(("PIP_NO_INDEX", "1"))
    elif b.pip_find_links:
        values.append(("PIP_FIND_LINKS", b.pip_find_links))
    if b.npm_registry:
        values += [("npm_config_registry", b.npm_registry), ("COREPACK_NPM_REGISTRY", b.npm_registry.rstrip("/")),
                   ("YARN_NPM_REGISTRY_SERVER", b.npm_registry.rstrip("/"))]  # fmt: skip
    if b.has_ca:
        ca = f"{MOUNTED}/ca.crt"
        values += [(name, ca) for name in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "GIT_SSL_CAINFO",
                                           "NODE_EXTRA_CA_CERTS", "YARN_HTTPS_CA_FILE_PATH")]  # fmt: skip
    if b.zynd_sdk_version:
        values.append(("ZYND_SDK_VERSION", b.zynd_sdk_version))
    lines = ["# Install settings of one build stage; never part of an image."]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in values]
    return "\n".join(lines) + "\n"


def build_dir_files(settings: Settings, b: BuildSettings, extra: Iterable[str] = ()) -> dict[str, bytes]:
    """The files of build/ (relative names): env, the CA bundle, the wheelhouse, `extra` files from DOCKERFILES."""
    files = {"env": render_build_env(b).encode()}
    wheels = local_wheelhouse(settings) if b.has_wheels else None
    if wheels is not None:
        files.update({f"wheels/{p.relative_to(wheels).as_posix()}": p.read_bytes() for p in _files(wheels)})
    if b.has_ca:
        try:
            files["ca.crt"] = Path(settings.build_ca_bundle).read_bytes()
        except OSError as exc:
            where = settings.build_ca_bundle
            raise BuildFailed(f"DEPLOYER_BUILD_CA_BUNDLE: cannot read {where}: {exc.strerror}") from None
    for name in extra:
        files[name] = (DOCKERFILES / name).read_bytes()
    return files


# ---- app images (pure) ---------------------------------------------------------------------------


def _missing_tool(tool: str, why: str) -> str:
    """A shell guard: fails the build with a line the deployment's error message leads with."""
    pattern, line = shlex.quote(f"^{tool} "), shlex.quote(f"deployer: {why}")
    return f"{{ grep -q {pattern} {NODE_TOOLS} || {{ echo {line}; exit 1; }}; }}"


_NO_REGISTRY = ("the node base image was built where no npm registry answered, so corepack could not prepare it. "
                "Set DEPLOYER_NPM_REGISTRY to a registry that answers and rebuild the bases "
                "(deployer images build), or ship a package-lock.json to install with npm.")  # fmt: skip


def build_steps(plan: LaunchPlan) -> list[str]:
    """The shell steps of the build, run in the app's directory: guards naming a missing tool, the install,
    the compile."""
    steps = []
    if plan.install and plan.install[0] in ("pnpm", "yarn"):
        steps.append(_missing_tool(plan.install[0], f"{plan.install[0]} is not available: {_NO_REGISTRY}"))
    if plan.install:
        steps.append(" ".join(shlex.quote(a) for a in plan.install))
    if plan.compile:
        steps.append(_missing_tool(plan.compile[0], f"{plan.compile[0]} is not available in the node base image, "
                                   "so TypeScript cannot be compiled; rebuild the node bases (deployer images build) "
                                   "where an npm registry answers, or ship JavaScript."))  # fmt: skip
        steps.append(" ".join(shlex.quote(a) for a in plan.compile))
    return steps


def _run_step(steps: list[str]) -> str:
    return "RUN " + " \\\n && ".join(steps)


def render_app_dockerfile(base: str, plan: LaunchPlan, *, labels: dict[str, str]) -> str:
    """One stage when nothing is installed. With an install, a build stage that alone sees build/
    (settings, CA) runs it and gathers what the image needs under /out: the app (with node_modules and
    compiled files for Node) and, for Python, /opt/app-deps — the base's virtualenv is not copied again.
    Few instructions: on slow storage drivers (fuse-overlayfs) every one is a container commit."""
    tail = ["LABEL " + " ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items())),
            f"CMD {json.dumps(list(plan.command))}"]  # fmt: skip
    steps = build_steps(plan)
    if not plan.install:
        lines = [f"FROM {base}", "COPY app /app"]
        if steps:
            lines.append(_run_step(["cd /app", *steps]))
        return "\n".join([*lines, *tail]) + "\n"
    app = f"{STAGE_ROOT}/app"
    gather = ["mkdir -p /out/opt", f"mv {APP_DEPS} /out/opt/"] if plan.runtime == "python" else ["mkdir -p /out"]
    run = [f". {MOUNTED}/env", *([f"mkdir -p {APP_DEPS}"] if plan.runtime == "python" else []), f"cd {app}", *steps,
           *gather, f"mv {app} /out/app"]  # fmt: skip
    lines = [f"FROM {base} AS build", f"COPY . {STAGE_ROOT}/", _run_step(run), "",
             f"FROM {base}", "COPY --from=build /out /"]  # fmt: skip
    return "\n".join([*lines, *tail]) + "\n"


def write_app_context(context: Path, settings: Settings, base: str, plan: LaunchPlan, labels: dict[str, str]) -> None:
    """The Dockerfile, and build/ when something is installed."""
    build = context / BUILD_DIR
    shutil.rmtree(build, ignore_errors=True)
    if plan.install:
        b = BuildSettings.of(settings)
        if plan.runtime != "python":
            b = dataclasses.replace(b, has_wheels=False)
        for name, data in build_dir_files(settings, b).items():
            (build / name).parent.mkdir(parents=True, exist_ok=True)
            (build / name).write_bytes(data)
    (context / "Dockerfile").write_text(render_app_dockerfile(base, plan, labels=labels))


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def context_digest(context: Path, base_id: str) -> str:
    """What the image is made of: the base, the Dockerfile and the bundle. Not build/ — where packages come
    from is not what the image is, and a restart with other install settings reuses the image."""
    h = hashlib.sha256(base_id.encode())
    for p in _files(context):
        if p.relative_to(context).parts[0] == BUILD_DIR:
            continue
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


@dataclass(frozen=True)
class BuildLimits:
    """What one image build may use. A build runs the bundle's code (setup.py, build backends, npm
    scripts): each step's container gets this memory (and no swap beyond it) and CPU, and the whole
    build a deadline. None: no limit (the runtime bases, built from the repo's own recipes)."""

    mem_mb: int | None = None
    cpu_millis: int | None = None
    timeout_sec: float | None = None

    @classmethod
    def of(cls, settings: Settings) -> BuildLimits:
        return cls(settings.build_mem_mb, settings.build_cpu_millis, settings.build_timeout_sec)

    def params(self) -> dict[str, int]:
        """The classic builder's query parameters (docker-py's `container_limits` knows no CPU quota)."""
        p: dict[str, int] = {}
        if self.mem_mb:
            p["memory"] = p["memswap"] = self.mem_mb * 1024 * 1024
        if self.cpu_millis:
            p["cpuperiod"], p["cpuquota"] = 100_000, self.cpu_millis * 100
        return p


class ImageBuilder(Protocol):
    """Builds an app image from a tarred context, handing its output over line by line; raises
    `BuildFailed` with the reason (the real one is `stream_build`; tests pass a fake)."""

    def __call__(
        self, client: ContainerRuntime, *, context: bytes, tag: str, on_line: OnLine, limits: BuildLimits
    ) -> None: ...


RUNNING_IN = re.compile(r"^ ---> Running in ([0-9a-f]{12,64})$")  # the classic builder names each RUN's container
MAX_LINE = 64 * 1024
TAIL_LINES = 20


class OutputLines:
    """Docker's build stream as lines: chunks split anywhere (a line and its newline often come apart),
    Docker's colouring of stderr and any terminal control taken out, a carriage return's overwrite kept
    as a terminal would show it (its last part), blank lines dropped."""

    def __init__(self) -> None:
        self.rest = ""

    def feed(self, chunk: str) -> list[str]:
        parts = (self.rest + chunk).split("\n")
        self.rest = parts.pop()
        if len(self.rest) > MAX_LINE:  # no newline for that long: out it goes, as a line
            parts.append(self.rest)
            self.rest = ""
        return [line for line in map(self.clean, parts) if line]

    def flush(self) -> list[str]:
        rest, self.rest = self.rest, ""
        return [line for line in [self.clean(rest)] if line]

    @staticmethod
    def clean(raw: str) -> str:
        shown = [strip_controls(part).rstrip() for part in raw.split("\r")]
        return next((part for part in reversed(shown) if part.strip()), "")


class _Output:
    """One build's output: lines to `on_line`, the last few kept, the RUN steps' containers noted."""

    def __init__(self, on_line: OnLine) -> None:
        self.on_line, self.lines = on_line, OutputLines()
        self.tail: list[str] = []
        self.steps: list[str] = []  # the containers of RUN steps, as the builder announced them

    def read(self, client: Any, response: Any) -> str | None:
        """Docker's error, or None when the build went through."""
        for event in dockerapi.build_events(client, response):
            if "error" in event:
                return str(event["error"])
            for line in self.lines.feed(str(event.get("stream", ""))):
                self.emit(line)
        for line in self.lines.flush():
            self.emit(line)
        return None

    def emit(self, line: str) -> None:
        if m := RUNNING_IN.match(line):
            self.steps.append(m.group(1))
        self.tail.append(line)
        del self.tail[:-TAIL_LINES]
        self.on_line(line)


class _Watchdog:
    """Hangs up a build's stream at its deadline, even while the stream is silent and its reader blocked."""

    def __init__(self, timeout_sec: float | None, response: Any) -> None:
        self.expired, self.shut = threading.Event(), dockerapi.hangup_for(response)
        self.timer = threading.Timer(timeout_sec, self.hang_up) if timeout_sec else None
        if self.timer is not None:
            self.timer.daemon = True
            self.timer.start()

    def hang_up(self) -> None:
        self.expired.set()
        self.shut()

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()


def stream_build(client: ContainerRuntime, *, context: bytes, tag: str, on_line: OnLine,
                 buildargs: dict[str, str] | None = None, dockerfile: str = "Dockerfile",
                 limits: BuildLimits = BuildLimits()) -> None:  # fmt: skip
    """Build through the Docker API (classic builder, never pulling), output handed to `on_line` line by
    line as it comes; raise BuildFailed with the reason. Past `limits.timeout_sec` a watchdog hangs up
    the stream (the daemon then cancels the build) and the step's container is removed, even when the
    build prints nothing; a step killed by the memory limit fails with that reason."""
    args = {**dockerapi.build_proxy_args(client), **(buildargs or {})}  # as docker-py's build does
    params = {"t": tag, "rm": True, "forcerm": True, "pull": False, "dockerfile": dockerfile,
              "buildargs": json.dumps(args), **limits.params()}  # fmt: skip
    since = int(time.time())
    response = dockerapi.start_build(client, context=context, params=params)
    out, watchdog, error = _Output(on_line), _Watchdog(limits.timeout_sec, response), None
    try:
        error = out.read(client, response)
    except Exception as exc:  # the stream broke: our watchdog hung up, or the daemon went away
        if not watchdog.expired.is_set():
            raise BuildFailed(failure_message(f"the Docker API stream broke: {exc}", out.tail)) from None
    finally:
        watchdog.cancel()
        response.close()
    if watchdog.expired.is_set():
        remove_build_containers(client, out.steps)
        lead = (f"Image build exceeded its deadline of {limits.timeout_sec:g} s (DEPLOYER_BUILD_TIMEOUT_SEC) "
                "and was stopped")  # fmt: skip
        raise BuildFailed(failure_message("", out.tail, lead=lead))
    if error is None:
        return
    if limits.mem_mb and oom_killed(client, out.steps, since=since):
        lead = (f"Image build ran out of memory: a build step went over the build memory limit of "
                f"{limits.mem_mb} MB (DEPLOYER_BUILD_MEM_MB) and was killed")  # fmt: skip
        raise BuildFailed(failure_message(error, out.tail, lead=lead))
    raise BuildFailed(failure_message(error, out.tail))


def remove_build_containers(client: Any, ids: Iterable[str], wait_sec: float = 30.0) -> None:
    """Remove a cancelled build's step containers and wait until they are gone (the daemon, seeing the
    client hang up, is usually removing them already)."""
    import docker.errors

    deadline = time.monotonic() + wait_sec
    for cid in ids:
        while time.monotonic() < deadline:
            try:
                client.api.remove_container(cid, force=True)
            except docker.errors.NotFound:
                break
            except docker.errors.APIError:  # 409: its removal is already under way
                pass
            try:
                client.api.inspect_container(cid)
            except docker.errors.NotFound:
                break
            time.sleep(0.2)


def oom_killed(client: Any, ids: list[str], *, since: int) -> bool:
    """Whether the kernel's OOM killer struck one of these build containers (Docker's `oom` event): a
    step's process killed by it may leave only a generic failure (pip reports its backend's exit -9)."""
    if not ids:
        return False
    events = client.events(since=since, until=int(time.time()) + 1,
                           filters={"type": "container", "event": "oom"}, decode=True)  # fmt: skip
    try:
        return any(str(e.get("id") or e.get("Actor", {}).get("ID", "")).startswith(tuple(ids)) for e in events)
    finally:
        events.close()


def failure_message(error: str, tail: list[str], *, lead: str | None = None) -> str:
    """The cause first: `lead`, else a `deployer: …` line our build steps print, else Docker's error; then
    the output's end, quoted (it is the build's, not the deployer's words)."""
    ours = [line.removeprefix("deployer: ") for line in tail if line.startswith("deployer: ")]
    lead = lead or (ours[-1] if ours else f"Image build failed: {strip_controls(error).strip()[:300]}")
    return lead + "\n" + "\n".join(map(quoted, tail[-TAIL_LINES:]))


def image_labels(client: ContainerRuntime, tag: str) -> dict[str, str] | None:
    import docker.errors

    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None
    return dict(image.labels or {})


def image_id(client: ContainerRuntime, tag: str) -> str | None:
    import docker.errors

    try:
        return str(client.images.get(tag).id)
    except docker.errors.ImageNotFound:
        return None


# ---- base images ---------------------------------------------------------------------------------


def bootstrap_recipe() -> str:
    what = [BOOTSTRAP_SUITE, BOOTSTRAP_PACKAGES, BOOTSTRAP_APT_PACKAGES]
    return hashlib.sha256(json.dumps(what).encode()).hexdigest()


def bootstrap_base(client: Any, settings: Settings, on_line: OnLine) -> str:
    """A Debian trixie rootfs by debootstrap, imported as `settings.bootstrap_image`; reused while its
    recipe (suite and packages) is unchanged."""
    tag, recipe = settings.bootstrap_image, bootstrap_recipe()
    labels = image_labels(client, tag)
    if labels is not None and labels.get("deployer.recipe") == recipe:
        on_line(f"{tag} is present; not rebuilt")
        return tag
    if labels is not None:
        on_line(f"{tag} was made by another recipe; bootstrapping it again")
    if shutil.which("debootstrap") is None:
        raise BuildFailed("debootstrap is not installed (apt-get install debootstrap)")
    with tempfile.TemporaryDirectory(prefix="deployer-rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        _run(["debootstrap", "--variant=minbase", f"--include={','.join(BOOTSTRAP_PACKAGES)}", BOOTSTRAP_SUITE,
              str(root), settings.debian_mirror], on_line)  # fmt: skip
        shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
        _run(["chroot", str(root), "apt-get", "install", "-y", "-q", "--no-install-recommends",
              *BOOTSTRAP_APT_PACKAGES], on_line)  # fmt: skip
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
                     'CMD ["/bin/bash"]',
                     f"LABEL deployer.managed=true deployer.role=bootstrap deployer.recipe={recipe}"],
        )  # fmt: skip
    return tag


def _run(cmd: list[str], on_line: OnLine) -> None:
    on_line("$ " + " ".join(cmd[:4]) + (" …" if len(cmd) > 4 else ""))
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if proc.returncode != 0:
        raise BuildFailed(f"{cmd[0]} failed ({proc.returncode}): {(proc.stderr or proc.stdout)[-500:]}")


def base_buildargs(b: BaseImage, settings: Settings, base: str) -> dict[str, str]:
    args = {"BASE": base, "KIND": b.kind}
    if b.runtime == "python":
        args["ZYND_SDK_VERSION"] = settings.zynd_sdk_version
    return args


def base_recipe(b: BaseImage, settings: Settings, *, base: str, base_id: str) -> str:
    """A digest of everything a runtime base is made of: its Dockerfile and files, its build arguments,
    and the image it is built FROM. Kept as the `deployer.recipe` label; a base whose label differs is
    rebuilt (install settings and the CA are not part of it: they say where packages come from)."""
    h = hashlib.sha256((DOCKERFILES / f"{b.runtime}.Dockerfile").read_bytes())
    for name in RECIPE_FILES[b.runtime]:
        h.update(name.encode() + b"\0" + (DOCKERFILES / name).read_bytes())
    h.update(json.dumps([base_buildargs(b, settings, base), base_id], sort_keys=True).encode())
    return h.hexdigest()


def base_context(b: BaseImage, settings: Settings) -> bytes:
    """The Dockerfile and build/: install settings, the CA, a wheelhouse, the runtime's files."""
    bs = BuildSettings.of(settings)
    if b.runtime == "python":
        bs = dataclasses.replace(bs, zynd_sdk_version=settings.zynd_sdk_version)
    else:
        bs = dataclasses.replace(bs, has_wheels=False)
    files = {"Dockerfile": (DOCKERFILES / f"{b.runtime}.Dockerfile").read_bytes()}
    files.update({f"{BUILD_DIR}/{k}": v for k, v in build_dir_files(settings, bs, RECIPE_FILES[b.runtime]).items()})
    return _tar(files)


def build_base_images(client: Any, settings: Settings, *, base_override: str | None, on_line: OnLine,
                      only: Iterable[BaseImage] = BASE_IMAGES) -> list[str]:  # fmt: skip
    """The runtime bases from the Dockerfiles in the repo; `base_override` replaces the public base.
    Bases of one runtime differ only in labels: the second one's steps come from Docker's build cache."""
    built = []
    for b in only:
        tag = str(getattr(settings, b.setting))
        base = base_override or PUBLIC_BASES[b.runtime]
        base_id = image_id(client, base)
        if base_id is None:
            raise BuildFailed(f"{base} is not on this host: pull it, or make one with `deployer images bootstrap`")
        args = {**base_buildargs(b, settings, base), "RECIPE": base_recipe(b, settings, base=base, base_id=base_id)}
        on_line(f"building {tag} FROM {base}")
        stream_build(client, context=base_context(b, settings), tag=tag, on_line=on_line, buildargs=args)
        built.append(tag)
    return built


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def stale_bases(client: Any, settings: Settings) -> list[tuple[BaseImage, str]]:
    """The bases that are missing, or whose `deployer.recipe` label is not the recipe they would be built
    by now (FROM the image named in their `deployer.base` label): each with the reason."""
    stale = []
    for b in BASE_IMAGES:
        tag = str(getattr(settings, b.setting))
        labels = image_labels(client, tag)
        if labels is None:
            stale.append((b, f"{tag} is missing"))
            continue
        base = labels.get("deployer.base", "")
        base_id = image_id(client, base) if base else None
        if base_id is None:
            stale.append((b, f"{tag} was built FROM {base or 'an unknown base'}, which is gone"))
        elif labels.get("deployer.recipe") != base_recipe(b, settings, base=base, base_id=base_id):
            stale.append((b, f"{tag} was built by another recipe"))
    return stale


def bases_present(client: Any, settings: Settings) -> bool:
    return not stale_bases(client, settings)


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
    """What `deployer up` and `images build` need: the bases, each built by today's recipe, bootstrapping
    offline when no registry answers. A base from an older recipe is rebuilt, never silently reused."""
    stale = stale_bases(client, settings)
    if not stale:
        on_line("base images present")
        return
    for _, reason in stale:
        on_line(f"{reason}; building it")
    override = None if public_bases_reachable(client, on_line) else bootstrap_base(client, settings, on_line)
    build_base_images(client, settings, base_override=override, on_line=on_line, only=[b for b, _ in stale])


def list_images(client: Any) -> list[dict[str, Any]]:
    rows = []
    for image in client.images.list(filters={"label": "deployer.managed=true"}):
        rows.append({
            "id": image.short_id, "tags": list(image.tags), "role": image.labels.get("deployer.role", ""),
            "size_mb": round(image.attrs.get("Size", 0) / (1024 * 1024), 1), "created": image.attrs.get("Created"),
        })  # fmt: skip
    return rows

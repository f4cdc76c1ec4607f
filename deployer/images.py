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
import shlex
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployer.errors import DeployerError
from deployer.runtime import APP_DEPS, LaunchPlan
from deployer.settings import Settings

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
            raise BuildFailed(failure_message(str(event["error"]), tail))
        for line in str(event.get("stream", "")).splitlines():
            if line.strip():
                tail.append(line)
                on_line(line)


def failure_message(error: str, tail: list[str]) -> str:
    """The cause first: a `deployer: …` line our build steps print, else Docker's error; then the output's end."""
    ours = [line.removeprefix("deployer: ") for line in tail if line.startswith("deployer: ")]
    lead = ours[-1] if ours else f"Image build failed: {error.strip()[:300]}"
    return lead + "\n" + "\n".join(tail[-20:])


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

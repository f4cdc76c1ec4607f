from __future__ import annotations

import io
import tarfile
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, insert, select, update

from deployer.lifecycle.image_gc import deployment_of, prune_images
from deployer.settings import Settings, load_settings
from deployer.store.models import Deployment, DeploymentLog, DeploymentMetric, utcnow
from deployer.store.retention import apply_retention, cutoffs
from tests.support.rows import make_deployment_row

_log = DeploymentLog.__table__  # type: ignore[attr-defined]
_metric = DeploymentMetric.__table__  # type: ignore[attr-defined]
_dep = Deployment.__table__  # type: ignore[attr-defined]


def test_cutoffs_follow_the_settings_and_zero_disables_a_pass(settings_env: dict[str, str]) -> None:
    s = load_settings({**settings_env, "DEPLOYER_METRIC_RETENTION_DAYS": "0"})
    now = utcnow()
    cut = cutoffs(now, s)
    assert cut.output == now - timedelta(days=7) and cut.system == now - timedelta(days=30)
    assert cut.metrics is None


def test_retention_removes_exactly_what_is_older_than_each_cutoff(engine: Engine, settings: Settings) -> None:
    dep = make_deployment_row(engine)
    now = utcnow()
    ages = [1, 6, 8, 20, 29, 31, 40]  # days
    rows, n = [], 0
    for stream in ("stdout", "stderr", "system"):
        for age in ages:
            n += 1
            rows.append({"deployment_id": dep, "line_no": n, "stream": stream, "text": f"{stream} {age}",
                         "ts": now - timedelta(days=age, minutes=1)})  # fmt: skip
    metrics = [{"deployment_id": dep, "sampled_at": now - timedelta(days=age, minutes=1), "mem_used_mb": 1,
                "mem_limit_mb": 2, "cpu_pct": float(age)} for age in ages]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(_log), rows)
        conn.execute(insert(_metric), metrics)
    report = apply_retention(engine, cutoffs(now, settings), batch=2)  # small batches: several rounds
    assert report == {"output": 2 * 5, "system": 2, "metrics": 6}
    with engine.connect() as conn:
        kept = sorted(conn.execute(select(_log.c.text)).scalars())
        kept_metrics = sorted(conn.execute(select(_metric.c.cpu_pct)).scalars())
    assert kept == sorted(["stderr 1", "stderr 6", "stdout 1", "stdout 6"] + [f"system {a}" for a in (1, 6, 8, 20, 29)])
    assert kept_metrics == [1.0]


def _import_image(docker_client: Any, repository: str, tag: str, labels: dict[str, str]) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("marker")
        payload = repository.encode()  # a distinct layer per repository: no two share an image id by accident
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    changes = [f"LABEL {k}={v}" for k, v in labels.items()]
    docker_client.api.import_image_from_data(buf.getvalue(), repository=repository, tag=tag, changes=changes)


def _present(docker_client: Any, ref: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        docker_client.images.get(ref)
    except ImageNotFound:
        return False
    return True


def test_image_pruning_removes_only_our_stale_app_images_and_clears_the_row(
    engine: Engine, docker_client: Any
) -> None:
    now = utcnow()
    ours = {"deployer.managed": "true", "deployer.role": "app", "deployer.installation": "here"}
    long_stopped = make_deployment_row(engine, status="stopped", stopped_at=now - timedelta(days=9))
    recent = make_deployment_row(engine, status="crashed", stopped_at=now - timedelta(days=1))
    running = make_deployment_row(engine, status="running")
    gone = str(uuid.uuid4())
    refs = {name: (f"deployer/app-{dep}", "0123456789ab") for name, dep in
            [("long", long_stopped), ("recent", recent), ("running", running), ("gone", gone)]}  # fmt: skip
    superseded = (f"deployer/app-{recent}", "old000000000")
    foreign = (f"deployer/app-{gone}-foreign", "latest")  # our naming, but no label: not ours to touch
    # Another installation on the same engine, with an image named for one of our stale deployments.
    neighbour = (f"deployer/app-{long_stopped}", "neighbour000")
    try:
        for repo, tag in [*refs.values(), superseded]:
            _import_image(docker_client, repo, tag, ours)
        _import_image(docker_client, *foreign, {})
        _import_image(docker_client, *neighbour, {**ours, "deployer.installation": "elsewhere"})
        with engine.begin() as conn:
            for name, dep in [("long", long_stopped), ("recent", recent), ("running", running)]:
                conn.execute(update(_dep).where(_dep.c.id == dep).values(image=":".join(refs[name])))

        report = prune_images(engine, docker_client, now=now, keep_days=7, installation="here")

        mine = {":".join(r) for r in [*refs.values(), superseded]}
        assert sorted(set(report.removed) & mine) == sorted([":".join(refs["long"]), ":".join(superseded)])
        with engine.connect() as conn:
            ours = set(conn.execute(select(_dep.c.id)).scalars())
        assert {deployment_of(t) for t in report.removed} <= ours  # nothing of another database's deployments
        for name in ("recent", "running", "gone"):  # "gone": no row here, so perhaps another installation's
            assert _present(docker_client, ":".join(refs[name]))
        assert _present(docker_client, ":".join(foreign))
        assert _present(docker_client, ":".join(neighbour))
        with engine.connect() as conn:
            rows = conn.execute(select(_dep.c.id, _dep.c.image).where(_dep.c.id.in_([long_stopped, recent])))
            images = {r.id: r.image for r in rows}
        assert images == {long_stopped: None, recent: ":".join(refs["recent"])}
    finally:
        for repo, tag in [*refs.values(), superseded, foreign, neighbour]:
            if _present(docker_client, f"{repo}:{tag}"):
                docker_client.images.remove(f"{repo}:{tag}", force=True)

"""Deploy latency: created→running of deployments whose image is already built, against a floor.

The floor, measured in the same run, is a raw `docker run` of the same image with the same publishing
and limits until the first 200 from /health — everything the deployer adds is the difference.

    python bench/deploy_latency.py [N]
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).parents[1]))

from bench._stack import BenchStack, bench_stack, percentile, summary, ts
from tests.support.stack import free_port
from tests.support.zips import zip_folder

SAMPLE = Path(__file__).parents[1] / "samples" / "python-agent"


def status_times(api: object, dep: str) -> dict[str, float]:
    lines = api.get(f"/api/deployments/{dep}/logs", limit=2000).json()["lines"]  # type: ignore[attr-defined]
    out: dict[str, float] = {}
    for ln in lines:
        if ln["text"].startswith("status: "):
            out.setdefault(ln["text"].split()[1], ts(ln["ts"]).timestamp())
    return out


def deploy_once(s: BenchStack, bundle: bytes, keypair: bytes, i: int) -> tuple[float, dict[str, float], str]:
    dep = s.api.upload(bundle, keypair, name=f"latency {i}").json()["id"]
    row = s.api.wait_status(dep, "running", "failed", timeout=300)
    assert row["status"] == "running", row
    times = status_times(s.api, dep)
    return (times["running"] - times["queued"]) * 1000, times, dep


def restart_once(s: BenchStack, dep: str) -> float:
    s.api.post(f"/api/deployments/{dep}/stop")
    s.api.wait_status(dep, "stopped")
    while s.api.post(f"/api/deployments/{dep}/restart").status_code != 202:
        time.sleep(0.05)
    s.api.wait_status(dep, "running", "failed")
    times = [ln for ln in s.api.get(f"/api/deployments/{dep}/logs", limit=2000).json()["lines"]
             if ln["text"].startswith("status: ")]  # fmt: skip
    queued = [ts(ln["ts"]) for ln in times if ln["text"].startswith("status: queued")][-1]
    running = [ts(ln["ts"]) for ln in times if ln["text"].startswith("status: running")][-1]
    return (running - queued).total_seconds() * 1000


def floor_once(s: BenchStack, image: str) -> float:
    port = free_port()
    session = requests.Session()
    t0 = time.perf_counter()
    c = s.docker.containers.run(image, detach=True, ports={"5000/tcp": ("127.0.0.1", port)}, mem_limit="256m",
                                nano_cpus=1_000_000_000, read_only=True, tmpfs={"/tmp": "size=512m"},
                                environment={"ZYND_SERVER_PORT": "5000"})  # fmt: skip
    while True:
        try:
            if session.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.005)
    elapsed = (time.perf_counter() - t0) * 1000
    c.remove(force=True)
    return elapsed


def main(n: int) -> None:
    bundle = zip_folder(SAMPLE)
    keypair = (SAMPLE / "keypair.json").read_bytes()
    with bench_stack() as s:
        _, _, first = deploy_once(s, bundle, keypair, 0)  # builds the image once (and warms the cache)
        image = s.api.row(first)["image"]
        deploys, stage_sums, restarts, floors = [], {}, [], []
        for i in range(n):
            ms, times, dep = deploy_once(s, bundle, keypair, i + 1)
            deploys.append(ms)
            order = sorted(times, key=times.get)  # type: ignore[arg-type]
            for a, b in itertools.pairwise(order):
                stage_sums.setdefault(a, []).append((times[b] - times[a]) * 1000)
            s.api.post(f"/api/deployments/{dep}/stop")
        for _ in range(n):
            restarts.append(restart_once(s, first))
        for _ in range(n):
            floors.append(floor_once(s, image))
    print(summary("floor: docker run → first 200 /health", floors))
    print(summary("deploy (same bundle, build cache) created → running", deploys))
    print(summary("restart (built image reused) queued → running", restarts))
    f50 = percentile(floors, 50)
    for name, vals in (("deploy", deploys), ("restart", restarts)):
        p50 = percentile(vals, 50)
        print(f"{name}: p50 ratio to floor {p50 / f50:.2f}x, overhead {p50 - f50:.0f} ms")
    print("time per stage (p50 ms, new deploys):",
          json.dumps({k: round(percentile(v, 50)) for k, v in stage_sums.items()}))  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)

"""50 deployments submitted at once: total time to all running, against 50 raw `docker run`s in parallel.

    python bench/concurrent_deploys.py [N]
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).parents[1]))

from bench._stack import BenchStack, bench_stack, percentile
from tests.support.stack import free_port
from tests.support.zips import zip_folder

SAMPLE = Path(__file__).parents[1] / "samples" / "python-agent"


def raw_run(s: BenchStack, image: str) -> float:
    port, session, t0 = free_port(), requests.Session(), time.perf_counter()
    s.docker.containers.run(image, detach=True, ports={"5000/tcp": ("127.0.0.1", port)}, mem_limit="256m",
                                read_only=True, tmpfs={"/tmp": "size=64m"}, labels={"deployer.bench": "1"})  # fmt: skip
    while True:
        try:
            if session.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return time.perf_counter() - t0
        except requests.ConnectionError:
            time.sleep(0.01)


def main(n: int) -> None:
    bundle, keypair = zip_folder(SAMPLE), (SAMPLE / "keypair.json").read_bytes()
    with bench_stack() as s:
        warm = s.api.upload(bundle, keypair, name="warm").json()["id"]
        image = s.api.wait_status(warm, "running")["image"]
        s.api.post(f"/api/deployments/{warm}/stop")
        s.api.wait_status(warm, "stopped")

        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=n) as pool:
            ids = list(pool.map(lambda i: s.api.upload(bundle, keypair, name=f"crowd {i}").json()["id"], range(n)))
        rows = [s.api.wait_status(d, "running", "failed", timeout=900) for d in ids]
        total = time.perf_counter() - t0
        failed = [r for r in rows if r["status"] != "running"]
        ports = {r["port"] for r in rows}
        for d in ids:
            s.api.post(f"/api/deployments/{d}/stop")
        for d in ids:
            s.api.wait_status(d, "stopped")

        t1 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=n) as pool:
            each = list(pool.map(lambda _i: raw_run(s, image), range(n)))
        raw_total = time.perf_counter() - t1
        for c in s.docker.containers.list(all=True, filters={"label": "deployer.bench=1"}):
            c.remove(force=True)
    print(f"deployer: {n} submitted at once, all running after {total:.1f} s "
          f"({len(failed)} failed, {len(ports)} distinct ports)")  # fmt: skip
    print(f"floor: {n} raw docker runs in parallel, all answering /health after {raw_total:.1f} s "
          f"(p50 each {percentile(each, 50):.1f} s)")  # fmt: skip
    print(f"ratio {total / raw_total:.2f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)

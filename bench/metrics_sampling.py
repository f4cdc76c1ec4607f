"""Metrics sampling: wall time to sample N containers with the deployer's sampler (concurrent one-shot
stats, read twice a window apart) against sequential `docker stats(stream=False)`, in the same run.

    python bench/metrics_sampling.py [N]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).parents[1]))

from deployer.supervision.metrics import sample


def main(n: int) -> None:
    client = docker.from_env(timeout=600)
    cmd = ["python", "-c", "import time; time.sleep(600)"]
    labels = {"deployer.bench": "metrics"}
    started = [
        client.containers.run("deployer/agent-base:latest", cmd, detach=True, mem_limit="64m", labels=labels)
        for _ in range(n)
    ]
    try:
        ids = [c.id for c in started]
        t0 = time.perf_counter()
        ours = sample(client, ids, window=1.0)
        sampler = time.perf_counter() - t0
        t1 = time.perf_counter()
        for c in started:
            c.stats(stream=False)
        sequential = time.perf_counter() - t1
    finally:
        for c in started:
            c.remove(force=True)
    print(f"sampler: {len(ours)} of {n} containers sampled in {sampler:.2f} s (1.0 s of it the CPU window)")
    print(f"sequential docker stats(stream=False): {n} containers in {sequential:.2f} s "
          f"({sequential / n:.2f} s each)")  # fmt: skip
    print(f"ratio {sequential / sampler:.1f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)

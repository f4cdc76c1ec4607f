from __future__ import annotations

from deployer.lifecycle.containers import crash_reason
from deployer.supervision.crashes import policy_line, restart_delay, restart_limit


def test_crash_reasons_name_oom_and_the_exact_exit_code_zero_included() -> None:
    assert crash_reason(137, True, 256) == "Container OOM-killed (memory limit 256 MB)"
    assert crash_reason(0, False, 256) == "Container exited 0"
    assert crash_reason(None, False, 256) == "Container disappeared"


def test_the_restart_policy_backs_off_exponentially_and_gives_up() -> None:
    assert restart_limit("no") == 0 and restart_limit("on-failure:3") == 3
    assert [restart_delay(n) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert policy_line("on-failure:2", 0) == "restart policy on-failure:2: restarting in 1 s (1 of 2)"
    assert policy_line("on-failure:2", 2) == "restart policy on-failure:2: restarted 2 times already; left crashed"
    assert policy_line("no", 0) == "restart policy is 'no': left crashed"


def test_three_failed_probes_make_a_running_deployment_unhealthy_and_one_success_recovers_it() -> None:
    from deployer.store.states import Status
    from deployer.supervision.probes import decide

    assert decide(Status.RUNNING, 0, False).to is None
    assert decide(Status.RUNNING, 1, False).failures == 2
    d = decide(Status.RUNNING, 2, False)
    assert d.to is Status.UNHEALTHY and d.line and d.line.startswith("[UNHEALTHY]")
    assert decide(Status.UNHEALTHY, 7, False).to is None
    r = decide(Status.UNHEALTHY, 7, True)
    assert r.to is Status.RUNNING and r.failures == 0 and r.line and r.line.startswith("[RECOVERED]")
    assert decide(Status.RUNNING, 2, True) == decide(Status.RUNNING, 0, True)


def test_cpu_is_the_usage_delta_over_the_window_as_a_fraction_of_one_cpu() -> None:
    from deployer.supervision.metrics import Reading, cpu_fraction, memory_used

    assert cpu_fraction(Reading(10.0, 1_000_000_000, 0, 0), Reading(11.0, 1_500_000_000, 0, 0)) == 0.5
    assert cpu_fraction(Reading(10.0, 0, 0, 0), Reading(12.0, 4_000_000_000, 0, 0)) == 2.0
    v1 = {"memory_stats": {"usage": 100 * 2**20, "stats": {"cache": 30 * 2**20}}}
    v2 = {"memory_stats": {"usage": 100 * 2**20, "stats": {"inactive_file": 10 * 2**20}}}
    assert memory_used(v1) == 70 * 2**20 and memory_used(v2) == 90 * 2**20

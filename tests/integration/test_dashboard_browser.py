"""What a new user sees on the dashboard, in a real browser (Debian's Chromium, headless), against the
web app alone with rows written straight into its database: no workers, no images, no containers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import Engine

from deployer.settings import Settings, load_settings
from deployer.store import tokens
from deployer.store.db import make_engine, upgrade
from deployer.store.loglines import append_lines
from deployer.store.models import DeploymentMetric
from tests.integration.screens import shoot
from tests.support.browser import browser_page, log_in
from tests.support.live import LiveServer
from tests.support.rows import make_deployment_row

T0 = datetime(2026, 12, 1, 9, 30, 5, 123000, tzinfo=UTC)


@pytest.fixture
def site(tmp_path: Path, make_live_server: Callable[..., LiveServer]) -> Iterator[tuple[Settings, Engine, str]]:
    settings = load_settings({"DEPLOYER_DATA_ROOT": str(tmp_path / "data"), "DEPLOYER_WILDCARD_DOMAIN": "apps.test",
                              "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"})  # fmt: skip
    engine = make_engine(settings.database_url)
    upgrade(engine)
    server = make_live_server(settings, kick=lambda _name: None)
    yield settings, engine, server.url
    engine.dispose()


@pytest.fixture
def page(site: tuple[Settings, Engine, str]) -> Iterator[Any]:
    _, engine, url = site
    with browser_page(timezone_id="UTC") as page:
        log_in(page, url, tokens.create_token(engine, "dashboard")[1])
        yield page


def running(engine: Engine, name: str, **extra: Any) -> str:
    return make_deployment_row(engine, name=name, status="running", port=16001, container_id="c" * 64,
                               memory_mb=256, cpu_millis=500, started_at=T0, **extra)  # fmt: skip


def sample(engine: Engine, dep: str, seconds: int, cpu: float, mem_mb: float) -> None:
    with engine.begin() as conn:
        conn.execute(DeploymentMetric.__table__.insert().values(  # type: ignore[attr-defined]
            deployment_id=dep, sampled_at=T0 + timedelta(seconds=seconds), cpu_pct=cpu, mem_used_mb=mem_mb,
            mem_limit_mb=256.0))  # fmt: skip


def colour(page: Any, selector: str, prop: str, pseudo: str | None = None) -> str:
    return str(page.eval_on_selector(selector, f"(n) => getComputedStyle(n, {pseudo!r}).{prop}"
                                     if pseudo else f"(n) => getComputedStyle(n).{prop}"))  # fmt: skip


def test_a_failed_upload_hides_the_progress_bar_and_says_why(site: Any, page: Any, tmp_path: Path) -> None:
    url = site[2]
    not_a_zip = tmp_path / "project.zip"
    not_a_zip.write_bytes(b"this is not a zip file")
    page.goto(f"{url}/deploy")
    page.set_input_files("#zip", str(not_a_zip))
    page.click("#deploy-button")
    expect(page.locator("#deploy-error")).to_be_visible()
    expect(page.locator("#deploy-error")).not_to_be_empty()
    expect(page.locator("#progress")).to_be_hidden()
    assert page.eval_on_selector("#progress", "(n) => n.value") == 0
    expect(page.locator("#progress-text")).to_have_text("")
    expect(page.locator("#deploy-button")).to_be_enabled()
    assert page.evaluate("[fmtBytes(22), fmtBytes(2048), fmtBytes(3 * 1048576)]") == ["22 B", "2.0 KB", "3.0 MB"]


def test_file_inputs_look_like_the_rest_of_the_form(site: Any, page: Any) -> None:
    page.goto(f"{site[2]}/deploy")
    accent = "rgb(53, 88, 230)"
    for field in ("#zip", "#folder", "#keypair"):
        assert colour(page, field, "backgroundColor", "::file-selector-button") == accent
        assert colour(page, field, "borderTopStyle") == "solid"


def test_each_container_in_the_capacity_panel_shows_its_cpu_and_memory_as_numbers_and_bars(
    site: Any, page: Any
) -> None:
    _, engine, url = site
    dep = running(engine, "quiet agent")
    sample(engine, dep, 0, cpu=0.004, mem_mb=40.4)  # 0.8 % of half a CPU: small, but used
    page.goto(f"{url}/deployments")
    row = page.locator(f'#per-container tr[data-id="{dep}"]')
    expect(row.locator('[data-usage="cpu"]')).to_have_text("0.8% of 0.5 CPU")
    expect(row.locator('[data-usage="mem"]')).to_have_text("40 of 256 MB")
    cpu_bar = row.locator("td.cpu .bar i")
    assert cpu_bar.evaluate("(n) => n.getBoundingClientRect().width") > 0  # never an empty bar for a used CPU
    page.wait_for_function("document.querySelector('#per-container tr[data-id] td.cpu .bar i').style.width !== ''")
    expect(row.locator('[data-usage="cpu"]')).to_have_text("0.8% of 0.5 CPU")  # the live refresh agrees
    shoot(page, "capacity")


def test_the_chart_scales_to_what_was_used_and_draws_each_line_in_its_legend_colour(site: Any, page: Any) -> None:
    _, engine, url = site
    dep = running(engine, "charted agent")
    for i, (cpu, mem) in enumerate([(0.001, 20.0), (0.010, 22.0), (0.002, 30.0), (0.004, 25.0)]):
        sample(engine, dep, 30 * i, cpu=cpu, mem_mb=mem)  # memory 8 to 12 % of 256 MB, CPU 0.2 to 2 % of 0.5
    page.goto(f"{url}/d/{dep}")
    page.wait_for_selector("#chart polyline.mem")
    assert page.get_attribute("#chart", "data-top") == "20"  # the axis tops at 20 %, not 100 %
    expect(page.locator("#chart text.axis").last).to_have_text("20%")
    for series in ("mem", "cpu"):
        ys = page.eval_on_selector(f"#chart polyline.{series}",
                                   "(n) => Array.from(n.points, (p) => p.y)")  # fmt: skip
        assert max(ys) - min(ys) > 10, f"{series} is a flat line: {ys}"
        stroke = colour(page, f"#chart polyline.{series}", "stroke")
        assert stroke == colour(page, f".legend .swatch.{series}", "backgroundColor")
    assert colour(page, "#chart polyline.mem", "stroke") != colour(page, "#chart polyline.cpu", "stroke")
    shoot(page, "chart")


def test_the_error_fact_is_red_only_when_there_is_an_error(site: Any, page: Any) -> None:
    _, engine, url = site
    fine = running(engine, "fine agent")
    broken = make_deployment_row(engine, name="broken", status="failed", error_message="Container did not start")
    page.goto(f"{url}/d/{fine}")
    error = page.locator('[data-fact="error_message"]')
    expect(error).to_have_text("—")
    assert colour(page, '[data-fact="error_message"]', "color") == colour(page, '[data-fact="restart_count"]', "color")
    page.goto(f"{url}/d/{broken}")
    expect(error).to_have_text("Container did not start")
    assert colour(page, '[data-fact="error_message"]', "color") == "rgb(220, 38, 38)"


def test_log_lines_show_their_time_and_stderr_is_told_apart_without_error_red(site: Any, page: Any) -> None:
    _, engine, url = site
    dep = running(engine, "chatty agent")
    with engine.begin() as conn:
        append_lines(conn, dep, [("system", "status: running", T0), ("stdout", "listening on 5000", T0),
                                 ("stderr", '127.0.0.1 - "GET /health HTTP/1.1" 200', T0 + timedelta(seconds=1))])
    page.goto(f"{url}/d/{dep}")
    err = page.locator("#log .line.stderr")
    expect(err).to_have_count(1)
    expect(err.locator(".ts")).to_have_text("09:30:06.123")  # the reader's zone (UTC here), to the millisecond
    expect(err.locator(".tag")).to_have_text("err")
    expect(page.locator("#log .line.stdout .ts")).to_have_text("09:30:05.123")
    assert err.locator(".ts").get_attribute("title") == "2026-12-01T09:30:06.123000Z"  # the exact value on hover
    out_colour = colour(page, "#log .line.stdout .text", "color")
    assert colour(page, "#log .line.stderr .text", "color") == out_colour  # a request log is not an alarm
    assert colour(page, "#log .line.stderr .tag", "color") != colour(page, "#log .line.stdout .tag", "color")
    page.fill("#log-search", "GET /health")
    expect(page.locator("#log .line.stdout")).to_be_hidden()  # search looks at the text, not the time
    expect(err).to_be_visible()

"""Journeys in a real browser: Playwright driving Debian's Chromium (never a downloaded
browser), headless, against pytest-django's live server. Every visited page is checked with
axe-core (vendored); a failing test leaves a screenshot and the page HTML in test-results/."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "test-results"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
# Chromium's background services try to reach the internet, which is closed here.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
PHONE = {"width": 390, "height": 844}

pytestmark = pytest.mark.e2e


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    # Django's live server runs in a thread; Playwright's sync API needs this to coexist.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


class Journey:
    """One signed-in (or anonymous) browser tab with accessibility checks on every page."""

    def __init__(self, browser: Any, base_url: str, *, phone: bool = False) -> None:
        self.base_url = base_url
        self.context = browser.new_context(
            viewport=PHONE if phone else {"width": 1280, "height": 900},
            locale="zh-CN",
            timezone_id="Asia/Shanghai",
        )
        self.page = self.context.new_page()
        self.checked: set[str] = set()

    def goto(self, path: str) -> Any:
        self.page.goto(self.base_url + path)
        self.check_accessibility()
        return self.page

    def check_accessibility(self) -> None:
        """axe-core on the current page: no serious or critical violation."""
        path = self.page.url.split("?")[0]
        if path in self.checked:
            return
        self.checked.add(path)
        self.page.add_script_tag(url=self.base_url + "/static/vendor/axe-core/axe.min.js")
        violations = self.page.evaluate(
            """async () => {
                const result = await axe.run(document, {resultTypes: ['violations']});
                return result.violations
                    .filter(v => ['serious', 'critical'].includes(v.impact))
                    .map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '));
            }"""
        )
        assert violations == [], f"{self.page.url}: {violations}"

    def login(self, username: str, password: str) -> None:
        self.goto("/accounts/login/")
        self.page.get_by_label("用户名").fill(username)
        self.page.get_by_label("密码").fill(password)
        self.page.get_by_role("button", name="登录").click()
        self.page.wait_for_load_state()
        self.check_accessibility()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def journey(browser: Any, live_server: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    opened: list[Journey] = []

    def open_journey(*, phone: bool = False) -> Journey:
        opened.append(Journey(browser, live_server.url, phone=phone))
        return opened[-1]

    yield open_journey
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        RESULTS.mkdir(exist_ok=True)
        for index, item in enumerate(opened):
            stem = RESULTS / f"{request.node.name}-{index}"
            try:
                item.page.screenshot(path=str(stem.with_suffix(".png")), full_page=True)
                stem.with_suffix(".html").write_text(item.page.content(), encoding="utf-8")
            except Exception:  # noqa: BLE001 - a closed page must not hide the real failure
                pass
    for item in opened:
        item.close()


@pytest.fixture(autouse=True)
def seeded_rows(transactional_db: None) -> None:
    """Each journey starts with the rows migrations seed (role groups and their permissions,
    the global pool policy): the journey before it emptied every table."""
    from crm.roles import sync_role_groups
    from ownership.selectors import global_policy

    sync_role_groups()
    global_policy()

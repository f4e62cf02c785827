"""Browser tests of the dashboard (issue #7): Debian's Chromium driven by Playwright for
Python against a `vitalsd demo`-like clinic on a loopback port.

No browser is downloaded: Playwright launches /usr/bin/chromium (the Debian package,
installed by `make test` when missing). One clinic server per test module (started at
high simulated speed), one browser per run, a fresh browser context per tablet.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    StorageState,
    ViewportSize,
    sync_playwright,
)

from tests.browser.clinic_server import PASSWORD, ClinicServer

CHROMIUM: Final = "/usr/bin/chromium"
CHROMIUM_ARGS: Final = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The tablet sizes: landscape and portrait.
LANDSCAPE: Final = ViewportSize(width=1280, height=800)
PORTRAIT: Final = ViewportSize(width=800, height=1280)
SCREENSHOTS: Final = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
# Simulated seconds per real second: a reading every 5 simulated minutes per chair is one
# every 5 s, and a 20-30 minute check window passes in 30 s.
SPEED: Final = 60.0
# What a page may log while the network is down on purpose (the stream-cut test).
NETWORK_ERRORS: Final = re.compile(
    r"WebSocket connection to .* failed|Failed to load resource: net::ERR_", re.IGNORECASE
)


# Module scope, not session: Playwright's sync API keeps an event loop running in this
# thread while it is open, and every later async test would then fail to start its own.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (make test does)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def clinic_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClinicServer]:
    server = ClinicServer(tmp_path_factory.mktemp("clinic"), speed=SPEED)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Tablet:
    """One tablet: its own browser context (cookies, storage) and page, with every
    console error and uncaught exception kept for the test to check."""

    def __init__(self, context: BrowserContext, base_url: str) -> None:
        self.context = context
        self.base_url = base_url
        self.page: Page = context.new_page()
        self.errors: list[str] = []
        self.allow_network_errors = False
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def unexpected_errors(self) -> list[str]:
        if not self.allow_network_errors:
            return list(self.errors)
        return [e for e in self.errors if not NETWORK_ERRORS.search(e)]

    def sign_in(self, username: str = "nurse") -> Page:
        """Sign in through the login form, as a nurse at a new tablet does."""
        page = self.page
        page.goto(self.base_url)
        page.get_by_label("User name").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        return self.wait_until_live()

    def open(self, route: str = "") -> Page:
        """Open the dashboard in a context that is signed in already."""
        self.page.goto(self.base_url + route)
        return self.wait_until_live()

    def wait_until_live(self) -> Page:
        self.page.locator("#connection[data-status='live']").wait_for()
        self.page.locator(
            ".tile[data-occupied='true'], [data-view]:not([data-view='ward'])"
        ).first.wait_for()
        return self.page

    def show(self, route: str) -> Page:
        """Go to a view by its URL fragment (#/alerts, #/session/3, ...)."""
        self.page.evaluate("route => { location.hash = route; }", route)
        return self.page

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=path)
        return path


TabletFactory = Callable[..., Tablet]


@pytest.fixture(scope="module")
def signed_in(browser: Browser, clinic_server: ClinicServer) -> Callable[[str], StorageState]:
    """The cookie and storage of a tablet signed in as a user, made once per module
    through the login form (a test then opens the ward without signing in again)."""
    states: dict[str, StorageState] = {}

    def state_of(username: str) -> StorageState:
        if username not in states:
            context = browser.new_context(viewport=LANDSCAPE)
            try:
                Tablet(context, clinic_server.url).sign_in(username)
                states[username] = context.storage_state()
            finally:
                context.close()
        return states[username]

    return state_of


@pytest.fixture
def tablets(
    browser: Browser, clinic_server: ClinicServer, signed_in: Callable[[str], StorageState]
) -> Iterator[TabletFactory]:
    """`tablets(user=None, viewport=LANDSCAPE, base_url=None)` opens a tablet (signed in
    as `user` if given); each is closed after the test, which fails if a page logged a
    console error it did not expect."""
    opened: list[Tablet] = []

    def open_tablet(
        user: str | None = None,
        viewport: ViewportSize = LANDSCAPE,
        base_url: str | None = None,
    ) -> Tablet:
        context = browser.new_context(
            viewport=viewport,
            service_workers="block",
            storage_state=signed_in(user) if user else None,
        )
        tablet = Tablet(context, base_url or clinic_server.url)
        opened.append(tablet)
        return tablet

    yield open_tablet
    errors = {i: t.unexpected_errors() for i, t in enumerate(opened)}
    for tablet in opened:
        tablet.context.close()
    logged = {i: e for i, e in errors.items() if e}
    assert not logged, f"console errors on tablets: {logged}"

"""The web front end in headless Chromium against ``myevents serve`` on embedded SQLite.

An organizer creates a location and an event; users book, see the seats go down, sell it out, and cancel.
Chromium is Debian's (``apt-get install chromium``), driven by Playwright; without it the test is skipped, or
fails when ``PUBSUBKIT_REQUIRE_SERVERS=1``. Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from myevents_procs import Proc, free_port, myevents_command, wait_ready
from myevents_support import TEST_SECRET

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts" / "browser"
SECRET_ENV = {"MYEVENTS_JWT_SECRET": TEST_SECRET}


def _unavailable(why: str) -> None:
    if os.environ.get("PUBSUBKIT_REQUIRE_SERVERS") == "1":
        pytest.fail(f"{why} (PUBSUBKIT_REQUIRE_SERVERS=1 requires it)")
    pytest.skip(why)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path is not None:
            return path
    _unavailable("Chromium is not installed: apt-get install -y --no-install-recommends chromium")
    raise AssertionError("unreachable")


@pytest.fixture
def browser() -> Iterator[Any]:
    executable = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed: uv sync --group browser (or pip install playwright)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def services(tmp_path: Path) -> Iterator[dict[str, str]]:
    """``myevents serve`` on free ports, and tokens of its secret."""
    ev_port, bk_port = free_port(), free_port()
    data = str(tmp_path / "data")
    serve = Proc(
        tmp_path,
        "serve",
        "serve",
        "--event-bind",
        f"127.0.0.1:{ev_port}",
        "--booking-bind",
        f"127.0.0.1:{bk_port}",
        "--data-dir",
        data,
        env=SECRET_ENV,
    )
    try:
        ev_url, bk_url = f"http://127.0.0.1:{ev_port}", f"http://127.0.0.1:{bk_port}"
        wait_ready(ev_url, serve)
        wait_ready(bk_url, serve)

        def token(*args: str) -> str:
            cmd = [*myevents_command(), "token", *args, "--data-dir", data]
            return subprocess.run(cmd, check=True, capture_output=True, text=True, env=serve.env).stdout.strip()

        yield {
            "events": ev_url,
            "organizer": token("organizer"),
            "ann": token("user", "ann"),
            "bob": token("user", "bob"),
        }
    finally:
        if serve.popen.poll() is None:
            serve.stop(timeout=60)


def test_organize_book_sell_out_and_cancel(browser: Any, services: dict[str, str]) -> None:
    from playwright.sync_api import Page, expect

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    page: Page = browser.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(10_000)
    status = page.locator("#status")

    def shot(name: str) -> None:
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def sign_in(who: str) -> None:
        page.goto(services["events"] + "/ui/#/signin")
        expect(page.get_by_text("myevents token user ann")).to_be_visible()
        page.get_by_label("Token").fill(services[who])
        page.get_by_role("button", name="Sign in", exact=True).click()
        role = "organizer" if who == "organizer" else "user"
        expect(page.locator("#who")).to_have_text(f"{who} ({role})")

    # / leads to the front end.
    page.goto(services["events"] + "/")
    assert page.url.endswith("/ui/")
    expect(page.get_by_role("heading", name="Events")).to_be_visible()
    expect(page.get_by_text("No events yet.")).to_be_visible()

    # The organizer creates a location with a hall of three seats, then an event there.
    sign_in("organizer")
    page.get_by_role("link", name="Locations").click()
    page.get_by_role("link", name="New location").click()
    page.get_by_label("Name", exact=True).fill("Club")
    page.get_by_label("Address").fill("1 Main Street")
    page.get_by_label("Hall name").fill("floor")
    page.get_by_label("Capacity").fill("3")
    page.get_by_role("button", name="Create location").click()
    expect(status).to_have_text("Saved the location Club.")
    expect(page.get_by_role("link", name="Club")).to_be_visible()
    shot("1-locations")

    page.get_by_role("link", name="Club").click()
    expect(page.get_by_label("Name", exact=True)).to_have_value("Club")
    expect(page.get_by_label("Capacity")).to_have_value("3")
    page.get_by_label("Country").fill("Ireland")
    page.get_by_role("button", name="Save location").click()
    expect(status).to_have_text("Saved the location Club.")

    # A location made by mistake is cancelled (two clicks) and leaves the list.
    page.get_by_role("link", name="New location").click()
    page.get_by_label("Name", exact=True).fill("Typo Hall")
    page.get_by_label("Hall name").fill("main")
    page.get_by_role("button", name="Create location").click()
    expect(status).to_have_text("Saved the location Typo Hall.")
    page.get_by_role("link", name="Typo Hall").click()
    page.get_by_role("button", name="Cancel location").click()
    expect(status).to_contain_text("click again to confirm")
    page.get_by_role("button", name="Yes, cancel Typo Hall").click()
    expect(status).to_have_text("Cancelled the location Typo Hall.")
    expect(page.get_by_role("link", name="Club")).to_be_visible()
    expect(page.get_by_role("link", name="Typo Hall")).to_have_count(0)

    page.get_by_role("link", name="New event").click()
    page.get_by_label("Name", exact=True).fill("Gig draft")
    page.get_by_label("Location").select_option(label="Club")
    page.get_by_role("button", name="Create event").click()
    expect(status).to_have_text("Saved the event Gig draft.")
    expect(page.get_by_role("heading", name="Gig draft")).to_be_visible()
    expect(page.get_by_text("Club, 1 Main Street, Ireland")).to_be_visible()
    # An organizer's mistake is answered with the service's problem detail; then the event is renamed.
    page.goto(services["events"] + "/ui/#/")
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Ends").fill("2001-01-01T10:00")
    page.get_by_role("button", name="Save event").click()
    expect(status).to_have_text("The event was not saved.")
    expect(page.get_by_role("alert")).to_contain_text("EndDate")
    page.get_by_label("Ends").fill("2099-01-01T10:00")
    page.get_by_label("Name", exact=True).fill("Gig")
    page.get_by_role("button", name="Save event").click()
    expect(status).to_have_text("Saved the event Gig.")
    expect(page.get_by_role("heading", name="Gig")).to_be_visible()

    # ann sees it once the booking service heard of it, and books two seats.
    sign_in("ann")
    seats = page.locator("[data-event] .seats")
    deadline = time.monotonic() + 20
    while True:
        page.goto(services["events"] + "/ui/#/")
        page.reload()
        expect(page.get_by_role("link", name="Gig", exact=True)).to_be_visible()
        if seats.text_content() == "3 of 3 left" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    expect(seats).to_have_text("3 of 3 left")
    shot("2-events")
    page.get_by_role("link", name="Book now: Gig").click()
    page.get_by_label("Seats (1 to 3)").fill("2")
    page.get_by_role("button", name="Book", exact=True).click()
    expect(status).to_have_text("Booked 2 seats for Gig.")
    expect(page.locator("#seats")).to_have_text("1 of 3 left")
    shot("3-booked")

    # bob asks for more than is left (past the form's own limit): the service's problem detail is shown.
    sign_in("bob")
    page.goto(services["events"] + "/ui/#/")
    expect(seats).to_have_text("1 of 3 left")
    page.get_by_role("link", name="Book now: Gig").click()
    field = page.get_by_label("Seats (1 to 1)")
    field.evaluate("input => input.removeAttribute('max')")
    field.fill("2")
    page.get_by_role("button", name="Book", exact=True).click()
    expect(status).to_have_text("The booking failed.")
    expect(page.get_by_role("alert")).to_contain_text(re.compile("seat", re.IGNORECASE))
    shot("4-problem")

    # bob takes the last seat: sold out, for everyone.
    field.fill("1")
    page.get_by_role("button", name="Book", exact=True).click()
    expect(status).to_have_text("Booked 1 seat for Gig.")
    expect(page.locator("#seats")).to_have_text("sold out")
    expect(page.get_by_text("Sold out.")).to_be_visible()
    page.goto(services["events"] + "/ui/#/")
    expect(seats).to_have_text("sold out")
    expect(page.get_by_role("link", name="Book now: Gig")).to_have_count(0)
    shot("5-sold-out")

    # ann cancels her booking: two seats are free again.
    sign_in("ann")
    page.get_by_role("link", name="My bookings").click()
    row = page.locator("tr[data-booking]")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Gig")
    row.get_by_role("button", name="Cancel").click()
    expect(status).to_have_text("Cancelled the booking of 2 seats.")
    expect(row).to_contain_text("cancelled")
    shot("6-cancelled")
    page.goto(services["events"] + "/ui/#/")
    expect(seats).to_have_text("2 of 3 left")

    # On a phone's screen.
    page.set_viewport_size({"width": 390, "height": 844})
    expect(page.get_by_role("link", name="Book now: Gig")).to_be_visible()
    shot("7-phone")
    assert errors == []

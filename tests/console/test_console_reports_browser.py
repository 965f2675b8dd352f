"""The statistics page in a real browser (Debian's headless Chromium) against the hub's app serving a
seeded week of as-run rows (tests/support/statistics_week.py): reached from the menu, in
Vietnamese, its chart drawn from the page's own figures, the CSV link downloading the API's file
with the session alone, and the page fitting a phone's width. Screenshots land in
test-artifacts/console/<test>/."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest

from hub.api import create_app
from tests.support.accounts import make_user
from tests.support.console import PASSWORD, PHONE, ServerThread, sign_in
from tests.support.statistics_week import EXPECTED, MONDAY, SUNDAY, seed

pytestmark = pytest.mark.slow

READER = "thong-ke-tan-an"  # a viewer of district 794 (Phường 1 and Phường 2)
WEEK = f"/console/reports?area=794&period=custom&from={MONDAY}&to={SUNDAY}"


@pytest.fixture
def served(hub: Any) -> Iterator[str]:
    seed(hub)
    make_user(hub, READER, ["viewer"], ["794"], password=PASSWORD)
    server = ServerThread(create_app(hub))
    try:
        yield server.url
    finally:
        server.stop()


def test_the_statistics_page_draws_its_chart_and_downloads_the_csv(served: str, page: Any, shots: Any) -> None:
    sign_in(page, served, READER)
    page.click("nav.menu >> text=Thống kê")
    assert page.inner_text("h1") == "Thống kê"
    assert page.get_attribute("html", "lang") == "vi"
    assert page.locator("#period option:checked").inner_text() == "Tuần này"
    page.goto(served + WEEK)
    assert page.inner_text("h1").startswith("Thống kê · ")
    assert page.inner_text("#statistics thead").split("\t")[:3] == ["Địa bàn", "Số bản tin", "Số phút phát"]
    total = page.locator("#statistics tr.total")
    assert total.get_attribute("data-area") == "794"
    assert total.locator("[data-key=minutes_broadcast]").inner_text() == "48"
    page.wait_for_selector("#minutes-chart canvas")
    assert page.evaluate("document.querySelector('#minutes-chart').uplot.data[1]") == [
        EXPECTED["27694"]["minutes_broadcast"], EXPECTED["27697"]["minutes_broadcast"]]
    shots.take(page, "statistics-week")

    with page.expect_download() as caught:
        page.click("#export-csv")
    download = caught.value
    assert download.suggested_filename == f"thong-ke-794-{MONDAY}-{SUNDAY}.csv"
    rows = {r["Mã địa bàn"]: r for r in csv.DictReader(io.StringIO(
        open(download.path(), encoding="utf-8-sig").read()))}
    assert float(rows["794"]["Số phút phát"]) == EXPECTED["794"]["minutes_broadcast"]

    page.click("#to-as-run")
    assert page.inner_text("h1").startswith("Nhật ký phát")
    page.click("#to-statistics")
    assert page.inner_text("h1").startswith("Thống kê")


def test_the_statistics_page_fits_a_phone(served: str, browser: Any, shots: Any) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        sign_in(page, served, READER)
        page.goto(served + WEEK)
        page.wait_for_selector("#minutes-chart canvas")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the statistics page is {width}px wide on a {PHONE['width']}px screen"
        shots.take(page, "phone-statistics")
    finally:
        context.close()

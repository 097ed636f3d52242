"""The example upload page in a real browser (Chromium through Playwright):
Uppy's Dashboard sends files over tus to the live server, which streams them
into S3."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse

from rindle_tus.models import State, TusSession

from .conftest import S3, MiB, payload, service_unavailable, sha256

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
BUNDLE = ROOT / "example_project" / "static" / "example" / "upload.js"
CHROMIUM = os.environ.get("RINDLE_TUS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
FILE_INPUT = "input.uppy-Dashboard-input[name='files[]']:not([webkitdirectory])"
ADMIN_PASSWORD = "browser-test-password"
UPLOAD_BUTTON = ".uppy-StatusBar-actionBtn--upload"
# Long enough for any sane machine; the uploads here take seconds.
UPLOAD_TIMEOUT_MS = 180_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        service_unavailable("Playwright is not installed: pip install playwright")
    if not os.access(CHROMIUM, os.X_OK):
        service_unavailable(f"Chromium not found at {CHROMIUM}: apt-get install chromium")
    if not BUNDLE.exists():
        service_unavailable(f"the upload page is not built ({BUNDLE}): run scripts/_bootstrap.sh")
    # Playwright's sync API keeps an asyncio loop on this thread, which makes
    # Django refuse ORM calls here; nothing in these tests is async.
    allow = pytest.MonkeyPatch()
    allow.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        allow.undo()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    yield page
    # The screenshot is the artifact a reader looks at when the test fails, too.
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def write_file(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def add_and_upload(page: Any, path: Path) -> None:
    page.locator(FILE_INPUT).first.set_input_files(str(path))
    page.locator(UPLOAD_BUTTON).click()


def wait_for_batch(page: Any, outcome: str) -> None:
    page.wait_for_selector(f"body[data-last-batch='{outcome}']", timeout=UPLOAD_TIMEOUT_MS)


def progress(page: Any) -> str | None:
    return page.locator(".uppy-StatusBar [role=progressbar]").get_attribute("aria-valuenow")


def settled_session() -> TusSession:
    """The one session, once no request holds it: the server has finished
    with the interrupted PATCH and committed what it received."""
    deadline = time.monotonic() + UPLOAD_TIMEOUT_MS / 1000
    while True:
        session = TusSession.objects.get()
        if not session.lease_token or time.monotonic() > deadline:
            return session
        time.sleep(0.1)


def test_page_uploads_a_file_of_several_parts_into_s3_and_the_admin_shows_it(
    live_tus: str, live_server: Any, s3: S3, page: Any, tmp_path: Path, django_user_model: Any
) -> None:
    data = payload(12 * MiB, seed=21)
    path = write_file(tmp_path, "twelve-mib.bin", data)
    page.goto(f"{live_server.url}/")
    add_and_upload(page, path)
    wait_for_batch(page, "complete")
    assert progress(page) == "100"
    assert page.locator(".uppy-StatusBar").get_attribute("class").split().count("is-complete") == 1
    # The list under the uploader is refreshed on completion and links the object.
    page.locator("#finished li", has_text="twelve-mib.bin").wait_for()

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "upload-page.png"), full_page=True)

    session = TusSession.objects.get()
    assert session.state == State.COMPLETED
    assert session.filename == "twelve-mib.bin"
    assert len(session.parts) == 3
    assert s3.sha256(session.key) == sha256(data)

    # The operator sees it in the admin.
    django_user_model.objects.create_superuser("operator", "operator@example.com", ADMIN_PASSWORD)
    page.goto(f"{live_server.url}/admin/rindle_tus/tussession/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("input[type=submit]")
    row = page.locator("#result_list tbody tr", has_text="twelve-mib.bin")
    row.wait_for()
    assert "completed" in row.inner_text().lower()
    change_url = reverse("admin:rindle_tus_tussession_change", args=[quote(session.pk)])
    page.locator(f"#result_list a[href='{change_url}']").click()
    page.wait_for_url(f"**{change_url}")
    assert session.pk in page.locator("#content").inner_text()


def test_page_uploads_several_files_at_once(live_tus: str, live_server: Any, s3: S3, page: Any,
                                            tmp_path: Path) -> None:
    files = {name: payload(size, seed=seed) for name, size, seed in
             (("one.bin", MiB + 1, 31), ("two.bin", 6 * MiB, 32), ("three.bin", 0, 33))}
    paths = [str(write_file(tmp_path, name, data)) for name, data in files.items()]
    page.goto(f"{live_server.url}/")
    page.locator(FILE_INPUT).first.set_input_files(paths)
    page.locator(UPLOAD_BUTTON).click()
    wait_for_batch(page, "complete")
    for name in files:
        page.locator("#finished li", has_text=name).wait_for()
    sessions = {session.filename: session for session in TusSession.objects.all()}
    assert sorted(sessions) == sorted(files)
    for name, data in files.items():
        assert sessions[name].state == State.COMPLETED
        assert s3.sha256(sessions[name].key) == sha256(data)


def test_page_shows_the_servers_refusal(live_tus: str, live_server: Any, settings: Any, page: Any,
                                        tmp_path: Path) -> None:
    settings.RINDLE_TUS_MAX_SIZE = MiB
    path = write_file(tmp_path, "too-big.bin", payload(2 * MiB, seed=22))
    page.goto(f"{live_server.url}/")
    add_and_upload(page, path)
    wait_for_batch(page, "failed")
    message = page.locator("#upload-message")
    assert message.is_visible()
    assert message.inner_text().startswith("too-big.bin was refused: too_large: Upload-Length 2097152 is larger")
    assert not TusSession.objects.exists()


def throttle(page: Any, upload_bytes_per_second: int) -> Any:
    """A slow uplink (-1 lifts it), so that the test can act in the middle of an upload."""
    network = page.context.new_cdp_session(page)
    network.send("Network.enable")
    network.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": upload_bytes_per_second},
    )
    return network


def wait_for_progress(page: Any, percent: int) -> None:
    page.wait_for_function(
        "percent => Number(document.querySelector('.uppy-StatusBar [role=progressbar]')"
        "?.getAttribute('aria-valuenow')) >= percent",
        arg=percent,
        timeout=UPLOAD_TIMEOUT_MS,
    )


def test_page_pauses_and_resumes_an_upload(live_tus: str, live_server: Any, s3: S3, page: Any,
                                           tmp_path: Path) -> None:
    data = payload(12 * MiB, seed=24)
    path = write_file(tmp_path, "paused.bin", data)
    page.goto(f"{live_server.url}/")
    network = throttle(page, 2 * MiB)
    add_and_upload(page, path)
    wait_for_progress(page, 30)
    page.get_by_role("button", name="Pause", exact=True).click()
    paused = settled_session()
    assert 0 < paused.offset < len(data)
    assert paused.state == State.RECEIVING

    network.detach()
    throttle(page, -1)
    page.get_by_role("button", name="Resume", exact=True).click()
    wait_for_batch(page, "complete")
    session = TusSession.objects.get()
    assert session.state == State.COMPLETED
    assert s3.sha256(session.key) == sha256(data)


def test_page_resumes_an_upload_after_a_reload(live_tus: str, live_server: Any, s3: S3, page: Any,
                                              tmp_path: Path) -> None:
    data = payload(12 * MiB, seed=23)
    path = write_file(tmp_path, "resumed.bin", data)
    page.goto(f"{live_server.url}/")
    network = throttle(page, 2 * MiB)
    add_and_upload(page, path)
    wait_for_progress(page, 30)
    page.reload()
    network.detach()
    throttle(page, -1)
    interrupted = settled_session()
    assert 0 < interrupted.offset < len(data)

    # Adding the same file again finds the unfinished upload by its fingerprint.
    add_and_upload(page, path)
    wait_for_batch(page, "complete")
    session = TusSession.objects.get()
    assert session.pk == interrupted.pk
    assert session.state == State.COMPLETED
    assert s3.sha256(session.key) == sha256(data)


def test_the_admin_list_fits_a_laptop_screen_with_whole_ids(live_server: Any, browser: Any, db: None,
                                                           django_user_model: Any, settings: Any) -> None:
    """At 1280 px, the session list with the filter sidebar shows every column
    without scrolling sideways, and every upload's whole id."""
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    sessions = [
        TusSession.objects.create(
            part_size=8 * MiB, length=None if i == 1 else 5 * 1024**4 - i, offset=3 * 1024**3 + i,
            state=[State.RECEIVING, State.COMPLETED, State.FAILED, State.TERMINATED][i % 4],
            metadata={"filename": f"quarterly-report-of-the-northern-region-{i}-final-version-v2.pdf"},
            key=f"tus/{i}", tail_node=f"web-node-{i}.eu-central-1.internal.example.com",
            created_at=now - timedelta(days=400 + i, hours=5), updated_at=now - timedelta(days=3, hours=7),
            expires_at=now + timedelta(hours=23, minutes=59),
        )
        for i in range(6)
    ]
    django_user_model.objects.create_superuser("operator", "operator@example.com", ADMIN_PASSWORD)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/admin/rindle_tus/tussession/")
        page.fill("#id_username", "operator")
        page.fill("#id_password", ADMIN_PASSWORD)
        page.click("input[type=submit]")
        page.locator("#result_list").wait_for()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "admin-list-1280.png"), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the page scrolls sideways by {overflow} px"
        rights = page.eval_on_selector_all(
            "#result_list thead th", "ths => ths.map(th => [th.innerText.trim(), th.getBoundingClientRect().right])"
        )
        assert [name for name, right in rights if right > 1280] == [], rights
        text = page.locator("#result_list").inner_text()
        assert [s.pk for s in sessions if s.pk not in text] == []
    finally:
        context.close()

"""The web page in a real headless Chromium (Debian chromium + playwright) against real uvicorn on
loopback, over a library the real pipeline processed.

Screenshots go to a temporary folder; set MUSIC_SCREENSHOTS=docs/screenshots to refresh the README's."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import psycopg
import pytest
import uvicorn

from music_api.main import create_app
from music_api.signed_urls import UrlSigner
from music_core.bucket_cors import cors_document, get_bucket_cors, put_bucket_cors
from music_core.cache_generation import bump_generation
from music_core.embedded import ServiceEndpoints
from music_core.ingest import register_inbox_object, register_local_file
from music_core.lyrics.lrc import parse_lrc
from music_core.naming import portable_name
from music_core.passwords import hash_password
from music_core.retention.options import RemovalOptions
from music_core.retention.removal import execute_removals, plan_track_removals
from music_core.storage import ObjectStore
from music_pipeline import definitions
from music_pipeline.oneshot import process_paths
from tests import media
from tests.conftest import APP_TABLES, free_port
from tests.test_api import api_settings, flush_cache

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required", "--mute-audio"]  # fmt: skip
HOSTILE_NAME = "<img src=x onerror=window.__pwned=1>.flac"
HOSTILE_LYRICS = (
    'And so, my fellow Americans <script>window.__pwned = "script"</script>\n'
    "ask not what your country can do for you <img src=x onerror=\"window.__pwned='img'\">\n"
    "ask what you can do for your country\n"
)
LONG_SECONDS, LONG_RATE = 600, 22050  # a 26 MB WAV: far more than Chromium buffers before a seek
USERS = {"ada": ("admin", "pw-admin-123"), "rita": ("reader", "pw-reader-123")}

browser_needed = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="make browser installs chromium")


class RecordingApp:
    """ASGI wrapper that records the path, Range header and status of every request."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.log: list[dict[str, Any]] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        entry = {"path": scope["path"], "method": scope["method"], "range": headers.get("range"), "status": None,
                 "content_range": None}  # fmt: skip
        self.log.append(entry)

        async def record(message: dict) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
                for k, v in message.get("headers", []):
                    if k.decode().lower() == "content-range":
                        entry["content_range"] = v.decode()
            await send(message)

        return await self.app(scope, receive, record)


class LiveServer:
    """Real uvicorn on a free loopback port, in a thread."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="uvicorn-web-test")

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture(scope="module")
def library(services: ServiceEndpoints, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A speech with hostile lyrics and a hostile name, a second speech (both through every stage),
    and a long tone that is only registered (for seeking)."""
    with psycopg.connect(services.database_url) as conn:
        conn.execute(f"TRUNCATE {APP_TABLES} CASCADE")  # noqa: S608 - fixed table list
    store = ObjectStore(services.s3_endpoint, services.s3_access_key, services.s3_secret_key,
                        bucket=f"web-{uuid.uuid4().hex[:10]}")  # fmt: skip
    store.ensure_bucket()
    folder = tmp_path_factory.mktemp("web-library")
    song = media.encode(folder / HOSTILE_NAME)
    song.with_suffix(".txt").write_text(HOSTILE_LYRICS)
    other = folder / "librivox_0870.wav"
    shutil.copy(media.DEMO / "librivox_0870.wav", other)
    settings = api_settings(services, store.bucket)
    rows = process_paths([str(song), str(other)], store=store, database_url=services.database_url,
                         instance=dg.DagsterInstance.ephemeral(), resources=definitions.build_resources(settings),
                         batch=10)  # fmt: skip
    by_name = {Path(r["file"]).name: r for r in rows}
    assert by_name[HOSTILE_NAME]["lyrics_source"] == "sidecar", rows
    long_wav = folder / "long tone.wav"
    media.ffmpeg("-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={LONG_RATE}:duration={LONG_SECONDS}",
                 "-ac", "1", "-c:a", "pcm_s16le", str(long_wav))  # fmt: skip
    long_id = register_local_file(store, services.database_url, long_wav, long_wav.name).track_id
    return {"store": store, "database_url": services.database_url, "song": song, "hostile": by_name[HOSTILE_NAME]["track_id"],
            "other": by_name["librivox_0870.wav"]["track_id"], "long": long_id, "long_path": long_wav}  # fmt: skip


@pytest.fixture(scope="module")
def live(services: ServiceEndpoints, library: dict[str, Any]) -> Iterator[tuple[LiveServer, RecordingApp]]:
    flush_cache(services)
    users = [f"{name}:{role}:{hash_password(pw)}" for name, (role, pw) in USERS.items()]
    settings = api_settings(services, library["store"].bucket, api_users=users, rate_limit_per_minute=100_000,
                            secret_key="web-test-secret-key-0123456789")  # fmt: skip
    app = RecordingApp(create_app(settings, warm_up=False))
    with LiveServer(app) as server:
        put_bucket_cors(library["store"], [server.url])  # the page's origin may PUT to presigned URLs
        yield server, app


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any, live: tuple[LiveServer, RecordingApp]) -> Iterator[Any]:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.goto(live[0].url + "/")
    yield pg
    context.close()
    assert errors == [], errors  # no script error on the page during the test


def shots(tmp_path: Path) -> Path:
    target = Path(os.environ.get("MUSIC_SCREENSHOTS", tmp_path))
    target.mkdir(parents=True, exist_ok=True)
    return target


def log_in(page: Any, user: str = "ada") -> None:
    page.fill("#login-user", user)
    page.fill("#login-password", USERS[user][1])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#library tbody tr")


def wait_js(page: Any, expression: str, timeout: int = 20_000) -> None:
    """Poll an expression. (Playwright's wait_for_function evaluates strings inside the page, which
    the page's Content-Security-Policy rightly forbids; page.evaluate goes through DevTools.)"""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            status = page.evaluate(
                "[...document.querySelectorAll('.status, #page-info')].map(e => e.textContent)"
            )
            raise AssertionError(f"timed out waiting for {expression}; page says {status}")
        time.sleep(0.05)


def auth(user: str = "ada") -> tuple[str, str]:
    return user, USERS[user][1]


# --- without a browser: signed URLs, presigning, CSP -------------------------------------------


def test_url_signer() -> None:
    signer = UrlSigner(b"k" * 32, ttl_seconds=60)
    expires, sig = signer.sign("a" * 64, "original", now=1000)
    assert expires == 1060 and signer.verify("a" * 64, "original", expires, sig, now=1000)
    assert not signer.verify("a" * 64, "converted", expires, sig, now=1000)  # another version
    assert not signer.verify("b" * 64, "original", expires, sig, now=1000)  # another track
    assert not signer.verify("a" * 64, "original", expires, sig, now=1061)  # expired
    assert not signer.verify("a" * 64, "original", expires + 1, sig, now=1000)  # expiry moved
    assert not UrlSigner(b"j" * 32, 60).verify("a" * 64, "original", expires, sig, now=1000)  # other key
    far, far_sig = UrlSigner(b"k" * 32, ttl_seconds=10**6).sign("a" * 64, "original", now=1000)
    assert not signer.verify("a" * 64, "original", far, far_sig, now=1000)  # minted too far ahead


def test_signed_stream_urls(live: tuple[LiveServer, RecordingApp], library: dict[str, Any]) -> None:
    base = live[0].url
    track = library["hostile"]
    with httpx.Client(base_url=base) as c:
        assert c.get(f"/tracks/{track}/audio-url").status_code == 401
        signed = c.get(f"/tracks/{track}/audio-url", auth=auth("rita")).json()
        assert signed["expires"] > time.time() + 3000
        part = c.get(signed["url"], headers={"Range": "bytes=0-3"})
        assert part.status_code == 206 and part.content == b"fLaC"
        assert c.head(signed["url"]).headers["content-length"] == str(library["song"].stat().st_size)
        tampered = signed["url"][:-1] + ("0" if signed["url"][-1] != "0" else "1")
        assert c.get(tampered).status_code == 403
        other_track = signed["url"].replace(track, library["other"])
        assert c.get(other_track).status_code == 403
        other_version = signed["url"].replace("version=original", "version=converted")
        assert c.get(other_version).status_code == 403
        assert c.get(f"/stream/{track}?expires=1&signature={'0' * 64}").status_code == 403
        assert c.get(f"/stream/{track}?expires=x&signature=y").status_code == 422


def test_presign_is_admin_only_and_names_are_safe(
    live: tuple[LiveServer, RecordingApp], services: ServiceEndpoints
) -> None:
    files = {"files": [{"name": "../../etc/passwd", "size": 10}, {"name": "Rock/a\x00b.mp3", "size": 5},
                       {"name": "huge.wav", "size": 10**15}]}  # fmt: skip
    with httpx.Client(base_url=live[0].url) as c:
        assert c.post("/uploads/presign", json=files, auth=auth("rita")).status_code == 403
        assert c.post("/uploads/presign", json=files).status_code == 401
        assert c.post("/uploads/presign", json={"files": []}, auth=auth("ada")).status_code == 422
        items = c.post("/uploads/presign", json=files, auth=auth("ada")).json()["items"]
    assert [i["key"] for i in items] == ["inbox/__/__/etc/passwd", "inbox/Rock/ab.mp3", None]
    assert "larger than the limit" in items[2]["error"]
    assert items[0]["url"].startswith(f"http://{services.s3_endpoint}/")
    assert "X-Amz-Signature=" in items[0]["url"]


def test_page_is_served_with_a_strict_policy(live: tuple[LiveServer, RecordingApp]) -> None:
    with httpx.Client(base_url=live[0].url) as c:
        assert c.get("/", follow_redirects=False).headers["location"] == "/web/"
        html = c.get("/web/")
        js = c.get("/web/app.js")
        assert c.get("/web/../main.py").status_code == 404
        assert c.get("/web/secrets.json").status_code == 404
        assert c.get("/web/index.html").text == html.text
    policy = html.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy and html.headers["content-type"].startswith("text/html")
    assert js.headers["content-type"].startswith("text/javascript")
    assert "innerHTML" not in js.text and "outerHTML" not in js.text and "insertAdjacentHTML" not in js.text
    assert "<script>" not in html.text.replace(
        '<script src="/web/app.js" defer></script>', ""
    )  # no inline code
    assert "http" not in html.text.lower().replace("http-equiv", "")  # nothing loaded from elsewhere


def test_bucket_cors_admits_only_the_page_origin(
    live: tuple[LiveServer, RecordingApp], library: dict[str, Any]
) -> None:
    store = library["store"]
    assert live[0].url in (get_bucket_cors(store) or "")
    url = store.client.presigned_put_object(store.bucket, "inbox/probe.bin")
    preflight = {"Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "content-type"}
    ok = httpx.options(url, headers={**preflight, "Origin": live[0].url})
    evil = httpx.options(url, headers={**preflight, "Origin": "http://127.0.0.1:1"})
    assert ok.headers.get("access-control-allow-origin") == live[0].url
    assert "access-control-allow-origin" not in evil.headers
    with pytest.raises(ValueError, match="no wildcards"):
        cors_document(["*"])


# --- in Chromium ----------------------------------------------------------------------------------


@browser_needed
@pytest.mark.browser
def test_login_library_filters_and_search(page: Any, library: dict[str, Any], tmp_path: Path) -> None:
    page.fill("#login-user", "ada")
    page.fill("#login-password", "wrong")
    page.click("#login-form button[type=submit]")
    wait_js(page, "document.getElementById('login-error').textContent.length > 0")
    assert page.text_content("#login-error") == "Wrong user name or password."
    log_in(page)
    assert page.text_content("#who") == "ada (admin)"
    rows = page.locator("#library tbody tr")
    assert rows.count() == 3 and page.text_content("#page-info") == "1–3 of 3"
    hostile_row = page.locator(f"#library tbody tr[data-id='{library['hostile']}']")
    assert hostile_row.locator("a.open").text_content() == HOSTILE_NAME  # shown literally
    assert "transcription: done" in hostile_row.text_content()
    assert page.evaluate("window.__pwned") is None and page.locator("#library tbody img").count() == 0
    page.screenshot(path=str(shots(tmp_path) / "library.png"))

    page.fill("#f-type", "wav")
    page.select_option("#f-sort", "filename")
    page.select_option("#f-order", "asc")
    page.click("#filter-form button[type=submit]")
    wait_js(page, "document.querySelectorAll('#library tbody tr').length === 2")
    assert page.locator("#library tbody a.open").all_text_contents() == ["librivox_0870.wav", "long tone.wav"]
    page.select_option("#f-limit", "25")
    page.fill("#f-type", "")
    page.fill("#f-max-dur", "10")  # the long tone was only registered: no probed duration
    page.click("#filter-form button[type=submit]")
    wait_js(page, "document.getElementById('page-info').textContent === '1–1 of 1'")
    assert page.locator("#library tbody a.open").all_text_contents() == ["librivox_0870.wav"]

    page.fill("#search-q", "what your country can do")
    page.select_option("#search-mode", "fulltext")
    page.click("#search-form button[type=submit]")
    wait_js(page, "document.getElementById('page-info').textContent.includes('results')")
    first = page.locator("#library tbody tr").first
    assert first.get_attribute("data-id") == library["hostile"]
    assert first.locator("mark").count() >= 1  # the snippet's hits are marked
    assert page.evaluate("window.__pwned") is None


@browser_needed
@pytest.mark.browser
def test_audio_element_seeks_with_range_requests(
    page: Any, live: tuple[LiveServer, RecordingApp], library: dict[str, Any]
) -> None:
    """Issue #5's browser test: a seek far past what was buffered makes Chromium ask for a Range
    starting at the matching byte, and playback goes on from the new position."""
    log_in(page)
    recorder = live[1]
    start = len(recorder.log)
    page.locator(f"#library tbody tr[data-id='{library['long']}'] button.play").click()
    wait_js(
        page,
        f"document.getElementById('audio').dataset.trackId === '{library['long']}'"
        " && document.getElementById('audio').readyState >= 1",
    )  # metadata of this track
    page.evaluate("document.getElementById('audio').pause()")
    assert page.evaluate("document.getElementById('audio').duration") == pytest.approx(LONG_SECONDS, abs=0.1)
    target = 300.0
    page.evaluate(f"document.getElementById('audio').currentTime = {target}")
    page.evaluate("document.getElementById('audio').play()")
    wait_js(page, f"document.getElementById('audio').currentTime > {target + 0.5}", timeout=30_000)
    now = page.evaluate("document.getElementById('audio').currentTime")
    assert target < now < target + 30
    played = page.evaluate("(() => { const p = document.getElementById('audio').played;"
                           " return Array.from({length: p.length}, (_, i) => [p.start(i), p.end(i)]); })()")  # fmt: skip
    assert any(s >= target - 1 for s, _ in played), played  # it played from the new position
    streams = [e for e in recorder.log[start:] if e["path"] == f"/stream/{library['long']}"]
    assert streams and all(e["status"] in (200, 206) for e in streams), streams
    size = library["long_path"].stat().st_size
    expected = 44 + int(target * LONG_RATE * 2)  # 16-bit mono PCM after a 44-byte header
    starts = [int(e["content_range"].split()[1].split("-")[0]) for e in streams if e["status"] == 206]
    assert any(abs(s - expected) < 512 * 1024 for s in starts), (expected, starts, size)


@browser_needed
@pytest.mark.browser
def test_track_view_shows_hostile_text_literally(page: Any, library: dict[str, Any], tmp_path: Path) -> None:
    log_in(page)
    page.locator(f"#library tbody tr[data-id='{library['hostile']}'] a.open").click()
    page.wait_for_selector("#lyrics-lines li")
    lyrics = page.locator("#lyrics-lines").inner_text()
    assert '<script>window.__pwned = "script"</script>' in lyrics
    assert "<img src=x onerror=\"window.__pwned='img'\">" in lyrics
    assert page.text_content("#track-title") == HOSTILE_NAME
    assert "null" not in page.text_content("#track")  # no empty placeholder shown as text
    for box in ("#lyrics-lines", "#diff", "#track", "#library"):
        assert page.locator(f"{box} script, {box} img").count() == 0
    assert page.evaluate("window.__pwned") is None
    with httpx.Client(base_url=page.url.split("/web/")[0]) as c:
        detail = c.get(f"/tracks/{library['hostile']}", auth=auth()).json()
    comparison = detail["comparison"]
    assert page.text_content("#similarity") == f"{comparison['similarity']:.1f}"
    assert page.locator("#reasons li").all_text_contents() == comparison["reasons"]
    ops = comparison["alignment"]
    deleted = [o["lyrics"] for o in ops if o["kind"] == "delete"]
    assert deleted and page.locator("#diff del.delete").all_text_contents() == deleted
    assert page.locator("#diff span.replace").count() == sum(o["kind"] == "replace" for o in ops)
    assert page.locator("#diff ins.insert").count() == sum(o["kind"] == "insert" for o in ops)
    assert "country" in page.text_content("#transcript-text").lower()

    # Waveform of the converted audio; a click on it plays from that point.
    wait_js(page, "document.getElementById('waveform').dataset.ready === '1'")
    inked = page.evaluate(
        "(() => { const c = document.getElementById('waveform');"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;"
        " for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n / (c.width * c.height); })()"
    )
    assert 0.05 < inked < 0.9, inked  # the shape of speech: neither blank nor a filled block
    box = page.locator("#waveform").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] / 2)
    at = 0.75 * detail["converted_duration"]
    wait_js(page, f"document.getElementById('audio').dataset.trackId === '{library['hostile']}'"
                  f" && Math.abs(document.getElementById('audio').currentTime - {at}) < 1.0")  # fmt: skip

    # Synced lyrics: the line sung at the playback position is highlighted.
    stamped = parse_lrc(comparison["synced_lrc"])
    assert len(stamped) >= 2, comparison["synced_lrc"]
    second_time, second_text = stamped[1]
    # (the waveform click above loaded this track into the player)
    page.evaluate(
        f"(() => {{ const a = document.getElementById('audio'); a.pause(); a.currentTime = {second_time + 0.3}; }})()"
    )
    wait_js(
        page,
        "document.querySelector('#lyrics-lines li.current') !== null && "
        "document.querySelector('#lyrics-lines li.current').dataset.index === '1'",
    )
    assert page.text_content("#current-line") == second_text
    assert page.locator("#lyrics-lines li.current").count() == 1
    assert page.evaluate("window.__pwned") is None
    page.screenshot(path=str(shots(tmp_path) / "track.png"), full_page=True)


@browser_needed
@pytest.mark.browser
def test_export_zip_from_the_page(page: Any, library: dict[str, Any], tmp_path: Path) -> None:
    log_in(page)
    page.locator(f"#library tbody tr[data-id='{library['hostile']}'] input.pick").check()
    page.click("#tabs button[data-tab=export]")
    assert "1 track(s) selected" in page.text_content("#export-selection")
    page.select_option("#export-format", "zip")
    page.check(".export-part[value=converted]")
    page.screenshot(path=str(shots(tmp_path) / "export.png"))
    with page.expect_download() as info:
        page.click("#export-archive")
    download = info.value
    assert download.suggested_filename == "music-export.zip"
    with zipfile.ZipFile(io.BytesIO(Path(download.path()).read_bytes())) as z:
        names = z.namelist()
        meta = json.loads(z.read("export_metadata.json"))
        original = next(n for n in names if n.endswith(f"/original/{portable_name(HOSTILE_NAME)}"))
        assert z.read(original) == library["song"].read_bytes()
        converted = next(n for n in names if "/converted/" in n)
        assert z.read(converted)[:4] == b"fLaC"
        transcript = next(n for n in names if "/transcription/" in n)
        assert "country" in z.read(transcript).decode().lower()
    assert [t["track_id"] for t in meta["tracks"]] == [library["hostile"]]
    with page.expect_download() as csv_info:
        page.click("#export-csv")
    text = Path(csv_info.value.path()).read_text()
    assert text.splitlines()[0].startswith("track_id,filename") and library["hostile"] in text


@browser_needed
@pytest.mark.browser
def test_drag_and_drop_upload_with_progress(page: Any, library: dict[str, Any], tmp_path: Path) -> None:
    log_in(page)
    page.click("#tabs button[data-tab=upload]")
    # "again song.wav" has the same length of name and size as the first: the same bytes, a duplicate.
    sizes = {
        "first song.wav": 3 * 1024 * 1024 + 17,
        "sëcond (live).mp3": 1536 * 1024,
        "again song.wav": 3 * 1024 * 1024 + 17,
    }
    page.evaluate(
        """(sizes) => {
            const dt = new DataTransfer();
            for (const [name, size] of Object.entries(sizes)) {
                const data = new Uint8Array(size);
                for (let i = 0; i < size; i++) data[i] = (i * 31 + name.length) % 251;
                dt.items.add(new File([data], name, {type: name.endsWith(".wav") ? "audio/wav" : "audio/mpeg"}));
            }
            const zone = document.getElementById("dropzone");
            zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: dt, bubbles: true, cancelable: true}));
            zone.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
        }""",
        sizes,
    )
    wait_js(
        page,
        "[...document.querySelectorAll('#uploads tbody tr')].filter(r => r.classList.contains('done')).length === 3",
        timeout=30_000,
    )
    assert page.locator("#uploads tbody .state").all_text_contents() == ["uploaded"] * 3
    assert page.locator("#uploads tbody .percent").all_text_contents() == ["100 %"] * 3
    bars = "[...document.querySelectorAll('#uploads tbody tr')].map(r => [r.querySelector('progress').value, Number(r.dataset.progressEvents)])"
    assert [value for value, _ in page.evaluate(bars)] == [100, 100, 100]
    assert all(events >= 1 for _, events in page.evaluate(bars))  # driven by the browser's progress events
    page.screenshot(path=str(shots(tmp_path) / "upload.png"))
    store: ObjectStore = library["store"]
    inbox = {o.key: o for o in store.list("inbox/") if o.key != "inbox/probe.bin"}
    assert {k: o.size for k, o in inbox.items()} == {f"inbox/{n}": s for n, s in sizes.items()}
    # WAVE goes up under its registered type, which the embedded S3 server does not gzip.
    types = {name: getattr(store.stat(f"inbox/{name}"), "content_type", None) for name in sizes}
    assert types == {"first song.wav": "audio/vnd.wave", "sëcond (live).mp3": "audio/mpeg",
                     "again song.wav": "audio/vnd.wave"}  # fmt: skip
    for name, size in sizes.items():
        expected = bytes((i * 31 + len(name)) % 251 for i in range(size))
        got = b"".join(store.iter_chunks(f"inbox/{name}"))
        assert hashlib.sha256(got).digest() == hashlib.sha256(expected).digest()

    # The pipeline registers the uploads (as the inbox sensor's run would); the page follows them.
    database_url = library["database_url"]
    registered = [register_inbox_object(store, database_url, f"inbox/{name}", "inbox/") for name in sizes]
    wait_js(
        page,
        "[...document.querySelectorAll('#uploads tbody .state')].every(s => s.textContent.startsWith('registered') || s.textContent.startsWith('duplicate'))",
    )
    assert page.locator("#uploads tbody .state").all_text_contents() == [
        "registered", "registered", "duplicate of first song.wav"]  # fmt: skip
    assert registered[0].track_id == registered[2].track_id != registered[1].track_id
    # Leave the module's library as it was: these uploads go again, through the retention code.
    with psycopg.connect(database_url) as conn:
        plans = plan_track_removals(conn, [r.track_id for r in registered], RemovalOptions(), "test cleanup")
    assert (
        len(execute_removals(database_url, store, plans, RemovalOptions(), performed_by="test").removed) == 2
    )


@browser_needed
@pytest.mark.browser
def test_reader_cannot_upload_and_storage_panel(page: Any, library: dict[str, Any], tmp_path: Path) -> None:
    log_in(page, "rita")
    page.click("#tabs button[data-tab=upload]")
    page.set_input_files("#file-input", files=[{"name": "x.mp3", "mimeType": "audio/mpeg", "buffer": b"123"}])
    wait_js(page, "document.querySelector('#uploads tbody .state')?.textContent === 'admins only'")
    assert not any(o.key.endswith("x.mp3") for o in library["store"].list("inbox/"))

    page.click("#tabs button[data-tab=storage]")
    page.wait_for_selector("#storage-bucket tbody tr[data-prefix=originals]")
    with httpx.Client(base_url=page.url.split("/web/")[0]) as c:
        stats = c.get("/storage/stats", auth=auth("rita")).json()
    for prefix, value in stats["bucket"].items():
        cell = page.locator(f"#storage-bucket tbody tr[data-prefix='{prefix}'] .objects")
        assert cell.text_content() == str(value["objects"])
    assert stats["bucket"]["originals"]["objects"] == 3
    copies = page.locator("#storage-other dt", has_text="Audio copies").locator(
        "xpath=following-sibling::dd[1]"
    )
    assert stats["audio_copies"] is not None  # on by default
    assert (copies.text_content() or "").startswith(f"{stats['audio_copies']['copies']} (")
    assert page.locator("#by-type tbody tr").count() == 2  # flac and wav
    assert page.get_attribute("#dagster-link", "href") == "http://127.0.0.1:3000/"
    page.screenshot(path=str(shots(tmp_path) / "storage.png"), full_page=True)


@browser_needed
@pytest.mark.browser
def test_settings_panel_stores_keys_without_showing_them(
    page: Any, library: dict[str, Any], tmp_path: Path
) -> None:
    secret = "genius-token-from-the-page-9876-wxyz"
    log_in(page)
    page.click("#tabs button[data-tab=settings]")
    page.wait_for_selector("#provider-keys tbody tr[data-provider=genius]")
    page.select_option("#key-provider", "genius")
    page.fill("#key-value", secret)
    page.click("#key-form button[type=submit]")
    wait_js(
        page,
        "document.querySelector('#provider-keys tr[data-provider=genius] .masked').textContent === '…wxyz'",
    )
    assert page.text_content("#settings-status") == "genius key saved (encrypted)."
    assert page.input_value("#key-value") == ""  # not kept in the page
    assert secret not in page.content()
    with psycopg.connect(library["database_url"]) as conn:
        stored = conn.execute("SELECT value FROM api_config WHERE key LIKE '%genius%'").fetchone()[0]
    assert secret not in stored
    page.screenshot(path=str(shots(tmp_path) / "settings.png"))
    page.click("#provider-keys tr[data-provider=genius] button")
    wait_js(
        page, "document.querySelector('#provider-keys tr[data-provider=genius] .masked').textContent === '–'"
    )
    # The outcome stays on screen after the list reloads (it used to be wiped by the reload).
    assert page.text_content("#settings-status") == "genius key removed."


@browser_needed
@pytest.mark.browser
def test_cleanup_preview_and_llm_notes_in_the_page(
    page: Any, library: dict[str, Any], services: ServiceEndpoints
) -> None:
    notes = 'The chorus was missed <img src=x onerror="window.__pwned=1">'
    with psycopg.connect(library["database_url"]) as conn:
        conn.execute("UPDATE comparisons SET llm_notes = %s WHERE file_id = %s", (notes, library["hostile"]))
    bump_generation(services.redis_url)  # as the pipeline does after writing
    time.sleep(0.15)  # the API reads the generation at most 0.1 s apart
    log_in(page)
    page.click("#tabs button[data-tab=storage]")
    page.fill("#cleanup-days", "0")
    page.click("#cleanup-form button[type=submit]")
    wait_js(page, "!document.querySelector('#cleanup-candidates').hidden")
    assert page.locator("#cleanup-candidates tbody tr").count() == 3
    assert "3 track(s)" in page.text_content("#cleanup-summary")
    assert (
        library["store"].stat(f"originals/{library['long'][:2]}/{library['long']}") is not None
    )  # read-only
    page.fill("#cleanup-days", "365")
    page.click("#cleanup-form button[type=submit]")
    wait_js(page, "document.querySelector('#cleanup-candidates').hidden")

    page.click("#tabs button[data-tab=library]")
    page.click(f"#library tbody tr[data-id='{library['hostile']}'] .open")
    page.wait_for_selector("#llm-notes")
    assert "null" not in page.text_content("#track")  # no placeholder leaks into the view
    assert page.text_content("#llm-notes") == notes
    assert page.evaluate("window.__pwned") is None and page.locator("#llm-notes img").count() == 0


@pytest.mark.browser
def test_openapi_docs_render_offline_under_the_page_policy(
    browser: Any, live: tuple[LiveServer, RecordingApp]
) -> None:
    """/docs (the start-up banner points there) with Swagger UI from an installed package: every
    request stays on this origin, and nothing on the page breaks the policy."""
    context = browser.new_context()
    pg = context.new_page()
    violations: list[str] = []
    elsewhere: list[str] = []
    pg.on("console", lambda m: violations.append(m.text) if m.type in ("error", "warning") else None)
    pg.on("pageerror", lambda exc: violations.append(str(exc)))
    pg.on("request", lambda r: elsewhere.append(r.url) if not r.url.startswith(live[0].url) else None)
    try:
        response = pg.goto(live[0].url + "/docs")
        assert response is not None and response.status == 200
        pg.wait_for_selector(".opblock-summary-path", timeout=20_000)
        paths = [
            path.replace("\u200b", "") for path in pg.locator(".opblock-summary-path").all_text_contents()
        ]
        assert "/tracks/{track_id}/audio" in paths and "/search" in paths
        assert "Music Analyzer API" in (pg.text_content(".info .title") or "")
    finally:
        context.close()
    assert violations == [] and elsewhere == []
    with httpx.Client(base_url=live[0].url) as c:
        assert c.get("/docs/../main.py").status_code == 404
        assert c.get("/docs/redoc.standalone.js").status_code == 404  # only the files the page uses
        assert c.get("/redoc").status_code == 404  # FastAPI's CDN pages are off

"""Local HTTP servers reproducing the web lyrics providers' documented shapes, on free loopback ports:

- Genius API ``GET /search?q=`` (Bearer token; 401 ``{"meta": {"status": 401, "message": ...}}``) answering
  ``{"meta": {"status": 200}, "response": {"hits": [{"index": "song", "type": "song", "result": {...}}]}}``;
- Brave ``GET /res/v1/web/search`` (``X-Subscription-Token``; 422 ``SUBSCRIPTION_TOKEN_INVALID``) answering
  ``{"type": "search", "web": {"results": [{"title", "url", "description", ...}]}}`` with ``X-RateLimit-Limit``,
  ``-Policy``, ``-Remaining`` and ``-Reset`` per window ("1, 15000");
- Tavily ``POST /search`` (Bearer key; 401/429 ``{"detail": {"error": ...}}``) honouring ``include_domains``
  and ``include_raw_content``;
- lyrics pages: a Genius song page (lyrics containers, scripts, ads, excluded header, injected ``<img onerror>``),
  an AZLyrics-like page, a "not licensed" page, a translation, a 404, a slowly trickling body and a hang.

Every service can be told to answer the next N requests with 429 and ``Retry-After``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

SCRIPT_MARKER = "SCRIPT_ONLY_TEXT"  # appears only inside <script>/<style>/iframe/ads on the pages
JFK_LINES = [
    "And so, my fellow Americans,",
    "ask not what your country can do for you,",
    "ask what you can do for your country.",
    "My fellow citizens of the world,",
    "ask not what America will do for you,",
    "but what together we can do for the freedom of man.",
]

GENIUS_PAGE = """<!DOCTYPE html><html><head><title>John F. Kennedy – Ask Not Lyrics | Genius Lyrics</title>
<script>window.__PRELOADED_STATE__ = JSON.parse('{"lyrics":"SCRIPT_ONLY_TEXT fake words"}');</script>
<style>.Lyrics__Container{content:"SCRIPT_ONLY_TEXT"}</style></head><body>
<header><a href="/">Genius</a><a href="/charts">Charts</a></header>
<div class="SongHeader">Ask Not<br>John F. Kennedy</div>
<div id="lyrics-root">
<div data-lyrics-container="true" class="Lyrics__Container-sc-1ynbvzw-1 kUgSbL">
<div data-exclude-from-selection="true" class="LyricsHeader__Container-sc-1x2b3c">21 Contributors
Translations Español Ask Not Lyrics</div>[Verse 1]<br/>And so, my fellow <a href="/123/And-so" class="ReferentFragment">
<span>Americans,</span></a><br/>ask not what your country can do for you,<br/>ask what you can do for your country.</div>
<div class="RightSidebar__Container-sc-1hmcglv-0"><div class="InreadAd__Container">Advertisement SCRIPT_ONLY_TEXT
buy now</div><iframe src="https://ads.example/frame">SCRIPT_ONLY_TEXT</iframe></div>
<div data-lyrics-container="true" class="Lyrics__Container-sc-1ynbvzw-1 kUgSbL"><br/>[Verse 2]<br/>
My fellow citizens of the world,<img src="x" onerror="alert('SCRIPT_ONLY_TEXT')"><br/>
ask not what America will do for you,<script>document.write('SCRIPT_ONLY_TEXT')</script><br/>
but what together we can do for the freedom of man.</div>
</div>
<div class="LyricsFooter__Container">How to Format Lyrics: SCRIPT_ONLY_TEXT</div>
<footer>© 2026 Genius Media Group Inc.</footer></body></html>"""

AZ_PAGE = """<html><head><title>John F. Kennedy - Ask Not Lyrics | AZLyrics.com</title>
<script type="text/javascript">var cf_page_artist = "SCRIPT_ONLY_TEXT";</script></head><body>
<nav class="navbar"><a href="/a.html">A</a> <a href="/b.html">B</a> <a href="/c.html">C</a></nav>
<div class="container main-page"><div class="row"><div class="col-xs-12 col-lg-8 text-center">
<div class="div-share noprint"><h1>"Ask Not" lyrics</h1></div>
<div class="ringtone"><span id="cf_text_top"></span></div><b>"Ask Not"</b><br><br>
<div>
<!-- Usage of azlyrics.com content by any third-party lyrics provider is prohibited by our licensing agreement. -->
And so, my fellow Americans,<br>
ask not what your country can do for you,<br>
ask what you can do for your country.<br>
<br>
My fellow citizens of the world,<br>
<span style="display:none">SCRIPT_ONLY_TEXT hidden</span>ask not what America will do for you,<br>
<img src=x onerror=alert("SCRIPT_ONLY_TEXT")>but what together we can do for the freedom of man.
</div>
<div class="ads-banner" id="azl-ad-slot">SCRIPT_ONLY_TEXT Sponsored ringtones</div>
<iframe src="//ads.example/">SCRIPT_ONLY_TEXT</iframe>
<div class="smt"><p>Submit Corrections</p></div>
<div class="panel album-panel"><p>Thanks to a visitor for these lyrics, this is a long paragraph written as prose about the
speech and its history so that it is clearly not a lyric line of the song at all.</p></div>
</div></div></div><footer><a href="/privacy">Privacy</a> <a href="/tos">Terms</a></footer></body></html>"""

NOT_LICENSED_PAGE = """<html><body><div data-lyrics-container="true">Unfortunately, we are not licensed to
display the full lyrics for this song at the moment.<br/>Hopefully we will be able to in the future.</div>
</body></html>"""

TRANSLATION_PAGE = """<html><body><div data-lyrics-container="true">[Verso 1]<br/>Y así, mis compatriotas
estadounidenses,<br/>no pregunten qué puede hacer su país por ustedes,<br/>pregunten qué pueden hacer ustedes por
su país.</div></body></html>"""

OTHER_SONG_PAGE = """<html><body><div data-lyrics-container="true">We will we will rock you<br/>
buddy you're a boy make a big noise<br/>playing in the street gonna be a big man someday</div></body></html>"""

PAGES: dict[str, str] = {
    "/John-f-kennedy-ask-not-lyrics": GENIUS_PAGE,
    "/lyrics/kennedy/asknot.html": AZ_PAGE,
    "/Cover-band-ask-not-lyrics": NOT_LICENSED_PAGE,
    "/Genius-traducciones-al-espanol-john-f-kennedy-ask-not-traduccion-al-espanol-lyrics": TRANSLATION_PAGE,
    "/Queen-we-will-rock-you-lyrics": OTHER_SONG_PAGE,
}

TOKEN = "genius-token-7f3a9c2e51b84d06"
BRAVE_KEY = "BSA-brave-key-0c4e8b1d9a2f7e63"
TAVILY_KEY = "tvly-dev-tavily-key-5d1e7a3b9c04"


@dataclass
class Seen:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: Any = None
    at: float = field(default_factory=time.monotonic)


@dataclass
class State:
    requests: list[Seen] = field(default_factory=list)
    rate_limit_next: int = 0  # answer this many requests with 429 first
    retry_after: str = "1"
    rate_headers: dict[str, str] = field(default_factory=dict)  # Brave's X-RateLimit-* for the next answers

    def paths(self) -> list[str]:
        return [s.path for s in self.requests]


class _Base(BaseHTTPRequestHandler):
    state: State
    pages_url: str

    def log_message(self, *args: object) -> None:
        pass

    def _send(
        self, status: int, body: object, headers: dict[str, str] | None = None, ctype: str = ""
    ) -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype or "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _record(self, body: Any = None) -> Seen:
        url = urlparse(self.path)
        seen = Seen(self.command, url.path, {k: v[0] for k, v in parse_qs(url.query).items()},
                    {k.lower(): v for k, v in self.headers.items()}, body)  # fmt: skip
        self.state.requests.append(seen)
        return seen

    def _limited(self, body: object) -> bool:
        if self.state.rate_limit_next > 0:
            self.state.rate_limit_next -= 1
            self._send(429, body, {"Retry-After": self.state.retry_after, **self.state.rate_headers})
            return True
        return False


def _words(text: str) -> set[str]:
    return {w.strip(".,'\"!?()").lower() for w in text.split()} - {""}


def genius_songs(pages_url: str) -> list[dict[str, Any]]:
    """Song records in the order Genius ranks them for "ask not": a translation, a cover, the original."""

    def song(sid: int, title: str, artist: str, path: str, lyrics: str) -> dict[str, Any]:
        return {
            "annotation_count": 3, "api_path": f"/songs/{sid}", "full_title": f"{title} by {artist}", "id": sid,
            "lyrics_owner_id": 1, "lyrics_state": "complete", "path": path, "title": title,
            "title_with_featured": title, "url": pages_url + path,
            "primary_artist": {"api_path": f"/artists/{sid}", "id": sid, "name": artist,
                               "url": f"https://genius.com/artists/{artist.replace(' ', '-')}"},
            "_lyrics": lyrics,
        }  # fmt: skip

    jfk = " ".join(JFK_LINES)
    return [
        song(9001, "John F. Kennedy - Ask Not (Traducción al Español)", "Genius Traducciones al Español",
             "/Genius-traducciones-al-espanol-john-f-kennedy-ask-not-traduccion-al-espanol-lyrics", jfk),
        song(9002, "Ask Not", "Cover Band", "/Cover-band-ask-not-lyrics", jfk),
        song(9003, "Ask Not", "John F. Kennedy", "/John-f-kennedy-ask-not-lyrics", jfk),
        song(9004, "We Will Rock You", "Queen", "/Queen-we-will-rock-you-lyrics", "we will rock you"),
    ]  # fmt: skip


def _genius(state: State, pages_url: str) -> type[BaseHTTPRequestHandler]:
    class Genius(_Base):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            seen = self._record()
            if seen.headers.get("authorization") != f"Bearer {TOKEN}":
                self._send(401, {"meta": {"status": 401, "message": "This call requires an access_token. "
                                          "Please see: https://genius.com/developers"}})  # fmt: skip
                return
            if self._limited({"meta": {"status": 429, "message": "Too many requests"}}):
                return
            if seen.path != "/search":
                self._send(404, {"meta": {"status": 404, "message": "Not found"}})
                return
            wanted = _words(seen.params.get("q", ""))
            hits = [
                {"highlights": [], "index": "song", "type": "song",
                 "result": {k: v for k, v in s.items() if k != "_lyrics"}}
                for s in genius_songs(pages_url)
                if wanted & (_words(s["full_title"]) | _words(s["_lyrics"]))
            ]  # fmt: skip
            self._send(200, {"meta": {"status": 200}, "response": {"hits": hits}})

    return Genius


def brave_results(pages_url: str) -> list[dict[str, Any]]:
    def result(title: str, url: str, description: str) -> dict[str, Any]:
        return {"title": title, "url": url, "is_source_local": False, "is_source_both": False,
                "description": description, "language": "en", "family_friendly": True, "type": "search_result",
                "subtype": "generic", "meta_url": {"scheme": urlparse(url).scheme, "netloc": urlparse(url).netloc,
                                                   "path": urlparse(url).path}}  # fmt: skip

    return [
        result("JFK - Ask Not (Inaugural Address) - YouTube", "https://video.invalid/watch?v=ask-not",
               "John F. Kennedy's <strong>Ask Not</strong> speech."),
        result("Queen - We Will Rock You Lyrics | AZLyrics.com", pages_url + "/Queen-we-will-rock-you-lyrics",
               "<strong>Lyrics</strong> to We Will Rock You"),
        result("John F. Kennedy - Ask Not Lyrics | AZLyrics.com", pages_url + "/lyrics/kennedy/asknot.html",
               "<strong>Ask not</strong> what your country can do for you"),
    ]  # fmt: skip


def _brave(state: State, pages_url: str) -> type[BaseHTTPRequestHandler]:
    class Brave(_Base):
        def do_GET(self) -> None:  # noqa: N802
            seen = self._record()
            if seen.headers.get("x-subscription-token") != BRAVE_KEY:
                self._send(422, {"type": "ErrorResponse", "error": {
                    "id": "c2a5b1e0", "status": 422, "code": "SUBSCRIPTION_TOKEN_INVALID",
                    "detail": "The provided subscription token is invalid.", "meta": {"component": "authentication"}},
                    "time": int(time.time())})  # fmt: skip
                return
            if self._limited(
                {
                    "type": "ErrorResponse",
                    "error": {
                        "status": 429,
                        "code": "RATE_LIMITED",
                        "detail": "Request rate limit exceeded for plan.",
                    },
                }
            ):
                return  # fmt: skip
            if seen.path != "/res/v1/web/search":
                self._send(404, {"type": "ErrorResponse", "error": {"status": 404, "code": "NOT_FOUND"}})
                return
            limits = {"X-RateLimit-Limit": "1, 15000", "X-RateLimit-Policy": "1;w=1, 15000;w=2592000",
                      "X-RateLimit-Remaining": "1, 14999", "X-RateLimit-Reset": "1, 1419704",
                      **self.state.rate_headers}  # fmt: skip
            wanted = _words(seen.params.get("q", "")) - {"lyrics"}
            results = [
                r for r in brave_results(pages_url) if wanted & _words(r["title"] + " " + r["description"])
            ]
            count = int(seen.params.get("count", "20"))
            self._send(200, {"type": "search", "query": {"original": seen.params.get("q", "")},
                             "web": {"type": "search", "results": results[:count], "family_friendly": True}},
                       limits)  # fmt: skip

    return Brave


TAVILY_RAW = """# John F. Kennedy – Ask Not Lyrics
[Home](https://www.lyrics.com/) | [Artists](https://www.lyrics.com/artists) | [Top 100](https://www.lyrics.com/top)

![cover](https://www.lyrics.com/img/cover.jpg)

And so, my fellow Americans,
ask not what your country can do for you,
ask what you can do for your country.

My fellow citizens of the world,
ask not what America will do for you,
but what together we can do for the freedom of man.

Submitted by a visitor. This text is a long paragraph about the speech and where it was given, written as prose,
so that it is clearly not part of the lyrics and must not be taken as a lyric line.
[Privacy](https://www.lyrics.com/privacy) [Terms](https://www.lyrics.com/terms)
"""


def tavily_documents(pages_url: str) -> list[dict[str, Any]]:
    return [
        {"title": "Ask Not - JFK speech video", "url": "https://www.video.invalid/ask-not",
         "content": "Ask not what your country...", "score": 0.93, "raw_content": "video page"},
        {"title": "We Will Rock You Lyrics - Queen", "url": "https://www.lyrics.com/lyric/1/Queen/We+Will+Rock+You",
         "content": "Buddy you're a boy", "score": 0.91, "raw_content": "We will we will rock you\n" * 4},
        {"title": "John F. Kennedy - Ask Not Lyrics | Lyrics.com", "url": "https://www.lyrics.com/lyric/2/Kennedy/Ask+Not",
         "content": "And so, my fellow Americans, ask not...", "score": 0.88, "raw_content": TAVILY_RAW},
        {"title": "Ask Not Lyrics - John F. Kennedy", "url": pages_url + "/lyrics/kennedy/asknot.html",
         "content": "Ask not what your country can do for you", "score": 0.61, "raw_content": None},
    ]  # fmt: skip


def _tavily(state: State, pages_url: str) -> type[BaseHTTPRequestHandler]:
    class Tavily(_Base):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                body = None
            seen = self._record(body)
            if seen.headers.get("authorization") != f"Bearer {TAVILY_KEY}":
                self._send(401, {"detail": {"error": "Unauthorized: missing or invalid API key."}})
                return
            if self._limited(
                {"detail": {"error": "Your request has been blocked due to excessive requests."}}
            ):
                return
            if seen.path != "/search" or not isinstance(body, dict) or not body.get("query"):
                self._send(400, {"detail": {"error": "Invalid request: query is required."}})
                return
            domains = body.get("include_domains") or []
            docs = [d for d in tavily_documents(pages_url)
                    if not domains or any((urlparse(d["url"]).hostname or "").endswith(x) for x in domains)]  # fmt: skip
            wanted = _words(body["query"]) - {"lyrics"}
            docs = [d for d in docs if wanted & _words(d["title"] + " " + d["content"])]
            results = [{**d, "raw_content": d["raw_content"] if body.get("include_raw_content") else None}
                       for d in docs[: int(body.get("max_results") or 5)]]  # fmt: skip
            self._send(200, {"query": body["query"], "follow_up_questions": None, "answer": None, "images": [],
                             "results": results, "response_time": 0.42, "request_id": "req-123"})  # fmt: skip

    return Tavily


def _pages(state: State, pages_url: str) -> type[BaseHTTPRequestHandler]:
    class Pages(_Base):
        def do_GET(self) -> None:  # noqa: N802
            seen = self._record()
            if self._limited("<html><body>Too Many Requests</body></html>"):
                return
            if seen.path == "/slow":  # headers at once, then a body trickling in byte by byte
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", "4000")
                self.end_headers()
                try:
                    for _ in range(4000):
                        self.wfile.write(b"a")
                        self.wfile.flush()
                        time.sleep(0.05)
                except OSError:
                    pass
                return
            if seen.path == "/hang":  # nothing at all for a long time
                time.sleep(5)
                self._send(200, "<html></html>", ctype="text/html")
                return
            page = PAGES.get(seen.path)
            if page is None:
                self._send(404, "<html><body><h1>404 Not Found</h1></body></html>", ctype="text/html")
                return
            self._send(200, page, ctype="text/html; charset=utf-8")

    return Pages


@dataclass
class FakeWeb:
    genius: str
    brave: str
    tavily: str
    pages: str
    states: dict[str, State]


@contextmanager
def _serve(
    factory: Any, state: State, pages_url: str, server: ThreadingHTTPServer | None = None
) -> Iterator[str]:
    server = server or ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    handler = factory(state, pages_url)
    handler.state, handler.pages_url = state, pages_url
    server.RequestHandlerClass = handler
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def fake_lyrics_web() -> Iterator[FakeWeb]:
    states = {name: State() for name in ("genius", "brave", "tavily", "pages")}
    pages_server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    pages_url = f"http://127.0.0.1:{pages_server.server_address[1]}"
    with ExitStack() as stack:
        urls = {
            "pages": stack.enter_context(_serve(_pages, states["pages"], pages_url, pages_server)),
            **{name: stack.enter_context(_serve(f, states[name], pages_url))
               for name, f in (("genius", _genius), ("brave", _brave), ("tavily", _tavily))},
        }  # fmt: skip
        yield FakeWeb(urls["genius"], urls["brave"], urls["tavily"], urls["pages"], states)

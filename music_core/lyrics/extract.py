"""Lyrics text out of an untrusted web page: plain text only, never markup.

Genius pages keep the lyrics in ``div[data-lyrics-container="true"]`` blocks with ``<br>`` line breaks;
other lyrics sites get the element holding the largest block of short lines. Scripts, styles, iframes,
forms, navigation, ads and hidden or excluded elements are dropped before anything is read; attribute
values (``onerror=...``) are never read at all. Tavily's ``raw_content`` (page text or markdown) goes
through the same "largest block of short lines" rule.
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlsplit

from music_core.lyrics.acceptance import looks_like_junk
from music_core.lyrics.http import ProviderHttp, RedirectRefused

log = logging.getLogger(__name__)

MAX_HTML_CHARS = 3_000_000
MAX_LYRICS_CHARS = 20_000
MAX_BLOCKS = 50
MAX_DEPTH = 64  # untrusted nesting: deeper tags are flattened (bounded recursion and work)
SHORT_LINE = 100  # a lyric line is short; prose paragraphs are not
LONG_LINE = 160

DROP = frozenset(
    "script style noscript iframe frame frameset svg math template object embed applet form button select "
    "textarea input nav header footer aside head title canvas video audio picture dialog menu".split()
)
VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())
BLOCK = frozenset(
    "address article blockquote body dd div dl dt figcaption figure h1 h2 h3 h4 h5 h6 hr html li main ol p pre "
    "section table tbody td tfoot th thead tr ul".split()
)
CONTAINERS = frozenset("article blockquote body div main pre section td".split())
AD = re.compile(
    r"(?:^|[\s_-])(?:ads?|adsbygoogle|advert\w*|ad-?slot|ad-?unit|banner|sponsor\w*|promo\w*|outbrain|taboola|"
    r"share|social|comments?|cookie\w*|newsletter|related|RightSidebar\w*|InreadAd\w*|LyricsHeader\w*|"
    r"SongBioPreview\w*|LyricsFooter\w*)(?:$|[\s_-])",
    re.IGNORECASE,
)
INVISIBLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
CONTROL = re.compile(
    r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]"
)
MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
URLISH = re.compile(r"https?://|www\.|\.(com|net|org)\b", re.IGNORECASE)
WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
TAGLIKE = re.compile(r"<\s*/?\s*[a-zA-Z!][^>]*>")


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)


class _TreeBuilder(HTMLParser):
    """A forgiving DOM: unknown end tags are ignored, unclosed ones closed by their ancestors' end tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in BLOCK and self.stack[-1].tag == "p":  # <p> closes implicitly before a block
            self.stack.pop()
        node = Node(tag, {k.lower(): (v or "") for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID and len(self.stack) < MAX_DEPTH:  # deeper content stays with its ancestor
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k.lower(): (v or "") for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


PARSE_SECONDS = 2.0  # per page; what was parsed by then is used
_PARSE_CHUNK = 8192


def parse_html(html: str, budget: float = PARSE_SECONDS) -> Node:
    """The page's tree, as far as it could be parsed. Untrusted pages are fed in small pieces under
    a time budget: Python's html.parser takes quadratic time on unclosed "<x" runs (CVE-2025-6069;
    42 KB of them took 7.9 s here), and it raises AssertionError on some markup ("<![ CDATA[")."""
    builder = _TreeBuilder()
    deadline = time.monotonic() + budget
    text = html[:MAX_HTML_CHARS]
    try:
        for start in range(0, len(text), _PARSE_CHUNK):
            builder.feed(text[start : start + _PARSE_CHUNK])
            if time.monotonic() > deadline:
                log.warning(
                    "lyrics page parsing stopped after %.1f s at %d of %d characters",
                    budget,
                    start,
                    len(text),
                )
                return builder.root
        if len(builder.rawdata) <= _PARSE_CHUNK:  # a long unclosed tail is where close() goes quadratic
            builder.close()
    except (AssertionError, ValueError):  # malformed markup: keep what was parsed
        log.warning("lyrics page parsing stopped at malformed markup", exc_info=True)
    return builder.root


def _dropped(node: Node) -> bool:
    a = node.attrs
    return (
        node.tag in DROP
        or "hidden" in a
        or a.get("aria-hidden") == "true"
        or a.get("data-exclude-from-selection") == "true"
        or bool(INVISIBLE.search(a.get("style", "")))
        or bool(AD.search(a.get("class", "") + " " + a.get("id", "")))
    )


class _Lines:
    """Rendered lines: (text, all of it inside links, line broken by ``<br>`` on either side)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, bool, bool]] = []
        self._parts: list[str] = []
        self._all_link = True
        self._after_br = False
        self.spans: dict[int, tuple[int, int]] = {}  # id(container node) -> its [first, end) line range

    def text(self, data: str, link: bool, pre: bool) -> None:
        if pre:
            first, *rest = data.split("\n")
            self._add(first, link)
            for piece in rest:
                self.newline(by_br=True)
                self._add(piece, link)
        else:
            self._add(re.sub(r"\s+", " ", data), link)

    def _add(self, data: str, link: bool) -> None:
        if data:
            self._parts.append(data)
            if data.strip() and not link:
                self._all_link = False

    def newline(self, by_br: bool) -> None:
        line = " ".join("".join(self._parts).split())
        self.lines.append((line, self._all_link and bool(line), by_br or self._after_br))
        self._parts, self._all_link, self._after_br = [], True, by_br

    def soft_break(self) -> None:  # a block boundary ends a line only if something is on it
        if "".join(self._parts).strip():
            self.newline(by_br=False)
        self._after_br = False

    def blank(self) -> None:
        self.soft_break()
        if self.lines and self.lines[-1][0]:
            self.lines.append(("", False, False))


def render(node: Node) -> list[tuple[str, bool, bool]]:
    """The node's text as lines; dropped elements, void elements and attributes contribute nothing."""
    return _render_all(node).lines


def _render_all(node: Node) -> _Lines:
    out = _Lines()
    _render(node, False, False, out)
    out.soft_break()
    out.spans[id(node)] = (0, len(out.lines))
    return out


def _render(node: Node, link: bool, pre: bool, out: _Lines) -> None:
    for child in node.children:
        if isinstance(child, str):
            out.text(child, link, pre)
        elif child.tag == "br":
            out.newline(by_br=True)
        elif _dropped(child) or child.tag in VOID:
            continue
        else:
            block = child.tag in BLOCK
            if block:
                out.soft_break()
            first = len(out.lines)
            _render(child, link or child.tag == "a", pre or child.tag == "pre", out)
            if child.tag in ("p", "pre", "blockquote"):
                out.blank()
            elif block:
                out.soft_break()
            if child.tag in CONTAINERS:
                out.spans[id(child)] = (first, len(out.lines))


def clean_text(text: str) -> str:
    """Plain text: NFC, no control or bidi characters, trimmed lines, single blank lines between stanzas."""
    text = CONTROL.sub("", unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n")))
    lines: list[str] = []
    for raw in text.split("\n"):
        line = " ".join(raw.split())
        if line or (lines and lines[-1]):
            lines.append(line)
    return "\n".join(lines).strip()[:MAX_LYRICS_CHARS]


def _walk(node: Node) -> list[Node]:
    found: list[Node] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if current is not node and _dropped(current):
            continue
        found.append(current)
        stack.extend(reversed([c for c in current.children if isinstance(c, Node)]))
    return found


def _lyric_line(line: str, link: bool) -> bool:
    return (
        not link
        and 0 < len(line) <= SHORT_LINE
        and any(ch.isalpha() for ch in line)
        and not URLISH.search(line)
    )


def _line_kinds(lines: list[tuple[str, bool, bool]]) -> tuple[list[int], list[int], list[int]]:
    """Prefix sums over the page's lines: short lyric-like lines, link-only lines, prose paragraphs."""
    need_br = any(br for _, _, br in lines)
    short, links, prose = [0], [0], [0]
    for line, link, br in lines:
        short.append(short[-1] + (_lyric_line(line, link) and (br or not need_br)))
        links.append(links[-1] + link)
        prose.append(prose[-1] + (len(line) > LONG_LINE))
    return short, links, prose


def _accepted(text: str) -> str | None:
    text = clean_text(text)
    if len([line for line in text.split("\n") if line]) < 2 or looks_like_junk(text):
        return None
    return text


def genius_lyrics(root: Node) -> str | None:
    """The ``data-lyrics-container`` blocks of a Genius song page, in page order."""
    blocks = [n for n in _walk(root) if n.attrs.get("data-lyrics-container") == "true"][:MAX_BLOCKS]
    if not blocks:
        return None
    text = "\n".join("\n".join(line for line, _, _ in render(b)) for b in blocks)
    return _accepted(text)


def generic_lyrics(root: Node) -> str | None:
    """The tightest element holding (nearly) the largest block of short, non-link lines. One rendering of
    the page gives every container's line range, so scoring is linear in the page size. Short lines count
    (only those inside ``<br>`` runs when the page has any); link-only lines and prose paragraphs count
    against."""
    page = _render_all(root)
    short, links, prose = _line_kinds(page.lines)
    scored = [
        (short[e] - short[s] - (links[e] - links[s]) - 3 * (prose[e] - prose[s]), e - s, s, e)
        for s, e in page.spans.values()
    ]
    best = max((score for score, *_ in scored), default=0)
    if best < 3:
        return None
    _, _, first, end = min((x for x in scored if x[0] >= 0.9 * best), key=lambda x: (x[1], x[2]))
    return _accepted("\n".join(line for line, _, _ in page.lines[first:end]))


def extract_lyrics(html: str) -> str | None:
    """Lyrics from a page's HTML, or None when the page holds nothing acceptable."""
    root = parse_html(html)
    return genius_lyrics(root) or generic_lyrics(root)


def lyrics_from_text(raw: str) -> str | None:
    """Lyrics from page text (e.g. Tavily ``raw_content``): HTML goes through ``extract_lyrics``; for text or
    markdown, the largest run of short lines (single blank lines allowed inside it) wins."""
    if TAGLIKE.search(raw):
        return extract_lyrics(raw)
    runs: list[list[str]] = [[]]
    for raw_line in clean_text(MD_IMAGE.sub("", raw)).split("\n"):
        line = MD_LINK.sub(r"\1", raw_line)
        chrome = raw_line.startswith("#") or (
            raw_line and not re.sub(r"[\W_]", "", MD_LINK.sub("", raw_line))
        )
        if chrome:  # a heading or a line of links: not lyrics
            runs.append([])
            continue
        if not line:
            if runs[-1] and runs[-1][-1]:
                runs[-1].append("")
            continue
        if len(line) <= SHORT_LINE and not URLISH.search(line):
            runs[-1].append(line)
        else:
            runs.append([])
    best = max(runs, key=lambda run: sum(1 for line in run if line))
    return _accepted("\n".join(best)) if sum(1 for line in best if line) >= 3 else None


def covers_snippet(text: str, snippet: str, share: float = 0.6) -> bool:
    """True when the lyrics contain most of a transcript snippet's words (the song was found by its words)."""
    wanted = set(WORD.findall(snippet.lower()))
    return bool(wanted) and len(wanted & set(WORD.findall(text.lower()))) >= share * len(wanted)


def page_lyrics(http: ProviderHttp, url: str) -> str | None:
    """Fetch an http(s) page (no credentials sent) and extract its lyrics; None when it holds none."""
    if urlsplit(url).scheme not in ("http", "https"):
        return None
    try:
        page = http.get_text(url)
    except RedirectRefused:
        return None  # that page only; the provider's other results are still tried
    return extract_lyrics(page) if page else None


def on_sites(url: str, sites: tuple[str, ...]) -> bool:
    """True when the URL's host is one of the sites or a subdomain of one."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return any(host == s or host.endswith("." + s) for s in sites)

"""The admin console's files: served from an allow-list, with the console's own CSP and every
other security header, and markup that needs no inline script or style."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from importlib import resources
from typing import Any

import pytest

from web.console import ASSETS, CONSOLE_CSP
from web.responses import SECURITY_HEADERS

CONSOLE_FILES = resources.files("web.console")


def _directives(policy: str) -> dict[str, str]:
    return {
        part.strip().split(" ", 1)[0]: part.strip().partition(" ")[2]
        for part in policy.split(";")
        if part.strip()
    }


def test_the_console_policy_allows_only_the_console_itself() -> None:
    directives = _directives(CONSOLE_CSP)
    assert directives["default-src"] == "'none'"
    for name in ("script-src", "style-src", "connect-src", "img-src", "form-action"):
        assert directives[name] == "'self'", name
    assert directives["frame-ancestors"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert "unsafe" not in CONSOLE_CSP
    assert "*" not in CONSOLE_CSP


@pytest.mark.parametrize(
    ("path", "content_type", "marker"),
    [
        ("/console/", "text/html", b"<!doctype html>"),
        ("/console/index.html", "text/html", b"<!doctype html>"),
        ("/console/console.js", "text/javascript", b'"use strict"'),
        ("/console/console.css", "text/css", b"[hidden]"),
        ("/console/favicon.svg", "image/svg+xml", b"<svg"),
    ],
)
async def test_each_file_is_served_with_its_type_and_the_console_headers(
    anon_client: Any, path: str, content_type: str, marker: bytes
) -> None:
    response = await anon_client.get(path)
    assert response.status == 200
    assert response.content_type == content_type
    assert response.charset == "utf-8"
    assert marker in await response.read()
    assert response.headers["Content-Security-Policy"] == CONSOLE_CSP
    for name, value in SECURITY_HEADERS.items():
        if name != "Content-Security-Policy":
            assert response.headers[name] == value, name


async def test_head_answers_like_get(anon_client: Any) -> None:
    response = await anon_client.head("/console/console.js")
    assert response.status == 200
    assert response.content_type == "text/javascript"
    assert response.headers["Content-Security-Policy"] == CONSOLE_CSP


async def test_console_without_slash_redirects_with_the_security_headers(anon_client: Any) -> None:
    response = await anon_client.get("/console", allow_redirects=False)
    assert response.status == 308
    assert response.headers["Location"] == "console/"  # relative: kept under a proxy prefix
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    followed = await anon_client.get("/console")
    assert followed.status == 200
    assert str(followed.url).endswith("/console/")


@pytest.mark.parametrize(
    "path",
    [
        "/console/nope.js",
        "/console/__init__.py",
        "/console/%2e%2e%2f__init__.py",
        "/console/..%2fconsole%2f__init__.py",
        "/console/%2e%2e%2f%2e%2e%2fcore%2fsettings.py",
        "/console/..%5c__init__.py",
        "/console/console.js%00",
        "/console/sub/console.js",
        "/console/INDEX.HTML",
    ],
)
async def test_anything_off_the_allow_list_is_a_json_404(anon_client: Any, path: str) -> None:
    response = await anon_client.get(path)
    assert response.status == 404
    assert response.content_type == "application/json"
    body = await response.json()
    assert body["error"]["code"] == "NOT_FOUND"
    assert set(body["error"]) == {"code", "message", "details"}
    # A refusal is API: the API's policy, not the console's.
    assert (
        response.headers["Content-Security-Policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    )
    assert b"import" not in await response.read()


async def test_writing_methods_are_refused(client: Any) -> None:
    for method in ("POST", "PUT", "DELETE"):
        response = await client.request(method, "/console/index.html")
        assert response.status == 405, method
        assert (await response.json())["error"]["code"] == "METHOD_NOT_ALLOWED"


async def test_the_api_keeps_its_own_policy(client: Any) -> None:
    response = await client.get("/me")
    assert (
        response.headers["Content-Security-Policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    )


def test_every_allowed_file_exists_in_the_package() -> None:
    for name in ASSETS:
        assert CONSOLE_FILES.joinpath(name).is_file(), name


class _Markup(HTMLParser):
    """What index.html loads and anything the console's CSP would block."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.stylesheets: list[str | None] = []
        self.inline: list[str] = []
        self.ids: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        element_id = found.get("id")
        if element_id:
            self.ids.append(element_id)
        for name, _ in attrs:
            if name.startswith("on") or name == "style":
                self.inline.append(f"<{tag} {name}=...>")
        for name in ("href", "src", "action"):
            if (found.get(name) or "").strip().lower().startswith("javascript:"):
                self.inline.append(f"<{tag} {name}=javascript:...>")
        if tag == "script":
            self.scripts.append(found)
            self._in = tag
        elif tag == "style":
            self.inline.append("<style>")
        elif tag == "link" and found.get("rel") == "stylesheet":
            self.stylesheets.append(found.get("href"))

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "script" and data.strip():
            self.inline.append("<script> with a body")


def _parsed_index() -> _Markup:
    parser = _Markup()
    parser.feed(CONSOLE_FILES.joinpath("index.html").read_text(encoding="utf-8"))
    parser.close()
    return parser


def test_index_html_has_no_inline_script_style_or_handler() -> None:
    markup = _parsed_index()
    assert markup.inline == []
    assert [s.get("src") for s in markup.scripts] == ["console.js"]
    assert markup.stylesheets == ["console.css"]
    assert len(markup.ids) == len(set(markup.ids)), "duplicate ids"


def test_every_element_the_script_looks_up_is_in_the_page() -> None:
    script = CONSOLE_FILES.joinpath("console.js").read_text(encoding="utf-8")
    wanted = set(re.findall(r'\$\("([A-Za-z0-9_-]+)"\)', script))
    assert wanted, "the script looks up no element by id"
    assert wanted <= set(_parsed_index().ids)


def test_the_script_never_writes_markup() -> None:
    """Data from the API is hostile: the DOM is built with textContent, never parsed HTML."""
    script = CONSOLE_FILES.joinpath("console.js").read_text(encoding="utf-8")
    code = "\n".join(line for line in script.splitlines() if not line.strip().startswith("//"))
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "localStorage",
    ):
        assert sink not in code, sink
    assert "sessionStorage" in code

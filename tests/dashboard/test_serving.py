"""How the server serves the dashboard: no token, a strict CSP, revalidated caching,
problems for anything else, and nothing that would load from the internet."""

from __future__ import annotations

import re
from importlib import resources

from router.api.dashboard import CSP, FILES

from ..api.conftest import ApiFactory

PROBLEM = "application/problem+json"


async def test_dashboard_redirects_to_its_folder_and_serves_the_page(make_api: ApiFactory) -> None:
    api = await make_api()
    r = await api.client.get("/dashboard", allow_redirects=False)
    assert r.status == 308 and r.headers["Location"] == "/dashboard/"
    r = await api.client.get("/dashboard/")  # no Authorization header
    assert r.status == 200
    assert r.content_type == "text/html" and r.charset == "utf-8"
    assert r.headers["Content-Security-Policy"] == CSP
    assert "default-src 'self'" in CSP and "connect-src 'self'" in CSP
    assert r.headers["Cache-Control"] == "no-cache"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "X-Request-Id" in r.headers
    html = await r.text()
    assert '<script src="dashboard.js"' in html and 'href="dashboard.css"' in html
    r = await api.client.get("/dashboard/index.html")
    assert r.status == 200 and await r.text() == html


async def test_assets_have_their_types_and_revalidate_by_etag(make_api: ApiFactory) -> None:
    api = await make_api()
    types = {
        "dashboard.js": "text/javascript",
        "dashboard.css": "text/css",
        "favicon.svg": "image/svg+xml",
    }
    for name, ctype in types.items():
        r = await api.client.get(f"/dashboard/{name}")
        assert r.status == 200 and r.content_type == ctype, name
        etag = r.headers["ETag"]
        again = await api.client.get(f"/dashboard/{name}", headers={"If-None-Match": etag})
        assert again.status == 304 and again.headers["ETag"] == etag
        assert await again.read() == b""
    r = await api.client.head("/dashboard/dashboard.js")
    assert r.status == 200 and await r.read() == b""


async def test_anything_else_under_dashboard_is_a_problem(make_api: ApiFactory) -> None:
    api = await make_api()
    for path in (
        "/dashboard/nothing.js",
        "/dashboard/../pyproject.toml",
        "/dashboard/x/index.html",
    ):
        r = await api.client.get(path)
        assert r.status == 404 and r.content_type == PROBLEM, path
    r = await api.client.post("/dashboard/", json={})
    assert r.status == 405 and r.content_type == PROBLEM
    assert r.headers["Allow"] == "GET,HEAD"
    # the data is not public: the stream the page reads needs a token
    r = await api.client.get("/v1/metrics/stream")
    assert r.status == 401 and r.content_type == PROBLEM


def test_the_page_loads_nothing_from_the_internet() -> None:
    """Offline and closed networks: every URL the files name is on this server (the
    SVG namespace is a name, not a download)."""
    root = resources.files("router") / "dashboard"
    urls = []
    for name in FILES:
        text = (root / name).read_text()
        text = text.replace("http://www.w3.org/2000/svg", "")
        urls += [(name, u) for u in re.findall(r"(?:https?:)?//[\w.-]+\.\w+", text)]
        urls += [(name, u) for u in re.findall(r"@import|url\(\s*['\"]?(?:https?:)?//", text)]
    assert urls == []
    html = (root / "index.html").read_text()
    assert "<script>" not in html and "style=" not in html  # the CSP allows neither

"""`GET /dashboard`: the supervisor dashboard, a static page served from the package.

The page and its assets need no token: they hold no data. The data comes from
`GET /v1/metrics/stream`, which the page reads with the supervisor's token in the
Authorization header. Everything the page needs ships in `router/dashboard/`, so
it works offline and in closed networks; the Content-Security-Policy lets it talk
to this server only.

The files are served by a middleware rather than by routes: they are a web page,
not part of the v1 API that the OpenAPI document describes route by route.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from importlib import resources

from aiohttp import web

from .problems import ApiError, Handler

PREFIX = "/dashboard"
FILES = ("index.html", "dashboard.js", "dashboard.css", "favicon.svg")
# The page runs only its own script and style and talks only to this server; it is
# never framed (a wall display opens it directly) and sends no referrer.
CSP = (
    "default-src 'self'; connect-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Revalidate every time (cheap: a 304 on the ETag), so an upgrade shows at once.
CACHE_CONTROL = "no-cache"
TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def _load() -> dict[str, Asset]:
    """The page's files, read once: they are small and change only with the package."""
    root = resources.files("router") / "dashboard"
    assets = {}
    for name in FILES:
        body = (root / name).read_bytes()
        ext = name[name.rfind(".") :]
        ctype = TYPES.get(ext) or mimetypes.guess_type(name)[0] or "application/octet-stream"
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        assets[name] = Asset(body, ctype, etag)
    return assets


_assets: dict[str, Asset] | None = None


def assets() -> dict[str, Asset]:
    global _assets
    if _assets is None:
        _assets = _load()
    return _assets


def _serve(request: web.Request, name: str) -> web.StreamResponse:
    asset = assets().get(name)
    if asset is None:
        raise ApiError(404, "not found", f"the dashboard has no file {name!r}")
    headers = {
        "Cache-Control": CACHE_CONTROL,
        "ETag": asset.etag,
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    if asset.etag in (t.strip() for t in request.headers.get("If-None-Match", "").split(",")):
        return web.Response(status=304, headers=headers)
    charset = "utf-8" if asset.content_type.startswith("text/") else None
    return web.Response(
        body=asset.body, content_type=asset.content_type, charset=charset, headers=headers
    )


@web.middleware
async def dashboard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Serves `/dashboard` (a redirect to `/dashboard/`), `/dashboard/` and its files;
    passes every other path on."""
    path = request.path
    if path != PREFIX and not path.startswith(PREFIX + "/"):
        return await handler(request)
    if request.method not in ("GET", "HEAD"):
        raise ApiError(
            405,
            "method not allowed",
            f"the dashboard answers GET and HEAD, not {request.method}",
            headers={"Allow": "GET,HEAD"},
        )
    if path == PREFIX:
        raise web.HTTPPermanentRedirect(PREFIX + "/")
    name = path[len(PREFIX) + 1 :] or "index.html"
    return _serve(request, name)

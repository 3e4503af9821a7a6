"""The web front end: static pages the event service serves under ``/ui/``, and their ``config.json``.

The pages call the two services' public HTTP APIs from the browser: the event service on their own origin, the
booking service at the URL ``/ui/config.json`` gives (which answers CORS for the pages' origin). These routes are
not part of the API, so the OpenAPI documents leave them out (:data:`UI_ROUTES`).
"""

from __future__ import annotations

from importlib import resources
from typing import Final

import falcon

__all__ = ["FILES", "UI_ROUTES", "ui_routes"]

#: The files of the front end and their media types.
FILES: Final = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
#: The route templates :func:`ui_routes` adds (the trailing slash of ``/ui/`` is stripped by the app).
UI_ROUTES: Final = ("/", "/ui", "/ui/config.json", "/ui/{name}")


def _read(name: str) -> bytes:
    return resources.files("myevents.web").joinpath("ui", name).read_bytes()


class Home:
    """``/``: to the front end."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise falcon.HTTPFound("/ui/")


class Page:
    """``/ui/`` and its files; ``/ui`` redirects to ``/ui/``.

    The pages may load nothing but these files and call nothing but their own origin and the booking service.
    """

    def __init__(self, booking_url: str) -> None:
        self.files = {name: _read(name) for name in FILES}
        self.policy = (
            f"default-src 'self'; connect-src 'self' {booking_url}; img-src 'self' data:; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
        )

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str = "index.html") -> None:
        if name == "index.html" and not str(req.env.get("PATH_INFO", "")).startswith("/ui/"):
            raise falcon.HTTPFound("/ui/")
        if name not in self.files:
            raise falcon.HTTPNotFound(description=f"the front end has no file {name!r}")
        resp.content_type = FILES[name]
        resp.data = self.files[name]
        resp.cache_control = ["no-cache"]
        resp.set_header("Content-Security-Policy", self.policy)
        resp.set_header("X-Content-Type-Options", "nosniff")


class UIConfig:
    """``/ui/config.json``: what the pages need to know, the booking service's URL."""

    def __init__(self, booking_url: str) -> None:
        self.booking_url = booking_url

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"bookingUrl": self.booking_url}
        resp.cache_control = ["no-cache"]


def ui_routes(booking_url: str) -> dict[str, object]:
    page = Page(booking_url)
    return {"/": Home(), "/ui": page, "/ui/config.json": UIConfig(booking_url), "/ui/{name}": page}

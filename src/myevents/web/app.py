"""The Falcon application both services start from: middleware, JSON, problem details."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import falcon
import falcon.media
import orjson
from prometheus_client import CollectorRegistry

from myevents.web import WebApp, problems
from myevents.web.auth import Authentication, AuthSettings
from myevents.web.middleware import CORRELATION_HEADER, RequestContext

__all__ = ["new_app"]


def new_app(
    registry: CollectorRegistry,
    max_body: int,
    routes: Mapping[str, object],
    auth: AuthSettings,
    cors_origins: Collection[str] = (),
) -> WebApp:
    """A WSGI app serving ``routes`` (path template -> resource), with errors as problem details; the resources
    check callers' tokens against ``auth``. Pages from ``cors_origins`` may call it from a browser (CORS)."""
    context, authentication = RequestContext(registry, max_body), Authentication(auth)
    if cors_origins:
        cors: Any = falcon.CORSMiddleware(allow_origins=list(cors_origins), expose_headers=[CORRELATION_HEADER])
        app = falcon.App(middleware=[cors, context, authentication])
    else:
        app = falcon.App(middleware=[context, authentication])
    json = falcon.media.JSONHandler(dumps=orjson.dumps, loads=orjson.loads)
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = json
    app.req_options.strip_url_path_trailing_slash = True
    problems.install(app)
    for path, resource in routes.items():
        app.add_route(path, resource)
    return app

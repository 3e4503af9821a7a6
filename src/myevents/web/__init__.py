"""What both services' HTTP layers share: problem details, callers' tokens, JSON bodies, request context, operations
routes."""

from typing import TypeAlias

import falcon

__all__ = ["WebApp"]

#: A Falcon WSGI app (the type is generic over its request and response classes).
WebApp: TypeAlias = falcon.App[falcon.Request, falcon.Response]

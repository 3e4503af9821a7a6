"""What both services' HTTP layers share: problem details, callers' tokens, JSON bodies, request context, operations
routes."""

from typing import TypeAlias

import falcon

__all__ = ["WebApp"]

#: A Falcon WSGI app (the type is generic over its request and response classes). A string, so that nothing
#: subscripts ``falcon.App`` at run time: the tracing instrumentation replaces it with a class that is not generic.
WebApp: TypeAlias = "falcon.App[falcon.Request, falcon.Response]"

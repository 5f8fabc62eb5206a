"""The twisted.web face of the EC2 API: C{/services/Cloud}, C{/services/Admin} and C{/}."""

from __future__ import annotations

from twisted.web import resource, server

from nova.api.ec2.handler import Ec2Handler, HttpRequest
from nova.api.http import header_dict, respond

#: what C{GET /} lists, as 2010 nova did: the API versions it answers to
API_VERSIONS = ("1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10", "2007-12-15",
                "2008-02-01", "2008-09-01", "2009-04-04", "2014-10-01", "2016-11-15")


class Ec2Resource(resource.Resource):
    """One EC2 Query endpoint; every request goes to its L{Ec2Handler}."""

    isLeaf = True

    def __init__(self, handler: Ec2Handler) -> None:
        super().__init__()
        self._handler = handler

    def render_GET(self, request: server.Request) -> int:
        return self._render(request)

    def render_POST(self, request: server.Request) -> int:
        return self._render(request)

    def _render(self, request: server.Request) -> int:
        uri = request.uri.decode("latin-1")
        path, _, query = uri.partition("?")
        request.content.seek(0)
        view = HttpRequest(
            method=request.method.decode("ascii", "replace"),
            host=(request.getHeader(b"host") or b"").decode("latin-1"),
            path=path,
            query=query,
            headers=header_dict(request),
            body=b"" if getattr(request, "body_too_large", False) else request.content.read(),
            body_too_large=getattr(request, "body_too_large", False),
        )

        async def produce() -> tuple[int, bytes, str]:
            status, body = await self._handler.handle(view)
            return status, body, "text/xml"

        return respond(request, produce)


class VersionsResource(resource.Resource):
    """C{GET /}: the API versions, one per line."""

    isLeaf = True

    def render_GET(self, request: server.Request) -> bytes:
        request.setHeader(b"content-type", b"text/plain")
        return "\n".join(API_VERSIONS).encode("ascii")


def build_root(cloud: Ec2Handler, admin: Ec2Handler) -> resource.Resource:
    """@return: the API server's resource tree."""
    root = resource.Resource()
    services = resource.Resource()
    root.putChild(b"", VersionsResource())
    root.putChild(b"services", services)
    services.putChild(b"Cloud", Ec2Resource(cloud))
    services.putChild(b"Admin", Ec2Resource(admin))
    return root

"""The web console's sign-in cookie: an access token in an HttpOnly, SameSite=Strict cookie,
so that no script (nor an XSS) can read it and a new tab or a reload stays signed in.

A cookie goes with every request to the host, whichever page makes it, so a cookie credential
is only accepted from this server's own pages: unsafe REST requests must carry the
`X-Botical-CSRF` header (a cross-site form cannot set a header, and a cross-origin script
cannot either without a CORS preflight, which Botical never grants), and a WebSocket upgrade
must come with this server's own Origin. Cookies are not told apart by port, so the name
carries the port: two servers on one host keep their own sign-in.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from tornado.httputil import HTTPServerRequest

from botical.errors import Forbidden

COOKIE_PREFIX = "botical_token"
CSRF_HEADER = "X-Botical-CSRF"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def cookie_name(request: HTTPServerRequest) -> str:
    """`botical_token_4096` for a request to port 4096 (the Host header's port)."""
    port = urlsplit(f"//{request.host}").port
    return f"{COOKIE_PREFIX}_{port}" if port else COOKIE_PREFIX


def same_origin(request: HTTPServerRequest) -> bool:
    """The request's Origin header names this very host."""
    origin = request.headers.get("Origin")
    return bool(origin) and urlsplit(origin).netloc.lower() == request.host.lower()


def cookie_credential(request: HTTPServerRequest, upgrade: bool = False) -> str | None:
    """The token in the sign-in cookie, or None when there is none; FORBIDDEN when the request
    could come from another site (see the module's docstring)."""
    morsel = request.cookies.get(cookie_name(request))
    if morsel is None or not morsel.value:
        return None
    if upgrade and not same_origin(request):
        raise Forbidden("The sign-in cookie is accepted only from this server's own pages")
    if not upgrade and request.method not in SAFE_METHODS:
        if not request.headers.get(CSRF_HEADER):
            raise Forbidden(f"A request signed in by cookie must send the {CSRF_HEADER} header")
        if request.headers.get("Origin") and not same_origin(request):
            raise Forbidden("The sign-in cookie is accepted only from this server's own pages")
    return morsel.value

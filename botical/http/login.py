"""`POST /api/login` and `POST /api/logout`: the web console's sign-in by cookie.

Login takes the token `botical serve` printed (or any access token or unscoped API key) and
answers with a fresh access token for the same user in an HttpOnly, SameSite=Strict cookie
that lives no longer than the token given (botical.auth.cookie says where it is accepted).
"""

from __future__ import annotations

import contextlib

from marshmallow import Schema, fields, validate

from botical.auth.cookie import CSRF_HEADER, cookie_credential, cookie_name
from botical.auth.identity import MAX_CREDENTIAL_LENGTH
from botical.db import now_ms
from botical.errors import BoticalError, Forbidden
from botical.hookspecs import RegisterRoute, hookimpl
from botical.http.base import BaseHandler
from botical.schema import load


class LoginBody(Schema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=MAX_CREDENTIAL_LENGTH))


class LoginHandler(BaseHandler):
    async def post(self) -> None:
        if not self.request.headers.get(CSRF_HEADER):
            raise Forbidden(f"Sign-in must send the {CSRF_HEADER} header")
        body = load(LoginBody(), self.json_body())
        identity = await self.botical.auth.authenticate(body["token"])
        if identity.project_scope is not None:  # a cookie for the whole user would widen it
            raise Forbidden("A project-scoped API key cannot sign in to the console")
        tokens = self.botical.tokens
        ttl = tokens.default_ttl
        if identity.expires_at is not None:  # never outlive the token given
            ttl = min(ttl, max(1, (identity.expires_at - now_ms()) // 1000))
        issued = tokens.issue(identity.user_id, ttl)
        self.set_cookie(
            cookie_name(self.request),
            issued.token,
            path="/",
            expires_days=None,
            max_age=ttl,
            httponly=True,
            secure=self.request.protocol == "https",
            samesite="Strict",
        )
        signed_in = await self.botical.auth.authenticate(issued.token)
        self.write_json(signed_in.to_dict())


class LogoutHandler(BaseHandler):
    async def post(self) -> None:
        token = cookie_credential(self.request)  # FORBIDDEN without the CSRF header
        if token is not None:
            # expired or invalid already: clearing the cookie is all there is to do
            with contextlib.suppress(BoticalError):
                await self.botical.tokens.revoke(token)
        self.clear_cookie(cookie_name(self.request), path="/")
        self.set_status(204)
        self.finish()


@hookimpl
def botical_register_routes(register: RegisterRoute) -> None:
    register(r"/api/login", LoginHandler)
    register(r"/api/logout", LogoutHandler)

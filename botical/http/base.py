"""Base handlers: JSON in and out, the error shape, and authentication on every API route."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import tornado.web

from botical import jsonin
from botical.auth.cookie import cookie_credential
from botical.auth.identity import Identity, bearer_token
from botical.auth.permissions import Role
from botical.errors import BoticalError, InternalError, NotFound, PayloadTooLarge, ValidationError
from botical.jsonout import dumps

if TYPE_CHECKING:
    from botical.app import Botical

log = logging.getLogger(__name__)
_TOKEN_IN_QUERY = re.compile(r"(?i)([?&](?:token|access_token|api_key)=)[^&#]*")

_HTTP_CODES: dict[int, type[BoticalError]] = {
    404: NotFound,
    405: NotFound,
    413: PayloadTooLarge,
    400: ValidationError,
}


def redact_uri(uri: str) -> str:
    """The URI with any token in its query string replaced, for logs."""
    return _TOKEN_IN_QUERY.sub(r"\1[redacted]", uri)


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Tornado access log without secrets: tokens in query strings are redacted."""
    status = handler.get_status()
    logger = logging.getLogger("tornado.access")
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    request = handler.request
    logger.log(
        level,
        "%d %s %s (%s) %.2fms",
        status,
        request.method,
        redact_uri(request.uri or ""),
        request.remote_ip,
        1000.0 * request.request_time(),
    )


class BaseHandler(tornado.web.RequestHandler):
    """JSON responses and the `{error: {code, message, details?}}` body for every failure."""

    @property
    def botical(self) -> Botical:
        return self.application.settings["botical"]

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    def check_xsrf_cookie(self) -> None:
        """Tornado's own check is off: the sign-in cookie has its own (botical.auth.cookie)."""

    def write_json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(dumps(value))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if not isinstance(exc, BoticalError):
            cls = _HTTP_CODES.get(status_code, InternalError)
            exc = InternalError() if cls is InternalError else cls(self._reason)
        self.finish(dumps({"error": exc.to_payload()}))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, BoticalError) and not isinstance(value, InternalError):
            return  # an expected client error, already answered
        super().log_exception(typ, value, tb)

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, BoticalError):
            self.log_exception(type(e), e, e.__traceback__)
            if not self._finished:
                self.send_error(e.status, exc_info=(type(e), e, e.__traceback__))
            return
        super()._handle_request_exception(e)

    def json_body(self) -> Any:
        """The parsed JSON body (`{}` when empty), for services that validate it themselves."""
        body = self.request.body
        if len(body) > self.botical.settings.max_body_size:
            raise PayloadTooLarge()
        return jsonin.loads(body or b"{}")


class ApiHandler(BaseHandler):
    """Every `/api` route: a Bearer token or API key is required, or the console's cookie."""

    identity: Identity

    async def prepare(self) -> None:
        header = self.request.headers.get("Authorization")
        credential = bearer_token(header)
        if header is None:  # the console's sign-in cookie, only when no header is sent
            credential = cookie_credential(self.request)
        self.identity = await self.botical.auth.authenticate(credential)

    async def require(self, project_id: str, role: Role) -> Role:
        """Authorize the caller on a project; NOT_FOUND or FORBIDDEN otherwise."""
        return await self.botical.permissions.require(self.identity, project_id, role)


class NotFoundHandler(BaseHandler):
    """Every unmatched path answers the JSON NOT_FOUND error."""

    def prepare(self) -> None:
        raise NotFound("No such route")

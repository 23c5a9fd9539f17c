"""users.me: who the caller is."""

from __future__ import annotations

import sys
from typing import Any

from marshmallow import Schema

from botical.hookspecs import hookimpl
from botical.methods import MethodContext, method, rest
from botical.methods import results as r


class NoParams(Schema):
    pass


@rest("GET /api/me")
@method("users.me", NoParams, r.MeResult, role=None, scope=None)
async def me(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Describe the caller: the user and the credential in use."""
    return ctx.identity.to_dict()


@hookimpl
def botical_register_methods(register) -> None:
    register(sys.modules[__name__])

"""apikeys.* and tokens.revoke: the caller's own API keys, and signing a token out. A revoked
credential's open sockets are closed at once (4001)."""

from __future__ import annotations

import sys
from typing import Any

from marshmallow import Schema, fields, validate

from botical.auth.permissions import READ
from botical.errors import Forbidden, ValidationError
from botical.hookspecs import hookimpl
from botical.ids import check_id
from botical.methods import MethodContext, method, rest
from botical.methods import results as r


class NoParams(Schema):
    pass


class CreateParams(Schema):
    name = fields.String(validate=validate.Length(max=200))
    projectId = fields.String(validate=validate.Length(max=40))


class KeyParams(Schema):
    keyId = fields.String(required=True, validate=validate.Length(max=40))


class CreatedKey(Schema):
    key = r.one(r.ApiKeyResult)
    secret = r.string(metadata={"description": "the API key itself, shown only this once"})


def _not_scoped(ctx: MethodContext) -> None:
    if ctx.identity.project_scope is not None:  # it would mint keys wider than itself
        raise Forbidden("A project-scoped API key cannot manage API keys")


@rest("GET /api/apikeys")
@method("apikeys.list", NoParams, r.page_of(r.ApiKeyResult), role=None, scope=None)
async def list_(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """List the caller's API keys, newest first (never the keys themselves)."""
    _not_scoped(ctx)
    return {"items": await ctx.app.apikeys.list_for(ctx.identity.user_id), "nextCursor": None}


@rest("POST /api/apikeys", 201)
@method("apikeys.create", CreateParams, CreatedKey, role=None, scope=None)
async def create(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Create an API key for the caller, optionally limited to one of their projects."""
    _not_scoped(ctx)
    project_id = p.get("projectId")
    if project_id is not None:
        await ctx.app.permissions.require(ctx.identity, check_id(project_id, "prj"), READ)
    key, secret = await ctx.app.apikeys.create(ctx.identity.user_id, project_id, p.get("name", ""))
    return {"key": key, "secret": secret}


@rest("POST /api/apikeys/{keyId}/revoke")
@method("apikeys.revoke", KeyParams, r.ApiKeyResult, role=None, scope=None)
async def revoke_key(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Revoke one of the caller's API keys; its open sockets close at once."""
    _not_scoped(ctx)
    key_id = check_id(p["keyId"], "key", "keyId")
    return await ctx.app.apikeys.revoke(key_id, ctx.identity.user_id)


@rest("POST /api/tokens/revoke", 204)
@method("tokens.revoke", NoParams, r.Nothing, role=None, scope=None)
async def revoke_token(ctx: MethodContext, p: dict[str, Any]) -> None:
    """Sign out: revoke the access token of this call; its open sockets close at once."""
    identity = ctx.identity
    if identity.kind != "token" or identity.expires_at is None:
        raise ValidationError(
            details={"_schema": ["Only an access token signs out; use apikeys.revoke."]}
        )
    await ctx.app.tokens.revoke_jti(identity.credential_id, identity.user_id, identity.expires_at)


@hookimpl
def botical_register_methods(register) -> None:
    register(sys.modules[__name__])

"""Request and answer schemas of accounts, tokens, sign-in and the audit log."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from hub.access.passwords import MAX_LENGTH
from hub.access.permissions import ROLES

_secret = validate.Length(min=1, max=MAX_LENGTH)


def _codes(**kwargs: object) -> fields.List:
    return fields.List(fields.Str(validate=validate.Length(min=1, max=64)), validate=validate.Length(min=1, max=500),
                       metadata={"description": "Area codes; each stands for its subtree"}, **kwargs)


class LoginSchema(Schema):
    name = fields.Str(required=True, validate=validate.Length(min=1, max=100))
    password = fields.Str(required=True, load_only=True, validate=_secret)


class PasswordChangeSchema(Schema):
    current_password = fields.Str(required=True, load_only=True, validate=_secret)
    new_password = fields.Str(required=True, load_only=True, validate=_secret,
                              metadata={"description": "At least 12 characters, not the account name"})


class UserOutSchema(Schema):
    id = fields.Int(allow_none=True)
    name = fields.Str()
    full_name = fields.Str()
    roles = fields.List(fields.Str(validate=validate.OneOf(ROLES)))
    areas = fields.List(fields.Str(), metadata={"description": "Area codes; each stands for its subtree"})
    disabled = fields.Bool()
    login = fields.Bool(metadata={"description": "False for an account that only holds API tokens"})
    created_at = fields.AwareDateTime(allow_none=True)
    created_by = fields.Str(allow_none=True)
    password_changed_at = fields.AwareDateTime(allow_none=True)
    last_login_at = fields.AwareDateTime(allow_none=True)


class UserCreatedSchema(UserOutSchema):
    password = fields.Str(allow_none=True, metadata={
        "description": "The generated password, shown this once (null when the request gave one)"})


class UserCreateSchema(Schema):
    name = fields.Str(required=True, metadata={"description": "Sign-in name: lower-case letters, digits, . _ @ -"})
    full_name = fields.Str(load_default="", validate=validate.Length(max=200))
    roles = fields.List(fields.Str(validate=validate.OneOf(ROLES)), required=True,
                        validate=validate.Length(min=1))
    areas = _codes(required=True)
    password = fields.Str(load_only=True, validate=_secret,
                          metadata={"description": "Optional; when absent a password is generated and answered once"})
    login = fields.Bool(load_default=True, metadata={"description": "False: no password, API tokens only"})


class UserUpdateSchema(Schema):
    full_name = fields.Str(validate=validate.Length(max=200))
    roles = fields.List(fields.Str(validate=validate.OneOf(ROLES)), validate=validate.Length(min=1))
    areas = _codes()
    disabled = fields.Bool(metadata={"description": "A disabled account cannot sign in; its sessions end and "
                                                    "its tokens stop working"})


class PasswordResetSchema(Schema):
    password = fields.Str(load_only=True, validate=_secret,
                          metadata={"description": "Optional; when absent a password is generated and answered once"})


class PasswordOutSchema(Schema):
    password = fields.Str(allow_none=True)


class MeSchema(Schema):
    user = fields.Nested(UserOutSchema)
    csrf_token = fields.Str(allow_none=True, metadata={
        "description": "Send as X-CSRF-Token with every POST, PUT, PATCH, DELETE made with the session cookie"})
    via = fields.Str(metadata={"description": "session, or token:<id>"})
    read_only = fields.Bool()
    areas = fields.List(fields.Str(), metadata={"description": "Areas this request may touch"})


class TokenCreateSchema(Schema):
    user = fields.Str(required=True, metadata={"description": "Name of the account the token acts as"})
    name = fields.Str(required=True, validate=validate.Length(min=1, max=100),
                      metadata={"description": "What uses it (ci, the province's alerting system…)"})
    areas = _codes(load_default=None)  # narrows the token to these areas, inside the user's
    read_only = fields.Bool(load_default=False)


class TokenOutSchema(Schema):
    id = fields.Int()
    user = fields.Str()
    name = fields.Str()
    prefix = fields.Str(metadata={"description": "The token's first characters, to tell tokens apart"})
    areas = fields.List(fields.Str(), allow_none=True)
    read_only = fields.Bool()
    created_at = fields.AwareDateTime()
    created_by = fields.Str()
    last_used_at = fields.AwareDateTime(allow_none=True, metadata={"description": "To the minute"})
    revoked_at = fields.AwareDateTime(allow_none=True)
    revoked_by = fields.Str(allow_none=True)


class TokenCreatedSchema(TokenOutSchema):
    token = fields.Str(metadata={"description": "The token, shown this once; only its sha256 is kept"})


class AuditOutSchema(Schema):
    seq = fields.Int()
    at = fields.AwareDateTime()
    actor = fields.Str()
    actor_id = fields.Int(allow_none=True, metadata={"description": "The account's id (a name can be taken again "
                                                                    "after its account is deleted); none for "
                                                                    "cli:<user>, local-admin and older entries"})
    via = fields.Str()
    action = fields.Str()
    object_type = fields.Str()
    object_id = fields.Str(allow_none=True)
    areas = fields.List(fields.Str(), metadata={"description": "Areas the action touched"})
    detail = fields.Dict(allow_none=True)
    prev_hash = fields.Str()
    hash = fields.Str()


class VerdictSchema(Schema):
    ok = fields.Bool()
    entries = fields.Int()
    head = fields.Str(metadata={"description": "Hash of the last entry: keep it elsewhere to detect a rewrite"})
    broken_seq = fields.Int(allow_none=True)
    problem = fields.Str(allow_none=True)
    keyed_from = fields.Int(allow_none=True, metadata={"description": "First entry whose link is keyed with the "
                                                                      "audit key; earlier ones predate it"})

"""Who may do what: API tokens, roles, and the checks every endpoint declares.

Roles. ``viewer`` < ``responder`` < ``admin`` are ordered: each can do what the one before
can, and more. ``agent`` stands apart: it ships events, posts webhooks and reads policies,
and nothing else. Each endpoint names one :class:`Permission`:

==========  ======================================  =========================================
permission  roles                                   used by
==========  ======================================  =========================================
public      anyone, no token                        health
read        viewer, responder, admin                incidents, actions, runbook, config, ...
policy      agent, viewer, responder, admin         ``GET /policy/{service}``
ingest      agent, admin                            events, Alertmanager, PagerDuty, changes
report      agent, responder, admin                 user reports
respond     responder, admin                        acknowledge, comment, resolve, decide
admin       admin                                   runbook, config changes, tokens, audit
==========  ======================================  =========================================

Tokens. A token reads ``stanch_<id>_<secret>``: ``id`` finds the stored row, and only the
SHA-256 of ``secret`` is stored. A plain hash suffices here (no salt, no slow KDF) because the
secret is 256 random bits, not a password: nothing can be guessed, so there is no dictionary
to slow down, and the check stays a microsecond. It is compared with
:func:`hmac.compare_digest`. Tokens are sent as ``Authorization: Bearer <token>``.

Webhooks (Alertmanager, PagerDuty, reports, changes) also accept, instead of a token, an
HMAC-SHA256 of the raw body under the source's shared secret (``STANCH_WEBHOOK_SECRET_<SOURCE>``)
in ``X-Stanch-Signature: sha256=<hex>``; the PagerDuty endpoint also takes a token as its
``routing_key``, for senders that only know PagerDuty's format. A bearer token wins when both
are present. A missing or wrong credential is 401; a valid one without the role is 403.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from stanch.core.errors import ValidationError
from stanch.store import Store, StoredToken

if TYPE_CHECKING:
    from stanch.server.context import ServerContext

TOKEN_PREFIX: Final = "stanch"
SIGNATURE_HEADER: Final = "X-Stanch-Signature"
PERMISSION_ATTR: Final = "__stanch_permission__"


class Role(StrEnum):
    VIEWER = "viewer"
    RESPONDER = "responder"
    ADMIN = "admin"
    AGENT = "agent"


class Permission(StrEnum):
    PUBLIC = "public"
    READ = "read"
    POLICY = "policy"
    INGEST = "ingest"
    REPORT = "report"
    RESPOND = "respond"
    ADMIN = "admin"


_R = Role
ROLES: Final[dict[Permission, frozenset[Role]]] = {
    Permission.PUBLIC: frozenset(Role),
    Permission.READ: frozenset({_R.VIEWER, _R.RESPONDER, _R.ADMIN}),
    Permission.POLICY: frozenset({_R.AGENT, _R.VIEWER, _R.RESPONDER, _R.ADMIN}),
    Permission.INGEST: frozenset({_R.AGENT, _R.ADMIN}),
    Permission.REPORT: frozenset({_R.AGENT, _R.RESPONDER, _R.ADMIN}),
    Permission.RESPOND: frozenset({_R.RESPONDER, _R.ADMIN}),
    Permission.ADMIN: frozenset({_R.ADMIN}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a token's holder, or a webhook source proven by its signature."""

    name: str
    role: Role | None  # None for a signed webhook
    via: str  # "token <id>" or "signature"

    @property
    def actor(self) -> str:
        """How the audit trail names the caller: ``"erin (responder)"``."""
        return f"{self.name} ({self.role.value if self.role else 'signed webhook'})"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def issue_token(
    store: Store, name: str, role: str, *, created_by: str, now: float
) -> tuple[StoredToken, str]:
    """Create a token; returns it and the full secret string, which is never stored."""
    try:
        role_value = Role(role)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise ValidationError(f"unknown role {role!r}: expected one of {roles}") from None
    name = name.strip()
    if not name or len(name) > 100:
        raise ValidationError("a token name must have 1 to 100 characters")
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)  # 256 bits: see the module docstring on hashing
    stored = StoredToken(
        token_id, name, role_value.value, hash_secret(secret), now, created_by, None
    )
    store.add_token(stored)
    return stored, f"{TOKEN_PREFIX}_{token_id}_{secret}"


def parse_token(raw: str) -> tuple[str, str] | None:
    """(id, secret) of a token string, or None if it is not shaped like one."""
    prefix, _, rest = raw.strip().partition("_")
    token_id, _, secret = rest.partition("_")
    if prefix != TOKEN_PREFIX or not token_id or not secret or len(raw) > 200:
        return None
    return token_id, secret


class TokenChecker:
    """Checks token strings against the store, trusting a positive answer for ``ttl_s``.

    The cache spares the store a read on every request of a busy agent; revocation through
    the API clears it at once, and revocation from another process takes effect within
    ``ttl_s``.
    """

    def __init__(self, store: Store, clock: Callable[[], float], ttl_s: float) -> None:
        self.store = store
        self.clock = clock
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[StoredToken, float]] = {}

    def check(self, raw: str) -> StoredToken | None:
        parsed = parse_token(raw)
        if parsed is None:
            return None
        token_id, secret = parsed
        now = self.clock()
        cached = self._cache.get(token_id)
        if cached is not None and now - cached[1] < self.ttl_s:
            token: StoredToken | None = cached[0]
        else:
            token = self.store.get_token(token_id)
            if token is not None:
                self._cache[token_id] = (token, now)
        if token is None or not token.active:
            return None
        if not hmac.compare_digest(token.secret_hash, hash_secret(secret)):
            return None
        return token

    def forget(self, token_id: str) -> None:
        self._cache.pop(token_id, None)


def sign(secret: str, body: bytes) -> str:
    """The ``X-Stanch-Signature`` value of ``body`` under ``secret``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(secret: str | None, body: bytes, header: str) -> bool:
    return bool(secret) and hmac.compare_digest(sign(secret or "", body), header.strip())


_bearer = HTTPBearer(auto_error=False, description="An API token: `stanch_<id>_<secret>`")
_signature = APIKeyHeader(
    name=SIGNATURE_HEADER,
    auto_error=False,
    scheme_name="WebhookSignature",
    description="`sha256=<hex>`: HMAC-SHA256 of the raw body under the source's secret",
)


def context_of(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.stanch
    return ctx


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def _principal(token: StoredToken, permission: Permission) -> Principal:
    role = Role(token.role)
    if role not in ROLES[permission]:
        allowed = ", ".join(sorted(r.value for r in ROLES[permission]))
        raise HTTPException(403, f"role {role.value} may not do this; it needs one of: {allowed}")
    return Principal(token.name, role, f"token {token.id}")


def require(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    """The dependency that lets a request through with a token allowed ``permission``."""
    if permission is Permission.PUBLIC:
        return _public()

    async def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    ) -> Principal:
        if credentials is None:
            raise _unauthorized("missing bearer token")
        token = context_of(request).tokens.check(credentials.credentials)
        if token is None:
            raise _unauthorized("invalid or revoked token")
        return _principal(token, permission)

    setattr(dependency, PERMISSION_ATTR, permission)
    return dependency


def _public() -> Callable[..., Awaitable[Principal]]:
    """No token needed. It must not depend on the bearer scheme: FastAPI would list that as
    the operation's ``security`` in OpenAPI, telling clients a token is required."""

    async def dependency() -> Principal:
        return Principal("anonymous", None, "public")

    setattr(dependency, PERMISSION_ATTR, Permission.PUBLIC)
    return dependency


def require_webhook(
    source: str, permission: Permission, *, routing_key_token: bool = False
) -> Callable[..., Awaitable[Principal]]:
    """Like :func:`require`, or a valid HMAC signature of the body under ``source``'s secret
    (or, with ``routing_key_token``, a token given as the body's ``routing_key``)."""

    async def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
        signature: str | None = Depends(_signature),
    ) -> Principal:
        ctx = context_of(request)
        if credentials is not None:
            token = ctx.tokens.check(credentials.credentials)
            if token is None:
                raise _unauthorized("invalid or revoked token")
            return _principal(token, permission)
        if signature is not None:
            body = await request.body()
            if not signature_ok(ctx.settings.webhook_secrets.get(source), body, signature):
                raise _unauthorized(f"bad {SIGNATURE_HEADER} for {source}")
            return Principal(source, None, "signature")
        if routing_key_token:
            token = ctx.tokens.check(_routing_key(await request.body()))
            if token is not None:
                return _principal(token, permission)
        raise _unauthorized(f"missing bearer token or {SIGNATURE_HEADER}")

    setattr(dependency, PERMISSION_ATTR, permission)
    return dependency


def _routing_key(body: bytes) -> str:
    try:
        data: Any = json.loads(body)
    except (ValueError, RecursionError):
        return ""
    key = data.get("routing_key") if isinstance(data, dict) else None
    return key if isinstance(key, str) else ""

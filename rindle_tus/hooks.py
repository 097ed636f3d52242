"""The host application's say: who may do what, and which uploads to accept.

``RINDLE_TUS_AUTHENTICATE`` names a callable called as ``(request)`` on every
tus request whose user Django's own middleware did not sign in (a client
without the browser's session cookie: tuspy, a mobile app). It returns the
user the request authenticates as (a token in ``Authorization``, say), or None
to leave it anonymous; a credential that is present but wrong should raise
``NotAuthenticated`` (401) with a message. The user it returns becomes
``request.user`` for the permission hook, ``created_by`` and the limits.

``RINDLE_TUS_PERMISSION`` names a callable (or a class whose instances have
``has_permission``) called as ``(request, action, session)`` on every request,
where ``action`` is one of ``create``, ``head``, ``patch``, ``delete``, ``get``
or ``concatenate`` and ``session`` is the ``TusSession`` (None for ``create``).
It returns True to allow; False refuses with 403, or 401 when the request's
user is not authenticated. It may also raise ``NotAuthenticated`` or
``Forbidden`` with a message of its own (or Django's ``PermissionDenied``,
which answers 403 the same way).

``RINDLE_TUS_PRE_CREATE`` names a callable called as
``(request, length, metadata)`` whenever an upload's length becomes known
before anything of it is stored: at creation (``length`` is None when
deferred), when a deferred length is declared by a PATCH, and for a final
concatenation with the sum of its partial uploads. ``metadata`` maps keys to
decoded bytes or None. To refuse, it raises
``rindle_tus.exceptions.UploadRejected(message, status=...)``; a per-user
quota is a few lines (see docs/integration.md).

``RINDLE_TUS_CLIENT_KEY`` names a callable ``(request) -> str`` that tells
signed-out clients apart for ``RINDLE_TUS_MAX_UNFINISHED``; by default their
address (``REMOTE_ADDR``: behind a proxy, make it the client's).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import HttpRequest
from django.utils.module_loading import import_string

from .conf import tus_settings
from .exceptions import Forbidden, NotAuthenticated

if TYPE_CHECKING:
    from .models import TusSession


def _resolve(value: Any) -> Any:
    if value is None:
        return None
    hook = import_string(value) if isinstance(value, str) else value
    if isinstance(hook, type):
        hook = hook()
    return getattr(hook, "has_permission", hook)


def _is_authenticated(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(getattr(user, "is_authenticated", False))


def authenticate(request: HttpRequest) -> None:
    """``RINDLE_TUS_AUTHENTICATE``, for a request not signed in already."""
    hook = tus_settings.AUTHENTICATE
    if hook is None or _is_authenticated(request):
        return
    user = (import_string(hook) if isinstance(hook, str) else hook)(request)
    if user is not None:
        request.user = user


def permits_all() -> bool:
    """Whether every request may do everything: no permission hook (the default), or ``allow_any``."""
    hook = _resolve(tus_settings.PERMISSION)
    return hook is None or hook is allow_any


def check_permission(request: HttpRequest, action: str, session: TusSession | None) -> None:
    hook = _resolve(tus_settings.PERMISSION)
    try:
        if hook is None or hook(request, action, session):
            return
    except DjangoPermissionDenied as exc:
        raise Forbidden(str(exc) or None) from exc
    if not _is_authenticated(request):
        raise NotAuthenticated()
    raise Forbidden()


def client_key(request: HttpRequest) -> str:
    """Who a signed-out request comes from ("" for a signed-in one)."""
    if _is_authenticated(request):
        return ""
    hook = tus_settings.CLIENT_KEY
    if hook is None:
        return str(request.META.get("REMOTE_ADDR", ""))[:128]
    return str((import_string(hook) if isinstance(hook, str) else hook)(request))[:128]


def pre_create(request: HttpRequest, length: int | None, metadata: Mapping[str, bytes | None]) -> None:
    hook = _resolve(tus_settings.PRE_CREATE)
    if hook is not None:
        hook(request, length, metadata)


# Ready-made policies for RINDLE_TUS_PERMISSION.


def allow_any(request: HttpRequest, action: str, session: TusSession | None) -> bool:
    return True


def authenticated_only(request: HttpRequest, action: str, session: TusSession | None) -> bool:
    return _is_authenticated(request)


def owner_only(request: HttpRequest, action: str, session: TusSession | None) -> bool:
    """Signed-in users only, and each upload only for the user who created it."""
    if not _is_authenticated(request):
        return False
    if session is None:
        return True
    user = getattr(request, "user", None)
    return session.created_by_id is not None and session.created_by_id == getattr(user, "pk", None)

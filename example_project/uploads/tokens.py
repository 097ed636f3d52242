"""Bearer tokens for tus clients that have no session cookie, through
``RINDLE_TUS_AUTHENTICATE`` (see settings.py)::

    python manage.py create_upload_token alice --name "phone app"

    from tusclient.client import TusClient
    TusClient("https://example.com/files/", headers={"Authorization": f"Bearer {token}"})
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.http import HttpRequest

from rindle_tus.exceptions import NotAuthenticated

from .models import UploadToken

SCHEME = "bearer"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue(user: Any, name: str = "") -> str:
    """A new token for ``user``; only its digest is kept."""
    token = secrets.token_urlsafe(32)
    UploadToken.objects.create(user=user, digest=digest(token), name=name)
    return token


def authenticate(request: HttpRequest) -> Any:
    """The user of ``Authorization: Bearer <token>``; None without that header
    (the request stays anonymous); 401 for a token that is not one of ours."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != SCHEME:
        return None
    found = UploadToken.objects.select_related("user").filter(digest=digest(token.strip())).first()
    if found is None or not found.user.is_active:
        raise NotAuthenticated("The bearer token is not valid.")
    return found.user

"""What a browser needs to speak tus (or the resumable upload draft) to another origin, ready for
django-cors-headers::

    from corsheaders.defaults import default_headers
    from rindle_tus.cors import CORS_ALLOW_HEADERS, CORS_EXPOSE_HEADERS

    CORS_ALLOW_HEADERS = (*default_headers, *CORS_ALLOW_HEADERS)
    CORS_EXPOSE_HEADERS = CORS_EXPOSE_HEADERS
    CORS_ALLOW_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST")
"""

from __future__ import annotations

from . import draft
from .protocol import REQUEST_HEADERS, RESPONSE_HEADERS

# tus's headers, and those the resumable upload draft adds.
CORS_ALLOW_HEADERS: tuple[str, ...] = (*REQUEST_HEADERS, *draft.REQUEST_HEADERS)
CORS_EXPOSE_HEADERS: tuple[str, ...] = (*RESPONSE_HEADERS, *draft.RESPONSE_HEADERS)
CORS_ALLOW_METHODS: tuple[str, ...] = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST")

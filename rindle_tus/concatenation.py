"""The concatenation extension: a final upload assembled from finished
partial uploads, server-side with UploadPartCopy where S3 allows it (every
partial but the last at least 5 MiB), by streaming the partials otherwise."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from django.http import HttpRequest
from django.urls import Resolver404, resolve

from .body import Body
from .conf import S3_MAX_PART_SIZE, S3_MIN_PART_SIZE
from .exceptions import InvalidRequest
from .hooks import check_permission, client_key
from .locking import Lease
from .metadata import content_type_of
from .models import ConcatKind, State, TusSession, is_session_id
from .receiver import Receiver
from .storage.s3 import S3Backend, s3_errors
from .uploads import create_session


def resolve_partials(request: HttpRequest, urls: Sequence[str]) -> list[TusSession]:
    partials: list[TusSession] = []
    for url in urls:
        parts = urlsplit(url)
        if parts.netloc and parts.netloc != request.get_host():
            raise InvalidRequest(f"Upload-Concat names {url!r}, which is not an upload of this server.")
        path = unquote(parts.path)
        script = request.META.get("SCRIPT_NAME", "").rstrip("/")
        if script and path.startswith(script + "/"):
            path = path[len(script) :]
        try:
            match = resolve(path)
        except Resolver404:
            raise InvalidRequest(f"Upload-Concat names {url!r}, which is not an upload.") from None
        upload_id = match.kwargs.get("upload_id")
        if match.view_name != "rindle_tus:upload" or not upload_id or not is_session_id(upload_id):
            raise InvalidRequest(f"Upload-Concat names {url!r}, which is not an upload.")
        session = TusSession.objects.filter(pk=upload_id).first()
        if session is None:
            raise InvalidRequest(f"Upload-Concat names {url!r}, which does not exist.")
        if session.concat != ConcatKind.PARTIAL:
            raise InvalidRequest(f"Upload-Concat names {url!r}, which is not a partial upload.")
        user_pk = getattr(getattr(request, "user", None), "pk", None)
        if session.created_by_id is not None and session.created_by_id != user_pk:
            raise InvalidRequest(f"Upload-Concat names {url!r}, which belongs to someone else.")
        check_permission(request, "concatenate", session)
        if session.state != State.COMPLETED:
            raise InvalidRequest(f"Upload-Concat names {url!r}, which is not finished.")
        if any(p.pk == session.pk for p in partials):
            # Copied server-side, one small partial named many times would
            # make an object of any size out of nothing the client sent.
            raise InvalidRequest(f"Upload-Concat names {url!r} more than once.")
        partials.append(session)
    return partials


def final_length(partials: Sequence[TusSession]) -> int:
    return sum(int(p.length or 0) for p in partials)


def create_final(
    request: HttpRequest,
    backend: S3Backend,
    partials: Sequence[TusSession],
    urls: Sequence[str],
    metadata_raw: str,
    metadata: dict[str, Any],
) -> TusSession:
    """Assemble the final upload of ``partials`` (from ``resolve_partials``)."""
    total = final_length(partials)
    final = create_session(
        backend,
        length=total,
        metadata_raw=metadata_raw,
        metadata=metadata,
        user=getattr(request, "user", None),
        client=client_key(request),
        concat=ConcatKind.FINAL,
        concat_sources=[{"id": p.id, "url": url} for p, url in zip(partials, urls, strict=True)],
    )
    sources = [p for p in partials if p.length]
    lease = Lease.acquire(final.id)
    try:
        receiver = Receiver(final, lease, backend)
        if all(int(p.length or 0) >= S3_MIN_PART_SIZE for p in sources[:-1]):
            _copy(receiver, backend, sources)
        else:
            receiver.receive(Body(_Concatenated(backend, [p.key for p in sources]), total), None)
    finally:
        lease.release()
    return final


def _copy(receiver: Receiver, backend: S3Backend, sources: list[TusSession]) -> None:
    final = receiver.session
    if not sources:
        receiver.finish([])
        return
    upload_id = backend.create_multipart(final.key, content_type_of(final))
    receiver.lease.commit(final, upload_id=upload_id)
    parts: list[dict[str, Any]] = []
    for source in sources:
        for first, last in _ranges(int(source.length or 0)):
            etag = backend.upload_part_copy(final.key, upload_id, len(parts) + 1, source.key, first, last)
            parts.append({"number": len(parts) + 1, "etag": etag, "size": last - first + 1})
            receiver.lease.beat()
    receiver.finish(parts)


def _ranges(size: int) -> list[tuple[int, int]]:
    """Split ``size`` bytes into near-equal inclusive ranges of at most 5 GiB."""
    count = -(-size // S3_MAX_PART_SIZE)
    step = -(-size // count)
    return [(start, min(start + step, size) - 1) for start in range(0, size, step)]


class _Concatenated:
    """The partial objects, read one after another as one stream."""

    def __init__(self, backend: S3Backend, keys: list[str]) -> None:
        self.backend = backend
        self.keys = list(keys)
        self.body: Any = None

    def read(self, size: int = -1, /) -> bytes:
        while True:
            if self.body is None:
                if not self.keys:
                    return b""
                self.body = self.backend.open(self.keys.pop(0))
            with s3_errors("read a partial upload"):
                data: bytes = self.body.read(size)
            if data:
                return data
            self.body.close()
            self.body = None

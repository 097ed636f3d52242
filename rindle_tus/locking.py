"""The per-session lease: a holder token and an expiry in the session's row,
taken with one conditional UPDATE, so that it works across processes and
nodes without holding a database transaction open while bytes stream in."""

from __future__ import annotations

import secrets
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import timedelta
from typing import TypeVar

from django.db.models import Q
from django.utils import timezone

from .conf import tus_settings
from .exceptions import LeaseLost, Locked
from .models import TusSession

T = TypeVar("T")


class Lease:
    def __init__(self, session_id: str, token: str, seconds: float) -> None:
        self.session_id = session_id
        self.token = token
        self.seconds = seconds
        self._renewed = time.monotonic()

    @classmethod
    def acquire(cls, session_id: str) -> Lease:
        seconds = tus_settings.LEASE_SECONDS
        token = secrets.token_hex(16)
        now = timezone.now()
        taken = (
            TusSession.objects.filter(pk=session_id)
            .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now))
            .update(lease_token=token, lease_expires_at=now + timedelta(seconds=seconds))
        )
        if taken != 1:
            raise Locked()
        return cls(session_id, token, seconds)

    def renew_if_due(self) -> None:
        """Extend the lease once a third of it has passed."""
        if time.monotonic() - self._renewed >= self.seconds / 3:
            self.renew()

    def renew(self) -> None:
        expires = timezone.now() + timedelta(seconds=self.seconds)
        count = TusSession.objects.filter(pk=self.session_id, lease_token=self.token).update(
            lease_expires_at=expires
        )
        if count != 1:
            raise LeaseLost()
        self._renewed = time.monotonic()

    def wait_for(self, future: Future[T]) -> T:
        """``future.result()``, renewing the lease (when due) while waiting.

        For storage work on another thread that a newer request must not
        overlap: as long as this request lives, nobody takes the session over
        before the work is done. Runs on the request thread, whose database
        connection the renewal uses.
        """
        while True:
            try:
                return future.result(timeout=self.seconds / 6)
            except FutureTimeout:
                self.renew_if_due()

    def release(self) -> None:
        TusSession.objects.filter(pk=self.session_id, lease_token=self.token).update(
            lease_token="", lease_expires_at=None
        )

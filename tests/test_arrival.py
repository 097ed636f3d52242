"""The newest arrival wins: each writing request takes a place in line
(``handover.arrive``) when it reaches its view, so a request cut by the
network that reaches its view late gives way to the client's retry, and the
retry is never refused in its favour.

Before, the place was the epoch each request read: a cut request and the
retry that read the same epoch were told apart only by which took the lease
first, and a retry that lost that race was refused (400), which a client
that does not retry (tuspy) could not recover from.
"""

from __future__ import annotations

import pytest

from rindle_tus.exceptions import UploadInterrupted
from rindle_tus.handover import arrive
from rindle_tus.locking import Lease

from .conftest import TusClient, session_for

pytestmark = pytest.mark.django_db(transaction=True)


def new_upload(tus: TusClient) -> str:
    response = tus.create(length=10)
    assert response.status_code == 201
    return str(session_for(response["Location"]).pk)


def test_an_earlier_arrival_gives_way_to_a_later_one_whoever_takes_the_lease_first(tus: TusClient) -> None:
    upload = new_upload(tus)
    cut, retry = arrive(upload), arrive(upload)
    with pytest.raises(UploadInterrupted):
        Lease.acquire(upload, arrival=cut, wait=0)
    lease = Lease.acquire(upload, arrival=retry, wait=0)
    lease.release()


def test_a_later_arrival_takes_over_from_an_earlier_one_holding_the_lease(tus: TusClient) -> None:
    upload = new_upload(tus)
    first = Lease.acquire(upload, arrival=arrive(upload), wait=0)
    second = arrive(upload)
    # The holder is asked to hand over; here it is this test, which releases at once.
    first.release()
    Lease.acquire(upload, arrival=second, wait=1).release()
    with pytest.raises(UploadInterrupted):
        Lease.acquire(upload, arrival=second - 1, wait=0)

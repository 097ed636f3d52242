"""Whether this deployment can take an upload end to end, tried for real:
the settings, the upload folder, and the bucket with the storage's own
credentials and parameters (reachable, writable, multipart allowed, objects
readable and deletable). Run by ``manage.py rindle_tus_doctor`` and by
``manage.py check --deploy``.

The system checks cannot see a missing bucket or refused credentials: without
this, the first sign is a 502 on the first PATCH.
"""

from __future__ import annotations

from django.core.checks import CheckMessage

from .checks import check_settings, check_tmp_dir
from .storage.folder import tail_dir
from .storage.probe import Finding, probe_bucket


def examine() -> list[Finding]:
    """Each step in order; the bucket's steps stop at the first that fails
    (a bucket that cannot be reached cannot be written either)."""
    problems = [m for m in check_settings() if m.is_serious() and m.id != "rindle_tus.E020"]
    findings = [_from_checks("settings", problems, "valid")]
    findings.append(_from_checks("upload folder", check_tmp_dir(), f"{tail_dir()} can be written"))
    if any(m.id in ("rindle_tus.E001", "rindle_tus.E002") for m in problems):
        return findings  # no S3 storage to try
    return findings + probe_bucket()


def _from_checks(name: str, messages: list[CheckMessage], fine: str) -> Finding:
    if not messages:
        return Finding(name, True, fine)
    return Finding(name, False, "; ".join(f"{m.msg} ({m.id})" for m in messages))

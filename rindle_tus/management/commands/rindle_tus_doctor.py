"""``manage.py rindle_tus_doctor``: can this deployment take an upload? One line per step."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from rindle_tus import doctor


class Command(BaseCommand):
    help = (
        "Try what an upload needs, for real: the settings, the upload folder, and the bucket with the "
        "storage's credentials (reach it, a multipart upload of one small part, read it back, delete it)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        findings = doctor.examine()
        for finding in findings:
            (self.stdout if finding.ok else self.stderr).write(str(finding))
        failed = [f.name for f in findings if not f.ok]
        if failed:
            raise CommandError(f"Uploads will fail here: {', '.join(failed)}.")
        self.stdout.write("Uploads can be taken here.")

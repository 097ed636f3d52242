"""``manage.py rindle_tus_reap``: the reaper for cron, one line per item and a summary."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from rindle_tus import maintenance


class Command(BaseCommand):
    help = (
        "Abort and clean expired uploads, abort orphan multipart uploads, sweep this node's tail files "
        "and delete old rows. Failed steps are marked and retried on the next run."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Report what would be done; change nothing.")
        parser.add_argument(
            "--only",
            action="append",
            choices=maintenance.STEPS,
            help="Run only this step (repeatable). Run 'tails' on every web node.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = maintenance.reap(dry_run=options["dry_run"], only=options["only"])
        for action in report.actions:
            line = str(action)
            if action.result == maintenance.FAILED:
                self.stderr.write(line)
            else:
                self.stdout.write(line)
        self.stdout.write(report.summary())
        if report.failed:
            raise CommandError(f"{len(report.failed)} step(s) failed; they are retried on the next run.")

"""``manage.py create_upload_token USERNAME``: a bearer token for a tus client, shown once."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from example_project.uploads.tokens import issue


class Command(BaseCommand):
    help = "Issue a bearer token with which a tus client (tuspy, a mobile app) uploads as USERNAME."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="What the token is for.")

    def handle(self, *args: Any, **options: Any) -> None:
        model = get_user_model()
        try:
            user = model.objects.get(**{model.USERNAME_FIELD: options["username"]})
        except model.DoesNotExist as exc:
            raise CommandError(f"No user {options['username']!r}.") from exc
        self.stdout.write(issue(user, options["name"]))

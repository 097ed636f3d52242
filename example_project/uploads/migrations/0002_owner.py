import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def owners_from_sessions(apps, schema_editor):
    """Records made before this migration: their owner, from the sessions not reaped yet."""
    FinishedUpload = apps.get_model("uploads", "FinishedUpload")
    TusSession = apps.get_model("rindle_tus", "TusSession")
    session = TusSession.objects.filter(id=OuterRef("session_id"))
    FinishedUpload.objects.filter(session_id__in=TusSession.objects.values("id")).update(
        created_by_id=Subquery(session.values("created_by_id")[:1]),
        client=Subquery(session.values("client")[:1]),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("uploads", "0001_initial"),
        ("rindle_tus", "0002_limits_and_handover"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="finishedupload",
            name="created_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="finishedupload",
            name="client",
            field=models.CharField(blank=True, help_text="Who created it, when not signed in.", max_length=128),
        ),
        migrations.RunPython(owners_from_sessions, migrations.RunPython.noop),
    ]

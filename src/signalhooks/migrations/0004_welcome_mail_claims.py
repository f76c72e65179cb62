from __future__ import annotations

from typing import Any

from django.db import migrations, models


def date_open_claims(apps: Any, schema_editor: Any) -> None:
    """Give mails claimed before claims were dated their last change as claim time."""
    WelcomeMail = apps.get_model("signalhooks", "WelcomeMail")
    WelcomeMail.objects.using(schema_editor.connection.alias).filter(status="sending").update(
        claimed_at=models.F("updated_at")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("signalhooks", "0003_invalidation_retry"),
    ]

    operations = [
        migrations.AddField(
            model_name="welcomemail",
            name="claimed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="welcomemail",
            name="retry_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(date_open_claims, migrations.RunPython.noop, elidable=True),
    ]

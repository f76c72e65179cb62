from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    # The retry store of failed cache invalidations (issue 11).
    dependencies = [
        ("signalhooks", "0002_welcome_mail_due_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="InvalidationRetry",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("cache", models.CharField(max_length=100)),
                ("keys", models.JSONField(default=list)),
                ("tags", models.JSONField(default=list)),
                ("patterns", models.JSONField(default=list)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "verbose_name": "invalidation retry",
                "indexes": [
                    models.Index(fields=["cache", "id"], name="signalhooks_retry_cache"),
                ],
            },
        ),
    ]

from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("devtools", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="invalidation",
            name="cause",
            field=models.TextField(blank=True, help_text="The saves and deletes behind the flush."),
        ),
    ]

from __future__ import annotations

import django
from django.db import migrations, models

# Remark exists on Django 6.1+ only: on_delete=DB_CASCADE is new in 6.1.
operations = (
    [
        migrations.CreateModel(
            name="Remark",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "post",
                    models.ForeignKey(
                        on_delete=models.DB_CASCADE,
                        related_name="remarks",
                        to="relatedapp.post",
                    ),
                ),
            ],
        )
    ]
    if django.VERSION >= (6, 1)
    else []
)


class Migration(migrations.Migration):
    dependencies = [("relatedapp", "0002_orders")]
    operations = operations

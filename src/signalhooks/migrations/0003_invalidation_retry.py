from __future__ import annotations

from django.db import migrations


class Migration(migrations.Migration):
    # The retry store of failed cache invalidations (issue 11) fills this in.
    dependencies = [
        ("signalhooks", "0002_welcome_mail_due_index"),
    ]

    operations = []

"""Database capture (``SIGNALHOOKS["CAPTURE"] = "database"``): triggers do what hooks cannot see.

Layout, downhill: :mod:`.spec` (declarations as tables and columns) → :mod:`.sql` (what
both vendors share) → :mod:`.sqlite` / :mod:`.postgresql` (whole triggers) →
:mod:`.install` (create, replace, drop; post_migrate) → :mod:`.checks`, :mod:`.outbox`
(delivery of the rules' changes; ``manage.py signalhooks follow``) → :mod:`.own` (the
committing process delivers its own transaction's rows).
"""

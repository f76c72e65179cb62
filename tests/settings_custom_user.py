from __future__ import annotations

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.usersapp"]
AUTH_USER_MODEL = "usersapp.Member"
# django-allauth (installed by tests.settings) reads these field names from the user model.
ACCOUNT_USER_MODEL_USERNAME_FIELD = "handle"
ACCOUNT_USER_MODEL_EMAIL_FIELD = "contact"

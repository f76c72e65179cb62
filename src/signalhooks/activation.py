"""Activation links for users who are not active yet: a token and the URL that takes it."""

from __future__ import annotations

import logging
from typing import Any, cast

from django.apps import apps
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.exceptions import ImproperlyConfigured, ObjectDoesNotExist
from django.db.models import Model
from django.urls import NoReverseMatch, reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from .conf import conf

logger = logging.getLogger("signalhooks")


class ActivationTokenGenerator(PasswordResetTokenGenerator):
    """Django's password-reset tokens, salted apart, and spent by the activation.

    The hash covers ``is_active``, so a token stops working once it activated its
    user (single use); it expires after ``PASSWORD_RESET_TIMEOUT`` like Django's.
    """

    key_salt = "signalhooks.activation.ActivationTokenGenerator"

    def _make_hash_value(self, user: Any, timestamp: int) -> str:
        return f"{super()._make_hash_value(user, timestamp)}{user.is_active}"


activation_token = ActivationTokenGenerator()


def site_url() -> str:
    """Return ``SIGNALHOOKS["SITE_URL"]``, else "https://" + the current Site's domain, else ""."""
    if conf.SITE_URL:
        return str(conf.SITE_URL).rstrip("/")
    site = current_site()
    return f"https://{site.domain}" if site is not None else ""


def current_site() -> Any:
    """Return the current ``Site``, or ``None`` without django.contrib.sites or SITE_ID."""
    try:
        return apps.get_model("sites", "Site").objects.get_current()
    except (LookupError, ObjectDoesNotExist, ImproperlyConfigured):
        return None  # sites not installed, no Site row, or no SITE_ID


def activation_url(user: Model) -> str | None:
    """Return the link that activates ``user``, or ``None`` if it is active already.

    ``None`` as well when the project does not include ``signalhooks.urls``: a mail
    without a link beats a mail that fails.
    """
    if getattr(user, "is_active", True):
        return None
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    try:
        path = reverse(
            "signalhooks:activate",
            # Any: the stubs type the token's user as AUTH_USER_MODEL, which varies.
            kwargs={"uidb64": uidb64, "token": activation_token.make_token(cast(Any, user))},
        )
    except NoReverseMatch:
        logger.warning(
            "signalhooks: no activation link for inactive user %s: include "
            "path('accounts/', include('signalhooks.urls')) in your URLconf",
            user.pk,
        )
        return None
    return site_url() + path

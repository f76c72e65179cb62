"""Activation links for users who are not active yet: a token and the URL that takes it."""

from __future__ import annotations

import logging
from typing import Any, cast

from django.apps import apps
from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.exceptions import DisallowedHost, ImproperlyConfigured, ObjectDoesNotExist
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


def request_origin(request: Any) -> str | None:
    """Return ``"scheme://host"`` of ``request``, or ``None`` without one.

    The host is Django's ``get_host()``: checked against ``ALLOWED_HOSTS``, so a forged
    ``Host`` header never makes the link (``None`` then, as without a request).
    """
    if request is None:
        return None
    try:
        return f"{request.scheme}://{request.get_host()}"
    except DisallowedHost:
        return None


def site_url(origin: str | None = None) -> str:
    """Return the scheme and host of links in mails, or "" if none can be known.

    ``SIGNALHOOKS["SITE_URL"]`` (the project said so), else ``origin`` (the registering
    request's, :func:`request_origin`), else "https://" + the current Site's domain.
    """
    if conf.SITE_URL:
        return str(conf.SITE_URL).rstrip("/")
    if origin:
        return origin
    site = current_site()
    return f"https://{site.domain}" if site is not None else ""


def host_is_configured() -> bool:
    """Tell whether mails sent without a request get a host: SITE_URL, or a Site (SITE_ID)."""
    return bool(conf.SITE_URL) or (
        apps.is_installed("django.contrib.sites") and hasattr(settings, "SITE_ID")
    )


def activation_in_use() -> bool:
    """Tell whether the project includes ``signalhooks.urls`` (activation links are made)."""
    if not getattr(settings, "ROOT_URLCONF", None):
        return False  # no URLs at all (a worker's or a script's settings): nothing to reverse
    try:
        reverse("signalhooks:activate", kwargs={"uidb64": "x", "token": "x-x"})
    except NoReverseMatch:
        return False
    return True


def current_site() -> Any:
    """Return the current ``Site``, or ``None`` without django.contrib.sites or SITE_ID."""
    try:
        return apps.get_model("sites", "Site").objects.get_current()
    except (LookupError, ObjectDoesNotExist, ImproperlyConfigured):
        return None  # sites not installed, no Site row, or no SITE_ID


def activation_url(user: Model, origin: str | None = None) -> str | None:
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
    return site_url(origin) + path

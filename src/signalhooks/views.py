"""The activation view: the link of the welcome mail of a user who is not active yet."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode
from django.views.decorators.cache import never_cache

from .activation import activation_token


@never_cache
def activate(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    """Activate the user named by ``uidb64`` if ``token`` is valid, then redirect to login.

    A link that is malformed, expired, already used or for a user who no longer exists
    gets the page ``signalhooks/activation_failed.html`` (status 400), never an error.
    """
    model = get_user_model()
    try:
        user = model._default_manager.get(pk=force_str(urlsafe_base64_decode(uidb64)))
    except (TypeError, ValueError, OverflowError, ValidationError, model.DoesNotExist):
        user = None  # a garbled link, or its user is gone
    if user is None or user.is_active or not activation_token.check_token(user, token):
        return render(request, "signalhooks/activation_failed.html", status=400)
    user.is_active = True
    user.save(update_fields=["is_active"])
    messages.success(request, "Your account is active: you can log in now.", fail_silently=True)
    return HttpResponseRedirect(resolve_url(settings.LOGIN_URL))

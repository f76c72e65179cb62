"""The sign-up views of django-registration and django-allauth, for tests/test_users.py."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("registration/", include("django_registration.backends.one_step.urls")),
    path("accounts/", include("allauth.urls")),
]

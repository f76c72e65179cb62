"""``path("accounts/", include("signalhooks.urls"))`` gives the welcome mail its activation link."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "signalhooks"

urlpatterns = [
    path("activate/<str:uidb64>/<str:token>/", views.activate, name="activate"),
]

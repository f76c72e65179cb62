from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("mailbox/", views.mailbox, name="mailbox"),
    path("mailbox/<int:pk>/", views.mail, name="mail"),
    path("invalidations/", views.invalidations, name="invalidations"),
]

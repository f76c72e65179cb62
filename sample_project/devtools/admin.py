from __future__ import annotations

from django.contrib import admin

from .models import Invalidation, Mail


@admin.register(Mail)
class MailAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("subject", "recipients", "sent_at")


@admin.register(Invalidation)
class InvalidationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("at", "cache", "keys", "tags")

"""The mailbox and the invalidations panel (mounted under /dev/ only when DEVTOOLS)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from .models import Invalidation, Mail


def mailbox(request: HttpRequest) -> HttpResponse:
    return render(request, "devtools/mailbox.html", {"mails": Mail.objects.all()[:100]})


def mail(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "devtools/mail.html", {"mail": get_object_or_404(Mail, pk=pk)})


def invalidations(request: HttpRequest) -> HttpResponse:
    rows = Invalidation.objects.all()[: Invalidation.KEEP]
    return render(request, "devtools/invalidations.html", {"rows": rows})

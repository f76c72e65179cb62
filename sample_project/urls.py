"""URLs of the sample project."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("sample_project.blog.urls")),
    path("accounts/", include("signalhooks.urls")),  # the welcome mail's activation link
    path("admin/", admin.site.urls),
]
if settings.DEVTOOLS:  # the mailbox and the invalidations page: development only
    urlpatterns.append(path("dev/", include("sample_project.devtools.urls")))
if settings.DEBUG_TOOLBAR:  # development, with django-debug-toolbar installed
    urlpatterns.append(path("__debug__/", include("debug_toolbar.urls")))

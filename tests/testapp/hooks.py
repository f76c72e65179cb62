"""Imported on start-up by signalhooks' autodiscovery."""

from __future__ import annotations

from signalhooks import post_save

from .models import Author

NEW_AUTHORS: list[str] = []


@post_save(Author, created=True)
def remember_new_author(sender, instance, **kwargs):
    NEW_AUTHORS.append(instance.name)

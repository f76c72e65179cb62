"""``{% load blog %}``: what the sidebar shows, read only when its cached fragment misses."""

from __future__ import annotations

from django import template

from sample_project.blog.models import Post

register = template.Library()


@register.simple_tag
def recent_posts(count: int = 5) -> list[Post]:
    """Return the ``count`` newest published posts (one query, inside ``{% cached %}``)."""
    return list(Post.objects.published()[:count])

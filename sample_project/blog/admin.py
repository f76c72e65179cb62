from __future__ import annotations

from django.contrib import admin

from .models import Comment, Post


class CommentInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Comment
    extra = 0


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("title", "slug", "author", "comment_count", "updated_at", "published")
    list_filter = ("published",)
    search_fields = ("title", "body")
    readonly_fields = ("comment_count", "updated_at", "created_at")
    inlines = [CommentInline]


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("post", "author", "created_at")
    list_select_related = ("post", "author")

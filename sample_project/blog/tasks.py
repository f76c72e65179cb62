"""The blog's background work: mail that hooks ask for, sent by the task worker.

A hook never sends mail itself: it enqueues a task on the "mail" backend (a queue in
the database, django-tasks-db), and ``manage.py db_worker --backend mail`` (started by
``make demo``) sends it, outside the request.
"""

from __future__ import annotations

import django
from django.core.mail import EmailMessage

if django.VERSION >= (6, 0):
    from django.tasks import task
else:  # Django 5.2: the django-tasks backport
    from django_tasks import task


@task(backend="mail")
def mail_comment_author(comment_pk: int) -> None:
    """Mail the post's author about the comment ``comment_pk`` (unless it is theirs)."""
    from .models import Comment

    comment = Comment.objects.select_related("post__author", "author").filter(pk=comment_pk)
    instance = comment.first()
    if instance is None:  # deleted before the worker got to it
        return
    post = instance.post
    if instance.author_id == post.author_id or not post.author.email:
        return
    EmailMessage(
        subject=f"{instance.author} commented on “{post.title}”",
        body=f"{instance.author} wrote:\n\n{instance.body}\n\nRead it at {post.get_absolute_url()}",
        to=[post.author.email],
    ).send()

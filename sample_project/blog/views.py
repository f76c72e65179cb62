"""Views: the cached part of each page comes from pages.py; no view deletes a key."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.safestring import mark_safe

from . import pages
from .forms import CommentForm, PostForm, RegisterForm
from .models import Post


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "blog/home.html", {"posts_html": mark_safe(pages.home_html())})


def post_detail(request: HttpRequest, slug: str) -> HttpResponse:
    post = get_object_or_404(Post.objects.select_related("author"), slug=slug)
    if not post.published and post.author != request.user:
        raise Http404("No such post.")
    form = CommentForm()
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect_to_login(post.get_absolute_url())
        form = CommentForm(request.POST)
        if form.is_valid():
            comment = form.save(commit=False)
            comment.post = post
            comment.author = request.user
            # counter() and touch() update the post; its invalidate() rule deletes
            # "home" and this page's key, so the redirect shows the new comment.
            comment.save()
            messages.success(request, "Comment added.")
            return redirect(post)
    # The slug, not `post`: the cached part loads its own copy after the lookup (pages.py).
    context = {"post": post, "post_html": mark_safe(pages.post_html(post.slug)), "form": form}
    return render(request, "blog/post.html", context)


@login_required
def post_edit(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    post = None
    if slug is not None:
        post = get_object_or_404(Post, slug=slug)
        if post.author != request.user and not request.user.is_staff:
            raise Http404("Only the author edits a post.")
    form = PostForm(request.POST or None, instance=post)
    if request.method == "POST" and form.is_valid():
        post = form.save(commit=False)
        if post.author_id is None:
            post.author = request.user
        post.save()
        messages.success(request, "Post saved.")
        return redirect(post)
    return render(request, "blog/post_form.html", {"form": form, "post": post})


def author(request: HttpRequest, username: str) -> HttpResponse:
    user = get_object_or_404(get_user_model(), username=username)
    context = {"author": user, "posts_html": mark_safe(pages.author_html(user.pk))}
    return render(request, "blog/author.html", context)


def register(request: HttpRequest) -> HttpResponse:
    form = RegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        # Creating the user row is all it takes: signalhooks sends user_registered
        # after commit, and its built-in receiver queues the welcome mail (a task the
        # worker sends). The user is not active yet, so the mail carries the
        # activation link (signalhooks.urls).
        user = form.save(commit=False)
        user.is_active = False
        user.save()
        messages.success(
            request,
            f"Welcome, {user.get_username()}! The welcome mail to {user.email} has your "
            "activation link; log in once you followed it.",
        )
        return redirect("login")
    return render(request, "registration/register.html", {"form": form})

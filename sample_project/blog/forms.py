from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

from .models import Comment, Post


class RegisterForm(UserCreationForm):  # type: ignore[type-arg]
    """Sign-up with a required email address: the welcome mail goes there."""

    email = forms.EmailField(required=True, help_text="Your welcome mail goes here.")

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")

    def clean_email(self) -> Any:
        email = self.cleaned_data["email"]
        if get_user_model()._default_manager.filter(email__iexact=email).exists():
            raise forms.ValidationError("Someone registered with this address already.")
        return email


class PostForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Post
        fields = ("title", "slug", "body", "published")
        widgets = {"body": forms.Textarea(attrs={"rows": 8})}


class CommentForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Comment
        fields = ("body",)
        labels = {"body": "Your comment"}
        widgets = {"body": forms.Textarea(attrs={"rows": 3})}

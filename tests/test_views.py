from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

import pytest
from allauth.account.signals import user_signed_up
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.sites.models import Site
from django.core import mail
from django.db import transaction
from django.test import RequestFactory, modify_settings, override_settings
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from signalhooks import user_updated
from signalhooks.activation import ActivationTokenGenerator, activation_token
from signalhooks.welcome import check_welcome_mail

pytestmark = pytest.mark.django_db(transaction=True)

FAILED_PAGE = "This activation link does not work"


def link_in(message):
    [url] = re.findall(r"https?://\S+|/accounts/activate/\S+", message.body)
    return url


def path_of(url):
    return re.sub(r"^https?://[^/]+", "", url)


def test_activation_link_in_the_mail_of_an_inactive_user_activates_once(client):
    updates = []
    user_updated.connect(lambda **kw: updates.append(kw["changes"]), weak=False, dispatch_uid="t")
    try:
        user = User.objects.create_user("ada", "ada@example.com", is_active=False)
        [message] = mail.outbox
        url = link_in(message)
        assert url.startswith("https://example.com/accounts/activate/")
        assert "Please activate your account with this link:" in message.body
        html = message.alternatives[0][0]
        assert f'<a href="{url}">activate your account</a>' in html
        response = client.get(path_of(url))
        assert response.status_code == 302 and response["Location"] == "/accounts/login/"
        user.refresh_from_db()
        assert user.is_active
        assert updates == [{"is_active": (False, True)}]
        # Single use: the same link again gets the clear page, not a second activation.
        again = client.get(path_of(url))
        assert again.status_code == 400 and FAILED_PAGE in again.content.decode()
    finally:
        user_updated.disconnect(dispatch_uid="t")


def test_activation_says_so_after_the_redirect(client):
    User.objects.create_user("ada", "ada@example.com", is_active=False)
    response = client.get(path_of(link_in(mail.outbox[0])), follow=False)
    messages = [str(m) for m in response.wsgi_request._messages]
    assert messages == ["Your account is active: you can log in now."]


def test_active_users_get_no_activation_link():
    User.objects.create_user("ada", "ada@example.com")
    [message] = mail.outbox
    assert "/activate/" not in message.body and "Your account is ready." in message.body


def uid(pk):
    return urlsafe_base64_encode(force_bytes(pk))


class PastTokens(ActivationTokenGenerator):
    """Makes the tokens of :data:`activation_token` as they were made four days ago."""

    def _now(self):
        return datetime.now() - timedelta(days=4)


@pytest.mark.parametrize("case", ["garbled uid", "no such user", "wrong token", "expired token"])
def test_activation_bad_links_get_a_clear_page(client, case):
    user = User.objects.create_user("ada", "ada@example.com", is_active=False)
    token, pk = activation_token.make_token(user), user.pk
    if case == "garbled uid":
        pk = "not a pk"
    elif case == "no such user":
        pk = user.pk + 1000
    elif case == "wrong token":
        token = token[:-1] + ("x" if token[-1] != "x" else "y")
    else:  # older than PASSWORD_RESET_TIMEOUT (3 days)
        token = PastTokens().make_token(user)
    url = reverse("signalhooks:activate", kwargs={"uidb64": uid(pk), "token": token})
    response = client.get(url)
    assert response.status_code == 400 and FAILED_PAGE in response.content.decode()
    user.refresh_from_db()
    assert not user.is_active


def test_activation_link_garbage_in_the_url(client):
    response = client.get("/accounts/activate/%%%%/nothing/")
    assert response.status_code == 400 and FAILED_PAGE in response.content.decode()


def test_activation_link_host_from_site_url_else_site_else_none():
    with override_settings(SIGNALHOOKS={"SITE_URL": "http://127.0.0.1:8000/"}):
        User.objects.create_user("ada", "ada@example.com", is_active=False)
    Site.objects.all().delete()
    User.objects.create_user("bob", "bob@example.com", is_active=False)
    with_url, without_site = map(link_in, mail.outbox)
    assert with_url.startswith("http://127.0.0.1:8000/accounts/activate/")
    assert without_site.startswith("/accounts/activate/")


def register_through(host, *, secure=True):
    """Register an inactive user the way a signup view does: with its request."""
    request = RequestFactory().get("/signup/", HTTP_HOST=host, secure=secure)
    with transaction.atomic():
        user = User.objects.create_user("ada", "ada@example.com", is_active=False)
        user_signed_up.send(sender=User, request=request, user=user)
    [message] = mail.outbox
    return link_in(message), message.alternatives[0][0]


def test_activation_link_host_from_the_registering_request():
    # Neither SITE_URL nor a Site: the request that registered the user knows the host.
    Site.objects.all().delete()
    url, html = register_through("shop.example.org:8443")
    assert url.startswith("https://shop.example.org:8443/accounts/activate/")
    assert f'<a href="{url}">' in html


def test_activation_link_from_the_request_before_the_site_after_site_url():
    url, _ = register_through("shop.example.org", secure=False)
    assert url.startswith("http://shop.example.org/accounts/activate/")  # not example.com
    mail.outbox.clear()
    User.objects.all().delete()
    with override_settings(SIGNALHOOKS={"SITE_URL": "https://www.example.net"}):
        url, _ = register_through("shop.example.org")
    assert url.startswith("https://www.example.net/accounts/activate/")  # the project said so


def test_activation_link_never_from_a_host_django_refuses():
    with override_settings(ALLOWED_HOSTS=["example.com"]):
        url, _ = register_through("evil.example")
    assert url.startswith("https://example.com/accounts/activate/")  # the Site's


def test_activation_link_without_a_known_host_is_a_system_check_warning():
    without_sites = modify_settings(INSTALLED_APPS={"remove": ["django.contrib.sites"]})
    with without_sites:
        [warning] = check_welcome_mail()
        assert warning.id == "signalhooks.W033"
        assert "have no scheme and host" in warning.msg
        assert warning.hint.startswith("Set SIGNALHOOKS['SITE_URL'] = 'https://your.domain'")
        with override_settings(SIGNALHOOKS={"SITE_URL": "https://example.com"}):
            assert check_welcome_mail() == []
        with override_settings(ROOT_URLCONF="tests.usersapp.urls"):
            assert check_welcome_mail() == []  # no activation links at all
        with override_settings():
            del settings.ROOT_URLCONF  # a worker's settings: no URLs at all
            assert check_welcome_mail() == []
    assert check_welcome_mail() == []  # the Site (SITE_ID) gives the host


def test_no_activation_link_without_the_urls_but_the_mail_goes_out(caplog):
    caplog.set_level(logging.WARNING, logger="signalhooks")
    with override_settings(ROOT_URLCONF="tests.usersapp.urls"):
        user = User.objects.create_user("ada", "ada@example.com", is_active=False)
    [message] = mail.outbox
    assert "/activate/" not in message.body and "Your account is ready." in message.body
    assert f"no activation link for inactive user {user.pk}" in caplog.text
    assert "include('signalhooks.urls')" in caplog.text

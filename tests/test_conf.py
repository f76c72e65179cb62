from __future__ import annotations

import re

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from signalhooks.checks import check_settings
from signalhooks.conf import DEFAULTS, SPECS, conf


def test_conf_defaults():
    assert conf.AUTODISCOVER is True  # tests/settings.py leaves both out: the defaults
    assert conf.CACHE == "default"


def test_conf_override_settings_is_seen():
    with override_settings(SIGNALHOOKS={"CACHE": "locmem"}):
        assert conf.CACHE == "locmem"
    assert conf.CACHE == "default"


def test_conf_unknown_key_names_the_valid_ones():
    unknown = r"unknown key\(s\) 'CACHES'.*AUTODISCOVER"
    with (
        override_settings(SIGNALHOOKS={"CACHES": "x"}),
        pytest.raises(ImproperlyConfigured, match=unknown),
    ):
        conf.CACHE  # noqa: B018


def test_conf_unknown_attribute():
    with pytest.raises(AttributeError):
        conf.NOT_A_SETTING  # noqa: B018


def test_conf_other_settings_do_not_reset():
    conf.CACHE  # noqa: B018
    assert "CACHE" in vars(conf)
    with override_settings(DEBUG=True):
        assert "CACHE" in vars(conf)
    with override_settings(SIGNALHOOKS={}):
        assert "CACHE" not in vars(conf)


def test_conf_not_a_dict_is_refused_with_what_it_must_be():
    message = r"^SIGNALHOOKS is a list; it must be a dict of settings, e\.g\. SIGNALHOOKS = \{"
    with override_settings(SIGNALHOOKS=["CACHE", "default"]):
        with pytest.raises(ImproperlyConfigured, match=message):
            conf.CACHE  # noqa: B018
        [error] = check_settings()
    assert error.id == "signalhooks.E040"
    assert re.match(message, error.msg)


@pytest.mark.parametrize(
    ("key", "value", "expects"),
    [
        ("RETRY_LIMIT", "lots", "an integer >= 0"),
        ("RETRY_LIMIT", True, "an integer >= 0"),
        ("WELCOME_MAIL", "no", "True or False"),
        ("AUTODISCOVER", 0, "True or False"),
        ("BREAKER_SECONDS", -1, "a number of seconds >= 0"),
        ("LEASE_WAIT", float("nan"), "a number of seconds >= 0"),
        ("LEASE_TIMEOUT", 0, "a number of seconds > 0"),
        ("GENERATION_TIMEOUT", "1d", "a number of seconds > 0"),
        ("PATTERN_SCAN_COUNT", 0, "an integer >= 1"),
        ("WELCOME_MAIL_MAX_ATTEMPTS", 2.5, "an integer >= 1"),
        ("SITE_URL", "example.com", "None or a URL with scheme and host"),
        ("SITE_URL", "ftp://example.com", "None or a URL with scheme and host"),
        ("SITE_URL", 1, "None or a URL with scheme and host"),
        ("WELCOME_MAIL_FROM", "", "a non-empty string or None"),
        ("CACHE", None, "a non-empty string"),
        ("TASK_BACKEND", 3, "a non-empty string or None"),
    ],
)
def test_conf_check_names_the_key_and_what_it_expects(key, value, expects):
    with override_settings(SIGNALHOOKS={key: value}):
        [error] = check_settings()
    assert error.id == "signalhooks.E041"
    assert error.msg.startswith(f"SIGNALHOOKS[{key!r}] is {value!r}; it must be {expects}")
    assert error.hint.endswith(f"or leave it out for the default, {DEFAULTS[key]!r}.")


def test_conf_check_accepts_every_default_and_good_values():
    assert check_settings() == []
    good = {
        **DEFAULTS,
        "SITE_URL": "https://example.com:8443/shop",
        "WELCOME_MAIL_FROM": "site@example.com",
        "BREAKER_SECONDS": 0,
        "LEASE_TIMEOUT": 0.5,
        "CACHE": "locmem",
        "UNKNOWN": 1,  # conf refuses it at start-up, before checks run
    }
    with override_settings(SIGNALHOOKS=good):
        assert check_settings() == []


def test_conf_every_key_has_a_type_and_range():
    assert set(DEFAULTS) <= set(SPECS)
    assert all(SPECS[key].valid(value) for key, value in DEFAULTS.items())
    assert SPECS["CAPTURE"].valid("database") and not SPECS["CAPTURE"].valid("db")


def test_conf_check_cache_alias_must_be_configured():
    with override_settings(SIGNALHOOKS={"CACHE": "nope"}):
        [error] = check_settings()
    assert error.msg == "SIGNALHOOKS['CACHE'] is 'nope', which is not in settings.CACHES."
    assert error.hint == (
        "Define 'nope' in settings.CACHES, or set SIGNALHOOKS['CACHE'] to one of the "
        "configured aliases: 'default', 'locmem', 'builtin'."
    )


def test_conf_check_is_registered():
    with override_settings(SIGNALHOOKS={"RETRY_LIMIT": "lots"}):
        assert "signalhooks.E041" in [e.id for e in checks.run_checks()]

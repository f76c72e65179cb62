from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from signalhooks.conf import DEFAULTS, conf


def test_conf_defaults():
    assert conf.AUTODISCOVER is DEFAULTS["AUTODISCOVER"] is True
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

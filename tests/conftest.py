from __future__ import annotations

import pytest

from signalhooks.registry import registry


@pytest.fixture(autouse=True)
def isolated_registry():
    """Hooks a test registers are gone after it."""
    with registry.isolated():
        yield

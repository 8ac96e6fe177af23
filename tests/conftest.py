"""Session fixtures over tests/fitted.py."""

from __future__ import annotations

import pytest

from fitted import Fitted, fitted


@pytest.fixture(scope="session")
def compas() -> Fitted:
    return fitted("compas")


@pytest.fixture(scope="session")
def adult() -> Fitted:
    return fitted("adult")


@pytest.fixture(scope="session")
def wine() -> Fitted:
    return fitted("wine")

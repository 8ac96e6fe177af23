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


@pytest.fixture(scope="module")
def client():
    """A real Dask LocalCluster of 2 worker processes (modern environment, ``distributed`` extra), one per module."""
    from lapace_plugin import distributed

    with distributed.connect(workers=2) as c:
        yield c

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import ServerProcess, Tenant, make_tenant

_names = itertools.count()


@pytest.fixture
def new_tenant(server: ServerProcess, server_dir: Path) -> Callable[..., Tenant]:
    """Make a fresh org (with credentials) on the running server, so counts start at 0."""

    def make(plan: str = "basic") -> Tenant:
        return make_tenant(server_dir, f"tenant-{next(_names)}", plan)

    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}

"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import LabServer
from tests.integration.helpers import LiveEvents


@pytest.fixture
def live(shared_lab: LabServer) -> Iterator[LiveEvents]:
    """A Socket.IO client on the shared lab that records the traffic events."""
    events = LiveEvents(shared_lab.base_url)
    yield events
    events.close()

"""pytest support: a ``virtual_clock`` fixture (registered as a pytest plugin).

    async def test_failover(virtual_clock):
        sim = Sim(seed=1)
        ...
        report = await sim.run_async(30)

pytest-trio runs a test under any fixture that is a ``trio.abc.Clock``; this one
is the playground's virtual clock, so a simulated minute costs only computation.
"""
from __future__ import annotations

import pytest

from ._clock import VirtualClock


@pytest.fixture
def virtual_clock() -> VirtualClock:
    return VirtualClock()

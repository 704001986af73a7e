"""No test shares the gate's memory of host speed with another, or with a
developer's own sweeps: neither the machine's (bench.hostmemory) nor this
process's (sinelstm.hostspeed._BEST and _OWN, for runs trained in-process). A
reference one test learned at a quiet moment judges the next test's runs,
and on a loaded 2-core machine stops them as slow-host.

Module- and session-scoped fixtures sweep before any function-scoped
fixture runs, so at import the memory's folder is made impossible (a path
under a file: bench.hostmemory then keeps none, as where a cache cannot be
written); each test then gets a fresh one of its own."""
import os

import pytest

from bench import hostmemory
from sinelstm import hostspeed

os.environ[hostmemory.CACHE_ENV] = os.path.join(os.devnull, "sinebench")
for _var in (hostspeed.REFERENCE_ENV, hostspeed.MACHINE_ENV):
    os.environ.pop(_var, None)


@pytest.fixture(autouse=True)
def own_host_memory(tmp_path_factory, monkeypatch):
    monkeypatch.setenv(hostmemory.CACHE_ENV, str(tmp_path_factory.mktemp("machine-memory")))
    monkeypatch.setattr(hostspeed, "_BEST", {})
    monkeypatch.setattr(hostspeed, "_OWN", {})

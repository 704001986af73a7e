"""Every test gets its own machine memory of host speed (bench.hostmemory)
and no shared reference from the shell that started pytest: a reference one
test's sweep learned would otherwise judge the next test's runs, and a
developer's own sweeps would judge the tests'."""
import pytest

from bench import hostmemory
from sinelstm import hostspeed


@pytest.fixture(autouse=True)
def own_machine_memory(tmp_path_factory, monkeypatch):
    monkeypatch.setenv(hostmemory.CACHE_ENV, str(tmp_path_factory.mktemp("machine-memory")))
    for var in (hostspeed.REFERENCE_ENV, hostspeed.MACHINE_ENV):
        monkeypatch.delenv(var, raising=False)

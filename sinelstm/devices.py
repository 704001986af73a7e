"""Device-set specs: ``cpu``, ``0``, ``0+1``, ``0+1+2+3``, ``cpu+cpu``.

A spec names the devices that hold one model replica each; ``+`` joins
replicas of one data-parallel group.
"""
import platform
import re
from dataclasses import dataclass

_TOKEN = re.compile(r"^(cpu|\d+)$")


class DeviceSpecError(ValueError):
    """A device-set spec that is malformed or names a device that is absent."""


def gpu_count() -> int:
    """CUDA devices CuPy can use here; 0 without CuPy or a driver."""
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount()
    except Exception:
        return 0


def available_summary() -> str:
    n = gpu_count()
    gpus = ", ".join(str(i) for i in range(n)) if n else "none"
    return f"available: cpu; GPUs: {gpus}"


@dataclass(frozen=True)
class DeviceSet:
    spec: str
    names: tuple  # chainer device specifiers, e.g. ('@numpy', '@numpy') or ('@cupy:0',)

    @property
    def n_devices(self) -> int:
        return len(self.names)

    @property
    def is_gpu(self) -> bool:
        return self.names[0].startswith("@cupy")

    @property
    def gpu_ids(self) -> list:
        return [int(n.split(":")[1]) for n in self.names] if self.is_gpu else []

    @property
    def first_spec(self) -> str:
        """The spec of this set's first device alone: 'cpu' or a GPU id."""
        return self.ids[0]

    @property
    def ids(self) -> list:
        """The spec's tokens: 'cpu' or GPU ids as strings."""
        return self.spec.split("+")

    def rank_device(self, intra_rank: int, n_gpus: int | None = None) -> str:
        """The Chainer device of a node's ``intra_rank``-th MPI rank: the
        spec's ``intra_rank``-th device, so that ``0+1`` is GPUs 0 and 1 of
        one node, or GPU 0 of each of two one-GPU nodes (a rank checks only
        its own GPU: the others may be on another host). ``n_gpus`` overrides
        this host's count, for tests."""
        if intra_rank >= self.n_devices:
            raise DeviceSpecError(f"device set {self.spec!r} has {self.n_devices} devices, but {intra_rank + 1} "
                                  f"of its ranks run on host {platform.node()}")
        if self.is_gpu:
            gpu, n = self.gpu_ids[intra_rank], gpu_count() if n_gpus is None else n_gpus
            if gpu >= n:
                raise DeviceSpecError(f"device set {self.spec!r} gives rank {intra_rank} of host {platform.node()} "
                                      f"GPU {gpu}, but that host has {n} GPU{'s' if n != 1 else ''}")
        return self.names[intra_rank]

    def devices(self) -> list:
        """Chainer devices (imports Chainer: the sweep process never calls this)."""
        import sinelstm  # noqa: F401
        import chainer

        return [chainer.get_device(n) for n in self.names]


def parse_device_set(spec: str, n_gpus: int | None = None, check: bool = True) -> DeviceSet:
    """Parse and check a spec against the GPUs present (``n_gpus`` overrides
    the count, for tests; ``check=False`` skips it, to read a spec recorded
    elsewhere); raises :class:`DeviceSpecError` naming the spec."""
    spec = spec.strip()
    tokens = spec.split("+")  # the one place a spec is split
    if not spec or not all(_TOKEN.match(t) for t in tokens):
        raise DeviceSpecError(
            f"bad device set {spec!r}: use 'cpu', a GPU id like '0', or ids joined by '+' "
            f"like '0+1' or 'cpu+cpu' ({available_summary()})"
        )
    if "cpu" in tokens:
        if any(t != "cpu" for t in tokens):
            raise DeviceSpecError(f"bad device set {spec!r}: mixes CPU and GPUs ({available_summary()})")
        return DeviceSet(spec, tuple("@numpy" for _ in tokens))
    ids = [int(t) for t in tokens]
    if len(set(ids)) != len(ids):
        raise DeviceSpecError(f"bad device set {spec!r}: names a GPU twice")
    if not check:
        return DeviceSet(spec, tuple(f"@cupy:{i}" for i in ids))
    n = gpu_count() if n_gpus is None else n_gpus
    missing = [i for i in ids if i >= n]
    if missing:
        have = f"{n} GPU{'s' if n != 1 else ''}" + (f" (ids 0-{n - 1})" if n else "")
        raise DeviceSpecError(f"device set {spec!r} names GPU {missing[0]}, but this machine has {have}")
    return DeviceSet(spec, tuple(f"@cupy:{i}" for i in ids))


def default_device_sets(n_gpus: int | None = None) -> list:
    """``cpu``, each visible GPU alone, and all visible GPUs together."""
    n = gpu_count() if n_gpus is None else n_gpus
    specs = ["cpu"] + [str(i) for i in range(n)]
    if n > 1:
        specs.append("+".join(str(i) for i in range(n)))
    return specs

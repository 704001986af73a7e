"""One MPI rank of ``sinebench verify --strategy chainermn``:

    mpiexec -n N python -m bench.verify_rank DEVICES IMPL UPDATES

Rank 0 prints the result as one JSON line prefixed with ``RESULT``.
"""
import json
import sys
from dataclasses import asdict

import sinelstm  # noqa: F401
from sinelstm import mn
from sinelstm.devices import parse_device_set
from sinelstm.verify import verify_config


def main(argv=None):
    spec, impl, updates = (sys.argv[1:] if argv is None else argv)[:3]
    device_set = parse_device_set(spec)
    comm = mn.create_communicator(device_set)
    mn.check_world(comm, device_set)
    result = mn.verify_rank(comm, device_set, verify_config(impl=impl, updates=int(updates), n_devices=device_set.n_devices))
    if result is not None:
        print("RESULT " + json.dumps(asdict(result)), flush=True)


if __name__ == "__main__":
    main()

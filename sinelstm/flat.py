"""The model's parameters, gradients and Adam moments in three flat buffers.

A whole update compiled as one unit (:mod:`sinelstm.graph`) wants every
parameter at a fixed address and at a known offset: one kernel, one
all-reduce and one optimizer step then cover all of them, and a captured
CUDA graph can replay against the same memory forever. So the buffers are
allocated once and the Chainer model is re-pointed at views of them:
``param.array``, ``param.grad`` and the Adam rule's ``m`` and ``v`` *are*
slices of the flat buffers. The Chainer model and optimizer therefore stay
the source of truth — evaluation, checkpoints and ``verify`` read them as for
any other implementation, and see every update the moment it lands.

The layout is fixed by name (``LAYOUT``), not by Chainer's traversal order,
so that the CPU and GPU kernels can be written against constant offsets.
"""
import numpy as np

# Parameter name -> shape as a function of n_units, in buffer order.
LAYOUT = (
    ("/l1/W", lambda n: (n, 1)),
    ("/l1/b", lambda n: (n,)),
    ("/l2/upward/W", lambda n: (4 * n, n)),
    ("/l2/upward/b", lambda n: (4 * n,)),
    ("/l2/lateral/W", lambda n: (4 * n, n)),
    ("/l3/W", lambda n: (1, n)),
    ("/l3/b", lambda n: (1,)),
)


def offsets(n_units: int) -> dict:
    """Parameter name -> (start, shape) in the flat buffers, and the total
    under the key ``"size"``."""
    out, start = {}, 0
    for name, shape_of in LAYOUT:
        shape = shape_of(n_units)
        out[name] = (start, shape)
        start += int(np.prod(shape))
    out["size"] = start
    return out


class FlatState:
    """Flat ``params``, ``grads`` (and, for Adam, ``m`` and ``v``) on the
    model's device, with the model and its optimizer re-pointed at them.

    Call after ``optimizer.setup(model)`` and after anything that replaces
    parameter arrays (moving the model, broadcasting from rank 0)."""

    def __init__(self, model, optimizer, xp):
        self.n_units = model.n_units
        self.layout = offsets(self.n_units)
        size = self.layout["size"]
        params = dict(model.namedparams())
        if sorted(params) != sorted(name for name, _ in LAYOUT):
            raise ValueError(f"unexpected parameters {sorted(params)}")
        dtype = params["/l1/W"].array.dtype
        self.params = xp.empty(size, dtype)
        self.grads = xp.zeros(size, dtype)
        self.adam = hasattr(optimizer.hyperparam, "beta1")
        self.m = xp.zeros(size, dtype) if self.adam else None
        self.v = xp.zeros(size, dtype) if self.adam else None
        self.rules = []
        for name, param in params.items():
            self.view(self.params, name)[...] = param.array
            param.array = self.view(self.params, name)
            param.grad = self.view(self.grads, name)
            rule = param.update_rule
            if self.adam:
                # Chainer creates the moments at the first update unless a
                # state exists; these views become that state.
                rule._state = {"m": self.view(self.m, name), "v": self.view(self.v, name)}
            self.rules.append(rule)

    def view(self, buffer, name):
        start, shape = self.layout[name]
        return buffer[start:start + int(np.prod(shape))].reshape(shape)

    def start(self, name) -> int:
        return self.layout[name][0]

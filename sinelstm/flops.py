"""Floating-point work of one training update, counted from the model's
shapes (no framework needed, so the sweep and the report can count too)."""


def count_flops(n_units: int, batchsize: int, seqlen: int, impl: str = "article") -> float:
    """Floating-point operations one training update executes (forward and
    backward; matrix products and the gate arithmetic).

    ``article`` (and Chainer's plain unrolled model, and cuDNN for the
    PyTorch reference) multiplies full matrices for the input projection at
    every step; ``sinebench`` and ``graph`` fold the rank-one
    input projection (:mod:`sinelstm.fused`), leaving the recurrent product,
    which step 0 skips (zero state).
    """
    n, B, T = n_units, batchsize, seqlen
    rec = 2 * n * 4 * n  # recurrent product per sample and step
    gates = 14 * n  # gate nonlinearities and cell update
    out = 2 * n  # l3
    if impl in ("sinebench", "graph"):
        # forward: recurrent product on T-1 steps; backward: dh and dW for it
        return 3.0 * rec * B * (T - 1) + 3.0 * (gates + out + 2 * 4 * n) * B * T
    inp = 2 * 1 * n + 2 * n * 4 * n  # l1, then the LSTM's input projection
    return 3.0 * (inp + rec + gates + out) * B * T

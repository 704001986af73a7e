"""sinelstm: the article's sine-wave LSTM, trained correctly on CPU, one GPU
or several. Importing this package first makes Chainer importable on NumPy 2
(see :mod:`sinelstm.compat`)."""
from sinelstm import compat as _compat

_compat.install()

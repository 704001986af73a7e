"""Let Chainer 7.8.1 import on NumPy 2 and Python 3.12.

Chainer's last release predates NumPy 2: at import time it reads ``np.sctypes``
(removed in NumPy 2.0), imports ``numpy.distutils`` (gone from NumPy 2 on
Python >= 3.12) and ``pkg_resources`` (gone from setuptools >= 81). Every
module of this project that needs Chainer imports it through this package,
whose ``__init__`` runs :func:`install` first.
"""
import importlib.metadata
import importlib.util
import os
import sys
import types
import warnings

import numpy as np


def _sctypes():
    return {
        "int": [np.int8, np.int16, np.int32, np.int64],
        "uint": [np.uint8, np.uint16, np.uint32, np.uint64],
        "float": [np.float16, np.float32, np.float64],
        "complex": [np.complex64, np.complex128],
        "others": [bool, object, bytes, str, np.void],
    }


def _stub_numpy_distutils():
    # Chainer only asks it for BLAS info on macOS; an empty answer is right
    # everywhere else.
    system_info = types.ModuleType("numpy.distutils.system_info")
    system_info.get_info = lambda name, notfound_action=0: {}
    distutils = types.ModuleType("numpy.distutils")
    distutils.system_info = system_info
    sys.modules["numpy.distutils"] = distutils
    sys.modules["numpy.distutils.system_info"] = system_info


def _stub_pkg_resources():
    # Enough of pkg_resources for chainer._environment_check, answered by
    # importlib.metadata.
    mod = types.ModuleType("pkg_resources")

    class ResolutionError(Exception):
        pass

    class DistributionNotFound(ResolutionError):
        pass

    class VersionConflict(ResolutionError):
        pass

    def get_distribution(name):
        try:
            return types.SimpleNamespace(version=importlib.metadata.version(name))
        except importlib.metadata.PackageNotFoundError:
            raise DistributionNotFound(name) from None

    def require(requirement):
        name = requirement
        for sep in "<>=!~;[ ":
            name = name.split(sep)[0]
        return [get_distribution(name)]

    mod.ResolutionError = ResolutionError
    mod.DistributionNotFound = DistributionNotFound
    mod.VersionConflict = VersionConflict
    mod.get_distribution = get_distribution
    mod.require = require
    mod.WorkingSet = lambda: types.SimpleNamespace(require=require)
    sys.modules["pkg_resources"] = mod


def _findable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def install():
    """Apply the shims; safe to call more than once."""
    if "sctypes" not in np.__dict__:
        np.sctypes = _sctypes()
    # Look the modules up without importing them (numpy.distutils alone
    # takes 0.2 s): Chainer imports them itself, and only Chainer needs them.
    if not _findable("numpy.distutils"):
        _stub_numpy_distutils()
    if not _findable("pkg_resources"):
        _stub_pkg_resources()
    # Chainer 7.8.1 warns that CuPy 14 is newer than it knows; it works.
    os.environ.setdefault("CHAINER_WARN_VERSION_MISMATCH", "0")
    warnings.filterwarnings("ignore", message=".*pkg_resources.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning, message=r"\s*`numpy.distutils` is deprecated")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="chainer")
    # CuPy 14 ships without cuDNN; Chainer's own kernels are used instead.
    warnings.filterwarnings("ignore", message="cuDNN is not enabled")
    # Replicas on several GPUs read each other's arrays by design.
    warnings.filterwarnings("ignore", message=".*Peer access has been activated.*")

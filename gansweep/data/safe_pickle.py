"""A restricted unpickler that rebuilds NumPy arrays and nothing else.

``pickle`` runs code: any global a pickle names can be called with any arguments. This unpickler
resolves only the globals that NumPy array reconstruction needs (``numpy.core.multiarray._reconstruct``
as written by NumPy 1.x, its NumPy 2 home ``numpy._core.multiarray._reconstruct``, ``numpy.ndarray``,
``numpy.dtype``, and ``_codecs.encode`` limited to latin-1, which Python 3 protocol-2 pickles use for
raw bytes) and raises :class:`pickle.UnpicklingError` naming any other global *before* it is
looked up, so nothing else can ever be called. Object dtypes are refused too: an object array's
contents would be arbitrary Python objects.
"""

from __future__ import annotations

import pickle
from typing import IO, Any

import numpy as np
from numpy._core.multiarray import _reconstruct


def _safe_dtype(*args: Any, **kwargs: Any) -> np.dtype:
    """``numpy.dtype`` that refuses object (and object-holding structured) dtypes."""
    dtype = np.dtype(*args, **kwargs)
    if dtype.hasobject:
        raise pickle.UnpicklingError(f"refusing object dtype {dtype!r} in a pickle")
    return dtype


def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it (``encode(str, "latin1")``) and nothing else."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _safe_dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class ArrayOnlyUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` admits only :data:`ALLOWED`; no persistent ids either."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing global {module}.{name} in a pickle") from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError(f"refusing persistent id {pid!r} in a pickle")


def load_arrays(file: IO[bytes], *, encoding: str = "latin1") -> Any:
    """Unpickle ``file`` with :class:`ArrayOnlyUnpickler` (``latin1`` decodes Python 2 byte strings)."""
    return ArrayOnlyUnpickler(file, encoding=encoding).load()

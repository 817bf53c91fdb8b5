"""MNIST for gansweep: verified canonical data, study options, batch sampling, Stacked MNIST.

NumPy + stdlib only. See docs/ARCHITECTURE.md (Data) and ``gansweep-data --help``.
"""

from gansweep.data.errors import CorruptFileError, MnistError, MnistUnavailableError
from gansweep.data.idx import CLASS_COUNTS, FILES
from gansweep.data.loader import (
    SCALES,
    SPLITS,
    ensure_cache,
    load_mnist,
    mnist_dir,
    prepare_images,
    read_cached,
    select,
    verify,
)
from gansweep.data.sampler import MODES as SAMPLINGS
from gansweep.data.sampler import BatchSampler
from gansweep.data.sources import SOURCES, FetchReport, ProgressFn
from gansweep.data.stacked import StackedMNIST

__all__ = [
    "CLASS_COUNTS",
    "FILES",
    "SAMPLINGS",
    "SCALES",
    "SOURCES",
    "SPLITS",
    "BatchSampler",
    "CorruptFileError",
    "FetchReport",
    "MnistError",
    "MnistUnavailableError",
    "ProgressFn",
    "StackedMNIST",
    "ensure_cache",
    "load_mnist",
    "mnist_dir",
    "prepare_images",
    "read_cached",
    "select",
    "verify",
]

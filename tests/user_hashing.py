"""A data spec whose sample order hangs on Python's string hashing, as a vocabulary read from a set does
(tests/test_matrix.py): the same seed gives other weights under another ``PYTHONHASHSEED``."""

from __future__ import annotations

import numpy as np

WORDS = 64


def vocabulary() -> tuple[np.ndarray, np.ndarray]:
    """One sample per word, in the order a ``set`` of the words iterates: the order of their string hashes."""
    words = {f"word-{i}" for i in range(WORDS)}
    x = np.array([[int(word.rsplit("-", 1)[1]) / WORDS] for word in words], dtype=np.float32)
    return x, np.sin(6.0 * x).astype(np.float32)

"""Endless batch streams whose position survives a checkpoint.

:func:`gan_zoo.training.run_training` saves ``data.state_dict()`` with every
checkpoint and calls ``data.load_state_dict()`` when it resumes. A stream that
is fixed by its seed only needs to remember how many batches it has handed
out: resuming starts the stream again at that batch, so an interrupted run
sees exactly the batches an uninterrupted one would have seen.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator

__all__ = ["ResumableBatches"]


class ResumableBatches:
    """An iterator over batches with a resumable position.

    Parameters
    ----------
    start : callable ``(first: int) -> iterator``
        Returns the stream beginning at its batch number ``first`` (0-based).
        The stream must be a pure function of how it was configured (seeded),
        so that starting it at ``n`` gives what the ``n+1``-th ``next()`` of a
        stream started at 0 gives. A stream that cannot jump may replay:
        ``lambda first: itertools.islice(iter(sampler), first, None)``.

    Examples
    --------
    >>> stream = ResumableBatches(lambda first: iter(range(first, 1_000)))
    >>> [next(stream) for _ in range(3)]
    [0, 1, 2]
    >>> state = stream.state_dict()
    >>> resumed = ResumableBatches(lambda first: iter(range(first, 1_000)))
    >>> resumed.load_state_dict(state)
    >>> next(resumed), next(stream)
    (3, 3)
    """

    def __init__(self, start: Callable[[int], Iterator]):
        if not callable(start):
            raise TypeError(f"start must be callable (first batch number -> iterator), got {type(start).__name__}")
        self._start = start
        self._iterator = iter(start(0))
        self._served = 0

    def __iter__(self):
        return self

    def __next__(self):
        batch = next(self._iterator)
        self._served += 1
        return batch

    @property
    def served(self) -> int:
        """Number of batches handed out since the stream's beginning."""
        return self._served

    def state_dict(self) -> dict:
        """The position: ``{"batches": number of batches handed out}``."""
        return {"batches": self._served}

    def load_state_dict(self, state: dict) -> None:
        """Continue at the position saved by :meth:`state_dict`."""
        if not isinstance(state, dict) or "batches" not in state:
            raise ValueError(f"state must be a dict with a 'batches' count, got {state!r}")
        served = state["batches"]
        if isinstance(served, bool) or not isinstance(served, numbers.Integral) or served < 0:
            raise ValueError(f"state['batches'] must be a non-negative integer, got {served!r}")
        self._iterator = iter(self._start(int(served)))
        self._served = int(served)

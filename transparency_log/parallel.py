"""An ordered map over worker processes with a bounded look-ahead: the exporter and the verifier
hand chunks of lines to one worker a core while they read the next chunks and write (or check
the order of) the results."""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

Result = TypeVar("Result")


def default_workers(amount: int, threshold: int) -> int:
    """One worker a core on a machine of several cores when ``amount`` reaches ``threshold``;
    else none (0): the work is done in this process."""
    cores = os.cpu_count() or 1
    return cores if cores > 1 and amount >= threshold else 0


def ordered_map(function: Callable[..., Result], calls: Iterable[tuple[Any, ...]], workers: int) -> Iterator[Result]:
    """``function(*arguments)`` of each of ``calls``, in order: in this process when ``workers``
    is 0, else in that many worker processes (started afresh, ``spawn``), at most two calls a
    worker ahead of the caller, so that memory stays bounded. ``function`` must be importable
    by name (a module's top-level function)."""
    if workers < 1:
        for arguments in calls:
            yield function(*arguments)
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending: deque[Future[Result]] = deque()
        for arguments in calls:
            pending.append(pool.submit(function, *arguments))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

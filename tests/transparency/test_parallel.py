"""transparency_log.parallel: when work goes to worker processes, and that results keep their order."""

from __future__ import annotations

import operator

from transparency_log import parallel


def test_work_goes_to_one_worker_a_core_only_from_the_threshold_on_a_machine_of_several_cores(monkeypatch):
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: 4)
    assert parallel.default_workers(99, 100) == 0
    assert parallel.default_workers(100, 100) == 4
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: 1)
    assert parallel.default_workers(10**9, 100) == 0


def test_results_come_in_the_order_of_the_calls_in_workers_as_in_this_process():
    calls = [(number, 1000 - number) for number in range(40)]
    expected = [a - b for a, b in calls]
    assert list(parallel.ordered_map(operator.sub, calls, 0)) == expected
    assert list(parallel.ordered_map(operator.sub, calls, 2)) == expected

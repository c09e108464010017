"""The waiting thread takes part in the aside work; the results do not depend on who did what."""

from __future__ import annotations

import contextvars
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from xl_expense.core.audit import anomaly
from xl_expense.core.audit.helping import HelpDesk, SharedBlocks, offer_help, offering_help


def test_every_piece_is_done_once_whoever_takes_it() -> None:
    done: list[tuple[int, str]] = []
    lock = threading.Lock()
    started = threading.Barrier(2)

    def work(item: int) -> None:
        if item == 0:
            started.wait(timeout=5)  # the first piece waits until the other thread has started
        time.sleep(0.001)  # long enough for both threads to take pieces
        with lock:
            done.append((item, threading.current_thread().name))

    blocks = SharedBlocks(range(200), work)
    other = threading.Thread(target=lambda: (started.wait(timeout=5), blocks.take_part()), name="helper")
    other.start()
    blocks.take_part()
    blocks.wait()
    other.join()
    assert sorted(item for item, _ in done) == list(range(200))
    assert {name for _, name in done} == {"MainThread", "helper"}


def test_a_failure_in_a_helper_reaches_the_thread_that_waits() -> None:
    def work(item: int) -> None:
        if item == 3:
            raise ValueError("piece 3")

    blocks = SharedBlocks(range(6), work)
    helper = threading.Thread(target=blocks.take_part)
    helper.start()
    helper.join()
    blocks.take_part()
    with pytest.raises(ValueError, match="piece 3"):
        blocks.wait()


def test_help_is_offered_only_where_a_thread_waits_to_take_it() -> None:
    assert offer_help(lambda: None) is False  # an inline rule: nobody would take it
    desk = HelpDesk()
    taken: list[str] = []
    context = offering_help(contextvars.copy_context(), desk)
    assert context.run(offer_help, lambda: taken.append(threading.current_thread().name)) is True
    with ThreadPoolExecutor(max_workers=1) as pool:
        finished = threading.Event()
        future = pool.submit(finished.wait, 5)
        helper = threading.Timer(0.05, finished.set)
        helper.start()
        desk.help_until(future)  # runs the offered job here, then returns when the future is done
    assert taken == ["MainThread"] and future.result() is True


@pytest.mark.parametrize("how", ["one thread", "pool", "aside with a helper"])
def test_forest_path_sums_are_bit_identical_however_the_blocks_are_shared(how: str, monkeypatch) -> None:
    rng = np.random.default_rng(5)
    X = np.column_stack([rng.lognormal(5, 1, 30_000), rng.integers(0, 7, 30_000), rng.normal(0, 1, 30_000)])
    forest = anomaly.fit_isolation_forest(X, random_state=42)
    monkeypatch.setattr(anomaly, "_scoring_threads", lambda n: 1)
    expected = forest.path_sums(X)
    monkeypatch.setattr(anomaly, "_SCORE_BLOCK", 512)  # many blocks to share
    monkeypatch.setattr(anomaly, "_scoring_threads", lambda n: 1 if how == "one thread" else 2)
    if how != "aside with a helper":
        got = forest.path_sums(X)
    else:
        desk = HelpDesk()
        context = offering_help(contextvars.copy_context(), desk)
        with ThreadPoolExecutor(max_workers=1) as pool:
            future = pool.submit(context.run, forest.path_sums, X)
            desk.help_until(future)
            got = future.result()
    np.testing.assert_array_equal(got, expected)

"""Dynamic batching: concurrent jobs share a batch up to max_batch rows, a failing batch fails only
its own jobs, and the model function runs off the event loop's thread."""

import asyncio
import threading

import pytest

from tailor.serve.batcher import Batcher


def _run(coro):
    return asyncio.run(coro)


class Recorder:
    def __init__(self, fail_on=None):
        self.batches, self.threads, self.fail_on = [], set(), fail_on

    def __call__(self, rows):
        self.batches.append(list(rows))
        self.threads.add(threading.current_thread().name)
        if self.fail_on in rows:
            raise RuntimeError("model failed")
        return [r * 10 for r in rows]


async def _submit_all(batcher, jobs):
    await batcher.start()
    try:
        return await asyncio.gather(*(batcher.submit(j) for j in jobs), return_exceptions=True)
    finally:
        await batcher.stop()


def test_jobs_arriving_together_run_as_one_batch_off_the_loop_thread():
    rec = Recorder()
    out = _run(_submit_all(Batcher(rec, max_batch=64, window_s=0.2), [[i] for i in range(10)]))
    assert out == [[i * 10] for i in range(10)]
    assert [len(b) for b in rec.batches] == [10]
    assert rec.threads == {"tailor-serve-model_0"} and threading.current_thread().name not in rec.threads


def test_max_batch_caps_rows_and_keeps_jobs_whole():
    rec = Recorder()
    out = _run(_submit_all(Batcher(rec, max_batch=4, window_s=0.2), [[1, 2], [3], [4, 5], [6, 7, 8, 9, 10], [11]]))
    assert out == [[10, 20], [30], [40, 50], [60, 70, 80, 90, 100], [110]]
    assert [len(b) for b in rec.batches] == [3, 2, 5, 1]  # a job over max_batch runs alone; none is split


def test_max_batch_one_turns_batching_off():
    rec = Recorder()
    _run(_submit_all(Batcher(rec, max_batch=1, window_s=0.2), [[i] for i in range(5)]))
    assert [len(b) for b in rec.batches] == [1] * 5


def test_a_failing_batch_fails_its_jobs_and_the_loop_goes_on():
    async def scenario():
        batcher = Batcher(Recorder(fail_on=-1), max_batch=8, window_s=0.0)
        await batcher.start()
        try:
            with pytest.raises(RuntimeError, match="model failed"):
                await batcher.submit([-1])
            return await batcher.submit([2])
        finally:
            await batcher.stop()

    assert _run(scenario()) == [20]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="max_batch must be >= 1"):
        Batcher(lambda rows: rows, max_batch=0)


def test_the_event_loop_runs_while_a_batch_is_on_the_model():
    """The batch waits for an event that only a coroutine on the loop sets: a blocked loop would hang it."""
    started, released = threading.Event(), threading.Event()

    def run_batch(rows):
        started.set()
        assert released.wait(timeout=30), "the event loop was blocked while the model ran"
        return rows

    async def scenario():
        batcher = Batcher(run_batch, max_batch=8, window_s=0.0)
        await batcher.start()
        try:
            answer = asyncio.ensure_future(batcher.submit([1]))
            while not started.is_set():
                await asyncio.sleep(0.01)
            released.set()  # reached only because the loop is free while the batch is on the model
            return await answer
        finally:
            await batcher.stop()

    assert _run(scenario()) == [1]

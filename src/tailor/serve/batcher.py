"""Dynamic batching: requests that arrive close together run as one batch on one worker thread.

The event loop only queues jobs and hands finished answers back; the model runs in a single
worker thread (so it never blocks the loop, and the registry is never touched by two threads).
A batch is cut when it holds ``max_batch`` rows or ``window_s`` has passed since its first job
arrived; jobs that queue while a batch runs form the next one. ``max_batch=1`` turns batching off.
The registry then sorts a batch's rows by length and runs them in length buckets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field


@dataclass
class _Job:
    rows: list
    future: asyncio.Future = field(repr=False)


class Batcher:
    """``await batcher.submit(rows)`` -> ``run_batch``'s answers for those rows, batched with others."""

    def __init__(
        self,
        run_batch: Callable[[list], list],
        max_batch: int = 64,
        window_s: float = 0.005,
        on_batch: Callable[[int], None] | None = None,
    ):
        if max_batch < 1 or window_s < 0:
            raise ValueError(f"max_batch must be >= 1 and window >= 0, got {max_batch}, {window_s}")
        self.run_batch, self.max_batch, self.window_s = run_batch, max_batch, window_s
        self.on_batch = on_batch or (lambda rows: None)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tailor-serve-model")
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task | None = None
        self._held: _Job | None = None  # a job that did not fit the previous batch

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self.executor.shutdown(wait=True)

    async def call(self, fn: Callable, *args):
        """Run ``fn`` on the model's worker thread, between batches (adapter loads and unloads)."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def submit(self, rows: list) -> list:
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(rows, future))
        return await future

    async def _next_batch(self) -> list[_Job]:
        loop = asyncio.get_running_loop()
        first = self._held or await self._queue.get()
        self._held = None
        jobs, rows = [first], len(first.rows)
        deadline = loop.time() + self.window_s
        while rows < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), left)
                except asyncio.TimeoutError:
                    break
            if rows + len(job.rows) > self.max_batch:
                self._held = job
                break
            jobs.append(job)
            rows += len(job.rows)
        return jobs

    async def _loop(self) -> None:
        while True:
            jobs = await self._next_batch()
            rows = [row for job in jobs for row in job.rows]
            self.on_batch(len(rows))
            try:
                answers = await self.call(self.run_batch, rows)
            except Exception as err:  # a failing batch fails its own requests, not the server
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(err)
                continue
            start = 0
            for job in jobs:
                if not job.future.done():  # the client may have gone away
                    job.future.set_result(answers[start : start + len(job.rows)])
                start += len(job.rows)

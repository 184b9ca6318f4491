"""
The threads that run views, and what happens when one never comes back.

A view that hangs (a lock never released, a socket without a timeout) holds
its thread for ever; Python cannot stop a thread from outside. The message
is answered anyway at its deadline (see :mod:`.delivery`), and the pool
declares the thread stuck: it no longer counts as a worker, and a new
thread takes its place, so the server keeps its capacity. Replacements are
bounded: the pool never runs more than twice as many threads as workers,
stuck ones included. When every thread it may have is stuck, the server
refuses new work with 421 until one comes back (a stuck thread that
finishes its view becomes a worker again, or leaves if there are enough).

The threads are daemon threads: a stuck one never keeps the process from
exiting.
"""

from __future__ import annotations

import itertools
import queue
import sys
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any


class WorkerPool(Executor):
    """A thread pool (an Executor, for asyncio and asgiref) that replaces stuck threads."""

    def __init__(self, workers: int, *, name: str = "mailserver"):
        if workers < 1:
            raise ValueError("a pool needs at least one worker")
        self.workers = workers
        self.max_threads = 2 * workers
        self._name = name
        self._counter = itertools.count()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._stuck: set[threading.Thread] = set()
        self._idle = 0
        self._running = 0
        self._shutdown = False

    # What the server reads ------------------------------------------------------

    @property
    def stuck(self) -> int:
        return len(self._stuck)

    @property
    def running(self) -> int:
        """Threads inside a piece of work now, stuck ones included."""
        return self._running

    @property
    def active(self) -> int:
        """Threads inside a piece of work that is not declared stuck."""
        return self._running - len(self._stuck)

    @property
    def exhausted(self) -> bool:
        """Every thread the pool may run is stuck: no new work can start."""
        return len(self._stuck) >= self.max_threads

    # Executor -----------------------------------------------------------------

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot submit work after shutdown")
            self._queue.put((future, fn, args, kwargs))
            if self._queue.qsize() > self._idle:
                self._start_thread()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                while True:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        item[0].cancel()
            threads = list(self._threads)
            waiting = [t for t in threads if t not in self._stuck]
        for _ in threads:
            self._queue.put(None)
        if wait:
            # Never wait for a stuck thread: it may never return.
            for thread in waiting:
                thread.join()

    # Stuck threads --------------------------------------------------------------

    def declare_stuck(self, thread: threading.Thread) -> str:
        """
        Stop counting ``thread`` as a worker and start a replacement if the
        bound allows; return its stack, for the report.
        """
        with self._lock:
            if thread in self._threads and thread not in self._stuck:
                self._stuck.add(thread)
                if not self._shutdown:
                    self._start_thread()
        frame = sys._current_frames().get(thread.ident or -1)
        return "".join(traceback.format_stack(frame)) if frame is not None else ""

    # Threads ------------------------------------------------------------------

    def _start_thread(self) -> None:
        # Under the lock. A new thread only while live workers are fewer
        # than asked for and the bound on threads allows it.
        live = len(self._threads) - len(self._stuck)
        if live >= self.workers or len(self._threads) >= self.max_threads:
            return
        thread = threading.Thread(
            target=self._work, name=f"{self._name}_{next(self._counter)}", daemon=True
        )
        self._threads.add(thread)
        thread.start()

    def _work(self) -> None:
        me = threading.current_thread()
        while True:
            with self._lock:
                self._idle += 1
            item = self._queue.get()
            with self._lock:
                self._idle -= 1
            if item is None:
                break
            future, fn, args, kwargs = item
            if future.set_running_or_notify_cancel():
                with self._lock:
                    self._running += 1
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(result)
                finally:
                    with self._lock:
                        self._running -= 1
            del item, future, fn, args, kwargs
            with self._lock:
                if me in self._stuck:
                    # Back from a view declared stuck: a worker again, unless
                    # its replacement made enough.
                    self._stuck.discard(me)
                    if len(self._threads) - len(self._stuck) > self.workers:
                        break
        with self._lock:
            self._threads.discard(me)
            self._stuck.discard(me)

"""A one-waiter wake-up signal, built on each event loop's own lowest-cost primitive.

A handler waits for its next message once per batch of messages; an `anyio.Event` per
wait costs an object, a backend lookup and a future or parking lot each time. These
signals are made once per connection and reused: asyncio parks the task on a bare
future, trio reschedules the sleeping task directly. Both stay cancellable like any
other wait.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, cast


class AsyncioSignal:
    """Wakes the one task waiting in `wait()`; `set()` with nobody waiting does nothing."""

    __slots__ = ("_loop", "_future")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Kept rather than looked up per wait: get_running_loop() makes a getpid()
        # system call each time.
        self._loop = loop
        self._future: asyncio.Future[None] | None = None

    async def wait(self) -> None:
        future = self._loop.create_future()
        self._future = future
        try:
            await future
        finally:
            self._future = None

    def set(self) -> None:
        future = self._future
        if future is not None and not future.done():
            future.set_result(None)


class TrioSignal:
    """The same contract on trio, by rescheduling the waiting task itself."""

    __slots__ = ("_task", "_abort_wait")

    def __init__(self) -> None:
        self._task: Any = None
        # Bound once: a closure or bound method made per wait would be one more
        # object held by every idle connection.
        self._abort_wait = self._abort

    def wait(self) -> Awaitable[None]:
        """Returns trio's own wait rather than wrapping it in a coroutine of this
        class: an idle connection then holds one frame fewer."""
        import trio

        self._task = trio.lowlevel.current_task()
        return cast(Awaitable[None], trio.lowlevel.wait_task_rescheduled(self._abort_wait))  # noqa: ASYNC105

    def _abort(self, _: Any) -> Any:
        import trio

        self._task = None
        return trio.lowlevel.Abort.SUCCEEDED

    def set(self) -> None:
        task = self._task
        if task is not None:
            import trio

            self._task = None
            trio.lowlevel.reschedule(task)


Signal = Any  # AsyncioSignal or TrioSignal


def signal_factory() -> Callable[[], Signal]:
    """The signal class for the running event loop (call from inside it)."""
    if _in_trio():
        return TrioSignal
    loop = asyncio.get_running_loop()
    return lambda: AsyncioSignal(loop)


def _in_trio() -> bool:
    trio = sys.modules.get("trio")
    if trio is None:
        return False
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True

"""Where each connection's handler task runs.

An anyio task group gives every task it starts a handle (since anyio 4.14: a cancel
scope, an event and a wrapping coroutine): about 1.8 KB on asyncio and 2.5 KB on trio
that every idle connection would hold, and on asyncio a third of the cost of accepting
one. So handlers run as plain asyncio tasks, which the app cancels and waits for when
it stops (`cancel_and_wait`), or in a trio nursery of their own, opened by the
dispatcher's task inside the app's task group, so that cancelling the group cancels
them as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from anyio.abc import TaskGroup

logger = logging.getLogger("roost")


class AsyncioHandlerTasks:
    """Plain asyncio tasks, tracked so that stopping can cancel and await them."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._tasks: set[asyncio.Task[None]] = set()

    def start_soon(self, function: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        task = self._loop.create_task(function(*args))
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        # Handlers catch their own errors; what reaches here escaped on purpose
        # (SystemExit, KeyboardInterrupt are re-raised by the loop itself).
        if not task.cancelled() and task.exception() is not None:
            logger.error("WebSocket task ended with an error", exc_info=task.exception())

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[None]:
        """Nothing to open: the tasks belong to the loop."""
        yield

    async def cancel_and_wait(self) -> None:
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)


class TrioHandlerTasks:
    """A trio nursery, open while the dispatcher runs (`open`). Tasks started after it
    closed (while the app stops) go to the app's task group, already cancelled."""

    def __init__(self, task_group: TaskGroup) -> None:
        self._after_close = task_group.start_soon
        self._nursery: Any | None = None

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[None]:
        import trio

        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                yield
            finally:
                self._nursery = None

    def start_soon(self, function: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(function, *args)
        else:
            self._after_close(function, *args)

    async def cancel_and_wait(self) -> None:
        """Nothing to do: the app's task group is cancelled next, and the nursery
        inside it with it."""


HandlerTasks = Any  # AsyncioHandlerTasks or TrioHandlerTasks


def handler_tasks(task_group: TaskGroup) -> HandlerTasks:
    """The cheapest place for handler tasks in the running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return TrioHandlerTasks(task_group)
    return AsyncioHandlerTasks()

"""Where each connection's handler task runs.

On trio the app's anyio task group is a thin nursery and serves as is. On asyncio an
anyio task group adds, per task, a cancel scope, an event and a wrapping coroutine:
about 1.8 KB that every idle connection would hold, and a third of the cost of
accepting one. There the handlers are plain asyncio tasks, which the app cancels and
waits for when it stops (`cancel_and_wait`), as the task group would have.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Coroutine

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

    async def cancel_and_wait(self) -> None:
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)


class TaskGroupHandlerTasks:
    """The app's own anyio task group; its cancellation ends the handlers."""

    def __init__(self, task_group: TaskGroup) -> None:
        self.start_soon = task_group.start_soon

    async def cancel_and_wait(self) -> None:
        pass


HandlerTasks = Any  # AsyncioHandlerTasks or TaskGroupHandlerTasks


def handler_tasks(task_group: TaskGroup) -> HandlerTasks:
    """The cheapest place for handler tasks in the running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return TaskGroupHandlerTasks(task_group)
    return AsyncioHandlerTasks()

"""Fixtures of the browser tests: the chat example run as a user runs it, headless
Chromium sessions, and the screenshots they leave in build/test-output/."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from chat_page import ChatPage
from chromium import WAIT, open_chromium

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "python"
#: Kept after the run (build/ is not committed), for a person to look at.
SCREENSHOTS = ROOT / "build" / "test-output"
SERVING_PREFIX = "Roost serving on ws://"


class ChatServer:
    """examples/python/chat.py in a process of its own, with CHAT_COMPRESSION set to
    `compression` (None: not set, compression off)."""

    def __init__(self, compression: str | None, log: Path) -> None:
        self.compression = compression
        self.log = log
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/chat"

    def start(self) -> None:
        """Starts the server on `port` (0 the first time: a free port, kept for a
        restart) and returns once it listens."""
        env = {k: v for k, v in os.environ.items() if k != "CHAT_COMPRESSION"}
        if self.compression is not None:
            env["CHAT_COMPRESSION"] = self.compression
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "chat.py", "--port", str(self.port)],
                cwd=EXAMPLES,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], WAIT)
        line = self.process.stdout.readline().decode() if ready else ""
        if not line.startswith(SERVING_PREFIX):
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"chat.py did not start: {line!r} {self.log.read_text()}")
        self.port = int(line[len(SERVING_PREFIX) :].split(" ", 1)[0].rsplit(":", 1)[1])

    def stop(self) -> None:
        """SIGINT, as Ctrl+C: every client gets close 1001 and the process exits 0."""
        if self.process is None:
            return
        process, self.process = self.process, None
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise AssertionError(f"chat.py ignored SIGINT: {self.log.read_text()}") from None
        assert code == 0, (code, self.log.read_text())


@pytest.fixture
def chat_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ChatServer]:
    """The chat server, compression off unless the test is parametrized indirectly
    with a CHAT_COMPRESSION value."""
    server = ChatServer(getattr(request, "param", None), tmp_path / "chat.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def open_page(tmp_path: Path) -> Iterator[Callable[..., ChatPage]]:
    """`open_page(who, phone=False)`: a chat page in a browser session of its own (its
    own Chromium and profile) on a desktop's window or a phone's screen; all are closed
    after the test."""
    drivers = []

    def open_(who: str, *, phone: bool = False) -> ChatPage:
        width, height = (390, 844) if phone else (1000, 720)
        driver = open_chromium(tmp_path / f"profile-{who}", width, height, phone=phone)
        drivers.append(driver)
        return ChatPage(driver, who)

    yield open_
    for driver in drivers:
        driver.quit()


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[[ChatPage, str], Path]:
    """`screenshot(page, name)` saves build/test-output/chat-NAME.png, checks that it is a
    real picture, and lists it at the end of the run."""

    def save(page: ChatPage, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"chat-{name}.png"
        path.unlink(missing_ok=True)
        assert page.driver.save_screenshot(str(path)), path
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n"), path
        # A blank or failed capture compresses to a few hundred bytes; a page with text
        # and colours to tens of kilobytes.
        assert len(data) > 10_000, (path, len(data))
        request.config.stash.setdefault(SAVED, []).append(path)
        return path

    return save


SAVED = pytest.StashKey[list[Path]]()


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    saved = config.stash.get(SAVED, [])
    if saved:
        terminalreporter.section("screenshots")
        for path in saved:
            terminalreporter.write_line(str(path))

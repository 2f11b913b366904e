"""The chat page of examples/python/chat.py, used as a person uses it: fill in the
form, type, read what the page shows. Every wait is bounded and fails with what the
page showed at the time."""

from __future__ import annotations

from collections.abc import Callable

from chromium import WAIT
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait


class ChatPage:
    def __init__(self, driver: WebDriver, who: str) -> None:
        self.driver = driver
        self.who = who  # names the page in failure messages

    def open(self, url: str) -> None:
        self.driver.get(url)
        self.wait_until(lambda: self._find("#join").is_displayed(), "the join form shows")

    def join(self, name: str, room: str) -> None:
        for field, value in (("#name", name), ("#room", room)):
            box = self._find(field)
            box.clear()
            box.send_keys(value)
        self._find("#join button").click()
        self.wait_until(lambda: self.status() == "online", "the page is connected")

    def say(self, text: str) -> None:
        box = self._find("#message")
        box.send_keys(text)
        self._find("#send button").click()
        self.wait_until(lambda: box.get_attribute("value") == "", "the message box empties")

    def status(self) -> str:
        return self._find("#status").get_attribute("data-state") or ""

    def notices(self) -> list[str]:
        return self._texts("#log .notice")

    def messages(self) -> list[tuple[str, str]]:
        """(name, text) of each message shown, oldest first."""
        return [
            (item.find_element(By.CSS_SELECTOR, ".name").text, self._text_of(item, ".text"))
            for item in self.driver.find_elements(By.CSS_SELECTOR, "#log .message")
        ]

    def people(self) -> list[str]:
        return self._texts("#people li")

    def banner(self) -> str:
        banner = self._find("#banner")
        return banner.text if banner.is_displayed() else ""

    def count(self, selector: str) -> int:
        return len(self.driver.find_elements(By.CSS_SELECTOR, selector))

    def socket_extensions(self) -> str:
        """The extensions the server accepted on the page's WebSocket, as the browser
        reports them (`WebSocket.extensions`; the page keeps its socket in `socket`)."""
        return str(self.driver.execute_script("return socket ? socket.extensions : null;"))

    def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        try:
            WebDriverWait(self.driver, WAIT).until(lambda _: condition())
        except TimeoutException:
            raise AssertionError(
                f"{self.who}'s page: not {what} after {WAIT} s; status {self.status()!r}, "
                f"banner {self.banner()!r}, log {self._texts('#log li')!r}"
            ) from None

    def _find(self, selector: str):
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def _texts(self, selector: str) -> list[str]:
        return [e.text for e in self.driver.find_elements(By.CSS_SELECTOR, selector)]

    def _text_of(self, element, selector: str) -> str:
        # textContent, not .text: .text is the rendered text, which folds white space.
        return str(element.find_element(By.CSS_SELECTOR, selector).get_property("textContent"))

"""The chat example in a real browser: two headless Chromium sessions chat in one room
through the page the server serves at "/", a client in another room hears none of it,
and a page that loses the server says so and comes back by itself."""

from __future__ import annotations

import json
import time

import pytest
from websockets.sync.client import connect

from conftest import ChatServer

# Over compression_min_size (256 bytes): with compression on, the server sends it
# compressed, and the pages must inflate it.
LONG = "A longer message, so that it goes out compressed. " * 8
# Shown as typed, never as markup.
MARKUP = "<b>not bold</b> & <script>alert(1)</script>"


def recv_json(ws, timeout: float = 10.0) -> dict:
    return json.loads(ws.recv(timeout=timeout))


@pytest.mark.parametrize(
    "chat_server",
    [None, "deflate", "deflate-per-connection"],
    ids=["plain", "deflate", "deflate-per-connection"],
    indirect=True,
)
def test_two_browsers_chat_in_a_room_that_another_room_does_not_hear(
    chat_server: ChatServer, open_page, screenshot
) -> None:
    with connect(f"{chat_server.ws_url}?name=carol&room=kitchen", open_timeout=10) as carol:
        assert recv_json(carol) == {"type": "joined", "name": "carol", "people": ["carol"]}

        alice = open_page("alice")  # a desktop window
        alice.open(chat_server.url)
        alice.join("alice", "garden")
        alice.wait_until(lambda: "alice joined" in alice.notices(), "showing alice's join")

        bob = open_page("bob", phone=True)
        bob.open(chat_server.url)
        bob.join("bob", "garden")
        for page in (alice, bob):
            page.wait_until(lambda p=page: "bob joined" in p.notices(), "showing bob's join")
            page.wait_until(lambda p=page: p.people() == ["alice", "bob"], "listing both")

        alice.say(MARKUP)
        bob.say(LONG)
        both = [("alice", MARKUP), ("bob", LONG)]
        for page in (alice, bob):
            page.wait_until(lambda p=page: p.messages() == both, "showing both messages")
            assert page.count("#log b, #log script") == 0  # the text stayed text
        # Each sees its own message on the right, the other's on the left.
        assert alice.count("#log .message.mine") == bob.count("#log .message.mine") == 1

        # The browser negotiated what the server offers, and nothing when it is off.
        for page in (alice, bob):
            extensions = page.socket_extensions()
            if chat_server.compression is None:
                assert extensions == "", extensions
            else:
                assert extensions.startswith("permessage-deflate"), extensions

        # Another room: carol heard nothing of the garden, and the garden hears
        # nothing of her (her own copy coming back shows the message went out).
        carol.send(json.dumps({"text": "anyone in the kitchen?"}))
        assert recv_json(carol) == {
            "type": "message",
            "name": "carol",
            "text": "anyone in the kitchen?",
        }
        time.sleep(0.5)
        with pytest.raises(TimeoutError):
            carol.recv(timeout=0.2)
        for page in (alice, bob):
            assert page.messages() == both
            assert not any("carol" in notice for notice in page.notices())

        mode = chat_server.compression or "plain"
        print(screenshot(alice, f"{mode}-alice"), screenshot(bob, f"{mode}-bob"))


def test_a_page_shows_a_lost_connection_and_comes_back(
    chat_server: ChatServer, open_page, screenshot
) -> None:
    page = open_page("dana", phone=True)
    page.open(chat_server.url)
    page.join("dana", "lobby")
    page.wait_until(lambda: page.notices() == ["dana joined"], "showing dana's join")

    chat_server.stop()  # every client gets 1001
    page.wait_until(lambda: page.status() == "offline", "offline")
    page.wait_until(lambda: "Retrying in" in page.banner(), "showing the retry")
    assert page.notices() == ["dana joined"] and page.people() == []
    assert not page.driver.find_element("css selector", "#message").is_enabled()
    screenshot(page, "offline")

    chat_server.start()  # the same port; the page retries after 1 s, then 2 s, ...
    page.wait_until(lambda: page.status() == "online", "back online")
    page.wait_until(lambda: page.notices() == ["dana joined"] * 2, "showing the rejoin")
    assert page.banner() == ""
    page.say("back again")
    page.wait_until(lambda: page.messages() == [("dana", "back again")], "showing it")

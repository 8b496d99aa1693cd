"""The Via header and loop detection (federation/via.py)."""

from __future__ import annotations

import pytest

from city_os.federation.via import MAX_VIA_HOPS, Hops, LoopDetected, identity, parse


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:1032", "127.0.0.1:1032"),
        ("http://127.0.0.1:8086/broker1", "127.0.0.1:8086"),
        ("https://Saga.Example.JP/", "saga.example.jp:443"),
        ("http://saga.example.jp", "saga.example.jp:80"),
        ("http://[::1]:1026", "[::1]:1026"),
    ],
)
def test_identity(url: str, expected: str) -> None:
    assert identity(url) == expected


def test_parse_keeps_received_by_and_drops_comments() -> None:
    header = "1.1 127.0.0.1:1041, HTTP/1.1 Ogi.example:80 (city-os), 127.0.0.1:1043"
    assert parse(header) == ("127.0.0.1:1041", "ogi.example:80", "127.0.0.1:1043")
    assert parse(None) == () and parse("") == () and parse(" , ") == ()


def test_outgoing_appends_this_broker() -> None:
    assert Hops(None, "127.0.0.1:1041").outgoing() == "1.1 127.0.0.1:1041"
    hops = Hops("1.1 127.0.0.1:1042", "127.0.0.1:1041")
    assert hops.outgoing() == "1.1 127.0.0.1:1042, 1.1 127.0.0.1:1041"


def test_loop_a_b_a_is_detected() -> None:
    a, b = "127.0.0.1:1041", "127.0.0.1:1042"
    first = Hops(None, a)  # client → A
    at_b = Hops(first.outgoing(), b)  # A → B
    assert not at_b.looped
    back_at_a = Hops(at_b.outgoing(), a)  # B → A
    assert back_at_a.looped
    assert at_b.visited("http://127.0.0.1:1041/")


def test_overlong_chain_counts_as_a_loop() -> None:
    header = ", ".join(f"1.1 host{i}:80" for i in range(MAX_VIA_HOPS + 1))
    assert Hops(header, "me:80").looped


def test_loop_detected_problem() -> None:
    body = LoopDetected("request came back").problem()
    assert body["status"] == 508
    assert body["type"] == "https://uri.etsi.org/ngsi-ld/errors/LoopDetected"

"""Command payload helpers (issue 12): size before parsing, bounded depth, bounded numbers, strict JSON out."""

from __future__ import annotations

import json
import math
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from emotiond.commands import (
    MAX_DEPTH,
    PayloadError,
    encode_answer,
    json_depth_exceeds,
    number,
    parse_object,
    request_id,
)
from emotiond.sources.triggers import ControlSocketTrigger
from hypothesis import given, settings
from hypothesis import strategies as st

LIMIT = 4096


def strict(text: str) -> Any:
    """json.loads that refuses NaN/Infinity, i.e. what any other JSON parser accepts."""
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c} in {text[:80]}"))


@pytest.mark.parametrize("payload, fragment", [
    (b"[" * 100000 + b"]" * 100000, "nests deeper than 16 levels"),
    (b'{"a":' * 5000 + b"1" + b"}" * 5000, "nests deeper than"),
    (b'{"duration": ' + b"9" * 400 + b"}", "number with 400 characters is too long"),
    (b'{"duration": 1e999}', "out of range"),
    (b'{"id": NaN}', "NaN is not a JSON number"),
    (b'{"id": Infinity}', "Infinity is not a JSON number"),
    (b'{"id": -Infinity}', "-Infinity is not a JSON number"),
    (b"x" * (LIMIT + 1), f"payload of {LIMIT + 1} bytes exceeds the limit of {LIMIT}"),
    (b"  \n", "empty payload"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[1, 2]", "must be a JSON object, got list"),
    (b'"enabled"', "must be a JSON object, got str"),
    (b"{'a': 1}", "not valid JSON"),
])
def test_hostile_payloads_are_one_line_errors(payload: bytes, fragment: str) -> None:
    with pytest.raises(PayloadError) as err:
        parse_object(payload, LIMIT if len(payload) <= LIMIT + 1 else 10**7)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_size_is_checked_before_decoding() -> None:
    with pytest.raises(PayloadError, match="exceeds the limit"):
        parse_object(b"\xff" * 100 + b"[" * 10000, 64)  # neither UTF-8 nor shallow: the size decides first


def test_depth_scan_ignores_brackets_inside_strings() -> None:
    assert parse_object(json.dumps({"text": "[" * 100 + "{" * 100}).encode(), LIMIT)["text"].startswith("[[")
    assert not json_depth_exceeds('{"a": "\\"[[[["}', 1)
    nested: Any = 1
    for _ in range(MAX_DEPTH - 1):
        nested = [nested]
    assert parse_object(json.dumps({"x": nested}).encode(), LIMIT)["x"] == nested  # exactly at the limit


def test_numbers_are_range_checked_without_overflow() -> None:
    assert number(2, "duration", 0.5, 10) == 2.0
    for bad in (10**400, -(10**400), math.nan, math.inf, True, "2", None):
        with pytest.raises(ValueError, match="duration must be"):
            number(bad, "duration", 0.5, 10)
    with pytest.raises(ValueError) as err:
        number(10**400, "duration", 0.5, 10, "s")
    assert len(str(err.value)) < 120  # the 400 digits are not echoed back


@pytest.mark.parametrize("value, echoed", [
    ("abc", "abc"), (7, 7), (None, None), (math.nan, None), (math.inf, None), (10**400, "1" + "0" * 127),
    ([1, 2], "[1,2]"), ({"a": 1}, '{"a":1}'), (True, "true"), (1.5, "1.5"), ("x" * 500, "x" * 128),
])
def test_request_ids_are_echoed_as_json_safe_values(value: Any, echoed: Any) -> None:
    assert request_id(value) == echoed


def test_answers_are_strict_json_whatever_they_hold() -> None:
    body = {"ok": False, "id": math.nan, "v": [math.inf, (1, 2)], 3: np.float32(0.5), "n": np.int64(4), "o": object()}
    out = strict(encode_answer(body))
    assert out["id"] is None and out["v"] == [None, [1, 2]] and out["3"] == 0.5 and out["n"] == 4
    assert isinstance(out["o"], str)
    assert strict(encode_answer({"huge": 10**5000}))["ok"] is False
    assert request_id(10**5000) == "<int>"


# --- properties ---------------------------------------------------------------------------------------

json_trees = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300) | json_trees.map(lambda v: json.dumps({"id": v, "args": v}).encode())
       | st.text(alphabet="[]{}\":,0123456789.eE-NaInfity ", max_size=200).map(str.encode))
def test_any_payload_parses_to_an_object_or_a_payload_error(payload: bytes) -> None:
    try:
        parsed = parse_object(payload, LIMIT)
    except PayloadError as exc:
        assert "\n" not in str(exc)
        answer = {"ok": False, "error": str(exc), "id": None}
    else:
        assert isinstance(parsed, dict) and not json_depth_exceeds(json.dumps(parsed), MAX_DEPTH)
        answer = {"ok": True, "id": request_id(parsed.get("id")), "echo": parsed}
    strict(encode_answer(answer))  # always valid JSON


@settings(max_examples=300, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner)
    | st.dictionaries(st.integers() | st.text(max_size=3), inner, max_size=3),
    max_leaves=20,
))
def test_any_result_encodes_as_strict_json(result: Any) -> None:
    out = strict(encode_answer({"result": result, "id": request_id(result)}))
    assert set(out) == {"result", "id"}
    assert out["id"] is None or isinstance(out["id"], (str, int))


@settings(max_examples=200, deadline=None)
@given(st.integers() | st.floats() | st.text(max_size=5) | st.none() | st.booleans())
def test_number_accepts_exactly_the_finite_values_in_range(value: Any) -> None:
    try:
        got = number(value, "duration", 0.5, 10.0)
    except ValueError as exc:
        assert str(exc).startswith("duration must be")
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0.5 <= value <= 10
        assert not ok
    else:
        assert 0.5 <= got <= 10.0


def test_control_socket_answers_hostile_requests_with_strict_json(tmp_path: Path) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    def command(name: str, args: dict[str, Any]) -> dict[str, Any]:
        seen.append((name, args))
        return {"ok": True, "value": math.nan}  # a handler's NaN must not reach the wire

    path = tmp_path / "control.sock"
    trig = ControlSocketTrigger(path, command)
    trig.start()
    try:
        for payload in (b"[" * 50000, b'{"command": "x", "id": NaN}', b'{"command": "x", "d": ' + b"9" * 400 + b"}",
                        b'{"command": "x"}'):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(str(path))
                s.sendall(payload + b"\n")
                s.shutdown(socket.SHUT_WR)
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
            reply = strict(data.decode())
            assert data.endswith(b"\n") and data.count(b"\n") == 1
            if payload == b'{"command": "x"}':
                assert reply == {"ok": True, "value": None}
            else:
                assert reply["ok"] is False and reply["error"]
        assert seen == [("x", {})]  # only the valid request reached the daemon
    finally:
        trig.stop()

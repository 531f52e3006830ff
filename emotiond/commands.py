"""Command payloads in and answers out, as pure functions shared by every command path.

Hostile input must get an answer, never a traceback: the size is checked before decoding, nesting
depth before ``json.loads`` (whose recursion would otherwise raise RecursionError), numbers are
bounded while parsing (NaN/Infinity are not JSON; a 400-digit integer is refused), and an answer
is always strict JSON (``allow_nan=False``), with an unusable request id echoed as null or a string.
"""

from __future__ import annotations

import json
import math
import numbers
from typing import Any

MAX_DEPTH = 16  # nesting of objects/arrays; real commands use 1
MAX_NUMBER_CHARS = 40  # digits (plus sign, point, exponent) of one number literal
MAX_ID_CHARS = 128


class PayloadError(ValueError):
    """A payload that cannot be a command; the message is one line for the answer's ``error``."""


def json_depth_exceeds(text: str, limit: int) -> bool:
    """True if objects/arrays nest deeper than ``limit`` (linear scan; brackets inside strings ignored)."""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def _reject_constant(name: str) -> Any:
    raise PayloadError(f"{name} is not a JSON number")


def _parse_int(literal: str) -> int:
    if len(literal) > MAX_NUMBER_CHARS:
        raise PayloadError(f"number with {len(literal)} characters is too long (at most {MAX_NUMBER_CHARS})")
    return int(literal)


def _parse_float(literal: str) -> float:
    if len(literal) > MAX_NUMBER_CHARS:
        raise PayloadError(f"number with {len(literal)} characters is too long (at most {MAX_NUMBER_CHARS})")
    value = float(literal)
    if not math.isfinite(value):  # 1e999
        raise PayloadError(f"number {literal} is out of range")
    return value


def parse_object(payload: bytes, max_bytes: int, what: str = "payload", max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """Decode one JSON object; PayloadError (one line) for anything else, before any work is done."""
    if len(payload) > max_bytes:
        raise PayloadError(f"{what} of {len(payload)} bytes exceeds the limit of {max_bytes}")
    if not payload.strip():
        raise PayloadError(f"empty {what}: send a JSON object, e.g. {{}}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"{what} is not valid JSON: not UTF-8 (byte {exc.start})") from None
    if json_depth_exceeds(text, max_depth):
        raise PayloadError(f"{what} nests deeper than {max_depth} levels")
    try:
        parsed = json.loads(text, parse_constant=_reject_constant, parse_int=_parse_int, parse_float=_parse_float)
    except PayloadError as exc:  # from the number hooks
        raise PayloadError(f"{what}: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise PayloadError(f"{what} is not valid JSON: {str(exc)[:120]}") from None
    if not isinstance(parsed, dict):
        raise PayloadError(f"{what} must be a JSON object, got {type(parsed).__name__}")
    return parsed


def request_id(value: Any) -> str | int | None:
    """The id to echo: a string (capped) or a safe integer as given; anything else as a short string."""
    if value is None:
        return None
    if isinstance(value, str):
        return value[:MAX_ID_CHARS]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= 2**53:
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):  # e.g. an int past Python's 4300-digit str limit
        text = f"<{type(value).__name__}>"
    return text[:MAX_ID_CHARS]


def number(value: Any, name: str, lo: float, hi: float, unit: str = "", noun: str = "a number") -> float:
    """``value`` as a finite float within [lo, hi]; ValueError naming ``name`` otherwise (never OverflowError)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be {noun}, got {_short(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {_short(value)}")
    if not lo <= value <= hi:  # int/float comparison is exact: no float() of a huge int
        raise ValueError(f"{name} must be from {lo} to {hi}{' ' + unit if unit else ''}, got {_short(value)}")
    return float(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}…({len(text)} characters)"


def json_safe(value: Any, depth: int = 0) -> Any:
    """``value`` with non-finite floats as null, tuples as lists, odd keys and objects as strings."""
    if depth > MAX_DEPTH:
        return str(value)[:MAX_ID_CHARS]
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, numbers.Integral):  # numpy integers
        return int(value)
    if isinstance(value, numbers.Real):  # float and numpy floats
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(k): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, depth + 1) for v in value]
    return str(value)


def encode_answer(body: dict[str, Any]) -> str:
    """One line of strict JSON for ``body``, whatever it holds."""
    try:
        return json.dumps(json_safe(body), allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:  # e.g. an int past Python's 4300-digit str limit
        return json.dumps({"ok": False, "error": f"answer not serialisable ({type(exc).__name__})"})

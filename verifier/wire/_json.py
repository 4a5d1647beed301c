"""JSON in and out of tokens: compact, UTF-8, and parsed defensively."""

from __future__ import annotations

import json
from typing import Any

from dualres.verifier.wire.errors import MalformedError, TooLargeError

MAX_DEPTH = 16
# I-JSON (RFC 7493 section 2.2): integers every JSON reader holds exactly.  A
# browser's numbers are IEEE doubles, so beyond this two verifiers would read
# different values from one token; refusing them is a rule both can state.
MAX_INTEGER = 2**53 - 1
_MAX_INTEGER_DIGITS = len(str(MAX_INTEGER))


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _no_constants(name: str) -> Any:
    raise MalformedError(f"JSON constant {name} is not allowed")


def _integer(text: str) -> int:
    # Judged on the digits before int() runs, so CPython's own limit on long
    # integer strings (4,300 digits) is never what decides.
    if len(text.lstrip("-")) > _MAX_INTEGER_DIGITS or abs(value := int(text)) > MAX_INTEGER:
        raise MalformedError("JSON integer out of range")
    return value


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise MalformedError("duplicate JSON member name")
    return obj


def _check_depth(text: str) -> None:
    # Python's parser recurses per nesting level; a deep document would be a
    # RecursionError (or worse) instead of a clean reason, so bound it first.
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return
    depth = 0
    in_string = False
    escaped = False
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
            if depth > MAX_DEPTH:
                raise TooLargeError("JSON nested too deeply")
        elif ch in "]}":
            depth -= 1


def loads(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedError("invalid UTF-8") from exc
    _check_depth(text)
    try:
        return json.loads(
            text, object_pairs_hook=_unique, parse_constant=_no_constants, parse_int=_integer
        )
    except MalformedError:
        raise
    except (ValueError, RecursionError) as exc:
        raise MalformedError("invalid JSON") from exc


def loads_object(raw: bytes) -> dict[str, Any]:
    obj = loads(raw)
    if not isinstance(obj, dict):
        raise MalformedError("expected a JSON object")
    return obj

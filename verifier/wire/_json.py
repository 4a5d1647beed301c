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


def _too_deep(obj: Any) -> bool:
    """Whether a parsed document nests containers deeper than ``MAX_DEPTH``.

    On valid JSON this is the character scan's verdict (a bracket outside a
    string is a container), level by level in C-driven loops instead of one
    Python step per character: 1x ``json.loads`` on a nationwide trust list
    where the scan took 3.5x.
    """
    level = [obj] if isinstance(obj, (dict, list)) else []
    depth = 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            return True
        below: list[Any] = []
        for node in level:
            for v in node.values() if isinstance(node, dict) else node:
                if isinstance(v, (dict, list)):
                    below.append(v)
        level = below
    return False


# One decoder for every call: json.loads with hooks builds a new JSONDecoder
# (and its scanner) each time, a tenth of parsing a small token's JSON.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_unique, parse_constant=_no_constants, parse_int=_integer
)


# Without hooks, for _plain_loads: the C scanner builds every object itself.
_PLAIN = json.JSONDecoder(parse_constant=_no_constants)
# Below this a document's few hook calls cost less than _plain_loads' extra passes.
_PLAIN_MIN_CHARS = 2048


def _plain_loads(text: str) -> Any:
    """``text`` parsed with no Python hook per object or integer, or None when any
    check fails (the hooked parse then decides, and words the error as always).

    Only for text without a backslash: then every string is one pair of ``"``, so
    the text holds ``count('"') / 2`` strings, each a member name or a string
    value.  The parsed tree holds as many names plus string values unless a name
    repeated: the repeat overwrites the first member, which takes its name (and
    any strings below it) out of the tree.  Counting both is the duplicate check;
    the integer bound and the depth are judged in the same one pass over the tree.
    """
    try:
        obj = _PLAIN.decode(text)
    except (MalformedError, ValueError, RecursionError):
        return None
    strings = text.count('"') // 2
    if type(obj) is str:
        strings -= 1
    level: list[Any] = [obj] if type(obj) is dict or type(obj) is list else []
    depth = 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            return None
        below: list[Any] = []
        push = below.append
        node: Any
        for node in level:
            if type(node) is dict:
                strings -= len(node)
                node = node.values()
            for v in node:
                t = type(v)
                if t is str:
                    strings -= 1
                elif t is dict or t is list:
                    push(v)
                elif t is int and not -MAX_INTEGER <= v <= MAX_INTEGER:
                    return None
        level = below
    return None if strings else obj


def loads(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedError("invalid UTF-8") from exc
    if len(text) >= _PLAIN_MIN_CHARS and "\\" not in text:
        obj = _plain_loads(text)
        if obj is not None:
            return obj
    try:
        obj = _DECODER.decode(text)
    except (MalformedError, ValueError, RecursionError) as exc:
        # The answer for a bad document is what it always was: too deep first
        # (the exact scan, run only now), then malformed.
        _check_depth(text)
        if isinstance(exc, MalformedError):
            raise
        raise MalformedError("invalid JSON") from exc
    # Parsing first is safe: CPython's scanner guards its recursion (a
    # RecursionError, handled above), and the document is then judged on the
    # parsed tree, far cheaper than a scan of every character.
    if text.count("[") + text.count("{") > MAX_DEPTH and _too_deep(obj):
        raise TooLargeError("JSON nested too deeply")
    return obj


def loads_object(raw: bytes) -> dict[str, Any]:
    obj = loads(raw)
    if not isinstance(obj, dict):
        raise MalformedError("expected a JSON object")
    return obj

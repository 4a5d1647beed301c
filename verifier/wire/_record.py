"""Frozen records with slots: what ``@dataclass(frozen=True, slots=True)`` gave the
verifier's types, without importing ``dataclasses``.

Why: a scanner that runs one ``dualres-verify check`` per scan pays every module
body at start-up.  ``dataclasses`` imports ``inspect`` (with ``ast``, ``dis`` and
``tokenize``) and builds each class by generating and compiling half a dozen
methods: about 13 ms of CPU for the verifier's dozen types, nearly half of the
library's own start-up.  A record here compiles one ``__init__`` and shares the
rest (``__repr__``, ``__eq__``, ``__hash__``, immutability) between classes.

What a record keeps of a frozen dataclass: keyword or positional ``__init__`` in
field order, defaults and ``field(default_factory=...)``, ``__slots__``, equality
and hashing over the fields (same class only), ``__match_args__``, a ``repr``
naming every field, ``FrozenRecordError`` (an ``AttributeError``) on assignment,
pickling.  ``replace(obj, **changes)`` here takes the place of ``dataclasses.replace``.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any, TypeVar, dataclass_transform

__all__ = ["FrozenRecordError", "field", "record", "replace"]

_T = TypeVar("_T")
_C = TypeVar("_C", bound=type)
_set = object.__setattr__


class FrozenRecordError(AttributeError):
    """Assignment to a field of a frozen record."""


class _Factory:
    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


def field(*, default_factory: Callable[[], _T]) -> _T:
    """A default made fresh for each instance (as ``dataclasses.field``)."""
    return _Factory(default_factory)  # type: ignore[return-value]


def _frozen_setattr(self: object, name: str, value: object) -> None:
    raise FrozenRecordError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: object, name: str) -> None:
    raise FrozenRecordError(f"cannot delete field {name!r}")


def _repr(self: Any) -> str:
    inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__match_args__)
    return f"{type(self).__qualname__}({inner})"


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return self._values(self) == self._values(other)


def _hash(self: Any) -> int:
    return hash(self._values(self))


def _getstate(self: Any) -> tuple[Any, ...]:
    return tuple(getattr(self, n) for n in self.__match_args__)


def _setstate(self: Any, state: tuple[Any, ...]) -> None:
    for n, v in zip(self.__match_args__, state, strict=True):
        _set(self, n, v)


def replace(obj: _T, /, **changes: Any) -> _T:
    """A copy of the record ``obj`` with some fields changed (as ``dataclasses.replace``)."""
    values = {n: getattr(obj, n) for n in obj.__match_args__}  # type: ignore[attr-defined]
    values.update(changes)
    return type(obj)(**values)


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def record(cls: _C) -> _C:
    """Make ``cls`` a frozen record of its annotated fields (see the module docstring)."""
    own = cls.__dict__
    names = tuple(n for n, t in own.get("__annotations__", {}).items() if "ClassVar" not in str(t))
    ns: dict[str, Any] = {k: v for k, v in own.items() if k not in names}
    ns.pop("__dict__", None)
    ns.pop("__weakref__", None)
    env: dict[str, Any] = {"_set": _set}
    params, body = [], []
    for n in names:
        if n in own:
            default = own[n]
            if isinstance(default, _Factory):
                env[f"_f_{n}"] = default.make
                params.append(f"{n}=_MISSING")
                body.append(f"    _set(self, {n!r}, _f_{n}() if {n} is _MISSING else {n})")
                env["_MISSING"] = _MISSING
                continue
            env[f"_d_{n}"] = default
            params.append(f"{n}=_d_{n}")
        elif params and "=" in params[-1]:
            raise TypeError(f"{cls.__name__}: field {n!r} without a default follows one with")
        else:
            params.append(n)
        body.append(f"    _set(self, {n!r}, {n})")
    src = f"def __init__(self, {', '.join(params)}):\n" + ("\n".join(body) or "    pass")
    exec(src, env)  # noqa: S102 -- our own field names (identifiers), compiled once at import
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    ns.update(
        __slots__=names,
        __init__=init,
        __match_args__=names,
        __repr__=_repr,
        __eq__=_eq,
        __hash__=_hash,
        __setattr__=_frozen_setattr,
        __delattr__=_frozen_delattr,
        __getstate__=_getstate,
        __setstate__=_setstate,
        _values=staticmethod(attrgetter(*names)) if names else staticmethod(lambda _: ()),
        __replace__=replace,  # copy.replace (Python 3.13)
    )
    made = type(cls)(cls.__name__, cls.__bases__, ns)
    made.__qualname__ = cls.__qualname__
    return made


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()

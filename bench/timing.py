"""Timing and the machine line: per-call ``perf_counter_ns``, medians and p95."""

from __future__ import annotations

import gc
import os
import platform
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from time import perf_counter_ns
from typing import Any


@dataclass
class Timing:
    """Per-call samples of one operation, in nanoseconds."""

    name: str
    samples: list[int] = field(default_factory=list)
    failures: int = 0  # calls that did not give the expected answer

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")

    @property
    def p95(self) -> float:
        if not self.samples:
            return float("nan")
        s = sorted(self.samples)
        return float(s[min(len(s) - 1, round(0.95 * (len(s) - 1)))])


@dataclass
class Case:
    """One timed operation: ``call(item)`` for every item of ``items``, each timed alone.

    ``fresh`` runs before each round and returns per-round state passed as the
    second argument (a new replay memory, so a pool of distinct presentations
    can be verified again in the next round).  ``call`` returns a truthy
    value when it gave the expected answer.
    """

    name: str
    call: Callable[[Any, Any], Any]
    items: Sequence[Any]
    fresh: Callable[[], Any] = lambda: None
    timing: Timing = field(init=False)

    def __post_init__(self) -> None:
        self.timing = Timing(self.name)


def run_interleaved(cases: Sequence[Case], *, rounds: int, warmup: int) -> None:
    """Run every case round by round, side by side, so drift hits them alike.

    The first ``warmup`` calls of each case (on its first round's items) are
    not recorded; the garbage collector is off while a round is timed.
    """
    for case in cases:
        state = case.fresh()
        for item in case.items[:warmup]:
            case.call(item, state)
    for _ in range(rounds):
        for case in cases:
            state = case.fresh()
            call, samples = case.call, case.timing.samples
            gc.collect()
            gc.disable()
            try:
                for item in case.items:
                    t0 = perf_counter_ns()
                    ok = call(item, state)
                    t1 = perf_counter_ns()
                    samples.append(t1 - t0)
                    if not ok:
                        case.timing.failures += 1
            finally:
                gc.enable()


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    from cryptography.hazmat.backends.openssl.backend import backend

    return {
        "cpu": cpu,
        "cores": f"{usable} usable of {os.cpu_count()}",
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "os": f"{platform.system()} {platform.release()}",
        "cryptography": _version("cryptography"),
        "openssl": backend.openssl_version_text(),
        "sd-jwt": _version("sd-jwt"),
        "pyjwt": _version("PyJWT"),
        "qrcode": _version("qrcode"),
        "zxing-cpp": _version("zxing-cpp"),
        "pillow": _version("Pillow"),
    }

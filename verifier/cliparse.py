"""The command-line parser both ``dualres-verify`` and ``dualres-issuer`` use.

argparse prints usage and calls ``sys.exit`` on its own; :class:`Parser` raises
:class:`ParserExit` instead, so ``main()`` returns the exit status and a program that
embeds a CLI (or a test) keeps running.  ``--version`` reports the package's version.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

import dualres

USAGE_ERROR = 2  # what argparse itself exits with on a usage error


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises ParserExit where argparse would call sys.exit().

    argparse prints usage and exits 2 itself; raising instead lets main() return
    the code, so tests (and embedding programs) keep running.  Both command lines
    (dualres-verify, dualres-issuer) use it.
    """

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            self._print_message(message, sys.stderr)
        raise ParserExit(status)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


class ParserExit(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def add_version(parser: argparse.ArgumentParser) -> None:
    """``--version``: the program's name and the package version, on standard output."""
    parser.add_argument(
        "--version", action="version", version=f"{parser.prog} {dualres.__version__}"
    )

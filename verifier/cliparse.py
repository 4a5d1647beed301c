"""The command-line parser both ``dualres-verify`` and ``dualres-issuer`` use.

argparse prints usage and calls ``sys.exit`` on its own; :class:`Parser` raises
:class:`ParserExit` instead, so ``main()`` returns the exit status and a program that
embeds a CLI (or a test) keeps running.  ``--version`` reports the package's version.
"""

from __future__ import annotations

import argparse
import os
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

    def _get_formatter(self) -> argparse.HelpFormatter:
        # argparse makes a formatter on every add_argument (to check the metavar), and
        # HelpFormatter() without a width imports shutil (with bz2, lzma and fnmatch)
        # for the terminal's: about 1.5 ms of every check process.  Same width rule.
        make: type[argparse.HelpFormatter] = self.formatter_class  # type: ignore[assignment]
        return make(prog=self.prog, width=_terminal_columns() - 2)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def _terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``, without importing shutil."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class ParserExit(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def add_version(parser: argparse.ArgumentParser) -> None:
    """``--version``: the program's name and the package version, on standard output."""
    parser.add_argument(
        "--version", action="version", version=f"{parser.prog} {dualres.__version__}"
    )

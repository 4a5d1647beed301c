"""``dualres-issuer``'s entry point: one clear line, not a traceback, without the extra.

Every installation of ``dualres`` gets the ``dualres-issuer`` command, also
``pip install 'dualres[scan]'`` for a shop's computer; only ``[issuer]``
brings Flask and SQLAlchemy.  This module imports neither before checking.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

EXIT_ERROR = 2


def main(argv: Sequence[str] | None = None) -> int:
    try:
        import alembic  # noqa: F401
        import flask  # noqa: F401
        import sqlalchemy  # noqa: F401
    except ImportError as exc:
        print(
            "dualres-issuer: 発行サーバーには追加のパッケージが必要です / the issuer needs its"
            f" extra: pip install 'dualres[issuer]' ({exc.name or exc} is missing)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    from dualres.issuer.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())

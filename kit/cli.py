"""One convention for the kit's command lines: a user error is one line on stderr and exit status 2.

User errors are the kit's own input errors (bad annotation or prediction files, unknown
settings, missing files): they say what is wrong and where, so a traceback only hides the
line that matters. ``--debug`` (anywhere on the command line) or ``KIT_DEBUG=1`` shows it.
"""

from __future__ import annotations

import os
import sys
from typing import Callable

#: What a user can cause with a wrong argument or file (the kit's input errors derive from ValueError).
USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


def run_cli(main: Callable[[list[str]], None], argv: list[str] | None = None) -> None:
    """Call ``main`` with the arguments (``--debug`` removed); a user error exits 2 with one line."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("KIT_DEBUG", "") not in ("", "0")
    try:
        main([a for a in args if a != "--debug"])
    except USER_ERRORS as err:
        if debug:
            raise
        print(f"error: {err}  (--debug shows the traceback)", file=sys.stderr)
        raise SystemExit(2) from None

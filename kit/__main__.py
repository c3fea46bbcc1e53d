"""``python -m kit COMMAND``: every command of the kit (``python -m kit --help`` lists them; see :mod:`kit.cli`)."""

from kit.cli import run_cli

if __name__ == "__main__":
    run_cli()

"""The ``callboard`` command (its console script imports this module) and ``python -m callboard``.

Kept tiny on purpose: multiprocessing re-runs the program's main script in every worker it
starts (the parse workers of a sync), so whatever the script imports at its top, every worker
imports again. The CLI, and all it imports, is loaded only when the command runs.
"""

from __future__ import annotations

__all__ = ["main"]


def main() -> None:
    from callboard.bot.cli import main as cli

    cli()


if __name__ == "__main__":
    main()

"""``callboard/__main__.py``: the module the ``callboard`` console script imports, and ``python -m callboard``.

multiprocessing re-runs the program's main script in every worker it starts (a sync's parse
workers), so the script's module must stay tiny: importing it must not load the CLI."""

from __future__ import annotations

import subprocess
import sys

from callboard import __version__


def test_importing_the_entry_module_loads_no_cli() -> None:
    probe = ("import sys, callboard.__main__; "
             "print(sorted(m for m in sys.modules if m.startswith('callboard.') and m != 'callboard.__main__'))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_python_m_callboard_runs_the_cli() -> None:
    done = subprocess.run([sys.executable, "-m", "callboard", "--version"], capture_output=True, text=True)
    assert done.returncode == 0
    assert __version__ in done.stdout

"""The layers point down: the import-linter contracts in pyproject.toml hold."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Runs import-linter's own command line (``lint-imports``) in this interpreter.
_LINT_IMPORTS = ("import sys; from importlinter.cli import lint_imports_command; "
                 "sys.exit(lint_imports_command.main(prog_name='lint-imports'))")


def lint_imports() -> subprocess.CompletedProcess:
    """``lint-imports`` on this checkout's packages, with its report captured."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    return subprocess.run(
        [sys.executable, "-c", _LINT_IMPORTS, "--no-logo", "--no-cache",
         str(ROOT / "pyproject.toml")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_import_contracts_hold():
    run = lint_imports()
    report = (run.stdout + run.stderr).strip()
    assert run.returncode == 0, f"lint-imports found a broken contract:\n{report}"
    assert "0 broken" in report, report

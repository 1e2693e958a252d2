import subprocess
import sys

from scaffold import __version__
from scaffold.cli import main


def test_version_prints_the_installed_version(capsys):
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert capsys.readouterr().out.strip() == f"scaffold {__version__}"
    assert __version__ != "0.0.0"


def test_help_lists_the_program(capsys):
    try:
        main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
    assert "usage: scaffold" in capsys.readouterr().out


def test_console_script_runs_as_module():
    done = subprocess.run([sys.executable, "-m", "scaffold", "--version"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.startswith("scaffold ")

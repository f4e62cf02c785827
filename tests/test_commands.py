"""The console scripts exist and explain themselves."""

import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("script", ["vitalsd", "vitals-sim"])
def test_console_script_prints_help(script: str) -> None:
    result = subprocess.run([BIN / script, "--help"], capture_output=True, text=True, check=True)
    assert "usage:" in result.stdout

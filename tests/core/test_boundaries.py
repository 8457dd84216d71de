"""Architecture rules that keep the engine and the UI apart."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_phone_core_never_imports_streamlit() -> None:
    code = (
        "import sys, pkgutil, importlib, phone_core\n"
        "for m in pkgutil.walk_packages(phone_core.__path__, 'phone_core.'):\n"
        "    if '.migrations' not in m.name: importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n == 'streamlit' or n.startswith('streamlit.'))\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


UI_DIRS = ("app_pages", "ui")


def test_pages_and_ui_never_import_io_libraries() -> None:
    files = [ROOT / "app.py", *(f for d in UI_DIRS for f in sorted((ROOT / d).glob("*.py")))]
    assert len(files) > 10  # the layout the rule is about is really there
    pattern = re.compile(r"^\s*(import|from)\s+(httpx|boto3|botocore|sqlalchemy)\b", re.M)
    offenders = [f.name for f in files if pattern.search(f.read_text())]
    assert offenders == []


def test_no_legacy_pages_directory() -> None:
    """A `pages/` dir beside app.py turns on Streamlit's legacy multipage mode."""
    assert not (ROOT / "pages").exists()

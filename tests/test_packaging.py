"""What ``pip install pubsubkit`` installs: the library and its own dependencies, not the reference app's."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WEB_STACK = {"falcon", "gunicorn", "pyjwt"}


def _names(requirements: list[str]) -> set[str]:
    return {r.split(">")[0].split("=")[0].split("[")[0].strip().lower() for r in requirements}


def test_the_reference_apps_dependencies_are_an_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert not _names(project["dependencies"]) & WEB_STACK
    assert _names(project["optional-dependencies"]["myevents"]) == WEB_STACK


def test_a_fresh_install_has_no_web_stack_and_the_command_says_what_to_install(tmp_path: Path) -> None:
    """Installed into a new virtual environment: pubsubkit imports and works; falcon, gunicorn and PyJWT are not
    there; the myevents command exits 2 naming the extra."""
    found = shutil.which("uv") or next((str(u) for u in (ROOT / ".venv" / "bin" / "uv",) if u.exists()), None)
    assert found, "uv is not installed: scripts/bootstrap installs it into .venv"
    uv = Path(found)
    venv = tmp_path / "venv"
    subprocess.run([str(uv), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([str(uv), "pip", "install", "--quiet", "--python", str(python), str(ROOT)], check=True, timeout=600)
    listed = subprocess.run(
        [str(uv), "pip", "list", "--python", str(python), "--format", "freeze"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    installed = {line.split("==")[0].lower() for line in listed.splitlines() if "==" in line}
    assert "pubsubkit" in installed
    assert not installed & WEB_STACK, f"installed with pubsubkit: {sorted(installed & WEB_STACK)}"
    works = subprocess.run(
        [str(python), "-c", "import pubsubkit; b = pubsubkit.open_broker('memory://x'); print(b.capabilities.ordered)"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert works.returncode == 0, works.stderr
    command = subprocess.run([str(venv / "bin" / "myevents"), "serve"], capture_output=True, text=True, timeout=120)
    assert command.returncode == 2
    assert "pip install 'pubsubkit[myevents]'" in command.stderr
    assert "Traceback" not in command.stderr

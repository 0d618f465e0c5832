"""Installing Rapport as the Makefile does prints nothing to act on: no setuptools
deprecations (`make run` and `make test` show the install's output)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_package_metadata_builds_without_warnings(tmp_path: Path) -> None:
    # pip builds the metadata with the setuptools that pyproject.toml asks for, in an
    # isolated environment, as `make install` does; --dry-run installs nothing.
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--quiet", "-e", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        # a pip configuration of this machine (an index folder that is not there) is no
        # concern of the package's
        if line.strip() and not line.startswith("WARNING: Location ")
    ]
    assert lines == [], "\n".join(lines)


def test_the_container_image_copies_every_package_rapport_installs() -> None:
    """The Dockerfile copies the packages one by one: a new top-level package left out of it
    would make the image fail at its first import."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {
        name.rstrip("*") for name in project["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    copied = {
        line.split()[1]
        for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
        if line.startswith("COPY ") and len(line.split()) == 3
    }
    assert packages <= copied, f"the Dockerfile does not copy {sorted(packages - copied)}"

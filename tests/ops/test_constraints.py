"""constraints.txt pins what the suite runs with, and every install path uses it."""

from __future__ import annotations

import os
import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "constraints.txt"
IN_CI = os.environ.get("CI", "").lower() == "true"


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"constraints.txt: not an exact pin: {line!r}"
        pins[canonicalize_name(name)] = version
    return pins


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = project["dependencies"] + project["optional-dependencies"]["dev"]
    return [Requirement(r) for r in listed]


def test_every_dependency_is_pinned_inside_its_range() -> None:
    pins = _pins()
    for req in _requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not pinned in constraints.txt (run make lock)"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {req.name}=={pins[name]}, outside pyproject's {req}"
        )


def test_installs_use_the_constraints() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert '$(PIP) -c $(LOCK) -e ".[dev]"' in makefile
    assert "PIP    := -m pip install" in makefile
    assert "LOCK   := constraints.txt" in makefile
    assert "make test" in (ROOT / ".ci" / "run").read_text()  # CI installs through make
    deploy = (ROOT / "docs" / "DEPLOY.md").read_text()
    installs = re.findall(r"\.venv/bin/pip install[^\n]*", deploy)
    assert installs and all("-c constraints.txt" in line for line in installs), installs
    readme = (ROOT / "README.md").read_text()
    assert "pip install -c constraints.txt ." in readme


def test_readme_names_the_pinned_versions() -> None:
    pins = _pins()
    readme = (ROOT / "README.md").read_text()
    block = readme.split("**Tested versions.**", 1)[1].split("\n\n", 1)[0]
    named = re.findall(r"([A-Za-z][\w.-]+) (\d+(?:\.\d+)+)", block)
    named = [(n, v) for n, v in named if n != "Python" and n != "PostgreSQL"]
    assert len(named) >= 5, block
    for name, version in named:
        assert pins.get(canonicalize_name(name)) == version, f"README says {name} {version}"


def test_this_environment_runs_the_pinned_versions() -> None:
    """`make test` installs with the constraints; a hand-made venv may differ (said, not hidden)."""
    off = []
    for name, version in _pins().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            off.append(f"{name} missing")
            continue
        if Version(installed) != Version(version):
            off.append(f"{name} {installed} != {version}")
    if off:
        reason = "the venv differs from constraints.txt: " + ", ".join(off)
        if IN_CI:
            pytest.fail(reason + " (CI=true installs through make with the constraints)")
        pytest.skip(reason)

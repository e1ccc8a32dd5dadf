"""Command-line tools a test needs, installed from Debian packages when missing.

``missing_tools`` returns None when every tool is on PATH (installing the packages first if
needed and possible), else the reason they are not there; the caller skips with it, or fails
under CI=true.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator

APT_TIMEOUT = 600  # seconds for apt-get update / install
EXTRA_PATH = "/usr/sbin:/sbin"


def which(tool: str) -> str | None:
    return shutil.which(tool, path=os.environ.get("PATH", "") + os.pathsep + EXTRA_PATH)


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(  # noqa: S603 - apt-get with fixed arguments from this module
        [which("apt-get") or "apt-get", *args],
        capture_output=True,
        text=True,
        timeout=APT_TIMEOUT,
        env=env,
        check=False,
    )


@contextlib.contextmanager
def apt_lock() -> Iterator[None]:
    """One installer at a time across the test workers (pytest -n): dpkg has a single lock and
    a second apt-get would fail on it instead of waiting."""
    with open("/tmp/spn-tests-apt.lock", "w") as handle:  # noqa: S108 - a lock file, no data
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def missing_tools(tools: dict[str, str]) -> str | None:
    """``tools`` maps a command to the Debian package that provides it."""
    if all(which(tool) is not None for tool in tools):
        return None
    with apt_lock():  # another worker may be installing them right now
        return _install_missing(tools)


def _install_missing(tools: dict[str, str]) -> str | None:
    missing = [tool for tool in tools if which(tool) is None]
    if not missing:
        return None
    packages = sorted({tools[tool] for tool in missing})
    wanted = f"{', '.join(missing)} (Debian: apt-get install {' '.join(packages)})"
    if which("apt-get") is None:
        return f"{wanted} missing and apt-get is not available to install them"
    if os.geteuid() != 0:
        return f"{wanted} missing and installing them needs root"
    updated = _apt("update")
    if updated.returncode != 0:
        return f"{wanted} missing; apt-get update failed: {updated.stderr.strip()[-300:]}"
    installed = _apt("install", "-y", "--no-install-recommends", *packages)
    if installed.returncode != 0:
        return f"{wanted} missing; apt-get install failed: {installed.stderr.strip()[-300:]}"
    still = [tool for tool in missing if which(tool) is None]
    return f"{', '.join(still)} still missing after installing {packages}" if still else None

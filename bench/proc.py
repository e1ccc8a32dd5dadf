"""The harness side of bench/target.py: spawn a server process, talk JSON lines to it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class BenchError(Exception):
    """A correctness or harness failure: the run exits non-zero with this message."""


class Target:
    """One server process. Spawned early (imports take seconds), configured when its turn comes."""

    def __init__(self, kind: str, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.kind = kind
        self.proc = proc
        self.log = log
        self.pid = proc.pid
        self.port = 0
        self._imported = False

    @classmethod
    async def spawn(
        cls, kind: str, log_dir: Path, name: str, patches: list[str] | None = None
    ) -> Target:
        log = log_dir / f"{name}.log"
        with log.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.target",
                kind,
                cwd=ROOT,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                limit=2**24,
                env={
                    **os.environ,
                    "PYTHONUNBUFFERED": "1",
                    "SPN_BENCH_PATCH": ",".join(patches or []),
                },
            )
        return cls(kind, proc, log)

    async def _read(self, wanted: str, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                line = await self.proc.stdout.readline()
                if not line:
                    await self.proc.wait()
                    raise BenchError(
                        f"{self.kind} process exited ({self.proc.returncode}) while we waited "
                        f"for {wanted!r}; its log ({self.log}) ends with:\n{self.tail()}"
                    )
                try:
                    message = json.loads(line)
                except ValueError:
                    continue  # something printed by a library; the protocol is JSON only
                if message.get("event") == "error":
                    raise BenchError(
                        f"{self.kind} failed in {message.get('cmd')}: {message.get('error')}\n"
                        f"{message.get('trace', '')}"
                    )
                if message.get("event") == wanted:
                    return dict(message)

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:]) or "(empty)"

    async def _send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        await self.proc.stdin.drain()

    async def imported(self, timeout: float = 120) -> None:
        if not self._imported:
            await self._read("imported", timeout)
            self._imported = True

    async def configure(self, config: dict[str, Any], timeout: float = 120) -> int:
        await self.imported()
        await self._send(config)
        ready = await self._read("ready", timeout)
        self.port = int(ready["port"])
        return self.port

    async def command(self, cmd: str, timeout: float = 300, **args: Any) -> dict[str, Any]:
        await self._send({"cmd": cmd, **args})
        return await self._read(f"{cmd}_done", timeout)

    async def stop(self, timeout: float = 30) -> dict[str, Any]:
        """Stop the server (the process waits for its next config); returns its final stats."""
        try:
            await self._send({"cmd": "stop"})
            return await self._read("stopped", timeout)
        except BenchError:
            raise
        except Exception as exc:
            self.kill()
            raise BenchError(f"{self.kind} did not stop cleanly: {exc!r}") from exc

    async def exit(self, timeout: float = 30) -> None:
        """End the process; a non-zero exit is a failure (it may hide an error at shutdown)."""
        if self.proc.returncode is None:
            try:
                await self._send({"cmd": "exit"})
                await asyncio.wait_for(self.proc.wait(), timeout)
            except Exception as exc:
                self.kill()
                raise BenchError(f"{self.kind} did not exit: {exc!r}\n{self.tail()}") from exc
        if self.proc.returncode:
            raise BenchError(f"{self.kind} exited with {self.proc.returncode}:\n{self.tail()}")

    def kill(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()


class Profiler:
    """py-spy attached to one process for the measured window (``--profile``)."""

    def __init__(self, pid: int, out: Path) -> None:
        self.pid = pid
        self.out = out
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        exe = Path(sys.executable).with_name("py-spy")
        if not exe.exists():
            raise BenchError("--profile needs py-spy: .venv/bin/pip install py-spy")
        self._proc = await asyncio.create_subprocess_exec(
            str(exe),
            "record",
            "--pid",
            str(self.pid),
            "--rate",
            "250",
            "--nonblocking",  # do not pause the app for each sample
            "--format",
            "raw",
            "--output",
            str(self.out),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await asyncio.sleep(0.5)  # py-spy attaches before the load starts

    async def stop(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self._proc.wait(), 30)
            except TimeoutError:
                self._proc.kill()


def _proc_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (its threads included)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _postgres_cpu() -> dict[int, float]:
    """CPU seconds of every running PostgreSQL process (backends, walwriter, …) by pid."""
    seen: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    seen[int(entry.name)] = _proc_cpu(int(entry.name))
            except OSError:
                continue
    return seen


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0, 0.0
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])
    tick = os.sysconf("SC_CLK_TCK")
    return (total - idle) / tick, total / tick


class CpuMeter:
    """CPU used during a window: the server process, this harness, PostgreSQL, and everything
    else (the kernel's share of loopback networking, py-spy when profiling, other load)."""

    def __init__(self, server_pid: int) -> None:
        self._pid = server_pid
        self._pg = _postgres_cpu()
        self._start = self._read()
        self._wall = time.monotonic()

    def _read(self) -> tuple[float, float, float]:
        busy, _total = _machine_cpu()
        return _proc_cpu(self._pid), _proc_cpu(os.getpid()), busy

    def stop(self) -> dict[str, float]:
        server, harness, busy = (b - a for a, b in zip(self._start, self._read(), strict=True))
        wall = time.monotonic() - self._wall
        # Backends that ended mid-window are missed (their time went to the postmaster).
        pg = sum(t - self._pg.get(pid, 0.0) for pid, t in _postgres_cpu().items())
        return {
            "wall_s": round(wall, 3),
            "server_cpu_s": round(server, 2),
            "harness_cpu_s": round(harness, 2),
            "postgres_cpu_s": round(pg, 2),
            "other_cpu_s": round(max(0.0, busy - server - harness - pg), 2),
            "machine_busy_pct": round(100 * busy / (wall * (os.cpu_count() or 1)), 1),
        }


async def quiet(limit_pct: float = 25.0, longest: float = 15.0) -> float:
    """Wait (at most ``longest`` s) until the machine is calm: less than ``limit_pct`` busy
    over half a second, so a run does not start inside the previous run's aftermath
    (PostgreSQL's checkpoint after DROP DATABASE, autovacuum, a lagging process). Returns the
    last busy percentage seen."""
    cores = os.cpu_count() or 1
    deadline = time.monotonic() + longest
    busy_pct = 100.0
    while time.monotonic() < deadline:
        before, wall = _machine_cpu()[0], time.monotonic()
        await asyncio.sleep(0.5)
        busy_pct = 100 * (_machine_cpu()[0] - before) / ((time.monotonic() - wall) * cores)
        if busy_pct < limit_pct:
            break
    return round(busy_pct, 1)

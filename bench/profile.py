"""Summarise a py-spy ``--format raw`` profile (collapsed stacks) of a measured window.

``python -m bench.profile bench/results/profile/burst-postgres.txt [--top 25]`` prints where
the app process spent its CPU: self time by package, inclusive time of the app's own
functions, and the hottest stacks' leaves. Written by ``python -m bench.run --profile DIR``.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^:()]+)(?::(?P<line>\d+))?\)$")

# Self time is charged to the first matching package, innermost frame first.
PACKAGES = (
    ("asyncpg", "asyncpg/"),
    ("aiosqlite / sqlite3", ("aiosqlite/", "sqlite3/")),
    ("SQLAlchemy", "sqlalchemy/"),
    ("aiogram", "aiogram/"),
    ("pydantic", ("pydantic/", "pydantic_core/")),
    ("aiohttp", ("aiohttp/", "multidict/", "yarl/")),
    ("json", "json/"),
    ("logging", "logging/"),
    ("asyncio / selectors", ("asyncio/", "selectors.py")),
    ("spnbot", "spnbot/"),
)


# Leaf frames of a thread that is only waiting (py-spy cannot always tell it is idle): the
# event loop in epoll, aiosqlite's and the default executor's worker threads in queue.get.
IDLE_LEAVES = (
    ("EpollSelector.select", "selectors.py"),
    ("_connection_worker_thread", "aiosqlite/core.py"),
    ("_worker", "concurrent/futures/thread.py"),
)


def is_idle(frames: list[tuple[str, str]]) -> bool:
    func, file = frames[-1]
    return any(func == f and file.endswith(suffix) for f, suffix in IDLE_LEAVES)


def parse(path: Path) -> list[tuple[list[tuple[str, str]], int]]:
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        frames_text, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = []
        for raw in frames_text.split(";"):
            m = _FRAME.match(raw)
            frames.append((m["func"], m["file"]) if m else (raw, ""))
        stacks.append((frames, int(count)))
    return stacks


def package_of(frame_file: str) -> str | None:
    for name, needles in PACKAGES:
        for needle in (needles,) if isinstance(needles, str) else needles:
            if needle in frame_file:
                return name
    return None


def summarise(path: Path, top: int = 20) -> str:
    everything = parse(path)
    stacks = [(frames, n) for frames, n in everything if frames and not is_idle(frames)]
    idle = sum(n for _, n in everything) - sum(n for _, n in stacks)
    total = sum(n for _, n in stacks) or 1
    by_package: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for frames, n in stacks:
        package = next(
            (p for _f, file in reversed(frames) if (p := package_of(file)) is not None), "other"
        )
        by_package[package] += n
        seen: set[str] = set()
        for func, file in frames:
            if "spnbot/" in file or "bench/floor" in file:
                key = f"{func} ({file.split('site-packages/')[-1]})"
                if key not in seen:
                    seen.add(key)
                    inclusive[key] += n
        func, file = frames[-1]
        leaves[f"{func} ({file.split('site-packages/')[-1]})"] += n
    out = [f"{path.name}: {total} busy samples ({idle} waiting samples left out)"]
    out.append("\nself time by package (innermost known frame):")
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in by_package.most_common()]
    out.append(f"\ninclusive time, app functions (top {top}):")
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    out.append(f"\nhottest leaf frames (top {top}):")
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in leaves.most_common(top)]
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--top", type=int, default=20)
    args = p.parse_args()
    for path in args.files:
        print(summarise(path, args.top))
        print()


if __name__ == "__main__":
    main()

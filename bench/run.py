"""``python -m bench.run``: the payments burst and the chat load, each next to its floor.

Starts the sandbox emulators in this process and the server under test (the real SPN app,
or a floor) in a child process on loopback; prints a table and writes a JSON file with every
raw number. Exit 0 only when every correctness check passed: each payment activated exactly
once, every reply arrived. Performance targets are reported (PASS/MISS), not enforced.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.databases import check_postgres, fresh
from bench.proc import BenchError, Target
from bench.stats import Report, Row
from bench.stats import Target as Goal

if TYPE_CHECKING:
    from bench import burst, chat

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "results" / "latest.json"
DBS = ("postgres", "sqlite")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    p.add_argument("--payments", "-n", type=int, default=1000, help="burst size N (1000)")
    p.add_argument("--concurrency", "-c", type=int, default=50, help="callbacks in flight C (50)")
    p.add_argument("--users", "-m", type=int, default=500, help="chat users M (500)")
    p.add_argument(
        "--chat-concurrency", type=int, default=50, help="chat users active at once (50)"
    )
    p.add_argument("--db", default="postgres,sqlite", help="databases for the burst")
    p.add_argument(
        "--chat-db", default=None, help="database of the app in the chat load (first of --db)"
    )
    p.add_argument("--scenarios", default="burst,chat", help="burst, chat or both")
    p.add_argument(
        "--floor-runs", type=int, default=3, help="burst floor runs per database; median (3)"
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    p.add_argument("--quick", action="store_true", help="smoke test: N=100, M=50")
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="directory: py-spy records the app process during each measured window",
    )
    p.add_argument(
        "--patch",
        action="append",
        default=[],
        metavar="MODULE",
        help="what-if: import MODULE (e.g. bench.patches.NAME) in the app process first",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.payments, args.users = 100, 50
    args.dbs = [d.strip() for d in args.db.split(",") if d.strip()]
    if not args.dbs or set(args.dbs) - set(DBS):
        p.error(f"--db takes a comma list of {', '.join(DBS)}")
    args.chat_db = args.chat_db or args.dbs[0]
    if args.chat_db not in DBS:
        p.error(f"--chat-db is one of {', '.join(DBS)}")
    args.scenario_list = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if not args.scenario_list or set(args.scenario_list) - {"burst", "chat"}:
        p.error("--scenarios takes burst, chat or burst,chat")
    if min(args.payments, args.concurrency, args.users, args.chat_concurrency, args.floor_runs) < 1:
        p.error("sizes must be positive")
    return args


def code_state() -> dict[str, Any]:
    """Which SPN was measured: the commit and any uncommitted files under spnbot/."""

    def git(*args: str) -> str:
        try:
            done = subprocess.run(  # noqa: S603 (fixed arguments)
                ["git", *args],  # noqa: S607 (git from PATH)
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except OSError:
            return ""
        return done.stdout

    status = git("status", "--porcelain", "--", "spnbot").splitlines()
    return {
        "commit": git("rev-parse", "--short", "HEAD").strip(),
        "uncommitted": [line[3:] for line in status],
    }


def machine() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": _cpu_model(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


async def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    report = Report()
    raw: dict[str, Any] = {
        "machine": machine(),
        "code": code_state(),
        "args": {
            "payments": args.payments,
            "concurrency": args.concurrency,
            "users": args.users,
            "chat_concurrency": args.chat_concurrency,
            "db": args.dbs,
            "chat_db": args.chat_db,
            "scenarios": args.scenario_list,
            "patches": args.patch,
        },
        "burst": {},
        "chat": {},
    }
    if "postgres" in args.dbs or ("chat" in args.scenario_list and args.chat_db == "postgres"):
        raw["machine"]["postgres"] = await check_postgres()
    workdir = Path(tempfile.mkdtemp(prefix="spn-bench-"))
    logs = args.out.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)

    # The server processes start now, so their imports (aiogram's take seconds) run before
    # the first measurement instead of during one. The app gets a fresh process for each
    # measured run (no run inherits another's heap); the floors serve their runs in turn.
    plan: dict[str, str] = {}  # name → kind
    if "burst" in args.scenario_list:
        plan.update({f"app-burst-{db}": "app" for db in args.dbs})
        plan["burst_floor"] = "burst_floor"
    if "chat" in args.scenario_list:
        plan.update({"app-chat": "app", "chat_floor": "chat_floor"})
    targets: dict[str, Target] = {}
    try:
        for name, kind in plan.items():
            patches = args.patch if kind == "app" else None
            targets[name] = await Target.spawn(kind, logs, name, patches)
        print(f"starting {len(targets)} server processes (imports take a while)…", flush=True)
        # This process's own imports (the emulators pull in spnbot and aiogram) overlap theirs.
        importlib.import_module("bench.burst")
        importlib.import_module("bench.chat")
        # The emulators live here: a full collection walking the ~250k objects of those
        # imports would stall them for a fifth of a second, so freeze them (harness only).
        gc.collect()
        gc.freeze()
        await asyncio.gather(*(t.imported() for t in targets.values()))
        print(f"ready after {time.monotonic() - started:.1f}s", flush=True)
        uid = 10_000_000  # fresh Telegram ids for every run of every side
        if "burst" in args.scenario_list:
            for db_kind in args.dbs:
                uid = await _bursts(args, targets, db_kind, workdir, uid, raw, report)
        if "chat" in args.scenario_list:
            uid = await _chats(args, targets, workdir, uid, raw, report)
        for target in targets.values():
            await target.exit()
    except BenchError as exc:
        report.failures.append(str(exc))
    finally:
        for target in targets.values():
            target.kill()
        shutil.rmtree(workdir, ignore_errors=True)

    _goals(report, raw, args)
    raw["report"] = report.as_dict()
    raw["elapsed_s"] = round(time.monotonic() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(raw, indent=2, ensure_ascii=False, default=str) + "\n")
    _print(report, raw, args)
    return 1 if report.failures else 0


async def _bursts(
    args: argparse.Namespace,
    targets: dict[str, Target],
    db_kind: str,
    workdir: Path,
    uid: int,
    raw: dict[str, Any],
    report: Report,
) -> int:
    from bench import burst

    n, c = args.payments, args.concurrency
    print(f"burst on {db_kind}: spn, N={n} C={c}…", flush=True)
    async with fresh(db_kind, workdir, "burst-spn") as db:
        spn = await burst.spn_burst(
            targets[f"app-burst-{db_kind}"],
            db,
            n=n,
            concurrency=c,
            first_uid=uid,
            workdir=workdir,
            profile=_profile_file(args, f"burst-{db_kind}"),
            timeout=120 + n * 0.1,
        )
    uid += n
    _burst_line(spn)
    _note(report, f"burst spn {db_kind}", spn.failures)
    # The floor takes a second or two and varies run to run: the median of a few runs.
    floors = []
    for i in range(args.floor_runs):
        print(f"burst on {db_kind}: floor run {i + 1}/{args.floor_runs}…", flush=True)
        async with fresh(db_kind, workdir, f"burst-floor-{i}") as db:
            floor = await burst.floor_burst(
                targets["burst_floor"],
                db,
                n=n,
                concurrency=c,
                first_uid=uid,
                timeout=60 + n * 0.05,
            )
        uid += n
        _burst_line(floor)
        _note(report, f"burst floor {db_kind}", floor.failures)
        floors.append(floor)
    median = sorted(floors, key=lambda r: r.per_second)[len(floors) // 2]
    raw["burst"][db_kind] = {
        "spn": spn.as_dict(),
        "floor": median.as_dict(),
        "floor_runs": [f.as_dict() for f in floors],
    }
    _burst_rows(report, raw["burst"][db_kind], db_kind)
    return uid


async def _chats(
    args: argparse.Namespace,
    targets: dict[str, Target],
    workdir: Path,
    uid: int,
    raw: dict[str, Any],
    report: Report,
) -> int:
    from bench import chat

    m, c = args.users, args.chat_concurrency
    print(f"chat on {args.chat_db}: spn, M={m} ({c} at a time)…", flush=True)
    async with fresh(args.chat_db, workdir, "chat") as db:
        spn = await chat.spn_chat(
            targets["app-chat"],
            db,
            users=m,
            concurrency=c,
            first_uid=uid,
            workdir=workdir,
            profile=_profile_file(args, f"chat-{args.chat_db}"),
            step_timeout=60,
        )
    uid += m
    _chat_line(spn)
    _note(report, "chat spn", spn.failures)
    print(f"chat: floor, M={m} ({c} at a time)…", flush=True)
    floor = await chat.floor_chat(
        targets["chat_floor"], users=m, concurrency=c, first_uid=uid, step_timeout=60
    )
    uid += m
    _chat_line(floor)
    _note(report, "chat floor", floor.failures)
    raw["chat"] = {"spn": spn.as_dict(), "floor": floor.as_dict()}
    _chat_rows(report, raw["chat"], args.chat_db)
    return uid


def _burst_line(result: burst.BurstResult) -> None:
    p99 = result.as_dict()["callback_to_message_ms"].get("p99")
    cpu = _cpu_line(result.extra.get("cpu"), result.extra.get("busy_before_pct"))
    print(f"  {result.per_second:.0f} activations/s, p99 callback→message {p99} ms; {cpu}")


def _chat_line(result: chat.ChatResult) -> None:
    p99 = result.as_dict()["update_to_reply_ms"].get("p99")
    cpu = _cpu_line(result.extra.get("cpu"), result.extra.get("busy_before_pct"))
    print(f"  {result.per_second:.0f} updates/s, p99 update→reply {p99} ms; {cpu}")


def _cpu_line(cpu: dict[str, float] | None, busy_before: float | None = None) -> str:
    if not cpu:
        return ""
    noisy = ""
    if busy_before is not None and busy_before >= 25:
        noisy = f" [machine was {busy_before:.0f}% busy before the run: noisy]"
    return noisy + (
        f"CPU over {cpu['wall_s']:.1f}s: server {cpu['server_cpu_s']:.1f}s, harness "
        f"{cpu['harness_cpu_s']:.1f}s, PostgreSQL {cpu['postgres_cpu_s']:.1f}s, "
        f"other {cpu['other_cpu_s']:.1f}s "
        f"(machine {cpu['machine_busy_pct']:.0f}% busy)"
    )


def _profile_file(args: argparse.Namespace, name: str) -> Path | None:
    return args.profile / f"{name}.txt" if args.profile else None


def _note(report: Report, where: str, failures: list[str]) -> None:
    report.failures += [f"{where}: {f}" for f in failures]


def _burst_rows(report: Report, sides: dict[str, Any], db: str) -> None:
    spn, floor = sides.get("spn"), sides.get("floor")
    if not spn or not floor:
        return
    report.rows.append(
        Row(
            "burst",
            db,
            "activations/s",
            spn["activations_per_s"],
            floor["activations_per_s"],
            higher_is_better=True,
        )
    )
    for key, label in (
        ("callback_to_panel_ms", "callback→panel"),
        ("callback_to_message_ms", "callback→message"),
    ):
        for p in ("p50", "p95", "p99"):
            report.rows.append(
                Row(
                    "burst",
                    db,
                    f"{label} {p} ms",
                    spn[key].get(p, math.nan),
                    floor[key].get(p, math.nan),
                )
            )


def _chat_rows(report: Report, sides: dict[str, Any], db: str) -> None:
    spn, floor = sides.get("spn"), sides.get("floor")
    if not spn or not floor:
        return
    report.rows.append(
        Row(
            "chat",
            db,
            "updates/s",
            spn["updates_per_s"],
            floor["updates_per_s"],
            higher_is_better=True,
        )
    )
    for p in ("p50", "p99"):
        report.rows.append(
            Row(
                "chat",
                db,
                f"update→reply {p} ms",
                spn["update_to_reply_ms"].get(p, math.nan),
                floor["update_to_reply_ms"].get(p, math.nan),
            )
        )


def _goals(report: Report, raw: dict[str, Any], args: argparse.Namespace) -> None:
    pg = raw["burst"].get("postgres", {})
    if pg.get("spn") and pg.get("floor"):
        ratio = pg["floor"]["activations_per_s"] / pg["spn"]["activations_per_s"]
        report.targets.append(Goal("burst ratio to floor (activations/s, PostgreSQL)", ratio, 2.0))
        p99 = pg["spn"]["callback_to_message_ms"].get("p99", math.nan)
        report.targets.append(
            Goal(f"p99 callback→message at C={args.concurrency} on PostgreSQL", p99, 250, " ms")
        )
    sides = raw["chat"]
    if sides.get("spn") and sides.get("floor"):
        ratio = sides["floor"]["updates_per_s"] / sides["spn"]["updates_per_s"]
        report.targets.append(Goal("chat-load ratio to floor (updates/s)", ratio, 2.0))


def _print(report: Report, raw: dict[str, Any], args: argparse.Namespace) -> None:
    m = raw["machine"]
    print()
    print(
        f"SPN bench — {m['nproc']} cores ({m['processor']}), Python {m['python']}"
        + (f", PostgreSQL {m['postgres']}" if m.get("postgres") else "")
    )
    print(
        f"N={args.payments} payments at C={args.concurrency}; M={args.users} chat users "
        f"({args.chat_concurrency} at a time); ratio = how many times the floor's figure"
    )
    code = raw["code"]
    dirty = f" + {len(code['uncommitted'])} uncommitted files" if code["uncommitted"] else ""
    print(f"SPN at {code['commit'] or '?'}{dirty}")
    if args.patch:
        print(f"WHAT-IF RUN: the app was patched with {', '.join(args.patch)}")
    print()
    if report.rows:
        print(report.table())
        print()
    for goal in report.targets:
        print(goal.line())
    print(f"\nraw numbers: {args.out}  ({raw['elapsed_s']} s)")
    if report.failures:
        print("\nFAILED — correctness checks did not pass:", file=sys.stderr)
        for failure in report.failures:
            print(f"  - {failure}", file=sys.stderr)
    else:
        print("correctness: every payment activated exactly once, every reply arrived")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())

"""Payments burst: N pending payments, their signed 1Plat "paid" callbacks fired C at a time.

Timestamps come from the emulators (time.monotonic(), one clock for every process on the
machine): the panel records when it received each new expireAt, the Telegram emulator when
each message arrived. The harness records when it sent each callback.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench.databases import Db
from bench.proc import BenchError, CpuMeter, Profiler, Target, quiet
from bench.stats import summary_ms
from spnbot.sandbox.remnawave_users import parse_iso
from spnbot.sandbox.stack import ADMIN_ID, PANEL_TOKEN, SHOP_ID, SHOP_SECRET, Sandbox

SUCCESS = "Оплата прошла успешно"
# A payment's public id as the app makes it (purchase.new_order_id) and admin notices show it.
PAYMENT_ID = re.compile(r"(?<![\w-])spn-[0-9a-f]{20}(?![\w-])")


@dataclass
class BurstResult:
    side: str  # "spn" | "floor"
    db: str
    n: int
    concurrency: int
    sent: dict[int, float] = field(default_factory=dict)
    answered: dict[int, float] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    panel_at: dict[int, float] = field(default_factory=dict)
    message_at: dict[int, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        """First callback sent → last user's success message."""
        if not self.sent or not self.message_at:
            return float("nan")
        return max(self.message_at.values()) - min(self.sent.values())

    @property
    def per_second(self) -> float:
        return len(self.message_at) / self.duration if self.duration > 0 else float("nan")

    def latencies(self, stamps: dict[int, float]) -> dict[str, float]:
        return summary_ms(stamps[uid] - self.sent[uid] for uid in stamps if uid in self.sent)

    def as_dict(self) -> dict[str, Any]:
        return {
            "side": self.side,
            "db": self.db,
            "payments": self.n,
            "concurrency": self.concurrency,
            "duration_s": round(self.duration, 3),
            "activations_per_s": round(self.per_second, 1),
            "callback_to_answer_ms": self.latencies(self.answered),
            "callback_to_panel_ms": self.latencies(self.panel_at),
            "callback_to_message_ms": self.latencies(self.message_at),
            "failures": self.failures,
            **self.extra,
        }


def _sandbox_urls(sb: Sandbox) -> dict[str, Any]:
    return {
        "bot_token": sb.bot_token,
        "telegram": sb.telegram.url,
        "panel": sb.panel.url,
        "panel_version": sb.panel.api_version,
        "squad": sb.panel.squad_uuid,
        "oneplat": sb.oneplat.url,
        "cryptopay": sb.cryptopay.url,
    }


def app_config(sb: Sandbox, db: Db, data_dir: Path, **overrides: Any) -> dict[str, Any]:
    return {
        "sandbox": _sandbox_urls(sb),
        "database_url": db.url,
        "data_dir": str(data_dir),
        # The reconciler would poll 1Plat for every pending invoice mid-burst; the tests
        # switch it off the same way. Logs at WARNING: the app must not slow itself down.
        "overrides": {"payment_check_interval": 3600, "log_level": "WARNING", **overrides},
    }


async def _fire(
    url: str, callbacks: Sequence[tuple[int, bytes]], concurrency: int, result: BurstResult
) -> None:
    """POST every callback, at most ``concurrency`` in flight, as 1Plat's servers would."""
    gate = asyncio.Semaphore(concurrency)
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one(uid: int, body: bytes) -> None:
            async with gate:
                result.sent[uid] = time.monotonic()
                try:
                    async with http.post(url, data=body, headers=headers) as resp:
                        await resp.read()
                        result.statuses[uid] = resp.status
                except aiohttp.ClientError as exc:
                    result.statuses[uid] = -1
                    result.failures.append(f"callback for user {uid} failed: {exc!r}")
                result.answered[uid] = time.monotonic()

        await asyncio.gather(*(one(uid, body) for uid, body in callbacks))
    bad = {uid: s for uid, s in result.statuses.items() if s != 200}
    if bad:
        result.failures.append(
            f"{len(bad)} callbacks not answered 200: {dict(list(bad.items())[:5])}"
        )


async def _wait_delivered(sb: Sandbox, uids: set[int], timeout: float) -> None:
    """Until every user has a success message and the panel has an expiry for every user."""
    events, updates = sb.telegram.events, sb.panel.expiry_updates
    seen_events = seen_updates = 0
    messaged: set[int] = set()
    on_panel: set[int] = set()
    deadline = time.monotonic() + timeout
    while True:
        for event in events[seen_events:]:
            if event.who == "bot" and event.kind == "message" and SUCCESS in event.text:
                messaged.add(event.user_id)
        seen_events = len(events)
        for telegram_id, _when, _at in updates[seen_updates:]:
            on_panel.add(telegram_id or 0)
        seen_updates = len(updates)
        if uids <= messaged and uids <= on_panel:
            return
        if time.monotonic() > deadline:
            raise BenchError(
                f"after {timeout:.0f}s only {len(uids & messaged)}/{len(uids)} users got the "
                f"success message and {len(uids & on_panel)}/{len(uids)} reached the panel"
            )
        await asyncio.sleep(0.01)


def _collect(sb: Sandbox, uids: Sequence[int], result: BurstResult) -> dict[int, list[float]]:
    """Message times per user (every success message: the checks want exactly one)."""
    times: dict[int, list[float]] = {}
    for uid in uids:
        times[uid] = [m.sent_at for m in sb.telegram.messages(uid) if SUCCESS in m.text]
        if times[uid]:
            result.message_at[uid] = min(times[uid])
    return times


def _one_message_each(times: dict[int, list[float]], result: BurstResult) -> None:
    wrong = {uid: len(t) for uid, t in times.items() if len(t) != 1}
    if wrong:
        result.failures.append(
            f"{len(wrong)} users did not get exactly one success message: "
            f"{dict(list(wrong.items())[:5])}"
        )


def _panel_users(sb: Sandbox) -> dict[int, list[dict[str, Any]]]:
    by_tg: dict[int, list[dict[str, Any]]] = {}
    for record in sb.panel.users.values():
        by_tg.setdefault(record["telegramId"], []).append(record)
    return by_tg


async def spn_burst(
    target: Target,
    db: Db,
    *,
    n: int,
    concurrency: int,
    first_uid: int,
    workdir: Path,
    profile: Path | None,
    timeout: float,
) -> BurstResult:
    result = BurstResult("spn", db.kind, n, concurrency)
    async with Sandbox() as sb:
        uids = list(range(first_uid, first_uid + n))
        for uid in uids:
            sb.telegram.user(uid, first_name=f"U{uid}")
        port = await target.configure(app_config(sb, db, workdir / f"spn-{db.kind}"))
        base = f"http://127.0.0.1:{port}"
        sb.oneplat.callback_url = base + "/1plat-webhook"
        sb.cryptopay.webhook_url = base + "/cryptobot-webhook"
        began = time.monotonic()
        setup = await target.command("setup", first_uid=first_uid, count=n)
        result.extra["setup_s"] = round(time.monotonic() - began, 1)
        by_uid = {uid: (pid, ext) for uid, pid, ext in setup["payments"]}
        callbacks = [
            (uid, json.dumps(sb.oneplat.build_callback(by_uid[uid][1], 1)).encode()) for uid in uids
        ]
        result.extra["busy_before_pct"] = await quiet()
        profiler = Profiler(target.pid, profile) if profile else None
        if profiler:
            await profiler.start()
        cpu = CpuMeter(target.pid)
        try:
            fire = asyncio.create_task(
                _fire(sb.oneplat.callback_url, callbacks, concurrency, result)
            )
            await _wait_delivered(sb, set(uids), timeout)
            await fire
        finally:
            result.extra["cpu"] = cpu.stop()
            if profiler:
                await profiler.stop()
        times = _collect(sb, uids, result)
        # Exactly once, checked after the queue drained (admin notices may still be going).
        state = await target.command("settle", timeout=timeout)
        _one_message_each(times, result)
        _check_spn_state(sb, state, by_uid, result)
        result.extra["jobs"] = state["jobs"]
        result.extra["pg_tables"] = state.get("pg_tables") or None
        result.extra["panel_requests"] = len(sb.panel.requests)
        result.extra["bot_api_calls"] = dict(sb.telegram.call_counts)
        result.extra.update(await target.stop())
    return result


def _check_spn_state(
    sb: Sandbox, state: dict[str, Any], by_uid: dict[int, tuple[str, str]], result: BurstResult
) -> None:
    n = len(by_uid)
    fail = result.failures.append
    jobs = state["jobs"]
    if set(jobs) - {"done"}:
        fail(f"jobs not all done: {jobs}")
    if state["payments"] != {"paid": n}:
        fail(f"payments by status: {state['payments']} (want {{'paid': {n}}})")
    grants = [(source, count) for source, kind, count in state["grants"] if kind == "payment"]
    ours = {pid for pid, _ext in by_uid.values()}
    if {s for s, _ in grants} != ours or any(count != 1 for _, count in grants):
        doubled = [g for g in grants if g[1] != 1][:5]
        fail(f"payment grants: {len(grants)} sources for {n} payments, not one each {doubled}")
    admin = [m for m in sb.telegram.messages(ADMIN_ID) if not m.deleted]
    result.extra["admin_messages"] = len(admin)
    # Payment notices arrive as digests: each payment named once, in one message.
    named = Counter(pid for m in admin for pid in PAYMENT_ID.findall(m.text))
    missing = ours - set(named)
    twice = sorted(pid for pid, count in named.items() if count > 1)
    unknown = sorted(set(named) - ours)
    if missing or twice or unknown:
        fail(
            f"admin messages: {len(missing)} payments never named, {len(twice)} named more "
            f"than once {twice[:3]}, {len(unknown)} unknown {unknown[:3]}"
        )
    panel = _panel_users(sb)
    mismatched: list[str] = []
    for uid in by_uid:
        ours_when = state["expires"].get(str(uid))
        records = panel.get(uid, [])
        if len(records) != 1 or ours_when is None:
            mismatched.append(f"{uid}: {len(records)} panel users, expires_at={ours_when}")
            continue
        want = _ms(datetime.fromisoformat(ours_when))
        if _ms(parse_iso(records[0]["expireAt"])) != want:
            mismatched.append(f"{uid}: panel {records[0]['expireAt']} vs ours {ours_when}")
            continue
        # When the panel first received exactly this expiry.
        at = [t for tid, when, t in sb.panel.expiry_updates if tid == uid and _ms(when) == want]
        if at:
            result.panel_at[uid] = min(at)
        else:
            mismatched.append(f"{uid}: the panel never received {ours_when}")
    if mismatched:
        fail(f"{len(mismatched)} users disagree with the panel: {mismatched[:5]}")


def _ms(when: datetime | None) -> int | None:
    return None if when is None else int(when.timestamp() * 1000)


async def _create_orders(sb: Sandbox, uids: Sequence[int]) -> dict[int, str]:
    """Pending 1Plat orders for the floor (made outside the timer, like the app's setup)."""
    headers = {"x-shop": SHOP_ID, "x-secret": SHOP_SECRET}
    url = sb.oneplat.url + "/api/merchant/order/create/by-api"
    gate = asyncio.Semaphore(32)
    guids: dict[int, str] = {}
    async with aiohttp.ClientSession() as http:

        async def one(uid: int) -> None:
            body = {
                "merchant_order_id": f"floor-{uid}",
                "user_id": uid,
                "amount": 100,
                "method": "card",
            }
            async with gate, http.post(url, json=body, headers=headers) as resp:
                data = await resp.json()
                if resp.status != 200:
                    raise BenchError(f"1Plat emulator refused an order: {data}")
                guids[uid] = data["guid"]

        await asyncio.gather(*(one(uid) for uid in uids))
    return guids


async def floor_burst(
    target: Target, db: Db, *, n: int, concurrency: int, first_uid: int, timeout: float
) -> BurstResult:
    result = BurstResult("floor", db.kind, n, concurrency)
    async with Sandbox() as sb:
        uids = list(range(first_uid, first_uid + n))
        for uid in uids:
            sb.telegram.user(uid, first_name=f"U{uid}")
        port = await target.configure(
            {
                "database": {"kind": db.kind, "target": db.raw},
                "panel_url": sb.panel.url,
                "panel_token": PANEL_TOKEN,
                "squad_uuid": sb.panel.squad_uuid,
                "telegram_url": sb.telegram.url,
                "bot_token": sb.bot_token,
            }
        )
        sb.oneplat.callback_url = f"http://127.0.0.1:{port}/1plat-webhook"
        guids = await _create_orders(sb, uids)
        callbacks = [
            (uid, json.dumps(sb.oneplat.build_callback(guids[uid], 1)).encode()) for uid in uids
        ]
        result.extra["busy_before_pct"] = await quiet()
        cpu = CpuMeter(target.pid)
        fire = asyncio.create_task(_fire(sb.oneplat.callback_url, callbacks, concurrency, result))
        await _wait_delivered(sb, set(uids), timeout)
        await fire
        result.extra["cpu"] = cpu.stop()
        times = _collect(sb, uids, result)
        _one_message_each(times, result)
        panel = _panel_users(sb)
        for uid in uids:
            records = panel.get(uid, [])
            if len(records) == 1:
                when = parse_iso(records[0]["expireAt"])
                at = [t for tid, w, t in sb.panel.expiry_updates if tid == uid and w == when]
                result.panel_at[uid] = min(at)
        if len(result.panel_at) != n:
            result.failures.append(f"{n - len(result.panel_at)} users without one panel user")
        stats = await target.stop()
        if stats.get("rows") != n:
            result.failures.append(f"the floor wrote {stats.get('rows')} rows for {n} callbacks")
        result.extra["panel_requests"] = len(sb.panel.requests)
        result.extra["bot_api_calls"] = dict(sb.telegram.call_counts)
    return result

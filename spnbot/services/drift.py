"""Drift repair: compare each customer in our database with the panel, report and mend.

Rules. What was paid lives in our grant ledger and is never lost. A panel expiry later than
ours (an operator extended by hand) is adopted and written to the ledger as kind ``panel``,
its source naming that panel value, so it is recorded once. An earlier one is pushed back
through a panel-sync job, not the client directly: the job re-reads our expiry before it
is done, so a grant landing meanwhile can never be overwritten by the older value we read,
and an outage is retried durably. A panel user gone is unlinked (the next grant recreates
it). A ``tg_<id>`` username held by another telegramId, several panel users with one
telegramId, a disabled user, a ref the panel line cannot mean: reported, never overwritten.
A 2.x uuid on a 3.x panel is backfilled to the integer id found by telegramId or username.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from spnbot.domain.expiry import utcnow
from spnbot.domain.panel_refs import RefFit, foreign_ref_message, ref_fit
from spnbot.domain.states import GrantKind
from spnbot.panel.base import Panel, PanelAuthError, PanelError, PanelUnavailable, PanelUser
from spnbot.services.grants import PANEL_SYNC
from spnbot.services.notify import ADMIN_NOTICE
from spnbot.services.panel_sync import panel_username
from spnbot.store.drift import CustomerRecord
from spnbot.store.group_commit import Transactional
from spnbot.store.ledger import LedgerEntry
from spnbot.store.uow import Tx

log = logging.getLogger(__name__)

# The panel keeps milliseconds; below a second apart the two expiries agree.
TOLERANCE = timedelta(seconds=1)
DIGEST_LINES = 30  # findings listed in the admins' digest; the rest is counted


class DriftKind(enum.StrEnum):
    ADOPTED = "adopted"  # panel later than ours: adopted into the ledger
    PUSHED = "pushed"  # panel earlier than ours: pushed back to the panel
    RELINKED = "relinked"  # our link was stale; the customer's panel user found again
    BACKFILLED = "backfilled"  # a 2.x uuid replaced by the 3.x integer id
    MISSING = "missing"  # no panel user any more: unlinked, the next grant recreates it
    USERNAME_TAKEN = "username_taken"  # tg_<id> belongs to another telegramId
    DUPLICATE = "duplicate"  # several panel users carry the customer's telegramId
    OTHER_OWNER = "other_owner"  # our ref points at a panel user of another telegramId
    FOREIGN_REF = "foreign_ref"  # the ref does not fit the panel's API line: refused
    DISABLED = "disabled"  # disabled on the panel while paid: an operator's call
    SQUAD = "squad"  # not in the default internal squad


# Kinds that change something under --apply; the others are only reported.
REPAIRS = frozenset(
    {
        DriftKind.ADOPTED,
        DriftKind.PUSHED,
        DriftKind.RELINKED,
        DriftKind.BACKFILLED,
        DriftKind.MISSING,
    }
)


@dataclass(frozen=True)
class Finding:
    user_id: int
    kind: DriftKind
    params: dict[str, str]  # what the report and the admins' digest name
    repaired: bool = False

    @property
    def detail(self) -> str:
        p = self.params
        text = {
            DriftKind.ADOPTED: "panel expiry {panel} is later than ours {ours}: adopt",
            DriftKind.PUSHED: "panel expiry {panel} is earlier than ours {ours}: push ours",
            DriftKind.RELINKED: "linked to {old}, the customer's panel user is {new}: re-link",
            DriftKind.BACKFILLED: "2.x uuid {old} is 3.x id {new} on the panel: backfill",
            DriftKind.MISSING: "panel user {old} is gone: unlink, the next grant recreates it",
            DriftKind.USERNAME_TAKEN: "username {username} belongs to telegramId {other}",
            DriftKind.DUPLICATE: "panel users {refs} all carry this telegramId",
            DriftKind.OTHER_OWNER: "linked to {old}, which belongs to telegramId {other}",
            DriftKind.FOREIGN_REF: "{reason}",
            DriftKind.DISABLED: "panel user {ref} is disabled while paid until {ours}",
            DriftKind.SQUAD: "panel user {ref} is not in the default squad {squad}",
        }[self.kind]
        return text.format(**p)


@dataclass
class Report:
    applied: bool
    checked: int = 0
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # customers the panel could not tell us of
    aborted: str | None = None  # the panel went away mid-run

    @property
    def clean(self) -> bool:
        """Nothing left for anyone to do."""
        open_items = [f for f in self.findings if not f.repaired]
        return not open_items and not self.errors and self.aborted is None

    def summary(self) -> str:
        repaired = sum(1 for f in self.findings if f.repaired)
        text = f"checked {self.checked} customers: {len(self.findings)} differences"
        if self.applied:
            text += f", {repaired} repaired"
        if self.errors:
            text += f", {len(self.errors)} not checked"
        if self.aborted:
            text += f"; stopped: {self.aborted}"
        return text


@dataclass(frozen=True)
class _Seen:
    """What the panel says about one customer."""

    line: int
    by_telegram: list[PanelUser]
    linked: PanelUser | None  # the user our ref names, when it fits the line and exists
    by_username: PanelUser | None  # looked up only when nothing else was found


class DriftService:
    def __init__(
        self,
        store: Transactional[Tx],
        panel: Panel,
        *,
        default_squad: str | None = None,
        batch: int = 50,
        concurrency: int = 4,
        pause: float = 1.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if batch < 1 or concurrency < 1 or pause < 0:
            raise ValueError("batch and concurrency must be >= 1 and pause >= 0")
        self._store = store
        self._panel = panel
        self._squad = default_squad
        self._batch = batch
        self._concurrency = concurrency
        self._pause = pause
        self._clock = clock

    async def run(self, apply: bool, *, digest: bool = False) -> Report:
        """Every customer, a batch at a time with a pause between batches; at most
        ``concurrency`` panel lookups at once. ``digest`` tells the admins what was found."""
        report = Report(applied=apply)
        gate = asyncio.Semaphore(self._concurrency)
        after = 0
        while True:
            async with self._store.transaction() as tx:
                page = await tx.drift.customers_after(after, self._batch)
            if not page:
                break
            after = page[-1].user_id
            outcomes = await asyncio.gather(
                *(self._guarded(gate, record, apply) for record in page), return_exceptions=True
            )
            for record, outcome in zip(page, outcomes, strict=True):
                if isinstance(outcome, PanelUnavailable | PanelAuthError):
                    report.aborted = report.aborted or str(outcome)[:200]
                elif isinstance(outcome, BaseException):
                    if not isinstance(outcome, PanelError | ValueError):
                        raise outcome
                    report.errors.append(f"{record.user_id}: {str(outcome)[:200]}")
                else:
                    report.checked += 1
                    report.findings.extend(outcome)
            if report.aborted or len(page) < self._batch:
                break
            await asyncio.sleep(self._pause)
        for finding in report.findings:
            log.info(
                "drift: %s %s%s",
                finding.kind,
                finding.detail,
                " (repaired)" if finding.repaired else "",
                extra={"user_id": finding.user_id},
            )
        if digest and (report.findings or report.aborted):
            await self._tell_admins(report)
        return report

    async def check_user(self, telegram_id: int, *, apply: bool = True) -> list[Finding]:
        """One customer now (e.g. the panel said it changed them); repairs unless told not to."""
        async with self._store.transaction() as tx:
            record = await tx.drift.customer(telegram_id)
        if record is None:
            return []
        return await self._check(record, apply)

    async def _guarded(
        self, gate: asyncio.Semaphore, record: CustomerRecord, apply: bool
    ) -> list[Finding]:
        async with gate:
            return await self._check(record, apply)

    async def _check(self, record: CustomerRecord, apply: bool) -> list[Finding]:
        seen = await self._look(record)
        findings = decide(record, seen, now=self._clock(), default_squad=self._squad)
        if not apply:
            return findings
        return [await self._repair(record, seen, f) for f in findings]

    async def _look(self, record: CustomerRecord) -> _Seen:
        panel = self._panel
        line = await panel.api_line()
        by_telegram = await panel.find_all_by_telegram_id(record.user_id)
        linked: PanelUser | None = None
        ref = record.panel_ref
        if ref and ref_fit(ref, line) is RefFit.FITS:
            linked = next((u for u in by_telegram if u.ref == ref), None)
            if linked is None:
                linked = await panel.get_user(ref)
        by_username = None
        if linked is None and not by_telegram:
            by_username = await panel.find_by_username(panel_username(record.user_id))
        return _Seen(line, by_telegram, linked, by_username)

    async def _repair(self, record: CustomerRecord, seen: _Seen, finding: Finding) -> Finding:
        if finding.kind not in REPAIRS:
            return finding
        done = False
        async with self._store.transaction() as tx:
            if finding.kind in (DriftKind.RELINKED, DriftKind.BACKFILLED):
                target = _target(record, seen)
                assert target is not None  # decide() re-links only to a found user
                done = await tx.drift.relink(
                    record.user_id, record.panel_ref, target.ref, target.subscription_url
                )
            elif finding.kind is DriftKind.MISSING:
                done = await tx.drift.relink(record.user_id, record.panel_ref, None, None)
            elif finding.kind is DriftKind.ADOPTED:
                done = await self._adopt(tx, record, seen)
            else:  # PUSHED
                target = _target(record, seen)
                assert target is not None and record.expires_at is not None
                await tx.jobs.add(
                    PANEL_SYNC,
                    {"user_id": record.user_id, "reason": "drift"},
                    dedup_key=f"sync:drift:{record.user_id}:{_push_id(record, target)}",
                )
                done = True
        return Finding(finding.user_id, finding.kind, finding.params, repaired=done)

    async def _adopt(self, tx: Tx, record: CustomerRecord, seen: _Seen) -> bool:
        target = _target(record, seen)
        assert target is not None
        locked = (await tx.accounts.lock_for_grant([record.user_id])).get(record.user_id)
        if locked is None or locked.expires_at != record.expires_at:
            return False  # a grant landed since we looked: the next check decides again
        previous = record.expires_at
        base = previous if previous is not None and previous > self._clock() else self._clock()
        entry = LedgerEntry(
            record.user_id,
            GrantKind.PANEL,
            f"panel:{target.ref}:{_ms(target.expire_at)}",
            max((target.expire_at - base).days, 0),
            previous,
            target.expire_at,
        )
        if not await tx.ledger.record([entry], self._clock()):
            return False  # this very panel value was adopted before
        await tx.accounts.set_expiries({record.user_id: target.expire_at})
        return True

    async def _tell_admins(self, report: Report) -> None:
        shown = report.findings[:DIGEST_LINES]
        lines = [
            {"line_template": f"admin_drift_{f.kind}", "user_id": str(f.user_id), **f.params}
            for f in shown
        ]
        params = {
            "checked": report.checked,
            "found": len(report.findings),
            "repaired": sum(1 for f in report.findings if f.repaired),
            "more": len(report.findings) - len(shown),
            "aborted": report.aborted or "",
            "lines": lines,  # each line names its own template; this one is the fallback
            "line_template": "admin_drift_foreign_ref",
        }
        # The same findings reach the admins once a day, not at every hourly pass.
        fingerprint = hashlib.sha256(
            repr([(f.user_id, f.kind, sorted(f.params.items())) for f in report.findings]).encode()
        ).hexdigest()[:20]
        day = self._clock().date().isoformat()
        async with self._store.transaction() as tx:
            await tx.jobs.add(
                ADMIN_NOTICE,
                {"template": _digest_template(report), "params": params},
                dedup_key=f"admin:drift:{day}:{fingerprint}",
            )


def decide(
    record: CustomerRecord, seen: _Seen, *, now: datetime, default_squad: str | None = None
) -> list[Finding]:
    """The drift rules for one customer, without I/O: what differs and what would be done."""
    uid, ref, ours = record.user_id, record.panel_ref, record.expires_at
    out: list[Finding] = []

    def add(kind: DriftKind, **params: str) -> None:
        out.append(Finding(uid, kind, params))

    fit = ref_fit(ref, seen.line) if ref else None
    if ref and fit is RefFit.FOREIGN:
        add(DriftKind.FOREIGN_REF, old=ref, reason=foreign_ref_message(ref, seen.line))
        return out
    if len(seen.by_telegram) > 1:
        add(DriftKind.DUPLICATE, refs=", ".join(u.ref for u in seen.by_telegram))
    linked = seen.linked
    if linked is not None and linked.telegram_id not in (None, uid):
        add(DriftKind.OTHER_OWNER, old=linked.ref, other=str(linked.telegram_id))
        return out
    target = _target(record, seen)
    if target is None:
        taken = seen.by_username
        if taken is not None:
            name = panel_username(uid)
            add(DriftKind.USERNAME_TAKEN, username=name, other=str(taken.telegram_id))
        if ref and len(seen.by_telegram) <= 1:
            add(DriftKind.MISSING, old=ref)
        return out
    if linked is None:  # found again by telegramId or username
        kind = DriftKind.BACKFILLED if fit is RefFit.UPGRADE else DriftKind.RELINKED
        add(kind, old=ref or "—", new=target.ref)
    panel_at = target.expire_at
    if panel_at > now and (ours is None or panel_at > ours + TOLERANCE):
        add(DriftKind.ADOPTED, ref=target.ref, panel=_when(panel_at), ours=_when(ours))
    elif ours is not None and ours > now and panel_at < ours - TOLERANCE:
        add(DriftKind.PUSHED, ref=target.ref, panel=_when(panel_at), ours=_when(ours))
    if target.status == "DISABLED" and ours is not None and ours > now:
        add(DriftKind.DISABLED, ref=target.ref, ours=_when(ours))
    if default_squad and default_squad not in target.internal_squads:
        add(DriftKind.SQUAD, ref=target.ref, squad=default_squad)
    return out


def _target(record: CustomerRecord, seen: _Seen) -> PanelUser | None:
    """The panel user the customer should be linked to; None when none can be told."""
    if seen.linked is not None:
        return seen.linked
    if len(seen.by_telegram) == 1:
        return seen.by_telegram[0]
    taken = seen.by_username
    if not seen.by_telegram and taken is not None and taken.telegram_id == record.user_id:
        return taken
    return None


def _digest_template(report: Report) -> str:
    if report.aborted:
        return "admin_drift_digest_aborted"
    more = len(report.findings) > DIGEST_LINES
    return "admin_drift_digest_more" if more else "admin_drift_digest"


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at is not None else "—"


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _push_id(record: CustomerRecord, target: PanelUser) -> str:
    """Our expiry and the panel's, in ms: the same difference is pushed back once."""
    assert record.expires_at is not None
    return f"{_ms(record.expires_at)}:{_ms(target.expire_at)}"

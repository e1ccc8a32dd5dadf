"""Tell the panel the user's absolute expiry; then tell the user. Retried durably.

One job per grant. It converges: after the panel call it re-reads our expiry, and goes round
again if a newer grant landed meanwhile, so the panel ends on our latest value whatever order
concurrent syncs finish in. The customer's message goes out from the job itself, before the
job is marked done: a crash in between means the job runs again and the message may repeat,
never that it is lost. If Telegram cannot take the message now, a separate notify job retries
it, so a Bot API outage never repeats the panel call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from spnbot.domain.expiry import utcnow
from spnbot.domain.panel_refs import RefFit, foreign_ref_message, ref_fit
from spnbot.domain.tariffs import PlanLimits
from spnbot.jobs.runner import PermanentJobError
from spnbot.panel.base import (
    Panel,
    PanelConflict,
    PanelError,
    PanelNotFound,
    PanelUser,
    UserLimits,
)
from spnbot.services.notices import Notice, NoticeButton, Notifier, RecipientBlocked, Screen
from spnbot.services.notify import NOTIFY, notify_payload
from spnbot.services.plan_limits import user_limits
from spnbot.store.accounts import PanelLink, SyncState
from spnbot.store.group_commit import GroupCommit, Transactional
from spnbot.store.jobs import ClaimedJob, NewJob
from spnbot.store.plans import AssignedPlan
from spnbot.store.uow import Tx

log = logging.getLogger(__name__)

# If a newer grant lands while we talk to the panel, we go round again (bounded).
MAX_CONVERGE_ROUNDS = 5
# Activation messages that carry the subscription link's QR code as a photo.
QR_NOTICES = frozenset({"payment_success", "trial_started"})
# The QR photo is a convenience: it waits until a burst of activations has been served (and
# keeps Telegram's ~1 message/s per chat).
QR_DELAY = timedelta(seconds=5)


def panel_username(telegram_id: int) -> str:
    return f"tg_{telegram_id}"


@dataclass(frozen=True)
class _Read:
    """A user's row as the sync reads it: the expiry and the plan the panel must carry."""

    state: SyncState
    plan: AssignedPlan | None


@dataclass(frozen=True)
class _Done:
    job_id: int
    user_id: int
    panel_user: PanelUser | None
    blocked: bool  # the customer blocked the bot while we wrote to them
    retry_notice: NewJob | None  # a message Telegram could not take now
    qr_notice: NewJob | None = None  # the link's QR code, a moment after the message


class PanelSyncHandler:
    def __init__(
        self,
        store: Transactional[Tx],
        panel: Panel,
        notifier: Notifier,
        *,
        clock: Callable[[], datetime] = utcnow,
        observe: Callable[[float], None] | None = None,
        default_squad: str | None = None,
    ) -> None:
        self._store = store
        self._panel = panel
        self._notifier = notifier
        self._default_squad = default_squad  # where a plan without squads of its own goes
        self._clock = clock
        self._observe = observe  # confirmation → activation seconds, for metrics
        # In a burst, many syncs read and finish at once: they share statements.
        self._reads = GroupCommit(store, self._read_many, name="sync-read")
        self._done = GroupCommit(store, self._finish_many, name="sync-done")

    async def aclose(self) -> None:
        await self._reads.aclose()
        await self._done.aclose()

    async def __call__(self, job: ClaimedJob) -> bool:
        user_id = int(job.payload["user_id"])
        try:
            state, panel_user = await self._converge(job)
        except (PanelError, PermanentJobError):
            if job.attempts == 1 and job.payload.get("notify") == "payment_success":
                await self._tell_delayed(job)
            raise
        blocked, retry = False, None
        template = job.payload.get("notify")
        if template and state is not None and not state.blocked:
            notice = self._notice(job, template, state, panel_user)
            try:
                await self._notifier.send(user_id, state.language, notice)
            except RecipientBlocked:
                blocked = True
                log.info("user blocked the bot", extra={"user_id": user_id})
            except Exception as exc:
                log.warning(
                    "activation notice not delivered (%s); retrying it on its own",
                    exc,
                    extra={"user_id": user_id},
                )
                retry = NewJob(
                    NOTIFY,
                    notify_payload(user_id, notice),
                    dedup_key=f"notify:grant:{job.payload['grant_id']}",
                )
        qr = None
        link = panel_user.subscription_url if panel_user else None
        if template in QR_NOTICES and link and not blocked and state is not None:
            # The link's QR code (for setting up a second device) follows as a job of its own,
            # a few seconds later: the activation is never held up by drawing and uploading a
            # picture.
            qr = NewJob(
                NOTIFY,
                notify_payload(user_id, Notice("qr_caption", {}, qr=link)),
                dedup_key=f"notify:qr:{job.payload['grant_id']}",
                delay=QR_DELAY,
            )
        await self._done.submit(_Done(job.id, user_id, panel_user, blocked, retry, qr))
        granted_at = job.payload.get("granted_at")
        if self._observe is not None and granted_at:
            since = self._clock() - datetime.fromisoformat(granted_at)
            self._observe(since.total_seconds())
        return True  # finished in the batch above

    async def _converge(self, job: ClaimedJob) -> tuple[SyncState | None, PanelUser | None]:
        user_id = int(job.payload["user_id"])
        hint = job.payload.get("expires_hint")
        read: _Read | None
        if hint and "plan_hint" in job.payload:  # the grant told us what it set: no read first
            state = SyncState(
                datetime.fromisoformat(hint), job.payload.get("panel_ref_hint"), "ru", False
            )
            read = _Read(state, _plan_from(job.payload["plan_hint"]))
        else:
            read = await self._reads.submit(user_id)
        panel_user: PanelUser | None = None
        for _ in range(MAX_CONVERGE_ROUNDS):
            if read is None or read.state.expires_at is None:
                return (read.state if read else None), None
            target, plan = read.state.expires_at, read.plan
            if target <= self._clock():
                # Already over; the panel refuses past dates and expires the user itself.
                latest = await self._reads.submit(user_id)
                return (latest.state if latest else None), panel_user
            limits = user_limits(plan, self._default_squad)
            panel_user = await self._apply(user_id, read.state.panel_ref, target, limits)
            latest = await self._reads.submit(user_id)
            if latest is None or (latest.state.expires_at == target and latest.plan == plan):
                return (latest.state if latest else None), panel_user
            read = _Read(
                SyncState(
                    latest.state.expires_at,
                    panel_user.ref,
                    latest.state.language,
                    latest.state.blocked,
                ),
                latest.plan,
            )
        return (read.state if read else None), panel_user

    async def _apply(
        self, user_id: int, panel_ref: str | None, target: datetime, limits: UserLimits | None
    ) -> PanelUser:
        panel = self._panel
        if panel_ref:
            line = await panel.api_line()
            fit = ref_fit(panel_ref, line)
            if fit is RefFit.FOREIGN:
                # Guessing would extend (or create) the wrong panel user: an admin decides.
                raise PermanentJobError(foreign_ref_message(panel_ref, line))
            if fit is RefFit.FITS:
                try:
                    return await panel.set_expiry(panel_ref, target, limits=limits)
                except PanelNotFound:
                    log.warning(
                        "panel user vanished; looking it up again", extra={"user_id": user_id}
                    )
            else:
                # Panel upgraded 2.x -> 3.x: the same user is found by telegramId below and
                # its integer id replaces the uuid when the job finishes (record_sync).
                log.info("backfilling a 2.x panel ref to 3.x", extra={"user_id": user_id})
        # By Telegram id: also adopts customers the previous bot created on the panel.
        existing = await panel.find_by_telegram_id(user_id)
        if existing is None:
            try:
                return await panel.create_user(
                    username=panel_username(user_id),
                    telegram_id=user_id,
                    expire_at=target,
                    limits=limits,
                )
            except PanelConflict:
                # Created by an earlier attempt whose answer we never saw: adopt it, but only
                # if it is this customer's; someone else's user is never taken over.
                existing = await panel.find_by_username(panel_username(user_id))
                if existing is None:
                    raise
                if existing.telegram_id != user_id:
                    raise PermanentJobError(
                        f"panel username {panel_username(user_id)} belongs to telegramId "
                        f"{existing.telegram_id}, not {user_id}: not taken over; rename one "
                        "of them on the panel"
                    ) from None
        return await panel.set_expiry(existing.ref, target, limits=limits)

    def _notice(
        self, job: ClaimedJob, template: str, state: SyncState, panel_user: PanelUser | None
    ) -> Notice:
        params = dict(job.payload.get("notify_params") or {})
        params.update(
            days=job.payload.get("days"),
            expires_at=state.expires_at.isoformat() if state.expires_at else None,
            subscription_url=panel_user.subscription_url if panel_user else None,
        )
        return Notice(
            template, params, [[NoticeButton("btn_my_subscription", screen=Screen.SUBSCRIPTION)]]
        )

    async def _tell_delayed(self, job: ClaimedJob) -> None:
        user_id = int(job.payload["user_id"])
        async with self._store.transaction() as tx:
            await tx.jobs.add(
                NOTIFY,
                notify_payload(user_id, Notice("activation_delayed", {})),
                dedup_key=f"notify:delayed:{job.payload['grant_id']}",
            )

    @staticmethod
    async def _read_many(tx: Tx, user_ids: Sequence[int]) -> list[_Read | None]:
        found = await tx.accounts.sync_states(user_ids)
        return [
            _Read(state, state.plan) if (state := found.get(user_id)) else None
            for user_id in user_ids
        ]

    async def _finish_many(self, tx: Tx, done: Sequence[_Done]) -> list[None]:
        now = self._clock()
        links = [
            PanelLink(d.user_id, d.panel_user.ref, d.panel_user.subscription_url)
            for d in done
            if d.panel_user is not None
        ]
        untouched = [d.user_id for d in done if d.panel_user is None]
        await tx.accounts.record_sync(links, untouched, now)
        await tx.accounts.mark_blocked([d.user_id for d in done if d.blocked], now)
        notices = [n for d in done for n in (d.retry_notice, d.qr_notice) if n is not None]
        await tx.jobs.add_many(list({n.dedup_key: n for n in notices}.values()))
        await tx.jobs.finish_many([d.job_id for d in done])
        return [None] * len(done)


def _plan_from(payload: dict[str, Any] | None) -> AssignedPlan | None:
    if not payload:
        return None
    return AssignedPlan(str(payload["code"]), PlanLimits.from_json(payload.get("limits")))

"""The settle rule: given our payment and a provider's report, what happens. Pure, no I/O.

The rule, in the order it is applied:
1. No payment of ours matches the report → ``Unknown`` (the sender gets 404).
2. The report says "still pending" → ``NoChange``.
3. The report says "paid":
   - a payment held as ``mismatch`` stays held whatever comes next (an admin decides);
   - an amount other than ours → ``Mismatch`` (flag it if it could still be paid);
   - already ``paid`` → ``Duplicate``;
   - otherwise (pending, or given up as failed/expired: the money is real) → ``Confirm``.
4. The report says failed/expired: a ``pending`` payment is closed; anything else is a
   ``Duplicate`` (a late failure never undoes a payment).

``Confirm`` is a claim, not a fact: the caller moves the payment with a compare-and-set, and
only the signal whose compare-and-set succeeds grants days.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from spnbot.domain.money import Money
from spnbot.domain.reports import ProviderStatus, StatusReport
from spnbot.domain.states import PaymentStatus

# A paid signal may still arrive after we gave up waiting or the provider reported an error:
# the money is real, so those states can still become paid. "mismatch" waits for an admin.
PAYABLE = frozenset({PaymentStatus.PENDING, PaymentStatus.EXPIRED, PaymentStatus.FAILED})


@dataclass(frozen=True)
class PaymentFacts:
    """What the rule needs to know of our payment row."""

    id: int
    public_id: str
    external_id: str | None
    status: PaymentStatus
    amount: Money


class Verdict(enum.StrEnum):
    CONFIRM = "confirm"
    DUPLICATE = "duplicate"
    MISMATCH = "mismatch"
    UNKNOWN = "unknown"
    CLOSE = "close"
    NO_CHANGE = "no_change"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    # MISMATCH: move the payment to "mismatch" and tell the admins (it could still be paid).
    flag: bool = False
    # CLOSE: the state a pending payment ends in.
    close_as: PaymentStatus | None = None


CONFIRM = Decision(Verdict.CONFIRM)
DUPLICATE = Decision(Verdict.DUPLICATE)
UNKNOWN = Decision(Verdict.UNKNOWN)
NO_CHANGE = Decision(Verdict.NO_CHANGE)


def settle(payment: PaymentFacts | None, report: StatusReport) -> Decision:
    if payment is None:
        return UNKNOWN
    if report.status is ProviderStatus.PENDING:
        return NO_CHANGE
    if report.status is ProviderStatus.PAID:
        if payment.status is PaymentStatus.MISMATCH:
            return Decision(Verdict.MISMATCH)
        if report.amount != payment.amount:
            return Decision(Verdict.MISMATCH, flag=payment.status in PAYABLE)
        if payment.status in PAYABLE:
            return CONFIRM
        return DUPLICATE
    if payment.status is PaymentStatus.PENDING:
        target = (
            PaymentStatus.FAILED
            if report.status is ProviderStatus.FAILED
            else PaymentStatus.EXPIRED
        )
        return Decision(Verdict.CLOSE, close_as=target)
    return DUPLICATE


def settle_unverified(payment: PaymentFacts | None, claim: StatusReport) -> Decision | None:
    """What a delivery that proves nothing alone comes to without asking the provider, or
    None: ask, and settle the provider's answer instead.

    Asking is pointless when no report could change our payment: there is none (the claim
    names no payment of ours, and a true report names the same ids), or it is ``paid`` or held
    as ``mismatch`` (the rule grants, closes and flags none of those). The decision is then the
    rule's own for the claim, so the sender hears what asking would have told it.
    """
    if payment is None:
        return UNKNOWN
    if payment.status in PAYABLE:
        return None
    return settle(payment, claim)


class PaymentIndex:
    """One provider's candidate payments, indexed once by both ids; ``pick`` says which one a
    report is about (built once per batch: picking is then a dict lookup per report)."""

    def __init__(self, candidates: Iterable[PaymentFacts]) -> None:
        rows = list(candidates)
        self._by_external = {row.external_id: row for row in rows if row.external_id}
        self._by_public = {row.public_id: row for row in rows}

    def pick(self, report: StatusReport) -> PaymentFacts | None:
        """By the provider's id first; by our order id only while the provider's id is not
        stored yet (a row already known by another provider id is not this report's). If the
        two ids point at different payments, trust neither."""
        row = self._by_external.get(report.external_id) if report.external_id else None
        if row is None and report.order_id:
            row = self._by_public.get(report.order_id)
            if row is not None and row.external_id is not None:
                return None
        if row is not None and report.order_id and row.public_id != report.order_id:
            return None
        return row


def identify(candidates: Iterable[PaymentFacts], report: StatusReport) -> PaymentFacts | None:
    """Which of one provider's payments a report is about (see ``PaymentIndex.pick``)."""
    return PaymentIndex(candidates).pick(report)

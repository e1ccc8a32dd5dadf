"""The settle rule, branch by branch: what each report does to each state of our payment."""

from __future__ import annotations

import pytest

from spnbot.domain.money import Money
from spnbot.domain.reports import ProviderStatus, StatusReport
from spnbot.domain.settle import PaymentFacts, Verdict, identify, settle, settle_unverified
from spnbot.domain.states import PaymentStatus

OURS = Money.rub(100)


def payment(status: PaymentStatus = PaymentStatus.PENDING, **kw: object) -> PaymentFacts:
    fields: dict[str, object] = {"id": 1, "public_id": "spn-1", "external_id": "g1"}
    fields.update(kw)
    return PaymentFacts(status=status, amount=OURS, **fields)  # type: ignore[arg-type]


def report(
    status: ProviderStatus = ProviderStatus.PAID,
    amount: Money | None = OURS,
    external_id: str = "g1",
    order_id: str | None = "spn-1",
) -> StatusReport:
    return StatusReport(external_id, order_id, status, amount)


def test_no_payment_is_unknown() -> None:
    assert settle(None, report()).verdict is Verdict.UNKNOWN


@pytest.mark.parametrize("status", list(PaymentStatus))
def test_still_pending_changes_nothing(status: PaymentStatus) -> None:
    assert settle(payment(status), report(ProviderStatus.PENDING)).verdict is Verdict.NO_CHANGE


@pytest.mark.parametrize(
    "status", [PaymentStatus.PENDING, PaymentStatus.EXPIRED, PaymentStatus.FAILED]
)
def test_paid_with_our_amount_confirms_what_can_still_be_paid(status: PaymentStatus) -> None:
    decision = settle(payment(status), report())
    assert decision.verdict is Verdict.CONFIRM


def test_paid_again_is_a_duplicate() -> None:
    assert settle(payment(PaymentStatus.PAID), report()).verdict is Verdict.DUPLICATE


@pytest.mark.parametrize("reported", [Money.rub(99), Money.rub(101), Money.stars(100), None])
def test_another_amount_is_a_mismatch_flagged_while_payable(reported: Money | None) -> None:
    decision = settle(payment(), report(amount=reported))
    assert decision.verdict is Verdict.MISMATCH and decision.flag


def test_another_amount_on_a_paid_payment_is_not_flagged_again() -> None:
    decision = settle(payment(PaymentStatus.PAID), report(amount=Money.rub(1)))
    assert decision.verdict is Verdict.MISMATCH and not decision.flag


@pytest.mark.parametrize("amount", [OURS, Money.rub(5)])
def test_a_held_payment_stays_held_whatever_paid_signal_comes(amount: Money) -> None:
    decision = settle(payment(PaymentStatus.MISMATCH), report(amount=amount))
    assert decision.verdict is Verdict.MISMATCH and not decision.flag


@pytest.mark.parametrize(
    ("reported", "target"),
    [
        (ProviderStatus.FAILED, PaymentStatus.FAILED),
        (ProviderStatus.EXPIRED, PaymentStatus.EXPIRED),
    ],
)
def test_failure_closes_a_pending_payment(reported: ProviderStatus, target: PaymentStatus) -> None:
    decision = settle(payment(), report(reported))
    assert decision.verdict is Verdict.CLOSE and decision.close_as is target


@pytest.mark.parametrize(
    "status",
    [PaymentStatus.PAID, PaymentStatus.MISMATCH, PaymentStatus.FAILED, PaymentStatus.EXPIRED],
)
@pytest.mark.parametrize("reported", [ProviderStatus.FAILED, ProviderStatus.EXPIRED])
def test_a_late_failure_never_undoes_anything(
    status: PaymentStatus, reported: ProviderStatus
) -> None:
    assert settle(payment(status), report(reported)).verdict is Verdict.DUPLICATE


# -- identify: which payment a report is about ------------------------------------------------

A = payment(id=1, public_id="spn-a", external_id="ga")
B = payment(id=2, public_id="spn-b", external_id=None)


def test_identified_by_the_providers_id() -> None:
    assert identify([A, B], report(external_id="ga", order_id=None)) == A


def test_identified_by_our_order_id_while_the_providers_id_is_unknown() -> None:
    assert identify([A, B], report(external_id="gb", order_id="spn-b")) == B


def test_our_order_id_does_not_reach_a_payment_known_by_another_provider_id() -> None:
    assert identify([A, B], report(external_id="other", order_id="spn-a")) is None


def test_ids_that_point_at_different_payments_are_trusted_for_neither() -> None:
    assert identify([A, B], report(external_id="ga", order_id="spn-b")) is None


def test_nothing_matches() -> None:
    assert identify([A, B], report(external_id="zz", order_id="spn-z")) is None
    assert identify([], report()) is None


# -- settle_unverified: when a claim is not worth asking the provider about ----------------

CLAIMS = [
    report(ProviderStatus.PAID),
    report(ProviderStatus.PAID, amount=Money.rub(1)),
    report(ProviderStatus.FAILED),
    report(ProviderStatus.EXPIRED),
    report(ProviderStatus.PENDING),
]


def test_a_claim_naming_no_payment_of_ours_is_unknown_unasked() -> None:
    decision = settle_unverified(None, report())
    assert decision is not None and decision.verdict is Verdict.UNKNOWN


@pytest.mark.parametrize(
    "status", [PaymentStatus.PENDING, PaymentStatus.EXPIRED, PaymentStatus.FAILED]
)
@pytest.mark.parametrize("claim", CLAIMS)
def test_a_payment_that_can_still_change_is_always_asked_about(
    status: PaymentStatus, claim: StatusReport
) -> None:
    assert settle_unverified(payment(status), claim) is None


@pytest.mark.parametrize("status", [PaymentStatus.PAID, PaymentStatus.MISMATCH])
@pytest.mark.parametrize("claim", CLAIMS)
def test_a_settled_payment_gets_the_rules_answer_unasked(
    status: PaymentStatus, claim: StatusReport
) -> None:
    assert settle_unverified(payment(status), claim) == settle(payment(status), claim)


@pytest.mark.parametrize("status", [PaymentStatus.PAID, PaymentStatus.MISMATCH])
@pytest.mark.parametrize("truth", CLAIMS)
def test_no_true_report_could_change_what_is_answered_unasked(
    status: PaymentStatus, truth: StatusReport
) -> None:
    """Why not asking is safe: whatever the provider would have said, nothing is granted,
    closed or flagged for these payments."""
    decision = settle(payment(status), truth)
    assert decision.verdict not in (Verdict.CONFIRM, Verdict.CLOSE) and not decision.flag

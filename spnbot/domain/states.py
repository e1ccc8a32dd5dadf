"""Payment and job states. Transitions happen in SQL with compare-and-set, never in memory."""

from __future__ import annotations

import enum


class PaymentStatus(enum.StrEnum):
    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"  # provider refused, or no requisites; never paid
    EXPIRED = "expired"  # nobody paid within the TTL
    MISMATCH = "mismatch"  # the provider reported an amount other than ours: admin decides


class JobStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # gave up after max attempts; visible to admins


class GrantKind(enum.StrEnum):
    PAYMENT = "payment"
    GIFT = "gift"
    PROMO = "promo"
    REFERRAL = "referral"
    ADMIN = "admin"
    TRIAL = "trial"  # the free trial; source = the Telegram id, so once per account
    PANEL = "panel"  # an operator extended the user on the panel; adopted by drift repair

"""Money, expiry, tariffs and allow-lists: the small rules every payment goes through."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from spnbot.domain.expiry import (
    MSK,
    Stacked,
    extended_expiry,
    is_active,
    stack_extensions,
    time_left,
)
from spnbot.domain.money import Money, MoneyError
from spnbot.domain.networks import parse_networks, within
from spnbot.domain.tariffs import Tariff, parse_tariffs

NOW = datetime(2026, 12, 1, 12, 0, 0, 123456, tzinfo=UTC)
WHOLE_MS = NOW.replace(microsecond=123000)

# -- money --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "currency", "minor"),
    [
        ("100", "RUB", 10000),
        (100, "RUB", 10000),
        ("99.5", "RUB", 9950),
        ("0.01", "RUB", 1),
        (Decimal("2.50"), "RUB", 250),
        (" 7 ", "XTR", 7),
        ("0", "RUB", 0),
        ("1e2", "RUB", 10000),
    ],
)
def test_amounts_are_read_exactly(value: object, currency: str, minor: int) -> None:
    assert Money.parse(value, currency) == Money(minor, currency)


@pytest.mark.parametrize(
    "value",
    [
        1.5,
        100.0,
        True,
        "abc",
        "",
        "-1",
        "NaN",
        "Infinity",
        "0.001",
        "1.5e0" + "0" * 40,
        "1e999999",
        "1e15",
        "9" * 41,
        None,
        [1],
    ],
)
def test_unreadable_amounts_are_refused(value: object) -> None:
    with pytest.raises(MoneyError):
        Money.parse(value, "RUB")


def test_fractions_of_a_star_and_unknown_currencies_are_refused() -> None:
    with pytest.raises(MoneyError, match="decimal places"):
        Money.parse("1.5", "XTR")
    with pytest.raises(MoneyError, match="unsupported currency 'USD'"):
        Money.parse("1", "USD")
    with pytest.raises(MoneyError, match="unsupported currency 'EUR'"):
        Money(1, "EUR")


@pytest.mark.parametrize("minor", [1.0, True, "1", None])
def test_minor_units_are_ints(minor: object) -> None:
    with pytest.raises(MoneyError, match=r"^minor units must be an int$"):
        Money(minor, "RUB")  # type: ignore[arg-type]


def test_the_largest_accepted_amount() -> None:
    assert Money.parse("9" * 15, "RUB").minor == int("9" * 15) * 100


def test_constructors_and_rendering() -> None:
    assert Money.rub(3) == Money(300, "RUB")
    assert Money.stars(3) == Money(3, "XTR")
    assert Money(10000, "RUB").major_str() == "100"
    assert Money(9950, "RUB").major_str() == "99.50"
    assert Money(5, "RUB").major_str() == "0.05"
    assert Money(7, "XTR").major_str() == "7"
    assert Money(9950, "RUB").major == Decimal("99.50")
    assert str(Money(10000, "RUB")) == "100 ₽" and str(Money(5, "XTR")) == "5 ⭐"


def test_whole_major_refuses_fractions() -> None:
    assert Money(10000, "RUB").whole_major() == 100
    assert Money(7, "XTR").whole_major() == 7
    huge = 10**20 + 1  # beyond a float's 53 bits: integer arithmetic only
    assert Money(huge * 100, "RUB").whole_major() == huge
    with pytest.raises(MoneyError, match=r"99\.50 RUB is not a whole amount"):
        Money(9950, "RUB").whole_major()


# -- expiry -------------------------------------------------------------------------------


def test_a_new_subscription_starts_now_in_whole_milliseconds() -> None:
    assert extended_expiry(NOW, None, 30) == WHOLE_MS + timedelta(days=30)


def test_a_lapsed_subscription_restarts_now() -> None:
    assert extended_expiry(NOW, NOW - timedelta(days=3), 1) == WHOLE_MS + timedelta(days=1)


def test_a_running_subscription_is_extended_from_its_end() -> None:
    end = NOW + timedelta(days=5, microseconds=999)
    assert extended_expiry(NOW, end, 1) == end.replace(microsecond=124000) + timedelta(days=1)


@pytest.mark.parametrize("days", [0, -1])
def test_days_must_be_positive(days: int) -> None:
    with pytest.raises(ValueError, match=r"^days must be positive$"):
        extended_expiry(NOW, None, days)
    assert extended_expiry(NOW, None, 1) == WHOLE_MS + timedelta(days=1)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match=r"^now must be timezone-aware$"):
        extended_expiry(datetime(2026, 1, 1), None, 1)


def test_extensions_stack_in_order_per_user() -> None:
    running = WHOLE_MS + timedelta(days=10)
    steps, final = stack_extensions(NOW, {1: None, 2: running}, [(1, 30), (2, 5), (1, 7)])
    assert steps == [
        Stacked(None, WHOLE_MS + timedelta(days=30)),
        Stacked(running, running + timedelta(days=5)),
        Stacked(WHOLE_MS + timedelta(days=30), WHOLE_MS + timedelta(days=37)),
    ]
    assert final == {1: WHOLE_MS + timedelta(days=37), 2: running + timedelta(days=5)}


def test_activity_and_time_left() -> None:
    assert is_active(NOW + timedelta(seconds=1), NOW)
    assert not is_active(NOW, NOW) and not is_active(None, NOW)
    assert time_left(NOW + timedelta(hours=5), NOW) == timedelta(hours=5)
    assert time_left(NOW - timedelta(hours=5), NOW) == timedelta(0)
    assert MSK.utcoffset(None) == timedelta(hours=3)


# -- tariffs ------------------------------------------------------------------------------


def test_tariffs_are_parsed_with_their_prices() -> None:
    one, three = parse_tariffs(" 1m:30:100:50 , ,3m:90:249:125")
    assert one == Tariff("1m", 30, 100, 50) and three.code == "3m"
    assert one.price("RUB") == Money.rub(100) and one.price("XTR") == Money.stars(50)
    assert (one.months, three.months, Tariff("y", 365, 1, 1).months) == (1, 3, 12)
    with pytest.raises(ValueError, match="no price in USD"):
        one.price("USD")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "^at least one tariff is required$"),
        ("1m:30:100", "must be code:days:rubles:stars"),
        ("1M:30:100:50", "lowercase"),
        ("1m:x:100:50", "must be integers"),
        ("1m:0:100:50", "must be positive"),
        ("1m:30:0:50", "must be positive"),
        ("1m:30:100:0", "must be positive"),
        ("1m:30:100:50,1m:60:1:1", "appears twice"),
    ],
)
def test_bad_tariffs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_tariffs(spec)


def test_the_smallest_tariff_is_allowed() -> None:
    assert parse_tariffs("a:1:1:1") == (Tariff("a", 1, 1, 1),)


# -- allow-lists --------------------------------------------------------------------------


def test_networks_and_membership() -> None:
    nets = parse_networks("185.71.76.0/27, 77.75.156.11 ,2a02:5180::/32,10.0.0.5/8")
    assert nets[1] == ipaddress.ip_network("77.75.156.11/32")
    assert nets[3] == ipaddress.ip_network("10.0.0.0/8")  # host bits forgiven
    assert within("185.71.76.31", nets) and within("2a02:5180::1", nets)
    assert not within("185.71.76.32", nets) and not within("8.8.8.8", nets)
    assert not within(None, nets) and not within("not-an-ip", nets) and not within("1.2.3.4", ())
    assert parse_networks("") == ()
    with pytest.raises(ValueError, match=r"'300\.1\.1\.1' is not an IP address or network"):
        parse_networks("1.1.1.1,300.1.1.1")


def test_amount_text_is_bounded_at_forty_characters() -> None:
    assert Money.parse("0" * 37 + "100", "RUB") == Money.rub(100)  # 40 characters
    with pytest.raises(MoneyError, match=r"not an amount: '0{38}10'…"):
        Money.parse("0" * 38 + "100", "RUB")


@pytest.mark.parametrize(("value", "shown"), [("abc", "'abc'"), ("-1", "'-1'"), ("1e20", "'1e20'")])
def test_refusals_name_the_value(value: str, shown: str) -> None:
    with pytest.raises(MoneyError, match=f"not an amount: {shown}"):
        Money.parse(value, "RUB")
    with pytest.raises(MoneyError, match=r"must not be a float: 1\.5"):
        Money.parse(1.5, "RUB")


def test_now_is_aware_utc() -> None:
    from spnbot.domain.expiry import utcnow

    assert utcnow().utcoffset() == timedelta(0)

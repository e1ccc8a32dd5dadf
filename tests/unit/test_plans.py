"""Plans files: what a good file gives, and the one line a bad one stops the app with."""

from __future__ import annotations

from pathlib import Path

import pytest

from spnbot.config import ConfigError, load_settings
from spnbot.domain.tariffs import PlanFileError, PlanLimits, Tariff, load_plans, parse_plans

SQUAD = "0b5f3c3e-9c1a-4c1e-9a8e-3f1f6b2f7a10"
GOOD = f"""
[[plan]]
code = "1m"
days = 30
price_rub = 100
price_stars = 50

[[plan]]
code = "pro"
days = 90
price_rub = 600
price_stars = 300
device_limit = 3
traffic_gb = 200
traffic_reset = "MONTH"
squads = ["{SQUAD}"]
"""


def test_a_good_file_gives_plans_with_their_limits() -> None:
    plain, pro = parse_plans(GOOD, "plans.toml")
    assert plain.limits == PlanLimits() and plain.limits.is_empty
    assert (pro.code, pro.days, pro.price_rub, pro.price_stars) == ("pro", 90, 600, 300)
    assert pro.limits == PlanLimits(3, 200, "MONTH", (SQUAD,))
    assert pro.limits.traffic_bytes == 200 * 1024**3
    assert PlanLimits.from_json(pro.limits.to_json()) == pro.limits


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("device_limit = 3", "device_limit = 0"), "plan 'pro': device_limit: must be a positive"),
        (("device_limit = 3", 'device_limit = "3"'), "plan 'pro': device_limit: must be a posi"),
        (('traffic_reset = "MONTH"', 'traffic_reset = "YEAR"'), "plan 'pro': traffic_reset:"),
        ((f'squads = ["{SQUAD}"]', 'squads = ["nope"]'), "plan 'pro': squads: must be a list"),
        (("days = 90", "days = -1"), "plan 'pro': days: must be a positive whole number"),
        (('code = "pro"', 'code = "1m"'), "plan '1m': code: appears twice"),
        (('code = "pro"', 'code = "Pro!"'), "plan 'Pro!': code: is required"),
        (("price_stars = 300", "price_starz = 300"), "plan 'pro': price_starz: unknown field"),
        (("traffic_gb = 200", ""), "plan 'pro': traffic_reset: needs traffic_gb"),
        (("[[plan]]", "[[plans]]"), "unknown key 'plans'"),
    ],
)
def test_a_bad_plan_names_the_file_the_plan_and_the_field(
    change: tuple[str, str], message: str
) -> None:
    text = GOOD.replace(change[0], change[1], 1 if change[0] != "[[plan]]" else -1)
    with pytest.raises(ValueError, match=r"^plans\.toml: ") as err:
        parse_plans(text, "plans.toml")
    assert message in str(err.value)


def test_a_bad_plans_file_stops_the_app_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "plans.toml"
    path.write_text(GOOD.replace("device_limit = 3", "device_limit = -2"), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(_env_file=None, plans_file=path)
    line = str(err.value)
    assert "\n" not in line
    assert line.startswith(f"configuration error: PLANS_FILE: {path}: plan 'pro': device_limit:")
    missing = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match=r"PLANS_FILE: .*absent\.toml: cannot be read"):
        load_settings(_env_file=None, plans_file=missing)


def test_plans_file_replaces_tariffs_and_tariffs_alone_keep_working(tmp_path: Path) -> None:
    path = tmp_path / "plans.toml"
    path.write_text(GOOD, encoding="utf-8")
    settings = load_settings(_env_file=None, plans_file=path, tariffs="9m:270:900:450")
    assert [t.code for t in settings.tariffs] == ["1m", "pro"]
    plain = load_settings(_env_file=None, tariffs="9m:270:900:450")
    assert [(t.code, t.limits) for t in plain.tariffs] == [("9m", PlanLimits())]


def test_trial_settings() -> None:
    assert not load_settings(_env_file=None).trial_enabled
    s = load_settings(_env_file=None, trial_days=3, trial_device_limit=1, trial_squad_uuid=SQUAD)
    assert s.trial_enabled and s.trial_limits == PlanLimits(1, None, "NO_RESET", (SQUAD,))
    with pytest.raises(ConfigError, match="TRIAL_REQUIRES_CHANNEL: needs NEWS_CHANNEL_USERNAME"):
        load_settings(_env_file=None, trial_days=3, trial_requires_channel=True)
    with pytest.raises(ConfigError, match="TRIAL_SQUAD_UUID: must be an internal squad UUID"):
        load_settings(_env_file=None, trial_squad_uuid="default")


# -- every refusal, word for word (the operator reads exactly this line) -------------------

ONE = 'code = "1m"\ndays = 30\nprice_rub = 100\nprice_stars = 50\n'
KNOWN = "code, days, device_limit, price_rub, price_stars, squads, traffic_gb, traffic_reset"


def plan(extra: str = "", base: str = ONE) -> str:
    return f"[[plan]]\n{base}{extra}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "p.toml: has no [[plan]] tables"),
        ("plan = []", "p.toml: has no [[plan]] tables"),
        ("plan = 5", "p.toml: has no [[plan]] tables"),
        ("plan = [1]", "p.toml: plan #1: must be a table"),
        ("title = 'x'\n" + plan(), "p.toml: unknown key 'title' (plans are [[plan]] tables)"),
        (
            plan("", "code = 7\ndays = 1\nprice_rub = 1\nprice_stars = 1\n"),
            "p.toml: plan #1: code: is required: 1-8 lowercase letters or digits (got 7)",
        ),
        (
            plan("", "days = 1\nprice_rub = 1\nprice_stars = 1\n"),
            "p.toml: plan #1: code: is required: 1-8 lowercase letters or digits",
        ),
        (
            plan("", 'code = "abcdefghi"\ndays = 1\nprice_rub = 1\nprice_stars = 1\n'),
            "p.toml: plan 'abcdefghi': code: is required: 1-8 lowercase letters or digits "
            "(got 'abcdefghi')",
        ),
        (
            plan("", 'code = "1m"\nprice_rub = 100\nprice_stars = 50\n'),
            "p.toml: plan '1m': days: is required",
        ),
        (
            plan("", 'code = "1m"\ndays = 30\nprice_stars = 50\n'),
            "p.toml: plan '1m': price_rub: is required",
        ),
        (
            plan("", 'code = "1m"\ndays = 30\nprice_rub = 100\n'),
            "p.toml: plan '1m': price_stars: is required",
        ),
        (
            plan("device_limit = true\n"),
            "p.toml: plan '1m': device_limit: must be a positive whole number (got True)",
        ),
        (
            plan("traffic_gb = 1.5\n"),
            "p.toml: plan '1m': traffic_gb: must be a positive whole number (got 1.5)",
        ),
        (
            plan('traffic_reset = "month"\ntraffic_gb = 5\n'),
            "p.toml: plan '1m': traffic_reset: must be one of NO_RESET, DAY, WEEK, MONTH "
            "(got 'month')",
        ),
        (
            plan('traffic_reset = "DAY"\n'),
            "p.toml: plan '1m': traffic_reset: needs traffic_gb (unlimited traffic has nothing "
            "to reset) (got 'DAY')",
        ),
        (
            plan('squads = "x"\n'),
            "p.toml: plan '1m': squads: must be a list of internal squad UUIDs (got 'x')",
        ),
        (
            plan("squads = [1]\n"),
            "p.toml: plan '1m': squads: must be a list of internal squad UUIDs (got [1])",
        ),
        (
            plan("colour = 1\nzone = 2\n"),
            f"p.toml: plan '1m': colour: unknown field (known: {KNOWN}) (got 1)",
        ),
        (
            plan() + plan(),
            "p.toml: plan '1m': code: appears twice",
        ),
    ],
)
def test_each_refusal_word_for_word(text: str, message: str) -> None:
    with pytest.raises(PlanFileError) as err:
        parse_plans(text, "p.toml")
    assert str(err.value) == message


def test_invalid_toml_is_named_with_the_parsers_reason() -> None:
    with pytest.raises(PlanFileError) as err:
        parse_plans("[[plan]\ncode = 1", "p.toml")
    assert str(err.value).startswith("p.toml: is not valid TOML (")
    assert str(err.value).endswith(")") and "line 1" in str(err.value)


def test_optional_fields_default_to_no_limits() -> None:
    [only] = parse_plans(plan(), "p.toml")
    assert only == Tariff("1m", 30, 100, 50, PlanLimits(None, None, "NO_RESET", ()))
    [capped] = parse_plans(
        plan(f'traffic_gb = 5\ntraffic_reset = "WEEK"\nsquads = ["{SQUAD}"]\n'), "p"
    )
    assert capped.limits == PlanLimits(None, 5, "WEEK", (SQUAD,))
    [reset_none] = parse_plans(plan('traffic_reset = "NO_RESET"\n'), "p")
    assert reset_none.limits.is_empty


def test_one_is_the_smallest_count() -> None:
    text = plan("device_limit = 1\ntraffic_gb = 1\n", ONE.replace("days = 30", "days = 1"))
    [smallest] = parse_plans(text, "p")
    assert (smallest.days, smallest.limits.device_limit, smallest.limits.traffic_gb) == (1, 1, 1)


def test_a_plans_file_that_cannot_be_read(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    with pytest.raises(PlanFileError) as err:
        load_plans(missing)
    assert str(err.value) == f"{missing}: cannot be read (No such file or directory)"
    latin = tmp_path / "latin.toml"
    latin.write_bytes(plan("# caf\xe9\n").encode("latin-1"))
    with pytest.raises(PlanFileError) as err:
        load_plans(latin)
    assert str(err.value) == f"{latin}: is not UTF-8 text"
    good = tmp_path / "good.toml"
    good.write_text(plan("# кириллица\n"), encoding="utf-8")
    assert [t.code for t in load_plans(good)] == ["1m"]


def test_limits_travel_as_json_and_back() -> None:
    assert PlanLimits.from_json(None) == PlanLimits.from_json({}) == PlanLimits()
    assert PlanLimits().to_json() == {
        "device_limit": None,
        "traffic_gb": None,
        "traffic_reset": "NO_RESET",
        "squads": [],
    }
    partial = PlanLimits.from_json({"device_limit": 2, "traffic_reset": None, "squads": None})
    assert partial == PlanLimits(2, None, "NO_RESET", ())
    assert PlanLimits().traffic_bytes == 0 and PlanLimits(traffic_gb=1).traffic_bytes == 1024**3
    assert not PlanLimits(device_limit=1).is_empty

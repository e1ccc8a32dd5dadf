"""Plans files: what a good file gives, and the one line a bad one stops the app with."""

from __future__ import annotations

from pathlib import Path

import pytest

from spnbot.config import ConfigError, load_settings
from spnbot.domain.tariffs import PlanLimits, parse_plans

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

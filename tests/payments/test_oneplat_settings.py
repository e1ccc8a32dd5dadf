"""ONEPLAT_METHODS, ONEPLAT_EMAIL and ONEPLAT_CALLBACK_IPS: one-line errors naming the variable."""

from __future__ import annotations

import pytest

from spnbot.config import ConfigError, load_settings
from spnbot.payments.oneplat_options import check_email_template, parse_methods, render_email


def error(**env: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None, **env)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("spec", "methods"),
    [
        ("card,sbp", ("card", "sbp")),
        (" Card , QR ,crypto", ("card", "qr", "crypto")),
        ("sbp", ("sbp",)),
    ],
)
def test_methods(spec: str, methods: tuple[str, ...]) -> None:
    assert parse_methods(spec) == methods
    assert load_settings(_env_file=None, oneplat_methods=spec).oneplat_methods == ",".join(methods)


def test_default_methods_are_card_and_sbp() -> None:
    assert load_settings(_env_file=None).oneplat_methods == "card,sbp"


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("card,paypal", "unknown method 'paypal'"),
        (",", "at least one"),
        ("card,card", "twice"),
    ],
)
def test_bad_methods(spec: str, says: str) -> None:
    message = error(oneplat_methods=spec)
    assert message.startswith("configuration error: ONEPLAT_METHODS: ")
    assert says in message


@pytest.mark.parametrize(
    "template", ["pay@example.com", "pay+{user_id}@example.com", "{order_id}@pay.example.com"]
)
def test_email_templates(template: str) -> None:
    assert load_settings(_env_file=None, oneplat_email=template).oneplat_email == template
    assert "{" not in render_email(template, user_id=5, order_id="spn-1")


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("nobody", "not an e-mail address"),
        ("pay+{uid}@example.com", "unknown placeholder {uid}"),
        ("pay+{user_id.__class__}@example.com", "unknown placeholder"),
        ("pay+{user_id:>999999999}@example.com", "no format spec"),
        ("pay+{user_id!r}@example.com", "no format spec"),
        ("pay+{@example.com", "unbalanced"),
        ("pay+{}@example.com", "unknown placeholder {}"),
    ],
)
def test_bad_email_templates(template: str, says: str) -> None:
    message = error(oneplat_email=template)
    assert message.startswith("configuration error: ONEPLAT_EMAIL: ")
    assert says in message
    with pytest.raises(ValueError):
        check_email_template(template)


def test_callback_ips() -> None:
    settings = load_settings(_env_file=None, oneplat_callback_ips="159.89.25.81,10.0.0.0/8")
    assert settings.oneplat_callback_ips == "159.89.25.81,10.0.0.0/8"
    assert load_settings(_env_file=None).oneplat_callback_ips is None


@pytest.mark.parametrize(("spec", "says"), [("1.2.3", "'1.2.3'"), (" , ", "names no address")])
def test_bad_callback_ips(spec: str, says: str) -> None:
    message = error(oneplat_callback_ips=spec)
    assert message.startswith("configuration error: ONEPLAT_CALLBACK_IPS: ")
    assert says in message

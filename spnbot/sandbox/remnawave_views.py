"""Fixed-shape answers of the Remnawave emulator: auth status, squads, subscription content."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from spnbot.sandbox.remnawave_users import js_iso, parse_iso

_INBOUND_UUID = "0b7e6c1a-3f52-4d8e-9a61-2c4f8e1d7b30"
_OAUTH_PROVIDERS = ("github", "pocketid", "yandex", "keycloak", "generic", "telegram")


def auth_status() -> dict[str, Any]:
    """`GET /api/auth/status` of a panel whose first admin is registered (never a fresh one)."""
    return {
        "isLoginAllowed": True,
        "isRegisterAllowed": False,
        "authentication": {
            "passkey": {"enabled": False},
            "oauth2": {"providers": dict.fromkeys(_OAUTH_PROVIDERS, False)},
            "password": {"enabled": True},
        },
        "branding": {"title": None, "logoUrl": None},
    }


def render_squad(
    squad_uuid: str,
    name: str,
    *,
    position: int,
    members: int,
    created_at: datetime,
    api_version: int,
) -> dict[str, Any]:
    """One internal squad with the single Shadowsocks inbound a default install has."""
    inbound = {
        "uuid": _INBOUND_UUID,
        "profileUuid": "00000000-0000-0000-0000-000000000000",
        "tag": "Shadowsocks",
        "type": "shadowsocks",
        "network": None,
        "security": None,
        "port": 1234,
        "rawInbound": {
            "tag": "Shadowsocks",
            "port": 1234,
            "protocol": "shadowsocks",
            "settings": {"method": "chacha20-ietf-poly1305", "clients": [], "network": "tcp"},
            "sniffing": {"enabled": True, "destOverride": ["http", "tls", "quic"]},
        },
    }
    squad: dict[str, Any] = {
        "uuid": squad_uuid,
        "viewPosition": position,
        "name": name,
        "info": {"membersCount": members, "inboundsCount": 1},
        "inbounds": [inbound],
        "createdAt": js_iso(created_at),
        "updatedAt": js_iso(created_at),
    }
    if api_version >= 3:
        squad["tags"] = []  # the 3.4 contract has it; the recorded 3.3.2 did not send it yet
    return squad


def subscription_text(record: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """What a VPN app downloads from `/api/sub/{shortUuid}`: base64 config lines and headers."""
    link = f"vless://{record['vlessUuid']}@0.0.0.0:1?encryption=none&type=tcp#SPN-sandbox"
    expire = parse_iso(record["expireAt"]) or datetime.now(UTC)
    headers = {
        "content-disposition": f"attachment; filename={record['username']}",
        "subscription-userinfo": (
            f"upload=0; download={record['usedTrafficBytes']}; "
            f"total={record['trafficLimitBytes']}; expire={int(expire.timestamp())}"
        ),
        "profile-update-interval": "12",
    }
    return base64.b64encode(link.encode()).decode(), headers

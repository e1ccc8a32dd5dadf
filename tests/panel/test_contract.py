"""Client and emulator traffic checked against the official @remnawave/backend-contract.

The zod schemas are the panel's own definition of its API, so this test is the independent
check of both our client's requests and the emulator's responses. Node deps are installed
into tests/contract on first use; without node/npm the test skips (fails when CI=true).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from spnbot.panel.base import (
    PANEL_DEFAULT,
    PanelAuthError,
    PanelConflict,
    PanelDeviceNotFound,
    PanelRejected,
    UserLimits,
)
from spnbot.panel.remnawave import RemnawaveClient
from spnbot.sandbox.remnawave import RecordedRequest, RemnawaveEmulator

CONTRACT_DIR = Path(__file__).resolve().parents[1] / "contract"
TOKEN = "contract-token"
Validator = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]

# (panel line, method, path pattern, contract command, path parameter names)
_ID = r"(\d+)"
_UUID = r"([0-9a-f-]{36})"
ROUTES: list[tuple[int, str, str, str, tuple[str, ...]]] = [
    (3, "POST", r"/api/users/?", "CreateUserCommand", ()),
    (3, "PATCH", r"/api/users/?", "UpdateUserCommand", ()),
    (3, "GET", r"/api/users/?", "GetUsersCommand", ()),
    (3, "GET", r"/api/users/stream", "GetUsersStreamCommand", ()),
    (3, "GET", r"/api/users/tags", "GetUsersTagsCommand", ()),
    (3, "GET", r"/api/users/by-username/([^/]+)", "GetUserByUsernameCommand", ("username",)),
    (3, "GET", r"/api/users/by-short-uuid/([^/]+)", "GetUserByShortUuidCommand", ("shortUuid",)),
    (3, "GET", rf"/api/users/{_ID}", "GetUserByIdCommand", ("userId",)),
    (3, "DELETE", rf"/api/users/{_ID}", "DeleteUserCommand", ("userId",)),
    (3, "POST", rf"/api/users/{_ID}/actions/extend", "ExtendUserCommand", ("userId",)),
    (3, "POST", rf"/api/users/{_ID}/actions/enable", "EnableUserCommand", ("userId",)),
    (3, "POST", rf"/api/users/{_ID}/actions/disable", "DisableUserCommand", ("userId",)),
    (3, "POST", rf"/api/users/{_ID}/actions/reset-traffic", "ResetUserTrafficCommand", ("userId",)),
    (3, "POST", rf"/api/users/{_ID}/actions/revoke", "RevokeUserSubscriptionCommand", ("userId",)),
    (3, "GET", rf"/api/subscriptions/by-id/{_ID}", "GetSubscriptionByIdCommand", ("userId",)),
    (3, "GET", r"/api/internal-squads/?", "GetInternalSquadsCommand", ()),
    (3, "GET", rf"/api/hwid/devices/{_ID}", "GetUserHwidDevicesCommand", ("userId",)),
    (3, "POST", r"/api/hwid/devices/delete", "DeleteUserHwidDeviceCommand", ()),
    (2, "POST", r"/api/users/?", "CreateUserCommand", ()),
    (2, "PATCH", r"/api/users/?", "UpdateUserCommand", ()),
    (2, "GET", r"/api/users/?", "GetAllUsersCommand", ()),
    (2, "GET", r"/api/users/tags", "GetAllTagsCommand", ()),
    (2, "GET", r"/api/users/by-username/([^/]+)", "GetUserByUsernameCommand", ("username",)),
    (2, "GET", r"/api/users/by-short-uuid/([^/]+)", "GetUserByShortUuidCommand", ("shortUuid",)),
    (2, "GET", r"/api/users/by-telegram-id/(\d+)", "GetUserByTelegramIdCommand", ("telegramId",)),
    (2, "GET", rf"/api/users/{_UUID}", "GetUserByUuidCommand", ("uuid",)),
    (2, "DELETE", rf"/api/users/{_UUID}", "DeleteUserCommand", ("uuid",)),
    (2, "POST", rf"/api/users/{_UUID}/actions/enable", "EnableUserCommand", ("uuid",)),
    (2, "POST", rf"/api/users/{_UUID}/actions/disable", "DisableUserCommand", ("uuid",)),
    (2, "POST", rf"/api/users/{_UUID}/actions/reset-traffic", "ResetUserTrafficCommand", ("uuid",)),
    (2, "POST", rf"/api/users/{_UUID}/actions/revoke", "RevokeUserSubscriptionCommand", ("uuid",)),
    (2, "GET", r"/api/internal-squads/?", "GetInternalSquadsCommand", ()),
    (2, "GET", rf"/api/hwid/devices/{_UUID}", "GetUserHwidDevicesCommand", ("userUuid",)),
    (2, "POST", r"/api/hwid/devices/delete", "DeleteUserHwidDeviceCommand", ()),
    (
        2,
        "POST",
        rf"/api/internal-squads/{_UUID}/bulk-actions/add-users",
        "AddUsersToInternalSquadCommand",
        ("uuid",),
    ),
]


def _unavailable(reason: str) -> None:
    message = f"contract check unavailable: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    if sys.__stderr__ is not None:
        sys.__stderr__.write(f"\n{message}\n")  # printed even though the test is skipped
    pytest.skip(message)


@pytest.fixture(scope="module")
def validator() -> Validator:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("node or npm is not installed")
    assert node is not None and npm is not None
    # npm writes this file last, so a half-finished install is redone rather than used.
    if not (CONTRACT_DIR / "node_modules" / ".package-lock.json").is_file():
        try:
            done = subprocess.run(  # noqa: S603 (fixed argv, npm from PATH)
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=CONTRACT_DIR,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        except subprocess.TimeoutExpired:
            _unavailable("npm ci took longer than 300 s")
        if done.returncode != 0:
            shutil.rmtree(CONTRACT_DIR / "node_modules", ignore_errors=True)
            _unavailable(f"npm ci failed: {done.stderr.strip()[-500:]}")

    def validate(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        done = subprocess.run(  # noqa: S603 (fixed argv, node from PATH)
            [node, "validate.mjs"],
            cwd=CONTRACT_DIR,
            input="".join(json.dumps(entry) + "\n" for entry in entries),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        results = [json.loads(line) for line in done.stdout.splitlines()]
        assert len(results) == len(entries), done.stdout
        return results

    return validate


def _route(version: int, record: RecordedRequest) -> tuple[str, dict[str, str]]:
    for line, method, pattern, command, names in ROUTES:
        found = re.fullmatch(pattern, record.path)
        if line == version and method == record.method and found:
            return command, dict(zip(names, found.groups(), strict=True))
    raise AssertionError(f"no contract command mapped for {record.method} {record.path}")


def _entries(version: int, records: list[RecordedRequest]) -> list[dict[str, Any]]:
    """What to validate, each with the verdict we expect from zod."""
    entries: list[dict[str, Any]] = []
    for record in records:
        command, params = _route(version, record)
        assert record.status is not None, f"{record.method} {record.path} was dropped"
        base = {"version": version, "command": command, "method": record.method}
        succeeded = 200 <= record.status < 300
        if record.json is not None:
            # The emulator must refuse exactly the bodies that the contract refuses.
            refused = record.status == 400 and record.response.get("errors") is not None
            expect = "fail" if refused else "ok"
            entries.append(
                {
                    **base,
                    "kind": "request",
                    "body": record.json,
                    "path": record.path,
                    "expect": expect,
                }
            )
        if params:
            entries.append({**base, "kind": "params", "body": params, "expect": "ok"})
        if record.query:
            entries.append({**base, "kind": "query", "body": record.query, "expect": "ok"})
        if succeeded and record.response is not None:
            entries.append({**base, "kind": "response", "body": record.response, "expect": "ok"})
        if not succeeded:
            _check_error_shape(record)
    return entries


def _check_error_shape(record: RecordedRequest) -> None:
    body = record.response
    assert isinstance(body, dict), record
    if record.status == 401:
        assert body == {"statusCode": 401, "message": "Unauthorized"}
    elif "errors" in body:
        assert body["statusCode"] == 400 and body["message"] == "Validation failed"
    else:
        assert set(body) == {"timestamp", "path", "message", "errorCode"}, body


def _future(days: int) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


async def _client_sequence(client: RemnawaveClient, squad_uuid: str) -> str:
    """What SPN itself does, errors included; returns the first user's ref."""
    await client.ping()
    assert await client.squad_exists(squad_uuid)
    alice = await client.create_user(username="alice", telegram_id=1001, expire_at=_future(3))
    await client.create_user(username="bob", telegram_id=100, expire_at=_future(30))
    assert (await client.find_by_telegram_id(1001)) == alice
    assert await client.find_by_telegram_id(10) is None
    assert (await client.get_user(alice.ref)) == alice
    assert (await client.find_by_username("alice")) == alice
    target = _future(60)
    first = await client.set_expiry(alice.ref, target)
    assert await client.set_expiry(alice.ref, target) == first  # absolute: a retry changes nothing
    with pytest.raises(PanelConflict):
        await client.create_user(username="alice", telegram_id=5, expire_at=_future(1))
    with pytest.raises(PanelRejected):
        await client.set_expiry(alice.ref, _future(-1))
    with pytest.raises(PanelRejected):
        await client.create_user(username="x", telegram_id=5, expire_at=_future(1))
    unknown = "999" if client.api_version == 3 else "00000000-0000-4000-8000-000000000000"
    assert await client.get_user(unknown) is None
    return alice.ref


async def _client_growth(client: RemnawaveClient, emu: RemnawaveEmulator, ref: str) -> None:
    """Limits, devices and revoke as SPN calls them (issue 14)."""
    extra = emu.add_squad("Premium")
    limits = UserLimits(
        hwid_device_limit=3,
        traffic_limit_bytes=50 * 2**30,
        traffic_limit_strategy="MONTH",
        internal_squads=(emu.squad_uuid, extra),
    )
    carol = await client.create_user(
        username="carol", telegram_id=3003, expire_at=_future(5), limits=limits
    )
    assert carol.hwid_device_limit == 3 and carol.internal_squads == (emu.squad_uuid, extra)
    await client.set_limits(carol.ref, UserLimits(hwid_device_limit=1, internal_squads=()))
    cleared = await client.set_limits(carol.ref, UserLimits(hwid_device_limit=PANEL_DEFAULT))
    assert cleared.hwid_device_limit is None  # null on update: nullable in the zod schema
    await client.set_expiry(carol.ref, _future(9), limits=UserLimits(traffic_limit_bytes=0))
    emu.add_device(ref, "hwid-a")
    emu.add_device(ref, "hwid-b", platform=None, os_version=None)
    assert (await client.list_devices(ref)).total == 2
    assert [d.hwid for d in (await client.delete_device(ref, "hwid-a")).devices] == ["hwid-b"]
    with pytest.raises(PanelDeviceNotFound):
        await client.delete_device(ref, "hwid-a")
    await client.revoke_subscription(ref)


async def _emulator_extras(
    session: aiohttp.ClientSession, emu: RemnawaveEmulator, ref: str
) -> None:
    """The emulator's other endpoints, called raw so their answers get validated too."""
    headers = {
        "Authorization": f"Bearer {TOKEN}",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-For": "127.0.0.1",
    }
    short = emu.find_user(username="alice")
    assert short is not None
    calls: list[tuple[str, str, Any]] = [
        ("GET", f"/api/users/by-short-uuid/{short['shortUuid']}", None),
        ("POST", f"/api/users/{ref}/actions/disable", None),
        ("POST", f"/api/users/{ref}/actions/enable", None),
        ("POST", f"/api/users/{ref}/actions/reset-traffic", None),
        ("POST", f"/api/users/{ref}/actions/revoke", {}),
        ("POST", f"/api/users/{ref}/actions/revoke", {"revokeOnlyPasswords": True}),
        ("POST", f"/api/users/{ref}/actions/revoke", None),
        ("GET", "/api/users?size=10&start=0", None),
        ("GET", "/api/users/tags", None),
        ("GET", f"/api/hwid/devices/{ref}", None),
    ]
    if emu.api_version == 3:
        calls += [
            ("POST", f"/api/users/{ref}/actions/extend", {"days": 3}),
            ("GET", f"/api/subscriptions/by-id/{ref}", None),
            ("GET", "/api/users/stream?size=1", None),
        ]
    else:
        calls += [("POST", f"/api/internal-squads/{emu.squad_uuid}/bulk-actions/add-users", None)]
    calls += [("DELETE", f"/api/users/{ref}", None)]
    for method, path, body in calls:
        async with session.request(method, emu.url + path, json=body, headers=headers) as resp:
            assert resp.status < 300, (method, path, await resp.text())
    bare = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "127.0.0.1"}  # 401 shape too
    async with session.get(emu.url + "/api/internal-squads", headers=bare) as resp:
        assert resp.status == 401


@pytest.mark.parametrize("version", [3, 2], ids=["3.x", "2.x"])
async def test_traffic_matches_the_official_contract(validator: Validator, version: int) -> None:
    async with (
        RemnawaveEmulator(api_token=TOKEN, api_version=version) as emu,
        aiohttp.ClientSession() as session,
    ):
        client = RemnawaveClient(
            session, base_url=emu.url, token=TOKEN, api_version=version, squad_uuid=emu.squad_uuid
        )
        ref = await _client_sequence(client, emu.squad_uuid)
        await _client_growth(client, emu, ref)
        with pytest.raises(PanelAuthError):
            await RemnawaveClient(session, base_url=emu.url, token="wrong").ping()
        await _emulator_extras(session, emu, ref)
        records = list(emu.requests)

    entries = _entries(version, records)
    results = validator([{k: v for k, v in e.items() if k != "expect"} for e in entries])

    problems = [
        f"{e['method']} {e['command']} {e['kind']}: expected {e['expect']}, zod said "
        f"{r.get('error', 'ok')}\n  body: {json.dumps(e['body'])[:300]}"
        for e, r in zip(entries, results, strict=True)
        if r["ok"] != (e["expect"] == "ok")
    ]
    assert not problems, "\n".join(problems)
    checked = {(e["command"], e["kind"]) for e in entries}
    assert ("CreateUserCommand", "request") in checked
    assert ("UpdateUserCommand", "response") in checked
    lookup = "GetUsersStreamCommand" if version == 3 else "GetUserByTelegramIdCommand"
    assert (lookup, "response") in checked

"""Every request the real panel answered, replayed against the emulator of the same line.

Per recording: the same status (or the same dropped connection), the same body shape (keys
and JSON types, recursively; ids, dates and generated strings may differ) and the same media
type. Ids the panel generated are mapped to the emulator's as the replay goes, so a later
`GET /api/users/<uuid>` asks for the user the emulator created. What the emulator cannot
answer alike is listed in UNMATCHABLE with the reason, printed on every run, and must still
differ: a stale entry fails too. Then SPN's own wire code reads every recorded answer.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import aiohttp
import pytest

from spnbot.panel.base import (
    PanelAuthError,
    PanelConflict,
    PanelError,
    PanelNotFound,
    PanelRejected,
    PanelUnavailable,
)
from spnbot.panel.remnawave_wire import (
    devices_from_payload,
    error_for,
    line_from_probe,
    unwrap,
    user_from_payload,
)
from spnbot.sandbox.remnawave import RemnawaveEmulator
from tests.panel.recordings import LINES, Recording, load

TOKEN = "replay-token"
ADMIN_JWT = "the emulator has no admin accounts: SPN only ever holds an API token"
FRESH_PANEL = "a fresh panel before its first admin registered; the emulator always has one"
UNMATCHABLE: dict[str, dict[str, str]] = {
    "2.7.4": {
        "05_auth_status": FRESH_PANEL,
        "06_auth_register_first_admin": FRESH_PANEL,
        "08_auth_login": ADMIN_JWT,
        "10_api_tokens_list_admin_jwt_without_client_type_header": ADMIN_JWT,
        "11_api_tokens_list_admin_jwt": ADMIN_JWT,
        "12_api_tokens_create_3x_body_rejected": ADMIN_JWT,
        "13_api_tokens_create": ADMIN_JWT,
    },
    "3.3.2": {
        "04_auth_status": FRESH_PANEL,
        "05_auth_register_first_admin": FRESH_PANEL,
        "07_auth_login": ADMIN_JWT,
        "08_api_tokens_scopes_admin_jwt_without_client_type_header": ADMIN_JWT,
        "09_api_tokens_scopes": ADMIN_JWT,
        "10_api_tokens_create": ADMIN_JWT,
    },
}
# Keys the emulator sends that an older recorded release lacks, with the reason.
NEWER_KEYS: dict[str, dict[str, str]] = {
    "2.7.4": {},
    "3.3.2": {
        "$.response.internalSquads[0].tags": "required by the 3.4 contract the emulator "
        "follows; 3.3.2 predates it and SPN reads no squad tags",
    },
}
ID_KEYS = frozenset({"id", "uuid", "shortUuid", "userId", "userUuid"})
VERSIONS = pytest.mark.parametrize("version", list(LINES))


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def shape_diff(expected: Any, actual: Any, where: str = "$") -> list[str]:
    """Where two JSON values differ in keys, types or array lengths (values are ignored)."""
    kind, other = json_type(expected), json_type(actual)
    if kind != other:
        return [f"{where}: {kind} recorded, {other} from the emulator"]
    if kind == "object":
        problems = [f"{where}.{k}: missing" for k in expected if k not in actual]
        problems += [f"{where}.{k}: not in the recording" for k in actual if k not in expected]
        for key in expected:
            if key in actual:
                problems += shape_diff(expected[key], actual[key], f"{where}.{key}")
        return problems
    if kind == "array":
        if len(expected) != len(actual):
            return [f"{where}: {len(expected)} items recorded, {len(actual)} from the emulator"]
        problems = []
        for index, (left, right) in enumerate(zip(expected, actual, strict=True)):
            problems += shape_diff(left, right, f"{where}[{index}]")
        return problems
    return []


def learn_ids(recorded: Any, emulated: Any, ids: dict[str, str]) -> None:
    """Map each id the panel generated to the one the emulator generated in the same place."""
    if isinstance(recorded, dict) and isinstance(emulated, dict):
        for key, value in recorded.items():
            if key not in emulated:
                continue
            if key in ID_KEYS and json_type(value) in ("string", "number"):
                ids.setdefault(str(value), str(emulated[key]))
            else:
                learn_ids(value, emulated[key], ids)
    elif isinstance(recorded, list) and isinstance(emulated, list):
        for left, right in zip(recorded, emulated, strict=False):
            learn_ids(left, right, ids)


def translate(recording: Recording, ids: dict[str, str]) -> tuple[str, Any]:
    path, _, query = recording.path.partition("?")
    path = "/".join(ids.get(part, part) for part in path.split("/"))

    def swap(value: Any, key: str | None = None) -> Any:
        if isinstance(value, dict):
            return {k: swap(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v, key) for v in value]
        if key in ID_KEYS and str(value) in ids:
            mapped = ids[str(value)]
            return int(mapped) if isinstance(value, int) else mapped
        return value

    return path + (f"?{query}" if query else ""), swap(recording.body)


def headers_for(recording: Recording) -> dict[str, str]:
    headers = {k: v for k, v in recording.headers.items() if k.lower() != "content-type"}
    if headers.get("Authorization") == "Bearer <JWT>":  # redacted: ours stands in for it
        headers["Authorization"] = f"Bearer {TOKEN}"
    return headers


async def replay(
    session: aiohttp.ClientSession,
    emu: RemnawaveEmulator,
    recording: Recording,
    ids: dict[str, str],
) -> list[str]:
    path, body = translate(recording, ids)
    data = None if body is None else json.dumps(body)
    headers = headers_for(recording)
    if data is not None:
        headers["Content-Type"] = "application/json"
    try:
        async with session.request(
            recording.method, emu.url + path, data=data, headers=headers
        ) as response:
            status, raw = response.status, await response.text()
            media = response.content_type if raw else None
    except aiohttp.ClientConnectionError:
        if recording.status is None:
            return []
        return [f"the emulator closed the connection; the panel answered {recording.status}"]
    if recording.status is None:
        return [f"the panel closed the connection; the emulator answered {status}"]
    problems = []
    if status != recording.status:
        problems.append(f"status {status}, recorded {recording.status}")
    recorded_media = recording.response_headers.get("Content-Type", "").split(";")[0] or None
    if media != recorded_media:
        problems.append(f"media type {media}, recorded {recorded_media}")
    try:
        emulated: Any = json.loads(raw) if raw else None
    except ValueError:
        emulated = raw
    problems += shape_diff(recording.response_body, emulated)
    learn_ids(recording.response_body, emulated, ids)
    return problems


def _say(text: str) -> None:
    if sys.__stderr__ is not None:
        sys.__stderr__.write(text + "\n")  # shown even when pytest captures output


@VERSIONS
async def test_emulator_answers_every_recording_alike(version: str) -> None:
    recordings = load(version)
    expected_to_differ = UNMATCHABLE[version]
    unknown = set(expected_to_differ) - {r.name for r in recordings}
    assert not unknown, f"UNMATCHABLE names no recording: {sorted(unknown)}"
    differing: dict[str, list[str]] = {}
    ids: dict[str, str] = {}
    line = LINES[version]
    squad = _recorded_squad(recordings)
    async with (
        RemnawaveEmulator(api_token=TOKEN, api_version=line, squad_uuid=squad) as emu,
        aiohttp.ClientSession() as session,
    ):
        for recording in recordings:
            problems = await replay(session, emu, recording, ids)
            problems = [p for p in problems if p.split(":")[0] not in NEWER_KEYS[version]]
            if problems:
                differing[recording.name] = problems

    _say(f"\nRemnawave {version}: {len(recordings)} recordings replayed; not emulated:")
    for name, reason in expected_to_differ.items():
        _say(f"  {name}: {reason}")
    for key, reason in NEWER_KEYS[version].items():
        _say(f"  extra key {key}: {reason}")
    unexpected = {k: v for k, v in differing.items() if k not in expected_to_differ}
    assert not unexpected, "\n".join(
        f"{name}:\n    " + "\n    ".join(problems) for name, problems in unexpected.items()
    )
    stale = sorted(set(expected_to_differ) - set(differing))
    assert not stale, f"listed as unmatchable but the emulator now matches: {stale}"


def _recorded_squad(recordings: list[Recording]) -> str:
    """The squad the recorded creates name; the emulator is built with the same uuid."""
    for recording in recordings:
        body = recording.response_body
        if isinstance(body, dict) and isinstance(body.get("response"), dict):
            squads = body["response"].get("internalSquads")
            if squads:
                return str(squads[0]["uuid"])
    raise AssertionError("no internal squad in the recordings")


# What SPN's client makes of each recorded error, by (status, errorCode or Nest shape).
ERRORS: dict[tuple[int, str], type[PanelError]] = {
    (400, "A019"): PanelConflict,
    (400, "validation"): PanelRejected,
    (401, "nest"): PanelAuthError,
    (403, "E000"): PanelAuthError,
    (403, "nest"): PanelAuthError,
    (404, "A025"): PanelNotFound,
    (404, "A063"): PanelNotFound,
    (404, "A118"): PanelRejected,
    (404, "nest"): PanelRejected,  # a missing route must never read as "no such user"
    (500, "A026"): PanelUnavailable,
}


def _error_key(recording: Recording) -> tuple[int, str]:
    body = recording.response_body
    assert isinstance(body, dict), recording.name
    if "errorCode" in body:
        return (recording.status or 0, str(body["errorCode"]))
    if "errors" in body:
        return (recording.status or 0, "validation")
    return (recording.status or 0, "nest")


@VERSIONS
def test_client_reads_every_recorded_answer(version: str) -> None:
    line = LINES[version]
    users = 0
    for recording in load(version):
        where = f"{recording.name}: {recording.method} {recording.path}"
        if recording.status is None:
            continue  # a dropped connection: the client side is tested against the replay server
        if recording.status >= 300:
            error = error_for(recording.status, recording.response_text, where)
            expected = ERRORS.get(_error_key(recording))
            assert expected is not None, f"{where}: no expectation for {_error_key(recording)}"
            assert type(error) is expected, f"{where}: {type(error).__name__}: {error}"
            continue
        if recording.path.startswith("/api/sub/"):
            assert isinstance(recording.response_body, str)  # config text for VPN apps
            continue
        payload = unwrap(recording.status, recording.response_text, where)
        for candidate in _user_objects(payload):
            user = user_from_payload(candidate, line)
            assert user.ref == str(candidate["id" if line == 3 else "uuid"]), where
            assert user.expire_at.tzinfo is not None
            assert user.internal_squads == tuple(
                s["uuid"] for s in candidate["activeInternalSquads"]
            )
            users += 1
        if isinstance(payload, dict) and "devices" in payload:
            devices_from_payload(payload)
    assert users >= 9  # most recorded answers are users; reading none would be a bug here


def _user_objects(payload: Any) -> list[dict[str, Any]]:
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict) and "username" in payload and "expireAt" in payload:
        return [payload]
    if isinstance(payload, dict) and isinstance(payload.get("users"), list):
        return list(payload["users"])
    return []


@VERSIONS
def test_version_probe_reads_the_recorded_answers(version: str) -> None:
    stream = [r for r in load(version) if r.path.startswith("/api/users/stream")]
    assert stream, "the recordings include the probe's route"
    for recording in stream:
        assert recording.status is not None
        assert line_from_probe(recording.status, recording.response_text) == LINES[version]

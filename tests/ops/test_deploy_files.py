"""The shipped deployment files are valid: the systemd unit and the nginx site.

`systemd-analyze verify` checks the unit and `nginx -t` the site, both on copies whose
server-only paths (/opt/spn-bot, /etc/letsencrypt) are rewritten into a temporary directory.
Missing tools are installed from Debian packages once per session; when that is impossible the
tests skip with the reason, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.debian_tools import apt_lock

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "spnbot.service"
SITE = ROOT / "deploy" / "nginx" / "spn.conf"
IN_CI = os.environ.get("CI", "").lower() == "true"

SERVER_DIR = "/opt/spn-bot"
SERVER_BIN = f"{SERVER_DIR}/.venv/bin/spnbot"
CERT_DIR = "/etc/letsencrypt/live/spn.example.com"
PROXIED = {
    "/1plat-webhook",
    "/cryptobot-webhook",
    "/remnawave-webhook",
    "/telegram-webhook",
    "/1plat.txt",
}
WEBHOOKS = PROXIED - {"/1plat.txt"}

# tool -> Debian packages that provide it, in order of preference
PACKAGES = {
    "systemd-analyze": ["systemd"],
    "nginx": ["nginx-light", "nginx"],
    "openssl": ["openssl"],
}
INSTALL_TIMEOUT = 600  # seconds, apt-get install
UPDATE_TIMEOUT = 300  # seconds, apt-get update


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the deployment checks must run)")
    pytest.skip(reason)


def _which(tool: str) -> str | None:
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin:/sbin"
    return shutil.which(tool, path=path)


def _run(argv: list[str], timeout: float, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed argv built by this module
        argv, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )


def _candidate(apt_cache: str, package: str) -> bool:
    done = _run([apt_cache, "policy", package], timeout=60)
    match = re.search(r"Candidate:\s*(\S+)", done.stdout)
    return bool(match) and match.group(1) != "(none)"


def _pick(apt_cache: str, tool: str) -> str | None:
    return next((p for p in PACKAGES[tool] if _candidate(apt_cache, p)), None)


def _install(missing: list[str]) -> str | None:
    """Install the packages providing `missing`; returns the reason when it cannot."""
    apt_get, apt_cache = _which("apt-get"), _which("apt-cache")
    if not apt_get or not apt_cache:
        return "apt-get is not available to install them"
    if os.geteuid() != 0:
        return "installing them needs root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    chosen: list[str] = []
    updated = False
    for tool in missing:
        package = _pick(apt_cache, tool)
        if package is None and not updated:
            print(f"apt-get update (no candidate for {tool})", file=sys.stderr)
            try:
                _run([apt_get, "update"], timeout=UPDATE_TIMEOUT, env=env)
            except subprocess.TimeoutExpired:
                return f"apt-get update took longer than {UPDATE_TIMEOUT} s"
            updated = True
            package = _pick(apt_cache, tool)
        if package is None:
            return f"no Debian package among {PACKAGES[tool]} provides {tool}"
        chosen.append(package)
    argv = [apt_get, "install", "-y", "--no-install-recommends", *chosen]
    started = time.monotonic()
    try:
        done = _run(argv, timeout=INSTALL_TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        return f"`{' '.join(argv[1:])}` took longer than {INSTALL_TIMEOUT} s"
    took = time.monotonic() - started
    print(f"apt-get install {' '.join(chosen)}: exit {done.returncode} in {took:.1f} s")
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return f"`apt-get install {' '.join(chosen)}` failed: {' | '.join(tail)}"
    return None


@dataclass(frozen=True)
class Tools:
    systemd_analyze: str | None
    nginx: str | None
    openssl: str | None
    problem: str | None  # why some tool is missing

    def need(self, tool: str) -> str:
        path = getattr(self, tool.replace("-", "_"))
        if path is None:
            _unavailable(f"{tool} is missing: {self.problem}")
        return path


@pytest.fixture(scope="session")
def tools() -> Tools:
    problem = None
    if any(_which(tool) is None for tool in PACKAGES):
        with apt_lock():  # one apt-get at a time across test workers
            missing = [tool for tool in PACKAGES if _which(tool) is None]
            problem = _install(missing) if missing else None
    found = {tool: _which(tool) for tool in PACKAGES}
    still = [tool for tool, path in found.items() if path is None]
    if still and problem is None:
        problem = f"still not found after installing: {', '.join(still)}"
    return Tools(found["systemd-analyze"], found["nginx"], found["openssl"], problem)


# --- systemd ----------------------------------------------------------------------------------


def _directives(unit_text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in unit_text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_unit_settings() -> None:
    d = _directives(UNIT.read_text())
    assert d["User"] == ["spnbot"] and d["Group"] == ["spnbot"]
    assert d["WorkingDirectory"] == [SERVER_DIR]
    assert d["EnvironmentFile"] == [f"{SERVER_DIR}/.env"]
    assert d["ExecStart"] == [f"{SERVER_BIN} run"]
    assert d["ExecStartPre"] == [f"{SERVER_BIN} migrate"]
    assert d["Restart"] == ["on-failure"]
    assert d["KillSignal"] == ["SIGTERM"] and d["TimeoutStopSec"] == ["30"]
    assert int(d["LimitNOFILE"][0]) >= 8192  # the soft default of 1024 starves the server
    assert d["ProtectSystem"] == ["strict"]
    assert d["ReadWritePaths"] == [f"{SERVER_DIR}/data"]
    for flag in ("NoNewPrivileges", "ProtectHome", "PrivateTmp"):
        assert d[flag] == ["yes"], flag
    assert "network-online.target" in d["Wants"][0]
    assert {"network-online.target", "postgresql.service"} <= set(d["After"][0].split())
    assert "Requires" not in d  # PostgreSQL may live elsewhere: ordering only


@pytest.mark.timeout(INSTALL_TIMEOUT + UPDATE_TIMEOUT + 120)
def test_unit_passes_systemd_analyze_verify(tools: Tools, tmp_path: Path) -> None:
    analyze = tools.need("systemd-analyze")
    app_dir = tmp_path / "spn-bot"
    (app_dir / "data").mkdir(parents=True)
    (app_dir / ".env").write_text("BOT_TOKEN=123456:ABCDEFGHIJKLMNOP\n")
    (app_dir / ".env").chmod(0o600)
    venv_spnbot = ROOT / ".venv" / "bin" / "spnbot"
    executable = venv_spnbot if os.access(venv_spnbot, os.X_OK) else Path(sys.executable)

    text = UNIT.read_text()
    assert SERVER_BIN in text
    text = text.replace(SERVER_BIN, str(executable)).replace(SERVER_DIR, str(app_dir))
    assert SERVER_DIR not in text
    unit = tmp_path / "spnbot.service"
    unit.write_text(text)

    done = _run([analyze, "verify", str(unit)], timeout=60, cwd=tmp_path)
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 0, output
    # verify exits 0 on ignored lines too (unknown keys, bad values): none may name our unit.
    ours = [line for line in output.splitlines() if "spnbot.service" in line]
    assert ours == [], "\n".join(ours)


def test_verify_catches_a_bad_unit(tools: Tools, tmp_path: Path) -> None:
    """The check above is only worth something if a bad line shows up in the output."""
    analyze = tools.need("systemd-analyze")
    unit = tmp_path / "spnbot.service"
    unit.write_text(f"[Service]\nExecStart={sys.executable}\nProtectSystem=bogus\n")
    done = _run([analyze, "verify", str(unit)], timeout=60, cwd=tmp_path)
    assert "spnbot.service" in done.stdout + done.stderr


# --- nginx ------------------------------------------------------------------------------------


@dataclass
class Block:
    args: list[str]
    children: list[Block]


_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|[{};]|[^\s{};"\']+')


def _parse_nginx(text: str) -> list[Block]:
    """Directives as a tree: `a b c;` has no children, `a b { ... }` has them."""
    text = re.sub(r"#[^\n]*", "", text)
    root: list[Block] = []
    stack = [root]
    words: list[str] = []
    for token in _TOKEN.findall(text):
        if token == ";":
            stack[-1].append(Block(words, []))
            words = []
        elif token == "{":
            block = Block(words, [])
            stack[-1].append(block)
            stack.append(block.children)
            words = []
        elif token == "}":
            assert not words, f"unterminated directive {words}"
            stack.pop()
        else:
            words.append(token)
    assert len(stack) == 1 and not words, "unbalanced braces"
    return root


def _servers() -> list[Block]:
    servers = [b for b in _parse_nginx(SITE.read_text()) if b.args == ["server"]]
    assert len(servers) == 2
    return servers


def _has(block: Block, *args: str) -> bool:
    return any(c.args[: len(args)] == list(args) for c in block.children)


def test_site_proxies_only_the_webhook_and_verification_paths() -> None:
    http, https = _servers()
    assert _has(http, "listen", "80") and _has(https, "listen", "443", "ssl")
    proxied: dict[str, Block] = {}
    for server in (http, https):
        for location in (c for c in server.children if c.args[:1] == ["location"]):
            if _has(location, "proxy_pass"):
                assert location.args[1] == "=", f"not an exact match: {location.args}"
                proxied[location.args[2]] = location
    assert set(proxied) == PROXIED
    assert "/metrics" not in proxied and "/healthz" not in proxied
    for path, location in proxied.items():
        assert _has(location, "proxy_pass", "http://127.0.0.1:8080"), path
    for path in WEBHOOKS:
        assert _has(proxied[path], "client_max_body_size", "64k"), path
    for header in ("Host", "X-Real-IP", "X-Forwarded-For", "X-Forwarded-Proto"):
        assert _has(https, "proxy_set_header", header), header
    catch_all = next(c for c in https.children if c.args == ["location", "/"])
    assert [c.args for c in catch_all.children] == [["return", "404"]]
    # port 80: ACME challenges stay on HTTP, everything else is redirected
    redirect = next(c for c in http.children if c.args == ["location", "/"])
    assert redirect.children[0].args[:2] == ["return", "301"]
    assert any("/.well-known/acme-challenge/" in c.args for c in http.children)
    # the commented example for a monitoring host is there, and commented out
    assert "# location = /metrics" in SITE.read_text()


@pytest.mark.timeout(INSTALL_TIMEOUT + UPDATE_TIMEOUT + 120)
def test_site_passes_nginx_t(tools: Tools, tmp_path: Path) -> None:
    nginx, openssl = tools.need("nginx"), tools.need("openssl")
    cert, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    req = [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    req += ["-subj", "/CN=spn.example.com", "-keyout", str(key), "-out", str(cert)]
    done = _run(req, timeout=60)
    assert done.returncode == 0, done.stderr

    text = SITE.read_text()
    assert f"{CERT_DIR}/fullchain.pem" in text and f"{CERT_DIR}/privkey.pem" in text
    text = text.replace(f"{CERT_DIR}/fullchain.pem", str(cert))
    text = text.replace(f"{CERT_DIR}/privkey.pem", str(key))
    live = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert not any("/etc/letsencrypt" in line for line in live)
    site = tmp_path / "spn.conf"
    site.write_text(text)
    temp = "\n".join(
        f"    {kind}_temp_path {tmp_path / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path / 'nginx.pid'};\n"
        f"error_log {tmp_path / 'error.log'};\n"
        "events {}\n"
        "http {\n"
        f"    access_log {tmp_path / 'access.log'};\n"
        f"{temp}\n"
        f"    include {site};\n"
        "}\n"
    )
    argv = [nginx, "-t", "-p", f"{tmp_path}/", "-e", str(tmp_path / "error.log"), "-c", str(main)]
    done = _run(argv, timeout=60)
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 0, output
    assert "test is successful" in output, output
    assert "[warn]" not in output and "[emerg]" not in output, output

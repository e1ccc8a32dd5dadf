"""PostgreSQL TLS modes against a throwaway server with ssl=on and a throwaway CA.

``require`` encrypts without verifying; ``verify-ca`` needs a certificate from a trusted CA;
``verify-full`` also needs it to name the host — what each means in libpq."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from spnbot.config import ConfigError, database_url_to_sqlalchemy, load_settings
from spnbot.store import tls
from spnbot.store.db import Database
from tests.conftest import IN_CI


@dataclass(frozen=True)
class TlsServer:
    port: int
    ca: Path  # the CA that signed the server certificate (names DNS:localhost only)
    other_ca: Path  # a CA that signed nothing of this server's

    def url(self, host: str, query: str) -> str:
        return f"postgresql://postgres@{host}:{self.port}/postgres?{query}"


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"throwaway TLS PostgreSQL: {reason} (CI=true: this test must run)")
    pytest.skip(f"throwaway TLS PostgreSQL: {reason}")


def _run(*args: str, user: str | None = None) -> None:
    command = ["runuser", "-u", user, "--", *args] if user else list(args)
    subprocess.run(command, check=True, capture_output=True, timeout=120)  # noqa: S603


def _make_ca(d: Path, name: str) -> tuple[Path, Path]:
    key, cert = d / f"{name}.key", d / f"{name}.crt"
    _run(
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign",
    )  # fmt: skip
    return key, cert


@pytest.fixture(scope="module")
def tls_server() -> Iterator[TlsServer]:
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not bins or not shutil.which("openssl") or not shutil.which("runuser"):
        _unavailable("needs PostgreSQL server binaries, openssl and runuser")
    if os.geteuid() != 0:
        _unavailable("needs root to run initdb as the postgres user")
    pg = Path(bins[-1])
    base = Path(tempfile.mkdtemp(prefix="spn-pg-tls-"))
    base.chmod(0o755)
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    data.mkdir(mode=0o700)
    shutil.chown(data, "postgres")
    ca_key, ca = _make_ca(base, "spn-test-ca")
    _other_key, other_ca = _make_ca(base, "spn-other-ca")
    key, csr, cert = base / "server.key", base / "server.csr", base / "server.crt"
    _run(
        "openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
        "-out", str(csr), "-subj", "/CN=localhost",
    )  # fmt: skip
    ext = base / "ext.cnf"
    ext.write_text("subjectAltName=DNS:localhost\n")
    _run(
        "openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "2", "-out", str(cert), "-extfile", str(ext),
    )  # fmt: skip
    shutil.chown(sock, "postgres")
    for path in (key, cert):
        shutil.chown(path, "postgres")
    key.chmod(0o600)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    try:
        _run(str(pg / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", user="postgres")
        options = (
            f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={sock} "
            f"-c ssl=on -c ssl_cert_file={cert} -c ssl_key_file={key}"
        )
        _run(
            str(pg / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l",
            str(sock / "log"), "start", user="postgres",
        )  # fmt: skip
    except (subprocess.CalledProcessError, OSError) as exc:
        shutil.rmtree(base, ignore_errors=True)
        detail = getattr(exc, "stderr", b"") or b""
        _unavailable(f"could not start: {exc} {detail.decode(errors='replace')[:300]}")
    try:
        yield TlsServer(port, ca, other_ca)
    finally:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            _run(str(pg / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop", user="postgres")
        shutil.rmtree(base, ignore_errors=True)


async def _encrypted(url: str) -> bool:
    """Connect as the app does and ask the server whether this connection uses TLS."""
    db = Database(database_url_to_sqlalchemy(url))
    try:
        async with db.engine.connect() as conn:
            row = await conn.exec_driver_sql(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            )
            return bool(row.scalar_one())
    finally:
        await db.dispose()


async def _refused(url: str) -> None:
    with pytest.raises((ssl.SSLError, ssl.CertificateError, ConnectionError, OSError)):
        await _encrypted(url)


async def test_require_encrypts_without_verifying(tls_server: TlsServer) -> None:
    # No CA given and the certificate is from a CA nobody trusts: still connects, encrypted.
    assert await _encrypted(tls_server.url("127.0.0.1", "sslmode=require"))
    assert not await _encrypted(tls_server.url("127.0.0.1", "sslmode=disable"))


async def test_require_with_a_root_certificate_verifies_the_chain(tls_server: TlsServer) -> None:
    assert await _encrypted(
        tls_server.url("127.0.0.1", f"sslmode=require&sslrootcert={tls_server.ca}")
    )
    await _refused(
        tls_server.url("127.0.0.1", f"sslmode=require&sslrootcert={tls_server.other_ca}")
    )


async def test_verify_ca_needs_a_trusted_chain_not_the_name(tls_server: TlsServer) -> None:
    # 127.0.0.1 is not in the certificate: verify-ca does not look at names.
    assert await _encrypted(
        tls_server.url("127.0.0.1", f"sslmode=verify-ca&sslrootcert={tls_server.ca}")
    )
    await _refused(
        tls_server.url("127.0.0.1", f"sslmode=verify-ca&sslrootcert={tls_server.other_ca}")
    )
    await _refused(tls_server.url("127.0.0.1", "sslmode=verify-ca"))  # system CAs: untrusted


async def test_verify_full_also_needs_the_host_name(tls_server: TlsServer) -> None:
    assert await _encrypted(
        tls_server.url("localhost", f"sslmode=verify-full&sslrootcert={tls_server.ca}")
    )
    await _refused(tls_server.url("127.0.0.1", f"sslmode=verify-full&sslrootcert={tls_server.ca}"))
    await _refused(
        tls_server.url("localhost", f"sslmode=verify-full&sslrootcert={tls_server.other_ca}")
    )


@pytest.mark.parametrize(
    ("query", "verify", "names"),
    [
        ({"sslmode": "require"}, ssl.CERT_NONE, False),
        ({"ssl": "require"}, ssl.CERT_NONE, False),
        ({"sslmode": "verify-ca"}, ssl.CERT_REQUIRED, False),
        ({"sslmode": "verify-full", "sslrootcert": "system"}, ssl.CERT_REQUIRED, True),
    ],
)
def test_connect_arguments_for_each_mode(
    query: dict[str, str], verify: ssl.VerifyMode, names: bool
) -> None:
    context = tls.connect_ssl(query)
    assert isinstance(context, ssl.SSLContext)
    assert (context.verify_mode, context.check_hostname) == (verify, names)


def test_modes_asyncpg_handles_pass_through() -> None:
    assert tls.connect_ssl({}) is None
    for mode in ("disable", "allow", "prefer"):
        assert tls.connect_ssl({"sslmode": mode}) == mode


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("sslmode=verify_full", "is not one of"),
        ("sslmode=verify-ca&sslrootcert=/nope.pem", "sslrootcert"),
    ],
)
def test_bad_tls_settings_are_one_line_config_errors(query: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings(_env_file=None, database_url=f"postgresql://u:pw@db.example.com/spn?{query}")
    assert "DATABASE_URL" in str(caught.value) and "pw" not in str(caught.value)

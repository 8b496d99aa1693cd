"""A Mosquitto broker of the test's own (the machine's binary), optionally with TLS.

The machine's Mosquitto on 1883 serves the plain tests; a broker a test can stop, restart on the
same port, or give a certificate needs to be its own process. Certificates are made here with
``cryptography``: a throwaway CA and a server certificate for 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from city_os.devstack import free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


@dataclass
class Certificates:
    ca: Path
    cert: Path
    key: Path


def make_certificates(folder: Path) -> Certificates:
    """A CA and a server certificate for 127.0.0.1 signed by it (PEM files in ``folder``)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "city-os test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    out = Certificates(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    out.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    out.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return out


class Mosquitto:
    """``start()``/``stop()`` a broker on a fixed port (kept across restarts)."""

    def __init__(self, folder: Path, certificates: Certificates | None = None) -> None:
        self.port = free_port()
        self.config = folder / f"mosquitto-{self.port}.conf"
        # As root, mosquitto drops to the mosquitto user, which cannot read pytest's tmp_path.
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true", "persistence false"]
        lines.append("user root")
        if certificates is not None:
            lines += [
                f"cafile {certificates.ca}",
                f"certfile {certificates.cert}",
                f"keyfile {certificates.key}",
            ]
        self.config.write_text("\n".join(lines) + "\n")
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, within: float = 10.0) -> None:
        self.process = await asyncio.create_subprocess_exec(
            MOSQUITTO,
            "-c",
            str(self.config),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        deadline = time.monotonic() + within
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                assert self.process.returncode is None, "mosquitto exited at start"
                assert time.monotonic() < deadline, "mosquitto did not start listening"
                await asyncio.sleep(0.02)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return

    async def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        process.kill()
        await process.wait()

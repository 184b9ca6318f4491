"""
Verified senders for real: a private Postfix with OpenDKIM and OpenDMARC as
milters, configured from contrib/auth/, writes Authentication-Results that
the pipe's view reads as request.authentication.

The milters look DKIM keys and DMARC records up in the DNS. Nothing here
changes the machine's resolver: each milter runs in a mount namespace of
its own (``unshare -m``) where /etc/resolv.conf is a file naming
127.0.0.1, and a small DNS server of the test's (dnspython) answers there
with the records of keys made in the test. Needs root, Postfix, the
opendkim and opendmarc packages, and unshare; skips otherwise.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from .harness import (
    CONTRIB,
    TEST_DOMAIN,
    HarnessError,
    Postfix,
    free_port,
    new_root,
    render_contrib,
    wait_for,
)

pytestmark = pytest.mark.mta

AUTHSERV_ID = "mx.mail.test"
AUTHOR_DOMAIN = "example.org"
OPENDKIM = shutil.which("opendkim", path="/usr/sbin:/usr/bin") or "/usr/sbin/opendkim"
OPENDMARC = shutil.which("opendmarc", path="/usr/sbin:/usr/bin") or "/usr/sbin/opendmarc"
# Our client connects from here: both milters skip mail from 127.0.0.1 by default.
CLIENT_ADDRESS = "127.0.0.2"


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    for path in (OPENDKIM, OPENDMARC):
        if not os.access(path, os.X_OK):
            return f"{path} missing: apt-get install opendkim opendmarc"
    if not shutil.which("unshare"):
        return "unshare missing"
    try:
        import dkim  # noqa: F401
        import dns.message  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} missing: pip install -e '.[test]'"
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        return f"unshare -m is not allowed here: {probe.stderr.decode().strip()}"
    return None


class DNSServer(threading.Thread):
    """UDP DNS on 127.0.0.1:53 answering TXT queries from a dict; NXDOMAIN otherwise."""

    def __init__(self, records: dict[str, list[str]]):
        super().__init__(daemon=True, name="test-dns")
        self.records = records
        self.asked: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 53))
        self.sock.settimeout(0.2)
        self.stopping = threading.Event()

    def run(self) -> None:
        import dns.message
        import dns.rcode
        import dns.rdatatype
        import dns.rrset

        while not self.stopping.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                continue
            try:
                query = dns.message.from_wire(data)
            except Exception:
                continue
            response = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text(omit_final_dot=True).lower()
            self.asked.append(name)
            texts = self.records.get(name)
            if texts is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif question.rdtype == dns.rdatatype.TXT:
                quoted = [
                    " ".join(f'"{t[i : i + 200]}"' for i in range(0, len(t), 200)) for t in texts
                ]
                response.answer.append(
                    dns.rrset.from_text_list(question.name, 300, "IN", "TXT", quoted)
                )
            self.sock.sendto(response.to_wire(), peer)

    def stop(self) -> None:
        self.stopping.set()
        self.join(5)
        self.sock.close()


class Milter:
    """One milter, run in its own mount namespace with /etc/resolv.conf naming 127.0.0.1."""

    def __init__(self, root: Path, program: str, config: str, port: int):
        self.root = root
        self.program = program
        self.port = port
        self.conf = root / f"{Path(program).name}.conf"
        self.conf.write_text(config)
        self.resolv = root / "resolv.conf"
        self.resolv.write_text("nameserver 127.0.0.1\n")
        self.log = root / f"{Path(program).name}.log"
        self.process: subprocess.Popen | None = None
        # opendkim reads its configuration with -x, opendmarc with -c.
        self.config_flag = "-x" if Path(program).name == "opendkim" else "-c"

    def start(self) -> None:
        script = (
            f"mount --bind {self.resolv} /etc/resolv.conf && "
            f"exec {self.program} -f {self.config_flag} {self.conf}"
        )
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def listening():
            if self.process.poll() is not None:
                raise HarnessError(f"{self.program} exited: {self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return True
            except OSError:
                return False

        wait_for(listening, 20, f"{self.program} on port {self.port}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


class MilterPostfix(Postfix):
    """The pipe mode of contrib/postfix plus contrib/auth/postfix: milters and header_checks."""

    def __init__(self, *args, milter_ports: tuple[int, int], **kwargs):
        super().__init__(*args, **kwargs)
        self.milter_ports = milter_ports

    def configure(self) -> None:
        super().configure()
        dkim_port, dmarc_port = self.milter_ports
        rendered = render_contrib(
            [
                CONTRIB / "auth" / "postfix" / "main.cf",
                CONTRIB / "auth" / "postfix" / "header_checks",
            ],
            {
                "/etc/postfix/": f"{self.config_dir}/",
                "127.0.0.1:8891": f"127.0.0.1:{dkim_port}",
                "127.0.0.1:8893": f"127.0.0.1:{dmarc_port}",
                r"mx\.example\.com": AUTHSERV_ID.replace(".", r"\."),
            },
        )
        with (self.config_dir / "main.cf").open("a") as f:
            f.write("\n# --- contrib/auth/postfix/main.cf\n" + rendered["main.cf"])
            # Test only: a milter that is down must show, not let mail through unverified.
            f.write("milter_default_action = tempfail\n")
        (self.config_dir / "header_checks").write_text(rendered["header_checks"])


def new_key(domain: str, selector: str = "s1") -> tuple[bytes, dict[str, list[str]]]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return private, {f"{selector}._domainkey.{domain}": [record]}


@pytest.fixture(scope="module")
def milter_setup(pipe_runtime):
    if reason := _missing():
        if os.environ.get("MTA_REQUIRED"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    root = new_root("milters")
    private, records = new_key(AUTHOR_DOMAIN)
    records[f"_dmarc.{AUTHOR_DOMAIN}"] = ["v=DMARC1; p=reject"]
    records[AUTHOR_DOMAIN] = ["v=spf1 -all"]
    dns_server = DNSServer(records)
    dns_server.start()
    dkim_port, dmarc_port = free_port(), free_port()
    replacements = {"mx.example.com": AUTHSERV_ID}
    dkim_conf = render_contrib(
        [CONTRIB / "auth" / "opendkim.conf"],
        {**replacements, "inet:8891@": f"inet:{dkim_port}@", "/run/opendkim/": f"{root}/"},
    )["opendkim.conf"]
    # Test only: the resolver to forward to (opendkim's libunbound reads no resolv.conf).
    dkim_conf += "Nameservers             127.0.0.1\nSyslog                  no\n"
    dmarc_conf = render_contrib(
        [CONTRIB / "auth" / "opendmarc.conf"],
        {**replacements, "inet:8893@": f"inet:{dmarc_port}@", "/run/opendmarc/": f"{root}/"},
    )["opendmarc.conf"]
    # Test only: DMARC on DKIM alone (the test client is 127.0.0.2, which no SPF record names).
    dmarc_conf += (
        "Syslog                  false\n"
        "SPFSelfValidate         false\n"
        "SPFIgnoreResults        true\n"
    )
    milters = [
        Milter(root, OPENDKIM, dkim_conf, dkim_port),
        Milter(root, OPENDMARC, dmarc_conf, dmarc_port),
    ]
    postfix = MilterPostfix(root / "postfix", pipe_runtime, milter_ports=(dkim_port, dmarc_port))
    try:
        for milter in milters:
            milter.start()
        postfix.start()
        yield postfix, private, dns_server
    finally:
        postfix.stop()
        for milter in milters:
            milter.stop()
        dns_server.stop()
        if not os.environ.get("MTA_KEEP"):
            shutil.rmtree(root, ignore_errors=True)


def message(subject: str, extra_headers: str = "") -> bytes:
    return (
        f"{extra_headers}"
        f"From: Ann <ann@{AUTHOR_DOMAIN}>\r\n"
        f"To: whois@{TEST_DOMAIN}\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@{AUTHOR_DOMAIN}>\r\n"
        "\r\n"
        "It is on fire.\r\n"
    ).encode()


def dkim_sign(raw: bytes, private: bytes) -> bytes:
    import dkim

    return (
        dkim.sign(
            raw,
            b"s1",
            AUTHOR_DOMAIN.encode(),
            private,
            include_headers=[b"from", b"to", b"subject", b"message-id"],
        )
        + raw
    )


def send(postfix, raw: bytes) -> dict:
    """Submit from CLIENT_ADDRESS; what the whois view recorded for it."""
    message_id = raw.split(b"Message-ID: <")[1].split(b">")[0].decode()
    with smtplib.SMTP(
        "127.0.0.1", postfix.port, timeout=60, source_address=(CLIENT_ADDRESS, 0)
    ) as smtp:
        smtp.ehlo("mail.example.org")
        smtp.sendmail(f"ann@{AUTHOR_DOMAIN}", [f"whois@{TEST_DOMAIN}"], raw)
    runtime = postfix.runtime
    found = wait_for(lambda: runtime.seen(message_id), 60, f"the whois view to see {message_id}")
    return found[0]


def test_a_signed_message_is_verified_by_the_milters(milter_setup):
    postfix, private, dns_server = milter_setup
    seen = send(postfix, dkim_sign(message("signed"), private))
    assert ["dkim", "pass"] in seen["results"], seen
    assert ["dmarc", "pass"] in seen["results"], seen
    assert seen["verified"] is True, seen
    assert seen["reason"] == f"DMARC pass for {AUTHOR_DOMAIN}"
    assert f"s1._domainkey.{AUTHOR_DOMAIN}" in dns_server.asked


def test_a_tampered_message_fails_dmarc(milter_setup):
    postfix, private, _ = milter_setup
    raw = dkim_sign(message("tampered"), private).replace(b"on fire", b"fine now")
    seen = send(postfix, raw)
    assert ["dmarc", "fail"] in seen["results"], seen
    assert seen["verified"] is False and seen["reason"] == f"DMARC fail for {AUTHOR_DOMAIN}"


def test_a_forged_header_is_stripped_and_the_milters_verdict_read(milter_setup):
    postfix, _, _ = milter_setup
    forged = (
        f"Authentication-Results: {AUTHSERV_ID}; dkim=pass header.d={AUTHOR_DOMAIN};\r\n"
        f" dmarc=pass header.from={AUTHOR_DOMAIN}\r\n"
    )
    seen = send(postfix, message("forged", extra_headers=forged))
    assert ["dmarc", "pass"] not in seen["results"], seen
    assert seen["verified"] is False, seen
    # header_checks dropped it: only the milters' own headers reached Django.
    assert not any("dkim=pass" in h for h in seen["headers"]), seen["headers"]

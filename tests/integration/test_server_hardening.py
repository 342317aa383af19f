"""Server-side limits a determined client should not get past (issue 14,
items 8-14): unknown opcodes, TSIG time window, TCP limits on reload,
the HTTP endpoint under slowloris, /ready's bound.
Run: /usr/bin/pytest -q tests/integration/test_server_hardening.py
"""
import socket
import struct
import time

import pytest

import dns.message
import dns.rcode
import dns.tsig
import dns.tsigkeyring

from dnsd_harness import Dnsd

SMALL_YAML = """\
zones:
  - name: mesh
    records:
      - {name: static, type: A, data: 192.0.2.1}
"""

SECRET = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
KEYRING = dns.tsigkeyring.from_text({"k.": ("hmac-sha256", SECRET)})
KEY_YAML = """\
keys:
  - {name: k, algorithm: hmac-sha256, secret: "%s"}
""" % SECRET + SMALL_YAML

QR, AA, TC, RD, RA, AD, CD = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080, 0x0020, 0x0010
NOTIMP = 4


def header(qid=0x1234, flags=0, qd=1, an=0, ns=0, ar=0):
    return struct.pack(">HHHHHH", qid, flags, qd, an, ns, ar)


def question(name=b"\x06static\x04mesh\x00", qtype=1, qclass=1):
    return name + struct.pack(">HH", qtype, qclass)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    d = Dnsd(tmp_path_factory.mktemp("small"), SMALL_YAML).start()
    yield d
    assert d.stop() == 0, d.log()


# ======================================================= item 14: opcodes

class TestOpcodes:
    """ISC genreport's opcode and opcodeflg tests: an unknown opcode gets
    NOTIMP with the opcode echoed and none of RD, CD, AD, RA, AA set, with
    or without a question, whatever flags the query had."""

    @pytest.mark.parametrize("opcode", [1, 2, 3, 6, 7, 15])
    @pytest.mark.parametrize("qd", [0, 1])
    def test_notimp_flags_cleared(self, small, opcode, qd):
        flags = (opcode << 11) | RD | AD | CD
        raw = small.raw_udp(header(qid=0xbeef, flags=flags, qd=qd) + (question() if qd else b""))
        assert raw is not None, "no answer to opcode %d" % opcode
        qid, rflags, rqd, an, ns, ar = struct.unpack(">HHHHHH", raw[:12])
        assert qid == 0xbeef and rflags & QR
        assert (rflags >> 11) & 15 == opcode
        assert rflags & 15 == NOTIMP
        assert rflags & (RD | CD | AD | RA | AA | TC) == 0, "flags %#06x" % rflags
        assert an == ns == ar == 0

    def test_query_keeps_rd_cd(self, small):
        """A QUERY still echoes RD and CD (RFC 1035 4.1.1, RFC 4035 3.2.2)."""
        raw = small.raw_udp(header(qid=7, flags=RD | CD) + question())
        _, rflags = struct.unpack(">HH", raw[:4])
        assert rflags & RD and rflags & CD and rflags & 15 == 0


# ======================================================= item 13: TSIG time

class TestTsigWindow:
    """A signed request is accepted within min(its fudge, 300 s) of its
    time signed (RFC 8945 5.2.3, 10): a signer's fudge of 65535 does not
    stretch the window to 18 hours."""

    @pytest.fixture(scope="class")
    def keyed(self, tmp_path_factory):
        d = Dnsd(tmp_path_factory.mktemp("keyed"), KEY_YAML).start()
        yield d
        assert d.stop() == 0, d.log()

    def _signed(self, monkeypatch, age, fudge):
        q = dns.message.make_query("static.mesh.", "A")
        q.use_tsig(KEYRING, "k.", fudge=fudge)
        real = time.time
        with monkeypatch.context() as m:
            m.setattr(time, "time", lambda: real() - age)
            wire = q.to_wire()
        return q, wire

    @pytest.mark.parametrize("age,fudge,ok", [
        (0, 300, True), (200, 65535, True), (-200, 65535, True),
        (50000, 65535, False), (-50000, 65535, False), (400, 65535, False),
        (200, 100, False),
    ])
    def test_window(self, keyed, monkeypatch, age, fudge, ok):
        q, wire = self._signed(monkeypatch, age, fudge)
        raw = keyed.raw_udp(wire)
        assert raw is not None
        if ok:
            r = dns.message.from_wire(raw, keyring=KEYRING, request_mac=q.mac)
            assert r.rcode() == dns.rcode.NOERROR and r.had_tsig
        else:
            with pytest.raises(dns.tsig.PeerBadTime):
                dns.message.from_wire(raw, keyring=KEYRING, request_mac=q.mac)


# ======================================================= item 11: tcp on reload

def tcp_connect(d, src="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.settimeout(3)
    s.connect((d.host, d.port))
    return s


def closed_by_peer(s, timeout):
    """True if the server closes s within timeout seconds."""
    s.settimeout(timeout)
    try:
        while True:
            if not s.recv(4096):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def tcp_query(s):
    q = dns.message.make_query("static.mesh.", "A")
    w = q.to_wire()
    s.sendall(struct.pack(">H", len(w)) + w)
    hdr = s.recv(2)
    if len(hdr) < 2:
        return False
    n = struct.unpack(">H", hdr)[0]
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            return False
        data += chunk
    return dns.message.from_wire(data).id == q.id


class TestTcpReload:
    """A reload applies tcp.idle-timeout and tcp.max-per-client to the
    running server (open connections included) and says that a changed
    tcp.max-clients needs a restart."""

    def test_reload_applies_tcp(self, dnsd):
        d = dnsd("tcp: {idle-timeout: 20s, max-clients: 32}\n" + SMALL_YAML)
        old = tcp_connect(d)
        assert tcp_query(old)
        start = len(d.log())
        assert d.reload("tcp: {idle-timeout: 400ms, max-clients: 64, max-per-client: 2}\n"
                        + SMALL_YAML)
        d.wait_log(r"max-clients 64 takes effect at the next start \(32 until then\)", start=start)
        d.wait_log(r"reload: tcp idle-timeout 400 ms, max-per-client 2", start=start)
        t0 = time.monotonic()
        assert closed_by_peer(old, 3.0), "an open connection kept the 20 s idle timeout"
        assert time.monotonic() - t0 < 1.5
        old.close()
        c = [tcp_connect(d, "127.0.142.7") for _ in range(3)]
        try:
            assert tcp_query(c[0]) and tcp_query(c[1])
            assert closed_by_peer(c[2], 1.0), "a third connection from one address was served"
        finally:
            for s in c:
                s.close()


# ======================================================= item 9: HTTP slowloris

def http_get(host, port, path, src, timeout=1.0):
    """One GET over a fresh connection from src; the status code, or None
    if no complete status line came within timeout."""
    try:
        with socket.create_connection((host, port), timeout=timeout,
                                      source_address=(src, 0)) as s:
            s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            parts = data.split(b" ", 2)
            return int(parts[1]) if len(parts) > 1 else None
    except OSError:
        return None


class TestHttpSlowloris:
    """80 connections from 10 addresses send a header byte every second
    (libmicrohttpd's own timeout restarts with each byte): /health keeps
    answering throughout, each slow connection is closed about 5 s after
    it opened (the header timeout), and an address gets 8 connections."""

    def test_slowloris(self, dnsd):
        d = dnsd(SMALL_YAML, args=["--http", "127.0.0.1:0"])
        m = d.wait_log(r"http status on http://([\d.]+):(\d+)/")
        host, port = m.group(1), int(m.group(2))
        assert http_get(host, port, "/health", "127.0.142.100") == 200
        slow = []
        t0 = time.monotonic()
        for i in range(80):
            s = socket.socket()
            s.bind(("127.0.142.%d" % (i % 10 + 1), 0))
            s.settimeout(1)
            try:
                s.connect((host, port))
                s.sendall(b"GET /metrics HTTP/1.1\r\n")
            except OSError:
                pass
            slow.append(s)
        closed_at = [None] * len(slow)
        probes, fails = 0, []
        while time.monotonic() - t0 < 8.0:
            for i, s in enumerate(slow):
                if closed_at[i] is not None:
                    continue
                try:
                    s.setblocking(False)
                    try:
                        if s.recv(4096) == b"":
                            closed_at[i] = time.monotonic() - t0
                            continue
                    except BlockingIOError:
                        pass
                    s.send(b"X")
                except OSError:
                    closed_at[i] = time.monotonic() - t0
            for path in ("/health", "/ready"):
                probes += 1
                t = time.monotonic()
                code = http_get(host, port, path, "127.0.142.100")
                if code != 200 or time.monotonic() - t > 0.9:
                    fails.append((round(t - t0, 1), path, code))
            time.sleep(0.5)
        for s in slow:
            s.close()
        assert not fails, "%d of %d probes failed: %r" % (len(fails), probes, fails[:5])
        assert all(c is not None for c in closed_at), \
            "%d slow connections still open after 8 s" % sum(c is None for c in closed_at)
        # 10 addresses x 8 per address: each address's extra ones go at once.
        assert sum(c < 1.0 for c in closed_at) >= 8, sorted(closed_at)


# ======================================================= item 12: /ready bound

READY_YAML = """\
zones:
  - name: mesh
    services:
      - name: slow
        ports: {http: 9}
        check: {type: tcp, interval: 10m, timeout: 1s}
        backends: [127.0.142.21, 127.0.142.22]
"""


def test_ready_bounded_by_twice_the_longest_timeout(dnsd):
    """A first probe comes at a random point of its first interval (up to
    10 minutes here): /ready does not wait for it longer than 2 x the
    longest check timeout (2 s), and says why it waits before that."""
    t0 = time.monotonic()
    d = dnsd(READY_YAML, args=["--http", "127.0.0.1:0"])
    m = d.wait_log(r"http status on http://([\d.]+):(\d+)/")
    host, port = m.group(1), int(m.group(2))
    first = http_get(host, port, "/ready", "127.0.0.1")
    elapsed_first = time.monotonic() - t0
    while True:
        code = http_get(host, port, "/ready", "127.0.0.1")
        if code == 200:
            break
        assert code == 503
        assert time.monotonic() - t0 < 5.0, "/ready still 503 after 5 s"
        time.sleep(0.05)
    took = time.monotonic() - t0
    if elapsed_first < 1.5:
        assert first == 503, "ready before any backend was probed"
    assert took >= 1.9, "ready after %.2f s, before the 2 s bound" % took

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

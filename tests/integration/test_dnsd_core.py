"""The authoritative core of dnsd, tested against a running process.

Every test starts a real dnsd (see dnsd_harness.py) on a free loopback port
with a configuration written here, and checks what comes back on the wire:
RCODEs and flags, the sections of positive, negative and referral answers,
truncation, TCP framing and connection handling, IPv6, the command line and
--check, reloads and signals, and survival of garbage input. No test depends
on a backend being reachable: the services have no health check (type none).

Run: /usr/bin/pytest -q tests/integration/test_dnsd_core.py
"""
import os
import re
import random
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from dnsd_harness import DNSD, Dnsd, answers, ipv6_loopback

# ---------------------------------------------------------------- configs

BIG_N = 60
BIG = ["10.0.0.%d" % i for i in range(1, BIG_N + 1)]
UDP_MAX = 3000

# Zone "mesh": SOA TTL 120 > minimum 60, so negative TTLs are 60.
# Zone "other.test": SOA TTL 30 < minimum 300, so negative TTLs are 30.
CORE_YAML = """\
tcp: {idle-timeout: 10s, max-clients: 64}
udp-max-payload: %(udp_max)d
zones:
  - name: mesh
    ttl: 300
    soa: {mname: ns1, rname: hostmaster@mesh, serial: 100, minimum: 60, ttl: 120}
    ns: [ns1, ns2]
    records:
      - {name: ns1, type: A, data: 127.0.0.1}
      - {name: ns1, type: AAAA, data: "::1"}
      - {name: ns2, type: A, data: 127.0.0.2}
      - {name: www, type: CNAME, data: user-service}
      - {name: alias1, type: CNAME, data: alias2}
      - {name: alias2, type: CNAME, data: static}
      - {name: dangling, type: CNAME, data: missing}
      - {name: tobig, type: CNAME, data: big}
      - {name: tobigtc, type: CNAME, data: bigtc}
      - {name: toother, type: CNAME, data: host.other.test.}
      - {name: external, type: CNAME, data: "www.example.org."}
      - {name: loop1, type: CNAME, data: loop2}
      - {name: loop2, type: CNAME, data: loop1}
      - {name: static, type: A, data: 192.0.2.1}
      - {name: static, type: AAAA, data: "2001:db8::1"}
      - {name: static, type: TXT, data: "hello world"}
      - {name: multi, type: TXT, data: '"v=spf1" "-all"'}
      - {name: "@", type: MX, data: "10 mail"}
      - {name: "@", type: TXT, data: "apex"}
      - {name: mail, type: A, data: 192.0.2.25}
      - {name: 1.2.0.192.rev, type: PTR, data: static}
      - {name: _sip._udp, type: SRV, data: "0 5 5060 static"}
      - {name: a.b.c.deep, type: A, data: 192.0.2.3}
      - {name: opaque, type: TYPE65280, data: "\\\\# 3 010203"}
      - {name: child, type: NS, data: ns.child}
      - {name: child, type: NS, data: ns.elsewhere.example.}
      - {name: ns.child, type: A, data: 192.0.2.53}
      - {name: ns.child, type: AAAA, data: "2001:db8::53"}
    services:
      - name: user-service
        ttl: 10
        ports: {http: 5000, metrics: {port: 9000, proto: udp}}
        check: {type: none}
        backends:
          - 127.0.0.11
          - {address: 127.0.0.12, name: u2}
          - {address: "fd00::5"}
      - name: nobackends
        ports: {http: 80}
      - name: big
        ttl: 5
        ports: {http: 80}
        backends: [%(big)s]
      - name: bigtc
        ttl: 5
        oversize: truncate
        ports: {http: 80}
        backends: [%(big)s]
  - name: other.test
    ttl: 30
    soa: {serial: 7, minimum: 300}
    ns: [ns.other.test.]
    records:
      - {name: ns, type: A, data: 192.0.2.99}
      - {name: host, type: A, data: 192.0.2.100}
""" % {"udp_max": UDP_MAX, "big": ", ".join(BIG)}

USER_V4 = ["127.0.0.11", "127.0.0.12"]
USER_V6 = ["fd00::5"]
USER_TARGETS = {
    "127-0-0-11.user-service.mesh.": ("A", "127.0.0.11"),
    "u2.user-service.mesh.": ("A", "127.0.0.12"),
    "fd00--5.user-service.mesh.": ("AAAA", "fd00::5"),
}

SMALL_YAML = """\
zones:
  - name: mesh
    records:
      - {name: static, type: A, data: 192.0.2.1}
"""

AA = dns.flags.AA
TC = dns.flags.TC
QR = dns.flags.QR


@pytest.fixture(scope="module")
def core(tmp_path_factory):
    """One dnsd serving CORE_YAML, shared by the read-only query tests."""
    d = Dnsd(tmp_path_factory.mktemp("core"), CORE_YAML).start()
    yield d
    rc = d.stop()
    assert rc == 0, "dnsd exited with %r:\n%s" % (rc, d.log())


# ---------------------------------------------------------------- helpers

def header(qid=0x1234, flags=0, qd=1, an=0, ns=0, ar=0):
    return struct.pack(">HHHHHH", qid, flags, qd, an, ns, ar)


def wire_name(text):
    return dns.name.from_text(text).to_wire()


def question(name="static.mesh.", qtype=1, qclass=1):
    raw = name if isinstance(name, bytes) else wire_name(name)
    return raw + struct.pack(">HH", qtype, qclass)


def opt_rr(payload=1232, version=0, owner=b"\x00", flags=0, rdata=b""):
    ttl = (version << 16) | flags
    return owner + struct.pack(">HHIH", 41, payload, ttl, len(rdata)) + rdata


def parse_header(data):
    qid, flags, qd, an, ns, ar = struct.unpack(">HHHHHH", data[:12])
    return {"id": qid, "flags": flags, "qr": bool(flags & 0x8000),
            "opcode": (flags >> 11) & 15, "aa": bool(flags & 0x0400),
            "tc": bool(flags & 0x0200), "rcode": flags & 15,
            "qd": qd, "an": an, "ns": ns, "ar": ar}


def rrsets(section, rdtype):
    return [r for r in section if r.rdtype == dns.rdatatype.from_text(rdtype)]


def soa_of(msg):
    """The single SOA rrset of the authority section."""
    soas = rrsets(msg.authority, "SOA")
    assert len(soas) == 1, msg.to_text()
    return soas[0]


def frame(data):
    return struct.pack(">H", len(data)) + data


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def recv_frame(sock):
    (n,) = struct.unpack(">H", recv_exact(sock, 2))
    return recv_exact(sock, n)


def tcp_connect(d, timeout=2.0, where=0):
    host, port = d.addrs[where]
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((host, port))
    return s


def closed_by_peer(sock, timeout):
    """True if the peer closes the connection within timeout seconds."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def still_serving(d):
    """dnsd is alive and answers correctly over UDP and TCP."""
    assert d.proc.poll() is None, "dnsd died:\n" + d.log()
    for tcp in (False, True):
        r = d.query("static.mesh.", "A", tcp=tcp)
        assert r.rcode() == dns.rcode.NOERROR
        assert answers(r, "A") == ["192.0.2.1"]


# ======================================================= negative answers

class TestNegative:
    """NXDOMAIN and NODATA are authoritative, carry the zone's SOA with the
    RFC 2308 TTL min(SOA TTL, SOA MINIMUM), and are told apart correctly,
    including for empty non-terminals."""

    @pytest.mark.parametrize("name", [
        "nope.mesh.", "x.static.mesh.", "x.c.deep.mesh.", "nope.user-service.mesh.",
        "_nope._tcp.user-service.mesh.", "zz.x.y.mesh.",
    ])
    def test_nxdomain(self, core, name):
        r = core.query(name, "A")
        assert r.rcode() == dns.rcode.NXDOMAIN
        assert r.flags & AA
        assert not r.answer
        soa = soa_of(r)
        assert soa.name == dns.name.from_text("mesh.")
        assert soa.ttl == 60, "min(SOA TTL 120, minimum 60)"
        assert soa[0].serial == 100 and soa[0].minimum == 60

    @pytest.mark.parametrize("name,qtype", [
        ("static.mesh.", "MX"),             # a name with other types
        ("mesh.", "A"),                     # the apex
        ("deep.mesh.", "A"),                # empty non-terminals
        ("c.deep.mesh.", "TXT"),
        ("b.c.deep.mesh.", "A"),
        ("_tcp.user-service.mesh.", "SRV"),  # ENT of the SRV names
        ("_udp.user-service.mesh.", "A"),
        ("user-service.mesh.", "TXT"),      # a service, unsupported type
        ("user-service.mesh.", "MX"),
        ("nobackends.mesh.", "A"),          # a service without backends
        ("nobackends.mesh.", "AAAA"),
        ("_http._tcp.user-service.mesh.", "A"),
        ("u2.user-service.mesh.", "AAAA"),  # SRV target of an IPv4 backend
        ("mesh.", "TYPE0"),
    ])
    def test_nodata(self, core, name, qtype):
        r = core.query(name, qtype)
        assert r.rcode() == dns.rcode.NOERROR, r.to_text()
        assert r.flags & AA
        assert not r.answer, r.to_text()
        soa = soa_of(r)
        assert soa.name == dns.name.from_text("mesh.")
        assert soa.ttl == 60

    def test_negative_ttl_is_soa_ttl_when_smaller(self, core):
        """other.test: SOA TTL 30 < minimum 300, so 30 (not the minimum)."""
        r = core.query("nope.other.test.", "A")
        assert r.rcode() == dns.rcode.NXDOMAIN and r.flags & AA
        soa = soa_of(r)
        assert soa.name == dns.name.from_text("other.test.")
        assert soa.ttl == 30 and soa[0].minimum == 300
        r = core.query("host.other.test.", "AAAA")
        assert r.rcode() == dns.rcode.NOERROR and not r.answer
        assert soa_of(r).ttl == 30

    def test_soa_answer_keeps_its_own_ttl(self, core):
        """The SOA asked for directly has its TTL, not the negative TTL."""
        r = core.query("mesh.", "SOA")
        assert r.rcode() == 0 and r.flags & AA
        (soa,) = rrsets(r.answer, "SOA")
        assert soa.ttl == 120
        assert soa[0].mname == dns.name.from_text("ns1.mesh.")
        assert soa[0].rname == dns.name.from_text("hostmaster.mesh.")
        assert soa[0].serial == 100

    @pytest.mark.parametrize("name", [
        "example.org.", "com.", ".", "mesh.example.", "xmesh.", "test.", "localhost.",
    ])
    def test_refused_outside_zones(self, core, name):
        r = core.query(name, "A")
        assert r.rcode() == dns.rcode.REFUSED
        assert not r.flags & AA
        assert not r.answer and not r.authority

    def test_cname_to_missing_name_is_nxdomain(self, core):
        """RFC 6604: the RCODE is that of the last name in the chain."""
        r = core.query("dangling.mesh.", "A")
        assert r.rcode() == dns.rcode.NXDOMAIN
        assert r.flags & AA
        assert answers(r, "CNAME") == ["missing.mesh."]
        assert soa_of(r).ttl == 60

    def test_axfr_refused_over_tcp(self, core):
        r = core.query("mesh.", "AXFR", tcp=True)
        assert r.rcode() == dns.rcode.REFUSED
        assert not r.answer

    @pytest.mark.parametrize("tcp", [False, True])
    def test_ixfr_refused(self, core, tcp):
        """An IXFR request carries the client's SOA in authority (RFC 1995
        3); it is refused like AXFR, not taken for a malformed query."""
        q = dns.message.make_query("mesh.", "IXFR")
        q.authority.append(dns.rrset.from_text(
            "mesh.", 0, "IN", "SOA", "ns1.mesh. hostmaster.mesh. 5 3600 600 86400 60"))
        r = core.send(q, tcp=tcp)
        assert r.rcode() == dns.rcode.REFUSED
        assert not r.answer


# ======================================================= malformed requests

class TestMalformed:
    """Requests that are not plain queries: unknown opcodes get NOTIMP,
    malformed ones FORMERR (with the ID and opcode echoed), EDNS errors
    FORMERR or BADVERS, and responses (QR=1) or headerless junk nothing."""

    @pytest.mark.parametrize("opcode", [1, 2, 3, 4, 6, 15])   # 5: UPDATE, test_update.py
    def test_unknown_opcode_notimp(self, core, opcode):
        raw = core.raw_udp(header(qid=0xbeef, flags=(opcode << 11) | 0x0100) + question())
        assert raw is not None, "no answer to opcode %d" % opcode
        h = parse_header(raw)
        assert h["id"] == 0xbeef and h["qr"]
        assert h["opcode"] == opcode
        assert h["rcode"] == dns.rcode.NOTIMP
        assert not h["aa"] and h["an"] == 0 and h["ns"] == 0

    @pytest.mark.parametrize("label,data", [
        ("qdcount 0", header(qd=0)),
        ("qdcount 2", header(qd=2) + question() + question("mail.mesh.")),
        ("label of 64", header() + question(b"\x40" + b"a" * 64 + wire_name("mesh."))),
        ("label type 01", header() + question(b"\x41" + b"a" * 1 + b"\x00")),
        ("pointer to itself", header() + b"\xc0\x0c" + struct.pack(">HH", 1, 1)),
        ("pointer loop", header() + b"\x01a\xc0\x0c" + struct.pack(">HH", 1, 1)),
        ("forward pointer", header() + b"\xc0\x0e\x00" + struct.pack(">HH", 1, 1)),
        ("truncated qtype", (header() + question())[:-3]),
        ("truncated name", header() + b"\x06stat"),
        ("no question", header()),
        ("trailing byte", header() + question() + b"x"),
        ("name of 256", header() + question(b"\x3f" + b"a" * 63 + b"\x3f" + b"b" * 63
                                            + b"\x3f" + b"c" * 63 + b"\x39" + b"d" * 57
                                            + wire_name("mesh."))),
        ("answer count without rr", header(an=1) + question()),
        ("two OPT", header(ar=2) + question() + opt_rr() + opt_rr()),
        ("OPT non-root owner", header(ar=1) + question() + opt_rr(owner=b"\x01a\x00")),
        ("OPT in answer", header(an=1) + question() + opt_rr()),
        ("OPT bad option", header(ar=1) + question() + opt_rr(rdata=b"\x00\x0a\x00\x05abc")),
        ("COOKIE of 5 bytes", header(ar=1) + question() + opt_rr(rdata=b"\x00\x0a\x00\x05abcde")),
        ("ECS scope set", header(ar=1) + question()
         + opt_rr(rdata=b"\x00\x08\x00\x07\x00\x01\x18\x18\x0a\x01\x02")),
        ("TSIG not last", header(ar=2) + question() + b"\x00" + struct.pack(">HHIH", 250, 255, 0, 0)
         + opt_rr()),
        ("arcount past end", header(ar=1) + question()),
    ])
    def test_formerr(self, core, label, data):
        raw = core.raw_udp(data)
        assert raw is not None, "no answer to " + label
        h = parse_header(raw)
        assert h["id"] == 0x1234 and h["qr"], label
        assert h["rcode"] == dns.rcode.FORMERR, label
        assert h["an"] == 0 and h["ns"] == 0 and not h["aa"], label
        dns.message.from_wire(raw)   # well-formed itself

    def test_name_of_255_is_valid(self, core):
        """The longest legal name parses (and does not exist)."""
        name = (b"\x3f" + b"a" * 63 + b"\x3f" + b"b" * 63 + b"\x3f" + b"c" * 63
                + b"\x38" + b"d" * 56 + wire_name("mesh."))
        assert len(name) == 255
        raw = core.raw_udp(header() + question(name))
        h = parse_header(raw)
        assert h["rcode"] == dns.rcode.NXDOMAIN and h["aa"]

    @pytest.mark.parametrize("data", [
        b"",
        b"\x12",
        header()[:11],
        header(flags=0x8000) + question(),             # a response
        header(flags=0x8000 | (3 << 11)) + question(),
        header(flags=0x8000, qd=2),
    ])
    def test_not_answered(self, core, data):
        assert core.raw_udp(data, timeout=0.3) is None
        still_serving(core)

    def test_badvers(self, core):
        """RFC 6891 6.1.3: EDNS version 1 gets BADVERS (extended RCODE 16)
        with an OPT of version 0 and no data."""
        q = dns.message.make_query("static.mesh.", "A")
        q.use_edns(1)          # make_query's use_edns=1 means "on", not version 1
        r = core.send(q)
        assert r.rcode() == dns.rcode.BADVERS
        assert r.edns == 0
        assert not r.answer
        raw = core.raw_udp(header(ar=1) + question() + opt_rr(version=1))
        h = parse_header(raw)
        assert h["rcode"] == 0 and h["ar"] == 1   # low bits 0, high bits in OPT
        m = dns.message.from_wire(raw)
        assert m.rcode() == dns.rcode.BADVERS

    def test_edns_echo(self, core):
        """An EDNS query gets OPT back, with our payload size and the DO bit."""
        r = core.query("static.mesh.", "A", use_edns=0, payload=4096, want_dnssec=True)
        assert r.rcode() == 0 and r.edns == 0
        assert r.payload == UDP_MAX
        assert r.ednsflags & dns.flags.DO
        r = core.query("static.mesh.", "A")
        assert r.edns == -1, "no OPT without EDNS in the query"

    def test_unknown_class_refused(self, core):
        r = core.query("static.mesh.", "A", rdclass="HS")
        assert r.rcode() == dns.rcode.REFUSED and not r.answer


# ======================================================= positive answers

class TestApex:
    """SOA and NS at the apex, with the name servers' addresses as
    additional data; ANY gets one RRset (RFC 8482)."""

    def test_ns(self, core):
        r = core.query("mesh.", "NS")
        assert r.rcode() == 0 and r.flags & AA
        assert answers(r, "NS") == ["ns1.mesh.", "ns2.mesh."]
        add = {(rs.name.to_text(), dns.rdatatype.to_text(rs.rdtype)): sorted(x.to_text() for x in rs)
               for rs in r.additional}
        assert add == {("ns1.mesh.", "A"): ["127.0.0.1"], ("ns1.mesh.", "AAAA"): ["::1"],
                       ("ns2.mesh.", "A"): ["127.0.0.2"]}

    def test_other_zone_apex(self, core):
        r = core.query("other.test.", "SOA")
        (soa,) = rrsets(r.answer, "SOA")
        assert soa[0].serial == 7 and soa.ttl == 30
        r = core.query("other.test.", "NS")
        assert answers(r, "NS") == ["ns.other.test."]
        assert any(rs.name.to_text() == "ns.other.test." for rs in r.additional)

    @pytest.mark.parametrize("name", ["mesh.", "static.mesh.", "user-service.mesh.",
                                      "_http._tcp.user-service.mesh.", "multi.mesh."])
    @pytest.mark.parametrize("tcp", [False, True])
    def test_any_is_minimal(self, core, name, tcp):
        r = core.query(name, "ANY", tcp=tcp)
        assert r.rcode() == 0 and r.flags & AA
        assert len(r.answer) == 1, r.to_text()
        assert r.answer[0].name == dns.name.from_text(name)


class TestServices:
    """A service answers A, AAAA and SRV at its name and SRV at
    _port._proto.service, with the SRV targets' addresses as additional data
    and the service's TTL."""

    def test_a(self, core):
        r = core.query("user-service.mesh.", "A")
        assert r.rcode() == 0 and r.flags & AA
        assert answers(r, "A") == USER_V4
        assert all(rs.ttl == 10 for rs in r.answer)
        assert len(r.answer) == 1

    def test_aaaa(self, core):
        r = core.query("user-service.mesh.", "AAAA")
        assert r.rcode() == 0 and r.flags & AA
        assert answers(r, "AAAA") == USER_V6
        assert r.answer[0].ttl == 10

    def _check_srv(self, r, ports):
        assert r.rcode() == 0 and r.flags & AA
        (srv,) = rrsets(r.answer, "SRV")
        assert srv.ttl == 10
        got = sorted((x.port, x.target.to_text()) for x in srv)
        assert got == sorted((p, t) for p in ports for t in USER_TARGETS)
        assert all(x.priority == 0 and x.weight == 100 for x in srv)
        add = {}
        for rs in r.additional:
            for x in rs:
                add[rs.name.to_text()] = (dns.rdatatype.to_text(rs.rdtype), x.to_text())
        assert add == USER_TARGETS

    @pytest.mark.parametrize("tcp", [False, True])
    def test_srv_at_service(self, core, tcp):
        self._check_srv(core.query("user-service.mesh.", "SRV", tcp=tcp), [5000, 9000])

    def test_srv_per_port(self, core):
        self._check_srv(core.query("_http._tcp.user-service.mesh.", "SRV"), [5000])
        self._check_srv(core.query("_metrics._udp.user-service.mesh.", "SRV"), [9000])
        r = core.query("_metrics._tcp.user-service.mesh.", "SRV")
        assert r.rcode() == dns.rcode.NXDOMAIN, "metrics is a udp port"

    @pytest.mark.parametrize("target", sorted(USER_TARGETS))
    def test_srv_targets_resolve(self, core, target):
        rdtype, addr = USER_TARGETS[target]
        r = core.query(target, rdtype)
        assert r.rcode() == 0 and r.flags & AA
        assert answers(r, rdtype) == [addr]

    def test_big_service_over_tcp(self, core):
        r = core.query("big.mesh.", "A", tcp=True)
        assert answers(r, "A") == sorted(BIG)
        assert not r.flags & TC
        assert r.answer[0].ttl == 5


class TestStatic:
    """Static records of every listed type come back as written, with the
    targets' addresses in additional, and in-zone CNAMEs are followed."""

    @pytest.mark.parametrize("name,qtype,want", [
        ("static.mesh.", "A", ["192.0.2.1"]),
        ("static.mesh.", "AAAA", ["2001:db8::1"]),
        ("static.mesh.", "TXT", ['"hello world"']),
        ("multi.mesh.", "TXT", ['"v=spf1" "-all"']),
        ("mesh.", "TXT", ['"apex"']),
        ("mesh.", "MX", ["10 mail.mesh."]),
        ("1.2.0.192.rev.mesh.", "PTR", ["static.mesh."]),
        ("_sip._udp.mesh.", "SRV", ["0 5 5060 static.mesh."]),
        ("opaque.mesh.", "TYPE65280", ["\\# 3 010203"]),
        ("www.mesh.", "CNAME", ["user-service.mesh."]),
    ])
    def test_record(self, core, name, qtype, want):
        r = core.query(name, qtype)
        assert r.rcode() == 0 and r.flags & AA
        assert answers(r, qtype) == want
        assert len(r.answer) == 1
        assert r.answer[0].ttl == 300

    def test_mx_additional(self, core):
        r = core.query("mesh.", "MX")
        assert [(rs.name.to_text(), x.to_text()) for rs in r.additional for x in rs] == \
            [("mail.mesh.", "192.0.2.25")]

    def test_srv_additional(self, core):
        r = core.query("_sip._udp.mesh.", "SRV")
        got = sorted(x.to_text() for rs in r.additional if rs.name.to_text() == "static.mesh."
                     for x in rs)
        assert got == ["192.0.2.1", "2001:db8::1"]

    def test_cname_to_service(self, core):
        r = core.query("www.mesh.", "A")
        assert r.rcode() == 0 and r.flags & AA
        assert [rs.name.to_text() for rs in r.answer] == ["www.mesh.", "user-service.mesh."]
        assert answers(r, "CNAME") == ["user-service.mesh."]
        assert answers(r, "A") == USER_V4

    def test_cname_chain(self, core):
        r = core.query("alias1.mesh.", "AAAA")
        assert r.rcode() == 0 and r.flags & AA
        assert [(rs.name.to_text(), dns.rdatatype.to_text(rs.rdtype)) for rs in r.answer] == [
            ("alias1.mesh.", "CNAME"), ("alias2.mesh.", "CNAME"), ("static.mesh.", "AAAA")]
        assert answers(r, "AAAA") == ["2001:db8::1"]

    def test_cname_into_other_zone(self, core):
        r = core.query("toother.mesh.", "A")
        assert r.rcode() == 0
        assert answers(r, "A") == ["192.0.2.100"]

    def test_cname_out_of_zones(self, core):
        """The chain stops at a name we do not serve: NOERROR, CNAME only."""
        r = core.query("external.mesh.", "A")
        assert r.rcode() == dns.rcode.NOERROR and r.flags & AA
        assert answers(r) == ["www.example.org."]
        assert not r.authority

    def test_cname_loop_each_record_once(self, core):
        """A CNAME loop ends at the first repeated name: no RR twice
        (RFC 2181 5; dnspython would merge duplicates, so count raw)."""
        raw = core.raw_udp(dns.message.make_query("loop1.mesh.", "A").to_wire())
        h = parse_header(raw)
        assert h["rcode"] == 0 and h["an"] == 2, h
        r = dns.message.from_wire(raw)
        assert [(rs.name.to_text(), x.to_text()) for rs in r.answer for x in rs] == [
            ("loop1.mesh.", "loop2.mesh."), ("loop2.mesh.", "loop1.mesh.")]

    def test_cname_query_not_followed(self, core):
        r = core.query("alias1.mesh.", "CNAME")
        assert answers(r) == ["alias2.mesh."]


class TestDelegation:
    """NS below the apex is a zone cut: at and below it the answer is a
    referral (NS in authority, glue in additional, no AA); DS is answered
    from the parent side."""

    @pytest.mark.parametrize("name,qtype", [
        ("child.mesh.", "NS"), ("child.mesh.", "A"), ("x.child.mesh.", "A"),
        ("a.b.child.mesh.", "TXT"), ("ns.child.mesh.", "A"),
    ])
    @pytest.mark.parametrize("tcp", [False, True])
    def test_referral(self, core, name, qtype, tcp):
        r = core.query(name, qtype, tcp=tcp)
        assert r.rcode() == dns.rcode.NOERROR
        assert not r.flags & AA
        assert not r.answer
        (ns,) = r.authority
        assert ns.name == dns.name.from_text("child.mesh.")
        assert ns.rdtype == dns.rdatatype.NS
        assert sorted(x.to_text() for x in ns) == ["ns.child.mesh.", "ns.elsewhere.example."]
        glue = sorted((rs.name.to_text(), x.to_text()) for rs in r.additional for x in rs)
        assert glue == [("ns.child.mesh.", "192.0.2.53"), ("ns.child.mesh.", "2001:db8::53")]

    def test_ds_at_cut_from_parent(self, core):
        r = core.query("child.mesh.", "DS")
        assert r.rcode() == dns.rcode.NOERROR and r.flags & AA
        assert not r.answer
        assert soa_of(r).ttl == 60


class TestCase:
    """Names match without regard to case, and the answer repeats the
    question exactly as asked (0x20 mixed case)."""

    @pytest.mark.parametrize("name,qtype", [
        ("StAtIc.MeSh.", "A"), ("USER-SERVICE.mesh.", "A"), ("_HTTP._Tcp.User-Service.MESH.", "SRV"),
        ("wWw.MeSh.", "A"), ("NoPe.mEsH.", "A"), ("MESH.", "SOA"),
    ])
    def test_case_preserved(self, core, name, qtype):
        r = core.query(name, qtype)
        assert r.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN)
        want = dns.name.from_text(name).labels
        assert r.question[0].name.labels == want
        if r.answer:
            assert r.answer[0].name.labels == want, "owner of the first answer"
        else:
            assert r.rcode() == dns.rcode.NXDOMAIN
        lower = core.query(name.lower(), qtype)
        # Same data (names inside it may be compressed against the
        # question, so their case may follow it).
        assert len(r.answer) == len(lower.answer)
        if qtype != "SRV":      # SRV order follows the policy
            assert [a.lower() for a in answers(r)] == [a.lower() for a in answers(lower)]

    def test_case_raw_bytes(self, core):
        """The question and answer owner are byte-identical to the query's."""
        q = header(qid=7) + question(b"\x06sTaTiC\x04MESH\x00")
        raw = core.raw_udp(q)
        assert raw[12:12 + 13] == b"\x06sTaTiC\x04MESH\x00"
        m = dns.message.from_wire(raw)
        assert m.answer[0].name.labels == (b"sTaTiC", b"MESH", b"")


class TestChaos:
    """CH TXT version.bind and version.server name the software; other CH
    names outside the services are refused."""

    @pytest.mark.parametrize("name", ["version.bind.", "VERSION.BIND.", "version.server."])
    @pytest.mark.parametrize("tcp", [False, True])
    def test_version(self, core, name, tcp):
        r = core.query(name, "TXT", rdclass="CH", tcp=tcp)
        assert r.rcode() == 0
        (rs,) = r.answer
        assert rs.rdclass == dns.rdataclass.CH and rs.rdtype == dns.rdatatype.TXT
        assert rs.name.labels == dns.name.from_text(name).labels
        text = b"".join(rs[0].strings).decode()
        assert text.startswith("meshdns ")

    def test_other_chaos_refused(self, core):
        r = core.query("hostname.bind.", "TXT", rdclass="CH")
        assert r.rcode() == dns.rcode.REFUSED and not r.answer


# ======================================================= truncation

class TestTruncation:
    """UDP answers fit the client's size (512 without EDNS, its EDNS payload
    otherwise, never above udp-max-payload): with oversize: truncate, an
    answer that does not fit is cut at an RRset boundary with TC set;
    additional data is dropped without TC. TCP carries the whole answer."""

    @staticmethod
    def _whole_rrsets(r):
        for rs in r.answer:
            if rs.rdtype == dns.rdatatype.A and rs.name.to_text() == "bigtc.mesh.":
                assert len(rs) == BIG_N, "a partial RRset in a truncated answer"

    def test_no_edns_truncated(self, core):
        q = dns.message.make_query("bigtc.mesh.", "A")
        raw = core.raw_udp(q.to_wire())
        assert raw is not None and len(raw) <= 512
        r = dns.message.from_wire(raw)
        assert r.id == q.id
        assert r.flags & TC and r.flags & AA
        assert r.rcode() == 0
        self._whole_rrsets(r)
        assert len(answers(r)) in (0, BIG_N)

    def test_truncated_after_cname(self, core):
        """The CNAME fits, the service's RRset does not: the answer keeps
        the CNAME only, with TC."""
        raw = core.raw_udp(dns.message.make_query("tobigtc.mesh.", "A").to_wire())
        assert len(raw) <= 512
        r = dns.message.from_wire(raw)
        assert r.flags & TC
        self._whole_rrsets(r)
        assert answers(r, "CNAME") == ["bigtc.mesh."]
        assert not answers(r, "A")

    def test_no_edns_tcp_complete(self, core):
        r = core.query("tobig.mesh.", "A", tcp=True)
        assert not r.flags & TC
        assert answers(r, "CNAME") == ["big.mesh."]
        assert answers(r, "A") == sorted(BIG)

    @pytest.mark.parametrize("payload", [512, 600, 900])
    def test_small_edns_payload(self, core, payload):
        q = dns.message.make_query("bigtc.mesh.", "A", use_edns=0, payload=payload)
        raw = core.raw_udp(q.to_wire())
        assert len(raw) <= payload
        r = dns.message.from_wire(raw)
        assert r.flags & TC
        assert r.edns == 0, "OPT kept in a truncated answer"
        self._whole_rrsets(r)

    def test_payload_below_512_means_512(self, core):
        q = dns.message.make_query("static.mesh.", "A", use_edns=0, payload=100)
        raw = core.raw_udp(q.to_wire())
        r = dns.message.from_wire(raw)
        assert not r.flags & TC and answers(r, "A") == ["192.0.2.1"]
        q = dns.message.make_query("big.mesh.", "A", use_edns=0, payload=100)
        raw = core.raw_udp(q.to_wire())
        assert 100 < len(raw) <= 512 or dns.message.from_wire(raw).flags & TC

    def test_edns_payload_large_enough(self, core):
        q = dns.message.make_query("big.mesh.", "A", use_edns=0, payload=1232)
        raw = core.raw_udp(q.to_wire())
        assert 512 < len(raw) <= 1232
        r = dns.message.from_wire(raw)
        assert not r.flags & TC
        assert answers(r, "A") == sorted(BIG)

    def test_additional_dropped_without_tc(self, core):
        """60 SRV records (2.2 KB: targets are never compressed) fit in
        udp-max-payload, their 60 target addresses do not: the client's 4096
        is capped, additional is cut, no TC."""
        q = dns.message.make_query("_http._tcp.big.mesh.", "SRV", use_edns=0, payload=4096)
        raw = core.raw_udp(q.to_wire())
        assert len(raw) <= UDP_MAX, "udp-max-payload caps the client's payload"
        r = dns.message.from_wire(raw)
        assert not r.flags & TC
        assert len(answers(r, "SRV")) == BIG_N
        addl = [rs for rs in r.additional]
        assert 0 < sum(len(rs) for rs in addl) < BIG_N
        targets = {x.target for x in r.answer[0]}
        for rs in addl:
            assert rs.name in targets
            assert len(rs) == 1
        t = core.query("_http._tcp.big.mesh.", "SRV", tcp=True)
        assert len(answers(t, "SRV")) == BIG_N
        assert sum(len(rs) for rs in t.additional) == BIG_N

    def test_srv_does_not_fit(self, core):
        q = dns.message.make_query("_http._tcp.bigtc.mesh.", "SRV", use_edns=0, payload=1232)
        raw = core.raw_udp(q.to_wire())
        assert len(raw) <= 1232
        r = dns.message.from_wire(raw)
        assert r.flags & TC
        assert not answers(r, "SRV")


class TestOversizeSubset:
    """oversize: subset (the default): a service answer that does not fit
    the client's UDP size carries the policy's first backends that fit,
    without TC, so a client with no TCP fallback (musl before 1.2.4) still
    gets addresses; TCP and a large enough EDNS size get them all."""

    @pytest.mark.parametrize("payload", [None, 600, 900])
    def test_a_subset(self, core, payload):
        if payload is None:
            q = dns.message.make_query("big.mesh.", "A")
        else:
            q = dns.message.make_query("big.mesh.", "A", use_edns=0, payload=payload)
        raw = core.raw_udp(q.to_wire())
        assert len(raw) <= (payload or 512)
        r = dns.message.from_wire(raw)
        assert not r.flags & TC and r.flags & AA and r.rcode() == 0
        got = answers(r, "A")
        assert len(set(got)) == len(got) and set(got) <= set(BIG)
        # Records of 16 bytes after 26 of header and question (and OPT).
        room = (payload or 512) - 26 - (11 if payload else 0)
        assert len(got) == room // 16

    def test_cname_then_subset(self, core):
        r = dns.message.from_wire(core.raw_udp(dns.message.make_query("tobig.mesh.", "A")
                                               .to_wire()))
        assert not r.flags & TC
        assert answers(r, "CNAME") == ["big.mesh."]
        assert 20 < len(answers(r, "A")) < BIG_N

    def test_srv_subset(self, core):
        q = dns.message.make_query("_http._tcp.big.mesh.", "SRV", use_edns=0, payload=1232)
        raw = core.raw_udp(q.to_wire())
        assert len(raw) <= 1232
        r = dns.message.from_wire(raw)
        assert not r.flags & TC
        srv = answers(r, "SRV")
        assert 20 < len(srv) < BIG_N and len(set(srv)) == len(srv)
        targets = {x.target for x in r.answer[0]}
        assert all(rs.name in targets for rs in r.additional)

    def test_subset_spreads(self, core):
        """Weighted policy: each answer is a fresh draw, so 20 answers of 30
        cover nearly all 60 backends."""
        seen = set()
        for _ in range(20):
            r = dns.message.from_wire(core.raw_udp(dns.message.make_query("big.mesh.", "A")
                                                   .to_wire()))
            seen |= set(answers(r, "A"))
        assert len(seen) >= 55


# ======================================================= TCP

TCP_YAML = """\
tcp: {idle-timeout: 700ms, max-clients: 3}
zones:
  - name: mesh
    records:
      - {name: static, type: A, data: 192.0.2.1}
    services:
      - name: svc
        ports: {http: 80}
        backends: [127.0.0.5, 127.0.0.6]
"""


class TestTcp:
    """RFC 7766: several length-prefixed queries on one connection are all
    answered, in order, however the bytes are split; responses and junk in
    between do not end the connection; an idle connection is closed after
    tcp.idle-timeout; at most tcp.max-clients connections are open."""

    QUERIES = [("static.mesh.", "A"), ("user-service.mesh.", "A"), ("nope.mesh.", "A"),
               ("mesh.", "SOA"), ("example.org.", "A"), ("user-service.mesh.", "SRV"),
               ("big.mesh.", "A")]

    def _expect(self, m, name, qtype):
        assert m.question[0].name == dns.name.from_text(name)
        assert m.question[0].rdtype == dns.rdatatype.from_text(qtype)
        want = {"nope.mesh.": dns.rcode.NXDOMAIN, "example.org.": dns.rcode.REFUSED}
        assert m.rcode() == want.get(name, dns.rcode.NOERROR)

    def test_pipelined_in_order(self, core):
        qs = [dns.message.make_query(n, t) for n, t in self.QUERIES * 3]
        for i, q in enumerate(qs):
            q.id = 1000 + i
        with tcp_connect(core) as s:
            s.sendall(b"".join(frame(q.to_wire()) for q in qs))
            for i, q in enumerate(qs):
                m = dns.message.from_wire(recv_frame(s))
                assert m.id == q.id, "answer %d out of order" % i
                self._expect(m, *self.QUERIES[i % len(self.QUERIES)])

    def test_split_writes(self, core):
        """A query split byte by byte, then two in one segment."""
        q1 = dns.message.make_query("static.mesh.", "A")
        q2 = dns.message.make_query("user-service.mesh.", "A")
        q3 = dns.message.make_query("mesh.", "NS")
        with tcp_connect(core) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for b in frame(q1.to_wire()):
                s.send(bytes([b]))
                time.sleep(0.002)
            s.sendall(frame(q2.to_wire()) + frame(q3.to_wire()))
            ids = [dns.message.from_wire(recv_frame(s)).id for _ in range(3)]
            assert ids == [q1.id, q2.id, q3.id]

    def test_dropped_and_formerr_keep_connection(self, core):
        """A response (QR=1) gets no answer and junk gets FORMERR; the
        queries around them are still answered in order."""
        q1 = dns.message.make_query("static.mesh.", "A")
        q2 = dns.message.make_query("mesh.", "SOA")
        resp = header(qid=0x4444, flags=0x8000) + question()
        junk = header(qid=0x5555) + b"\xff\xff\xff"
        with tcp_connect(core) as s:
            s.sendall(frame(q1.to_wire()) + frame(resp) + frame(junk) + frame(q2.to_wire()))
            got = [dns.message.from_wire(recv_frame(s)) for _ in range(3)]
        assert [m.id for m in got] == [q1.id, 0x5555, q2.id]
        assert got[1].rcode() == dns.rcode.FORMERR

    def test_half_close_still_answered(self, core):
        q = [dns.message.make_query("static.mesh.", "A") for _ in range(3)]
        with tcp_connect(core) as s:
            s.sendall(b"".join(frame(x.to_wire()) for x in q))
            s.shutdown(socket.SHUT_WR)
            assert [dns.message.from_wire(recv_frame(s)).id for _ in q] == [x.id for x in q]
            assert closed_by_peer(s, 2.0)

    def test_idle_timeout(self, dnsd):
        d = dnsd(TCP_YAML)
        t0 = time.monotonic()
        with tcp_connect(d) as s:
            assert closed_by_peer(s, 3.0), "idle connection not closed"
            waited = time.monotonic() - t0
        assert 0.5 <= waited <= 2.5, "closed after %.2fs, idle-timeout is 0.7s" % waited

    def test_idle_timer_restarts_on_query(self, dnsd):
        d = dnsd(TCP_YAML)
        q = dns.message.make_query("static.mesh.", "A")
        with tcp_connect(d) as s:
            for _ in range(4):      # 4 x 0.4 s > 0.7 s: kept open by the queries
                time.sleep(0.4)
                s.sendall(frame(q.to_wire()))
                assert dns.message.from_wire(recv_frame(s)).id == q.id
            assert closed_by_peer(s, 3.0)

    def test_max_clients(self, dnsd):
        """At most 3 connections are open: a 4th takes the place of the
        least recently active one (issue 14 item 8), the others go on."""
        d = dnsd(TCP_YAML)
        q = dns.message.make_query("static.mesh.", "A")
        held = []
        try:
            for _ in range(3):
                s = tcp_connect(d)
                s.sendall(frame(q.to_wire()))
                assert dns.message.from_wire(recv_frame(s)).id == q.id
                held.append(s)
                time.sleep(0.05)
            # held[0] is the least recently active: a query on the others.
            for s in held[1:]:
                s.sendall(frame(q.to_wire()))
                assert dns.message.from_wire(recv_frame(s)).id == q.id
            extra = tcp_connect(d)
            held.append(extra)
            extra.sendall(frame(q.to_wire()))
            assert dns.message.from_wire(recv_frame(extra)).id == q.id, "4th not served"
            assert closed_by_peer(held[0], 0.5), "the least recently active one stayed open"
            for s in held[1:]:
                s.sendall(frame(q.to_wire()))
                assert dns.message.from_wire(recv_frame(s)).id == q.id
            d.wait_log(r"max-clients")
        finally:
            for s in held:
                s.close()

    def test_backpressure(self, core):
        """A client that sends many queries before reading any answer
        (over 1 MB of answers) still gets every one, in order."""
        n = 1200
        qs = [dns.message.make_query("big.mesh." if i % 2 else "static.mesh.", "A")
              for i in range(n)]
        for i, q in enumerate(qs):
            q.id = i
        data = b"".join(frame(q.to_wire()) for q in qs)
        with tcp_connect(core, timeout=10) as s:
            sender = threading.Thread(target=s.sendall, args=(data,))
            sender.start()
            time.sleep(0.3)      # let dnsd fill its output buffer and stall
            for i in range(n):
                m = dns.message.from_wire(recv_frame(s))
                assert m.id == i
                assert len(answers(m, "A")) == (BIG_N if i % 2 else 1)
            sender.join()

    def test_slow_partial_query_times_out(self, dnsd):
        """Bytes that never complete a query do not keep a connection open
        past the idle timeout."""
        d = dnsd(TCP_YAML)
        q = frame(dns.message.make_query("static.mesh.", "A").to_wire())
        t0 = time.monotonic()
        with tcp_connect(d) as s:
            closed = False
            for b in q[:-1]:
                try:
                    s.send(bytes([b]))
                except OSError:
                    closed = True
                    break
                if closed_by_peer(s, 0.1):
                    closed = True
                    break
            assert closed or closed_by_peer(s, 3.0)
        assert time.monotonic() - t0 < 2.5

    def test_zero_length_frame_closes(self, core):
        with tcp_connect(core) as s:
            s.sendall(b"\x00\x00")
            assert closed_by_peer(s, 2.0)


# ======================================================= IPv6

class TestIpv6:
    """dnsd listens on [::1] and answers there over UDP and TCP, beside an
    IPv4 address."""

    def test_ipv6(self, dnsd):
        if not ipv6_loopback():
            pytest.skip("::1 cannot be bound here")
        d = dnsd(CORE_YAML, listen=("[::1]:0", "127.0.0.1:0"))
        assert d.addrs[0][0] == "::1" and d.addrs[1][0] == "127.0.0.1"
        for where in (0, 1):
            for tcp in (False, True):
                r = d.query("user-service.mesh.", "AAAA", tcp=tcp, where=where)
                assert answers(r, "AAAA") == USER_V6
        raw = d.raw_udp(dns.message.make_query("bigtc.mesh.", "A").to_wire())
        assert dns.message.from_wire(raw).flags & TC
        with tcp_connect(d) as s:
            q = dns.message.make_query("static.mesh.", "A")
            s.sendall(frame(q.to_wire()) * 2)
            assert [dns.message.from_wire(recv_frame(s)).id for _ in range(2)] == [q.id] * 2


# ======================================================= command line

def run_dnsd(args, timeout=10):
    p = subprocess.run([DNSD] + args, capture_output=True, text=True, timeout=timeout)
    assert p.returncode >= 0, "dnsd killed by signal %d: %s" % (-p.returncode, p.stderr)
    return p


class TestCheck:
    """dnsd --check: exit 0 with a summary for a valid file; exit 1 with
    file:line:col: message for each kind of mistake."""

    def test_valid(self, tmp_path):
        conf = tmp_path / "ok.yaml"
        conf.write_text(CORE_YAML)
        p = run_dnsd(["--check", "-c", str(conf)])
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip() == "%s: OK (2 zones, 4 services, %d backends)" % (conf, 3 + 2 * BIG_N)

    def test_valid_counts_in_singular(self, tmp_path):
        conf = tmp_path / "one.yaml"
        conf.write_text("zones:\n  - name: mesh\n    services:\n      - name: s\n"
                        "        ports: {http: 80}\n        backends: [10.0.0.1]\n")
        p = run_dnsd(["--check", "-c", str(conf)])
        assert (p.returncode, p.stdout) == (0, "%s: OK (1 zone, 1 service, 1 backend)\n" % conf)

    @pytest.mark.parametrize("text,line,col,words", [
        ("zones:\n  - name: mesh\n    bogus: 1\n", 3, 5, ["unknown key", "bogus"]),
        ("zones:\n  - name: mesh\n    services:\n      - name: s\n        polcy: hash\n", 5, 9,
         ["unknown key 'polcy'; did you mean 'policy'?"]),
        ("listen: ::1:5353\nzones:\n  - name: mesh\n", 1, 9,
         ["'::1:5353' is an IPv6 address", '"[::1]:5353" (quoted)']),
        ("listen: [127.0.0.1, [::1]:5353]\nzones:\n  - name: mesh\n", 1, 22,
         ["did not find expected node content", 'quote IPv6 addresses with ports']),
        ("zones:\n  - name: mesh\n    ttl: abc\n", 3, 10, ["ttl", "abc"]),
        ("zones:\n  - name: mesh\n    ttl: [1]\n", 3, 10, ["ttl"]),
        ("tcp: {max-clients: many}\nzones:\n  - name: mesh\n", 1, 20, ["max-clients", "many"]),
        ("listen: 300.1.1.1\nzones:\n  - name: mesh\n", 1, 9, ["listen", "300.1.1.1"]),
        ("zones:\n  - name: mesh\n    services:\n      - name: s\n        ports: {http: 80}\n"
         "        backends: [1.2.3.4.5]\n", 6, 20, ["1.2.3.4.5"]),
        ("zones:\n  - name: mesh\n  - name: MESH.\n", 3, 11, ["duplicate", "MESH"]),
        ("zones:\n  - name: mesh\n    services:\n      - name: s\n        ports: {http: 80}\n"
         "      - name: s\n        ports: {http: 80}\n", 6, 15, ["duplicate", "s"]),
        ("zones:\n  - name: mesh\n    records:\n      - {name: a, type: A, data: 1.2.3.4}\n"
         "    services:\n      - name: a\n        ports: {http: 80}\n", 6, 9, ["a.mesh"]),
        ("zones: [\n", 2, 1, []),
    ])
    def test_invalid(self, tmp_path, text, line, col, words):
        conf = tmp_path / "bad.yaml"
        conf.write_text(text)
        p = run_dnsd(["--check", "-c", str(conf)])
        assert p.returncode == 1, p.stdout + p.stderr
        assert p.stdout == ""
        loc = "%s:%d:%d: " % (conf, line, col)
        # Exactly file:line:col: message, no log prefix: the form editors
        # and CI problem matchers parse.
        lines = p.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(loc), "want %r..., got %r" % (loc, p.stderr)
        assert re.fullmatch(r"[^:]+:\d+:\d+: \S.*", lines[0]), lines[0]
        for w in words:
            assert w in lines[0], (w, lines[0])
        # Serving the same file fails the same way instead of starting.
        p2 = run_dnsd(["-c", str(conf), "-l", "127.0.0.1:0"])
        assert p2.returncode == 1 and loc in p2.stderr


class TestCommandLine:
    """Bad command lines exit 1 with a message that names the problem,
    never by a signal and never by serving."""

    @pytest.mark.parametrize("args,words", [
        (["--bogus"], ["bogus"]),
        (["-c"], ["requires an argument"]),
        (["-l", "nonsense", "-c", "{conf}"], ["nonsense"]),
        (["-l", "127.0.0.1:99999", "-c", "{conf}"], ["127.0.0.1:99999"]),
        (["-l", "[::1", "-c", "{conf}"], ["[::1"]),
        (["-l", "::1:5353", "-c", "{conf}"], ["'[::1]:5353' for port 5353"]),
        (["-l", "", "-c", "{conf}"], ["listen"]),
        (["-w", "100", "-c", "{conf}"], ["100"]),
        (["-w", "x", "-c", "{conf}"], ["x"]),
        (["--seed", "-1", "-c", "{conf}"], ["seed"]),
        (["-c", "{dir}/missing.yaml"], ["missing.yaml", "No such file"]),
        (["--check", "-c", "{dir}/missing.yaml"], ["missing.yaml", "No such file"]),
        (["-c", "{dir}"], ["{dir}"]),
        (["-c", "{conf}", "extra"], ["extra"]),
    ])
    def test_bad(self, tmp_path, args, words):
        conf = tmp_path / "ok.yaml"
        conf.write_text(SMALL_YAML)
        fill = lambda s: s.replace("{conf}", str(conf)).replace("{dir}", str(tmp_path))
        p = run_dnsd([fill(a) for a in args])
        assert p.returncode == 1, (p.returncode, p.stderr)
        assert p.stderr.strip(), "no message"
        for w in words:
            assert fill(w) in p.stderr, p.stderr

    def test_busy_port(self, dnsd, tmp_path):
        d = dnsd(SMALL_YAML)
        conf = tmp_path / "again.yaml"
        conf.write_text(SMALL_YAML)
        p = run_dnsd(["-c", str(conf), "-l", "127.0.0.1:%d" % d.port])
        assert p.returncode == 1
        assert "127.0.0.1:%d" % d.port in p.stderr

    def test_version_and_help(self):
        p = run_dnsd(["--version"])
        assert p.returncode == 0 and p.stdout.startswith("dnsd ")
        p = run_dnsd(["--help"])
        assert p.returncode == 0 and "--check" in p.stdout + p.stderr


# ======================================================= reload and signals

RELOAD_A = """\
zones:
  - name: mesh
    records:
      - {name: static, type: A, data: 192.0.2.1}
      - {name: old, type: A, data: 192.0.2.2}
    services:
      - name: svc
        ports: {http: 80}
        backends: [127.0.0.5]
"""
RELOAD_B = """\
zones:
  - name: mesh
    records:
      - {name: static, type: A, data: 192.0.2.1}
      - {name: new, type: TXT, data: "fresh"}
    services:
      - name: svc
        ports: {http: 80}
        backends: [127.0.0.6, 127.0.0.7]
"""
RELOAD_BAD = RELOAD_A + "    bogus-key: 1\n"


def serial(d, tcp=False):
    r = d.query("mesh.", "SOA", tcp=tcp)
    return rrsets(r.answer, "SOA")[0][0].serial


class TestReload:
    """SIGHUP swaps in a valid new configuration (new data served, removed
    data gone, serial increased); an invalid one is logged as "reload
    failed" with its location and the old data keeps serving; SIGTERM and
    SIGINT stop dnsd with status 0."""

    def test_reload_valid(self, dnsd):
        d = dnsd(RELOAD_A)
        s1 = serial(d)
        assert answers(d.query("old.mesh.", "A"), "A") == ["192.0.2.2"]
        assert d.reload(RELOAD_B)
        assert d.query("old.mesh.", "A").rcode() == dns.rcode.NXDOMAIN
        assert answers(d.query("new.mesh.", "TXT")) == ['"fresh"']
        assert answers(d.query("svc.mesh.", "A", tcp=True)) == ["127.0.0.6", "127.0.0.7"]
        s2 = serial(d)
        assert (s2 - s1) % 2**32 < 2**31 and s2 != s1, (s1, s2)
        # The same file again is nothing to do: no new version, no new
        # serial (secondaries are not sent to transfer the same data).
        start = len(d.log())
        assert d.reload()
        assert "unchanged, nothing to do" in d.log()[start:]
        assert serial(d, tcp=True) == s2
        still_serving(d)

    def test_reload_explicit_serial(self, dnsd):
        yaml = RELOAD_A.replace("  - name: mesh\n", "  - name: mesh\n    soa: {serial: 4000}\n")
        d = dnsd(yaml)
        assert serial(d) == 4000
        assert d.reload()
        assert serial(d) == 4000          # unchanged file: nothing to do
        # A changed file with the same explicit serial still moves forward.
        assert d.reload(yaml + "\n# changed\n")
        assert serial(d) > 4000

    def test_reload_invalid_keeps_serving(self, dnsd):
        d = dnsd(RELOAD_A)
        s1 = serial(d)
        start = len(d.log())
        assert not d.reload(RELOAD_BAD)
        tail = d.log()[start:]
        assert "reload failed" in tail
        assert "%s:%d:" % (d.conf, RELOAD_BAD.count("\n")) in tail, tail
        assert d.proc.poll() is None
        assert answers(d.query("old.mesh.", "A"), "A") == ["192.0.2.2"]
        assert d.query("new.mesh.", "TXT").rcode() == dns.rcode.NXDOMAIN
        assert answers(d.query("svc.mesh.", "A")) == ["127.0.0.5"]
        assert serial(d) == s1
        still_serving(d)
        # A good file after the bad one is taken.
        assert d.reload(RELOAD_B)
        assert answers(d.query("new.mesh.", "TXT")) == ['"fresh"']

    def test_reload_unparsable_and_missing(self, dnsd):
        d = dnsd(RELOAD_A)
        assert not d.reload("zones: [\n")
        assert answers(d.query("old.mesh.", "A"), "A") == ["192.0.2.2"]
        os.unlink(d.conf)
        assert not d.reload()
        assert answers(d.query("old.mesh.", "A"), "A") == ["192.0.2.2"]

    def test_reload_under_load(self, dnsd):
        """Queries keep being answered, each from one whole snapshot, while
        reloads alternate between two configurations."""
        d = dnsd(RELOAD_A)
        q = dns.message.make_query("svc.mesh.", "A")
        host, port = d.addrs[0]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(1.0)
            for i in range(6):
                d.send_signal(signal.SIGHUP)
                for _ in range(30):
                    s.sendto(q.to_wire(), (host, port))
                    m = dns.message.from_wire(s.recv(4096))
                    assert answers(m, "A") in (["127.0.0.5"], ["127.0.0.6", "127.0.0.7"])
                # Replaced whole, so a late reload never reads half a file.
                with open(d.conf + ".new", "w") as f:
                    f.write(RELOAD_B if i % 2 == 0 else RELOAD_A)
                os.replace(d.conf + ".new", d.conf)
        assert d.proc.poll() is None
        assert "reload failed" not in d.log()

    @pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
    def test_stop_signals(self, dnsd, sig):
        d = dnsd(RELOAD_A)
        with tcp_connect(d):      # an open connection does not hold the exit up
            still_serving(d)
            assert d.stop(sig) == 0
        assert "stopping" in d.log()


# ======================================================= robustness

def fuzz_seeds():
    """Valid queries of many shapes, as wire bytes."""
    names = ["static.mesh.", "user-service.mesh.", "_http._tcp.user-service.mesh.", "mesh.",
             "nope.mesh.", "www.mesh.", "x.child.mesh.", "example.org.", "big.mesh.",
             "version.bind.", "u2.user-service.mesh."]
    types = ["A", "AAAA", "SRV", "ANY", "SOA", "NS", "TXT", "MX", "CNAME", "DS", "AXFR"]
    out = []
    for i, n in enumerate(names):
        for j, t in enumerate(types):
            kw = {}
            if (i + j) % 3 == 1:
                kw = {"use_edns": 0, "payload": 512 + 300 * j}
            elif (i + j) % 3 == 2:
                kw = {"use_edns": 0, "want_dnssec": True,
                      "options": [dns.edns.ECSOption("10.1.2.0", 24)]}
            rdclass = "CH" if n == "version.bind." else "IN"
            out.append(dns.message.make_query(n, t, rdclass, **kw).to_wire())
    return out


def mutate(rng, data):
    data = bytearray(data)
    kind = rng.randrange(6)
    if kind == 0:                                   # flip bits
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == 1:                                 # truncate
        data = data[:rng.randrange(len(data))]
    elif kind == 2:                                 # random bytes
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 3:                                 # counts
        off = rng.choice([4, 6, 8, 10])
        data[off:off + 2] = struct.pack(">H", rng.choice([0, 1, 2, 3, 255, 65535]))
    elif kind == 4:                                 # append junk
        data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
    else:                                           # pure noise
        data = bytearray(rng.randrange(256) for _ in range(rng.randint(0, 300)))
    return bytes(data)


class TestRobustness:
    """Thousands of random and mutated UDP packets and hundreds of garbage
    TCP streams: every answer is a well-formed response to its query
    within size limits, and dnsd keeps running and answering correctly."""

    def test_udp_garbage(self, dnsd):
        d = dnsd(CORE_YAML)
        rng = random.Random(20261125)
        seeds = fuzz_seeds()
        host, port = d.addrs[0]
        sent = {}
        got = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            for i in range(3000):
                pkt = mutate(rng, rng.choice(seeds))
                if len(pkt) >= 2:
                    pkt = struct.pack(">H", i) + pkt[2:]     # the ID says which query
                sent[i] = pkt
                s.sendto(pkt, (host, port))
                if i % 50 == 49:
                    s.settimeout(0.05)
                    try:
                        while True:
                            got.append(s.recv(65535))
                    except socket.timeout:
                        pass
            s.settimeout(0.5)
            try:
                while True:
                    got.append(s.recv(65535))
            except socket.timeout:
                pass
        assert len(got) > 1000, "only %d answers to 3000 packets" % len(got)
        for raw in got:
            assert len(raw) >= 12
            h = parse_header(raw)
            q = sent[h["id"]]
            assert len(q) >= 12, "answered a packet shorter than a header"
            qh = parse_header(q)
            assert not qh["qr"], "answered a response"
            assert h["qr"] and h["opcode"] == qh["opcode"]
            if qh["opcode"] != 0:
                # UPDATE (5) unsigned: REFUSED (TSIG is required)
                assert h["rcode"] in (dns.rcode.NOTIMP, dns.rcode.FORMERR) or (
                    qh["opcode"] == 5 and h["rcode"] == dns.rcode.REFUSED)
                assert h["an"] == h["ns"] == h["ar"] == 0 and len(raw) <= 512
                continue     # dnspython cannot parse unassigned opcodes
            m = dns.message.from_wire(raw)
            limit = 512 if m.edns < 0 else UDP_MAX
            assert len(raw) <= limit, (len(raw), m.edns)
        still_serving(d)

    def test_tcp_garbage(self, dnsd):
        d = dnsd(CORE_YAML)
        rng = random.Random(7)
        seeds = fuzz_seeds()
        answered = 0
        t0 = time.monotonic()
        for i in range(200):
            kind = i % 4
            if kind == 0:       # noise
                data = bytes(rng.randrange(256) for _ in range(rng.randint(1, 600)))
            elif kind == 1:     # framed mutated queries
                data = b"".join(frame(mutate(rng, rng.choice(seeds))) for _ in range(rng.randint(1, 5)))
            elif kind == 2:     # a frame longer than what follows
                data = struct.pack(">H", rng.randint(100, 65535)) + rng.choice(seeds)
            else:               # framed queries cut anywhere
                data = b"".join(frame(rng.choice(seeds)) for _ in range(3))
                data = data[:rng.randrange(1, len(data))]
            with tcp_connect(d) as s:
                try:
                    s.sendall(data)
                    s.shutdown(socket.SHUT_WR)
                    buf = b""
                    s.settimeout(2.0)
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        buf += chunk
                except (ConnectionResetError, BrokenPipeError):
                    continue
                except socket.timeout:
                    pytest.fail("connection %d (kind %d) not closed after EOF" % (i, kind))
            # Whatever came back is a sequence of whole framed responses.
            while buf:
                assert len(buf) >= 2
                (n,) = struct.unpack(">H", buf[:2])
                assert len(buf) >= 2 + n, "partial frame"
                h = parse_header(buf[2:2 + n])
                assert h["qr"]
                if h["opcode"] == 0:
                    dns.message.from_wire(buf[2:2 + n])
                buf = buf[2 + n:]
                answered += 1
        assert answered > 0
        assert time.monotonic() - t0 < 20
        still_serving(d)
        # Half-open junk left behind is reaped by the idle timeout, not by
        # the next client.
        with tcp_connect(d) as s:
            s.sendall(b"\x01")
            still_serving(d)

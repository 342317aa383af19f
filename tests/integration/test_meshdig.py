"""meshdig against an in-process dnspython responder (no dnsd needed).

The responder runs in threads on 127.0.0.1 (and ::1 when available) on a
free port, answers from a small fixed zone plus special names (servfail.,
tc., silent., malformed., ...), and records every query with its transport
so tests can check what meshdig put on the wire. The binary is $MESHDIG, or
build/meshdig under the repository root.

Run: /usr/bin/pytest -q tests/integration/test_meshdig.py
"""
import json
import os
import shutil
import socket
import struct
import subprocess
import threading
import time

import pytest

dns = pytest.importorskip("dns")
import dns.edns  # noqa: E402
import dns.flags  # noqa: E402
import dns.message  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdata  # noqa: E402
import dns.rdatatype  # noqa: E402
import dns.rrset  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MESHDIG = os.environ.get("MESHDIG") or os.path.join(ROOT, "build", "meshdig")

# ---------------------------------------------------------------- responder

ZONE = {
    ("user-service.mesh.", "A"): ["127.0.0.11", "127.0.0.12", "127.0.0.13"],
    ("a.test.", "A"): ["192.0.2.1"],
    ("v6.test.", "AAAA"): ["2001:db8::1"],
    ("_http._tcp.test.", "SRV"): ["10 60 8080 a.test.", "20 0 8081 b.test."],
    ("test.", "MX"): ["10 mail.test."],
    ("test.", "SOA"): ["ns1.test. hostmaster.test. 2024010101 3600 600 86400 60"],
    ("test.", "NS"): ["ns1.test."],
    ("txt.test.", "TXT"): ['"hello world" "say \\"hi\\"" "back\\\\slash" "semi;colon" "\\200\\009x"'],
    ("thisisaverylongname.with.many.labels.test.", "A"): ["192.0.2.9"],
    ("1.2.0.192.in-addr.arpa.", "PTR"): ["a.test."],
    ("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", "PTR"): ["v6.test."],
    ("type.test.", "TYPE65280"): ["\\# 3 010203"],
}
SOA_TEXT = ZONE[("test.", "SOA")][0]
TXT_TEXT = '"hello world" "say \\"hi\\"" "back\\\\slash" "semi;colon" "\\200\\009x"'
BIG = [f"10.0.{i // 256}.{i % 256}" for i in range(60)]


class Query:
    def __init__(self, transport, wire, msg):
        self.transport = transport
        self.wire = wire
        self.msg = msg
        q = msg.question[0] if msg.question else None
        self.qname = q.name.to_text().lower() if q is not None else ""
        self.qtype = dns.rdatatype.to_text(q.rdtype) if q is not None else ""


class Responder:
    """A UDP+TCP DNS responder on one port, serving from ZONE."""

    def __init__(self, host="127.0.0.1", port=0):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        for _ in range(50):
            self.udp = socket.socket(fam, socket.SOCK_DGRAM)
            self.udp.bind((host, port))
            self.port = self.udp.getsockname()[1]
            self.tcp = socket.socket(fam, socket.SOCK_STREAM)
            self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                self.tcp.bind((host, self.port))
                break
            except OSError:
                self.udp.close()
                self.tcp.close()
        else:
            raise RuntimeError("no free port for UDP and TCP")
        self.tcp.listen(16)
        self.host = host
        self.queries = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=f, daemon=True)
                        for f in (self.serve_udp, self.serve_tcp)]
        for t in self.threads:
            t.start()

    def reset(self):
        with self.lock:
            self.queries.clear()

    def log(self):
        with self.lock:
            return list(self.queries)

    # The answer for one query, or None to stay silent.
    def answer(self, wire, transport):
        try:
            q = dns.message.from_wire(wire)
        except Exception:
            return None
        rec = Query(transport, wire, q)
        with self.lock:
            self.queries.append(rec)
        qname, qtype = rec.qname, rec.qtype
        if qname.startswith("silent."):
            return None
        r = dns.message.make_response(q)
        r.flags |= dns.flags.AA
        if q.edns >= 0:
            opts = []
            for o in q.options:
                if o.otype == dns.edns.NSID:
                    opts.append(dns.edns.GenericOption(dns.edns.NSID, b"ns1"))
                if o.otype == dns.edns.COOKIE:
                    opts.append(dns.edns.GenericOption(dns.edns.COOKIE,
                                                       o.to_wire()[:8] + b"SRVCOOKI"))
            r.use_edns(0, 0, 1232, options=opts)
            if q.ednsflags & dns.flags.DO:
                r.ednsflags |= dns.flags.DO
            if q.edns > 0:
                r.set_rcode(dns.rcode.BADVERS)
                return r.to_wire()
        for prefix, rcode in (("servfail.", dns.rcode.SERVFAIL), ("refused.", dns.rcode.REFUSED),
                              ("formerr.", dns.rcode.FORMERR)):
            if qname.startswith(prefix):
                r.set_rcode(rcode)
                return r.to_wire()
        if qname.startswith("tc."):
            if transport == "udp":
                r.flags |= dns.flags.TC
                return r.to_wire()
            r.answer.append(dns.rrset.from_text(qname, 30, "IN", "A", "192.0.2.50"))
            return r.to_wire()
        if qname.startswith("big."):
            r.answer.append(dns.rrset.from_text_list(qname, 30, "IN", "A", BIG))
            return r.to_wire(max_size=65535)
        if qname.startswith("malformed."):
            # The answer's RDATA (and the OPT after it) cut short.
            r.answer.append(dns.rrset.from_text(qname, 30, "IN", "A", "192.0.2.60"))
            w = r.to_wire()
            return w[:-3] if q.edns < 0 else w[:-14]
        if qname.startswith("trailing."):
            r.answer.append(dns.rrset.from_text(qname, 30, "IN", "A", "192.0.2.61"))
            return r.to_wire() + b"\x00\x00\x00"
        if qname.startswith("badrdata."):
            # An A record with 5 bytes of RDATA.
            w = bytearray(r.to_wire())
            struct.pack_into("!H", w, 6, 1)
            qend = 12 + len(q.question[0].name.to_wire()) + 4
            rr = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 30, 5) + b"\x01\x02\x03\x04\x05"
            return bytes(w[:qend]) + rr + bytes(w[qend:])
        if qname.startswith("cname."):
            r.answer.append(dns.rrset.from_text(qname, 300, "IN", "CNAME", "a.test."))
            r.answer.append(dns.rrset.from_text("a.test.", 300, "IN", "A", "192.0.2.1"))
            return r.to_wire()
        if qtype == "ANY":
            found = [(k, v) for k, v in ZONE.items() if k[0] == qname]
        else:
            found = [(k, v) for k, v in ZONE.items() if k == (qname, qtype)]
        if found:
            for (n, t), v in found:
                r.answer.append(dns.rrset.from_text_list(n, 10, "IN", t, v))
            if qname == "user-service.mesh.":
                r.additional.append(dns.rrset.from_text("ns1.mesh.", 10, "IN", "A", "127.0.0.1"))
        else:
            if not any(k[0] == qname for k in ZONE):
                r.set_rcode(dns.rcode.NXDOMAIN)
            r.authority.append(dns.rrset.from_text("test.", 60, "IN", "SOA", SOA_TEXT))
        return r.to_wire(max_size=65535)

    def serve_udp(self):
        while True:
            try:
                wire, peer = self.udp.recvfrom(65535)
            except OSError:
                return
            out = self.answer(wire, "udp")
            if out is not None:
                try:
                    self.udp.sendto(out, peer)
                except OSError:
                    pass

    def serve_tcp(self):
        while True:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            threading.Thread(target=self.tcp_conn, args=(conn,), daemon=True).start()

    def tcp_conn(self, conn):
        with conn:
            while True:
                hdr = self._recvn(conn, 2)
                if hdr is None:
                    return
                wire = self._recvn(conn, struct.unpack("!H", hdr)[0])
                if wire is None:
                    return
                out = self.answer(wire, "tcp")
                if out is not None:
                    try:
                        conn.sendall(struct.pack("!H", len(out)) + out)
                    except OSError:
                        return

    @staticmethod
    def _recvn(conn, n):
        buf = b""
        while len(buf) < n:
            try:
                d = conn.recv(n - len(buf))
            except OSError:
                return None
            if not d:
                return None
            buf += d
        return buf

    def close(self):
        for s in (self.udp, self.tcp):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def meshdig_bin():
    if not os.access(MESHDIG, os.X_OK):
        if os.environ.get("MESHDIG"):
            pytest.fail(f"MESHDIG={MESHDIG} is not executable")
        pytest.skip(f"{MESHDIG} not built (run make)")
    return MESHDIG


@pytest.fixture(scope="module")
def server():
    r = Responder("127.0.0.1")
    yield r
    r.close()


def _have_ipv6():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def server6():
    if not _have_ipv6():
        pytest.skip("no ::1")
    r = Responder("::1")
    yield r
    r.close()


class Run:
    def __init__(self, cp, elapsed):
        self.rc = cp.returncode
        self.out = cp.stdout
        self.err = cp.stderr
        self.elapsed = elapsed

    def __repr__(self):
        return f"rc={self.rc}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


def run(binary, *args, timeout=30):
    t0 = time.monotonic()
    cp = subprocess.run([binary, *args], capture_output=True, text=True, errors="replace",
                        timeout=timeout)
    res = Run(cp, time.monotonic() - t0)
    # An ASan/UBSan build reports here; any report is a failure.
    assert "Sanitizer" not in res.err and "runtime error" not in res.err, res
    return res


@pytest.fixture
def dig(meshdig_bin, server):
    """meshdig against the IPv4 responder, its query log cleared first."""
    def _dig(*args, timeout=30):
        server.reset()
        return run(meshdig_bin, "@127.0.0.1", "-p", str(server.port), *args, timeout=timeout)
    return _dig


def free_port():
    """A port with nothing listening (UDP and TCP) right now."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def section(out, title):
    """The lines of one ';; TITLE SECTION:' block."""
    lines = out.splitlines()
    head = f";; {title} SECTION:"
    assert head in lines, out
    i = lines.index(head) + 1
    block = []
    while i < len(lines) and lines[i]:
        block.append(lines[i])
        i += 1
    return block


# ---------------------------------------------------------------- output

def test_default_output_sections(dig, server):
    r = dig("user-service.mesh", "A")
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[0] == f"; <<>> meshdig 0.1.0 <<>> @127.0.0.1 -p {server.port} user-service.mesh A"
    q = server.log()[0]
    assert lines[1] == f";; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: {q.msg.id}"
    assert lines[2] == ";; flags: qr aa rd; QUERY: 1, ANSWER: 3, AUTHORITY: 0, ADDITIONAL: 2"
    assert section(r.out, "QUESTION") == [";user-service.mesh.\t\tIN\tA"]
    assert sorted(section(r.out, "ANSWER")) == [
        f"user-service.mesh.\t10\tIN\tA\t127.0.0.1{i}" for i in (1, 2, 3)]
    assert section(r.out, "ADDITIONAL") == ["ns1.mesh.\t\t10\tIN\tA\t127.0.0.1"]
    assert ";; OPT PSEUDOSECTION:" in lines
    assert "; EDNS: version: 0, flags:; udp: 1232" in lines
    assert ";; AUTHORITY SECTION:" not in lines
    assert f";; SERVER: 127.0.0.1#{server.port}(UDP)" in lines
    size = [ln for ln in lines if ln.startswith(";; MSG SIZE  rcvd: ")]
    assert size and int(size[0].split()[-1]) > 100
    assert any(ln.startswith(";; Query time: ") and ln.endswith(" msec") for ln in lines)
    assert r.err == ""


def test_ra_flag_and_order(dig):
    # dnspython's make_response copies RD; no RA: flags stay in dig's order.
    r = dig("a.test", "+norecurse")
    assert ";; flags: qr aa; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 1" in r.out, r


def test_nxdomain_authority(dig):
    r = dig("nx.test")
    assert r.rc == 0, r
    assert "status: NXDOMAIN" in r.out
    assert section(r.out, "AUTHORITY") == [f"test.\t\t\t60\tIN\tSOA\t{SOA_TEXT}"]
    assert ";; ANSWER SECTION:" not in r.out


def test_long_owner_uses_spaces(dig):
    r = dig("thisisaverylongname.with.many.labels.test")
    assert section(r.out, "ANSWER") == ["thisisaverylongname.with.many.labels.test. 10 IN A 192.0.2.9"]
    assert section(r.out, "QUESTION") == [";thisisaverylongname.with.many.labels.test. IN A"]


def test_opt_pseudosection_nsid_cookie_do(dig, server):
    r = dig("a.test", "+nsid", "+cookie", "+dnssec")
    assert r.rc == 0, r
    opt = r.out.split(";; OPT PSEUDOSECTION:\n")[1].split("\n\n")[0].splitlines()
    assert opt[0] == "; EDNS: version: 0, flags: do; udp: 1232"
    assert '; NSID: 6e 73 31 ("ns1")' in opt
    sent = server.log()[0].msg
    ccookie = [o for o in sent.options if o.otype == dns.edns.COOKIE][0].to_wire()[:8]
    assert f"; COOKIE: {ccookie.hex()}{b'SRVCOOKI'.hex()} (good)" in opt


def test_given_cookie_is_sent(dig, server):
    r = dig("a.test", "+cookie=0102030405060708")
    assert r.rc == 0, r
    opts = {o.otype: o.to_wire() for o in server.log()[0].msg.options}
    assert opts[dns.edns.COOKIE] == bytes.fromhex("0102030405060708")
    assert "; COOKIE: 0102030405060708" + b"SRVCOOKI".hex() + " (good)" in r.out


def test_display_options(dig):
    r = dig("cname.test", "+noall", "+answer")
    assert r.out.splitlines() == ["cname.test.\t\t300\tIN\tCNAME\ta.test.",
                                  "a.test.\t\t\t300\tIN\tA\t192.0.2.1"], r
    r = dig("a.test", "+nocmd", "+nostats")
    assert not r.out.startswith("; <<>>") and ";; Query time" not in r.out, r


def test_unknown_type_generic(dig):
    r = dig("type.test", "TYPE65280")
    assert r.rc == 0, r
    assert section(r.out, "ANSWER") == ["type.test.\t\t10\tIN\tTYPE65280 \\# 3 010203"]


def test_reverse_lookup(dig, server):
    r = dig("-x", "192.0.2.1", "+short")
    assert (r.rc, r.out) == (0, "a.test.\n"), r
    assert (server.log()[0].qname, server.log()[0].qtype) == ("1.2.0.192.in-addr.arpa.", "PTR")
    r = dig("-x", "2001:db8::1", "+short")
    assert (r.rc, r.out) == (0, "v6.test.\n"), r


def test_ipv6_server(meshdig_bin, server6):
    r = run(meshdig_bin, "@::1", "-p", str(server6.port), "v6.test", "AAAA")
    assert r.rc == 0, r
    assert section(r.out, "ANSWER") == ["v6.test.\t\t10\tIN\tAAAA\t2001:db8::1"]
    assert f";; SERVER: ::1#{server6.port}(UDP)" in r.out
    r = run(meshdig_bin, "@[::1]", "-6", "-p", str(server6.port), "a.test", "+short")
    assert (r.rc, r.out) == (0, "192.0.2.1\n"), r


# ---------------------------------------------------------------- +short

@pytest.mark.parametrize("args,expected", [
    (["user-service.mesh"], {"127.0.0.11", "127.0.0.12", "127.0.0.13"}),
    (["_http._tcp.test", "SRV"], {"10 60 8080 a.test.", "20 0 8081 b.test."}),
    (["test", "MX"], {"10 mail.test."}),
    (["test", "SOA"], {SOA_TEXT}),
    (["v6.test", "-t", "aaaa"], {"2001:db8::1"}),
    (["cname.test"], {"a.test.", "192.0.2.1"}),
    (["txt.test", "TXT"], {TXT_TEXT}),
    (["nx.test"], set()),
])
def test_short(dig, args, expected):
    r = dig(*args, "+short")
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert len(lines) == len(expected) and set(lines) == expected, r
    assert r.err == ""


# ---------------------------------------------------------------- +json

RFC8427_KEYS = {"ID", "QR", "Opcode", "AA", "TC", "RD", "RA", "AD", "CD", "RCODE", "QDCOUNT",
                "ANCOUNT", "NSCOUNT", "ARCOUNT", "QNAME", "QTYPE", "QTYPEname", "QCLASS",
                "answerRRs", "authorityRRs", "additionalRRs"}
RR_KEYS = {"NAME", "TYPE", "TYPEname", "CLASS", "TTL", "RDLENGTH"}


def test_json_keys(dig, server):
    r = dig("user-service.mesh", "+json")
    assert r.rc == 0, r
    d = json.loads(r.out)
    assert RFC8427_KEYS <= d.keys()
    assert d["ID"] == server.log()[0].msg.id
    assert (d["QR"], d["AA"], d["TC"], d["RD"], d["RA"], d["RCODE"]) == (1, 1, 0, 1, 0, 0)
    assert d["rcodeName"] == "NOERROR"
    assert (d["QNAME"], d["QTYPE"], d["QTYPEname"], d["QCLASS"]) == ("user-service.mesh.", 1, "A", 1)
    assert (d["QDCOUNT"], d["ANCOUNT"], d["NSCOUNT"], d["ARCOUNT"]) == (1, 3, 0, 2)
    assert len(d["answerRRs"]) == 3
    for rr in d["answerRRs"]:
        assert RR_KEYS <= rr.keys()
        assert (rr["NAME"], rr["TYPE"], rr["TYPEname"], rr["CLASS"], rr["TTL"], rr["RDLENGTH"]) == \
            ("user-service.mesh.", 1, "A", 1, 10, 4)
    assert sorted(rr["rdataA"] for rr in d["answerRRs"]) == ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
    assert d["EDNS"]["udpSize"] == 1232 and d["EDNS"]["version"] == 0
    assert [rr["TYPEname"] for rr in d["additionalRRs"]] == ["A", "OPT"]
    assert d["transport"] == "UDP" and d["authorityRRs"] == []


def test_json_types(dig):
    d = json.loads(dig("_http._tcp.test", "SRV", "+json").out)
    assert sorted(rr["rdataSRV"] for rr in d["answerRRs"]) == ["10 60 8080 a.test.", "20 0 8081 b.test."]
    d = json.loads(dig("v6.test", "AAAA", "+json").out)
    assert d["answerRRs"][0]["rdataAAAA"] == "2001:db8::1"
    d = json.loads(dig("type.test", "TYPE65280", "+json").out)
    rr = d["answerRRs"][0]
    assert rr["RDATAHEX"] == "010203" and rr["TYPEname"] == "TYPE65280" and "rdataTYPE65280" not in rr
    r = dig("nx.test", "+json")
    d = json.loads(r.out)
    assert (r.rc, d["RCODE"], d["rcodeName"]) == (0, 3, "NXDOMAIN")
    assert d["answerRRs"] == [] and d["authorityRRs"][0]["rdataSOA"] == SOA_TEXT


def test_json_txt_escaping(dig):
    r = dig("txt.test", "TXT", "+json", "+nsid")
    d = json.loads(r.out)
    assert d["answerRRs"][0]["rdataTXT"] == TXT_TEXT
    # The raw text carries the JSON escapes for '"' and '\'.
    assert r'"rdataTXT": "\"hello world\" \"say \\\"hi\\\"\" \"back\\\\slash\"' in r.out
    nsid = [o for o in d["EDNS"]["options"] if o["NAME"] == "NSID"][0]
    assert nsid["HEX"] == "6e7331" and nsid["text"] == "ns1"


def test_json_servfail(dig):
    r = dig("servfail.test", "+json")
    assert r.rc == 2, r
    assert json.loads(r.out)["rcodeName"] == "SERVFAIL"


# ---------------------------------------------------------------- TXT

def test_txt_escaping_text(dig):
    r = dig("txt.test", "TXT")
    assert r.rc == 0, r
    assert section(r.out, "ANSWER") == ["txt.test.\t\t10\tIN\tTXT\t" + TXT_TEXT]
    # The printed text reads back as the bytes the responder sent.
    printed = section(r.out, "ANSWER")[0].split("\tTXT\t", 1)[1]
    rd = dns.rdata.from_text("IN", "TXT", printed)
    assert rd.strings == (b"hello world", b'say "hi"', b"back\\slash", b"semi;colon", b"\xc8\tx")


# ---------------------------------------------------------------- the query

def test_query_defaults_on_the_wire(dig, server):
    dig("a.test")
    q = server.log()
    assert len(q) == 1 and q[0].transport == "udp"
    m = q[0].msg
    assert m.flags & dns.flags.RD and not m.flags & (dns.flags.AD | dns.flags.CD)
    assert (m.edns, m.payload, m.ednsflags, list(m.options)) == (0, 1232, 0, [])
    assert (q[0].qname, q[0].qtype, m.question[0].rdclass) == ("a.test.", "A", 1)


def test_query_options_on_the_wire(dig, server):
    dig("a.test", "+norecurse", "+bufsize=4096", "+dnssec", "+adflag", "+cdflag")
    m = server.log()[0].msg
    assert not m.flags & dns.flags.RD and m.flags & dns.flags.AD and m.flags & dns.flags.CD
    assert m.payload == 4096 and m.ednsflags & dns.flags.DO
    dig("a.test", "+noedns")
    assert server.log()[0].msg.edns == -1
    dig("a.test", "+nsid")
    assert [o.otype for o in server.log()[0].msg.options] == [dns.edns.NSID]
    dig("x.test", "-c", "CH", "-t", "TXT")
    m = server.log()[0].msg
    assert (m.question[0].rdclass, m.question[0].rdtype) == (3, 16)


def test_ids_random(dig, server):
    ids = set()
    for _ in range(5):
        dig("a.test", "+short")
        ids.add(server.log()[0].msg.id)
    assert len(ids) >= 4


def test_root_and_no_name(dig, server):
    dig(".", "SOA")
    assert (server.log()[0].qname, server.log()[0].qtype) == (".", "SOA")
    dig()
    assert (server.log()[0].qname, server.log()[0].qtype) == (".", "NS")


# ---------------------------------------------------------------- transport

def test_tcp_option(dig, server):
    r = dig("a.test", "+tcp")
    assert r.rc == 0, r
    assert [q.transport for q in server.log()] == ["tcp"]
    assert f";; SERVER: 127.0.0.1#{server.port}(TCP)" in r.out


def test_truncated_retries_over_tcp(dig, server):
    r = dig("tc.test")
    assert r.rc == 0, r
    assert [q.transport for q in server.log()] == ["udp", "tcp"]
    assert section(r.out, "ANSWER") == ["tc.test.\t\t30\tIN\tA\t192.0.2.50"]
    assert "(TCP)" in r.out and "Truncated, retrying in TCP mode." in r.err


def test_large_udp_reply_taken_with_bare_edns(dig, server):
    # A bare OPT (no options) turns on c-ares' EDNS mode with our
    # +bufsize: the ~1000-byte reply is taken over UDP, without a note.
    r = dig("big.test", "+short")
    assert r.rc == 0, r
    assert sorted(r.out.split()) == sorted(BIG)
    assert [q.transport for q in server.log()] == ["udp"]
    assert "retrying" not in r.err, r


def test_large_udp_reply_with_options_still_complete(dig, server):
    # With an option in OPT c-ares' EDNS mode stays off (its FORMERR
    # fallback would cut the option): it asks again over TCP, and says so.
    r = dig("big.test", "+short", "+nsid")
    assert r.rc == 0, r
    assert sorted(r.out.split()) == sorted(BIG)
    assert [q.transport for q in server.log()] == ["udp", "tcp"]
    assert "over c-ares' 512-byte limit, retrying in TCP mode" in r.err, r


def test_default_port_is_53(meshdig_bin):
    # As dig: no -p means port 53 (a resolv.conf cannot name another).
    try:
        r53 = Responder("127.0.150.53", 53)
    except (OSError, RuntimeError) as e:
        pytest.skip(f"cannot bind 127.0.150.53:53 here: {e}")
    try:
        r = run(meshdig_bin, "@127.0.150.53", "a.test", "+short")
        assert (r.rc, r.out) == (0, "192.0.2.1\n"), r
        r = run(meshdig_bin, "@127.0.150.53", "a.test")
        assert ";; SERVER: 127.0.150.53#53(UDP)" in r.out, r
    finally:
        r53.close()


# ---------------------------------------------------------------- exit codes

def test_exit_servfail_refused_formerr_badvers(dig):
    for name, status in (("servfail.test", "SERVFAIL"), ("refused.test", "REFUSED"),
                         ("formerr.test", "FORMERR")):
        r = dig(name)
        assert r.rc == 2, r
        assert f"status: {status}," in r.out
    r = dig("a.test", "+edns=1")
    assert r.rc == 2 and "status: BADVERS," in r.out, r


def test_exit_timeout(dig, server):
    r = dig("silent.test", "+timeout=1", "+tries=1")
    assert r.rc == 9, r
    assert ";; communications error to" in r.err and "timed out" in r.err
    assert "no servers could be reached" in r.err
    assert 0.9 < r.elapsed < 5, r.elapsed
    assert len(server.log()) == 1


def test_tries_fixed_timeout_same_id(dig, server):
    r = dig("silent.test", "+timeout=0.5", "+tries=3")
    assert r.rc == 9, r
    log = server.log()
    assert len(log) == 3 and len({q.msg.id for q in log}) == 1
    assert r.err.count("timed out") == 3
    assert 1.4 < r.elapsed < 5, r.elapsed


def test_exit_json_no_reply_prints_nothing(dig):
    r = dig("silent.test", "+timeout=0.3", "+tries=1", "+json")
    assert (r.rc, r.out) == (9, ""), r


@pytest.mark.parametrize("tcp", [False, True])
def test_exit_connection_refused(meshdig_bin, tcp):
    port = free_port()
    args = ["@127.0.0.1", "-p", str(port), "a.test", "+timeout=2", "+tries=2"]
    r = run(meshdig_bin, *args, *(["+tcp"] if tcp else []))
    assert r.rc == 9, r
    assert r.err.count("connection refused") == 2, r
    assert r.elapsed < 2, r.elapsed


def test_exit_malformed(dig):
    r = dig("malformed.test")
    assert r.rc == 10, r
    assert "status: NOERROR" in r.out and ";; QUESTION SECTION:" in r.out
    assert ";; ERROR: malformed reply:" in r.err and "ANSWER record 1" in r.err
    r = dig("badrdata.test")
    assert r.rc == 10, r
    assert section(r.out, "ANSWER") == ["badrdata.test.\t\t30\tIN\tA\t\\# 5 0102030405"]
    assert "does not fit the type" in r.err
    r = dig("trailing.test", "+json")
    assert r.rc == 10, r
    d = json.loads(r.out)
    assert "trailing data" in d["error"] and d["answerRRs"][0]["rdataA"] == "192.0.2.61"


BAD_ARGS = [
    ["+bogus"], ["-z"], ["-p"], ["-p", "0"], ["-p", "65536"], ["-p", "x"], ["-t", "NOPE"],
    ["-c", "NOPE"], ["a..b"], ["a" * 64 + ".test"], [("abcdefghi." * 30)], ["x" * 100000],
    ["a.test\\"], ["+timeout=0"], ["+timeout=x"], ["+tries=0"], ["+tries=101"],
    ["+bufsize=65536"], ["+bufsize"], ["+edns=256"], ["+noedns", "+dnssec"],
    ["+noedns", "+nsid"], ["+cookie=abc"], ["+cookie=" + "00" * 41], ["+tcp=1"],
    ["+notimeout=1"], ["-x", "1.2.3"], ["+short", "+json"], ["@"], ["a.test", "b.test"],
    ["@::1", "-4"], ["@127.0.0.1", "-6"], ["@fe80::1%lo"], ["-t"],
]


@pytest.mark.parametrize("args", BAD_ARGS, ids=lambda a: " ".join(a)[:40])
def test_exit_usage(meshdig_bin, args):
    r = run(meshdig_bin, *args)
    assert r.rc == 1, r
    assert r.out == "" and r.err.startswith("meshdig: "), r
    assert len(r.err) < 400


def test_help_and_version(meshdig_bin):
    r = run(meshdig_bin, "--version")
    assert (r.rc, r.out) == (0, "meshdig 0.1.0\n")
    assert run(meshdig_bin, "-V").out == "meshdig 0.1.0\n"
    for flag in ("-h", "--help"):
        r = run(meshdig_bin, flag)
        assert r.rc == 0 and r.out.startswith("Usage: meshdig"), r
        for opt in ("@server", "-p", "-t", "-c", "-4", "-6", "-x", "+tcp", "+short", "+json",
                    "+recurse", "+edns", "+noedns", "+bufsize", "+dnssec", "+timeout", "+tries",
                    "+nsid", "+cookie", "--version", "Exit status"):
            assert opt in r.out, opt


# ---------------------------------------------------------------- against dig

DIG = shutil.which("dig")


@pytest.mark.skipif(not DIG, reason="dig not installed")
@pytest.mark.parametrize("args", [
    ["user-service.mesh"], ["a.test"], ["nx.test"], ["txt.test", "TXT"], ["test", "ANY"],
    ["_http._tcp.test", "SRV"], ["cname.test"], ["type.test", "TYPE65280"], ["."],
    ["thisisaverylongname.with.many.labels.test"], ["v6.test", "AAAA"],
], ids=lambda a: " ".join(a))
def test_same_records_as_dig(meshdig_bin, server, args):
    common = ["@127.0.0.1", "-p", str(server.port), *args, "+noall", "+question", "+answer",
              "+authority"]
    ours = run(meshdig_bin, *common)
    theirs = subprocess.run([DIG, *common, "+nocookie"], capture_output=True, text=True,
                            timeout=30)
    assert ours.rc == 0, ours
    # The responder may order an RRset differently on each query.
    assert sorted(ours.out.strip("\n").splitlines()) == sorted(theirs.stdout.strip("\n").splitlines())

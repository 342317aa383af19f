"""The resolver side under attack and misuse (issue 14, items 1-7): a pod's
only nameserver must not be poisonable or abusable.

Upstreams here are scripted fakes (class Fake) that misbehave on purpose:
validate DNSSEC only for CD=0, answer with QR=0, compress the question
into the header, send 700-byte UDP answers with TCP closed, send more than
1,024 records; two dnsd forward to each other; a flood checks that rate
limiting covers cache hits and forwarded answers; CHAOS status has an ACL
and no UDP amplification without a cookie.
"""
import re
import select
import socket
import struct
import threading
import time
import urllib.request

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from dnsd_harness import answers, free_port

MESH = """
zones:
  - name: mesh
    ttl: 30
    records:
      - {name: web, type: A, data: 10.1.0.1}
    services:
      - name: user-service
        ports: {http: 8080}
        backends: [127.0.0.11, 127.0.0.12, 127.0.0.13, 127.0.0.14]
"""


def front_yaml(upstreams, extra=", timeout: 600ms", tail=""):
    ups = ", ".join('"%s"' % u for u in upstreams)
    return MESH + "forward: {upstreams: [%s]%s}\n%s" % (ups, extra, tail)


class Fake:
    """A scripted upstream on 127.0.0.1: handler(query_wire, tcp) returns
    the answer's wire bytes, or None to stay silent. Without tcp=True its
    TCP port is closed (connections refused), as where TCP is blocked."""

    def __init__(self, handler, tcp=False):
        self.handler = handler
        self.udp_queries, self.tcp_queries = [], []
        self.stop = False
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(0.1)
        self.port = self.udp.getsockname()[1]
        self.threads = [threading.Thread(target=self.run_udp, daemon=True)]
        self.tcp = None
        if tcp:
            self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.tcp.bind(("127.0.0.1", self.port))
            self.tcp.listen(8)
            self.tcp.settimeout(0.1)
            self.threads.append(threading.Thread(target=self.run_tcp, daemon=True))
        for t in self.threads:
            t.start()

    def run_udp(self):
        while not self.stop:
            try:
                data, peer = self.udp.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            self.udp_queries.append(data)
            out = self.handler(data, False)
            if out is not None:
                self.udp.sendto(out, peer)

    def run_tcp(self):
        while not self.stop:
            try:
                conn, _ = self.tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(2)
            try:
                while True:
                    hdr = conn.recv(2)
                    if len(hdr) < 2:
                        break
                    n = struct.unpack("!H", hdr)[0]
                    data = b""
                    while len(data) < n:
                        chunk = conn.recv(n - len(data))
                        if not chunk:
                            break
                        data += chunk
                    self.tcp_queries.append(data)
                    out = self.handler(data, True)
                    if out is not None:
                        conn.sendall(struct.pack("!H", len(out)) + out)
            except OSError:
                pass
            conn.close()

    def close(self):
        self.stop = True
        for t in self.threads:
            t.join()
        self.udp.close()
        if self.tcp:
            self.tcp.close()


@pytest.fixture
def fakes():
    made = []

    def make(handler, tcp=False):
        f = Fake(handler, tcp)
        made.append(f)
        return f

    yield make
    for f in made:
        f.close()


def response(wire, rcode=dns.rcode.NOERROR, rrs=(), ttl=300):
    """An answer to query wire with A/TXT rdatas rrs ((type, text) pairs)."""
    q = dns.message.from_wire(wire)
    r = dns.message.make_response(q)
    r.set_rcode(rcode)
    name = q.question[0].name
    for rdtype, text in rrs:
        r.answer.append(dns.rrset.from_text(name, ttl, "IN", rdtype, text))
    return r.to_wire(max_size=65535)


def udp_raw(d, wire, timeout=2.0):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(wire, (d.host, d.port))
        try:
            return s.recv(65535)
        except socket.timeout:
            return None


def sent_upstream(d):
    """dnsd's count of queries sent upstream, from its exit log line."""
    d.stop()
    return int(re.search(r"forward: (\d+) sent upstream", d.log()).group(1))


# ---- 1. CD is part of the cache key --------------------------------------

def validating(wire, tcp):
    """SERVFAIL for the bogus name unless the query has CD=1 (RFC 4035 3.2.2)."""
    q = dns.message.from_wire(wire)
    if q.question[0].name.to_text().lower() == "bogus.example.test." and \
            not q.flags & dns.flags.CD:
        return response(wire, dns.rcode.SERVFAIL)
    return response(wire, rrs=[("A", "192.0.2.66")])


def test_cd_answer_not_served_to_cd0(dnsd, fakes):
    up = fakes(validating)
    d = dnsd(front_yaml(["127.0.0.1:%d" % up.port]))
    r = d.query("bogus.example.test.", "A", flags=dns.flags.RD | dns.flags.CD)
    assert answers(r, "A") == ["192.0.2.66"] and r.flags & dns.flags.CD
    # A CD=0 client must get the validator's verdict, not the CD=1 data.
    for _ in range(2):
        r = d.query("bogus.example.test.", "A")
        assert r.rcode() == dns.rcode.SERVFAIL and not r.answer
        assert not r.flags & dns.flags.CD
    # And CD=1 is still answered from the cache (one upstream query for it).
    cd1 = [w for w in up.udp_queries if dns.message.from_wire(w).flags & dns.flags.CD]
    r = d.query("bogus.example.test.", "A", flags=dns.flags.RD | dns.flags.CD)
    assert answers(r, "A") == ["192.0.2.66"]
    assert len([w for w in up.udp_queries
                if dns.message.from_wire(w).flags & dns.flags.CD]) == len(cd1) == 1


# ---- 2. broken upstream answers are not relayed or cached ----------------

def qr_zero(wire, tcp):
    out = bytearray(response(wire, rrs=[("A", "192.0.2.77")]))
    out[2] &= 0x7f
    return bytes(out)


def test_upstream_answer_without_qr_not_relayed(dnsd, fakes):
    up = fakes(qr_zero)
    d = dnsd(front_yaml(["127.0.0.1:%d" % up.port]))
    q = dns.message.make_query("qr.example.test.", "A")
    for _ in range(2):
        raw = udp_raw(d, q.to_wire())
        assert raw is not None
        m = dns.message.from_wire(raw)
        assert m.flags & dns.flags.QR and m.id == q.id
        assert m.rcode() == dns.rcode.SERVFAIL and not m.answer
    assert len(up.udp_queries) >= 2  # asked again: nothing was cached


def question_into_header(wire, tcp):
    """An answer to '. NS' whose question name is a pointer to offset 4
    (qdcount's high byte, 0: the root name)."""
    qid = wire[:2]
    hdr = qid + bytes([0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0])
    question = bytes([0xc0, 0x04, 0, 2, 0, 1])
    rr = bytes([0xc0, 0x04, 0, 2, 0, 1, 0, 0, 0x0e, 0x10, 0, 2, 0xc0, 0x04])
    return hdr + question + rr


def test_question_compressed_into_header_refused(dnsd, fakes):
    up = fakes(question_into_header)
    d = dnsd(front_yaml(["127.0.0.1:%d" % up.port]))
    q = dns.message.make_query(".", "NS")
    for _ in range(2):
        raw = udp_raw(d, q.to_wire())
        assert raw is not None
        m = dns.message.from_wire(raw)  # well formed: no stray byte
        assert m.rcode() == dns.rcode.SERVFAIL and m.question[0].name.to_text() == "."
    assert len(up.udp_queries) >= 2  # not cached


# ---- 3. UDP answers up to our payload size are taken over UDP ------------

def big_udp(wire, tcp):
    rrs = [("TXT", '"%s"' % ("x%02d" % i * 4)) for i in range(40)]
    return response(wire, rrs=rrs)


def test_700_byte_udp_answer_without_tcp(dnsd, fakes):
    up = fakes(big_udp)  # its TCP port refuses connections
    d = dnsd(front_yaml(["127.0.0.1:%d" % up.port]))
    r = d.query("big.example.test.", "TXT", use_edns=0, payload=1232)
    assert r.rcode() == dns.rcode.NOERROR and len(answers(r, "TXT")) == 40
    assert 600 < len(r.to_wire()) <= 1232
    assert len(up.udp_queries) == 1, "one UDP query, no retry"
    assert up.tcp_queries == []
    q = dns.message.from_wire(up.udp_queries[0])
    assert q.payload == 1232  # what we advertise is what we take


# ---- 4. more than 1,024 records -------------------------------------------

def many_records(wire, tcp):
    if not tcp:
        out = bytearray(response(wire))
        out[2] |= 0x02  # TC: ask over TCP
        return bytes(out)
    return response(wire, rrs=[("A", "10.%d.%d.1" % (i // 256, i % 256)) for i in range(1100)])


def test_more_than_1024_records_passed_on(dnsd, fakes):
    up = fakes(many_records, tcp=True)
    d = dnsd(front_yaml(["127.0.0.1:%d" % up.port], ", timeout: 2s"))
    r = d.query("many.example.test.", "A", tcp=True, timeout=4)
    assert r.rcode() == dns.rcode.NOERROR and len(answers(r, "A")) == 1100
    assert len(up.tcp_queries) == 1
    r = d.query("many.example.test.", "A", tcp=True, timeout=4)  # from the cache
    assert len(answers(r, "A")) == 1100 and len(up.tcp_queries) == 1


# ---- 5. forwarding loops ---------------------------------------------------

def test_self_as_ipv4_mapped_address_ignored(dnsd, fakes):
    up = fakes(lambda w, tcp: response(w, rrs=[("A", "192.0.2.5")]))
    port = free_port()
    d = dnsd(front_yaml(["[::ffff:127.0.0.1]:%d" % port, "127.0.0.1:%d" % up.port]),
             listen=("127.0.0.1:%d" % port,))
    assert "upstream [::ffff:127.0.0.1]:%d is this server's own address, ignored" % port \
        in d.log()
    assert answers(d.query("www.example.test.", "A"), "A") == ["192.0.2.5"]
    assert sent_upstream(d) == 1


def test_two_servers_forwarding_to_each_other(dnsd):
    pa, pb = free_port(), free_port()
    a = dnsd(front_yaml(["127.0.0.1:%d" % pb], ", timeout: 500ms"), listen=("127.0.0.1:%d" % pa,))
    b = dnsd(front_yaml(["127.0.0.1:%d" % pa], ", timeout: 500ms"), listen=("127.0.0.1:%d" % pb,))
    t0 = time.monotonic()
    r = a.query("loop.example.test.", "A", timeout=3)
    assert r.rcode() == dns.rcode.SERVFAIL
    assert time.monotonic() - t0 < 1.5
    time.sleep(0.6)  # let both deadlines pass
    na, nb = sent_upstream(a), sent_upstream(b)
    print("ping-pong: one client query cost %d + %d upstream queries" % (na, nb))
    # Each sends its one query (and one resend): the returning query waits
    # for the one already upstream instead of going round again.
    assert na <= 2 and nb <= 2, (na, nb)


def test_same_question_at_once_sent_upstream_once(dnsd, fakes):
    def slow(wire, tcp):
        time.sleep(0.2)
        return response(wire, rrs=[("A", "192.0.2.9")])
    up = fakes(slow)
    d = dnsd(front_yaml(["127.0.0.1:%d" % up.port], ", timeout: 1500ms"),
             args=["--http", "127.0.0.1:0"])
    results = []

    def ask(i):
        q = dns.message.make_query("SaMe.example.test." if i % 2 else "same.example.test.", "A")
        r = dns.query.udp(q, d.host, port=d.port, timeout=3)
        results.append((r.id == q.id, r.question[0].name.to_text(), answers(r, "A")))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8
    assert all(ok and a == ["192.0.2.9"] for ok, _, a in results)
    assert {n for _, n, _ in results} == {"SaMe.example.test.", "same.example.test."}
    assert len(up.udp_queries) == 1
    base = d.wait_log(r"http status on (http://\S+/)").group(1)
    with urllib.request.urlopen(base + "metrics", timeout=3) as resp:
        text = resp.read().decode()
    # All 7 others waited for the first (a thread started after the answer
    # came would be a cache hit instead: still one upstream query).
    n = int(re.search(r"^dnsd_forward_coalesced_total (\d+)$", text, re.M).group(1))
    assert 1 <= n <= 7, text


# ---- 6. RRL covers cache hits and forwarded answers -----------------------

def flood(d, names, rounds=1, spread=1.0):
    """Sends a query per name (round after round, fresh ids) from one
    socket; returns (answered, truncated, no answer)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.connect((d.host, d.port))
    s.setblocking(False)
    got = {}

    def drain(wait):
        end = time.monotonic() + wait
        while True:
            left = end - time.monotonic()
            if left <= 0 or not select.select([s], [], [], left)[0]:
                return
            try:
                data = s.recv(65535)
            except BlockingIOError:
                continue
            got[data[0] << 8 | data[1]] = data

    wires = [bytearray(dns.message.make_query(n, "A").to_wire()) for n in names]
    total = len(wires) * rounds
    start = time.monotonic()
    for i in range(total):
        w = wires[i % len(wires)]
        w[0], w[1] = i >> 8, i & 0xff
        s.send(bytes(w))
        if i % 10 == 9:
            drain(max(start + spread * (i + 1) / total - time.monotonic(), 0.0005))
    drain(1.5)
    s.close()
    tc = sum(1 for v in got.values() if v[2] & 0x02)
    return len(got) - tc, tc, total - len(got)


RRL = "rrl: {responses-per-second: 5, window: 15s, slip: 2, exempt: []}\n"


def test_rrl_applies_to_cache_hits(dnsd, fakes):
    up = fakes(lambda w, tcp: response(w, rrs=[("A", "192.0.2.1")]))
    d = dnsd(front_yaml(["127.0.0.1:%d" % up.port], tail=RRL))
    answered, truncated, dropped = flood(d, ["www.example.test."], rounds=200, spread=1.0)
    print("forwarded+cached flood at 5 r/s: %d answered, %d TC, %d dropped"
          % (answered, truncated, dropped))
    assert answered <= 15, answered
    assert truncated >= 60 and dropped >= 60, (truncated, dropped)
    # TCP is never limited.
    assert answers(d.query("www.example.test.", "A", tcp=True), "A") == ["192.0.2.1"]


def test_rrl_applies_to_forwarded_answers(dnsd, fakes):
    up = fakes(lambda w, tcp: response(w, rrs=[("A", "192.0.2.1")]))
    # No cache: every answer comes from upstream through the forwarder.
    d = dnsd(front_yaml(["127.0.0.1:%d" % up.port], tail=RRL + "cache: {max-entries: 0}\n"))
    answered, truncated, dropped = flood(d, ["www.example.test."], rounds=100, spread=1.0)
    print("forwarded-only flood at 5 r/s: %d answered, %d TC, %d dropped, %d upstream"
          % (answered, truncated, dropped, len(up.udp_queries)))
    assert len(up.udp_queries) >= 5  # concurrent same questions coalesce
    assert answered <= 15 and truncated >= 30 and dropped >= 30, (answered, truncated, dropped)
    m = dns.message.from_wire([w for w in up.udp_queries][0])
    assert m.question[0].name.to_text() == "www.example.test."


# ---- 7. CHAOS status: ACL, no UDP amplification, RRL ----------------------

def chaos_query(name="user-service.mesh.", **kw):
    return dns.message.make_query(name, "TXT", "CH", **kw)


def test_chaos_status_acl(dnsd):
    d = dnsd(MESH + 'chaos: {allow: ["10.0.0.0/8"]}\n')
    r = d.send(chaos_query(), tcp=True)
    assert r.rcode() == dns.rcode.REFUSED and not r.answer
    r = d.send(chaos_query("_why.user-service.mesh."), tcp=True)
    assert r.rcode() == dns.rcode.REFUSED
    # version.bind stays public.
    r = d.send(chaos_query("version.bind."))
    assert r.rcode() == dns.rcode.NOERROR and r.answer
    d2 = dnsd(MESH)  # default: loopback may
    r = d2.send(chaos_query(), tcp=True)
    assert r.rcode() == dns.rcode.NOERROR and len(r.answer[0]) == 5


def test_chaos_status_no_udp_amplification(dnsd):
    d = dnsd(MESH)
    q = chaos_query(use_edns=False)
    wire = q.to_wire()
    raw = udp_raw(d, wire)
    m = dns.message.from_wire(raw)
    print("CHAOS status over UDP: %d-byte query, %d-byte answer" % (len(wire), len(raw)))
    assert m.flags & dns.flags.TC and not m.answer
    assert len(raw) <= 3 * len(wire)
    # Over TCP: all of it.
    r = d.send(q, tcp=True)
    assert len(r.answer[0]) == 5 and len(r.to_wire()) > 10 * len(wire)
    # With a valid server cookie the client has proved its address: UDP.
    cq = chaos_query(use_edns=0, payload=1232,
                     options=[dns.edns.GenericOption(dns.edns.COOKIE, b"\x11" * 8)])
    r = d.send(cq)
    assert r.flags & dns.flags.TC and not r.answer
    cookie = [o for o in r.options if o.otype == dns.edns.COOKIE][0]
    full = cookie.to_wire() if hasattr(cookie, "to_wire") else cookie.data
    cq = chaos_query(use_edns=0, payload=1232,
                     options=[dns.edns.GenericOption(dns.edns.COOKIE, full)])
    r = d.send(cq)
    assert not r.flags & dns.flags.TC and len(r.answer[0]) == 5


def test_chaos_status_rate_limited(dnsd):
    d = dnsd(MESH + RRL)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.3)
    s.connect((d.host, d.port))
    got = 0
    wire = bytearray(chaos_query("version.bind.").to_wire())
    for i in range(60):
        wire[0], wire[1] = 0, i
        s.send(bytes(wire))
    try:
        while True:
            data = s.recv(4096)
            if not data[2] & 0x02:
                got += 1
    except socket.timeout:
        pass
    s.close()
    assert got <= 10, got

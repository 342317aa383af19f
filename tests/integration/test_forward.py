"""Forwarding of names outside our zones, and the cache.

A second dnsd serving example.test (and an empty cluster.local, as a
cluster's DNS would) stands in for the upstream resolver; silent upstreams
are UDP sockets the test binds and never answers from. The real-client test
runs glibc's getent in a private mount namespace whose /etc/resolv.conf
names only dnsd.
"""
import os
import shutil
import socket
import subprocess
import threading
import time

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from dnsd_harness import Dnsd, answers, free_port

UPSTREAM_YAML = """
zones:
  - name: example.test
    ttl: 300
    soa: {minimum: 60, ttl: 3600}
    records:
      - {name: www, type: A, data: 192.0.2.1}
      - {name: www, type: AAAA, data: "2001:db8::1"}
      - {name: "@", type: MX, data: "10 mail.example.test."}
      - {name: mail, type: A, data: 192.0.2.25}
      - {name: txt, type: TXT, data: "hello world"}
      - {name: short, type: A, data: 192.0.2.7, ttl: 3}
%s
  - name: cluster.local
    soa: {minimum: 30}
""" % "\n".join(
    "      - {name: many, type: A, data: 10.0.%d.%d}" % (i // 250, i % 250 + 1) for i in range(60))

MESH = """
zones:
  - name: mesh
    ttl: 30
    records:
      - {name: web, type: A, data: 10.1.0.1}
    services:
      - name: user-service
        ports: {http: 8080}
        backends: [127.0.0.11, 127.0.0.12]
"""


def front_yaml(upstreams, extra="", cache=""):
    ups = ", ".join('"%s"' % u for u in upstreams)
    return MESH + "forward: {upstreams: [%s]%s}\n%s" % (ups, extra, cache)


@pytest.fixture
def upstream(dnsd):
    return dnsd(UPSTREAM_YAML)


@pytest.fixture
def front(dnsd, upstream):
    return dnsd(front_yaml(["127.0.0.1:%d" % upstream.port], ", timeout: 1s"))


class Silent:
    """A UDP "upstream" that counts queries and never answers."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.queries = []
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            try:
                data, _ = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            self.queries.append(data)

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


@pytest.fixture
def silent():
    s = Silent()
    yield s
    s.close()


def flags(msg):
    return dns.flags.to_text(msg.flags).split()


@pytest.mark.parametrize("name,rdtype,want", [
    ("www.example.test.", "A", ["192.0.2.1"]),
    ("www.example.test.", "AAAA", ["2001:db8::1"]),
    ("example.test.", "MX", ["10 mail.example.test."]),
    ("txt.example.test.", "TXT", ['"hello world"']),
])
@pytest.mark.parametrize("tcp", [False, True])
def test_forwarded_types(front, name, rdtype, want, tcp):
    r = front.query(name, rdtype, tcp=tcp)
    assert r.rcode() == dns.rcode.NOERROR
    assert answers(r, rdtype) == want
    assert "RA" in flags(r) and "RD" in flags(r)
    assert "AA" not in flags(r)  # we are not the authority for it


def test_forwarded_case_and_id_kept(front):
    q = dns.message.make_query("WwW.ExAmPlE.TeSt.", "A")
    for _ in range(2):  # a miss, then a hit
        r = dns.query.udp(q, front.host, port=front.port, timeout=2)
        assert r.id == q.id
        assert r.question[0].name.to_text() == "WwW.ExAmPlE.TeSt."
        assert answers(r, "A") == ["192.0.2.1"]


def test_own_zone_never_forwarded(dnsd, silent):
    d = dnsd(front_yaml(["127.0.0.1:%d" % silent.port], ", timeout: 1s"))
    r = d.query("web.mesh.", "A")
    assert answers(r, "A") == ["10.1.0.1"]
    assert "AA" in flags(r) and "RA" in flags(r)
    r = d.query("user-service.mesh.", "A")
    assert answers(r, "A") == ["127.0.0.11", "127.0.0.12"]
    r = d.query("nothing.mesh.", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN and "AA" in flags(r)
    r = d.query("user-service.mesh.", "MX")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    time.sleep(0.2)
    assert silent.queries == []


def test_nxdomain_forwarded_then_cached(dnsd, upstream):
    d = dnsd(front_yaml(["127.0.0.1:%d" % upstream.port], ", timeout: 500ms"))
    r = d.query("nope.example.test.", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN
    soa = r.authority[0]
    assert soa.rdtype == dns.rdatatype.SOA
    assert soa.ttl == 60  # min(SOA TTL 3600, MINIMUM 60), RFC 2308
    d.query("www.example.test.", "A")  # cached as well
    upstream.stop()
    time.sleep(1.1)
    r = d.query("nope.example.test.", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN and "RA" in flags(r)
    assert 57 <= r.authority[0].ttl <= 59
    r = d.query("www.example.test.", "A")
    assert answers(r, "A") == ["192.0.2.1"]
    assert r.answer[0].ttl < 300
    # Not cached: the dead upstream gives SERVFAIL.
    r = d.query("other.example.test.", "A")
    assert r.rcode() == dns.rcode.SERVFAIL


def test_ttls_decrease_and_expire(front, upstream):
    first = front.query("www.example.test.", "A").answer[0].ttl
    s1 = front.query("short.example.test.", "A")
    assert s1.answer[0].ttl == 3
    time.sleep(2.1)
    later = front.query("www.example.test.", "A").answer[0].ttl
    assert first == 300 and 297 <= later <= 298
    s2 = front.query("short.example.test.", "A")
    assert s2.answer[0].ttl == 1
    time.sleep(1.0)
    # Expired: asked upstream again, fresh TTL.
    s3 = front.query("short.example.test.", "A")
    assert s3.answer[0].ttl == 3


def test_upstream_refused_port_servfail_fast(dnsd):
    d = dnsd(front_yaml(["127.0.0.1:%d" % free_port(kind=socket.SOCK_DGRAM)], ", timeout: 2s"))
    t0 = time.monotonic()
    r = d.query("www.example.test.", "A", timeout=3)
    assert r.rcode() == dns.rcode.SERVFAIL
    assert "RA" in flags(r)
    assert time.monotonic() - t0 < 2.5


@pytest.mark.parametrize("tcp", [False, True])
def test_silent_upstream_servfail_within_timeout(dnsd, silent, tcp):
    d = dnsd(front_yaml(["127.0.0.1:%d" % silent.port], ", timeout: 500ms"))
    t0 = time.monotonic()
    r = d.query("www.example.test.", "A", tcp=tcp, timeout=3)
    took = time.monotonic() - t0
    assert r.rcode() == dns.rcode.SERVFAIL
    assert 0.45 <= took < 0.9, took
    assert silent.queries, "the upstream was asked"
    q = dns.message.from_wire(silent.queries[0])
    assert q.question[0].name.to_text() == "www.example.test."
    assert q.flags & dns.flags.RD


def test_upstream_query_has_fresh_id_and_no_client_options(dnsd, silent):
    d = dnsd(front_yaml(["127.0.0.1:%d" % silent.port], ", timeout: 300ms"))
    import dns.edns
    cookie = dns.edns.GenericOption(10, b"\x01" * 8)
    q = dns.message.make_query("id.example.test.", "A", use_edns=0, want_dnssec=True,
                               options=[cookie])
    r = dns.query.udp(q, d.host, port=d.port, timeout=3)
    assert r.rcode() == dns.rcode.SERVFAIL and r.id == q.id
    assert r.edns == 0 and r.ednsflags & dns.flags.DO
    up = dns.message.from_wire(silent.queries[0])
    assert up.id != q.id or len(silent.queries) > 1
    assert up.edns == 0 and up.ednsflags & dns.flags.DO
    assert list(up.options) == []  # the client's cookie is not passed on


def test_tc_from_upstream_retried_over_tcp(front):
    # Without EDNS the upstream's 60 records do not fit 512 bytes: its UDP
    # answer is truncated and c-ares asks again over TCP. A TCP client gets
    # all of them on the first (forwarded) query.
    r = front.query("many.example.test.", "A", tcp=True, use_edns=False)
    assert len(answers(r, "A")) == 60
    # A UDP client without EDNS gets TC (from the cache, cut to 512).
    q = dns.message.make_query("many.example.test.", "A", use_edns=False)
    raw = front.raw_udp(q.to_wire())
    assert raw is not None and len(raw) <= 512
    m = dns.message.from_wire(raw)
    assert m.flags & dns.flags.TC and not m.answer
    # And with EDNS 1232 everything fits over UDP.
    r = front.query("many.example.test.", "A", use_edns=0, payload=1232)
    assert len(answers(r, "A")) == 60 and not r.flags & dns.flags.TC


def test_tc_over_udp_first_miss(front):
    """A UDP miss whose upstream answer is larger than the client takes."""
    q = dns.message.make_query("many.example.test.", "A", use_edns=False)
    m = dns.message.from_wire(front.raw_udp(q.to_wire(), timeout=3))
    assert m.flags & dns.flags.TC and "RA" in flags(m)
    r = front.query("many.example.test.", "A", tcp=True, use_edns=False)
    assert len(answers(r, "A")) == 60


def test_tcp_upstream(dnsd, upstream):
    d = dnsd(front_yaml(["127.0.0.1:%d" % upstream.port], ", tcp: true"))
    r = d.query("www.example.test.", "AAAA")
    assert answers(r, "AAAA") == ["2001:db8::1"]
    r = d.query("many.example.test.", "A", use_edns=False, tcp=True)
    assert len(answers(r, "A")) == 60


def test_norecurse_answers_from_cache_only(front):
    r = front.query("txt.example.test.", "TXT", flags=0)
    assert r.rcode() == dns.rcode.REFUSED
    front.query("txt.example.test.", "TXT")
    r = front.query("txt.example.test.", "TXT", flags=0)
    assert r.rcode() == dns.rcode.NOERROR and answers(r, "TXT") == ['"hello world"']
    assert "RD" not in flags(r)


def test_max_outstanding(dnsd, silent):
    d = dnsd(front_yaml(["127.0.0.1:%d" % silent.port], ", timeout: 1s, max-outstanding: 2"))
    results = {}

    def ask(i):
        t0 = time.monotonic()
        r = d.query("n%d.example.test." % i, "A", timeout=3)
        results[i] = (r.rcode(), time.monotonic() - t0)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(rc == dns.rcode.SERVFAIL for rc, _ in results.values())
    fast = [t for _, t in results.values() if t < 0.5]
    slow = [t for _, t in results.values() if t >= 0.9]
    assert len(fast) == 8 and len(slow) == 2, results
    m = d.wait_log(r"forward: (\d+) queries answered SERVFAIL at once: max-outstanding \(2\)")
    assert int(m.group(1)) >= 1
    # Only the two admitted queries went upstream (c-ares may retry each).
    names = {dns.message.from_wire(q).question[0].name.to_text() for q in silent.queries}
    assert len(names) == 2, names
    d.stop()
    assert "8 over max-outstanding" in d.log()


def test_forwarding_off_refused(dnsd):
    d = dnsd(MESH)
    r = d.query("www.example.test.", "A")
    assert r.rcode() == dns.rcode.REFUSED
    assert "RA" not in flags(r)
    assert "RA" not in flags(d.query("web.mesh.", "A"))


def test_meshdig_shows_ra(front):
    p = subprocess.run([os.environ.get("MESHDIG", "build/meshdig"), "-p", str(front.port),
                        "@127.0.0.1", "www.example.test", "A"],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 0, p
    assert "192.0.2.1" in p.stdout
    line = [l for l in p.stdout.splitlines() if "flags:" in l][0]
    assert " ra" in line.split(";")[0] or " ra" in line, line
    p = subprocess.run([os.environ.get("MESHDIG", "build/meshdig"), "-p", str(front.port),
                        "@127.0.0.1", "web.mesh", "+norecurse"],
                       capture_output=True, text=True, timeout=10)
    line = [l for l in p.stdout.splitlines() if "flags:" in l][0]
    assert " rd" not in line and " ra" in line and " aa" in line, line


# ---- a real client: glibc's resolver with dnsd as its only nameserver ----

FRONT_IP, UP_IP = "127.0.0.77", "127.0.0.78"


def port_free(ip, port=53):
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((ip, port))
            except OSError:
                return False
    return True


def unshare_ok():
    if os.geteuid() != 0:
        return "needs root (port 53 on 127.0.0.x and a bind mount over /etc/resolv.conf)"
    if not shutil.which("unshare") or not shutil.which("getent"):
        return "unshare or getent missing"
    p = subprocess.run(["unshare", "-m", "true"], capture_output=True, text=True)
    if p.returncode != 0:
        return "unshare -m is not permitted here: " + p.stderr.strip()
    if not port_free(FRONT_IP) or not port_free(UP_IP):
        return "port 53 on %s or %s is in use" % (FRONT_IP, UP_IP)
    return None


def test_getent_real_client(dnsd, tmp_path):
    why = unshare_ok()
    if why:
        pytest.skip(why)
    up = dnsd(UPSTREAM_YAML, listen=("%s:53" % UP_IP,))
    # The upstream list comes from a resolv.conf that also names dnsd
    # itself, as a host's would: that entry is ignored.
    upconf = tmp_path / "upstream-resolv.conf"
    upconf.write_text("nameserver %s\nnameserver %s\n" % (FRONT_IP, UP_IP))
    front = dnsd(MESH + "forward: {resolv-conf: %s, timeout: 1s}\n" % upconf,
                 listen=("%s:53" % FRONT_IP,))
    assert "upstream %s:53 is this server's own address, ignored" % FRONT_IP in front.log()
    assert "forwarding names outside our zones to %s:53 " % UP_IP in front.log()
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver %s\nsearch default.svc.cluster.local svc.cluster.local "
                    "cluster.local\noptions ndots:5 attempts:1 timeout:2\n" % FRONT_IP)
    script = (
        "set -e; mount --bind %s /etc/resolv.conf; "
        "echo '== mesh'; getent hosts user-service.mesh; "
        "echo '== forwarded'; getent hosts www.example.test; "
        "echo '== ahosts'; getent ahosts user-service.mesh; "
        "echo '== ahosts forwarded'; getent ahosts www.example.test; "
        "echo '== relative'; getent hosts web.mesh" % conf)
    p = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, (p.stdout, p.stderr, front.log())
    out = p.stdout
    mesh = out.split("== mesh")[1].split("==")[0]
    assert "127.0.0.11" in mesh or "127.0.0.12" in mesh
    fwd = out.split("== forwarded")[1].split("==")[0]
    assert "192.0.2.1" in fwd or "2001:db8::1" in fwd  # getent hosts prefers IPv6
    ah = out.split("== ahosts\n")[1].split("==")[0]
    assert "127.0.0.11" in ah and "127.0.0.12" in ah
    ahf = out.split("== ahosts forwarded")[1].split("==")[0]
    assert "192.0.2.1" in ahf and "2001:db8::1" in ahf
    assert "10.1.0.1" in out.split("== relative")[1]
    # The search list's names were forwarded once each and then answered
    # NXDOMAIN from the cache.
    r = front.query("user-service.mesh.default.svc.cluster.local.", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN
    front.stop()
    assert "cache: " in front.log()


def test_wildcard_listener_answers_from_the_asked_address(dnsd, upstream):
    """A forwarded answer leaves from the address the query went to
    (IP_PKTINFO saved with the route); dnspython rejects any other source."""
    d = dnsd(front_yaml(["127.0.0.1:%d" % upstream.port]), listen=("0.0.0.0:0",))
    for i, ip in enumerate(("127.0.0.2", "127.0.0.3")):
        q = dns.message.make_query("www%d.example.test." % i, "A")
        r = dns.query.udp(q, ip, port=d.port, timeout=3)
        assert r.rcode() == dns.rcode.NXDOMAIN  # forwarded, not from the cache
        r = dns.query.udp(dns.message.make_query("www.example.test.", "A"), ip, port=d.port,
                          timeout=3)
        assert answers(r, "A") == ["192.0.2.1"]


def test_forward_and_cache_metrics(dnsd, upstream):
    """/metrics counts cache hits and misses, upstream queries and answers;
    a forwarded query is not counted as dropped."""
    import urllib.request
    d = dnsd(front_yaml(["127.0.0.1:%d" % upstream.port], ", timeout: 1s"),
             args=["--http", "127.0.0.1:0"])
    base = d.wait_log(r"http status on (http://\S+/)").group(1)
    for _ in range(3):
        assert d.query("www.example.test.", "A").rcode() == 0
    with urllib.request.urlopen(base + "metrics", timeout=3) as r:
        text = r.read().decode()

    def val(name):
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(name + " missing:\n" + text)
    assert val("dnsd_forward_requests_total") == 1
    assert val("dnsd_forward_upstream_queries_total") == 1
    assert val("dnsd_forward_responses_total") == 1
    assert val("dnsd_cache_hits_total") == 2
    assert val("dnsd_cache_misses_total") == 1
    assert val("dnsd_cache_entries") == 1
    assert val("dnsd_dns_dropped_total") == 0
    # The upstream round trip (CoreDNS coredns_forward_request_duration_seconds).
    assert val("dnsd_forward_request_duration_seconds_count") == 1
    assert val('dnsd_forward_request_duration_seconds_bucket{le="+Inf"}') == 1
    assert val('dnsd_forward_request_duration_seconds_bucket{le="1"}') == 1
    assert 0 < val("dnsd_forward_request_duration_seconds_sum") < 1
    # Forwarded names count under zone ".", as CoreDNS's forwarding block.
    assert val('dnsd_dns_requests_total{zone=".",proto="udp",type="A"}') == 3
    # Every name of dnsd(8)'s CoreDNS mapping table is served, with its labels.
    import os
    import re
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "man", "dnsd.8")) as f:
        man = f.read()
    table = man.split(".TS\n", 1)[1].split(".TE\n", 1)[0].splitlines()[3:]
    assert len(table) >= 12, table
    for row in table:
        ours, theirs = row.split("\t")
        assert theirs.startswith(("coredns_", "process_")), row
        name = ours.split("{")[0]
        labels = re.findall(r'(\w+)(?:="[^"]*")?', ours.split("{")[1].rstrip("}")) if "{" in ours else []
        rx = re.compile(re.escape(name) + r"(_bucket|_sum|_count)?(\{| )")
        lines = [ln for ln in text.splitlines() if rx.match(ln)]
        assert lines, "%s in dnsd(8) but not in /metrics" % name
        for lab in labels:
            assert any(lab + "=" in ln for ln in lines), (name, lab)

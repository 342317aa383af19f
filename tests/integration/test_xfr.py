"""Zone transfers out of dnsd: AXFR and IXFR (dig, kdig, dnspython) with
and without TSIG, the transfer ACL, TSIG errors, multi-message transfers
signed on every message, and NSD and Knot as real secondaries that get
NOTIFY, pull the zone with TSIG and follow a backend going down."""
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.tsigkeyring
import dns.xfr
import dns.zone
import pytest

from dnsd_harness import free_port

SECRET = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
WRONG = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh4="
KEYRING = dns.tsigkeyring.from_text({"xfr-key.": ("hmac-sha256", SECRET)})
WRONG_RING = dns.tsigkeyring.from_text({"xfr-key.": ("hmac-sha256", WRONG)})
OTHER_RING = dns.tsigkeyring.from_text({"nobody.": ("hmac-sha256", SECRET)})
DIG_Y = "hmac-sha256:xfr-key:" + SECRET

BASE = """
keys:
  - {name: xfr-key, algorithm: hmac-sha256, secret: "%(secret)s"}
  - {name: key512, algorithm: hmac-sha512, secret: "%(secret)s"}
transfer: {allow: [127.0.0.0/8], keys: [xfr-key, key512]}
zones:
  - name: mesh
    ttl: 30
    ns: [ns1]
    soa: {serial: %(serial)d}
    notify: [%(notify)s]
    records:
      - {name: ns1, type: A, data: 127.0.0.1}
      - {name: www, type: TXT, data: "hello"}
      - {name: mail, type: MX, data: "10 ns1"}
%(extra)s
    services:
      - name: api
        ports: {http: 8080}
        backends: [127.0.0.11, {address: "fd00::5", name: v6}]
  - name: open
    transfer: {allow: [127.0.0.0/8]}
    records:
      - {name: x, type: A, data: 10.0.0.1}
  - name: elsewhere
    transfer: {allow: [127.0.0.2/32]}
    records:
      - {name: x, type: A, data: 10.0.0.2}
  - name: closed
    transfer: {}
    records:
      - {name: x, type: A, data: 10.0.0.3}
"""


def conf(serial=0, notify="", extra=""):
    return BASE % {"secret": SECRET, "serial": serial, "notify": notify, "extra": extra}


def axfr(d, zone, keyring=KEYRING, keyname="xfr-key.", source=None):
    """The records of an AXFR through dnspython (TSIG checked on every
    message), as a set of text lines without the closing SOA."""
    z = dns.zone.Zone(zone)
    q, _ = dns.xfr.make_query(z, keyring=keyring, keyname=keyname if keyring else None)
    dns.query.inbound_xfr(d.host, z, q, port=d.port, timeout=5, source=source)
    return {"%s %d %s" % (name.derelativize(z.origin), rds.ttl,
                          rd.to_text(origin=z.origin, relativize=False))
            + " " + dns.rdatatype.to_text(rds.rdtype)
            for name, rds in z.iterate_rdatasets() for rd in rds}


def rrs(text_lines):
    return set(text_lines)


def send_tcp(d, q, **kw):
    return dns.query.tcp(q, d.host, port=d.port, timeout=5, **kw)


# ============================================================== AXFR basics

class TestAxfr:
    @pytest.fixture
    def d(self, dnsd):
        return dnsd(conf())

    def test_dnspython_axfr_with_tsig(self, d):
        got = axfr(d, "mesh.")
        assert "ns1.mesh. 30 127.0.0.1 A" in got
        assert 'www.mesh. 30 "hello" TXT' in got
        assert "mail.mesh. 30 10 ns1.mesh. MX" in got
        # The service as plain records of its (healthy) backends.
        assert "api.mesh. 30 127.0.0.11 A" in got
        assert "api.mesh. 30 fd00::5 AAAA" in got
        assert "api.mesh. 30 0 100 8080 127-0-0-11.api.mesh. SRV" in got
        assert "api.mesh. 30 0 100 8080 v6.api.mesh. SRV" in got
        assert "_http._tcp.api.mesh. 30 0 100 8080 v6.api.mesh. SRV" in got
        assert "127-0-0-11.api.mesh. 30 127.0.0.11 A" in got
        assert "v6.api.mesh. 30 fd00::5 AAAA" in got
        assert "mesh. 30 ns1.mesh. NS" in got

    def test_transfer_matches_queries(self, d):
        """Every RRset of the transfer is what a query for it answers."""
        z = dns.zone.Zone("mesh.")
        q, _ = dns.xfr.make_query(z, keyring=KEYRING, keyname="xfr-key.")
        dns.query.inbound_xfr(d.host, z, q, port=d.port, timeout=5)
        for name, rds in z.iterate_rdatasets():
            fq = name.derelativize(z.origin)
            r = d.query(fq, rds.rdtype, tcp=True)
            got = [rr for rr in r.answer if rr.rdtype == rds.rdtype and rr.name == fq]
            assert got, (fq, rds)
            assert sorted(x.to_text() for x in got[0]) == sorted(
                x.to_text(origin=z.origin, relativize=False) for x in rds)

    def test_dig_axfr_tsig(self, d):
        out = d.tool(["dig", "@{host}", "-p", "{port}", "mesh.", "AXFR", "-y", DIG_Y, "+nocmd"])
        assert out.returncode == 0, out.stderr
        assert "Transfer failed" not in out.stdout
        assert re.search(r"api\.mesh\.\s+30\s+IN\s+A\s+127\.0\.0\.11", out.stdout)
        assert len(re.findall(r"\sSOA\s", out.stdout)) == 2
        assert "Couldn't verify" not in out.stdout

    def test_kdig_axfr_tsig_sha512(self, d):
        out = d.tool(["kdig", "@{host}", "-p", "{port}", "mesh.", "AXFR",
                      "-y", "hmac-sha512:key512:" + SECRET])
        assert out.returncode == 0, out.stdout + out.stderr
        assert re.search(r"v6\.api\.mesh\.\s+30\s+IN\s+AAAA\s+fd00::5", out.stdout)
        assert "NOERROR" in out.stdout or "Received" in out.stdout

    def test_open_zone_without_tsig(self, d):
        out = d.tool(["kdig", "@{host}", "-p", "{port}", "open.", "AXFR"])
        assert re.search(r"x\.open\.\s+30\s+IN\s+A\s+10\.0\.0\.1", out.stdout), out.stdout
        got = axfr(d, "open.", keyring=None)
        assert "x.open. 30 10.0.0.1 A" in got

    def test_refused_without_key(self, d):
        r = send_tcp(d, dns.message.make_query("mesh.", "AXFR"))
        assert r.rcode() == dns.rcode.REFUSED and not r.answer
        out = d.tool(["dig", "@{host}", "-p", "{port}", "mesh.", "AXFR"])
        assert "Transfer failed" in out.stdout

    def test_refused_from_other_address(self, d):
        # elsewhere allows only 127.0.0.2; we come from 127.0.0.1 (key or not).
        q = dns.message.make_query("elsewhere.", "AXFR")
        q.use_tsig(KEYRING, keyname="xfr-key.")
        r = send_tcp(d, q)
        assert r.rcode() == dns.rcode.REFUSED
        assert r.had_tsig
        # ... and from 127.0.0.2 it works.
        got = axfr(d, "elsewhere.", keyring=None, source="127.0.0.2")
        assert "x.elsewhere. 30 10.0.0.2 A" in got

    def test_empty_transfer_setting_refuses(self, d):
        q = dns.message.make_query("closed.", "AXFR")
        q.use_tsig(KEYRING, keyname="xfr-key.")
        assert send_tcp(d, q).rcode() == dns.rcode.REFUSED

    def test_not_our_zone_notauth(self, d):
        r = send_tcp(d, dns.message.make_query("example.", "AXFR"))
        assert r.rcode() == dns.rcode.NOTAUTH

    def test_bad_signature_notauth_badsig(self, d):
        q = dns.message.make_query("mesh.", "AXFR")
        q.use_tsig(WRONG_RING, keyname="xfr-key.")
        with pytest.raises(dns.tsig.PeerBadSignature):
            send_tcp(d, q)
        out = d.tool(["dig", "@{host}", "-p", "{port}", "mesh.", "SOA", "-y",
                      "hmac-sha256:xfr-key:" + WRONG])
        assert "BADSIG" in out.stdout and "NOTAUTH" in out.stdout

    def test_unknown_key_badkey(self, d):
        q = dns.message.make_query("mesh.", "AXFR")
        q.use_tsig(OTHER_RING, keyname="nobody.")
        with pytest.raises(dns.tsig.PeerBadKey):
            send_tcp(d, q)

    def test_bad_time(self, d):
        q = dns.message.make_query("mesh.", "SOA")
        q.use_tsig(KEYRING, keyname="xfr-key.")
        real = time.time
        time.time = lambda: real() - 3600
        try:
            wire = q.to_wire()
        finally:
            time.time = real
        with socket.socket() as s:
            s.settimeout(5)
            s.connect((d.host, d.port))
            s.sendall(len(wire).to_bytes(2, "big") + wire)
            n = int.from_bytes(s.recv(2), "big")
            data = b""
            while len(data) < n:
                data += s.recv(n - len(data))
        assert data[3] & 0xf == dns.rcode.NOTAUTH
        # dnspython reads the TSIG error field as BADTIME.
        with pytest.raises(dns.tsig.PeerBadTime):
            dns.message.from_wire(data, keyring=KEYRING, request_mac=q.mac)

    def test_signed_query_gets_signed_answer(self, d):
        q = dns.message.make_query("api.mesh.", "A")
        q.use_tsig(KEYRING, keyname="xfr-key.")
        r = d.send(q)          # dnspython validates the answer's TSIG
        assert r.had_tsig and r.rcode() == dns.rcode.NOERROR
        assert [x.to_text() for x in r.answer[0]] == ["127.0.0.11"]

    def test_axfr_over_udp_refused(self, d):
        q = dns.message.make_query("open.", "AXFR")
        assert d.send(q).rcode() == dns.rcode.REFUSED


def test_large_zone_many_messages_each_signed(dnsd):
    recs = "\n".join('      - {name: "r%d", type: TXT, data: "%s"}' % (i, "x" * 200)
                     for i in range(600))
    d = dnsd(conf(extra=recs))
    out = d.tool(["dig", "@{host}", "-p", "{port}", "mesh.", "AXFR", "-y", DIG_Y, "+nocmd"],
                 timeout=30)
    assert "Transfer failed" not in out.stdout and "Couldn't verify" not in out.stdout
    m = re.search(r"XFR size: (\d+) records \(messages (\d+)", out.stdout)
    assert m, out.stdout[-2000:]
    assert int(m.group(2)) >= 5      # 600 x ~230 bytes in messages of ~16 KiB
    assert int(m.group(1)) == 600 + 14   # with both SOAs
    assert out.stdout.count("TSIG") >= int(m.group(2))
    got = axfr(d, "mesh.")
    assert sum(1 for x in got if x.endswith(" TXT")) == 601


# ============================================================== IXFR

def serial_of(d, zone="mesh."):
    return d.query(zone, "SOA").answer[0][0].serial


def test_ixfr_returns_only_the_difference(dnsd):
    d = dnsd(conf(serial=100))
    assert serial_of(d) == 100
    assert d.reload(conf(serial=101, extra='      - {name: added, type: A, data: 192.0.2.7}'))
    assert serial_of(d) == 101
    out = d.tool(["kdig", "@{host}", "-p", "{port}", "mesh.", "IXFR=100", "-y", DIG_Y])
    assert out.returncode == 0, out.stdout + out.stderr
    lines = [l for l in out.stdout.splitlines() if l and not l.startswith(";")]
    body = [l.split() for l in lines if re.match(r"\S+\s+\d+\s+IN\s", l)]
    types = [(b[0], b[3]) for b in body]
    assert types == [("mesh.", "SOA"), ("mesh.", "SOA"), ("mesh.", "SOA"),
                     ("added.mesh.", "A"), ("mesh.", "SOA")], out.stdout
    assert [b[6] for b in body if b[3] == "SOA"] == ["101", "100", "101", "101"]

    # dnspython applies it as a secondary would.
    q = dns.message.make_query("mesh.", "IXFR")
    q.authority.append(dns.rrset.from_text(
        "mesh.", 0, "IN", "SOA", "ns1.mesh. hostmaster.mesh. 100 3600 600 86400 30"))
    q.use_tsig(KEYRING, keyname="xfr-key.")
    r = send_tcp(d, q, one_rr_per_rrset=True)
    assert [rr.rdtype for rr in r.answer].count(dns.rdatatype.SOA) == 4

    # A removal, then from 100 (two versions back) one condensed difference.
    assert d.reload(conf(serial=102))
    out = d.tool(["kdig", "@{host}", "-p", "{port}", "mesh.", "IXFR=101", "-y", DIG_Y])
    body = [l.split() for l in out.stdout.splitlines() if re.match(r"\S+\s+\d+\s+IN\s", l)]
    assert [(b[0], b[3]) for b in body] == [("mesh.", "SOA"), ("mesh.", "SOA"),
                                            ("added.mesh.", "A"), ("mesh.", "SOA"),
                                            ("mesh.", "SOA")], out.stdout
    out = d.tool(["kdig", "@{host}", "-p", "{port}", "mesh.", "IXFR=100", "-y", DIG_Y])
    body = [l.split() for l in out.stdout.splitlines() if re.match(r"\S+\s+\d+\s+IN\s", l)]
    assert len(body) == 4 and all(b[3] == "SOA" for b in body), out.stdout


def test_ixfr_unknown_serial_falls_back_to_axfr(dnsd):
    d = dnsd(conf(serial=200))
    out = d.tool(["kdig", "@{host}", "-p", "{port}", "mesh.", "IXFR=150", "-y", DIG_Y])
    assert re.search(r"api\.mesh\.\s+30\s+IN\s+A\s+127\.0\.0\.11", out.stdout), out.stdout


def test_ixfr_udp_up_to_date_and_behind(dnsd):
    d = dnsd(conf(serial=300))
    q = dns.message.make_query("mesh.", "IXFR")
    q.authority.append(dns.rrset.from_text(
        "mesh.", 0, "IN", "SOA", "ns1.mesh. hostmaster.mesh. 300 3600 600 86400 30"))
    q.use_tsig(KEYRING, keyname="xfr-key.")
    r = d.send(q)
    assert len(r.answer) == 1 and r.answer[0][0].serial == 300 and r.had_tsig
    q = dns.message.make_query("mesh.", "IXFR")
    q.authority.append(dns.rrset.from_text(
        "mesh.", 0, "IN", "SOA", "ns1.mesh. hostmaster.mesh. 299 3600 600 86400 30"))
    q.use_tsig(KEYRING, keyname="xfr-key.")
    r = d.send(q)
    assert r.flags & dns.flags.TC and not r.answer


# ============================================================== real secondaries

class Listener:
    """A TCP listener the health check connects to; kill() makes it fail."""

    def __init__(self, addr):
        self.addr = addr
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]

    def kill(self):
        self.sock.close()


class Peer:
    """NSD or Knot run in the foreground as our own process."""

    def __init__(self, name, argv, workdir, port):
        self.name = name
        self.port = port
        self.logpath = os.path.join(workdir, name + ".log")
        self.log = open(self.logpath, "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log, cwd=workdir)

    def query(self, qname, rdtype):
        q = dns.message.make_query(qname, rdtype)
        return dns.query.udp(q, "127.0.0.1", port=self.port, timeout=1)

    def a_set(self, qname):
        try:
            r = self.query(qname, "A")
        except Exception:
            return None
        if r.rcode() != dns.rcode.NOERROR or not r.answer:
            return None
        return sorted(x.to_text() for rr in r.answer for x in rr)

    def text(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def start_nsd(workdir, port, primary_port):
    if not shutil.which("nsd"):
        pytest.skip("nsd is not installed (apt-get install nsd)")
    os.makedirs(workdir, exist_ok=True)
    cfg = os.path.join(workdir, "nsd.conf")
    with open(cfg, "w") as f:
        f.write("""server:
    ip-address: 127.0.0.1@%(port)d
    port: %(port)d
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "%(dir)s"
    database: ""
    zonelistfile: "%(dir)s/zone.list"
    xfrdfile: "%(dir)s/xfrd.state"
    xfrdir: "%(dir)s"
    pidfile: "%(dir)s/nsd.pid"
    verbosity: 2
    do-ip6: no
remote-control:
    control-enable: no
key:
    name: "xfr-key"
    algorithm: hmac-sha256
    secret: "%(secret)s"
zone:
    name: "mesh"
    zonefile: "%(dir)s/mesh.zone"
    allow-notify: 127.0.0.1 xfr-key
    request-xfr: 127.0.0.1@%(primary)d xfr-key
""" % {"port": port, "dir": workdir, "secret": SECRET, "primary": primary_port})
    check = subprocess.run(["nsd-checkconf", cfg], capture_output=True, text=True)
    if check.returncode != 0:
        pytest.skip("nsd-checkconf rejects the test config: " + check.stderr)
    return Peer("nsd", ["nsd", "-d", "-c", cfg], workdir, port)


def start_knot(workdir, port, primary_port):
    if not shutil.which("knotd"):
        pytest.skip("knotd is not installed (apt-get install knot)")
    os.makedirs(workdir, exist_ok=True)
    cfg = os.path.join(workdir, "knot.conf")
    with open(cfg, "w") as f:
        f.write("""server:
    rundir: "%(dir)s"
    listen: 127.0.0.1@%(port)d
log:
  - target: stderr
    any: info
database:
    storage: "%(dir)s"
key:
  - id: xfr-key
    algorithm: hmac-sha256
    secret: %(secret)s
remote:
  - id: primary
    address: 127.0.0.1@%(primary)d
    key: xfr-key
acl:
  - id: from-primary
    address: 127.0.0.1
    key: xfr-key
    action: notify
template:
  - id: default
    storage: "%(dir)s"
zone:
  - domain: mesh
    master: primary
    acl: from-primary
""" % {"port": port, "dir": workdir, "secret": SECRET, "primary": primary_port})
    check = subprocess.run(["knotc", "-c", cfg, "conf-check"], capture_output=True, text=True)
    if check.returncode != 0:
        pytest.skip("knotc conf-check rejects the test config: " + check.stdout + check.stderr)
    return Peer("knot", ["knotd", "-c", cfg], workdir, port)


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


@pytest.mark.parametrize("which", ["nsd", "knot"])
def test_secondary_follows_backend_down(dnsd, tmp_path, which):
    b1, b2 = Listener("127.0.0.21"), Listener("127.0.0.22")
    peer_port = free_port()
    svc = """      - name: web
        ttl: 5
        check: {type: tcp, interval: 200ms, timeout: 200ms, rise: 1, fall: 1}
        ports: {http: 80}
        backends:
          - {address: 127.0.0.21, port: %d}
          - {address: 127.0.0.22, port: %d}
""" % (b1.port, b2.port)
    yaml = conf(notify="{address: 127.0.0.1:%d, key: xfr-key}" % peer_port)
    yaml = yaml.replace("    services:\n", "    services:\n" + svc, 1)
    d = dnsd(yaml)
    wait_for(lambda: sorted(x.to_text() for x in d.query("web.mesh.", "A").answer[0])
             == ["127.0.0.21", "127.0.0.22"], 10, "both backends up at dnsd")
    start = start_nsd if which == "nsd" else start_knot
    peer = start(str(tmp_path / which), peer_port, d.port)
    try:
        try:
            wait_for(lambda: peer.a_set("web.mesh.") == ["127.0.0.21", "127.0.0.22"], 20,
                     "%s to serve the zone" % which)
        except AssertionError:
            if peer.proc.poll() is not None:
                pytest.skip("%s could not start here:\n%s" % (which, peer.text()[-2000:]))
            raise AssertionError("%s never served the zone\n%s\n%s"
                                 % (which, peer.text()[-3000:], d.log()[-3000:]))
        # The secondary answers what dnsd answers, record for record.
        for name, t in [("ns1.mesh.", "A"), ("www.mesh.", "TXT"), ("api.mesh.", "AAAA"),
                        ("_http._tcp.web.mesh.", "SRV"), ("mail.mesh.", "MX")]:
            ours = sorted(x.to_text() for x in d.query(name, t).answer[0])
            theirs = sorted(x.to_text() for x in peer.query(name, t).answer[0])
            assert ours == theirs, (name, t)
        served = d.query("mesh.", "SOA").answer[0][0].serial
        assert peer.query("mesh.", "SOA").answer[0][0].serial == served

        b2.kill()
        wait_for(lambda: [x.to_text() for x in d.query("web.mesh.", "A").answer[0]]
                 == ["127.0.0.21"], 10, "dnsd to see the backend down")
        wait_for(lambda: peer.a_set("web.mesh.") == ["127.0.0.21"], 20,
                 "%s to serve the updated copy" % which)
        d.wait_log(r"notify 127\.0\.0\.1:%d of mesh\. serial \d+: acknowledged" % peer_port, 10)
        srv = sorted(x.to_text() for x in peer.query("_http._tcp.web.mesh.", "SRV").answer[0])
        assert srv == ["0 100 %d 127-0-0-21.web.mesh." % b1.port]
        assert peer.query("mesh.", "SOA").answer[0][0].serial == serial_of(d)
    finally:
        peer.stop()
        b1.kill()

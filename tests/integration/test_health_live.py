"""Health checks and balancing against real backend processes.

Every backend here is a separate /usr/bin/python3 process listening on its
own 127.0.77.x address (all of 127.0.0.0/8 is local) at a port shared by
the backends of a service. Tests start and kill them by pid (Popen.kill:
SIGKILL, so the listening socket vanishes and further connects are refused)
and watch dnsd, started through the `dnsd` fixture, notice:

- tcp checks: detection time from kill to the first answer without the
  backend (interval 100ms, fall 2: well under DETECT_BOUND), recovery after
  rise, continuous UDP queries during churn (no SERVFAIL, no timeout, no
  empty answer, no answer holding a backend dead for longer than the bound);
- http and https checks: status against the expected list, path, Host
  header (and TLS server name) as documented, a hanging backend failing by
  timeout; one host on two ports checked per port;
- all backends down: fail-open answers with all, fail-open false answers
  NODATA with the SOA;
- the SOA serial increases with every published change;
- the CH TXT status and _why names, and meshdig --status/--why, show a
  dead backend as down;
- policies through the real server: weighted shares, failover groups,
  hash stickiness per EDNS Client Subnet, slow-start SRV weights;
- a reload with unchanged backends keeps their health state.

The last tests pin behaviour found wrong once: one A record per host even
when it serves two ports, the probed port, and fail-open per service.

Timing bounds leave room for a loaded two-core machine; measured times are
printed (pytest -s shows them).

Run: /usr/bin/pytest -q -s tests/integration/test_health_live.py
"""
import os
import random
import re
import select
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from dnsd_harness import MESHDIG, answers, free_port, ipv6_loopback

PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

# interval 100ms and fall 2: a dead backend fails its next two probes,
# 100-220 ms after the kill (jitter +-10%), and the zone is republished
# within milliseconds. The bound adds room for a busy machine.
DETECT_BOUND = 0.6
# rise 2: two good probes after the restart.
RECOVER_BOUND = 1.0
FAST_CHECK = "{type: tcp, interval: 100ms, timeout: 50ms, rise: 2, fall: 2}"

# ---------------------------------------------------------------- backends

BACKEND_SCRIPT = r'''
"""A test backend: tcp (accept, close), http or https (answer with the
status in STATUS_FILE, log request line, Host header, TLS server name,
connection number and whether its TLS session was resumed to REQ_LOG) or
hang (accept, read, never answer). http and https answer one request per
connection with Connection: close; http-keep and https-keep answer every
request of a connection (HTTP/1.1 keep-alive). Prints "ready" once
listening."""
import socket, sys, threading
mode, addr, port, status_file, req_log = sys.argv[1:6]
keep = mode.endswith("-keep")
mode = mode[:-5] if keep else mode
ctx = None
if mode == "https":
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[6], sys.argv[7])
    sni = threading.local()
    def on_sni(sock, name, _ctx):
        sni.name = name or ""
    ctx.sni_callback = on_sni
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, int(port)))
s.listen(256)
held = []
lock = threading.Lock()
nconn = [0]

def http(c):
    server_name = ""
    with lock:
        nconn[0] += 1
        conn = nconn[0]
    try:
        c.settimeout(5 if keep else 2)
        reused = False
        if ctx is not None:
            c = ctx.wrap_socket(c, server_side=True)
            server_name = getattr(sni, "name", "")
            reused = c.session_reused
        data = b""
        while True:
            while b"\r\n\r\n" not in data and len(data) < 8192:
                chunk = c.recv(4096)
                if not chunk:
                    return
                data += chunk
            head_raw, _, data = data.partition(b"\r\n\r\n")
            head = head_raw.decode("latin-1").split("\r\n")
            host = ""
            for h in head[1:]:
                k, _, v = h.partition(":")
                if k.strip().lower() == "host":
                    host = v.strip()
            with lock:
                with open(req_log, "a") as f:
                    f.write("%s\t%s\t%s\t%d\t%d\n"
                            % (head[0], host, server_name, conn, reused))
            try:
                with open(status_file) as f:
                    code = int(f.read().strip() or 200)
            except (OSError, ValueError):
                code = 200
            if not keep:
                c.sendall(b"HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                          % code)
                return
            c.sendall(b"HTTP/1.1 %d X\r\nContent-Length: 2\r\n\r\nok" % code)
    except (OSError, ValueError):
        pass
    finally:
        c.close()

print("ready", flush=True)
while True:
    c, _ = s.accept()
    if mode == "tcp":
        c.close()
    elif mode == "hang":
        held.append(c)
    else:
        threading.Thread(target=http, args=(c,), daemon=True).start()
'''


class Backend:
    """One backend process on addr:port; start() waits until it listens,
    kill() ends it (by its pid) and waits for it."""

    def __init__(self, workdir, addr, port, mode="tcp", status=200, tls=()):
        self.addr, self.port, self.mode, self.tls = addr, port, mode, list(tls)
        self.script = os.path.join(workdir, "backend.py")
        if not os.path.exists(self.script):
            with open(self.script, "w") as f:
                f.write(BACKEND_SCRIPT)
        self.status_file = os.path.join(workdir, "status-%s-%d" % (addr, port))
        self.req_log = os.path.join(workdir, "requests-%s-%d" % (addr, port))
        self.set_status(status)
        self.proc = None

    def set_status(self, code):
        """The HTTP status the next requests get."""
        with open(self.status_file, "w") as f:
            f.write("%d\n" % code)

    def requests(self):
        """[(request line, Host header)] seen so far (http, https)."""
        return [r[:2] for r in self.requests_tls()]

    def requests_tls(self):
        """[(request line, Host header, TLS server name)] seen so far."""
        return [r[:3] for r in self.requests_conn()]

    def requests_conn(self):
        """[(request line, Host header, TLS server name, connection number,
        "1" if its TLS session was resumed else "0")] seen so far."""
        try:
            with open(self.req_log) as f:
                return [tuple(line.rstrip("\n").split("\t")) for line in f if line.strip()]
        except OSError:
            return []

    def start(self, timeout=10.0):
        assert self.proc is None or self.proc.poll() is not None
        self.proc = subprocess.Popen(
            [PYTHON, "-S", "-u", self.script, self.mode, self.addr, str(self.port),
             self.status_file, self.req_log] + self.tls,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else b""
        if line.strip() != b"ready":
            self.kill()
            raise RuntimeError("backend %s:%d did not start: %r %r"
                               % (self.addr, self.port, line, self.proc.stderr.read()))
        return self

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc is not None:
            for f in (self.proc.stdout, self.proc.stderr):
                if f:
                    f.close()

    @property
    def alive(self):
        return self.proc is not None and self.proc.poll() is None


@pytest.fixture
def backends(tmp_path):
    """backends(addrs, mode=..., status=...) -> (port, [Backend]) started on
    one port free on every address; all are killed after the test."""
    made = []
    workdir = tmp_path / "backends"
    workdir.mkdir()

    def start(addrs, mode="tcp", status=200, port=None, run=True, tls=()):
        port = port or common_port(addrs)
        bs = [Backend(str(workdir), a, port, mode, status, tls) for a in addrs]
        made.extend(bs)
        if run:
            for b in bs:
                b.start()
        return port, bs

    yield start
    for b in made:
        b.kill()


def common_port(addrs):
    """A TCP port free on every one of addrs a moment ago."""
    for _ in range(100):
        socks = []
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((addrs[0], 0))
            port = s.getsockname()[1]
            for a in addrs[1:]:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind((a, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no port free on all of %r" % (addrs,))


# ---------------------------------------------------------------- config

def zone_yaml(services):
    """A zone `mesh` holding the given service YAML (already indented by 6)."""
    return (
        "zones:\n"
        "  - name: mesh\n"
        "    ttl: 30\n"
        "    soa: {minimum: 30}\n"
        "    ns: [ns1]\n"
        "    records:\n"
        "      - {name: ns1, type: A, data: 127.0.0.1}\n"
        "    services:\n" + services)


def service_yaml(name, port, backends, check=FAST_CHECK, **keys):
    """One service item: port is the http port or a dict {name: port};
    backends are addresses or inline YAML mappings; keys (fail_open=false
    -> fail-open: false) are added verbatim."""
    ports = port if isinstance(port, dict) else {"http": port}
    lines = ["      - name: %s\n" % name,
             "        ttl: 1\n",
             "        ports: {%s}\n" % ", ".join("%s: %d" % kv for kv in ports.items()),
             "        check: %s\n" % check]
    for k, v in keys.items():
        lines.append("        %s: %s\n" % (k.replace("_", "-"), v))
    lines.append("        backends:\n")
    for b in backends:
        lines.append("          - %s\n" % b)
    return "".join(lines)


# ---------------------------------------------------------------- queries

def a_set(d, name, **kw):
    """The A addresses of name (NOERROR required) as a set."""
    r = d.query(name, "A", **kw)
    assert r.rcode() == dns.rcode.NOERROR, dns.rcode.to_text(r.rcode())
    return set(answers(r, "A"))


def wait_for(pred, timeout, step=0.005, what="condition"):
    """Polls pred() until it returns a true value; returns (value, seconds)."""
    t0 = time.monotonic()
    while True:
        v = pred()
        if v:
            return v, time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise AssertionError("%s not reached within %.1fs" % (what, timeout))
        time.sleep(step)


def soa_serial(d):
    r = d.query("mesh.", "SOA")
    assert r.rcode() == dns.rcode.NOERROR
    return r.answer[0][0].serial


def ch_txt(d, name):
    """The strings of the CH TXT answer for name (dnspython)."""
    r = d.query(name, "TXT", rdclass="CH")
    if r.flags & dns.flags.TC:
        # Over UDP without a server cookie status is at most 3x the query
        # (dnsd.yaml(5) chaos): a real client asks again over TCP.
        r = d.query(name, "TXT", rdclass="CH", tcp=True)
    assert r.rcode() == dns.rcode.NOERROR, dns.rcode.to_text(r.rcode())
    out = []
    for rrset in r.answer:
        for rd in rrset:
            out.append(b"".join(rd.strings).decode())
    return out


def status_rows(lines):
    """CH TXT status lines (after the service line) by ADDR:PORT."""
    rows = {}
    for line in lines[1:]:
        f = line.split()
        rows[f[1]] = f
    return rows


class UdpClient:
    """One UDP socket, one query at a time: cheaper than a socket per query
    when counting thousands of answers."""

    def __init__(self, d, timeout=2.0):
        self.addr = (d.host, d.port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(timeout)
        self.qid = random.randrange(1 << 16)

    def ask(self, msg):
        """Sends msg and returns the parsed answer, or None on timeout."""
        self.qid = (self.qid + 1) & 0xFFFF
        msg.id = self.qid
        self.sock.sendto(msg.to_wire(), self.addr)
        deadline = time.monotonic() + self.sock.gettimeout()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65535)
            except socket.timeout:
                return None
            finally:
                self.sock.settimeout(max(left, 0.001))
            r = dns.message.from_wire(data)
            if r.id == self.qid:
                return r

    def close(self):
        self.sock.close()


class Querier(threading.Thread):
    """Queries name A over UDP at about rate per second until stopped;
    records (t_sent, t_received, rcode or None on timeout, addresses)."""

    def __init__(self, d, name, rate=200, timeout=1.0):
        super().__init__(daemon=True)
        self.client = UdpClient(d, timeout=timeout)
        self.name, self.gap = name, 1.0 / rate
        self.log = []
        self.halt = threading.Event()

    def run(self):
        nxt = time.monotonic()
        try:
            while not self.halt.is_set():
                q = dns.message.make_query(self.name, "A")
                t0 = time.monotonic()
                r = self.client.ask(q)
                t1 = time.monotonic()
                if r is None:
                    self.log.append((t0, t1, None, set()))
                else:
                    self.log.append((t0, t1, r.rcode(), set(answers(r, "A"))))
                nxt += self.gap
                pause = nxt - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                else:
                    nxt = time.monotonic()
        finally:
            self.client.close()

    def stop(self):
        self.halt.set()
        self.join(10)


# ---------------------------------------------------------------- tcp checks

def test_tcp_kill_detected_and_restored(dnsd, backends):
    """Killing a backend logs it DOWN and drops it from answers within the
    detection bound (interval 100ms x fall 2 + margin), three times over;
    restarting it brings it back after rise good checks."""
    addrs = ["127.0.77.1", "127.0.77.2", "127.0.77.3"]
    port, bs = backends(addrs)
    d = dnsd(zone_yaml(service_yaml("web", port, addrs)))
    assert a_set(d, "web.mesh.") == set(addrs)
    time.sleep(0.3)              # every backend has been probed at least once
    dead, live = bs[1], {addrs[0], addrs[2]}
    down_times, up_times = [], []
    for run in range(3):
        time.sleep(random.uniform(0, 0.1))     # a random phase of the checker
        logpos = len(d.log())
        dead.kill()
        got, dt = wait_for(lambda: (lambda s: s if dead.addr not in s else None)(
            a_set(d, "web.mesh.")), 5.0, step=0.002, what="answer without the dead backend")
        down_times.append(dt)
        assert got == live
        d.wait_log(r"backend %s:%d of web\.mesh is DOWN \(2 failures; last: connect: "
                   r"Connection refused\)" % (re.escape(dead.addr), port), 2.0, logpos)
        # Served a moment after the log (the control thread applies it),
        # then it stays out while dead.
        wait_for(lambda: a_set(d, "web.mesh.") == live, 2.0, what="the dead backend out")
        for _ in range(20):
            assert a_set(d, "web.mesh.") == live
            time.sleep(0.01)
        logpos = len(d.log())
        dead.start()
        _, ut = wait_for(lambda: dead.addr in a_set(d, "web.mesh."), 5.0, step=0.002,
                         what="the restarted backend back in answers")
        up_times.append(ut)
        d.wait_log(r"backend %s:%d of web\.mesh is UP \(2 successes\)"
                   % (re.escape(dead.addr), port), 2.0, logpos)
        assert a_set(d, "web.mesh.") == set(addrs)
    print("\ntcp check 100ms x fall 2: kill -> first answer without it: %s ms; "
          "restart -> back (rise 2): %s ms"
          % ([round(t * 1000, 1) for t in down_times], [round(t * 1000, 1) for t in up_times]))
    assert max(down_times) < DETECT_BOUND, down_times
    assert max(up_times) < RECOVER_BOUND, up_times
    # Not faster than the checks allow: fall 2 needs a second failed probe
    # at least one interval (-10% jitter) after the first.
    assert min(down_times) > 0.08, down_times


def test_continuous_queries_during_churn(dnsd, backends):
    """A client querying at ~200 q/s while backends are killed and
    restarted (one, two, then all at once): no SERVFAIL, no timeout, never
    an empty answer, and never a backend that has been dead for longer than
    the detection bound (except the fail-open answer while all are dead)."""
    addrs = ["127.0.77.11", "127.0.77.12", "127.0.77.13"]
    port, bs = backends(addrs)
    d = dnsd(zone_yaml(service_yaml("web", port, addrs)))
    by_addr = dict(zip(addrs, bs))
    dead = {a: [] for a in addrs}       # [start, end) windows with no listener
    q = Querier(d, "web.mesh.", rate=200)
    q.start()
    rng = random.Random(7)

    def kill(a):
        by_addr[a].kill()
        dead[a].append([time.monotonic(), None])

    def revive(a):
        dead[a][-1][1] = time.monotonic()
        by_addr[a].start()

    try:
        time.sleep(0.3)
        plan = [[addrs[0]], [addrs[1]], [addrs[2], addrs[0]], [addrs[1]], [addrs[0], addrs[2]],
                list(addrs)]
        for group in plan:
            for a in group:
                kill(a)
                time.sleep(rng.uniform(0.0, 0.1))
            time.sleep(rng.uniform(0.5, 0.9))
            for a in group:
                revive(a)
            time.sleep(rng.uniform(0.4, 0.6))
        # All back: wait until answers settle with all three.
        wait_for(lambda: a_set(d, "web.mesh.") == set(addrs), 5.0, what="all three back")
        time.sleep(0.2)
    finally:
        q.stop()
    log = q.log
    span = log[-1][1] - log[0][0]

    def is_dead(a, t, longer_than=0.0):
        return any(s + longer_than < t and (e is None or t < e) for s, e in dead[a])

    def not_yet_back(a, t):
        """Dead at t, or restarted too recently to have passed rise."""
        return any(s < t and (e is None or t < e + RECOVER_BOUND) for s, e in dead[a])

    timeouts = [e for e in log if e[2] is None]
    servfail = [e for e in log if e[2] == dns.rcode.SERVFAIL]
    other = [e for e in log if e[2] not in (None, dns.rcode.NOERROR, dns.rcode.SERVFAIL)]
    empty = [e for e in log if e[2] == dns.rcode.NOERROR and not e[3]]
    stale = []
    for t0, t1, rc, got in log:
        if rc != dns.rcode.NOERROR:
            continue
        if got == set(addrs) and all(not_yet_back(a, t0) for a in addrs):
            continue                     # fail-open while none is up
        for a in got:
            # Dead since more than the bound before the query was sent and
            # still dead when its answer came back.
            if is_dead(a, t0, DETECT_BOUND) and is_dead(a, t1):
                stale.append((round(t0 - log[0][0], 3), a))
    print("\nchurn: %d queries in %.1f s (%.0f q/s), %d timeouts, %d SERVFAIL, %d empty, "
          "%d stale" % (len(log), span, len(log) / span, len(timeouts), len(servfail),
                        len(empty), len(stale)))
    assert len(log) / span > 100, "the client did not keep up its rate"
    assert not timeouts, timeouts[:5]
    assert not servfail, servfail[:5]
    assert not other, other[:5]
    assert not empty, empty[:5]
    assert not stale, stale[:10]
    # The churn was seen: answers without each backend happened.
    for a in addrs:
        assert any(rc == dns.rcode.NOERROR and got and a not in got for _, _, rc, got in log), a
    # And the all-dead phase was answered with every backend (fail-open).
    t_all = max(s for s, _ in dead[addrs[0]]) + DETECT_BOUND
    assert any(t0 > t_all and got == set(addrs) and all(is_dead(a, t1) for a in addrs)
               for t0, t1, rc, got in log), "no fail-open answer while all were dead"


# ---------------------------------------------------------------- http checks

HTTP_CHECK = ("{type: http, path: /healthz, host: web.example, expect: [200, 204], "
              "interval: 100ms, timeout: 80ms, rise: 2, fall: 2}")


def test_http_status_path_and_host(dnsd, backends):
    """An http check GETs the configured path with the configured Host
    header; a status outside `expect` takes the backend down, a status in
    it brings it back."""
    addrs = ["127.0.77.21", "127.0.77.22", "127.0.77.23"]
    port, bs = backends(addrs, mode="http")
    ok, bad, nocontent = bs
    bad.set_status(500)
    nocontent.set_status(204)
    d = dnsd(zone_yaml(service_yaml("web", port, addrs, check=HTTP_CHECK)))
    _, dt = wait_for(lambda: a_set(d, "web.mesh.") == {ok.addr, nocontent.addr}, 3.0,
                     what="the 500 backend out of answers")
    print("\nhttp 500 out of answers %.0f ms after start" % (dt * 1000))
    d.wait_log(r"backend %s:%d of web\.mesh is DOWN \(2 failures; last: http: status 500\)"
               % (re.escape(bad.addr), port), 2.0)
    for b in bs:
        reqs = b.requests()
        assert reqs, "no check reached %s" % b.addr
        assert set(reqs) == {("GET /healthz HTTP/1.1", "web.example")}, reqs[:3]
    # 204 is in the list: that backend never went down.
    assert "%s:%d of web.mesh is DOWN" % (nocontent.addr, port) not in d.log()

    logpos = len(d.log())
    bad.set_status(200)
    _, dt = wait_for(lambda: bad.addr in a_set(d, "web.mesh."), 3.0, what="back after 200")
    print("http 500 -> 200: back in answers after %.0f ms" % (dt * 1000))
    d.wait_log(r"%s:%d of web\.mesh is UP \(2 successes\)" % (re.escape(bad.addr), port), 2.0,
               logpos)
    assert dt < RECOVER_BOUND

    logpos = len(d.log())
    ok.set_status(503)
    _, dt = wait_for(lambda: ok.addr not in a_set(d, "web.mesh."), 3.0, what="out after 503")
    print("http 200 -> 503: out of answers after %.0f ms" % (dt * 1000))
    d.wait_log(r"%s:%d of web\.mesh is DOWN \(2 failures; last: http: status 503\)"
               % (re.escape(ok.addr), port), 2.0, logpos)
    assert dt < DETECT_BOUND
    assert a_set(d, "web.mesh.") == {bad.addr, nocontent.addr}


def test_http_defaults(dnsd, backends):
    """Without path, host and expect: GET /, Host is the backend's address,
    and any status 200..399 is healthy (302 stays, 404 goes)."""
    addrs = ["127.0.77.24", "127.0.77.25"]
    port, (redirect, missing) = backends(addrs, mode="http")
    redirect.set_status(302)
    missing.set_status(404)
    check = "{type: http, interval: 100ms, timeout: 80ms, rise: 2, fall: 2}"
    d = dnsd(zone_yaml(service_yaml("web", port, addrs, check=check)))
    wait_for(lambda: a_set(d, "web.mesh.") == {redirect.addr}, 3.0, what="404 out")
    d.wait_log(r"%s:%d of web\.mesh is DOWN \(2 failures; last: http: status 404\)"
               % (re.escape(missing.addr), port), 2.0)
    for b in (redirect, missing):
        assert set(b.requests()) == {("GET / HTTP/1.1", b.addr)}, b.requests()[:3]
    assert "%s:%d of web.mesh is DOWN" % (redirect.addr, port) not in d.log()


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory):
    """A self-signed certificate and key for web.example (openssl)."""
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    d = tmp_path_factory.mktemp("tls")
    cert, key = str(d / "cert.pem"), str(d / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=web.example"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def test_https_status_path_host_and_sni(dnsd, backends, tls_cert):
    """An https check (self-signed certificate accepted) GETs the path with
    the configured name as Host and TLS server name while connecting to the
    backend's address; without host, the address is the Host. A status
    outside expect takes the backend down."""
    addrs = ["127.0.77.26", "127.0.77.27"]
    port, (good, bad) = backends(addrs, mode="https", tls=tls_cert)
    bad.set_status(500)
    check = ("{type: https, path: /ready, host: web.example, expect: 200, interval: 200ms, "
             "timeout: 150ms, rise: 2, fall: 2}")
    bare = "{type: https, interval: 200ms, timeout: 150ms, rise: 2, fall: 2}"
    d = dnsd(zone_yaml(service_yaml("web", port, addrs, check=check)
                       + service_yaml("bare", port, addrs[:1], check=bare)))
    _, dt = wait_for(lambda: a_set(d, "web.mesh.") == {good.addr}, 5.0, what="500 out")
    print("\nhttps 500 out of answers %.0f ms after start" % (dt * 1000))
    d.wait_log(r"%s:%d of web\.mesh is DOWN \(2 failures; last: [^)]*500"
               % (re.escape(bad.addr), port), 2.0)
    time.sleep(0.5)
    assert a_set(d, "web.mesh.") == {good.addr}
    assert a_set(d, "bare.mesh.") == {good.addr}
    reqs = good.requests_tls() + bad.requests_tls()
    named = [r for r in reqs if r[0] == "GET /ready HTTP/1.1"]
    plain = [r for r in reqs if r[0] == "GET / HTTP/1.1"]
    assert named and plain and len(named) + len(plain) == len(reqs), reqs[:5]
    # Host carries the port when it is not 443 (curl, RFC 9110 7.2).
    assert {r[1] for r in named} <= {"web.example", "web.example:%d" % port}, named[:3]
    assert {r[2] for r in named} == {"web.example"}, named[:3]
    assert {r[1] for r in plain} <= {good.addr, "%s:%d" % (good.addr, port)}, plain[:3]
    assert {r[2] for r in plain} == {""}, plain[:3]     # no SNI for an IP address


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_checks_keep_connections(dnsd, backends, tls_cert, scheme):
    """Issue 16: http(s) checks reuse their connection (many requests, one
    connection per backend); against a server that closes each connection
    the https reconnects resume the TLS session; a kept-alive backend that
    is killed leaves the answers within interval x fall + timeout (its
    kept connection closes, the reconnect is refused)."""
    addrs = ["127.0.77.41", "127.0.77.42"]
    tls = tls_cert if scheme == "https" else ()
    port, (a, b) = backends(addrs, mode=scheme + "-keep", tls=tls)
    cport, (closer,) = backends(["127.0.77.43"], mode=scheme, tls=tls)
    check = "{type: %s, interval: 100ms, timeout: 80ms, rise: 2, fall: 2}" % scheme
    d = dnsd(zone_yaml(service_yaml("web", port, addrs, check=check)
                       + service_yaml("closer", cport, [closer.addr], check=check)))
    wait_for(lambda: len(a.requests_conn()) >= 10 and len(b.requests_conn()) >= 10
             and len(closer.requests_conn()) >= 10, 5.0, what="10 checks each")
    for k in (a, b):
        reqs = k.requests_conn()
        conns = {r[3] for r in reqs}
        print("\n%s keep-alive %s: %d requests on %d connections"
              % (scheme, k.addr, len(reqs), len(conns)))
        assert len(conns) <= 2, reqs[:5]
    reqs = closer.requests_conn()
    assert len({r[3] for r in reqs}) == len(reqs), reqs[:5]
    if scheme == "https":
        resumed = sum(r[4] == "1" for r in reqs)
        print("https reconnects: %d of %d handshakes resumed" % (resumed, len(reqs)))
        assert resumed >= len(reqs) - 2, reqs[:5]
    assert "is DOWN" not in d.log(), d.log()[-2000:]
    assert a_set(d, "web.mesh.") == set(addrs)

    t0 = time.monotonic()
    a.kill()
    _, dt = wait_for(lambda: a_set(d, "web.mesh.") == {b.addr}, 3.0,
                     what="the killed keep-alive backend out of answers")
    print("%s keep-alive backend killed: out of answers after %.0f ms" % (scheme, dt * 1000))
    assert dt < DETECT_BOUND, dt
    d.wait_log(r"%s:%d of web\.mesh is DOWN \(2 failures; last: connect: Connection refused\)"
               % (re.escape(a.addr), port), 2.0)


def test_http_hanging_backend_times_out(dnsd, backends):
    """A backend that accepts and never answers fails each probe by the
    timeout; a tcp check of the same kind of backend passes (the kernel
    completes the handshake), so only the http service loses it."""
    addrs = ["127.0.77.31", "127.0.77.32"]
    port = common_port(addrs)
    _, (hang,) = backends(addrs[:1], mode="hang", port=port)
    _, (fine,) = backends(addrs[1:], mode="http", port=port)
    check = "{type: http, interval: 100ms, timeout: 50ms, rise: 2, fall: 2}"
    d = dnsd(zone_yaml(service_yaml("web", port, addrs, check=check)
                       + service_yaml("raw", port, addrs)))
    t0 = time.monotonic()
    m = d.wait_log(r"backend %s:%d of web\.mesh is DOWN \(2 failures; last: timeout after "
                   r"(\d+) ms\)" % (re.escape(hang.addr), port), 3.0)
    assert 50 <= int(m.group(1)) < 100, m.group(0)
    _, dt = wait_for(lambda: a_set(d, "web.mesh.") == {fine.addr}, 2.0, what="hang out")
    print("\nhanging http backend out of answers %.0f ms after start (timeout %s ms)"
          % ((time.monotonic() - t0) * 1000, m.group(1)))
    time.sleep(0.3)
    assert a_set(d, "raw.mesh.") == set(addrs)
    assert "of raw.mesh is DOWN" not in d.log()


# ---------------------------------------------------------------- all down

def test_all_down_fail_open_and_nodata(dnsd, backends):
    """Every backend dead: a fail-open service (the default) answers with
    all of them; fail-open: false answers NOERROR with no answer and the
    SOA (NODATA), over UDP and TCP, for A and SRV; never SERVFAIL."""
    open_addrs = ["127.0.77.41", "127.0.77.42"]
    closed_addrs = ["127.0.77.43", "127.0.77.44"]
    port, bs = backends(open_addrs + closed_addrs)
    d = dnsd(zone_yaml(service_yaml("open", port, open_addrs)
                       + service_yaml("closed", port, closed_addrs, fail_open="false")))
    assert a_set(d, "closed.mesh.") == set(closed_addrs)
    time.sleep(0.2)
    logpos = len(d.log())
    for b in bs:
        b.kill()
    for a in open_addrs:
        d.wait_log(r"%s:%d of open\.mesh is DOWN" % (re.escape(a), port), 2.0, logpos)
    for a in closed_addrs:
        d.wait_log(r"%s:%d of closed\.mesh is DOWN" % (re.escape(a), port), 2.0, logpos)
    # The state changes are logged before the zone is republished.
    wait_for(lambda: not d.query("closed.mesh.", "A").answer, 2.0, what="closed.mesh NODATA")
    for tcp in (False, True):
        assert a_set(d, "open.mesh.", tcp=tcp) == set(open_addrs)
        r = d.query("open.mesh.", "SRV", tcp=tcp)
        assert r.rcode() == dns.rcode.NOERROR and len(answers(r, "SRV")) == 2
        for qname, qtype in (("closed.mesh.", "A"), ("closed.mesh.", "SRV"),
                             ("_http._tcp.closed.mesh.", "SRV")):
            r = d.query(qname, qtype, tcp=tcp)
            assert r.rcode() == dns.rcode.NOERROR, (qname, qtype, dns.rcode.to_text(r.rcode()))
            assert r.flags & dns.flags.AA
            assert not r.answer, (qname, qtype, r.answer)
            assert [rr.rdtype for rr in r.authority] == [dns.rdatatype.SOA], r.authority
    why = ch_txt(d, "_why.closed.mesh.")
    assert "healthy=0/2" in why[0] and "fail-open" not in why[0], why
    why = ch_txt(d, "_why.open.mesh.")
    assert "healthy=0/2" in why[0] and " fail-open " in why[0], why
    # One back: the closed service answers with it alone again.
    logpos = len(d.log())
    bs[3].start()
    wait_for(lambda: a_set(d, "closed.mesh.") == {closed_addrs[1]}, 3.0, what="one back")
    assert a_set(d, "open.mesh.") == set(open_addrs)
    d.wait_log(r"%s:%d of closed\.mesh is UP" % (re.escape(closed_addrs[1]), port), 1.0, logpos)


# ---------------------------------------------------------------- SOA serial

def test_soa_serial_increases_on_each_change(dnsd, backends):
    """The SOA serial is stable while nothing changes and strictly larger
    after every published health change (down, up, down again)."""
    addrs = ["127.0.77.51", "127.0.77.52"]
    port, bs = backends(addrs)
    d = dnsd(zone_yaml(service_yaml("web", port, addrs)))
    s0 = soa_serial(d)
    time.sleep(0.3)
    assert soa_serial(d) == s0, "serial changed without a change"
    serials = [s0]
    b = bs[0]
    for step in ("down", "up", "down", "up"):
        if step == "down":
            b.kill()
            wait_for(lambda: b.addr not in a_set(d, "web.mesh."), 3.0, what="down")
        else:
            b.start()
            wait_for(lambda: b.addr in a_set(d, "web.mesh."), 3.0, what="up")
        s = soa_serial(d)
        # The NODATA/NXDOMAIN SOA carries the same serial.
        r = d.query("nothing-here.mesh.", "A")
        assert r.rcode() == dns.rcode.NXDOMAIN and r.authority[0][0].serial == s
        serials.append(s)
    print("\nSOA serials: %s" % serials)
    assert all(b > a for a, b in zip(serials, serials[1:])), serials


# ---------------------------------------------------------------- status

def test_status_shows_down_backend(dnsd, backends):
    """CH TXT <service> (dig and dnspython), CH TXT _why.<service> and
    meshdig --status/--why show a killed backend as down with the reason."""
    addrs = ["127.0.77.61", "127.0.77.62", "127.0.77.63"]
    port, bs = backends(addrs)
    d = dnsd(zone_yaml(service_yaml("user-service", port, addrs)))
    time.sleep(0.3)
    bs[1].kill()
    d.wait_log(r"%s:%d of user-service\.mesh is DOWN" % (re.escape(addrs[1]), port), 2.0)
    wait_for(lambda: addrs[1] not in a_set(d, "user-service.mesh."), 2.0, what="republished")

    lines = ch_txt(d, "user-service.mesh.")
    assert lines[0].startswith("service policy=weighted healthy=2/3 "), lines[0]
    rows = status_rows(lines)
    key = "%s:%d" % (addrs[1], port)
    assert sorted(rows) == sorted("%s:%d" % (a, port) for a in addrs)
    assert rows[key][2] == "down", rows[key]
    line = [x for x in lines if " %s " % key in x][0]
    assert re.search(r" checks=\d+ last=connect: Connection refused/\d+ms$", line), line
    for a in (addrs[0], addrs[2]):
        assert rows["%s:%d" % (a, port)][2] == "up"

    if shutil.which("dig"):
        p = d.tool(["dig", "@{host}", "-p", "{port}", "+short", "user-service.mesh", "CH", "TXT"])
        assert p.returncode == 0, p.stderr
        out = [line.strip('"') for line in p.stdout.splitlines()]
        assert any(line.startswith("127-0-77-62 %s down " % key) for line in out), out
        p = d.tool(["dig", "@{host}", "-p", "{port}", "+short", "_why.user-service.mesh",
                    "CH", "TXT"])
        assert p.returncode == 0, p.stderr
        assert "healthy=2/3" in p.stdout and "candidates=2" in p.stdout, p.stdout
        order = [line for line in p.stdout.splitlines() if "order=" in line][0]
        assert addrs[1] not in order and addrs[0] in order and addrs[2] in order, order

    p = d.tool([MESHDIG, "@{host}", "-p", "{port}", "--status", "user-service.mesh"])
    assert p.returncode == 0, p.stderr
    mrows = {r.split()[1]: r.split() for r in p.stdout.splitlines()[2:] if r.strip()}
    assert mrows[key][2] == "down", p.stdout
    assert mrows["%s:%d" % (addrs[0], port)][2] == "up", p.stdout
    p = d.tool([MESHDIG, "@{host}", "-p", "{port}", "--why", "user-service.mesh"])
    assert p.returncode == 0, p.stderr
    assert "healthy=2/3" in p.stdout and addrs[1] not in p.stdout.split("order=")[1], p.stdout


# ---------------------------------------------------------------- balancing

def test_weighted_shares_first_answer(dnsd):
    """weighted, max-answers 1: over 5000 queries each backend is the
    answer in proportion to its weight, within 2 percentage points."""
    weights = {"127.0.77.71": 100, "127.0.77.72": 300, "127.0.77.73": 600}
    bes = ["{address: %s, weight: %d}" % (a, w) for a, w in weights.items()]
    d = dnsd(zone_yaml(service_yaml("web", 8080, bes, check="{type: none}", max_answers=1)))
    c = UdpClient(d)
    counts = dict.fromkeys(weights, 0)
    n = 5000
    try:
        for _ in range(n):
            r = c.ask(dns.message.make_query("web.mesh.", "A"))
            assert r is not None and r.rcode() == dns.rcode.NOERROR
            got = answers(r, "A")
            assert len(got) == 1, got
            counts[got[0]] += 1
    finally:
        c.close()
    total_w = sum(weights.values())
    shares = {a: counts[a] / n for a in weights}
    print("\nweighted first-answer shares over %d: %s (weights %s)"
          % (n, {a: round(s * 100, 2) for a, s in shares.items()}, weights))
    for a, w in weights.items():
        assert abs(shares[a] - w / total_w) < 0.02, (a, shares[a], w / total_w)


def test_failover_priority_groups(dnsd, backends):
    """failover answers with the lowest priority group that has a healthy
    backend: group 0 while one of it lives, group 1 when all of group 0
    are killed, group 0 again when one comes back."""
    g0 = ["127.0.77.81", "127.0.77.82"]
    g1 = ["127.0.77.83", "127.0.77.84"]
    port, bs = backends(g0 + g1)
    bes = ["{address: %s, priority: 0}" % a for a in g0] + \
          ["{address: %s, priority: 1}" % a for a in g1]
    d = dnsd(zone_yaml(service_yaml("web", port, bes, policy="failover")))
    for _ in range(20):
        assert a_set(d, "web.mesh.") == set(g0)
    r = d.query("web.mesh.", "SRV")
    assert sorted(rd.priority for rr in r.answer for rd in rr) == [0, 0]
    bs[0].kill()
    _, t_one = wait_for(lambda: a_set(d, "web.mesh.") == {g0[1]}, 3.0, what="g0[1] alone")
    bs[1].kill()
    _, t_g1 = wait_for(lambda: a_set(d, "web.mesh.") == set(g1), 3.0, what="group 1")
    for _ in range(20):
        assert a_set(d, "web.mesh.") == set(g1)
    r = d.query("web.mesh.", "SRV")
    assert sorted(rd.priority for rr in r.answer for rd in rr) == [1, 1]
    bs[0].start()
    _, t_back = wait_for(lambda: a_set(d, "web.mesh.") == {g0[0]}, 3.0, what="group 0 back")
    print("\nfailover: one of group 0 out %.0f ms, group 1 takes over %.0f ms, group 0 back "
          "%.0f ms" % (t_one * 1000, t_g1 * 1000, t_back * 1000))
    assert t_g1 < DETECT_BOUND and t_one < DETECT_BOUND


def ecs_query(subnet, name="web.mesh."):
    addr, _, plen = subnet.partition("/")
    return dns.message.make_query(name, "A", use_edns=0,
                                  options=[dns.edns.ECSOption(addr, int(plen))])


def test_hash_sticky_per_client_subnet(dnsd, backends):
    """hash with max-answers 1: each EDNS Client Subnet keeps its backend;
    killing one backend moves only that backend's subnets, and they return
    to it when it is back."""
    addrs = ["127.0.77.91", "127.0.77.92", "127.0.77.93", "127.0.77.94"]
    port, bs = backends(addrs)
    d = dnsd(zone_yaml(service_yaml("web", port, addrs, policy="hash", max_answers=1)))
    subnets = ["10.%d.%d.0/24" % (i // 200, i % 200) for i in range(300)]
    c = UdpClient(d)

    def mapping():
        out = {}
        for s in subnets:
            r = c.ask(ecs_query(s))
            assert r is not None and r.rcode() == dns.rcode.NOERROR
            got = answers(r, "A")
            assert len(got) == 1
            out[s] = got[0]
        return out

    try:
        first = mapping()
        assert mapping() == first, "not sticky"
        # The answer depends on the whole /24: the ECS scope says so.
        r = c.ask(ecs_query(subnets[0]))
        ecs = [o for o in r.options if isinstance(o, dns.edns.ECSOption)]
        assert len(ecs) == 1 and ecs[0].srclen == 24 and ecs[0].scopelen == 24, ecs
        per = {a: sum(1 for v in first.values() if v == a) for a in addrs}
        print("\nhash: subnets per backend %s" % per)
        assert all(n >= 30 for n in per.values()), per       # 75 expected each
        victim = bs[1]
        victim.kill()
        moved_sub = next(s for s, a in first.items() if a == victim.addr)
        wait_for(lambda: answers(c.ask(ecs_query(moved_sub)), "A") != [victim.addr], 3.0,
                 what="victim's subnet moved")
        after = mapping()
        moved = [s for s in subnets if after[s] != first[s]]
        assert moved and all(first[s] == victim.addr for s in moved), \
            [(s, first[s], after[s]) for s in moved if first[s] != victim.addr][:5]
        assert len(moved) == per[victim.addr]
        assert victim.addr not in after.values()
        # The victim's subnets spread over the others, not onto one.
        assert len({after[s] for s in moved}) > 1
        victim.start()
        wait_for(lambda: answers(c.ask(ecs_query(moved_sub)), "A") == [victim.addr], 3.0,
                 what="victim's subnet back")
        assert mapping() == first
    finally:
        c.close()


def srv_weights(d, name="_http._tcp.web.mesh."):
    r = d.query(name, "SRV")
    assert r.rcode() == dns.rcode.NOERROR
    return {rd.target.to_text(): rd.weight for rr in r.answer for rd in rr}


def test_slow_start_ramps_srv_weight(dnsd, backends):
    """slow-start 2s: a backend that comes back up starts at 10% of its
    weight in SRV answers and ramps linearly to 100% over 2 s (450 per
    second for weight 1000); the backend that never went down keeps its
    full weight. Each sample (t, w) dates the start of the ramp at
    t - (w - 100) / 450: all of them must agree, and fall between the
    restart and the first answer holding the backend again."""
    addrs = ["127.0.77.101", "127.0.77.102"]
    port, (slow, steady) = backends(addrs)
    bes = ["{address: %s, weight: 1000}" % a for a in addrs]
    d = dnsd(zone_yaml(service_yaml("web", port, bes, slow_start="2s")))
    slow_t, steady_t = "127-0-77-101.web.mesh.", "127-0-77-102.web.mesh."
    # Backends up from the start are not in slow start.
    assert srv_weights(d) == {slow_t: 1000, steady_t: 1000}
    slow.kill()
    wait_for(lambda: slow_t not in srv_weights(d), 3.0, what="slow out of SRV")
    t_start = time.monotonic()
    slow.start()
    w0, _ = wait_for(lambda: srv_weights(d).get(slow_t), 3.0, step=0.002, what="slow back")
    t_seen = time.monotonic()
    samples = [(t_seen, w0)]
    while time.monotonic() - t_seen < 2.4:
        time.sleep(0.1)
        ws = srv_weights(d)
        assert ws[steady_t] == 1000, ws
        samples.append((time.monotonic(), ws[slow_t]))
    print("\nslow-start 2s, weight 1000 (s after first seen, weight): %s"
          % [(round(t - t_seen, 2), w) for t, w in samples])
    ws = [w for _, w in samples]
    assert 100 <= w0 < 1000, samples
    assert ws == sorted(ws), "weight went down during the ramp"
    assert ws[-1] == 1000, samples
    assert len(set(ws)) > 10, "no ramp"
    ramp_start = [t - (w - 100) / 450.0 for t, w in samples if w < 1000]
    spread = max(ramp_start) - min(ramp_start)
    assert spread < 0.1, "not linear at 450/s: ramp starts %r" % ramp_start
    assert t_start - 0.05 < min(ramp_start) and max(ramp_start) < t_seen + 0.02, \
        (t_start, ramp_start, t_seen)
    row = status_rows(ch_txt(d, "web.mesh."))["%s:%d" % (addrs[0], port)]
    assert "weight=1000" in row and "effective=1000" in row, row


# ---------------------------------------------------------------- reload

def test_reload_keeps_health_state(dnsd, backends):
    """SIGHUP with the same backends (and an extra record) keeps each one's
    state: the dead one stays out of answers and no backend flaps DOWN/UP;
    a backend added by the reload starts up and is then checked. Queries
    during the reloads never fail."""
    addrs = ["127.0.77.111", "127.0.77.112", "127.0.77.113"]
    port, bs = backends(addrs)
    new_addr = "127.0.77.114"
    base = service_yaml("web", port, addrs)
    d = dnsd(zone_yaml(base))
    time.sleep(0.3)
    bs[1].kill()
    wait_for(lambda: addrs[1] not in a_set(d, "web.mesh."), 3.0, what="dead one out")
    d.wait_log(r"%s:%d of web\.mesh is DOWN" % (re.escape(addrs[1]), port), 1.0)
    before = status_rows(ch_txt(d, "web.mesh."))
    q = Querier(d, "web.mesh.", rate=200)
    q.start()
    try:
        logpos = len(d.log())
        extra = "      - {name: extra, type: A, data: 192.0.2.1}\n"
        yaml2 = zone_yaml(base).replace("    services:\n", extra + "    services:\n")
        for i in range(3):
            assert d.reload(yaml2 if i % 2 == 0 else zone_yaml(base))
            assert addrs[1] not in a_set(d, "web.mesh."), "dead backend back after reload"
            time.sleep(0.3)
        assert a_set(d, "extra.mesh.") == {"192.0.2.1"}
        after = status_rows(ch_txt(d, "web.mesh."))
        # Check counters went on instead of starting over.
        for key in before:
            cb = int([f for f in before[key] if f.startswith("checks=")][0][7:])
            ca = int([f for f in after[key] if f.startswith("checks=")][0][7:])
            assert ca > cb, (key, cb, ca)
        assert after["%s:%d" % (addrs[1], port)][2] == "down"
        flaps = re.findall(r"backend \S+ of web\.mesh is (?:UP|DOWN)[^\n]*", d.log()[logpos:])
        assert not flaps, flaps
        # A new backend (nothing listens there) starts up, then goes down.
        logpos = len(d.log())
        yaml3 = zone_yaml(service_yaml("web", port, addrs + [new_addr]))
        assert d.reload(yaml3)
        assert new_addr in a_set(d, "web.mesh.")
        d.wait_log(r"%s:%d of web\.mesh is DOWN" % (re.escape(new_addr), port), 2.0, logpos)
        wait_for(lambda: a_set(d, "web.mesh.") == {addrs[0], addrs[2]}, 2.0, what="new one out")
        flaps = re.findall(r"backend (\S+) of web\.mesh is (?:UP|DOWN)", d.log()[logpos:])
        assert flaps == ["%s:%d" % (new_addr, port)], flaps
    finally:
        q.stop()
    bad = [e for e in q.log if e[2] != dns.rcode.NOERROR or not e[3]]
    print("\nreloads: %d queries, %d failed or empty" % (len(q.log), len(bad)))
    assert not bad, bad[:5]


def test_same_host_two_ports_checked_per_port(dnsd, backends):
    """One host on two ports is two backends with one name: each port is
    checked on its own; when one port dies its SRV record goes, and the
    host's address stays in A answers through the other."""
    host, other = "127.0.77.141", "127.0.77.142"
    p1 = common_port([host, other])
    p2 = common_port([host])
    assert p1 != p2
    _, (h1, o1) = backends([host, other], port=p1)
    _, (h2,) = backends([host], port=p2)
    bes = ["{address: %s, port: %d}" % (host, p1), "{address: %s, port: %d}" % (host, p2),
           "{address: %s, port: %d}" % (other, p1)]
    d = dnsd(zone_yaml(service_yaml("web", p1, bes)))

    def srv():
        r = d.query("_http._tcp.web.mesh.", "SRV")
        return sorted((rd.target.to_text(), rd.port) for rr in r.answer for rd in rr)

    name = "127-0-77-141.web.mesh."
    assert srv() == sorted([(name, p1), (name, p2), ("127-0-77-142.web.mesh.", p1)])
    h2.kill()
    wait_for(lambda: (name, p2) not in srv(), 3.0, what="dead port out of SRV")
    d.wait_log(r"%s:%d of web\.mesh is DOWN" % (re.escape(host), p2), 1.0)
    assert srv() == sorted([(name, p1), ("127-0-77-142.web.mesh.", p1)])
    assert a_set(d, "web.mesh.") == {host, other}
    assert a_set(d, name) == {host}
    h1.kill()
    wait_for(lambda: a_set(d, "web.mesh.") == {other}, 3.0, what="host out of A")


# ---------------------------------------------------------------- deviations
#
# Each test below checks documented behaviour that dnsd does not have yet;
# they are expected to fail (strict: they report when fixed).

def test_same_host_two_ports_one_a_record(dnsd, backends):
    """RFC 2181 5: an RRset holds no duplicate records. Two backends on one
    address (documented as one host on two ports) must give one A record."""
    host, other = "127.0.77.151", "127.0.77.152"
    bes = ["{address: %s, port: 47001}" % host, "{address: %s, port: 47002}" % host,
           "{address: %s, port: 47001}" % other]
    d = dnsd(zone_yaml(service_yaml("web", 47001, bes, check="{type: none}")))
    assert a_set(d, "web.mesh.") == {host, other}
    raw = d.raw_udp(dns.message.make_query("web.mesh.", "A").to_wire())
    ancount = int.from_bytes(raw[6:8], "big")
    assert ancount == 2, "A RRset with %d records for 2 addresses" % ancount


def test_check_probes_first_service_port_or_the_given_one(dnsd, backends):
    """check `port: 0` (the default) probes the backend's port or else the
    service's first port; `check: {port: N}` probes port N instead."""
    addr = "127.0.77.121"
    p1 = common_port([addr])
    p2 = common_port([addr])
    assert p1 != p2
    _, (web,) = backends([addr], mode="http", port=p1)
    _, (admin,) = backends([addr], mode="http", port=p2)
    check = "{type: http, interval: 100ms, timeout: 80ms, rise: 2, fall: 2}"
    d = dnsd(zone_yaml(service_yaml("web", {"http": p1, "admin": p2}, [addr], check=check)))
    time.sleep(0.6)
    assert a_set(d, "web.mesh.") == {addr}
    assert web.requests(), "the first port was never probed"
    assert not admin.requests(), "the second service port was probed without check.port"
    check = "{type: http, port: %d, interval: 100ms, timeout: 80ms, rise: 2, fall: 2}" % p2
    d.reload(zone_yaml(service_yaml("web", {"http": p1, "admin": p2}, [addr], check=check)))
    time.sleep(0.6)
    assert admin.requests(), "check.port did not move the probe to the admin port"


def test_fail_open_only_when_no_backend_is_up(dnsd, backends):
    """dnsd.yaml(5) fail-open: "when no backend is healthy, answer with all
    of them". With a healthy IPv4 backend and a dead IPv6 one, AAAA must
    not hand out the dead address (NODATA), A answers the live one."""
    if not ipv6_loopback():
        pytest.skip("no ::1")
    port4, (v4,) = backends(["127.0.77.131"])
    port6 = free_port("::1")
    bes = ["{address: 127.0.77.131, port: %d}" % port4, '{address: "::1", port: %d}' % port6]
    d = dnsd(zone_yaml(service_yaml("web", port4, bes)))
    d.wait_log(r"backend \[::1\]:%d of web\.mesh is DOWN" % port6, 2.0)
    wait_for(lambda: "healthy=1/2" in ch_txt(d, "web.mesh.")[0], 2.0, what="republished")
    assert a_set(d, "web.mesh.") == {v4.addr}
    r = d.query("web.mesh.", "AAAA")
    assert r.rcode() == dns.rcode.NOERROR
    assert answers(r, "AAAA") == [], "a DOWN backend answered while another is up"

"""The live registry through the real server: a stalled backend still goes
DOWN while UPDATEs change a checked service every 0.2 s (each one makes the
watcher switch configs); a flapping backend costs a bounded number of log
lines and NOTIFYs; health changes raise the serial in place and IXFR gives
just the difference; an UPDATE of one service is served at its answer."""
import re
import socket
import threading
import time

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring
import dns.update

SECRET = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
RING = dns.tsigkeyring.from_text({"k.": ("hmac-sha256", SECRET)})


def conf(journal, checked_port, stalled_port, notify=""):
    return """
keys:
  - {name: k, algorithm: hmac-sha256, secret: "%(secret)s"}
zones:
  - name: mesh
    ns: [ns1]
    soa: {serial: 100}
    update: {keys: [k], journal: "%(journal)s"}
    transfer: {keys: [k]}
    notify: [%(notify)s]
    records:
      - {name: ns1, type: A, data: 127.0.0.1}
    services:
      - name: churn
        ports: {http: %(cport)d}
        check: {type: tcp, interval: 100ms, timeout: 50ms, rise: 1, fall: 1}
        fail-open: false
        backends: [127.0.91.1]
      - name: slow
        ports: {http: %(sport)d}
        check: {type: http, path: /, interval: 300ms, timeout: 250ms, rise: 1, fall: 2}
        fail-open: false
        backends: [127.0.91.2, 127.0.91.3]
""" % {"secret": SECRET, "journal": journal, "cport": checked_port, "sport": stalled_port,
       "notify": notify}


class Listener:
    """TCP listener on addr:port; mode 'accept' closes at once, 'stall'
    accepts and never answers."""

    def __init__(self, addr, port=0, mode="accept"):
        self.addr, self.mode, self.held = addr, mode, []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, port))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(128)
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if self.mode == "stall":
                self.held.append(c)
            elif self.mode == "http":
                threading.Thread(target=self._http, args=(c,), daemon=True).start()
            else:
                c.close()

    @staticmethod
    def _http(c):
        try:
            c.settimeout(2)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = c.recv(4096)
                if not chunk:
                    break
                data += chunk
            c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for c in self.held:
            c.close()


def addrs(d, name):
    r = d.query(name, "A")
    return sorted(rr.address for rrs in r.answer for rr in rrs)


def serial(d):
    r = d.query("mesh.", "SOA", tcp=True)
    return r.answer[0][0].serial


def send_update(d, add=None, delete=None, name="churn"):
    u = dns.update.UpdateMessage("mesh.", keyring=RING, keyname="k.", keyalgorithm="hmac-sha256")
    if add:
        u.add(name, 30, "A", add)
    if delete:
        u.delete(name, "A", delete)
    return dns.query.tcp(u, d.host, port=d.port, timeout=5)


def test_stalled_backend_goes_down_under_update_churn(dnsd, tmp_path):
    """UPDATEs of a checked service every 0.2 s switch the watcher's config
    each time; a probe in flight must survive them, so a backend that
    accepts and never answers goes DOWN within interval x fall + timeout
    (+ slack), not never."""
    good = Listener("127.0.91.2", mode="http")
    stalled = Listener("127.0.91.3", good.port, mode="stall")
    churn = Listener("127.0.91.1")
    d = dnsd(conf(tmp_path / "j", churn.port, good.port))
    try:
        assert addrs(d, "slow.mesh.") in (["127.0.91.2"], ["127.0.91.2", "127.0.91.3"])
        t0 = time.monotonic()
        down_at, n = None, 0
        while time.monotonic() - t0 < 6 and down_at is None:
            ip = "127.0.92.%d" % (1 + n % 200)
            r = send_update(d, add=ip) if n % 2 == 0 else send_update(d, delete=ip)
            assert r.rcode() == dns.rcode.NOERROR
            n += 1
            if addrs(d, "slow.mesh.") == ["127.0.91.2"]:
                down_at = time.monotonic() - t0
            time.sleep(0.2)
        assert down_at is not None, "the stalled backend was never marked down (%d UPDATEs)" % n
        # interval 300 ms x fall 2 + timeout 250 ms, plus the first probe's
        # random start and the 0.2 s polling: well under 2 s.
        assert down_at < 2.0, down_at
        d.wait_log(r"127\.0\.91\.3:%d of slow\.mesh is DOWN" % good.port, 2)
    finally:
        good.close()
        stalled.close()
        churn.close()


class NotifySink:
    """A secondary's NOTIFY port: answers every NOTIFY (signed back with
    the key) and counts them."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self.sock.settimeout(0.2)
        self.running = True
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while self.running:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                continue
            try:
                m = dns.message.from_wire(data, keyring=RING)
            except Exception:
                continue
            self.count += 1
            r = dns.message.make_response(m)
            self.sock.sendto(r.to_wire(), peer)

    def close(self):
        self.running = False
        self.sock.close()


def test_flapping_backend_bounded_logs_and_notifies(dnsd, tmp_path):
    """A listener opened and closed every 50 ms for 4 s flips its backend
    (rise 1, fall 1, 100 ms checks) dozens of times: answers follow, the
    serial moves in place, but the log keeps to a burst of 8 lines plus a
    count, and the secondary gets about one NOTIFY a second, not one per
    change."""
    sink = NotifySink()
    good = Listener("127.0.91.2")
    churn_port = good.port
    d = dnsd(conf(tmp_path / "j", churn_port, good.port,
                  notify="{address: 127.0.0.1:%d, key: k}" % sink.port))
    try:
        s0 = serial(d)
        flap = None
        t0 = time.monotonic()
        while time.monotonic() - t0 < 5:
            flap = Listener("127.0.91.1", churn_port)
            time.sleep(0.05)
            flap.close()
            time.sleep(0.05)
        time.sleep(1.5)
        elapsed = time.monotonic() - t0
        transitions = re.findall(r"127\.0\.91\.1:%d of churn\.mesh is (?:UP|DOWN)" % churn_port,
                                 d.log())
        s1 = serial(d)
        assert s1 - s0 >= 2, (s0, s1)     # changes were served (serial moved in place)
        # A burst of 8 lines, then one per 10 s: fewer lines than changes.
        assert len(transitions) <= 8 + 1, len(transitions)
        if s1 - s0 > 9:
            assert s1 - s0 > len(transitions), (s1 - s0, len(transitions))
        # At most one a second (plus the first), not one per change.
        assert sink.count <= elapsed + 2, (sink.count, elapsed, s1 - s0)
        assert sink.count >= 2, sink.count
        # The answers still follow the last state (closed: down).
        assert addrs(d, "churn.mesh.") == []
    finally:
        sink.close()
        good.close()


def test_health_change_is_an_ixfr_difference(dnsd, tmp_path):
    """A backend going down raises the serial without a new snapshot, and
    IXFR from the old serial gives just that service's A record leaving."""
    good = Listener("127.0.91.2", mode="http")
    good3 = Listener("127.0.91.3", good.port, mode="http")
    churn = Listener("127.0.91.1")
    d = dnsd(conf(tmp_path / "j", churn.port, good.port), args=["-v"])
    try:
        assert addrs(d, "churn.mesh.") == ["127.0.91.1"]
        time.sleep(1.0)              # every backend checked: nothing else moves
        s0 = serial(d)
        start = len(d.log())
        churn.close()
        t0 = time.monotonic()
        while addrs(d, "churn.mesh.") and time.monotonic() - t0 < 3:
            time.sleep(0.01)
        assert addrs(d, "churn.mesh.") == []
        s1 = serial(d)
        assert s1 != s0
        assert "published snapshot" not in d.log()[start:]   # nothing rebuilt
        q = dns.message.make_query("mesh.", "IXFR")
        q.authority.append(dns.rrset.from_text(
            "mesh.", 0, "IN", "SOA", "ns1.mesh. hostmaster.mesh. %d 3600 600 86400 30" % s0))
        q.use_tsig(RING, keyname="k.", algorithm="hmac-sha256")
        r = dns.query.tcp(q, d.host, port=d.port, timeout=5, one_rr_per_rrset=True)
        body = [(rr.name.to_text(), rr.rdtype, rr[0].to_text()) for rr in r.answer]
        soas = [b for b in body if b[1] == dns.rdatatype.SOA]
        others = [b for b in body if b[1] != dns.rdatatype.SOA]
        assert len(soas) == 4, body
        # The service's A and the SRV of its name and of its port name.
        assert others and all(b[0].endswith("churn.mesh.") for b in others), body
        assert ("churn.mesh.", dns.rdatatype.A, "127.0.91.1") in others, body
    finally:
        good.close()
        good3.close()


def test_update_served_at_ack_and_nothing_rebuilt(dnsd, tmp_path):
    """An UPDATE adding a backend to a service is in the answers as soon as
    it is acknowledged, without a snapshot rebuild or a YAML parse."""
    good = Listener("127.0.91.2")
    churn = Listener("127.0.91.1")
    d = dnsd(conf(tmp_path / "j", churn.port, good.port), args=["-v"])
    try:
        start = len(d.log())
        t = time.monotonic()
        r = send_update(d, add="127.0.0.77", name="slow")
        took = time.monotonic() - t
        assert r.rcode() == dns.rcode.NOERROR
        q = d.query("127-0-0-77.slow.mesh.", "A")
        assert [rr.address for rrs in q.answer for rr in rrs] == ["127.0.0.77"]
        assert took < 1.0, took
        assert "published snapshot" not in d.log()[start:]    # nothing rebuilt
    finally:
        good.close()
        churn.close()



def test_initial_state_down_for_new_backends(dnsd, tmp_path):
    """initial-state: down: a backend added by UPDATE gets no traffic
    until rise checks passed; one nobody listens on never gets any. The
    default (up) serves a new backend at once."""
    lst = Listener("127.0.91.5")
    text = conf(tmp_path / "j", lst.port, lst.port).replace(
        "      - name: churn\n", "      - name: gated\n"
        "        ports: {http: %d}\n"
        "        check: {type: tcp, interval: 100ms, timeout: 50ms, rise: 2, fall: 1,"
        " initial-state: down}\n"
        "        fail-open: false\n"
        "        backends: [127.0.91.4]\n"
        "      - name: churn\n" % lst.port)
    d = dnsd(text)
    try:
        r = send_update(d, add="127.0.91.5", name="gated")
        assert r.rcode() == dns.rcode.NOERROR
        assert "127.0.91.5" not in addrs(d, "gated.mesh.")     # not before its checks
        t0 = time.monotonic()
        while "127.0.91.5" not in addrs(d, "gated.mesh.") and time.monotonic() - t0 < 3:
            time.sleep(0.01)
        took = time.monotonic() - t0
        assert "127.0.91.5" in addrs(d, "gated.mesh."), "never served after good checks"
        assert took >= 0.08, took                              # rise 2 at 100 ms
        r = send_update(d, add="127.0.91.6", name="gated")     # nothing listens there
        assert r.rcode() == dns.rcode.NOERROR
        time.sleep(0.6)
        assert "127.0.91.6" not in addrs(d, "gated.mesh.")
        # The default: up until proven down.
        r = send_update(d, add="127.0.91.7", name="churn")
        assert r.rcode() == dns.rcode.NOERROR
        assert "127.0.91.7" in addrs(d, "churn.mesh.")
    finally:
        lst.close()

"""A real etcd cluster for integration tests, and the etcd_watch helper
(tests/integration/etcd_watch.c) that runs dnsd's etcd client.

    c = EtcdCluster(tmp_path, 3).start()   # members on 127.0.120.1-3, free ports
    c.put("/skydns/mesh/a/x", '{"host":"10.0.0.1"}')   # -> revision
    c.kill(c.leader()); c.restart(i)       # SIGKILL by pid; same data dir
    w = EtcdWatch(c.endpoints()).start()   # the client; w.lines, w.status()
    w.stop(); c.stop()

etcd comes from Debian's etcd-server package (.ci/deps). The client talks
to the members over the v3 JSON gateway with http.client (one keep-alive
connection per member), which is what etcdctl does over gRPC, without a
process per request. Every process is ended by its own pid.
"""
import base64
import http.client
import json
import os
import shutil
import signal
import subprocess
import threading
import time

from dnsd_harness import DNSD, free_port

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"
WATCH = os.environ.get("ETCD_WATCH") or os.path.join(
    os.path.dirname(DNSD), "tests", "helpers", "etcd_watch")


def b64(s):
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s).decode()


def unb64(s):
    return base64.b64decode(s).decode("utf-8", "replace")


class EtcdError(Exception):
    pass


class Member:
    def __init__(self, name, host, client_port, peer_port, data_dir, log_path):
        self.name, self.host = name, host
        self.client_port, self.peer_port = client_port, peer_port
        self.data_dir, self.log_path = data_dir, log_path
        self.proc = None
        self.conn = None

    @property
    def endpoint(self):
        return "%s:%d" % (self.host, self.client_port)

    @property
    def peer_url(self):
        return "http://%s:%d" % (self.host, self.peer_port)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


class EtcdCluster:
    """n members on 127.0.120.1.. (client and peer ports picked free).
    Heartbeat 50 ms and election 500 ms, so a killed leader is replaced
    within about a second."""

    def __init__(self, tmp_path, n=3, first_host=1):
        self.dir = str(tmp_path)
        os.makedirs(self.dir, exist_ok=True)
        self.members = []
        for i in range(n):
            host = "127.0.120.%d" % (first_host + i)
            name = "m%d" % (first_host + i)
            self.members.append(Member(
                name, host, free_port(host), free_port(host),
                os.path.join(self.dir, name + ".data"), os.path.join(self.dir, name + ".log")))

    def endpoints(self, first=None):
        """Client endpoints; member index first (if given) leads the list."""
        order = list(range(len(self.members)))
        if first is not None:
            order.remove(first)
            order.insert(0, first)
        return [self.members[i].endpoint for i in order]

    def _cmd(self, m):
        initial = ",".join("%s=%s" % (x.name, x.peer_url) for x in self.members)
        return [ETCD, "--name", m.name, "--data-dir", m.data_dir,
                "--listen-client-urls", "http://" + m.endpoint,
                "--advertise-client-urls", "http://" + m.endpoint,
                "--listen-peer-urls", m.peer_url,
                "--initial-advertise-peer-urls", m.peer_url,
                "--initial-cluster", initial, "--initial-cluster-state", "new",
                "--initial-cluster-token", "meshdns-test-%d" % os.getpid(),
                "--heartbeat-interval", "50", "--election-timeout", "500",
                "--logger", "zap", "--log-level", "warn"]

    def _spawn(self, m):
        log = open(m.log_path, "ab")
        m.proc = subprocess.Popen(self._cmd(m), stdout=log, stderr=log)
        log.close()
        m.conn = None

    def start(self, timeout=20.0):
        for m in self.members:
            self._spawn(m)
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout=20.0, members=None):
        """Until every live member (or those given) answers a linearizable
        read, i.e. the cluster has a leader and quorum."""
        deadline = time.monotonic() + timeout
        todo = [m for m in (members or self.members) if m.alive()]
        while todo:
            m = todo[0]
            try:
                self.request(m, "/v3/kv/range", {"key": b64("/health-probe")}, timeout=1.0)
                todo.pop(0)
            except (OSError, EtcdError, http.client.HTTPException):
                if not m.alive():
                    raise RuntimeError("etcd %s exited:\n%s" % (m.name, self.log(m)))
                if time.monotonic() > deadline:
                    raise RuntimeError("etcd %s not healthy after %.0fs:\n%s"
                                       % (m.name, timeout, self.log(m)))
                time.sleep(0.05)

    def log(self, m):
        try:
            with open(m.log_path, "rb") as f:
                return f.read()[-4000:].decode("utf-8", "replace")
        except OSError:
            return ""

    def kill(self, i, sig=signal.SIGKILL):
        m = self.members[i]
        if m.alive():
            m.proc.send_signal(sig)
            m.proc.wait(timeout=10)
        conn, m.conn = m.conn, None   # a writer thread may be using it
        if conn:
            conn.close()

    def restart(self, i, timeout=20.0):
        m = self.members[i]
        if not m.alive():
            self._spawn(m)
        self.wait_healthy(timeout, [m])

    def stop(self):
        for m in self.members:
            if m.alive():
                m.proc.terminate()
        for m in self.members:
            if m.proc is not None:
                try:
                    m.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    m.proc.kill()
                    m.proc.wait()
            if m.conn:
                m.conn.close()

    # ---------------------------------------------------------------- client
    def request(self, m, path, body, timeout=5.0):
        """POST body (a dict) to member m; the answer as a dict. Raises
        EtcdError on an etcd error, OSError when the member is gone."""
        if isinstance(m, int):
            m = self.members[m]
        # One local reference: kill() may drop m.conn from another thread
        # while this request runs (a writer thread during a leader kill).
        conn = m.conn
        if conn is None:
            conn = m.conn = http.client.HTTPConnection(m.host, m.client_port, timeout=timeout)
        conn.timeout = timeout
        try:
            conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException, AttributeError):
            conn.close()
            if m.conn is conn:
                m.conn = None
            raise OSError("%s %s: connection lost" % (m.name, path))
        ans = json.loads(data) if data else {}
        if r.status != 200 or "error" in ans:
            raise EtcdError("%s %s: %d %s" % (m.name, path, r.status, data[:300]))
        return ans

    def _any(self, path, body, prefer=None):
        """The request on the first live member that answers it."""
        order = [m for m in self.members if m.alive()]
        if prefer is not None:
            order.sort(key=lambda m: m is not self.members[prefer])
        err = None
        for m in order:
            try:
                return self.request(m, path, body)
            except (OSError, EtcdError, http.client.HTTPException) as e:
                err = e
        raise EtcdError("no member answered %s: %s" % (path, err))

    def put(self, key, value, lease=None, member=None):
        body = {"key": b64(key), "value": b64(value)}
        if lease:
            body["lease"] = str(lease)
        return int(self._any("/v3/kv/put", body, member)["header"]["revision"])

    def delete(self, key, member=None):
        return int(self._any("/v3/kv/deleterange", {"key": b64(key)}, member)["header"]["revision"])

    def put_many(self, items):
        """Puts (key, value) pairs, 128 to a transaction (etcd's default
        --max-txn-ops); the last revision."""
        rev = 0
        for i in range(0, len(items), 128):
            ops = [{"request_put": {"key": b64(k), "value": b64(v)}} for k, v in items[i:i + 128]]
            rev = int(self._any("/v3/kv/txn", {"success": ops})["header"]["revision"])
        return rev

    def range(self, prefix, rev=None):
        """({key: value}, revision) of everything under prefix (at rev)."""
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        body = {"key": b64(prefix), "range_end": b64(end)}
        if rev:
            body["revision"] = str(rev)
        ans = self._any("/v3/kv/range", body)
        kvs = {unb64(kv["key"]): unb64(kv.get("value", "")) for kv in ans.get("kvs", [])}
        return kvs, int(ans["header"]["revision"])

    def revision(self):
        return self.range("/")[1]

    def compact(self, rev):
        self._any("/v3/kv/compaction", {"revision": str(rev), "physical": True})

    def leader(self):
        """The index of the leader member."""
        for m in self.members:
            if not m.alive():
                continue
            st = self.request(m, "/v3/maintenance/status", {})
            for i, x in enumerate(self.members):
                if x.alive() and self.request(x, "/v3/maintenance/status", {})["header"][
                        "member_id"] == st["leader"]:
                    return i
        raise EtcdError("no leader")

    def etcdctl(self, *args):
        env = dict(os.environ, ETCDCTL_API="3")
        out = subprocess.run([ETCDCTL, "--endpoints", ",".join(self.endpoints())] + list(args),
                             env=env, capture_output=True, text=True, timeout=20)
        if out.returncode != 0:
            raise EtcdError("etcdctl %s: %s" % (" ".join(args), out.stderr))
        return out.stdout


class EtcdWatch:
    """The etcd_watch helper: lines it prints are parsed as they come.
    Events are tuples ("put"|"del", revision, key); snapshots are
    (revision, {key: (host, port)}) once their "end" line arrived."""

    def __init__(self, endpoints, prefix="/skydns/", args=()):
        self.cmd = [WATCH, "-p", prefix, "-d", "300", "-r", "2000"] + list(args) + list(endpoints)
        self.proc = None
        self.lines = []
        self.events = []
        self.snapshots = []
        self.statuses = []
        self._pending = None
        self._cv = threading.Condition()
        self.stderr_path = None

    def start(self, log_path=None):
        self.stderr_path = log_path
        err = open(log_path, "ab") if log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=err, text=True,
                                     bufsize=1)
        if log_path:
            err.close()
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self):
        for line in self.proc.stdout:
            f = line.split()
            if not f:
                continue
            with self._cv:
                self.lines.append(line.rstrip("\n"))
                if f[0] == "snapshot":
                    self._pending = (int(f[1]), {})
                elif f[0] == "kv":
                    self._pending[1][f[2]] = (f[5], int(f[6]))
                elif f[0] == "end":
                    assert self._pending and self._pending[0] == int(f[1]), line
                    assert len(self._pending[1]) == int(f[2]), line
                    self.snapshots.append(self._pending)
                    self._pending = None
                elif f[0] in ("put", "del"):
                    self.events.append((f[0], int(f[1]), f[2]))
                elif f[0] == "status":
                    st = dict(x.split("=", 1) for x in f[1:])
                    for k in list(st):
                        if k != "endpoint":
                            st[k] = int(st[k])
                    self.statuses.append(st)
                self._cv.notify_all()

    def status(self):
        with self._cv:
            return dict(self.statuses[-1]) if self.statuses else {}

    def wait(self, pred, timeout=10.0, what="condition"):
        """Waits until pred(self) (called under the lock) is true."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while not pred(self):
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError("etcd_watch: no %s after %.1fs (exit %s); last lines:\n%s"
                                         % (what, timeout, self.proc.poll(),
                                            "\n".join(self.lines[-15:])))
                self._cv.wait(min(left, 0.1))

    def wait_status(self, timeout=10.0, **want):
        self.wait(lambda w: w.statuses and all(
            (v(w.statuses[-1][k]) if callable(v) else w.statuses[-1][k] == v)
            for k, v in want.items()), timeout, "status %r" % want)
        return self.status()

    def wait_rev(self, rev, timeout=10.0):
        return self.wait_status(timeout, rev=lambda r: r >= rev)

    def state(self):
        """{key: present} rebuilt from the last snapshot and the events after it."""
        with self._cv:
            rev, kvs = self.snapshots[-1]
            keys = set(kvs)
            for typ, r, key in self.events:
                if r <= rev:
                    continue
                if typ == "put":
                    keys.add(key)
                else:
                    keys.discard(key)
            return keys

    def stop(self):
        """SIGTERM by pid; the exit status (0 when it stopped cleanly)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return -9
        return self.proc.returncode

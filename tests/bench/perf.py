#!/usr/bin/python3
"""perf.py -- CPU per query, max qps and latency of dnsd against NSD, Knot,
gdnsd and PowerDNS (bind backend), with a null responder as the floor; and
how dnsd scales with the number of names.

One generated zone, N services x 3 backends (default N=100): svcK.mesh A
(3 addresses), _http._tcp.svcK.mesh SRV (3 records) and their targets
bJ.svcK.mesh A.  Every peer serves it from a zone file written to a temp
dir; dnsd serves it as services with `policy: weighted` and TCP health checks
every second against a listener that accepts on every backend address (all
of 127/8).  Each server runs in the foreground, pinned to CPU 1 with one
worker; dnsperf runs pinned to CPU 0.  Per server, in turn:

  cpu      dnsperf -Q RATE for D seconds; the server's utime and stime
           (its whole process tree, every thread) from /proc/PID/stat before
           and after, divided by the queries answered: us/query, user and
           system, and the ratio to the null responder's total;
  max      dnsperf unlimited (many outstanding queries): queries per second
           and the server's CPU use meanwhile (below 100%: dnsperf, not the
           server, was the limit);
  latency  dnsperf -v -Q LAT_RATE: p50/p99/max of the per-query latencies.

Scaling (dnsd only): CPU/query and RSS at 100, 10k, 100k and 1M names
(services x 3 backends, 5 names each, checks off), and for 100k services x
10 backends: `dnsd --check` time, RSS, and reload time (SIGHUP to the
"reloaded" log line; snapshot build time from the -v log).

Writes tests/bench/results/perf-YYYY-MM-DD[-quick].{txt,json}.  A server
that is not installed or does not start is reported as skipped, with the
reason.  Run with /usr/bin/python3 (Debian's dnspython).

  /usr/bin/python3 tests/bench/perf.py            # full run, ~10-13 min
  /usr/bin/python3 tests/bench/perf.py --quick    # short runs, ~3 min
  /usr/bin/python3 tests/bench/perf.py --paired 60 --secs 3 --servers null,dnsd-nc,gdnsd \
      --scale '' --big '' --multi off             # the CPU ratios in paired cycles, ~12 min

With --paired the servers start once and are measured in cycles of one
window each, the order rotated per cycle: the windows compared are seconds
apart, where rounds restart every server a minute or more apart.
"""

import argparse
import atexit
import datetime
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    import dns.message
    import dns.query
    import dns.rcode
    import dns.exception
except ImportError:  # pragma: no cover - reported by main()
    dns = None

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "tests" / "bench"
RESULTS = HERE / "results"
HZ = os.sysconf("SC_CLK_TCK")
SERVER_CPU = "1"           # taskset -c for servers
CLIENT_CPU = "0"           # taskset -c for dnsperf
START_MAX = 60.0           # seconds a server may take to answer
now = time.monotonic


# ---------------------------------------------------------------- processes

_procs = []                # every Popen we started, stopped by pid


def stop_proc(p, grace=5.0):
    """SIGTERM, then SIGKILL after grace seconds; only our own pid."""
    if p.poll() is None:
        try:
            os.kill(p.pid, signal.SIGTERM)
            p.wait(grace)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(5)
    if p in _procs:
        _procs.remove(p)
    return p.returncode


def cleanup_all():
    """Stops every process still running that we started."""
    while _procs:
        stop_proc(_procs[-1])


atexit.register(cleanup_all)


def spawn(argv, logpath, cpu=None):
    """Starts argv (pinned to cpu if given) with output to logpath."""
    if cpu is not None and shutil.which("taskset"):
        argv = ["taskset", "-c", cpu] + list(argv)
    with open(logpath, "ab") as log:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                             stderr=subprocess.STDOUT)
    _procs.append(p)
    return p


def tail(path, n=8):
    """The last n lines of a log, indented, for error messages."""
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    " + s for s in lines[-n:])


def free_port(host="127.0.0.1"):
    """A port free for both UDP and TCP on host."""
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            t.bind((host, 0))
            port = t.getsockname()[1]
            u.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise RuntimeError("no free port")


# ---------------------------------------------------------------- /proc

def _children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            st = Path("/proc/%s/stat" % d).read_text()
        except OSError:
            continue
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(pid):
    """pid and all its descendants (NSD forks its servers and xfrd)."""
    kids = _children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_ticks(pids):
    """(utime, stime) in clock ticks summed over every thread of pids.

    Per thread, not /proc/PID/stat: the kernel scales a task's sampled
    user/system ticks to its exact run time over its whole life and never
    lets either go down, so a process whose start was user-heavy (dnsd
    loading its config) can show no user time at all over a later window.
    A worker thread has done the same work all its life, so its split holds.
    """
    u = s = 0
    for p in pids:
        try:
            tids = os.listdir("/proc/%d/task" % p)
        except OSError:
            continue
        for t in tids:
            try:
                st = Path("/proc/%d/task/%s/stat" % (p, t)).read_text()
            except OSError:
                continue
            f = st[st.rindex(")") + 2:].split()
            u += int(f[11])
            s += int(f[12])
    return u, s


def tasks(pids):
    """/proc/PID/task/TID of every thread of pids that is still there."""
    for p in pids:
        try:
            tids = os.listdir("/proc/%d/task" % p)
        except OSError:
            continue
        for t in tids:
            yield "/proc/%d/task/%s" % (p, t)


def schedstat_sums(pids):
    """(CPU time in ns, times scheduled in) summed over every thread of
    pids, from schedstat: the time is exact, where stat's utime/stime are
    sampled at clock ticks; a server blocked between datagrams is
    scheduled in once per wakeup."""
    ns = runs = 0
    for task in tasks(pids):
        try:
            f = Path(task, "schedstat").read_text().split()
            ns, runs = ns + int(f[0]), runs + int(f[2])
        except (OSError, ValueError, IndexError):
            continue
    return ns, runs


def run_ns(pids):
    """CPU time in ns summed over every thread of pids."""
    return schedstat_sums(pids)[0]


def run_ns_threads(pids):
    """CPU time in ns per thread name (comm) over every thread of pids:
    dnsd names its threads udp-N, tcp, health, forward, http, notify."""
    out = {}
    for task in tasks(pids):
        try:
            ns = int(Path(task, "schedstat").read_text().split()[0])
            comm = Path(task, "comm").read_text().strip()
        except (OSError, ValueError, IndexError):
            continue
        key = "udp" if comm.startswith("udp-") else comm
        out[key] = out.get(key, 0) + ns
    return out


def rss_kb(pids):
    """VmRSS summed over pids, in kB."""
    total = 0
    for p in pids:
        try:
            for line in Path("/proc/%d/status" % p).read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


# ---------------------------------------------------------------- the zone

def backend_addr(i):
    """The i-th backend address: unique in 127.1.0.1 .. 127.255.255.250."""
    return "127.%d.%d.%d" % (1 + i // (250 * 256), (i // 250) % 256, i % 250 + 1)


def short_addr(k, j):
    """Backend j of service k, short to write: distinct within a service,
    repeating every 250 services (for configs near dnsd's size limit)."""
    return "1.1.%d.%d" % (j + 1, k % 250 + 1)


def zone_data(nsvc, nbe, short=False):
    """[(service, [(backend name, address)])] for nsvc services."""
    if short:
        return [("svc%d" % k, [("b%d" % j, short_addr(k, j)) for j in range(nbe)])
                for k in range(nsvc)]
    return [("svc%d" % k, [("b%d" % j, backend_addr(k * nbe + j)) for j in range(nbe)])
            for k in range(nsvc)]


def write_zonefile(path, data, srv_port, ttl=30):
    """The zone in master file syntax, for the peers."""
    with open(path, "w") as f:
        f.write("$ORIGIN mesh.\n$TTL %d\n" % ttl)
        f.write("@ IN SOA ns1.mesh. hostmaster.mesh. 1 3600 600 86400 30\n")
        f.write("@ IN NS ns1.mesh.\nns1 IN A 127.0.0.1\n")
        for svc, bes in data:
            for _, a in bes:
                f.write("%s IN A %s\n" % (svc, a))
            for b, _ in bes:
                f.write("_http._tcp.%s IN SRV 0 100 %d %s.%s\n" % (svc, srv_port, b, svc))
            for b, a in bes:
                f.write("%s.%s IN A %s\n" % (b, svc, a))


DNSD_MAX_CONFIG = 16 * 1024 * 1024    # dnsd refuses larger files


def write_dnsd_yaml(path, data, srv_port, check, compact=False):
    """The zone as dnsd services; check is a YAML flow mapping.  compact:
    one line per service, backends as bare addresses (named after their
    address), the default policy (weighted) and check, so that 100k x 10
    fits in dnsd's 16 MiB limit (with short_addr addresses)."""
    with open(path, "w") as f:
        f.write("zones:\n  - name: mesh\n    ttl: 30\n    ns: [ns1]\n"
                "    records:\n      - {name: ns1, type: A, data: 127.0.0.1}\n"
                "    services:\n")
        if compact:
            ports = "&p {http: %d}" % srv_port
            for svc, bes in data:
                f.write("    - {name: %s, ports: %s, backends: [%s]}\n"
                        % (svc, ports, ",".join(a for _, a in bes)))
                ports = "*p"
            return
        for svc, bes in data:
            f.write("      - name: %s\n        policy: weighted\n"
                    "        ports: {http: %d}\n        check: %s\n        backends:\n"
                    % (svc, srv_port, check))
            for b, a in bes:
                f.write("          - {address: %s, name: %s}\n" % (a, b))


def write_queries(path, nsvc, limit, seed=7):
    """dnsperf input: svcK.mesh A and _http._tcp.svcK.mesh SRV, shuffled,
    over every service (a random sample of limit lines if there are more)."""
    rng = random.Random(seed)
    n = 2 * nsvc
    idx = rng.sample(range(n), limit) if n > limit else list(range(n))
    rng.shuffle(idx)
    with open(path, "w") as f:
        for i in idx:
            k = i // 2
            f.write("svc%d.mesh A\n" % k if i % 2 == 0 else "_http._tcp.svc%d.mesh SRV\n" % k)


# ---------------------------------------------------------------- servers

def dpkg_version(pkg):
    """The installed Debian version of pkg, or ''."""
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


class Server:
    """A DNS server under test: writes its config, starts pinned, stops."""

    name = "?"
    binary = ""
    package = ""
    settings = ""

    def __init__(self, tmp, port, env):
        self.dir = Path(tmp) / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.env = env           # dict: zonefile, data, srv_port, check_port, ...
        self.proc = None
        self.log = self.dir / "log"

    def missing(self):
        """None if runnable, else why not."""
        if not os.access(self.binary, os.X_OK):
            return "%s not installed (%s; apt-get install -y %s)" % (
                self.name, self.binary, self.package)
        return None

    def version(self):
        return "%s %s" % (self.package, dpkg_version(self.package))

    def argv(self):
        raise NotImplementedError

    cpu = SERVER_CPU             # None: unpinned (the multi-core runs)

    def start(self):
        self.proc = spawn(self.argv(), self.log, self.cpu)

    def stop(self):
        if self.proc is not None:
            stop_proc(self.proc)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def pids(self):
        return tree(self.proc.pid)

    def ready_extra(self):
        """Seconds to wait after the first answer (first health checks)."""
        return 0.0


class Null(Server):
    name = "null"
    settings = "recvmmsg/sendmmsg batch 64, one thread, QR flipped (no DNS work)"

    def missing(self):
        return None if self.env.get("null_bin") else "cc not found: null responder not built"

    def version(self):
        return "null_responder (cc -O2)"

    def argv(self):
        return [self.env["null_bin"], "-l", "127.0.0.1:%d" % self.port]


class Null1(Null):
    name = "null1"
    settings = "recvfrom/sendto, one datagram per syscall, one thread, QR flipped (no DNS work)"

    def argv(self):
        return [self.env["null_bin"], "-1", "127.0.0.1:%d" % self.port]


class Dnsd(Server):
    name = "dnsd"
    settings = "-w 1; policy weighted; check tcp interval 1s timeout 500ms (real listener)"

    def __init__(self, tmp, port, env, name=None, data=None, check=None, verbose=False,
                 compact=False, workers=1):
        self.compact = compact
        self.workers = workers
        if name:
            self.name = name
        super().__init__(tmp, port, env)
        self.data = data if data is not None else env["data"]
        self.check = check or ("{type: tcp, port: %d, interval: 1s, timeout: 500ms}"
                               % env["check_port"])
        self.verbose = verbose
        self.cfg = self.dir / "dnsd.yaml"
        if check and check.startswith("{type: none"):
            self.settings = "-w %d; policy weighted; check none" % workers
        if compact:
            self.settings = "-w 1; compact config: policy and check defaults (weighted, none)"

    bin_override = None          # dnsd-base: another build, from DNSD_BASE

    @property
    def binary(self):
        return self.bin_override or os.environ.get("DNSD") or str(ROOT / "build" / "dnsd")

    def missing(self):
        if not os.access(self.binary, os.X_OK):
            return "dnsd not built (%s; run make)" % self.binary
        return None

    def version(self):
        try:
            out = subprocess.run([self.binary, "-V"], capture_output=True, text=True, timeout=10)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, subprocess.SubprocessError, IndexError):
            return "dnsd ?"

    def argv(self):
        write_dnsd_yaml(self.cfg, self.data, self.env["srv_port"], self.check, self.compact)
        a = [self.binary, "-c", str(self.cfg), "-l", "127.0.0.1:%d" % self.port,
             "-w", str(self.workers)]
        return a + (["-v"] if self.verbose else ["-q"])

    def ready_extra(self):
        return 0.0 if self.compact or "none" in self.check else 1.5

    def too_big(self):
        """Why the written config cannot be served, or None."""
        size = self.cfg.stat().st_size
        if size > DNSD_MAX_CONFIG:
            return "config is %.1f MB, over dnsd's %d MiB limit" % (
                size / 1e6, DNSD_MAX_CONFIG >> 20)
        return None

    def downs(self):
        """Backends the log says went DOWN (the listener should keep them up)."""
        try:
            return Path(self.log).read_text(errors="replace").count(" is DOWN")
        except OSError:
            return 0


class Nsd(Server):
    name = "nsd"
    binary = "/usr/sbin/nsd"
    package = "nsd"
    settings = "server-count 1, -d (foreground), no xfr, no remote-control"

    def argv(self):
        d = self.dir
        (d / "nsd.conf").write_text(
            "server:\n"
            "  ip-address: 127.0.0.1@%d\n"
            "  server-count: 1\n"
            "  username: \"\"\n"
            "  chroot: \"\"\n"
            "  zonesdir: \"%s\"\n"
            "  database: \"\"\n"
            "  zonelistfile: \"%s/zone.list\"\n"
            "  xfrdfile: \"%s/xfrd.state\"\n"
            "  xfrdir: \"%s\"\n"
            "  pidfile: \"%s/nsd.pid\"\n"
            "  verbosity: 0\n"
            "  hide-version: yes\n"
            "remote-control:\n"
            "  control-enable: no\n"
            "zone:\n"
            "  name: mesh\n"
            "  zonefile: \"%s\"\n" % (self.port, d, d, d, d, d, self.env["zonefile"]))
        return [self.binary, "-d", "-c", str(d / "nsd.conf")]


class Knot(Server):
    name = "knot"
    binary = "/usr/sbin/knotd"
    package = "knot"
    settings = "udp-workers 1, tcp-workers 1, background-workers 1"

    def argv(self):
        d = self.dir
        (d / "knot.conf").write_text(
            "server:\n"
            "  rundir: \"%s\"\n"
            "  listen: 127.0.0.1@%d\n"
            "  udp-workers: 1\n"
            "  tcp-workers: 1\n"
            "  background-workers: 1\n"
            "database:\n"
            "  storage: \"%s\"\n"
            "log:\n"
            "  - target: stderr\n"
            "    any: warning\n"
            "template:\n"
            "  - id: default\n"
            "    storage: \"%s\"\n"
            "    zonefile-sync: -1\n"
            "    journal-content: none\n"
            "zone:\n"
            "  - domain: mesh\n"
            "    file: \"%s\"\n" % (d, self.port, d, d, self.env["zonefile"]))
        return [self.binary, "-c", str(d / "knot.conf")]


class Gdnsd(Server):
    name = "gdnsd"
    binary = "/usr/sbin/gdnsd"
    package = "gdnsd"
    settings = "udp_threads 1, tcp_threads 1, static zone"
    udp_threads = 1

    def argv(self):
        d = self.dir
        (d / "zones").mkdir(exist_ok=True)
        shutil.copy(self.env["zonefile"], d / "zones" / "mesh")
        (d / "config").write_text(
            "options => {\n"
            "  listen => [ 127.0.0.1 ]\n"
            "  dns_port => %d\n"
            "  udp_threads => %d\n"
            "  tcp_threads => 1\n"
            "  run_dir => %s\n"
            "  state_dir => %s\n"
            "}\n" % (self.port, self.udp_threads, d / "run", d / "state"))
        return [self.binary, "-c", str(d), "start"]


class Gdnsd2(Gdnsd):
    name = "gdnsd-2t"
    settings = "udp_threads 2, tcp_threads 1, static zone"
    udp_threads = 2


class Pdns(Server):
    name = "pdns"
    binary = "/usr/sbin/pdns_server"
    package = "pdns-server"
    settings = "bind backend, receiver-threads 1, distributor-threads 1, packet cache on (default)"

    def missing(self):
        why = super().missing()
        if why:
            return why
        if not list(Path("/usr/lib").glob("*/pdns/libbindbackend.so")):
            return "pdns bind backend not installed (apt-get install -y pdns-backend-bind)"
        return None

    def argv(self):
        d = self.dir
        (d / "named.conf").write_text(
            'zone "mesh" { type master; file "%s"; };\n' % self.env["zonefile"])
        (d / "pdns.conf").write_text(
            "launch=bind\n"
            "bind-config=%s\n"
            "local-address=127.0.0.1\n"
            "local-port=%d\n"
            "receiver-threads=1\n"
            "distributor-threads=1\n"
            "socket-dir=%s\n"
            "guardian=no\n"
            "daemon=no\n"
            "disable-syslog=yes\n"
            "loglevel=3\n"
            "security-poll-suffix=\n" % (d / "named.conf", self.port, d))
        return [self.binary, "--config-dir=%s" % d]


# ---------------------------------------------------------------- measuring

def wait_answer(srv, qname="svc0.mesh.", limit=START_MAX):
    """Waits until srv answers qname A with NOERROR; seconds taken or None."""
    t0 = now()
    q = dns.message.make_query(qname, "A")
    while now() - t0 < limit:
        if not srv.alive():
            return None
        try:
            r = dns.query.udp(q, "127.0.0.1", port=srv.port, timeout=0.2)
            if r.rcode() == dns.rcode.NOERROR and (r.answer or isinstance(srv, Null)):
                return now() - t0
        except (OSError, dns.exception.DNSException):
            pass
        time.sleep(0.05)
    return None


def parse_dnsperf(out):
    """The figures of dnsperf's statistics block."""
    res = {}
    for line in out.splitlines():
        s = line.strip()
        try:
            if s.startswith("Queries sent:"):
                res["sent"] = int(s.split()[2])
            elif s.startswith("Queries completed:"):
                res["completed"] = int(s.split()[2])
            elif s.startswith("Queries lost:"):
                res["lost"] = int(s.split()[2])
            elif s.startswith("Response codes:"):
                res["rcodes"] = s.split(":", 1)[1].strip()
            elif s.startswith("Average packet size:"):
                res["response_bytes"] = int(s.rsplit(None, 1)[1])
            elif s.startswith("Run time (s):"):
                res["run_time_s"] = float(s.split()[3])
            elif s.startswith("Queries per second:"):
                res["qps"] = round(float(s.split()[3]), 1)
            elif s.startswith("Average Latency (s):"):
                res["avg_latency_ms"] = round(float(s.split()[3]) * 1000, 4)
        except (IndexError, ValueError):
            continue
    return res


def dnsperf(port, qfile, secs, rate=None, outstanding=100, clients=1, verbose=False,
            cpu=CLIENT_CPU, threads=1):
    """Runs dnsperf pinned to cpu (None: unpinned); returns (stats, per-query
    latencies)."""
    argv = ["dnsperf", "-s", "127.0.0.1", "-p", str(port),
            "-d", str(qfile), "-l", str(secs), "-q", str(outstanding), "-c", str(clients),
            "-t", "1", "-T", str(threads)]
    if cpu is not None:
        argv = ["taskset", "-c", cpu] + argv
    if rate:
        argv += ["-Q", str(rate)]
    if verbose:
        argv.append("-v")
    p = subprocess.run(argv, capture_output=True, text=True, timeout=secs + 30)
    stats = parse_dnsperf(p.stdout)
    lat = []
    if verbose:
        for line in p.stdout.splitlines():
            if line.startswith("> "):
                f = line.split()
                if f[1] != "T":     # T: timed out
                    try:
                        lat.append(float(f[-1]))
                    except ValueError:
                        pass
    if "completed" not in stats:
        stats["error"] = (p.stderr or p.stdout).strip()[-300:]
    return stats, lat


def pct(sorted_vals, q):
    """The q-quantile (0..1) of sorted values, nearest rank."""
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, max(0, int(round(q * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[i]


def measure_cpu(srv, qfile, secs, rate, idle_secs):
    """Idle CPU, then a fixed-rate run: us per query, user/system."""
    pids = srv.pids()
    out = {}
    if idle_secs:
        n0 = run_ns(pids)
        time.sleep(idle_secs)
        out["idle_cpu_pct"] = round((run_ns(pids) - n0) / 1e9 / idle_secs * 100, 2)
    u0, s0 = cpu_ticks(pids)
    th0 = run_ns_threads(pids)
    n0, w0 = schedstat_sums(pids)
    t0 = now()
    st, _ = dnsperf(srv.port, qfile, secs, rate=rate)
    wall = now() - t0
    u1, s1 = cpu_ticks(pids)
    n1, w1 = schedstat_sums(pids)
    th1 = run_ns_threads(pids)
    out["dnsperf"] = st
    out["ticks_user"], out["ticks_sys"] = u1 - u0, s1 - s0
    n = st.get("completed") or 0
    if n:
        # The total from schedstat (ns); split user/system in the ratio of
        # the utime/stime ticks of the same interval.
        total = (n1 - n0) / 1e3 / n
        ticks = (u1 - u0) + (s1 - s0)
        user = total * (u1 - u0) / ticks if ticks else 0.0
        out["us_total"] = round(total, 3)
        out["us_user"] = round(user, 3)
        out["us_sys"] = round(total - user, 3)
        # Queries per wakeup: what a receive batch held on average.
        out["q_per_wakeup"] = round(n / (w1 - w0), 2) if w1 > w0 else None
        # Per thread name: where the CPU went (us per query; the health
        # watcher also as % of one core, as it runs whatever the rate).
        out["threads_us"] = {k: round((th1.get(k, 0) - v) / 1e3 / n, 3)
                             for k, v in th0.items() if th1.get(k, 0) - v > 0}
        if "health" in th0:
            out["health_cpu_pct"] = round((th1.get("health", 0) - th0["health"]) / 1e9 / wall
                                          * 100, 1)
    out["cpu_pct"] = round((n1 - n0) / 1e9 / wall * 100, 1)
    out["rss_kb"] = rss_kb(pids)
    return out


def measure_max(srv, qfile, secs, cpu=CLIENT_CPU, threads=1):
    """dnsperf without a rate limit: qps and the server's CPU use."""
    pids = srv.pids()
    n0 = run_ns(pids)
    t0 = now()
    st, _ = dnsperf(srv.port, qfile, secs, outstanding=2000, clients=16, cpu=cpu,
                    threads=threads)
    wall = now() - t0
    return dict(dnsperf=st, qps=st.get("qps"),
                server_cpu_pct=round((run_ns(pids) - n0) / 1e9 / wall * 100, 1))


def measure_latency(srv, qfile, secs, rate):
    """dnsperf -v at a fixed rate: percentiles of the per-query latencies."""
    st, lat = dnsperf(srv.port, qfile, secs, rate=rate, verbose=True)
    lat.sort()
    ms = lambda v: None if v is None else round(v * 1000, 4)
    return dict(dnsperf=st, rate=rate, n=len(lat),
                p50_ms=ms(pct(lat, 0.50)), p99_ms=ms(pct(lat, 0.99)),
                max_ms=ms(lat[-1] if lat else None))


def run_server(srv, qfile, a, say, first=True):
    """Starts srv, measures it with one fixed-rate run and its latency
    (and, in the first round, its idle CPU and max qps), stops it.  Never raises for a
    server problem; merge_rounds combines the rounds."""
    out = dict(server=srv.name, status="ok", settings=srv.settings)
    why = srv.missing()
    if why:
        out.update(status="skipped", reason=why)
        say("%s: skipped: %s" % (srv.name, why))
        return out
    out["version"] = srv.version()
    try:
        t0 = now()
        srv.start()
        waited = wait_answer(srv)
        if waited is None:
            rc = srv.proc.poll()
            out.update(status="skipped", reason="did not answer svc0.mesh A within %ds%s"
                       % (START_MAX, "" if rc is None else " (exited %d)" % rc))
            say("%s: skipped: %s\n%s" % (srv.name, out["reason"], tail(srv.log)))
            return out
        out["start_s"] = round(now() - t0, 2)
        time.sleep(srv.ready_extra())
        say("%s: answering after %.2f s (%s)" % (srv.name, out["start_s"], out["version"]))
        out["cpu"] = c = measure_cpu(srv, qfile, a.secs, a.rate, a.idle if first else 0)
        say("%s: cpu at %d qps: %s us/q (user %s, sys %s), %s/%s answered%s%s"
            % (srv.name, a.rate, c.get("us_total"), c.get("us_user"), c.get("us_sys"),
               c["dnsperf"].get("completed"), c["dnsperf"].get("sent"),
               ", idle %s%%" % c["idle_cpu_pct"] if "idle_cpu_pct" in c else "",
               "; threads us/q %s" % c["threads_us"] if len(c.get("threads_us", {})) > 1 else ""))
        if first:
            out["max"] = measure_max(srv, qfile, a.max_secs)
            say("%s: max %s qps (server cpu %s%%)" % (srv.name, out["max"]["qps"],
                                                      out["max"]["server_cpu_pct"]))
        # Latency every round: one 5 s window's p99 is one VM hiccup away
        # from another figure; merge_rounds takes the median round.
        out["latency"] = lt = measure_latency(srv, qfile, a.lat_secs, a.lat_rate)
        say("%s: latency at %d qps: p50 %s ms, p99 %s ms" % (srv.name, a.lat_rate,
                                                             lt["p50_ms"], lt["p99_ms"]))
        if isinstance(srv, Dnsd):
            out["backends_down"] = srv.downs()
        if not srv.alive():
            out.update(status="failed", reason="exited during the run (rc %s)" % srv.proc.poll())
    except (OSError, subprocess.SubprocessError) as e:
        out.update(status="failed", reason=str(e))
        say("%s: failed: %s" % (srv.name, e))
    finally:
        srv.stop()
    return out


def paired_runs(makers, qfile, a, say):
    """Every server started once and left running (all pinned to the
    server CPU, idle but for the one measured), then a.paired cycles of one
    a.secs fixed-rate CPU window per server, the order rotated each cycle.
    Windows compared in a cycle are seconds apart, so the VM's drift
    (a third over minutes) cancels in the same-cycle ratios, and no server
    always goes first or last.  Max qps once per server before the cycles;
    latency in about five cycles spread over the run.  Returns
    {name: [one run_server-shaped dict per cycle]}."""
    live, per = [], {}
    try:
        for name, make in makers:
            srv = make()
            out = dict(server=srv.name, status="ok", settings=srv.settings)
            why = srv.missing()
            if why:
                out.update(status="skipped", reason=why)
                say("%s: skipped: %s" % (srv.name, why))
                per[name] = [out]
                continue
            out["version"] = srv.version()
            t0 = now()
            srv.start()
            if wait_answer(srv) is None:
                out.update(status="skipped",
                           reason="did not answer svc0.mesh A within %ds" % START_MAX)
                say("%s: skipped: %s\n%s" % (srv.name, out["reason"], tail(srv.log)))
                srv.stop()
                per[name] = [out]
                continue
            out["start_s"] = round(now() - t0, 2)
            time.sleep(srv.ready_extra())
            say("%s: answering after %.2f s (%s)" % (srv.name, out["start_s"], out["version"]))
            out["max"] = measure_max(srv, qfile, a.max_secs)
            say("%s: max %s qps (server cpu %s%%)" % (srv.name, out["max"]["qps"],
                                                      out["max"]["server_cpu_pct"]))
            live.append((name, srv, out))
        every = max(1, a.paired // 5)
        for cyc in range(a.paired):
            k = cyc % max(1, len(live))
            order = live[k:] + live[:k]
            say("-- cycle %d of %d: %s" % (cyc + 1, a.paired, ", ".join(n for n, _, _ in order)))
            for name, srv, first in order:
                out = dict(first) if cyc == 0 else dict(server=srv.name, status="ok",
                                                        settings=srv.settings)
                out["cpu"] = c = measure_cpu(srv, qfile, a.secs, a.rate, a.idle if cyc == 0 else 0)
                say("%s: cpu at %d qps: %s us/q (user %s, sys %s), %s/%s answered, "
                    "%s queries per wakeup" % (
                        srv.name, a.rate, c.get("us_total"), c.get("us_user"), c.get("us_sys"),
                        c["dnsperf"].get("completed"), c["dnsperf"].get("sent"),
                        c.get("q_per_wakeup")))
                if cyc % every == 0:
                    out["latency"] = lt = measure_latency(srv, qfile, a.lat_secs, a.lat_rate)
                    say("%s: latency at %d qps: p50 %s ms, p99 %s ms" % (
                        srv.name, a.lat_rate, lt["p50_ms"], lt["p99_ms"]))
                if not srv.alive():
                    out.update(status="failed",
                               reason="exited during the run (rc %s)" % srv.proc.poll())
                per.setdefault(name, []).append(out)
        for name, srv, _ in live:
            if isinstance(srv, Dnsd) and per.get(name):
                per[name][0]["backends_down"] = srv.downs()
    finally:
        for _, srv, _ in live:
            srv.stop()
    return per


# ---------------------------------------------------------------- both cores

def multi_runs(tmp, env, qfile, a, say):
    """Max qps with both cores: dnsd -w 2 (weighted, no checks) against
    gdnsd with udp_threads 2, servers and dnsperf (-T 2, 16 clients, 2000
    outstanding) unpinned, so the scheduler shares the two CPUs between
    load and server as it would. a.rounds interleaved rounds (the VM
    drifts); per server the median qps and server CPU, and the median of
    the same-round dnsd/gdnsd ratios."""
    makers = [
        ("dnsd", lambda: Dnsd(tmp, free_port(), env, name="dnsd-w2", check="{type: none}",
                              workers=2)),
        ("gdnsd", lambda: Gdnsd2(tmp, free_port(), env)),
    ]
    runs = {k: [] for k, _ in makers}
    info = {}
    for rnd in range(a.rounds):
        for key, make in makers:
            srv = make()
            srv.cpu = None
            why = srv.missing()
            if why:
                info[key] = dict(server=srv.name, status="skipped", reason=why)
                continue
            info.setdefault(key, dict(server=srv.name, status="ok", settings=srv.settings,
                                      version=srv.version()))
            try:
                srv.start()
                if wait_answer(srv) is None:
                    info[key].update(status="skipped", reason="did not answer")
                    continue
                time.sleep(srv.ready_extra())
                m = measure_max(srv, qfile, a.max_secs, cpu=None, threads=2)
                runs[key].append(m)
                say("both cores, round %d: %s %s qps (server cpu %s%%)" % (
                    rnd + 1, srv.name, m["qps"], m["server_cpu_pct"]))
            finally:
                srv.stop()
    out = dict(rounds=a.rounds, secs=a.max_secs, servers={})
    for key, rs in runs.items():
        ok = [r for r in rs if r.get("qps")]
        d = dict(info.get(key, {}), runs_qps=[r.get("qps") for r in rs],
                 runs_cpu_pct=[r.get("server_cpu_pct") for r in rs])
        if ok:
            d["qps"] = round(statistics.median(r["qps"] for r in ok))
            d["server_cpu_pct"] = round(statistics.median(r["server_cpu_pct"] for r in ok), 1)
        out["servers"][key] = d
    ratios = [x["qps"] / y["qps"] for x, y in zip(runs["dnsd"], runs["gdnsd"])
              if x.get("qps") and y.get("qps")]
    out["x_gdnsd_runs"] = [round(r, 3) for r in ratios]
    out["x_gdnsd"] = round(statistics.median(ratios), 3) if ratios else None
    return out


# ---------------------------------------------------------------- scaling

def scale_runs(tmp, env, sizes, a, say):
    """dnsd with names/5 services x 3 backends per size, checks off, all
    started first and then measured in a.rounds interleaved rounds (the
    VM's speed drifts: a ratio is only fair within one round). Per size:
    median CPU/query, and x_first, the median of the same-round ratios to
    the first (smallest) size."""
    servers = []
    outs = []
    try:
        for names in sizes:
            nsvc = max(1, names // 5)
            data = zone_data(nsvc, 3, short=True)
            qfile = Path(tmp) / ("q-scale-%d" % names)
            write_queries(qfile, nsvc, a.qlimit)
            srv = Dnsd(tmp, free_port(), env, name="dnsd-%dnames" % names, data=data,
                       check="{type: none}", compact=True)
            out = dict(names=names, services=nsvc, backends=nsvc * 3, status="ok", rounds=[])
            outs.append(out)
            if srv.missing():
                out.update(status="skipped", reason=srv.missing())
                continue
            argv = srv.argv()
            why = srv.too_big()
            if why:
                out.update(status="skipped", reason=why)
                say("%s: skipped: %s" % (srv.name, why))
                continue
            t0 = now()
            srv.proc = spawn(argv, srv.log, SERVER_CPU)
            servers.append(srv)
            if wait_answer(srv, limit=a.scale_start_max) is None:
                rc = srv.proc.poll()
                out.update(status="skipped", reason="no answer within %ds%s" % (
                    a.scale_start_max, "" if rc is None else " (exited %d)" % rc))
                say("%s: skipped: %s\n%s" % (srv.name, out["reason"], tail(srv.log)))
                continue
            out["start_s"] = round(now() - t0, 2)
            out["srv"], out["qfile"] = srv, qfile
        for rnd in range(a.rounds):
            # The order rotates: no size always runs first.
            k = rnd % max(1, len(outs))
            for out in outs[k:] + outs[:k]:
                if out["status"] != "ok":
                    continue
                c = measure_cpu(out["srv"], out["qfile"], a.secs, a.rate, 0)
                out["rounds"].append(c)
                say("scale %d names, round %d: %s us/q, RSS %d MB" % (
                    out["names"], rnd + 1, c.get("us_total"), c["rss_kb"] // 1024))
    finally:
        for srv in servers:
            srv.stop()
    first = outs[0] if outs and outs[0]["status"] == "ok" else None
    for out in outs:
        out.pop("srv", None)
        out.pop("qfile", None)
        rs = [r for r in out.pop("rounds") if r.get("us_total")]
        if out["status"] != "ok" or not rs:
            continue
        med = lambda k: round(statistics.median(r[k] for r in rs), 3)
        out.update(us_total=med("us_total"), us_user=med("us_user"), us_sys=med("us_sys"),
                   rss_kb=max(r["rss_kb"] for r in rs),
                   us_rounds=[r["us_total"] for r in rs])
        if first is not None and first.get("us_rounds"):
            ratios = [x / y for x, y in zip(out["us_rounds"], first["us_rounds"]) if y]
            out["x_first"] = round(statistics.median(ratios), 2) if ratios else None
            out["x_first_runs"] = [round(r, 3) for r in ratios]
            out["x_first_ci"] = median_ci(ratios)
        say("scale %d names: start %.1f s, %s us/q (median of %d), RSS %d MB" % (
            out["names"], out["start_s"], out["us_total"], len(rs), out["rss_kb"] // 1024))
    return outs


def big_run(tmp, env, nsvc, nbe, say, limit, reloads=2):
    """nsvc services x nbe backends (checks off): --check time, RSS, reload."""
    out = dict(services=nsvc, backends=nsvc * nbe, status="ok")
    srv = Dnsd(tmp, free_port(), env, name="dnsd-big", data=zone_data(nsvc, nbe, short=True),
               check="{type: none}", verbose=True, compact=True)
    if srv.missing():
        out.update(status="skipped", reason=srv.missing())
        return out
    try:
        argv = srv.argv()       # writes the config
        out["config_mb"] = round(srv.cfg.stat().st_size / 1e6, 1)
        why = srv.too_big()
        if why:
            out.update(status="skipped", reason=why)
            say("%s: skipped: %s" % (srv.name, why))
            return out
        t0 = now()
        try:
            p = subprocess.run([srv.binary, "--check", "-c", str(srv.cfg)],
                               capture_output=True, text=True, timeout=limit)
        except subprocess.TimeoutExpired:
            out.update(status="skipped", reason="dnsd --check did not finish within %d s "
                       "(%.1f MB config)" % (limit, out["config_mb"]))
            say("%s: skipped: %s" % (srv.name, out["reason"]))
            return out
        out["check_s"] = round(now() - t0, 2)
        if p.returncode != 0:
            out.update(status="failed", reason="--check: " + p.stderr.strip()[-200:])
            return out
        srv.proc = spawn(argv, srv.log, SERVER_CPU)
        t0 = now()
        if wait_answer(srv, limit=limit + 30) is None:
            out.update(status="failed", reason="no answer within %d s (exit status %s)"
                       % (limit + 30, srv.proc.poll()))
            say("%s: failed: %s\n%s" % (srv.name, out["reason"], tail(srv.log)))
            return out
        out["start_s"] = round(now() - t0, 2)
        time.sleep(1)
        out["rss_kb"] = rss_kb(srv.pids())
        times, builds = [], []
        for _ in range(reloads):
            before = Path(srv.log).read_text(errors="replace").count("reloaded ")
            t0 = now()
            os.kill(srv.proc.pid, signal.SIGHUP)
            while now() - t0 < limit:
                txt = Path(srv.log).read_text(errors="replace")
                if txt.count("reloaded ") > before:
                    times.append(round((now() - t0) * 1000))
                    break
                time.sleep(0.01)
            else:
                times.append(None)      # not within limit: stop reloading
                break
        for line in Path(srv.log).read_text(errors="replace").splitlines():
            if "published snapshot generation" in line and "built in" in line:
                try:
                    builds.append(int(line.rsplit("built in", 1)[1].split()[0]))
                except (IndexError, ValueError):
                    pass
        out["reload_ms"] = times
        out["snapshot_build_ms"] = builds[-reloads:]
        out["rss_after_reload_kb"] = rss_kb(srv.pids())
        say("big %d x %d: --check %.1f s, RSS %d MB, reload %s ms (snapshot builds %s ms)"
            % (nsvc, nbe, out["check_s"], out["rss_kb"] // 1024, times, builds[-reloads:]))
    finally:
        srv.stop()
    return out


# ---------------------------------------------------------------- report

def same_round_ratio(rs, base_rs):
    """Per round, this server's us/q over the base's in the same round."""
    out = []
    for i, r in enumerate(rs):
        b = base_rs[i] if base_rs and i < len(base_rs) else None
        u, v = r.get("cpu", {}).get("us_total"), b and b.get("cpu", {}).get("us_total")
        if u and v:
            out.append(round(u / v, 3))
    return out


def median_ci(vals, z=1.96):
    """A distribution-free ~95% confidence interval of the median: the
    order statistics n/2 -+ z*sqrt(n)/2 (binomial, normal approximation).
    None below 6 values, where it would span everything."""
    v = sorted(vals)
    n = len(v)
    if n < 6:
        return None
    h = z * n ** 0.5 / 2
    lo, hi = int(n / 2 - h), int(n / 2 + h + 0.999)
    return v[max(0, lo)], v[min(n - 1, hi)]


def merge_rounds(rs, null_rs, gdnsd_rs=None):
    """One server's result from its rounds: the first round's (max qps,
    version), with the median CPU run, every run's us/q, the round with the
    median p99 latency (every round's p99 kept), and x null as the median of
    the ratios to null's run of the same round."""
    out = dict(rs[0])
    runs = [r["cpu"] for r in rs if "cpu" in r]
    ok = sorted((c for c in runs if c.get("us_total")), key=lambda c: c["us_total"])
    if ok:
        out["cpu"] = dict(ok[len(ok) // 2])
        out["cpu"]["idle_cpu_pct"] = runs[0].get("idle_cpu_pct")
    out["cpu_runs_us"] = [c.get("us_total") for c in runs]
    lats = sorted((r["latency"] for r in rs if r.get("latency", {}).get("p99_ms") is not None),
                  key=lambda lt: lt["p99_ms"])
    if lats:
        out["latency"] = dict(lats[len(lats) // 2])   # the round with the median p99
        out["p99_runs_ms"] = [r["latency"]["p99_ms"] for r in rs if "latency" in r]
    ratios = same_round_ratio(rs, null_rs)
    out["x_null_runs"] = ratios
    if ratios:
        out["x_null"] = sorted(ratios)[len(ratios) // 2]
        out["x_null_ci"] = median_ci(ratios)
    g = same_round_ratio(rs, gdnsd_rs)
    out["x_gdnsd_runs"] = g
    if g:
        out["x_gdnsd"] = sorted(g)[len(g) // 2]
        out["x_gdnsd_ci"] = median_ci(g)
    for r in rs[1:]:
        if r.get("status") != "ok":
            out.update(status=r["status"], reason=r.get("reason"))
    return out


def fmt(v, f="%.2f"):
    return "-" if v is None else f % v


def table(results, scale, big, null_total, a, multi=None):
    how = ("%d paired cycles over servers started once, order rotated per cycle" % a.paired
           if a.paired else "%d rounds over all servers, order rotated per round" % a.rounds)
    lines = ["CPU per query at %d qps for %d s, median of %s (x null, x gdnsd: median of "
             "same-round ratios; server on CPU %s, dnsperf on CPU %s); max qps unlimited; "
             "latency at %d qps (the median round's)" % (
                 a.rate, a.secs, how, SERVER_CPU, CLIENT_CPU, a.lat_rate),
             "%-13s %8s %8s %8s %7s %7s %6s %9s %6s %8s %8s %7s %6s" % (
                 "server", "us/q", "user", "sys", "x null", "x gdnsd", "idle%", "max qps",
                 "cpu%", "p50 ms", "p99 ms", "RSS MB", "resp B")]
    for r in results:
        if r["status"] != "ok" and "cpu" not in r:
            lines.append("%-13s %s: %s" % (r["server"], r["status"], r.get("reason", "")))
            continue
        c, m, lt = r["cpu"], r.get("max", {}), r.get("latency", {})
        ratio = r.get("x_null")
        if ratio is None and null_total and c.get("us_total"):
            ratio = c.get("us_total") / null_total
        lines.append("%-13s %8s %8s %8s %7s %7s %6s %9s %6s %8s %8s %7s %6s" % (
            r["server"], fmt(c.get("us_total")), fmt(c.get("us_user")), fmt(c.get("us_sys")),
            fmt(ratio), fmt(r.get("x_gdnsd")), fmt(c.get("idle_cpu_pct"), "%.1f"),
            fmt(m.get("qps"), "%.0f"),
            fmt(m.get("server_cpu_pct"), "%.0f"), fmt(lt.get("p50_ms"), "%.3f"),
            fmt(lt.get("p99_ms"), "%.3f"), fmt(c.get("rss_kb", 0) / 1024, "%.1f"),
            fmt(c["dnsperf"].get("response_bytes"), "%d")))
        th = c.get("threads_us", {})
        if "udp" in th:
            lines.append("%-13s   threads: UDP workers %s us/q (x null %s), health watcher %s us/q "
                         "(%s%% of a core), other %s us/q" % (
                             "", fmt(th["udp"]),
                             fmt(th["udp"] / null_total if null_total else None),
                             fmt(th.get("health", 0)), fmt(c.get("health_cpu_pct", 0), "%.1f"),
                             fmt(sum(v for k, v in th.items() if k not in ("udp", "health")))))
        runs = []
        for key, label, f in (("x_null_runs", "x null", "%.2f"), ("x_gdnsd_runs", "x gdnsd", "%.2f"),
                              ("p99_runs_ms", "p99 ms", "%.3f")):
            vals = [v for v in r.get(key) or [] if v is not None]
            if len(vals) > 1 or (vals and key == "p99_runs_ms" and len(r.get(key)) > 1):
                runs.append("%s %s" % (label, ", ".join(f % v for v in vals)))
        if runs:
            lines.append("%-13s   rounds: %s" % ("", "; ".join(runs)))
        cis = ["%s median %.3f, 95%% CI %.3f-%.3f" % (label, r[key], r[key + "_ci"][0],
                                                      r[key + "_ci"][1])
               for key, label in (("x_null", "x null"), ("x_gdnsd", "x gdnsd"))
               if r.get(key + "_ci") and r[key + "_ci"][0] != r[key + "_ci"][1]]
        if cis:
            lines.append("%-13s   %s" % ("", "; ".join(cis)))
        lost = c["dnsperf"].get("lost")
        if lost or r.get("backends_down") or r["status"] != "ok":
            lines.append("%-13s   note: %s lost of %s; %s backends went DOWN; %s" % (
                "", lost, c["dnsperf"].get("sent"), r.get("backends_down", 0),
                r.get("reason", "")))
    if multi:
        lines.append("")
        lines.append("Both cores, max qps (dnsperf -T 2 -c 16 -q 2000 for %d s, servers and "
                     "dnsperf unpinned; median of %d rounds):" % (multi["secs"], multi["rounds"]))
        for key in ("dnsd", "gdnsd"):
            d = multi["servers"].get(key, {})
            if "qps" not in d:
                lines.append("%-13s %s: %s" % (d.get("server", key), d.get("status", "-"),
                                                d.get("reason", "no run")))
                continue
            lines.append("%-13s %9d qps  server cpu %5.1f%%  (%s; rounds %s)" % (
                d["server"], d["qps"], d["server_cpu_pct"], d.get("settings", ""),
                ", ".join("%.0f" % q for q in d["runs_qps"] if q)))
        lines.append("%-13s dnsd / gdnsd max qps: %s (rounds: %s)" % (
            "", fmt(multi.get("x_gdnsd")), ", ".join("%.2f" % r for r in multi["x_gdnsd_runs"])))
    if scale:
        lines.append("")
        lines.append("dnsd scaling (services x 3 backends, check none), at %d qps:" % a.rate)
        lines.append("(%d interleaved rounds; x first: median of the same-round ratios to "
                     "the first size)" % a.rounds)
        lines.append("%-10s %9s %9s %8s %8s %8s %8s %8s %8s" % (
            "names", "services", "backends", "us/q", "x first", "user", "sys", "RSS MB",
            "start s"))
        for s in scale:
            if s["status"] != "ok" or "us_total" not in s:
                lines.append("%-10d %s: %s" % (s["names"], s["status"],
                                                s.get("reason", "no round measured")))
                continue
            lines.append("%-10d %9d %9d %8s %8s %8s %8s %8.1f %8.1f" % (
                s["names"], s["services"], s["backends"], fmt(s["us_total"]),
                fmt(s.get("x_first")), fmt(s["us_user"]), fmt(s["us_sys"]),
                s["rss_kb"] / 1024, s["start_s"]))
            ci = s.get("x_first_ci")
            if ci and s is not scale[0]:
                lines.append("%-10s x first: 95%% CI of the median %.2f-%.2f; rounds %s" % (
                    "", ci[0], ci[1], ", ".join("%.2f" % r for r in s["x_first_runs"])))
    if big:
        lines.append("")
        if big["status"] != "ok":
            lines.append("dnsd %d services x %d backends: %s: %s" % (
                big["services"], big["backends"] // max(1, big["services"]), big["status"],
                big.get("reason", "")))
        else:
            lines.append(
                "dnsd %d services x %d backends (%.1f MB YAML, check none): --check %.1f s, "
                "start %.1f s, RSS %.1f MB (%.1f MB after reloads), reload %s ms, "
                "snapshot build %s ms" % (
                    big["services"], big["backends"] // big["services"], big["config_mb"],
                    big["check_s"], big["start_s"], big["rss_kb"] / 1024,
                    big["rss_after_reload_kb"] / 1024, big["reload_ms"],
                    big["snapshot_build_ms"]))
    return "\n".join(lines)


def base_dnsd(tmp, env):
    """dnsd-nc's settings on the build named by DNSD_BASE (a before/after
    comparison within one run)."""
    srv = Dnsd(tmp, free_port(), env, name="dnsd-base", check="{type: none}")
    srv.bin_override = os.environ.get("DNSD_BASE") or "/nonexistent/DNSD_BASE-not-set"
    srv.settings += "; binary " + srv.bin_override
    return srv


def build_null(tmp, say):
    """Compiles null_responder.c with cc -O2; the binary's path or None."""
    cc = os.environ.get("CC", "cc")
    out = Path(tmp) / "null_responder"
    try:
        subprocess.run([cc, "-O2", "-o", str(out), str(HERE / "null_responder.c")],
                       check=True, capture_output=True, text=True, timeout=120)
        return str(out)
    except (OSError, subprocess.SubprocessError) as e:
        say("null responder: build failed: %s" % getattr(e, "stderr", e))
        return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=None,
                    help="rounds over all servers, each a fixed-rate CPU run per server; "
                         "the median is reported (3; quick: 1)")
    ap.add_argument("--quick", action="store_true",
                    help="short runs, scaling at 100 and 10k names, 10k x 10 big run")
    ap.add_argument("--services", type=int, default=100, help="services in the zone (100)")
    ap.add_argument("--rate", type=int, default=20000, help="fixed rate for CPU/query (20000)")
    ap.add_argument("--secs", type=int, default=None, help="seconds per fixed-rate run (10)")
    ap.add_argument("--lat-rate", type=int, default=20000, help="rate for latency (20000)")
    ap.add_argument("--servers", default="null,dnsd,dnsd-nc,dnsd-10k,nsd,knot,gdnsd,pdns",
                    help="subset of null,dnsd,dnsd-nc,dnsd-10k,nsd,knot,gdnsd,pdns; also "
                         "dnsd-base: dnsd-nc on the build DNSD_BASE names (before/after)")
    ap.add_argument("--multi", default=None, choices=["on", "off"],
                    help="the two-core max qps runs: dnsd -w 2 and gdnsd udp_threads 2, "
                         "unpinned (on; quick: on)")
    ap.add_argument("--scale", default=None,
                    help="comma-separated name counts for dnsd scaling "
                         "(100,10000,100000,1000000; quick: 100,10000; '' for none)")
    ap.add_argument("--big", default=None,
                    help="SERVICESxBACKENDS for the memory/reload run (100000x10; quick: "
                         "10000x10; '' for none)")
    ap.add_argument("--paired", type=int, default=0, metavar="CYCLES",
                    help="start the servers once and measure CPU in CYCLES cycles of one "
                         "--secs window per server, order rotated per cycle (instead of "
                         "--rounds, where every round restarts every server); for the "
                         "same-cycle ratios to null and gdnsd, with a 95%% CI of the median")
    ap.add_argument("--out", default=str(RESULTS), help="results directory")
    ap.add_argument("--note", default="", help="a remark on the conditions, kept in the results")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (configs, logs)")
    a = ap.parse_args(argv)

    if dns is None:
        print("perf.py: needs dnspython; run with /usr/bin/python3", file=sys.stderr)
        return 2
    if not shutil.which("dnsperf"):
        print("perf.py: dnsperf not installed (apt-get install -y dnsperf)", file=sys.stderr)
        return 2
    if not shutil.which("taskset"):
        print("perf.py: taskset not found (util-linux)", file=sys.stderr)
        return 2
    q = a.quick
    a.secs = a.secs or (3 if q else 10)
    a.rounds = a.rounds or (1 if q else 3)
    a.max_secs = 3 if q else 8
    a.lat_secs = 3 if q else 5
    a.idle = 1 if q else 3
    a.qlimit = 200000
    a.scale_start_max = 90    # bounds dnsd's start (and --check) on big configs
    scale_sizes = [int(x) for x in (a.scale if a.scale is not None else
                                    ("100,10000" if q else "100,10000,100000,1000000"))
                   .split(",") if x.strip()]
    big_spec = a.big if a.big is not None else ("10000x10" if q else "100000x10")
    names = [n.strip() for n in a.servers.split(",") if n.strip()]

    def say(msg):
        print(msg, flush=True)

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    tmp = tempfile.mkdtemp(prefix="meshdns-perf-")
    started = datetime.datetime.now()
    results, scale, big, multi = [], [], None, None
    listener = None
    try:
        null_bin = build_null(tmp, say)
        srv_port = 8080
        check_port = free_port("0.0.0.0")
        data = zone_data(a.services, 3)
        zonefile = Path(tmp) / "mesh.zone"
        write_zonefile(zonefile, data, srv_port)
        qfile = Path(tmp) / "queries"
        write_queries(qfile, a.services, a.qlimit)
        env = dict(data=data, zonefile=str(zonefile), srv_port=srv_port,
                   check_port=check_port, null_bin=null_bin)
        if null_bin:
            # Accepts the health checks for every backend address (all of
            # 127/8). It stands for the backends and runs on the server's
            # CPU: on dnsperf's, its accepts (300 or 10,000 a second) delay
            # dnsperf's reading of answers and show up as dnsd's latency
            # (p99 0.18-0.21 ms there against 0.13-0.15 here); on the
            # server's CPU it can only slow dnsd, never flatter it.
            listener = spawn([null_bin, "-t", "0.0.0.0:%d" % check_port],
                             Path(tmp) / "listener.log", SERVER_CPU)
        else:
            say("no check listener: dnsd backends will go DOWN (fail-open keeps answers)")
        factories = {
            "null": lambda: Null(tmp, free_port(), env),
            "null1": lambda: Null1(tmp, free_port(), env),
            "dnsd": lambda: Dnsd(tmp, free_port(), env),
            "dnsd-nc": lambda: Dnsd(tmp, free_port(), env, name="dnsd-nc", check="{type: none}"),
            "dnsd-base": lambda: base_dnsd(tmp, env),
            "dnsd-10k": lambda: Dnsd(tmp, free_port(), env, name="dnsd-10k",
                                     data=zone_data(3334, 3)),
            "nsd": lambda: Nsd(tmp, free_port(), env),
            "knot": lambda: Knot(tmp, free_port(), env),
            "gdnsd": lambda: Gdnsd(tmp, free_port(), env),
            "pdns": lambda: Pdns(tmp, free_port(), env),
        }
        # Round after round over every server, one fixed-rate run and one
        # latency run each (max qps in the first round only): this machine's speed
        # drifts over minutes, and interleaving spreads the drift over all
        # servers instead of favouring whoever ran in a quiet minute. Each
        # server's ratio to null is taken within a round.
        per = {}
        if a.paired:
            unknown = [n for n in names if n not in factories or n == "dnsd-10k"]
            for n in unknown:
                say("%s: not measured in paired cycles, skipped" % n)
            per = paired_runs([(n, factories[n]) for n in names if n not in unknown],
                              qfile, a, say)
        for rnd in range(0 if a.paired else max(1, a.rounds)):
            say("-- round %d of %d" % (rnd + 1, max(1, a.rounds)))
            # The order rotates round by round: no server always runs
            # first, straight after the previous round's last.
            k = rnd % max(1, len(names))
            for n in names[k:] + names[:k]:
                if n not in factories:
                    if rnd == 0:
                        say("%s: unknown server, skipped" % n)
                    continue
                if rnd and per.get(n, [{}])[0].get("status") != "ok":
                    continue
                srv = factories[n]()
                qf = qfile
                if n == "dnsd-10k":
                    srv.settings += "; 3334 services x 3 = 10,002 health-checked backends"
                    qf = Path(tmp) / "queries-10k"
                    if rnd == 0:
                        write_queries(qf, 3334, a.qlimit)
                per.setdefault(n, []).append(run_server(srv, qf, a, say, first=rnd == 0))
        results = [merge_rounds(rs, per.get("null"), per.get("gdnsd")) for rs in per.values()]
        if a.multi != "off":
            multi = multi_runs(tmp, env, qfile, a, say)
        if scale_sizes:
            scale = scale_runs(tmp, env, scale_sizes, a, say)
        if big_spec:
            s, b = big_spec.lower().split("x")
            big = big_run(tmp, env, int(s), int(b), say, a.scale_start_max)
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    finally:
        cleanup_all()
        if a.keep:
            say("kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    null = [r for r in results if r["server"] == "null" and "cpu" in r]
    null_total = null[0]["cpu"].get("us_total") if null else None
    txt = table(results, scale, big, null_total, a, multi)
    print()
    print(txt)
    doc = dict(
        bench="perf", quick=q, note=a.note, started=started.isoformat(timespec="seconds"),
        duration_s=round((datetime.datetime.now() - started).total_seconds(), 1),
        host=dict(kernel=platform.release(), cpus=os.cpu_count(), hz=HZ,
                  loadavg_at_end=open("/proc/loadavg").read().split()[:3],
                  dnsperf=subprocess.run(["dnsperf", "-h"], capture_output=True,
                                         text=True).stderr.split("Version")[-1].strip()
                  or dpkg_version("dnsperf")),
        settings=dict(services=a.services, backends_per_service=3, rate=a.rate,
                      secs=a.secs, rounds=a.rounds, paired=a.paired, max_secs=a.max_secs, max_outstanding=2000,
                      max_clients=16,
                      lat_rate=a.lat_rate, lat_secs=a.lat_secs, idle_secs=a.idle,
                      server_cpu=SERVER_CPU, client_cpu=CLIENT_CPU,
                      queries="svcK.mesh A and _http._tcp.svcK.mesh SRV over every service, "
                              "shuffled"),
        null_us_per_query=null_total, results=results, both_cores=multi, scaling=scale,
        big=big)
    if not a.no_write:
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        # A day's later runs get -2, -3...: a dated result is never overwritten.
        base = "perf-" + started.strftime("%Y-%m-%d") + ("-quick" if q else "")
        stem, k = base, 1
        while (out / (stem + ".json")).exists() or (out / (stem + ".txt")).exists():
            k += 1
            stem = "%s-%d" % (base, k)
        (out / (stem + ".json")).write_text(json.dumps(doc, indent=1) + "\n")
        hdr = "# perf bench%s %s, kernel %s, %d CPUs, load average at end %s\n" % (
            " (QUICK: short runs, indicative only)" if q else "", doc["started"],
            platform.release(), os.cpu_count(), " ".join(doc["host"]["loadavg_at_end"]))
        if a.note:
            hdr += "# note: %s\n" % a.note
        (out / (stem + ".txt")).write_text(hdr + txt + "\n")
        say("wrote %s.{json,txt}" % (out / stem))
    return 1 if any(r["status"] == "failed" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())

"""The client matrix: real resolvers a pod runs, pointed at dnsd by a private
resolv.conf, resolve every kind of name (issue 17).

dnsd serves zone mesh on 127.0.170.1:53 (127.0.170.3:53 with search-path on)
and forwards the rest to a second dnsd on 127.0.170.2:53, authoritative for
the root: www.example.test, and NXDOMAIN for the rest (cluster.local too). The
clients are built at test time into a temporary directory from
tests/integration/clients/: C getaddrinfo with glibc, the same with musl
(musl-gcc -static: no EDNS, and before 1.2.4 no retry over TCP), Go's pure
resolver (PreferGo), Node's dns.lookup and dns.resolve4/6 (c-ares), and
getent. Each runs under `unshare -m` with the resolv.conf bind-mounted over
/etc/resolv.conf, so the host's is untouched.

Every client must resolve a small service, a short name through the search
list, a 60-backend A service (10 of them down), a 40-backend AAAA service,
a forwarded name, and get "not found" for a missing one; musl gets a subset
of the healthy backends of the big services (oversize: subset).

test_queries_per_lookup counts the queries one lookup of user-service.mesh
costs with a Kubernetes search list, with and without search-path (the
figures in the README come from its output)."""
import os
import re
import shutil
import subprocess
import time
import urllib.request

import pytest

import dns.message
import dns.query

from dnsd_harness import Dnsd, answers, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "clients")

FRONT_IP = {"plain": "127.0.170.1", "search-path": "127.0.170.3"}
UP_IP = "127.0.170.2"

SMALL = ["127.0.170.%d" % i for i in range(11, 15)]
WIDE_UP = ["10.17.0.%d" % i for i in range(1, 51)]
WIDE_DOWN = ["127.0.171.%d" % i for i in range(1, 11)]    # port 9 refuses: down
WIDE6 = ["fd17::%x" % i for i in range(1, 41)]

# The upstream is authoritative for the root, so every other name is
# NXDOMAIN there, as on the Internet (cluster.local too, as in a cluster's
# DNS); a REFUSED would end some clients' search walks (c-ares asks
# "user-service." first).
UPSTREAM_YAML = """\
zones:
  - name: .
    soa: {minimum: 30}
    records:
      - {name: www.example.test., type: A, data: 192.0.2.1}
      - {name: www.example.test., type: AAAA, data: "2001:db8::1"}
"""

DOWN_CHECK = "{type: tcp, port: 9, interval: 200ms, timeout: 100ms, rise: 1, fall: 1}"

FRONT_YAML = """\
forward: {upstreams: ["%(up)s:53"], timeout: 1s}
%(search)s
zones:
  - name: mesh
    ttl: 30
    services:
      - name: user-service
        ports: {http: 8080}
        backends: [%(small)s]
      - name: wide
        ports: {http: 8080}
        backends: [%(wide)s]
      - name: wide6
        ports: {http: 8080}
        backends: [%(wide6)s]
"""

SEARCH_PATH = "search-path: ['*.svc.cluster.local', svc.cluster.local, cluster.local]"
K8S_SEARCH = "default.svc.cluster.local svc.cluster.local cluster.local"


def front_yaml(mode):
    wide = WIDE_UP + ["{address: %s, check: %s}" % (a, DOWN_CHECK) for a in WIDE_DOWN]
    return FRONT_YAML % {
        "up": UP_IP, "search": SEARCH_PATH if mode == "search-path" else "",
        "small": ", ".join(SMALL), "wide": ", ".join(wide),
        "wide6": ", ".join("'%s'" % a for a in WIDE6)}


def port53_free(ip):
    import socket
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((ip, 53))
            except OSError:
                return False
    return True


def why_not():
    """Why the matrix cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (port 53 on 127.0.170.x, a bind mount over /etc/resolv.conf)"
    for tool in ("unshare", "getent", "cc"):
        if not shutil.which(tool):
            return tool + " missing (make deps)"
    p = subprocess.run(["unshare", "-m", "true"], capture_output=True, text=True)
    if p.returncode != 0:
        return "unshare -m is not permitted here: " + p.stderr.strip()
    for ip in list(FRONT_IP.values()) + [UP_IP]:
        if not port53_free(ip):
            return "port 53 on %s is in use" % ip
    return None


# ------------------------------------------------------------ the clients

def build_clients(out):
    """{client name: argv prefix} for the clients built into out; a client
    whose toolchain is missing maps to the reason instead."""
    src_c = os.path.join(SRC, "resolve.c")
    clients = {}
    exe = os.path.join(out, "resolve-glibc")
    subprocess.run(["cc", "-O1", "-o", exe, src_c], check=True, timeout=120)
    clients["glibc"] = [exe]
    if shutil.which("musl-gcc"):
        exe = os.path.join(out, "resolve-musl")
        subprocess.run(["musl-gcc", "-static", "-O1", "-o", exe, src_c], check=True, timeout=120)
        clients["musl"] = [exe]
    else:
        clients["musl"] = "musl-gcc missing (musl-tools; make deps)"
    if shutil.which("go"):
        exe = os.path.join(out, "resolve-go")
        # Standard library only, no network: a private build cache, no proxy.
        env = dict(os.environ, GOCACHE=os.path.join(out, "gocache"),
                   GOPATH=os.path.join(out, "gopath"), GOFLAGS="", GOPROXY="off",
                   CGO_ENABLED="0", GO111MODULE="off")
        subprocess.run(["go", "build", "-o", exe, os.path.join(SRC, "resolve.go")], check=True,
                       env=env, timeout=300, cwd=out)
        clients["go"] = [exe]
    else:
        clients["go"] = "go missing (golang-go; make deps)"
    node = shutil.which("node") or shutil.which("nodejs")
    if node:
        clients["node-lookup"] = [node, os.path.join(SRC, "resolve.js"), "lookup"]
        clients["node-resolve"] = [node, os.path.join(SRC, "resolve.js"), "resolve"]
    else:
        clients["node-lookup"] = clients["node-resolve"] = "node missing (nodejs; make deps)"
    clients["getent"] = ["getent"]
    return clients


# getent ahosts, printed as resolve.c prints (exit 2: not found).
GETENT = r"""
for n in "$@"; do
	out=$(getent ahosts "$n"); rc=$?
	if [ $rc -eq 0 ]; then
		printf '%s\tok\t%s\n' "$n" "$(printf '%s\n' "$out" | awk '!s[$1]++ {print $1}' | tr '\n' ' ')"
	elif [ $rc -eq 2 ]; then
		printf '%s\tnotfound\n' "$n"
	else
		printf '%s\terror\texit %s\n' "$n" $rc
	fi
done
"""


def run_client(argv, conf, names, timeout=90):
    """Runs argv + names in a private mount namespace whose /etc/resolv.conf
    is conf; returns {name: ("ok", [addrs]) | ("notfound", None) |
    ("error", message)}."""
    if argv == ["getent"]:
        inner = ["sh", "-c", GETENT, "getent"]
    else:
        inner = list(argv)
    script = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'
    p = subprocess.run(["unshare", "-m", "sh", "-c", script, str(conf)] + inner + names,
                       capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, (argv, p.returncode, p.stdout, p.stderr)
    got = {}
    for line in p.stdout.splitlines():
        parts = line.rstrip("\n").split("\t")
        if len(parts) >= 2:
            if parts[1] == "ok":
                got[parts[0]] = ("ok", parts[2].split() if len(parts) > 2 else [])
            else:
                got[parts[0]] = (parts[1], parts[2] if len(parts) > 2 else None)
    return got


def write_conf(path, ip, search, ndots=5):
    path.write_text("nameserver %s\nsearch %s\noptions ndots:%d attempts:2 timeout:2\n"
                    % (ip, search, ndots))
    return path


# ------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def clients(tmp_path_factory):
    why = why_not()
    if why:
        pytest.skip(why)
    return build_clients(str(tmp_path_factory.mktemp("clients")))


@pytest.fixture(scope="module")
def upstream(clients, tmp_path_factory):
    d = Dnsd(tmp_path_factory.mktemp("upstream"), UPSTREAM_YAML,
             listen=("%s:53" % UP_IP,)).start()
    yield d
    assert d.stop() == 0, d.log()


def wait_wide_health(d, timeout=10.0):
    """Until the 10 checked backends of wide are down (TCP: the full answer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = d.query("wide.mesh.", "A", tcp=True)
        if sorted(answers(r, "A")) == sorted(WIDE_UP):
            return
        time.sleep(0.1)
    raise AssertionError("wide.mesh: checked backends not down after %.0fs" % timeout)


@pytest.fixture(scope="module", params=["plain", "search-path"])
def front(request, upstream, tmp_path_factory):
    mode = request.param
    http = free_port()
    d = Dnsd(tmp_path_factory.mktemp("front-" + mode), front_yaml(mode),
             listen=("%s:53" % FRONT_IP[mode],),
             args=("--query-log=100000", "--http", "127.0.0.1:%d" % http)).start()
    d.mode = mode
    d.http = http
    wait_wide_health(d)
    yield d
    assert d.stop() == 0, d.log()


# ------------------------------------------------------------ the matrix

NAMES = ["user-service.mesh", "user-service", "wide.mesh", "wide6.mesh", "nothere.mesh",
         "www.example.test"]
CLIENTS = ["glibc", "musl", "go", "node-lookup", "node-resolve", "getent"]


@pytest.mark.parametrize("client", CLIENTS)
def test_client_resolves_everything(clients, front, client, tmp_path):
    argv = clients[client]
    if isinstance(argv, str):
        pytest.skip(argv)
    conf = write_conf(tmp_path / "resolv.conf", FRONT_IP[front.mode], K8S_SEARCH + " mesh")
    got = run_client(argv, conf, NAMES)
    print("%s (%s): %s" % (client, front.mode,
                           {n: (v[0], len(v[1]) if v[0] == "ok" else v[1])
                            for n, v in got.items()}))
    bad = []

    def want(name, cond, what):
        if not cond:
            bad.append("%s: %s, got %r" % (name, what, got.get(name)))

    for name in ("user-service.mesh", "user-service"):
        st, addrs = got.get(name, (None, None))
        if name == "user-service" and client == "node-resolve":
            # dns.resolve* is ares_query: no search list, a short name is
            # asked as it is (Node's documented behaviour, not dnsd's).
            want(name, st == "notfound", "not found (no search list)")
            continue
        want(name, st == "ok" and sorted(addrs) == sorted(SMALL), "all 4 backends")
    st, addrs = got.get("wide.mesh", (None, None))
    want("wide.mesh", st == "ok" and 20 <= len(addrs) <= len(WIDE_UP)
         and set(addrs) <= set(WIDE_UP), "20..50 healthy backends")
    st, addrs = got.get("wide6.mesh", (None, None))
    want("wide6.mesh", st == "ok" and 10 <= len(addrs) and set(addrs) <= set(WIDE6),
         "10..40 of the AAAA backends")
    want("nothere.mesh", got.get("nothere.mesh", (None,))[0] == "notfound", "not found")
    st, addrs = got.get("www.example.test", (None, None))
    want("www.example.test", st == "ok" and "192.0.2.1" in addrs, "the forwarded address")
    if client == "musl":
        # No EDNS and no TCP: only a subset fits 512 bytes (of healthy
        # backends, checked above).
        for name, full in (("wide.mesh", WIDE_UP), ("wide6.mesh", WIDE6)):
            st, addrs = got.get(name, (None, None))
            want(name, st == "ok" and len(addrs) < len(full), "a subset (musl)")
    assert not bad, "\n".join(bad)


def metric(d, name):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % d.http, timeout=5) as f:
        text = f.read().decode()
    m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
    assert m, "%s not in /metrics" % name
    return int(m.group(1))


def test_subset_counted(front):
    """A musl-like query (no EDNS) for the big service is answered with a
    subset of healthy backends, counted in the metrics; nothing is
    truncated."""
    before = metric(front, "dnsd_dns_subset_answers_total")
    for _ in range(3):
        raw = front.raw_udp(dns.message.make_query("wide.mesh.", "A").to_wire())
        r = dns.message.from_wire(raw)
        assert len(raw) <= 512 and not r.flags & dns.flags.TC
        assert 20 <= len(answers(r, "A")) < len(WIDE_UP)
        assert set(answers(r, "A")) <= set(WIDE_UP)
    assert metric(front, "dnsd_dns_subset_answers_total") == before + 3


# ------------------------------------------------------------ queries per lookup

QUERY_LINE = re.compile(r"query (udp|tcp) \S+ (\S+) (\S+) ->")


def count_queries(d, start):
    """The queries dnsd logged after byte offset start: [(name, type)]."""
    time.sleep(0.2)
    return [(m.group(2), m.group(3)) for m in QUERY_LINE.finditer(d.log()[start:])]


def test_queries_per_lookup(clients, front, tmp_path):
    """One lookup of user-service.mesh from each client with a Kubernetes
    search list and ndots:5: without search-path the three suffixed names
    go first (A and AAAA each); with it the first one is answered with a
    CNAME, so glibc and musl ask two queries (A and AAAA) in all. (Node's
    dns.resolve* applies no search list: 2 either way.)"""
    conf = write_conf(tmp_path / "resolv.conf", FRONT_IP[front.mode], K8S_SEARCH)
    figures = {}
    for client in ("glibc", "musl", "go", "node-lookup", "node-resolve", "getent"):
        argv = clients[client]
        if isinstance(argv, str):
            continue
        start = len(front.log())
        got = run_client(argv, conf, ["user-service.mesh"])
        assert got["user-service.mesh"][0] == "ok", (client, got)
        assert sorted(got["user-service.mesh"][1]) == sorted(SMALL), (client, got)
        qs = count_queries(front, start)
        figures[client] = len(qs)
        print("queries per lookup (%s, %s): %d: %s" % (front.mode, client, len(qs),
                                                       " ".join("%s/%s" % q for q in qs)))
    if front.mode == "search-path":
        for client in ("glibc", "musl"):
            if client in figures:
                assert figures[client] <= 2, figures
        assert metric(front, "dnsd_search_path_answers_total") >= len(figures)
    else:
        for client in ("glibc", "musl"):
            if client in figures:
                assert figures[client] >= 8, figures

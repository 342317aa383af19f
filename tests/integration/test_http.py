"""The HTTP endpoint (--http): /health, /ready, /metrics, /status.json and
the status page, against a dnsd whose backends are real TCP listeners that
the tests start and kill. The page is loaded in headless Chromium; a
screenshot is written to build/artifacts/status-page.png (and kept in the
tree as tests/artifacts/status-page.png)."""
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from dnsd_harness import ROOT, free_port

BACKENDS = ["127.0.0.61", "127.0.0.62"]


def yaml_for(port):
    return """
zones:
  - name: mesh
    services:
      - name: web
        ttl: 1
        ports: {http: %d}
        check: {type: tcp, interval: 100ms, timeout: 50ms, rise: 1, fall: 2}
        backends: [%s]
""" % (port, ", ".join(BACKENDS))


def accept_loop(s):
    """Accepts and closes connections until the socket is closed, so the
    backlog never fills up with health-check connections."""
    while True:
        try:
            c, _ = s.accept()
        except OSError:
            return
        c.close()


def listeners(port):
    socks = []
    for ip in BACKENDS:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip, port))
        s.listen(64)
        threading.Thread(target=accept_loop, args=(s,), daemon=True).start()
        socks.append(s)
    return socks


def kill(s):
    """Stops a listener: new connections are refused from now on."""
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()


def get(url, timeout=3):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


@pytest.fixture
def served(dnsd):
    port = free_port("127.0.0.61")
    socks = listeners(port)
    d = dnsd(yaml_for(port), args=["--http", "127.0.0.1:0"])
    m = d.wait_log(r"http status on (http://\S+/)")
    base = m.group(1).rstrip("/")
    yield d, base, socks
    for s in socks:
        kill(s)


def backend_state(base, ip):
    st = json.loads(get(base + "/status.json")[2])
    for z in st["zones"]:
        for s in z["services"]:
            for b in s["backends"]:
                if b["address"] == ip:
                    return b
    raise AssertionError("backend %s not in status.json" % ip)


def wait_state(base, ip, state, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        b = backend_state(base, ip)
        if b["state"] == state:
            return b
        time.sleep(0.05)
    raise AssertionError("%s never became %s: %r" % (ip, state, backend_state(base, ip)))


def test_health_and_ready(served):
    d, base, _ = served
    assert get(base + "/health")[0] == 200
    deadline = time.monotonic() + 5
    while get(base + "/ready")[0] != 200:
        assert time.monotonic() < deadline, get(base + "/ready")
        time.sleep(0.05)
    code, ctype, body = get(base + "/nope")
    assert code == 404
    req = urllib.request.Request(base + "/metrics", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=3)
    assert e.value.code == 405


def metric(text, name, **labels):
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"([a-z_]+)(?:\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = ",".join(sorted((m.group(2) or "").split(","))) if m.group(2) else ""
        if got == want:
            return float(m.group(3))
    return None


def test_metrics_count_queries(served):
    d, base, _ = served
    code, ctype, text = get(base + "/metrics")
    assert code == 200 and ctype.startswith("text/plain")
    before = metric(text, "dnsd_dns_requests_total", zone="mesh.", proto="udp", type="A") or 0
    nx_before = metric(text, "dnsd_dns_responses_total", zone="mesh.", rcode="NXDOMAIN") or 0
    for _ in range(25):
        assert d.query("web.mesh.", "A").rcode() == 0
    for _ in range(5):
        d.query("nope.mesh.", "A")
    d.query("web.mesh.", "SRV", tcp=True)
    text = get(base + "/metrics")[2]
    assert metric(text, "dnsd_dns_requests_total", zone="mesh.", proto="udp", type="A") == before + 30
    assert metric(text, "dnsd_dns_requests_total", zone="mesh.", proto="tcp", type="SRV") == 1
    assert metric(text, "dnsd_dns_responses_total", zone="mesh.", rcode="NXDOMAIN") == nx_before + 5
    count = metric(text, "dnsd_dns_request_duration_seconds_count")
    inf = metric(text, "dnsd_dns_request_duration_seconds_bucket", le="+Inf")
    assert count == inf and count >= 31
    assert metric(text, "dnsd_snapshot_generation") >= 1
    assert metric(text, "dnsd_backend_up", service="web.mesh.", backend="127-0-0-61",
                  address="127.0.0.61", port=str(d_port(base, "127.0.0.61"))) == 1


def d_port(base, ip):
    return backend_state(base, ip)["port"]


def test_status_json_follows_a_killed_backend(served):
    d, base, socks = served
    wait_state(base, "127.0.0.62", "up")
    kill(socks[1])
    b = wait_state(base, "127.0.0.62", "down")
    assert b["effective_weight"] == 0
    assert b["transitions"] >= 1
    assert "refused" in b["last_result"].lower()
    st = json.loads(get(base + "/status.json")[2])
    svc = st["zones"][0]["services"][0]
    assert svc["name"] == "web.mesh." and svc["healthy"] == 1
    text = get(base + "/metrics")[2]
    port = str(b["port"])
    assert metric(text, "dnsd_backend_up", service="web.mesh.", backend="127-0-0-62",
                  address="127.0.0.62", port=port) == 0
    assert metric(text, "dnsd_backend_transitions_total", service="web.mesh.",
                  backend="127-0-0-62", address="127.0.0.62", port=port) >= 1


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def run_chromium(args, timeout=60):
    exe = chromium()
    base = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--user-data-dir=" + os.path.join(ROOT, "build", "chromium-profile")]
    return subprocess.run(base + args, capture_output=True, text=True, timeout=timeout)


def test_status_page_in_chromium(served):
    """The page renders the backend table from status.json; after a backend
    is killed, a fresh load shows its row as down."""
    if not chromium():
        pytest.skip("chromium is not installed (make deps installs it)")
    d, base, socks = served
    wait_state(base, "127.0.0.61", "up")
    p = run_chromium(["--virtual-time-budget=3000", "--dump-dom", base + "/"])
    if p.returncode != 0 and "<html" not in p.stdout:
        pytest.skip("chromium cannot start here: " + p.stderr.strip()[-300:])
    assert 'data-address="127.0.0.61:' in p.stdout, p.stdout[-2000:]
    assert re.search(r'<tr class="up" data-address="127\.0\.0\.61:\d+">', p.stdout)
    kill(socks[0])
    wait_state(base, "127.0.0.61", "down")
    p = run_chromium(["--virtual-time-budget=3000", "--dump-dom", base + "/"])
    assert re.search(r'<tr class="down" data-address="127\.0\.0\.61:\d+">', p.stdout), p.stdout[-2000:]
    assert "down" in p.stdout
    out = os.path.join(ROOT, "build", "artifacts")
    os.makedirs(out, exist_ok=True)
    shot = os.path.join(out, "status-page.png")
    p = run_chromium(["--virtual-time-budget=3000", "--window-size=1200,500",
                      "--screenshot=" + shot, base + "/"])
    assert os.path.exists(shot) and os.path.getsize(shot) > 1000, p.stderr[-500:]


def test_meshdig_status_url(served):
    """meshdig --status URL reads /status.json and prints every backend."""
    from dnsd_harness import MESHDIG
    d, base, socks = served
    wait_state(base, "127.0.0.61", "up")
    kill(socks[0])
    wait_state(base, "127.0.0.61", "down")
    p = subprocess.run([MESHDIG, "--status", base + "/"], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode == 0, p.stderr
    rows = {line.split()[1]: line.split() for line in p.stdout.splitlines()
            if line.startswith("127-0-0-6")}
    assert rows["127.0.0.61:%d" % d_port(base, "127.0.0.61")][2] == "down"
    assert rows["127.0.0.62:%d" % d_port(base, "127.0.0.62")][2] == "up"
    assert "web.mesh. policy=weighted healthy=1/2" in p.stdout
    p = subprocess.run([MESHDIG, "--status", base + "/metrics"], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 10 and "not a dnsd status document" in p.stderr
    p = subprocess.run([MESHDIG, "--status", "http://127.0.0.1:1/"], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 9


def test_http_key_in_yaml(dnsd):
    """`http: ADDR:PORT` in the file starts the endpoint without --http."""
    port = free_port()
    d = dnsd("http: 127.0.0.1:%d\n" % port + yaml_for(free_port("127.0.0.61")))
    d.wait_log(r"http status on http://127\.0\.0\.1:%d/" % port)
    assert get("http://127.0.0.1:%d/health" % port)[0] == 200


def test_check_duration_histogram(served):
    """dnsd_health_check_duration_seconds counts every finished check, in
    cumulative buckets ending with +Inf == count."""
    d, base, _ = served
    time.sleep(0.5)                 # 100 ms checks of two backends
    text = get(base + "/metrics")[2]
    count = metric(text, "dnsd_health_check_duration_seconds_count")
    assert count is not None and count >= 4, text
    assert metric(text, "dnsd_health_check_duration_seconds_bucket", le="+Inf") == count
    buckets = [float(m.group(2)) for m in re.finditer(
        r'^dnsd_health_check_duration_seconds_bucket\{le="([0-9.e+-]+)"\} (\d+)$', text, re.M)]
    assert len(buckets) == 11 and buckets == sorted(buckets)
    assert buckets[-1] == count      # loopback checks all finish within 5 s
    assert "# TYPE dnsd_health_check_duration_seconds histogram" in text


def ch_status(d, name):
    """{ADDR:PORT: {state, weight, effective, for, checks, last}} from CH TXT name
    (over TCP: over UDP without a server cookie the answer is capped)."""
    r = d.query(name, "TXT", rdclass="CH", tcp=True)
    rows = {}
    for rrset in r.answer:
        for rd in rrset:
            line = b"".join(rd.strings).decode()
            if line.startswith("service "):
                continue
            name_, addr, state, rest = line.split(" ", 3)
            f = dict(re.findall(r"(\w+(?:-\w+)?)=(\S+)", rest.split(" last=")[0]))
            f["state"] = state
            f["last"] = rest.split(" last=", 1)[1]
            rows[addr] = f
    return rows


def test_one_status_model_for_dns_http_metrics(served):
    """The CHAOS answer, /status.json and /metrics show one model of a
    backend (backend_fmt.c): a down backend has effective weight 0
    everywhere, a backend up since start shows its time up (not 0s), and
    the last check reads the same, as the DOWN log line says it."""
    d, base, socks = served
    wait_state(base, "127.0.0.62", "up")
    time.sleep(1.2)
    kill(socks[1])
    b = wait_state(base, "127.0.0.62", "down")
    up = backend_state(base, "127.0.0.61")
    port = b["port"]
    ch = ch_status(d, "web.mesh.")
    down_ch, up_ch = ch["127.0.0.62:%d" % port], ch["127.0.0.61:%d" % port]
    text = get(base + "/metrics")[2]
    lab = dict(service="web.mesh.", address="127.0.0.62", port=str(port), backend="127-0-0-62")

    assert down_ch["state"] == b["state"] == "down"
    assert down_ch["effective"] == "0" == str(b["effective_weight"]), (down_ch, b)
    assert metric(text, "dnsd_backend_effective_weight", **lab) == 0
    assert metric(text, "dnsd_backend_up", **lab) == 0
    # The same text for the last check: "connect: Connection refused/0ms".
    assert b["last_check"] == "%s/%dms" % (b["last_result"], b["last_check_ms"])
    assert down_ch["last"].split("/")[0] == b["last_result"] == "connect: Connection refused"
    assert re.fullmatch(r"connect: Connection refused/\d+ms", down_ch["last"]), down_ch
    d.wait_log(r"127\.0\.0\.62:%d of web\.mesh is DOWN \(\d+ failures; last: %s\)"
               % (port, re.escape(b["last_result"])), 2.0)
    # Up since start: seconds up in both, not 0s over DNS and null over HTTP.
    assert isinstance(up["since_seconds"], int) and up["since_seconds"] >= 1, up
    assert int(up_ch["for"].rstrip("s")) >= 1, up_ch
    assert abs(int(up_ch["for"].rstrip("s")) - up["since_seconds"]) <= 1
    assert up_ch["effective"] == str(up["effective_weight"]) == "100"

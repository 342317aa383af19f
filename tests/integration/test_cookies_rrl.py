"""DNS Cookies (RFC 7873, server cookies per RFC 9018) and response rate
limiting: dig, kdig and dnspython get and return server cookies, secrets
rotate across a reload, require-under-load answers BADCOOKIE or TC over
UDP, and a bounded loopback flood is answered, truncated and dropped as
the configured rate and slip say, with the counters in /metrics."""
import os
import re
import select
import socket
import time
import urllib.request

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

ZONE = """
zones:
  - name: mesh
    records:
      - {name: www, type: A, data: 192.0.2.10}
"""

SECRET_A = "e5e973e5a6b2a43f48e7dc849e37bfcf"
SECRET_B = "445536bcd2513298075a5d379663c962"
CLIENT = bytes.fromhex("2464c4abcf10c957")
BADCOOKIE = 23


def cookie_query(name="www.mesh.", cookie=CLIENT):
    return dns.message.make_query(name, "A", use_edns=0, payload=1232,
                                  options=[dns.edns.GenericOption(dns.edns.COOKIE, cookie)])


def cookie_of(resp):
    for o in resp.options:
        if o.otype == dns.edns.COOKIE:
            return o.to_wire() if hasattr(o, "to_wire") else o.data
    return None


def a_records(resp):
    return [rr.address for rrset in resp.answer for rr in rrset if rrset.rdtype == dns.rdatatype.A]


def metrics(d):
    base = d.wait_log(r"http status on (http://\S+/)").group(1)
    with urllib.request.urlopen(base + "metrics", timeout=3) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(dnsd_(?:rrl|cookie)_\w+)(\{[^}]*\})? (\d+)$", line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = int(m.group(3))
    return out


def write_secret(tmp_path, name, hexkey):
    p = os.path.join(str(tmp_path), name)
    with open(p, "w") as f:
        f.write(hexkey + "\n")
    return p


# ---------------------------------------------------------------- cookies

def test_dig_cookie(dnsd):
    d = dnsd(ZONE)
    p = d.tool(["dig", "@%s" % d.host, "-p", str(d.port), "www.mesh", "A", "+cookie"])
    m = re.search(r"; COOKIE: ([0-9a-f]+) \(good\)", p.stdout)
    assert m, p.stdout
    full = m.group(1)
    assert len(full) == 48, "8-byte client + 16-byte server cookie: %s" % full
    server = full[16:]
    assert server[:8] == "01000000", "RFC 9018 version 1, reserved zero"
    assert abs(int(server[8:16], 16) - time.time()) < 60, "timestamp is now"
    assert "192.0.2.10" in p.stdout
    # The same cookie back: validated, and fresh, so echoed unchanged.
    p2 = d.tool(["dig", "@%s" % d.host, "-p", str(d.port), "www.mesh", "A", "+cookie=" + full])
    m2 = re.search(r"; COOKIE: ([0-9a-f]+) \(good\)", p2.stdout)
    assert m2 and m2.group(1) == full, p2.stdout
    assert "status: NOERROR" in p2.stdout


def test_kdig_cookie(dnsd):
    d = dnsd(ZONE)
    p = d.tool(["kdig", "@%s" % d.host, "-p", str(d.port), "www.mesh", "A", "+cookie"])
    m = re.search(r"COOKIE: ([0-9A-Fa-f]+)", p.stdout)
    assert m, p.stdout
    assert len(m.group(1)) == 48
    assert "status: NOERROR" in p.stdout and "192.0.2.10" in p.stdout
    # kdig checks the echoed client cookie itself; a mismatch is a warning.
    assert "invalid" not in p.stdout.lower() + p.stderr.lower()


def test_dnspython_cookie_exchange(dnsd):
    d = dnsd(ZONE)
    r = d.send(cookie_query())
    c = cookie_of(r)
    assert c is not None and len(c) == 24 and c[:8] == CLIENT
    assert a_records(r) == ["192.0.2.10"]
    # Client + server cookie: valid, the same server cookie back.
    r2 = d.send(cookie_query(cookie=c))
    assert r2.rcode() == dns.rcode.NOERROR and cookie_of(r2) == c
    # Over TCP too.
    r3 = d.send(cookie_query(cookie=c), tcp=True)
    assert cookie_of(r3) == c
    # A bad server cookie: a normal answer with a fresh cookie (RFC 7873
    # 5.2.4: as if only the client cookie had been sent), not BADCOOKIE.
    bad = c[:8] + bytes.fromhex("01000000") + c[12:16] + bytes(8)
    r4 = d.send(cookie_query(cookie=bad))
    assert r4.rcode() == dns.rcode.NOERROR and a_records(r4) == ["192.0.2.10"]
    c4 = cookie_of(r4)
    assert c4 is not None and c4 != bad and c4[:8] == CLIENT and c4[8:12] == bytes.fromhex("01000000")
    # A foreign server cookie of another length (8 bytes): the same.
    r5 = d.send(cookie_query(cookie=CLIENT + bytes(8)))
    assert r5.rcode() == dns.rcode.NOERROR and len(cookie_of(r5)) == 24
    # Another client cookie gets another server cookie.
    other = bytes.fromhex("fc93fc62807ddb86")
    c6 = cookie_of(d.send(cookie_query(cookie=other)))
    assert c6[:8] == other and c6[8:] != c[8:]
    # No cookie asked: none given.
    r7 = d.query("www.mesh.", "A", use_edns=0)
    assert cookie_of(r7) is None


def test_malformed_cookie_formerr(dnsd):
    d = dnsd(ZONE)
    r = d.send(cookie_query(cookie=bytes(12)))
    assert r.rcode() == dns.rcode.FORMERR


def test_cookies_disabled(dnsd):
    d = dnsd(ZONE + "cookies: {enabled: false}\n")
    r = d.send(cookie_query())
    assert r.rcode() == dns.rcode.NOERROR and cookie_of(r) is None


def test_require_under_load(dnsd):
    d = dnsd(ZONE + "cookies: {require-under-load: true}\n", args=["--http", "127.0.0.1:0"])
    # No cookie over UDP: an empty answer with TC, for a retry over TCP.
    r = d.query("www.mesh.", "A", use_edns=0)
    assert r.flags & dns.flags.TC and not r.answer
    assert a_records(d.query("www.mesh.", "A", tcp=True)) == ["192.0.2.10"]
    # A client cookie alone: BADCOOKIE with a server cookie ...
    r = d.send(cookie_query())
    assert r.rcode() == BADCOOKIE and not r.answer
    c = cookie_of(r)
    assert c is not None and len(c) == 24
    # ... which then gets the answer.
    r = d.send(cookie_query(cookie=c))
    assert r.rcode() == dns.rcode.NOERROR and a_records(r) == ["192.0.2.10"]
    assert cookie_of(r) == c
    # dig does the same dance by itself: BADCOOKIE, then again with the cookie.
    p = d.tool(["dig", "@%s" % d.host, "-p", str(d.port), "www.mesh", "A", "+cookie"])
    assert "status: NOERROR" in p.stdout and "192.0.2.10" in p.stdout, p.stdout
    m = metrics(d)
    assert m['dnsd_cookie_required_total{response="badcookie"}'] >= 2
    assert m['dnsd_cookie_required_total{response="truncated"}'] == 1
    assert m['dnsd_cookie_requests_total{server_cookie="valid"}'] >= 2
    assert m['dnsd_cookie_requests_total{server_cookie="client-only"}'] >= 2


def test_secret_rotation_across_reload(dnsd, tmp_path):
    a = write_secret(tmp_path, "a.hex", SECRET_A)
    b = write_secret(tmp_path, "b.hex", SECRET_B)
    base = ZONE + "cookies: {require-under-load: true, %s}\n"
    d = dnsd(base % ("secret-file: " + a))
    ca = cookie_of(d.send(cookie_query()))
    assert d.send(cookie_query(cookie=ca)).rcode() == dns.rcode.NOERROR
    # Rotated: B is current, A previous: A's cookie is accepted and
    # answered with one of B (renewed).
    assert d.reload(base % ("secret-file: %s, previous-secret-file: %s" % (b, a)))
    r = d.send(cookie_query(cookie=ca))
    assert r.rcode() == dns.rcode.NOERROR and a_records(r) == ["192.0.2.10"]
    cb = cookie_of(r)
    assert cb[:8] == CLIENT and cb[8:] != ca[8:], "renewed with the new secret"
    assert d.send(cookie_query(cookie=cb)).rcode() == dns.rcode.NOERROR
    # A dropped: its cookies are no longer valid; B's still are.
    assert d.reload(base % ("secret-file: " + b))
    assert d.send(cookie_query(cookie=ca)).rcode() == BADCOOKIE
    r = d.send(cookie_query(cookie=cb))
    assert r.rcode() == dns.rcode.NOERROR and cookie_of(r) == cb
    # A bad secret file is refused at reload; the old secret keeps serving.
    bad = write_secret(tmp_path, "bad.hex", "xyz")
    assert not d.reload(base % ("secret-file: " + bad))
    assert "cookies:" in d.log()
    assert d.send(cookie_query(cookie=cb)).rcode() == dns.rcode.NOERROR


def test_generated_secret_kept_across_reload(dnsd):
    d = dnsd(ZONE + "cookies: {require-under-load: true}\n")
    c = cookie_of(d.send(cookie_query()))
    assert d.reload()
    assert d.send(cookie_query(cookie=c)).rcode() == dns.rcode.NOERROR


# ---------------------------------------------------------------- RRL

RRL = ZONE + """
rrl: {responses-per-second: %d, window: 15s, slip: 2, exempt: []}
"""


def flood(d, n, cookie=None, spread=1.0):
    """Sends n identical queries (new ids) from one socket within about
    spread seconds, reading answers as they come; returns (answered,
    truncated, no answer)."""
    q = cookie_query(cookie=cookie) if cookie else dns.message.make_query("www.mesh.", "A")
    wire = bytearray(q.to_wire())
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

    start = time.monotonic()
    batch = 20
    for i in range(n):
        wire[0], wire[1] = i >> 8, i & 0xff
        s.send(bytes(wire))
        if i % batch == batch - 1:
            # Pace the flood so neither side's socket buffer overflows.
            delay = start + spread * (i + 1) / n - time.monotonic()
            drain(max(delay, 0.0005))
    drain(1.0)
    s.close()
    tc = sum(1 for v in got.values() if v[2] & 0x02)
    return len(got) - tc, tc, n - len(got)


def test_rrl_flood(dnsd):
    rate, n = 50, 2000
    d = dnsd(RRL % rate, args=["--http", "127.0.0.1:0"])
    before = metrics(d)
    t0 = time.monotonic()
    answered, truncated, dropped = flood(d, n, spread=1.5)
    took = time.monotonic() - t0
    print("RRL flood: %d queries in %.2fs: %d answered, %d truncated, %d dropped"
          % (n, took, answered, truncated, dropped))
    assert took <= 5.0
    # One second's credit, then the debt (up to window x rate) keeps the
    # client limited for the rest of the flood; a second boundary right
    # after the start can add one more second's credit.
    assert rate <= answered <= 2 * rate + 5, answered
    limited = n - answered
    # slip 2: every second limited answer is sent truncated.
    assert abs(truncated - limited / 2) <= 0.02 * n, (truncated, limited)
    assert abs(dropped - limited / 2) <= 0.02 * n, (dropped, limited)
    m = metrics(d)
    slipped = m["dnsd_rrl_slipped_total"] - before.get("dnsd_rrl_slipped_total", 0)
    rdropped = m["dnsd_rrl_dropped_total"] - before.get("dnsd_rrl_dropped_total", 0)
    assert slipped + rdropped == limited, (slipped, rdropped, limited)
    assert abs(slipped - truncated) <= 5 and abs(rdropped - dropped) <= 5
    # TCP is never limited.
    for _ in range(20):
        assert a_records(d.query("www.mesh.", "A", tcp=True)) == ["192.0.2.10"]
    # Another name is another bucket.
    assert d.query("nope.mesh.", "A").rcode() == dns.rcode.NXDOMAIN


def test_rrl_valid_cookie_exempt(dnsd):
    d = dnsd(RRL % 5)
    c = cookie_of(d.send(cookie_query()))
    answered, truncated, dropped = flood(d, 200, spread=0.5)
    assert answered <= 15 and truncated + dropped >= 185
    # The flood's bucket is in debt; a client with a valid server cookie
    # from the same address is answered anyway.
    answered, truncated, dropped = flood(d, 100, cookie=c, spread=0.3)
    assert (answered, truncated, dropped) == (100, 0, 0)
    # A client cookie alone is not a proof: limited like the rest.
    answered, truncated, dropped = flood(d, 50, cookie=CLIENT, spread=0.2)
    assert answered == 0


def test_rrl_default_exempts_loopback(dnsd):
    d = dnsd(ZONE + "rrl: {responses-per-second: 5}\n")
    assert flood(d, 100, spread=0.3) == (100, 0, 0)


def test_rrl_off_by_default(dnsd):
    d = dnsd(ZONE)
    assert flood(d, 300, spread=0.3) == (300, 0, 0)

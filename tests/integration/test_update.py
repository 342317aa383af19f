"""RFC 2136 dynamic updates: nsupdate, knsupdate and dnspython with TSIG
register and remove backends and static records, prerequisites, keys,
health checks of registered backends, the journal across SIGKILL and
reload."""
import os
import re
import signal
import subprocess
import time

import dns.message
import dns.query
import dns.rcode
import dns.tsig
import dns.tsigkeyring
import dns.update
import pytest

from dnsd_harness import answers, free_port

SECRET = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
WRONG = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh4="
RING = dns.tsigkeyring.from_text({"upd-key.": ("hmac-sha256", SECRET)})
WRONG_RING = dns.tsigkeyring.from_text({"upd-key.": ("hmac-sha256", WRONG)})
OTHER_RING = dns.tsigkeyring.from_text({"other-key.": ("hmac-sha256", SECRET)})

CONF = """
keys:
  - {name: upd-key, algorithm: hmac-sha256, secret: "%(secret)s"}
  - {name: other-key, algorithm: hmac-sha256, secret: "%(secret)s"}
zones:
  - name: mesh
    ttl: 30
    ns: [ns1]
    update: {keys: [upd-key], journal: "%(journal)s"}
    records:
      - {name: ns1, type: A, data: 127.0.0.1}
%(extra)s
    services:
      - name: user-service
        ports: {http: %(port)d}
        backends: [127.0.0.1]
      - name: checked
        ports: {http: %(port)d}
        check: {type: tcp, interval: 200ms, timeout: 100ms, rise: 1, fall: 1}
        fail-open: false
        backends: [127.0.0.1]
%(more)s
  - name: static
    records:
      - {name: x, type: A, data: 10.0.0.1}
"""


def conf(tmp_path, port, extra="", more=""):
    return CONF % {"secret": SECRET, "journal": str(tmp_path / "mesh.journal"), "port": port,
                   "extra": extra, "more": more}


def update(d, zone="mesh.", keyring=RING, keyname="upd-key.", tcp=False):
    u = dns.update.UpdateMessage(zone, keyring=keyring, keyname=keyname,
                                 keyalgorithm="hmac-sha256") if keyring else \
        dns.update.UpdateMessage(zone)
    return u


def send(d, u, tcp=False):
    if tcp:
        return dns.query.tcp(u, d.host, port=d.port, timeout=5)
    return dns.query.udp(u, d.host, port=d.port, timeout=5)


def addrs(d, name="user-service.mesh.", rdtype="A"):
    return sorted(answers(d.query(name, rdtype), rdtype))


@pytest.fixture
def listener():
    """A TCP port with something listening on 127.0.0.1 (the health check target)."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    yield s.getsockname()[1]
    s.close()


def test_add_remove_backend_dnspython(dnsd, tmp_path, listener):
    d = dnsd(conf(tmp_path, listener))
    u = update(d)
    u.add("user-service", 30, "A", "127.0.0.2")
    r = send(d, u)
    assert r.rcode() == dns.rcode.NOERROR and r.had_tsig
    assert addrs(d) == ["127.0.0.1", "127.0.0.2"]
    srv = sorted(answers(d.query("user-service.mesh.", "SRV"), "SRV"))
    assert any("127-0-0-2.user-service.mesh." in s for s in srv)
    u = update(d)
    u.delete("user-service", "A", "127.0.0.2")
    r = send(d, u, tcp=True)
    assert r.rcode() == dns.rcode.NOERROR
    assert addrs(d) == ["127.0.0.1"]


def test_backend_whose_target_name_clashes_is_refused(dnsd, tmp_path, listener):
    """A backend added by UPDATE whose target name (<address>.<service>)
    is already a static name of the zone: REFUSED, nothing changes; the
    target of a backend that is added is answered from the backend."""
    d = dnsd(conf(tmp_path, listener,
                  extra="      - {name: 127-0-0-9.user-service, type: TXT, data: taken}"))
    u = update(d)
    u.add("user-service", 30, "A", "127.0.0.9")
    assert send(d, u).rcode() == dns.rcode.REFUSED
    assert addrs(d) == ["127.0.0.1"]
    assert answers(d.query("127-0-0-9.user-service.mesh.", "TXT"), "TXT") == ['"taken"']
    u = update(d)
    u.add("user-service", 30, "A", "127.0.0.8")
    assert send(d, u).rcode() == dns.rcode.NOERROR
    assert addrs(d, "127-0-0-8.user-service.mesh.") == ["127.0.0.8"]
    r = d.query("127-0-0-8.user-service.mesh.", "AAAA")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer


def test_nsupdate_and_knsupdate(dnsd, tmp_path, listener):
    d = dnsd(conf(tmp_path, listener))
    script = ("server %s %d\nzone mesh.\nupdate add user-service.mesh. 30 A 127.0.0.3\n"
              "update add hello.mesh. 60 TXT \"hi there\"\nsend\n" % (d.host, d.port))
    p = subprocess.run(["nsupdate", "-y", "hmac-sha256:upd-key:" + SECRET],
                       input=script, capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    assert "127.0.0.3" in addrs(d)
    txt = answers(d.query("hello.mesh.", "TXT"), "TXT")
    assert txt == ['"hi there"']
    script = ("server %s %d\nzone mesh.\nupdate delete user-service.mesh. A 127.0.0.3\n"
              "update add user-service.mesh. 30 A 127.0.0.4\nsend\nquit\n" % (d.host, d.port))
    p = subprocess.run(["knsupdate", "-y", "hmac-sha256:upd-key:" + SECRET],
                       input=script, capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stdout + p.stderr
    assert addrs(d) == ["127.0.0.1", "127.0.0.4"]
    # nsupdate without a key: REFUSED
    script = ("server %s %d\nzone mesh.\nupdate add user-service.mesh. 30 A 127.0.0.9\nsend\n"
              % (d.host, d.port))
    p = subprocess.run(["nsupdate"], input=script, capture_output=True, text=True, timeout=20)
    assert p.returncode != 0 and "REFUSED" in p.stdout + p.stderr
    assert "127.0.0.9" not in addrs(d)


def test_static_records_and_delete(dnsd, tmp_path, listener):
    d = dnsd(conf(tmp_path, listener))
    u = update(d)
    u.add("web", 60, "A", "10.1.1.1")
    u.add("web", 60, "A", "10.1.1.2")
    u.add("alias", 60, "CNAME", "web.mesh.")
    u.add("mx", 60, "MX", "10 web.mesh.")
    assert send(d, u).rcode() == dns.rcode.NOERROR
    assert addrs(d, "web.mesh.") == ["10.1.1.1", "10.1.1.2"]
    assert answers(d.query("mx.mesh.", "MX"), "MX") == ["10 web.mesh."]
    u = update(d)
    u.delete("web", "A")
    assert send(d, u).rcode() == dns.rcode.NOERROR
    assert d.query("web.mesh.", "A").rcode() == dns.rcode.NXDOMAIN
    u = update(d)
    u.delete("ns1")     # a YAML record can be deleted too
    assert send(d, u).rcode() == dns.rcode.NOERROR
    assert d.query("ns1.mesh.", "A").rcode() == dns.rcode.NXDOMAIN


def test_updates_apply_to_the_running_config_not_the_file(dnsd, tmp_path, listener):
    """An update of static records or of a service's backends changes the
    running config in place: an edited file that is not reloaded yet does
    not matter. An update mixing both is applied over the YAML as loaded,
    which dnsd re-reads (it keeps no copy of the text): with the file
    edited it gets SERVFAIL, the reason logged, and nothing changes. After
    the reload every update applies over the new file."""
    d = dnsd(conf(tmp_path, listener))
    with open(d.conf, "w") as f:
        f.write(conf(tmp_path, listener, extra="      - {name: added, type: A, data: 10.9.0.1}"))
    u = update(d)
    u.add("web", 60, "A", "10.1.1.1")
    assert send(d, u).rcode() == dns.rcode.NOERROR
    assert addrs(d, "web.mesh.") == ["10.1.1.1"]
    u = update(d)
    u.add("user-service", 30, "A", "127.0.0.5")
    assert send(d, u).rcode() == dns.rcode.NOERROR
    assert addrs(d) == ["127.0.0.1", "127.0.0.5"]
    u = update(d)
    u.add("user-service", 30, "A", "127.0.0.6")
    u.add("web", 60, "A", "10.1.1.2")
    assert send(d, u).rcode() == dns.rcode.SERVFAIL
    assert d.wait_log("changed since it was loaded: reload it")
    assert addrs(d) == ["127.0.0.1", "127.0.0.5"]
    assert addrs(d, "web.mesh.") == ["10.1.1.1"]
    assert d.query("added.mesh.", "A").rcode() == dns.rcode.NXDOMAIN
    assert d.reload()
    assert send(d, u).rcode() == dns.rcode.NOERROR
    assert addrs(d) == ["127.0.0.1", "127.0.0.5", "127.0.0.6"]
    assert addrs(d, "web.mesh.") == ["10.1.1.1", "10.1.1.2"]
    assert addrs(d, "added.mesh.") == ["10.9.0.1"]


def test_prerequisites(dnsd, tmp_path, listener):
    d = dnsd(conf(tmp_path, listener))
    cases = [
        (lambda u: u.present("nothing-here"), dns.rcode.NXDOMAIN),
        (lambda u: u.absent("ns1"), dns.rcode.YXDOMAIN),
        (lambda u: u.present("ns1", "TXT"), dns.rcode.NXRRSET),
        (lambda u: u.absent("ns1", "A"), dns.rcode.YXRRSET),
        (lambda u: u.present("ns1", "A", "127.0.0.9"), dns.rcode.NXRRSET),
        (lambda u: u.present("elsewhere.org."), dns.rcode.NOTZONE),
    ]
    for pre, rcode in cases:
        u = update(d)
        pre(u)
        u.add("pre", 30, "TXT", "x")
        r = send(d, u)
        assert r.rcode() == rcode, (pre, dns.rcode.to_text(r.rcode()))
        assert d.query("pre.mesh.", "TXT").rcode() == dns.rcode.NXDOMAIN
    u = update(d)
    u.present("ns1")
    u.present("ns1", "A", "127.0.0.1")
    u.absent("pre")
    u.add("pre", 30, "TXT", "x")
    assert send(d, u).rcode() == dns.rcode.NOERROR
    assert d.query("pre.mesh.", "TXT").rcode() == dns.rcode.NOERROR


def test_keys_and_zones(dnsd, tmp_path, listener):
    d = dnsd(conf(tmp_path, listener))
    u = dns.update.UpdateMessage("mesh.")
    u.add("k", 30, "TXT", "x")
    assert send(d, u).rcode() == dns.rcode.REFUSED
    u = update(d, keyring=WRONG_RING)
    u.add("k", 30, "TXT", "x")
    with pytest.raises(dns.tsig.PeerBadSignature):
        send(d, u)
    u = update(d, keyring=OTHER_RING, keyname="other-key.")   # valid, not allowed here
    u.add("k", 30, "TXT", "x")
    assert send(d, u).rcode() == dns.rcode.REFUSED
    u = update(d, zone="static.")             # no update: in that zone
    u.add("k", 30, "TXT", "x")
    assert send(d, u).rcode() == dns.rcode.REFUSED
    u = update(d, zone="nowhere.")
    u.add("k", 30, "TXT", "x")
    assert send(d, u).rcode() == dns.rcode.NOTAUTH
    u = update(d)
    u.add("user-service", 30, "TXT", "x")     # a service name holds A/AAAA/SRV only
    assert send(d, u).rcode() == dns.rcode.REFUSED
    assert d.query("k.mesh.", "TXT").rcode() == dns.rcode.NXDOMAIN


def test_registered_backend_is_health_checked(dnsd, tmp_path, listener):
    d = dnsd(conf(tmp_path, listener))
    u = update(d)
    u.add("checked", 30, "A", "127.0.0.77")   # nothing listens there
    assert send(d, u).rcode() == dns.rcode.NOERROR
    d.wait_log(r"127\.0\.0\.77.*(DOWN|down)", timeout=10)
    # The watcher logs the change when it sees it; the control thread
    # serves it a moment later (with the zone's serial): poll, bounded.
    deadline = time.monotonic() + 2.0
    while addrs(d, "checked.mesh.") != ["127.0.0.1"]:
        assert time.monotonic() < deadline, "127.0.0.77 still answered 2 s after DOWN"
        time.sleep(0.01)


def test_srv_registration(dnsd, tmp_path, listener):
    d = dnsd(conf(tmp_path, listener))
    u = update(d)
    u.add("user-service", 30, "SRV", "0 50 9090 10-0-0-5.user-service.mesh.")
    assert send(d, u).rcode() == dns.rcode.NOERROR
    srv = answers(d.query("user-service.mesh.", "SRV"), "SRV")
    assert any(s.endswith("9090 10-0-0-5.user-service.mesh.") for s in srv), srv
    assert "10.0.0.5" in addrs(d)


def test_journal_survives_sigkill_and_reload(dnsd, tmp_path, listener):
    text = conf(tmp_path, listener)
    d = dnsd(text)
    u = update(d)
    u.add("user-service", 30, "A", "127.0.0.5")
    u.add("note", 30, "TXT", "kept")
    assert send(d, u).rcode() == dns.rcode.NOERROR
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    d.proc = None
    e = dnsd(text)
    assert "127.0.0.5" in addrs(e)
    assert e.query("note.mesh.", "TXT").rcode() == dns.rcode.NOERROR
    # reload with a changed YAML keeps the updates
    e.reload(conf(tmp_path, listener, extra="      - {name: other, type: A, data: 10.9.9.9}"))
    assert "127.0.0.5" in addrs(e)
    assert addrs(e, "other.mesh.") == ["10.9.9.9"]
    # a name that became a service conflicts with the TXT added there: the
    # reload is refused with the YAML position and the update, nothing
    # acknowledged is dropped, and the journal is left as it was
    journal = tmp_path / "mesh.journal"
    before = journal.read_bytes()
    assert not e.reload(conf(tmp_path, listener, more="      - name: note\n        ports: {http: 80}\n        backends: [127.0.0.8]"))
    m = e.wait_log(r"dnsd\.yaml:(\d+):(\d+): conflicts with the update 'note\.mesh\. TXT' kept in "
                   r"journal .*mesh\.journal")
    assert int(m.group(1)) > 1
    assert answers(e.query("note.mesh.", "TXT"), "TXT") == ['"kept"']
    assert "127.0.0.5" in addrs(e)
    assert journal.read_bytes() == before
    # the same file at start: refused with the same message, exit 1
    dnsd_bin = os.environ.get("DNSD") or os.path.join(os.path.dirname(__file__), "..", "..",
                                                      "build", "dnsd")
    p = subprocess.run([dnsd_bin, "--check", "-c", e.conf], capture_output=True, text=True)
    assert p.returncode == 1 and "conflicts with the update 'note.mesh. TXT'" in p.stderr, p.stderr
    # back to a compatible file: reload works and both updates still serve
    assert e.reload(text)
    assert answers(e.query("note.mesh.", "TXT"), "TXT") == ['"kept"']
    # dnsd --check validates the journal
    p = subprocess.run([os.environ.get("DNSD") or os.path.join(os.path.dirname(__file__), "..", "..",
                        "build", "dnsd"), "--check", "-c", e.conf], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_torn_journal_end_is_ignored(dnsd, tmp_path, listener):
    text = conf(tmp_path, listener)
    d = dnsd(text)
    u = update(d)
    u.add("a1", 30, "TXT", "one")
    assert send(d, u).rcode() == dns.rcode.NOERROR
    d.stop()
    with open(tmp_path / "mesh.journal", "ab") as f:
        f.write(b"\x00\x00\x00\x40\x01\x02")      # a record cut short
    e = dnsd(text)
    e.wait_log(r"torn last record")
    assert e.query("a1.mesh.", "TXT").rcode() == dns.rcode.NOERROR
    e.stop()
    with open(tmp_path / "mesh.journal", "r+b") as f:
        data = bytearray(f.read())
        data[-3] ^= 0xff                          # corrupt a complete record
        f.seek(0)
        f.write(data)
    dnsd_bin = os.environ.get("DNSD") or os.path.join(os.path.dirname(__file__), "..", "..",
                                                      "build", "dnsd")
    p = subprocess.run([dnsd_bin, "--check", "-c", e.conf], capture_output=True, text=True)
    assert p.returncode == 1 and "corrupt" in p.stderr


def test_update_rdata_validated_as_yaml(dnsd, tmp_path, listener):
    """An A of 5 bytes, an AAAA of 3, a TXT whose length byte overruns and
    an empty TXT are FORMERR, as the same data in the YAML is an error."""
    import dns.rdata
    import dns.rdataclass
    d = dnsd(conf(tmp_path, listener))
    bad = [("bad-a", 1, b"\x01\x02\x03\x04\x05"), ("bad-aaaa", 28, b"\x20\x01\x0d"),
           ("bad-txt", 16, b"\x09abc"), ("empty-txt", 16, b"")]
    for name, rdtype, rdata in bad:
        u = update(d)
        u.add(name, 30, dns.rdata.GenericRdata(dns.rdataclass.IN, rdtype, rdata))
        r = send(d, u)
        assert r.rcode() == dns.rcode.FORMERR, (name, dns.rcode.to_text(r.rcode()))
        assert d.query(name + ".mesh.", "ANY").rcode() == dns.rcode.NXDOMAIN, name
    # a good one still goes through
    u = update(d)
    u.add("good", 30, "TXT", "fine")
    assert send(d, u).rcode() == dns.rcode.NOERROR


def test_update_all_or_nothing_after_crash(dnsd, tmp_path, listener):
    """An UPDATE 'delete the TXT set, add two' cut off in the journal after
    its first record (a kill between writes) replays as nothing at all."""
    text = conf(tmp_path, listener)
    d = dnsd(text)
    u = update(d)
    u.add("t", 30, "TXT", "old")
    assert send(d, u).rcode() == dns.rcode.NOERROR
    journal = tmp_path / "mesh.journal"
    size_one = journal.stat().st_size
    u = update(d)
    u.delete("t", "TXT")
    u.add("t", 30, "TXT", "new1")
    u.add("t", 30, "TXT", "new2")
    assert send(d, u).rcode() == dns.rcode.NOERROR
    assert sorted(answers(d.query("t.mesh.", "TXT"), "TXT")) == ['"new1"', '"new2"']
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    d.proc = None
    data = journal.read_bytes()
    # Keep the group's BEGIN record and its first operation (the delete).
    import struct
    off = size_one
    for _ in range(2):
        (plen,) = struct.unpack("!I", data[off:off + 4])
        off += 8 + plen
    journal.write_bytes(data[:off])
    e = dnsd(text)
    e.wait_log(r"torn last update")
    assert answers(e.query("t.mesh.", "TXT"), "TXT") == ['"old"']
    assert journal.stat().st_size == size_one


def test_zero_filled_journal_tail(dnsd, tmp_path, listener):
    """Power loss on an extended journal leaves zeros at its end: cut with a
    warning, the good records replay, dnsd starts."""
    text = conf(tmp_path, listener)
    d = dnsd(text)
    u = update(d)
    u.add("z1", 30, "TXT", "one")
    assert send(d, u).rcode() == dns.rcode.NOERROR
    d.stop()
    journal = tmp_path / "mesh.journal"
    good = journal.stat().st_size
    with open(journal, "ab") as f:
        f.write(b"\0" * 8192)
    e = dnsd(text)
    e.wait_log(r"zero-filled tail")
    assert answers(e.query("z1.mesh.", "TXT"), "TXT") == ['"one"']
    assert journal.stat().st_size == good

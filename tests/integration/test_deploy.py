"""Deployment: DNS port conventions, the `make install` layout and its
systemd unit (checked with systemd-analyze verify)."""
import os
import re
import shutil
import subprocess

import pytest

from dnsd_harness import DNSD, MESHDIG, ROOT, Dnsd

BUILD = os.path.relpath(os.path.dirname(DNSD), ROOT)
SYSCONF = "/usr/local/etc"          # the Makefile's default (PREFIX=/usr/local)
CONFIG = SYSCONF + "/meshdns/dnsd.yaml"

ZONE = """
zones:
  - name: mesh
    services:
      - name: user-service
        ports: {http: 80}
        backends: [{address: 127.0.0.11}]
"""


# ---------------------------------------------------------------- ports

def test_default_ports_are_53(tmp_path):
    # The example: dnsd on port 53 without naming a port, then
    # meshdig without -p, as one would with dig.
    d = Dnsd(tmp_path, "listen: [127.0.150.53]\n" + ZONE, listen=())
    try:
        d.start()
    except RuntimeError as e:
        if "Permission denied" in str(e) or "in use" in str(e):
            pytest.skip("cannot bind 127.0.150.53:53 here: %s" % str(e).splitlines()[-1])
        raise
    try:
        assert d.addrs == [("127.0.150.53", 53)]
        p = subprocess.run([MESHDIG, "@127.0.150.53", "+short", "user-service.mesh"],
                           capture_output=True, text=True, timeout=20)
        assert (p.returncode, p.stdout) == (0, "127.0.0.11\n"), p.stderr
    finally:
        assert d.stop() == 0


def test_make_run_uses_an_unprivileged_port():
    p = subprocess.run(["make", "-n", "run", "BUILD=" + BUILD], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "-l 127.0.0.1:1053" in p.stdout and "5353" not in p.stdout, p.stdout


MDNS_AS_DEFAULT = re.compile(r"(\d\.\d+|localhost)[:#]5353|-p\s*5353|PORT\s*\??=\s*5353|"
                             r"= 5353|port 5353|listen: \[[^]]*5353")


def test_no_mdns_port_left():
    # 5353 is mDNS (avahi, systemd-resolved): no default, example or doc
    # serves or asks it (the ambiguous "::1:5353" of the docs is the only use).
    hits = []
    for top in ("dnsd", "tools", "zones", "man", "README.md", "Makefile", "deploy"):
        path = os.path.join(ROOT, top)
        files = [path] if os.path.isfile(path) else [
            os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs]
        for f in files:
            with open(f, errors="replace") as fh:
                for n, line in enumerate(fh, 1):
                    if MDNS_AS_DEFAULT.search(line):
                        hits.append("%s:%d: %s" % (os.path.relpath(f, ROOT), n, line.strip()))
    assert not hits, "\n".join(hits)


# ---------------------------------------------------------------- install

@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    dest = str(tmp_path_factory.mktemp("destdir"))
    p = subprocess.run(["make", "install", "DESTDIR=" + dest, "BUILD=" + BUILD], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    return dest


def unit_text(dest):
    with open(dest + "/usr/local/lib/systemd/system/dnsd.service") as f:
        return f.read()


def test_install_layout(installed):
    for f in ("/usr/local/sbin/dnsd", "/usr/local/bin/meshdig", CONFIG, CONFIG + ".example",
              "/usr/local/share/man/man8/dnsd.8", "/usr/local/share/man/man5/dnsd.yaml.5",
              "/usr/local/share/man/man1/meshdig.1", "/usr/local/lib/systemd/system/dnsd.service"):
        assert os.path.exists(installed + f), f
    # The installed config is valid as installed.
    p = subprocess.run([installed + "/usr/local/sbin/dnsd", "--check", "-c", installed + CONFIG],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and ": OK (" in p.stdout, p.stdout + p.stderr


def test_unit_and_binary_agree_on_the_config(installed):
    unit = unit_text(installed)
    starts = re.findall(r"^Exec(?:Start|StartPre)=(.*)$", unit, re.M)
    assert len(starts) == 2
    for cmd in starts:
        assert cmd.split()[0] == "/usr/local/sbin/dnsd"
        assert "-c " + CONFIG in cmd, cmd
    # dnsd --check without -c checks the file systemd runs.
    p = subprocess.run([installed + "/usr/local/sbin/dnsd", "--help"], capture_output=True,
                       text=True, timeout=30)
    assert "(default %s)" % CONFIG in p.stdout, p.stdout


def test_unit_can_write_journals(installed):
    unit = unit_text(installed)
    assert "ProtectSystem=strict" in unit
    assert re.search(r"^StateDirectory=meshdns$", unit, re.M), unit
    # Not root, and no --user: a user that owns the StateDirectory.
    assert re.search(r"^DynamicUser=yes$", unit, re.M)
    assert "--user" not in unit
    assert re.search(r"^AmbientCapabilities=CAP_NET_BIND_SERVICE$", unit, re.M)


def test_reinstall_keeps_the_config(installed):
    with open(installed + CONFIG, "a") as f:
        f.write("# edited by the operator\n")
    p = subprocess.run(["make", "install", "DESTDIR=" + installed, "BUILD=" + BUILD], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    with open(installed + CONFIG) as f:
        assert f.read().endswith("# edited by the operator\n")


def test_systemd_analyze_verify(installed, tmp_path):
    sa = shutil.which("systemd-analyze")
    if not sa:
        pytest.skip("systemd-analyze not installed (make test-deps installs package systemd)")
    # The unit names its final paths (/usr/local/...); point them into
    # DESTDIR so that verify finds the executables it checks.
    unit = unit_text(installed).replace("/usr/local/", installed + "/usr/local/")
    path = tmp_path / "dnsd.service"
    path.write_text(unit)
    p = subprocess.run([sa, "verify", "--man=no", str(path)], capture_output=True, text=True,
                       timeout=60)
    out = p.stdout + p.stderr
    if p.returncode != 0 and re.search(r"Failed to (initialize|connect|setup)|not booted|"
                                       r"Operation not permitted", out):
        pytest.skip("systemd-analyze verify cannot run here: " + out.strip().splitlines()[0])
    assert p.returncode == 0 and out.strip() == "", out

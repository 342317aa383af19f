"""--watch-config: a changed config file is reloaded without SIGHUP, as
kubelet updates a ConfigMap volume: a new timestamped directory, a
"..data_tmp" symlink to it renamed over "..data", the visible file a
symlink through "..data". Invalid content keeps the old config serving."""
import os
import re
import subprocess
import time

import pytest

from dnsd_harness import DNSD, Dnsd, answers

CONF = """
zones:
  - name: mesh
    services:
      - name: web
        ports: {http: 80}
        backends: [%s]
"""


class ConfigMapVolume:
    """The files kubelet's atomic writer leaves in a ConfigMap volume."""

    def __init__(self, root):
        self.root = str(root)
        self.n = 0
        self.current = None

    def write(self, text):
        self.n += 1
        ts = "..2026_12_06_05_00_%02d.%d" % (self.n, 1000 + self.n)
        os.mkdir(os.path.join(self.root, ts))
        with open(os.path.join(self.root, ts, "dnsd.yaml"), "w") as f:
            f.write(text)
        tmp = os.path.join(self.root, "..data_tmp")
        os.symlink(ts, tmp)
        os.rename(tmp, os.path.join(self.root, "..data"))
        visible = os.path.join(self.root, "dnsd.yaml")
        if not os.path.islink(visible):
            os.symlink("..data/dnsd.yaml", visible)
        if self.current:                          # kubelet removes the old one
            old = os.path.join(self.root, self.current)
            os.unlink(os.path.join(old, "dnsd.yaml"))
            os.rmdir(old)
        self.current = ts


def reloads(d):
    log = d.log()
    return len(re.findall(r"reloaded ", log)), len(re.findall(r"reload failed", log))


def wait(pred, timeout=5.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "no %s within %.1fs" % (what, timeout)
        time.sleep(0.02)


@pytest.fixture
def watched(tmp_path):
    vol = ConfigMapVolume(tmp_path / "cm")
    os.mkdir(vol.root)
    vol.write(CONF % "10.0.0.1")
    d = Dnsd(tmp_path, "", args=["--watch-config"])
    d.conf = os.path.join(vol.root, "dnsd.yaml")      # the ConfigMap's, not Dnsd's file
    d.start()
    yield d, vol
    assert d.stop() == 0


def test_configmap_update_reloads(watched):
    d, vol = watched
    assert answers(d.query("web.mesh.", "A"), "A") == ["10.0.0.1"]
    vol.write(CONF % "10.0.0.2")
    wait(lambda: reloads(d)[0] == 1, what="reload")
    assert "changed, reloading (--watch-config)" in d.log()
    assert answers(d.query("web.mesh.", "A"), "A") == ["10.0.0.2"]


def test_invalid_update_keeps_old_config(watched):
    d, vol = watched
    vol.write("zones:\n  - name: mesh\n    bogus: 1\n")
    wait(lambda: reloads(d)[1] == 1, what="failed reload")
    assert re.search(r"dnsd\.yaml:3:5: zone: unknown key 'bogus'", d.log()), d.log()
    assert answers(d.query("web.mesh.", "A"), "A") == ["10.0.0.1"]
    vol.write(CONF % "10.0.0.3")                      # fixed: picked up
    wait(lambda: reloads(d)[0] == 1, what="reload")
    assert answers(d.query("web.mesh.", "A"), "A") == ["10.0.0.3"]


def test_burst_is_one_reload_and_same_content_none(watched):
    d, vol = watched
    for i in range(5):                                # within the 250 ms quiet time
        vol.write(CONF % ("10.0.1.%d" % i))
    wait(lambda: reloads(d)[0] == 1, what="reload")
    time.sleep(0.6)
    assert reloads(d) == (1, 0), d.log()
    assert answers(d.query("web.mesh.", "A"), "A") == ["10.0.1.4"]
    vol.write(CONF % "10.0.1.4")                      # same content: nothing to do
    time.sleep(0.6)
    assert reloads(d) == (1, 0), d.log()


def test_editor_rename_in_place(tmp_path):
    # Not only kubelet: an editor that writes a new file and renames it.
    conf = tmp_path / "dnsd.yaml"
    d = Dnsd(tmp_path, CONF % "10.0.0.1", args=["--watch-config"]).start()
    try:
        tmp = tmp_path / "dnsd.yaml.swp"
        tmp.write_text(CONF % "10.0.0.9")
        os.rename(str(tmp), str(conf))
        wait(lambda: reloads(d)[0] == 1, what="reload")
        assert answers(d.query("web.mesh.", "A"), "A") == ["10.0.0.9"]
    finally:
        assert d.stop() == 0


def test_without_the_option_no_reload(tmp_path):
    d = Dnsd(tmp_path, CONF % "10.0.0.1").start()
    try:
        (tmp_path / "dnsd.yaml").write_text(CONF % "10.0.0.2")
        time.sleep(0.6)
        assert reloads(d) == (0, 0)
        assert answers(d.query("web.mesh.", "A"), "A") == ["10.0.0.1"]
    finally:
        assert d.stop() == 0


def test_help_mentions_it():
    p = subprocess.run([DNSD, "--help"], capture_output=True, text=True, timeout=10)
    assert "--watch-config" in p.stdout

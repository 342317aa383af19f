"""Zero-downtime reload: dnsperf sends a steady stream of queries while
dnsd is reloaded (SIGHUP) many times, alternating between two configs and
an invalid one. Every query must be answered (no loss, no SERVFAIL), and
after the run the last good config is what is served."""
import re
import shutil
import subprocess
import threading
import time

import pytest

from dnsd_harness import answers

BASE = """
zones:
  - name: mesh
    ttl: 5
    records:
      - {name: static, type: A, data: 192.0.2.%d}
    services:
      - name: web
        ports: {http: 80}
        backends: [127.0.0.81, 127.0.0.82, 127.0.0.83]
      - name: api
        ports: {grpc: 9000}
        backends: [127.0.0.91]
"""
BROKEN = "zones:\n  - name: mesh\n    services: [{name: web}]\n"


def dnsperf_stats(text):
    def num(rx):
        m = re.search(rx, text)
        return int(m.group(1)) if m else None
    return {
        "sent": num(r"Queries sent:\s+(\d+)"),
        "completed": num(r"Queries completed:\s+(\d+)"),
        "lost": num(r"Queries lost:\s+(\d+)"),
        "noerror": num(r"NOERROR (\d+)"),
    }


@pytest.mark.skipif(not shutil.which("dnsperf"), reason="dnsperf not installed (make deps)")
def test_reloads_under_load_lose_nothing(dnsd, tmp_path):
    d = dnsd(BASE % 1)
    qfile = tmp_path / "queries.txt"
    qfile.write_text("web.mesh A\napi.mesh A\n_http._tcp.web.mesh SRV\nstatic.mesh A\nmesh SOA\n")
    proc = subprocess.Popen(
        ["dnsperf", "-s", d.host, "-p", str(d.port), "-d", str(qfile), "-l", "6",
         "-Q", "3000", "-c", "4", "-t", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    reloads = failed = 0
    time.sleep(0.5)
    deadline = time.monotonic() + 4.5
    i = 0
    while time.monotonic() < deadline:
        i += 1
        if i % 5 == 0:
            assert not d.reload(BROKEN)
            failed += 1
        else:
            assert d.reload(BASE % (i % 200 + 1))
            reloads += 1
        time.sleep(0.1)
    out, _ = proc.communicate(timeout=30)
    st = dnsperf_stats(out)
    print("reloads %d (+%d refused) during %s" % (reloads, failed, st))
    assert reloads >= 20
    assert st["sent"] and st["sent"] > 10000, out
    assert st["lost"] == 0, out
    assert st["completed"] == st["sent"], out
    assert st["noerror"] == st["completed"], out
    # The last good config is live.
    last = "192.0.2.%d" % (max(k for k in range(1, i + 1) if k % 5) % 200 + 1)
    assert answers(d.query("static.mesh.", "A")) == [last]

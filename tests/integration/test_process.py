"""Process behaviour an init system relies on: the pid file, systemd's
notification protocol (READY, RELOADING, STOPPING on $NOTIFY_SOCKET), the
privilege drop of --user, and bad command lines."""
import os
import pwd
import signal
import socket
import subprocess

import pytest

from dnsd_harness import DNSD, ROOT

ZONE = """
zones:
  - name: mesh
    services:
      - name: web
        ports: {http: 80}
        backends: [127.0.0.71]
"""


def test_pid_file_written_and_removed(dnsd, tmp_path):
    pid_file = tmp_path / "dnsd.pid"
    d = dnsd(ZONE, args=["--pid-file", str(pid_file)])
    assert pid_file.read_text().strip() == str(d.proc.pid)
    assert d.stop() == 0
    assert not pid_file.exists()


def test_sd_notify_ready_reload_stopping(dnsd, tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    try:
        d = dnsd(ZONE, env={"NOTIFY_SOCKET": path})
        msg = sock.recv(4096).decode()
        assert "READY=1" in msg and "MAINPID=%d" % d.proc.pid in msg
        assert d.query("web.mesh.", "A").rcode() == 0
        assert d.reload()
        assert sock.recv(4096).decode() == "RELOADING=1"
        assert sock.recv(4096).decode().startswith("READY=1\nSTATUS=reloaded")
        assert not d.reload("zones: [oops\n")
        assert sock.recv(4096).decode() == "RELOADING=1"
        assert "reload failed" in sock.recv(4096).decode()
        assert d.query("web.mesh.", "A").rcode() == 0
        assert d.stop() == 0
        assert sock.recv(4096).decode() == "STOPPING=1"
    finally:
        sock.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="--user needs root to switch users")
def test_user_drops_privileges(dnsd, tmp_path):
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' on this machine")
    os.chmod(str(tmp_path), 0o755)
    d = dnsd(ZONE, args=["--user", "nobody"])
    d.wait_log(r"running as user nobody")
    with open("/proc/%d/status" % d.proc.pid) as f:
        status = f.read()
    uids = [line.split()[1:] for line in status.splitlines() if line.startswith("Uid:")][0]
    assert uids == [str(nobody.pw_uid)] * 4
    assert d.query("web.mesh.", "A").rcode() == 0
    # Every thread switched, not only the main one.
    for tid in os.listdir("/proc/%d/task" % d.proc.pid):
        with open("/proc/%d/task/%s/status" % (d.proc.pid, tid)) as f:
            assert "Uid:\t%d\t" % nobody.pw_uid in f.read()


@pytest.mark.parametrize("argv,needle", [
    (["--user", "no-such-user-xyz"], "no such user"),
    (["--http", "nonsense"], "invalid --http"),
    (["--workers"], "requires an argument"),
    (["--bogus"], "unrecognized option"),
    (["-l", "1.2.3.4:99999"], "invalid listen address"),
    (["--workers", "+3"], "--workers takes 0..64"),
    (["--query-log= 5"], "--query-log=N needs"),
    (["--pid-file", "/nonexistent-dir-xyz/dnsd.pid"], "/nonexistent-dir-xyz/dnsd.pid"),
])
def test_bad_command_lines(tmp_path, argv, needle):
    conf = tmp_path / "d.yaml"
    conf.write_text(ZONE)
    p = subprocess.run([DNSD, "-c", str(conf), "-l", "127.0.0.1:0"] + argv,
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert needle in p.stderr


def test_http_port_taken_is_a_clean_failure(tmp_path):
    """The status port is taken: dnsd says so and exits 1 after stopping
    what it had started (the server, the watcher, transfers), by the one
    teardown every exit takes (the sanitizer builds check it leaks and
    crashes nothing)."""
    import socket
    conf = tmp_path / "d.yaml"
    conf.write_text(ZONE)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        p = subprocess.run([DNSD, "-c", str(conf), "-l", "127.0.0.1:0", "--http",
                            "127.0.0.1:%d" % port], capture_output=True, text=True, timeout=20)
    finally:
        s.close()
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "cannot listen for HTTP on port %d" % port in p.stderr, p.stderr


def test_query_log_is_rate_limited(tmp_path):
    """--query-log=2 with one UDP worker: at most 2 lines per second; the
    rest are counted and the count is reported when the next second starts,
    so logged + reported adds up to every query."""
    import re
    import time
    from dnsd_harness import Dnsd
    d = Dnsd(tmp_path, ZONE, args=["--query-log=2", "-w", "1"]).start()
    try:
        for _ in range(10):
            assert d.query("web.mesh.", "A").rcode() == 0
        d.query("nope.mesh.", "AAAA", tcp=True)
        time.sleep(1.1)
        d.query("web.mesh.", "AAAA")
        d.wait_log(r"web\.mesh\. AAAA -> NOERROR", timeout=4)
        log = d.log()
        udp = [l for l in log.splitlines() if ": query udp " in l]
        dropped = sum(int(n) for n in re.findall(r"query log: (\d+) lines over", log))
        assert len(udp) + dropped == 11, (udp, dropped)
        assert dropped >= 5
        assert "web.mesh. A -> NOERROR" in udp[0]
        assert any(": query tcp 127.0.0.1 nope.mesh. AAAA -> NXDOMAIN" in l
                   for l in log.splitlines())
    finally:
        assert d.stop() == 0


def test_reload_control_action(dnsd, tmp_path):
    """dnsd --reload --pid-file FILE makes the running dnsd reload."""
    pid_file = tmp_path / "dnsd.pid"
    d = dnsd(ZONE, args=["--pid-file", str(pid_file)])
    with open(d.conf, "w") as f:
        f.write(ZONE.replace("127.0.0.71", "127.0.0.72"))
    start = len(d.log())
    p = subprocess.run([DNSD, "--reload", "--pid-file", str(pid_file)], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 0, p.stderr
    d.wait_log(r"reloaded ", start=start)
    assert [r.to_text() for r in d.query("web.mesh.", "A").answer[0]] == ["127.0.0.72"]
    pid_file.write_text("%d\n" % os.getpid())
    p = subprocess.run([DNSD, "--reload", "--pid-file", str(pid_file)], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 1 and "not running dnsd" in p.stderr
    pid_file.write_text(str(d.proc.pid) + "\n")

"""Starts a real dnsd process for integration tests and talks to it.

    d = Dnsd(tmp_path, YAML).start()          # -l 127.0.0.1:0, port parsed from the log
    r = d.query("user-service.mesh.", "A")    # dnspython over UDP (tcp=True for TCP)
    d.reload(NEW_YAML)                        # rewrite the file, SIGHUP, wait for the log line
    d.stop()                                  # SIGTERM; returns the exit status

The binary is $DNSD or build/dnsd under the repository root. Every process
is ended by its own pid; the log (stderr) is kept in tmp_path/dnsd.log.
"""
import os
import re
import signal
import socket
import subprocess
import time

import dns.message
import dns.query
import dns.rdataclass
import dns.rdatatype

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DNSD = os.environ.get("DNSD") or os.path.join(ROOT, "build", "dnsd")
MESHDIG = os.environ.get("MESHDIG") or os.path.join(ROOT, "build", "meshdig")

SERVING = re.compile(r"serving .* on (\S+)((?: \S+)*) \(")


def free_port(host="127.0.0.1", kind=socket.SOCK_STREAM):
    """A port that was free a moment ago (for backends the tests start)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class Dnsd:
    def __init__(self, tmp_path, yaml_text, listen=("127.0.0.1:0",), args=(), seed=1, env=None):
        self.dir = tmp_path
        self.conf = os.path.join(str(tmp_path), "dnsd.yaml")
        self.logpath = os.path.join(str(tmp_path), "dnsd.log")
        with open(self.conf, "w") as f:
            f.write(yaml_text)
        self.listen = list(listen)
        self.args = list(args)
        self.seed = seed
        self.env = env           # extra environment variables
        self.proc = None
        self.addrs = []          # [(host, port)] in -l order
        self._log = None

    # ------------------------------------------------------------ process
    def start(self, timeout=10.0):
        cmd = [DNSD, "-c", self.conf, "-w", "2"]
        for listen in self.listen:
            cmd += ["-l", listen]
        if self.seed is not None:
            cmd += ["--seed", str(self.seed)]
        cmd += self.args
        self._log = open(self.logpath, "ab")
        env = dict(os.environ, **self.env) if self.env else None
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=self._log, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = SERVING.search(self.log())
            if m:
                self.addrs = [split_hostport(a) for a in (m.group(1) + m.group(2)).split()]
                return self
            if self.proc.poll() is not None:
                raise RuntimeError("dnsd exited with %d:\n%s" % (self.proc.returncode, self.log()))
            time.sleep(0.02)
        self.kill()
        raise RuntimeError("dnsd did not report its listen addresses:\n" + self.log())

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, pattern, timeout=5.0, start=0):
        """Waits until the log (from offset start) matches pattern; returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log(), start)
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError("no log line /%s/ within %.1fs:\n%s" % (pattern, timeout, self.log()))
            time.sleep(0.02)

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self, yaml_text=None, timeout=5.0):
        """Rewrites the config (if given), sends SIGHUP and waits for the
        outcome; returns True if reloaded, False if the reload was refused."""
        if yaml_text is not None:
            with open(self.conf, "w") as f:
                f.write(yaml_text)
        start = len(self.log())
        self.send_signal(signal.SIGHUP)
        m = self.wait_log(r"(reloaded |reload failed)", timeout, start)
        return m.group(1) == "reloaded "

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("dnsd did not stop within %.1fs on %s" % (timeout, sig))
        if self._log:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self._log:
            self._log.close()
            self._log = None

    # ------------------------------------------------------------ queries
    @property
    def host(self):
        return self.addrs[0][0]

    @property
    def port(self):
        return self.addrs[0][1]

    def query(self, name, rdtype="A", rdclass="IN", tcp=False, timeout=2.0, where=0, **kw):
        """Sends a dnspython query; kw go to dns.message.make_query
        (use_edns, payload, want_dnssec, options, ...)."""
        q = dns.message.make_query(name, rdtype, rdclass, **kw)
        return self.send(q, tcp=tcp, timeout=timeout, where=where)

    def send(self, msg, tcp=False, timeout=2.0, where=0):
        host, port = self.addrs[where]
        if tcp:
            return dns.query.tcp(msg, host, port=port, timeout=timeout)
        return dns.query.udp(msg, host, port=port, timeout=timeout, ignore_trailing=False)

    def raw_udp(self, data, timeout=1.0, where=0):
        """Sends raw bytes; returns the raw answer or None on timeout."""
        host, port = self.addrs[where]
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(fam, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(data, (host, port))
            try:
                return s.recv(65535)
            except socket.timeout:
                return None

    def tool(self, argv, timeout=10.0):
        """Runs dig/kdig/drill/meshdig-style argv with {host} and {port}
        substituted; returns CompletedProcess (text)."""
        argv = [a.format(host=self.host, port=self.port) for a in argv]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def split_hostport(text):
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
    else:
        host, _, port = text.rpartition(":")
    return host, int(port)


def answers(msg, rdtype=None):
    """The answer section as sorted text of rdatas (of rdtype if given)."""
    out = []
    for rrset in msg.answer:
        if rdtype is None or rrset.rdtype == dns.rdatatype.from_text(rdtype):
            out += [r.to_text() for r in rrset]
    return sorted(out)

"""Fixtures shared by the integration tests: `dnsd` starts real dnsd
processes (see dnsd_harness.py) and stops each one after its test, failing
the test if dnsd did not exit cleanly on SIGTERM."""
import pytest

from dnsd_harness import Dnsd


@pytest.fixture
def dnsd(tmp_path):
    started = []

    def start(yaml_text, **kw):
        where = tmp_path / ("d%d" % len(started)) if started else tmp_path
        where.mkdir(exist_ok=True)
        d = Dnsd(where, yaml_text, **kw)
        started.append(d)
        return d.start()

    yield start
    bad = []
    for d in started:
        if d.proc is not None and d.proc.poll() is None:
            rc = d.stop()
            if rc != 0:
                bad.append((rc, d.log()))
        elif d.proc is not None and d.proc.returncode not in (0, None) and not getattr(d, "expect_exit", False):
            bad.append((d.proc.returncode, d.log()))
    assert not bad, "dnsd exited badly: %r" % bad

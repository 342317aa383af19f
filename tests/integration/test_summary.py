"""tests/run.sh's summary counts checks, not programs: TAP checks, corpus
inputs and pytest cases, with thousands separated; each replay line names
its fuzz target. Run on fake programs so that it does not recurse."""
import os
import stat
import subprocess

from dnsd_harness import ROOT


def script(path, text):
    path.write_text("#!/bin/sh\n" + text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def run_sh(tmp_path, unit_ok=1200, unit_bad=0, replay_rc=0):
    build = tmp_path / "build"
    (build / "tests").mkdir(parents=True)
    (build / "fuzz").mkdir()
    oks = "".join("ok %d - c\n" % i for i in range(1, unit_ok + 1))
    bads = "".join("not ok %d - c\n" % i for i in range(1, unit_bad + 1))
    script(build / "tests" / "test_a", "printf '%s%s1..%d\\n'\nexit %d\n"
           % (oks, bads, unit_ok + unit_bad, 1 if unit_bad else 0))
    script(build / "tests" / "test_b", "echo 'ok 1 - one'\necho 1..1\n")
    script(build / "fuzz" / "replay_packet", "echo 'replay: 1000 inputs'\nexit %d\n" % replay_rc)
    cases = tmp_path / "test_cases.py"
    cases.write_text("import pytest\n"
                     "def test_a(): pass\n"
                     "def test_b(): pass\n"
                     "def test_c(): pytest.skip('no')\n")
    env = dict(os.environ, BUILD=str(build), PYTEST_PATHS=str(cases))
    p = subprocess.run(["sh", os.path.join(ROOT, "tests", "run.sh")], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    return p


def test_counts_every_check(tmp_path):
    p = run_sh(tmp_path)
    lines = p.stdout.splitlines()
    assert p.returncode == 0, p.stdout + p.stderr
    assert "ok   test_a (1200 checks)" in lines
    assert "ok   fuzz_packet: 1000 inputs from fuzz/corpus/packet" in lines
    # 1200 + 1 TAP checks, 1000 corpus inputs, 2 pytest cases (1 skipped).
    assert lines[-1] == "tests: 2,203 passed, 0 failed, 1 skipped", lines[-1]


def test_counts_failed_checks(tmp_path):
    p = run_sh(tmp_path, unit_ok=5, unit_bad=2, replay_rc=1)
    lines = p.stdout.splitlines()
    assert p.returncode != 0
    assert "FAIL test_a (5 passed, 2 failed, exit 1)" in lines
    assert "FAIL fuzz_packet: replay of fuzz/corpus/packet (exit 1)" in lines
    assert "failed: test_a replay_packet" in lines
    assert lines[-1] == "tests: 8 passed, 3 failed, 1 skipped", lines[-1]

"""dnsd serves the shipped example zones/mesh.yaml to dnspython, dig, kdig,
drill and meshdig, over UDP and TCP."""
import os
import shutil

import pytest

from dnsd_harness import MESHDIG, ROOT, answers

with open(os.path.join(ROOT, "zones", "mesh.yaml")) as f:
    EXAMPLE = f.read()
USER = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]


@pytest.mark.parametrize("tcp", [False, True])
def test_example_answers_a(dnsd, tcp):
    d = dnsd(EXAMPLE)
    r = d.query("user-service.mesh.", "A", tcp=tcp)
    assert r.rcode() == 0
    assert r.flags & 0x0400, "AA set"
    assert answers(r, "A") == USER


@pytest.mark.parametrize("argv", [
    ["dig", "@{host}", "-p", "{port}", "+short", "user-service.mesh", "A"],
    ["dig", "@{host}", "-p", "{port}", "+short", "+tcp", "user-service.mesh", "A"],
    ["kdig", "@{host}", "-p", "{port}", "+short", "user-service.mesh", "A"],
    ["kdig", "@{host}", "-p", "{port}", "+short", "+tcp", "user-service.mesh", "A"],
    [MESHDIG, "@{host}", "-p", "{port}", "+short", "user-service.mesh", "A"],
    [MESHDIG, "@{host}", "-p", "{port}", "+short", "+tcp", "user-service.mesh", "A"],
])
def test_example_clients(dnsd, argv):
    if not shutil.which(argv[0]) and not os.path.exists(argv[0]):
        pytest.skip("%s not installed (make deps)" % argv[0])
    d = dnsd(EXAMPLE)
    p = d.tool(argv)
    assert p.returncode == 0, p.stderr
    assert sorted(p.stdout.split()) == USER


def test_example_drill(dnsd):
    if not shutil.which("drill"):
        pytest.skip("drill not installed (make deps)")
    d = dnsd(EXAMPLE)
    p = d.tool(["drill", "-p", "{port}", "@{host}", "order-service.mesh", "A"])
    assert p.returncode == 0, p.stderr
    assert "rcode: NOERROR" in p.stdout
    assert " aa " in p.stdout.split("flags:")[1].split(";")[0] + " "
    for ip in ["127.0.0.21", "127.0.0.22", "127.0.0.23"]:
        assert ip in p.stdout

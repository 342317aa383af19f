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


def test_meshdig_status_table(dnsd):
    """meshdig --status shows every backend with its state, weights and
    last check. The example's backends listen nowhere, so after fall (3)
    failed 1 s checks they are down, with the connect error as last result."""
    d = dnsd(EXAMPLE)
    d.wait_log(r"127\.0\.0\.13:5000 of user-service\.mesh is DOWN", timeout=8)
    p = d.tool([MESHDIG, "@{host}", "-p", "{port}", "--status", "user-service.mesh"])
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("user-service.mesh. (from ")
    assert "policy=weighted" in lines[0] and "ttl=10" in lines[0]
    assert lines[1].split()[:5] == ["BACKEND", "ADDRESS", "STATE", "WEIGHT", "EFFECTIVE"]
    rows = {r.split()[1]: r.split() for r in lines[2:]}
    assert sorted(rows) == ["127.0.0.11:5000", "127.0.0.12:5000", "127.0.0.13:5000"]
    assert rows["127.0.0.13:5000"][2] == "down"
    assert rows["127.0.0.13:5000"][3] == "50"
    assert "refused" in lines[-1].lower()


def test_meshdig_status_unknown_service(dnsd):
    d = dnsd(EXAMPLE)
    p = d.tool([MESHDIG, "@{host}", "-p", "{port}", "--status", "nope.mesh"])
    assert p.returncode == 2
    assert "REFUSED" in p.stderr or "NXDOMAIN" in p.stderr


def test_meshdig_why_with_subnet(dnsd):
    """--why with +subnet: dnsd explains the choice for that client subnet."""
    d = dnsd(EXAMPLE)
    p = d.tool([MESHDIG, "@{host}", "-p", "{port}", "--why", "order-service.mesh",
                "+subnet=10.1.2.3/24"])
    assert p.returncode == 0, p.stderr
    assert "policy=round-robin" in p.stdout
    assert "client=10.1.2.0/24 (ecs)" in p.stdout
    assert "order=" in p.stdout

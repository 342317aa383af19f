"""deploy/kubernetes/: every manifest parses, and what the manifests say
about dnsd matches dnsd itself: the ConfigMap's file passes dnsd --check,
the ports, probe paths, arguments and mount path agree with it and with
each other. No cluster runs here: this checks the manifests, not a rollout."""
import glob
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from dnsd_harness import DNSD, ROOT

yaml = pytest.importorskip("yaml", reason="PyYAML missing (make test-deps: python3-yaml)")

DIR = os.path.join(ROOT, "deploy", "kubernetes")


def load_all():
    docs = {}
    for path in sorted(glob.glob(os.path.join(DIR, "*.yaml"))):
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc is None:
                    continue
                assert {"apiVersion", "kind", "metadata"} <= set(doc), path
                assert doc["metadata"].get("name"), path
                docs.setdefault(doc["kind"], []).append(doc)
    return docs


@pytest.fixture(scope="module")
def k8s():
    docs = load_all()
    assert sorted(docs) == ["ConfigMap", "Deployment", "Pod", "Service"], sorted(docs)
    return {k: v[0] for k, v in docs.items()}


@pytest.fixture(scope="module")
def dnsd_conf(k8s, tmp_path_factory):
    cm = k8s["ConfigMap"]
    text = cm["data"]["dnsd.yaml"]
    path = tmp_path_factory.mktemp("cm") / "dnsd.yaml"
    path.write_text(text)
    return str(path), yaml.safe_load(text)


def container(k8s):
    (c,) = k8s["Deployment"]["spec"]["template"]["spec"]["containers"]
    return c


def port_of(hostport):
    return int(str(hostport).rsplit(":", 1)[1])


def test_configmap_is_a_valid_dnsd_config(dnsd_conf):
    path, _ = dnsd_conf
    p = subprocess.run([DNSD, "--check", "-c", path], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert ": OK (1 zone," in p.stdout


def test_deployment_runs_that_config(k8s):
    dep, cm = k8s["Deployment"], k8s["ConfigMap"]
    assert dep["spec"]["replicas"] == 2
    c = container(k8s)
    args = c["args"]
    conf = args[args.index("-c") + 1]
    (mount,) = [m for m in c["volumeMounts"] if conf.startswith(m["mountPath"] + "/")]
    (vol,) = [v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]]
    assert vol["configMap"]["name"] == cm["metadata"]["name"]
    items = {i["path"]: i["key"] for i in vol["configMap"].get("items", [])}
    rel = conf[len(mount["mountPath"]) + 1:]
    assert items.get(rel, rel) in cm["data"], (rel, items)
    assert "subPath" not in mount, "a subPath mount is never updated: --watch-config would see nothing"
    # Every option in args is one dnsd knows.
    help_text = subprocess.run([DNSD, "--help"], capture_output=True, text=True).stdout
    for a in args:
        if a.startswith("-"):
            assert a.split("=")[0] in help_text, a
    assert "--watch-config" in args


def test_ports_match_the_config(k8s, dnsd_conf):
    _, conf = dnsd_conf
    c = container(k8s)
    ports = {p["name"]: (p["containerPort"], p.get("protocol", "TCP")) for p in c["ports"]}
    listen = {port_of(a) if ":" in str(a) else 53 for a in conf["listen"]}
    assert listen == {53}
    assert (53, "UDP") in ports.values() and (53, "TCP") in ports.values(), ports
    assert ports["http"] == (port_of(conf["http"]), "TCP")
    svc = k8s["Service"]
    sp = {(p["port"], p["protocol"]): p["targetPort"] for p in svc["spec"]["ports"]}
    assert set(sp) == {(53, "UDP"), (53, "TCP")}, sp
    for (port, proto), target in sp.items():
        assert ports[target] == (53, proto), (target, ports)
    labels = k8s["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= labels.items()
    assert k8s["Deployment"]["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_probe_paths_are_dnsds(k8s, dnsd_conf):
    c = container(k8s)
    names = {p["name"] for p in c["ports"]}
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"]["port"] in names
    # dnsd serves both paths (its http address from the ConfigMap, moved
    # to a free loopback port; DNS on a free port too).
    path, _ = dnsd_conf
    proc = subprocess.Popen([DNSD, "-c", path, "-l", "127.0.0.1:0", "--http", "127.0.0.1:0"],
                            stderr=subprocess.PIPE, text=True)
    try:
        base = None
        deadline = time.monotonic() + 10
        while base is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line, "dnsd exited: rc=%s" % proc.poll()
            if "http status on http://" in line:
                base = line.split("http status on ")[1].split("/ ")[0]
        assert base
        codes = {}
        for p in ("/health", "/ready", "/nope"):
            try:
                codes[p] = urllib.request.urlopen(base + p, timeout=3).status
            except urllib.error.HTTPError as e:
                codes[p] = e.code
        assert codes["/health"] == 200
        assert codes["/ready"] in (200, 503)     # 503 until every backend was probed
        assert codes["/nope"] == 404
    finally:
        proc.terminate()
        proc.wait(10)


def test_pod_dnsconfig_points_at_the_service(k8s, dnsd_conf):
    _, conf = dnsd_conf
    pod = k8s["Pod"]["spec"]
    assert pod["dnsPolicy"] == "None"
    dc = pod["dnsConfig"]
    assert dc["nameservers"] == [k8s["Service"]["spec"]["clusterIP"]]
    socket.inet_aton(dc["nameservers"][0])
    zones = [z["name"].rstrip(".") for z in conf["zones"]]
    assert dc["searches"][0] in zones
    opts = {o["name"]: o.get("value") for o in dc["options"]}
    assert "ndots" in opts and int(opts["ndots"]) >= 1
    # Names outside our zones must resolve too: dnsd forwards them.
    assert conf.get("forward"), "a pod with dnsd as its only nameserver needs forward:"

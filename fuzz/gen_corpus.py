#!/usr/bin/python3
"""gen_corpus.py -- writes the seed corpora fuzz/corpus/packet/, name/,
request/ and update/: real queries and responses from dnspython plus
hand-made malformed packets, one file per case. Files named fuzz-* were
found by libFuzzer (new coverage) and are kept as they are. Run from anywhere:
  /usr/bin/python3 fuzz/gen_corpus.py
"""
import os
import struct
from unittest import mock

import dns.edns
import dns.message
import dns.name
import dns.opcode
import dns.rrset
import dns.tsigkeyring

HERE = os.path.dirname(os.path.abspath(__file__))


def header(qd=1, an=0, ns=0, ar=0, flags=0x0100, qid=0x1234):
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def wname(text):
    return dns.name.from_text(text).to_wire()


def question(name="user-service.mesh.", qtype=1, qclass=1):
    return wname(name) + struct.pack("!HH", qtype, qclass)


def opt(options=b"", size=1232, ext_rcode=0, version=0, flags=0, owner=b"\0"):
    ttl = ext_rcode << 24 | version << 16 | flags
    return owner + struct.pack("!HHIH", 41, size, ttl, len(options)) + options


def option(code, data):
    return struct.pack("!HH", code, len(data)) + data


def make_query(name, qtype, **kw):
    """A dnspython query with a fixed id, so that reruns write the same bytes."""
    m = dns.message.make_query(name, qtype, **kw)
    m.id = 0x1234
    return m


def query(name, qtype, **kw):
    return make_query(name, qtype, **kw).to_wire()


def packets():
    p = {}
    p["query-a"] = query("user-service.mesh.", "A", use_edns=False)
    p["query-aaaa-edns-do"] = query("user-service.mesh.", "AAAA", use_edns=0, payload=1232,
                                    want_dnssec=True)
    p["query-srv"] = query("_http._tcp.user-service.mesh.", "SRV", use_edns=0)
    p["query-chaos-version"] = query("version.bind.", "TXT", rdclass="CH", use_edns=False)
    p["cookie-client"] = header(ar=1) + question() + opt(option(10, bytes(range(8))))
    p["cookie-server"] = header(ar=1) + question() + opt(option(10, bytes(range(24))))
    p["cookie-bad-len5"] = header(ar=1) + question() + opt(option(10, b"12345"))
    p["ecs-v4"] = header(ar=1) + question() + opt(option(8, b"\x00\x01\x18\x00\xc0\x00\x02"))
    p["ecs-v6"] = header(ar=1) + question(qtype=28) + opt(
        option(8, b"\x00\x02\x38\x00\x20\x01\x0d\xb8\x00\x01\x02"))
    p["nsid-padding-unknown"] = header(ar=1) + question() + opt(
        option(3, b"") + option(12, bytes(16)) + option(65001, b"\xab\xcd"))
    p["option-overrun"] = header(ar=1) + question() + opt(b"\x00\x03\x00\x05ab")
    p["badvers-version1"] = header(ar=1) + question() + opt(version=1, flags=0x8000)
    p["two-opt"] = header(ar=2) + question() + opt() + opt()
    p["opt-nonroot-owner"] = header(ar=1) + question() + opt(owner=wname("mesh."))
    p["opt-in-answer"] = header(an=1) + question() + opt()
    p["qdcount-0-edns"] = header(qd=0, ar=1) + opt()
    p["qdcount-2"] = header(qd=2) + question() + question("b.mesh.")
    p["trailing-garbage"] = header() + question() + b"\xde\xad\xbe\xef"
    p["truncated-header"] = header()[:5]
    p["truncated-question"] = header() + question()[:7]
    p["empty"] = b""
    p["notify"] = header(flags=0x2000) + question("mesh.", 6)

    # Compression pointers in the question name.
    h = header()
    p["ptr-forward"] = h + b"\xc0\x0e\x01a\x00" + struct.pack("!HH", 1, 1)
    p["ptr-self"] = h + b"\xc0\x0c" + struct.pack("!HH", 1, 1)
    p["ptr-loop"] = h + b"\x01a\xc0\x0c" + struct.pack("!HH", 1, 1)
    # The second answer's owner points at the first one's, itself a pointer.
    rr_a = struct.pack("!HHIH", 1, 1, 30, 4) + b"\x7f\x00\x00\x01"
    p["ptr-to-ptr"] = (header(an=2, flags=0) + question("mesh.")
                       + b"\xc0\x0c" + rr_a + b"\xc0\x16" + rr_a)
    p["label-64"] = h + b"\x40" + b"a" * 64 + b"\x00" + struct.pack("!HH", 1, 1)
    p["label-type-10"] = h + b"\x80\x01\x00" + struct.pack("!HH", 1, 1)
    long_labels = b"".join(b"\x3f" + bytes([0x61 + i]) * 63 for i in range(4))
    p["name-over-255"] = h + long_labels + b"\x00" + struct.pack("!HH", 1, 1)
    # 200 bytes of labels ending in a pointer to a 60-byte name: 260 expanded.
    first = b"\x3a" + b"q" * 58 + b"\x00"
    second = b"".join(b"\x31" + b"r" * 49 for _ in range(4)) + b"\xc0\x0c"
    p["name-over-255-compressed"] = (header(qd=2) + first + struct.pack("!HH", 1, 1) + second
                                     + struct.pack("!HH", 1, 1))

    # TSIG: signed for real, then with a record after it.
    keyring = dns.tsigkeyring.from_text({"key.mesh.": "c2VjcmV0c2VjcmV0c2VjcmV0"})
    m = make_query("user-service.mesh.", "A", use_edns=0)
    m.use_tsig(keyring, keyname="key.mesh.")
    with mock.patch("time.time", return_value=1700000000.0):   # the TSIG time signed
        p["tsig-signed"] = m.to_wire()
    signed = p["tsig-signed"]
    arcount = struct.unpack("!H", signed[10:12])[0]
    p["tsig-not-last"] = (signed[:10] + struct.pack("!H", arcount + 1) + signed[12:]
                          + wname("x.mesh.") + rr_a)

    # Responses: compressed names in owners and rdata of many types.
    r = dns.message.make_response(make_query("user-service.mesh.", "ANY"))
    for name, rtype, data in [
            ("user-service.mesh.", "A", "127.0.0.11"),
            ("user-service.mesh.", "AAAA", "fd00::1"),
            ("www.mesh.", "CNAME", "user-service.mesh."),
            ("mesh.", "MX", "10 mail.mesh."),
            ("_http._tcp.user-service.mesh.", "SRV", "0 5 5000 user-service.mesh."),
            ("mesh.", "TXT", '"meshdns example zone" "second \\"string\\""'),
            ("11.0.0.127.in-addr.arpa.", "PTR", "user-service.mesh."),
            ("mesh.", "CAA", '0 issue "letsencrypt.org"')]:
        r.answer.append(dns.rrset.from_text(name, 30, "IN", rtype, data))
    r.authority.append(dns.rrset.from_text("mesh.", 300, "IN", "SOA",
                                           "ns1.mesh. hostmaster.mesh. 1 3600 600 86400 60"))
    r.authority.append(dns.rrset.from_text("mesh.", 300, "IN", "NS", "ns1.mesh."))
    r.additional.append(dns.rrset.from_text("ns1.mesh.", 300, "IN", "A", "127.0.0.1"))
    r.use_edns(0, 0, 1232, options=[dns.edns.GenericOption(10, bytes(range(24)))])
    p["response-compressed"] = r.to_wire()

    # Malformed rdata: A of 3 bytes, TXT string past rdlen, MX pointing forward.
    q = question("a.mesh.")
    bad = (header(an=3, flags=0x8180) + q
           + b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 30, 3) + b"\x7f\x00\x00"
           + b"\xc0\x0c" + struct.pack("!HHIH", 16, 1, 30, 3) + b"\x05ab"
           + b"\xc0\x0c" + struct.pack("!HHIH", 15, 1, 30, 4) + b"\x00\x0a\xc0\x50")
    p["response-bad-rdata"] = bad
    return p


def names():
    n = {}
    n["text-simple"] = b"www.example.com"
    n["text-absolute"] = b"user-service.mesh."
    n["text-root"] = b"."
    n["text-escaped-dot"] = b"a\\.b.c"
    n["text-ddd"] = b"\\065\\000x.\\255y"
    n["text-specials"] = b"\\(\\)\\@\\$\\;\\\"\\\\.mesh"
    n["text-empty-label"] = b"a..b"
    n["text-label-63"] = b"x" * 63 + b".mesh."
    n["text-name-255"] = b".".join([b"b" * 63] * 3) + b"." + b"c" * 61
    n["text-srv"] = b"_http._tcp.user-service.mesh"
    n["wire-simple"] = wname("www.Example.com.")
    n["wire-root"] = b"\x00"
    n["wire-255"] = b"".join(b"\x3f" + b"a" * 63 for _ in range(3)) + b"\x3d" + b"z" * 61 + b"\x00"
    n["wire-label-64"] = b"\x40" + b"a" * 64 + b"\x00"
    n["wire-trailing"] = b"\x01a\x00\x00"
    n["wire-pointer"] = b"\x01a\xc0\x00"
    n["wire-binary"] = b"\x03\x00. \x02\x7f\xff\x00"
    return n


def queries():
    """Requests for fuzz_request.c's fixed zones: queries, transfers,
    signed requests and UPDATEs, plus every packet seed."""
    q = dict(packets())
    q["mesh-srv-udp"] = query("_grpc._udp.user-service.mesh.", "SRV", use_edns=0)
    q["mesh-srv-service"] = query("user-service.mesh.", "SRV", use_edns=0, payload=4096)
    q["mesh-cname"] = query("www.mesh.", "A", use_edns=False)
    q["mesh-cname-loop"] = query("LOOP.mesh.", "A", use_edns=0)
    q["mesh-referral"] = query("host.sub.mesh.", "A", use_edns=0)
    q["mesh-mx"] = query("mesh.", "MX", use_edns=0)
    q["mesh-soa"] = query("mesh.", "SOA", use_edns=False)
    q["mesh-ns"] = query("mesh.", "NS", use_edns=0)
    q["mesh-txt"] = query("txt.mesh.", "TXT", use_edns=0)
    q["mesh-any"] = query("user-service.mesh.", "ANY", use_edns=0)
    q["mesh-big-udp512"] = query("big.mesh.", "A", use_edns=False)
    q["mesh-big-srv"] = query("big.mesh.", "SRV", use_edns=0, payload=512)
    q["mesh-nxdomain"] = query("nope.mesh.", "A", use_edns=0)
    q["mesh-nodata"] = query("ns1.mesh.", "AAAA", use_edns=0)
    q["mesh-other-zone"] = query("a.other.test.", "AAAA", use_edns=0)
    q["mesh-refused"] = query("example.org.", "A", use_edns=0)
    q["mesh-status"] = query("user-service.", "TXT", rdclass="CH", use_edns=False)
    q["mesh-why"] = query("_why.user-service.", "TXT", rdclass="CH", use_edns=False)
    q["mesh-axfr"] = query("mesh.", "AXFR", use_edns=False)
    # search-path (fuzz_request.c: '*.svc.cluster.local', cluster.local).
    q["search-path-wild"] = query("user-service.mesh.default.svc.cluster.local.", "A",
                                  use_edns=False)
    q["search-path-big"] = query("big.mesh.x.svc.cluster.local.", "A", use_edns=False)
    q["search-path-srv"] = query("_http._tcp.big.mesh.cluster.local.", "SRV", use_edns=0,
                                 payload=600)
    q["search-path-miss"] = query("nope.mesh.cluster.local.", "AAAA", use_edns=0)
    # DNS Cookies (fixed bytes: a seed cannot hold a server cookie that
    # stays valid, its timestamp ages): client-only, a wrong hash, foreign
    # lengths, with other options, with truncation, with BADVERS.
    client = bytes.fromhex("2464c4abcf10c957")
    ours = client + bytes.fromhex("010000005cf79f111f8130c3eee29480")
    def ck(data):
        return dns.edns.GenericOption(dns.edns.COOKIE, data)
    q["cookie-client-only"] = query("user-service.mesh.", "A", use_edns=0, options=[ck(client)])
    q["cookie-stale"] = query("user-service.mesh.", "A", use_edns=0, options=[ck(ours)])
    q["cookie-server8"] = query("www.mesh.", "A", use_edns=0, options=[ck(client + bytes(8))])
    q["cookie-server32"] = query("nope.mesh.", "A", use_edns=0, options=[ck(client + bytes(32))])
    q["cookie-ecs-nsid"] = query("user-service.mesh.", "A", use_edns=0, payload=4096, options=[
        dns.edns.ECSOption("10.1.2.0", 24), ck(client), dns.edns.GenericOption(3, b"")])
    q["cookie-twice"] = query("mesh.", "SOA", use_edns=0, options=[ck(client), ck(ours)])
    q["cookie-big-512"] = query("big.mesh.", "SRV", use_edns=0, payload=512, options=[ck(ours)])
    q["cookie-referral"] = query("host.sub.mesh.", "A", use_edns=0, options=[ck(client)])
    q["cookie-refused"] = query("example.org.", "A", use_edns=0, options=[ck(client)])
    q["cookie-badvers"] = query("mesh.", "NS", use_edns=1, options=[ck(client)])
    q["cookie-bad-len"] = query("mesh.", "NS", use_edns=0, options=[ck(client[:7])])
    ecs = dns.edns.ECSOption("10.1.2.0", 24)
    q["mesh-ecs"] = query("user-service.mesh.", "A", use_edns=0, options=[ecs])
    q["mesh-ecs-v6"] = query("user-service.mesh.", "AAAA", use_edns=0,
                             options=[dns.edns.ECSOption("2001:db8::", 48)])
    q.update(updates())
    q.update(xfrs())
    return q


def updates():
    """RFC 2136 UPDATE messages, unsigned and TSIG-signed at a fixed time."""
    import dns.update
    keyring = dns.tsigkeyring.from_text({"key.mesh.": "c2VjcmV0c2VjcmV0c2VjcmV0"})
    u = {}

    def make(signed):
        m = (dns.update.UpdateMessage("mesh.", keyring=keyring, keyname="key.mesh.")
             if signed else dns.update.UpdateMessage("mesh."))
        m.id = 0x1234
        return m

    for signed in (False, True):
        tag = "signed" if signed else "unsigned"
        cases = {}
        m = make(signed)
        m.add("user-service", 30, "A", "10.0.0.7")
        cases["update-add-backend"] = m
        m = make(signed)
        m.present("ns1")
        m.absent("new", "TXT")
        m.add("new", 60, "TXT", "hello")
        m.add("alias", 60, "CNAME", "ns1.mesh.")
        cases["update-prereq-static"] = m
        m = make(signed)
        m.delete("user-service", "A", "10.0.0.7")
        m.delete("new", "TXT")
        m.delete("alias")
        cases["update-delete"] = m
        m = make(signed)
        m.add("user-service", 30, "SRV", "0 50 9090 10-0-0-5.user-service.mesh.")
        cases["update-srv"] = m
        for name, m in cases.items():
            with mock.patch("time.time", return_value=1700000000.0):
                u["%s-%s" % (name, tag)] = m.to_wire()
    # a zone section of two entries and a bad zone type
    u["update-two-zones"] = header(qd=2, flags=0x2800) + question("mesh.", 6) + question("x.", 6)
    u["update-zone-type-a"] = header(qd=1, flags=0x2800) + question("mesh.", 1)
    return u


def xfrs():
    """Transfers of an open and a keyed zone, IXFR from several serials,
    signed requests (at a fixed time, so BADTIME today), NOTIFY."""
    import dns.rdataclass
    import dns.rdatatype
    import dns.rrset
    keyring = dns.tsigkeyring.from_text(
        {"k.": ("hmac-sha256", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")})
    x = {}

    def wire(m, signed=False):
        m.id = 0x4242
        if signed:
            m.use_tsig(keyring, keyname="k.", algorithm="hmac-sha256")
            with mock.patch("time.time", return_value=1700000000.0):
                return m.to_wire()
        return m.to_wire()

    x["xfr-axfr"] = wire(dns.message.make_query("mesh.", "AXFR"))
    x["xfr-axfr-keyed-unsigned"] = wire(dns.message.make_query("keyed.test.", "AXFR"))
    x["xfr-axfr-keyed-signed"] = wire(dns.message.make_query("keyed.test.", "AXFR"), True)
    for serial in (0, 100, 101, 4294967295):
        m = dns.message.make_query("mesh.", "IXFR")
        soa = dns.rrset.from_text("mesh.", 0, "IN", "SOA",
                                  "ns1.mesh. hostmaster.mesh. %d 3600 600 86400 30" % serial)
        m.authority.append(soa)
        x["xfr-ixfr-%d" % serial] = wire(m)
    x["xfr-query-a"] = wire(dns.message.make_query("user-service.mesh.", "A"))
    x["xfr-query-a-signed"] = wire(dns.message.make_query("user-service.mesh.", "A"), True)
    n = dns.message.make_query("mesh.", "SOA")
    n.set_opcode(dns.opcode.NOTIFY)
    x["xfr-notify"] = wire(n)
    x["xfr-short"] = header()[:7]
    return x


def write(directory, cases):
    os.makedirs(directory, exist_ok=True)
    for name, data in sorted(cases.items()):
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    write(os.path.join(HERE, "corpus", "packet"), packets())
    write(os.path.join(HERE, "corpus", "name"), names())
    write(os.path.join(HERE, "corpus", "request"), queries())
    write(os.path.join(HERE, "corpus", "update"), updates())

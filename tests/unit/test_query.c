/* test_query.c -- query.c and zone.c end to end without sockets: a snapshot
 * built from YAML, queries built with the wire writer and handed to
 * query_answer as request.c hands them, responses parsed back with the
 * wire reader. What comes before query_answer (parsing, TSIG, dispatch)
 * is test_request's. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "bstate.h"
#include "config.h"
#include "metrics.h"
#include "query.h"
#include "request.h"
#include "tap.h"
#include "dns/wire.h"
#include "zone.h"

static const char yaml[] =
	"zones:\n"
	"  - name: mesh\n"
	"    ttl: 60\n"
	"    soa: {minimum: 20, ttl: 300, serial: 7}\n"
	"    ns: [ns1]\n"
	"    records:\n"
	"      - {name: ns1, type: A, data: 127.0.0.1}\n"
	"      - {name: www, type: CNAME, data: user-service}\n"
	"      - {name: ext, type: CNAME, data: example.org.}\n"
	"      - {name: loop1, type: CNAME, data: loop2}\n"
	"      - {name: loop2, type: CNAME, data: loop1}\n"
	"      - {name: self, type: CNAME, data: self}\n"
	"      - {name: '@', type: MX, data: '10 ns1'}\n"
	"      - {name: info, type: TXT, data: '\"hello world\"'}\n"
	"      - {name: sub, type: NS, data: ns.sub}\n"
	"      - {name: ns.sub, type: A, data: 127.0.0.53}\n"
	"    services:\n"
	"      - name: user-service\n"
	"        ttl: 10\n"
	"        ports: {http: 5000}\n"
	"        backends: [127.0.0.11, 127.0.0.12, {address: 127.0.0.13, weight: 200, priority: 1, name: u3}]\n"
	"      - name: v6\n"
	"        ports: {grpc: {port: 9000, proto: udp}}\n"
	"        backends: ['fd00::1', {address: 'fd00::2', port: 9001}]\n"
	"      - name: big\n"
	"        ports: {http: 80}\n"
	"        backends: [%s]\n";

struct resp {
	uint8_t buf[65535];
	int len;
	struct dns_header h;
	struct dns_question q;
	struct dns_rr rr[256];
	unsigned nrr;
	bool opt;
	uint32_t opt_ttl;
	uint16_t opt_size;
};

/* The target name of SRV record j of r, expanded into tn; its length. */
static size_t srv_target(const struct resp *r, unsigned j, uint8_t tn[DNS_NAME_MAX])
{
	struct wire_reader tr;
	wire_reader_init(&tr, r->buf, (size_t)r->len);
	tr.pos = r->rr[j].rdoff + 6;
	return wire_read_name(&tr, tn);
}

static struct query_worker *qw;
static struct query_settings qset;

/* Service 5 ("half") has its odd backends down (state words of their own,
 * bstate.h); the rest are unchecked, always up. */
static uint32_t half_sid[80];

static uint32_t sid_half(void *arg, size_t zi, size_t si, size_t bi)
{
	(void)arg;
	(void)zi;
	return si == 5 && bi < 80 ? half_sid[bi] : 0;
}

/* A list of n addresses fmt % (i + 1) for a YAML flow sequence. */
static void addr_list(char *out, size_t cap, const char *fmt, int n)
{
	size_t off = 0;
	for (int i = 1; i <= n && off < cap; i++) {
		if (i > 1)
			off += (size_t)snprintf(out + off, cap - off, ", ");
		off += (size_t)snprintf(out + off, cap - off, fmt, i);
	}
}

static size_t make_query(uint8_t *buf, size_t cap, const char *name, uint16_t type,
                         uint16_t flags, int edns_size, uint8_t edns_version)
{
	struct wire_writer w;
	uint8_t n[DNS_NAME_MAX];
	size_t nl;
	wire_writer_init(&w, buf, cap);
	struct dns_header h = { .id = 0x1234, .flags = flags, .qdcount = 1,
	                        .arcount = edns_size >= 0 ? 1 : 0 };
	wire_write_header(&w, &h);
	if (wire_name_from_text(name, n, &nl) != 0)
		return 0;
	wire_write_name(&w, n, nl, false);
	wire_write_u16(&w, type);
	wire_write_u16(&w, DNS_CLASS_IN);
	if (edns_size >= 0) {
		wire_write_u8(&w, 0);
		wire_write_u16(&w, DNS_TYPE_OPT);
		wire_write_u16(&w, (uint16_t)edns_size);
		wire_write_u8(&w, 0);
		wire_write_u8(&w, edns_version);
		wire_write_u16(&w, DNS_EDNS_DO);
		wire_write_u16(&w, 0);
	}
	return w.err ? 0 : w.pos;
}

/* A well-formed QUERY to query_answer, parsed as request.c parses it. */
static int answer(const uint8_t *q, size_t ql, uint8_t *out, size_t cap, bool tcp)
{
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	struct request rq = { .msg = q, .len = ql, .peer = (struct sockaddr *)&peer, .tcp = tcp };
	if (wire_parse_query(q, ql, &rq.q) != WIRE_PARSE_OK)
		return QUERY_DROP;
	rq.snap = zone_current();
	rq.limit = request_limit(&rq.q, tcp, rq.snap->udp_max_payload);
	return query_answer(qw, &rq, out, cap);
}

static int ask(struct resp *r, const char *name, uint16_t type, int edns_size, bool tcp)
{
	uint8_t q[512];
	size_t ql = make_query(q, sizeof(q), name, type, DNS_FLAG_RD, edns_size, 0);
	/* Nothing of the previous answer survives: a dropped query leaves an
	 * empty header, so a check of counts or flags fails. */
	memset(&r->h, 0, sizeof(r->h));
	memset(&r->q, 0, sizeof(r->q));
	r->nrr = 0;
	r->opt = false;
	r->len = answer(q, ql, r->buf, sizeof(r->buf), tcp);
	if (r->len <= 0)
		return -1;
	struct wire_reader rd;
	wire_reader_init(&rd, r->buf, (size_t)r->len);
	wire_read_header(&rd, &r->h);
	if (r->h.qdcount)
		wire_read_question(&rd, &r->q);
	r->nrr = 0;
	r->opt = false;
	unsigned total = r->h.ancount + r->h.nscount + r->h.arcount;
	for (unsigned i = 0; i < total && i < 256; i++) {
		wire_read_rr(&rd, &r->rr[r->nrr]);
		if (r->rr[r->nrr].type == DNS_TYPE_OPT) {
			r->opt = true;
			r->opt_ttl = r->rr[r->nrr].ttl;
			r->opt_size = r->rr[r->nrr].rclass;
		}
		r->nrr++;
	}
	return rd.err || wire_remaining(&rd) ? -1 : 0;
}

static const char *rr_name(const struct resp *r, unsigned i)
{
	static char txt[1024];
	wire_name_to_text(r->rr[i].name, r->rr[i].namelen, txt, sizeof(txt));
	return txt;
}

static uint32_t rr_ipv4(const struct resp *r, unsigned i)
{
	const uint8_t *p = r->buf + r->rr[i].rdoff;
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int main(void)
{
	/* 60 backends make an A RRset of 60 * 16 bytes: over 512, under 1232. */
	char big[4096] = "";
	for (int i = 1; i <= 60; i++) {
		char one[32];
		snprintf(one, sizeof(one), "%s127.0.1.%d", i > 1 ? ", " : "", i);
		strcat(big, one);
	}
	/* More big services: the same 60 with oversize: truncate, with the
	 * hash policy, 40 AAAA, and 80 with half of them down. */
	char list6[2048], list80[2048], text[16384];
	addr_list(list6, sizeof(list6), "'fd00::1:%d'", 40);
	addr_list(list80, sizeof(list80), "127.0.2.%d", 80);
	size_t off = (size_t)snprintf(text, sizeof(text),
	                              "search-path: ['*.svc.cluster.local', svc.cluster.local]\n");
	off += (size_t)snprintf(text + off, sizeof(text) - off, yaml, big);
	snprintf(text + off, sizeof(text) - off,
	         "      - {name: bigtc, oversize: truncate, ports: {http: 80}, backends: [%s]}\n"
	         "      - {name: wide6, ports: {http: 80}, backends: [%s]}\n"
	         "      - {name: half, fail-open: false, ports: {http: 80}, backends: [%s]}\n"
	         "      - {name: hashed, policy: hash, ports: {http: 80}, backends: [%s]}\n"
	         "      - {name: twoport, ports: {http: 80}, backends: [{address: 127.0.0.60, port: 81},"
	         " {address: 127.0.0.60, port: 82}, 127.0.0.61]}\n",
	         big, list6, list80, big);
	struct config *cfg;
	struct config_error cerr;
	if (!ok(config_load_string(text, strlen(text), "test.yaml", &cfg, &cerr) == 0,
	        "config loads")) {
		diag("%s", cerr.msg);
		return done_testing();
	}
	struct zone_snapshot *snap;
	char err[256];
	struct bstate *states = bstate_new();
	for (unsigned i = 1; states && i < 80; i += 2) {
		if (bstate_alloc(states, &half_sid[i]) != 0)
			break;
		bstate_set(states, half_sid[i], false, 0);
	}
	if (!ok(zone_build(cfg, NULL, NULL, states, sid_half, NULL, &snap, err, sizeof(err)) == 0,
	        "snapshot builds")) {
		diag("%s", err);
		return done_testing();
	}
	zone_publish(snap);
	qw = query_worker_new(&qset, 0, 42);
	struct metrics_worker *mw = metrics_worker_new();
	query_worker_set_metrics(qw, mw);
	static struct resp r;

	ok(ask(&r, "user-service.mesh", DNS_TYPE_A, -1, false) == 0, "A query answered");
	is_int(DNS_RCODE(r.h.flags), DNS_RCODE_NOERROR, "NOERROR");
	ok(r.h.flags & DNS_FLAG_AA, "AA set");
	ok(!(r.h.flags & DNS_FLAG_RA), "RA clear");
	ok(r.h.flags & DNS_FLAG_RD, "RD copied");
	is_int(r.h.id, 0x1234, "id echoed");
	is_int(r.h.ancount, 3, "three backends");
	is_int(r.rr[0].ttl, 10, "service ttl");
	ok(!r.opt, "no OPT without EDNS in the query");
	uint32_t seen = 0;
	for (int i = 0; i < 12; i++) {
		ask(&r, "user-service.mesh", DNS_TYPE_A, -1, false);
		seen |= 1u << (rr_ipv4(&r, 0) & 31);
	}
	ok(__builtin_popcount(seen) > 1, "first answer rotates");

	ask(&r, "UsEr-SeRvIcE.MeSh", DNS_TYPE_A, -1, false);
	is_str(rr_name(&r, 0), "UsEr-SeRvIcE.MeSh.", "answer owner keeps the query's case");
	is_int(r.h.ancount, 3, "case-insensitive match");

	ask(&r, "user-service.mesh", DNS_TYPE_AAAA, 1232, false);
	is_int(DNS_RCODE(r.h.flags), DNS_RCODE_NOERROR, "AAAA of a v4-only service: NOERROR");
	is_int(r.h.ancount, 0, "... with no answer");
	is_int(r.h.nscount, 1, "... and the SOA");
	is_int(r.rr[0].type, DNS_TYPE_SOA, "authority is the SOA");
	is_int(r.rr[0].ttl, 20, "negative TTL = min(SOA TTL, MINIMUM)");
	ok(r.opt, "OPT in the answer to an EDNS query");
	is_int(r.opt_size, 1232, "our payload size advertised");
	ok(r.opt_ttl & DNS_EDNS_DO, "DO bit echoed");

	ask(&r, "nothere.mesh", DNS_TYPE_A, -1, false);
	is_int(DNS_RCODE(r.h.flags), DNS_RCODE_NXDOMAIN, "NXDOMAIN");
	ok(r.h.flags & DNS_FLAG_AA, "NXDOMAIN is authoritative");
	is_int(r.h.nscount, 1, "NXDOMAIN carries the SOA");

	ask(&r, "_tcp.user-service.mesh", DNS_TYPE_A, -1, false);
	is_int(DNS_RCODE(r.h.flags), DNS_RCODE_NOERROR, "empty non-terminal is NODATA");
	ask(&r, "x._tcp.user-service.mesh", DNS_TYPE_A, -1, false);
	is_int(DNS_RCODE(r.h.flags), DNS_RCODE_NXDOMAIN, "below it: NXDOMAIN");

	ask(&r, "_http._tcp.user-service.mesh", DNS_TYPE_SRV, -1, false);
	is_int(r.h.ancount, 3, "SRV per backend");
	is_int(r.h.arcount, 3, "targets' A in additional");
	{
		bool found = false;
		for (unsigned i = 0; i < r.h.ancount; i++) {
			const uint8_t *p = r.buf + r.rr[i].rdoff;
			char t[256];
			uint8_t tn[DNS_NAME_MAX];
			size_t tl = srv_target(&r, i, tn);
			wire_name_to_text(tn, tl, t, sizeof(t));
			if (strcmp(t, "u3.user-service.mesh.") == 0) {
				found = true;
				is_int(p[0] << 8 | p[1], 1, "u3 priority");
				is_int(p[2] << 8 | p[3], 200, "u3 weight");
				is_int(p[4] << 8 | p[5], 5000, "u3 port");
			}
		}
		ok(found, "named backend's target");
	}
	{
		/* The encoding: each SRV's owner points at the question (offset
		 * 12), each address record's owner at the target inside the SRV
		 * record of the same name, and names them the same. */
		unsigned own = 0, tgt = 0;
		for (unsigned i = 0; i < r.h.ancount; i++)
			own += r.buf[r.rr[i].rdoff - 12] == 0xc0 && r.buf[r.rr[i].rdoff - 11] == 12;
		for (unsigned i = r.h.ancount; i < r.h.ancount + r.h.arcount && i < r.nrr; i++) {
			size_t at = (size_t)(r.buf[r.rr[i].rdoff - 12] & 0x3f) << 8 | r.buf[r.rr[i].rdoff - 11];
			for (unsigned j = 0; j < r.h.ancount; j++) {
				uint8_t tn[DNS_NAME_MAX];
				size_t tl = srv_target(&r, j, tn);
				tgt += (r.buf[r.rr[i].rdoff - 12] & 0xc0) == 0xc0 && at == r.rr[j].rdoff + 6 &&
				       wire_name_equal(tn, tl, r.rr[i].name, r.rr[i].namelen);
			}
		}
		is_int(own, 3, "SRV owners: a pointer to the question");
		is_int(tgt, 3, "address owners: a pointer to their SRV target");
	}
	ask(&r, "_http._tcp.twoport.mesh", DNS_TYPE_SRV, -1, false);
	is_int(r.h.ancount, 3, "one host on two ports: an SRV record each");
	is_int(r.h.arcount, 2, "... and its address once");
	ask(&r, "u3.user-service.mesh", DNS_TYPE_A, -1, false);
	is_int(r.h.ancount, 1, "SRV target resolves");
	is_int(rr_ipv4(&r, 0), 0x7f00000d, "to its address");
	ask(&r, "127-0-0-11.user-service.mesh", DNS_TYPE_A, -1, false);
	is_int(r.h.ancount, 1, "default target name from the address");

	ask(&r, "_grpc._udp.v6.mesh", DNS_TYPE_SRV, -1, false);
	is_int(r.h.ancount, 2, "udp port SRV");
	{
		/* IPv6 targets: the backend's own port, and each AAAA's owner
		 * the target of one of the SRV records. */
		unsigned ports = 0, named = 0;
		for (unsigned i = 0; i < r.h.ancount && i < r.nrr; i++) {
			const uint8_t *p = r.buf + r.rr[i].rdoff;
			unsigned port = (unsigned)(p[4] << 8 | p[5]);
			ports |= port == 9000 ? 1 : port == 9001 ? 2 : 4;
		}
		for (unsigned i = r.h.ancount; i < r.h.ancount + r.h.arcount && i < r.nrr; i++)
			for (unsigned j = 0; j < r.h.ancount; j++) {
				uint8_t tn[DNS_NAME_MAX];
				size_t tl = srv_target(&r, j, tn);
				named += r.rr[i].type == DNS_TYPE_AAAA && r.rr[i].rdlen == 16 &&
				         wire_name_equal(tn, tl, r.rr[i].name, r.rr[i].namelen);
			}
		is_int(ports, 3, "v6 SRV: ports 9000 and 9001 (a backend's own)");
		ok(r.h.arcount == 2 && named == 2, "v6 SRV: each target's AAAA in additional (%u of %u)",
		   named, r.h.arcount);
	}
	ask(&r, "v6.mesh", DNS_TYPE_AAAA, -1, false);
	is_int(r.h.ancount, 2, "AAAA service");
	is_int(r.rr[0].rdlen, 16, "AAAA rdata");
	ask(&r, "v6.mesh", DNS_TYPE_A, -1, false);
	is_int(r.h.ancount, 0, "A of a v6-only service: NODATA");

	ask(&r, "www.mesh", DNS_TYPE_A, -1, false);
	is_int(r.rr[0].type, DNS_TYPE_CNAME, "CNAME first");
	is_int(r.h.ancount, 4, "CNAME followed to the service");
	ask(&r, "ext.mesh", DNS_TYPE_A, -1, false);
	is_int(r.h.ancount, 1, "out-of-zone CNAME target: chain stops");
	is_int(DNS_RCODE(r.h.flags), DNS_RCODE_NOERROR, "... NOERROR");
	ask(&r, "www.mesh", DNS_TYPE_CNAME, -1, false);
	is_int(r.h.ancount, 1, "CNAME query: just the CNAME");
	ask(&r, "loop1.mesh", DNS_TYPE_A, -1, false);
	is_int(r.h.ancount, 2, "CNAME loop: each CNAME once");
	is_str(rr_name(&r, 1), "loop2.mesh.", "... in chain order");
	is_int(DNS_RCODE(r.h.flags), DNS_RCODE_NOERROR, "... NOERROR");
	ask(&r, "SELF.mesh", DNS_TYPE_A, -1, false);
	is_int(r.h.ancount, 1, "CNAME to itself: once");

	ask(&r, "mesh", DNS_TYPE_SOA, -1, false);
	is_int(r.h.ancount, 1, "SOA at the apex");
	{
		const uint8_t *p = r.buf + r.rr[0].rdoff + r.rr[0].rdlen - 20;
		is_int((uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3], 7, "configured serial");
	}
	ask(&r, "mesh", DNS_TYPE_NS, -1, false);
	is_int(r.h.ancount, 1, "NS at the apex");
	is_int(r.h.arcount, 1, "NS address in additional");
	ok(ask(&r, "mesh", DNS_TYPE_MX, -1, false) == 0 && r.h.ancount == 1 &&
	   r.rr[0].type == DNS_TYPE_MX, "MX");
	ok(ask(&r, "info.mesh", DNS_TYPE_TXT, -1, false) == 0 && r.h.ancount == 1 &&
	   r.rr[0].type == DNS_TYPE_TXT && !strcmp(rr_name(&r, 0), "info.mesh."), "TXT");
	ok(ask(&r, "mesh", DNS_TYPE_ANY, -1, false) == 0 && r.h.ancount == 1 &&
	   !strcmp(rr_name(&r, 0), "mesh."), "ANY: one RRset (RFC 8482)");

	ask(&r, "host.sub.mesh", DNS_TYPE_A, -1, false);
	is_int(DNS_RCODE(r.h.flags), DNS_RCODE_NOERROR, "below a cut: referral");
	ok(!(r.h.flags & DNS_FLAG_AA), "referral is not authoritative");
	is_int(r.h.nscount, 1, "NS in authority");
	is_int(r.h.arcount, 1, "glue in additional");
	ask(&r, "sub.mesh", DNS_TYPE_DS, -1, false);
	ok(r.h.flags & DNS_FLAG_AA, "DS at the cut answered by the parent");

	ask(&r, "example.org", DNS_TYPE_A, -1, false);
	is_int(DNS_RCODE(r.h.flags), DNS_RCODE_REFUSED, "outside our zones: REFUSED");
	ok(!(r.h.flags & DNS_FLAG_AA), "... without AA");

	/* Big services (oversize). 512 bytes hold the header and question
	 * (26 bytes) and 30 A records of 16 bytes, or 17 AAAA of 28. */
	ask(&r, "big.mesh", DNS_TYPE_A, -1, false);
	ok(!(r.h.flags & DNS_FLAG_TC), "60 A records over 512 bytes: a subset, no TC");
	ok(r.len <= 512, "... within 512 bytes");
	is_int(r.h.ancount, 30, "... as many as fit");
	{
		uint64_t seen60 = 0;
		for (unsigned i = 0; i < r.h.ancount; i++)
			seen60 |= 1ull << (rr_ipv4(&r, i) & 63);
		is_int(__builtin_popcountll(seen60), 30, "... all different");
	}
	is_int(mw->subset, 1, "subset answer counted");
	ask(&r, "bigtc.mesh", DNS_TYPE_A, -1, false);
	ok(r.h.flags & DNS_FLAG_TC, "oversize: truncate: TC");
	is_int(r.h.ancount, 0, "... whole RRsets only");
	is_int(mw->subset, 1, "... not counted as a subset");
	ask(&r, "big.mesh", DNS_TYPE_A, 1232, false);
	ok(!(r.h.flags & DNS_FLAG_TC), "fits in 1232 with EDNS");
	is_int(r.h.ancount, 60, "all 60");
	is_int(mw->subset, 1, "... not a subset");
	ask(&r, "big.mesh", DNS_TYPE_A, 100, false);
	is_int(r.h.ancount, (512 - 26 - 11) / 16, "EDNS size below 512 is treated as 512");
	ask(&r, "big.mesh", DNS_TYPE_A, 600, false);
	ok(r.len <= 600 && r.h.ancount == (600 - 26 - 11) / 16, "EDNS 600: what fits beside OPT");
	ask(&r, "bigtc.mesh", DNS_TYPE_A, -1, true);
	is_int(r.h.ancount, 60, "TCP: everything");
	ok(!(r.h.flags & DNS_FLAG_TC), "TCP: no TC");
	ask(&r, "wide6.mesh", DNS_TYPE_AAAA, -1, false);
	ok(!(r.h.flags & DNS_FLAG_TC) && r.len <= 512, "40 AAAA: a subset in 512 bytes, no TC");
	is_int(r.h.ancount, (512 - 12 - 12 - 4) / 28, "... as many as fit");
	ask(&r, "half.mesh", DNS_TYPE_A, -1, false);
	is_int(r.h.ancount, 30, "40 healthy of 80: 30 fit");
	{
		bool healthy = true;
		for (unsigned i = 0; i < r.h.ancount; i++)
			healthy &= (rr_ipv4(&r, i) & 0xff) % 2 == 1; /* backend 2k is 127.0.2.(2k+1) */
		ok(healthy, "... all of them healthy");
	}
	{
		/* hash: the order is the client's; the subset is its head. */
		static struct resp full;
		ask(&full, "hashed.mesh", DNS_TYPE_A, -1, true);
		ask(&r, "hashed.mesh", DNS_TYPE_A, -1, false);
		bool head = full.h.ancount == 60 && r.h.ancount == 30;
		for (unsigned i = 0; head && i < r.h.ancount; i++)
			head = rr_ipv4(&r, i) == rr_ipv4(&full, i);
		ok(head, "subset = the first of the policy's order (hash)");
	}
	ask(&r, "_http._tcp.big.mesh", DNS_TYPE_SRV, -1, false);
	ok(!(r.h.flags & DNS_FLAG_TC) && r.len <= 512, "big SRV over UDP: a subset, no TC");
	ok(r.h.ancount >= 10, "... of %u records", r.h.ancount);
	{
		unsigned addl = 0;
		for (unsigned i = r.h.ancount; i < r.nrr; i++)
			addl += r.rr[i].type == DNS_TYPE_A;
		ok(addl < r.h.ancount, "... with the targets' addresses that fit (%u)", addl);
	}
	ask(&r, "_http._tcp.big.mesh", DNS_TYPE_SRV, 4096, false);
	/* 1232 - 37 (header, question) - 11 (OPT): 30 SRV of 39 bytes at most. */
	ok(!(r.h.flags & DNS_FLAG_TC) && r.h.ancount == 30 && r.len <= 1232,
	   "SRV at 4096: udp-max-payload (1232) holds 30 (%u)", r.h.ancount);
	ask(&r, "_http._tcp.bigtc.mesh", DNS_TYPE_SRV, -1, false);
	ok(r.h.flags & DNS_FLAG_TC && r.h.ancount == 0, "oversize: truncate SRV: TC");

	/* search-path: <name>.<suffix> outside our zones -> CNAME <name>. */
	memcpy(qset.search, cfg->search, cfg->nsearch * sizeof(*cfg->search));
	qset.nsearch = cfg->nsearch;
	ask(&r, "user-service.mesh.default.svc.cluster.local", DNS_TYPE_A, -1, false);
	is_int(DNS_RCODE(r.h.flags), DNS_RCODE_NOERROR, "search-path: NOERROR");
	ok(r.h.ancount == 4 && r.rr[0].type == DNS_TYPE_CNAME, "... a CNAME, then the 3 backends");
	{
		struct wire_reader cr;
		uint8_t cn[DNS_NAME_MAX];
		char ct[256];
		wire_reader_init(&cr, r.buf, (size_t)r.len);
		cr.pos = r.rr[0].rdoff;
		wire_name_to_text(cn, wire_read_name(&cr, cn), ct, sizeof(ct));
		is_str(ct, "user-service.mesh.", "... to the mesh name ('*.svc.cluster.local')");
		is_int(r.rr[0].ttl, 20, "... with the zone's negative TTL");
		is_str(rr_name(&r, 1), "user-service.mesh.", "... whose records follow");
	}
	ok(!(r.h.flags & DNS_FLAG_AA), "... not authoritative");
	is_int(mw->search_path, 1, "search-path answer counted");
	ask(&r, "user-service.mesh.svc.cluster.local", DNS_TYPE_A, -1, false);
	is_int(r.h.ancount, 4, "search-path: second suffix (svc.cluster.local)");
	ask(&r, "user-service.mesh.default.svc.cluster.local", DNS_TYPE_AAAA, -1, false);
	ok(DNS_RCODE(r.h.flags) == DNS_RCODE_NOERROR && r.h.ancount == 1 && r.h.nscount == 1,
	   "search-path, no AAAA: the CNAME and the SOA (NODATA)");
	ask(&r, "big.mesh.default.svc.cluster.local", DNS_TYPE_A, -1, false);
	/* 512 - 52 (header, question) - 22 (CNAME): 27 A records of 16 bytes,
	 * but the first is sized with its owner spelled out (10 bytes): 26. */
	ok(!(r.h.flags & DNS_FLAG_TC) && r.h.ancount == 1 + 26 && r.len <= 512,
	   "search-path to a big service: CNAME and a subset (%u)", r.h.ancount);
	ask(&r, "nothere.mesh.default.svc.cluster.local", DNS_TYPE_A, -1, false);
	is_int(DNS_RCODE(r.h.flags), DNS_RCODE_REFUSED, "search-path, no such name: as before");
	ask(&r, "default.svc.cluster.local", DNS_TYPE_A, -1, false);
	is_int(DNS_RCODE(r.h.flags), DNS_RCODE_REFUSED, "the suffix itself: as before");
	ask(&r, "user-service.mesh.a.b.cluster.local", DNS_TYPE_A, -1, false);
	is_int(DNS_RCODE(r.h.flags), DNS_RCODE_REFUSED, "another suffix: as before");
	qset.nsearch = 0;
	ask(&r, "user-service.mesh.default.svc.cluster.local", DNS_TYPE_A, -1, false);
	is_int(DNS_RCODE(r.h.flags), DNS_RCODE_REFUSED, "search-path off: REFUSED");

	uint8_t q[512], out[4096];
	size_t ql = make_query(q, sizeof(q), "mesh", DNS_TYPE_SOA, 0, 1232, 1);
	int n = answer(q, ql, out, sizeof(out), false);
	ok(n > 12 && DNS_RCODE(out[3]) == 0 && out[n - 11 + 5] == 1,
	   "EDNS version 1: BADVERS (extended rcode 1 << 4)");

	/* A reload keeps serials moving forward. */
	struct zone_snapshot *snap2;
	ok(zone_build(cfg, zone_current(), NULL, NULL, NULL, NULL, &snap2, err, sizeof(err)) == 0, "rebuild");
	is_int(snap2->zones[0].serial, 8, "serial advances past the previous one");
	is_int(snap2->generation, 2, "generation counts");
	zone_publish(snap2);

	query_worker_free(qw);
	zone_shutdown();
	config_free(cfg);
	bstate_free(states);
	return done_testing();
}

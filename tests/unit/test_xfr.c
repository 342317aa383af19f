/* test_xfr.c -- transfers (xfr.c) through xfr_answer, as request.c hands
 * them over: AXFR over TCP as a stream of framed messages
 * starting and ending with the SOA and holding every record of the zone;
 * IXFR from the previous serial as the difference (RFC 1995 condensed);
 * IXFR over UDP; the ACL (REFUSED from elsewhere); a keyed zone refusing
 * an unsigned request. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "request.h"
#include "tap.h"
#include "dns/wire.h"
#include "xfr.h"
#include "zone.h"

#define HEAD                                                                                       \
	"keys: [{name: k, algorithm: hmac-sha256, "                                                \
	"secret: \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"}]\n"                             \
	"zones:\n"                                                                                 \
	"  - name: mesh\n"                                                                         \
	"    soa: {serial: 100}\n"                                                                 \
	"    transfer: {allow: [127.0.0.0/8]}\n"                                                   \
	"    records:\n"                                                                           \
	"      - {name: ns1, type: A, data: 127.0.0.1}\n"
#define TAIL                                                                                       \
	"    services:\n"                                                                          \
	"      - {name: web, ports: {http: 80}, backends: [10.0.0.1, 10.0.0.2]}\n"                 \
	"  - name: keyed.test\n"                                                                   \
	"    transfer: {keys: [k]}\n"                                                              \
	"    records: [{name: a, type: A, data: 192.0.2.1}]\n"

static const char y1[] = HEAD TAIL;
static const char y2[] = HEAD "      - {name: new, type: A, data: 192.0.2.7}\n" TAIL;

static struct xfr *xfr;

static size_t query(uint8_t *buf, const char *name, uint16_t type, uint32_t ixfr_serial)
{
	struct wire_writer w;
	uint8_t n[DNS_NAME_MAX];
	size_t l;
	wire_name_from_text(name, n, &l);
	wire_writer_init(&w, buf, 512);
	struct dns_header h = { .id = 5, .qdcount = 1, .nscount = type == DNS_TYPE_IXFR };
	wire_write_header(&w, &h);
	wire_write_name(&w, n, l, false);
	wire_write_u16(&w, type);
	wire_write_u16(&w, DNS_CLASS_IN);
	if (type == DNS_TYPE_IXFR) {
		uint8_t rd[64];
		size_t m = 0;
		rd[m++] = 0;          /* mname and rname: the root */
		rd[m++] = 0;
		uint32_t v[5] = { ixfr_serial, 3600, 600, 86400, 30 };
		for (int i = 0; i < 5; i++)
			for (int b = 3; b >= 0; b--)
				rd[m++] = (uint8_t)(v[i] >> (8 * b));
		wire_write_name(&w, n, l, false);
		wire_write_u16(&w, DNS_TYPE_SOA);
		wire_write_u16(&w, DNS_CLASS_IN);
		wire_write_u32(&w, 0);
		wire_write_u16(&w, (uint16_t)m);
		wire_write_bytes(&w, rd, m);
	}
	return w.pos;
}

/* What a stream holds: messages, answer records, SOAs and their serials
 * in order, and whether some record is an A of 192.0.2.7 (the change). */
struct seen {
	unsigned msgs, rrs, soas;
	uint32_t serial[8];
	bool has_new;
	bool ok;
};

static struct seen walk(const uint8_t *s, size_t n)
{
	struct seen v = { .ok = true };
	size_t off = 0;
	while (off + 2 <= n && v.ok) {
		size_t len = (size_t)s[off] << 8 | s[off + 1];
		const uint8_t *m = s + off + 2;
		off += 2 + len;
		if (off > n) {
			v.ok = false;
			break;
		}
		struct wire_reader r;
		struct dns_header h;
		struct dns_question q;
		wire_reader_init(&r, m, len);
		wire_read_header(&r, &h);
		for (unsigned i = 0; i < h.qdcount; i++)
			wire_read_question(&r, &q);
		v.msgs++;
		for (unsigned i = 0; i < h.ancount && !r.err; i++) {
			struct dns_rr rr;
			wire_read_rr(&r, &rr);
			v.rrs++;
			if (rr.type == DNS_TYPE_SOA && rr.rdlen >= 20 && v.soas < 8)
				v.serial[v.soas++] = (uint32_t)m[rr.rdoff + rr.rdlen - 20] << 24 |
				                     (uint32_t)m[rr.rdoff + rr.rdlen - 19] << 16 |
				                     (uint32_t)m[rr.rdoff + rr.rdlen - 18] << 8 |
				                     m[rr.rdoff + rr.rdlen - 17];
			if (rr.type == DNS_TYPE_A && rr.rdlen == 4 &&
			    memcmp(m + rr.rdoff, "\xc0\x00\x02\x07", 4) == 0)
				v.has_new = true;
		}
		v.ok = v.ok && !r.err;
	}
	v.ok = v.ok && off == n;
	return v;
}

static int process(const uint8_t *q, size_t len, const char *from, bool tcp, uint8_t *resp,
                   uint8_t **stream, size_t *slen)
{
	struct sockaddr_in peer = { .sin_family = AF_INET };
	inet_pton(AF_INET, from, &peer.sin_addr);
	struct request r = { .msg = q, .len = len, .peer = (struct sockaddr *)&peer, .tcp = tcp };
	*stream = NULL;
	*slen = 0;
	if (wire_parse_query(q, len, &r.q) != WIRE_PARSE_OK)
		return -1;
	r.snap = zone_current();
	r.limit = request_limit(&r.q, tcp, r.snap->udp_max_payload);
	return xfr_answer(xfr, &r, resp, 65535, stream, slen);
}

int main(void)
{
	struct config *c1, *c2;
	struct config_error ce;
	struct zone_snapshot *s1, *s2;
	char err[256];
	if (config_load_string(y1, sizeof(y1) - 1, "t.yaml", &c1, &ce) ||
	    config_load_string(y2, sizeof(y2) - 1, "t.yaml", &c2, &ce) ||
	    zone_build(c1, NULL, NULL, NULL, NULL, NULL, &s1, err, sizeof(err)) ||
	    !(xfr = xfr_new(err, sizeof(err))) || xfr_configure(xfr, c1)) {
		diag("setup: %s %s", ce.msg, err);
		return 1;
	}
	zone_publish(s1);
	xfr_published(xfr, s1, NULL);
	if (zone_build(c2, s1, NULL, NULL, NULL, NULL, &s2, err, sizeof(err)))
		return 1;
	struct zone_snapshot *prev = zone_swap(s2);
	xfr_published(xfr, s2, prev);
	zone_free(prev);

	static uint8_t resp[65535];
	uint8_t q[512], *st;
	size_t ql, sl;

	ql = query(q, "mesh.", DNS_TYPE_AXFR, 0);
	int n = process(q, ql, "127.0.0.1", true, resp, &st, &sl);
	struct seen v = st ? walk(st, sl) : (struct seen){ 0 };
	ok(n == XFR_STREAM && v.ok, "AXFR over TCP: a stream of framed messages");
	ok(v.soas == 2 && v.serial[0] == 101 && v.serial[1] == 101,
	   "starting and ending with the SOA of serial 101");
	/* SOA, NS, ns1 A, new A, web A x2, web SRV x2, two target A: 10 + SOA. */
	ok(v.rrs >= 10 && v.has_new, "every record, the new one too (%u records)", v.rrs);
	free(st);

	ql = query(q, "mesh.", DNS_TYPE_IXFR, 100);
	n = process(q, ql, "127.0.0.1", true, resp, &st, &sl);
	v = st ? walk(st, sl) : (struct seen){ 0 };
	ok(n == XFR_STREAM && v.ok && v.soas == 4 && v.serial[0] == 101 && v.serial[1] == 100 &&
	   v.serial[2] == 101 && v.serial[3] == 101 && v.has_new && v.rrs == 5,
	   "IXFR from 100: SOA 101, then -SOA 100, +SOA 101 with the new A, SOA 101 (%u records)",
	   v.rrs);
	free(st);

	ql = query(q, "mesh.", DNS_TYPE_IXFR, 101);
	n = process(q, ql, "127.0.0.1", true, resp, &st, &sl);
	v = st ? walk(st, sl) : (struct seen){ 0 };
	ok(n == XFR_STREAM && v.rrs == 1 && v.soas == 1, "IXFR from the current serial: the SOA alone");
	free(st);

	ql = query(q, "mesh.", DNS_TYPE_IXFR, 100);
	n = process(q, ql, "127.0.0.1", false, resp, &st, &sl);
	ok(n > 0 && !st && (resp[2] & 0x80), "IXFR over UDP: one answer in the buffer (%d bytes)", n);

	ql = query(q, "mesh.", DNS_TYPE_AXFR, 0);
	n = process(q, ql, "192.0.2.50", true, resp, &st, &sl);
	ok(n > 0 && (resp[3] & 0xf) == DNS_RCODE_REFUSED && !st, "AXFR from outside the ACL: REFUSED");
	ql = query(q, "keyed.test.", DNS_TYPE_AXFR, 0);
	n = process(q, ql, "127.0.0.1", true, resp, &st, &sl);
	ok(n > 0 && (resp[3] & 0xf) == DNS_RCODE_REFUSED && !st,
	   "AXFR of a keyed zone without a TSIG: REFUSED");
	ql = query(q, "nosuch.test.", DNS_TYPE_AXFR, 0);
	n = process(q, ql, "127.0.0.1", true, resp, &st, &sl);
	ok(n > 0 && (resp[3] & 0xf) == DNS_RCODE_NOTAUTH && !st, "AXFR of a zone not ours: NOTAUTH");

	xfr_free(xfr);
	zone_shutdown();
	config_free(c1);
	config_free(c2);
	return done_testing();
}

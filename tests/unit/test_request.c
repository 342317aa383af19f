/* test_request.c -- the request path (request.c) as a server thread runs
 * it: what is dropped, what gets FORMERR or NOTIMP before any stage, the
 * dispatch to query, transfer and UPDATE, TSIG (a signed query answered
 * and signed, a bad key NOTAUTH, an answer that no longer fits with its
 * signature truncated), and the counting of every request. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "metrics.h"
#include "request.h"
#include "server.h"
#include "tap.h"
#include "util/textbuf.h"
#include "update.h"
#include "dns/wire.h"
#include "xfr.h"
#include "zone.h"

static const char yaml[] =
	"keys: [{name: k, algorithm: hmac-sha256, "
	"secret: \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"}]\n"
	"zones:\n"
	"  - name: mesh\n"
	"    records: [{name: ns1, type: A, data: 127.0.0.1}]\n"
	"    services:\n"
	"      - {name: web, ports: {http: 80}, backends: [10.0.0.1, 10.0.0.2]}\n"
	"      - name: big\n"
	"        ports: {http: 80}\n"
	"        backends: [10.1.0.1, 10.1.0.2, 10.1.0.3, 10.1.0.4, 10.1.0.5, 10.1.0.6, 10.1.0.7,\n"
	"                   10.1.0.8, 10.1.0.9, 10.1.0.10, 10.1.0.11, 10.1.0.12, 10.1.0.13,\n"
	"                   10.1.0.14, 10.1.0.15, 10.1.0.16, 10.1.0.17, 10.1.0.18, 10.1.0.19,\n"
	"                   10.1.0.20, 10.1.0.21, 10.1.0.22, 10.1.0.23, 10.1.0.24, 10.1.0.25,\n"
	"                   10.1.0.26, 10.1.0.27, 10.1.0.28, 10.1.0.29, 10.1.0.30]\n"
	"  - name: keyed.test\n"
	"    transfer: {keys: [k]}\n"
	"    records: [{name: a, type: A, data: 192.0.2.1}]\n";

static struct request_worker *w;
static struct update_queue *uq;
static struct xfr *xfr;
static struct config *cfg;
static uint8_t resp[65535];

static size_t query(uint8_t *buf, size_t cap, const char *name, uint16_t type, unsigned opcode)
{
	struct wire_writer wr;
	uint8_t n[DNS_NAME_MAX];
	size_t l;
	wire_name_from_text(name, n, &l);
	wire_writer_init(&wr, buf, cap);
	struct dns_header h = { .id = 0x4242, .flags = (uint16_t)(opcode << 11 | DNS_FLAG_RD),
	                        .qdcount = 1 };
	wire_write_header(&wr, &h);
	wire_write_name(&wr, n, l, false);
	wire_write_u16(&wr, type);
	wire_write_u16(&wr, DNS_CLASS_IN);
	return wr.err ? 0 : wr.pos;
}

static int process(const uint8_t *q, size_t len, bool tcp)
{
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	struct server_peer sp = { .addr = (struct sockaddr *)&peer, .addrlen = sizeof(peer),
	                          .tcp = tcp };
	memset(resp, 0, 64);
	return request_process(w, q, len, resp, sizeof(resp), &sp);
}

static unsigned rcode(void) { return resp[3] & 0xf; }
static unsigned qdcount(void) { return (unsigned)resp[4] << 8 | resp[5]; }
static unsigned ancount(void) { return (unsigned)resp[6] << 8 | resp[7]; }
static unsigned arcount(void) { return (unsigned)resp[10] << 8 | resp[11]; }

/* Where the last record of resp[0..n) starts, if it is a TSIG RR, else 0. */
static size_t tsig_at(int n)
{
	struct wire_reader r;
	struct dns_header h;
	wire_reader_init(&r, resp, (size_t)n);
	wire_read_header(&r, &h);
	for (unsigned i = 0; i < h.qdcount; i++) {
		struct dns_question q;
		wire_read_question(&r, &q);
	}
	size_t last = 0;
	struct dns_rr rr = { 0 };
	for (unsigned i = 0; i < (unsigned)h.ancount + h.nscount + h.arcount && !r.err; i++) {
		last = r.pos;
		wire_read_rr(&r, &rr);
	}
	return !r.err && r.pos == (size_t)n && rr.type == DNS_TYPE_TSIG ? last : 0;
}

static double metric(const char *name)
{
	struct textbuf tb = { 0 };
	metrics_render(&tb);
	char *t = tb_take(&tb, NULL);
	double v = -1;
	size_t n = strlen(name);
	for (const char *p = t; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, name, n) == 0 && p[n] == ' ')
			v = atof(p + n + 1);
	free(t);
	return v;
}

static void test_dispatch(void)
{
	uint8_t q[512];
	size_t ql = query(q, sizeof(q), "web.mesh.", DNS_TYPE_A, DNS_OPCODE_QUERY);
	int n = process(q, ql, false);
	ok(n > 12 && rcode() == DNS_RCODE_NOERROR && ancount() == 2 && (resp[2] & 0x04),
	   "a QUERY: answered by query.c, authoritative, two A records");

	q[2] |= DNS_FLAG_QR >> 8;
	is_int(process(q, ql, false), -1, "a response: dropped");
	is_int(process(q, 5, false), -1, "shorter than a header: dropped");

	ql = query(q, sizeof(q), "web.mesh.", DNS_TYPE_A, DNS_OPCODE_QUERY);
	q[5] = 2;
	n = process(q, ql, false);
	ok(n == 12 && rcode() == DNS_RCODE_FORMERR && qdcount() == 0,
	   "two questions in the count, one present: FORMERR without a question");

	ql = query(q, sizeof(q), "web.mesh.", DNS_TYPE_A, DNS_OPCODE_QUERY);
	q[5] = 0;
	n = process(q, 12, false);
	ok(n == 12 && rcode() == DNS_RCODE_FORMERR, "a QUERY without a question: FORMERR");

	/* An A record in the authority section of a plain query. */
	static const uint8_t rr[] = { 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 192, 0, 2, 1 };
	ql = query(q, sizeof(q), "web.mesh.", DNS_TYPE_A, DNS_OPCODE_QUERY);
	q[9] = 1;
	memcpy(q + ql, rr, sizeof(rr));
	n = process(q, ql + sizeof(rr), false);
	ok(n > 12 && rcode() == DNS_RCODE_FORMERR && qdcount() == 1,
	   "authority records in a QUERY: FORMERR, the question echoed");

	ql = query(q, sizeof(q), "mesh.", DNS_TYPE_SOA, DNS_OPCODE_NOTIFY);
	n = process(q, ql, false);
	ok(n > 12 && rcode() == DNS_RCODE_NOTIMP && qdcount() == 1 && !(resp[2] & 0x01),
	   "NOTIFY: NOTIMP (a primary only), question echoed, RD not echoed");
	ql = query(q, sizeof(q), "mesh.", DNS_TYPE_SOA, 2 /* STATUS */);
	n = process(q, ql, false);
	ok(n > 12 && rcode() == DNS_RCODE_NOTIMP, "opcode 2: NOTIMP");

	ql = query(q, sizeof(q), "mesh.", DNS_TYPE_SOA, DNS_OPCODE_UPDATE);
	n = process(q, ql, false);
	ok(n > 12 && rcode() == DNS_RCODE_REFUSED, "an unsigned UPDATE: REFUSED by update.c");

	ql = query(q, sizeof(q), "mesh.", DNS_TYPE_AXFR, DNS_OPCODE_QUERY);
	n = process(q, ql, false);
	ok(n > 12 && rcode() == DNS_RCODE_REFUSED, "AXFR over UDP: REFUSED by xfr.c");
	ql = query(q, sizeof(q), "nosuch.", DNS_TYPE_AXFR, DNS_OPCODE_QUERY);
	n = process(q, ql, true);
	ok(n > 12 && rcode() == DNS_RCODE_NOTAUTH, "AXFR of a zone not ours over TCP: NOTAUTH");
	ql = query(q, sizeof(q), "mesh.", DNS_TYPE_AXFR, DNS_OPCODE_QUERY);
	n = process(q, ql, true);
	ok(n > 12 && rcode() == DNS_RCODE_REFUSED, "AXFR of a zone without transfer: REFUSED");
}

static size_t sign(uint8_t *q, size_t ql, size_t cap, const struct tsig_key *key,
                   struct tsig_ctx *ctx)
{
	tsig_ctx_init(ctx, key);
	int n = tsig_sign(q, ql, cap, ctx, (uint64_t)time(NULL));
	return n > 0 ? (size_t)n : 0;
}

static void test_tsig(void)
{
	uint8_t q[1024];
	struct tsig_ctx ctx;
	size_t ql = query(q, sizeof(q), "web.mesh.", DNS_TYPE_A, DNS_OPCODE_QUERY);
	ql = sign(q, ql, sizeof(q), &cfg->keys[0], &ctx);
	int n = process(q, ql, false);
	size_t at = n > 0 ? tsig_at(n) : 0;
	ok(n > 12 && rcode() == DNS_RCODE_NOERROR && ancount() == 2 && at,
	   "a signed QUERY: answered, its TSIG RR last");
	ok(at && tsig_verify_response(resp, (size_t)n, at, (uint64_t)time(NULL), &ctx) == 0,
	   "the answer's TSIG verifies against the request's MAC");
	is_int(arcount(), 1, "the request's TSIG RR is not echoed: ARCOUNT is ours alone");

	struct tsig_key other = cfg->keys[0];
	other.secret[0] ^= 1;
	ql = query(q, sizeof(q), "web.mesh.", DNS_TYPE_A, DNS_OPCODE_QUERY);
	ql = sign(q, ql, sizeof(q), &other, &ctx);
	n = process(q, ql, false);
	ok(n > 12 && rcode() == DNS_RCODE_NOTAUTH && ancount() == 0 && tsig_at(n),
	   "a bad signature: NOTAUTH with a TSIG RR (BADSIG), no answer");

	/* 30 backends fill a 512-byte answer: no room is left for the TSIG RR. */
	ql = query(q, sizeof(q), "big.mesh.", DNS_TYPE_A, DNS_OPCODE_QUERY);
	ql = sign(q, ql, sizeof(q), &cfg->keys[0], &ctx);
	n = process(q, ql, false);
	ok(n > 12 && n <= 512 && (resp[2] & 0x02) && ancount() == 0 && tsig_at(n) &&
	   tsig_verify_response(resp, (size_t)n, tsig_at(n), (uint64_t)time(NULL), &ctx) == 0,
	   "a signed answer that no longer fits 512 bytes: TC, no records, signed (%d bytes)", n);
	n = process(q, ql, true);
	ok(n > 512 && !(resp[2] & 0x02) && ancount() == 30 && tsig_at(n),
	   "over TCP the same request gets all 30 records, signed");

	ql = query(q, sizeof(q), "keyed.test.", DNS_TYPE_AXFR, DNS_OPCODE_QUERY);
	n = process(q, ql, true);
	ok(n > 12 && rcode() == DNS_RCODE_REFUSED, "AXFR of a keyed zone unsigned: REFUSED");
	ql = sign(q, ql, sizeof(q), &cfg->keys[0], &ctx);
	n = process(q, ql, true);
	is_int(n, SERVER_STREAM, "signed with its key: streamed (verified once, by request.c)");

	ql = query(q, sizeof(q), "mesh.", DNS_TYPE_SOA, DNS_OPCODE_UPDATE);
	ql = sign(q, ql, sizeof(q), &cfg->keys[0], &ctx);
	is_int(process(q, ql, false), SERVER_DEFERRED,
	       "a signed UPDATE: queued for the control thread");
	uint64_t queued = 0;
	ok(read(update_queue_fd(uq), &queued, sizeof(queued)) == sizeof(queued) && queued == 1,
	   "the control thread is woken (its eventfd counts one)");
}

static void test_counting(void)
{
	uint8_t q[512];
	double req0 = metric("dnsd_dns_requests_total{zone=\".\",proto=\"udp\",type=\"SRV\"}");
	double drop0 = metric("dnsd_dns_dropped_total");
	size_t ql = query(q, sizeof(q), "_http._tcp.web.mesh.", DNS_TYPE_SRV, DNS_OPCODE_QUERY);
	process(q, ql, false);
	process(q, ql, false);
	q[2] |= DNS_FLAG_QR >> 8;
	process(q, ql, false);
	is_int(metric("dnsd_dns_requests_total{zone=\".\",proto=\"udp\",type=\"SRV\"}") -
	       (req0 < 0 ? 0 : req0), 2, "two SRV requests counted with their type");
	is_int(metric("dnsd_dns_dropped_total") - (drop0 < 0 ? 0 : drop0), 1,
	       "the response sent to us counted as dropped");
}

int main(void)
{
	struct config_error ce;
	struct zone_snapshot *snap;
	char err[256];
	if (config_load_string(yaml, sizeof(yaml) - 1, "t.yaml", &cfg, &ce) ||
	    zone_build(cfg, NULL, NULL, NULL, NULL, NULL, &snap, err, sizeof(err)) ||
	    !(xfr = xfr_new(err, sizeof(err))) || xfr_configure(xfr, cfg) ||
	    !(uq = update_queue_new())) {
		diag("setup: %s %s", ce.msg, err);
		return 1;
	}
	zone_publish(snap);
	struct request_settings rs = { .updates = uq, .xfr = xfr, .seed = 1 };
	struct request_ctx *rc = request_ctx_new(&rs);
	if (!rc || request_configure(rc, cfg) || !(w = request_worker_new(rc, 0)))
		return 1;
	test_dispatch();
	test_tsig();
	test_counting();
	request_worker_free(w);
	request_ctx_free(rc);
	update_queue_free(uq);
	xfr_free(xfr);
	zone_shutdown();
	config_free(cfg);
	return done_testing();
}

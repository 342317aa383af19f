/* fuzz_request.c -- the request path (request.c) for any bytes, as a
 * server thread meets them, over UDP and then TCP: parsing, TSIG with
 * the configured keys, dispatch (QUERY in IN and CH, AXFR/IXFR against
 * an open and a keyed zone with a difference to send, UPDATE queued for
 * the control thread, NOTIFY and other opcodes), cookies and rate
 * limiting, signing, counting. Every answer must be a well-formed
 * response no larger than the transport allows; a transfer stream is
 * handed to the server (none here: it is freed). */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "guard.h"
#include "util/log.h"
#include "query.h"
#include "request.h"
#include "server.h"
#include "update.h"
#include "dns/wire.h"
#include "xfr.h"
#include "zone.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Cookies with a fixed secret, and rate limiting that the fuzzer's
 * stream of queries from 127.0.0.1 runs into: answers, slips and drops.
 * The keys are those of gen_corpus.py's signed seeds. */
#define YAML_HEAD                                                                                  \
	"rrl: {responses-per-second: 100, window: 2, slip: 2, exempt: []}\n"                       \
	"search-path: ['*.svc.cluster.local', cluster.local]\n"                                    \
	"keys:\n"                                                                                  \
	"  - {name: k, algorithm: hmac-sha256, secret: "                                           \
	"\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"}\n"                                      \
	"  - {name: key.mesh, algorithm: hmac-sha256, secret: c2VjcmV0c2VjcmV0c2VjcmV0}\n"         \
	"zones:\n"                                                                                 \
	"  - name: mesh\n"                                                                         \
	"    soa: {serial: 100}\n"                                                                 \
	"    ns: [ns1]\n"                                                                          \
	"    transfer: {allow: [127.0.0.0/8]}\n"                                                   \
	"    records:\n"                                                                           \
	"      - {name: ns1, type: A, data: 127.0.0.1}\n"                                          \
	"      - {name: www, type: CNAME, data: user-service}\n"                                   \
	"      - {name: loop, type: CNAME, data: loop2}\n"                                         \
	"      - {name: loop2, type: CNAME, data: loop}\n"                                         \
	"      - {name: '@', type: MX, data: '10 ns1'}\n"                                          \
	"      - {name: txt, type: TXT, data: '\"a\" \"b\"'}\n"                                     \
	"      - {name: sub, type: NS, data: ns.sub}\n"                                            \
	"      - {name: ns.sub, type: A, data: 127.0.0.53}\n"
#define YAML_TAIL                                                                                  \
	"    services:\n"                                                                          \
	"      - name: user-service\n"                                                             \
	"        ports: {http: 5000, grpc: {port: 9000, proto: udp}}\n"                            \
	"        backends: [127.0.0.11, 127.0.0.12, 'fd00::1', {address: 127.0.0.13, name: u3}]\n" \
	"      - name: big\n"                                                                      \
	"        ports: {http: 80}\n"                                                              \
	"        backends: [127.0.1.1, 127.0.1.2, 127.0.1.3, 127.0.1.4, 127.0.1.5, 127.0.1.6,\n"   \
	"                   127.0.1.7, 127.0.1.8, 127.0.1.9, 127.0.1.10, 127.0.1.11, 127.0.1.12,\n" \
	"                   127.0.1.13, 127.0.1.14, 127.0.1.15, 127.0.1.16, 127.0.1.17, 127.0.1.18,\n" \
	"                   127.0.1.19, 127.0.1.20, 127.0.1.21, 127.0.1.22, 127.0.1.23, 127.0.1.24,\n" \
	"                   127.0.1.25, 127.0.1.26, 127.0.1.27, 127.0.1.28, 127.0.1.29, 127.0.1.30,\n" \
	"                   127.0.1.31, 127.0.1.32, 127.0.1.33, 127.0.1.34, 127.0.1.35]\n"        \
	"  - name: keyed.test\n"                                                                   \
	"    transfer: {keys: [k]}\n"                                                              \
	"    records:\n"                                                                           \
	"      - {name: a, type: AAAA, data: '::1'}\n"

static const char yaml1[] = YAML_HEAD YAML_TAIL;
/* The second snapshot: one record more, so IXFR from 100 has a difference. */
static const char yaml2[] = YAML_HEAD "      - {name: new, type: A, data: 192.0.2.7}\n" YAML_TAIL;

static struct config *cfg1, *cfg2;
static struct request_ctx *rc;
static struct request_worker *w;
static struct update_queue *uq;
static struct xfr *xfr;

static void setup(void)
{
	struct config_error cerr;
	struct zone_snapshot *s1, *s2;
	char err[256];
	log_set_level(LOG_LEVEL_ERR);
	if (config_load_string(yaml1, sizeof(yaml1) - 1, "fuzz.yaml", &cfg1, &cerr) != 0 ||
	    config_load_string(yaml2, sizeof(yaml2) - 1, "fuzz.yaml", &cfg2, &cerr) != 0 ||
	    zone_build(cfg1, NULL, NULL, NULL, NULL, NULL, &s1, err, sizeof(err)) != 0)
		abort();
	zone_publish(s1);
	if (!(xfr = xfr_new(err, sizeof(err))) || xfr_configure(xfr, cfg2) != 0)
		abort();
	xfr_published(xfr, s1, NULL);
	if (zone_build(cfg2, s1, NULL, NULL, NULL, NULL, &s2, err, sizeof(err)) != 0)
		abort();
	struct zone_snapshot *prev = zone_swap(s2);
	xfr_published(xfr, s2, prev);
	zone_free(prev);              /* single-threaded: no reader holds it */
	memset(cfg2->cookies.secret, 0x5a, sizeof(cfg2->cookies.secret));
	cfg2->cookies.have_secret = true;
	struct guard *g = guard_new();
	if (!g || guard_configure(g, cfg2) != 0)
		abort();
	if (!(uq = update_queue_new()))
		abort();
	struct request_settings rs = {
		.query = { .nsearch = cfg2->nsearch, .guard = g },
		.updates = uq,
		.xfr = xfr,
		.seed = 1,
	};
	memcpy(rs.query.search, cfg2->search, cfg2->nsearch * sizeof(*cfg2->search));
	rc = request_ctx_new(&rs);
	if (!rc || request_configure(rc, cfg2) != 0 || !(w = request_worker_new(rc, 0)))
		abort();
}

/* A response must parse as a message with every record inside it. */
static void check_response(const uint8_t *req, size_t reqlen, const uint8_t *resp, int n, size_t limit)
{
	if (n == QUERY_DROP)
		return;
	if (n < DNS_HEADER_LEN || (size_t)n > limit)
		abort();
	if (reqlen >= 2 && memcmp(req, resp, 2) != 0)
		abort();
	if (!(resp[2] & 0x80))
		abort();
	struct wire_reader r;
	struct dns_header h;
	wire_reader_init(&r, resp, (size_t)n);
	wire_read_header(&r, &h);
	for (unsigned i = 0; i < h.qdcount; i++) {
		struct dns_question q;
		wire_read_question(&r, &q);
	}
	unsigned total = (unsigned)h.ancount + h.nscount + h.arcount;
	for (unsigned i = 0; i < total; i++) {
		struct dns_rr rr;
		wire_read_rr(&r, &rr);
	}
	if (r.err || wire_remaining(&r) != 0)
		abort();
}

/* One pass of data over one transport. */
static int one(const uint8_t *data, size_t size, bool tcp, uint8_t *resp, size_t cap)
{
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	/* UDP as the server hands it over: with its batch's receive time
	 * (the batch is timed after it, not each request). */
	struct server_peer sp = { .addr = (struct sockaddr *)&peer, .addrlen = sizeof(peer),
	                          .tcp = tcp, .fd = -1, .recv_ns = tcp ? 0 : 1 };
	int n = request_process(w, data, size, resp, cap, &sp);
	if (n == SERVER_DEFERRED) {
		/* An UPDATE queued (the forwarder is off): drained (REFUSED, to
		 * no socket) so the queue starts empty for the next input. */
		update_process(uq, NULL, NULL);
		return n;
	}
	if (n == SERVER_STREAM) {
		if (!tcp)
			abort();
		return n;
	}
	check_response(data, size, resp, n, cap);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t resp[65535];
	if (!w)
		setup();
	/* UDP answers stay within the largest payload we ever allow. */
	int n = one(data, size, false, resp, 4096);
	if (n > 512) {
		struct dns_query q;
		if (wire_parse_query(data, size, &q) == WIRE_PARSE_OK && !q.edns.present)
			abort();
	}
	one(data, size, true, resp, sizeof(resp));
	return 0;
}

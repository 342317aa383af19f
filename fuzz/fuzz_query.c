/* fuzz_query.c -- the whole query path (parse, lookup, balance, encode)
 * against a fixed snapshot. Checks that every response is a well-formed
 * message no larger than the transport allows. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "guard.h"
#include "query.h"
#include "wire.h"
#include "zone.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Cookies with a fixed secret, and rate limiting that the fuzzer's
 * stream of queries from 127.0.0.1 runs into: answers, slips and drops. */
static const char yaml[] =
	"rrl: {responses-per-second: 100, window: 2, slip: 2, exempt: []}\n"
	"search-path: ['*.svc.cluster.local', cluster.local]\n"
	"zones:\n"
	"  - name: mesh\n"
	"    ns: [ns1]\n"
	"    records:\n"
	"      - {name: ns1, type: A, data: 127.0.0.1}\n"
	"      - {name: www, type: CNAME, data: user-service}\n"
	"      - {name: loop, type: CNAME, data: loop2}\n"
	"      - {name: loop2, type: CNAME, data: loop}\n"
	"      - {name: '@', type: MX, data: '10 ns1'}\n"
	"      - {name: txt, type: TXT, data: '\"a\" \"b\"'}\n"
	"      - {name: sub, type: NS, data: ns.sub}\n"
	"      - {name: ns.sub, type: A, data: 127.0.0.53}\n"
	"    services:\n"
	"      - name: user-service\n"
	"        ports: {http: 5000, grpc: {port: 9000, proto: udp}}\n"
	"        backends: [127.0.0.11, 127.0.0.12, 'fd00::1', {address: 127.0.0.13, name: u3}]\n"
	"      - name: big\n"
	"        ports: {http: 80}\n"
	"        backends: [127.0.1.1, 127.0.1.2, 127.0.1.3, 127.0.1.4, 127.0.1.5, 127.0.1.6,\n"
	"                   127.0.1.7, 127.0.1.8, 127.0.1.9, 127.0.1.10, 127.0.1.11, 127.0.1.12,\n"
	"                   127.0.1.13, 127.0.1.14, 127.0.1.15, 127.0.1.16, 127.0.1.17, 127.0.1.18,\n"
	"                   127.0.1.19, 127.0.1.20, 127.0.1.21, 127.0.1.22, 127.0.1.23, 127.0.1.24,\n"
	"                   127.0.1.25, 127.0.1.26, 127.0.1.27, 127.0.1.28, 127.0.1.29, 127.0.1.30,\n"
	"                   127.0.1.31, 127.0.1.32, 127.0.1.33, 127.0.1.34, 127.0.1.35]\n"
	"  - name: other.test\n"
	"    records:\n"
	"      - {name: a, type: AAAA, data: '::1'}\n";

static struct query_worker *qw;
static struct config *cfg;

static void setup(void)
{
	struct config_error cerr;
	struct zone_snapshot *snap;
	char err[256];
	if (config_load_string(yaml, sizeof(yaml) - 1, "fuzz.yaml", &cfg, &cerr) != 0 ||
	    zone_build(cfg, NULL, NULL, NULL, NULL, NULL, &snap, err, sizeof(err)) != 0)
		abort();
	zone_publish(snap);
	memset(cfg->cookies.secret, 0x5a, sizeof(cfg->cookies.secret));
	cfg->cookies.have_secret = true;
	if (guard_configure(cfg) != 0)
		abort();
	query_set_search_path(cfg->search, cfg->nsearch);
	qw = query_worker_new(0, 1);
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t resp[65535];
	if (!qw)
		setup();
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	int n = query_process(qw, data, size, resp, sizeof(resp), (struct sockaddr *)&peer, false);
	/* UDP answers stay within the largest payload we ever allow. */
	check_response(data, size, resp, n, 4096);
	if (n > 512) {
		struct dns_query q;
		if (wire_parse_query(data, size, &q) == WIRE_PARSE_OK && !q.edns.present)
			abort();
	}
	n = query_process(qw, data, size, resp, sizeof(resp), (struct sockaddr *)&peer, true);
	check_response(data, size, resp, n, sizeof(resp));
	return 0;
}

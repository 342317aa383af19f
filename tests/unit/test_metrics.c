/* test_metrics.c -- textbuf (growth, JSON escaping), metrics (per-worker
 * counting from real request/response bytes, Prometheus rendering) and
 * status (JSON and backend gauges from a built snapshot). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "metrics.h"
#include "server.h"
#include "status.h"
#include "tap.h"
#include "util/textbuf.h"
#include "dns/wire.h"
#include "zone.h"

static void test_textbuf(void)
{
	struct textbuf tb = { 0 };
	for (int i = 0; i < 5000; i++)
		tb_printf(&tb, "%04d,", i);
	is_int(tb.len, 25000, "5000 appends grow the buffer");
	ok(strncmp(tb.p + 24995, "4999,", 5) == 0, "the last one is at the end");
	char big[1000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	tb_printf(&tb, "%s", big);
	is_int(tb.len, 25999, "a piece longer than the small buffer");
	tb_free(&tb);
	tb_json_str(&tb, "a\"b\\c\n\x01\xc3");
	size_t len;
	char *s = tb_take(&tb, &len);
	ok(s && strcmp(s, "\"a\\\"b\\\\c\\u000a\\u0001\\u00c3\"") == 0, "JSON escaping: %s", s);
	ok(tb.p == NULL && tb.len == 0, "take resets the buffer");
	free(s);
}

static size_t query(uint8_t *buf, const char *name, uint16_t type)
{
	struct wire_writer w;
	uint8_t wn[DNS_NAME_MAX];
	size_t wl;
	wire_name_from_text(name, wn, &wl);
	wire_writer_init(&w, buf, 512);
	struct dns_header h = { .id = 7, .qdcount = 1 };
	wire_write_header(&w, &h);
	wire_write_name(&w, wn, wl, false);
	wire_write_u16(&w, type);
	wire_write_u16(&w, DNS_CLASS_IN);
	return w.pos;
}

/* The value of the line "name value" in text, or -1. */
static double value(const char *text, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, name, n) == 0 && p[n] == ' ')
			return atof(p + n + 1);
	return -1;
}

/* name's value in a fresh rendering; -1 if absent or not rendered. */
static double value_now(const char *name)
{
	struct textbuf tb = { 0 };
	metrics_render(&tb);
	char *t = tb_take(&tb, NULL);
	double v = t ? value(t, name) : -1;
	free(t);
	return v;
}

/* The question of the request req[0..len), as request.c hands it over. */
static const struct dns_question *question(const uint8_t *req, size_t len)
{
	static struct dns_query q;
	return wire_parse_query(req, len, &q) == WIRE_PARSE_OK && q.hdr.qdcount == 1 ? &q.q : NULL;
}

static void test_metrics(void)
{
	struct metrics_worker *a = metrics_worker_new(), *b = metrics_worker_new();
	ok(a && b, "two worker blocks");
	uint8_t req[512], resp[64];
	size_t ql = query(req, "x.mesh.", DNS_TYPE_SRV);
	memset(resp, 0, sizeof(resp));
	resp[2] = 0x84;                   /* QR AA */
	resp[3] = DNS_RCODE_NXDOMAIN;
	for (int i = 0; i < 3; i++)
		metrics_observe(a, question(req, ql), resp, 40, false, 30000, -1);     /* 30 us */
	resp[2] |= 0x02;                  /* TC */
	resp[3] = 0;
	metrics_observe(b, question(req, ql), resp, 40, true, 2000000, -1);        /* 2 ms, over TCP */
	ql = query(req, "y.mesh.", DNS_TYPE_AAAA);
	metrics_observe(b, question(req, ql), resp, -1, false, 1000, -1);           /* dropped */
	metrics_observe(b, question(req, ql), resp, SERVER_DEFERRED, false, 1000, -1);
	metrics_observe(NULL, question(req, ql), resp, 40, false, 1, -1);           /* no block: ignored */
	metrics_observe(a, NULL, resp, 40, false, 1, -1);                /* no question: no type */
	struct textbuf tb = { 0 };
	metrics_render(&tb);
	char *t = tb_take(&tb, NULL);
	ok(t != NULL, "rendered");
	if (!t)
		return;
	is_int(value(t, "dnsd_dns_requests_total{zone=\".\",proto=\"udp\",type=\"SRV\"}"), 3, "3 UDP SRV");
	is_int(value(t, "dnsd_dns_requests_total{zone=\".\",proto=\"tcp\",type=\"SRV\"}"), 1, "1 TCP SRV");
	is_int(value(t, "dnsd_dns_requests_total{zone=\".\",proto=\"udp\",type=\"AAAA\"}"), 2, "2 AAAA");
	is_int(value(t, "dnsd_dns_requests_total{zone=\".\",proto=\"udp\",type=\"other\"}"), 1,
	       "a request without a question counts as other");
	is_int(value(t, "dnsd_dns_responses_total{zone=\".\",rcode=\"NXDOMAIN\"}"), 3, "3 NXDOMAIN");
	is_int(value(t, "dnsd_dns_responses_total{zone=\".\",rcode=\"NOERROR\"}"), 2, "2 NOERROR");
	is_int(value(t, "dnsd_dns_truncated_total"), 2, "TC counted");
	is_int(value(t, "dnsd_dns_dropped_total"), 1, "one dropped");
	is_int(value(t, "dnsd_forward_requests_total"), 1, "one handed to the forwarder");
	is_int(value(t, "dnsd_dns_request_duration_seconds_bucket{le=\"1e-05\"}"), 2,
	       "the 1 us and 1 ns ones under 10 us");
	is_int(value(t, "dnsd_dns_request_duration_seconds_bucket{le=\"5e-05\"}"), 5,
	       "the 30 us ones under 50 us (cumulative)");
	is_int(value(t, "dnsd_dns_request_duration_seconds_bucket{le=\"0.001\"}"), 5,
	       "nothing more under 1 ms");
	is_int(value(t, "dnsd_dns_request_duration_seconds_bucket{le=\"0.0025\"}"), 6,
	       "2 ms under 2.5 ms");
	is_int(value(t, "dnsd_dns_request_duration_seconds_count"), 6,
	       "count: every observed request but the forwarded one");
	ok(strstr(t, "# TYPE dnsd_dns_request_duration_seconds histogram\n") != NULL,
	   "histogram TYPE line");
	ok(strstr(t, "\ndnsd_build_info{version=\"" MESHDNS_VERSION "\",compiler=\"") != NULL &&
	   strstr(t, "\",cares=\"1.") != NULL, "dnsd_build_info with the version and c-ares'");
	free(t);

	/* A UDP batch's requests: counted one by one, timed together. */
	ql = query(req, "y.mesh.", DNS_TYPE_AAAA);
	for (int i = 0; i < 4; i++)
		metrics_observe(a, question(req, ql), resp, 40, false, METRICS_UNTIMED, -1);
	is_int(value_now("dnsd_dns_request_duration_seconds_count"), 6,
	       "an untimed request adds no duration");
	metrics_time(a, 30000, 4);
	metrics_time(a, 1, 0);                       /* none: nothing */
	metrics_time(NULL, 1, 5);                    /* no block: ignored */
	is_int(value_now("dnsd_dns_requests_total{zone=\".\",proto=\"udp\",type=\"AAAA\"}"), 6,
	       "the batch's 4 AAAA requests counted");
	is_int(value_now("dnsd_dns_request_duration_seconds_count"), 10, "a batch of 4 timed: count 10");
	is_int(value_now("dnsd_dns_request_duration_seconds_bucket{le=\"5e-05\"}"), 9,
	       "the batch's 4 in the 50 us bucket");
	is_int(value_now("dnsd_dns_request_duration_seconds_bucket{le=\"1e-05\"}"), 2,
	       "none of them under 10 us");

	/* The zone label: the longest registered zone holding QNAME. */
	uint8_t zn[DNS_NAME_MAX];
	size_t zl;
	wire_name_from_text("mesh.", zn, &zl);
	unsigned s1 = metrics_zone_add(zn, zl);
	is_int(metrics_zone_add(zn, zl), s1, "added twice: the same slot");   /* once only */
	wire_name_from_text("eu.mesh.", zn, &zl);
	unsigned s2 = metrics_zone_add(zn, zl);
	ok(s1 > 0 && s2 > 0 && s1 != s2, "slots of their own (%u, %u)", s1, s2);
	ql = query(req, "A.Mesh.", DNS_TYPE_A);
	metrics_observe(a, question(req, ql), resp, 40, false, 1, -1);
	ql = query(req, "x.EU.mesh.", DNS_TYPE_A);
	metrics_observe(a, question(req, ql), resp, 40, false, 1, -1);
	metrics_observe(a, question(req, ql), resp, 40, false, 1, -1);
	ql = query(req, "xmesh.", DNS_TYPE_A);
	metrics_observe(a, question(req, ql), resp, 40, false, 1, -1);
	/* A slot given (the query path's zone) is used as it is, whatever
	 * the name: counted under eu.mesh. although it is not in it. */
	metrics_observe(a, question(req, ql), resp, 40, false, 1, (int)s2);
	metrics_render(&tb);
	t = tb_take(&tb, NULL);
	if (!ok(t != NULL, "rendered again"))
		return;
	is_int(value(t, "dnsd_dns_requests_total{zone=\"mesh.\",proto=\"udp\",type=\"A\"}"), 1,
	       "a.mesh. in zone mesh. (case folded)");
	is_int(value(t, "dnsd_dns_requests_total{zone=\"eu.mesh.\",proto=\"udp\",type=\"A\"}"), 3,
	       "x.eu.mesh. in the longest zone, eu.mesh. (and the one given its slot)");
	is_int(value(t, "dnsd_dns_requests_total{zone=\".\",proto=\"udp\",type=\"A\"}"), 1,
	       "xmesh. in none of ours: zone \".\"");
	is_int(value(t, "dnsd_dns_responses_total{zone=\"eu.mesh.\",rcode=\"NOERROR\"}"), 3,
	       "responses by zone too");
	ok(strstr(t, "zone=\"mesh.\",rcode=\"NOERROR\"} 1\n") != NULL, "mesh. NOERROR 1");
	free(t);
}

static const char yaml[] =
	"zones:\n"
	"  - name: mesh\n"
	"    services:\n"
	"      - name: web\n"
	"        policy: hash\n"
	"        ports: {http: 8080}\n"
	"        backends: [10.0.0.1, {address: 10.0.0.2, weight: 7, locality: \"a\\\"b\"}]\n";

/* Every backend gets a state id; the second one's word is then set DOWN. */
static uint32_t sid_of(void *arg, size_t zi, size_t si, size_t bi)
{
	(void)arg;
	(void)zi;
	(void)si;
	return (uint32_t)bi + 1;
}

static void test_status(void)
{
	struct config *cfg;
	struct config_error cerr;
	struct zone_snapshot *snap;
	char err[256];
	struct bstate *states = bstate_new();
	uint32_t id;
	while (states && bstate_live(states) < 2 && bstate_alloc(states, &id) == 0)
		;
	if (!states || config_load_string(yaml, sizeof(yaml) - 1, "s.yaml", &cfg, &cerr) != 0 ||
	    zone_build(cfg, NULL, NULL, states, sid_of, NULL, &snap, err, sizeof(err)) != 0) {
		ok(0, "status config builds: %s %s", cerr.msg, err);
		return;
	}
	bstate_set(states, 2, false, 0);
	struct textbuf tb = { 0 };
	status_json(&tb, snap, NULL, 1000);
	char *j = tb_take(&tb, NULL);
	ok(j && strstr(j, "\"name\":\"web.mesh.\",\"policy\":\"hash\"") != NULL, "service in JSON");
	ok(j && strstr(j, "\"healthy\":1") != NULL, "one healthy backend");
	ok(j && strstr(j, "\"address\":\"10.0.0.2\",\"port\":8080,\"state\":\"down\"") != NULL,
	   "the down backend with the service port");
	ok(j && strstr(j, "\"effective_weight\":0") != NULL, "down: effective weight 0");
	ok(j && strstr(j, "\"locality\":\"a\\\"b\"") != NULL, "locality escaped");
	free(j);
	status_metrics(&tb, snap, NULL, 1000);
	char *m = tb_take(&tb, NULL);
	ok(m && strstr(m, "dnsd_backend_up{service=\"web.mesh.\",backend=\"10-0-0-1\",address=\"10.0.0.1\","
	                  "port=\"8080\"} 1\n") != NULL, "up gauge 1");
	ok(m && strstr(m, "address=\"10.0.0.2\",port=\"8080\"} 0\n") != NULL, "down gauge 0");
	free(m);
	zone_free(snap);
	bstate_free(states);
	config_free(cfg);
}

int main(void)
{
	test_textbuf();
	test_metrics();
	test_status();
	return done_testing();
}

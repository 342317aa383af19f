/* test_guard.c -- the query path's guard (guard.c): response rate limiting
 * per client prefix with slip, its exemptions (TCP, exempt prefixes, a
 * valid server cookie), cookie verdicts through a round trip, and who may
 * read CHAOS status. Settings come from a config, as dnsd makes them. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <urcu-qsbr.h>

#include "config.h"
#include "guard.h"
#include "tap.h"
#include "dns/wire.h"

static const char yaml[] =
	"zones: [{name: mesh}]\n"
	"rrl: {responses-per-second: 2, window: 1, slip: 2, exempt: [192.0.2.0/24]}\n"
	"cookies: {enabled: true}\n"
	"chaos: {allow: [10.9.0.0/16]}\n";

/* A query for a.mesh A; with a COOKIE option of cklen bytes when cklen. */
static struct guard *g;

static size_t make_query(uint8_t *buf, size_t cap, const uint8_t *ck, size_t cklen)
{
	struct wire_writer w;
	uint8_t n[DNS_NAME_MAX];
	size_t l;
	wire_name_from_text("a.mesh.", n, &l);
	wire_writer_init(&w, buf, cap);
	struct dns_header h = { .id = 9, .qdcount = 1, .arcount = cklen ? 1 : 0 };
	wire_write_header(&w, &h);
	wire_write_name(&w, n, l, false);
	wire_write_u16(&w, DNS_TYPE_A);
	wire_write_u16(&w, DNS_CLASS_IN);
	if (cklen) {
		wire_write_u8(&w, 0);
		wire_write_u16(&w, DNS_TYPE_OPT);
		wire_write_u16(&w, 1232);
		wire_write_u32(&w, 0);
		wire_write_u16(&w, (uint16_t)(4 + cklen));
		wire_write_u16(&w, DNS_EDNS_COOKIE);
		wire_write_u16(&w, (uint16_t)cklen);
		wire_write_bytes(&w, ck, cklen);
	}
	return w.err ? 0 : w.pos;
}

struct tally {
	unsigned answered, truncated, dropped;
};

/* count responses to req from peer (UDP unless tcp) through the guard. */
static struct tally run(const uint8_t *req, size_t len, const struct sockaddr *peer, bool tcp,
                        unsigned count)
{
	struct tally t = { 0 };
	struct dns_query q;
	if (wire_parse_query(req, len, &q) != WIRE_PARSE_OK)
		return t;
	for (unsigned i = 0; i < count; i++) {
		uint8_t resp[512];
		memcpy(resp, req, len);
		resp[2] |= 0x80;
		struct guard_req gr;
		guard_request(&gr, g, NULL, req, &q, peer, tcp);
		int n = guard_response(&gr, resp, (int)len, q.question_end, GUARD_OPT_FIND, tcp);
		if (n < 0)
			t.dropped++;
		else if (resp[2] & (DNS_FLAG_TC >> 8))
			t.truncated++;
		else
			t.answered++;
	}
	return t;
}

static struct sockaddr_in v4(const char *a)
{
	struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(5353) };
	inet_pton(AF_INET, a, &s.sin_addr);
	return s;
}

int main(void)
{
	struct config *cfg;
	struct config_error ce;
	if (config_load_string(yaml, sizeof(yaml) - 1, "t.yaml", &cfg, &ce) != 0) {
		diag("%s", ce.msg);
		return 1;
	}
	rcu_register_thread();
	g = guard_new();
	ok(g && guard_configure(g, cfg) == 0, "configured");
	uint8_t req[512];
	size_t len = make_query(req, sizeof(req), NULL, 0);
	struct sockaddr_in client = v4("198.51.100.7"), exempt = v4("192.0.2.9");
	struct sockaddr_in other = v4("203.0.113.5"), chaos = v4("10.9.1.1");

	struct tally t = run(req, len, (struct sockaddr *)&client, false, 20);
	ok(t.answered >= 1 && t.answered <= 4, "2 a second: %u of 20 answered", t.answered);
	ok(t.truncated >= 1 && t.dropped >= 1 && t.truncated + t.dropped + t.answered == 20,
	   "the rest: slip 2, some truncated (%u) and some dropped (%u)", t.truncated, t.dropped);
	t = run(req, len, (struct sockaddr *)&other, false, 1);
	is_int(t.answered, 1, "another client prefix has its own budget");
	t = run(req, len, (struct sockaddr *)&client, true, 20);
	is_int(t.answered, 20, "TCP is not limited");
	t = run(req, len, (struct sockaddr *)&exempt, false, 20);
	is_int(t.answered, 20, "an exempt prefix is not limited");

	/* Cookies: a client cookie gets a server cookie; with both, valid. */
	const uint8_t cc[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct sockaddr_in fresh = v4("198.51.100.200");
	size_t l1 = make_query(req, sizeof(req), cc, sizeof(cc));
	struct dns_query q;
	struct guard_req gr;
	ok(wire_parse_query(req, l1, &q) == WIRE_PARSE_OK &&
	   guard_request(&gr, g, NULL, req, &q, (struct sockaddr *)&fresh, false) == GUARD_ANSWER &&
	   gr.verdict == COOKIE_CLIENT_ONLY && gr.cookie && !guard_cookie_valid(&gr) &&
	   memcmp(gr.opt, cc, sizeof(cc)) == 0, "a client cookie: answered with a server cookie");
	uint8_t both[COOKIE_LEN];
	memcpy(both, gr.opt, sizeof(both));
	size_t l2 = make_query(req, sizeof(req), both, sizeof(both));
	ok(wire_parse_query(req, l2, &q) == WIRE_PARSE_OK &&
	   guard_request(&gr, g, NULL, req, &q, (struct sockaddr *)&fresh, false) == GUARD_ANSWER &&
	   gr.verdict == COOKIE_VALID && guard_cookie_valid(&gr), "sent back: valid");
	t = run(req, l2, (struct sockaddr *)&fresh, false, 20);
	is_int(t.answered, 20, "a valid server cookie is not rate limited");
	struct sockaddr_in elsewhere = v4("100.64.0.1");
	ok(wire_parse_query(req, l2, &q) == WIRE_PARSE_OK &&
	   guard_request(&gr, g, NULL, req, &q, (struct sockaddr *)&elsewhere, false) == GUARD_ANSWER &&
	   gr.verdict == COOKIE_INVALID && !guard_cookie_valid(&gr),
	   "the same cookie from another address: invalid");
	t = run(req, l2, (struct sockaddr *)&elsewhere, false, 20);
	ok(t.answered < 20, "and limited (%u of 20 answered)", t.answered);

	/* CHAOS status: the allow list alone. */
	len = make_query(req, sizeof(req), NULL, 0);
	wire_parse_query(req, len, &q);
	guard_request(&gr, g, NULL, req, &q, (struct sockaddr *)&chaos, false);
	ok(guard_chaos_allowed(&gr), "chaos.allow lets 10.9.1.1 read status");
	guard_request(&gr, g, NULL, req, &q, (struct sockaddr *)&client, false);
	ok(!guard_chaos_allowed(&gr), "others may not");

	guard_free(g);
	rcu_unregister_thread();
	config_free(cfg);
	return done_testing();
}

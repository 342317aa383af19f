/* guard.c -- DNS Cookies and response rate limiting around query.c's
 * answers: settings published with one pointer swap (RCU), cookie
 * verdicts (cookie.c) and rate-limit buckets (rrl.c) on the query path. */
#include "guard.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>
#include <urcu-qsbr.h>

#include "config.h"
#include "metrics.h"
#include "util/rcupub.h"
#include "rrl.h"

struct guard_conf {
	bool cookies;
	bool require;
	struct cookie_secrets secrets;
	struct rrl_settings rrl;
	struct rrl *table;            /* the handle's: kept across configurations */
	/* chaos.allow, in rrl.h's prefix form (rrl_exempt matches it). */
	struct rrl_settings chaos;
};

struct guard {
	/* RCU: replaced by the control thread (guard_configure), read by the
	 * workers and the forwarder. */
	struct guard_conf *conf;
	struct rrl *table;            /* made when a rate is first set */
	uint8_t generated[COOKIE_SECRET_LEN];   /* when no secret-file is set */
	bool have_generated;
};

/* Frees a guard no reader can still hold (after synchronize_rcu; see
 * tests/tsan.supp). */
static void guard_conf_free(struct guard_conf *g)
{
	if (!g)
		return;
	sodium_memzero(&g->secrets, sizeof(g->secrets));
	free(g);
}

struct guard *guard_new(void)
{
	if (sodium_init() < 0)
		return NULL;
	return calloc(1, sizeof(struct guard));
}

void guard_free(struct guard *gd)
{
	if (!gd)
		return;
	RCUPUB_REPLACE(gd->conf, NULL, guard_conf_free);
	rrl_free(gd->table);
	sodium_memzero(gd->generated, sizeof(gd->generated));
	free(gd);
}

int guard_configure(struct guard *gd, const struct config *cfg)
{
	struct guard_conf *g = calloc(1, sizeof(*g));
	if (!g)
		return -1;
	const struct cfg_cookies *ck = &cfg->cookies;
	g->cookies = ck->enabled;
	g->require = ck->enabled && ck->require;
	if (ck->have_secret) {
		memcpy(g->secrets.current, ck->secret, COOKIE_SECRET_LEN);
	} else {
		if (!gd->have_generated) {
			randombytes_buf(gd->generated, sizeof(gd->generated));
			gd->have_generated = true;
		}
		memcpy(g->secrets.current, gd->generated, COOKIE_SECRET_LEN);
	}
	if (ck->have_previous) {
		memcpy(g->secrets.previous, ck->previous, COOKIE_SECRET_LEN);
		g->secrets.have_previous = true;
	}
	const struct cfg_rrl *r = &cfg->rrl;
	g->rrl.rate = r->rate;
	g->rrl.window = r->window;
	g->rrl.slip = r->slip;
	g->rrl.v4_prefix = (uint8_t)r->v4_prefix;
	g->rrl.v6_prefix = (uint8_t)r->v6_prefix;
	for (size_t i = 0; i < r->nexempt && i < RRL_EXEMPT_MAX; i++) {
		struct rrl_prefix *p = &g->rrl.exempt[g->rrl.nexempt++];
		p->iplen = r->exempt[i].family == AF_INET ? 4 : 16;
		memcpy(p->addr, r->exempt[i].addr, p->iplen);
		p->prefix = r->exempt[i].prefix;
	}
	for (size_t i = 0; i < cfg->chaos.nallow && i < RRL_EXEMPT_MAX; i++) {
		struct rrl_prefix *p = &g->chaos.exempt[g->chaos.nexempt++];
		p->iplen = cfg->chaos.allow[i].family == AF_INET ? 4 : 16;
		memcpy(p->addr, cfg->chaos.allow[i].addr, p->iplen);
		p->prefix = cfg->chaos.allow[i].prefix;
	}
	if (r->rate && !gd->table && !(gd->table = rrl_new(RRL_TABLE_LOG2))) {
		guard_conf_free(g);
		return -1;
	}
	g->table = gd->table;
	RCUPUB_REPLACE(gd->conf, g, guard_conf_free);
	return 0;
}

enum guard_action guard_request(struct guard_req *gr, const struct guard *gd,
                                struct metrics_worker *m, const uint8_t *req,
                                const struct dns_query *q, const struct sockaddr *peer, bool tcp)
{
	const struct guard_conf *g = gd ? RCUPUB_LOAD(gd->conf) : NULL;
	gr->g = g;
	gr->verdict = COOKIE_NONE;
	gr->cookie = false;
	gr->m = m;
	gr->iplen = cookie_client_ip(peer, gr->ip);
	if (!g || !g->cookies)
		return GUARD_ANSWER;
	if (q->edns.present && q->edns.cookie_off && gr->iplen) {
		/* wire.c has checked the length (RFC 7873 5.2.2: else FORMERR). */
		const uint8_t *opt = req + q->edns.cookie_off;
		uint32_t now = (uint32_t)time(NULL);
		gr->verdict = cookie_check(&g->secrets, opt, q->edns.cookie_len, gr->ip, gr->iplen, now);
		cookie_answer(&g->secrets, gr->verdict, opt, gr->ip, gr->iplen, now, gr->opt);
		gr->cookie = true;
		if (m)
			METRICS_COUNT(m, cookies[gr->verdict - COOKIE_CLIENT_ONLY]);
	}
	if (!g->require || tcp || gr->verdict == COOKIE_VALID || gr->verdict == COOKIE_RENEW)
		return GUARD_ANSWER;
	/* RFC 7873 5.2.3/5.2.4: a request without a valid server cookie may be
	 * answered BADCOOKIE with a fresh cookie, for the client to repeat
	 * with it. A request without any cookie can only be sent to TCP. */
	if (gr->cookie) {
		METRICS_COUNT(m, cookie_badcookie);
		return GUARD_BADCOOKIE;
	}
	METRICS_COUNT(m, cookie_truncated);
	return GUARD_TRUNCATE;
}

static uint32_t now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint32_t)ts.tv_sec;
}

/* Where the OPT record of resp starts, 0 if it has none. */
static size_t find_opt(const uint8_t *resp, size_t len)
{
	struct wire_reader r;
	struct dns_header h;
	wire_reader_init(&r, resp, len);
	wire_read_header(&r, &h);
	for (unsigned i = 0; i < h.qdcount && !r.err; i++) {
		wire_read_name(&r, NULL);
		wire_skip(&r, 4);
	}
	unsigned total = (unsigned)h.ancount + h.nscount + h.arcount;
	for (unsigned i = 0; i < total && !r.err; i++) {
		size_t start = r.pos;
		struct dns_rr rr;
		wire_read_rr(&r, &rr);
		if (!r.err && rr.type == DNS_TYPE_OPT && i >= (unsigned)h.ancount + h.nscount)
			return start;
	}
	return 0;
}

int guard_response(const struct guard_req *gr, uint8_t *resp, int n, size_t qend, size_t opt_at,
                   bool tcp)
{
	const struct guard_conf *g = gr->g;
	if (!g || !g->rrl.rate || tcp || n < DNS_HEADER_LEN || (size_t)n < qend || !gr->iplen ||
	    gr->verdict == COOKIE_VALID || gr->verdict == COOKIE_RENEW ||
	    rrl_exempt(&g->rrl, gr->ip, gr->iplen))
		return n;
	uint8_t name[DNS_NAME_MAX];
	size_t namelen;
	uint16_t qtype;
	enum rrl_class cls = rrl_classify(resp, (size_t)n, name, &namelen, &qtype);
	enum rrl_verdict v = rrl_account(g->table, &g->rrl, gr->ip, gr->iplen, cls, name, namelen,
	                                 qtype, now_seconds());
	if (v == RRL_PASS)
		return n;
	if (v == RRL_DROP) {
		METRICS_COUNT(gr->m, rrl_dropped);
		return -1;
	}
	/* Slip: header and question with TC, no records but the OPT record
	 * (copied alone: it need not be last in an upstream's answer), so
	 * that a real client asks again over TCP (RFC 7766), never rate
	 * limited. */
	METRICS_COUNT(gr->m, rrl_slipped);
	if (opt_at == GUARD_OPT_FIND)
		opt_at = find_opt(resp, (size_t)n);
	size_t len = qend, optlen = 0;
	if (opt_at >= qend && opt_at + 11 <= (size_t)n) {
		optlen = 11 + (size_t)(resp[opt_at + 9] << 8 | resp[opt_at + 10]);
		if (opt_at + optlen > (size_t)n)
			optlen = 0;
	}
	if (optlen) {
		memmove(resp + qend, resp + opt_at, optlen);
		len += optlen;
	}
	resp[2] |= DNS_FLAG_TC >> 8;
	memset(resp + 6, 0, 4);
	resp[10] = 0;
	resp[11] = optlen ? 1 : 0;
	return (int)len;
}

int guard_response_later(const struct guard *gd, const struct sockaddr *peer, bool cookie_ok,
                         uint8_t *resp, int n, size_t qend, size_t opt_at)
{
	struct guard_req gr = {
		.g = gd ? RCUPUB_LOAD(gd->conf) : NULL,
		.verdict = cookie_ok ? COOKIE_VALID : COOKIE_NONE,
	};
	gr.iplen = cookie_client_ip(peer, gr.ip);
	return guard_response(&gr, resp, n, qend, opt_at, false);
}

bool guard_chaos_allowed(const struct guard_req *gr)
{
	const struct guard_conf *g = gr->g;
	if (!gr->iplen)
		return false;
	if (!g) {
		/* Not configured (unit tests): the default, loopback. */
		static const uint8_t v6lo[16] = { [15] = 1 };
		return gr->iplen == 4 ? gr->ip[0] == 127 : memcmp(gr->ip, v6lo, 16) == 0;
	}
	return rrl_exempt(&g->chaos, gr->ip, gr->iplen);
}

bool guard_cookie_valid(const struct guard_req *gr)
{
	return gr->verdict == COOKIE_VALID || gr->verdict == COOKIE_RENEW;
}

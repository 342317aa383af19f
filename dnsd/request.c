/* request.c -- the one path of a request: parse once, verify TSIG,
 * dispatch on opcode and type, sign, count, log. Every answer dnsd gives a
 * client at once comes out of request_process; UPDATEs and forwarded
 * queries are answered later by the control and forwarder threads. */
#include "request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <urcu-qsbr.h>

#include "util/addr.h"
#include "util/clock.h"
#include "config.h"
#include "forward.h"
#include "util/log.h"
#include "metrics.h"
#include "query.h"
#include "util/rcupub.h"
#include "dns/rdata.h"
#include "server.h"
#include "update.h"
#include "xfr.h"
#include "zone.h"

/* The keys requests are verified with (a copy of the config's). */
struct request_keys {
	struct tsig_key *keys;
	size_t nkeys;
};

struct request_ctx {
	struct request_settings s;
	/* RCU: replaced by the control thread (request_configure), read by
	 * the workers. */
	struct request_keys *keys;
};

struct request_worker {
	struct request_ctx *rc;
	struct query_worker *qw;
	struct metrics_worker *m;
	uint64_t qlog_second;         /* the second being counted */
	unsigned qlog_lines;          /* lines logged in it */
	uint64_t qlog_dropped;        /* lines over the rate since the last report */
	uint8_t unsigned_msg[DNS_MSG_MAX]; /* a signed request without its TSIG RR */
	int zslot;                    /* the request's metrics zone slot, -1: find by name */
};

size_t request_limit(const struct dns_query *q, bool tcp, uint16_t ours)
{
	if (tcp)
		return DNS_MSG_MAX;
	if (!q->edns.present || q->edns.udp_size < DNS_UDP_MIN)
		return DNS_UDP_MIN;
	return q->edns.udp_size < ours ? q->edns.udp_size : ours;
}

/* ---- the shared context and the workers ------------------------------------------ */

static void request_keys_free(struct request_keys *k)
{
	if (!k)
		return;
	if (k->keys)
		memset(k->keys, 0, k->nkeys * sizeof(*k->keys));
	free(k->keys);
	free(k);
}

struct request_ctx *request_ctx_new(const struct request_settings *s)
{
	struct request_ctx *rc = calloc(1, sizeof(*rc));
	if (rc)
		rc->s = *s;
	return rc;
}

void request_ctx_free(struct request_ctx *rc)
{
	if (!rc)
		return;
	request_keys_free(rc->keys);
	free(rc);
}

int request_configure(struct request_ctx *rc, const struct config *cfg)
{
	struct request_keys *k = calloc(1, sizeof(*k));
	if (!k)
		return -1;
	k->keys = calloc(cfg->nkeys ? cfg->nkeys : 1, sizeof(*k->keys));
	if (!k->keys) {
		free(k);
		return -1;
	}
	k->nkeys = cfg->nkeys;
	for (size_t i = 0; i < cfg->nkeys; i++) {
		k->keys[i] = cfg->keys[i];
		k->keys[i].name_text = NULL;
	}
	RCUPUB_REPLACE(rc->keys, k, request_keys_free);
	return 0;
}

struct request_worker *request_worker_new(struct request_ctx *rc, unsigned idx)
{
	struct request_worker *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->rc = rc;
	w->qw = query_worker_new(&rc->s.query, idx, rc->s.seed);
	if (!w->qw) {
		free(w);
		return NULL;
	}
	w->m = metrics_worker_new();
	query_worker_set_metrics(w->qw, w->m);
	return w;
}

void request_worker_free(struct request_worker *w)
{
	if (!w)
		return;
	query_worker_free(w->qw);
	free(w);
}

/* ---- stages -------------------------------------------------------------------- */

static const struct dns_question *question(const struct dns_query *q)
{
	return q->hdr.qdcount == 1 && q->question_end ? &q->q : NULL;
}

static int reply(const struct request *r, unsigned rcode, uint8_t *resp, size_t cap)
{
	return wire_reply_short(&r->q.hdr, question(&r->q), rcode, 0, resp, cap);
}

/* TSIG (RFC 8945 5.2): a request with a TSIG RR is answered only if it
 * verifies; the stages then see it without the RR (ARCOUNT one less),
 * and its answer is signed. Returns 0 to go on, else the answer. */
static int verify(struct request_worker *w, struct request *r, struct tsig_ctx *tsig,
                  uint8_t *resp, size_t cap)
{
	if (!r->q.tsig_off)
		return 0;
	const struct request_keys *k = RCUPUB_LOAD(w->rc->keys);
	uint64_t now = (uint64_t)time(NULL);
	int v = tsig_verify(r->msg, r->len, r->q.tsig_off, k ? k->keys : NULL, k ? k->nkeys : 0, now,
	                    tsig);
	if (v == -1)
		return reply(r, DNS_RCODE_FORMERR, resp, cap);
	if (v != TSIG_NOERROR) {   /* NOTAUTH, with the TSIG error in the RR */
		int n = reply(r, DNS_RCODE_NOTAUTH, resp, cap);
		return n > 0 ? tsig_sign(resp, (size_t)n, cap, tsig, now) : n;
	}
	size_t len = r->q.tsig_off;
	memcpy(w->unsigned_msg, r->msg, len);
	uint16_t ar = (uint16_t)(r->q.hdr.arcount - 1);
	w->unsigned_msg[10] = (uint8_t)(ar >> 8);
	w->unsigned_msg[11] = (uint8_t)ar;
	r->msg = w->unsigned_msg;
	r->len = len;
	r->q.hdr.arcount = ar;
	r->q.tsig_off = 0;
	r->tsig = tsig;
	return 0;
}

/* AXFR and IXFR (xfr.c), which signs its own messages. */
static int transfer(struct request_worker *w, const struct request *r, uint8_t *resp, size_t cap,
                    const struct server_peer *peer, uint64_t t0)
{
	if (!w->rc->s.xfr || (r->tcp && server_streams_full(peer))) {
		int n = reply(r, DNS_RCODE_REFUSED, resp, cap);
		if (n > 0 && r->tsig)
			n = tsig_sign(resp, (size_t)n, cap, r->tsig, (uint64_t)time(NULL));
		return n;
	}
	uint8_t *stream = NULL;
	size_t slen = 0;
	int n = xfr_answer(w->rc->s.xfr, r, resp, cap, &stream, &slen);
	if (n != XFR_STREAM)
		return n;
	metrics_observe(w->m, &r->q.q, stream + 2, (int)(stream[0] << 8 | stream[1]), true,
	                clock_mono_ns() - t0, -1);
	server_stream(peer, stream, slen);
	return SERVER_STREAM;
}

/* A name outside our zones that the cache did not have: upstream, or
 * SERVFAIL when forwarding cannot take it. */
static int forward(struct request_worker *w, const struct server_peer *peer, uint8_t *resp,
                   size_t cap)
{
	const struct query_forward *fq = query_forward_info(w->qw);
	struct forward *f = w->rc->s.forwarder;
	if (f && forward_submit(f, fq, peer) == 0)
		return SERVER_DEFERRED;
	return forward_error(fq, DNS_RCODE_SERVFAIL, w->rc->s.fwd_payload, resp, cap);
}

/* The opcode's stage. Returns the answer (unsigned), or SERVER_DEFERRED. */
static int dispatch(struct request_worker *w, const struct request *r, uint8_t *resp, size_t cap,
                    const struct server_peer *peer)
{
	const struct dns_header *h = &r->q.hdr;
	switch (DNS_OPCODE(h->flags)) {
	case DNS_OPCODE_QUERY: {
		if (h->qdcount != 1 || h->ancount || h->nscount)
			return reply(r, DNS_RCODE_FORMERR, resp, cap);
		int n = query_answer(w->qw, r, resp, cap);
		w->zslot = (int)query_zone_slot(w->qw);
		return n == QUERY_FORWARD ? forward(w, peer, resp, cap) : n;
	}
	case DNS_OPCODE_UPDATE: {   /* RFC 2136: the control thread applies it */
		struct update_queue *uq = w->rc->s.updates;
		int rc = uq ? update_submit(uq, r, peer) : DNS_RCODE_REFUSED;
		return rc == SERVER_DEFERRED ? rc : reply(r, (unsigned)rc, resp, cap);
	}
	default:                    /* NOTIFY too: dnsd is a primary only */
		return reply(r, DNS_RCODE_NOTIMP, resp, cap);
	}
}

/* ---- counting and the query log ---------------------------------------------------- */

/* One query log line, within the worker's per-second budget; lines over it
 * are counted and reported once the next second starts. */
static void query_log(struct request_worker *w, const struct request *r, const uint8_t *resp,
                      int n, uint64_t t_ns)
{
	unsigned rate = w->rc->s.qlog_rate;
	uint64_t sec = t_ns / 1000000000u;
	if (sec != w->qlog_second) {
		if (w->qlog_dropped)
			log_info("query log: %llu lines over --query-log=%u not logged",
			         (unsigned long long)w->qlog_dropped, rate);
		w->qlog_second = sec;
		w->qlog_lines = 0;
		w->qlog_dropped = 0;
	}
	if (w->qlog_lines >= rate) {
		w->qlog_dropped++;
		return;
	}
	w->qlog_lines++;
	char client[ADDR_TEXT_MAX], name[DNS_NAME_MAX * 4 + 2] = "-", type[16] = "-";
	addr_sockaddr_host(r->peer, client, sizeof(client));
	const struct dns_question *q = question(&r->q);
	if (q) {
		if (wire_name_to_text(q->name, q->namelen, name, sizeof(name)) < 0)
			snprintf(name, sizeof(name), "?");
		snprintf(type, sizeof(type), "%s", rdata_type_name(q->qtype));
	}
	const char *tr = r->tcp ? "tcp" : "udp";
	if (n >= DNS_HEADER_LEN)
		log_info("query %s %s %s %s -> %s%s %d bytes", tr, client, name, type,
		         rdata_rcode_name(resp[3] & 0x0f), (resp[2] & 0x02) ? " TC" : "", n);
	else
		log_info("query %s %s %s %s -> dropped", tr, client, name, type);
}

int request_process(struct request_worker *w, const uint8_t *wire, size_t len, uint8_t *resp,
                    size_t cap, const struct server_peer *peer)
{
	uint64_t t0 = peer->recv_ns ? peer->recv_ns : clock_mono_ns();
	w->zslot = -1;
	struct tsig_ctx tsig;
	/* Field by field: r.q is the parse's to clear (and is large). */
	struct request r;
	r.msg = wire;
	r.len = len;
	r.peer = peer->addr;
	r.tcp = peer->tcp;
	r.snap = NULL;
	r.limit = 0;
	r.tsig = NULL;
	enum wire_parse_result pr = wire_parse_query(wire, len, &r.q);
	int n;
	if (pr == WIRE_PARSE_DROP || cap < DNS_UDP_MIN) {
		n = -1;
	} else if (pr == WIRE_PARSE_FORMERR) {
		/* The question is echoed only from a request that parses. */
		n = wire_reply_short(&r.q.hdr, NULL, DNS_RCODE_FORMERR, 0, resp, cap);
	} else {
		r.snap = zone_current();
		r.limit = request_limit(&r.q, r.tcp, r.snap ? r.snap->udp_max_payload
		                                            : DNS_UDP_DEFAULT);
		n = verify(w, &r, &tsig, resp, cap);
		if (n == 0) {
			const struct dns_question *q = question(&r.q);
			if (DNS_OPCODE(r.q.hdr.flags) == DNS_OPCODE_QUERY && q &&
			    (q->qtype == DNS_TYPE_AXFR || q->qtype == DNS_TYPE_IXFR)) {
				n = transfer(w, &r, resp, cap, peer, t0);
				if (n == SERVER_STREAM)
					return n;
			} else {
				n = dispatch(w, &r, resp, cap, peer);
				if (r.tsig && n > 0)
					n = tsig_sign_answer(resp, n, r.limit < cap ? r.limit : cap, r.tsig,
					                     (uint64_t)time(NULL));
			}
		}
	}
	/* A UDP batch's requests are timed together by the server
	 * (worker_batch_done): their answers leave together. */
	uint64_t t1 = peer->recv_ns ? 0 : clock_mono_ns();
	metrics_observe(w->m, question(&r.q), resp, n, r.tcp,
	                peer->recv_ns ? METRICS_UNTIMED : t1 - t0, w->zslot);
	if (w->rc->s.qlog_rate)
		query_log(w, &r, resp, n, t1 ? t1 : clock_mono_ns());
	return n;
}

static void *worker_init(void *arg, unsigned idx)
{
	return request_worker_new(arg, idx);
}

static void worker_fini(void *ctx)
{
	request_worker_free(ctx);
}

static int worker_handle(void *ctx, const uint8_t *req, size_t len, uint8_t *resp, size_t cap,
                         const struct server_peer *peer)
{
	return request_process(ctx, req, len, resp, cap, peer);
}

static void worker_batch_done(void *ctx, unsigned n, uint64_t ns)
{
	struct request_worker *w = ctx;
	metrics_time(w->m, ns, n);
}

void request_server_ops(struct request_ctx *rc, struct server_ops *ops)
{
	*ops = (struct server_ops){
		.thread_init = worker_init,
		.thread_fini = worker_fini,
		.handle = worker_handle,
		.batch_done = worker_batch_done,
		.arg = rc,
	};
}

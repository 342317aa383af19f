/* query.h -- a QUERY to its answer: EDNS, lookup, balance, encode.
 * Allocation-free and lock-free: reads the current zone snapshot (RCU). */
#ifndef MESHDNS_QUERY_H
#define MESHDNS_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"
#include "health.h"
#include "dns/wire.h"

/* QUERY_FORWARD: the name is outside our zones, forwarding is on and the
 * cache had no answer: query_forward_info() says what to ask upstream. */
enum { QUERY_DROP = -1, QUERY_FORWARD = -2 };

/* A query to forward, as query_answer left it in the worker. */
struct query_forward {
	struct dns_question q;        /* as asked (case kept) */
	uint16_t id;                  /* the client's */
	uint16_t flags;               /* the client's header flags (RD, CD) */
	uint8_t edns;                 /* enum cache_edns */
	uint16_t limit;               /* the longest answer the client takes */
	bool cookie_ok;               /* it sent a valid server cookie (no RRL) */
};

struct cache;
struct guard;

/* Where CHAOS status queries read the watcher's details (last check result,
 * counters) of the backend with state id sid (0: not checked: nothing).
 * Called only for those diagnostic queries, never on the IN path. */
typedef bool (*query_status_fn)(void *arg, uint32_t sid, struct health_state *out);

/* What the queries of every worker share. Zeroed: no forwarding, no
 * search path, no status details. A reload changes none of it. */
struct query_settings {
	/* Forwarding (on): names outside our zones are answered from cache
	 * (may be NULL) or make query_answer return QUERY_FORWARD, and
	 * answers carry RA. Off: they are REFUSED. */
	bool forwarding;
	struct cache *cache;
	/* search-path (config.h): a query for <name>.<suffix> that is outside
	 * our zones, where <name> exists in one of them, is answered with a
	 * CNAME to <name> and <name>'s answer, so a client walking a search
	 * list finds a mesh name at its first try. nsearch 0: off. */
	struct cfg_search search[CFG_SEARCH_MAX];
	size_t nsearch;
	query_status_fn status;       /* NULL: status answers without details */
	void *status_arg;
	const struct guard *guard;    /* cookies and rate limiting; NULL: none */
};

struct query_worker;
struct metrics_worker;

/* Per-thread state (PRNG, scratch) answering with the settings qs, which
 * the caller keeps, unchanged, until query_worker_free; seed 0 means
 * random. */
struct query_worker *query_worker_new(const struct query_settings *qs, unsigned idx,
                                      uint64_t seed);
void query_worker_free(struct query_worker *qw);
/* Where qw counts its subset and search-path answers (NULL: nowhere).
 * Called by qw's thread before it serves. */
void query_worker_set_metrics(struct query_worker *qw, struct metrics_worker *m);

/* Answers the QUERY r (request.c has checked it: one question, no answer
 * or authority records, not a transfer) into resp (capacity respcap >=
 * 512), at most r->limit bytes. For UDP a required RRset that does not
 * fit sets TC; a service's A, AAAA or SRV answer that does not fit carries
 * instead the first backends of its policy's order that fit, without TC
 * (oversize: subset, the default). Returns the response length,
 * QUERY_DROP, or QUERY_FORWARD (nothing written; see query_forward_info).
 * The calling thread must be an online liburcu-qsbr reader. */
struct request;
int query_answer(struct query_worker *qw, const struct request *r, uint8_t *resp,
                 size_t respcap);

/* The query behind the last QUERY_FORWARD of qw (owned by qw, valid until
 * its next query_answer). */
const struct query_forward *query_forward_info(const struct query_worker *qw);

/* The metrics zone slot of the zone that held the last query's name (its
 * first, before CNAMEs), 0 if none of ours did. */
unsigned query_zone_slot(const struct query_worker *qw);

#endif

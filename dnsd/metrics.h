/* metrics.h -- counters for Prometheus. Each DNS worker thread owns one
 * struct metrics_worker and is its only writer (relaxed atomic stores, no
 * lock, no shared cache line); the HTTP thread sums them when scraped.
 * Names follow CoreDNS where the meaning is the same
 * (dnsd_dns_requests_total{proto,type}, dnsd_dns_responses_total{rcode},
 * dnsd_dns_request_duration_seconds). */
#ifndef MESHDNS_METRICS_H
#define MESHDNS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/textbuf.h"

struct dns_question;

enum {
	METRICS_NPROTO = 2,           /* udp, tcp */
	METRICS_NTYPES = 12,          /* A NS CNAME SOA PTR MX TXT AAAA SRV ANY AXFR other */
	METRICS_NRCODES = 17,         /* 0..15, then "other" */
	METRICS_NBUCKETS = 11,        /* request duration upper bounds; +Inf is the count */
	METRICS_MAX_WORKERS = 1024,
	/* zone label (CoreDNS's): slot 0 is ".", names in none of our zones
	 * (forwarded, refused); then one slot per zone name ever served, in
	 * order of first appearance; zones past the last slot count as ".". */
	METRICS_NZONES = 32,
};

struct metrics_worker {
	uint64_t requests[METRICS_NZONES][METRICS_NPROTO][METRICS_NTYPES];
	uint64_t responses[METRICS_NZONES][METRICS_NRCODES];
	uint64_t dropped;             /* requests that got no response */
	uint64_t deferred;            /* handed to the forwarder, answered later */
	uint64_t truncated;           /* responses with TC set */
	uint64_t duration_bucket[METRICS_NBUCKETS];   /* per bucket, not cumulative */
	uint64_t duration_count;
	uint64_t duration_sum_ns;
	/* guard.c: requests by COOKIE verdict (enum cookie_verdict minus NONE),
	 * answers required cookies made BADCOOKIE or TC, rate-limited ones. */
	uint64_t cookies[4];          /* client-only, invalid, valid, renewed */
	uint64_t cookie_badcookie;
	uint64_t cookie_truncated;
	uint64_t rrl_slipped;
	uint64_t rrl_dropped;
	/* query.c: answers carrying a subset of a service's backends because
	 * all did not fit (oversize: subset), and search-path answers. */
	uint64_t subset;
	uint64_t search_path;
} __attribute__((aligned(64)));

/* Process-wide values set by the control thread. */
struct metrics_global {
	uint64_t snapshot_generation;
	uint64_t snapshot_build_ns;   /* of the last published snapshot */
	uint64_t snapshot_bytes;
	uint64_t reloads;
	uint64_t reload_failures;
	uint64_t health_changes_applied;  /* backend state changes served in place */
	uint64_t start_time_s;        /* wall clock */
};
extern struct metrics_global metrics_global;

/* A zeroed block for the calling worker thread, registered for scraping;
 * NULL if the table is full (the worker then just does not count). Blocks
 * live until exit: a scrape never reads freed memory. */
struct metrics_worker *metrics_worker_new(void);

/* Gives zone name (wire, lower case) a slot for the zone label, if it has
 * none yet, and returns its slot (0, the "." label, when the table is
 * full). Slots are never reused, so a series keeps its label across
 * reloads. Control thread (at each publish); workers read without lock. */
unsigned metrics_zone_add(const uint8_t *name, size_t len);

/* Counts one request (its type from its question q, NULL if it had none;
 * its zone slot zslot, or with zslot < 0 the longest registered zone name
 * that holds QNAME) and its response (rcode and TC from the header; n <= 0:
 * dropped) taking ns; ns METRICS_UNTIMED: its time is counted later with
 * metrics_time (a UDP batch's). */
void metrics_observe(struct metrics_worker *m, const struct dns_question *q, const uint8_t *resp,
                     int n, bool tcp, uint64_t ns, int zslot);

#define METRICS_UNTIMED UINT64_MAX

/* Counts count requests that each took ns: a UDP batch's, whose answers
 * all leave at once. */
void metrics_time(struct metrics_worker *m, uint64_t ns, uint64_t count);

/* Adds one to a field of the calling worker's own block (m may be NULL). */
#define METRICS_COUNT(m, field) do { \
		if (m) \
			__atomic_store_n(&(m)->field, __atomic_load_n(&(m)->field, __ATOMIC_RELAXED) + 1, \
			                 __ATOMIC_RELAXED); \
	} while (0)

/* Sets a process-wide value (relaxed atomic store). */
void metrics_set(uint64_t *field, uint64_t value);
void metrics_add(uint64_t *field, uint64_t delta);

/* Appends the request/response/duration/process metrics, then whatever the
 * extra renderer (set once at start, e.g. forwarder and cache counters)
 * appends. */
void metrics_render(struct textbuf *tb);
void metrics_set_extra(void (*fn)(struct textbuf *tb, void *arg), void *arg);

#endif

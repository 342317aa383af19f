/* request.h -- the one path of a request through dnsd: parse once, verify
 * TSIG, dispatch on opcode and type (QUERY in IN or CH, AXFR/IXFR, UPDATE;
 * other opcodes NOTIMP), sign the answer, count it, log it. The stages
 * (query.c, xfr.c, update.c) take the parsed request, never the bytes
 * alone. */
#ifndef MESHDNS_REQUEST_H
#define MESHDNS_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "query.h"
#include "dns/tsig.h"
#include "dns/wire.h"

struct config;
struct forward;
struct cache;
struct server_peer;
struct metrics_worker;
struct zone_snapshot;
struct update_queue;
struct xfr;

/* One request, parsed, as the stages see it (on the worker's stack). */
struct request {
	const uint8_t *msg;           /* the message: without its TSIG RR when signed */
	size_t len;
	struct dns_query q;           /* msg parsed (offsets are valid in msg) */
	const struct sockaddr *peer;
	bool tcp;
	const struct zone_snapshot *snap; /* loaded once; NULL before the first */
	size_t limit;                 /* the longest answer the client takes */
	struct tsig_ctx *tsig;        /* a verified TSIG, or NULL: unsigned */
};

/* The longest answer a client takes for q: 65535 over TCP; over UDP its
 * EDNS payload size within [512, ours], 512 without EDNS. */
size_t request_limit(const struct dns_query *q, bool tcp, uint16_t ours);

struct request_ctx;
struct request_worker;

/* What every worker shares, made before the server starts and freed after
 * it stops. query: the settings of query.c (copied). forwarder (may be
 * NULL: names outside our zones are answered from the cache or get
 * SERVFAIL) and query.cache stay the caller's.
 * fwd_payload is the EDNS size an answer to a forwarded query that fails
 * offers. qlog_rate: query log lines per second per worker, 0 off.
 * seed: 0 random, else the PRNG seed of worker i is derived from it. */
struct request_settings {
	struct query_settings query;
	struct update_queue *updates;        /* where UPDATEs go; NULL: REFUSED */
	struct xfr *xfr;                     /* transfers; NULL: REFUSED */
	struct forward *forwarder;
	uint16_t fwd_payload;
	unsigned qlog_rate;
	uint64_t seed;
};
struct request_ctx *request_ctx_new(const struct request_settings *s);
void request_ctx_free(struct request_ctx *rc);

/* Control thread: publishes a copy of cfg's TSIG keys for verification
 * (RCU; the previous ones are freed after a grace period). 0, or -1 when
 * out of memory (the previous keys stay). */
int request_configure(struct request_ctx *rc, const struct config *cfg);

/* Per server thread (a server_handler's init/fini). NULL when out of
 * memory. */
struct request_worker *request_worker_new(struct request_ctx *rc, unsigned idx);
void request_worker_free(struct request_worker *w);

/* Answers the request wire[0..len) from peer into resp (capacity cap >=
 * 512). Returns the answer's length, -1 to send nothing, SERVER_DEFERRED
 * (an UPDATE queued to the control thread, or a query forwarded upstream:
 * answered later) or SERVER_STREAM (a zone transfer handed to the TCP
 * thread). Server threads only, as online liburcu-qsbr readers. */
int request_process(struct request_worker *w, const uint8_t *wire, size_t len, uint8_t *resp,
                    size_t cap, const struct server_peer *peer);

/* The server's handler (server.h) for rc: a request_worker per server
 * thread, request_process for each message. */
struct server_ops;
void request_server_ops(struct request_ctx *rc, struct server_ops *ops);

#endif

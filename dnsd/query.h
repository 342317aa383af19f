/* query.h -- one request to one response: parse, EDNS, lookup, encode.
 * Allocation-free and lock-free: reads the current zone snapshot (RCU). */
#ifndef MESHDNS_QUERY_H
#define MESHDNS_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "health.h"

enum { QUERY_DROP = -1 };

/* Where CHAOS status queries read the watcher's details (last check result,
 * counters) of backend bi of service si of zone zi. Called only for those
 * diagnostic queries, never on the IN path. Set once before serving. */
typedef bool (*query_status_fn)(void *arg, size_t zi, size_t si, size_t bi,
                                struct health_state *out);
void query_set_status_source(query_status_fn fn, void *arg);

struct query_worker;

/* Per-thread state (PRNG, scratch); seed 0 means random. */
struct query_worker *query_worker_new(unsigned idx, uint64_t seed);
void query_worker_free(struct query_worker *qw);

/* Answers req into resp (capacity respcap, >= 512). For UDP the answer is
 * cut to the client's payload size (512 without EDNS) with TC set when a
 * required RRset does not fit. Returns the response length or QUERY_DROP.
 * The calling thread must be an online liburcu-qsbr reader. */
int query_process(struct query_worker *qw, const uint8_t *req, size_t reqlen,
                  uint8_t *resp, size_t respcap, const struct sockaddr *peer, bool tcp);

#endif

/* balance.h -- which backends answer a query, and in what order. Pure over
 * (snapshot, per-worker state, client): no allocation, no locks. */
#ifndef MESHDNS_BALANCE_H
#define MESHDNS_BALANCE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "zone.h"

enum { BALANCE_RR_SLOTS = 1024 };

/* Per-worker state: a PRNG (xoshiro256**), round-robin counters per service
 * (indexed by service id modulo the slot count: two services sharing a slot
 * only share a counter), and the time for slow start. */
struct balance_state {
	uint64_t s[4];
	uint32_t rr[BALANCE_RR_SLOTS];
	uint64_t now_ms;              /* set by the caller before a batch; 0: no slow start */
};

/* Who is asking: the source address, or the EDNS Client Subnet when the
 * query carried one (RFC 7871). */
struct balance_client {
	int family;                   /* AF_INET, AF_INET6, or 0 if unknown */
	uint8_t addr[16];             /* masked to prefix */
	uint8_t prefix;               /* significant bits */
	bool from_ecs;
};

/* Why an answer is what it is (filled in only when asked for). */
struct balance_explain {
	const char *locality;         /* the client's label, or NULL */
	unsigned candidates;          /* backends considered (family, health, group) */
	unsigned healthy;
	bool fail_open;               /* nothing healthy: answered with all */
	bool used_client;             /* the answer depends on the client subnet */
};

/* seed 0: seeded from getrandom(); otherwise reproducible per (seed, worker). */
void balance_init(struct balance_state *st, uint64_t seed, unsigned worker);
uint64_t balance_rand(struct balance_state *st);

/* Fills a client from a socket address (full-length prefix). */
void balance_client_from_sockaddr(struct balance_client *c, const struct sockaddr *sa);

/* The effective weight of b now: its weight, ramped from 10% to 100% over
 * slow_start_ms after it came back up (never below 1). */
uint32_t balance_weight(const struct zone_service *svc, const struct zone_backend *b, uint64_t now_ms);

/* Writes into idx[] the indexes (into svc->backends) of the backends of
 * family (AF_INET, AF_INET6, or AF_UNSPEC for all) to answer with, best
 * first, at most min(max, svc->max_answers if set). Only healthy backends
 * are chosen; when none is, all of them if the service fails open, else
 * none. Policies: weighted random order; smooth weighted round robin;
 * weighted rendezvous hash of the client subnet; lowest priority group
 * first; the client's locality first. ex may be NULL. Returns the count. */
/* Keeps in idx[0..n) only the backends of the lowest priority present
 * (the failover group that answers), in their order; returns how many. */
unsigned balance_failover_group(const struct zone_service *svc, uint16_t *idx, unsigned n);

unsigned balance_select(const struct zone_snapshot *snap, const struct zone_service *svc,
                        int family, struct balance_state *st, const struct balance_client *client,
                        uint16_t *idx, unsigned max, struct balance_explain *ex);

/* The locality label of client per snap's map (longest prefix), or NULL. */
const char *balance_locality(const struct zone_snapshot *snap, const struct balance_client *client);

#endif

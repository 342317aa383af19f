/* balance.h -- which backends answer a query, and in what order. Pure over
 * (service, per-worker state, client): no allocation, no locks. */
#ifndef MESHDNS_BALANCE_H
#define MESHDNS_BALANCE_H

#include <stdint.h>
#include <sys/socket.h>

#include "zone.h"

/* Per-worker state: a PRNG (xoshiro256**) and a rotation counter. */
struct balance_state {
	uint64_t s[4];
	uint64_t rr;
};

/* seed 0: seeded from getrandom(); otherwise reproducible per (seed, worker). */
void balance_init(struct balance_state *st, uint64_t seed, unsigned worker);
uint64_t balance_rand(struct balance_state *st);

/* Writes into idx[] the indexes (into svc->backends) of the backends of the
 * given family (AF_INET, AF_INET6, or AF_UNSPEC for all) that should be in
 * the answer, best first, at most max. Returns the count. */
unsigned balance_select(const struct zone_service *svc, int family, struct balance_state *st,
                        const struct sockaddr *client, uint16_t *idx, unsigned max);

#endif

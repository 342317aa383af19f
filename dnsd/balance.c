/* balance.c -- backend selection per query. For now: every backend that is
 * up, rotated per query (all of them when none is up). */
#include "balance.h"

#include <string.h>
#include <sys/random.h>

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void balance_init(struct balance_state *st, uint64_t seed, unsigned worker)
{
	uint64_t x;
	if (seed == 0) {
		if (getrandom(&x, sizeof(x), 0) != sizeof(x))
			x = (uint64_t)(uintptr_t)st ^ worker;
	} else {
		x = seed * 0x9e3779b97f4a7c15ull + worker;
	}
	for (int i = 0; i < 4; i++)
		st->s[i] = splitmix64(&x);
	st->rr = seed ? 0 : splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t balance_rand(struct balance_state *st)
{
	uint64_t *s = st->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

unsigned balance_select(const struct zone_service *svc, int family, struct balance_state *st,
                        const struct sockaddr *client, uint16_t *idx, unsigned max)
{
	(void)client;
	unsigned n = 0, nup = 0;
	for (unsigned i = 0; i < svc->nbackends; i++) {
		const struct zone_backend *b = &svc->backends[i];
		if (family != AF_UNSPEC && b->family != family)
			continue;
		idx[n++] = (uint16_t)i;
		nup += b->up;
	}
	if (nup && nup < n) {
		unsigned k = 0;
		for (unsigned i = 0; i < n; i++)
			if (svc->backends[idx[i]].up)
				idx[k++] = idx[i];
		n = k;
	}
	if (n > 1) {
		unsigned rot = (unsigned)(st->rr++ % n);
		uint16_t tmp[ZONE_MAX_BACKENDS];
		memcpy(tmp, idx, n * sizeof(*idx));
		for (unsigned i = 0; i < n; i++)
			idx[i] = tmp[(i + rot) % n];
	}
	if (svc->max_answers && n > svc->max_answers)
		n = svc->max_answers;
	return n < max ? n : max;
}

/* balance.c -- backend selection per query: filter by family and health,
 * narrow by policy (priority group, locality), then order (weighted random,
 * round robin, rendezvous hash). O(n * answers) at most, no allocation. */
#include "balance.h"

#include <math.h>
#include <netinet/in.h>
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
	memset(st, 0, sizeof(*st));
	if (seed == 0) {
		if (getrandom(&x, sizeof(x), 0) != sizeof(x))
			x = (uint64_t)(uintptr_t)st ^ worker;
	} else {
		x = seed * 0x9e3779b97f4a7c15ull + worker;
	}
	for (int i = 0; i < 4; i++)
		st->s[i] = splitmix64(&x);
	if (seed == 0)
		for (int i = 0; i < BALANCE_RR_SLOTS; i++)
			st->rr[i] = (uint32_t)splitmix64(&x);
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

/* Uniform in [0, n) without modulo bias worth measuring (Lemire). */
static uint64_t rand_below(struct balance_state *st, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)balance_rand(st) * n) >> 64);
}

void balance_client_from_sockaddr(struct balance_client *c, const struct sockaddr *sa)
{
	memset(c, 0, sizeof(*c));
	if (!sa)
		return;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		c->family = AF_INET;
		memcpy(c->addr, &s4->sin_addr, 4);
		c->prefix = 32;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		c->family = AF_INET6;
		memcpy(c->addr, &s6->sin6_addr, 16);
		c->prefix = 128;
	}
}

uint32_t balance_weight(const struct zone_service *svc, const struct zone_backend *b, uint64_t now_ms)
{
	uint32_t w = b->weight ? b->weight : 1;
	if (!svc->slow_start_ms || !now_ms)
		return w;
	uint64_t since = bstate_word_since(bstate_load(b->state));
	if (!since || now_ms < since)
		return w;
	uint64_t age = now_ms - since;
	if (age >= svc->slow_start_ms)
		return w;
	/* 10% at the moment it came back, linear to 100%. */
	uint64_t permille = 100 + 900 * age / svc->slow_start_ms;
	uint64_t e = (uint64_t)w * permille / 1000;
	return e ? (uint32_t)e : 1;
}

static bool prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned bytes = bits / 8, rest = bits % 8;
	if (memcmp(a, b, bytes) != 0)
		return false;
	if (!rest)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a[bytes] & mask) == (b[bytes] & mask);
}

const char *balance_locality(const struct zone_snapshot *snap, const struct balance_client *client)
{
	const struct zone_locality *best = NULL;
	for (unsigned i = 0; i < snap->nlocalities; i++) {
		const struct zone_locality *l = &snap->localities[i];
		if (l->family != client->family || l->prefix > client->prefix)
			continue;
		if ((!best || l->prefix > best->prefix) && prefix_match(l->addr, client->addr, l->prefix))
			best = l;
	}
	return best ? best->label : NULL;
}

/* Picks for one order from as few random numbers as they need: each pick
 * multiplies the number by its range and keeps the high half, the low
 * half (still uniform) serving the next pick. After ranges whose product
 * is P the next pick is off uniform by at most P / 2^64; a fresh number
 * is drawn before P would pass 2^40. */
struct draw {
	uint64_t x;
	unsigned bits;         /* log2 of P, from above */
};

static inline uint64_t draw_below(struct balance_state *st, struct draw *d, uint64_t n)
{
	unsigned nb = 64 - (unsigned)__builtin_clzll(n | 1);
	if (d->bits + nb > 40) {
		d->x = balance_rand(st);
		d->bits = 0;
	}
	unsigned __int128 p = (unsigned __int128)d->x * n;
	d->x = (uint64_t)p;
	d->bits += nb;
	return (uint64_t)(p >> 64);
}

/* Uniform picks for a shuffle, three to a random number: a pick's range
 * is at most ZONE_MAX_BACKENDS (13 bits), so three take 39 bits and the
 * low half of the product stays uniform enough for the next (see
 * draw_below). */
struct shuffle {
	uint64_t x;
	unsigned have;         /* picks left in x */
};

static inline unsigned shuffle_pick(struct balance_state *st, struct shuffle *s, unsigned m)
{
	_Static_assert(ZONE_MAX_BACKENDS <= 1u << 13, "three picks of 13 bits per draw");
	if (!s->have) {
		s->x = balance_rand(st);
		s->have = 3;
	}
	s->have--;
	unsigned __int128 p = (unsigned __int128)s->x * m;
	s->x = (uint64_t)p;
	return (unsigned)(p >> 64);
}

/* Weighted random order without replacement: each slot picks among the
 * remaining candidates with probability proportional to weight, so the
 * first answer's share equals the weight share exactly. With equal
 * weights that is a uniform shuffle of the first k slots. */
static void order_weighted(const struct zone_service *svc, struct balance_state *st,
                           uint16_t *idx, unsigned n, unsigned k)
{
	struct draw d = { .bits = 64 };
	unsigned last = k < n ? k : n - 1;   /* the slots to pick; the last one is left */
	if (svc->equal_weights) {
		struct shuffle sh = { 0 };
		for (unsigned j = 0; j < last; j++) {
			unsigned pick = j + shuffle_pick(st, &sh, n - j);
			uint16_t t = idx[j];
			idx[j] = idx[pick];
			idx[pick] = t;
		}
		return;
	}
	uint32_t w[ZONE_MAX_BACKENDS];
	uint64_t total = 0;
	for (unsigned i = 0; i < n; i++) {
		const struct zone_backend *b = &svc->backends[idx[i]];
		/* Without slow start a weight is the configured one. */
		w[i] = svc->slow_start_ms ? balance_weight(svc, b, st->now_ms)
		                          : b->weight ? b->weight : 1;
		total += w[i];
	}
	for (unsigned j = 0; j < last; j++) {
		uint64_t r = draw_below(st, &d, total);
		unsigned pick = j;
		for (unsigned i = j; i < n; i++) {
			if (r < w[i]) {
				pick = i;
				break;
			}
			r -= w[i];
		}
		uint16_t ti = idx[j];
		uint32_t tw = w[j];
		idx[j] = idx[pick];
		w[j] = w[pick];
		idx[pick] = ti;
		w[pick] = tw;
		total -= w[j];
	}
}

/* Weighted rendezvous hashing: score = w / -ln(u), u uniform from
 * hash(client, backend). Removing a backend moves only its clients; the
 * share of each backend is proportional to its weight. */
static void order_hash(const struct zone_service *svc, const struct balance_client *c,
                       uint64_t now_ms, uint16_t *idx, unsigned n, unsigned k)
{
	double score[ZONE_MAX_BACKENDS];
	uint64_t ch = 0x636c69656e74ull ^ (uint64_t)c->family;
	for (unsigned i = 0; i < 16; i++)
		ch = hash_mix64(ch ^ c->addr[i] ^ ((uint64_t)i << 8));
	ch = hash_mix64(ch ^ c->prefix);
	for (unsigned i = 0; i < n; i++) {
		const struct zone_backend *b = &svc->backends[idx[i]];
		uint64_t h = hash_mix64(ch ^ zone_backend_hkey(b));
		double u = ((double)(h >> 11) + 0.5) / 9007199254740992.0; /* (0, 1) */
		score[i] = (double)balance_weight(svc, b, now_ms) / -log(u);
	}
	for (unsigned j = 0; j < k && j + 1 < n; j++) {
		unsigned best = j;
		for (unsigned i = j + 1; i < n; i++)
			if (score[i] > score[best])
				best = i;
		uint16_t ti = idx[j];
		double ts = score[j];
		idx[j] = idx[best];
		score[j] = score[best];
		idx[best] = ti;
		score[best] = ts;
	}
}

/* Round robin: the service's precomputed smooth weighted schedule, indexed
 * by this worker's counter; the others follow in configuration order. */
static void order_rr(const struct zone_service *svc, int family, struct balance_state *st,
                     uint16_t *idx, unsigned n)
{
	int which = family == AF_INET ? 0 : family == AF_INET6 ? 1 : 2;
	if (!svc->rr_len[which] || n < 2)
		return;
	/* The schedule covers every backend of the family. The turn of one
	 * that is not a candidate now (down) goes to a candidate picked by
	 * weight, so the shares stay proportional to the weights of those up
	 * without a new schedule per health change. */
	uint32_t c = st->rr[svc->id % BALANCE_RR_SLOTS]++;
	uint16_t first = svc->rr_sched[which][c % svc->rr_len[which]];
	unsigned pos = 0;
	while (pos < n && idx[pos] != first)
		pos++;
	if (pos == n) {
		uint64_t total = 0;
		for (unsigned i = 0; i < n; i++)
			total += balance_weight(svc, &svc->backends[idx[i]], st->now_ms);
		uint64_t r = rand_below(st, total);
		for (pos = 0; pos + 1 < n; pos++) {
			uint64_t w = balance_weight(svc, &svc->backends[idx[pos]], st->now_ms);
			if (r < w)
				break;
			r -= w;
		}
	}
	/* Rotate so first leads; idx is in configuration order. */
	uint16_t tmp[ZONE_MAX_BACKENDS];
	for (unsigned i = 0; i < n; i++)
		tmp[i] = idx[(pos + i) % n];
	memcpy(idx, tmp, n * sizeof(*idx));
}

unsigned balance_failover_group(const struct zone_service *svc, uint16_t *idx, unsigned n)
{
	uint16_t best = UINT16_MAX;
	for (unsigned i = 0; i < n; i++)
		if (svc->backends[idx[i]].priority < best)
			best = svc->backends[idx[i]].priority;
	unsigned k = 0;
	for (unsigned i = 0; i < n; i++)
		if (svc->backends[idx[i]].priority == best)
			idx[k++] = idx[i];
	return k;
}

unsigned balance_select(const struct zone_snapshot *snap, const struct zone_service *svc,
                        int family, struct balance_state *st, const struct balance_client *client,
                        uint16_t *idx, unsigned max, struct balance_explain *ex)
{
	unsigned n = 0;
	/* Each backend's family is looked at only if the service has both. */
	bool by_family = family != AF_UNSPEC && (family == AF_INET ? svc->n6 : svc->n4) != 0;
	if (svc->policy == CFG_POLICY_WEIGHTED && svc->equal_weights && max >= svc->nbackends &&
	    (!svc->max_answers || svc->max_answers >= svc->nbackends)) {
		/* The usual service: equal weights, every candidate answered.
		 * The order is a uniform shuffle, made while the candidates are
		 * picked (each goes to a random slot among those so far, and
		 * the slot's one to the end: "inside-out" Fisher-Yates), with
		 * shuffle_pick as in order_weighted. */
		struct shuffle sh = { 0 };
		for (unsigned i = 0; i < svc->nbackends; i++) {
			const struct zone_backend *b = &svc->backends[i];
			if ((by_family && b->family != family) || !zone_backend_up(b))
				continue;
			if (n) {
				unsigned j = shuffle_pick(st, &sh, n + 1);
				idx[n] = idx[j];
				idx[j] = (uint16_t)i;
			} else {
				idx[0] = (uint16_t)i;
			}
			n++;
		}
		if (n) {
			if (ex) {
				ex->healthy = ex->candidates = n;
				ex->fail_open = false;
				ex->locality = NULL;
				ex->used_client = false;
			}
			return n;
		}
		/* None up: the general way (fail open). */
	}
	for (unsigned i = 0; i < svc->nbackends; i++) {
		const struct zone_backend *b = &svc->backends[i];
		if (by_family && b->family != family)
			continue;
		if (zone_backend_up(b))
			idx[n++] = (uint16_t)i;
	}
	unsigned healthy = n;
	/* Fail open only when the whole service is down: with a healthy IPv4
	 * backend, AAAA gets NODATA rather than a dead IPv6 address (a
	 * dual-stack client would try that one first). */
	bool any_up = false;
	for (unsigned i = 0; n == 0 && i < svc->nbackends && !any_up; i++)
		any_up = zone_backend_up(&svc->backends[i]);
	if (n == 0 && svc->fail_open && !any_up) {
		for (unsigned i = 0; i < svc->nbackends; i++)
			if (family == AF_UNSPEC || svc->backends[i].family == family)
				idx[n++] = (uint16_t)i;
	}
	if (ex) {
		ex->healthy = healthy;
		ex->fail_open = healthy == 0 && n > 0;
		ex->locality = NULL;
		ex->used_client = false;
	}
	if (n == 0)
		return 0;

	if (svc->policy == CFG_POLICY_FAILOVER) {
		n = balance_failover_group(svc, idx, n);
	} else if (svc->policy == CFG_POLICY_LOCALITY && client && snap) {
		const char *label = balance_locality(snap, client);
		if (ex) {
			ex->locality = label;
			ex->used_client = true;
		}
		if (label) {
			unsigned k = 0;
			for (unsigned i = 0; i < n; i++) {
				const char *bl = zone_backend_locality(&svc->backends[idx[i]]);
				if (bl && strcmp(bl, label) == 0)
					idx[k++] = idx[i];
			}
			if (k)
				n = k;
		}
	}
	if (ex)
		ex->candidates = n;

	unsigned k = n;
	if (svc->max_answers && k > svc->max_answers)
		k = svc->max_answers;
	if (k > max)
		k = max;
	switch (svc->policy) {
	case CFG_POLICY_ROUND_ROBIN:
		order_rr(svc, family, st, idx, n);
		break;
	case CFG_POLICY_HASH:
		if (client && client->family) {
			order_hash(svc, client, st->now_ms, idx, n, k);
			if (ex)
				ex->used_client = true;
		} else {
			order_weighted(svc, st, idx, n, k);
		}
		break;
	default:
		order_weighted(svc, st, idx, n, k);
		break;
	}
	return k;
}

/* registry.c -- slots by (zone origin, service owner) in an open-addressing
 * table, their pending blocks during a build, and what waits for a grace
 * period before it is freed. */
#include "registry.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/hash.h"
#include "util/itab.h"
#include "dns/wire.h"

struct rslot {
	struct zone_slot pub;         /* first: a zone_slot pointer is an rslot pointer */
	struct zone_service *cur;     /* served (pub.svc), owned */
	struct zone_service *pending; /* built by the current build, not served yet */
	uint64_t cur_key, pending_key;
	struct zone_node *node;       /* in the served snapshot: its svc follows cur */
	struct zone_node *pending_node;   /* in the snapshot being built */
	uint64_t used;                /* generation of the last build that used it */
	bool fresh;                   /* made by the current build, never served */
	uint64_t hash;
	uint32_t zi;                  /* its zone's index in the last build */
	uint16_t keylen;
	uint8_t key[];                /* zone origin, then the owner: exactly keylen */
};

/* Where a state id is served: the slot whose block has a backend with it. */
struct sidref {
	struct rslot *slot;
};

struct registry {
	struct rslot **slots;         /* live slots, in no order */
	size_t n, cap;
	struct itab index;            /* slots by key: items index slots */
	uint64_t gen;
	uint64_t builds;
	struct zone_service **garbage;
	size_t ngarbage, gcap;
	struct rslot **dead;
	size_t ndead, dcap;
	struct sidref *bysid;         /* indexed by state id */
	size_t nbysid;
};

static uint64_t key_hash(const uint8_t *k, size_t len)
{
	uint64_t h = fnv_lower(FNV_SEED, k, len);
	return h ^ (h >> 29);
}

/* origin and owner, lowercased, one after the other. */
static size_t make_key(uint8_t *out, const uint8_t *origin, size_t olen, const uint8_t *owner,
                       size_t wlen)
{
	memcpy(out, origin, olen);
	memcpy(out + olen, owner, wlen);
	for (size_t i = 0; i < olen + wlen; i++)
		if (out[i] >= 'A' && out[i] <= 'Z')
			out[i] += 'a' - 'A';
	return olen + wlen;
}

struct registry *registry_new(void)
{
	return calloc(1, sizeof(struct registry));
}

static void slot_free(struct rslot *s)
{
	if (!s)
		return;
	if (s->pending != s->cur)
		zone_block_free(s->pending);
	zone_block_free(s->cur);
	free(s);
}

void registry_free(struct registry *r)
{
	if (!r)
		return;
	registry_reclaim(r);
	for (size_t i = 0; i < r->n; i++)
		slot_free(r->slots[i]);
	free(r->slots);
	itab_free(&r->index);
	free(r->garbage);
	free(r->dead);
	free(r->bysid);
	free(r);
}

static int rehash(struct registry *r, size_t tsize)
{
	struct itab t;
	if (itab_alloc(&t, tsize) == -1)
		return -1;
	for (size_t i = 0; i < r->n; i++)
		itab_put(&t, r->slots[i]->hash, (uint32_t)i);
	itab_free(&r->index);
	r->index = t;
	return 0;
}

static struct rslot *find(const struct registry *r, const uint8_t *key, size_t len, uint64_t h)
{
	if (!r->index.slot)
		return NULL;
	size_t pos;
	uint32_t item;
	ITAB_FOR(&r->index, h, pos, item) {
		struct rslot *s = r->slots[item];
		if (s->hash == h && s->keylen == len && memcmp(s->key, key, len) == 0)
			return s;
	}
	return NULL;
}

static int push(void ***v, size_t *n, size_t *cap, void *p)
{
	if (*n == *cap) {
		size_t nc = *cap ? 2 * *cap : 64;
		void **nv = realloc(*v, nc * sizeof(*nv));
		if (!nv)
			return -1;
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = p;
	return 0;
}

/* Points the state ids of svc's backends at s. Out of memory leaves
 * some unpointed: their health changes are then not served until the
 * service's next change (logged by the caller's metrics, not fatal). */
static void point_sids(struct registry *r, const struct zone_service *svc, struct rslot *s)
{
	for (unsigned i = 0; svc && i < svc->nbackends; i++) {
		uint32_t sid = svc->backends[i].sid;
		if (!sid)
			continue;
		if (sid >= r->nbysid) {
			size_t n = r->nbysid ? r->nbysid : 1024;
			while (n <= sid)
				n *= 2;
			struct sidref *nb = realloc(r->bysid, n * sizeof(*nb));
			if (!nb)
				continue;
			memset(nb + r->nbysid, 0, (n - r->nbysid) * sizeof(*nb));
			r->bysid = nb;
			r->nbysid = n;
		}
		r->bysid[sid].slot = s;
	}
}

static void unpoint_sids(struct registry *r, const struct zone_service *svc, const struct rslot *s)
{
	for (unsigned i = 0; svc && i < svc->nbackends; i++) {
		uint32_t sid = svc->backends[i].sid;
		if (sid && sid < r->nbysid && r->bysid[sid].slot == s)
			r->bysid[sid].slot = NULL;
	}
}

const struct zone_slot *registry_sid_slot(const struct registry *r, uint32_t sid, uint32_t *zi)
{
	if (!r || !sid || sid >= r->nbysid || !r->bysid[sid].slot)
		return NULL;
	const struct rslot *s = r->bysid[sid].slot;
	/* The id may have left the service (an UPDATE removed its backend). */
	const struct zone_service *svc = s->cur;
	for (unsigned i = 0; svc && i < svc->nbackends; i++)
		if (svc->backends[i].sid == sid) {
			*zi = s->zi;
			return &s->pub;
		}
	return NULL;
}

void registry_begin(struct registry *r)
{
	r->gen++;
}

const struct zone_slot *registry_get(struct registry *r, const struct cfg_zone *cz,
                                     const struct cfg_service *cs, uint32_t id,
                                     const struct bstate *states, zone_sid_fn sid, void *sarg,
                                     size_t zi, size_t si, const struct zone_service **svc,
                                     char *err, size_t errlen)
{
	uint8_t key[2 * DNS_NAME_MAX];
	size_t len = make_key(key, cz->origin, cz->originlen, cs->owner, cs->ownerlen);
	uint64_t h = key_hash(key, len);
	struct rslot *s = find(r, key, len, h);
	if (!s) {
		size_t tsize = itab_size(&r->index);
		if ((r->n + 1) * 2 > tsize && rehash(r, tsize ? 2 * tsize : 256) == -1)
			goto oom;
		s = calloc(1, sizeof(*s) + len);
		if (!s || push((void ***)&r->slots, &r->n, &r->cap, s) == -1) {
			free(s);
			goto oom;
		}
		memcpy(s->key, key, len);
		s->keylen = (uint16_t)len;
		s->hash = h;
		s->fresh = true;
		itab_put(&r->index, h, (uint32_t)r->n - 1);
	}
	s->used = r->gen;
	s->zi = (uint32_t)zi;
	uint64_t k = zone_block_key(cs, states, sid, sarg, zi, si);
	if (cs->frozen && !(s->pending && s->pending_key == k) && !(s->cur && s->cur_key == k)) {
		/* Its backends are in a block of this slot, or nowhere. */
		snprintf(err, errlen, "service %s: its backends are not in this registry", cs->name);
		return NULL;
	}
	if (s->pending && s->pending_key != k) {
		zone_block_free(s->pending);
		s->pending = NULL;
	}
	if (!s->pending && (!s->cur || s->cur_key != k)) {
		s->pending = zone_block_build(cz, cs, id, states, sid, sarg, zi, si, err, errlen);
		if (!s->pending)
			return NULL;
		s->pending_key = k;
		r->builds++;
	}
	*svc = s->pending ? s->pending : s->cur;
	return &s->pub;
oom:
	snprintf(err, errlen, "out of memory");
	return NULL;
}

void registry_bind(struct registry *r, const struct zone_slot *slot, struct zone_node *node)
{
	if (r && slot)
		((struct rslot *)(uintptr_t)slot)->pending_node = node;
}

const struct zone_service *registry_slot_next(const struct zone_slot *slot)
{
	const struct rslot *s = (const struct rslot *)slot;
	return s->pending ? s->pending : s->cur;
}

void registry_commit(struct registry *r)
{
	size_t k = 0;
	bool removed = false;
	for (size_t i = 0; i < r->n; i++) {
		struct rslot *s = r->slots[i];
		if (s->used != r->gen) {
			/* Not in the new snapshot: the old one reads it until the
			 * grace period is over. */
			unpoint_sids(r, s->cur, s);
			s->node = s->pending_node = NULL;
			if (push((void ***)&r->dead, &r->ndead, &r->dcap, s) == -1)
				r->slots[k++] = s;    /* kept (leaked until the next commit) */
			else
				removed = true;
			continue;
		}
		if (s->pending) {
			/* Out of memory for the list leaks the old block rather than
			 * free it under readers. */
			if (s->cur)
				push((void ***)&r->garbage, &r->ngarbage, &r->gcap, s->cur);
			s->cur = s->pending;
			s->cur_key = s->pending_key;
			s->pending = NULL;
			__atomic_store_n(&s->pub.svc, s->cur, __ATOMIC_RELEASE);
			point_sids(r, s->cur, s);
		}
		s->node = s->pending_node;
		s->pending_node = NULL;
		s->fresh = false;
		r->slots[k++] = s;
	}
	r->n = k;
	if (removed && rehash(r, itab_size(&r->index)) == -1) {
		/* Without a new table the old one would index freed slots:
		 * keep them all instead (nothing is retired this time). */
		for (size_t i = 0; i < r->ndead; i++)
			r->slots[r->n++] = r->dead[i];
		r->ndead = 0;
		rehash(r, itab_size(&r->index));
	}
}

void registry_abort(struct registry *r)
{
	size_t k = 0;
	bool removed = false;
	for (size_t i = 0; i < r->n; i++) {
		struct rslot *s = r->slots[i];
		if (s->pending) {
			zone_block_free(s->pending);
			s->pending = NULL;
		}
		s->pending_node = NULL;
		if (s->fresh) {
			free(s);
			removed = true;
			continue;
		}
		r->slots[k++] = s;
	}
	r->n = k;
	if (removed)
		rehash(r, itab_size(&r->index) ? itab_size(&r->index) : 256);
}

void registry_reclaim(struct registry *r)
{
	for (size_t i = 0; i < r->ngarbage; i++)
		zone_block_free(r->garbage[i]);
	r->ngarbage = 0;
	for (size_t i = 0; i < r->ndead; i++)
		slot_free(r->dead[i]);
	r->ndead = 0;
}

int registry_replace(struct registry *r, const struct zone_slot *slot, const struct cfg_zone *cz,
                     const struct cfg_service *cs, const struct bstate *states, zone_sid_fn sid,
                     void *sarg, size_t zi, size_t si, char *err, size_t errlen)
{
	struct rslot *s = (struct rslot *)(uintptr_t)slot;
	uint32_t id = s->cur ? s->cur->id : 0;
	if (push((void ***)&r->garbage, &r->ngarbage, &r->gcap, NULL) == -1) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	r->ngarbage--;
	struct zone_service *nb = zone_block_build(cz, cs, id, states, sid, sarg, zi, si, err, errlen);
	if (!nb)
		return -1;
	r->builds++;
	if (s->cur)
		r->garbage[r->ngarbage++] = s->cur;
	s->cur = nb;
	s->cur_key = zone_block_key(cs, states, sid, sarg, zi, si);
	s->zi = (uint32_t)zi;
	__atomic_store_n(&s->pub.svc, nb, __ATOMIC_RELEASE);
	if (s->node)
		__atomic_store_n(&s->node->svc, nb, __ATOMIC_RELEASE);
	point_sids(r, nb, s);
	return 0;
}

uint64_t registry_slot_key(const struct zone_slot *slot)
{
	return ((const struct rslot *)slot)->cur_key;
}

size_t registry_freeze(struct registry *r, struct config *cfg)
{
	size_t n = 0;
	for (size_t zi = 0; zi < cfg->nzones; zi++) {
		const struct cfg_zone *cz = &cfg->zones[zi];
		for (size_t si = 0; si < cz->nservices; si++) {
			struct cfg_service *cs = &cz->services[si];
			if (!config_service_freezable(cs))
				continue;
			uint8_t key[2 * DNS_NAME_MAX];
			size_t len = make_key(key, cz->origin, cz->originlen, cs->owner, cs->ownerlen);
			const struct rslot *s = find(r, key, len, key_hash(key, len));
			if (!s || !s->cur || s->pending ||
			    s->cur_key != zone_block_key(cs, NULL, NULL, NULL, zi, si))
				continue;
			config_service_freeze(cs, s->cur_key);
			n++;
		}
	}
	/* What did not freeze leaves the slab, which goes (out of memory: it
	 * stays, and so does its memory). */
	config_slab_release(cfg);
	return n;
}

size_t registry_count(const struct registry *r)
{
	return r ? r->n : 0;
}

size_t registry_bytes(const struct registry *r)
{
	size_t total = 0;
	for (size_t i = 0; r && i < r->n; i++)
		total += zone_block_bytes(r->slots[i]->cur);
	return total;
}

uint64_t registry_builds(const struct registry *r)
{
	return r ? r->builds : 0;
}

/* zone.c -- building, looking up, publishing and retiring zone snapshots.
 * A build works in temporary malloc'd tables, then copies the result into
 * one arena; lookups are allocation-free over that arena. */
#include "zone.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <urcu-qsbr.h>

#include "util/arena.h"
#include "util/hash.h"
#include "util/itab.h"
#include "util/rcupub.h"
#include "registry.h"
#include "svcname.h"
#include "dns/wire.h"

/* ---- hashing ------------------------------------------------------------ */

/* A keyed FNV-1a variant over the lowercased name. Keys come from the
 * config, not from clients, so flooding a bucket needs the operator; the
 * per-snapshot key still keeps probe lengths independent of the names. */
static uint64_t name_hash(uint64_t key, const uint8_t *name, size_t len)
{
	if (len >= 8 && len <= 16) {
		/* Most names (svc.zone. is 8 to 16 bytes): both halves, folded
		 * to lowercase, multiplied together once (the high and low
		 * halves of the product folded, as wyhash does). */
		uint64_t a, b;
		memcpy(&a, name, 8);
		memcpy(&b, name + len - 8, 8);
		unsigned __int128 p = (unsigned __int128)(word_lower(a) ^ key ^ len * 0x9e3779b97f4a7c15ull) *
		                      (word_lower(b) ^ 0xe7037ed1a0b428dbull);
		return (uint64_t)p ^ (uint64_t)(p >> 64);
	}
	uint64_t h = hash_lower(FNV_SEED ^ key, name, len);
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return h;
}

/* ---- build-time structures (temporary, malloc) ---------------------------- */

/* A record of a node; a node's records are a list through next (index
 * into builder.ents, 0 = end). rdata points into the config or the
 * snapshot arena, both alive for the whole build. */
struct bent {
	const uint8_t *rdata;
	uint32_t ttl;
	uint16_t type;
	uint16_t rdlen;
	uint32_t next;
};

/* Builder nodes are small (32 bytes) and their names live in one byte
 * pool: 100k services x 10 backends make over a million of them. */
struct bnode {
	uint32_t name_off;            /* into builder.names */
	uint8_t namelen;
	uint8_t kind;
	uint16_t port_idx;
	uint32_t svc_idx;             /* SERVICE and SRV nodes */
	uint32_t ents, nents;         /* first record (0: none), count */
	/* Backend a target name was made for (index + 1, 0: none), so two
	 * backends on one address may share it. */
	uint32_t t_svc, t_be;
};

struct builder {
	struct bnode *nodes;
	size_t n, cap;
	struct itab index;    /* nodes by name */
	uint8_t *names;       /* node names, lowercase */
	size_t names_len, names_cap;
	struct bent *ents;    /* [0] unused */
	size_t nents, ents_cap;
	uint32_t *target;     /* per backend of the zone (service order): its name's node */
	uint64_t key;
	const uint8_t *origin;
	size_t originlen;
	char *err;
	size_t errlen;
};

static void set_err(struct builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(struct builder *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b->err, b->errlen, fmt, ap);
	va_end(ap);
}

static const uint8_t *bn_name(const struct builder *b, const struct bnode *n)
{
	return b->names + n->name_off;
}

static int b_rehash(struct builder *b, size_t nslots)
{
	struct itab t;
	if (itab_alloc(&t, nslots) == -1)
		return -1;
	for (size_t i = 0; i < b->n; i++)
		itab_put(&t, name_hash(b->key, bn_name(b, &b->nodes[i]), b->nodes[i].namelen),
		         (uint32_t)i);
	itab_free(&b->index);
	b->index = t;
	return 0;
}

static struct bnode *b_find(struct builder *b, const uint8_t *name, size_t len)
{
	size_t pos;
	uint32_t item;
	ITAB_FOR(&b->index, name_hash(b->key, name, len), pos, item) {
		struct bnode *n = &b->nodes[item];
		if (n->namelen == len && wire_name_equal(bn_name(b, n), n->namelen, name, len))
			return n;
	}
	return NULL;
}

/* Grows *p (of *cap elements of size) to hold need; -1 on ENOMEM. */
static int grow(void **p, size_t *cap, size_t need, size_t size, size_t first)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : first;
	while (c < need)
		c *= 2;
	if (c > UINT32_MAX)
		return -1;
	void *q = realloc(*p, c * size);
	if (!q)
		return -1;
	*p = q;
	*cap = c;
	return 0;
}

/* Finds or creates the node for name (which must be at or below the
 * origin), creating empty non-terminals up to the apex so that NXDOMAIN
 * and NODATA are told apart correctly (RFC 8020). name must not point
 * into the builder's own pool. */
static struct bnode *b_get(struct builder *b, const uint8_t *name, size_t len)
{
	struct bnode *n = b_find(b, name, len);
	if (n)
		return n;
	if (len > b->originlen) {
		size_t skip = wire_name_skip_labels(name, len, 1);
		if (!b_get(b, name + skip, len - skip))
			return NULL;
	}
	if (grow((void **)&b->nodes, &b->cap, b->n + 1, sizeof(*b->nodes), 64) == -1 ||
	    grow((void **)&b->names, &b->names_cap, b->names_len + len, 1, 4096) == -1)
		return NULL;
	n = &b->nodes[b->n++];
	memset(n, 0, sizeof(*n));
	n->name_off = (uint32_t)b->names_len;
	n->namelen = (uint8_t)len;
	memcpy(b->names + b->names_len, name, len);
	wire_name_lower(b->names + b->names_len, len);
	b->names_len += len;
	size_t nslots = itab_size(&b->index);
	if (b->n * 2 > nslots) {
		if (b_rehash(b, nslots ? nslots * 2 : 128) == -1)
			return NULL;
	} else {
		itab_put(&b->index, name_hash(b->key, bn_name(b, n), len), (uint32_t)b->n - 1);
	}
	return n;
}

static int b_add(struct builder *b, struct bnode *n, uint16_t type, uint32_t ttl,
                 const uint8_t *rdata, uint16_t rdlen)
{
	uint32_t last = 0;
	for (uint32_t i = n->ents; i; i = b->ents[i].next) {
		struct bent *e = &b->ents[i];
		last = i;
		/* Duplicate RRs collapse (RFC 2181 5); RRset TTLs unify to the lowest. */
		if (e->type == type) {
			if (e->ttl > ttl)
				e->ttl = ttl;
			else
				ttl = e->ttl;
			if (e->rdlen == rdlen && memcmp(e->rdata, rdata, rdlen) == 0)
				return 0;
		}
	}
	for (uint32_t i = n->ents; i; i = b->ents[i].next)
		if (b->ents[i].type == type)
			b->ents[i].ttl = ttl;
	if (b->nents == 0)
		b->nents = 1;
	if (grow((void **)&b->ents, &b->ents_cap, b->nents + 1, sizeof(*b->ents), 256) == -1)
		return -1;
	uint32_t k = (uint32_t)b->nents++;
	b->ents[k] = (struct bent){ rdata, ttl, type, rdlen, 0 };
	if (last)
		b->ents[last].next = k;
	else
		n->ents = k;
	n->nents++;
	return 0;
}

static void b_free(struct builder *b)
{
	free(b->nodes);
	itab_free(&b->index);
	free(b->names);
	free(b->ents);
	free(b->target);
}

/* ---- snapshot assembly ---------------------------------------------------- */

static int cmp_bent_type(const void *a, const void *b)
{
	const struct bent *x = a, *y = b;
	/* SOA first at the apex, then by type; stable enough for our use as
	 * qsort is only used on entries of one node. */
	int xs = x->type == DNS_TYPE_SOA ? -1 : x->type;
	int ys = y->type == DNS_TYPE_SOA ? -1 : y->type;
	if (xs != ys)
		return xs < ys ? -1 : 1;
	return x->rdata < y->rdata ? -1 : x->rdata > y->rdata;
}

struct build_ctx {
	struct registry *reg;
	const struct bstate *states;
	zone_sid_fn sid;
	void *sarg;
	size_t zi;
	uint32_t next_id;
	size_t nchecked;              /* backends with a state id */
};

/* Smooth weighted round robin (as nginx): each step adds every weight to
 * its current value, picks the largest and subtracts the total. Weights
 * are scaled so a schedule is at most 1024 long. */
static int build_rr(struct arena *a, struct zone_service *s, struct zone_backend *bes, int which)
{
	uint16_t members[ZONE_MAX_BACKENDS];
	unsigned n = 0;
	for (unsigned i = 0; i < s->nbackends; i++) {
		bool fam = which == 2 || (which == 0 ? bes[i].family == AF_INET : bes[i].family == AF_INET6);
		if (!fam)
			continue;
		members[n++] = (uint16_t)i;
	}
	if (n == 0)
		return 0;
	uint64_t total = 0;
	for (unsigned i = 0; i < n; i++)
		total += bes[members[i]].weight;
	uint64_t len = total, div = 1;
	while (len > 1024 && len > n) {
		div *= 2;
		len = 0;
		for (unsigned i = 0; i < n; i++) {
			uint64_t w = bes[members[i]].weight / div;
			len += w ? w : 1;
		}
	}
	uint16_t *sched = arena_alloc(a, len * sizeof(*sched));
	int64_t *cur = calloc(n, sizeof(*cur));
	if (!sched || !cur) {
		free(cur);
		return -1;
	}
	for (uint64_t k = 0; k < len; k++) {
		unsigned best = 0;
		for (unsigned i = 0; i < n; i++) {
			uint64_t w = bes[members[i]].weight / div;
			cur[i] += (int64_t)(w ? w : 1);
			if (cur[i] > cur[best])
				best = i;
		}
		cur[best] -= (int64_t)len;
		sched[k] = members[best];
	}
	free(cur);
	s->rr_sched[which] = sched;
	s->rr_len[which] = (uint16_t)len;
	return 0;
}

/* Copies the rdata of n's records (sorted by type) into RRsets in the
 * arena: per RRset one pointer array, per record len + data, packed. */
static int copy_rrsets(struct arena *a, struct builder *b, const struct bnode *bn,
                       struct zone_node *zn)
{
	struct bent one[8], *ents = one;
	size_t n = bn->nents;
	if (n == 0)
		return 0;
	if (n > sizeof(one) / sizeof(one[0]) && !(ents = malloc(n * sizeof(*ents))))
		return -1;
	size_t k = 0;
	for (uint32_t i = bn->ents; i; i = b->ents[i].next)
		ents[k++] = b->ents[i];
	if (n > 1)
		qsort(ents, n, sizeof(*ents), cmp_bent_type);
	size_t nsets = 0;
	for (size_t j = 0; j < n; j++)
		nsets += j == 0 || ents[j].type != ents[j - 1].type;
	int rc = -1;
	struct zone_rrset *sets = arena_alloc_aligned(a, nsets * sizeof(*sets), 8);
	if (!sets)
		goto out;
	size_t si = 0;
	for (size_t j = 0; j < n;) {
		size_t e = j;
		while (e < n && ents[e].type == ents[j].type)
			e++;
		if (e - j > 65535) {
			set_err(b, "too many records of one type at one name");
			rc = -2;
			goto out;
		}
		struct zone_rrset *rs = &sets[si++];
		rs->type = ents[j].type;
		rs->ttl = ents[j].ttl;
		rs->count = (uint16_t)(e - j);
		const struct zone_rdata **rd = arena_alloc_aligned(a, (e - j) * sizeof(*rd), 8);
		if (!rd)
			goto out;
		for (size_t m = j; m < e; m++) {
			struct zone_rdata *r = arena_alloc_aligned(a, sizeof(*r) + ents[m].rdlen,
			                                           _Alignof(struct zone_rdata));
			if (!r)
				goto out;
			r->len = ents[m].rdlen;
			memcpy(r->data, ents[m].rdata, r->len);
			rd[m - j] = r;
		}
		rs->rd = rd;
		j = e;
	}
	zn->rrsets = sets;
	zn->nrrsets = (uint16_t)nsets;
	rc = 0;
out:
	if (ents != one)
		free(ents);
	return rc;
}

/* Fills s from cs. Target names are shared with the zone's nodes (built
 * before the services), so a backend costs no name of its own. */
/* bes: the backends' array, allocated by the caller right after s (an
 * answer reads s and then the backends: adjacent lines). */
static int copy_service(struct arena *a, const struct builder *b, const struct cfg_service *cs,
                        const uint32_t *target, struct zone_service *s, struct zone_backend *bes,
                        struct build_ctx *bc, size_t si, uint32_t id)
{
	/* The target names first, right after the backends (an SRV answer
	 * reads both): once per name, shared by the backends that have it. */
	for (size_t i = 0; i < cs->nbackends; i++) {
		const struct bnode *tn = &b->nodes[target[i]];
		if (tn->t_be != i + 1) {
			zone_backend_set_target(&bes[i], zone_backend_target(&bes[tn->t_be - 1]));
			bes[i].targetlen = tn->namelen;
			s->dup_targets = true;
			continue;
		}
		const uint8_t *t = arena_bytes(a, bn_name(b, tn), tn->namelen);
		if (!t)
			return -1;
		zone_backend_set_target(&bes[i], t);
		bes[i].targetlen = tn->namelen;
		bes[i].target_first = true;
		if (tn->namelen > s->target_max)
			s->target_max = (uint8_t)tn->namelen;
	}
	s->owner = arena_bytes(a, cs->owner, cs->ownerlen);
	s->ownerlen = (uint8_t)cs->ownerlen;
	s->ttl = cs->ttl;
	s->policy = cs->policy;
	s->max_answers = cs->max_answers;
	s->fail_open = cs->fail_open;
	s->oversize = (uint8_t)cs->oversize;
	struct zone_port *ports = arena_alloc_aligned(a, cs->nports * sizeof(*ports), 8);
	if (!s->owner || !ports || !bes)
		return -1;
	for (size_t i = 0; i < cs->nports; i++) {
		size_t nl = strlen(cs->ports[i].name) + 1;
		ports[i].name = arena_bytes(a, cs->ports[i].name, nl);
		ports[i].port = cs->ports[i].port;
		ports[i].proto = cs->ports[i].proto;
		if (!ports[i].name)
			return -1;
	}
	for (size_t i = 0; i < cs->nbackends; i++) {
		const struct cfg_backend *cb = &cs->backends[i];
		struct zone_backend *zb = &bes[i];
		zb->family = (uint8_t)cb->family;
		memcpy(zb->addr, cb->addr, sizeof(zb->addr));
		zb->port = cb->port;
		zb->weight = (uint16_t)(cb->weight > 65535 ? 65535 : cb->weight);
		zb->priority = cb->priority;
		zb->sid = bc->sid ? bc->sid(bc->sarg, bc->zi, si, i) : 0;
		zb->state = bstate_slot(bc->states, zb->sid);
		bc->nchecked += zb->sid != 0;
		zb->source = cb->source;
		/* The name is the target's first label (lowercase): kept apart
		 * only when written otherwise, with the locality and etcd key. */
		const uint8_t *tname = zone_backend_target(zb);
		bool own_name = cb->name && (strlen(cb->name) != (size_t)tname[0] ||
		                             memcmp(cb->name, tname + 1, tname[0]) != 0);
		if (own_name || cb->locality || cb->src_key) {
			struct zone_backend_info *in = arena_alloc_aligned(a, sizeof(*in), 8);
			if (!in)
				return -1;
			in->name = own_name ? arena_bytes(a, cb->name, strlen(cb->name) + 1) : NULL;
			in->locality = cb->locality ? arena_bytes(a, cb->locality,
			                                          strlen(cb->locality) + 1) : NULL;
			in->src_key = cb->src_key ? arena_bytes(a, cb->src_key, strlen(cb->src_key) + 1)
			                          : NULL;
			if ((own_name && !in->name) || (cb->locality && !in->locality) ||
			    (cb->src_key && !in->src_key))
				return -1;
			zone_backend_set_info(zb, in);
		}
		if (cb->family == AF_INET)
			s->n4++;
		else
			s->n6++;
	}
	/* One host on several ports is several backends with one address:
	 * its A/AAAA record must appear once per answer (RFC 2181 5). */
	for (size_t i = 0; i < cs->nbackends; i++) {
		bes[i].addr_first = (uint16_t)i;
		for (size_t j = 0; j < i; j++) {
			if (bes[j].family == bes[i].family &&
			    memcmp(bes[j].addr, bes[i].addr, sizeof(bes[i].addr)) == 0) {
				bes[i].addr_first = (uint16_t)j;
				s->dup_addrs = true;
				break;
			}
		}
	}
	s->id = id;
	s->slow_start_ms = cs->slow_start_ms;
	s->equal_weights = !cs->slow_start_ms;
	for (size_t i = 1; i < cs->nbackends; i++)
		if (bes[i].weight != bes[0].weight)
			s->equal_weights = false;
	s->ports = ports;
	s->nports = (unsigned)cs->nports;
	s->backends = bes;
	s->nbackends = (unsigned)cs->nbackends;
	if (cs->policy == CFG_POLICY_ROUND_ROBIN)
		for (int w = 0; w < 3; w++)
			if (build_rr(a, s, bes, w) == -1)
				return -1;
	return 0;
}

/* Table entries are node index + 1 in the low bits and, above them, that
 * many bits of the name's hash as a tag: the bits the index does not need
 * for n nodes. */
static uint32_t table_tagmask(size_t n)
{
	unsigned bits = 1;
	while (bits < 32 && ((size_t)1 << bits) <= n)
		bits++;
	return bits >= 32 ? 0 : ~(((uint32_t)1 << bits) - 1);
}

/* Copies the builder's nodes, their names and table into a: for a zone
 * (zone set) or a service's block (svc set: SRV nodes answer for it). */
static int emit_nodes(struct arena *a, struct builder *b, const struct zone_service *svc, struct zone_node **nodesp, uint32_t *nnodesp,
                      const uint32_t **tablep, uint32_t *maskp, uint32_t *tagmaskp)
{
	/* In a block, the backends' target names get no node: their table
	 * entries point at the backend (index nnodes + backend index). */
	/* Nor the owner (a block's node 0): the zone's node answers for it. */
	size_t first = svc ? 1 : 0, nn = 0, nbe = svc ? svc->nbackends : 0;
	for (size_t i = first; i < b->n; i++)
		nn += !(svc && b->nodes[i].t_be);
	size_t tsize = 16;
	while (tsize < b->n * 2)
		tsize *= 2;
	uint32_t tagmask = table_tagmask(nn + nbe);
	/* A zone's nodes one per cache line, so a lookup touches one line per
	 * node. A service's block stays packed: it is small, and sized to fit
	 * by a first layout whose addresses differ. */
	size_t align = svc ? 8 : 64;
	uint32_t *table = arena_alloc_aligned(a, tsize * sizeof(*table), align);
	struct zone_node *nodes = arena_alloc_aligned(a, nn * sizeof(*nodes), align);
	/* Short names live in their node; the others in one block. */
	size_t long_len = 0;
	for (size_t i = first; i < b->n; i++)
		if (b->nodes[i].namelen > ZONE_NODE_INLINE && !(svc && b->nodes[i].t_be))
			long_len += b->nodes[i].namelen;
	uint8_t *names = long_len ? arena_alloc_aligned(a, long_len, 1) : NULL;
	if (!table || (nn && !nodes) || (long_len && !names))
		return -1;
	size_t k = 0;
	for (size_t i = first; i < b->n; i++) {
		struct bnode *bn = &b->nodes[i];
		const uint8_t *src = b->names + bn->name_off;
		uint32_t entry;
		if (svc && bn->t_be) {
			entry = (uint32_t)(nn + bn->t_be - 1) + 1;
		} else {
			struct zone_node *zn = &nodes[k];
			if (bn->namelen <= ZONE_NODE_INLINE) {
				memcpy(zn->inline_name, src, bn->namelen);
				zn->name = zn->inline_name;
			} else {
				memcpy(names, src, bn->namelen);
				zn->name = names;
				names += bn->namelen;
			}
			zn->namelen = bn->namelen;
			zn->kind = bn->kind;
			if (bn->kind == ZONE_NODE_SRV) {
				zn->svc = svc;
				zn->port_idx = bn->port_idx;
			}
			int r = copy_rrsets(a, b, bn, zn);
			if (r != 0)
				return r;
			entry = (uint32_t)++k;
		}
		uint64_t hv = name_hash(b->key, src, bn->namelen);
		size_t h = hv & (tsize - 1);
		while (table[h])
			h = (h + 1) & (tsize - 1);
		table[h] = ((uint32_t)(hv >> 32) & tagmask) | entry;
	}
	*nodesp = nodes;
	*nnodesp = (uint32_t)nn;
	*tablep = table;
	*maskp = (uint32_t)(tsize - 1);
	*tagmaskp = tagmask;
	return 0;
}

/* The node named name in a table of nodes[0..nnodes) (a zone's, or a
 * block's). A block's entries from nnodes on are its backends' target
 * names: a match there sets *be and returns NULL (backends NULL: none).
 * Inline in its two callers: each gets its own copy, without the ten
 * arguments passed (the zone's without the backends). */
static inline __attribute__((always_inline)) const struct zone_node *
table_find(uint64_t key, uint32_t mask, uint32_t tagmask, const uint32_t *table,
           const struct zone_node *nodes, uint32_t nnodes, const struct zone_backend *backends,
           const uint8_t *name, size_t len, const struct zone_backend **be)
{
	uint64_t hv = name_hash(key, name, len);
	uint32_t tag = (uint32_t)(hv >> 32) & tagmask;
	size_t h = hv & mask;
	uint32_t e;
	*be = NULL;
	while ((e = table[h])) {
		/* Only an entry whose tag matches is read (a miss costs table
		 * probes, not a cache line per node probed). */
		if ((e & tagmask) == tag) {
			uint32_t i = (e & ~tagmask) - 1;
			if (i < nnodes) {
				const struct zone_node *n = &nodes[i];
				if (n->namelen == len && wire_name_equal(n->name, n->namelen, name, len))
					return n;
			} else if (backends) {
				const struct zone_backend *b = &backends[i - nnodes];
				if (b->targetlen == len &&
				    wire_name_equal(zone_backend_target(b), b->targetlen, name, len)) {
					*be = b;
					return NULL;
				}
			}
		}
		h = (h + 1) & mask;
	}
	return NULL;
}

/* A service's block: the zone_service first, so the block is freed
 * through it. */
struct zone_block {
	struct zone_service svc;
	struct arena *arena;
};

void zone_block_free(struct zone_service *svc)
{
	if (svc)
		arena_free(((struct zone_block *)svc)->arena);
}

size_t zone_block_bytes(const struct zone_service *svc)
{
	return svc ? arena_used(((const struct zone_block *)svc)->arena) : 0;
}

static uint64_t hash_str(uint64_t h, const char *s)
{
	return s ? fnv_bytes(h, s, strlen(s) + 1) : fnv_bytes(h, "\xff", 1);
}

uint64_t zone_block_key(const struct cfg_service *cs, const struct bstate *states, zone_sid_fn sid,
                        void *sarg, size_t zi, size_t si)
{
	uint64_t h = FNV_SEED;
	if (cs->frozen)
		return cs->block_key;
	if (cs->nbackends > ZONE_MAX_BACKENDS || cs->nports > UINT16_MAX)
		return 0;             /* zone_block_build refuses it: never reused */
	uint32_t nums[8] = { cs->ttl, (uint32_t)cs->policy, cs->max_answers, cs->fail_open,
		             cs->slow_start_ms, (uint32_t)cs->oversize, (uint32_t)cs->nports,
		             (uint32_t)cs->nbackends };
	h = fnv_bytes(h, cs->owner, cs->ownerlen);
	h = fnv_bytes(h, nums, sizeof(nums));
	for (size_t i = 0; i < cs->nports; i++) {
		h = hash_str(h, cs->ports[i].name);
		h = fnv_bytes(h, &cs->ports[i].port, sizeof(cs->ports[i].port));
		h = fnv_bytes(h, &cs->ports[i].proto, sizeof(cs->ports[i].proto));
	}
	for (size_t i = 0; i < cs->nbackends; i++) {
		const struct cfg_backend *b = &cs->backends[i];
		uint32_t v[5] = { (uint32_t)b->family, b->port, b->weight, b->priority,
			          sid ? sid(sarg, zi, si, i) : 0 };
		h = fnv_bytes(h, b->addr, sizeof(b->addr));
		h = fnv_bytes(h, v, sizeof(v));
		h = hash_str(h, b->name);
		h = hash_str(h, b->locality);
		h = hash_str(h, b->src_key);
		h = fnv_bytes(h, &b->source, sizeof(b->source));
	}
	(void)states;
	return hash_mix64(h);
}

struct zone_service *zone_block_build(const struct cfg_zone *cz, const struct cfg_service *cs,
                                      uint32_t id, const struct bstate *states, zone_sid_fn sid,
                                      void *sarg, size_t zi, size_t si, char *err, size_t errlen)
{
	struct builder b = { .err = err, .errlen = errlen };
	struct zone_service *out = NULL;
	struct arena *a = NULL;
	uint8_t name[DNS_NAME_MAX];
	(void)cz;
	if (cs->frozen) {
		set_err(&b, "service %s: its backends are in its block (frozen)", cs->name);
		return NULL;
	}
	if (cs->nbackends > ZONE_MAX_BACKENDS) {
		set_err(&b, "service %s: more than %d backends", cs->name, ZONE_MAX_BACKENDS);
		return NULL;
	}
	if (cs->nports > UINT16_MAX) {
		set_err(&b, "service %s: more than %d ports", cs->name, UINT16_MAX);
		return NULL;
	}
	getrandom(&b.key, sizeof(b.key), 0);
	b.origin = cs->owner;
	b.originlen = cs->ownerlen;
	size_t guess = 3 + 2 * cs->nports + cs->nbackends;
	b.target = malloc((cs->nbackends + 1) * sizeof(*b.target));
	if (!b.target || b_rehash(&b, itab_slots(guess)) == -1 ||
	    grow((void **)&b.nodes, &b.cap, guess, sizeof(*b.nodes), 16) == -1 ||
	    grow((void **)&b.ents, &b.ents_cap, guess, sizeof(*b.ents), 16) == -1)
		goto oom;
	if (!b_get(&b, cs->owner, cs->ownerlen))   /* node 0: the owner (answered by the zone) */
		goto oom;
	for (size_t pi = 0; pi < cs->nports; pi++) {
		size_t nlen = svcname_srv(name, cs->ports[pi].name, cs->ports[pi].proto, cs->owner,
		                          cs->ownerlen);
		if (!nlen) {
			set_err(&b, "service %s: port name %s makes a name too long", cs->name,
			        cs->ports[pi].name);
			goto out;
		}
		struct bnode *pnode = b_get(&b, name, nlen);
		if (!pnode)
			goto oom;
		if (pnode->kind != ZONE_NODE_PLAIN || pnode->nents) {
			set_err(&b, "service %s: port %s clashes with other data", cs->name,
			        cs->ports[pi].name);
			goto out;
		}
		pnode->kind = ZONE_NODE_SRV;
		pnode->port_idx = (uint16_t)pi;
	}
	for (size_t bi = 0; bi < cs->nbackends; bi++) {
		const struct cfg_backend *cb = &cs->backends[bi];
		const char *bn = cb->name ? cb->name : "backend";
		size_t nlen = svcname_target(name, bn, cs->owner, cs->ownerlen);
		if (!nlen) {
			set_err(&b, "service %s: backend name %s is too long", cs->name, bn);
			goto out;
		}
		struct bnode *tn = b_get(&b, name, nlen);
		if (!tn)
			goto oom;
		b.target[bi] = (uint32_t)(tn - b.nodes);
		size_t alen = cb->family == AF_INET ? 4 : 16;
		if (tn->kind != ZONE_NODE_PLAIN || (tn->nents && !tn->t_be)) {
			set_err(&b, "service %s: backend name %s clashes with other data", cs->name, bn);
			goto out;
		}
		if (tn->t_be) {
			/* Same name twice: only fine for the same address. */
			const struct cfg_backend *first = &cs->backends[tn->t_be - 1];
			if (first->family != cb->family || memcmp(first->addr, cb->addr, alen) != 0) {
				set_err(&b, "service %s: backend name %s used for two addresses", cs->name, bn);
				goto out;
			}
			continue;
		}
		/* Its A/AAAA is the backend's address, read from the backend:
		 * the name gets a table entry, no node and no RRset. */
		tn->t_be = (uint32_t)bi + 1;
	}
	/* The block is laid out twice: in a scratch arena to learn its exact
	 * size (alignment included), then in one heap block of that size, so
	 * 100k services waste nothing on estimates. */
	static _Thread_local struct arena *scratch;
	if (!scratch && !(scratch = arena_new(0)))
		goto oom;
	struct zone_block *blk = NULL;
	struct zone_node *nodes;
	const uint32_t *table;
	uint32_t mask, tagmask, nnodes;
	for (int pass = 0; pass < 2; pass++) {
		struct arena *into = scratch;
		if (pass == 1) {
			size_t need = arena_used(scratch);
			arena_reset(scratch);
			if (!(a = arena_new_heap(need)))
				goto oom;
			into = a;
		}
		blk = arena_alloc(into, sizeof(*blk));
		struct zone_backend *bes = arena_alloc_aligned(into, cs->nbackends * sizeof(*bes), 8);
		if (!blk || !bes)
			goto oom;
		blk->arena = into;
		/* The sizing pass asks no state ids: they change no size. */
		struct build_ctx bc = { .states = states, .sid = pass ? sid : NULL, .sarg = sarg,
			                .zi = zi };
		if (copy_service(into, &b, cs, b.target, &blk->svc, bes, &bc, si, id) == -1)
			goto oom;
		int r = emit_nodes(into, &b, &blk->svc, &nodes, &nnodes, &table, &mask, &tagmask);
		if (r == -1)
			goto oom;
		if (r < 0)
			goto out;
	}
	for (uint32_t i = 0; i < nnodes; i++)
		if (nodes[i].kind == ZONE_NODE_SRV && nodes[i].port_idx < cs->nports)
			((struct zone_port *)blk->svc.ports)[nodes[i].port_idx].srv = &nodes[i];
	blk->svc.nodes = nodes;
	blk->svc.nnodes = nnodes;
	blk->svc.table = table;
	blk->svc.mask = mask;
	blk->svc.tagmask = tagmask;
	blk->svc.hash_key = b.key;
	out = &blk->svc;
	a = NULL;
	goto out;
oom:
	snprintf(err, errlen, "out of memory building service %s", cs->name);
out:
	if (scratch && arena_used(scratch))
		arena_reset(scratch);
	arena_free(a);
	b_free(&b);
	return out;
}

/* A query that found a service reads its block next: the head, the
 * backends right after it, and for a name below it the table and nodes.
 * Asking for the first lines at once lets their cache misses overlap
 * instead of following one another (a miss costs more than the query's
 * own work at a million names). Prefetches never fault. */
static inline void block_prefetch(const struct zone_service *svc)
{
	const char *p = (const char *)svc;
	for (int i = 0; i < 12; i++)
		__builtin_prefetch(p + 64 * i);
}

/* The first ports' _name._proto nodes, matched label for label: an SRV
 * query's name (below a service found by its owner) needs no hash. NULL:
 * not one of them (the block's table decides). */
enum { SRV_SCAN_PORTS = 4 };

static const struct zone_node *block_find_srv(const struct zone_service *svc,
                                              const uint8_t *name, size_t len)
{
	if (len <= svc->ownerlen)
		return NULL;
	size_t below = len - svc->ownerlen;   /* the owner itself matched already */
	for (unsigned i = 0; i < svc->nports && i < SRV_SCAN_PORTS; i++) {
		const struct zone_node *n = svc->ports[i].srv;
		if (n && n->namelen == len && wire_name_equal(name, below, n->name, below))
			return n;
	}
	return NULL;
}

/* The node named exactly name inside svc's block, or NULL. A backend's
 * target name has no node: it is made in *tnode. */
static const struct zone_node *block_find(const struct zone_service *svc, const uint8_t *name,
                                          size_t len, struct zone_node *tnode)
{
	if (!svc->table)
		return NULL;
	const struct zone_backend *b;
	const struct zone_node *n = table_find(svc->hash_key, svc->mask, svc->tagmask, svc->table,
	                                       svc->nodes, svc->nnodes, svc->backends, name, len, &b);
	if (b) {
		memset(tnode, 0, sizeof(*tnode));
		tnode->name = zone_backend_target(b);
		tnode->namelen = b->targetlen;
		tnode->kind = ZONE_NODE_TARGET;
		tnode->svc = svc;
		tnode->port_idx = (uint16_t)(b - svc->backends);
		return tnode;
	}
	return n;
}

const char *zone_backend_name(const struct zone_backend *b, char *buf, size_t len)
{
	const struct zone_backend_info *in = zone_backend_info(b);
	if (in && in->name)
		return in->name;
	const uint8_t *target = zone_backend_target(b);
	size_t n = b->targetlen ? target[0] : 0;
	if (!len || n >= len)
		return len ? (buf[0] = '\0', buf) : "";
	memcpy(buf, target + 1, n);
	buf[n] = '\0';
	return buf;
}

int zone_service_copy(struct cfg_service *dst, const struct cfg_service *src,
                      const struct zone_service *blk)
{
	if (config_service_copy(dst, src) == -1)
		return -1;
	if (!src->frozen)
		return 0;
	size_t n = src->nfrozen;
	struct cfg_backend *bs = calloc(n ? n : 1, sizeof(*bs));
	if (!bs || !blk || blk->nbackends != n ||
	    !wire_name_equal(blk->owner, blk->ownerlen, src->owner, src->ownerlen)) {
		free(bs);
		config_service_clear(dst);
		return -1;
	}
	free(dst->backends);
	dst->backends = bs;
	dst->frozen = false;
	dst->nfrozen = 0;
	dst->block_key = 0;
	for (size_t i = 0; i < n; i++) {
		const struct zone_backend *zb = &blk->backends[i];
		struct cfg_backend *b = &bs[i];
		char buf[DNS_LABEL_MAX + 1];
		const char *loc = zone_backend_locality(zb), *key = zone_backend_src_key(zb);
		b->name = strdup(zone_backend_name(zb, buf, sizeof(buf)));
		b->locality = loc ? strdup(loc) : NULL;
		b->src_key = key ? strdup(key) : NULL;
		dst->nbackends = i + 1;
		if (!b->name || (loc && !b->locality) || (key && !b->src_key)) {
			config_service_clear(dst);
			return -1;
		}
		b->family = zb->family;
		memcpy(b->addr, zb->addr, sizeof(b->addr));
		b->port = zb->port;
		b->weight = zb->weight;
		b->priority = zb->priority;
		b->source = zb->source;
	}
	return 0;
}

const uint8_t *zone_block_clash(const struct zone *z, const struct zone_service *svc, size_t *len)
{
	/* Empty non-terminals on both sides are fine. */
	for (uint32_t k = 0; k < svc->nnodes; k++) {
		const struct zone_node *bn = &svc->nodes[k];
		const struct zone_node *zn = zone_find(z, bn->name, bn->namelen);
		if (zn && (zn->nrrsets || zn->kind != ZONE_NODE_PLAIN || bn->nrrsets ||
		           bn->kind != ZONE_NODE_PLAIN)) {
			*len = bn->namelen;
			return bn->name;
		}
	}
	/* A backend's target name holds its address: any zone name there
	 * clashes. */
	for (unsigned k = 0; k < svc->nbackends; k++) {
		const struct zone_backend *be = &svc->backends[k];
		if (be->target_first && zone_find(z, zone_backend_target(be), be->targetlen)) {
			*len = be->targetlen;
			return zone_backend_target(be);
		}
	}
	return NULL;
}

static int build_zone(struct arena *a, const struct cfg_zone *cz, uint32_t serial,
                      struct zone *z, struct build_ctx *bc, char *err, size_t errlen)
{
	struct builder b = { .err = err, .errlen = errlen };
	int rc = -1;
	getrandom(&b.key, sizeof(b.key), 0);
	b.origin = cz->origin;
	b.originlen = cz->originlen;
	/* Sized for every name the config makes (plus a guess at empty
	 * non-terminals), so a big zone grows no table while it is built.
	 * The names below a service live in its block, not here. */
	size_t guess = 2 + 2 * cz->nrecords + 2 * cz->nservices;
	size_t nslots = 128;
	while (nslots < 2 * guess)
		nslots *= 2;
	if (b_rehash(&b, nslots) == -1 ||
	    grow((void **)&b.nodes, &b.cap, guess, sizeof(*b.nodes), 64) == -1 ||
	    grow((void **)&b.ents, &b.ents_cap, guess, sizeof(*b.ents), 256) == -1)
		goto oom;

	/* Apex: SOA and NS. The SOA rdata is assembled here. */
	struct bnode *apex = b_get(&b, cz->origin, cz->originlen);
	if (!apex)
		goto oom;
	size_t soalen = cz->soa.mnamelen + cz->soa.rnamelen + 20;
	uint8_t *soa = arena_alloc(a, soalen);
	if (!soa)
		goto oom;
	memcpy(soa, cz->soa.mname, cz->soa.mnamelen);
	memcpy(soa + cz->soa.mnamelen, cz->soa.rname, cz->soa.rnamelen);
	uint8_t *p = soa + cz->soa.mnamelen + cz->soa.rnamelen;
	uint32_t nums[5] = { serial, cz->soa.refresh, cz->soa.retry, cz->soa.expire, cz->soa.minimum };
	for (int i = 0; i < 5; i++) {
		p[4 * i] = (uint8_t)(nums[i] >> 24);
		p[4 * i + 1] = (uint8_t)(nums[i] >> 16);
		p[4 * i + 2] = (uint8_t)(nums[i] >> 8);
		p[4 * i + 3] = (uint8_t)nums[i];
	}
	/* The config defaults soa.ttl to the zone's ttl; an explicit 0 (do not
	 * cache the SOA, nor negative answers) is kept as 0. */
	uint32_t soa_ttl = cz->soa.ttl;
	if (b_add(&b, apex, DNS_TYPE_SOA, soa_ttl, soa, (uint16_t)soalen) == -1)
		goto oom;
	for (size_t i = 0; i < cz->nns; i++) {
		apex = &b.nodes[0];
		if (b_add(&b, apex, DNS_TYPE_NS, cz->ttl, cz->ns[i], (uint16_t)cz->nslen[i]) == -1)
			goto oom;
	}

	/* Records point into the config, which outlives the build;
	 * copy_rrsets copies them into the arena. */
	for (size_t i = 0; i < cz->nrecords; i++) {
		const struct cfg_record *r = &cz->records[i];
		if (!wire_name_is_subdomain(r->owner, r->ownerlen, cz->origin, cz->originlen)) {
			set_err(&b, "record at line %d is outside zone %s", r->line, cz->name);
			goto out;
		}
		if (r->type == DNS_TYPE_SOA) {
			set_err(&b, "line %d: SOA is made from the zone's soa settings", r->line);
			goto out;
		}
		struct bnode *n = b_get(&b, r->owner, r->ownerlen);
		if (!n || b_add(&b, n, r->type, r->ttl, r->rdata, r->rdlen) == -1)
			goto oom;
	}

	for (size_t si = 0; si < cz->nservices; si++) {
		const struct cfg_service *cs = &cz->services[si];
		struct bnode *sn = b_get(&b, cs->owner, cs->ownerlen);
		if (!sn)
			goto oom;
		if (sn->kind != ZONE_NODE_PLAIN || sn->nents) {
			set_err(&b, "service %s: name already has other data", cs->name);
			goto out;
		}
		sn->kind = ZONE_NODE_SERVICE;
		sn->svc_idx = (uint32_t)si;
	}
	if (b.n > UINT32_MAX / 4) {
		set_err(&b, "zone %s: too many names", cz->name);
		goto out;
	}

	/* CNAME exclusivity (RFC 1034 3.6.2, RFC 2181 10.1). */
	for (size_t i = 0; i < b.n; i++) {
		struct bnode *n = &b.nodes[i];
		size_t ncname = 0;
		for (uint32_t j = n->ents; j; j = b.ents[j].next)
			ncname += b.ents[j].type == DNS_TYPE_CNAME;
		if (ncname && (ncname != n->nents || n->kind != ZONE_NODE_PLAIN || ncname > 1)) {
			char txt[DNS_NAME_MAX * 4 + 1];
			wire_name_to_text(bn_name(&b, n), n->namelen, txt, sizeof(txt));
			set_err(&b, "%s: CNAME must be the only record at its name", txt);
			goto out;
		}
	}

	/* Copy into the arena; then each service's slot, whose block is kept
	 * or built by the registry. */
	z->origin = arena_bytes(a, cz->origin, cz->originlen);
	z->originlen = (uint8_t)cz->originlen;
	z->serial = serial;
	z->hash_key = b.key;
	const struct zone_slot **slots = arena_alloc_aligned(a, (cz->nservices + 1) * sizeof(*slots), 8);
	if (!z->origin || !slots)
		goto oom;
	struct zone_node *nodes;
	const uint32_t *table;
	uint32_t mask, tagmask, nnodes;
	int r = emit_nodes(a, &b, NULL, &nodes, &nnodes, &table, &mask, &tagmask);
	if (r == -1)
		goto oom;
	if (r < 0)
		goto out;
	z->nodes = nodes;
	z->table = table;
	z->mask = mask;
	z->tagmask = tagmask;
	z->nnodes = (uint32_t)b.n;
	z->slots = slots;
	z->nservices = (uint32_t)cz->nservices;
	z->has_services = cz->nservices > 0;
	for (size_t si = 0; si < cz->nservices; si++) {
		const struct zone_service *svc;
		slots[si] = registry_get(bc->reg, cz, &cz->services[si], bc->next_id++, bc->states,
		                         bc->sid, bc->sarg, bc->zi, si, &svc, err, errlen);
		if (!slots[si])
			goto out;
		for (unsigned k = 0; k < svc->nbackends; k++)
			bc->nchecked += svc->backends[k].sid != 0;
	}
	for (size_t i = 0; i < b.n; i++) {
		struct bnode *bn = &b.nodes[i];
		if (bn->kind == ZONE_NODE_SERVICE) {
			nodes[i].svc = registry_slot_next(slots[bn->svc_idx]);
			nodes[i].svc_idx = bn->svc_idx;
			registry_bind(bc->reg, slots[bn->svc_idx], &nodes[i]);
		}
		nodes[i].delegation = i != 0 && zone_node_rrset(&nodes[i], DNS_TYPE_NS) != NULL;
		z->has_cuts |= nodes[i].delegation;
	}
	/* The names of each service's block must not be names of the zone
	 * (a static record at a backend's target name, a service named like
	 * another's backend); empty non-terminals on both sides are fine.
	 * Only a service with zone names below it can clash: those are found
	 * from the zone's own names (few), not from every block's. */
	bool *below = calloc(cz->nservices + 1, sizeof(*below));
	if (!below)
		goto oom;
	for (size_t i = 1; i < b.n; i++) {
		const uint8_t *nm = nodes[i].name;
		size_t len = nodes[i].namelen;
		while (len > z->originlen) {
			size_t skip = nm[0] + 1;
			nm += skip;
			len -= skip;
			const struct zone_node *anc = zone_find(z, nm, len);
			if (anc && anc->kind == ZONE_NODE_SERVICE)
				below[b.nodes[anc - nodes].svc_idx] = true;
		}
	}
	for (size_t i = 1; i < b.n; i++)
		if (b.nodes[i].kind == ZONE_NODE_SERVICE)
			nodes[i].names_below = below[b.nodes[i].svc_idx];
	for (size_t si = 0; si < cz->nservices; si++) {
		if (!below[si])
			continue;
		const struct zone_service *svc = registry_slot_next(slots[si]);
		size_t clen;
		const uint8_t *clash = zone_block_clash(z, svc, &clen);
		if (clash) {
			char txt[DNS_NAME_MAX * 4 + 1];
			wire_name_to_text(clash, clen, txt, sizeof(txt));
			set_err(&b, "service %s: %s clashes with other data", cz->services[si].name, txt);
			free(below);
			goto out;
		}
	}
	free(below);
	z->apex = &nodes[0];
	z->soa = zone_node_rrset(z->apex, DNS_TYPE_SOA);
	uint32_t min = cz->soa.minimum;
	z->neg_ttl = soa_ttl < min ? soa_ttl : min;
	/* Zone cuts: each node learns the highest cut at or above it (data
	 * below a cut is glue, never answered authoritatively). */
	if (z->has_cuts) {
		for (size_t i = 1; i < b.n; i++) {
			struct zone_node *zn = &nodes[i];
			const uint8_t *nm = zn->name;
			size_t len = zn->namelen;
			while (len > z->originlen) {
				const struct zone_node *anc = zone_find(z, nm, len);
				if (anc && anc->delegation)
					zn->cut = (uint32_t)(anc - nodes) + 1;
				size_t skip = nm[0] + 1;
				nm += skip;
				len -= skip;
			}
		}
	}
	rc = 0;
	goto out;
oom:
	snprintf(err, errlen, "out of memory building zone %s", cz->name);
out:
	b_free(&b);
	return rc;
}

/* The sid -> service table, for the control thread applying health
 * changes in O(service): built once per snapshot over checked backends. */
static int build_sidmap(struct zone_snapshot *s, size_t nchecked)
{
	size_t size = 16;
	while (size < 2 * nchecked)
		size *= 2;
	if (size > UINT32_MAX)
		return -1;
	struct zone_sidref *map = arena_alloc_aligned(s->arena, size * sizeof(*map), 8);
	if (!map)
		return -1;
	for (unsigned zi = 0; zi < s->nzones; zi++) {
		const struct zone *z = &s->zones[zi];
		for (uint32_t si = 0; si < z->nservices; si++) {
			const struct zone_service *svc = registry_slot_next(z->slots[si]);
			for (unsigned bi = 0; bi < svc->nbackends; bi++) {
				uint32_t sid = svc->backends[bi].sid;
				if (!sid)
					continue;
				size_t h = hash_mix64(sid) & (size - 1);
				while (map[h].sid && map[h].sid != sid)
					h = (h + 1) & (size - 1);
				map[h] = (struct zone_sidref){ sid, zi, z->slots[si] };
			}
		}
	}
	s->sidmap = map;
	s->sidmask = (uint32_t)(size - 1);
	return 0;
}

const struct zone_slot *zone_sid_slot(const struct zone_snapshot *snap, uint32_t sid, uint32_t *zi)
{
	if (!snap || !snap->sidmap || !sid)
		return NULL;
	for (size_t h = hash_mix64(sid) & snap->sidmask; snap->sidmap[h].sid; h = (h + 1) & snap->sidmask)
		if (snap->sidmap[h].sid == sid) {
			*zi = snap->sidmap[h].zi;
			return snap->sidmap[h].slot;
		}
	return NULL;
}

void zone_set_serial(const struct zone *z, uint32_t serial)
{
	__atomic_store_n(&((struct zone *)z)->serial, serial, __ATOMIC_RELEASE);
}

size_t zone_soa_rdata(const struct zone *z, uint8_t *out)
{
	if (!z->soa || z->soa->rd[0]->len < 20 || z->soa->rd[0]->len > ZONE_SOA_RDATA_MAX)
		return 0;
	size_t len = z->soa->rd[0]->len;
	memcpy(out, z->soa->rd[0]->data, len);
	uint32_t serial = zone_serial(z);
	uint8_t *p = out + len - 20;
	p[0] = (uint8_t)(serial >> 24);
	p[1] = (uint8_t)(serial >> 16);
	p[2] = (uint8_t)(serial >> 8);
	p[3] = (uint8_t)serial;
	return len;
}

int zone_build(const struct config *cfg, const struct zone_snapshot *prev, struct registry *reg,
               const struct bstate *states, zone_sid_fn sid, void *sarg,
               struct zone_snapshot **out, char *err, size_t errlen)
{
	struct build_ctx bc = { .states = states, .sid = sid, .sarg = sarg };
	struct zone_snapshot *s = calloc(1, sizeof(*s));
	if (!s || !(s->arena = arena_new(0))) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (!reg && !(reg = s->own = registry_new())) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	bc.reg = reg;
	registry_begin(reg);
	struct zone *zones = arena_alloc(s->arena, (cfg->nzones ? cfg->nzones : 1) * sizeof(*zones));
	if (!zones) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	uint32_t now = (uint32_t)time(NULL);
	for (size_t i = 0; i < cfg->nzones; i++) {
		const struct cfg_zone *cz = &cfg->zones[i];
		uint32_t serial = cz->soa.serial ? cz->soa.serial : now;
		/* Serials only move forward across snapshots of the same zone
		 * (RFC 1982 arithmetic: "prev + 1" is always newer). */
		for (unsigned j = 0; prev && j < prev->nzones; j++) {
			const struct zone *pz = &prev->zones[j];
			if (wire_name_equal(pz->origin, pz->originlen, cz->origin, cz->originlen) &&
			    (int32_t)(serial - zone_serial(pz)) <= 0)
				serial = zone_serial(pz) + 1;
		}
		bc.zi = i;
		if (build_zone(s->arena, cz, serial, &zones[i], &bc, err, errlen) == -1)
			goto fail;
	}
	struct zone_locality *locs = arena_alloc(s->arena, (cfg->nlocalities + 1) * sizeof(*locs));
	if (!locs) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < cfg->nlocalities; i++) {
		locs[i].family = cfg->localities[i].family;
		memcpy(locs[i].addr, cfg->localities[i].addr, 16);
		locs[i].prefix = cfg->localities[i].prefix;
		locs[i].label = arena_memdup(s->arena, cfg->localities[i].label,
		                             strlen(cfg->localities[i].label) + 1);
		if (!locs[i].label) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	s->localities = locs;
	s->nlocalities = (unsigned)cfg->nlocalities;
	s->nservices = bc.next_id;
	s->zones = zones;
	s->nzones = (unsigned)cfg->nzones;
	if (build_sidmap(s, bc.nchecked) == -1) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	s->generation = prev ? prev->generation + 1 : 1;
	s->udp_max_payload = cfg->udp_max_payload;   /* default and bounds: its schema row */
	s->bytes = arena_used(s->arena);
	if (s->own)
		registry_commit(s->own);
	*out = s;
	return 0;
fail:
	registry_abort(reg);
	zone_free(s);
	return -1;
}

void zone_free(struct zone_snapshot *snap)
{
	if (!snap)
		return;
	registry_free(snap->own);
	arena_free(snap->arena);
	free(snap);
}

/* ---- lookup ---------------------------------------------------------------- */

const struct zone_node *zone_find(const struct zone *z, const uint8_t *name, size_t len)
{
	const struct zone_backend *none;
	return table_find(z->hash_key, z->mask, z->tagmask, z->table, z->nodes, z->nnodes, NULL, name,
	                  len, &none);
}

const struct zone_rrset *zone_node_rrset(const struct zone_node *node, uint16_t type)
{
	for (unsigned i = 0; i < node->nrrsets; i++)
		if (node->rrsets[i].type == type)
			return &node->rrsets[i];
	return NULL;
}

void zone_lookup(const struct zone_snapshot *snap, const uint8_t *name, size_t len,
                 struct zone_result *res)
{
	res->status = ZONE_NOTAUTH;
	res->zone = NULL;
	res->node = NULL;
	if (!snap)
		return;
	/* Where each label starts, once: for the zone choice and the walk.
	 * In at most 255 bytes there are at most 128 label starts (each
	 * label but the root takes two bytes or more), so off holds them all,
	 * a malformed name's too (it finds nothing, inside the bounds). */
	uint8_t off[DNS_NAME_MAX / 2 + 1];
	size_t nlabels = 0;
	if (len > DNS_NAME_MAX)
		return;
	for (size_t i = 0; i < len && name[i] != 0; i += name[i] + 1u)
		off[nlabels++] = (uint8_t)i;
	/* The most specific of our zones containing the name: its origin
	 * starts at a label of the name and ends it. Zone counts are small; a
	 * compare per zone is cheaper than a second table. */
	const struct zone *best = NULL;
	size_t above = 0;             /* labels of the name above best's origin */
	for (unsigned i = 0; i < snap->nzones; i++) {
		const struct zone *z = &snap->zones[i];
		if ((best && z->originlen <= best->originlen) || z->originlen > len)
			continue;
		size_t o = len - z->originlen, j = nlabels;
		if (z->originlen > 1) {
			while (j > 0 && off[j - 1] > o)
				j--;
			if (j == 0 || off[j - 1] != o ||
			    !wire_name_equal(name + o, z->originlen, z->origin, z->originlen))
				continue;
			j--;
		}
		best = z;
		above = j;
	}
	if (!best)
		return;
	res->zone = best;
	const struct zone_node *n;
	if (best->has_services && len > best->originlen) {
		/* From the apex down: every ancestor of a zone name is a zone
		 * name (empty non-terminals included), so the first one missing
		 * ends the search, and the first service met answers for the
		 * names below it from its block: a name inside a block costs one
		 * zone probe per label above it, not one per label below. A
		 * service with zone names below it takes the general way. */
		size_t nl = above;
		while (nl > 0) {
			size_t skip = off[--nl];
			n = zone_find(best, name + skip, len - skip);
			if (!n) {
				res->status = ZONE_NXDOMAIN;
				return;
			}
			if (n->cut) {
				res->status = ZONE_REFERRAL;
				res->node = &best->nodes[n->cut - 1];
				return;
			}
			if (n->kind == ZONE_NODE_SERVICE)
				block_prefetch(zone_node_service(n));
			if (nl == 0) {
				res->status = ZONE_FOUND;
				res->node = n;
				return;
			}
			if (n->kind == ZONE_NODE_SERVICE) {
				if (n->names_below)
					break;
				const struct zone_service *svc = zone_node_service(n);
				const struct zone_node *bn = nl == 2 ? block_find_srv(svc, name, len) : NULL;
				if (!bn)
					bn = block_find(svc, name, len, &res->tnode);
				res->status = bn ? ZONE_FOUND : ZONE_NXDOMAIN;
				res->node = bn;
				return;
			}
		}
	}
	n = zone_find(best, name, len);
	if (n) {
		if (n->cut) {
			res->status = ZONE_REFERRAL;
			res->node = &best->nodes[n->cut - 1];
		} else {
			res->status = ZONE_FOUND;
			res->node = n;
		}
		return;
	}
	res->status = ZONE_NXDOMAIN;
	if (!best->has_cuts && !best->has_services)
		return;
	/* Not a name of the zone itself: it may be below a cut (the child
	 * zone's business: refer) or a name inside a service's block (a
	 * backend's target, a _port._proto SRV name). The nearest service
	 * above it decides; a cut above that refers first. */
	const uint8_t *anc = name;
	size_t alen = len;
	while (alen > best->originlen) {
		size_t skip = anc[0] + 1;
		anc += skip;
		alen -= skip;
		n = zone_find(best, anc, alen);
		if (!n)
			continue;
		if (n->cut) {
			res->status = ZONE_REFERRAL;
			res->node = &best->nodes[n->cut - 1];
			return;
		}
		if (n->kind == ZONE_NODE_SERVICE) {
			const struct zone_node *bn = block_find(zone_node_service(n), name, len, &res->tnode);
			if (bn) {
				res->status = ZONE_FOUND;
				res->node = bn;
			}
			return;
		}
		if (!best->has_services)
			return;
	}
}

size_t zone_srv_rdata(const struct zone_service *svc, const struct zone_backend *b,
                      unsigned port_idx, uint32_t weight, uint8_t *rd)
{
	uint16_t port = b->port ? b->port : svc->ports[port_idx].port;
	uint16_t wgt = weight > 65535 ? 65535 : (uint16_t)weight;
	rd[0] = (uint8_t)(b->priority >> 8);
	rd[1] = (uint8_t)b->priority;
	rd[2] = (uint8_t)(wgt >> 8);
	rd[3] = (uint8_t)wgt;
	rd[4] = (uint8_t)(port >> 8);
	rd[5] = (uint8_t)port;
	memcpy(rd + 6, zone_backend_target(b), b->targetlen);
	return 6 + (size_t)b->targetlen;
}

/* ---- publishing ------------------------------------------------------------ */

/* The served snapshot (rcupub.h). */
static struct zone_snapshot *current_snapshot;

const struct zone_snapshot *zone_current(void)
{
	return RCUPUB_LOAD(current_snapshot);
}

struct zone_snapshot *zone_swap(struct zone_snapshot *snap)
{
	return RCUPUB_SWAP(current_snapshot, snap);
}

void zone_publish(struct zone_snapshot *snap)
{
	RCUPUB_REPLACE(current_snapshot, snap, zone_free);
}

void zone_shutdown(void)
{
	RCUPUB_REPLACE(current_snapshot, NULL, zone_free);
}

/* cache.c -- upstream answers kept as wire messages for their TTL, in 64
 * shards (each a mutex, a hash table and an LRU list), so concurrent
 * workers rarely meet on a lock and a hit is one copy and a few patches. */
#include "cache.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"
#include "util/list.h"

enum {
	SHARDS = 64,                  /* a power of two; the hash's top bits pick one */
	SHARD_BITS = 6,
	OPT_FIXED = 11,               /* root owner, type, class, ttl, rdlength */
	/* The most records a message can hold: each takes at least a root
	 * owner, type, class, TTL and RDLENGTH (11 bytes). The scan keeps the
	 * TTL offset of every one, so any message that parses is passed on and
	 * can be cached (a fixed 1024 turned bigger upstream answers into
	 * SERVFAIL). */
	SCAN_RR_MAX = DNS_MSG_MAX / OPT_FIXED,
	/* Name, type, class, EDNS state, CD bit. */
	KEY_MAX = DNS_NAME_MAX + 6,
};

/* What a response holds, as far as the cache needs it. Offsets are into
 * the message (< 65536). */
struct msg_scan {
	uint16_t flags;
	uint16_t qdcount, ancount, nscount;
	size_t question_end;
	struct dns_question q;
	unsigned nttl;                /* records other than OPT */
	uint16_t ttl_off[SCAN_RR_MAX];
	uint32_t min_ttl;             /* of those records */
	size_t opt_off;               /* start of the OPT record, 0: none */
	bool soa;                     /* an SOA in the authority section */
	uint32_t soa_neg;             /* its min(TTL, MINIMUM) */
};

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Walks a response with one question. False if it does not parse or has
 * trailing bytes. */
static bool msg_scan(const uint8_t *msg, size_t len, struct msg_scan *s)
{
	struct wire_reader r;
	struct dns_header h;
	wire_reader_init(&r, msg, len);
	wire_read_header(&r, &h);
	if (r.err || h.qdcount != 1 || len > DNS_MSG_MAX)
		return false;
	s->flags = h.flags;
	s->qdcount = h.qdcount;
	s->ancount = h.ancount;
	s->nscount = h.nscount;
	wire_read_question(&r, &s->q);
	s->question_end = r.pos;
	s->nttl = 0;
	s->min_ttl = UINT32_MAX;
	s->opt_off = 0;
	s->soa = false;
	unsigned total = (unsigned)h.ancount + h.nscount + h.arcount;
	for (unsigned i = 0; i < total && !r.err; i++) {
		size_t start = r.pos;
		struct dns_rr rr;
		wire_read_rr(&r, &rr);
		if (r.err)
			return false;
		if (rr.type == DNS_TYPE_OPT) {
			/* Only in the additional section, once, owned by the root
			 * written as one zero byte (RFC 6891 6.1.1). */
			if (i < (unsigned)h.ancount + h.nscount || s->opt_off || msg[start] != 0)
				return false;
			s->opt_off = start;
			continue;
		}
		if (s->nttl == SCAN_RR_MAX)
			return false;
		/* The TTL sits 10 bytes before the rdata. */
		s->ttl_off[s->nttl++] = (uint16_t)(rr.rdoff - 6);
		uint32_t ttl = rr.ttl > 0x7fffffffu ? 0 : rr.ttl;  /* RFC 2181 8 */
		if (ttl < s->min_ttl)
			s->min_ttl = ttl;
		bool in_auth = i >= h.ancount && i < (unsigned)h.ancount + h.nscount;
		if (in_auth && rr.type == DNS_TYPE_SOA && !s->soa && rr.rdlen >= 22) {
			uint32_t minimum = get32(msg + rr.rdoff + rr.rdlen - 4);
			s->soa = true;
			s->soa_neg = ttl < minimum ? ttl : minimum;
		}
	}
	return !r.err && r.pos == len;
}

/* ---- the table ----------------------------------------------------------- */

struct entry {
	struct entry *hnext;          /* hash chain */
	struct entry *prev, *next;    /* LRU, most recent first */
	uint64_t hash;
	uint64_t stored_ms, expire_ms;
	uint16_t qtype, qclass;
	uint8_t edns, namelen, cd;
	uint16_t len, nttl;
	uint16_t *ttl_off;            /* into data */
	uint8_t *name;                /* lowercase */
	uint8_t *msg;
	uint16_t data[];              /* ttl_off, then name, then msg */
};

struct shard {
	pthread_mutex_t mu;
	struct entry **table;
	uint32_t mask;
	uint32_t n, cap;
	struct entry *head, *tail;
	uint64_t hits, misses, stores, evictions;
} __attribute__((aligned(64)));

struct cache {
	struct cache_settings set;
	uint8_t hkey[crypto_shorthash_KEYBYTES];
	struct shard shards[SHARDS];
};

static uint64_t clock_ms(void *arg)
{
	(void)arg;
	return clock_mono_ms();
}

struct cache *cache_new(const struct cache_settings *set)
{
	if (sodium_init() < 0)
		return NULL;
	struct cache *c = aligned_alloc(64, sizeof(struct cache));
	if (!c)
		return NULL;
	memset(c, 0, sizeof(*c));
	c->set = *set;
	if (!c->set.now_ms)
		c->set.now_ms = clock_ms;
	/* Keyed hash: names chosen to collide cannot pile up in one chain. */
	randombytes_buf(c->hkey, sizeof(c->hkey));
	uint32_t per = set->max_entries ? (set->max_entries + SHARDS - 1) / SHARDS : 0;
	uint32_t size = 1;
	while (size < per)
		size <<= 1;
	for (unsigned i = 0; i < SHARDS; i++) {
		struct shard *s = &c->shards[i];
		pthread_mutex_init(&s->mu, NULL);
		s->cap = per;
		s->mask = size - 1;
		if (per) {
			s->table = calloc(size, sizeof(*s->table));
			if (!s->table) {
				cache_free(c);
				return NULL;
			}
		}
	}
	return c;
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < SHARDS; i++) {
		struct shard *s = &c->shards[i];
		for (struct entry *e = s->head, *next; e; e = next) {
			next = e->next;
			free(e);
		}
		free(s->table);
		pthread_mutex_destroy(&s->mu);
	}
	free(c);
}

/* The lookup key: lowercase name, type, class, EDNS state, and the CD
 * bit: a validating upstream answers CD=1 with data it would refuse
 * (SERVFAIL) to CD=0, so the two are different questions (RFC 4035
 * 3.2.2, as Unbound and BIND keep them apart). */
static size_t make_key(const struct dns_question *q, enum cache_edns edns, uint16_t flags,
                       uint8_t key[KEY_MAX])
{
	memcpy(key, q->name, q->namelen);
	wire_name_lower(key, q->namelen);
	size_t n = q->namelen;
	put16(key + n, q->qtype);
	put16(key + n + 2, q->qclass);
	key[n + 4] = (uint8_t)edns;
	key[n + 5] = (flags & DNS_FLAG_CD) ? 1 : 0;
	return n + 6;
}

static uint64_t key_hash(const struct cache *c, const uint8_t *key, size_t len)
{
	uint8_t out[crypto_shorthash_BYTES];
	crypto_shorthash(out, key, len, c->hkey);
	uint64_t h;
	memcpy(&h, out, sizeof(h));
	return h;
}

static struct shard *shard_of(struct cache *c, uint64_t hash)
{
	return &c->shards[hash >> (64 - SHARD_BITS)];
}

static bool entry_is(const struct entry *e, uint64_t hash, const uint8_t *key, size_t keylen)
{
	size_t namelen = keylen - 6;
	return e->hash == hash && e->namelen == namelen &&
	       e->qtype == ((uint16_t)key[namelen] << 8 | key[namelen + 1]) &&
	       e->qclass == ((uint16_t)key[namelen + 2] << 8 | key[namelen + 3]) &&
	       e->edns == key[namelen + 4] && e->cd == key[namelen + 5] &&
	       memcmp(e->name, key, namelen) == 0;
}

/* The shard's lock must be held. */
static struct entry **find_slot(struct shard *s, uint64_t hash, const uint8_t *key, size_t keylen)
{
	struct entry **pp = &s->table[hash & s->mask];
	while (*pp && !entry_is(*pp, hash, key, keylen))
		pp = &(*pp)->hnext;
	return pp;
}

static void lru_unlink(struct shard *s, struct entry *e)
{
	DLIST_UNLINK(s->head, s->tail, e, prev, next);
}

static void lru_push(struct shard *s, struct entry *e)
{
	DLIST_PREPEND(s->head, s->tail, e, prev, next);
}

/* Removes e (found at *pp in its chain) from the shard; the caller frees
 * it after unlocking. The shard's lock must be held. */
static void entry_remove(struct shard *s, struct entry **pp, struct entry *e)
{
	*pp = e->hnext;
	lru_unlink(s, e);
	s->n--;
}

size_t cache_get(struct cache *c, const struct dns_question *q, enum cache_edns edns,
                 uint16_t id, uint16_t flags, uint8_t *out, size_t cap, size_t limit)
{
	uint8_t key[KEY_MAX];
	if (!c || !c->set.max_entries)
		return 0;
	size_t keylen = make_key(q, edns, flags, key);
	uint64_t hash = key_hash(c, key, keylen);
	struct shard *s = shard_of(c, hash);
	struct entry *dead = NULL;
	size_t len = 0;

	pthread_mutex_lock(&s->mu);
	struct entry **pp = find_slot(s, hash, key, keylen);
	struct entry *e = *pp;
	uint64_t now = e ? c->set.now_ms(c->set.now_arg) : 0;
	if (e && now >= e->expire_ms) {
		entry_remove(s, pp, e);
		dead = e;
		e = NULL;
	}
	if (e && e->len <= cap) {
		memcpy(out, e->msg, e->len);
		len = e->len;
		uint32_t age = (uint32_t)((now - e->stored_ms) / 1000);
		for (unsigned i = 0; i < e->nttl; i++) {
			uint8_t *p = out + e->ttl_off[i];
			uint32_t ttl = get32(p);
			put32(p, ttl > age ? ttl - age : 0);
		}
		lru_unlink(s, e);
		lru_push(s, e);
		s->hits++;
	} else {
		s->misses++;
	}
	pthread_mutex_unlock(&s->mu);
	free(dead);
	if (!len)
		return 0;

	put16(out, id);
	uint16_t f = (uint16_t)((out[2] << 8 | out[3]) & ~(DNS_FLAG_RD | DNS_FLAG_CD));
	put16(out + 2, (uint16_t)(f | (flags & (DNS_FLAG_RD | DNS_FLAG_CD))));
	/* The stored question is the first asker's spelling of the same name,
	 * written out in full (cache_put takes no other): same length. */
	memcpy(out + DNS_HEADER_LEN, q->name, q->namelen);
	if (len > limit)
		len = cache_truncate(out, len, limit);
	return len;
}

/* Clamps every TTL (OPT excepted) to lo..hi, in place. */
static void clamp_ttls(uint8_t *msg, const struct msg_scan *sc, uint32_t lo, uint32_t hi)
{
	for (unsigned i = 0; i < sc->nttl; i++) {
		uint8_t *p = msg + sc->ttl_off[i];
		uint32_t ttl = get32(p);
		if (ttl > 0x7fffffffu)
			ttl = 0;
		put32(p, ttl < lo ? lo : ttl > hi ? hi : ttl);
	}
}

/* AA off (we are not the authority), RA on, our payload size in OPT. */
static void set_answer_flags(uint8_t *msg, const struct msg_scan *sc, uint16_t udp_max_payload)
{
	uint16_t f = (uint16_t)((msg[2] << 8 | msg[3]) & ~DNS_FLAG_AA);
	put16(msg + 2, (uint16_t)(f | DNS_FLAG_RA));
	if (sc->opt_off)
		put16(msg + sc->opt_off + 3, udp_max_payload);
}

/* True if the scanned message answers q as asked: QR set, opcode QUERY,
 * and one question with q's type, class and name (in any case) written
 * out in full, so that the question has q's length and every offset in
 * the rest of the message stays valid when the question is rewritten in
 * the client's spelling. A question name compressed into the header
 * (legal in form, never sent by a real server) is refused: patching it
 * left a stray byte, and re-encoding it would move every later offset. */
static bool answers_question(const struct msg_scan *sc, const struct dns_question *q)
{
	return (sc->flags & DNS_FLAG_QR) && DNS_OPCODE(sc->flags) == DNS_OPCODE_QUERY &&
	       sc->qdcount == 1 && sc->q.qtype == q->qtype && sc->q.qclass == q->qclass &&
	       sc->question_end == DNS_HEADER_LEN + q->namelen + 4 &&
	       wire_name_equal(sc->q.name, sc->q.namelen, q->name, q->namelen);
}

size_t cache_answer_rewrite(const uint8_t *msg, size_t len, const struct dns_question *q,
                            uint16_t id, uint16_t flags, uint16_t udp_max_payload,
                            uint8_t *out, size_t cap, size_t *opt_off)
{
	struct msg_scan *sc = malloc(sizeof(*sc));
	size_t n = 0;
	if (!sc || !msg_scan(msg, len, sc) || !answers_question(sc, q))
		goto out;
	struct wire_writer w;
	wire_writer_init(&w, out, cap);
	uint16_t keep = (uint16_t)(sc->flags & ~(DNS_FLAG_AA | DNS_FLAG_RD | DNS_FLAG_CD));
	struct dns_header h = {
		.id = id,
		.flags = (uint16_t)(keep | DNS_FLAG_RA | (flags & (DNS_FLAG_RD | DNS_FLAG_CD))),
		.qdcount = 1,
		.ancount = sc->ancount,
		.nscount = sc->nscount,
		.arcount = (uint16_t)(msg[10] << 8 | msg[11]),
	};
	wire_write_header(&w, &h);
	wire_write_name(&w, q->name, q->namelen, false);
	wire_write_u16(&w, q->qtype);
	wire_write_u16(&w, q->qclass);
	wire_write_bytes(&w, msg + sc->question_end, len - sc->question_end);
	if (w.err || w.pos != len)
		goto out;
	if (sc->opt_off)
		put16(out + sc->opt_off + 3, udp_max_payload);
	if (opt_off)
		*opt_off = sc->opt_off;
	n = w.pos;
out:
	free(sc);
	return n;
}

bool cache_put(struct cache *c, const struct dns_question *q, enum cache_edns edns,
               uint16_t flags, const uint8_t *msg, size_t len)
{
	if (!c || !c->set.max_entries)
		return false;
	struct msg_scan *sc = malloc(sizeof(*sc));
	struct entry *e = NULL;
	bool stored = false;
	if (!sc || !msg_scan(msg, len, sc))
		goto out;
	if (!answers_question(sc, q) || (sc->flags & DNS_FLAG_TC))
		goto out;
	unsigned rcode = DNS_RCODE(sc->flags);
	uint32_t lo, hi;
	if (rcode == DNS_RCODE_NOERROR && sc->ancount > 0) {
		lo = c->set.min_ttl;
		hi = c->set.max_ttl;
	} else if ((rcode == DNS_RCODE_NXDOMAIN || rcode == DNS_RCODE_NOERROR) && sc->soa) {
		/* RFC 2308 5: a negative answer lives min(SOA TTL, MINIMUM);
		 * without an SOA it is not cached at all. */
		lo = 0;
		hi = sc->soa_neg < c->set.neg_max_ttl ? sc->soa_neg : c->set.neg_max_ttl;
	} else {
		goto out;
	}
	uint32_t life = sc->min_ttl < lo ? lo : sc->min_ttl > hi ? hi : sc->min_ttl;
	if (life == 0)
		goto out;

	size_t offs = sc->nttl * sizeof(uint16_t);
	e = malloc(sizeof(*e) + offs + q->namelen + len);
	if (!e)
		goto out;
	memset(e, 0, sizeof(*e));
	e->ttl_off = e->data;
	memcpy(e->ttl_off, sc->ttl_off, offs);
	e->nttl = (uint16_t)sc->nttl;
	e->name = (uint8_t *)e->data + offs;
	e->msg = e->name + q->namelen;
	e->len = (uint16_t)len;
	memcpy(e->msg, msg, len);
	clamp_ttls(e->msg, sc, lo, hi);
	set_answer_flags(e->msg, sc, c->set.udp_max_payload);

	uint8_t key[KEY_MAX];
	size_t keylen = make_key(q, edns, flags, key);
	memcpy(e->name, key, q->namelen);
	e->namelen = (uint8_t)q->namelen;
	e->qtype = q->qtype;
	e->qclass = q->qclass;
	e->edns = (uint8_t)edns;
	e->cd = key[q->namelen + 5];
	e->hash = key_hash(c, key, keylen);

	struct shard *s = shard_of(c, e->hash);
	struct entry *old = NULL, *evicted = NULL;
	pthread_mutex_lock(&s->mu);
	uint64_t now = c->set.now_ms(c->set.now_arg);
	e->stored_ms = now;
	e->expire_ms = now + (uint64_t)life * 1000;
	struct entry **pp = find_slot(s, e->hash, key, keylen);
	if (*pp) {
		old = *pp;
		entry_remove(s, pp, old);
	} else if (s->n >= s->cap && s->tail) {
		evicted = s->tail;
		struct entry **ep = &s->table[evicted->hash & s->mask];
		while (*ep != evicted)
			ep = &(*ep)->hnext;
		entry_remove(s, ep, evicted);
		s->evictions++;
	}
	e->hnext = s->table[e->hash & s->mask];
	s->table[e->hash & s->mask] = e;
	lru_push(s, e);
	s->n++;
	s->stores++;
	pthread_mutex_unlock(&s->mu);
	free(old);
	free(evicted);
	e = NULL;
	stored = true;
out:
	free(e);
	free(sc);
	return stored;
}

void cache_stats(struct cache *c, struct cache_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!c)
		return;
	for (unsigned i = 0; i < SHARDS; i++) {
		struct shard *s = &c->shards[i];
		pthread_mutex_lock(&s->mu);
		out->hits += s->hits;
		out->misses += s->misses;
		out->stores += s->stores;
		out->evictions += s->evictions;
		out->entries += s->n;
		pthread_mutex_unlock(&s->mu);
	}
}

size_t cache_truncate(uint8_t *msg, size_t len, size_t limit)
{
	if (len <= limit)
		return len;
	/* Only the question and the OPT record's place are needed: a light
	 * walk rather than msg_scan, which may reject huge messages. */
	struct wire_reader r;
	struct dns_header h;
	wire_reader_init(&r, msg, len);
	wire_read_header(&r, &h);
	if (r.err || h.qdcount != 1)
		return 0;
	wire_read_name(&r, NULL);
	wire_skip(&r, 4);
	size_t qend = r.pos;
	size_t opt = 0;
	unsigned total = (unsigned)h.ancount + h.nscount + h.arcount;
	for (unsigned i = 0; i < total && !r.err; i++) {
		size_t start = r.pos;
		struct dns_rr rr;
		wire_read_rr(&r, &rr);
		if (!r.err && rr.type == DNS_TYPE_OPT && msg[start] == 0) {
			opt = start;
			break;
		}
	}
	if (r.err || qend + OPT_FIXED > limit)
		return 0;
	uint16_t f = (uint16_t)((msg[2] << 8 | msg[3]) | DNS_FLAG_TC);
	put16(msg + 2, f);
	put16(msg + 6, 0);
	put16(msg + 8, 0);
	put16(msg + 10, opt ? 1 : 0);
	if (!opt)
		return qend;
	/* The OPT record without its options (they may not fit). */
	memmove(msg + qend, msg + opt, OPT_FIXED - 2);
	put16(msg + qend + OPT_FIXED - 2, 0);
	return qend + OPT_FIXED;
}

/* rrl.c -- response rate limiting: one 64-bit word per bucket (key tag,
 * last second, balance), updated with compare-and-swap so UDP workers
 * never serialize on a lock. Knows nothing of sockets or snapshots. */
#include "rrl.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

struct rrl {
	uint64_t mask;
	uint8_t key[crypto_shorthash_siphash24_KEYBYTES];
	/* Bucket word: tag (16 bits) | second (16 bits) | balance (int32). */
	uint64_t *b;
};

/* Attempts at one bucket before the response is just let through: only
 * reached when other threads keep changing the same bucket. */
enum { RRL_CAS_TRIES = 8 };

static _Thread_local uint32_t slip_count;

struct rrl *rrl_new(unsigned log2)
{
	if (log2 < 4 || log2 > 28 || sodium_init() < 0)
		return NULL;
	struct rrl *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->mask = ((uint64_t)1 << log2) - 1;
	t->b = calloc((size_t)t->mask + 1, sizeof(*t->b));
	if (!t->b) {
		free(t);
		return NULL;
	}
	randombytes_buf(t->key, sizeof(t->key));
	return t;
}

void rrl_free(struct rrl *t)
{
	if (!t)
		return;
	free(t->b);
	free(t);
}

/* Clears the bits of a past prefix bits. */
static void mask_prefix(uint8_t *a, size_t len, unsigned bits)
{
	for (size_t i = 0; i < len; i++) {
		if (bits >= 8) {
			bits -= 8;
			continue;
		}
		a[i] &= (uint8_t)(0xff00u >> bits);
		bits = 0;
	}
}

bool rrl_exempt(const struct rrl_settings *s, const uint8_t *ip, size_t iplen)
{
	for (size_t i = 0; i < s->nexempt; i++) {
		const struct rrl_prefix *p = &s->exempt[i];
		if (p->iplen != iplen)
			continue;
		uint8_t a[16];
		memcpy(a, ip, iplen);
		mask_prefix(a, iplen, p->prefix);
		if (memcmp(a, p->addr, iplen) == 0)
			return true;
	}
	return false;
}

/* The owner of the first authority record, or 0 if there is none. */
static size_t first_authority(const uint8_t *resp, size_t len, uint8_t name[DNS_NAME_MAX])
{
	struct wire_reader r;
	struct dns_header h;
	wire_reader_init(&r, resp, len);
	wire_read_header(&r, &h);
	if (h.qdcount != 1 || h.nscount == 0)
		return 0;
	wire_read_name(&r, NULL);
	wire_skip(&r, 4);
	for (unsigned i = 0; i < h.ancount && !r.err; i++) {
		struct dns_rr rr;
		wire_read_rr(&r, &rr);
	}
	uint8_t owner[DNS_NAME_MAX];
	size_t n = wire_read_name(&r, owner);
	if (r.err)
		return 0;
	memcpy(name, owner, n);
	return n;
}

enum rrl_class rrl_classify(const uint8_t *resp, size_t len, uint8_t name[DNS_NAME_MAX],
                            size_t *namelen, uint16_t *qtype)
{
	struct wire_reader r;
	struct dns_header h;
	*namelen = 0;
	*qtype = 0;
	wire_reader_init(&r, resp, len);
	wire_read_header(&r, &h);
	unsigned rcode = DNS_RCODE(h.flags);
	if (r.err || h.qdcount != 1 || (rcode != DNS_RCODE_NOERROR && rcode != DNS_RCODE_NXDOMAIN))
		return RRL_ERROR;
	size_t qlen = wire_read_name(&r, name);
	*qtype = wire_read_u16(&r);
	if (r.err)
		return RRL_ERROR;
	*namelen = qlen;
	if (rcode == DNS_RCODE_NXDOMAIN) {
		size_t n = first_authority(resp, len, name);
		if (n)
			*namelen = n;
		return RRL_NXDOMAIN;
	}
	if (h.ancount)
		return RRL_ANSWER;
	if (!(h.flags & DNS_FLAG_AA) && h.nscount) {
		size_t n = first_authority(resp, len, name);
		if (n) {
			*namelen = n;
			return RRL_REFERRAL;
		}
	}
	return RRL_NODATA;
}

/* The bucket key: class, type (answers only), the client's prefix and the
 * name in lower case, hashed with the table's secret key so that nobody
 * outside can aim collisions at one bucket. */
static uint64_t bucket_hash(const struct rrl *t, const struct rrl_settings *s, const uint8_t *ip,
                            size_t iplen, enum rrl_class cls, const uint8_t *name, size_t namelen,
                            uint16_t qtype)
{
	uint8_t in[4 + 16 + DNS_NAME_MAX];
	in[0] = (uint8_t)cls;
	in[1] = (uint8_t)iplen;
	in[2] = cls == RRL_ANSWER ? (uint8_t)(qtype >> 8) : 0;
	in[3] = cls == RRL_ANSWER ? (uint8_t)qtype : 0;
	memset(in + 4, 0, 16);
	memcpy(in + 4, ip, iplen);
	mask_prefix(in + 4, iplen, iplen == 4 ? s->v4_prefix : s->v6_prefix);
	size_t n = 4 + 16;
	if (cls != RRL_ERROR && namelen <= DNS_NAME_MAX) {
		memcpy(in + n, name, namelen);
		wire_name_lower(in + n, namelen);
		n += namelen;
	}
	uint8_t h[8];
	crypto_shorthash_siphash24(h, in, n, t->key);
	uint64_t v;
	memcpy(&v, h, sizeof(v));
	return v;
}

enum rrl_verdict rrl_account(struct rrl *t, const struct rrl_settings *s, const uint8_t *ip,
                             size_t iplen, enum rrl_class cls, const uint8_t *name,
                             size_t namelen, uint16_t qtype, uint32_t now)
{
	if (!t || !s->rate || (iplen != 4 && iplen != 16))
		return RRL_PASS;
	uint64_t h = bucket_hash(t, s, ip, iplen, cls, name, namelen, qtype);
	uint64_t *b = &t->b[h & t->mask];
	uint64_t tag = h >> 48;
	int64_t rate = s->rate, floor = -(int64_t)s->window * rate;
	int64_t bal = 0;
	for (int i = 0; i < RRL_CAS_TRIES; i++) {
		uint64_t old = __atomic_load_n(b, __ATOMIC_RELAXED);
		if (old >> 48 != tag) {
			/* A new key (or one that lost its bucket to a collision):
			 * a full second's credit. */
			bal = rate;
		} else {
			/* Seconds since the bucket was last touched, modulo 2^16: a
			 * bucket idle for 18 hours may look recent, which costs that
			 * client at most one window of limiting. */
			uint16_t idle = (uint16_t)((uint16_t)now - (uint16_t)(old >> 32));
			bal = (int32_t)(uint32_t)old + (int64_t)idle * rate;
			if (bal > rate)
				bal = rate;
		}
		bal -= 1;
		if (bal < floor)
			bal = floor;
		uint64_t neu = tag << 48 | (uint64_t)(uint16_t)now << 32 | (uint32_t)(int32_t)bal;
		if (__atomic_compare_exchange_n(b, &old, neu, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			break;
	}
	if (bal >= 0)
		return RRL_PASS;
	if (s->slip == 0)
		return RRL_DROP;
	return ++slip_count % s->slip == 0 ? RRL_SLIP : RRL_DROP;
}

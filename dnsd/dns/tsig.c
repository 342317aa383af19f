/* tsig.c -- TSIG (RFC 8945) over whole wire messages: verify requests,
 * sign answers (chained for multi-message transfers) and our own requests.
 * HMAC from libsodium's init/update/final API, which takes keys of any
 * length; MACs are compared in constant time (sodium_memcmp). */
#include "dns/tsig.h"

#include <strings.h>
#include <sodium.h>
#include <string.h>

static const uint8_t alg_sha256[] = "\x0bhmac-sha256";
static const uint8_t alg_sha512[] = "\x0bhmac-sha512";

int tsig_alg_from_text(const char *text)
{
	if (strcasecmp(text, "hmac-sha256") == 0 || strcasecmp(text, "hmac-sha256.") == 0)
		return TSIG_HMAC_SHA256;
	if (strcasecmp(text, "hmac-sha512") == 0 || strcasecmp(text, "hmac-sha512.") == 0)
		return TSIG_HMAC_SHA512;
	return -1;
}

const char *tsig_alg_name(enum tsig_alg alg)
{
	return alg == TSIG_HMAC_SHA512 ? "hmac-sha512" : "hmac-sha256";
}

size_t tsig_alg_len(enum tsig_alg alg)
{
	return alg == TSIG_HMAC_SHA512 ? crypto_auth_hmacsha512_BYTES : crypto_auth_hmacsha256_BYTES;
}

static const uint8_t *alg_wire(enum tsig_alg alg, size_t *len)
{
	*len = sizeof(alg_sha256);    /* both names are 13 bytes with the root */
	return alg == TSIG_HMAC_SHA512 ? alg_sha512 : alg_sha256;
}

/* The algorithm an absolute wire name stands for, or -1. */
static int alg_from_wire(const uint8_t *name, size_t len)
{
	if (wire_name_equal(name, len, alg_sha256, sizeof(alg_sha256)))
		return TSIG_HMAC_SHA256;
	if (wire_name_equal(name, len, alg_sha512, sizeof(alg_sha512)))
		return TSIG_HMAC_SHA512;
	return -1;
}

int tsig_key_init(struct tsig_key *key, const char *name, enum tsig_alg alg, const char *b64,
                  const char **why)
{
	size_t nlen;
	if (sodium_init() < 0) {
		*why = "libsodium initialization failed";
		return -1;
	}
	if (wire_name_from_text(name, key->name, &nlen) != 0) {
		*why = "bad key name";
		return -1;
	}
	key->namelen = nlen;
	wire_name_lower(key->name, key->namelen);
	key->alg = alg;
	size_t got = 0;
	if (sodium_base642bin(key->secret, sizeof(key->secret), b64, strlen(b64), " \t\r\n", &got,
	                      NULL, sodium_base64_VARIANT_ORIGINAL) != 0) {
		*why = "secret is not valid base64 (or longer than 512 bytes)";
		return -1;
	}
	if (got == 0) {
		*why = "empty secret";
		return -1;
	}
	key->secretlen = got;
	return 0;
}

const struct tsig_key *tsig_key_find(const struct tsig_key *keys, size_t nkeys,
                                     const uint8_t *name, size_t namelen)
{
	for (size_t i = 0; i < nkeys; i++)
		if (wire_name_equal(keys[i].name, keys[i].namelen, name, namelen))
			return &keys[i];
	return NULL;
}

/* ---- HMAC ------------------------------------------------------------------ */

struct hmac {
	enum tsig_alg alg;
	union {
		crypto_auth_hmacsha256_state s256;
		crypto_auth_hmacsha512_state s512;
	} u;
};

static void hmac_init(struct hmac *h, const struct tsig_key *key)
{
	h->alg = key->alg;
	if (key->alg == TSIG_HMAC_SHA512)
		crypto_auth_hmacsha512_init(&h->u.s512, key->secret, key->secretlen);
	else
		crypto_auth_hmacsha256_init(&h->u.s256, key->secret, key->secretlen);
}

static void hmac_update(struct hmac *h, const void *p, size_t n)
{
	if (h->alg == TSIG_HMAC_SHA512)
		crypto_auth_hmacsha512_update(&h->u.s512, p, n);
	else
		crypto_auth_hmacsha256_update(&h->u.s256, p, n);
}

static size_t hmac_final(struct hmac *h, uint8_t out[TSIG_MAC_MAX])
{
	if (h->alg == TSIG_HMAC_SHA512) {
		crypto_auth_hmacsha512_final(&h->u.s512, out);
		return crypto_auth_hmacsha512_BYTES;
	}
	crypto_auth_hmacsha256_final(&h->u.s256, out);
	return crypto_auth_hmacsha256_BYTES;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put48(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 6; i++)
		p[i] = (uint8_t)(v >> (8 * (5 - i)));
}

/* The fields of a TSIG RR as read. */
struct tsig_rr {
	uint8_t name[DNS_NAME_MAX];
	size_t namelen;
	uint8_t alg[DNS_NAME_MAX];
	size_t alglen;
	uint64_t time;
	uint16_t fudge;
	const uint8_t *mac;
	uint16_t maclen;
	uint16_t orig_id;
	uint16_t error;
	const uint8_t *other;
	uint16_t otherlen;
};

/* Reads the TSIG RR at off, which must end the message exactly. */
static int read_rr(const uint8_t *msg, size_t len, size_t off, struct tsig_rr *t)
{
	struct wire_reader r;
	wire_reader_init(&r, msg, len);
	wire_skip(&r, off);
	t->namelen = wire_read_name(&r, t->name);
	uint16_t type = wire_read_u16(&r), cls = wire_read_u16(&r);
	uint32_t ttl = wire_read_u32(&r);
	uint16_t rdlen = wire_read_u16(&r);
	if (r.err || type != DNS_TYPE_TSIG || cls != DNS_CLASS_ANY || ttl != 0 ||
	    wire_remaining(&r) != rdlen)
		return -1;
	/* The algorithm name must not be compressed (RFC 8945 4.2), and the
	 * names are MACed in canonical form whatever case they came in. */
	size_t start = r.pos;
	t->alglen = wire_read_name(&r, t->alg);
	if (r.err || r.pos - start != t->alglen)
		return -1;
	uint16_t hi = wire_read_u16(&r);
	uint32_t lo = wire_read_u32(&r);
	t->time = (uint64_t)hi << 32 | lo;
	t->fudge = wire_read_u16(&r);
	t->maclen = wire_read_u16(&r);
	t->mac = wire_read_ptr(&r, t->maclen);
	t->orig_id = wire_read_u16(&r);
	t->error = wire_read_u16(&r);
	t->otherlen = wire_read_u16(&r);
	t->other = wire_read_ptr(&r, t->otherlen);
	if (r.err || wire_remaining(&r) != 0)
		return -1;
	wire_name_lower(t->name, t->namelen);
	wire_name_lower(t->alg, t->alglen);
	return 0;
}

/* MAC over: prior (length-prefixed, if any), the message up to the TSIG
 * RR with the original ID and ARCOUNT less one, then the TSIG variables
 * (all of them, or the timers only). */
static size_t compute_mac(const struct tsig_key *key, const uint8_t *prior, size_t priorlen,
                          const uint8_t *msg, size_t msglen, uint16_t orig_id, bool arcount_less,
                          const struct tsig_rr *v, bool timers_only, uint8_t out[TSIG_MAC_MAX])
{
	struct hmac h;
	uint8_t hdr[DNS_HEADER_LEN], buf[16];
	hmac_init(&h, key);
	if (priorlen || prior) {
		put16(buf, (uint16_t)priorlen);
		hmac_update(&h, buf, 2);
		hmac_update(&h, prior, priorlen);
	}
	memcpy(hdr, msg, DNS_HEADER_LEN);
	put16(hdr, orig_id);
	if (arcount_less) {
		uint16_t ar = (uint16_t)(hdr[10] << 8 | hdr[11]);
		put16(hdr + 10, (uint16_t)(ar - 1));
	}
	hmac_update(&h, hdr, DNS_HEADER_LEN);
	hmac_update(&h, msg + DNS_HEADER_LEN, msglen - DNS_HEADER_LEN);
	if (!timers_only) {
		hmac_update(&h, v->name, v->namelen);
		put16(buf, DNS_CLASS_ANY);
		memset(buf + 2, 0, 4);            /* TTL */
		hmac_update(&h, buf, 6);
		hmac_update(&h, v->alg, v->alglen);
	}
	put48(buf, v->time);
	put16(buf + 6, v->fudge);
	hmac_update(&h, buf, 8);
	if (!timers_only) {
		put16(buf, v->error);
		put16(buf + 2, v->otherlen);
		hmac_update(&h, buf, 4);
		hmac_update(&h, v->other, v->otherlen);
	}
	return hmac_final(&h, out);
}

/* RFC 8945 5.2.2.1: a MAC may be truncated to no less than half the
 * digest and 10 bytes. 0 if the length is acceptable, BADTRUNC or -1. */
static int check_maclen(const struct tsig_key *key, uint16_t maclen)
{
	size_t full = tsig_alg_len(key->alg);
	if (maclen > full)
		return -1;
	size_t min = full / 2 > 10 ? full / 2 : 10;
	if (maclen < min)
		return maclen < 10 ? -1 : TSIG_BADTRUNC;
	return 0;
}

/* The time window a message is accepted in: its signer's fudge, but never
 * more than TSIG_FUDGE (RFC 8945 10 recommends 300 s). A signer's fudge of
 * 65535 would otherwise let a request captured 18 hours ago be replayed. */
static uint64_t window(uint16_t fudge)
{
	return fudge < TSIG_FUDGE ? fudge : TSIG_FUDGE;
}

int tsig_verify(const uint8_t *msg, size_t len, size_t tsig_off, const struct tsig_key *keys,
                size_t nkeys, uint64_t now, struct tsig_ctx *ctx)
{
	struct tsig_rr t;
	memset(ctx, 0, sizeof(*ctx));
	if (tsig_off < DNS_HEADER_LEN || tsig_off >= len || read_rr(msg, len, tsig_off, &t) == -1)
		return -1;
	memcpy(ctx->name, t.name, t.namelen);
	ctx->namelen = t.namelen;
	memcpy(ctx->algname, t.alg, t.alglen);
	ctx->algnamelen = t.alglen;
	ctx->time_signed = t.time;
	const struct tsig_key *key = tsig_key_find(keys, nkeys, t.name, t.namelen);
	if (!key || alg_from_wire(t.alg, t.alglen) != (int)key->alg) {
		ctx->error = TSIG_BADKEY;
		return TSIG_BADKEY;
	}
	ctx->key = key;
	int ml = check_maclen(key, t.maclen);
	if (ml == -1)
		return -1;
	uint8_t mac[TSIG_MAC_MAX];
	compute_mac(key, NULL, 0, msg, tsig_off, t.orig_id, true, &t, false, mac);
	if (sodium_memcmp(mac, t.mac, t.maclen) != 0) {
		ctx->error = TSIG_BADSIG;
		return TSIG_BADSIG;
	}
	if (ml == TSIG_BADTRUNC) {
		ctx->error = TSIG_BADTRUNC;
		return TSIG_BADTRUNC;
	}
	/* The answer covers the request's MAC as sent. */
	memcpy(ctx->mac, t.mac, t.maclen);
	ctx->maclen = t.maclen;
	uint64_t fudge = window(t.fudge);
	uint64_t lo = t.time > fudge ? t.time - fudge : 0;
	if (now < lo || now > t.time + fudge) {
		ctx->error = TSIG_BADTIME;
		return TSIG_BADTIME;
	}
	return TSIG_NOERROR;
}

int tsig_verify_response(const uint8_t *msg, size_t len, size_t tsig_off, uint64_t now,
                         struct tsig_ctx *ctx)
{
	struct tsig_rr t;
	if (!ctx->key || tsig_off < DNS_HEADER_LEN || tsig_off >= len ||
	    read_rr(msg, len, tsig_off, &t) == -1)
		return -1;
	if (!wire_name_equal(t.name, t.namelen, ctx->key->name, ctx->key->namelen) ||
	    alg_from_wire(t.alg, t.alglen) != (int)ctx->key->alg || t.error != TSIG_NOERROR ||
	    check_maclen(ctx->key, t.maclen) != 0)
		return -1;
	uint8_t mac[TSIG_MAC_MAX];
	compute_mac(ctx->key, ctx->mac, ctx->maclen, msg, tsig_off, t.orig_id, true, &t, false, mac);
	if (sodium_memcmp(mac, t.mac, t.maclen) != 0)
		return -1;
	if (now + window(t.fudge) < t.time || now > t.time + window(t.fudge))
		return -1;
	memcpy(ctx->mac, t.mac, t.maclen);
	ctx->maclen = t.maclen;
	return 0;
}

void tsig_ctx_init(struct tsig_ctx *ctx, const struct tsig_key *key)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->key = key;
	memcpy(ctx->name, key->name, key->namelen);
	ctx->namelen = key->namelen;
	const uint8_t *a = alg_wire(key->alg, &ctx->algnamelen);
	memcpy(ctx->algname, a, ctx->algnamelen);
}

int tsig_sign(uint8_t *msg, size_t len, size_t cap, struct tsig_ctx *ctx, uint64_t now)
{
	if (len < DNS_HEADER_LEN)
		return -1;
	struct tsig_rr v = { .fudge = TSIG_FUDGE, .error = ctx->error };
	uint8_t other[6];
	memcpy(v.name, ctx->name, ctx->namelen);
	v.namelen = ctx->namelen;
	memcpy(v.alg, ctx->algname, ctx->algnamelen);
	v.alglen = ctx->algnamelen;
	v.time = now;
	if (ctx->error == TSIG_BADTIME) {
		/* The request's time, so the client can tell the answer is to
		 * it; our clock as other data (RFC 8945 5.2.3). */
		v.time = ctx->time_signed;
		put48(other, now);
		v.other = other;
		v.otherlen = 6;
	}
	uint8_t mac[TSIG_MAC_MAX];
	size_t maclen = 0;
	bool unsigned_err = ctx->error == TSIG_BADSIG || ctx->error == TSIG_BADKEY ||
	                    ctx->error == TSIG_BADTRUNC || !ctx->key;
	uint16_t id = (uint16_t)(msg[0] << 8 | msg[1]);
	if (!unsigned_err) {
		bool chained = ctx->nsigned > 0;
		maclen = compute_mac(ctx->key, ctx->maclen || chained ? ctx->mac : NULL, ctx->maclen,
		                     msg, len, id, false, &v, chained, mac);
	}
	struct wire_writer w;
	wire_writer_init(&w, msg, cap);
	w.pos = len;
	wire_write_name(&w, v.name, v.namelen, false);
	wire_write_u16(&w, DNS_TYPE_TSIG);
	wire_write_u16(&w, DNS_CLASS_ANY);
	wire_write_u32(&w, 0);
	size_t lenpos = w.pos;
	wire_write_u16(&w, 0);
	wire_write_name(&w, v.alg, v.alglen, false);
	wire_write_u16(&w, (uint16_t)(v.time >> 32));
	wire_write_u32(&w, (uint32_t)v.time);
	wire_write_u16(&w, v.fudge);
	wire_write_u16(&w, (uint16_t)maclen);
	wire_write_bytes(&w, mac, maclen);
	wire_write_u16(&w, id);
	wire_write_u16(&w, v.error);
	wire_write_u16(&w, v.otherlen);
	wire_write_bytes(&w, other, v.otherlen);
	if (w.err)
		return -1;
	wire_patch_u16(&w, lenpos, (uint16_t)(w.pos - lenpos - 2));
	uint16_t ar = (uint16_t)(msg[10] << 8 | msg[11]);
	put16(msg + 10, (uint16_t)(ar + 1));
	memcpy(ctx->mac, mac, maclen);
	ctx->maclen = maclen;
	ctx->nsigned++;
	return (int)w.pos;
}

int tsig_sign_answer(uint8_t *msg, int n, size_t limit, struct tsig_ctx *ctx, uint64_t now)
{
	if (n <= DNS_HEADER_LEN)
		return n;
	int m = tsig_sign(msg, (size_t)n, limit, ctx, now);
	if (m > 0)
		return m;
	struct wire_reader r;
	wire_reader_init(&r, msg, (size_t)n);
	wire_skip(&r, DNS_HEADER_LEN);
	if (msg[4] == 0 && msg[5] == 1) {
		wire_read_name(&r, NULL);
		wire_skip(&r, 4);
	}
	if (r.err)
		return -1;
	memset(msg + 6, 0, 6);
	msg[2] |= DNS_FLAG_TC >> 8;
	return tsig_sign(msg, r.pos, limit, ctx, now);
}

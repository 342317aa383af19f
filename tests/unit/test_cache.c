/* test_cache.c -- cache.c: hits with the client's id, flags and name case,
 * TTLs decremented by age and expiry on an injected clock, RFC 2308
 * negative lifetimes, what is not cached, LRU eviction, truncation for UDP,
 * and two threads at once (for TSan). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "tap.h"
#include "dns/wire.h"

static uint64_t fake_now = 1000000;

static uint64_t fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

/* A response under construction. */
struct msg {
	struct wire_writer w;
	uint8_t buf[DNS_MSG_MAX];
	uint16_t count[3];
};

static void msg_begin(struct msg *m, const char *qname, uint16_t qtype, uint16_t flags)
{
	uint8_t name[DNS_NAME_MAX];
	size_t len;
	wire_name_from_text(qname, name, &len);
	wire_writer_init(&m->w, m->buf, sizeof(m->buf));
	memset(m->count, 0, sizeof(m->count));
	struct dns_header h = { .id = 0x1111, .flags = (uint16_t)(DNS_FLAG_QR | flags), .qdcount = 1 };
	wire_write_header(&m->w, &h);
	wire_write_name(&m->w, name, len, true);
	wire_write_u16(&m->w, qtype);
	wire_write_u16(&m->w, DNS_CLASS_IN);
}

static void msg_rr(struct msg *m, int sec, const char *owner, uint16_t type, uint32_t ttl,
                   const void *rd, uint16_t rdlen)
{
	uint8_t name[DNS_NAME_MAX];
	size_t len;
	wire_name_from_text(owner, name, &len);
	wire_write_name(&m->w, name, len, true);
	wire_write_u16(&m->w, type);
	wire_write_u16(&m->w, DNS_CLASS_IN);
	wire_write_u32(&m->w, ttl);
	wire_write_u16(&m->w, rdlen);
	wire_write_bytes(&m->w, rd, rdlen);
	m->count[sec]++;
}

static void msg_soa(struct msg *m, const char *zone, uint32_t ttl, uint32_t minimum)
{
	uint8_t rd[64] = { 2, 'n', 's', 0, 2, 'h', 'm', 0 };
	uint32_t vals[5] = { 1, 3600, 600, 86400, minimum };
	for (int i = 0; i < 5; i++) {
		rd[8 + 4 * i] = (uint8_t)(vals[i] >> 24);
		rd[9 + 4 * i] = (uint8_t)(vals[i] >> 16);
		rd[10 + 4 * i] = (uint8_t)(vals[i] >> 8);
		rd[11 + 4 * i] = (uint8_t)vals[i];
	}
	msg_rr(m, 1, zone, DNS_TYPE_SOA, ttl, rd, 28);
}

static void msg_opt(struct msg *m, uint16_t size, bool do_bit)
{
	wire_write_u8(&m->w, 0);
	wire_write_u16(&m->w, DNS_TYPE_OPT);
	wire_write_u16(&m->w, size);
	wire_write_u32(&m->w, do_bit ? DNS_EDNS_DO : 0);
	wire_write_u16(&m->w, 0);
	m->count[2]++;
}

static size_t msg_end(struct msg *m)
{
	wire_patch_u16(&m->w, 6, m->count[0]);
	wire_patch_u16(&m->w, 8, m->count[1]);
	wire_patch_u16(&m->w, 10, m->count[2]);
	return m->w.err ? 0 : m->w.pos;
}

static struct dns_question question(const char *name, uint16_t type)
{
	struct dns_question q;
	memset(&q, 0, sizeof(q));
	wire_name_from_text(name, q.name, &q.namelen);
	q.qtype = type;
	q.qclass = DNS_CLASS_IN;
	return q;
}

/* TTLs of the records of the answer section of msg, in order. */
static unsigned answer_ttls(const uint8_t *msg, size_t len, uint32_t *ttl, unsigned max,
                            struct dns_header *hout)
{
	struct wire_reader r;
	struct dns_header h;
	struct dns_question q;
	wire_reader_init(&r, msg, len);
	wire_read_header(&r, &h);
	wire_read_question(&r, &q);
	unsigned n = 0;
	unsigned total = (unsigned)h.ancount + h.nscount;
	for (unsigned i = 0; i < total && n < max; i++) {
		struct dns_rr rr;
		wire_read_rr(&r, &rr);
		ttl[n++] = rr.ttl;
	}
	if (hout)
		*hout = h;
	return r.err ? 0 : n;
}

static struct cache *new_cache(uint32_t max_entries)
{
	struct cache_settings set = {
		.max_entries = max_entries,
		.min_ttl = 0,
		.max_ttl = 86400,
		.neg_max_ttl = 3600,
		.udp_max_payload = 1232,
		.now_ms = fake_clock,
	};
	return cache_new(&set);
}

static const uint8_t addr1[4] = { 192, 0, 2, 1 }, addr2[4] = { 192, 0, 2, 2 };

static void test_positive(void)
{
	struct cache *c = new_cache(1000);
	struct msg m;
	msg_begin(&m, "www.example.test", DNS_TYPE_A, DNS_FLAG_AA | DNS_FLAG_RD);
	msg_rr(&m, 0, "www.example.test", DNS_TYPE_A, 300, addr1, 4);
	msg_rr(&m, 0, "www.example.test", DNS_TYPE_A, 60, addr2, 4);
	size_t len = msg_end(&m);
	struct dns_question q = question("www.example.test", DNS_TYPE_A);
	ok(cache_put(c, &q, CACHE_EDNS_NONE, 0, m.buf, len), "positive answer stored");

	uint8_t out[4096];
	struct dns_question q2 = question("WwW.ExAmple.TEST", DNS_TYPE_A);
	size_t n = cache_get(c, &q2, CACHE_EDNS_NONE, 0xbeef, 0, out, sizeof(out), 512);
	is_int(n, len, "hit in another case: same length");
	is_int(out[0] << 8 | out[1], 0xbeef, "client's id");
	uint16_t flags = (uint16_t)(out[2] << 8 | out[3]);
	ok(!(flags & DNS_FLAG_AA) && (flags & DNS_FLAG_RA), "AA cleared, RA set");
	ok(!(flags & DNS_FLAG_RD) && !(flags & DNS_FLAG_CD), "RD and CD are the client's");
	ok(memcmp(out + 12, q2.name, q2.namelen) == 0, "question in the client's case");
	uint32_t ttl[4];
	is_int(answer_ttls(out, n, ttl, 4, NULL), 2, "two answers");
	ok(ttl[0] == 300 && ttl[1] == 60, "fresh TTLs (%u, %u)", ttl[0], ttl[1]);

	fake_now += 10500;
	n = cache_get(c, &q, CACHE_EDNS_NONE, 1, DNS_FLAG_RD, out, sizeof(out), 512);
	answer_ttls(out, n, ttl, 4, NULL);
	ok(n && ttl[0] == 290 && ttl[1] == 50, "10.5 s later: TTLs 290, 50 (%u, %u)", ttl[0], ttl[1]);
	fake_now += 49000;  /* 59.5 s */
	n = cache_get(c, &q, CACHE_EDNS_NONE, 1, DNS_FLAG_RD, out, sizeof(out), 512);
	answer_ttls(out, n, ttl, 4, NULL);
	ok(n && ttl[1] == 1, "59.5 s: shortest TTL 1 (%u)", ttl[1]);
	fake_now += 500;    /* 60 s */
	is_int(cache_get(c, &q, CACHE_EDNS_NONE, 1, 0, out, sizeof(out), 512), 0,
	       "60 s: the shortest TTL expired, a miss");
	struct cache_stats st;
	cache_stats(c, &st);
	is_int(st.entries, 0, "expired entry removed");
	is_int(st.hits, 3, "3 hits counted");
	is_int(cache_get(c, &q, CACHE_EDNS_DO, 1, 0, out, sizeof(out), 512), 0, "other key: miss");
	cache_free(c);
}

static void test_keys(void)
{
	struct cache *c = new_cache(1000);
	struct msg m;
	msg_begin(&m, "a.example.test", DNS_TYPE_A, 0);
	msg_rr(&m, 0, "a.example.test", DNS_TYPE_A, 300, addr1, 4);
	msg_opt(&m, 4096, false);
	size_t len = msg_end(&m);
	struct dns_question q = question("a.example.test", DNS_TYPE_A);
	ok(cache_put(c, &q, CACHE_EDNS_PLAIN, 0, m.buf, len), "answer with OPT stored");
	uint8_t out[4096];
	ok(cache_get(c, &q, CACHE_EDNS_PLAIN, 1, 0, out, sizeof(out), 1232) == len, "EDNS client: hit");
	ok(out[len - 11 + 3] == (1232 >> 8) && out[len - 11 + 4] == (1232 & 0xff),
	   "OPT carries our payload size");
	is_int(cache_get(c, &q, CACHE_EDNS_NONE, 1, 0, out, sizeof(out), 512), 0,
	       "client without EDNS: miss (no OPT for it)");
	is_int(cache_get(c, &q, CACHE_EDNS_DO, 1, 0, out, sizeof(out), 512), 0, "DO client: miss");
	struct dns_question qaaaa = question("a.example.test", DNS_TYPE_AAAA);
	is_int(cache_get(c, &qaaaa, CACHE_EDNS_PLAIN, 1, 0, out, sizeof(out), 512), 0,
	       "other type: miss");
	struct dns_question other = question("b.example.test", DNS_TYPE_A);
	ok(!cache_put(c, &other, CACHE_EDNS_PLAIN, 0, m.buf, len), "answer to another question refused");
	cache_free(c);
}

static void test_negative(void)
{
	struct cache *c = new_cache(1000);
	struct msg m;
	uint8_t out[4096];
	uint32_t ttl[4];

	msg_begin(&m, "nx.example.test", DNS_TYPE_A, DNS_FLAG_AA | DNS_RCODE_NXDOMAIN);
	msg_soa(&m, "example.test", 3600, 30);
	size_t len = msg_end(&m);
	struct dns_question q = question("nx.example.test", DNS_TYPE_A);
	ok(cache_put(c, &q, CACHE_EDNS_NONE, 0, m.buf, len), "NXDOMAIN with SOA stored");
	size_t n = cache_get(c, &q, CACHE_EDNS_NONE, 7, 0, out, sizeof(out), 512);
	struct dns_header h;
	answer_ttls(out, n, ttl, 4, &h);
	ok(n && DNS_RCODE(h.flags) == DNS_RCODE_NXDOMAIN, "NXDOMAIN hit");
	is_int(ttl[0], 30, "SOA TTL = min(TTL 3600, MINIMUM 30)");
	fake_now += 29999;
	ok(cache_get(c, &q, CACHE_EDNS_NONE, 7, 0, out, sizeof(out), 512) > 0, "hit at 29.999 s");
	fake_now += 1;
	is_int(cache_get(c, &q, CACHE_EDNS_NONE, 7, 0, out, sizeof(out), 512), 0, "miss at 30 s");

	msg_begin(&m, "www.example.test", DNS_TYPE_MX, DNS_FLAG_AA);
	msg_soa(&m, "example.test", 20, 7200);
	len = msg_end(&m);
	q = question("www.example.test", DNS_TYPE_MX);
	ok(cache_put(c, &q, CACHE_EDNS_NONE, 0, m.buf, len), "NODATA with SOA stored");
	n = cache_get(c, &q, CACHE_EDNS_NONE, 7, 0, out, sizeof(out), 512);
	answer_ttls(out, n, ttl, 4, NULL);
	is_int(ttl[0], 20, "NODATA lifetime: SOA TTL 20 < MINIMUM");

	msg_begin(&m, "big.example.test", DNS_TYPE_A, DNS_RCODE_NXDOMAIN);
	msg_soa(&m, "example.test", 86400, 86400);
	len = msg_end(&m);
	q = question("big.example.test", DNS_TYPE_A);
	cache_put(c, &q, CACHE_EDNS_NONE, 0, m.buf, len);
	n = cache_get(c, &q, CACHE_EDNS_NONE, 7, 0, out, sizeof(out), 512);
	answer_ttls(out, n, ttl, 4, NULL);
	is_int(ttl[0], 3600, "negative lifetime capped by neg-max-ttl");

	msg_begin(&m, "nosoa.example.test", DNS_TYPE_A, DNS_RCODE_NXDOMAIN);
	len = msg_end(&m);
	q = question("nosoa.example.test", DNS_TYPE_A);
	ok(!cache_put(c, &q, CACHE_EDNS_NONE, 0, m.buf, len), "NXDOMAIN without SOA not cached");
	msg_begin(&m, "sf.example.test", DNS_TYPE_A, DNS_RCODE_SERVFAIL);
	len = msg_end(&m);
	q = question("sf.example.test", DNS_TYPE_A);
	ok(!cache_put(c, &q, CACHE_EDNS_NONE, 0, m.buf, len), "SERVFAIL not cached");
	msg_begin(&m, "tc.example.test", DNS_TYPE_A, DNS_FLAG_TC);
	msg_rr(&m, 0, "tc.example.test", DNS_TYPE_A, 300, addr1, 4);
	len = msg_end(&m);
	q = question("tc.example.test", DNS_TYPE_A);
	ok(!cache_put(c, &q, CACHE_EDNS_NONE, 0, m.buf, len), "truncated answer not cached");
	msg_begin(&m, "zero.example.test", DNS_TYPE_A, 0);
	msg_rr(&m, 0, "zero.example.test", DNS_TYPE_A, 0, addr1, 4);
	len = msg_end(&m);
	q = question("zero.example.test", DNS_TYPE_A);
	ok(!cache_put(c, &q, CACHE_EDNS_NONE, 0, m.buf, len), "TTL 0 not cached");
	ok(!cache_put(c, &q, CACHE_EDNS_NONE, 0, m.buf, len - 1), "malformed message not cached");
	cache_free(c);
}

static void test_clamp(void)
{
	struct cache_settings set = {
		.max_entries = 100, .min_ttl = 30, .max_ttl = 600, .neg_max_ttl = 60,
		.udp_max_payload = 1232, .now_ms = fake_clock,
	};
	struct cache *c = cache_new(&set);
	struct msg m;
	uint8_t out[4096];
	uint32_t ttl[4];
	msg_begin(&m, "c.example.test", DNS_TYPE_A, 0);
	msg_rr(&m, 0, "c.example.test", DNS_TYPE_A, 5, addr1, 4);
	msg_rr(&m, 0, "c.example.test", DNS_TYPE_A, 100000, addr2, 4);
	size_t len = msg_end(&m);
	struct dns_question q = question("c.example.test", DNS_TYPE_A);
	ok(cache_put(c, &q, CACHE_EDNS_NONE, 0, m.buf, len), "stored");
	size_t n = cache_get(c, &q, CACHE_EDNS_NONE, 1, 0, out, sizeof(out), 512);
	answer_ttls(out, n, ttl, 4, NULL);
	ok(ttl[0] == 30 && ttl[1] == 600, "TTLs clamped to min-ttl and max-ttl (%u, %u)", ttl[0], ttl[1]);
	fake_now += 29000;
	ok(cache_get(c, &q, CACHE_EDNS_NONE, 1, 0, out, sizeof(out), 512) > 0, "alive for min-ttl");
	cache_free(c);
}

static void test_truncate(void)
{
	struct cache *c = new_cache(100);
	struct msg m;
	msg_begin(&m, "many.example.test", DNS_TYPE_A, 0);
	for (int i = 0; i < 60; i++) {
		uint8_t a[4] = { 10, 0, 0, (uint8_t)i };
		msg_rr(&m, 0, "many.example.test", DNS_TYPE_A, 300, a, 4);
	}
	msg_opt(&m, 1232, true);
	size_t len = msg_end(&m);
	struct dns_question q = question("many.example.test", DNS_TYPE_A);
	ok(len > 512 && cache_put(c, &q, CACHE_EDNS_DO, 0, m.buf, len), "%zu-byte answer stored", len);
	uint8_t out[4096];
	size_t n = cache_get(c, &q, CACHE_EDNS_DO, 9, 0, out, sizeof(out), 512);
	struct dns_header h;
	uint32_t ttl[4];
	answer_ttls(out, n, ttl, 4, &h);
	ok(n > 0 && n <= 512 && (h.flags & DNS_FLAG_TC), "cut to %zu bytes with TC", n);
	ok(h.ancount == 0 && h.arcount == 1, "no answers, OPT kept");
	ok(out[n - 11] == 0 && out[n - 10] == 0 && out[n - 9] == DNS_TYPE_OPT, "OPT last");
	ok(out[n - 4] & 0x80, "DO bit kept");
	is_int(cache_get(c, &q, CACHE_EDNS_DO, 9, 0, out, sizeof(out), 4096), len, "whole over TCP");
	is_int(cache_get(c, &q, CACHE_EDNS_DO, 9, 0, out, 100, 4096), 0, "too small a buffer: miss");
	cache_free(c);
}

static void test_lru(void)
{
	/* 128 entries: 2 per shard. n0 is read after every insertion, so it is
	 * never its shard's least recently used and must survive. */
	struct cache *c = new_cache(128);
	struct msg m;
	uint8_t out[4096];
	char name[64];
	msg_begin(&m, "n0.example.test", DNS_TYPE_A, 0);
	msg_rr(&m, 0, "n0.example.test", DNS_TYPE_A, 300, addr1, 4);
	size_t len = msg_end(&m);
	struct dns_question q0 = question("n0.example.test", DNS_TYPE_A);
	cache_put(c, &q0, CACHE_EDNS_NONE, 0, m.buf, len);
	bool kept = true;
	for (int i = 1; i <= 1000; i++) {
		snprintf(name, sizeof(name), "n%d.example.test", i);
		msg_begin(&m, name, DNS_TYPE_A, 0);
		msg_rr(&m, 0, name, DNS_TYPE_A, 300, addr1, 4);
		len = msg_end(&m);
		struct dns_question q = question(name, DNS_TYPE_A);
		cache_put(c, &q, CACHE_EDNS_NONE, 0, m.buf, len);
		kept &= cache_get(c, &q0, CACHE_EDNS_NONE, 1, 0, out, sizeof(out), 512) > 0;
	}
	ok(kept, "the entry read after every insertion is never evicted");
	struct cache_stats st;
	cache_stats(c, &st);
	ok(st.entries <= 128 && st.entries >= 64, "bounded: %llu entries", (unsigned long long)st.entries);
	is_int(st.evictions, 1001 - st.entries, "every other entry was evicted");
	snprintf(name, sizeof(name), "n1.example.test");
	struct dns_question q1 = question(name, DNS_TYPE_A);
	is_int(cache_get(c, &q1, CACHE_EDNS_NONE, 1, 0, out, sizeof(out), 512), 0,
	       "an early, never read entry is gone");
	cache_free(c);

	struct cache *none = new_cache(0);
	ok(!cache_put(none, &q0, CACHE_EDNS_NONE, 0, m.buf, len), "max-entries 0 stores nothing");
	cache_free(none);
}

struct worker_arg {
	struct cache *c;
	pthread_barrier_t *go;
	int id;
	unsigned hits;
};

static void *worker(void *p)
{
	struct worker_arg *a = p;
	struct msg *m = malloc(sizeof(*m));
	uint8_t *out = malloc(4096);
	char name[64];
	pthread_barrier_wait(a->go);
	for (int i = 0; i < 20000; i++) {
		snprintf(name, sizeof(name), "t%d.example.test", i % 300);
		struct dns_question q = question(name, DNS_TYPE_A);
		if ((i + a->id) % 3 == 0) {
			msg_begin(m, name, DNS_TYPE_A, 0);
			msg_rr(m, 0, name, DNS_TYPE_A, 300, addr1, 4);
			cache_put(a->c, &q, CACHE_EDNS_NONE, 0, m->buf, msg_end(m));
		} else if (cache_get(a->c, &q, CACHE_EDNS_NONE, (uint16_t)i, 0, out, 4096, 512)) {
			a->hits++;
		}
	}
	free(m);
	free(out);
	return NULL;
}

static void test_threads(void)
{
	struct cache_settings set = {
		.max_entries = 200, .max_ttl = 86400, .neg_max_ttl = 3600, .udp_max_payload = 1232,
	};
	struct cache *c = cache_new(&set);
	/* Each worker reads names only the other one writes, so one that ran
	 * to the end before the other started would never hit: the names
	 * both read (t1, t4, ...) are there from the start, and a barrier
	 * starts the two together. */
	struct msg m;
	char name[64];
	for (int i = 1; i < 300; i += 3) {
		snprintf(name, sizeof(name), "t%d.example.test", i);
		struct dns_question q = question(name, DNS_TYPE_A);
		msg_begin(&m, name, DNS_TYPE_A, 0);
		msg_rr(&m, 0, name, DNS_TYPE_A, 300, addr1, 4);
		cache_put(c, &q, CACHE_EDNS_NONE, 0, m.buf, msg_end(&m));
	}
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, 2);
	struct worker_arg a[2] = { { .c = c, .go = &go, .id = 0 }, { .c = c, .go = &go, .id = 1 } };
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, worker, &a[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&go);
	struct cache_stats st;
	cache_stats(c, &st);
	ok(a[0].hits > 0 && a[1].hits > 0, "both threads hit (%u, %u)", a[0].hits, a[1].hits);
	ok(st.entries <= 256, "bounded under concurrency (%llu)", (unsigned long long)st.entries);
	cache_free(c);
}

/* RFC 4035 3.2.2: what a validating upstream gives CD=1 (data it would
 * SERVFAIL for CD=0) must never be served to a CD=0 client. */
static void test_cd_key(void)
{
	struct cache *c = new_cache(100);
	struct msg m;
	msg_begin(&m, "bogus.example.test", DNS_TYPE_A, DNS_FLAG_CD);
	msg_rr(&m, 0, "bogus.example.test", DNS_TYPE_A, 300, addr1, 4);
	size_t len = msg_end(&m);
	struct dns_question q = question("bogus.example.test", DNS_TYPE_A);
	uint8_t out[4096];
	ok(cache_put(c, &q, CACHE_EDNS_NONE, DNS_FLAG_RD | DNS_FLAG_CD, m.buf, len),
	   "CD=1 answer stored");
	is_int(cache_get(c, &q, CACHE_EDNS_NONE, 1, DNS_FLAG_RD, out, sizeof(out), 512), 0,
	       "CD=0 client: miss (not the CD=1 answer)");
	ok(cache_get(c, &q, CACHE_EDNS_NONE, 1, DNS_FLAG_RD | DNS_FLAG_CD, out, sizeof(out), 512) ==
	   len, "CD=1 client: hit");
	ok((out[3] & DNS_FLAG_CD), "CD echoed");
	cache_free(c);
}

static void test_rewrite(void)
{
	struct msg m;
	uint8_t out[DNS_MSG_MAX];
	size_t opt = 0;
	msg_begin(&m, "p.example.test", DNS_TYPE_A, DNS_FLAG_AA);
	msg_rr(&m, 0, "p.example.test", DNS_TYPE_A, 300, addr1, 4);
	msg_opt(&m, 4096, false);
	size_t len = msg_end(&m);
	struct dns_question q = question("P.eXample.test", DNS_TYPE_A);
	is_int(cache_answer_rewrite(m.buf, len, &q, 0x4242, DNS_FLAG_RD, 1232, out, sizeof(out), &opt),
	       len, "rewritten, same length");
	uint16_t f = (uint16_t)(out[2] << 8 | out[3]);
	ok(!(f & DNS_FLAG_AA) && (f & DNS_FLAG_RA) && (f & DNS_FLAG_RD), "AA off, RA on, RD the client's");
	is_int(out[0] << 8 | out[1], 0x4242, "client's id");
	ok(memcmp(out + 12, q.name, q.namelen) == 0, "question in the client's spelling");
	is_int(opt, len - 11, "OPT found");
	ok((out[len - 8] << 8 | out[len - 7]) == 1232, "our payload size");
	is_int(cache_answer_rewrite(m.buf, len - 3, &q, 1, 0, 1232, out, sizeof(out), NULL), 0,
	       "garbage refused");
	struct dns_question other = question("q.example.test", DNS_TYPE_A);
	is_int(cache_answer_rewrite(m.buf, len, &other, 1, 0, 1232, out, sizeof(out), NULL), 0,
	       "another question refused");
	m.buf[2] &= (uint8_t)~(DNS_FLAG_QR >> 8);
	is_int(cache_answer_rewrite(m.buf, len, &q, 1, 0, 1232, out, sizeof(out), NULL), 0,
	       "QR=0 refused");
	m.buf[2] |= DNS_FLAG_QR >> 8;
	m.buf[2] |= 1 << 3;  /* opcode IQUERY */
	is_int(cache_answer_rewrite(m.buf, len, &q, 1, 0, 1232, out, sizeof(out), NULL), 0,
	       "opcode other than QUERY refused");
	ok(!cache_put(NULL, &q, CACHE_EDNS_NONE, 0, m.buf, len), "NULL cache: nothing");
	is_int(cache_truncate(m.buf, len, 4096), len, "short enough: unchanged");

	/* The question "." written as a pointer to the header's zero byte
	 * (offset 4: qdcount's high byte): was patched in place, leaving a
	 * stray byte, and cached. */
	static const uint8_t ptrq[] = {
		0x11, 0x11, 0x84, 0x00, 0, 1, 0, 1, 0, 0, 0, 0,
		0xc0, 0x04, 0, 2, 0, 1,
		0, 0, 2, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 0x04,
	};
	struct dns_question root = question(".", DNS_TYPE_NS);
	is_int(cache_answer_rewrite(ptrq, sizeof(ptrq), &root, 1, 0, 1232, out, sizeof(out), NULL), 0,
	       "question compressed into the header refused");
	struct cache *c = new_cache(100);
	ok(!cache_put(c, &root, CACHE_EDNS_NONE, 0, ptrq, sizeof(ptrq)), "and not cached");
	cache_free(c);
}

/* More records than the old fixed 1024: passed on and cached. */
static void test_many_records(void)
{
	struct msg m;
	static uint8_t out[DNS_MSG_MAX];
	msg_begin(&m, "big.example.test", DNS_TYPE_A, 0);
	for (unsigned i = 0; i < 1500; i++) {
		uint8_t a[4] = { 10, (uint8_t)(i >> 8), (uint8_t)i, 1 };
		msg_rr(&m, 0, "big.example.test", DNS_TYPE_A, 300, a, 4);
	}
	size_t len = msg_end(&m);
	ok(len > 20000, "1500 records, %zu bytes", len);
	struct dns_question q = question("big.example.test", DNS_TYPE_A);
	is_int(cache_answer_rewrite(m.buf, len, &q, 1, 0, 1232, out, sizeof(out), NULL), len,
	       "1500 records passed on");
	struct cache *c = new_cache(100);
	ok(cache_put(c, &q, CACHE_EDNS_NONE, 0, m.buf, len), "and cached");
	fake_now += 5000;
	size_t n = cache_get(c, &q, CACHE_EDNS_NONE, 1, 0, out, sizeof(out), DNS_MSG_MAX);
	uint32_t ttl[1500];
	is_int(answer_ttls(out, n, ttl, 1500, NULL), 1500, "1500 records from the cache");
	ok(ttl[0] == 295 && ttl[1499] == 295, "every TTL aged (%u, %u)", ttl[0], ttl[1499]);
	cache_free(c);
}

int main(void)
{
	test_positive();
	test_keys();
	test_negative();
	test_clamp();
	test_truncate();
	test_lru();
	test_threads();
	test_cd_key();
	test_rewrite();
	test_many_records();
	return done_testing();
}

/* cache.h -- answers from upstream servers, kept as wire messages for their
 * TTL: sharded (a mutex per shard, so UDP workers do not serialize on one
 * lock), bounded by an LRU per shard. Knows DNS messages, not sockets. */
#ifndef MESHDNS_CACHE_H
#define MESHDNS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns/wire.h"

/* The client's EDNS state is part of the key: an answer to a query with
 * EDNS carries an OPT record, one to a query without must not (RFC 6891
 * 7), and DNSSEC records come only with DO (RFC 3225). */
enum cache_edns {
	CACHE_EDNS_NONE = 0,
	CACHE_EDNS_PLAIN = 1,
	CACHE_EDNS_DO = 2,
};

struct cache_settings {
	uint32_t max_entries;         /* 0: cache nothing */
	uint32_t min_ttl, max_ttl;    /* seconds: positive answers' TTLs are clamped to these */
	uint32_t neg_max_ttl;         /* seconds: NXDOMAIN/NODATA kept at most this long */
	uint16_t udp_max_payload;     /* written into the OPT record of answers */
	/* Milliseconds on any monotonic scale; NULL: CLOCK_MONOTONIC (tests
	 * inject their own). Called with a shard lock held. */
	uint64_t (*now_ms)(void *arg);
	void *now_arg;
};

struct cache_stats {
	uint64_t hits, misses, stores, evictions, entries;
};

struct cache;

/* NULL if out of memory. The settings are copied. */
struct cache *cache_new(const struct cache_settings *set);
/* cache_free(NULL) is a no-op. No other thread may use it any more. */
void cache_free(struct cache *c);

/* Looks up (q's name in any case, qtype, qclass, edns, flags' CD bit). On a hit writes
 * the answer into out: the cached message with the client's id, RD and CD
 * flags and question (case restored), every TTL but OPT's decremented by
 * the entry's age; if it is longer than limit, only header, question and
 * OPT with TC set (the client retries over TCP). Returns its length, or 0
 * on a miss (absent, expired, or cap too small). Any thread; no allocation. */
size_t cache_get(struct cache *c, const struct dns_question *q, enum cache_edns edns,
                 uint16_t id, uint16_t flags, uint8_t *out, size_t cap, size_t limit);

/* Stores response msg to question q, asked with header flags (only CD
 * matters: part of the key), if it answers q (see cache_answer_rewrite)
 * and is cacheable: NOERROR with
 * answers (lifetime: the shortest TTL, clamped to min_ttl..max_ttl),
 * NXDOMAIN or NODATA with an SOA in the authority section (lifetime
 * min(SOA TTL, MINIMUM), RFC 2308 5, at most neg_max_ttl). Truncated
 * messages, other rcodes and unparsable ones are not stored. TTLs are
 * clamped to the lifetime, AA is cleared, RA set and OPT's payload size
 * set to ours. Returns true if stored. Any thread; allocates. */
bool cache_put(struct cache *c, const struct dns_question *q, enum cache_edns edns,
               uint16_t flags, const uint8_t *msg, size_t len);

void cache_stats(struct cache *c, struct cache_stats *out);

/* An upstream's answer msg to question q, checked and rewritten for the
 * client into out (cap bytes): the whole message must parse with no
 * trailing bytes, have QR set, opcode QUERY and one question equal to q
 * (name in any case, written without compression); anything else is a
 * broken or forged answer. The copy has the client's id, RD and CD bits
 * (from flags) and question spelling (re-encoded, not patched), AA
 * cleared, RA set and our payload size in OPT. Returns its length (that
 * of msg), with the OPT record's offset (0: none) in *opt_off if not
 * NULL; 0 if msg is refused or cap too small. Any thread; allocates. */
size_t cache_answer_rewrite(const uint8_t *msg, size_t len, const struct dns_question *q,
                            uint16_t id, uint16_t flags, uint16_t udp_max_payload,
                            uint8_t *out, size_t cap, size_t *opt_off);

/* Cuts response msg (len bytes, in place) to header, question and its OPT
 * record with TC set if it is longer than limit. Returns the new length,
 * or 0 if msg does not parse. */
size_t cache_truncate(uint8_t *msg, size_t len, size_t limit);

#endif

/* hash.h -- FNV-1a (64 bits) for the in-memory tables: over bytes, over
 * bytes with ASCII letters folded to lowercase (DNS names compare that
 * way), over a C string. Each table adds its own seed and finishing mix;
 * one where an outsider picks the keys seeds it with a random key. And
 * the finishing mix of 64-bit values (splitmix64's). */
#ifndef MESHDNS_HASH_H
#define MESHDNS_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FNV_SEED 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

static inline uint64_t fnv_bytes(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * FNV_PRIME;
	return h;
}

static inline uint64_t fnv_lower(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = b[i];
		if (c >= 'A' && c <= 'Z')
			c = (uint8_t)(c + ('a' - 'A'));
		h = (h ^ c) * FNV_PRIME;
	}
	return h;
}

/* Eight bytes with their ASCII capitals made small, at once: a byte's
 * high bit is set by the first sum when it is >= 'A', by the second when
 * it is > 'Z' (the low 7 bits summed, so no carry crosses a byte). */
static inline uint64_t word_lower(uint64_t x)
{
	uint64_t low = x & 0x7f7f7f7f7f7f7f7full;
	uint64_t ge_a = low + 0x3f3f3f3f3f3f3f3full;
	uint64_t gt_z = low + 0x2525252525252525ull;
	return x | ((ge_a & ~gt_z & ~x & 0x8080808080808080ull) >> 2);
}

/* A hash of bytes with ASCII letters folded, a word at a time (names are
 * looked up on every query; fnv_lower costs a multiply per byte). Not
 * compatible with fnv_lower: a table uses one or the other. */
static inline uint64_t hash_lower(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t total = n;
	h ^= n * 0x9e3779b97f4a7c15ull;
	for (; n >= 8; n -= 8, b += 8) {
		uint64_t w;
		memcpy(&w, b, 8);
		h = (h ^ word_lower(w)) * 0xbf58476d1ce4e5b9ull;
		h ^= h >> 31;
	}
	if (n) {
		/* The tail: the last 8 bytes, overlapping what was hashed (the
		 * length is in h already), when there were that many. */
		uint64_t w = 0;
		if (total >= 8) {
			memcpy(&w, b + n - 8, 8);
		} else if (n >= 4) {
			uint32_t lo, hi;
			memcpy(&lo, b, 4);
			memcpy(&hi, b + n - 4, 4);
			w = lo | (uint64_t)hi << 32;
		} else {
			for (size_t i = 0; i < n; i++)
				w |= (uint64_t)b[i] << (8 * i);
		}
		h = (h ^ word_lower(w)) * 0x94d049bb133111ebull;
		h ^= h >> 29;
	}
	return h;
}

/* splitmix64's finalizer: every input bit moves every output bit. */
static inline uint64_t hash_mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint64_t fnv_str(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * FNV_PRIME;
	return h;
}

#endif

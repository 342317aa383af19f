/* hash.h -- FNV-1a (64 bits) for the in-memory tables: over bytes, over
 * bytes with ASCII letters folded to lowercase (DNS names compare that
 * way), over a C string. Each table adds its own seed and finishing mix;
 * one where an outsider picks the keys seeds it with a random key. And
 * the finishing mix of 64-bit values (splitmix64's). */
#ifndef MESHDNS_HASH_H
#define MESHDNS_HASH_H

#include <stddef.h>
#include <stdint.h>

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

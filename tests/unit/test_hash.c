/* test_hash.c -- the table hashes (util/hash.h): word_lower folds exactly
 * the 26 ASCII capitals in every byte position, hash_lower is the same for
 * names that differ only in their case and differs otherwise (lengths,
 * tails, a byte past the first word), and spreads short names over a
 * table's slots. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util/hash.h"
#include "tap.h"

static uint8_t lower1(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

int main(void)
{
	/* Every byte value in every position of a word, the others set to
	 * values around the edges ('@', 'A', 'Z', '[', 0x80, 0xc1, 0xff). */
	static const uint8_t around[] = { 0x40, 0x41, 0x5a, 0x5b, 0x80, 0xc1, 0xff, 0x00 };
	unsigned bad = 0;
	for (unsigned pos = 0; pos < 8; pos++) {
		for (unsigned v = 0; v < 256; v++) {
			uint8_t in[8], want[8];
			for (unsigned i = 0; i < 8; i++)
				in[i] = around[(i + v) % 8];
			in[pos] = (uint8_t)v;
			for (unsigned i = 0; i < 8; i++)
				want[i] = lower1(in[i]);
			uint64_t w;
			memcpy(&w, in, 8);
			w = word_lower(w);
			bad += memcmp(&w, want, 8) != 0;
		}
	}
	is_int(bad, 0, "word_lower folds A-Z alone, in every position, next to any byte");

	const char *a = "\x0bUser-Service\x04MESH\x00", *b = "\x0buser-service\x04mesh\x00";
	size_t n = 19;
	ok(hash_lower(7, a, n) == hash_lower(7, b, n), "case does not change the hash");
	ok(hash_lower(7, b, n) != hash_lower(8, b, n), "the seed does");
	ok(hash_lower(7, b, n) != hash_lower(7, b, n - 1), "the length does");
	char c[32];
	memcpy(c, b, n);
	c[17] = 'x';
	ok(hash_lower(7, c, n) != hash_lower(7, b, n), "a byte in the tail does");
	memcpy(c, b, n);
	c[9] = 'x';
	ok(hash_lower(7, c, n) != hash_lower(7, b, n), "a byte in the second word does");
	ok(hash_lower(7, "\0\0\0", 3) != hash_lower(7, "\0\0", 2), "zero bytes count by length");

	/* Every length from 1 to 40 (the word loop, the overlapping tail, the
	 * short tails): upper case hashes as lower case, and a change of any
	 * one byte changes the hash. */
	unsigned same = 0, moved = 0, tried = 0;
	for (size_t len = 1; len <= 40; len++) {
		uint8_t lo[40], up[40];
		for (size_t i = 0; i < len; i++) {
			lo[i] = (uint8_t)('a' + (i * 7 + len) % 26);
			up[i] = (uint8_t)(lo[i] - 32);
		}
		same += hash_lower(3, lo, len) == hash_lower(3, up, len);
		for (size_t i = 0; i < len; i++) {
			uint8_t ch[40];
			memcpy(ch, lo, len);
			ch[i] = '0';
			moved += hash_lower(3, ch, len) != hash_lower(3, lo, len);
			tried++;
		}
	}
	is_int(same, 40, "lengths 1-40: case never changes the hash");
	is_int(moved, tried, "lengths 1-40: any one byte changed changes it");

	/* 4,096 names svcN.mesh into 8,192 slots: the fullest slot of a
	 * good hash holds a handful. */
	static unsigned slots[8192];
	unsigned most = 0;
	for (unsigned i = 0; i < 4096; i++) {
		char name[32];
		int len = snprintf(name + 1, sizeof(name) - 1, "svc%u", i);
		name[0] = (char)len;
		memcpy(name + 1 + len, "\x04mesh", 6);
		size_t nl = (size_t)len + 7;
		unsigned s = (unsigned)(hash_mix64(hash_lower(1, name, nl)) & 8191);
		if (++slots[s] > most)
			most = slots[s];
	}
	ok(most <= 8, "4,096 names in 8,192 slots: at most 8 in one (%u)", most);
	return done_testing();
}

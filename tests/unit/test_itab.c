/* test_itab.c -- the open-addressing index (itab.h): sizes, put and find,
 * collisions that wrap past the end of the array, a probe over a table
 * with one empty slot left. */
#include <stdbool.h>
#include <stdint.h>

#include "util/itab.h"
#include "tap.h"

/* The item of key in t (keys[item] == key), or -1. */
static long find(const struct itab *t, const uint64_t *keys, uint64_t hash, uint64_t key)
{
	size_t pos;
	uint32_t item;
	ITAB_FOR(t, hash, pos, item) {
		if (keys[item] == key)
			return item;
	}
	return -1;
}

/* How many items hash's probe sequence walks before its empty slot. */
static size_t walk(const struct itab *t, uint64_t hash, size_t *end)
{
	size_t pos, n = 0;
	uint32_t item;
	ITAB_FOR(t, hash, pos, item) {
		(void)item;
		n++;
	}
	*end = pos;
	return n;
}

int main(void)
{
	is_int(itab_slots(0), 16, "no items: 16 slots");
	is_int(itab_slots(8), 16, "8 items: 16 slots (half full)");
	is_int(itab_slots(9), 32, "9 items: 32 slots");
	is_int(itab_slots(1000), 2048, "1000 items: 2048 slots");

	struct itab t = { 0 };
	is_int(itab_size(&t), 0, "no table: size 0");
	itab_free(&t);
	ok(t.slot == NULL, "itab_free without a table is a no-op");

	/* Distinct hashes: each item in its home slot. */
	uint64_t keys[16];
	ok(itab_init(&t, 5) == 0, "init for 5 items");
	is_int(itab_size(&t), 16, "5 items: 16 slots");
	for (uint32_t i = 0; i < 5; i++) {
		keys[i] = 100 + i;
		itab_put(&t, keys[i] * 3, i);
	}
	for (uint32_t i = 0; i < 5; i++)
		is_int(find(&t, keys, keys[i] * 3, keys[i]), i, "item %u found by its hash", i);
	is_int(find(&t, keys, 7, 7), -1, "a key not put is not found");
	is_int(t.slot[(100 * 3) & t.mask], 1, "slots hold the item + 1");
	itab_free(&t);
	ok(t.slot == NULL && itab_size(&t) == 0, "freed: no table");

	/* Collisions at the last slot wrap to slot 0, 1, ... */
	ok(itab_alloc(&t, 16) == 0, "alloc of 16 slots");
	for (uint32_t i = 0; i < 4; i++) {
		keys[i] = 40 + i;
		itab_put(&t, 15, i);
	}
	is_int(t.slot[15], 1, "first of a collision in its home slot");
	is_int(t.slot[0], 2, "second wraps to slot 0");
	is_int(t.slot[2], 4, "fourth in slot 2");
	for (uint32_t i = 0; i < 4; i++)
		is_int(find(&t, keys, 15, keys[i]), i, "wrapped item %u found", i);
	is_int(find(&t, keys, 15 + 16, 99), -1, "a miss walks the wrapped run and stops");
	size_t end;
	is_int(walk(&t, 15, &end), 4, "the probe of slot 15 walks 4 items");
	is_int(end, 3, "and ends on the empty slot 3");
	is_int(walk(&t, 1, &end), 2, "a probe starting mid-run walks the rest of it");
	/* The slot a walk ends on is where a new key goes. */
	t.slot[end] = 4 + 1;
	keys[4] = 77;
	is_int(find(&t, keys, 15, 77), 4, "an item set where the walk ended is found");
	itab_free(&t);

	/* All but one slot taken: every probe reaches the empty one. */
	ok(itab_alloc(&t, 16) == 0, "alloc of 16 slots");
	for (uint32_t i = 0; i < 15; i++) {
		keys[i] = 1000 + i;
		itab_put(&t, 5, i);
	}
	is_int(t.slot[4], 0, "15 items from slot 5 leave slot 4 empty");
	is_int(walk(&t, 5, &end), 15, "a probe from the home slot walks all 15");
	is_int(end, 4, "and ends on slot 4");
	is_int(walk(&t, 3, &end), 1, "a probe from slot 3 walks 1");
	is_int(find(&t, keys, 5, 1014), 14, "the last item, one slot before its home, is found");
	is_int(find(&t, keys, 9, 5000), -1, "a miss ends after the whole table");
	itab_put(&t, 9, 15);
	is_int(t.slot[4], 16, "the last put takes the one empty slot");
	itab_free(&t);

	/* Many items through the sizes the callers use. */
	enum { N = 3000 };
	static uint64_t big[N];
	ok(itab_init(&t, N) == 0, "init for %d items", N);
	is_int(itab_size(&t), 8192, "%d items: 8192 slots", N);
	for (uint32_t i = 0; i < N; i++) {
		big[i] = (uint64_t)i * 0x9e3779b97f4a7c15ull;
		itab_put(&t, big[i] >> 40, i);
	}
	bool all = true;
	for (uint32_t i = 0; i < N; i++)
		all = all && find(&t, big, big[i] >> 40, big[i]) == (long)i;
	ok(all, "every one of %d items found", N);
	itab_free(&t);
	return done_testing();
}

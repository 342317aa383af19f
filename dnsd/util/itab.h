/* itab.h -- the open-addressing index of the in-memory tables: a power of
 * two of slots holding item numbers + 1 (0: empty), probed linearly from
 * hash & mask. The items live in the caller's array; the caller tests its
 * own key while walking a probe sequence (ITAB_FOR), so a lookup makes no
 * indirect call and allocates nothing. Insert only: a table that drops
 * items builds a new one. Callers keep it at most half full (itab_slots),
 * which bounds a probe and guarantees it reaches an empty slot. */
#ifndef MESHDNS_ITAB_H
#define MESHDNS_ITAB_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

struct itab {
	uint32_t *slot;               /* item + 1, 0: empty; NULL: no table */
	size_t mask;                  /* slots - 1 */
};

/* The slots for n items: the smallest power of two >= 2n, at least 16. */
static inline size_t itab_slots(size_t n)
{
	size_t size = 16;
	while (size < 2 * n)
		size *= 2;
	return size;
}

/* Makes t an empty table of nslots (a power of two) slots. Returns 0, or
 * -1 on ENOMEM with t untouched. The caller owns it: itab_free. */
static inline int itab_alloc(struct itab *t, size_t nslots)
{
	uint32_t *slot = calloc(nslots, sizeof(*slot));
	if (!slot)
		return -1;
	t->slot = slot;
	t->mask = nslots - 1;
	return 0;
}

/* itab_alloc of itab_slots(n) slots: room for n items. */
static inline int itab_init(struct itab *t, size_t n)
{
	return itab_alloc(t, itab_slots(n));
}

/* Frees t's slots and leaves it without a table; a no-op on one without. */
static inline void itab_free(struct itab *t)
{
	free(t->slot);
	t->slot = NULL;
	t->mask = 0;
}

/* The number of slots, 0 without a table. */
static inline size_t itab_size(const struct itab *t)
{
	return t->slot ? t->mask + 1 : 0;
}

/* Files item under hash in the first empty slot of its probe sequence,
 * without looking for the same key (callers that care look first, or set
 * the slot ITAB_FOR ended on). t must have a table with an empty slot. */
static inline void itab_put(struct itab *t, uint64_t hash, uint32_t item)
{
	size_t pos = (size_t)hash & t->mask;
	while (t->slot[pos])
		pos = (pos + 1) & t->mask;
	t->slot[pos] = item + 1;
}

/* Walks hash's probe sequence in t (which must have a table): the body
 * runs with item (a uint32_t) the item of each slot in turn, pos (a
 * size_t) its slot. The walk ends at the first empty slot, where pos is
 * left: the slot to give an item not found (t->slot[pos] = item + 1). */
#define ITAB_FOR(t, hash, pos, item)                                             \
	for ((pos) = (size_t)(hash) & (t)->mask;                                 \
	     (t)->slot[pos] && ((item) = (t)->slot[pos] - 1, 1);                  \
	     (pos) = ((pos) + 1) & (t)->mask)

#endif

/* arena.c -- bump allocator over a list of malloc'd blocks. */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct arena_block {
	struct arena_block *next;
	size_t size;
	size_t used;
	_Alignas(16) unsigned char data[];
};

struct arena {
	struct arena_block *head;
	size_t chunk;
	size_t total;
};

struct arena *arena_new(size_t chunk)
{
	struct arena *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->chunk = chunk ? chunk : 65536;
	return a;
}

void arena_free(struct arena *a)
{
	if (!a)
		return;
	struct arena_block *b = a->head;
	while (b) {
		struct arena_block *next = b->next;
		free(b);
		b = next;
	}
	free(a);
}

void *arena_alloc(struct arena *a, size_t size)
{
	if (size > SIZE_MAX / 2)
		return NULL;
	size_t need = (size + 15) & ~(size_t)15;
	if (need == 0)
		need = 16;
	struct arena_block *b = a->head;
	if (!b || b->size - b->used < need) {
		/* Big requests get a block of their own so the current block's
		 * remaining space is not wasted. */
		size_t bsize = need > a->chunk / 4 ? need : a->chunk;
		struct arena_block *nb = malloc(sizeof(*nb) + bsize);
		if (!nb)
			return NULL;
		nb->size = bsize;
		nb->used = 0;
		if (b && bsize == need) {
			nb->next = b->next;
			b->next = nb;
			b = nb;
		} else {
			nb->next = b;
			a->head = nb;
			b = nb;
		}
	}
	void *p = b->data + b->used;
	b->used += need;
	a->total += need;
	memset(p, 0, need);
	return p;
}

void *arena_memdup(struct arena *a, const void *src, size_t size)
{
	void *p = arena_alloc(a, size);
	if (p && size)
		memcpy(p, src, size);
	return p;
}

size_t arena_used(const struct arena *a)
{
	return a->total;
}

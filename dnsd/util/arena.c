/* arena.c -- bump allocator over a list of mmap'd blocks. Blocks come
 * straight from the kernel so that freeing a snapshot gives its memory
 * back at once (malloc'd blocks would stay in the heap, fragmented, and a
 * process that reloads a large zone would only ever grow). Blocks double
 * from the first chunk size up to ARENA_MAX_CHUNK, so a big snapshot takes
 * few mappings and a small one stays small. */
#include "util/arena.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

enum { ARENA_MAX_CHUNK = 4 << 20 };

struct arena_block {
	struct arena_block *next;
	size_t size;                  /* bytes of data[] */
	size_t used;
	_Alignas(16) unsigned char data[];
};

struct arena {
	struct arena_block *head;
	size_t chunk;                 /* size of the next ordinary block */
	size_t total;
	bool heap;                    /* blocks from calloc, sized to fit (arena_new_heap) */
};

enum { HUGE_PAGE = 2 << 20 };

/* A block of len bytes from the kernel. From 2 MiB up it is aligned to
 * 2 MiB and advised for transparent huge pages (a tail short of 2 MiB
 * stays in small pages): a big snapshot's table, nodes and names are
 * read at random by every query, and in 4 KiB pages each of those reads
 * is a TLB miss (a page walk, several times dearer in a VM). */
static void *map(size_t len)
{
	int flags = MAP_PRIVATE | MAP_ANONYMOUS;
	if (len >= HUGE_PAGE) {
		size_t want = len;
		size_t span = want + HUGE_PAGE;
		char *p = mmap(NULL, span, PROT_READ | PROT_WRITE, flags, -1, 0);
		if (p == MAP_FAILED)
			return NULL;
		char *start = (char *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
		size_t head = (size_t)(start - p), tail = span - head - want;
		if (head)
			munmap(p, head);
		if (tail)
			munmap(start + want, tail);
		madvise(start, want, MADV_HUGEPAGE);
#ifdef MADV_POPULATE_WRITE
		/* Filled at once (one call, not a fault per page); an older
		 * kernel faults them in as they are written instead. */
		madvise(start, want, MADV_POPULATE_WRITE);
#endif
		return start;
	}
	/* A block of a megabyte or more is filled at once: populating it in
	 * one call costs far less than a page fault per 4 KiB. */
	int pop = len >= (1 << 20) ? MAP_POPULATE : 0;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags | pop, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

struct arena *arena_new(size_t chunk)
{
	struct arena_block *first;
	size_t c = chunk ? chunk : 65536;
	/* The arena header lives at the start of its first block. */
	if (c < 4096 || c > ARENA_MAX_CHUNK)
		c = c < 4096 ? 4096 : ARENA_MAX_CHUNK;
	first = map(c);
	if (!first)
		return NULL;
	first->next = NULL;
	first->size = c - sizeof(*first);
	first->used = (sizeof(struct arena) + 15) & ~(size_t)15;
	struct arena *a = (struct arena *)first->data;
	a->head = first;
	a->chunk = c;
	a->total = 0;
	return a;
}

struct arena *arena_new_heap(size_t size)
{
	size_t hdr = (sizeof(struct arena) + 15) & ~(size_t)15;
	struct arena_block *first = calloc(1, sizeof(*first) + hdr + size);
	if (!first)
		return NULL;
	first->size = hdr + size;
	first->used = hdr;
	struct arena *a = (struct arena *)first->data;
	a->head = first;
	a->chunk = size;
	a->heap = true;
	return a;
}

void arena_free(struct arena *a)
{
	if (!a)
		return;
	struct arena_block *b = a->head;
	bool heap = a->heap;
	/* a lives inside the last block of the list (the first allocated). */
	while (b) {
		struct arena_block *next = b->next;
		if (heap)
			free(b);
		else
			munmap(b, b->size + sizeof(*b));
		b = next;
	}
}

/* The offset at or after used in b's data where an object aligned to
 * align (a power of two) can start: alignment of the address itself. */
static size_t align_off(const struct arena_block *b, size_t used, size_t align)
{
	uintptr_t at = (uintptr_t)(b->data + used);
	return used + (size_t)(((at + align - 1) & ~(uintptr_t)(align - 1)) - at);
}

static void *take(struct arena *a, size_t size, size_t align)
{
	if (size > SIZE_MAX / 4)
		return NULL;
	if (size == 0)
		size = 1;
	struct arena_block *b = a->head;
	size_t off = align_off(b, b->used, align);
	/* A new block's data is 16-aligned: more alignment needs room for it. */
	size_t slack = align > 16 ? align - 16 : 0;
	if ((off > b->size || b->size - off < size) && a->heap) {
		/* A heap arena was sized to fit: an overflow gets a block of
		 * just what it asks. */
		struct arena_block *nb = calloc(1, sizeof(*nb) + size + slack + 16);
		if (!nb)
			return NULL;
		nb->size = size + slack + 16;
		nb->next = b->next;
		b->next = nb;
		b = nb;
		off = align_off(b, 0, align);
	} else if (off > b->size || b->size - off < size) {
		/* Big requests get a block of their own, after the current one,
		 * so the current block's remaining space is not wasted. */
		size_t need = (sizeof(*b) + size + slack + 4095) & ~(size_t)4095;
		size_t next = a->chunk * 2 > ARENA_MAX_CHUNK ? ARENA_MAX_CHUNK : a->chunk * 2;
		bool own = need > next / 4;
		size_t len = own ? need : next;
		struct arena_block *nb = map(len);
		if (!nb)
			return NULL;
		nb->size = len - sizeof(*nb);
		nb->used = 0;
		if (own) {
			nb->next = b->next;
			b->next = nb;
		} else {
			nb->next = b;
			a->head = nb;
			a->chunk = next;
		}
		b = nb;
		off = align_off(b, 0, align);
	}
	void *p = b->data + off;
	a->total += off + size - b->used;
	b->used = off + size;
	return p;             /* mmap'd or calloc'd memory is zero and never reused */
}

void arena_reset(struct arena *a)
{
	/* Keep the block that holds a itself (the first one allocated). */
	struct arena_block *home =
		(struct arena_block *)(void *)((char *)a - offsetof(struct arena_block, data));
	struct arena_block *b = a->head;
	while (b) {
		struct arena_block *next = b->next;
		if (b != home) {
			if (a->heap)
				free(b);
			else
				munmap(b, b->size + sizeof(*b));
		}
		b = next;
	}
	/* Its data after a is reused, and arena memory is handed out zeroed. */
	size_t hdr = (sizeof(struct arena) + 15) & ~(size_t)15;
	memset(home->data + hdr, 0, home->used - hdr);
	home->used = hdr;
	home->next = NULL;
	a->head = home;
	a->total = 0;
}

void *arena_alloc(struct arena *a, size_t size)
{
	return take(a, size, 16);
}

void *arena_alloc_aligned(struct arena *a, size_t size, size_t align)
{
	if (align == 0 || (align & (align - 1)) || align > 64)
		return NULL;
	return take(a, size, align);
}

void *arena_memdup(struct arena *a, const void *src, size_t size)
{
	void *p = arena_alloc(a, size);
	if (p && size)
		memcpy(p, src, size);
	return p;
}

void *arena_bytes(struct arena *a, const void *src, size_t size)
{
	void *p = take(a, size, 1);
	if (p && size)
		memcpy(p, src, size);
	return p;
}

size_t arena_used(const struct arena *a)
{
	return a->total;
}

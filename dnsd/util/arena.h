/* arena.h -- bump allocator: everything of one lifetime (a zone snapshot)
 * comes from one arena and is freed at once. Not thread-safe; an arena is
 * filled by one thread and then only read. */
#ifndef MESHDNS_ARENA_H
#define MESHDNS_ARENA_H

#include <stddef.h>

struct arena;

/* chunk: bytes of the first underlying block (0: 64 KiB; later blocks
 * double up to 4 MiB). NULL on ENOMEM. */
struct arena *arena_new(size_t chunk);
/* An arena in one calloc'd block of size bytes (plus its header), for
 * many small arenas (one per service): what does not fit gets a block of
 * its own. Same interface. */
struct arena *arena_new_heap(size_t size);
/* Forgets everything allocated (keeping the first block): a scratch arena
 * used over and over. */
void arena_reset(struct arena *a);
/* Frees every block. arena_free(NULL) is a no-op. */
void arena_free(struct arena *a);
/* Zeroed memory aligned to 16 bytes; NULL on ENOMEM or overflow. */
void *arena_alloc(struct arena *a, size_t size);
void *arena_memdup(struct arena *a, const void *src, size_t size);
/* Zeroed memory aligned to align (1, 2, 4, 8, 16, 32 or 64: a cache line),
 * packed tightly: for the many small strings and records of a big
 * snapshot. */
void *arena_alloc_aligned(struct arena *a, size_t size, size_t align);
/* A copy of size bytes, unaligned. */
void *arena_bytes(struct arena *a, const void *src, size_t size);
/* Bytes handed out so far (for metrics and tests). */
size_t arena_used(const struct arena *a);

#endif

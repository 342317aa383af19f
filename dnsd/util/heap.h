/* heap.h -- start-up tuning of malloc's heap for a big configuration: the
 * heap in huge pages while the configuration is loaded and the first
 * snapshot built. Only an optimisation; knows nothing of DNS. */
#ifndef MESHDNS_HEAP_H
#define MESHDNS_HEAP_H

#include <stdbool.h>
#include <stddef.h>

/* Below this, heap_huge_begin does nothing: a small start-up gains little. */
enum { HEAP_HUGE_MIN = 64 << 20 };

/* The calling thread is about to allocate some expect bytes from malloc
 * (a million backends: ~400 MB). With expect of HEAP_HUGE_MIN or more,
 * malloc's main heap grows by expect at once and that range is advised
 * MADV_HUGEPAGE (Debian's default THP mode is madvise), so the allocations
 * that fill it fault in 2 MiB pages: with 4 KiB pages a big start-up takes
 * 100,000 page faults, a second or more in a VM. The range is reserved,
 * not used: untouched pages cost no memory. Returns whether the range was
 * advised; false (nothing else changed) without glibc's malloc (the
 * sanitizers' builds), without THP, or when the heap cannot grow.
 * Main thread (the one that owns malloc's main heap), once at start-up;
 * call heap_huge_end when done, whatever it returned. */
bool heap_huge_begin(size_t expect);
/* malloc_trim(0), except that while heap_huge_begin's range is in use its
 * free top stays: given back, the pages advised for huge pages would be
 * gone and the heap would grow again without them. */
void heap_trim(void);
/* malloc's defaults again; the unused part of the range is given back
 * (malloc_trim). A no-op without a heap_huge_begin before. */
void heap_huge_end(void);

#endif

/* heap.c -- malloc's heap in huge pages during a big start-up (heap.h).
 *
 * glibc grows its main heap with sbrk by the request plus M_TOP_PAD. With
 * the pad set to the expected size, the first request that does not fit
 * the free top grows the heap by all of it at once; the new range is then
 * advised MADV_HUGEPAGE, and the config and the zone blocks allocated next
 * fill it in 2 MiB pages. glibc's tunable glibc.malloc.hugetlb=1 does the
 * same for the whole process and its life (it can only be set from the
 * environment); this is the start-up only, for the main heap only.
 * One lasting effect: setting M_TOP_PAD turns off glibc's dynamic mmap
 * threshold, so allocations of 128 KiB or more are mmap'd (and given back
 * when freed) for the rest of the process's life, as with M_MMAP_THRESHOLD
 * set. */
#include "util/heap.h"

#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HEAP_GLIBC 0          /* the sanitizers bring their own malloc */
#elif defined(__GLIBC__) && defined(M_TOP_PAD) && defined(MADV_HUGEPAGE)
#define HEAP_GLIBC 1
#else
#define HEAP_GLIBC 0
#endif

#if HEAP_GLIBC
enum { HEAP_DEFAULT_TOP_PAD = 128 << 10 };    /* glibc's DEFAULT_TOP_PAD */

static bool active;
static size_t reserved;                       /* the pad while active */
#endif

bool heap_huge_begin(size_t expect)
{
#if HEAP_GLIBC
	if (active || expect < HEAP_HUGE_MIN)
		return false;
	if (expect > INT32_MAX)
		expect = INT32_MAX;
	if (mallopt(M_TOP_PAD, (int)expect) != 1)
		return false;
	active = true;
	reserved = expect;
	/* Chunks below the mmap threshold (128 KiB while M_TOP_PAD is set: no
	 * dynamic threshold) come from the heap's free top; the first one
	 * that does not fit grows the heap by the pad. Freed again, they go
	 * back to the top, which keeps the pad. */
	enum { CHUNK = 64 << 10, TRIES = 64 };
	void *taken[TRIES];
	char *before = sbrk(0), *end = before;
	int n = 0;
	while (n < TRIES && end == before && (taken[n] = malloc(CHUNK)) != NULL) {
		n++;
		end = sbrk(0);
	}
	while (n > 0)
		free(taken[--n]);
	if (before == (void *)-1 || end == before)
		return false;
	/* Those frees may have trimmed the top a little (by the trim
	 * threshold, less the pad): advise what is mapped now, or madvise
	 * fails with ENOMEM whenever the old end was past a 2 MiB boundary
	 * that the new one is not. */
	end = sbrk(0);
	const uintptr_t huge = 2 << 20;
	uintptr_t hi = (uintptr_t)end & ~(huge - 1);
	uintptr_t lo = ((uintptr_t)end - expect + huge - 1) & ~(huge - 1);
	return hi > lo && madvise((void *)lo, hi - lo, MADV_HUGEPAGE) == 0;
#else
	(void)expect;
	return false;
#endif
}

void heap_trim(void)
{
#if HEAP_GLIBC
	/* malloc_trim's pad is what the top keeps (the free chunks below it
	 * are given back either way). */
	malloc_trim(active ? reserved : 0);
#else
	malloc_trim(0);
#endif
}

void heap_huge_end(void)
{
#if HEAP_GLIBC
	if (!active)
		return;
	active = false;
	mallopt(M_TOP_PAD, HEAP_DEFAULT_TOP_PAD);
	malloc_trim(0);
#endif
}

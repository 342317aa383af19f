/* test_heap.c -- heap.c: a big start-up reserves its heap range at once,
 * advised for huge pages, and gives the unused part back at the end. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/heap.h"
#include "tap.h"

/* Whether the mapping holding addr has the "hg" flag (MADV_HUGEPAGE). */
__attribute__((unused))
static bool advised(const void *addr)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool inside = false, hg = false;
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		int end = 0;
		if (sscanf(line, "%lx-%lx %n", &lo, &hi, &end) == 2 && end > 0) {
			inside = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
			continue;
		}
		if (inside && strncmp(line, "VmFlags:", 8) == 0) {
			hg = strstr(line, " hg") != NULL;
			break;
		}
	}
	fclose(f);
	return hg;
}

int main(void)
{
	ok(!heap_huge_begin(HEAP_HUGE_MIN - 1), "a small start-up is left alone");
	heap_huge_end();
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	ok(!heap_huge_begin(256 << 20), "no-op with the sanitizers' malloc");
	heap_huge_end();
#else
	if (access("/sys/kernel/mm/transparent_hugepage/enabled", R_OK) != 0) {
		diag("no transparent huge pages here: skipped");
		return done_testing();
	}
	char *before = sbrk(0);
	ok(heap_huge_begin(256 << 20), "256 MB reserved and advised");
	char *after = sbrk(0);
	/* By the pad, less what the top held already. */
	ok(after - before >= (250 << 20), "the heap grew by it at once (%td MB)",
	   (after - before) >> 20);
	ok(advised(after - (4 << 20)) && advised(after - (200 << 20)) && !advised(after + 4096),
	   "the range is advised for huge pages");
	ok(!heap_huge_begin(256 << 20), "only once");
	heap_huge_end();
	ok((char *)sbrk(0) - before < (16 << 20), "the unused range is given back (%td MB kept)",
	   ((char *)sbrk(0) - before) >> 20);
	/* And the heap grows in small steps again. */
	enum { N = 256 };
	void *chunks[N];
	char *from = sbrk(0), *to = from;
	int n = 0;
	while (n < N && to == from && (chunks[n] = malloc(64 << 10)) != NULL) {
		n++;
		to = sbrk(0);
	}
	ok(to > from && to - from < (4 << 20), "malloc's default pad again (grew by %td KB)",
	   (to - from) >> 10);
	while (n > 0)
		free(chunks[--n]);
#endif
	return done_testing();
}

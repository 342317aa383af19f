/* bench_start.c -- the start-up phases of dnsd at scale, without sockets or
 * the watcher: config_load of a file, then zone_build with a registry (as
 * control.c's first build), each timed, with the RSS after each phase and the
 * peak. Generate a big config with tests/bench/registry.py's write_config.
 *
 * Build and run (against the library of a build):
 *   cc -std=c11 -D_GNU_SOURCE -O2 -g -Idnsd -o /tmp/bench_start \
 *      tests/bench/bench_start.c build/libdnsd.a \
 *      $(pkg-config --libs yaml-0.1 libcares libsodium liburcu-qsbr libcurl \
 *        libmicrohttpd jansson) -lpthread -lm
 *   /tmp/bench_start /tmp/big.yaml [repeats (1)]
 * The heap is in huge pages for the first repeat as in dnsd (heap.h);
 * NOHUGE=1 in the environment leaves it alone.
 * Prints per repeat: the CPU time of config_check_zone (the name checks
 * alone), config_load and zone_build, wall and CPU ms, the RSS
 * after each (MB), then the RSS once the served config's backends are
 * kept in their blocks alone (registry_freeze), and at the end the peak
 * RSS (VmHWM). The first repeat
 * is the one a start pays (later ones reuse the heap's pages). */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <urcu-qsbr.h>

#include "bstate.h"
#include "config.h"
#include "util/heap.h"
#include "registry.h"
#include "zone.h"

static double clock_ms(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double now_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

/* CPU time (user + system) of this thread: steadier than wall time on a
 * machine shared with other work. */
static double cpu_ms(void)
{
	return clock_ms(CLOCK_THREAD_CPUTIME_ID);
}

/* A field of /proc/self/status in MB ("VmRSS:", "VmHWM:"). */
static double status_mb(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	double mb = -1;
	size_t n = strlen(field);
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, field, n) == 0) {
			mb = strtod(line + n, NULL) / 1024.0;
			break;
		}
	}
	fclose(f);
	return mb;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_start CONFIG.yaml [repeats]\n");
		return 2;
	}
	int repeats = argc > 2 ? atoi(argv[2]) : 1;
	/* As dnsd's main does, unless told not to (NOHUGE=1 in the environment). */
	struct stat st;
	bool huge = !getenv("NOHUGE") && stat(argv[1], &st) == 0 &&
	            heap_huge_begin((size_t)st.st_size * 32);
	printf("heap in huge pages: %s\n", huge ? "yes" : "no");
	rcu_register_thread();
	for (int r = 0; r < repeats; r++) {
		struct config *cfg;
		struct config_error ce;
		double t0 = now_ms(), c0 = cpu_ms();
		if (config_load(argv[1], &cfg, &ce) == -1) {
			fprintf(stderr, "%s\n", ce.msg);
			return 1;
		}
		double t1 = now_ms(), c1 = cpu_ms();
		heap_trim();
		/* The name checks alone, as a journal replay with changes runs them. */
		char cerr[256];
		double cc0 = cpu_ms();
		for (size_t zi = 0; zi < cfg->nzones; zi++) {
			cfg->zones[zi].names_checked = false;
			if (config_check_zone(cfg, zi, cerr, sizeof(cerr)) == -1) {
				fprintf(stderr, "config_check_zone: %s\n", cerr);
				return 1;
			}
		}
		double cc1 = cpu_ms();
		double rss_cfg = status_mb("VmRSS:");
		struct registry *reg = registry_new();
		struct zone_snapshot *snap;
		char err[512];
		double t2 = now_ms(), c2 = cpu_ms();
		if (zone_build(cfg, NULL, reg, NULL, NULL, NULL, &snap, err, sizeof(err)) == -1) {
			fprintf(stderr, "zone_build: %s\n", err);
			return 1;
		}
		registry_commit(reg);
		double t3 = now_ms(), c3 = cpu_ms();
		double rss_zone = status_mb("VmRSS:");
		struct mallinfo2 mi = mallinfo2();
		printf("heap %.0f MB: in use %.0f MB, free %.0f MB (top %.0f MB); mmap'd %.0f MB\n",
		       (double)mi.arena / 1048576.0, (double)mi.uordblks / 1048576.0,
		       (double)mi.fordblks / 1048576.0, (double)mi.keepcost / 1048576.0,
		       (double)mi.hblkhd / 1048576.0);
		printf("config_check_zone cpu %.0f ms\n", cc1 - cc0);
		printf("config_load %.0f ms (cpu %.0f, RSS %.0f MB)  zone_build %.0f ms (cpu %.0f, "
		       "RSS %.0f MB; blocks %.0f MB, snapshot %.0f MB)\n", t1 - t0, c1 - c0, rss_cfg,
		       t3 - t2, c3 - c2, rss_zone, (double)registry_bytes(reg) / 1048576.0,
		       (double)snap->bytes / 1048576.0);
		/* As dnsd's main does once the snapshot serves. */
		double t4 = now_ms();
		size_t nfrozen = registry_freeze(reg, cfg);
		malloc_trim(0);
		double t5 = now_ms();
		mi = mallinfo2();
		printf("freeze %.0f ms (%zu services): RSS %.0f MB; heap in use %.0f MB, free %.0f "
		       "MB\n", t5 - t4, nfrozen, status_mb("VmRSS:"), (double)mi.uordblks / 1048576.0,
		       (double)mi.fordblks / 1048576.0);
		zone_free(snap);
		registry_free(reg);
		config_free(cfg);
		heap_huge_end();
		malloc_trim(0);
	}
	printf("peak RSS %.0f MB\n", status_mb("VmHWM:"));
	rcu_unregister_thread();
	return 0;
}

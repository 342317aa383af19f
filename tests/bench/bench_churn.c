/* bench_churn.c -- the control thread's cost per backend state change at
 * scale, without probes: S services x B backends, every backend checked
 * (a state id each), one zone open to transfers (so each change also
 * renders its service twice and keeps an IXFR difference). Changes are
 * applied as dnsd applies the watcher's queue: in batches, through
 * xfr_txn (render before, write words, render after, serial, history).
 * Meanwhile one reader thread runs queries for other services, so the
 * query cost under churn can be compared with the same without churn
 * (before and after it), in the reader thread's CPU time.
 *
 * Usage: bench_churn [-s services (100000)] [-b backends (10)]
 *                    [-r changes per second (10000)] [-t seconds (10)]
 * Prints: build time, changes applied, control CPU per change and share
 * of a core, the lag from a change to its word being served (p50/p99),
 * and ns per query without and with churn. */
#include <arpa/inet.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <urcu-qsbr.h>

#include "bstate.h"
#include "config.h"
#include "request.h"
#include "server.h"
#include "registry.h"
#include "dns/wire.h"
#include "xfr.h"
#include "zone.h"

static struct xfr *xfr;   /* the transfer state the churn renders into */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct bstate *states;
static struct registry *reg;
static unsigned nbe = 10;

static uint32_t sid_of(void *arg, size_t zi, size_t si, size_t bi)
{
	(void)arg;
	(void)zi;
	return (uint32_t)(si * nbe + bi + 1);
}

static size_t make_query(uint8_t *buf, size_t cap, const char *name)
{
	struct wire_writer w;
	uint8_t wn[DNS_NAME_MAX];
	size_t wl;
	if (wire_name_from_text(name, wn, &wl) != 0)
		return 0;
	wire_writer_init(&w, buf, cap);
	struct dns_header h = { .id = 1, .flags = DNS_FLAG_RD, .qdcount = 1 };
	wire_write_header(&w, &h);
	wire_write_name(&w, wn, wl, false);
	wire_write_u16(&w, DNS_TYPE_A);
	wire_write_u16(&w, DNS_CLASS_IN);
	return w.err ? 0 : w.pos;
}

static volatile int stop_reader;
static unsigned nsvc;
static uint64_t reader_q, reader_ns;

/* With two CPUs or more, the reader runs on CPU 1 and the churn on CPU 0,
 * as a worker and the control thread do when the scheduler spreads them:
 * left alone on a 2-core VM the scheduler sometimes puts both on one
 * core, and the reader's CPU per query then doubles from the evictions
 * alone, whatever the churn writes. */
static void pin(int cpu)
{
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *reader(void *arg)
{
	(void)arg;
	pin(1);
	rcu_register_thread();
	struct request_ctx *rc = request_ctx_new(&(struct request_settings){ .seed = 1 });
	struct request_worker *qw = request_worker_new(rc, 0);
	uint8_t q[512], resp[1232];
	char name[64];
	/* The reader's own CPU time: a VM's other tenants and the churn
	 * thread sharing a core would count in its wall time. */
	uint64_t t0 = thread_cpu_ns(), n = 0;
	struct sockaddr_in peer = { .sin_family = AF_INET };
	struct server_peer sp = { .addr = (struct sockaddr *)&peer, .addrlen = sizeof(peer) };
	while (!stop_reader) {
		/* Services of the upper half: the churn changes the lower one. */
		snprintf(name, sizeof(name), "svc%u.mesh", nsvc / 2 + (unsigned)(n % (nsvc / 2)));
		size_t ql = make_query(q, sizeof(q), name);
		request_process(qw, q, ql, resp, sizeof(resp), &sp);
		n++;
		if ((n & 1023) == 0)
			rcu_quiescent_state();
	}
	reader_ns = thread_cpu_ns() - t0;
	reader_q = n;
	request_worker_free(qw);
	request_ctx_free(rc);
	rcu_unregister_thread();
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void run_reader(double secs, uint64_t *q, uint64_t *ns)
{
	pthread_t t;
	stop_reader = 0;
	pthread_create(&t, NULL, reader, NULL);
	usleep((useconds_t)(secs * 1e6));
	stop_reader = 1;
	pthread_join(t, NULL);
	*q = reader_q;
	*ns = reader_ns;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* ticks batches of per_batch state changes, one every 10 ms, applied as
 * dnsd applies the watcher's queue; the lag of each (queued to served) in
 * lag[*ilag++] while there is room. */
static void churn(const struct zone_snapshot *snap, unsigned ticks, unsigned per_batch,
                  uint64_t *lag, size_t *ilag, size_t nlag, uint64_t *changes)
{
	static uint64_t rng = 88172645463325252ull;
	uint64_t start = now_ns();
	for (unsigned tick = 0; tick < ticks; tick++) {
		uint64_t due = start + (uint64_t)tick * 10000000ull;
		while (now_ns() < due)
			usleep(200);
		uint64_t queued = now_ns();
		struct xfr_txn *t = xfr_txn_new(xfr);
		uint32_t ids[4096];
		unsigned n = per_batch < 4096 ? per_batch : 4096;
		for (unsigned k = 0; k < n; k++) {
			rng ^= rng << 13;
			rng ^= rng >> 7;
			rng ^= rng << 17;
			/* The lower half of the services only. */
			ids[k] = (uint32_t)(rng % ((uint64_t)(nsvc / 2) * nbe)) + 1;
			uint32_t zi;
			const struct zone_slot *slot = registry_sid_slot(reg, ids[k], &zi);
			if (slot)
				xfr_txn_add(t, &snap->zones[zi], slot);
		}
		xfr_txn_lock(t);
		for (unsigned k = 0; k < n; k++) {
			uint64_t w = bstate_load(bstate_slot(states, ids[k]));
			bstate_set(states, ids[k], !bstate_word_up(w), queued / 1000000);
		}
		xfr_txn_commit(t);
		*changes += n;
		if (lag && *ilag < nlag)
			lag[(*ilag)++] = now_ns() - queued;
	}
}

int main(int argc, char **argv)
{
	nsvc = 100000;
	unsigned rate = 10000, secs = 10;
	int opt;
	while ((opt = getopt(argc, argv, "s:b:r:t:")) != -1) {
		if (opt == 's')
			nsvc = (unsigned)strtoul(optarg, NULL, 10);
		else if (opt == 'b')
			nbe = (unsigned)strtoul(optarg, NULL, 10);
		else if (opt == 'r')
			rate = (unsigned)strtoul(optarg, NULL, 10);
		else if (opt == 't')
			secs = (unsigned)strtoul(optarg, NULL, 10);
		else {
			fprintf(stderr, "usage: bench_churn [-s services] [-b backends] [-r rate] [-t secs]\n");
			return 2;
		}
	}
	if (nsvc < 2 || nbe < 1 || nbe > 250)
		return 2;
	size_t cap = 4096 + (size_t)nsvc * (64 + 16 * nbe);
	char *yaml = malloc(cap);
	size_t len = (size_t)snprintf(yaml, cap,
	                              "keys: [{name: k, algorithm: hmac-sha256, "
	                              "secret: \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"}]\n"
	                              "zones:\n  - name: mesh\n    transfer: {keys: [k]}\n"
	                              "    services:\n");
	for (unsigned i = 0; i < nsvc; i++) {
		len += (size_t)snprintf(yaml + len, cap - len,
		                        "      - {name: svc%u, ports: {http: 80}, check: {type: tcp}, "
		                        "backends: [", i);
		for (unsigned b = 0; b < nbe; b++)
			len += (size_t)snprintf(yaml + len, cap - len, "%s10.%u.%u.%u", b ? "," : "",
			                        (i >> 8) & 255, i & 255, b + 1);
		len += (size_t)snprintf(yaml + len, cap - len, "]}\n");
	}
	struct config *cfg;
	struct config_error cerr;
	if (config_load_string(yaml, len, "churn.yaml", &cfg, &cerr) != 0) {
		fprintf(stderr, "config: %s\n", cerr.msg);
		return 1;
	}
	free(yaml);
	states = bstate_new();
	for (size_t i = 0; i < (size_t)nsvc * nbe; i++) {
		uint32_t id;
		if (bstate_alloc(states, &id) != 0)
			return 1;
	}
	reg = registry_new();
	struct zone_snapshot *snap;
	char err[256];
	uint64_t t0 = now_ns();
	if (zone_build(cfg, NULL, reg, states, sid_of, NULL, &snap, err, sizeof(err)) != 0) {
		fprintf(stderr, "build: %s\n", err);
		return 1;
	}
	registry_commit(reg);
	uint64_t build_ns = now_ns() - t0;
	xfr = xfr_new(err, sizeof(err));
	if (!xfr || xfr_configure(xfr, cfg) != 0)
		return 1;
	zone_publish(snap);
	xfr_published(xfr, snap, NULL);
	printf("%u services x %u backends: built in %.2f s\n", nsvc, nbe, (double)build_ns / 1e9);

	pin(0);
	/* Sustained churn with a reader on other services meanwhile. */
	unsigned per_batch = rate / 100 ? rate / 100 : 1;
	size_t nlag = (size_t)secs * 100, ilag = 0;
	uint64_t *lag = calloc(nlag + 1, sizeof(*lag));
	uint64_t changes = 0;
	pthread_t rt;
	stop_reader = 0;
	pthread_create(&rt, NULL, reader, NULL);
	uint64_t start = now_ns(), cpu0 = thread_cpu_ns();
	churn(snap, secs * 100, per_batch, lag, &ilag, nlag, &changes);
	uint64_t wall = now_ns() - start, cpu = thread_cpu_ns() - cpu0;
	stop_reader = 1;
	pthread_join(rt, NULL);
	uint64_t q1 = reader_q, ns1 = reader_ns;
	qsort(lag, ilag, sizeof(*lag), cmp_u64);
	printf("churn: %llu changes in %.1f s (%.0f/s), control CPU %.2f us per change, %.1f%% of a "
	       "core\n",
	       (unsigned long long)changes, (double)wall / 1e9, (double)changes / ((double)wall / 1e9),
	       (double)cpu / 1e3 / (double)changes, 100.0 * (double)cpu / (double)wall);
	printf("change to served (batch of %u): p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", per_batch,
	       (double)lag[ilag / 2] / 1e6, (double)lag[ilag * 99 / 100] / 1e6,
	       (double)lag[ilag - 1] / 1e6);
	printf("queries for unchanged services under it (reader CPU): %.0f ns/query\n",
	       (double)ns1 / (double)q1);
	/* The query cost with and without churn, in alternating windows of 3 s
	 * (the cost per query drifts by more than 10 %% over a minute on a
	 * shared VM: adjacent windows compare like with like). */
	enum { ROUNDS = 8 };
	double ratio[ROUNDS];
	printf("alternating 3 s windows, ns/query without -> with churn:");
	for (int r = 0; r < ROUNDS; r++) {
		uint64_t qa, nsa;
		run_reader(3.0, &qa, &nsa);
		stop_reader = 0;
		pthread_create(&rt, NULL, reader, NULL);
		size_t junk = 0;
		churn(snap, 300, per_batch, NULL, &junk, 0, &changes);
		stop_reader = 1;
		pthread_join(rt, NULL);
		double a = (double)nsa / (double)qa, b = (double)reader_ns / (double)reader_q;
		ratio[r] = b / a;
		printf(" %.0f->%.0f", a, b);
	}
	qsort(ratio, ROUNDS, sizeof(*ratio), cmp_double);
	printf("\nqueries for unchanged services: with churn / without, median of %d windows: %+.1f%% "
	       "(range %+.1f%% .. %+.1f%%)\n", ROUNDS,
	       100.0 * ((ratio[ROUNDS / 2 - 1] + ratio[ROUNDS / 2]) / 2 - 1.0),
	       100.0 * (ratio[0] - 1.0), 100.0 * (ratio[ROUNDS - 1] - 1.0));
	free(lag);
	xfr_free(xfr);
	zone_shutdown();
	registry_free(reg);
	bstate_free(states);
	config_free(cfg);
	return 0;
}

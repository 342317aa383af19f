/* bench_query.c -- the request path without sockets (request_process: parse,
 * dispatch, lookup, balance, encode, count): N services x 3 backends, queries for A and SRV of every
 * service, repeated. Reports ns per query; run it under
 *   valgrind --tool=callgrind --toplevel-collect=... or perf record
 * to see where instructions go (instruction counts are stable on a busy
 * machine, wall time is not).
 * Usage: bench_query [-s services (100)] [-n queries (2000000)] [-p policy] */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <urcu-qsbr.h>

#include "config.h"
#include "request.h"
#include "server.h"
#include "dns/wire.h"
#include "zone.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A query with EDNS (1232) for name/type, like dnsperf -e sends. */
static size_t make_query(uint8_t *buf, size_t cap, const char *name, uint16_t type, uint16_t id)
{
	struct wire_writer w;
	uint8_t wn[DNS_NAME_MAX];
	size_t wl;
	if (wire_name_from_text(name, wn, &wl) != 0)
		return 0;
	wire_writer_init(&w, buf, cap);
	struct dns_header h = { .id = id, .flags = DNS_FLAG_RD, .qdcount = 1, .arcount = 1 };
	wire_write_header(&w, &h);
	wire_write_name(&w, wn, wl, false);
	wire_write_u16(&w, type);
	wire_write_u16(&w, DNS_CLASS_IN);
	wire_write_u8(&w, 0);
	wire_write_u16(&w, DNS_TYPE_OPT);
	wire_write_u16(&w, 1232);
	wire_write_u32(&w, 0);
	wire_write_u16(&w, 0);
	return w.err ? 0 : w.pos;
}

int main(int argc, char **argv)
{
	unsigned nsvc = 100;
	unsigned long nq = 2000000;
	const char *policy = "weighted";
	int opt;
	while ((opt = getopt(argc, argv, "s:n:p:")) != -1) {
		if (opt == 's')
			nsvc = (unsigned)strtoul(optarg, NULL, 10);
		else if (opt == 'n')
			nq = strtoul(optarg, NULL, 10);
		else if (opt == 'p')
			policy = optarg;
		else {
			fprintf(stderr, "usage: bench_query [-s services] [-n queries] [-p policy]\n");
			return 2;
		}
	}
	size_t cap = 256 + (size_t)nsvc * 128;
	char *yaml = malloc(cap);
	size_t len = (size_t)snprintf(yaml, cap, "zones:\n  - name: mesh\n    services:\n");
	for (unsigned i = 0; i < nsvc; i++)
		len += (size_t)snprintf(yaml + len, cap - len,
		                        "      - {name: svc%u, policy: %s, ports: {http: 80}, "
		                        "backends: [10.%u.%u.1, 10.%u.%u.2, 10.%u.%u.3]}\n",
		                        i, policy, (i >> 8) & 255, i & 255, (i >> 8) & 255, i & 255,
		                        (i >> 8) & 255, i & 255);
	struct config *cfg;
	struct config_error cerr;
	struct zone_snapshot *snap;
	char err[256];
	if (config_load_string(yaml, len, "bench.yaml", &cfg, &cerr) != 0) {
		fprintf(stderr, "config: %s\n", cerr.msg);
		return 1;
	}
	if (zone_build(cfg, NULL, NULL, NULL, NULL, NULL, &snap, err, sizeof(err)) != 0) {
		fprintf(stderr, "zone: %s\n", err);
		return 1;
	}
	zone_publish(snap);
	rcu_register_thread();
	struct request_ctx *rc = request_ctx_new(&(struct request_settings){ .seed = 1 });
	struct request_worker *qw = request_worker_new(rc, 0);

	unsigned nqs = nsvc * 2;
	uint8_t (*qs)[128] = malloc((size_t)nqs * 128);
	size_t *ql = malloc(nqs * sizeof(*ql));
	for (unsigned i = 0; i < nsvc; i++) {
		char name[64];
		snprintf(name, sizeof(name), "svc%u.mesh.", i);
		ql[2 * i] = make_query(qs[2 * i], 128, name, DNS_TYPE_A, (uint16_t)i);
		snprintf(name, sizeof(name), "_http._tcp.svc%u.mesh.", i);
		ql[2 * i + 1] = make_query(qs[2 * i + 1], 128, name, DNS_TYPE_SRV, (uint16_t)i);
	}
	/* In a shuffled order, as perf.py's query file: a big zone is then
	 * read all over, not front to back. */
	unsigned *order = malloc(nqs * sizeof(*order));
	for (unsigned i = 0; i < nqs; i++)
		order[i] = i;
	uint64_t rng = 0x9e3779b97f4a7c15u;
	for (unsigned i = nqs; i > 1; i--) {
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		unsigned j = (unsigned)(rng % i), t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	struct server_peer sp = { .addr = (struct sockaddr *)&peer, .addrlen = sizeof(peer) };
	static uint8_t resp[65535];
	unsigned long bytes = 0;
	uint64_t t0 = now_ns();
	for (unsigned long k = 0; k < nq; k++) {
		unsigned i = order[k % nqs];
		int n = request_process(qw, qs[i], ql[i], resp, sizeof(resp), &sp);
		if (n <= 0) {
			fprintf(stderr, "query %u: no answer\n", i);
			return 1;
		}
		bytes += (unsigned long)n;
		if ((k & 1023) == 0)
			rcu_quiescent_state();
	}
	uint64_t dt = now_ns() - t0;
	printf("%u services (%s), %lu queries (A and SRV): %.1f ns/query, %.0f bytes/answer\n", nsvc,
	       policy, nq, (double)dt / (double)nq, (double)bytes / (double)nq);
	free(order);
	request_worker_free(qw);
	request_ctx_free(rc);
	rcu_unregister_thread();
	zone_shutdown();
	config_free(cfg);
	free(qs);
	free(ql);
	free(yaml);
	return 0;
}

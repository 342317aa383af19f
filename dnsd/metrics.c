/* metrics.c -- per-worker counters summed at scrape time; see metrics.h. */
#include <ares.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "metrics.h"
#include "server.h"
#include "dns/wire.h"

struct metrics_global metrics_global;

static struct metrics_worker *workers[METRICS_MAX_WORKERS];
static unsigned nworkers;         /* read with acquire, bumped under lock */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;

/* Zone names by slot (0 is "."): written once each under reg_lock before
 * nzones is bumped (release), read by workers after an acquire load. */
static uint8_t zone_name[METRICS_NZONES][DNS_NAME_MAX];
static uint8_t zone_len[METRICS_NZONES];
static unsigned nzones = 1;

static const char *const type_label[METRICS_NTYPES] = {
	"A", "NS", "CNAME", "SOA", "PTR", "MX", "TXT", "AAAA", "SRV", "ANY", "AXFR", "other",
};
static const char *const rcode_label[METRICS_NRCODES] = {
	"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
	"NXRRSET", "NOTAUTH", "NOTZONE", "DSOTYPENI", "RCODE12", "RCODE13", "RCODE14", "RCODE15",
	"other",
};
/* Bucket upper bounds in ns and as Prometheus "le" labels. */
static const uint64_t bucket_ns[METRICS_NBUCKETS] = {
	10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 25000000, 100000000,
};
static const char *const bucket_le[METRICS_NBUCKETS] = {
	"1e-05", "2.5e-05", "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
	"0.025", "0.1",
};

struct metrics_worker *metrics_worker_new(void)
{
	struct metrics_worker *m = aligned_alloc(64, sizeof(*m));
	if (!m)
		return NULL;
	memset(m, 0, sizeof(*m));
	pthread_mutex_lock(&reg_lock);
	unsigned n = __atomic_load_n(&nworkers, __ATOMIC_RELAXED);
	if (n == METRICS_MAX_WORKERS) {
		pthread_mutex_unlock(&reg_lock);
		free(m);
		return NULL;
	}
	workers[n] = m;
	__atomic_store_n(&nworkers, n + 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&reg_lock);
	return m;
}

static inline void bump(uint64_t *c, uint64_t d)
{
	/* Single writer: a relaxed load and store, no locked instruction. */
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + d, __ATOMIC_RELAXED);
}

void metrics_set(uint64_t *field, uint64_t value)
{
	__atomic_store_n(field, value, __ATOMIC_RELAXED);
}

void metrics_add(uint64_t *field, uint64_t delta)
{
	__atomic_fetch_add(field, delta, __ATOMIC_RELAXED);
}

unsigned metrics_zone_add(const uint8_t *name, size_t len)
{
	if (len == 0 || len > DNS_NAME_MAX || (len == 1 && name[0] == 0))
		return 0;
	pthread_mutex_lock(&reg_lock);
	unsigned n = __atomic_load_n(&nzones, __ATOMIC_RELAXED);
	unsigned slot = 0;
	for (unsigned i = 1; i < n && !slot; i++)
		if (wire_name_equal(zone_name[i], zone_len[i], name, len))
			slot = i;
	if (!slot && n < METRICS_NZONES) {
		memcpy(zone_name[n], name, len);
		zone_len[n] = (uint8_t)len;
		__atomic_store_n(&nzones, n + 1, __ATOMIC_RELEASE);
		slot = n;
	}
	pthread_mutex_unlock(&reg_lock);
	return slot;
}

/* The slot of the longest registered zone holding q's name, else 0.
 * Bounded: at most METRICS_NZONES name comparisons per label of QNAME. */
static unsigned zone_index(const struct dns_question *q)
{
	unsigned n = __atomic_load_n(&nzones, __ATOMIC_ACQUIRE);
	if (n <= 1 || !q)
		return 0;
	const uint8_t *name = q->name;
	size_t qlen = q->namelen;
	unsigned best = 0;
	size_t bestlen = 0;
	for (unsigned i = 1; i < n; i++)
		if (zone_len[i] > bestlen &&
		    wire_name_is_subdomain(name, qlen, zone_name[i], zone_len[i])) {
			best = i;
			bestlen = zone_len[i];
		}
	return best;
}

/* The counted types' indexes + 1 (the order of the exposition's
 * labels); 0: any other type, index 11. A table: this runs for every
 * request. */
static const uint8_t type_idx1[256] = {
	[DNS_TYPE_A] = 1, [DNS_TYPE_NS] = 2, [DNS_TYPE_CNAME] = 3, [DNS_TYPE_SOA] = 4,
	[DNS_TYPE_PTR] = 5, [DNS_TYPE_MX] = 6, [DNS_TYPE_TXT] = 7, [DNS_TYPE_AAAA] = 8,
	[DNS_TYPE_SRV] = 9, [DNS_TYPE_ANY] = 10, [DNS_TYPE_AXFR] = 11,
};

static unsigned type_index(uint16_t t)
{
	unsigned i = t < 256 ? type_idx1[t] : 0;
	return i ? i - 1 : 11;
}

void metrics_observe(struct metrics_worker *m, const struct dns_question *q, const uint8_t *resp,
                     int n, bool tcp, uint64_t ns, int zslot)
{
	if (!m)
		return;
	unsigned z = zslot >= 0 && zslot < METRICS_NZONES ? (unsigned)zslot : zone_index(q);
	bump(&m->requests[z][tcp][type_index(q ? q->qtype : 0)], 1);
	if (n == SERVER_DEFERRED) {
		bump(&m->deferred, 1);
		return;                   /* answered (and timed) by the forwarder */
	}
	if (n < DNS_HEADER_LEN) {
		bump(&m->dropped, 1);
	} else {
		unsigned rc = resp[3] & 0x0f;
		bump(&m->responses[z][rc], 1);
		if (resp[2] & 0x02)
			bump(&m->truncated, 1);
	}
	if (ns != METRICS_UNTIMED)
		metrics_time(m, ns, 1);
}

void metrics_time(struct metrics_worker *m, uint64_t ns, uint64_t count)
{
	if (!m || !count)
		return;
	unsigned b = 0;
	while (b < METRICS_NBUCKETS && ns > bucket_ns[b])
		b++;
	if (b < METRICS_NBUCKETS)
		bump(&m->duration_bucket[b], count);
	bump(&m->duration_count, count);
	bump(&m->duration_sum_ns, ns * count);
}

static void (*extra_fn)(struct textbuf *, void *);
static void *extra_arg;

void metrics_set_extra(void (*fn)(struct textbuf *tb, void *arg), void *arg)
{
	extra_fn = fn;
	extra_arg = arg;
}

#ifndef MESHDNS_VERSION
#define MESHDNS_VERSION "unknown"
#endif

static const char *build_compiler(void)
{
#if defined(__clang__)
	return "clang " __clang_version__;
#elif defined(__GNUC__)
	return "gcc " __VERSION__;
#else
	return "unknown";
#endif
}

static uint64_t ld(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

void metrics_render(struct textbuf *tb)
{
	static struct metrics_worker sum;   /* ~6 KB: the one scraping thread's */
	memset(&sum, 0, sizeof(sum));
	unsigned n = __atomic_load_n(&nworkers, __ATOMIC_ACQUIRE);
	unsigned nz = __atomic_load_n(&nzones, __ATOMIC_ACQUIRE);
	for (unsigned w = 0; w < n; w++) {
		const struct metrics_worker *m = workers[w];
		for (unsigned z = 0; z < nz; z++) {
			for (int p = 0; p < METRICS_NPROTO; p++)
				for (int t = 0; t < METRICS_NTYPES; t++)
					sum.requests[z][p][t] += ld(&m->requests[z][p][t]);
			for (int r = 0; r < METRICS_NRCODES; r++)
				sum.responses[z][r] += ld(&m->responses[z][r]);
		}
		sum.dropped += ld(&m->dropped);
		sum.deferred += ld(&m->deferred);
		sum.truncated += ld(&m->truncated);
		for (int b = 0; b < METRICS_NBUCKETS; b++)
			sum.duration_bucket[b] += ld(&m->duration_bucket[b]);
		sum.duration_count += ld(&m->duration_count);
		sum.duration_sum_ns += ld(&m->duration_sum_ns);
		for (int c = 0; c < 4; c++)
			sum.cookies[c] += ld(&m->cookies[c]);
		sum.cookie_badcookie += ld(&m->cookie_badcookie);
		sum.cookie_truncated += ld(&m->cookie_truncated);
		sum.rrl_slipped += ld(&m->rrl_slipped);
		sum.rrl_dropped += ld(&m->rrl_dropped);
		sum.subset += ld(&m->subset);
		sum.search_path += ld(&m->search_path);
	}
	static const char *const proto[METRICS_NPROTO] = { "udp", "tcp" };
	char zname[METRICS_NZONES][DNS_NAME_MAX * 4 + 2];
	snprintf(zname[0], sizeof(zname[0]), ".");
	for (unsigned z = 1; z < nz; z++)
		if (wire_name_to_text(zone_name[z], zone_len[z], zname[z], sizeof(zname[z])) < 0)
			snprintf(zname[z], sizeof(zname[z]), "?");
	tb_printf(tb, "# HELP dnsd_dns_requests_total Requests received, by zone, transport and query "
	              "type.\n"
	              "# TYPE dnsd_dns_requests_total counter\n");
	for (unsigned z = 0; z < nz; z++)
		for (int p = 0; p < METRICS_NPROTO; p++)
			for (int t = 0; t < METRICS_NTYPES; t++)
				if (sum.requests[z][p][t])
					tb_printf(tb, "dnsd_dns_requests_total{zone=\"%s\",proto=\"%s\",type=\"%s\"} "
					              "%llu\n", zname[z], proto[p], type_label[t],
					          (unsigned long long)sum.requests[z][p][t]);
	tb_printf(tb, "# HELP dnsd_dns_responses_total Responses sent, by zone and rcode.\n"
	              "# TYPE dnsd_dns_responses_total counter\n");
	for (unsigned z = 0; z < nz; z++)
		for (int r = 0; r < METRICS_NRCODES; r++)
			if (sum.responses[z][r] || r == 0)
				tb_printf(tb, "dnsd_dns_responses_total{zone=\"%s\",rcode=\"%s\"} %llu\n",
				          zname[z], rcode_label[r], (unsigned long long)sum.responses[z][r]);
	tb_printf(tb, "# HELP dnsd_forward_requests_total Requests handed to the forwarder (cache misses).\n"
	              "# TYPE dnsd_forward_requests_total counter\n"
	              "dnsd_forward_requests_total %llu\n",
	          (unsigned long long)sum.deferred);
	tb_printf(tb, "# HELP dnsd_dns_dropped_total Requests that got no response (malformed, or QR set).\n"
	              "# TYPE dnsd_dns_dropped_total counter\n"
	              "dnsd_dns_dropped_total %llu\n"
	              "# HELP dnsd_dns_truncated_total Responses sent with TC set.\n"
	              "# TYPE dnsd_dns_truncated_total counter\n"
	              "dnsd_dns_truncated_total %llu\n",
	          (unsigned long long)sum.dropped, (unsigned long long)sum.truncated);
	tb_printf(tb, "# HELP dnsd_dns_request_duration_seconds Time to build a response.\n"
	              "# TYPE dnsd_dns_request_duration_seconds histogram\n");
	uint64_t cum = 0;
	for (int b = 0; b < METRICS_NBUCKETS; b++) {
		cum += sum.duration_bucket[b];
		tb_printf(tb, "dnsd_dns_request_duration_seconds_bucket{le=\"%s\"} %llu\n", bucket_le[b],
		          (unsigned long long)cum);
	}
	tb_printf(tb,
	          "dnsd_dns_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
	          "dnsd_dns_request_duration_seconds_sum %.9f\n"
	          "dnsd_dns_request_duration_seconds_count %llu\n",
	          (unsigned long long)sum.duration_count, (double)sum.duration_sum_ns / 1e9,
	          (unsigned long long)sum.duration_count);
	static const char *const cookie_label[4] = { "client-only", "invalid", "valid", "renewed" };
	tb_printf(tb, "# HELP dnsd_cookie_requests_total Requests with a COOKIE option, by what their "
	              "server cookie was.\n"
	              "# TYPE dnsd_cookie_requests_total counter\n");
	for (int c = 0; c < 4; c++)
		tb_printf(tb, "dnsd_cookie_requests_total{server_cookie=\"%s\"} %llu\n", cookie_label[c],
		          (unsigned long long)sum.cookies[c]);
	tb_printf(tb,
	          "# HELP dnsd_cookie_required_total UDP requests without a valid server cookie "
	          "answered BADCOOKIE or TC (require-under-load).\n"
	          "# TYPE dnsd_cookie_required_total counter\n"
	          "dnsd_cookie_required_total{response=\"badcookie\"} %llu\n"
	          "dnsd_cookie_required_total{response=\"truncated\"} %llu\n"
	          "# HELP dnsd_rrl_slipped_total Rate-limited responses sent truncated (TC).\n"
	          "# TYPE dnsd_rrl_slipped_total counter\n"
	          "dnsd_rrl_slipped_total %llu\n"
	          "# HELP dnsd_rrl_dropped_total Rate-limited responses dropped.\n"
	          "# TYPE dnsd_rrl_dropped_total counter\n"
	          "dnsd_rrl_dropped_total %llu\n",
	          (unsigned long long)sum.cookie_badcookie, (unsigned long long)sum.cookie_truncated,
	          (unsigned long long)sum.rrl_slipped, (unsigned long long)sum.rrl_dropped);
	tb_printf(tb,
	          "# HELP dnsd_dns_subset_answers_total Answers with only the service's best backends "
	          "that fit the client's size (oversize: subset), not TC.\n"
	          "# TYPE dnsd_dns_subset_answers_total counter\n"
	          "dnsd_dns_subset_answers_total %llu\n"
	          "# HELP dnsd_search_path_answers_total Queries for <name>.<search-path suffix> "
	          "answered with a CNAME to <name>.\n"
	          "# TYPE dnsd_search_path_answers_total counter\n"
	          "dnsd_search_path_answers_total %llu\n",
	          (unsigned long long)sum.subset, (unsigned long long)sum.search_path);
	/* As coredns_build_info{version,revision,goversion}: always 1, the
	 * labels carry the information (runtime library versions). */
	tb_printf(tb, "# HELP dnsd_build_info A metric with a constant '1' value labeled by version, "
	              "the C compiler and the c-ares and libyaml versions in use.\n"
	              "# TYPE dnsd_build_info gauge\n"
	              "dnsd_build_info{version=\"%s\",compiler=\"%s\",cares=\"%s\",libyaml=\"%s\"} 1\n",
	              MESHDNS_VERSION, build_compiler(), ares_version(NULL), yaml_get_version_string());
	const struct metrics_global *g = &metrics_global;
	tb_printf(tb,
	          "# HELP dnsd_snapshot_generation Published zone snapshots so far.\n"
	          "# TYPE dnsd_snapshot_generation gauge\n"
	          "dnsd_snapshot_generation %llu\n"
	          "# HELP dnsd_snapshot_build_seconds Build time of the current snapshot.\n"
	          "# TYPE dnsd_snapshot_build_seconds gauge\n"
	          "dnsd_snapshot_build_seconds %.6f\n"
	          "# HELP dnsd_snapshot_bytes Memory of the current snapshot.\n"
	          "# TYPE dnsd_snapshot_bytes gauge\n"
	          "dnsd_snapshot_bytes %llu\n"
	          "# HELP dnsd_reloads_total Configuration reloads, by result.\n"
	          "# TYPE dnsd_reloads_total counter\n"
	          "dnsd_reloads_total{result=\"success\"} %llu\n"
	          "dnsd_reloads_total{result=\"failure\"} %llu\n"
	          "# HELP dnsd_backend_state_changes_total Backend state changes applied in place "
	          "(no snapshot rebuild).\n"
	          "# TYPE dnsd_backend_state_changes_total counter\n"
	          "dnsd_backend_state_changes_total %llu\n"
	          "# HELP process_start_time_seconds Start time since the Unix epoch.\n"
	          "# TYPE process_start_time_seconds gauge\n"
	          "process_start_time_seconds %llu\n",
	          (unsigned long long)ld(&g->snapshot_generation), (double)ld(&g->snapshot_build_ns) / 1e9,
	          (unsigned long long)ld(&g->snapshot_bytes), (unsigned long long)ld(&g->reloads),
	          (unsigned long long)ld(&g->reload_failures),
	          (unsigned long long)ld(&g->health_changes_applied),
	          (unsigned long long)ld(&g->start_time_s));
	if (extra_fn)
		extra_fn(tb, extra_arg);
}

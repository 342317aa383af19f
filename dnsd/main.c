/* main.c -- dnsd: command line, startup and shutdown order, signals.
 * Wires config -> zone snapshot -> server workers (query.c). */
#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>

#include "addr.h"
#include "cache.h"
#include "clock.h"
#include "config.h"
#include "daemon.h"
#include "etcd.h"
#include "etcdsrc.h"
#include "forward.h"
#include "guard.h"
#include "health.h"
#include "heap.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "options.h"
#include "query.h"
#include "rdata.h"
#include "request.h"
#include "server.h"
#include "update.h"
#include "watch.h"
#include "wire.h"
#include "xfr.h"
#include "zone.h"
#include "bstate.h"
#include "registry.h"
#include <urcu-qsbr.h>

/* --watch-config: a burst of events (an editor's save, kubelet's swap)
 * becomes one reload WATCH_QUIET_MS after the last event, and at most
 * WATCH_MAX_DELAY_MS after the first even if events keep coming. */
enum { WATCH_QUIET_MS = 250, WATCH_MAX_DELAY_MS = 2000 };

/* etcd records as backends (etcdsrc.h): NULL without etcd: in the YAML.
 * Control thread; process lifetime. */
static struct etcdsrc *src;

/* Adds the etcd records to a config just loaded (a start, reload or whole
 * UPDATE), so they survive every rebuild. */
static int etcd_decorate(struct config *cfg)
{
	if (!src)
		return 0;
	char err[256];
	size_t skipped;
	if (etcdsrc_apply(src, cfg, &skipped, err, sizeof(err)) == -1) {
		log_err("etcd: %s", err);
		return -1;
	}
	if (skipped)
		log_warn("etcd: %zu records not served (outside our zones, or at a name with static "
		         "records)", skipped);
	return 0;
}

static void *thread_init(void *arg, unsigned idx)
{
	return request_worker_new(arg, idx);
}

static void thread_fini(void *ctx)
{
	request_worker_free(ctx);
}

static int handle(void *ctx, const uint8_t *req, size_t len, uint8_t *resp, size_t cap,
                  const struct server_peer *peer)
{
	return request_process(ctx, req, len, resp, cap, peer);
}

/* Forwarding, set up before the server starts and stopped after it. */
static struct forward *forwarder;
static struct cache *fwd_cache;
static uint16_t fwd_payload;
/* What the request path's workers share (request.c), and their cookie
 * and rate-limit state (guard.c). */
static struct request_ctx *requests;
static struct guard *guard;
static struct xfr *xfr;               /* transfers, their history, NOTIFY */

static void format_listen(const struct cfg_listen *l, char *buf, size_t len);

/* When a burst of config file events that began at first and last had an
 * event at last is due for its reload (ms). */
static uint64_t watch_due(uint64_t first, uint64_t last)
{
	uint64_t due = last + WATCH_QUIET_MS;
	return due < first + WATCH_MAX_DELAY_MS ? due : first + WATCH_MAX_DELAY_MS;
}

/* Forwarder and cache counters for /metrics (names as CoreDNS's cache and
 * forward plugins where the meaning is the same). */
static void render_forward_metrics(struct textbuf *tb, void *arg)
{
	(void)arg;
	struct forward_stats fs;
	struct cache_stats cs;
	memset(&fs, 0, sizeof(fs));
	memset(&cs, 0, sizeof(cs));
	if (forwarder)
		forward_stats(forwarder, &fs);
	if (fwd_cache)
		cache_stats(fwd_cache, &cs);
	tb_printf(tb,
	          "# HELP dnsd_cache_hits_total Answers served from the cache.\n"
	          "# TYPE dnsd_cache_hits_total counter\n"
	          "dnsd_cache_hits_total %llu\n"
	          "# HELP dnsd_cache_misses_total Cache lookups that missed.\n"
	          "# TYPE dnsd_cache_misses_total counter\n"
	          "dnsd_cache_misses_total %llu\n"
	          "# HELP dnsd_cache_entries Answers in the cache.\n"
	          "# TYPE dnsd_cache_entries gauge\n"
	          "dnsd_cache_entries %llu\n"
	          "# HELP dnsd_cache_evictions_total Entries evicted to stay within max-entries.\n"
	          "# TYPE dnsd_cache_evictions_total counter\n"
	          "dnsd_cache_evictions_total %llu\n"
	          "# HELP dnsd_forward_upstream_queries_total Queries sent upstream.\n"
	          "# TYPE dnsd_forward_upstream_queries_total counter\n"
	          "dnsd_forward_upstream_queries_total %llu\n"
	          "# HELP dnsd_forward_responses_total Upstream answers passed on.\n"
	          "# TYPE dnsd_forward_responses_total counter\n"
	          "dnsd_forward_responses_total %llu\n"
	          "# HELP dnsd_forward_errors_total SERVFAIL to the client, by reason.\n"
	          "# TYPE dnsd_forward_errors_total counter\n"
	          "dnsd_forward_errors_total{reason=\"upstream\"} %llu\n"
	          "dnsd_forward_errors_total{reason=\"max-outstanding\"} %llu\n"
	          "# HELP dnsd_forward_coalesced_total Queries that waited for the same question "
	          "already upstream.\n"
	          "# TYPE dnsd_forward_coalesced_total counter\n"
	          "dnsd_forward_coalesced_total %llu\n"
	          "# HELP dnsd_forward_ignored_total UDP datagrams from upstreams that answered no "
	          "query of ours.\n"
	          "# TYPE dnsd_forward_ignored_total counter\n"
	          "dnsd_forward_ignored_total %llu\n"
	          "# HELP dnsd_forward_tcp_total Queries asked again over TCP (truncated over UDP).\n"
	          "# TYPE dnsd_forward_tcp_total counter\n"
	          "dnsd_forward_tcp_total %llu\n",
	          (unsigned long long)cs.hits, (unsigned long long)cs.misses,
	          (unsigned long long)cs.entries, (unsigned long long)cs.evictions,
	          (unsigned long long)fs.forwarded, (unsigned long long)fs.answered,
	          (unsigned long long)fs.failed, (unsigned long long)fs.over_cap,
	          (unsigned long long)fs.coalesced, (unsigned long long)fs.bad,
	          (unsigned long long)fs.via_tcp);
	tb_printf(tb, "# HELP dnsd_forward_request_duration_seconds Upstream round trips, "
	              "answered or failed.\n"
	              "# TYPE dnsd_forward_request_duration_seconds histogram\n");
	uint64_t cum = 0;
	for (unsigned b = 0; b < FORWARD_NBUCKETS; b++) {
		cum += fs.dur_bucket[b];
		tb_printf(tb, "dnsd_forward_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
		          forward_bucket_us[b] / 1e6, (unsigned long long)cum);
	}
	tb_printf(tb, "dnsd_forward_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
	              "dnsd_forward_request_duration_seconds_sum %.6f\n"
	              "dnsd_forward_request_duration_seconds_count %llu\n",
	          (unsigned long long)fs.dur_count, (double)fs.dur_sum_us / 1e6,
	          (unsigned long long)fs.dur_count);
}

/* The upstreams to use: the configured list or resolv.conf's, without our
 * own addresses (forwarding to ourselves would loop: CoreDNS exits on
 * such a loop, we drop the entry). 0, or -1 after logging. */
static int forward_upstreams(const struct config *cfg, const struct cfg_listen *listen,
                             size_t nlisten, struct cfg_listen *out, size_t *n)
{
	const struct cfg_forward *fc = &cfg->forward;
	struct cfg_listen all[FORWARD_UPSTREAMS_MAX];
	size_t nall = 0;
	char err[256];
	if (fc->resolv_conf) {
		if (forward_read_resolv_conf(fc->resolv_conf, all, FORWARD_UPSTREAMS_MAX, &nall, err,
		                             sizeof(err)) == -1) {
			log_err("forward: %s", err);
			return -1;
		}
	} else {
		nall = fc->nupstreams < FORWARD_UPSTREAMS_MAX ? fc->nupstreams : FORWARD_UPSTREAMS_MAX;
		memcpy(all, fc->upstreams, nall * sizeof(*all));
	}
	*n = 0;
	for (size_t i = 0; i < nall; i++) {
		char one[80];
		format_listen(&all[i], one, sizeof(one));
		if (forward_is_self(&all[i], listen, nlisten)) {
			log_warn("forward: upstream %s is this server's own address, ignored", one);
			continue;
		}
		out[(*n)++] = all[i];
	}
	return 0;
}

/* Starts the cache and the forwarder if cfg forwards. 0 (forwarding may
 * still be off: no usable upstream), or -1 after logging. */
static int forward_setup(const struct config *cfg, const struct cfg_listen *listen,
                         size_t nlisten)
{
	const struct cfg_forward *fc = &cfg->forward;
	if (!fc->nupstreams && !fc->resolv_conf)
		return 0;
	struct cfg_listen ups[FORWARD_UPSTREAMS_MAX];
	size_t nups;
	if (forward_upstreams(cfg, listen, nlisten, ups, &nups) == -1)
		return -1;
	if (nups == 0) {
		log_warn("forward: no usable upstream%s%s; names outside our zones are REFUSED",
		         fc->resolv_conf ? " in " : "", fc->resolv_conf ? fc->resolv_conf : "");
		return 0;
	}
	struct cache_settings cs = {
		.max_entries = cfg->cache.max_entries,
		.min_ttl = cfg->cache.min_ttl,
		.max_ttl = cfg->cache.max_ttl,
		.neg_max_ttl = cfg->cache.neg_max_ttl,
		.udp_max_payload = cfg->udp_max_payload,
	};
	fwd_cache = cache_new(&cs);
	if (!fwd_cache) {
		log_err("forward: out of memory for the cache");
		return -1;
	}
	fwd_payload = cfg->udp_max_payload;
	struct forward_settings fs = {
		.upstreams = ups,
		.nupstreams = nups,
		.timeout_ms = fc->timeout_ms,
		.max_outstanding = fc->max_outstanding,
		.tcp = fc->tcp,
		.udp_max_payload = cfg->udp_max_payload,
		.cache = fwd_cache,
		.guard = guard,
	};
	char err[256];
	forwarder = forward_start(&fs, err, sizeof(err));
	if (!forwarder) {
		log_err("%s", err);
		cache_free(fwd_cache);
		fwd_cache = NULL;
		return -1;
	}
	metrics_set_extra(render_forward_metrics, NULL);
	char list[512] = "";
	for (size_t i = 0, off = 0; i < nups && off < sizeof(list) - 80; i++) {
		char one[80];
		format_listen(&ups[i], one, sizeof(one));
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", i ? " " : "", one);
	}
	log_info("forwarding names outside our zones to %s (%s, timeout %u ms, cache %u entries)",
	         list, fc->tcp ? "TCP" : "UDP", fc->timeout_ms, cfg->cache.max_entries);
	return 0;
}

/* After the server stopped: logs the counters and frees. */
static void forward_teardown(void)
{
	if (!forwarder) {
		cache_free(fwd_cache);    /* a setup that failed after the cache */
		fwd_cache = NULL;
		return;
	}
	struct forward_stats fs;
	struct cache_stats cs;
	forward_stats(forwarder, &fs);
	cache_stats(fwd_cache, &cs);
	log_info("forward: %llu sent upstream, %llu answered, %llu SERVFAIL, %llu over "
	         "max-outstanding, %llu coalesced, %llu ignored datagrams, %llu rate-limited; "
	         "cache: %llu hits, %llu misses, %llu entries",
	         (unsigned long long)fs.forwarded, (unsigned long long)fs.answered,
	         (unsigned long long)fs.failed, (unsigned long long)fs.over_cap,
	         (unsigned long long)fs.coalesced, (unsigned long long)fs.bad,
	         (unsigned long long)fs.rrl_dropped,
	         (unsigned long long)cs.hits, (unsigned long long)cs.misses,
	         (unsigned long long)cs.entries);
	forward_free(forwarder);
	forwarder = NULL;
	cache_free(fwd_cache);
	fwd_cache = NULL;
}

static bool forward_config_equal(const struct config *a, const struct config *b)
{
	const struct cfg_forward *x = &a->forward, *y = &b->forward;
	if (x->nupstreams != y->nupstreams || x->timeout_ms != y->timeout_ms ||
	    x->max_outstanding != y->max_outstanding || x->tcp != y->tcp ||
	    memcmp(&a->cache, &b->cache, sizeof(a->cache)) != 0 ||
	    !x->resolv_conf != !y->resolv_conf ||
	    (x->resolv_conf && strcmp(x->resolv_conf, y->resolv_conf) != 0))
		return false;
	for (size_t i = 0; i < x->nupstreams; i++)
		if (memcmp(&x->upstreams[i], &y->upstreams[i], sizeof(x->upstreams[i])) != 0)
			return false;
	return true;
}

/* A reload's tcp: settings: idle-timeout and max-per-client apply to the
 * running server; max-clients sizes what the server allocated at start. */
static void tcp_reconfigure(struct server *srv, unsigned running_max_clients,
                            const struct config *a, const struct config *b)
{
	server_set_tcp_limits(srv, b->tcp_max_per_client, b->tcp_idle_timeout_ms);
	if (a->tcp_idle_timeout_ms != b->tcp_idle_timeout_ms ||
	    a->tcp_max_per_client != b->tcp_max_per_client)
		log_info("reload: tcp idle-timeout %u ms, max-per-client %u", b->tcp_idle_timeout_ms,
		         b->tcp_max_per_client);
	if (running_max_clients != b->tcp_max_clients)
		log_warn("reload: tcp max-clients %u takes effect at the next start (%u until then)",
		         b->tcp_max_clients, running_max_clients);
}

static void note_snapshot(const struct zone_snapshot *snap, uint64_t build_ns)
{
	for (unsigned i = 0; i < snap->nzones; i++)
		metrics_zone_add(snap->zones[i].origin, snap->zones[i].originlen);
	metrics_set(&metrics_global.snapshot_generation, snap->generation);
	metrics_set(&metrics_global.snapshot_build_ns, build_ns);
	metrics_set(&metrics_global.snapshot_bytes, snap->bytes);
}

static void format_listen(const struct cfg_listen *l, char *buf, size_t len)
{
	addr_sockaddr_text((const struct sockaddr *)&l->ss, buf, len);
}

static void summarize(const struct config *cfg, size_t *nsvc, size_t *nbe)
{
	*nsvc = *nbe = 0;
	for (size_t i = 0; i < cfg->nzones; i++) {
		*nsvc += cfg->zones[i].nservices;
		for (size_t j = 0; j < cfg->zones[i].nservices; j++)
			*nbe += cfg_service_nbackends(&cfg->zones[i].services[j]);
	}
}

/* Backend states, shared by the watcher (ids), the snapshots (words) and
 * the control thread (writes): process lifetime. */
static struct bstate *states;
/* Services by identity (registry.h): their blocks outlive snapshots, so a
 * reload rebuilds only the services it changed. Control thread, process
 * lifetime. */
static struct registry *reg;

/* Builds a snapshot from cfg: 0, or -1 with err set. Checked backends
 * point at their words in the state table (h NULL: every backend up). */
static int build(const struct config *cfg, struct health *h, struct zone_snapshot **snap,
                 uint64_t *took_ns, char *err, size_t errlen)
{
	uint64_t t0 = clock_mono_ns();
	if (zone_build(cfg, zone_current(), reg, h ? states : NULL, h ? health_sid : NULL, h, snap,
	               err, errlen) == -1)
		return -1;
	*took_ns = clock_mono_ns() - t0;
	return 0;
}

/* build, and what a failure means for the running snapshot, logged. */
static int build_logged(const struct config *cfg, struct health *h, struct zone_snapshot **snap,
                        uint64_t *took_ns)
{
	char err[512];
	if (build(cfg, h, snap, took_ns, err, sizeof(err)) == -1) {
		log_err("rebuild failed, keeping the current snapshot: %s", err);
		return -1;
	}
	return 0;
}

/* Publishes snap. Only the control thread publishes, so no lock is needed.
 * The history (IXFR) and NOTIFY are done between the swap and the free:
 * both snapshots are still readable, and a secondary told of the new
 * serial finds it served. */
static void publish(struct zone_snapshot *snap, uint64_t took_ns)
{
	note_snapshot(snap, took_ns);
	registry_commit(reg);
	struct zone_snapshot *prev = zone_swap(snap);
	xfr_published(xfr, snap, prev);
	if (prev) {
		synchronize_rcu();
		zone_free(prev);
	}
	/* No snapshot points at the ids released before this publish now,
	 * nor reader at the blocks and slots the new one replaced. */
	bstate_reclaim(states);
	registry_reclaim(reg);
	log_debug("published snapshot generation %llu (%zu bytes, built in %llu ms)",
	          (unsigned long long)snap->generation, snap->bytes,
	          (unsigned long long)(took_ns / 1000000));
	/* A reload frees a whole parsed config and the build's tables: give
	 * the heap's free pages back rather than keep a big zone's peak. */
	malloc_trim(0);
}

/* Rebuilds the snapshot from cfg and the watcher's current states and
 * publishes it. */
static int rebuild(const struct config *cfg, struct health *h)
{
	struct zone_snapshot *snap;
	uint64_t took;
	if (build_logged(cfg, h, &snap, &took) == -1)
		return -1;
	publish(snap, took);
	return 0;
}

/* cfg serves now: its unchecked services keep their backends in their
 * blocks alone (registry_freeze), and the heap gives the copies back. */
static void freeze(struct config *cfg)
{
	size_t n = registry_freeze(reg, cfg);
	if (n) {
		malloc_trim(0);
		log_debug("%zu %s keep their backends in their blocks alone", n, log_plural(n, "service"));
	}
}

/* The watcher went to a config whose build then failed: it goes back to
 * cfg, and since ids of backends the failed config lacked were released,
 * the served snapshot is rebuilt on the ids it has again. */
static void health_rollback(const struct config *cfg, struct health *h)
{
	if (health_reconfigure(h, cfg) == -1 || rebuild(cfg, h) == -1)
		log_err("the health watcher could not return to the running configuration (out of "
		        "memory); health states may be wrong until the next reload");
}

/* Applies the watcher's queued state changes to the served snapshot:
 * the backends' words, and per zone whose records change a new serial, a
 * difference for IXFR and NOTIFY. O(services changed), no rebuild. */
static void apply_health_changes(struct health *h)
{
	enum { BATCH = 1024 };
	static struct health_change chg[BATCH];
	size_t n;
	while ((n = health_take_changes(h, chg, BATCH)) > 0) {
		const struct zone_snapshot *snap = zone_current();
		struct xfr_txn *t = xfr_txn_new(xfr);
		for (size_t i = 0; t && i < n; i++) {
			uint32_t zi;
			const struct zone_slot *slot = registry_sid_slot(reg, chg[i].sid, &zi);
			if (slot)
				xfr_txn_add(t, &snap->zones[zi], slot);
		}
		if (t)
			xfr_txn_lock(t);
		for (size_t i = 0; i < n; i++)
			bstate_set(states, chg[i].sid, chg[i].up, chg[i].since_ms);
		if (t)
			xfr_txn_commit(t);
		metrics_add(&metrics_global.health_changes_applied, n);
	}
}

static bool status_source(void *arg, uint32_t sid, struct health_state *out)
{
	return health_get_sid(arg, sid, out);
}

static void on_health_change(void *arg)
{
	uint64_t one = 1;
	int fd = *(int *)arg;
	/* A full counter only means a rebuild is already pending. */
	if (write(fd, &one, sizeof(one)) == -1)
		return;
}

/* Loads the config and replays the update journals over it (read only
 * with check). On failure logs the error (file:line:col for config
 * errors) and returns -1. */
static int load_config(const char *path, bool check, struct config **cfgp, struct update **up)
{
	char err[512];
	if (update_load(path, check, cfgp, up, err, sizeof(err)) == -1) {
		log_err("%s", err);
		return -1;
	}
	return 0;
}

/* load_config, then (with check) a snapshot from the result to validate
 * the zones, freed again. */
static int load(const char *path, bool check, struct config **cfgp, struct update **up)
{
	struct config *cfg;
	char err[512];
	if (load_config(path, check, &cfg, up) == -1)
		return -1;
	if (check) {
		struct zone_snapshot *snap;
		if (zone_build(cfg, NULL, NULL, NULL, NULL, NULL, &snap, err, sizeof(err)) == -1) {
			log_err("%s: %s", path, err);
			config_free(cfg);
			update_free(*up);
			*up = NULL;
			return -1;
		}
		zone_free(snap);
	}
	*cfgp = cfg;
	heap_trim();                /* the YAML document */
	return 0;
}

/* The running config and watcher, for update_commit. */
struct live {
	struct config **cfg;
	struct health *health;
};

/* An accepted UPDATE's effective config goes live as after a reload. */
static int update_commit(void *arg, struct config *ncfg)
{
	struct live *l = arg;
	if (etcd_decorate(ncfg) == -1 || health_reconfigure(l->health, ncfg) == -1)
		return -1;
	if (rebuild(ncfg, l->health) == -1) {
		health_rollback(*l->cfg, l->health);
		return -1;
	}
	config_free(*l->cfg);
	*l->cfg = ncfg;
	freeze(ncfg);
	return 0;
}

static const struct config *update_live(void *arg)
{
	return *((struct live *)arg)->cfg;
}

/* An UPDATE of static records: a snapshot of cfg (the running config
 * with one zone's records replaced) built with the registry, so every
 * service keeps its block; served by records_commit once journaled. */
struct pending_build {
	struct zone_snapshot *snap;
	uint64_t took_ns;
};

static int records_prepare(void *arg, const struct config *cfg, void **pending, char *err,
                           size_t errlen)
{
	struct live *l = arg;
	struct pending_build *p = malloc(sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (build(cfg, l->health, &p->snap, &p->took_ns, err, errlen) == -1) {
		free(p);
		return -1;
	}
	*pending = p;
	return 0;
}

static void records_commit(void *arg, void *pending, size_t zi, struct cfg_record **recs,
                           size_t *nrecs)
{
	struct live *l = arg;
	struct pending_build *p = pending;
	struct cfg_zone *z = &(*l->cfg)->zones[zi];
	struct cfg_record *old = z->records;
	size_t nold = z->nrecords;
	z->records = *recs;
	z->nrecords = *nrecs;
	z->names_checked = false;
	*recs = old;
	*nrecs = nold;
	publish(p->snap, p->took_ns);
	free(p);
}

static void records_abort(void *arg, void *pending)
{
	struct pending_build *p = pending;
	(void)arg;
	registry_abort(reg);
	zone_free(p->snap);
	free(p);
}

static bool service_checked(const struct cfg_service *s)
{
	for (size_t i = 0; i < s->nbackends; i++)
		if (cfg_backend_check(s, &s->backends[i])->type != CFG_CHECK_NONE)
			return true;
	return false;
}

/* An UPDATE of one service's backends, in place: the running config takes
 * the new service (*ns, taken), the watcher follows if the service is
 * checked, the service's block alone is rebuilt and swapped, and its zone
 * gets a new serial, an IXFR difference and NOTIFY, all from the records
 * of that service. No snapshot is built: O(service) (plus the watcher's
 * view when the service is checked). */
static bool defer_reclaim;

static int update_service(void *arg, size_t zi, size_t si, struct cfg_service *ns)
{
	struct live *l = arg;
	struct config *cfg = *l->cfg;
	const struct zone_snapshot *snap = zone_current();
	if (!snap || zi >= snap->nzones || si >= snap->zones[zi].nservices)
		return -1;
	struct cfg_service old = cfg->zones[zi].services[si];
	bool checked = service_checked(&old) || service_checked(ns);
	cfg->zones[zi].services[si] = *ns;
	memset(ns, 0, sizeof(*ns));
	if (checked && health_reconfigure(l->health, cfg) == -1) {
		*ns = cfg->zones[zi].services[si];
		cfg->zones[zi].services[si] = old;
		return -1;
	}
	char err[256];
	const struct zone *z = &snap->zones[zi];
	struct xfr_txn *t = xfr_txn_new(xfr);
	if (t) {
		xfr_txn_add(t, z, z->slots[si]);
		xfr_txn_lock(t);
	}
	struct cfg_service *cs = &cfg->zones[zi].services[si];
	int rc = registry_replace(reg, z->slots[si], &cfg->zones[zi], cs, states, health_sid,
	                          l->health, zi, si, err, sizeof(err));
	if (rc == -1)
		log_err("update: %s", err);
	else if (config_service_freezable(cs))
		config_service_freeze(cs, registry_slot_key(z->slots[si]));
	if (t)
		xfr_txn_commit(t);
	/* The watcher no longer points into the old service, readers no longer
	 * into its old block after a grace period (one for a batch of etcd
	 * changes: apply_etcd waits once). */
	config_service_clear(&old);
	if (!defer_reclaim) {
		synchronize_rcu();
		registry_reclaim(reg);
	}
	return rc;
}

/* What the etcd thread queued, served: each changed name whose service
 * exists is changed in place (its etcd backends replaced: O(service), as
 * an UPDATE); a snapshot, a name new to us or a service losing its last
 * record asks for a whole rebuild (returns true). */
static bool apply_etcd(struct live *l)
{
	struct etcdsrc_changes ch;
	if (etcdsrc_drain(src, &ch) == -1)
		log_err("etcd: out of memory applying changes; the rest follows");
	bool full = ch.snapshot;
	struct config *cfg = *l->cfg;
	const struct zone_snapshot *snap = zone_current();
	for (size_t i = 0; i < ch.n && !full && snap; i++) {
		/* The served snapshot is built from cfg: its service node gives
		 * the service's position (no scan of the services). */
		struct zone_result r;
		zone_lookup(snap, ch.owner[i], ch.ownerlen[i], &r);
		if (r.status == ZONE_NOTAUTH ||
		    (r.status == ZONE_FOUND && ((r.node->kind == ZONE_NODE_PLAIN && r.node->nrrsets) ||
		                                r.node->kind == ZONE_NODE_TARGET)))
			continue;             /* outside our zones, or static records: not served */
		if (r.status != ZONE_FOUND || r.node->kind != ZONE_NODE_SERVICE ||
		    !wire_name_equal(r.node->name, r.node->namelen, ch.owner[i], ch.ownerlen[i])) {
			full = true;          /* a new name: a new service */
			break;
		}
		size_t zi = (size_t)(r.zone - snap->zones), si = r.node->svc_idx;
		if (zi >= cfg->nzones || si >= cfg->zones[zi].nservices) {
			full = true;
			break;
		}
		struct cfg_service base, ns;
		const struct zone *z = &snap->zones[zi];
		if (si >= z->nservices ||
		    zone_service_copy(&base, &cfg->zones[zi].services[si],
		                      zone_slot_service(z->slots[si])) == -1) {
			full = true;
			break;
		}
		int erc = etcdsrc_service(src, &base, &ns);
		config_service_clear(&base);
		if (erc == -1) {
			full = true;
			break;
		}
		if (cfg->zones[zi].services[si].from_etcd && ns.nbackends == 0) {
			config_service_clear(&ns);
			full = true;          /* its last record went: the name goes */
			break;
		}
		defer_reclaim = true;
		int rc = update_service(l, zi, si, &ns);
		defer_reclaim = false;
		if (rc == -1) {
			config_service_clear(&ns);
			full = true;
		}
	}
	etcdsrc_changes_free(&ch);
	synchronize_rcu();
	registry_reclaim(reg);
	return full;
}

static void reload_failed(const char *why)
{
	log_err("reload failed%s, continuing with the previous configuration", why);
	metrics_add(&metrics_global.reload_failures, 1);
	daemon_notify("READY=1\nSTATUS=reload failed, previous configuration serving");
}

/* A reload (SIGHUP, --watch-config) or, by_etcd, a whole rebuild for etcd
 * records: the file read again, the journals replayed over it, the etcd
 * records added, the watcher moved to it and one build that both
 * validates and serves it. Anything failing keeps the running config
 * (*cfgp, *updp) serving. Returns true when the new one serves. */
static bool reload(const char *path, bool by_etcd, struct config **cfgp, struct update **updp,
                   struct health *health, struct server *srv, unsigned tcp_max_clients)
{
	struct config *cfg = *cfgp;
	daemon_notify("RELOADING=1");
	/* The same text, and no other file read from it (secrets, a
	 * resolv.conf): the result would be what serves now, and the updates
	 * since are applied already. Parsing a million backends again only to
	 * find that costs seconds. */
	if (!by_etcd && !cfg->reads_files && !cfg->forward.resolv_conf &&
	    update_unchanged(*updp, path)) {
		metrics_add(&metrics_global.reloads, 1);
		log_info("reloaded %s: unchanged, nothing to do", path);
		daemon_notify("READY=1\nSTATUS=reloaded (unchanged)");
		return false;
	}
	struct config *ncfg;
	struct zone_snapshot *nsnap;
	struct update *nupd = NULL;
	uint64_t took;
	/* Validate completely before touching anything live. The journals are
	 * replayed over the new YAML: updates survive reloads, and one that
	 * conflicts with it fails the reload. The watcher takes the new
	 * backends first (states carry over by address and check) so that one
	 * build, with their states, both validates the zones and makes the
	 * snapshot served; if it fails the watcher goes back to the running
	 * config. */
	if (load_config(path, false, &ncfg, &nupd) == -1) {
		reload_failed("");
		return false;
	}
	if (etcd_decorate(ncfg) == -1 || health_reconfigure(health, ncfg) == -1) {
		reload_failed(" (etcd records or health watcher)");
		config_free(ncfg);
		update_free(nupd);
		return false;
	}
	if (build_logged(ncfg, health, &nsnap, &took) == -1) {
		health_rollback(cfg, health);
		reload_failed("");
		config_free(ncfg);
		update_free(nupd);
		return false;
	}
	update_free(*updp);
	*updp = nupd;
	if (!forward_config_equal(cfg, ncfg))
		log_warn("reload: forward and cache settings take effect at the next start");
	if (cfg->nsearch != ncfg->nsearch ||
	    memcmp(cfg->search, ncfg->search, cfg->nsearch * sizeof(*cfg->search)) != 0)
		log_warn("reload: search-path takes effect at the next start");
	tcp_reconfigure(srv, tcp_max_clients, cfg, ncfg);
	if (xfr_configure(xfr, ncfg) == -1 || request_configure(requests, ncfg) == -1)
		log_err("reload: out of memory for keys and transfer settings; the previous ones stay");
	if (guard_configure(guard, ncfg) == -1)
		log_err("reload: out of memory for cookie and rate-limit settings; the previous ones "
		        "stay");
	config_free(cfg);
	*cfgp = cfg = ncfg;
	publish(nsnap, took);
	freeze(cfg);
	size_t nsvc, nbe;
	summarize(cfg, &nsvc, &nbe);
	if (by_etcd) {
		log_info("etcd: rebuilt with %zu etcd records: %zu %s, %zu %s", etcdsrc_count(src), nsvc,
		         log_plural(nsvc, "service"), nbe, log_plural(nbe, "backend"));
		daemon_notify("READY=1\nSTATUS=etcd records applied");
		return true;
	}
	metrics_add(&metrics_global.reloads, 1);
	log_info("reloaded %s: %zu %s, %zu %s, %zu %s", path, cfg->nzones, log_plural(cfg->nzones, "zone"),
	         nsvc, log_plural(nsvc, "service"), nbe, log_plural(nbe, "backend"));
	daemon_notify("READY=1\nSTATUS=reloaded");
	return true;
}

/* What main started, for the one teardown (in the reverse order of the
 * start) that every exit takes, the failures included. */
struct running {
	struct config *cfg;
	struct update *upd;
	int sfd, efd;
	struct update_queue *uq;
	struct health *health;
	struct server *srv;
	struct http *http;
	struct config_watch *watch;
	struct etcd *etcd;
	const char *pid_file;         /* written by us: removed at exit */
};

static void teardown(struct running *r)
{
	/* The http thread reads the etcd client's status: it stops first. */
	http_stop(r->http);
	etcd_free(r->etcd);
	etcdsrc_free(src);
	src = NULL;
	config_watch_free(r->watch);
	/* The forwarder answers through the server's sockets: it stops first,
	 * and is freed once no worker can hand it a query. */
	forward_stop(forwarder);
	server_stop(r->srv);
	request_ctx_free(requests);
	requests = NULL;
	update_queue_free(r->uq);
	update_free(r->upd);
	forward_teardown();
	guard_free(guard);
	guard = NULL;
	health_stop(r->health);
	xfr_free(xfr);
	xfr = NULL;
	zone_shutdown();
	registry_free(reg);
	reg = NULL;
	bstate_free(states);
	states = NULL;
	config_free(r->cfg);
	if (r->efd != -1)
		close(r->efd);
	if (r->sfd != -1)
		close(r->sfd);
	if (r->pid_file && unlink(r->pid_file) == -1)
		log_warn("pid file %s: %s", r->pid_file, strerror(errno));
}

int main(int argc, char **argv)
{
	struct options o;
	memset(&o, 0, sizeof(o));
	if (options_parse(argc, argv, &o) == -1)
		return 1;
	if (o.reload) {
		if (!o.pid_file) {
			fprintf(stderr, "dnsd: --reload needs --pid-file FILE\n");
			return 1;
		}
		return daemon_signal_reload(o.pid_file);
	}
	log_set_level(o.level);
	if (o.check)
		log_use_plain();
	else if (o.syslog)
		log_use_syslog("dnsd");

	struct config *cfg;
	struct update *upd = NULL;
	/* A big config (a million backends: 14 MB of YAML, ~30 times that
	 * in memory) is loaded and built with the heap in huge pages. */
	struct stat cst;
	if (stat(o.config, &cst) == 0)
		heap_huge_begin((size_t)cst.st_size * 32);
	if (load(o.config, o.check, &cfg, &upd) == -1)
		return 1;
	if (o.check) {
		size_t nsvc, nbe;
		summarize(cfg, &nsvc, &nbe);
		printf("%s: OK (%zu %s, %zu %s, %zu %s)\n", o.config, cfg->nzones,
		       log_plural(cfg->nzones, "zone"), nsvc, log_plural(nsvc, "service"), nbe,
		       log_plural(nbe, "backend"));
		if (update_count(upd))
			printf("%s: update journals OK (%zu %s)\n", o.config, update_count(upd),
			       log_plural(update_count(upd), "change"));
		update_free(upd);
		config_free(cfg);
		return 0;
	}
	/* From here every exit goes through teardown (at out). */
	int rc = 1;
	int sfd = -1, efd = -1;
	struct update_queue *uq = NULL;
	bool pid_written = false;
	struct health *health = NULL;
	struct server *srv = NULL;
	struct http *http = NULL;
	struct config_watch *watch = NULL;
	struct etcd *etcd = NULL;
	states = bstate_new();
	reg = registry_new();
	if (!states || !reg) {
		log_err("out of memory");
		goto out;
	}

	daemon_raise_nofile();

	/* Signals are taken synchronously by this thread only (signalfd); the
	 * server and the watcher start their threads with everything blocked. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	uq = update_queue_new();
	if (sfd == -1 || efd == -1 || !uq) {
		log_err("signalfd/eventfd: %s", strerror(errno));
		goto out;
	}

	metrics_set(&metrics_global.start_time_s, (uint64_t)time(NULL));
	char err[256];
	snprintf(err, sizeof(err), "out of memory");
	xfr = xfr_new(err, sizeof(err));
	if (!xfr || xfr_configure(xfr, cfg) == -1) {
		log_err("transfers: %s", err);
		goto out;
	}
	/* The watcher first: it gives checked backends their state ids, and
	 * the one build at start points them at their words. */
	health = health_start(cfg, states, on_health_change, &efd, err, sizeof(err));
	if (!health) {
		log_err("health watcher: %s", err);
		goto out;
	}
	int built = rebuild(cfg, health);
	if (built == 0)
		freeze(cfg);
	heap_huge_end();
	if (built == -1) {
		log_err("%s: the zones could not be built", o.config);
		goto out;
	}
	guard = guard_new();
	if (!guard || guard_configure(guard, cfg) == -1) {
		log_err("cookies and rate limiting: out of memory");
		goto out;
	}
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	struct server_settings set = {
		.listen = o.nlisten ? o.listen : cfg->listen,
		.nlisten = o.nlisten ? o.nlisten : cfg->nlisten,
		.udp_workers = (unsigned)(o.workers >= 0 ? o.workers : (long)cfg->workers),
		.tcp_max_clients = cfg->tcp_max_clients,
		.tcp_max_per_client = cfg->tcp_max_per_client,
		.tcp_idle_timeout_ms = cfg->tcp_idle_timeout_ms,
	};
	/* The server keeps pointing at the listen list: keep a copy that
	 * outlives reloads. */
	struct cfg_listen listen_copy[OPTIONS_LISTEN_MAX];
	if (set.nlisten > OPTIONS_LISTEN_MAX)
		set.nlisten = OPTIONS_LISTEN_MAX;
	memcpy(listen_copy, set.listen, set.nlisten * sizeof(*listen_copy));
	set.listen = listen_copy;
	if (set.udp_workers == 0)
		set.udp_workers = ncpu > 0 ? (unsigned)ncpu : 1;
	struct server_ops ops = {
		.thread_init = thread_init,
		.thread_fini = thread_fini,
		.handle = handle,
	};
	if (forward_setup(cfg, set.listen, set.nlisten) == -1)
		goto out;
	struct request_settings rs = {
		.query = {
			.forwarding = forwarder != NULL,
			.cache = fwd_cache,
			.nsearch = cfg->nsearch,
			.status = status_source,
			.status_arg = health,
			.guard = guard,
		},
		.updates = uq,
		.xfr = xfr,
		.forwarder = forwarder,
		.fwd_payload = fwd_payload,
		.qlog_rate = o.query_log,
		.seed = o.seed,
	};
	memcpy(rs.query.search, cfg->search, cfg->nsearch * sizeof(*cfg->search));
	ops.arg = requests = request_ctx_new(&rs);
	if (!requests || request_configure(requests, cfg) == -1) {
		log_err("request path: out of memory");
		goto out;
	}
	if (server_start(&srv, &set, &ops, err, sizeof(err)) == -1) {
		log_err("%s", err);
		srv = NULL;
		goto out;
	}
	size_t nsvc, nbe;
	summarize(cfg, &nsvc, &nbe);
	char addrs[1024] = "";
	for (size_t i = 0, off = 0; i < set.nlisten && off < sizeof(addrs) - 64; i++) {
		char one[80];
		struct cfg_listen l = set.listen[i];
		uint16_t port = (uint16_t)server_local_port(srv, i);
		if (l.ss.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&l.ss)->sin6_port = htons(port);
		else
			((struct sockaddr_in *)&l.ss)->sin_port = htons(port);
		format_listen(&l, one, sizeof(one));
		off += (size_t)snprintf(addrs + off, sizeof(addrs) - off, "%s%s", i ? " " : "", one);
	}
	log_info("dnsd %s serving %zu %s, %zu %s, %zu %s on %s (%u UDP workers per address)",
	         MESHDNS_VERSION, cfg->nzones, log_plural(cfg->nzones, "zone"), nsvc,
	         log_plural(nsvc, "service"), nbe, log_plural(nbe, "backend"), addrs, set.udp_workers);
	if (!o.have_http && cfg->have_http) {
		o.http = cfg->http;       /* --http wins over the file */
		o.have_http = true;
	}
	if (o.have_http) {
		http = http_start(&o.http, health, err, sizeof(err));
		if (!http) {
			log_err("http: %s", err);
			goto out;
		}
		struct cfg_listen hl = o.http;
		if (hl.ss.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&hl.ss)->sin6_port = htons((uint16_t)http_local_port(http));
		else
			((struct sockaddr_in *)&hl.ss)->sin_port = htons((uint16_t)http_local_port(http));
		char one[80];
		format_listen(&hl, one, sizeof(one));
		log_info("http status on http://%s/ (/metrics, /status.json, /health, /ready)", one);
	}
	if ((o.pid_file && !(pid_written = daemon_write_pid_file(o.pid_file) == 0)) ||
	    (o.user && daemon_drop_privileges(o.user) == -1))
		goto out;
	http_set_ready_bound(http, health_ready_bound_ms(cfg));
	/* Not ready before the first etcd read is served (unless serve-stale):
	 * said before /ready can first answer 200. */
	if (cfg->etcd.nendpoints && !cfg->etcd.serve_stale)
		http_set_waiting(http, true);
	http_set_serving(http, true);
	{
		char msg[128];
		snprintf(msg, sizeof(msg), "READY=1\nSTATUS=serving %zu zones, %zu services\nMAINPID=%ld",
		         cfg->nzones, nsvc, (long)getpid());
		daemon_notify(msg);
	}

	if (o.watch_config) {
		watch = config_watch_new(o.config, err, sizeof(err));
		if (!watch)
			log_err("%s; the file is not watched (SIGHUP still reloads)", err);
		else
			config_watch_changed(watch);      /* the content loaded now */
	}
	uint64_t watch_first = 0, watch_last = 0;  /* ms of a pending burst's events */
	/* Read at start only: a reload does not change the etcd client. Until
	 * its first snapshot is served, /ready says so (serve-stale: not). */
	if (cfg->etcd.nendpoints) {
		struct etcd_callbacks ecb;
		if ((src = etcdsrc_new()))
			ecb = etcdsrc_callbacks(src);
		if (!src || !(etcd = etcd_new(&cfg->etcd, &ecb, err, sizeof(err)))) {
			log_err("etcd: %s; serving the configuration's data alone", src ? err : "out of memory");
			etcdsrc_free(src);
			src = NULL;
			http_set_waiting(http, false);
		} else {
			http_set_etcd(http, etcd);
		}
	}

	struct live live = { .cfg = &cfg, .health = health };
	bool etcd_served = false;
	const struct update_ops uops = { .live = update_live, .commit = update_commit,
		                         .service = update_service, .records_prepare = records_prepare,
		                         .records_commit = records_commit,
		                         .records_abort = records_abort, .arg = &live };
	for (;;) {
		struct pollfd pfd[5] = { { .fd = sfd, .events = POLLIN }, { .fd = efd, .events = POLLIN },
		                         { .fd = update_queue_fd(uq), .events = POLLIN },
		                         { .fd = watch ? config_watch_fd(watch) : -1, .events = POLLIN },
		                         { .fd = src ? etcdsrc_fd(src) : -1, .events = POLLIN } };
		int wait_ms = -1;
		if (watch_first) {
			uint64_t now = clock_mono_ms(), due = watch_due(watch_first, watch_last);
			wait_ms = due > now ? (int)(due - now) : 0;
		}
		if (poll(pfd, 5, wait_ms) == -1) {
			if (errno == EINTR)
				continue;
			log_err("poll: %s", strerror(errno));
			break;
		}
		if (pfd[3].revents & POLLIN && config_watch_read(watch)) {
			watch_last = clock_mono_ms();
			if (!watch_first)
				watch_first = watch_last;
		}
		if (watch_first && clock_mono_ms() >= watch_due(watch_first, watch_last)) {
			/* Quiet long enough: reload as SIGHUP does (the signalfd
			 * below takes it), unless the content is what is loaded. */
			watch_first = watch_last = 0;
			if (config_watch_changed(watch)) {
				log_info("%s changed, reloading (--watch-config)", o.config);
				kill(getpid(), SIGHUP);
			} else {
				log_debug("%s: events but the same content, not reloaded", o.config);
			}
			continue;
		}
		if (pfd[1].revents & POLLIN) {
			uint64_t n;
			/* Every change signalled so far is covered by one rebuild. */
			if (read(efd, &n, sizeof(n)) == sizeof(n))
				apply_health_changes(health);
		}
		if (pfd[2].revents & POLLIN)
			update_process(uq, upd, &uops);
		/* etcd: changes in place, or a whole rebuild as a reload does
		 * (the file read again, the records added). */
		bool etcd_full = src && (pfd[4].revents & POLLIN) && apply_etcd(&live);
		bool etcd_first = etcd_full && etcdsrc_synced(src) && !etcd_served;
		struct signalfd_siginfo si = { .ssi_signo = 0 };
		if (pfd[0].revents & POLLIN && read(sfd, &si, sizeof(si)) != sizeof(si))
			si.ssi_signo = 0;
		if (si.ssi_signo == SIGHUP || etcd_full) {
			bool served = reload(o.config, si.ssi_signo != SIGHUP, &cfg, &upd, health, srv,
			                     set.tcp_max_clients);
			if (served && etcd_first) {
				etcd_served = true;
				http_set_waiting(http, false);
			}
			continue;
		}
		if (!(pfd[0].revents & POLLIN) || !si.ssi_signo)
			continue;
		log_info("received %s, stopping", si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
		break;
	}
	daemon_notify("STOPPING=1");
	rc = 0;
out:;
	struct running rt = { .cfg = cfg, .upd = upd, .sfd = sfd, .efd = efd, .uq = uq,
		              .health = health, .srv = srv,
		              .http = http, .watch = watch, .etcd = etcd,
		              .pid_file = pid_written ? o.pid_file : NULL };
	teardown(&rt);
	return rc;
}

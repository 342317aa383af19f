/* main.c -- dnsd: startup and shutdown order (one teardown), signals, and
 * the control thread's event loop. Wires options, control (config ->
 * snapshot), the watcher, the server workers (request.c), http and etcd. */
#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <limits.h>
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
#include "control.h"
#include "daemon.h"
#include "etcd.h"
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

/* --watch-config: a burst of events (an editor's save, kubelet's swap)
 * becomes one reload WATCH_QUIET_MS after the last event, and at most
 * WATCH_MAX_DELAY_MS after the first even if events keep coming. */
enum { WATCH_QUIET_MS = 250, WATCH_MAX_DELAY_MS = 2000 };

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

static void format_listen(const struct cfg_listen *l, char *buf, size_t len)
{
	addr_sockaddr_text((const struct sockaddr *)&l->ss, buf, len);
}

/* What main started, for the one teardown (in the reverse order of the
 * start) that every exit takes, the failures included. */
struct running {
	struct config *cfg;           /* loaded: the control's once it exists */
	struct update *upd;           /* likewise */
	int sfd, efd;
	struct update_queue *uq;
	struct bstate *states;
	struct control *ctl;
	struct health *health;
	struct server *srv;
	unsigned tcp_max_clients;     /* what the server allocated at start */
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
	config_watch_free(r->watch);
	/* The forwarder answers through the server's sockets: it stops first,
	 * and is freed once no worker can hand it a query. */
	forward_stop(forwarder);
	server_stop(r->srv);
	request_ctx_free(requests);
	requests = NULL;
	update_queue_free(r->uq);
	forward_teardown();
	guard_free(guard);
	guard = NULL;
	health_stop(r->health);
	xfr_free(xfr);
	xfr = NULL;
	zone_shutdown();
	/* No snapshot points into the registry's blocks or the states now. */
	control_free(r->ctl);
	bstate_free(r->states);
	update_free(r->upd);
	config_free(r->cfg);
	if (r->efd != -1)
		close(r->efd);
	if (r->sfd != -1)
		close(r->sfd);
	if (r->pid_file && unlink(r->pid_file) == -1)
		log_warn("pid file %s: %s", r->pid_file, strerror(errno));
}

/* A reload's settings for what main started (control_settings.reconfigure,
 * arg: the running struct): the server's tcp limits, transfers, the
 * request path, cookies and rate limiting at once; forwarding and the
 * search path at the next start. */
static void reconfigure(void *arg, const struct config *old, const struct config *cfg)
{
	const struct running *r = arg;
	if (!forward_config_equal(old, cfg))
		log_warn("reload: forward and cache settings take effect at the next start");
	if (old->nsearch != cfg->nsearch ||
	    memcmp(old->search, cfg->search, old->nsearch * sizeof(*old->search)) != 0)
		log_warn("reload: search-path takes effect at the next start");
	tcp_reconfigure(r->srv, r->tcp_max_clients, old, cfg);
	if (xfr_configure(xfr, cfg) == -1 || request_configure(requests, cfg) == -1)
		log_err("reload: out of memory for keys and transfer settings; the previous ones stay");
	if (guard_configure(guard, cfg) == -1)
		log_err("reload: out of memory for cookie and rate-limit settings; the previous ones "
		        "stay");
}

static bool status_source(void *arg, uint32_t sid, struct health_state *out)
{
	return health_get_sid(arg, sid, out);
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

	struct running rt = { .sfd = -1, .efd = -1 };
	/* A big config (a million backends: 14 MB of YAML, ~30 times that
	 * in memory) is loaded and built with the heap in huge pages. */
	struct stat cst;
	if (stat(o.config, &cst) == 0)
		heap_huge_begin((size_t)cst.st_size * 32);
	if (control_load(o.config, o.check, &rt.cfg, &rt.upd) == -1)
		return 1;
	if (o.check) {
		size_t nsvc, nbe, nchg = update_count(rt.upd);
		control_summarize(rt.cfg, &nsvc, &nbe);
		printf("%s: OK (%zu %s, %zu %s, %zu %s)\n", o.config, rt.cfg->nzones,
		       log_plural(rt.cfg->nzones, "zone"), nsvc, log_plural(nsvc, "service"), nbe,
		       log_plural(nbe, "backend"));
		if (nchg)
			printf("%s: update journals OK (%zu %s)\n", o.config, nchg,
			       log_plural(nchg, "change"));
		update_free(rt.upd);
		config_free(rt.cfg);
		return 0;
	}
	/* From here every exit goes through teardown (at out). */
	int rc = 1;
	rt.states = bstate_new();
	if (!rt.states) {
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
	rt.sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	rt.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	rt.uq = update_queue_new();
	if (rt.sfd == -1 || rt.efd == -1 || !rt.uq) {
		log_err("signalfd/eventfd: %s", strerror(errno));
		goto out;
	}
	metrics_set(&metrics_global.start_time_s, (uint64_t)time(NULL));
	char err[256];
	snprintf(err, sizeof(err), "out of memory");
	xfr = xfr_new(err, sizeof(err));
	if (!xfr || xfr_configure(xfr, rt.cfg) == -1) {
		log_err("transfers: %s", err);
		goto out;
	}
	/* The control takes the config and journals; cfg is the running one
	 * until the loop below reloads. */
	const struct control_settings cs = { .path = o.config, .cfg = rt.cfg, .upd = rt.upd,
		                             .states = rt.states, .wake_fd = rt.efd, .updates = rt.uq,
		                             .xfr = xfr, .reconfigure = reconfigure, .arg = &rt };
	rt.ctl = control_new(&cs);
	if (!rt.ctl) {
		log_err("out of memory");
		goto out;
	}
	rt.cfg = NULL;
	rt.upd = NULL;
	const struct config *cfg = control_config(rt.ctl);
	/* The watcher first: it gives checked backends their state ids, and
	 * the one build at start points them at their words. */
	rt.health = health_start(cfg, rt.states, control_health_changed, rt.ctl, err, sizeof(err));
	if (!rt.health) {
		log_err("health watcher: %s", err);
		goto out;
	}
	int built = control_start(rt.ctl, rt.health);
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
	rt.tcp_max_clients = set.tcp_max_clients;
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
			.status_arg = rt.health,
			.guard = guard,
		},
		.updates = rt.uq,
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
	if (server_start(&rt.srv, &set, &ops, err, sizeof(err)) == -1) {
		log_err("%s", err);
		rt.srv = NULL;
		goto out;
	}
	size_t nsvc, nbe;
	control_summarize(cfg, &nsvc, &nbe);
	char addrs[1024] = "";
	for (size_t i = 0, off = 0; i < set.nlisten && off < sizeof(addrs) - 64; i++) {
		char one[80];
		struct cfg_listen l = set.listen[i];
		uint16_t port = (uint16_t)server_local_port(rt.srv, i);
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
		rt.http = http_start(&o.http, rt.health, err, sizeof(err));
		if (!rt.http) {
			log_err("http: %s", err);
			goto out;
		}
		struct cfg_listen hl = o.http;
		uint16_t port = (uint16_t)http_local_port(rt.http);
		if (hl.ss.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&hl.ss)->sin6_port = htons(port);
		else
			((struct sockaddr_in *)&hl.ss)->sin_port = htons(port);
		char one[80];
		format_listen(&hl, one, sizeof(one));
		log_info("http status on http://%s/ (/metrics, /status.json, /health, /ready)", one);
	}
	if (o.pid_file) {
		if (daemon_write_pid_file(o.pid_file) == -1)
			goto out;
		rt.pid_file = o.pid_file;
	}
	if (o.user && daemon_drop_privileges(o.user) == -1)
		goto out;
	http_set_ready_bound(rt.http, health_ready_bound_ms(cfg));
	/* Not ready before the first etcd read is served (unless serve-stale):
	 * said before /ready can first answer 200. */
	if (cfg->etcd.nendpoints && !cfg->etcd.serve_stale)
		http_set_waiting(rt.http, true);
	http_set_serving(rt.http, true);
	{
		char msg[128];
		snprintf(msg, sizeof(msg), "READY=1\nSTATUS=serving %zu zones, %zu services\nMAINPID=%ld",
		         cfg->nzones, nsvc, (long)getpid());
		daemon_notify(msg);
	}

	if (o.watch_config) {
		rt.watch = config_watch_new(o.config, err, sizeof(err));
		if (!rt.watch)
			log_err("%s; the file is not watched (SIGHUP still reloads)", err);
		else
			config_watch_changed(rt.watch);   /* the content loaded now */
	}
	uint64_t watch_first = 0, watch_last = 0;  /* ms of a pending burst's events */
	/* Read at start only: a reload does not change the etcd client. Until
	 * its first snapshot is served, /ready says so (serve-stale: not). */
	if (cfg->etcd.nendpoints) {
		struct etcd_callbacks ecb;
		bool have_src = control_etcd_begin(rt.ctl, &ecb) == 0;
		if (!have_src || !(rt.etcd = etcd_new(&cfg->etcd, &ecb, err, sizeof(err)))) {
			log_err("etcd: %s; serving the configuration's data alone",
			        have_src ? err : "out of memory");
			control_etcd_end(rt.ctl);
			http_set_waiting(rt.http, false);
		} else {
			http_set_etcd(rt.http, rt.etcd);
		}
	}

	bool etcd_served = false;
	for (;;) {
		struct pollfd pfd[5] = { { .fd = rt.sfd, .events = POLLIN },
		                         { .fd = rt.efd, .events = POLLIN },
		                         { .fd = update_queue_fd(rt.uq), .events = POLLIN },
		                         { .fd = rt.watch ? config_watch_fd(rt.watch) : -1,
		                           .events = POLLIN },
		                         { .fd = control_etcd_fd(rt.ctl), .events = POLLIN } };
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
		if (pfd[3].revents & POLLIN && config_watch_read(rt.watch)) {
			watch_last = clock_mono_ms();
			if (!watch_first)
				watch_first = watch_last;
		}
		if (watch_first && clock_mono_ms() >= watch_due(watch_first, watch_last)) {
			/* Quiet long enough: reload as SIGHUP does (the signalfd
			 * below takes it), unless the content is what is loaded. */
			watch_first = watch_last = 0;
			if (config_watch_changed(rt.watch)) {
				log_info("%s changed, reloading (--watch-config)", o.config);
				kill(getpid(), SIGHUP);
			} else {
				log_debug("%s: events but the same content, not reloaded", o.config);
			}
			continue;
		}
		if (pfd[1].revents & POLLIN) {
			uint64_t n;
			/* Every change signalled so far is covered by one pass. */
			if (read(rt.efd, &n, sizeof(n)) == sizeof(n))
				control_apply_health(rt.ctl);
		}
		if (pfd[2].revents & POLLIN)
			control_process_updates(rt.ctl);
		/* etcd: changes in place, or a whole rebuild as a reload does
		 * (the file read again, the records added). */
		bool etcd_full = (pfd[4].revents & POLLIN) && control_etcd_apply(rt.ctl);
		bool etcd_first = etcd_full && control_etcd_synced(rt.ctl) && !etcd_served;
		struct signalfd_siginfo si = { .ssi_signo = 0 };
		if (pfd[0].revents & POLLIN && read(rt.sfd, &si, sizeof(si)) != sizeof(si))
			si.ssi_signo = 0;
		if (si.ssi_signo == SIGHUP || etcd_full) {
			bool served = control_reload(rt.ctl, si.ssi_signo != SIGHUP);
			if (served && etcd_first) {
				etcd_served = true;
				http_set_waiting(rt.http, false);
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
out:
	teardown(&rt);
	return rc;
}

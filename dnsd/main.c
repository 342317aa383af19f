/* main.c -- dnsd: the start in its order, the one teardown every exit
 * takes, signals. Wires options, control (config -> snapshot, the control
 * thread's loop), the watcher, the server workers (request.c), forwarding,
 * http and etcd. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>

#include "util/addr.h"
#include "bstate.h"
#include "config.h"
#include "control.h"
#include "daemon.h"
#include "etcd.h"
#include "forwarding.h"
#include "guard.h"
#include "health.h"
#include "util/heap.h"
#include "http.h"
#include "util/log.h"
#include "metrics.h"
#include "options.h"
#include "request.h"
#include "server.h"
#include "update.h"
#include "watch.h"
#include "xfr.h"
#include "zone.h"

/* What main started, for the one teardown (in the reverse order of the
 * start) that every exit takes, the failures included. */
struct running {
	struct options o;
	struct config *cfg;           /* loaded: the control's once it exists */
	struct update *upd;           /* likewise */
	int sfd, efd;
	struct update_queue *uq;
	struct bstate *states;
	struct xfr *xfr;              /* transfers, their history, NOTIFY */
	struct control *ctl;
	struct health *health;
	struct guard *guard;          /* cookies and rate limiting */
	struct forwarding *fwd;       /* names outside our zones; NULL: off */
	struct request_ctx *requests; /* what the workers share (request.c) */
	struct server *srv;
	size_t nsvc;                  /* services served at start, for the readiness note */
	struct cfg_listen listen[OPTIONS_LISTEN_MAX]; /* the server's, kept across reloads */
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
	forwarding_stop(r->fwd);
	server_stop(r->srv);
	request_ctx_free(r->requests);
	update_queue_free(r->uq);
	forwarding_free(r->fwd);
	guard_free(r->guard);
	health_stop(r->health);
	xfr_free(r->xfr);
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
	if (!forwarding_config_equal(old, cfg))
		log_warn("reload: forward and cache settings take effect at the next start");
	if (old->nsearch != cfg->nsearch ||
	    memcmp(old->search, cfg->search, old->nsearch * sizeof(*old->search)) != 0)
		log_warn("reload: search-path takes effect at the next start");
	server_reconfigure_tcp(r->srv, cfg->tcp_max_clients, cfg->tcp_max_per_client,
	                       cfg->tcp_idle_timeout_ms);
	if (xfr_configure(r->xfr, cfg) == -1 || request_configure(r->requests, cfg) == -1)
		log_err("reload: out of memory for keys and transfer settings; the previous ones stay");
	if (guard_configure(r->guard, cfg) == -1)
		log_err("reload: out of memory for cookie and rate-limit settings; the previous ones "
		        "stay");
}

static bool status_source(void *arg, uint32_t sid, struct health_state *out)
{
	return health_get_sid(arg, sid, out);
}

/* The descriptors the loop polls, the transfer state and the control
 * (which takes the loaded config and journals), the watcher and the first
 * snapshot. 0, or -1 after logging. */
static int start_control(struct running *r)
{
	r->sfd = daemon_signalfd();
	r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r->uq = update_queue_new();
	if (r->sfd == -1 || r->efd == -1 || !r->uq) {
		log_err("signalfd/eventfd: %s", strerror(errno));
		return -1;
	}
	metrics_set(&metrics_global.start_time_s, (uint64_t)time(NULL));
	char err[256];
	snprintf(err, sizeof(err), "out of memory");
	r->xfr = xfr_new(err, sizeof(err));
	if (!r->xfr || xfr_configure(r->xfr, r->cfg) == -1) {
		log_err("transfers: %s", err);
		return -1;
	}
	const struct control_settings cs = { .path = r->o.config, .cfg = r->cfg, .upd = r->upd,
		                             .states = r->states, .wake_fd = r->efd,
		                             .updates = r->uq, .xfr = r->xfr,
		                             .reconfigure = reconfigure, .arg = r };
	r->ctl = control_new(&cs);
	if (!r->ctl) {
		log_err("out of memory");
		return -1;
	}
	r->cfg = NULL;
	r->upd = NULL;
	const struct config *cfg = control_config(r->ctl);
	/* The watcher first: it gives checked backends their state ids, and
	 * the one build at start points them at their words. */
	r->health = health_start(cfg, r->states, control_health_changed, r->ctl, err, sizeof(err));
	if (!r->health) {
		log_err("health watcher: %s", err);
		return -1;
	}
	int built = control_start(r->ctl, r->health);
	heap_huge_end();
	if (built == -1) {
		log_err("%s: the zones could not be built", r->o.config);
		return -1;
	}
	return 0;
}

/* Cookies and rate limiting, forwarding, the request path and the server
 * threads on cfg's (or --listen's) addresses. 0, or -1 after logging. */
static int start_server(struct running *r, const struct config *cfg)
{
	const struct options *o = &r->o;
	r->guard = guard_new();
	if (!r->guard || guard_configure(r->guard, cfg) == -1) {
		log_err("cookies and rate limiting: out of memory");
		return -1;
	}
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	struct server_settings set = {
		.listen = o->nlisten ? o->listen : cfg->listen,
		.nlisten = o->nlisten ? o->nlisten : cfg->nlisten,
		.udp_workers = (unsigned)(o->workers >= 0 ? o->workers : (long)cfg->workers),
		.tcp_max_clients = cfg->tcp_max_clients,
		.tcp_max_per_client = cfg->tcp_max_per_client,
		.tcp_idle_timeout_ms = cfg->tcp_idle_timeout_ms,
	};
	/* The server keeps pointing at the listen list: a copy that outlives
	 * reloads. */
	if (set.nlisten > OPTIONS_LISTEN_MAX)
		set.nlisten = OPTIONS_LISTEN_MAX;
	memcpy(r->listen, set.listen, set.nlisten * sizeof(*r->listen));
	set.listen = r->listen;
	if (set.udp_workers == 0)
		set.udp_workers = ncpu > 0 ? (unsigned)ncpu : 1;
	if (forwarding_start(cfg, set.listen, set.nlisten, r->guard, &r->fwd) == -1)
		return -1;
	struct request_settings rs = {
		.query = {
			.forwarding = r->fwd != NULL,
			.cache = forwarding_cache(r->fwd),
			.nsearch = cfg->nsearch,
			.status = status_source,
			.status_arg = r->health,
			.guard = r->guard,
		},
		.updates = r->uq,
		.xfr = r->xfr,
		.forwarder = forwarding_forwarder(r->fwd),
		.fwd_payload = forwarding_payload(r->fwd),
		.qlog_rate = o->query_log,
		.seed = o->seed,
	};
	memcpy(rs.query.search, cfg->search, cfg->nsearch * sizeof(*cfg->search));
	r->requests = request_ctx_new(&rs);
	if (!r->requests || request_configure(r->requests, cfg) == -1) {
		log_err("request path: out of memory");
		return -1;
	}
	struct server_ops ops;
	request_server_ops(r->requests, &ops);
	char err[256];
	if (server_start(&r->srv, &set, &ops, err, sizeof(err)) == -1) {
		log_err("%s", err);
		r->srv = NULL;
		return -1;
	}
	size_t nsvc, nbe;
	control_summarize(cfg, &nsvc, &nbe);
	r->nsvc = nsvc;
	char addrs[1024] = "";
	for (size_t i = 0, off = 0; i < set.nlisten && off < sizeof(addrs) - 64; i++) {
		char one[80];
		addr_sockaddr_port_text((const struct sockaddr *)&set.listen[i].ss,
		                        server_local_port(r->srv, i), one, sizeof(one));
		off += (size_t)snprintf(addrs + off, sizeof(addrs) - off, "%s%s", i ? " " : "", one);
	}
	log_info("dnsd %s serving %zu %s, %zu %s, %zu %s on %s (%u UDP workers per address)",
	         MESHDNS_VERSION, cfg->nzones, log_plural(cfg->nzones, "zone"), nsvc,
	         log_plural(nsvc, "service"), nbe, log_plural(nbe, "backend"), addrs, set.udp_workers);
	return 0;
}

/* The status endpoint (--http wins over the file's http:), the pid file,
 * the user to run as, readiness (to /ready and systemd), the config file
 * watch and the etcd client. 0, or -1 after logging. */
static int start_rest(struct running *r, const struct config *cfg)
{
	struct options *o = &r->o;
	char err[256];
	if (!o->have_http && cfg->have_http) {
		o->http = cfg->http;
		o->have_http = true;
	}
	if (o->have_http) {
		r->http = http_start(&o->http, r->health, err, sizeof(err));
		if (!r->http) {
			log_err("http: %s", err);
			return -1;
		}
		char one[80];
		addr_sockaddr_port_text((const struct sockaddr *)&o->http.ss, http_local_port(r->http),
		                        one, sizeof(one));
		log_info("http status on http://%s/ (/metrics, /status.json, /health, /ready)", one);
	}
	if (o->pid_file) {
		if (daemon_write_pid_file(o->pid_file) == -1)
			return -1;
		r->pid_file = o->pid_file;
	}
	if (o->user && daemon_drop_privileges(o->user) == -1)
		return -1;
	http_set_ready_bound(r->http, health_ready_bound_ms(cfg));
	/* Not ready before the first etcd read is served (unless serve-stale):
	 * said before /ready can first answer 200. */
	if (cfg->etcd.nendpoints && !cfg->etcd.serve_stale)
		http_set_waiting(r->http, true);
	http_set_serving(r->http, true);
	char msg[128];
	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=serving %zu zones, %zu services\nMAINPID=%ld",
	         cfg->nzones, r->nsvc, (long)getpid());
	daemon_notify(msg);
	/* Read at start only: a reload does not change the etcd client. */
	if (cfg->etcd.nendpoints)
		r->etcd = control_etcd_start(r->ctl, &cfg->etcd, r->http);
	return 0;
}

int main(int argc, char **argv)
{
	struct running rt = { .sfd = -1, .efd = -1 };
	struct options *o = &rt.o;
	if (options_parse(argc, argv, o) == -1)
		return 1;
	if (o->reload) {
		if (!o->pid_file) {
			fprintf(stderr, "dnsd: --reload needs --pid-file FILE\n");
			return 1;
		}
		return daemon_signal_reload(o->pid_file);
	}
	log_set_level(o->level);
	if (o->check)
		log_use_plain();
	else if (o->syslog)
		log_use_syslog("dnsd");
	/* A big config (a million backends: 14 MB of YAML, ~30 times that
	 * in memory) is loaded and built with the heap in huge pages. */
	struct stat cst;
	if (stat(o->config, &cst) == 0)
		heap_huge_begin((size_t)cst.st_size * 32);
	/* The watch starts before the first load, with what the file holds
	 * then: a change from here on is seen (at worst as one reload too
	 * many), even one written before dnsd answers. */
	if (o->watch_config && !o->check) {
		char err[256];
		rt.watch = config_watch_new(o->config, err, sizeof(err));
		if (!rt.watch)
			log_err("%s; the file is not watched (SIGHUP still reloads)", err);
		else
			config_watch_changed(rt.watch);
	}
	if (control_load(o->config, o->check, &rt.cfg, &rt.upd) == -1) {
		config_watch_free(rt.watch);
		return 1;
	}
	/* From here every exit goes through teardown. */
	int rc = 1;
	if (o->check) {
		rc = control_check_summary(o->config, rt.cfg, rt.upd);
	} else if (!(rt.states = bstate_new())) {
		log_err("out of memory");
	} else {
		daemon_raise_nofile();
		if (start_control(&rt) == 0 && start_server(&rt, control_config(rt.ctl)) == 0 &&
		    start_rest(&rt, control_config(rt.ctl)) == 0)
			rc = control_run(rt.ctl, rt.sfd, rt.watch, rt.http);
	}
	teardown(&rt);
	return rc;
}

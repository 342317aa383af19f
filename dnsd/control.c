/* control.c -- the control thread's work: builds and publishes snapshots of
 * the running config (start, reload, etcd rebuild) and serves what changes
 * between reloads (health states, UPDATEs, etcd records). No event loop. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <urcu-qsbr.h>

#include "bstate.h"
#include "util/clock.h"
#include "config.h"
#include "control.h"
#include "daemon.h"
#include "etcd.h"
#include "etcdsrc.h"
#include "health.h"
#include "util/heap.h"
#include "watch.h"
#include "http.h"
#include "util/log.h"
#include "metrics.h"
#include "registry.h"
#include "update.h"
#include "dns/wire.h"
#include "xfr.h"
#include "zone.h"

/* Health changes taken from the watcher at a time. */
enum { HEALTH_BATCH = 1024 };

struct control {
	const char *path;
	struct config *cfg;           /* the running config */
	struct update *upd;           /* its journals */
	/* Backend states, shared by the watcher (ids), the snapshots (words)
	 * and the control thread (writes): borrowed from main. */
	struct bstate *states;
	/* Services by identity (registry.h): their blocks outlive snapshots,
	 * so a reload rebuilds only the services it changed. */
	struct registry *reg;
	struct health *health;        /* borrowed: main starts and stops it */
	/* etcd records as backends (etcdsrc.h): NULL without etcd: in the
	 * YAML. */
	struct etcdsrc *src;
	int wake_fd;
	struct update_queue *updates; /* borrowed from main */
	struct xfr *xfr;              /* borrowed from main */
	void (*reconfigure)(void *arg, const struct config *old, const struct config *cfg);
	void *arg;
	/* update_service leaves the grace period and the reclaim to its
	 * caller (control_etcd_apply waits once for a batch). */
	bool defer_reclaim;
	struct update_ops uops;
	struct health_change chg[HEALTH_BATCH];
};

static void note_snapshot(struct zone_snapshot *snap, uint64_t build_ns)
{
	for (unsigned i = 0; i < snap->nzones; i++) {
		/* Not published yet: its zones are still the builder's to fill. */
		struct zone *z = (struct zone *)&snap->zones[i];
		z->metrics_slot = (uint8_t)metrics_zone_add(z->origin, z->originlen);
	}
	metrics_set(&metrics_global.snapshot_generation, snap->generation);
	metrics_set(&metrics_global.snapshot_build_ns, build_ns);
	metrics_set(&metrics_global.snapshot_bytes, snap->bytes);
}

void control_summarize(const struct config *cfg, size_t *nsvc, size_t *nbe)
{
	*nsvc = *nbe = 0;
	for (size_t i = 0; i < cfg->nzones; i++) {
		*nsvc += cfg->zones[i].nservices;
		for (size_t j = 0; j < cfg->zones[i].nservices; j++)
			*nbe += cfg_service_nbackends(&cfg->zones[i].services[j]);
	}
}

/* Adds the etcd records to a config just loaded (a start, reload or whole
 * UPDATE), so they survive every rebuild. */
static int etcd_decorate(struct control *c, struct config *cfg)
{
	if (!c->src)
		return 0;
	char err[256];
	size_t skipped;
	if (etcdsrc_apply(c->src, cfg, &skipped, err, sizeof(err)) == -1) {
		log_err("etcd: %s", err);
		return -1;
	}
	if (skipped)
		log_warn("etcd: %zu records not served (outside our zones, or at a name with static "
		         "records)", skipped);
	return 0;
}

/* Builds a snapshot from cfg: 0, or -1 with err set. Checked backends
 * point at their words in the state table (no watcher: every backend up). */
static int build(struct control *c, const struct config *cfg, struct zone_snapshot **snap,
                 uint64_t *took_ns, char *err, size_t errlen)
{
	struct health *h = c->health;
	uint64_t t0 = clock_mono_ns();
	if (zone_build(cfg, zone_current(), c->reg, h ? c->states : NULL, h ? health_sid : NULL, h,
	               snap, err, errlen) == -1)
		return -1;
	*took_ns = clock_mono_ns() - t0;
	return 0;
}

/* build, and what a failure means for the running snapshot, logged. */
static int build_logged(struct control *c, const struct config *cfg,
                        struct zone_snapshot **snap, uint64_t *took_ns)
{
	char err[512];
	if (build(c, cfg, snap, took_ns, err, sizeof(err)) == -1) {
		log_err("rebuild failed, keeping the current snapshot: %s", err);
		return -1;
	}
	return 0;
}

/* Publishes snap. Only the control thread publishes, so no lock is needed.
 * The history (IXFR) and NOTIFY are done between the swap and the free:
 * both snapshots are still readable, and a secondary told of the new
 * serial finds it served. */
static void publish(struct control *c, struct zone_snapshot *snap, uint64_t took_ns)
{
	note_snapshot(snap, took_ns);
	registry_commit(c->reg);
	struct zone_snapshot *prev = zone_swap(snap);
	xfr_published(c->xfr, snap, prev);
	if (prev) {
		synchronize_rcu();
		zone_free(prev);
	}
	/* No snapshot points at the ids released before this publish now,
	 * nor reader at the blocks and slots the new one replaced. */
	bstate_reclaim(c->states);
	registry_reclaim(c->reg);
	log_debug("published snapshot generation %llu (%zu bytes, built in %llu ms)",
	          (unsigned long long)snap->generation, snap->bytes,
	          (unsigned long long)(took_ns / 1000000));
	/* A reload frees a whole parsed config and the build's tables: give
	 * the heap's free pages back rather than keep a big zone's peak. */
	malloc_trim(0);
}

/* Rebuilds the snapshot from cfg and the watcher's current states and
 * publishes it. */
static int rebuild(struct control *c, const struct config *cfg)
{
	struct zone_snapshot *snap;
	uint64_t took;
	if (build_logged(c, cfg, &snap, &took) == -1)
		return -1;
	publish(c, snap, took);
	return 0;
}

/* cfg serves now: its unchecked services keep their backends in their
 * blocks alone (registry_freeze), and the heap gives the copies back. */
static void freeze(struct control *c, struct config *cfg)
{
	size_t n = registry_freeze(c->reg, cfg);
	if (n) {
		malloc_trim(0);
		log_debug("%zu %s keep their backends in their blocks alone", n, log_plural(n, "service"));
	}
}

/* The watcher went to a config whose build then failed: it goes back to
 * the running config, and since ids of backends the failed config lacked
 * were released, the served snapshot is rebuilt on the ids it has again. */
static void health_rollback(struct control *c)
{
	if (health_reconfigure(c->health, c->cfg) == -1 || rebuild(c, c->cfg) == -1)
		log_err("the health watcher could not return to the running configuration (out of "
		        "memory); health states may be wrong until the next reload");
}

void control_apply_health(struct control *c)
{
	size_t n;
	while ((n = health_take_changes(c->health, c->chg, HEALTH_BATCH)) > 0) {
		const struct zone_snapshot *snap = zone_current();
		struct xfr_txn *t = xfr_txn_new(c->xfr);
		for (size_t i = 0; t && i < n; i++) {
			uint32_t zi;
			const struct zone_slot *slot = registry_sid_slot(c->reg, c->chg[i].sid, &zi);
			if (slot)
				xfr_txn_add(t, &snap->zones[zi], slot);
		}
		if (t)
			xfr_txn_lock(t);
		for (size_t i = 0; i < n; i++)
			bstate_set(c->states, c->chg[i].sid, c->chg[i].up, c->chg[i].since_ms);
		if (t)
			xfr_txn_commit(t);
		metrics_add(&metrics_global.health_changes_applied, n);
	}
}

void control_health_changed(void *arg)
{
	const struct control *c = arg;
	uint64_t one = 1;
	/* A full counter only means a rebuild is already pending. */
	if (write(c->wake_fd, &one, sizeof(one)) == -1)
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

int control_load(const char *path, bool check, struct config **cfgp, struct update **up)
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

/* An accepted UPDATE's effective config goes live as after a reload. */
static int update_commit(void *arg, struct config *ncfg)
{
	struct control *c = arg;
	if (etcd_decorate(c, ncfg) == -1 || health_reconfigure(c->health, ncfg) == -1)
		return -1;
	if (rebuild(c, ncfg) == -1) {
		health_rollback(c);
		return -1;
	}
	config_free(c->cfg);
	c->cfg = ncfg;
	freeze(c, ncfg);
	return 0;
}

static const struct config *update_live(void *arg)
{
	return ((struct control *)arg)->cfg;
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
	struct control *c = arg;
	struct pending_build *p = malloc(sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (build(c, cfg, &p->snap, &p->took_ns, err, errlen) == -1) {
		free(p);
		return -1;
	}
	*pending = p;
	return 0;
}

static void records_commit(void *arg, void *pending, size_t zi, struct cfg_record **recs,
                           size_t *nrecs)
{
	struct control *c = arg;
	struct pending_build *p = pending;
	struct cfg_zone *z = &c->cfg->zones[zi];
	struct cfg_record *old = z->records;
	size_t nold = z->nrecords;
	z->records = *recs;
	z->nrecords = *nrecs;
	z->names_checked = false;
	*recs = old;
	*nrecs = nold;
	publish(c, p->snap, p->took_ns);
	free(p);
}

static void records_abort(void *arg, void *pending)
{
	struct control *c = arg;
	struct pending_build *p = pending;
	registry_abort(c->reg);
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
static int update_service(void *arg, size_t zi, size_t si, struct cfg_service *ns)
{
	struct control *c = arg;
	struct config *cfg = c->cfg;
	const struct zone_snapshot *snap = zone_current();
	if (!snap || zi >= snap->nzones || si >= snap->zones[zi].nservices)
		return -1;
	struct cfg_service old = cfg->zones[zi].services[si];
	bool checked = service_checked(&old) || service_checked(ns);
	cfg->zones[zi].services[si] = *ns;
	memset(ns, 0, sizeof(*ns));
	if (checked && health_reconfigure(c->health, cfg) == -1) {
		*ns = cfg->zones[zi].services[si];
		cfg->zones[zi].services[si] = old;
		return -1;
	}
	char err[256];
	const struct zone *z = &snap->zones[zi];
	struct xfr_txn *t = xfr_txn_new(c->xfr);
	if (t) {
		xfr_txn_add(t, z, z->slots[si]);
		xfr_txn_lock(t);
	}
	struct cfg_service *cs = &cfg->zones[zi].services[si];
	int rc = registry_replace(c->reg, z->slots[si], &cfg->zones[zi], cs, c->states, health_sid,
	                          c->health, zi, si, err, sizeof(err));
	if (rc == -1)
		log_err("update: %s", err);
	else if (config_service_freezable(cs))
		config_service_freeze(cs, registry_slot_key(z->slots[si]));
	if (t)
		xfr_txn_commit(t);
	/* The watcher no longer points into the old service, readers no longer
	 * into its old block after a grace period (one for a batch of etcd
	 * changes: control_etcd_apply waits once). */
	config_service_clear(&old);
	if (!c->defer_reclaim) {
		synchronize_rcu();
		registry_reclaim(c->reg);
	}
	return rc;
}

void control_process_updates(struct control *c)
{
	update_process(c->updates, c->upd, &c->uops);
}

int control_etcd_begin(struct control *c, struct etcd_callbacks *ecb)
{
	c->src = etcdsrc_new();
	if (!c->src)
		return -1;
	*ecb = etcdsrc_callbacks(c->src);
	return 0;
}

void control_etcd_end(struct control *c)
{
	etcdsrc_free(c->src);
	c->src = NULL;
}

int control_etcd_fd(const struct control *c)
{
	return c->src ? etcdsrc_fd(c->src) : -1;
}

bool control_etcd_synced(const struct control *c)
{
	return c->src && etcdsrc_synced(c->src);
}

bool control_etcd_apply(struct control *c)
{
	struct etcdsrc_changes ch;
	if (etcdsrc_drain(c->src, &ch) == -1)
		log_err("etcd: out of memory applying changes; the rest follows");
	bool full = ch.snapshot;
	struct config *cfg = c->cfg;
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
		int erc = etcdsrc_service(c->src, &base, &ns);
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
		c->defer_reclaim = true;
		int rc = update_service(c, zi, si, &ns);
		c->defer_reclaim = false;
		if (rc == -1) {
			config_service_clear(&ns);
			full = true;
		}
	}
	etcdsrc_changes_free(&ch);
	synchronize_rcu();
	registry_reclaim(c->reg);
	return full;
}

static void reload_failed(const char *why)
{
	log_err("reload failed%s, continuing with the previous configuration", why);
	metrics_add(&metrics_global.reload_failures, 1);
	daemon_notify("READY=1\nSTATUS=reload failed, previous configuration serving");
}

bool control_reload(struct control *c, bool by_etcd)
{
	struct config *cfg = c->cfg;
	daemon_notify("RELOADING=1");
	/* The same text, and no other file read from it (secrets, a
	 * resolv.conf): the result would be what serves now, and the updates
	 * since are applied already. Parsing a million backends again only to
	 * find that costs seconds. */
	if (!by_etcd && !cfg->reads_files && !cfg->forward.resolv_conf &&
	    update_unchanged(c->upd, c->path)) {
		metrics_add(&metrics_global.reloads, 1);
		log_info("reloaded %s: unchanged, nothing to do", c->path);
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
	if (load_config(c->path, false, &ncfg, &nupd) == -1) {
		reload_failed("");
		return false;
	}
	if (etcd_decorate(c, ncfg) == -1 || health_reconfigure(c->health, ncfg) == -1) {
		reload_failed(" (etcd records or health watcher)");
		config_free(ncfg);
		update_free(nupd);
		return false;
	}
	if (build_logged(c, ncfg, &nsnap, &took) == -1) {
		health_rollback(c);
		reload_failed("");
		config_free(ncfg);
		update_free(nupd);
		return false;
	}
	update_free(c->upd);
	c->upd = nupd;
	if (c->reconfigure)
		c->reconfigure(c->arg, cfg, ncfg);
	config_free(cfg);
	c->cfg = cfg = ncfg;
	publish(c, nsnap, took);
	freeze(c, cfg);
	size_t nsvc, nbe;
	control_summarize(cfg, &nsvc, &nbe);
	if (by_etcd) {
		log_info("etcd: rebuilt with %zu etcd records: %zu %s, %zu %s", etcdsrc_count(c->src),
		         nsvc, log_plural(nsvc, "service"), nbe, log_plural(nbe, "backend"));
		daemon_notify("READY=1\nSTATUS=etcd records applied");
		return true;
	}
	metrics_add(&metrics_global.reloads, 1);
	log_info("reloaded %s: %zu %s, %zu %s, %zu %s", c->path, cfg->nzones,
	         log_plural(cfg->nzones, "zone"), nsvc, log_plural(nsvc, "service"), nbe,
	         log_plural(nbe, "backend"));
	daemon_notify("READY=1\nSTATUS=reloaded");
	return true;
}

struct control *control_new(const struct control_settings *s)
{
	struct control *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->reg = registry_new();
	if (!c->reg) {
		free(c);
		return NULL;
	}
	c->path = s->path;
	c->cfg = s->cfg;
	c->upd = s->upd;
	c->states = s->states;
	c->wake_fd = s->wake_fd;
	c->updates = s->updates;
	c->xfr = s->xfr;
	c->reconfigure = s->reconfigure;
	c->arg = s->arg;
	c->uops = (struct update_ops){ .live = update_live, .commit = update_commit,
		                       .service = update_service, .records_prepare = records_prepare,
		                       .records_commit = records_commit,
		                       .records_abort = records_abort, .arg = c };
	return c;
}

void control_free(struct control *c)
{
	if (!c)
		return;
	etcdsrc_free(c->src);
	update_free(c->upd);
	registry_free(c->reg);
	config_free(c->cfg);
	free(c);
}

int control_start(struct control *c, struct health *h)
{
	c->health = h;
	if (rebuild(c, c->cfg) == -1)
		return -1;
	freeze(c, c->cfg);
	return 0;
}

const struct config *control_config(const struct control *c)
{
	return c->cfg;
}

/* ---- the loop ---------------------------------------------------------------- */

int control_run(struct control *c, int sfd, struct config_watch *watch, struct http *http)
{
	bool etcd_served = false;
	for (;;) {
		struct pollfd pfd[5] = { { .fd = sfd, .events = POLLIN },
		                         { .fd = c->wake_fd, .events = POLLIN },
		                         { .fd = update_queue_fd(c->updates), .events = POLLIN },
		                         { .fd = watch ? config_watch_fd(watch) : -1,
		                           .events = POLLIN },
		                         { .fd = control_etcd_fd(c), .events = POLLIN } };
		if (poll(pfd, 5, config_watch_wait_ms(watch, clock_mono_ms())) == -1) {
			if (errno == EINTR)
				continue;
			log_err("poll: %s", strerror(errno));
			return 1;
		}
		if (pfd[3].revents & POLLIN)
			config_watch_events(watch, clock_mono_ms());
		if (config_watch_due(watch, clock_mono_ms())) {
			/* Quiet long enough: reload as SIGHUP does (the signalfd
			 * below takes it), unless the content is what is loaded. */
			if (config_watch_changed(watch)) {
				log_info("%s changed, reloading (--watch-config)", c->path);
				kill(getpid(), SIGHUP);
			} else {
				log_debug("%s: events but the same content, not reloaded", c->path);
			}
			continue;
		}
		if (pfd[1].revents & POLLIN) {
			uint64_t n;
			/* Every change signalled so far is covered by one pass. */
			if (read(c->wake_fd, &n, sizeof(n)) == sizeof(n))
				control_apply_health(c);
		}
		if (pfd[2].revents & POLLIN)
			control_process_updates(c);
		/* etcd: changes in place, or a whole rebuild as a reload does
		 * (the file read again, the records added). */
		bool etcd_full = (pfd[4].revents & POLLIN) && control_etcd_apply(c);
		bool etcd_first = etcd_full && control_etcd_synced(c) && !etcd_served;
		struct signalfd_siginfo si = { .ssi_signo = 0 };
		if (pfd[0].revents & POLLIN && read(sfd, &si, sizeof(si)) != sizeof(si))
			si.ssi_signo = 0;
		if (si.ssi_signo == SIGHUP || etcd_full) {
			bool served = control_reload(c, si.ssi_signo != SIGHUP);
			if (served && etcd_first) {
				etcd_served = true;
				http_set_waiting(http, false);
			}
			continue;
		}
		if (!(pfd[0].revents & POLLIN) || !si.ssi_signo)
			continue;
		log_info("received %s, stopping", si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
		daemon_notify("STOPPING=1");
		return 0;
	}
}

struct etcd *control_etcd_start(struct control *c, const struct cfg_etcd *e, struct http *http)
{
	char err[256];
	struct etcd_callbacks ecb;
	struct etcd *client = NULL;
	bool have_src = control_etcd_begin(c, &ecb) == 0;
	if (!have_src || !(client = etcd_new(e, &ecb, err, sizeof(err)))) {
		log_err("etcd: %s; serving the configuration's data alone",
		        have_src ? err : "out of memory");
		control_etcd_end(c);
		http_set_waiting(http, false);
		return NULL;
	}
	http_set_etcd(http, client);
	return client;
}

int control_check_summary(const char *path, const struct config *cfg, const struct update *upd)
{
	size_t nsvc, nbe, nchg = update_count(upd);
	control_summarize(cfg, &nsvc, &nbe);
	printf("%s: OK (%zu %s, %zu %s, %zu %s)\n", path, cfg->nzones,
	       log_plural(cfg->nzones, "zone"), nsvc, log_plural(nsvc, "service"), nbe,
	       log_plural(nbe, "backend"));
	if (nchg)
		printf("%s: update journals OK (%zu %s)\n", path, nchg, log_plural(nchg, "change"));
	return 0;
}

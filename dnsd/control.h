/* control.h -- the control thread's work: the running config and its update
 * journals; snapshots built and published at start, on a reload and for
 * what changes between reloads (health states, UPDATEs, etcd records).
 * Not the event loop that calls it (main.c), nor the name data (zone.c). */
#ifndef MESHDNS_CONTROL_H
#define MESHDNS_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

struct bstate;
struct config;
struct etcd_callbacks;
struct health;
struct update;
struct update_queue;
struct xfr;

/* What main hands a control at creation. */
struct control_settings {
	const char *path;             /* the config file reloads read: borrowed */
	struct config *cfg;           /* loaded by control_load: taken by control_new */
	struct update *upd;           /* its journals: taken by control_new */
	struct bstate *states;        /* backend states: borrowed, outlive the control */
	int wake_fd;                  /* an eventfd: written when the watcher has changes */
	struct update_queue *updates; /* the workers' UPDATEs: borrowed */
	struct xfr *xfr;              /* told of each publish (IXFR, NOTIFY): borrowed */
	/* On a reload, after the new config validated and before it serves:
	 * the settings of what main started (the server, forwarding, the
	 * request path, transfers, cookies and rate limiting). */
	void (*reconfigure)(void *arg, const struct config *old, const struct config *cfg);
	void *arg;
};

struct control;

/* Loads the config at path and replays the update journals over it
 * (read only with check). With check, also builds a snapshot from the
 * result to validate the zones, and frees it. 0 with *cfgp and *up the
 * caller's, or -1 after logging (file:line:col for config errors). Main
 * thread, before control_new. */
int control_load(const char *path, bool check, struct config **cfgp, struct update **up);

/* The services and backends of cfg, counted over its zones. */
void control_summarize(const struct config *cfg, size_t *nsvc, size_t *nbe);

/* A control over s (see struct control_settings for what it takes and
 * borrows), with its own service registry. Serves nothing before
 * control_start. NULL when out of memory; then s->cfg and s->upd stay the
 * caller's. Main thread. */
struct control *control_new(const struct control_settings *s);
/* Frees c with the config, journals, registry and etcd records it holds,
 * once nothing calls it any more and no snapshot is served (after
 * zone_shutdown). NULL is a no-op. Main thread. */
void control_free(struct control *c);

/* Builds and publishes the first snapshot with h's states (h: started on
 * control_config(c), borrowed until control_free). 0, or -1 after logging
 * the build's error. Main thread, before the server starts. */
int control_start(struct control *c, struct health *h);

/* The running config: valid until the next reload or UPDATE on the
 * control thread. */
const struct config *control_config(const struct control *c);

/* The watcher's health_changed_fn (arg: the control): wakes the control
 * thread through wake_fd. Watcher thread; does not block. */
void control_health_changed(void *arg);
/* Applies the watcher's queued state changes to the served snapshot (the
 * backends' words, and per zone whose records change a new serial, an
 * IXFR difference and NOTIFY): O(services changed), no rebuild. Control
 * thread, once wake_fd was read. */
void control_apply_health(struct control *c);

/* Processes the queued UPDATEs (update_process) against the running
 * config: each accepted one is served before it is answered. Control
 * thread, when update_queue_fd(updates) is readable. */
void control_process_updates(struct control *c);

/* Creates the etcd record source: *ecb becomes the callbacks to give
 * etcd_new. 0, or -1 out of memory. Main thread, before the loop. */
int control_etcd_begin(struct control *c, struct etcd_callbacks *ecb);
/* Drops the record source (the etcd client did not start). */
void control_etcd_end(struct control *c);
/* The eventfd readable when etcd changes are queued; -1 without etcd. */
int control_etcd_fd(const struct control *c);
/* Whether the etcd client has served a whole snapshot of the records. */
bool control_etcd_synced(const struct control *c);
/* Serves the queued etcd changes: each changed name whose service exists
 * is changed in place (O(service), as an UPDATE). Returns true when they
 * need a whole rebuild instead (a new name, a service losing its last
 * record, a snapshot of the records): control_reload(c, true). Control
 * thread, when control_etcd_fd is readable. */
bool control_etcd_apply(struct control *c);

/* A reload (SIGHUP, --watch-config) or, by_etcd, a whole rebuild for etcd
 * records: the file read again, the journals replayed over it, the etcd
 * records added, the watcher moved to it and one build that both
 * validates and serves it; logged, counted and told to systemd. Anything
 * failing keeps the running config serving. Returns true when the new one
 * serves. Control thread. */
bool control_reload(struct control *c, bool by_etcd);

struct config_watch;
struct http;
/* The control thread's loop until SIGINT or SIGTERM: the watcher's
 * changes (wake_fd), UPDATEs, etcd changes, the config file's events
 * (watch, may be NULL: a burst becomes one reload, as SIGHUP) and the
 * signals of sfd (a signalfd: SIGHUP reloads). http (may be NULL) hears
 * when the first etcd read serves. 0 at SIGINT/SIGTERM (after telling
 * systemd), 1 if poll fails. */
int control_run(struct control *c, int sfd, struct config_watch *watch, struct http *http);

/* Starts the etcd client of e with c's record source (a reload does not
 * change it): the client, or NULL after logging (the configuration's data
 * alone is served). http (may be NULL) is told: /ready stops waiting for
 * etcd when it did not start, else it reports the client's state. Main
 * thread, before control_run. */
struct cfg_etcd;
struct etcd *control_etcd_start(struct control *c, const struct cfg_etcd *e, struct http *http);

/* dnsd --check: prints what path loaded (zones, services, backends, and
 * the changes in update journals). Returns 0, the exit status. */
int control_check_summary(const char *path, const struct config *cfg, const struct update *upd);

#endif

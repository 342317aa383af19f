/* update.h -- dynamic updates (RFC 2136) on top of the YAML config: an
 * overlay of add/delete operations per zone, kept in an fsync'd journal
 * (journal.h) and applied to every freshly loaded YAML config. Workers
 * only queue signed UPDATE messages; the control thread checks, applies,
 * journals, publishes and answers them. */
#ifndef MESHDNS_UPDATE_H
#define MESHDNS_UPDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "journal.h"

struct server_peer;

enum {
	UPDATE_MSG_MAX = 16384,       /* larger UPDATE messages are REFUSED */
	UPDATE_QUEUE_MAX = 64,        /* queued UPDATEs; SERVFAIL past it (the client retries) */
	UPDATE_OPS_MAX = 10000,       /* overlay operations per zone; REFUSED past it */
	UPDATE_COMPACT_MIN = 1024,    /* a journal is compacted past max(this, 2 x overlay) */
	RCODE_YXDOMAIN = 6,
	RCODE_YXRRSET = 7,
	RCODE_NXRRSET = 8,
	RCODE_NOTZONE = 10,
};

/* The overlay of every zone that takes updates, the YAML text it sits on,
 * and the open journals. Owned by the control thread. */
struct update;

/* ---- worker side ------------------------------------------------------------ */

/* The queue from the server threads to the control thread: NULL when out
 * of memory or descriptors. Freed after the server stopped, with what is
 * still queued. */
struct update_queue;
struct update_queue *update_queue_new(void);
void update_queue_free(struct update_queue *uq);
/* The eventfd the control thread polls: readable when uq holds requests. */
int update_queue_fd(const struct update_queue *uq);

/* Server threads: r is an UPDATE (opcode 5), parsed and its TSIG checked
 * (request.c). Returns SERVER_DEFERRED once it is queued with the way
 * back to peer (the control thread answers), else the RCODE to answer
 * at once: REFUSED when unsigned (TSIG is required) or too large,
 * FORMERR, SERVFAIL when the queue is full. */
struct request;
int update_submit(struct update_queue *uq, const struct request *r,
                  const struct server_peer *peer);

/* ---- control thread ---------------------------------------------------------- */

/* Reads the YAML file path, loads it, replays the journal of every zone
 * with update: set and applies the overlays: *cfgp is the effective config.
 * check (dnsd --check): journals are read only, never created or repaired.
 * Operations that no longer apply (service gone, conflicts with the YAML)
 * are dropped from the overlay with a warning. 0, or -1 with err set
 * ("file:line:col: message" for config errors). */
int update_load(const char *path, bool check, struct config **cfgp, struct update **up,
                char *err, size_t errlen);
void update_free(struct update *u);
/* Whether the file at path holds exactly the text u was loaded from. */
bool update_unchanged(const struct update *u, const char *path);
/* Operations in all overlays (for dnsd --check). */
size_t update_count(const struct update *u);

/* Takes ownership of cfg (the new effective config) on 0: must make it
 * live (health watcher, snapshot) and free the previous one. */
typedef int (*update_commit_fn)(void *arg, struct config *cfg);

/* How the control thread applies an UPDATE: the running effective
 * config (read for the zone's names); one service changed in place
 * (service: its backends; the callee takes what *ns holds on 0, swaps it
 * into the running config and rebuilds that service alone: O(service));
 * static records of one zone (records_prepare builds, and does not serve,
 * the snapshot of cfg: the running config with zone zi's records
 * replaced, sharing everything else; then records_commit serves it and
 * the running zone takes the records (*recs, *nrecs: taken, left empty),
 * or records_abort drops it: the services' blocks are reused, nothing is
 * parsed); or a whole new config (commit: updates mixing services and
 * records). */
struct update_ops {
	const struct config *(*live)(void *arg);
	update_commit_fn commit;
	int (*service)(void *arg, size_t zi, size_t si, struct cfg_service *ns);
	int (*records_prepare)(void *arg, const struct config *cfg, void **pending, char *err,
	                       size_t errlen);
	void (*records_commit)(void *arg, void *pending, size_t zi, struct cfg_record **recs,
	                       size_t *nrecs);
	void (*records_abort)(void *arg, void *pending);
	void *arg;
};

/* Drains uq (after its eventfd was readable): every request is
 * checked (zone, key, prerequisites against the published snapshot),
 * applied to a new effective config, validated, journaled (fsync), handed
 * to commit, and answered. */
void update_process(struct update_queue *uq, struct update *u, const struct update_ops *ops);

/* For tests: merges op into u's overlay of zone zi (of u's zones, in
 * config order), as an accepted update does. 0, or -1 (overlay full). */
int update_overlay_merge(struct update *u, size_t zi, const struct journal_op *op);
/* For tests: applies the overlay of u's zone zi to cfg (whose zone is
 * found by name). Returns the number of operations that did not apply. */
size_t update_overlay_apply(const struct update *u, size_t zi, struct config *cfg);
/* For tests: an empty update state with one overlay for zone origin. */
struct update *update_new_for_test(const uint8_t *origin, size_t originlen);
/* For tests: that overlay takes updates signed with key (a key name). */
int update_allow_key_for_test(struct update *u, const char *key);
/* For tests: one UPDATE message (without its TSIG RR), as if signed with
 * key, processed as update_process does; returns the rcode. */
unsigned update_process_for_test(struct update *u, const uint8_t *msg, size_t len,
                                 const char *key, const struct update_ops *uo);

#endif

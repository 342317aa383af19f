/* health.h -- the health watcher: one thread probing every checked backend
 * (tcp connect, http/https GET on connections kept between probes) with
 * non-blocking I/O, applying rise/fall hysteresis, and telling the control
 * thread when a backend's state really changed. It never touches zone
 * snapshots itself. */
#ifndef MESHDNS_HEALTH_H
#define MESHDNS_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bstate.h"
#include "config.h"

struct health;

/* The last known state of one backend, as handed to the zone builder. */
struct health_state {
	bool up;
	uint64_t since_ms;            /* CLOCK_MONOTONIC ms of the last up/down change */
	uint32_t last_ms;             /* duration of the last check, ms */
	int32_t last_code;            /* last result: HTTP status, 0 connect ok, -errno */
	uint64_t checks;              /* probes run */
	uint64_t transitions;         /* up<->down changes */
};

/* One backend's new state, for the control thread to serve. */
struct health_change {
	uint32_t sid;                 /* its id in the state table */
	bool up;
	uint64_t since_ms;
};

/* Called on the watcher thread after one or more state changes (bursts are
 * coalesced: at most one call per watcher loop iteration). It must not
 * block for long: typically it writes to an eventfd. */
typedef void (*health_changed_fn)(void *arg);

/* Starts watching every backend of cfg whose check type is not none.
 * Backends without checks are always up. A checked backend starts UP
 * (so a restart does not blackhole traffic) unless its first `fall` probes
 * fail. Each checked backend gets an id in states (bstate.h) that it keeps
 * across reconfigurations while its key (zone, service, address, port,
 * check settings) stays; the watcher never writes the words itself: the
 * control thread applies health_take_changes. Returns NULL with err set on
 * failure. cfg must stay valid until health_reconfigure or health_stop,
 * states until health_stop. */
struct health *health_start(const struct config *cfg, struct bstate *states,
                            health_changed_fn cb, void *arg, char *err, size_t errlen);
/* Moves up to max queued state changes (oldest first; one per backend,
 * its latest) into out; returns how many. Ids of backends dropped by a
 * reconfiguration are never returned after it. Any thread (the control
 * thread). */
size_t health_take_changes(struct health *h, struct health_change *out, size_t max);
/* The state id of backend bi of service si of zone zi of the current
 * config (0: not checked). Control thread only, between reconfigurations
 * (the zone builder's zone_sid_fn). */
uint32_t health_sid(void *h, size_t zi, size_t si, size_t bi);
/* Switches to a new config (after a reload): backends with the same zone,
 * service name, address, port and check settings keep their state and
 * counters; new ones start UP. Returns 0, or -1 (old config still used). */
int health_reconfigure(struct health *h, const struct config *cfg);
/* State of backend bi of service si of zone zi of the current config.
 * Thread-safe. Returns false (and fills nothing) if out of range. */
bool health_get(struct health *h, size_t zi, size_t si, size_t bi, struct health_state *out);
/* State of the checked backend with id sid (health_sid). Thread-safe.
 * false when no backend of the current config has that id. */
bool health_get_sid(struct health *h, uint32_t sid, struct health_state *out);
/* Check durations, for a Prometheus histogram: buckets[i] counts checks
 * that took at most health_hist_le_ms[i] ms (not cumulative; longer ones
 * only in count), sum in ms. Thread-safe. */
enum { HEALTH_HIST_BUCKETS = 11 };
extern const uint32_t health_hist_le_ms[HEALTH_HIST_BUCKETS];
void health_histogram(struct health *h, uint64_t *buckets, uint64_t *count, uint64_t *sum_ms);

/* Whether that backend is probed (check type other than none). Thread-safe. */
bool health_checked(struct health *h, size_t zi, size_t si, size_t bi);
/* True once every probed backend has had at least one probe (for /ready). */
bool health_first_round_done(struct health *h);
/* Stops the thread and frees everything; health_stop(NULL) is a no-op. */
void health_stop(struct health *h);

/* How long /ready waits for the first checks of cfg at most (ms): 2 x the
 * longest check timeout (a probe started at once would be done, with room
 * to spare), capped at HEALTH_READY_BOUND_MAX_MS. Backends not probed by
 * then count as up, as they do in answers. Pure over cfg. */
enum { HEALTH_READY_BOUND_MAX_MS = 30000 };
unsigned health_ready_bound_ms(const struct config *cfg);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t health_now_ms(void);

#endif

/* backend_fmt.h -- one model of a backend's state for every view: the
 * CHAOS status answer (query.c), /status.json and /metrics (status.c). Not
 * the state itself (health.c) nor how views lay it out. */
#ifndef MESHDNS_BACKEND_FMT_H
#define MESHDNS_BACKEND_FMT_H

#include <stdbool.h>
#include <stdint.h>

#include "health.h"
#include "zone.h"

struct backend_view {
	bool up;                      /* as served: the snapshot's state */
	bool checked;                 /* probed by the watcher */
	uint32_t weight;              /* configured */
	uint32_t effective;           /* used for balancing now: slow start included, 0 when down */
	uint16_t port;                /* its own, or the service's first */
	uint64_t since_s;             /* seconds in its current state (since start if it never changed) */
	uint64_t checks, transitions;
	uint32_t last_ms;             /* duration of the last check */
	char addr[48];                /* 10.0.0.1 or [2001:db8::1] */
	char result[96];              /* last check: none, ok, http 200, timeout after 300 ms,
	                               * connect: Connection refused, or strerror */
	char last[112];               /* result with its duration: "http 200/3ms" ("none",
	                               * "timeout after 300 ms" as they are) */
};

/* Fills v for backend b of svc. hs is the watcher's state (NULL: none, e.g.
 * no watcher), checked whether the watcher probes it, now_ms
 * CLOCK_MONOTONIC ms (health_now_ms) and uptime_s the seconds since dnsd
 * started, used for a backend whose state never changed. Pure: no
 * allocation, callable from a query worker. */
void backend_fmt(struct backend_view *v, const struct zone_service *svc,
                 const struct zone_backend *b, const struct health_state *hs, bool checked,
                 uint64_t now_ms, uint64_t uptime_s);

/* Seconds since dnsd started (metrics_global.start_time_s, wall clock);
 * 0 before it is set. */
uint64_t backend_fmt_uptime_s(void);

/* The text of a check result: last_code (HTTP status, 0 connect ok, -errno)
 * of a check that took ms. Shared with health.c's log lines in spirit:
 * "timeout after N ms", "connect: <strerror>". */
void backend_fmt_result(int32_t last_code, uint64_t checks, uint32_t ms, char *out, size_t cap);

#endif

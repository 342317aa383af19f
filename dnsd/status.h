/* status.h -- what the HTTP endpoint shows about zones, services and
 * backends: /status.json, the backend metrics of /metrics, /ready, and the
 * self-refreshing HTML page. Reads the current snapshot (the caller is an
 * online RCU reader) and the health watcher's live state. */
#ifndef MESHDNS_STATUS_H
#define MESHDNS_STATUS_H

#include <stdbool.h>
#include <stdint.h>

#include "health.h"
#include "util/textbuf.h"
#include "zone.h"

/* {"generation":..,"zones":[{"name":..,"serial":..,"services":[{..,
 * "backends":[{"name","address","port","state","checked","weight",
 * "effective_weight","priority","locality","since_seconds","checks",
 * "transitions","last_result","last_check_ms"}]}]}]}; h may be NULL. */
void status_json(struct textbuf *tb, const struct zone_snapshot *snap, struct health *h,
                 uint64_t now_ms);
/* dnsd_backend_up, dnsd_backend_effective_weight, dnsd_backend_transitions_total,
 * dnsd_backend_check_duration_seconds (last check) per service and backend. */
void status_metrics(struct textbuf *tb, const struct zone_snapshot *snap, struct health *h,
                    uint64_t now_ms);

/* The status page: static HTML + inline script polling /status.json. */
extern const char status_html[];

#endif

/* backend_fmt.c -- a backend's state as text and numbers, the same for the
 * CHAOS status answer, /status.json and /metrics; see backend_fmt.h. */
#include "backend_fmt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/addr.h"
#include "balance.h"
#include "metrics.h"

uint64_t backend_fmt_uptime_s(void)
{
	uint64_t start = __atomic_load_n(&metrics_global.start_time_s, __ATOMIC_RELAXED);
	uint64_t now = (uint64_t)time(NULL);
	return start && now > start ? now - start : 0;
}

void backend_fmt_result(int32_t last_code, uint64_t checks, uint32_t ms, char *out, size_t cap)
{
	if (checks == 0)
		snprintf(out, cap, "none");
	else if (last_code > 0)
		snprintf(out, cap, "http %d", last_code);
	else if (last_code == 0)
		snprintf(out, cap, "ok");
	else if (last_code == -ETIMEDOUT)
		snprintf(out, cap, "timeout after %u ms", ms);   /* as the DOWN log line */
	else if (last_code == -ECONNREFUSED || last_code == -EHOSTUNREACH ||
	         last_code == -ENETUNREACH || last_code == -EADDRNOTAVAIL)
		snprintf(out, cap, "connect: %s", strerror(-last_code));
	else
		snprintf(out, cap, "%s", strerror(-last_code));
}

void backend_fmt(struct backend_view *v, const struct zone_service *svc,
                 const struct zone_backend *b, const struct health_state *hs, bool checked,
                 uint64_t now_ms, uint64_t uptime_s)
{
	memset(v, 0, sizeof(*v));
	v->up = zone_backend_up(b);
	v->checked = checked;
	v->weight = b->weight;
	/* A down backend gets no traffic whatever its weight would be. */
	v->effective = v->up ? balance_weight(svc, b, now_ms) : 0;
	v->port = b->port ? b->port : svc->nports ? svc->ports[0].port : 0;
	addr_text(b->family, b->addr, -1, true, v->addr, sizeof(v->addr));
	/* since_ms 0: never changed since the watcher took the backend, which
	 * for backends of the file is dnsd's start. */
	if (hs && hs->since_ms && now_ms >= hs->since_ms)
		v->since_s = (now_ms - hs->since_ms) / 1000;
	else
		v->since_s = uptime_s;
	if (hs) {
		v->checks = hs->checks;
		v->transitions = hs->transitions;
		v->last_ms = hs->last_ms;
	}
	backend_fmt_result(hs ? hs->last_code : 0, v->checks, v->last_ms, v->result,
	                   sizeof(v->result));
	if (v->checks == 0 || (hs && hs->last_code == -ETIMEDOUT))
		snprintf(v->last, sizeof(v->last), "%s", v->result);
	else
		snprintf(v->last, sizeof(v->last), "%s/%ums", v->result, v->last_ms);
}

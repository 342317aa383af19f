/* status.c -- zones, services and backends as JSON and Prometheus gauges;
 * see status.h. Off the query path: allocates freely. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/addr.h"
#include "backend_fmt.h"
#include "balance.h"
#include "status.h"
#include "dns/wire.h"

/* The services of zone z in config order (by si). Caller frees. */
static const struct zone_service **zone_services(const struct zone *z, size_t *n)
{
	const struct zone_service **v = malloc((z->nservices + 1) * sizeof(*v));
	*n = v ? z->nservices : 0;
	for (size_t i = 0; i < *n; i++)
		v[i] = zone_slot_service(z->slots[i]);
	return v;
}

static void name_text(const uint8_t *name, size_t len, char *out, size_t cap)
{
	if (wire_name_to_text(name, len, out, cap) < 0)
		snprintf(out, cap, "?");
}

static void backend_addr(const struct zone_backend *b, char *out, size_t cap)
{
	addr_text(b->family, b->addr, -1, false, out, cap);
}

/* Backend i of svc through backend_fmt, the model every view shares. */
static void backend_view_of(struct backend_view *v, const struct zone_service *svc, unsigned i,
                            struct health *h, uint64_t now_ms, uint64_t uptime_s)
{
	struct health_state hs;
	uint32_t sid = svc->backends[i].sid;
	bool have = h && sid && health_get_sid(h, sid, &hs);
	bool checked = h && sid;
	backend_fmt(v, svc, &svc->backends[i], have ? &hs : NULL, checked, now_ms, uptime_s);
}

void status_json(struct textbuf *tb, const struct zone_snapshot *snap, struct health *h,
                 uint64_t now_ms)
{
	char buf[DNS_NAME_MAX * 4 + 8], addr[INET6_ADDRSTRLEN];
	uint64_t uptime = backend_fmt_uptime_s();
	tb_printf(tb, "{\"generation\":%llu,\"zones\":[",
	          snap ? (unsigned long long)snap->generation : 0ULL);
	for (unsigned zi = 0; snap && zi < snap->nzones; zi++) {
		const struct zone *z = &snap->zones[zi];
		name_text(z->origin, z->originlen, buf, sizeof(buf));
		tb_printf(tb, "%s{\"name\":", zi ? "," : "");
		tb_json_str(tb, buf);
		tb_printf(tb, ",\"serial\":%u,\"services\":[", zone_serial(z));
		size_t ns;
		const struct zone_service **svcs = zone_services(z, &ns);
		for (size_t k = 0; k < ns; k++) {
			const struct zone_service *svc = svcs[k];
			name_text(svc->owner, svc->ownerlen, buf, sizeof(buf));
			unsigned up = 0;
			for (unsigned i = 0; i < svc->nbackends; i++)
				up += zone_backend_up(&svc->backends[i]);
			tb_printf(tb, "%s{\"name\":", k ? "," : "");
			tb_json_str(tb, buf);
			tb_printf(tb, ",\"policy\":\"%s\",\"ttl\":%u,\"max_answers\":%u,\"fail_open\":%s,"
			              "\"healthy\":%u,\"backends\":[",
			          cfg_policy_name(svc->policy), svc->ttl, svc->max_answers,
			          svc->fail_open ? "true" : "false", up);
			for (unsigned i = 0; i < svc->nbackends; i++) {
				const struct zone_backend *b = &svc->backends[i];
				struct backend_view v;
				backend_view_of(&v, svc, i, h, now_ms, uptime);
				backend_addr(b, addr, sizeof(addr));
				char bname[DNS_LABEL_MAX + 1];
				tb_printf(tb, "%s{\"name\":", i ? "," : "");
				tb_json_str(tb, zone_backend_name(b, bname, sizeof(bname)));
				tb_printf(tb, ",\"address\":\"%s\",\"port\":%u,\"state\":\"%s\",\"checked\":%s,"
				              "\"weight\":%u,\"effective_weight\":%u,\"priority\":%u,\"locality\":",
				          addr, v.port, v.up ? "up" : "down", v.checked ? "true" : "false",
				          v.weight, v.effective, b->priority);
				if (zone_backend_locality(b))
					tb_json_str(tb, zone_backend_locality(b));
				else
					tb_printf(tb, "null");
				tb_printf(tb, ",\"since_seconds\":%llu,\"checks\":%llu,\"transitions\":%llu,"
				              "\"last_result\":", (unsigned long long)v.since_s,
				          (unsigned long long)v.checks, (unsigned long long)v.transitions);
				tb_json_str(tb, v.result);
				tb_printf(tb, ",\"last_check\":");
				tb_json_str(tb, v.last);
				tb_printf(tb, ",\"last_check_ms\":%u,\"source\":\"%s\"", v.last_ms,
				          b->source == CFG_SRC_ETCD ? "etcd"
				          : b->source == CFG_SRC_UPDATE ? "update" : "yaml");
				if (zone_backend_src_key(b)) {
					tb_printf(tb, ",\"key\":");
					tb_json_str(tb, zone_backend_src_key(b));
				}
				tb_printf(tb, "}");
			}
			tb_printf(tb, "]}");
		}
		free(svcs);
		tb_printf(tb, "]}");
	}
	tb_printf(tb, "]}\n");
}

/* A Prometheus label value: \, " and newline escaped. Our names and
 * addresses have none, but a locality label might. */
static void label(struct textbuf *tb, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			tb_printf(tb, "\\%c", *s);
		else if (*s == '\n')
			tb_printf(tb, "\\n");
		else
			tb_put(tb, s, 1);
	}
}

/* dnsd_health_check_duration_seconds, over every check since start. */
static void check_histogram(struct textbuf *tb, struct health *h)
{
	uint64_t b[HEALTH_HIST_BUCKETS], count, sum_ms;
	health_histogram(h, b, &count, &sum_ms);
	tb_printf(tb, "# HELP dnsd_health_check_duration_seconds Duration of health checks.\n"
	              "# TYPE dnsd_health_check_duration_seconds histogram\n");
	uint64_t cum = 0;
	for (unsigned i = 0; i < HEALTH_HIST_BUCKETS; i++) {
		cum += b[i];
		tb_printf(tb, "dnsd_health_check_duration_seconds_bucket{le=\"%g\"} %llu\n",
		          health_hist_le_ms[i] / 1000.0, (unsigned long long)cum);
	}
	tb_printf(tb,
	          "dnsd_health_check_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
	          "dnsd_health_check_duration_seconds_sum %.3f\n"
	          "dnsd_health_check_duration_seconds_count %llu\n",
	          (unsigned long long)count, (double)sum_ms / 1000.0, (unsigned long long)count);
}

void status_metrics(struct textbuf *tb, const struct zone_snapshot *snap, struct health *h,
                    uint64_t now_ms)
{
	if (h)
		check_histogram(tb, h);
	static const char *const head[4] = {
		"# HELP dnsd_backend_up 1 if the backend is served as healthy.\n"
		"# TYPE dnsd_backend_up gauge\n",
		"# HELP dnsd_backend_effective_weight Weight used for balancing now (slow start included; 0 when down).\n"
		"# TYPE dnsd_backend_effective_weight gauge\n",
		"# HELP dnsd_backend_transitions_total Up/down state changes.\n"
		"# TYPE dnsd_backend_transitions_total counter\n",
		"# HELP dnsd_backend_check_duration_seconds Duration of the last health check.\n"
		"# TYPE dnsd_backend_check_duration_seconds gauge\n",
	};
	static const char *const metric[4] = {
		"dnsd_backend_up", "dnsd_backend_effective_weight", "dnsd_backend_transitions_total",
		"dnsd_backend_check_duration_seconds",
	};
	char svcname[DNS_NAME_MAX * 4 + 8], addr[INET6_ADDRSTRLEN];
	uint64_t uptime = backend_fmt_uptime_s();
	for (int m = 0; m < 4; m++) {
		tb_printf(tb, "%s", head[m]);
		for (unsigned zi = 0; snap && zi < snap->nzones; zi++) {
			size_t ns;
			const struct zone_service **svcs = zone_services(&snap->zones[zi], &ns);
			for (size_t k = 0; k < ns; k++) {
				const struct zone_service *svc = svcs[k];
				name_text(svc->owner, svc->ownerlen, svcname, sizeof(svcname));
				for (unsigned i = 0; i < svc->nbackends; i++) {
					const struct zone_backend *b = &svc->backends[i];
					struct backend_view v;
					backend_view_of(&v, svc, i, h, now_ms, uptime);
					if (m >= 2 && !v.checked)
						continue;
					backend_addr(b, addr, sizeof(addr));
					tb_printf(tb, "%s{service=\"", metric[m]);
					label(tb, svcname);
					tb_printf(tb, "\",backend=\"");
					char bname[DNS_LABEL_MAX + 1];
					label(tb, zone_backend_name(b, bname, sizeof(bname)));
					tb_printf(tb, "\",address=\"%s\",port=\"%u\"} ", addr, v.port);
					switch (m) {
					case 0: tb_printf(tb, "%d\n", v.up ? 1 : 0); break;
					case 1: tb_printf(tb, "%u\n", v.effective); break;
					case 2: tb_printf(tb, "%llu\n", (unsigned long long)v.transitions); break;
					default: tb_printf(tb, "%.3f\n", (double)v.last_ms / 1000.0); break;
					}
				}
			}
			free(svcs);
		}
	}
}

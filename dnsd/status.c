/* status.c -- zones, services and backends as JSON and Prometheus gauges;
 * see status.h. Off the query path: allocates freely. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balance.h"
#include "status.h"
#include "wire.h"

static const char *const policy_name[] = { "weighted", "round-robin", "hash", "failover",
	                                       "locality" };

/* The services of zone z in config order (by si). Caller frees. */
static const struct zone_service **zone_services(const struct zone *z, size_t *n)
{
	const struct zone_service **v = malloc((z->nservices + 1) * sizeof(*v));
	*n = v ? z->nservices : 0;
	for (size_t i = 0; i < *n; i++)
		v[i] = &z->services[i];
	return v;
}

static void name_text(const uint8_t *name, size_t len, char *out, size_t cap)
{
	if (wire_name_to_text(name, len, out, cap) < 0)
		snprintf(out, cap, "?");
}

static void backend_addr(const struct zone_backend *b, char *out, size_t cap)
{
	if (!inet_ntop(b->family, b->addr, out, (socklen_t)cap))
		snprintf(out, cap, "?");
}

static uint16_t backend_port(const struct zone_service *svc, const struct zone_backend *b)
{
	return b->port ? b->port : svc->nports ? svc->ports[0].port : 0;
}

static void last_result(const struct health_state *hs, bool have, char *out, size_t cap)
{
	if (!have || hs->checks == 0)
		snprintf(out, cap, "none");
	else if (hs->last_code > 0)
		snprintf(out, cap, "http %d", hs->last_code);
	else if (hs->last_code == 0)
		snprintf(out, cap, "ok");
	else
		snprintf(out, cap, "%s", strerror(-hs->last_code));
}

void status_json(struct textbuf *tb, const struct zone_snapshot *snap, struct health *h,
                 uint64_t now_ms)
{
	char buf[DNS_NAME_MAX * 4 + 8], addr[INET6_ADDRSTRLEN], last[96];
	tb_printf(tb, "{\"generation\":%llu,\"zones\":[",
	          snap ? (unsigned long long)snap->generation : 0ULL);
	for (unsigned zi = 0; snap && zi < snap->nzones; zi++) {
		const struct zone *z = &snap->zones[zi];
		name_text(z->origin, z->originlen, buf, sizeof(buf));
		tb_printf(tb, "%s{\"name\":", zi ? "," : "");
		tb_json_str(tb, buf);
		tb_printf(tb, ",\"serial\":%u,\"services\":[", z->serial);
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
			          policy_name[svc->policy], svc->ttl, svc->max_answers,
			          svc->fail_open ? "true" : "false", up);
			for (unsigned i = 0; i < svc->nbackends; i++) {
				const struct zone_backend *b = &svc->backends[i];
				struct health_state hs;
				memset(&hs, 0, sizeof(hs));
				bool have = h && health_get(h, svc->zi, svc->si, i, &hs);
				bool checked = h && health_checked(h, svc->zi, svc->si, i);
				backend_addr(b, addr, sizeof(addr));
				last_result(&hs, have, last, sizeof(last));
				double since = have && hs.since_ms && now_ms > hs.since_ms
				                   ? (double)(now_ms - hs.since_ms) / 1000.0
				                   : -1;
				tb_printf(tb, "%s{\"name\":", i ? "," : "");
				tb_json_str(tb, b->name ? b->name : "");
				tb_printf(tb, ",\"address\":\"%s\",\"port\":%u,\"state\":\"%s\",\"checked\":%s,"
				              "\"weight\":%u,\"effective_weight\":%u,\"priority\":%u,\"locality\":",
				          addr, backend_port(svc, b), zone_backend_up(b) ? "up" : "down",
				          checked ? "true" : "false", b->weight,
				          zone_backend_up(b) ? balance_weight(svc, b, now_ms) : 0, b->priority);
				if (b->locality)
					tb_json_str(tb, b->locality);
				else
					tb_printf(tb, "null");
				tb_printf(tb, ",\"since_seconds\":");
				if (since >= 0)
					tb_printf(tb, "%.3f", since);
				else
					tb_printf(tb, "null");
				tb_printf(tb, ",\"checks\":%llu,\"transitions\":%llu,\"last_result\":",
				          (unsigned long long)hs.checks, (unsigned long long)hs.transitions);
				tb_json_str(tb, last);
				tb_printf(tb, ",\"last_check_ms\":%u}", hs.last_ms);
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
					struct health_state hs;
					memset(&hs, 0, sizeof(hs));
					bool have = h && health_get(h, svc->zi, svc->si, i, &hs);
					if (m >= 2 && !(h && health_checked(h, svc->zi, svc->si, i)))
						continue;
					backend_addr(b, addr, sizeof(addr));
					tb_printf(tb, "%s{service=\"", metric[m]);
					label(tb, svcname);
					tb_printf(tb, "\",backend=\"");
					label(tb, b->name ? b->name : "");
					tb_printf(tb, "\",address=\"%s\",port=\"%u\"} ", addr, backend_port(svc, b));
					switch (m) {
					case 0: tb_printf(tb, "%d\n", zone_backend_up(b) ? 1 : 0); break;
					case 1:
						tb_printf(tb, "%u\n", zone_backend_up(b) ? balance_weight(svc, b, now_ms) : 0);
						break;
					case 2:
						tb_printf(tb, "%llu\n", (unsigned long long)(have ? hs.transitions : 0));
						break;
					default:
						tb_printf(tb, "%.3f\n", have ? (double)hs.last_ms / 1000.0 : 0.0);
						break;
					}
				}
			}
			free(svcs);
		}
	}
}

/* forwarding.c -- names outside our zones, as the config asks: the cache
 * and the forwarder built from it (upstreams from the list or from
 * resolv.conf, never our own addresses), their /metrics, their counters
 * logged at the end. Not the forwarding itself (forward.c, cache.c). */
#include "forwarding.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/addr.h"
#include "cache.h"
#include "config.h"
#include "forward.h"
#include "util/log.h"
#include "metrics.h"
#include "util/textbuf.h"

struct forwarding {
	struct forward *forwarder;
	struct cache *cache;
	uint16_t payload;             /* the EDNS size of our own SERVFAIL answers */
};

/* Forwarder and cache counters for /metrics (names as CoreDNS's cache and
 * forward plugins where the meaning is the same). */
static void render_metrics(struct textbuf *tb, void *arg)
{
	const struct forwarding *fw = arg;
	struct forward_stats fs;
	struct cache_stats cs;
	memset(&fs, 0, sizeof(fs));
	memset(&cs, 0, sizeof(cs));
	forward_stats(fw->forwarder, &fs);
	cache_stats(fw->cache, &cs);
	tb_printf(tb,
	          "# HELP dnsd_cache_hits_total Answers served from the cache.\n"
	          "# TYPE dnsd_cache_hits_total counter\n"
	          "dnsd_cache_hits_total %llu\n"
	          "# HELP dnsd_cache_misses_total Cache lookups that missed.\n"
	          "# TYPE dnsd_cache_misses_total counter\n"
	          "dnsd_cache_misses_total %llu\n"
	          "# HELP dnsd_cache_entries Answers in the cache.\n"
	          "# TYPE dnsd_cache_entries gauge\n"
	          "dnsd_cache_entries %llu\n"
	          "# HELP dnsd_cache_evictions_total Entries evicted to stay within max-entries.\n"
	          "# TYPE dnsd_cache_evictions_total counter\n"
	          "dnsd_cache_evictions_total %llu\n"
	          "# HELP dnsd_forward_upstream_queries_total Queries sent upstream.\n"
	          "# TYPE dnsd_forward_upstream_queries_total counter\n"
	          "dnsd_forward_upstream_queries_total %llu\n"
	          "# HELP dnsd_forward_responses_total Upstream answers passed on.\n"
	          "# TYPE dnsd_forward_responses_total counter\n"
	          "dnsd_forward_responses_total %llu\n"
	          "# HELP dnsd_forward_errors_total SERVFAIL to the client, by reason.\n"
	          "# TYPE dnsd_forward_errors_total counter\n"
	          "dnsd_forward_errors_total{reason=\"upstream\"} %llu\n"
	          "dnsd_forward_errors_total{reason=\"max-outstanding\"} %llu\n"
	          "# HELP dnsd_forward_coalesced_total Queries that waited for the same question "
	          "already upstream.\n"
	          "# TYPE dnsd_forward_coalesced_total counter\n"
	          "dnsd_forward_coalesced_total %llu\n"
	          "# HELP dnsd_forward_ignored_total UDP datagrams from upstreams that answered no "
	          "query of ours.\n"
	          "# TYPE dnsd_forward_ignored_total counter\n"
	          "dnsd_forward_ignored_total %llu\n"
	          "# HELP dnsd_forward_tcp_total Queries asked again over TCP (truncated over UDP).\n"
	          "# TYPE dnsd_forward_tcp_total counter\n"
	          "dnsd_forward_tcp_total %llu\n",
	          (unsigned long long)cs.hits, (unsigned long long)cs.misses,
	          (unsigned long long)cs.entries, (unsigned long long)cs.evictions,
	          (unsigned long long)fs.forwarded, (unsigned long long)fs.answered,
	          (unsigned long long)fs.failed, (unsigned long long)fs.over_cap,
	          (unsigned long long)fs.coalesced, (unsigned long long)fs.bad,
	          (unsigned long long)fs.via_tcp);
	tb_printf(tb, "# HELP dnsd_forward_request_duration_seconds Upstream round trips, "
	              "answered or failed.\n"
	              "# TYPE dnsd_forward_request_duration_seconds histogram\n");
	uint64_t cum = 0;
	for (unsigned b = 0; b < FORWARD_NBUCKETS; b++) {
		cum += fs.dur_bucket[b];
		tb_printf(tb, "dnsd_forward_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
		          forward_bucket_us[b] / 1e6, (unsigned long long)cum);
	}
	tb_printf(tb, "dnsd_forward_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
	              "dnsd_forward_request_duration_seconds_sum %.6f\n"
	              "dnsd_forward_request_duration_seconds_count %llu\n",
	          (unsigned long long)fs.dur_count, (double)fs.dur_sum_us / 1e6,
	          (unsigned long long)fs.dur_count);
}

/* The upstreams to use: the configured list or resolv.conf's, without our
 * own addresses (forwarding to ourselves would loop: CoreDNS exits on
 * such a loop, we drop the entry). 0, or -1 after logging. */
static int upstreams(const struct config *cfg, const struct cfg_listen *listen,
                             size_t nlisten, struct cfg_listen *out, size_t *n)
{
	const struct cfg_forward *fc = &cfg->forward;
	struct cfg_listen all[FORWARD_UPSTREAMS_MAX];
	size_t nall = 0;
	char err[256];
	if (fc->resolv_conf) {
		if (forward_read_resolv_conf(fc->resolv_conf, all, FORWARD_UPSTREAMS_MAX, &nall, err,
		                             sizeof(err)) == -1) {
			log_err("forward: %s", err);
			return -1;
		}
	} else {
		nall = fc->nupstreams < FORWARD_UPSTREAMS_MAX ? fc->nupstreams : FORWARD_UPSTREAMS_MAX;
		memcpy(all, fc->upstreams, nall * sizeof(*all));
	}
	*n = 0;
	for (size_t i = 0; i < nall; i++) {
		char one[80];
		addr_sockaddr_text((const struct sockaddr *)&all[i].ss, one, sizeof(one));
		if (forward_is_self(&all[i], listen, nlisten)) {
			log_warn("forward: upstream %s is this server's own address, ignored", one);
			continue;
		}
		out[(*n)++] = all[i];
	}
	return 0;
}

int forwarding_start(const struct config *cfg, const struct cfg_listen *listen, size_t nlisten,
                     const struct guard *guard, struct forwarding **out)
{
	*out = NULL;
	const struct cfg_forward *fc = &cfg->forward;
	if (!fc->nupstreams && !fc->resolv_conf)
		return 0;
	struct cfg_listen ups[FORWARD_UPSTREAMS_MAX];
	size_t nups;
	if (upstreams(cfg, listen, nlisten, ups, &nups) == -1)
		return -1;
	if (nups == 0) {
		log_warn("forward: no usable upstream%s%s; names outside our zones are REFUSED",
		         fc->resolv_conf ? " in " : "", fc->resolv_conf ? fc->resolv_conf : "");
		return 0;
	}
	struct cache_settings cs = {
		.max_entries = cfg->cache.max_entries,
		.min_ttl = cfg->cache.min_ttl,
		.max_ttl = cfg->cache.max_ttl,
		.neg_max_ttl = cfg->cache.neg_max_ttl,
		.udp_max_payload = cfg->udp_max_payload,
	};
	struct forwarding *fw = calloc(1, sizeof(*fw));
	if (!fw || !(fw->cache = cache_new(&cs))) {
		free(fw);
		log_err("forward: out of memory for the cache");
		return -1;
	}
	fw->payload = cfg->udp_max_payload;
	struct forward_settings fs = {
		.upstreams = ups,
		.nupstreams = nups,
		.timeout_ms = fc->timeout_ms,
		.max_outstanding = fc->max_outstanding,
		.tcp = fc->tcp,
		.udp_max_payload = cfg->udp_max_payload,
		.cache = fw->cache,
		.guard = guard,
	};
	char err[256];
	fw->forwarder = forward_start(&fs, err, sizeof(err));
	if (!fw->forwarder) {
		log_err("%s", err);
		cache_free(fw->cache);
		free(fw);
		return -1;
	}
	metrics_set_extra(render_metrics, fw);
	char list[512] = "";
	for (size_t i = 0, off = 0; i < nups && off < sizeof(list) - 80; i++) {
		char one[80];
		addr_sockaddr_text((const struct sockaddr *)&ups[i].ss, one, sizeof(one));
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", i ? " " : "", one);
	}
	log_info("forwarding names outside our zones to %s (%s, timeout %u ms, cache %u entries)",
	         list, fc->tcp ? "TCP" : "UDP", fc->timeout_ms, cfg->cache.max_entries);
	*out = fw;
	return 0;
}

struct forward *forwarding_forwarder(const struct forwarding *fw)
{
	return fw ? fw->forwarder : NULL;
}

struct cache *forwarding_cache(const struct forwarding *fw)
{
	return fw ? fw->cache : NULL;
}

uint16_t forwarding_payload(const struct forwarding *fw)
{
	return fw ? fw->payload : 0;
}

void forwarding_stop(struct forwarding *fw)
{
	if (fw)
		forward_stop(fw->forwarder);
}

void forwarding_free(struct forwarding *fw)
{
	if (!fw)
		return;
	metrics_set_extra(NULL, NULL);
	struct forward_stats fs;
	struct cache_stats cs;
	forward_stats(fw->forwarder, &fs);
	cache_stats(fw->cache, &cs);
	log_info("forward: %llu sent upstream, %llu answered, %llu SERVFAIL, %llu over "
	         "max-outstanding, %llu coalesced, %llu ignored datagrams, %llu rate-limited; "
	         "cache: %llu hits, %llu misses, %llu entries",
	         (unsigned long long)fs.forwarded, (unsigned long long)fs.answered,
	         (unsigned long long)fs.failed, (unsigned long long)fs.over_cap,
	         (unsigned long long)fs.coalesced, (unsigned long long)fs.bad,
	         (unsigned long long)fs.rrl_dropped,
	         (unsigned long long)cs.hits, (unsigned long long)cs.misses,
	         (unsigned long long)cs.entries);
	forward_free(fw->forwarder);
	cache_free(fw->cache);
	free(fw);
}

bool forwarding_config_equal(const struct config *a, const struct config *b)
{
	const struct cfg_forward *x = &a->forward, *y = &b->forward;
	if (x->nupstreams != y->nupstreams || x->timeout_ms != y->timeout_ms ||
	    x->max_outstanding != y->max_outstanding || x->tcp != y->tcp ||
	    memcmp(&a->cache, &b->cache, sizeof(a->cache)) != 0 ||
	    !x->resolv_conf != !y->resolv_conf ||
	    (x->resolv_conf && strcmp(x->resolv_conf, y->resolv_conf) != 0))
		return false;
	for (size_t i = 0; i < x->nupstreams; i++)
		if (memcmp(&x->upstreams[i], &y->upstreams[i], sizeof(x->upstreams[i])) != 0)
			return false;
	return true;
}

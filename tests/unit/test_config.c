/* test_config.c -- config.c: the example zones/mesh.yaml field by field,
 * defaults, listen and duration parsing, and invalid snippets, each checked
 * for the exact line:col of the node it is about. Run from the tree's root. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util/num.h"
#include "tap.h"

static struct config *load(const char *yaml)
{
	struct config *cfg = NULL;
	struct config_error err;

	if (config_load_string(yaml, strlen(yaml), "t.yaml", &cfg, &err) == -1) {
		diag("unexpected error: %s", err.msg);
		return NULL;
	}
	return cfg;
}

/* Expects yaml to fail with "t.yaml:<pos>: ..." (pos NULL: anywhere)
 * containing sub, and *out left alone. */
static void bad(const char *yaml, const char *pos, const char *sub, const char *what)
{
	struct config *sentinel = (struct config *)&sentinel;
	struct config *cfg = sentinel;
	struct config_error err;
	char prefix[64];

	int rc = config_load_string(yaml, strlen(yaml), "t.yaml", &cfg, &err);
	snprintf(prefix, sizeof(prefix), pos ? "t.yaml:%s: " : "t.yaml:", pos ? pos : "");
	bool good = rc == -1 && cfg == sentinel && strncmp(err.msg, prefix, strlen(prefix)) == 0 &&
	            strstr(err.msg, sub) != NULL;
	ok(good, "%s", what);
	if (!good)
		diag("want '%s...%s', got: %s", prefix, sub, rc == -1 ? err.msg : "success");
	if (rc == 0 && cfg != sentinel)
		config_free(cfg);
}

/* Compares a wire name with the text form "\4mesh\0" written as bytes. */
static bool name_is(const uint8_t *name, size_t len, const char *want, size_t wantlen)
{
	return len == wantlen && memcmp(name, want, len) == 0;
}

#define NAME_IS(n, l, lit) name_is((n), (l), (lit), sizeof(lit))

static uint16_t listen_port(const struct cfg_listen *l)
{
	if (l->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&l->ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)&l->ss)->sin6_port);
}

static const char *listen_addr(const struct cfg_listen *l, char *buf, size_t cap)
{
	const void *a = l->ss.ss_family == AF_INET ?
	                (const void *)&((const struct sockaddr_in *)&l->ss)->sin_addr :
	                (const void *)&((const struct sockaddr_in6 *)&l->ss)->sin6_addr;
	return inet_ntop(l->ss.ss_family, a, buf, (socklen_t)cap);
}

static void test_example(void)
{
	struct config *cfg = NULL;
	struct config_error err;
	char buf[64];

	int rc = config_load("zones/mesh.yaml", &cfg, &err);
	if (!ok(rc == 0 && cfg, "zones/mesh.yaml loads")) {
		diag("%s", err.msg);
		return;
	}
	is_str(cfg->path, "zones/mesh.yaml", "path kept");
	is_int(cfg->nlisten, 1, "one listen address");
	is_str(listen_addr(&cfg->listen[0], buf, sizeof(buf)), "127.0.0.1", "listen 127.0.0.1");
	is_int(listen_port(&cfg->listen[0]), 53, "listen port 53");
	is_int(cfg->listen[0].len, sizeof(struct sockaddr_in), "listen socklen");
	is_int(cfg->workers, 0, "workers 0");
	is_int(cfg->tcp_idle_timeout_ms, 10000, "tcp idle-timeout 10s");
	is_int(cfg->tcp_max_clients, 256, "tcp max-clients");
	is_int(cfg->udp_max_payload, 1232, "udp-max-payload");
	is_int(cfg->nlocalities, 0, "no localities");
	if (!is_int(cfg->nzones, 1, "one zone"))
		goto out;

	const struct cfg_zone *z = &cfg->zones[0];
	is_str(z->name, "mesh", "zone name as written");
	ok(NAME_IS(z->origin, z->originlen, "\4mesh"), "origin mesh.");
	is_int(z->ttl, 30, "zone ttl");
	is_int(z->line, 26, "zone line");
	is_int(z->col, 5, "zone col");
	ok(NAME_IS(z->soa.mname, z->soa.mnamelen, "\3ns1\4mesh"), "soa mname ns1.mesh.");
	ok(NAME_IS(z->soa.rname, z->soa.rnamelen, "\12hostmaster\4mesh"), "soa rname from mail");
	is_int(z->soa.serial, 0, "soa serial automatic");
	is_int(z->soa.refresh, 3600, "soa refresh 1h");
	is_int(z->soa.retry, 600, "soa retry 10m");
	is_int(z->soa.expire, 86400, "soa expire 1d");
	is_int(z->soa.minimum, 30, "soa minimum");
	is_int(z->soa.ttl, 30, "soa ttl defaults to the zone's");
	if (is_int(z->nns, 1, "one NS"))
		ok(NAME_IS(z->ns[0], z->nslen[0], "\3ns1\4mesh"), "NS ns1.mesh.");

	if (is_int(z->nrecords, 5, "five static records")) {
		const struct cfg_record *r = &z->records[0];
		ok(NAME_IS(r->owner, r->ownerlen, "\3ns1\4mesh"), "record 0 owner");
		is_int(r->type, DNS_TYPE_A, "record 0 A");
		is_int(r->ttl, 30, "record 0 ttl from the zone");
		ok(r->rdlen == 4 && memcmp(r->rdata, "\177\0\0\1", 4) == 0, "record 0 rdata");
		is_int(r->line, 45, "record 0 line");
		is_int(r->col, 9, "record 0 col");
		r = &z->records[1];
		is_int(r->type, DNS_TYPE_CNAME, "record 1 CNAME");
		is_int(r->ttl, 60, "record 1 ttl 60");
		ok(NAME_IS(r->rdata, r->rdlen, "\14user-service\4mesh"), "CNAME target completed");
		r = &z->records[2];
		ok(NAME_IS(r->owner, r->ownerlen, "\4mesh"), "@ is the apex");
		is_int(r->type, DNS_TYPE_TXT, "record 2 TXT");
		ok(r->rdlen == 21 && r->rdata[0] == 20 && memcmp(r->rdata + 1, "meshdns example zone", 20) == 0,
		   "bare TXT data is one string");
		r = &z->records[3];
		is_int(r->type, DNS_TYPE_MX, "record 3 MX");
		ok(r->rdlen == 2 + 11 && r->rdata[1] == 10 && memcmp(r->rdata + 2, "\4mail\4mesh", 11) == 0,
		   "MX rdata");
	}

	if (!is_int(z->nservices, 2, "two services"))
		goto out;
	const struct cfg_service *s = &z->services[0];
	is_str(s->name, "user-service", "service 0 name");
	ok(NAME_IS(s->owner, s->ownerlen, "\14user-service\4mesh"), "service 0 owner");
	is_int(s->ttl, 10, "service 0 ttl");
	is_int(s->policy, CFG_POLICY_WEIGHTED, "service 0 weighted");
	is_int(s->max_answers, 0, "max-answers default");
	ok(s->fail_open, "fail-open default true");
	is_int(s->slow_start_ms, 0, "slow-start default");
	is_int(s->line, 54, "service 0 line");
	is_int(s->col, 9, "service 0 col");
	if (is_int(s->nports, 1, "service 0 one port")) {
		is_str(s->ports[0].name, "http", "port name");
		is_int(s->ports[0].port, 5000, "port 5000");
		is_int(s->ports[0].proto, IPPROTO_TCP, "port proto tcp");
	}
	is_int(s->check.type, CFG_CHECK_TCP, "check tcp");
	is_int(s->check.interval_ms, 1000, "check interval");
	is_int(s->check.timeout_ms, 500, "check timeout");
	is_int(s->check.rise, 2, "check rise");
	is_int(s->check.fall, 3, "check fall");
	is_int(s->check.port, 0, "check port: the backend's");
	if (is_int(s->nbackends, 3, "service 0 three backends")) {
		const struct cfg_backend *b = &s->backends[0];
		is_str(b->name, "127-0-0-11", "backend name from the address");
		is_int(b->family, AF_INET, "backend family");
		ok(memcmp(b->addr, "\177\0\0\13", 4) == 0, "backend address");
		is_int(b->port, 0, "backend port: the service's");
		is_int(b->weight, 100, "backend weight default");
		is_int(b->priority, 0, "backend priority default");
		ok(b->locality == NULL, "no locality");
		is_int(cfg_backend_check(s, b)->type, CFG_CHECK_TCP, "backend inherits the check type");
		is_int(cfg_backend_check(s, b)->timeout_ms, 500, "backend inherits the timeout");
		ok(b->check == NULL, "the service's check is shared, not copied");
		is_int(b->line, 65, "backend line");
		is_int(b->col, 13, "backend col");
		is_int(s->backends[2].weight, 50, "backend 2 weight");
		is_str(s->backends[2].name, "127-0-0-13", "backend 2 name");
	}
	s = &z->services[1];
	is_str(s->name, "order-service", "service 1 name");
	is_int(s->policy, CFG_POLICY_ROUND_ROBIN, "service 1 round-robin");
	is_int(s->ports[0].port, 5001, "service 1 port 5001");
	if (is_int(s->nbackends, 3, "service 1 three backends")) {
		is_str(s->backends[0].name, "order-1", "explicit backend name");
		ok(memcmp(s->backends[2].addr, "\177\0\0\27", 4) == 0, "service 1 backend 2 address");
	}
out:
	config_free(cfg);
}

static void test_defaults(void)
{
	struct config *cfg = load("zones: [{name: Mesh.}]\n");
	char buf[64];

	if (!ok(cfg != NULL, "minimal config loads"))
		return;
	is_int(cfg->nlisten, 1, "default listen");
	is_str(listen_addr(&cfg->listen[0], buf, sizeof(buf)), "127.0.0.1", "default listen address");
	is_int(listen_port(&cfg->listen[0]), 53, "default listen port");
	is_int(cfg->udp_max_payload, 1232, "default udp-max-payload");
	is_int(cfg->tcp_idle_timeout_ms, 10000, "default idle timeout");
	is_int(cfg->tcp_max_clients, 256, "default max clients");
	const struct cfg_zone *z = &cfg->zones[0];
	is_str(z->name, "Mesh.", "name as written");
	ok(NAME_IS(z->origin, z->originlen, "\4mesh"), "origin lowercased");
	is_int(z->ttl, 30, "default zone ttl");
	ok(z->nns == 1 && NAME_IS(z->ns[0], z->nslen[0], "\2ns\4mesh"), "default NS ns.<zone>");
	ok(NAME_IS(z->soa.mname, z->soa.mnamelen, "\2ns\4mesh"), "default mname: first NS");
	ok(NAME_IS(z->soa.rname, z->soa.rnamelen, "\12hostmaster\4mesh"), "default rname");
	is_int(z->soa.refresh, 3600, "default refresh");
	is_int(z->soa.retry, 600, "default retry");
	is_int(z->soa.expire, 86400, "default expire");
	is_int(z->soa.minimum, 30, "default minimum");
	is_int(z->soa.ttl, 30, "default soa ttl");
	is_int(z->nrecords + z->nservices, 0, "nothing else");
	config_free(cfg);
	config_free(NULL);
	ok(1, "config_free(NULL) is a no-op");
}

/* The schema rows' defaults: applied to every section whether it is written
 * or not, kept for the keys a written section leaves out, replaced by the
 * keys it gives; and the same for services and backends made outside the
 * loader (config_service_defaults, config_backend_defaults). */
static void test_schema_defaults(void)
{
	struct config *cfg = load("zones: [{name: mesh., services: [{name: web, ports: {http: 80},\n"
	                          "  backends: [10.0.0.1]}]}]\n");
	if (!ok(cfg != NULL, "schema defaults: minimal config loads"))
		return;
	is_int(cfg->tcp_max_per_client, 64, "tcp max-per-client");
	ok(cfg->forward.timeout_ms == 2000 && cfg->forward.max_outstanding == 1000 &&
	   !cfg->forward.tcp, "forward: timeout, max-outstanding, tcp");
	ok(cfg->cache.max_entries == 10000 && cfg->cache.max_ttl == 86400 &&
	   cfg->cache.min_ttl == 0 && cfg->cache.neg_max_ttl == 3600, "cache");
	ok(cfg->cookies.enabled && !cfg->cookies.require, "cookies");
	ok(cfg->rrl.rate == 0 && cfg->rrl.window == 15 && cfg->rrl.slip == 2 &&
	   cfg->rrl.v4_prefix == 24 && cfg->rrl.v6_prefix == 56, "rrl");
	ok(cfg->rrl.nexempt == 2 && cfg->rrl.exempt[0].family == AF_INET &&
	   cfg->rrl.exempt[0].addr[0] == 127 && cfg->rrl.exempt[0].prefix == 8 &&
	   cfg->rrl.exempt[1].family == AF_INET6 && cfg->rrl.exempt[1].addr[15] == 1 &&
	   cfg->rrl.exempt[1].prefix == 128, "rrl exempt: loopback (a flow-list default)");
	ok(cfg->chaos.nallow == 2 && cfg->chaos.allow[0].prefix == 8 &&
	   cfg->chaos.allow[1].prefix == 128, "chaos allow: loopback");
	ok(cfg->etcd.nendpoints == 0 && cfg->etcd.dial_timeout_ms == 2000 &&
	   cfg->etcd.request_timeout_ms == 5000 && cfg->etcd.max_value_size == 4096 &&
	   cfg->etcd.prefix && strcmp(cfg->etcd.prefix, "/skydns/") == 0, "etcd");
	const struct cfg_service *s = &cfg->zones[0].services[0];
	ok(s->ttl == 30 && s->policy == CFG_POLICY_WEIGHTED && s->fail_open &&
	   s->max_answers == 0 && s->oversize == CFG_OVERSIZE_SUBSET && s->slow_start_ms == 0,
	   "service");
	ok(s->check.type == CFG_CHECK_NONE && s->check.interval_ms == 1000 &&
	   s->check.timeout_ms == 1000 && s->check.rise == 2 && s->check.fall == 3 &&
	   s->check.flap_limit == 0 && s->check.flap_window_ms == 60000 &&
	   s->check.flap_hold_ms == 60000 && s->check.initial == CFG_INITIAL_UP &&
	   s->check.path && strcmp(s->check.path, "/") == 0, "service check");
	ok(s->nports == 1 && s->ports[0].proto == IPPROTO_TCP, "port proto tcp");
	ok(s->nbackends == 1 && s->backends[0].weight == 100 && s->backends[0].priority == 0 &&
	   s->backends[0].port == 0, "backend given as an address");
	config_free(cfg);

	cfg = load("listen: 127.0.0.2:5300\n"
	           "rrl: {responses-per-second: 5, exempt: []}\ncache: {max-entries: 7}\n"
	           "tcp: {max-clients: 9}\netcd: {endpoints: 127.0.0.1:2379, prefix: /x}\n"
	           "zones: [{name: mesh., ttl: 60, soa: {retry: 5}, services: [{name: web,\n"
	           "  ports: {http: 80}, check: {type: tcp, path: /h},\n"
	           "  backends: [{address: 10.0.0.1, priority: 3}]}]}]\n");
	if (!ok(cfg != NULL, "schema defaults: sections with some keys load"))
		return;
	char buf[64];
	ok(cfg->nlisten == 1 && listen_port(&cfg->listen[0]) == 5300 &&
	   strcmp(listen_addr(&cfg->listen[0], buf, sizeof(buf)), "127.0.0.2") == 0,
	   "listen replaces the default");
	ok(cfg->rrl.rate == 5 && cfg->rrl.window == 15 && cfg->rrl.nexempt == 0,
	   "rrl: the keys given replace, the others keep their defaults");
	ok(cfg->cache.max_entries == 7 && cfg->cache.max_ttl == 86400, "cache: idem");
	ok(cfg->tcp_max_clients == 9 && cfg->tcp_idle_timeout_ms == 10000, "tcp: idem");
	ok(strcmp(cfg->etcd.prefix, "/x/") == 0 && cfg->etcd.dial_timeout_ms == 2000, "etcd: idem");
	const struct cfg_zone *z = &cfg->zones[0];
	ok(z->soa.retry == 5 && z->soa.refresh == 3600 && z->soa.ttl == 60, "soa: idem");
	s = &z->services[0];
	ok(s->ttl == 60 && s->check.type == CFG_CHECK_TCP && s->check.rise == 2 &&
	   strcmp(s->check.path, "/h") == 0, "service ttl from the zone; check: idem");
	ok(s->backends[0].weight == 100 && s->backends[0].priority == 3, "backend: idem");
	config_free(cfg);

	struct cfg_service sv;
	memset(&sv, 0, sizeof(sv));
	ok(config_service_defaults(&sv) == 0 && sv.fail_open && sv.check.fall == 3 &&
	   sv.check.path && strcmp(sv.check.path, "/") == 0 && sv.ttl == 0,
	   "config_service_defaults: the rows' defaults, not the ttl");
	config_service_clear(&sv);
	struct cfg_backend b;
	memset(&b, 0, sizeof(b));
	b.port = 99;
	config_backend_defaults(&b);
	ok(b.weight == 100 && b.priority == 0 && b.port == 0, "config_backend_defaults");
}

static void test_variants(void)
{
	char buf[64];
	struct config *cfg = load(
		"listen: [\"[::1]:5353\", 10.0.0.1, \"::2\", 10.0.0.2:1053]\n"
		"workers: 4\n"
		"tcp: {idle-timeout: 1500ms, max-clients: 10}\n"
		"udp-max-payload: 4096\n"
		"localities: {127.0.1.0/24: zone-a, \"fd00::/8\": zone-b, 10.1.1.1: host}\n"
		"zones:\n"
		"  - records: [{name: x, type: A, data: 10.0.0.9}]\n"
		"    ttl: 1h\n"
		"    soa: {rname: john.doe@example.org, serial: 42, ttl: 5m}\n"
		"    ns: [ns1, ns2.example.net.]\n"
		"    name: Sub.Mesh\n"
		"  - name: mesh\n"
		"    services:\n"
		"      - name: api.v1\n"
		"        policy: locality\n"
		"        fail-open: no\n"
		"        slow-start: 30s\n"
		"        max-answers: 2\n"
		"        ports: {http: 80, dns: {port: 53, proto: udp}}\n"
		"        backends:\n"
		"          - fd00::5\n"
		"          - {address: 10.0.0.5, port: 8080, locality: zone-a, priority: 2}\n"
		"          - {address: 10.0.0.5, port: 8081}\n"
		"        check: &chk {type: http, interval: 2s, timeout: 1s, path: /healthz,\n"
		"                     host: api, expect: [200, 204], port: 9}\n"
		"      - name: empty\n"
		"        ports: {http: 80}\n"
		"        check: *chk\n"
		"      - name: short\n"
		"        ports: {http: 80}\n"
		"        check: {interval: 200ms}\n"
		"        backends:\n"
		"          - {address: 10.0.0.7, check: {interval: 5s, expect: 301, type: https}}\n");
	if (!ok(cfg != NULL, "variant config loads"))
		return;
	if (is_int(cfg->nlisten, 4, "four listen addresses")) {
		is_str(listen_addr(&cfg->listen[0], buf, sizeof(buf)), "::1", "[::1]:5353");
		is_int(listen_port(&cfg->listen[0]), 5353, "[::1]:5353 port");
		is_int(cfg->listen[0].len, sizeof(struct sockaddr_in6), "v6 socklen");
		is_int(listen_port(&cfg->listen[1]), 53, "10.0.0.1 gets port 53");
		is_str(listen_addr(&cfg->listen[2], buf, sizeof(buf)), "::2", "bare ::2");
		is_int(listen_port(&cfg->listen[2]), 53, "::2 gets port 53");
		is_int(listen_port(&cfg->listen[3]), 1053, "10.0.0.2:1053");
	}
	is_int(cfg->workers, 4, "workers 4");
	is_int(cfg->tcp_idle_timeout_ms, 1500, "idle-timeout 1500ms");
	is_int(cfg->tcp_max_clients, 10, "max-clients 10");
	is_int(cfg->udp_max_payload, 4096, "udp-max-payload 4096");
	if (is_int(cfg->nlocalities, 3, "three localities")) {
		is_int(cfg->localities[0].family, AF_INET, "locality 0 v4");
		is_int(cfg->localities[0].prefix, 24, "locality 0 /24");
		ok(memcmp(cfg->localities[0].addr, "\177\0\1\0", 4) == 0, "locality 0 address");
		is_str(cfg->localities[0].label, "zone-a", "locality 0 label");
		is_int(cfg->localities[1].family, AF_INET6, "locality 1 v6");
		is_int(cfg->localities[1].prefix, 8, "locality 1 /8");
		is_int(cfg->localities[2].prefix, 32, "a bare address is a /32");
	}
	if (!is_int(cfg->nzones, 2, "two zones (one inside the other)"))
		goto out;
	const struct cfg_zone *z = &cfg->zones[0];
	ok(NAME_IS(z->origin, z->originlen, "\3sub\4mesh"), "name after the other keys");
	is_int(z->ttl, 3600, "ttl 1h");
	if (is_int(z->nrecords, 1, "one record"))
		is_int(z->records[0].ttl, 3600, "record ttl from a zone ttl written after it");
	ok(NAME_IS(z->soa.rname, z->soa.rnamelen, "\10john.doe\7example\3org"), "rname from mail");
	is_int(z->soa.serial, 42, "serial");
	is_int(z->soa.ttl, 300, "soa ttl 5m");
	ok(z->nns == 2 && NAME_IS(z->ns[1], z->nslen[1], "\3ns2\7example\3net"), "absolute NS");
	ok(NAME_IS(z->soa.mname, z->soa.mnamelen, "\3ns1\3sub\4mesh"), "mname: first NS");

	z = &cfg->zones[1];
	if (!is_int(z->nservices, 3, "three services"))
		goto out;
	const struct cfg_service *s = &z->services[0];
	ok(NAME_IS(s->owner, s->ownerlen, "\3api\2v1\4mesh"), "multi-label service name");
	is_int(s->policy, CFG_POLICY_LOCALITY, "policy locality");
	ok(!s->fail_open, "fail-open: no");
	is_int(s->slow_start_ms, 30000, "slow-start 30s");
	is_int(s->max_answers, 2, "max-answers");
	if (is_int(s->nports, 2, "two ports")) {
		is_int(s->ports[1].port, 53, "long-form port");
		is_int(s->ports[1].proto, IPPROTO_UDP, "proto udp");
	}
	if (is_int(s->nbackends, 3, "three backends")) {
		const struct cfg_backend *b = &s->backends[0];
		is_int(b->family, AF_INET6, "v6 backend");
		is_str(b->name, "fd00--5", "v6 name from the address");
		const struct cfg_check *bk = cfg_backend_check(s, b);
		is_int(bk->type, CFG_CHECK_HTTP, "check written after backends still applies");
		is_str(bk->path, "/healthz", "inherited path");
		is_str(bk->host, "api", "inherited host");
		is_int(bk->nexpect, 2, "inherited expect");
		is_int(bk->port, 9, "inherited check port");
		b = &s->backends[1];
		is_int(b->port, 8080, "backend port");
		is_int(b->priority, 2, "backend priority");
		is_str(b->locality, "zone-a", "backend locality");
		is_str(s->backends[2].name, "10-0-0-5", "same address, other port: same name");
	}
	s = &z->services[1];
	is_int(s->nbackends, 0, "a service without backends is allowed");
	is_int(s->check.interval_ms, 2000, "check from an alias");
	ok(s->check.nexpect == 2 && s->check.expect[1] == 204, "expect from an alias");
	s = &z->services[2];
	is_int(s->check.timeout_ms, 200, "unwritten timeout cut to a short interval");
	if (is_int(s->nbackends, 1, "one backend")) {
		const struct cfg_check *k = cfg_backend_check(s, &s->backends[0]);
		is_int(k->interval_ms, 5000, "backend overrides interval");
		is_int(k->timeout_ms, 200, "backend keeps the inherited timeout");
		is_int(k->type, CFG_CHECK_HTTPS, "backend overrides type");
		ok(k->nexpect == 1 && k->expect[0] == 301, "a single expect code");
		is_str(k->path, "/", "default path");
		ok(k->host == NULL, "no host");
	}
out:
	config_free(cfg);
}

/* The second example: every record type, through rdata.c. */
static void test_multi_zone(void)
{
	struct config *cfg = NULL;
	struct config_error err;

	if (!ok(config_load("zones/multi-zone.yaml", &cfg, &err) == 0, "zones/multi-zone.yaml loads")) {
		diag("%s", err.msg);
		return;
	}
	if (!is_int(cfg->nzones, 2, "two zones"))
		goto out;
	const struct cfg_zone *z = &cfg->zones[0];
	ok(NAME_IS(z->soa.rname, z->soa.rnamelen, "\10ops.team\7example\4test"), "rname with a dot");
	is_int(z->soa.serial, 2024010101, "fixed serial");
	ok(z->nns == 2 && NAME_IS(z->ns[1], z->nslen[1], "\3ns2\6backup\7example"), "outside NS");
	int seen = 0;
	for (size_t i = 0; i < z->nrecords; i++) {
		const struct cfg_record *r = &z->records[i];
		if (r->type == DNS_TYPE_TXT && r->ownerlen == 14) {
			seen |= 1;
			ok(r->rdlen == 15 && r->rdata[0] == 14 && memcmp(r->rdata + 1, "v=spf1 mx -all", 14) == 0,
			   "TXT with spaces is one string");
		} else if (r->type == DNS_TYPE_TXT) {
			seen |= 2;
			ok(r->rdlen == 13 && memcmp(r->rdata, "\5first\6second", 13) == 0,
			   "quoted TXT strings stay separate");
		} else if (r->type == DNS_TYPE_SRV) {
			seen |= 4;
			ok(r->rdlen >= 6 && memcmp(r->rdata, "\0\0\0\144\1\205", 6) == 0, "SRV numbers");
			ok(NAME_IS(r->owner, r->ownerlen, "\5_ldap\4_tcp\7example\4test"), "SRV owner");
		} else if (r->type == 65280) {
			seen |= 8;
			ok(r->rdlen == 4 && memcmp(r->rdata, "\12\0\0\1", 4) == 0, "RFC 3597 data");
		} else if (r->type == DNS_TYPE_PTR) {
			seen |= 16;
			ok(NAME_IS(r->rdata, r->rdlen, "\3www\7example\4test"), "PTR target completed");
		} else if (r->type == DNS_TYPE_A && r->owner[0] == 1 && r->owner[1] == '*') {
			seen |= 32;
		}
	}
	is_int(seen, 63, "TXT, SRV, TYPE65280, PTR and wildcard records present");
	z = &cfg->zones[1];
	if (is_int(z->nservices, 3, "three services")) {
		const struct cfg_service *s = &z->services[0];
		ok(NAME_IS(s->owner, s->ownerlen, "\3api\3svc\7example\4test"), "service in the inner zone");
		is_int(s->backends[0].family, AF_INET6, "IPv6 backend");
		is_str(s->backends[0].name, "fd00-a--10", "IPv6 backend name");
		ok(s->backends[2].check != NULL && s->backends[1].check == NULL,
		   "only the backend with a check of its own has one");
		is_int(cfg_backend_check(s, &s->backends[2])->interval_ms, 5000, "backend check override");
		is_int(cfg_backend_check(s, &s->backends[2])->timeout_ms, 1000, "inherited timeout");
		is_int(cfg_backend_check(s, &s->backends[1])->interval_ms, s->check.interval_ms,
		       "the others keep the service's interval");
		is_int(z->services[1].policy, CFG_POLICY_FAILOVER, "failover");
		ok(!z->services[1].fail_open, "fail-open false");
		is_int(z->services[1].check.timeout_ms, 500, "timeout cut to the 500ms interval");
		is_int(z->services[2].ports[0].proto, IPPROTO_UDP, "udp port");
	}
out:
	config_free(cfg);
}

/* TXT data that does not start with a quote is one literal string. */
static void test_txt_literal(void)
{
	struct config *cfg = load("zones:\n  - name: mesh\n    records:\n"
	                          "      - {name: x, type: TXT, data: \"a \\\"q\\\" \\\\ b\"}\n");
	if (!ok(cfg != NULL, "TXT with quotes and a backslash loads"))
		return;
	const struct cfg_record *r = &cfg->zones[0].records[0];
	ok(r->rdlen == 10 && r->rdata[0] == 9 && memcmp(r->rdata + 1, "a \"q\" \\ b", 9) == 0,
	   "quotes and backslash kept literally");
	config_free(cfg);
}

static void test_parse_listen(void)
{
	struct cfg_listen l;
	char buf[64];

	ok(config_parse_listen("1.2.3.4:53", 99, &l) == 0 && listen_port(&l) == 53 &&
	   l.ss.ss_family == AF_INET, "1.2.3.4:53");
	ok(config_parse_listen("[::1]:5353", 99, &l) == 0 && listen_port(&l) == 5353 &&
	   l.ss.ss_family == AF_INET6, "[::1]:5353");
	ok(config_parse_listen("1.2.3.4", 99, &l) == 0 && listen_port(&l) == 99, "1.2.3.4 default port");
	ok(config_parse_listen("::1", 99, &l) == 0 && listen_port(&l) == 99 &&
	   strcmp(listen_addr(&l, buf, sizeof(buf)), "::1") == 0, "::1 default port");
	ok(config_parse_listen("[fe80::1]", 7, &l) == 0 && listen_port(&l) == 7, "[fe80::1]");
	ok(config_parse_listen("1.2.3.4:65535", 53, &l) == 0 && listen_port(&l) == 65535, "port 65535");
	static const char *const badv[] = {
		"", "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:", "1.2.3.4:x", "[::1]", "[::1]:", "[1.2.3.4]:53",
		"host:53", "1.2.3:53", "[::1]x", "::1:53:", "1.2.3.4:+53", "[::1:53", NULL,
	};
	for (size_t i = 0; badv[i]; i++) {
		uint16_t def = strcmp(badv[i], "[::1]") == 0 ? 0 : 53;
		ok(config_parse_listen(badv[i], def, &l) == -1, "listen '%s' (defport %u) rejected",
		   badv[i], def);
	}
	ok(config_parse_listen_port0("127.0.0.1:0", 53, true, &l) == 0 && listen_port(&l) == 0,
	   "-l 127.0.0.1:0 accepted where port 0 is allowed");
	ok(config_parse_listen_port0("[::1]:0", 53, true, &l) == 0 && listen_port(&l) == 0 &&
	   l.ss.ss_family == AF_INET6, "-l [::1]:0");
	ok(config_parse_listen_port0("127.0.0.1:00x", 53, true, &l) == -1, "port '00x' still rejected");
	ok(config_parse_listen_port0("127.0.0.1", 53, true, &l) == 0 && listen_port(&l) == 53,
	   "default port with port0 allowed");
}

/* Names of a zone inside another configured zone are never served: an
 * error, except the delegation NS and glue addresses. */
static void test_nested_zones(void)
{
#define NZ "zones:\n  - name: mesh\n    records:\n"
#define SUB "  - name: sub.mesh\n    records: [{name: x, type: A, data: 192.0.2.2}]\n"
	bad(NZ "      - {name: a.sub, type: TXT, data: hi}\n" SUB, "4:9",
	    "record in zone mesh. is inside zone sub.mesh. (line 5)", "record under a nested zone");
	bad("zones:\n  - name: mesh\n    services:\n      - {name: web.sub, ports: {http: 80}, "
	    "backends: [10.0.0.1]}\n" SUB, "4:9", "service 'web.sub' of zone mesh. is inside zone "
	    "sub.mesh.", "service under a nested zone");
	struct config *cfg = load(NZ "      - {name: sub, type: NS, data: ns.sub}\n"
	                             "      - {name: ns.sub, type: A, data: 192.0.2.1}\n" SUB);
	ok(cfg != NULL, "delegation NS and glue of a nested zone are allowed");
	config_free(cfg);
#undef NZ
#undef SUB
}

static void test_tcp_per_client(void)
{
	struct config *cfg = load("tcp: {max-per-client: 8}\nzones: [{name: mesh}]\n");
	ok(cfg && cfg->tcp_max_per_client == 8, "tcp max-per-client 8");
	config_free(cfg);
	cfg = load("zones: [{name: mesh}]\n");
	ok(cfg && cfg->tcp_max_per_client == 64, "max-per-client defaults to 64");
	config_free(cfg);
	bad("tcp: {max-per-client: -1}\nzones: [{name: mesh}]\n", "1:23", "max-per-client",
	    "negative max-per-client");
}

static void test_http_key(void)
{
	struct config *cfg = load("http: 127.0.0.1:8053\nzones: [{name: mesh}]\n");
	ok(cfg && cfg->have_http && listen_port(&cfg->http) == 8053, "http: 127.0.0.1:8053");
	config_free(cfg);
	cfg = load("http: \"[::1]:9100\"\nzones: [{name: mesh}]\n");
	ok(cfg && cfg->have_http && cfg->http.ss.ss_family == AF_INET6 && listen_port(&cfg->http) == 9100,
	   "http: [::1]:9100");
	config_free(cfg);
	cfg = load("zones: [{name: mesh}]\n");
	ok(cfg && !cfg->have_http, "no http key: endpoint off");
	config_free(cfg);
	bad("http: 127.0.0.1\nzones: [{name: mesh}]\n", "1:7", "not ADDR:PORT", "http without port");
	bad("http: [a, b]\nzones: [{name: mesh}]\n", "1:7", "http: expected an address", "http list");
}

/* ttl: auto follows the fastest detection (interval x fall) of checked
 * backends, capped by the zone TTL. */
static void test_ttl_auto(void)
{
	struct config *cfg = load(
		"zones:\n"
		"  - name: mesh\n"
		"    ttl: 20\n"
		"    services:\n"
		"      - name: a\n"
		"        ttl: auto\n"
		"        ports: {http: 80}\n"
		"        check: {type: tcp, interval: 2s, fall: 3, timeout: 1s}\n"
		"        backends: [127.0.0.1, {address: 127.0.0.2, check: {interval: 300ms, fall: 2, timeout: 100ms}}]\n"
		"      - name: b\n"
		"        ttl: auto\n"
		"        ports: {http: 80}\n"
		"        backends: [127.0.0.3]\n"
		"      - name: c\n"
		"        ttl: auto\n"
		"        ports: {http: 80}\n"
		"        check: {type: tcp, interval: 100ms, fall: 2, timeout: 50ms}\n"
		"        backends: [127.0.0.4]\n"
		"      - name: d\n"
		"        ttl: auto\n"
		"        ports: {http: 80}\n"
		"        check: {type: tcp, interval: 30s, fall: 5, timeout: 1s}\n"
		"        backends: [127.0.0.5]\n"
		"      - name: e\n"
		"        ports: {http: 80}\n"
		"        ttl: 7\n"
		"        backends: [127.0.0.6]\n");
	ok(cfg != NULL, "ttl: auto loads");
	if (!cfg)
		return;
	const struct cfg_zone *z = &cfg->zones[0];
	is_int(z->services[0].ttl, 1, "auto: 300ms x 2 rounds up to 1 s (the faster backend wins)");
	ok(z->services[0].ttl_auto, "ttl_auto recorded");
	is_int(z->services[1].ttl, 20, "auto without checks: the zone ttl");
	is_int(z->services[2].ttl, 1, "auto: 100ms x 2 -> at least 1 s");
	is_int(z->services[3].ttl, 20, "auto: 150 s capped by the zone ttl");
	is_int(z->services[4].ttl, 7, "explicit ttl unchanged");
	ok(!z->services[4].ttl_auto, "explicit ttl is not auto");
	config_free(cfg);
	cfg = load("zones:\n  - name: mesh\n    ttl: 300\n    services:\n      - name: a\n"
	           "        ttl: auto\n        ports: {http: 80}\n"
	           "        check: {type: http, interval: 5s, fall: 3}\n        backends: [127.0.0.1]\n");
	ok(cfg && cfg->zones[0].services[0].ttl == 15, "auto: 5 s x 3 = 15 s under a 300 s zone ttl");
	config_free(cfg);
}

static void test_parse_duration(void)
{
	static const struct {
		const char *text;
		bool ms;
		int rc;
		uint32_t want;
	} cases[] = {
		{ "30", false, 0, 30 },       { "30s", false, 0, 30 },     { "5m", false, 0, 300 },
		{ "1h", false, 0, 3600 },     { "1d", false, 0, 86400 },   { "0", false, 0, 0 },
		{ "100ms", false, -1, 0 },    { "100ms", true, 0, 100 },   { "30", true, 0, 30000 },
		{ "1s", true, 0, 1000 },      { "5m", true, 0, 300000 },   { "1d", true, 0, 86400000 },
		{ "4294967295", false, 0, 4294967295u },                   { "4294967296", false, -1, 0 },
		{ "4294968", true, -1, 0 },   { "4294967", true, 0, 4294967000u },
		{ "", false, -1, 0 },         { "s", false, -1, 0 },       { "abc", true, -1, 0 },
		{ "5x", false, -1, 0 },       { "-1", false, -1, 0 },      { "1.5s", true, -1, 0 },
		{ " 5", false, -1, 0 },       { "5 s", false, -1, 0 },     { "5S", false, -1, 0 },
		{ "1h30m", false, -1, 0 },    { "50000d", false, -1, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t v = 12345;
		int rc = config_parse_duration(cases[i].text, cases[i].ms, &v);
		ok(rc == cases[i].rc && (rc == -1 ? v == 12345 : v == cases[i].want),
		   "duration '%s'%s -> %d %u", cases[i].text, cases[i].ms ? " (ms)" : "", cases[i].rc,
		   cases[i].want);
	}
}

static void test_load_file_errors(void)
{
	struct config *cfg = NULL;
	struct config_error err;

	ok(config_load("/nonexistent/dnsd.yaml", &cfg, &err) == -1 && cfg == NULL &&
	   strstr(err.msg, "/nonexistent/dnsd.yaml: ") == err.msg &&
	   strstr(err.msg, "No such file") != NULL, "missing file: '%s'", err.msg);
}

/* Syntax, top level, scalars. */
static void test_bad_document(void)
{
	bad("", "1:1", "empty configuration", "empty file");
	bad("# nothing\n\n", "1:1", "empty configuration", "only comments");
	bad("- a\n- b\n", "1:1", "top level must be a mapping", "top level a list");
	bad("just text\n", "1:1", "top level must be a mapping", "top level a scalar");
	bad("listen: 127.0.0.1:53\n", "1:1", "no zones defined", "no zones key");
	bad("zones: []\n", "1:8", "no zones defined", "empty zones list");
	bad("zones:\n", "1:7", "zones: expected a list", "zones without value");
	bad("a:\n\tb: 1\n", "2:1", "cannot start any token", "tab indentation (libyaml's mark)");
	bad("zones: [{name: mesh}\nworkers: 1\n", "2:1", "did not find expected ',' or ']'",
	    "unclosed flow sequence (libyaml's mark)");
	bad("zones: \"x\n", "2:1", "found unexpected end of stream", "unterminated quote");
	bad("a: \xff\n", "1:4", "invalid", "invalid UTF-8 (reader error offset)");
	bad("zones:\n  - name: mesh\n---\nb: 1\n", "4:1", "only one YAML document", "two documents");
	bad("zones: *nope\n", "1:8", "undefined alias", "undefined alias");
	bad("zones: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n", "1:39",
	    "nested deeper than 32 levels", "nesting depth bounded");
	bad("foo: 1\nzones: [{name: mesh}]\n", "1:1", "unknown key 'foo'", "unknown top-level key");
	bad("workers: 1\nworkers: 2\nzones: [{name: mesh}]\n", "2:1", "duplicate key 'workers'",
	    "duplicate key");
	bad("? [a]\n: 1\n", "1:3", "a key must be a string", "a list as key");
	bad("workers: 65\nzones: [{name: mesh}]\n", "1:10", "in 0..64", "workers 65");
	bad("workers: -1\nzones: [{name: mesh}]\n", "1:10", "expected an integer", "workers -1");
	bad("workers: 1.5\nzones: [{name: mesh}]\n", "1:10", "expected an integer", "workers 1.5");
	bad("workers: {a: 1}\nzones: [{name: mesh}]\n", "1:10", "expected an integer, got a mapping",
	    "mapping where an integer belongs");
	bad("workers: [1]\nzones: [{name: mesh}]\n", "1:10", "got a list",
	    "list where an integer belongs");
	bad("workers: ~\nzones: [{name: mesh}]\n", "1:10", "missing value", "null value");
	bad("udp-max-payload: 511\nzones: [{name: mesh}]\n", "1:18", "512..4096", "payload 511");
	bad("udp-max-payload: 4097\nzones: [{name: mesh}]\n", "1:18", "512..4096", "payload 4097");
	bad("tcp: {idle-timeout: 10x}\nzones: [{name: mesh}]\n", "1:21", "bad duration '10x'",
	    "bad idle-timeout");
	bad("tcp: {idle-timeout: 0}\nzones: [{name: mesh}]\n", "1:21", "out of range",
	    "idle-timeout 0");
	bad("tcp: {max-clients: 0}\nzones: [{name: mesh}]\n", "1:20", "1..65535", "max-clients 0");
	bad("tcp: [1]\nzones: [{name: mesh}]\n", "1:6", "tcp: expected a mapping, got a list",
	    "tcp a list");
	bad("tcp: {idle: 1}\nzones: [{name: mesh}]\n", "1:7", "unknown key 'idle'", "unknown tcp key");
	bad("listen: [127.0.0.1:0]\nzones: [{name: mesh}]\n", "1:10", "bad address", "listen port 0");
	bad("listen: [\"1.2.3.4:70000\"]\nzones: [{name: mesh}]\n", "1:10", "bad address",
	    "listen port 70000");
	bad("listen: [300.1.1.1]\nzones: [{name: mesh}]\n", "1:10", "bad address '300.1.1.1'",
	    "listen bad IPv4");
	bad("listen: []\nzones: [{name: mesh}]\n", "1:9", "empty list", "listen empty");
	bad("listen: {a: 1}\nzones: [{name: mesh}]\n", "1:9", "got a mapping", "listen mapping");
	bad("listen: [127.0.0.1:53, 127.0.0.1:53]\nzones: [{name: mesh}]\n", "1:24",
	    "duplicate address", "listen duplicate");
	bad("localities: {10.0.0.1/8: a}\nzones: [{name: mesh}]\n", "1:14", "bits set beyond",
	    "locality with host bits");
	bad("localities: {10.0.0.0/33: a}\nzones: [{name: mesh}]\n", "1:14", "prefix must be 0..32",
	    "locality prefix 33");
	bad("localities: {foo: a}\nzones: [{name: mesh}]\n", "1:14", "bad subnet 'foo'",
	    "locality not an address");
	bad("localities: {10.0.0.0/8: a, 10.0.0.0/8: b}\nzones: [{name: mesh}]\n", "1:29",
	    "duplicate subnet", "locality duplicate");
	bad("localities: {10.0.0.0/8: [a]}\nzones: [{name: mesh}]\n", "1:26", "got a list",
	    "locality label a list");
	bad("localities: [10.0.0.0/8]\nzones: [{name: mesh}]\n", "1:13", "expected a mapping",
	    "localities a list");
}

static void test_bad_zone(void)
{
	char buf[1024];

	bad("zones:\n  - ttl: 30\n", "2:5", "missing required key 'name'", "zone without name");
	bad("zones: {name: mesh}\n", "1:8", "zones: expected a list", "zones a mapping");
	bad("zones: [mesh]\n", "1:9", "zone: expected a mapping, got a scalar", "zone a scalar");
	bad("zones:\n  - name: mesh\n  - name: MESH.\n", "3:11",
	    "duplicate zone 'MESH.' (first at line 2)",
	    "duplicate zone origin");
	bad("zones:\n  - name: a..b\n", "2:11", "empty label", "empty label");
	snprintf(buf, sizeof(buf), "zones:\n  - name: %064d\n", 0);
	bad(buf, "2:11", "label longer than 63", "label of 64");
	snprintf(buf, sizeof(buf), "zones:\n  - name: %060d.%060d.%060d.%060d.%060d\n", 1, 2, 3, 4, 5);
	bad(buf, "2:11", "name longer than 255", "name of 306 bytes");
	bad("zones:\n  - name: [mesh]\n", "2:11", "name: expected a zone name, got a list", "name a list");
	bad("zones:\n  - name: \"me\\0sh\"\n", "2:11", "NUL byte", "NUL in a name");
	bad("zones:\n  - name: mesh\n    ttl: 5x\n", "3:10", "ttl: bad duration '5x'", "bad zone ttl");
	bad("zones:\n  - name: mesh\n    ttl: 2147483648\n", "3:10", "out of range", "ttl over 2^31-1");
	bad("zones:\n  - name: mesh\n    nss: [a]\n", "3:5", "zone: unknown key 'nss'",
	    "unknown zone key");
	bad("zones:\n  - name: mesh\n    soa: {serial: -1}\n", "3:19", "serial: expected an integer",
	    "soa serial -1");
	bad("zones:\n  - name: mesh\n    soa: {serial: 4294967296}\n", "3:19", "0..4294967295",
	    "soa serial 2^32");
	bad("zones:\n  - name: mesh\n    soa: {rname: \"@x\"}\n", "3:18", "bad mail address",
	    "rname mail without local part");
	bad("zones:\n  - name: mesh\n    soa: {rname: \"a@b@c\"}\n", "3:18", "bad mail address",
	    "rname with two @");
	bad("zones:\n  - name: mesh\n    soa: {mname: \"a..b\"}\n", "3:18", "empty label", "bad mname");
	bad("zones:\n  - name: mesh\n    soa: {refresh: 1x}\n", "3:20", "bad duration", "bad refresh");
	bad("zones:\n  - name: mesh\n    soa: {minimun: 1}\n", "3:11", "soa: unknown key 'minimun'",
	    "unknown soa key");
	bad("zones:\n  - name: mesh\n    soa: 5\n", "3:10", "soa: expected a mapping", "soa a scalar");
	bad("zones:\n  - name: mesh\n    ns: []\n", "3:9", "ns: empty list", "empty ns");
	bad("zones:\n  - name: mesh\n    ns: [a, A]\n", "3:13", "ns: duplicate name", "duplicate ns");
	bad("zones:\n  - name: mesh\n    ns: {a: 1}\n", "3:9", "got a mapping", "ns a mapping");
}

static void test_bad_records(void)
{
	char buf[1024];
#define R "zones:\n  - name: mesh\n    records:\n"
	bad(R "      - {name: x, type: A}\n", "4:9", "missing required key 'data'", "record without data");
	bad(R "      - {name: x, type: BOGUS, data: 1}\n", "4:25", "unknown record type 'BOGUS'",
	    "unknown type");
	bad(R "      - {name: x, type: A, data: 1.2.3}\n", "4:34", "in A data", "unparsable A data");
	bad(R "      - {name: x, type: AAAA, data: 1.2.3.4}\n", "4:37", "in AAAA data",
	    "v4 address as AAAA");
	bad(R "      - {name: x, type: MX, data: mail}\n", "4:35", "in MX data", "MX without preference");
	bad(R "      - {name: www.other., type: A, data: 1.2.3.4}\n", "4:16",
	    "'www.other.' is outside zone mesh.", "absolute name outside the zone");
	bad(R "      - {name: mesh.., type: A, data: 1.2.3.4}\n", "4:16", "empty label", "empty label");
	snprintf(buf, sizeof(buf), R "      - {name: %064d, type: A, data: 1.2.3.4}\n", 7);
	bad(buf, "4:16", "label longer than 63", "record label of 64");
	snprintf(buf, sizeof(buf), R "      - {name: %062d.%062d.%062d.%062d, type: A, data: 1.2.3.4}\n",
	         1, 2, 3, 4);
	bad(buf, "4:16", "name longer than 255", "relative name too long with the origin");
	bad(R "      - {name: x, type: SOA, data: a b 1 2 3 4 5}\n", "4:25", "soa key", "SOA record");
	bad(R "      - {name: \"@\", type: NS, data: ns9}\n", "4:9", "NS records at the apex",
	    "NS at the apex");
	bad(R "      - {name: x, type: ANY, data: x}\n", "4:25", "cannot be stored", "meta type ANY");
	bad(R "      - {name: x, type: OPT, data: x}\n", "4:25", "cannot be stored", "type OPT");
	bad(R "      - {name: x, type: A, data: 1.2.3.4, class: IN}\n", "4:43", "unknown key 'class'",
	    "unknown record key");
	bad(R "      - {name: x, type: A, data: [1.2.3.4]}\n", "4:34", "got a list", "data a list");
	bad("zones:\n  - name: mesh\n    records: {name: x}\n", "3:14", "records: expected a list",
	    "records a mapping");
	bad(R "      - {name: x, type: A, data: 1.2.3.4}\n      - {name: x, type: CNAME, data: y}\n",
	    "5:9", "a CNAME cannot coexist with other data: 'x.mesh.' already has the A record at line 4",
	    "CNAME after A");
	bad(R "      - {name: x, type: CNAME, data: y}\n      - {name: X, type: TXT, data: t}\n",
	    "5:9", "already has the CNAME record at line 4", "TXT after CNAME");
	bad(R "      - {name: x, type: CNAME, data: y}\n      - {name: x, type: CNAME, data: z}\n",
	    "5:9", "CNAME cannot coexist", "two CNAMEs");
	bad(R "      - {name: \"@\", type: CNAME, data: y}\n", "4:9", "the zone's SOA record",
	    "CNAME at the apex");
	bad(R "      - {name: x, type: A, data: 1.2.3.4}\n"
	      "      - {name: x.mesh., type: A, data: 1.2.3.5}\n"
	      "      - {name: X.Mesh., type: A, data: 1.2.3.4}\n",
	    "6:9", "duplicate A record at 'x.mesh.' (first at line 4)", "duplicate record");
	bad(R "      - {name: x, type: A, data: 1.2.3.4}\n"
	      "      - {name: x, type: A, data: 1.2.3.5, ttl: 5}\n",
	    "5:9", "TTL 5 differs from the TTL 30 of the A record at line 4", "TTL mismatch in an RRset");
	/* Of several conflicts, the first in the file is reported. */
	bad(R "      - {name: b, type: A, data: 1.2.3.4}\n      - {name: a, type: A, data: 1.2.3.4}\n"
	      "      - {name: a, type: CNAME, data: x}\n      - {name: b, type: CNAME, data: x}\n",
	    "6:9", "'a.mesh.' already has the A record at line 5", "first conflict in the file");
#undef R
}

static void test_bad_services(void)
{
	char buf[8192];
#define S "zones:\n  - name: mesh\n    services:\n      - name: svc\n"
#define P "        ports: {http: 80}\n"
	bad(S, "4:9", "missing required key 'ports'", "service without ports");
	bad(S "        ports: {}\n", "5:16", "at least one port", "empty ports");
	bad(S "        ports: [80]\n", "5:16", "ports: expected a mapping", "ports a list");
	bad(S "        ports: {http: 0}\n", "5:23", "1..65535", "port 0");
	bad(S "        ports: {http: 70000}\n", "5:23", "1..65535", "port 70000");
	bad(S "        ports: {http: {port: 80, proto: sctp}}\n", "5:41", "expected one of tcp, udp",
	    "bad proto");
	bad(S "        ports: {http: {proto: udp}}\n", "5:23", "missing required key 'port'",
	    "long-form port without port");
	bad(S "        ports: {\"a.b\": 80}\n", "5:17", "ports: name 'a.b'", "dotted port name");
	bad(S "        ports: {http: 80, HTTP: 81}\n", "5:27", "duplicate port name", "duplicate port");
	bad(S P "        policy: random\n", "6:17",
	    "expected one of weighted, round-robin, hash, failover, locality", "bad policy");
	bad(S P "        fail-open: maybe\n", "6:20", "expected true or false", "bad bool");
	bad(S P "        ttl: {a: 1}\n", "6:14", "ttl: expected a duration, got a mapping",
	    "mapping where a duration belongs");
	bad(S P "        slow-start: 2d\n", "6:21", "out of range", "slow-start over a day");
	bad(S P "        ttl: automatic\n", "6:14", "ttl: ", "ttl neither a duration nor auto");
	bad(S P "        weight: 5\n", "6:9", "service: unknown key 'weight'", "unknown service key");
	bad(S P "      - name: SVC\n" P, "6:15", "duplicate service 'SVC' (first at line 4)",
	    "duplicate service");
	bad("zones:\n  - name: mesh\n    services:\n      - name: \"@\"\n" P, "4:15",
	    "cannot be at the zone apex", "service at the apex");
	bad("zones:\n  - name: mesh\n    services:\n      - name: x.org.\n" P, "4:15",
	    "outside zone mesh.", "service outside the zone");
	snprintf(buf, sizeof(buf), "zones:\n  - name: mesh\n    services:\n      - name: %064d\n" P, 1);
	bad(buf, "4:15", "label longer than 63", "service label of 64");
	bad(S P "        backends: [127.0.0.300]\n", "6:20", "bad IP address '127.0.0.300'",
	    "bad backend address");
	bad(S P "        backends: [{address: 127.0.0.2, weight: 0}]\n", "6:49", "1..65535", "weight 0");
	bad(S P "        backends: [{address: 127.0.0.2, weight: 65536}]\n", "6:49", "1..65535",
	    "weight 65536");
	bad(S P "        backends: [{address: 127.0.0.2, port: 0}]\n", "6:47", "1..65535",
	    "backend port 0");
	bad(S P "        backends: [{address: 127.0.0.2, port: 65536}]\n", "6:47", "1..65535",
	    "backend port 65536");
	bad(S P "        backends: [{port: 80}]\n", "6:20", "missing required key 'address'",
	    "backend without address");
	bad(S P "        backends: [127.0.0.2, 127.0.0.2]\n", "6:31",
	    "duplicate backend 127.0.0.2 (first at line 6)", "duplicate backend");
	bad(S P "        backends:\n          - {address: \"fd00::1\", port: 8}\n"
	        "          - {address: \"fd00:0::1\", port: 8}\n",
	    "8:13", "duplicate backend fd00::1 port 8", "duplicate v6 backend, other spelling");
	bad(S P "        backends:\n          - {address: 127.0.0.2, name: a}\n"
	        "          - {address: 127.0.0.3, name: A}\n",
	    "8:13", "name 'A' is already used by the backend at line 7", "duplicate backend name");
	bad(S P "        backends:\n          - {address: 127.0.0.2, name: 127-0-0-3}\n"
	        "          - 127.0.0.3\n",
	    "8:13", "name '127-0-0-3' is already used", "explicit name equal to a derived one");
	bad(S P "        backends: [{address: 127.0.0.2, name: a.b}]\n", "6:47", "single DNS label",
	    "dotted backend name");
	bad(S P "        backends: [{address: 127.0.0.2, wieght: 1}]\n", "6:41",
	    "backend: unknown key 'wieght'", "unknown backend key");
	bad(S P "        backends: [[127.0.0.2]]\n", "6:20", "backend: expected a mapping, got a list",
	    "backend a list");
	bad(S P "        backends: 127.0.0.2\n", "6:19", "backends: expected a list", "backends a scalar");
	bad(S P "        check: {rise: 0}\n", "6:23", "1..1000", "rise 0");
	bad(S P "        check: {fall: 0}\n", "6:23", "1..1000", "fall 0");
	bad(S P "        check: {type: ping}\n", "6:23", "expected one of none, tcp, http, https",
	    "bad check type");
	bad(S P "        check: {interval: 10q}\n", "6:27", "bad duration '10q'", "bad interval");
	bad(S P "        check: {interval: 0}\n", "6:27", "out of range", "interval 0");
	bad(S P "        check: {interval: 1s, timeout: 2s}\n", "6:40",
	    "timeout 2000ms is longer than interval 1000ms", "timeout > interval");
	bad(S P "        check: {timeout: 2s}\n", "6:26", "timeout 2000ms is longer than interval 1000ms",
	    "timeout > default interval");
	bad(S P "        check: {timeout: 500ms}\n        backends: [{address: 127.0.0.2, "
	        "check: {interval: 100ms}}]\n",
	    "7:59", "timeout 500ms is longer than interval 100ms",
	    "backend interval shorter than the service's timeout");
	bad(S P "        check: {path: healthz}\n", "6:23", "must start with '/'", "relative path");
	bad(S P "        check: {expect: [99]}\n", "6:26", "100..599", "expect 99");
	bad(S P "        check: {expect: {a: 1}}\n", "6:25", "got a mapping", "expect a mapping");
	bad(S P "        check: {expect: [200, 201, 202, 203, 204, 205, 206, 207, 208, 209, 210, 211, "
	        "212, 213, 214, 215, 216]}\n",
	    "6:106", "at most 16", "17 expect codes");
	bad(S P "        check: [tcp]\n", "6:16", "check: expected a mapping, got a list", "check a list");
	bad(S P "        check: {host: \"\"}\n", "6:23", "host: empty string", "empty host");

	/* The service owns its name, _port._proto names and backend targets. */
	bad(S P "    records:\n      - {name: svc, type: A, data: 1.2.3.4}\n", "7:9",
	    "'svc.mesh.' is already used by service 'svc' (line 4)", "record at a service name");
	bad("zones:\n  - name: mesh\n    records:\n      - {name: svc, type: TXT, data: x}\n"
	    "    services:\n      - name: svc\n" P,
	    "6:9", "'svc.mesh.' is already used by the TXT record at line 4",
	    "service at a record's name");
	bad(S P "    records:\n      - {name: _http._tcp.svc, type: TXT, data: x}\n", "7:9",
	    "the SRV name of service 'svc'", "record at a service's SRV name");
	bad(S P "        backends: [127.0.0.2]\n    records:\n"
	        "      - {name: 127-0-0-2.svc, type: A, data: 1.2.3.4}\n",
	    "8:9", "a backend of service 'svc' (line 6)", "record at a backend target");
	bad(S P "      - name: _http._tcp.svc\n" P, "6:9", "the SRV name of service 'svc'",
	    "service at another service's SRV name");
	bad(S P "    records:\n      - {name: x.svc, type: CNAME, data: y}\n"
	        "      - {name: x.svc, type: A, data: 1.2.3.4}\n",
	    "8:9", "already has the CNAME record at line 7", "CNAME below a service");
	snprintf(buf, sizeof(buf), "zones:\n  - name: mesh\n    services:\n"
	         "      - name: %060d.%060d.%060d\n        ports: {%060d: 80}\n", 1, 2, 3, 4);
	bad(buf, "4:9", "SRV name", "SRV name too long");

	/* Aliases may not blow a small document up into a huge one: the first
	 * service's 250 backends, shared by 1000 more, are 250k backends. */
	struct config *cfg;
	size_t n;
	n = (size_t)snprintf(buf, sizeof(buf), "zones:\n  - name: mesh\n    services:\n"
	                     "      - {name: s, ports: {a: 1}, backends: &b [");
	for (int i = 0; i < 250; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s10.0.%d.%d", i ? ", " : "", i / 250,
		                      i % 250);
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "]}\n");
	char *big = malloc(1 << 20);
	if (big) {
		memcpy(big, buf, n);
		size_t m = n;
		for (int i = 0; i < 1000; i++)
			m += (size_t)snprintf(big + m, (1 << 20) - m, "      - {name: s%d, ports: {a: 1}, "
			                      "backends: *b}\n", i);
		big[m] = '\0';
		bad(big, NULL, "document too large after alias expansion", "alias expansion bounded");
		/* A moderate use of the same alias is fine. */
		m = n;
		for (int i = 0; i < 20; i++)
			m += (size_t)snprintf(big + m, (1 << 20) - m, "      - {name: s%d, ports: {a: 1}, "
			                      "backends: *b}\n", i);
		big[m] = '\0';
		cfg = load(big);
		ok(cfg && cfg->zones[0].nservices == 21 && cfg->zones[0].services[20].nbackends == 250,
		   "a list of 250 backends shared by 21 services");
		config_free(cfg);
		free(big);
	}
#undef S
#undef P
}

static void test_forward(void)
{
	struct config *cfg = load("zones: [{name: mesh}]\n");
	char buf[64];
	if (ok(cfg != NULL, "no forward key loads")) {
		ok(cfg->forward.nupstreams == 0 && !cfg->forward.resolv_conf, "forwarding off by default");
		is_int(cfg->forward.timeout_ms, 2000, "default forward timeout");
		is_int(cfg->forward.max_outstanding, 1000, "default max-outstanding");
		ok(!cfg->forward.tcp, "default: UDP upstream");
		is_int(cfg->cache.max_entries, 10000, "default cache max-entries");
		is_int(cfg->cache.max_ttl, 86400, "default max-ttl");
		is_int(cfg->cache.min_ttl, 0, "default min-ttl");
		is_int(cfg->cache.neg_max_ttl, 3600, "default neg-max-ttl");
		config_free(cfg);
	}
	cfg = load("zones: [{name: mesh}]\n"
	           "forward:\n"
	           "  upstreams: [\"127.0.0.1:5300\", \"[::1]:53\", 192.0.2.1]\n"
	           "  timeout: 500ms\n"
	           "  max-outstanding: 10\n"
	           "  tcp: true\n"
	           "cache: {max-entries: 0, max-ttl: 1h, min-ttl: 5, neg-max-ttl: 1m}\n");
	if (ok(cfg != NULL, "forward and cache load")) {
		is_int(cfg->forward.nupstreams, 3, "three upstreams");
		is_str(listen_addr(&cfg->forward.upstreams[0], buf, sizeof(buf)), "127.0.0.1", "first");
		is_int(listen_port(&cfg->forward.upstreams[0]), 5300, "its port");
		is_str(listen_addr(&cfg->forward.upstreams[1], buf, sizeof(buf)), "::1", "IPv6 upstream");
		is_int(listen_port(&cfg->forward.upstreams[2]), 53, "default port 53");
		is_int(cfg->forward.timeout_ms, 500, "timeout 500ms");
		is_int(cfg->forward.max_outstanding, 10, "max-outstanding");
		ok(cfg->forward.tcp, "tcp: true");
		is_int(cfg->cache.max_entries, 0, "max-entries 0 (no cache)");
		is_int(cfg->cache.max_ttl, 3600, "max-ttl 1h");
		is_int(cfg->cache.min_ttl, 5, "min-ttl 5");
		is_int(cfg->cache.neg_max_ttl, 60, "neg-max-ttl 1m");
		config_free(cfg);
	}
	bad("zones: [{name: mesh}]\nforward: {upstreams: 10.0.0.1, resolv-conf: ~}\n", "2:45",
	    "resolv-conf: missing value", "resolv-conf null");
	cfg = load("zones: [{name: mesh}]\nforward: {resolv-conf: /etc/resolv.conf}\n");
	if (ok(cfg != NULL, "resolv-conf alone")) {
		is_str(cfg->forward.resolv_conf, "/etc/resolv.conf", "resolv-conf path");
		is_int(cfg->forward.nupstreams, 0, "no upstream list");
		config_free(cfg);
	}
	bad("zones: [{name: mesh}]\nforward: {upstreams: [10.0.0.1], resolv-conf: /etc/resolv.conf}\n",
	    "2:47", "either upstreams or resolv-conf", "both sources");
	bad("zones: [{name: mesh}]\nforward: {timeout: 2s}\n", "2:10", "missing upstreams",
	    "no source");
	bad("zones: [{name: mesh}]\nforward: {upstreams: []}\n", "2:22", "empty list", "empty list");
	bad("zones: [{name: mesh}]\nforward: {upstreams: [10.0.0.1:0]}\n", "2:23", "bad address",
	    "port 0");
	bad("zones: [{name: mesh}]\nforward: {upstreams: [nameserver.example]}\n", "2:23",
	    "bad address 'nameserver.example'", "a host name");
	bad("zones: [{name: mesh}]\nforward: {upstreams: [10.0.0.1, 10.0.0.1:53]}\n", "2:33",
	    "duplicate address", "duplicate upstream");
	bad("zones: [{name: mesh}]\nforward: {upstreams: {a: 1}}\n", "2:22", "got a mapping",
	    "mapping as upstreams");
	bad("zones: [{name: mesh}]\nforward: {upstreams: [10.0.0.1], timeout: 10ms}\n", "2:43",
	    "out of range 100ms..60000ms", "timeout too short");
	bad("zones: [{name: mesh}]\nforward: {upstreams: [10.0.0.1], max-outstanding: 0}\n", "2:51",
	    "in 1..60000", "max-outstanding 0");
	bad("zones: [{name: mesh}]\nforward: {upstreams: [10.0.0.1], tcp: maybe}\n", "2:39",
	    "expected true or false", "tcp not a boolean");
	bad("zones: [{name: mesh}]\nforward: {upstreams: [10.0.0.1], ttl: 5}\n", "2:34",
	    "forward: unknown key 'ttl'", "unknown forward key");
	bad("zones: [{name: mesh}]\nforward: [10.0.0.1]\n", "2:10", "forward: expected a mapping",
	    "forward as a list");
	bad("zones: [{name: mesh}]\ncache: {max-ttl: 0}\n", "2:18", "out of range", "max-ttl 0");
	bad("zones: [{name: mesh}]\ncache: {min-ttl: 1h, max-ttl: 60}\n", "2:18",
	    "min-ttl (3600s) is above max-ttl (60s)", "min above max");
	bad("zones: [{name: mesh}]\ncache: {max-entries: x}\n", "2:22", "expected an integer",
	    "max-entries not a number");
	bad("zones: [{name: mesh}]\ncache: {size: 1}\n", "2:9", "cache: unknown key 'size'",
	    "unknown cache key");
}

#define K "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

static void test_transfer(void)
{
	struct config *cfg = load("keys:\n"
	                          "  - {name: xfr-key, secret: \"" K "\"}\n"
	                          "  - {name: k2, algorithm: hmac-sha512, secret-file: tests/unit/tsig.key}\n"
	                          "transfer: {allow: [127.0.0.0/8, \"::1\"], keys: xfr-key}\n"
	                          "zones:\n"
	                          "  - name: mesh\n"
	                          "    notify: [\"127.0.0.1:5301\", {address: \"[::1]\", key: k2}]\n"
	                          "  - name: other\n"
	                          "    transfer: {keys: [k2, xfr-key]}\n");
	char buf[64];
	if (ok(cfg != NULL, "keys, transfer and notify load")) {
		is_int(cfg->nkeys, 2, "two keys");
		is_str(cfg->keys[0].name_text, "xfr-key", "key name");
		is_int(cfg->keys[0].alg, TSIG_HMAC_SHA256, "default algorithm hmac-sha256");
		is_int(cfg->keys[0].secretlen, 32, "secret decoded");
		is_int(cfg->keys[1].alg, TSIG_HMAC_SHA512, "hmac-sha512");
		ok(cfg->keys[1].secretlen == 32 && cfg->keys[1].secret[31] == 31,
		   "secret-file read (relative to the cwd for a string config)");
		ok(cfg->transfer.set && cfg->transfer.nallow == 2 && cfg->transfer.nkeys == 1,
		   "top-level transfer");
		is_int(cfg->transfer.allow[0].prefix, 8, "prefix length");
		is_int(cfg->transfer.allow[1].family, AF_INET6, "an address alone is a host prefix");
		is_int(cfg->transfer.allow[1].prefix, 128, "... of 128 bits");
		ok(!cfg->zones[0].transfer.set, "zone without its own transfer");
		is_int(cfg->zones[0].nnotify, 2, "two notify targets");
		is_int(listen_port(&cfg->zones[0].notify[0].addr), 5301, "notify port");
		ok(cfg->zones[0].notify[0].key.name == NULL, "unsigned notify");
		is_str(listen_addr(&cfg->zones[0].notify[1].addr, buf, sizeof(buf)), "::1", "IPv6 notify");
		is_int(listen_port(&cfg->zones[0].notify[1].addr), 53, "default port 53");
		is_str(cfg->zones[0].notify[1].key.name, "k2", "notify key");
		ok(cfg->zones[1].transfer.set && cfg->zones[1].transfer.nkeys == 2, "zone transfer");
		config_free(cfg);
	}
	bad("keys: [{name: a, secret: \"" K "\"}]\nzones: [{name: mesh, transfer: {keys: [b]}}]\n",
	    "2:40", "no key named 'b'", "unknown key in a zone ACL");
	bad("zones: [{name: mesh, notify: [{address: 127.0.0.1, key: nope}]}]\n", "1:57",
	    "no key named 'nope'", "unknown notify key");
	bad("transfer: {keys: [x]}\nzones: [{name: mesh}]\n", "1:19", "no key named 'x'",
	    "unknown top-level key");
	bad("keys: [{name: a, secret: \"not base64!\"}]\nzones: [{name: mesh}]\n", "1:26",
	    "not valid base64", "bad secret");
	bad("keys: [{name: a, algorithm: hmac-md5, secret: \"" K "\"}]\nzones: [{name: mesh}]\n",
	    "1:29", "expected one of hmac-sha256, hmac-sha512", "unknown algorithm");
	bad("keys: [{name: a}]\nzones: [{name: mesh}]\n", "1:8", "either secret or secret-file",
	    "no secret");
	bad("keys: [{name: a, secret: \"" K "\", secret-file: x}]\nzones: [{name: mesh}]\n",
	    "1:26", "either secret or secret-file", "both secrets");
	bad("keys: [{name: a, secret-file: /nonexistent/key}]\nzones: [{name: mesh}]\n", "1:31",
	    "No such file", "missing secret file");
	bad("keys: [{name: a, secret: \"" K "\"}, {name: A., secret: \"" K "\"}]\n"
	    "zones: [{name: mesh}]\n", "1:82", "duplicate name", "duplicate key (case, dot)");
	bad("transfer: {allow: [10.0.0.1/8]}\nzones: [{name: mesh}]\n", "1:20",
	    "bits set beyond the prefix", "host bits in a prefix");
	bad("transfer: {deny: [10.0.0.0/8]}\nzones: [{name: mesh}]\n", "1:12",
	    "transfer: unknown key 'deny'", "unknown transfer key");
	bad("zones: [{name: mesh, notify: [ns1.example]}]\n", "1:31", "notify: bad address",
	    "notify needs an address");
	bad("zones: [{name: mesh, notify: [127.0.0.1, \"127.0.0.1:53\"]}]\n", "1:42",
	    "duplicate address", "duplicate notify");
	bad("zones: [{name: mesh, notify: [{key: k}]}]\n", "1:31", "missing required key 'address'",
	    "notify mapping without address");
}

static void test_cookies_rrl(void)
{
	struct config *cfg = load("zones: [{name: mesh}]\n");
	if (ok(cfg != NULL, "defaults")) {
		ok(cfg->cookies.enabled && !cfg->cookies.require && !cfg->cookies.have_secret,
		   "cookies on, not required, secret generated");
		ok(cfg->rrl.rate == 0 && cfg->rrl.window == 15 && cfg->rrl.slip == 2 &&
		   cfg->rrl.v4_prefix == 24 && cfg->rrl.v6_prefix == 56, "rrl off, BIND/Knot defaults");
		ok(cfg->rrl.nexempt == 2 && cfg->rrl.exempt[0].family == AF_INET &&
		   cfg->rrl.exempt[0].addr[0] == 127 && cfg->rrl.exempt[0].prefix == 8 &&
		   cfg->rrl.exempt[1].family == AF_INET6 && cfg->rrl.exempt[1].prefix == 128,
		   "loopback exempt by default");
		config_free(cfg);
	}
	cfg = load("cookies: {enabled: yes, require-under-load: true, secret-file: tests/unit/cookie.hex,\n"
	           "          previous-secret-file: tests/unit/cookie.hex}\n"
	           "rrl: {responses-per-second: 50, window: 1m, slip: 0, ipv4-prefix: 32, ipv6-prefix: 64,\n"
	           "      exempt: [10.0.0.0/8, \"fd00::/8\", 192.0.2.1]}\n"
	           "zones: [{name: mesh}]\n");
	if (ok(cfg != NULL, "cookies and rrl keys load")) {
		ok(cfg->cookies.require && cfg->cookies.have_secret && cfg->cookies.have_previous,
		   "require, secret and previous secret");
		ok(cfg->cookies.secret[0] == 0xe5 && cfg->cookies.secret[15] == 0xcf, "secret from hex");
		ok(cfg->rrl.rate == 50 && cfg->rrl.window == 60 && cfg->rrl.slip == 0 &&
		   cfg->rrl.v4_prefix == 32 && cfg->rrl.v6_prefix == 64, "rrl values");
		ok(cfg->rrl.nexempt == 3 && cfg->rrl.exempt[1].family == AF_INET6 &&
		   cfg->rrl.exempt[2].prefix == 32, "exempt list replaces the default");
		config_free(cfg);
	}
	cfg = load("rrl: {exempt: []}\nzones: [{name: mesh}]\n");
	if (ok(cfg != NULL, "empty exempt list")) {
		is_int(cfg->rrl.nexempt, 0, "nothing exempt");
		config_free(cfg);
	}
	bad("cookies: {enabled: maybe}\nzones: [{name: mesh}]\n", "1:20", "expected true or false",
	    "cookies: enabled not a bool");
	bad("cookies: {secret: abc}\nzones: [{name: mesh}]\n", "1:11", "unknown key 'secret'",
	    "cookies: unknown key");
	bad("cookies: {secret-file: /nonexistent/c.hex}\nzones: [{name: mesh}]\n", "1:24",
	    "No such file", "cookies: missing secret file");
	bad("cookies: {secret-file: tests/unit/tsig.key}\nzones: [{name: mesh}]\n", "1:24",
	    "32 hex digits", "cookies: secret not hex");
	bad("cookies: {previous-secret-file: tests/unit/cookie.hex}\nzones: [{name: mesh}]\n",
	    "1:33", "needs secret-file", "cookies: previous without current");
	bad("rrl: {responses-per-second: -1}\nzones: [{name: mesh}]\n", "1:29",
	    "expected an integer in 0..100000", "rrl: negative rate");
	bad("rrl: {window: 2h}\nzones: [{name: mesh}]\n", "1:15", "out of range", "rrl: window too long");
	bad("rrl: {slip: 11}\nzones: [{name: mesh}]\n", "1:13", "0..10", "rrl: slip too large");
	bad("rrl: {ipv4-prefix: 33}\nzones: [{name: mesh}]\n", "1:20", "8..32", "rrl: ipv4-prefix");
	bad("rrl: {ipv6-prefix: 8}\nzones: [{name: mesh}]\n", "1:20", "16..128", "rrl: ipv6-prefix");
	bad("rrl: {exempt: [10.0.0.1/8]}\nzones: [{name: mesh}]\n", "1:16",
	    "bits set beyond the prefix", "rrl: host bits in an exempt prefix");
	bad("rrl: {exempt: 10.0.0.0/8}\nzones: [{name: mesh}]\n", "1:15", "expected a list",
	    "rrl: exempt not a list");
	bad("rrl: {rate: 5}\nzones: [{name: mesh}]\n", "1:7", "unknown key 'rate'",
	    "rrl: unknown key");
	/* chaos.allow: who may read CHAOS service status (issue 14). */
	cfg = load("zones: [{name: mesh}]\n");
	if (ok(cfg != NULL, "chaos defaults")) {
		ok(cfg->chaos.nallow == 2 && cfg->chaos.allow[0].family == AF_INET &&
		   cfg->chaos.allow[0].addr[0] == 127 && cfg->chaos.allow[0].prefix == 8 &&
		   cfg->chaos.allow[1].family == AF_INET6 && cfg->chaos.allow[1].prefix == 128,
		   "chaos status: loopback by default");
		config_free(cfg);
	}
	cfg = load("chaos: {allow: [10.0.0.0/8, \"fd00::/8\"]}\nzones: [{name: mesh}]\n");
	if (ok(cfg != NULL, "chaos allow list loads")) {
		ok(cfg->chaos.nallow == 2 && cfg->chaos.allow[0].addr[0] == 10 &&
		   cfg->chaos.allow[1].family == AF_INET6, "allow list replaces the default");
		config_free(cfg);
	}
	cfg = load("chaos: {allow: []}\nzones: [{name: mesh}]\n");
	if (ok(cfg != NULL, "empty chaos allow list")) {
		is_int(cfg->chaos.nallow, 0, "nobody allowed");
		config_free(cfg);
	}
	bad("chaos: {allow: [10.0.0.1/8]}\nzones: [{name: mesh}]\n", "1:17",
	    "bits set beyond the prefix", "chaos: host bits in an allow prefix");
	bad("chaos: {allow: 10.0.0.0/8}\nzones: [{name: mesh}]\n", "1:16", "expected a list",
	    "chaos: allow not a list");
	bad("chaos: {deny: []}\nzones: [{name: mesh}]\n", "1:9", "unknown key 'deny'",
	    "chaos: unknown key");
}

/* oversize (per service) and search-path (top level). */
static void test_oversize_search_path(void)
{
	struct config *cfg = load("search-path: ['*.svc.cluster.local', Cluster.Local.]\n"
	                          "zones:\n  - name: mesh\n    services:\n"
	                          "      - {name: a, ports: {http: 80}, backends: [10.0.0.1]}\n"
	                          "      - {name: b, ports: {http: 80}, backends: [10.0.0.2],"
	                          " oversize: truncate}\n");
	if (ok(cfg != NULL, "search-path and oversize load")) {
		is_int(cfg->zones[0].services[0].oversize, CFG_OVERSIZE_SUBSET, "oversize default subset");
		is_int(cfg->zones[0].services[1].oversize, CFG_OVERSIZE_TRUNCATE, "oversize truncate");
		is_int(cfg->nsearch, 2, "two suffixes");
		ok(cfg->search[0].any_label && NAME_IS(cfg->search[0].name, cfg->search[0].len,
		                                       "\3svc\7cluster\5local"),
		   "'*.svc.cluster.local': any label, then the name");
		ok(!cfg->search[1].any_label && NAME_IS(cfg->search[1].name, cfg->search[1].len,
		                                        "\7cluster\5local"),
		   "an absolute suffix, lowercased");
		config_free(cfg);
	}
	cfg = load("zones: [{name: mesh}]\n");
	if (ok(cfg != NULL, "no search-path"))
		is_int(cfg->nsearch, 0, "search-path off by default");
	config_free(cfg);
	bad("search-path: [mesh]\nzones: [{name: mesh}]\n", "1:14", "inside zone mesh",
	    "a suffix in one of our zones");
	bad("search-path: ['*.a.mesh']\nzones: [{name: mesh}]\n", "1:14", "inside zone mesh",
	    "a wildcard suffix in one of our zones");
	bad("search-path: [a, b, c, d, e, f, g, h, i]\nzones: [{name: mesh}]\n", "1:14",
	    "at most 8", "nine suffixes");
	bad("search-path: [a, A.]\nzones: [{name: mesh}]\n", "1:18", "duplicate suffix",
	    "a suffix twice");
	bad("search-path: [a..b]\nzones: [{name: mesh}]\n", "1:15", "empty label", "bad suffix");
	bad("zones:\n  - name: mesh\n    services:\n      - {name: a, ports: {http: 80}, "
	    "backends: [10.0.0.1], oversize: tc}\n", NULL, "expected one of subset, truncate",
	    "unknown oversize");
}

/* Messages that say what to write instead: a near key or value, IPv6
 * with a port. */
static void test_ergonomics(void)
{
	const char *svc = "zones:\n  - name: mesh\n    services:\n      - name: a\n"
	                  "        ports: {http: 80}\n        backends: [10.0.0.1]\n";
	char y[512];
	snprintf(y, sizeof(y), "%s        polcy: weighted\n", svc);
	bad(y, "7:9", "unknown key 'polcy'; did you mean 'policy'? (expected one of: name,",
	    "a mistyped key gets the closest one");
	snprintf(y, sizeof(y), "%s        backend: []\n", svc);
	bad(y, "7:9", "did you mean 'backends'?", "a missing letter");
	snprintf(y, sizeof(y), "%s        plicy: weighted\n", svc);
	bad(y, "7:9", "did you mean 'policy'?", "a dropped letter");
	snprintf(y, sizeof(y), "%s        policy: wieghted\n", svc);
	bad(y, "7:17", "unknown value 'wieghted'; did you mean 'weighted'?", "swapped letters in a value");
	snprintf(y, sizeof(y), "%s        colour: red\n", svc);
	bad(y, "7:9", "unknown key 'colour' (expected one of:", "no suggestion for another word");
	bad("foo: 1\nzones: [{name: mesh}]\n", "1:1", "unknown key 'foo' (expected", "short: none");
	bad("zones: [{name: mesh, tl: 5}]\n", "1:22", "did you mean 'ttl'?", "short: one edit");

	bad("listen: \"::1:5353\"\nzones: [{name: mesh}]\n", "1:9",
	    "'::1:5353' is an IPv6 address ending in a number, not an address and a port: write "
	    "\"[::1]:5353\" (quoted) for port 5353, or \"[::1:5353]\" for that address on port 53",
	    "::1:5353 rejected with the two ways to write it");
	bad("listen: [fd00::1:53]\nzones: [{name: mesh}]\n", "1:10", "\"[fd00::1]:53\"",
	    "fd00::1:53 in a flow list rejected");
	bad("zones: [{name: mesh}]\nforward: {upstreams: [\"::1:5300\"]}\n", "2:23",
	    "upstreams: '::1:5300' is an IPv6 address ending", "upstreams too");
	bad("listen: [127.0.0.1, [::1]:5353]\nzones: [{name: mesh}]\n", "1:22",
	    "did not find expected node content (while parsing a flow node at line 1); quote IPv6 "
	    "addresses with ports: \"[::1]:53\"", "unquoted [::1]:5353 in a flow list: the hint");
	bad("listen: [\"[::1]:1\", {]\nzones: [{name: mesh}]\n", "1:22", "did not find",
	    "other flow errors: no hint");
	struct config_error err;
	struct config *cfg = NULL;
	const char *y2 = "listen: [\"[::1]:1\", {]\nzones: [{name: mesh}]\n";
	ok(config_load_string(y2, strlen(y2), "t.yaml", &cfg, &err) == -1 &&
	   !strstr(err.msg, "quote IPv6"), "a quoted [::1]:1 does not draw the hint: %s", err.msg);

	ok(!config_listen_ambiguous("::1") && !config_listen_ambiguous("[::1]:53") &&
	   !config_listen_ambiguous("127.0.0.1:53") && !config_listen_ambiguous("fe80::53") &&
	   !config_listen_ambiguous("::") && !config_listen_ambiguous("[::1:53]") &&
	   !config_listen_ambiguous("::1:abcd"), "unambiguous addresses pass");
	ok(config_listen_ambiguous("::1:5353") && config_listen_ambiguous("2001:db8::1:53") &&
	   config_listen_ambiguous("::ffff:1.2.3.4:53"), "address + :digits is ambiguous");
	struct config *c1 = load("listen: [\"[::1:5353]\"]\nzones: [{name: mesh}]\n");
	ok(c1 && c1->nlisten == 1 && listen_port(&c1->listen[0]) == 53, "[::1:5353] is port 53");
	config_free(c1);
}

/* The name checks of a big zone (hashed, not sorted): 20,000 services of
 * 4 backends, where names are shared across services only by conflicts. Of
 * several conflicts the first in the file is reported, wherever the hash
 * puts them; backends of one service sharing a name (one address, two
 * ports) are one SRV target, not a conflict. */
static void test_names_at_scale(void)
{
	enum { NSVC = 20000, CAP = 4 << 20 };
	char *y = malloc(CAP);
	if (!y) {
		ok(false, "out of memory");
		return;
	}
	size_t n = (size_t)snprintf(y, CAP, "zones:\n  - name: mesh\n    services:\n");
	for (int i = 0; i < NSVC; i++)
		n += (size_t)snprintf(y + n, CAP - n, "      - {name: s%d, ports: {http: 80}, backends: "
		                      "[{address: 10.%d.%d.1, name: b-1}, {address: 10.%d.%d.1, port: 81, "
		                      "name: b-1}, 10.%d.%d.2, 10.%d.%d.3]}\n", i, i / 250, i % 250,
		                      i / 250, i % 250, i / 250, i % 250, i / 250, i % 250);
	size_t base = n;
	snprintf(y + n, CAP - n, "    records:\n      - {name: r, type: A, data: 1.2.3.4}\n");
	struct config *cfg = load(y);
	ok(cfg && cfg->zones[0].nservices == NSVC && cfg->zones[0].services[NSVC - 1].nbackends == 4,
	   "20,000 services, two backends of each sharing a name");
	config_free(cfg);

	/* Lines: 1-3 header, service i on 4 + i, "records:" on NSVC + 4. */
	char pos[32];
	snprintf(y + base, CAP - base, "    records:\n"
	                            "      - {name: b-1.s15000, type: A, data: 1.2.3.4}\n"
	                            "      - {name: s100, type: TXT, data: x}\n"
	                            "      - {name: 10-0-7-2.s7, type: A, data: 1.2.3.4}\n");
	snprintf(pos, sizeof(pos), "%d:9", NSVC + 5);
	bad(y, pos, "'b-1.s15000.mesh.' is already used by a backend of service 's15000' (line 15004)",
	    "of three conflicts in a big zone, the first in the file");
	snprintf(y + base, CAP - base, "    records:\n"
	                         "      - {name: s100, type: TXT, data: x}\n"
	                         "      - {name: 10-0-7-2.s7, type: A, data: 1.2.3.4}\n");
	snprintf(pos, sizeof(pos), "%d:9", NSVC + 5);
	bad(y, pos, "'s100.mesh.' is already used by service 's100' (line 104)",
	    "a record at the name of a service far from it");
	free(y);

	/* Targets are checked where a service's name has other names below
	 * it: a service or an SRV name there, whichever comes first. */
	bad("zones:\n  - name: mesh\n    services:\n"
	    "      - {name: a, ports: {http: 80}, backends: [10.0.0.1]}\n"
	    "      - {name: 10-0-0-1.a, ports: {http: 80}, backends: [10.0.0.2]}\n",
	    "5:9", "'10-0-0-1.a.mesh.' is already used by a backend of service 'a' (line 4)",
	    "a service at another's backend target");
	bad("zones:\n  - name: mesh\n    services:\n"
	    "      - {name: 10-0-0-1.a, ports: {http: 80}, backends: [10.0.0.2]}\n"
	    "      - {name: a, ports: {http: 80}, backends: [10.0.0.1]}\n",
	    "5:49", "'10-0-0-1.a.mesh.' is already used by service '10-0-0-1.a' (line 4)",
	    "a backend target at an earlier service");
	bad("zones:\n  - name: mesh\n    services:\n"
	    "      - {name: a, ports: {b-1: 80}, backends: [10.0.0.2]}\n"
	    "      - {name: _tcp.a, ports: {http: 80}, backends: [{address: 10.0.0.1, name: _b-1}]}\n",
	    "5:54", "the SRV name of service 'a' (line 4)", "a backend target at an SRV name");
}

/* config_check_zone skips a zone the loader checked and nothing edited
 * since (the journal replay at start), and checks again after every kind
 * of edit. */
static void test_check_zone_after_edits(void)
{
	static const char yaml[] =
		"zones:\n  - name: mesh\n    records:\n      - {name: x, type: A, data: 1.2.3.4}\n"
		"    services:\n      - {name: svc, ports: {http: 80}, backends: [10.0.0.1]}\n";
	static const uint8_t x[] = "\1x\4mesh", svc[] = "\3svc\4mesh", t2[] = "\x08" "10-0-0-2\3svc\4mesh";
	static const uint8_t a[4] = { 1, 2, 3, 5 }, cname[] = "\1y\4mesh";
	char err[256];
	struct config *cfg = load(yaml);
	if (!cfg) {
		ok(false, "config loads");
		return;
	}
	ok(cfg->zones[0].names_checked && config_check_zone(cfg, 0, err, sizeof(err)) == 0,
	   "a loaded zone is checked once");
	ok(config_add_record(cfg, 0, x, sizeof(x), DNS_TYPE_A, 5, a, 4, err, sizeof(err)) == 0 &&
	   !cfg->zones[0].names_checked && config_check_zone(cfg, 0, err, sizeof(err)) == 0,
	   "an added record of an RRset (its TTL with it) passes a new check");
	ok(config_add_record(cfg, 0, svc, sizeof(svc), DNS_TYPE_TXT, 30, (const uint8_t *)"\1t", 2,
	                     err, sizeof(err)) == 0 &&
	   config_check_zone(cfg, 0, err, sizeof(err)) == -1 && strstr(err, "already used by") &&
	   !cfg->zones[0].names_checked, "a record added at a service's name fails the check");
	ok(config_remove_records(cfg, 0, svc, sizeof(svc), 0, NULL, 0) == 1 &&
	   config_check_zone(cfg, 0, err, sizeof(err)) == 0, "and passes once removed");
	ok(config_add_record(cfg, 0, t2, sizeof(t2), DNS_TYPE_CNAME, 30, cname, sizeof(cname), err,
	                     sizeof(err)) == 0 &&
	   config_check_zone(cfg, 0, err, sizeof(err)) == 0 && cfg->zones[0].names_checked,
	   "a CNAME at a name no backend has yet");
	struct cfg_backend b = { .family = AF_INET, .addr = { 10, 0, 0, 2 } };
	ok(config_add_backend(cfg, 0, 0, &b, err, sizeof(err)) == 0 &&
	   config_check_zone(cfg, 0, err, sizeof(err)) == -1 && strstr(err, "10-0-0-2.svc.mesh."),
	   "a backend added whose target holds that CNAME fails the check");
	ok(config_remove_backends(cfg, 0, 0, AF_INET, b.addr, false, 0) == 1 &&
	   config_check_zone(cfg, 0, err, sizeof(err)) == 0, "and passes once removed");
	config_free(cfg);
}

/* Default backend names live in one pool per service: each digit count
 * of IPv4, IPv6 and mapped forms; copies own their names, and removing,
 * copying and freeing pooled backends frees nothing twice. */
static void test_default_names(void)
{
	struct config *cfg = load("zones:\n  - name: mesh\n    services:\n"
	                          "      - {name: s, ports: {a: 1}, backends: [0.9.10.99, 100.199.200.255, "
	                          "{address: 10.0.0.1, name: web}, \"fd00::5\", \"::ffff:1.2.3.4\", "
	                          "{address: 0.9.10.99, port: 8}]}\n");
	if (!cfg) {
		ok(false, "config loads");
		return;
	}
	struct cfg_service *s = &cfg->zones[0].services[0];
	is_str(s->backends[0].name, "0-9-10-99", "IPv4 name, 1 and 2 digits");
	is_str(s->backends[1].name, "100-199-200-255", "IPv4 name, 3 digits");
	is_str(s->backends[2].name, "web", "a name given stays");
	is_str(s->backends[3].name, "fd00--5", "IPv6 name");
	is_str(s->backends[4].name, "--ffff-1-2-3-4", "IPv4-mapped IPv6 name");
	is_str(s->backends[5].name, "0-9-10-99", "the same address on another port, the same name");
	ok(s->name_pool && s->backends[0].name_pooled && !s->backends[2].name_pooled,
	   "default names are pooled");
	struct cfg_service copy;
	ok(config_service_copy(&copy, s) == 0 && !copy.name_pool && !copy.backends[0].name_pooled &&
	   copy.backends[0].name != s->backends[0].name && strcmp(copy.backends[1].name,
	                                                           "100-199-200-255") == 0,
	   "a copy owns its names");
	config_service_clear(&copy);
	uint8_t a[4] = { 0, 9, 10, 99 };
	char err[128];
	ok(config_remove_backends(cfg, 0, 0, AF_INET, a, false, 0) == 2 && s->nbackends == 4 &&
	   strcmp(s->backends[0].name, "100-199-200-255") == 0, "pooled backends removed");
	struct cfg_backend b = { .family = AF_INET, .addr = { 100, 199, 200, 255 }, .port = 9 };
	ok(config_add_backend(cfg, 0, 0, &b, err, sizeof(err)) == 0 && s->nbackends == 5 &&
	   !s->backends[4].name_pooled && strcmp(s->backends[4].name, "100-199-200-255") == 0,
	   "an added backend shares its address's name, a copy of its own");
	config_free(cfg);
}

/* The one decimal parser (config values, record data, options). */
static void test_num_parse(void)
{
	uint64_t v = 7;
	ok(num_parse("0", 10, &v) && v == 0, "0");
	ok(num_parse("65535", 65535, &v) && v == 65535, "max itself");
	ok(!num_parse("65536", 65535, &v) && v == 65535, "max + 1 refused, *out untouched");
	ok(!num_parse("", 10, &v) && !num_parse("+1", 10, &v) && !num_parse(" 1", 10, &v) &&
	   !num_parse("1 ", 10, &v) && !num_parse("-0", 10, &v) && !num_parse("0x1", 10, &v),
	   "digits only: no empty string, sign, space or hex");
	ok(num_parse("18446744073709551615", UINT64_MAX, &v) && v == UINT64_MAX, "UINT64_MAX");
	ok(!num_parse("18446744073709551616", UINT64_MAX, &v) &&
	   !num_parse("99999999999999999999999", UINT64_MAX, &v), "no overflow");
	ok(num_parse("000042", 100, &v) && v == 42, "leading zeros");
}

int main(void)
{
	test_num_parse();
	test_example();
	test_defaults();
	test_schema_defaults();
	test_variants();
	test_multi_zone();
	test_txt_literal();
	test_parse_listen();
	test_ttl_auto();
	test_http_key();
	test_tcp_per_client();
	test_nested_zones();
	test_parse_duration();
	test_load_file_errors();
	test_bad_document();
	test_bad_zone();
	test_bad_records();
	test_bad_services();
	test_names_at_scale();
	test_check_zone_after_edits();
	test_default_names();
	test_forward();
	test_transfer();
	test_cookies_rrl();
	test_oversize_search_path();
	test_ergonomics();
	return done_testing();
}

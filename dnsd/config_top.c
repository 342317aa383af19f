/* config_top.c -- the top-level tables: listen, localities, http, tcp,
 * forward, cache, cookies, rrl, chaos, etcd, keys and search-path. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>

#include "config_int.h"
#include "dns/cookie.h"
#include "dns/tsig.h"
#include "dns/wire.h"

/* ---- top level: listen, localities -------------------------------------- */

/* An address list (listen, forward upstreams) being read, port 53 unless
 * given; errors name key. */
struct addr_list {
	struct cfg_listen *v;
	size_t *nv;
	const char *key;
};

static int addr_one(struct cfg_ctx *c, yaml_node_t *n, size_t idx, void *obj)
{
	struct addr_list *al = obj;
	const char *key = al->key;
	(void)idx;
	const char *s = cfg_scalar(c, n, key, "an address");
	if (!s)
		return -1;
	struct cfg_listen *l = &al->v[*al->nv];
	if (config_listen_ambiguous(s))
		return cfg_fail(c, n, "%s: '%.*s' is an IPv6 address ending in a number, not an "
		                "address and a port: write \"[%.*s]:%s\" (quoted) for port %s, or "
		                "\"[%.*s]\" for that address on port 53", key, CFG_QUOTE, s,
		                (int)(strrchr(s, ':') - s), s, strrchr(s, ':') + 1, strrchr(s, ':') + 1,
		                CFG_QUOTE, s);
	if (config_parse_listen(s, 53, l) == -1)
		return cfg_fail(c, n, "%s: bad address '%.*s' (expected ADDR, ADDR:PORT or "
		                "[ADDR6]:PORT, port 1..65535)", key, CFG_QUOTE, s);
	for (size_t i = 0; i < *al->nv; i++) {
		if (al->v[i].len == l->len && memcmp(&al->v[i].ss, &l->ss, l->len) == 0)
			return cfg_fail(c, n, "%s: duplicate address '%.*s'", key, CFG_QUOTE, s);
	}
	(*al->nv)++;
	return 0;
}

static int item_listen(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	struct config *cfg = obj;
	(void)it;
	size_t count = item_count(n);
	if (n->type == YAML_SEQUENCE_NODE && count == 0)
		return cfg_fail(c, n, "listen: empty list");
	if (n->type == YAML_MAPPING_NODE)
		return cfg_fail(c, n, "listen: expected an address or a list, got a mapping");
	free(cfg->listen);            /* the default */
	cfg->nlisten = 0;
	cfg->listen = cfg_alloc_array(c, n, count, sizeof(*cfg->listen));
	if (!cfg->listen)
		return -1;
	struct addr_list al = { cfg->listen, &cfg->nlisten, "listen" };
	return each_item(c, n, "listen", true, &al, addr_one);
}

/* http: ADDR:PORT, the operator endpoint (off when absent). */
static int item_http(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	struct config *cfg = obj;
	const char *s = cfg_scalar(c, n, it->key, "an address");
	if (!s)
		return -1;
	if (!strchr(s, ':') || config_parse_listen_port0(s, 0, false, &cfg->http) == -1)
		return cfg_fail(c, n, "http: '%.*s' is not ADDR:PORT or [V6]:PORT", CFG_QUOTE, s);
	cfg->have_http = true;
	return 0;
}

static int item_localities(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                           const struct schema_item *it)
{
	struct config *cfg = obj;
	(void)it;
	if (n->type != YAML_MAPPING_NODE)
		return cfg_fail(c, n, "localities: expected a mapping of SUBNET: LABEL, got %s",
		                cfg_node_kind(n));
	size_t count = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	cfg->localities = cfg_alloc_array(c, n, count, sizeof(*cfg->localities));
	if (!cfg->localities)
		return -1;
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = cfg_node_get(c, p->key), *v = cfg_node_get(c, p->value);
		if (!k || !v)
			return cfg_fail(c, n, "localities: malformed mapping");
		if (cfg_visit(c, k) == -1)
			return -1;
		const char *ks = cfg_scalar(c, k, "localities", "a subnet");
		if (!ks)
			return -1;
		struct cfg_locality *loc = &cfg->localities[cfg->nlocalities];
		const char *why;
		if (cfg_parse_subnet(ks, loc, &why) == -1)
			return cfg_fail(c, k, "localities: bad subnet '%.*s': %s", CFG_QUOTE, ks, why);
		for (size_t i = 0; i < cfg->nlocalities; i++) {
			const struct cfg_locality *o = &cfg->localities[i];
			if (o->family == loc->family && o->prefix == loc->prefix &&
			    memcmp(o->addr, loc->addr, 16) == 0)
				return cfg_fail(c, k, "localities: duplicate subnet '%.*s'", CFG_QUOTE, ks);
		}
		const char *vs = cfg_scalar(c, v, "localities", "a locality label");
		if (!vs)
			return -1;
		if (*vs == '\0')
			return cfg_fail(c, v, "localities: empty label");
		if (!(loc->label = cfg_dup_str(c, v, vs)))
			return -1;
		cfg->nlocalities++;
	}
	return 0;
}

static const struct schema_item tcp_items[] = {
	ITEM("idle-timeout", item_msecs, struct config, tcp_idle_timeout_ms, 1, CFG_DAY_MS, 0,
	     DEF(10000)),
	ITEM("max-clients", item_u32, struct config, tcp_max_clients, 1, 65535, 0, DEF(256)),
	/* 0: no per-client cap. */
	ITEM("max-per-client", item_u32, struct config, tcp_max_per_client, 0, 65535, 0, DEF(64)),
	ITEM_END,
};

static int item_upstreams(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                          const struct schema_item *it)
{
	struct cfg_forward *f = obj;
	(void)it;
	size_t count = item_count(n);
	if (n->type == YAML_SEQUENCE_NODE && count == 0)
		return cfg_fail(c, n, "upstreams: empty list");
	if (count > CFG_MAX_UPSTREAMS)
		return cfg_fail(c, n, "upstreams: at most %d addresses", CFG_MAX_UPSTREAMS);
	if (n->type == YAML_MAPPING_NODE)
		return cfg_fail(c, n, "upstreams: expected an address or a list, got a mapping");
	f->upstreams = cfg_alloc_array(c, n, count, sizeof(*f->upstreams));
	if (!f->upstreams)
		return -1;
	struct addr_list al = { f->upstreams, &f->nupstreams, "upstreams" };
	return each_item(c, n, "upstreams", true, &al, addr_one);
}

static const struct schema_item forward_items[] = {
	ITEM_FN("upstreams", item_upstreams, 0),
	ITEM("resolv-conf", item_str, struct cfg_forward, resolv_conf, 0, 0, 0),
	/* SERVFAIL to the client after this. */
	ITEM("timeout", item_msecs, struct cfg_forward, timeout_ms, 100, 60000, 0, DEF(2000)),
	/* Upstream queries at once. */
	ITEM("max-outstanding", item_u32, struct cfg_forward, max_outstanding, 1, 60000, 0,
	     DEF(1000)),
	/* false: UDP, TCP on truncation. */
	ITEM("tcp", item_bool, struct cfg_forward, tcp, 0, 0, 0, DEF(false)),
	ITEM_END,
};

/* forward: upstreams and resolv-conf are two sources of the same list. */
static int item_forward(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	struct config *cfg = obj;
	if (schema_map(c, n, forward_items, &cfg->forward, 0, it->key) == -1)
		return -1;
	yaml_node_t *rc = cfg_map_find(c, n, "resolv-conf");
	if (cfg->forward.nupstreams && rc)
		return cfg_fail(c, rc, "forward: give either upstreams or resolv-conf, not both");
	if (!cfg->forward.nupstreams && !rc)
		return cfg_fail(c, n, "forward: missing upstreams (or resolv-conf)");
	return 0;
}

static const struct schema_item cache_items[] = {
	/* 0: no cache. */
	ITEM("max-entries", item_u32, struct cfg_cache, max_entries, 0, 100000000, 0, DEF(10000)),
	ITEM("max-ttl", item_secs, struct cfg_cache, max_ttl, 1, CFG_TTL_MAX, 0, DEF(86400)),
	ITEM("min-ttl", item_secs, struct cfg_cache, min_ttl, 0, 86400, 0, DEF(0)),
	/* NXDOMAIN and NODATA. */
	ITEM("neg-max-ttl", item_secs, struct cfg_cache, neg_max_ttl, 0, 86400, 0, DEF(3600)),
	ITEM_END,
};

static int item_cache(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	struct config *cfg = obj;
	if (schema_map(c, n, cache_items, &cfg->cache, 0, it->key) == -1)
		return -1;
	if (cfg->cache.min_ttl > cfg->cache.max_ttl) {
		yaml_node_t *v = cfg_map_find(c, n, "min-ttl");
		return cfg_fail(c, v ? v : n, "cache: min-ttl (%us) is above max-ttl (%us)",
		                (unsigned)cfg->cache.min_ttl, (unsigned)cfg->cache.max_ttl);
	}
	return 0;
}

/* ---- cookies and rate limiting ----------------------------------------------- */

struct cookies_parse {
	struct cfg_cookies *ck;
	char *secret_file;
	char *previous_file;
};

static int item_ck_enabled(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                           const struct schema_item *it)
{
	return item_bool(c, n, ((struct cookies_parse *)obj)->ck, it);
}

static const struct schema_item cookie_items[] = {
	/* These two are fields of struct cfg_cookies (their defaults are
	 * applied there), the files of struct cookies_parse. */
	ITEM("enabled", item_ck_enabled, struct cfg_cookies, enabled, 0, 0, 0, DEF(true)),
	ITEM("require-under-load", item_ck_enabled, struct cfg_cookies, require, 0, 0, 0,
	     DEF(false)),
	ITEM("secret-file", item_str, struct cookies_parse, secret_file, 0, 0, 0),
	ITEM("previous-secret-file", item_str, struct cookies_parse, previous_file, 0, 0, 0),
	ITEM_END,
};

static char *read_secret_file(struct cfg_ctx *c, yaml_node_t *n, const char *path);

/* A cookie secret: 32 hex digits in a file. */
static int cookie_secret_load(struct cfg_ctx *c, yaml_node_t *n, const char *path, uint8_t out[16])
{
	char *text = read_secret_file(c, n, path);
	if (!text)
		return -1;
	int rc = cookie_secret_from_hex(text, out);
	sodium_memzero(text, strlen(text));
	free(text);
	if (rc == -1)
		return cfg_fail(c, n, "cookies: %.*s: expected 16 bytes as 32 hex digits", CFG_QUOTE, path);
	return 0;
}

static int item_cookies(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	struct config *cfg = obj;
	struct cookies_parse cp = { .ck = &cfg->cookies };
	int rc = -1;
	if (schema_map(c, n, cookie_items, &cp, 0, it->key) == -1)
		goto out;
	if (cp.secret_file) {
		if (cookie_secret_load(c, cfg_map_find(c, n, "secret-file"), cp.secret_file,
		                       cfg->cookies.secret) == -1)
			goto out;
		cfg->cookies.have_secret = true;
	}
	if (cp.previous_file) {
		yaml_node_t *pn = cfg_map_find(c, n, "previous-secret-file");
		if (!cp.secret_file) {
			cfg_fail(c, pn, "cookies: previous-secret-file needs secret-file");
			goto out;
		}
		if (cookie_secret_load(c, pn, cp.previous_file, cfg->cookies.previous) == -1)
			goto out;
		cfg->cookies.have_previous = true;
	}
	rc = 0;
out:
	free(cp.secret_file);
	free(cp.previous_file);
	return rc;
}

/* A list of address prefixes (rrl exempt, chaos allow) into *v and *nv,
 * replacing what was there; errors name key. */
struct prefix_list {
	struct cfg_prefix **v;
	size_t *nv;
	const char *key;
};

static int prefix_one(struct cfg_ctx *c, yaml_node_t *n, size_t idx, void *obj)
{
	struct prefix_list *l = obj;
	(void)idx;
	const char *s = cfg_scalar(c, n, l->key, "an address prefix");
	if (!s)
		return -1;
	struct cfg_locality loc;
	const char *why;
	if (cfg_parse_subnet(s, &loc, &why) == -1)
		return cfg_fail(c, n, "%s: bad prefix '%.*s': %s", l->key, CFG_QUOTE, s, why);
	struct cfg_prefix *p = &(*l->v)[(*l->nv)++];
	p->family = loc.family;
	memcpy(p->addr, loc.addr, 16);
	p->prefix = loc.prefix;
	return 0;
}

static int prefix_list(struct cfg_ctx *c, yaml_node_t *n, const char *key, struct cfg_prefix **v,
                       size_t *nv)
{
	if (n->type != YAML_SEQUENCE_NODE)
		return cfg_fail(c, n, "%s: expected a list of prefixes, got %s", key, cfg_node_kind(n));
	if (item_count(n) > CFG_RRL_EXEMPT_MAX)
		return cfg_fail(c, n, "%s: at most %d prefixes", key, CFG_RRL_EXEMPT_MAX);
	free(*v);
	*v = NULL;
	*nv = 0;
	if (item_count(n) == 0)
		return 0;
	*v = cfg_alloc_array(c, n, item_count(n), sizeof(**v));
	if (!*v)
		return -1;
	struct prefix_list l = { v, nv, key };
	return each_item(c, n, key, false, &l, prefix_one);
}

static int item_rrl_exempt(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                           const struct schema_item *it)
{
	struct cfg_rrl *r = obj;
	(void)it;
	return prefix_list(c, n, "exempt", &r->exempt, &r->nexempt);
}

static const struct schema_item rrl_items[] = {
	/* 0: off. */
	ITEM("responses-per-second", item_u32, struct cfg_rrl, rate, 0, 100000, 0, DEF(0)),
	ITEM("window", item_secs, struct cfg_rrl, window, 1, 3600, 0, DEF(15)),
	/* 0: drop all. */
	ITEM("slip", item_u32, struct cfg_rrl, slip, 0, 10, 0, DEF(2)),
	ITEM("ipv4-prefix", item_u32, struct cfg_rrl, v4_prefix, 8, 32, 0, DEF(24)),
	ITEM("ipv6-prefix", item_u32, struct cfg_rrl, v6_prefix, 16, 128, 0, DEF(56)),
	/* Loopback. */
	ITEM_FN("exempt", item_rrl_exempt, 0, DEF_TEXT("[127.0.0.0/8, \"::1/128\"]")),
	ITEM_END,
};

/* chaos: {allow: [prefixes]}: who may read CHAOS service status
 * (<service>, _why.<service>: backend addresses, health, check errors).
 * An empty list allows nobody (the default is in chaos_items). */
static int item_chaos_allow(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                            const struct schema_item *it)
{
	struct cfg_chaos *ch = obj;
	(void)it;
	return prefix_list(c, n, "allow", &ch->allow, &ch->nallow);
}

static const struct schema_item chaos_items[] = {
	/* Loopback; an empty list allows nobody. */
	ITEM_FN("allow", item_chaos_allow, 0, DEF_TEXT("[127.0.0.0/8, \"::1/128\"]")),
	ITEM_END,
};

/* ---- etcd ------------------------------------------------------------------ */

static int etcd_endpoint_one(struct cfg_ctx *c, yaml_node_t *n, size_t idx, void *obj)
{
	struct cfg_etcd *e = obj;
	(void)idx;
	const char *s = cfg_scalar(c, n, "endpoints", "a URL or host:port");
	if (!s)
		return -1;
	size_t len = strlen(s);
	if (len == 0 || len > 200 || strpbrk(s, " \t\r\n\"\\"))
		return cfg_fail(c, n, "endpoints: bad endpoint '%.*s' (expected e.g. "
		                "http://127.0.0.1:2379 or 127.0.0.1:2379)", CFG_QUOTE, s);
	const char *colon = strstr(s, "://");
	if (colon && strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0)
		return cfg_fail(c, n, "endpoints: '%.*s': the scheme must be http or https", CFG_QUOTE,
		                s);
	for (size_t i = 0; i < e->nendpoints; i++) {
		if (strcmp(e->endpoints[i], s) == 0)
			return cfg_fail(c, n, "endpoints: duplicate endpoint '%.*s'", CFG_QUOTE, s);
	}
	if (!(e->endpoints[e->nendpoints] = cfg_dup_str(c, n, s)))
		return -1;
	e->nendpoints++;
	return 0;
}

static int item_etcd_endpoints(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                               const struct schema_item *it)
{
	struct cfg_etcd *e = obj;
	(void)it;
	size_t count = item_count(n);
	if (n->type == YAML_MAPPING_NODE)
		return cfg_fail(c, n, "endpoints: expected an endpoint or a list, got a mapping");
	if (count == 0)
		return cfg_fail(c, n, "endpoints: empty list");
	if (count > CFG_ETCD_MAX_ENDPOINTS)
		return cfg_fail(c, n, "endpoints: at most %d endpoints", CFG_ETCD_MAX_ENDPOINTS);
	e->endpoints = cfg_alloc_array(c, n, count, sizeof(*e->endpoints));
	if (!e->endpoints)
		return -1;
	return each_item(c, n, "endpoints", true, e, etcd_endpoint_one);
}

/* prefix: an absolute key prefix; a missing trailing '/' is added, so that
 * /skydns does not also read /skydnsfoo/. */
static int item_etcd_prefix(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                            const struct schema_item *it)
{
	struct cfg_etcd *e = obj;
	const char *s = cfg_scalar(c, n, it->key, "a key prefix");
	if (!s)
		return -1;
	size_t len = strlen(s);
	if (s[0] != '/' || len > 200)
		return cfg_fail(c, n, "prefix: '%.*s' must start with '/' (e.g. /skydns/), at most 200 "
		                "bytes", CFG_QUOTE, s);
	char *d = malloc(len + 2);
	if (!d)
		return cfg_fail(c, n, "out of memory");
	memcpy(d, s, len + 1);
	if (d[len - 1] != '/')
		memcpy(d + len, "/", 2);
	free(e->prefix);
	e->prefix = d;
	return 0;
}

/* A TLS file: relative to the configuration file's directory, and readable
 * now (a typo fails at load, not at the first connection). */
static int item_etcd_file(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                          const struct schema_item *it)
{
	const char *s = cfg_scalar(c, n, it->key, "a file path");
	if (!s)
		return -1;
	char full[4096];
	const char *slash = strrchr(c->name, '/');
	if (s[0] != '/' && slash)
		snprintf(full, sizeof(full), "%.*s/%s", (int)(slash - c->name), c->name, s);
	else
		snprintf(full, sizeof(full), "%s", s);
	if (access(full, R_OK) == -1)
		return cfg_fail(c, n, "%s: %s: %s", it->key, full, strerror(errno));
	char *d = cfg_dup_str(c, n, full);
	if (!d)
		return -1;
	char **dst = cfg_field(obj, it);
	free(*dst);
	*dst = d;
	return 0;
}

static const struct schema_item etcd_items[] = {
	ITEM_FN("endpoints", item_etcd_endpoints, ITEM_REQUIRED),
	ITEM("prefix", item_etcd_prefix, struct cfg_etcd, prefix, 0, 0, 0, DEF_TEXT("/skydns/")),
	ITEM("dial-timeout", item_msecs, struct cfg_etcd, dial_timeout_ms, 10, 60000, 0, DEF(2000)),
	/* A range read, not the watch. */
	ITEM("request-timeout", item_msecs, struct cfg_etcd, request_timeout_ms, 100, 600000, 0,
	     DEF(5000)),
	/* Larger values are skipped. */
	ITEM("max-value-size", item_u32, struct cfg_etcd, max_value_size, 64, 1048576, 0,
	     DEF(4096)),
	ITEM("username", item_str, struct cfg_etcd, username, 0, 0, 0),
	ITEM("password", item_str, struct cfg_etcd, password, 0, 0, 0),
	ITEM("tls-ca", item_etcd_file, struct cfg_etcd, tls_ca, 0, 0, 0),
	ITEM("tls-cert", item_etcd_file, struct cfg_etcd, tls_cert, 0, 0, 0),
	ITEM("tls-key", item_etcd_file, struct cfg_etcd, tls_key, 0, 0, 0),
	/* /ready before the first sync. */
	ITEM("serve-stale", item_bool, struct cfg_etcd, serve_stale, 0, 0, 0, DEF(false)),
	ITEM_END,
};

static int item_etcd(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	struct config *cfg = obj;
	struct cfg_etcd *e = &cfg->etcd;
	if (schema_map(c, n, etcd_items, e, 0, it->key) == -1)
		return -1;
	if (!e->username != !e->password)
		return cfg_fail(c, n, "etcd: give username and password together");
	if (!e->tls_cert != !e->tls_key)
		return cfg_fail(c, n, "etcd: give tls-cert and tls-key together");
	return 0;
}

void cfg_etcd_clear(struct cfg_etcd *e)
{
	for (size_t i = 0; i < e->nendpoints; i++)
		free(e->endpoints[i]);
	free(e->endpoints);
	free(e->prefix);
	free(e->username);
	if (e->password)
		sodium_memzero(e->password, strlen(e->password));
	free(e->password);
	free(e->tls_ca);
	free(e->tls_cert);
	free(e->tls_key);
	memset(e, 0, sizeof(*e));
}

/* ---- TSIG keys --------------------------------------------------------------- */

struct key_parse {
	char *name;
	int alg;                      /* enum tsig_alg; index into tsig_alg_names */
	char *secret;
	char *secret_file;
};

static const char *const tsig_alg_names[] = { "hmac-sha256", "hmac-sha512", NULL };

static const struct schema_item key_items[] = {
	ITEM("name", item_str, struct key_parse, name, 0, 0, ITEM_REQUIRED),
	ITEM_ENUM("algorithm", struct key_parse, alg, tsig_alg_names, DEF(TSIG_HMAC_SHA256)),
	ITEM("secret", item_str, struct key_parse, secret, 0, 0, 0),
	ITEM("secret-file", item_str, struct key_parse, secret_file, 0, 0, 0),
	ITEM_END,
};

/* The base64 text of a secret file (relative paths are relative to the
 * configuration file's directory). NULL after reporting at n. */
static char *read_secret_file(struct cfg_ctx *c, yaml_node_t *n, const char *path)
{
	char full[4096];
	const char *slash = strrchr(c->name, '/');
	if (path[0] != '/' && slash)
		snprintf(full, sizeof(full), "%.*s/%s", (int)(slash - c->name), c->name, path);
	else
		snprintf(full, sizeof(full), "%s", path);
	c->cfg->reads_files = true;
	FILE *f = fopen(full, "rb");
	if (!f) {
		cfg_fail(c, n, "secret-file: %s: %s", full, strerror(errno));
		return NULL;
	}
	char *buf = calloc(1, 4096);
	size_t got = buf ? fread(buf, 1, 4095, f) : 0;
	bool more = buf && fgetc(f) != EOF;
	fclose(f);
	if (!buf) {
		cfg_fail(c, n, "out of memory");
		return NULL;
	}
	if (more || got == 0) {
		cfg_fail(c, n, "secret-file: %s: %s", full, more ? "larger than 4095 bytes" : "empty");
		free(buf);
		return NULL;
	}
	return buf;
}

static int key_one(struct cfg_ctx *c, yaml_node_t *n, size_t idx, void *obj)
{
	struct config *cfg = obj;
	(void)idx;
	struct key_parse kp = { 0 };
	int rc = -1;
	char *filetext = NULL;
	if (schema_map(c, n, key_items, &kp, 0, "key") == -1)
		goto out;
	yaml_node_t *sn = cfg_map_find(c, n, "secret"), *fn = cfg_map_find(c, n, "secret-file");
	if (!!kp.secret == !!kp.secret_file) {
		cfg_fail(c, sn ? sn : n, "key: give either secret or secret-file");
		goto out;
	}
	if (kp.secret_file && !(filetext = read_secret_file(c, fn, kp.secret_file)))
		goto out;
	struct tsig_key *k = &cfg->keys[cfg->nkeys];
	const char *why;
	yaml_node_t *nn = cfg_map_find(c, n, "name");
	if (tsig_key_init(k, kp.name, (enum tsig_alg)kp.alg, filetext ? filetext : kp.secret, &why) == -1) {
		cfg_fail(c, strcmp(why, "bad key name") == 0 ? nn : filetext ? fn : sn, "key %.*s: %s",
		         CFG_QUOTE, kp.name, why);
		goto out;
	}
	for (size_t i = 0; i < cfg->nkeys; i++)
		if (wire_name_equal(cfg->keys[i].name, cfg->keys[i].namelen, k->name, k->namelen)) {
			cfg_fail(c, nn, "key: duplicate name '%.*s'", CFG_QUOTE, kp.name);
			goto out;
		}
	k->name_text = kp.name;
	kp.name = NULL;
	cfg->nkeys++;
	rc = 0;
out:
	if (filetext)
		sodium_memzero(filetext, strlen(filetext));
	if (kp.secret)
		sodium_memzero(kp.secret, strlen(kp.secret));
	free(filetext);
	free(kp.name);
	free(kp.secret);
	free(kp.secret_file);
	return rc;
}

static int item_keys(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	struct config *cfg = obj;
	(void)it;
	if (n->type != YAML_SEQUENCE_NODE)
		return cfg_fail(c, n, "keys: expected a list of {name, algorithm, secret}, got %s",
		                cfg_node_kind(n));
	cfg->keys = cfg_alloc_array(c, n, cfg_seq_len(n), sizeof(*cfg->keys));
	if (!cfg->keys)
		return -1;
	return each_item(c, n, "keys", false, cfg, key_one);
}

/* One search-path suffix: a name, or "*.<name>" for any one label first. */
static int search_one(struct cfg_ctx *c, yaml_node_t *n, size_t idx, void *obj)
{
	struct config *cfg = obj;
	(void)idx;
	const char *text = cfg_scalar(c, n, "search-path", "a name");
	if (!text)
		return -1;
	struct cfg_search *e = &cfg->search[cfg->nsearch];
	bool any = strncmp(text, "*.", 2) == 0;
	uint8_t wire[DNS_NAME_MAX];
	size_t len;
	if (cfg_name_parse(c, n, "search-path", any ? text + 2 : text, NULL, 0, wire, &len) == -1)
		return -1;
	if (len <= 1)
		return cfg_fail(c, n, "search-path: the root is not a suffix");
	for (size_t i = 0; i < cfg->nsearch; i++)
		if (cfg->search[i].any_label == any &&
		    wire_name_equal(cfg->search[i].name, cfg->search[i].len, wire, len))
			return cfg_fail(c, n, "search-path: duplicate suffix '%.*s'", CFG_QUOTE, text);
	memcpy(e->name, wire, len);
	e->len = (uint8_t)len;
	e->any_label = any;
	cfg->nsearch++;
	return 0;
}

static int item_search_path(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                            const struct schema_item *it)
{
	struct config *cfg = obj;
	(void)it;
	if (n->type == YAML_MAPPING_NODE)
		return cfg_fail(c, n, "search-path: expected a name or a list of names, got a mapping");
	if (item_count(n) > CFG_SEARCH_MAX)
		return cfg_fail(c, n, "search-path: at most %d suffixes", CFG_SEARCH_MAX);
	cfg->nsearch = 0;
	return each_item(c, n, "search-path", true, cfg, search_one);
}

/* The defaults of every section apply whether it is written or not. */
const struct schema_item cfg_top_items[] = {
	ITEM_FN("listen", item_listen, 0, DEF_TEXT("127.0.0.1:53")),
	/* 0: one UDP worker per core. */
	ITEM("workers", item_u32, struct config, workers, 0, CFG_MAX_WORKERS, 0, DEF(0)),
	/* The tcp keys are fields of struct config itself. */
	{ .key = "tcp", .parse = item_map, .off = 0, .aux = tcp_items, .flags = ITEM_TABLE },
	/* The largest UDP answer we send. */
	ITEM("udp-max-payload", item_u16, struct config, udp_max_payload, 512, 4096, 0,
	     DEF(DNS_UDP_DEFAULT)),
	ITEM_FN("localities", item_localities, 0),
	ITEM_FN("http", item_http, 0),
	ITEM_FN("zones", item_zones, 0),
	ITEM_SUB("forward", item_forward, struct config, forward, forward_items, 0),
	ITEM_SUB("cache", item_cache, struct config, cache, cache_items, 0),
	ITEM_FN("keys", item_keys, 0),
	ITEM_FN("transfer", item_top_transfer, 0),
	ITEM_SUB("cookies", item_cookies, struct config, cookies, cookie_items, 0),
	ITEM_MAP("rrl", struct config, rrl, rrl_items, 0),
	ITEM_FN("search-path", item_search_path, 0),
	ITEM_MAP("chaos", struct config, chaos, chaos_items, 0),
	ITEM_SUB("etcd", item_etcd, struct config, etcd, etcd_items, 0),
	ITEM_END,
};


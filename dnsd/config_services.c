/* config_services.c -- the tables of a service: its ports, health checks and
 * backends (with their default names). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"
#include "util/addr.h"
#include "svcname.h"
#include "dns/wire.h"

/* ---- checks ------------------------------------------------------------- */

static const char *const check_type_names[] = { "none", "tcp", "http", "https", NULL };
static const char *const initial_state_names[] = { "up", "down", NULL };

static int expect_one(struct cfg_ctx *c, yaml_node_t *n, size_t idx, void *obj)
{
	struct cfg_check *k = obj;
	static const struct schema_item code = { .key = "expect", .min = 100, .max = 599 };
	uint64_t v;
	(void)idx;
	if (k->nexpect == CFG_MAX_EXPECT)
		return cfg_fail(c, n, "expect: at most %d status codes", CFG_MAX_EXPECT);
	if (cfg_get_uint(c, n, &code, &v) == -1)
		return -1;
	k->expect[k->nexpect++] = (uint16_t)v;
	return 0;
}

/* A status code or a list of them; replaces an inherited list. */
static int item_expect(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	struct cfg_check *k = obj;
	(void)it;
	if (n->type == YAML_MAPPING_NODE)
		return cfg_fail(c, n, "expect: expected a status code or a list, got a mapping");
	k->nexpect = 0;
	return each_item(c, n, "expect", true, k, expect_one);
}

static int item_path(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	const char *s = cfg_scalar(c, n, it->key, "a path");
	if (!s)
		return -1;
	if (s[0] != '/')
		return cfg_fail(c, n, "path: must start with '/', got '%.*s'", CFG_QUOTE, s);
	return item_str(c, n, obj, it);
}

/* A service's check starts from these defaults; a backend's from its
 * service's check. A timeout nobody wrote is cut to the interval
 * (check_parse). */
static const struct schema_item check_items[] = {
	ITEM_ENUM("type", struct cfg_check, type, check_type_names, DEF(CFG_CHECK_NONE)),
	ITEM("interval", item_msecs, struct cfg_check, interval_ms, 1, CFG_DAY_MS, 0, DEF(1000)),
	ITEM("timeout", item_msecs, struct cfg_check, timeout_ms, 1, CFG_DAY_MS, 0, DEF(1000)),
	ITEM("rise", item_u32, struct cfg_check, rise, 1, 1000, 0, DEF(2)),
	ITEM("fall", item_u32, struct cfg_check, fall, 1, 1000, 0, DEF(3)),
	/* 0: the backend's port. */
	ITEM("port", item_u16, struct cfg_check, port, 0, 65535, 0, DEF(0)),
	ITEM("path", item_path, struct cfg_check, path, 0, 0, 0, DEF_TEXT("/")),
	ITEM("host", item_str, struct cfg_check, host, 0, 0, 0),
	ITEM("expect", item_expect, struct cfg_check, expect, 0, 0, 0),
	ITEM_ENUM("initial-state", struct cfg_check, initial, initial_state_names,
	          DEF(CFG_INITIAL_UP)),
	/* 0: no flap damping. */
	ITEM("flap-limit", item_u32, struct cfg_check, flap_limit, 0, 1000, 0, DEF(0)),
	ITEM("flap-window", item_msecs, struct cfg_check, flap_window_ms, 1000, CFG_DAY_MS, 0,
	     DEF(60000)),
	ITEM("flap-hold", item_msecs, struct cfg_check, flap_hold_ms, 1000, CFG_DAY_MS, 0,
	     DEF(60000)),
	ITEM_END,
};

void cfg_check_clear(struct cfg_check *k)
{
	free(k->path);
	free(k->host);
	k->path = NULL;
	k->host = NULL;
}

/* dst (empty) becomes a deep copy of src. */
static int check_copy(struct cfg_ctx *c, const yaml_node_t *n, struct cfg_check *dst,
                      const struct cfg_check *src)
{
	*dst = *src;
	dst->path = NULL;
	dst->host = NULL;
	if ((src->path && !(dst->path = cfg_dup_str(c, n, src->path))) ||
	    (src->host && !(dst->host = cfg_dup_str(c, n, src->host))))
		return -1;
	return 0;
}

/* Parses check mapping n over k (which holds the defaults or the service's
 * settings). A timeout nobody wrote is cut to the interval, so "interval:
 * 200ms" alone is valid; a written one longer than the interval is an error,
 * reported where it was written (or at the interval that made it too long).
 * timeout_set says whether the inherited timeout was written. */
static int check_parse(struct cfg_ctx *c, yaml_node_t *n, struct cfg_check *k, bool timeout_set,
                       bool *set_here)
{
	if (schema_map(c, n, check_items, k, 0, "check") == -1)
		return -1;
	yaml_node_t *tn = cfg_map_find(c, n, "timeout"), *in = cfg_map_find(c, n, "interval");
	*set_here = tn != NULL;
	if (!tn && !timeout_set && k->timeout_ms > k->interval_ms)
		k->timeout_ms = k->interval_ms;
	if (k->timeout_ms > k->interval_ms)
		return cfg_fail(c, tn ? tn : in ? in : n,
		                "check: timeout %ums is longer than interval %ums",
		                (unsigned)k->timeout_ms, (unsigned)k->interval_ms);
	return 0;
}

static int item_svc_check(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                          const struct schema_item *it)
{
	struct cfg_service *s = obj;
	(void)it;
	return check_parse(c, n, &s->check, false, &c->svc_timeout_set);
}

/* A backend's own check: the service's settings with these over them. */
static int item_backend_check(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                              const struct schema_item *it)
{
	struct cfg_backend *b = obj;
	bool set;
	(void)it;
	if (!(b->check = calloc(1, sizeof(*b->check))))
		return cfg_fail(c, n, "out of memory");
	if (check_copy(c, n, b->check, &c->svc->check) == -1)
		return -1;
	return check_parse(c, n, b->check, c->svc_timeout_set, &set);
}

/* Frees b's own check, if it has one. */
void cfg_backend_check_free(struct cfg_backend *b)
{
	if (b->check) {
		cfg_check_clear(b->check);
		free(b->check);
		b->check = NULL;
	}
}

/* ---- backends ----------------------------------------------------------- */

static int item_address(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                        const struct schema_item *it)
{
	struct cfg_backend *b = obj;
	const char *s = cfg_scalar(c, n, it->key, "an IP address");
	if (!s)
		return -1;
	if (cfg_parse_addr(s, &b->family, b->addr) == -1)
		return cfg_fail(c, n, "%s: bad IP address '%.*s'", it->key, CFG_QUOTE, s);
	return 0;
}

static int item_backend_name(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                             const struct schema_item *it)
{
	const char *s = cfg_scalar(c, n, it->key, "a name");
	if (!s)
		return -1;
	if (!cfg_simple_label(s, DNS_LABEL_MAX))
		return cfg_fail(c, n, "name: '%.*s' is not a single DNS label of 1..63 letters, digits, "
		                "'-' or '_'", CFG_QUOTE, s);
	return item_str(c, n, obj, it);
}

/* Without a name, a backend is named after its address (backend_one);
 * without a check, it has its service's. */
static const struct schema_item backend_items[] = {
	ITEM_FN("address", item_address, ITEM_REQUIRED),
	/* 0: each port of the service. */
	ITEM("port", item_u16, struct cfg_backend, port, 1, 65535, 0, DEF(0)),
	ITEM("weight", item_u32, struct cfg_backend, weight, 1, 65535, 0, DEF(100)),
	ITEM("priority", item_u16, struct cfg_backend, priority, 0, 65535, 0, DEF(0)),
	ITEM("locality", item_str, struct cfg_backend, locality, 0, 0, 0),
	ITEM("name", item_backend_name, struct cfg_backend, name, 0, 0, 0),
	ITEM_FN("check", item_backend_check, 0),
	ITEM_END,
};

void config_backend_defaults(struct cfg_backend *b)
{
	schema_defaults(NULL, NULL, backend_items, b);
}

int cfg_addr_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

/* A backend's default name, its address as a label: 127.0.0.2 ->
 * 127-0-0-2, fd00::5 -> fd00--5 (the text of inet_ntop, so one address
 * has one name and two addresses never share one). IPv4 without printf:
 * a million of them are made for a big config. Returns the length. */
size_t config_addr_label(int family, const uint8_t *addr, char *out)
{
	size_t n = 0;
	if (family == AF_INET) {
		for (int i = 0; i < 4; i++) {
			unsigned v = addr[i];
			if (i)
				out[n++] = '-';
			if (v >= 100)
				out[n++] = (char)('0' + v / 100);
			if (v >= 10)
				out[n++] = (char)('0' + v / 10 % 10);
			out[n++] = (char)('0' + v % 10);
		}
		out[n] = '\0';
		return n;
	}
	addr_text(family, addr, -1, false, out, INET6_ADDRSTRLEN);
	for (; out[n]; n++) {
		if (out[n] == '.' || out[n] == ':')
			out[n] = '-';
	}
	return n;
}

static int backend_one(struct cfg_ctx *c, yaml_node_t *n, size_t idx, void *obj)
{
	struct cfg_service *s = obj;
	(void)idx;
	if (s->nbackends == CFG_MAX_BACKENDS)
		return cfg_fail(c, n, "backends: more than %d backends in one service", CFG_MAX_BACKENDS);
	struct cfg_backend *b = &s->backends[s->nbackends++];
	config_backend_defaults(b);
	b->line = cfg_node_line(n);
	b->col = cfg_node_col(n);
	c->svc = s;
	if (n->type == YAML_SCALAR_NODE) {
		static const struct schema_item addr_item = ITEM_FN("address", item_address, 0);
		if (item_address(c, n, b, &addr_item) == -1)
			return -1;
	} else if (schema_map(c, n, backend_items, b, 0, "backend") == -1) {
		return -1;
	}

	if (!b->name) {
		/* item_backends made room for a name per backend. */
		b->name = c->names + c->names_len;
		b->name_pooled = true;
		c->names_len += config_addr_label(b->family, b->addr, b->name) + 1;
	}
	uint8_t target[DNS_NAME_MAX];
	if (!svcname_target(target, b->name, s->owner, s->ownerlen))
		return cfg_fail(c, n, "backend: target name '%s.%s' is longer than 255 bytes", b->name,
		                s->name);

	for (size_t i = 0; i + 1 < s->nbackends; i++) {
		const struct cfg_backend *o = &s->backends[i];
		bool same_addr = o->family == b->family &&
		                 memcmp(o->addr, b->addr, (size_t)cfg_addr_len(b->family)) == 0;
		if (same_addr && o->port == b->port) {
			char text[INET6_ADDRSTRLEN], port[16] = "";
			addr_text(b->family, b->addr, -1, false, text, sizeof(text));
			if (b->port)
				snprintf(port, sizeof(port), " port %u", (unsigned)b->port);
			return cfg_fail(c, n, "backend: duplicate backend %s%s (first at line %d)", text, port,
			                o->line);
		}
		/* Two backends on one address (other ports) may share the name,
		 * since it names the host: the SRV target with that address.
		 * Default names of two addresses always differ. */
		if (!same_addr && !(o->name_pooled && b->name_pooled) &&
		    strcasecmp(o->name, b->name) == 0)
			return cfg_fail(c, n, "backend: name '%s' is already used by the backend at line %d "
			                "(another address)", b->name, o->line);
	}
	return 0;
}

static int item_backends(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                         const struct schema_item *it)
{
	struct cfg_service *s = obj;
	(void)it;
	if (n->type != YAML_SEQUENCE_NODE)
		return cfg_fail(c, n, "backends: expected a list, got %s", cfg_node_kind(n));
	size_t count = cfg_seq_len(n);
	if (count > CFG_MAX_BACKENDS)
		count = CFG_MAX_BACKENDS;
	/* In the slab (see there): the schema refuses a second backends key. */
	s->backends = cfg_slab_alloc(c->cfg, (count ? count : 1) * sizeof(*s->backends));
	if (!s->backends)
		return cfg_fail(c, n, "out of memory");
	s->in_slab = true;
	if (count * INET6_ADDRSTRLEN > c->names_cap) {
		char *p = realloc(c->names, count * INET6_ADDRSTRLEN);
		if (!p)
			return cfg_fail(c, n, "out of memory");
		c->names = p;
		c->names_cap = count * INET6_ADDRSTRLEN;
	}
	c->names_len = 0;
	if (each_item(c, n, "backends", false, s, backend_one) == -1)
		return -1;
	if (c->names_len == 0)
		return 0;
	/* The default names move from the scratch to the service's pool. */
	if (!(s->name_pool = cfg_slab_alloc(c->cfg, c->names_len))) {
		for (size_t i = 0; i < s->nbackends; i++) {
			if (s->backends[i].name_pooled) {
				s->backends[i].name = NULL;
				s->backends[i].name_pooled = false;
			}
		}
		return cfg_fail(c, n, "out of memory");
	}
	memcpy(s->name_pool, c->names, c->names_len);
	for (size_t i = 0; i < s->nbackends; i++) {
		struct cfg_backend *b = &s->backends[i];
		if (b->name_pooled)
			b->name = s->name_pool + (b->name - c->names);
	}
	return 0;
}

/* ---- services ----------------------------------------------------------- */

const char *const cfg_policy_names[] = {
	[CFG_POLICY_WEIGHTED] = "weighted",
	[CFG_POLICY_ROUND_ROBIN] = "round-robin",
	[CFG_POLICY_HASH] = "hash",
	[CFG_POLICY_FAILOVER] = "failover",
	[CFG_POLICY_LOCALITY] = "locality",
	NULL
};

static const char *const proto_names[] = { "tcp", "udp", NULL };

static const char *const oversize_names[] = { "subset", "truncate", NULL };

struct port_spec {
	uint16_t port;
	int proto;                    /* index into proto_names */
};

static const struct schema_item port_items[] = {
	ITEM("port", item_u16, struct port_spec, port, 1, 65535, ITEM_REQUIRED),
	ITEM_ENUM("proto", struct port_spec, proto, proto_names, DEF(0)),   /* tcp */
	ITEM_END,
};

/* ports: {NAME: PORT} or {NAME: {port: PORT, proto: tcp|udp}}. */
static int item_ports(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	struct cfg_service *s = obj;
	(void)it;
	if (n->type != YAML_MAPPING_NODE)
		return cfg_fail(c, n, "ports: expected a mapping of NAME: PORT, got %s", cfg_node_kind(n));
	size_t count = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	if (count == 0)
		return cfg_fail(c, n, "ports: at least one port is required");
	s->ports = cfg_alloc_array(c, n, count, sizeof(*s->ports));
	if (!s->ports)
		return -1;
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = cfg_node_get(c, p->key), *v = cfg_node_get(c, p->value);
		if (!k || !v)
			return cfg_fail(c, n, "ports: malformed mapping");
		if (cfg_visit(c, k) == -1)
			return -1;
		const char *name = cfg_scalar(c, k, "ports", "a port name");
		if (!name)
			return -1;
		/* The name becomes the label "_NAME" of _NAME._PROTO.<service>. */
		if (!cfg_simple_label(name, DNS_LABEL_MAX - 1))
			return cfg_fail(c, k, "ports: name '%.*s' must be 1..62 letters, digits, '-' or '_'",
			                CFG_QUOTE, name);
		for (size_t i = 0; i < s->nports; i++) {
			if (strcasecmp(s->ports[i].name, name) == 0)
				return cfg_fail(c, k, "ports: duplicate port name '%s'", name);
		}
		struct cfg_port *port = &s->ports[s->nports++];
		if (!(port->name = cfg_dup_str(c, k, name)))
			return -1;
		struct port_spec spec = { .port = 0 };
		schema_defaults(NULL, NULL, port_items, &spec);
		if (v->type == YAML_SCALAR_NODE) {
			static const struct schema_item num = ITEM("port", item_u16, struct port_spec, port,
			                                           1, 65535, 0);
			if (item_u16(c, v, &spec, &num) == -1)
				return -1;
		} else if (schema_map(c, v, port_items, &spec, 0, "port") == -1) {
			return -1;
		}
		port->port = spec.port;
		port->proto = spec.proto == 1 ? IPPROTO_UDP : IPPROTO_TCP;
	}
	return 0;
}

static const struct cfg_service *svc_index_add(struct cfg_ctx *c, struct cfg_zone *z, size_t si);

static int item_svc_name(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                         const struct schema_item *it)
{
	struct cfg_service *s = obj;
	struct cfg_zone *z = c->zone;
	char zt[1024];
	const char *text = cfg_scalar(c, n, it->key, "a name");
	if (!text)
		return -1;
	uint8_t owner[DNS_NAME_MAX];
	size_t ownerlen;
	if (cfg_name_parse(c, n, it->key, text, z->origin, z->originlen, owner, &ownerlen) == -1)
		return -1;
	uint8_t *own = malloc(ownerlen);
	if (!own)
		return cfg_fail(c, n, "out of memory");
	memcpy(own, owner, ownerlen);
	free(s->owner);
	s->owner = own;
	s->ownerlen = ownerlen;
	if (!wire_name_is_subdomain(s->owner, s->ownerlen, z->origin, z->originlen))
		return cfg_fail(c, n, "name: service '%.*s' is outside zone %s", CFG_QUOTE, text,
		                cfg_zone_text(z, zt, sizeof(zt)));
	if (wire_name_equal(s->owner, s->ownerlen, z->origin, z->originlen))
		return cfg_fail(c, n, "name: a service cannot be at the zone apex");
	const struct cfg_service *dup = svc_index_add(c, z, z->nservices - 1);
	if (dup)
		return cfg_fail(c, n, "name: duplicate service '%.*s' (first at line %d)", CFG_QUOTE, text,
		                dup->line);
	return item_str(c, n, obj, it);
}

/* ttl: a duration, or "auto": derived from the checks once the backends
 * are known (service_auto_ttl). */
static int item_svc_ttl(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	struct cfg_service *s = obj;
	if (n->type == YAML_SCALAR_NODE && strcmp((const char *)n->data.scalar.value, "auto") == 0) {
		s->ttl_auto = true;
		return 0;
	}
	s->ttl_auto = false;
	return item_secs(c, n, obj, it);
}

/* ttl: auto is the time the watcher may need to notice that a backend died
 * (the smallest interval x fall among checked backends, rounded up to whole
 * seconds, at least 1), never more than the zone's TTL: a client caching an
 * answer that long misses a failure no longer than dnsd itself does. As
 * gdnsd, which caps TTLs by the monitoring interval. No checked backend:
 * the zone's TTL. */
static void service_auto_ttl(struct cfg_service *s, uint32_t zone_ttl)
{
	uint64_t best = UINT64_MAX;
	for (size_t i = 0; i < s->nbackends; i++) {
		const struct cfg_check *ck = cfg_backend_check(s, &s->backends[i]);
		if (ck->type == CFG_CHECK_NONE)
			continue;
		uint64_t t = (uint64_t)ck->interval_ms * ck->fall;
		if (t < best)
			best = t;
	}
	if (best == UINT64_MAX) {
		s->ttl = zone_ttl;
		return;
	}
	uint64_t secs = (best + 999) / 1000;
	if (secs < 1)
		secs = 1;
	s->ttl = secs < zone_ttl ? (uint32_t)secs : zone_ttl;
}

/* An empty index for a zone of up to count services (at most half full). */
static int svc_index_reset(struct cfg_ctx *c, size_t count)
{
	itab_free(&c->svc_index);
	return itab_init(&c->svc_index, count);
}

/* Adds service si of zone z to the index; returns the service already
 * there with the same name, or NULL. */
static const struct cfg_service *svc_index_add(struct cfg_ctx *c, struct cfg_zone *z, size_t si)
{
	const struct cfg_service *s = &z->services[si];
	size_t pos;
	uint32_t item;
	ITAB_FOR(&c->svc_index, cfg_name_hash(s->owner, s->ownerlen), pos, item) {
		const struct cfg_service *o = &z->services[item];
		if (wire_name_equal(o->owner, o->ownerlen, s->owner, s->ownerlen))
			return o;
	}
	c->svc_index.slot[pos] = (uint32_t)si + 1;
	return NULL;
}

static const struct schema_item service_items[] = {
	ITEM("name", item_svc_name, struct cfg_service, name, 0, 0, ITEM_REQUIRED),
	/* Default: the zone's ttl, set by service_one (it depends on the zone). */
	ITEM("ttl", item_svc_ttl, struct cfg_service, ttl, 0, CFG_TTL_MAX, 0),
	ITEM_ENUM("policy", struct cfg_service, policy, cfg_policy_names, DEF(CFG_POLICY_WEIGHTED)),
	/* 0: all healthy backends. */
	ITEM("max-answers", item_u32, struct cfg_service, max_answers, 0, 65535, 0, DEF(0)),
	ITEM_ENUM("oversize", struct cfg_service, oversize, oversize_names,
	          DEF(CFG_OVERSIZE_SUBSET)),
	ITEM("fail-open", item_bool, struct cfg_service, fail_open, 0, 0, 0, DEF(true)),
	/* 0: off. */
	ITEM("slow-start", item_msecs, struct cfg_service, slow_start_ms, 0, CFG_DAY_MS, 0, DEF(0)),
	ITEM_FN("ports", item_ports, ITEM_REQUIRED),
	ITEM_SUB("check", item_svc_check, struct cfg_service, check, check_items, 0),
	/* Late: backends start from the service's check, wherever it is written. */
	ITEM_FN("backends", item_backends, ITEM_LATE),
	ITEM_END,
};

int config_service_defaults(struct cfg_service *s)
{
	struct config_error err;
	struct cfg_ctx c = { .name = "<defaults>", .err = &err };
	yaml_node_t at;
	memset(&at, 0, sizeof(at));
	return schema_defaults(&c, &at, service_items, s);
}

static int service_one(struct cfg_ctx *c, yaml_node_t *n, size_t idx, void *obj)
{
	struct cfg_zone *z = obj;
	(void)idx;
	struct cfg_service *s = &z->services[z->nservices++];
	s->ttl = z->ttl;              /* the ttl row's default: the zone's */
	s->line = cfg_node_line(n);
	s->col = cfg_node_col(n);
	c->svc_timeout_set = false;
	if (schema_defaults(c, n, service_items, s) == -1 ||
	    schema_map(c, n, service_items, s, 0, "service") == -1 ||
	    schema_map(c, n, service_items, s, 1, "service") == -1)
		return -1;
	if (s->ttl_auto)
		service_auto_ttl(s, z->ttl);
	return 0;
}

int item_services(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                         const struct schema_item *it)
{
	struct cfg_zone *z = obj;
	(void)it;
	if (n->type != YAML_SEQUENCE_NODE)
		return cfg_fail(c, n, "services: expected a list, got %s", cfg_node_kind(n));
	z->services = cfg_alloc_array(c, n, cfg_seq_len(n), sizeof(*z->services));
	if (!z->services)
		return -1;
	if (svc_index_reset(c, cfg_seq_len(n)) == -1)
		return cfg_fail(c, n, "out of memory");
	return each_item(c, n, "services", false, z, service_one);
}


/* config_zones.c -- the tables of a zone: its name, NS, SOA, static records,
 * transfer and notify ACLs and dynamic updates. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "dns/rdata.h"
#include "dns/wire.h"

/* ---- static records ----------------------------------------------------- */

static int item_rec_name(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                         const struct schema_item *it)
{
	struct cfg_record *r = obj;
	struct cfg_zone *z = c->zone;
	char zt[1024];
	const char *text = cfg_scalar(c, n, it->key, "a name");
	if (!text)
		return -1;
	if (cfg_name_parse(c, n, it->key, text, z->origin, z->originlen, r->owner, &r->ownerlen) == -1)
		return -1;
	if (!wire_name_is_subdomain(r->owner, r->ownerlen, z->origin, z->originlen))
		return cfg_fail(c, n, "name: '%.*s' is outside zone %s", CFG_QUOTE, text,
		                cfg_zone_text(z, zt, sizeof(zt)));
	return 0;
}

static int item_rec_type(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                         const struct schema_item *it)
{
	struct cfg_record *r = obj;
	const char *s = cfg_scalar(c, n, it->key, "a record type");
	if (!s)
		return -1;
	if (rdata_type_from_name(s, &r->type) == -1 || r->type == 0)
		return cfg_fail(c, n, "type: unknown record type '%.*s'", CFG_QUOTE, s);
	if (r->type == DNS_TYPE_SOA)
		return cfg_fail(c, n, "type: the SOA record comes from the zone's soa key");
	/* OPT, TSIG and the query-only types (RFC 6895 section 3.1: 128-255)
	 * cannot be stored in a zone. */
	if (r->type == DNS_TYPE_OPT || (r->type >= 128 && r->type <= 255))
		return cfg_fail(c, n, "type: %s records cannot be stored in a zone", s);
	return 0;
}

/* Data written in YAML is one string to the user, so a TXT value that does
 * not start with '"' becomes one character-string, taken literally. Data
 * that starts with '"' (several strings) or "\#" (RFC 3597) is passed on. */
static char *txt_quote(const char *s)
{
	size_t len = strlen(s), extra = 0;
	for (size_t i = 0; i < len; i++)
		extra += s[i] == '"' || s[i] == '\\';
	char *q = malloc(len + extra + 3);
	if (!q)
		return NULL;
	char *p = q;
	*p++ = '"';
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			*p++ = '\\';
		*p++ = s[i];
	}
	*p++ = '"';
	*p = '\0';
	return q;
}

static int item_rec_data(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                         const struct schema_item *it)
{
	struct cfg_record *r = obj;
	struct cfg_zone *z = c->zone;
	const char *s = cfg_scalar(c, n, it->key, "record data");
	if (!s)
		return -1;
	char *quoted = NULL;
	if (r->type == DNS_TYPE_TXT && s[0] != '"' && strncmp(s, "\\#", 2) != 0) {
		if (!(quoted = txt_quote(s)))
			return cfg_fail(c, n, "out of memory");
		s = quoted;
	}
	size_t len = 0;
	const char *why = NULL;
	int rc = rdata_from_text(r->type, s, z->origin, z->originlen, c->rdbuf, CFG_RDATA_MAX, &len,
	                         &why);
	free(quoted);
	if (rc != 0 || len > CFG_RDATA_MAX)
		return cfg_fail(c, n, "data: %s in %s data", why ? why : "cannot parse",
		                rdata_type_name(r->type));
	if (!(r->rdata = malloc(len ? len : 1)))
		return cfg_fail(c, n, "out of memory");
	memcpy(r->rdata, c->rdbuf, len);
	r->rdlen = (uint16_t)len;
	return 0;
}

static const struct schema_item record_items[] = {
	ITEM_FN("name", item_rec_name, ITEM_REQUIRED),
	ITEM_FN("type", item_rec_type, ITEM_REQUIRED),
	/* Late: parsing depends on the type, wherever it is written. */
	ITEM_FN("data", item_rec_data, ITEM_REQUIRED | ITEM_LATE),
	/* Default: the zone's ttl, set by record_one. */
	ITEM("ttl", item_secs, struct cfg_record, ttl, 0, CFG_TTL_MAX, 0),
	ITEM_END,
};

static int record_one(struct cfg_ctx *c, yaml_node_t *n, size_t idx, void *obj)
{
	struct cfg_zone *z = obj;
	(void)idx;
	struct cfg_record *r = &z->records[z->nrecords++];
	r->ttl = z->ttl;              /* the ttl row's default: the zone's */
	r->line = cfg_node_line(n);
	r->col = cfg_node_col(n);
	if (schema_map(c, n, record_items, r, 0, "record") == -1 ||
	    schema_map(c, n, record_items, r, 1, "record") == -1)
		return -1;
	if (r->type == DNS_TYPE_NS && wire_name_equal(r->owner, r->ownerlen, z->origin, z->originlen))
		return cfg_fail(c, n, "record: NS records at the apex come from the zone's ns key");
	return 0;
}

static int item_records(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                        const struct schema_item *it)
{
	struct cfg_zone *z = obj;
	(void)it;
	if (n->type != YAML_SEQUENCE_NODE)
		return cfg_fail(c, n, "records: expected a list, got %s", cfg_node_kind(n));
	z->records = cfg_alloc_array(c, n, cfg_seq_len(n), sizeof(*z->records));
	if (!z->records)
		return -1;
	return each_item(c, n, "records", false, z, record_one);
}

/* ---- zones: name, ns, soa ----------------------------------------------- */

static int item_zone_name(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                          const struct schema_item *it)
{
	struct cfg_zone *z = obj;
	const char *text = cfg_scalar(c, n, it->key, "a zone name");
	if (!text)
		return -1;
	if (cfg_name_parse(c, n, it->key, text, NULL, 0, z->origin, &z->originlen) == -1)
		return -1;
	for (size_t i = 0; i + 1 < c->cfg->nzones; i++) {
		const struct cfg_zone *o = &c->cfg->zones[i];
		if (wire_name_equal(o->origin, o->originlen, z->origin, z->originlen))
			return cfg_fail(c, n, "name: duplicate zone '%.*s' (first at line %d)", CFG_QUOTE,
			                text, o->line);
	}
	return item_str(c, n, obj, it);
}

static int ns_one(struct cfg_ctx *c, yaml_node_t *n, size_t idx, void *obj)
{
	struct cfg_zone *z = obj;
	(void)idx;
	const char *text = cfg_scalar(c, n, "ns", "a name");
	if (!text)
		return -1;
	if (cfg_name_parse(c, n, "ns", text, z->origin, z->originlen, z->ns[z->nns],
	                   &z->nslen[z->nns]) == -1)
		return -1;
	for (size_t i = 0; i < z->nns; i++) {
		if (wire_name_equal(z->ns[i], z->nslen[i], z->ns[z->nns], z->nslen[z->nns]))
			return cfg_fail(c, n, "ns: duplicate name '%.*s'", CFG_QUOTE, text);
	}
	z->nns++;
	return 0;
}

static int ns_alloc(struct cfg_ctx *c, const yaml_node_t *n, struct cfg_zone *z, size_t count)
{
	z->ns = cfg_alloc_array(c, n, count, sizeof(*z->ns));
	z->nslen = cfg_alloc_array(c, n, count, sizeof(*z->nslen));
	return z->ns && z->nslen ? 0 : -1;
}

/* A name or a list of names; relative ones are below the zone, but absolute
 * ones may be anywhere (ns1.example.net.). */
static int item_ns(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	struct cfg_zone *z = obj;
	(void)it;
	if (n->type == YAML_MAPPING_NODE)
		return cfg_fail(c, n, "ns: expected a name or a list of names, got a mapping");
	if (n->type == YAML_SEQUENCE_NODE && cfg_seq_len(n) == 0)
		return cfg_fail(c, n, "ns: empty list");
	if (ns_alloc(c, n, z, item_count(n)) == -1)
		return -1;
	return each_item(c, n, "ns", true, z, ns_one);
}

static int item_soa_mname(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                          const struct schema_item *it)
{
	struct cfg_soa *soa = obj;
	const char *text = cfg_scalar(c, n, it->key, "a name");
	if (!text)
		return -1;
	return cfg_name_parse(c, n, it->key, text, c->zone->origin, c->zone->originlen, soa->mname,
	                      &soa->mnamelen);
}

/* rname is a name ("hostmaster", "hostmaster.example.org.") or a mail
 * address, "john.doe@example.org" -> john\.doe.example.org. (RFC 1035 8). */
static int item_soa_rname(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                          const struct schema_item *it)
{
	struct cfg_soa *soa = obj;
	const char *text = cfg_scalar(c, n, it->key, "a name or mail address");
	if (!text)
		return -1;
	const char *at = strchr(text, '@');
	if (!at || strcmp(text, "@") == 0)
		return cfg_name_parse(c, n, it->key, text, c->zone->origin, c->zone->originlen,
		                      soa->rname, &soa->rnamelen);
	const char *domain = at + 1;
	if (at == text || *domain == '\0' || strchr(domain, '@'))
		return cfg_fail(c, n, "rname: bad mail address '%.*s'", CFG_QUOTE, text);
	size_t len = strlen(text);
	char *buf = malloc(2 * len + 2);
	if (!buf)
		return cfg_fail(c, n, "out of memory");
	char *p = buf;
	for (const char *q = text; q < at; q++) {
		if (*q == '.' || *q == '\\')
			*p++ = '\\';
		*p++ = *q;
	}
	*p++ = '.';
	strcpy(p, domain);
	if (!cfg_name_is_absolute(domain))
		strcat(p, ".");
	int rc = cfg_name_parse(c, n, it->key, buf, NULL, 0, soa->rname, &soa->rnamelen);
	free(buf);
	return rc;
}

static const struct schema_item soa_items[] = {
	/* Defaults, set by zone_one (they depend on the zone's names): mname
	 * the first NS, rname hostmaster.<zone>. */
	ITEM_FN("mname", item_soa_mname, 0),
	ITEM_FN("rname", item_soa_rname, 0),
	/* 0: automatic (time-based, increasing). */
	ITEM("serial", item_u32, struct cfg_soa, serial, 0, UINT32_MAX, 0, DEF(0)),
	ITEM("refresh", item_secs, struct cfg_soa, refresh, 0, CFG_TTL_MAX, 0, DEF(3600)),
	ITEM("retry", item_secs, struct cfg_soa, retry, 0, CFG_TTL_MAX, 0, DEF(600)),
	ITEM("expire", item_secs, struct cfg_soa, expire, 0, CFG_TTL_MAX, 0, DEF(86400)),
	/* The negative-caching TTL. */
	ITEM("minimum", item_secs, struct cfg_soa, minimum, 0, CFG_TTL_MAX, 0, DEF(30)),
	/* Default: the zone's ttl, set by zone_one once it is read. */
	ITEM("ttl", item_secs, struct cfg_soa, ttl, 0, CFG_TTL_MAX, 0),
	ITEM_END,
};

/* ---- transfers and notify ------------------------------------------------- */

static int allow_one(struct cfg_ctx *c, yaml_node_t *n, size_t idx, void *obj)
{
	struct cfg_transfer *t = obj;
	(void)idx;
	const char *s = cfg_scalar(c, n, "allow", "an address prefix");
	if (!s)
		return -1;
	struct cfg_locality loc;
	const char *why;
	if (cfg_parse_subnet(s, &loc, &why) == -1)
		return cfg_fail(c, n, "allow: bad prefix '%.*s': %s", CFG_QUOTE, s, why);
	struct cfg_prefix *p = &t->allow[t->nallow++];
	p->family = loc.family;
	memcpy(p->addr, loc.addr, 16);
	p->prefix = loc.prefix;
	return 0;
}

static int item_allow(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	struct cfg_transfer *t = obj;
	(void)it;
	if (n->type == YAML_MAPPING_NODE)
		return cfg_fail(c, n, "allow: expected a prefix or a list, got a mapping");
	t->allow = cfg_alloc_array(c, n, item_count(n), sizeof(*t->allow));
	if (!t->allow)
		return -1;
	return each_item(c, n, "allow", true, t, allow_one);
}

static int keyref_set(struct cfg_ctx *c, yaml_node_t *n, const char *key, struct cfg_keyref *r)
{
	const char *s = cfg_scalar(c, n, key, "a key name");
	if (!s)
		return -1;
	if (!(r->name = cfg_dup_str(c, n, s)))
		return -1;
	r->line = cfg_node_line(n);
	r->col = cfg_node_col(n);
	return 0;
}

/* keys: one key name or a list of them (transfer, update). */
struct keyrefs {
	struct cfg_keyref **keys;
	size_t *nkeys;
};

static int keyref_one(struct cfg_ctx *c, yaml_node_t *n, size_t idx, void *obj)
{
	struct keyrefs *k = obj;
	(void)idx;
	return keyref_set(c, n, "keys", &(*k->keys)[(*k->nkeys)++]);
}

static int keyrefs_read(struct cfg_ctx *c, yaml_node_t *n, struct cfg_keyref **keys,
                        size_t *nkeys)
{
	if (n->type == YAML_MAPPING_NODE)
		return cfg_fail(c, n, "keys: expected a key name or a list, got a mapping");
	*keys = cfg_alloc_array(c, n, item_count(n), sizeof(**keys));
	if (!*keys)
		return -1;
	struct keyrefs k = { keys, nkeys };
	return each_item(c, n, "keys", true, &k, keyref_one);
}

static int item_xfr_keys(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	struct cfg_transfer *t = obj;
	(void)it;
	return keyrefs_read(c, n, &t->keys, &t->nkeys);
}

static const struct schema_item transfer_items[] = {
	ITEM_FN("allow", item_allow, 0),
	ITEM_FN("keys", item_xfr_keys, 0),
	ITEM_END,
};

void cfg_transfer_clear(struct cfg_transfer *t)
{
	for (size_t i = 0; i < t->nkeys; i++)
		free(t->keys[i].name);
	free(t->keys);
	free(t->allow);
	memset(t, 0, sizeof(*t));
}

/* transfer: {allow: [...], keys: [...]}; an empty mapping allows nobody. */
static int transfer_parse(struct cfg_ctx *c, yaml_node_t *n, struct cfg_transfer *t)
{
	if (schema_map(c, n, transfer_items, t, 0, "transfer") == -1)
		return -1;
	t->set = true;
	return 0;
}

static int item_zone_transfer(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                              const struct schema_item *it)
{
	(void)it;
	return transfer_parse(c, n, &((struct cfg_zone *)obj)->transfer);
}

int item_top_transfer(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                             const struct schema_item *it)
{
	(void)it;
	return transfer_parse(c, n, &((struct config *)obj)->transfer);
}

static int notify_addr(struct cfg_ctx *c, yaml_node_t *n, struct cfg_notify *nt)
{
	const char *s = cfg_scalar(c, n, "notify", "an address");
	if (!s)
		return -1;
	if (config_parse_listen(s, 53, &nt->addr) == -1)
		return cfg_fail(c, n, "notify: bad address '%.*s' (expected ADDR, ADDR:PORT or "
		                "[ADDR6]:PORT, port 1..65535)", CFG_QUOTE, s);
	return 0;
}

static int item_notify_address(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                               const struct schema_item *it)
{
	(void)it;
	return notify_addr(c, n, obj);
}

static int item_notify_key(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                           const struct schema_item *it)
{
	(void)it;
	return keyref_set(c, n, "key", &((struct cfg_notify *)obj)->key);
}

static const struct schema_item notify_items[] = {
	ITEM_FN("address", item_notify_address, ITEM_REQUIRED),
	ITEM_FN("key", item_notify_key, 0),
	ITEM_END,
};

/* "ADDR[:PORT]" or {address: ADDR[:PORT], key: NAME}. */
static int notify_one(struct cfg_ctx *c, yaml_node_t *n, size_t idx, void *obj)
{
	struct cfg_zone *z = obj;
	(void)idx;
	struct cfg_notify *nt = &z->notify[z->nnotify++];
	int rc = n->type == YAML_MAPPING_NODE ? schema_map(c, n, notify_items, nt, 0, "notify")
	                                      : notify_addr(c, n, nt);
	if (rc == -1)
		return -1;
	for (size_t i = 0; i + 1 < z->nnotify; i++)
		if (z->notify[i].addr.len == nt->addr.len &&
		    memcmp(&z->notify[i].addr.ss, &nt->addr.ss, nt->addr.len) == 0)
			return cfg_fail(c, n, "notify: duplicate address");
	return 0;
}

static int item_notify(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	struct cfg_zone *z = obj;
	(void)it;
	if (n->type == YAML_SEQUENCE_NODE && cfg_seq_len(n) == 0)
		return 0;
	z->notify = cfg_alloc_array(c, n, item_count(n), sizeof(*z->notify));
	if (!z->notify)
		return -1;
	return each_item(c, n, "notify", true, z, notify_one);
}

/* ---- dynamic updates ------------------------------------------------------ */

static int item_upd_keys(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	struct cfg_update *u = obj;
	(void)it;
	return keyrefs_read(c, n, &u->keys, &u->nkeys);
}

static const struct schema_item update_items[] = {
	ITEM_FN("keys", item_upd_keys, ITEM_REQUIRED),
	ITEM("journal", item_str, struct cfg_update, journal, 0, 0, ITEM_REQUIRED),
	ITEM_END,
};

void cfg_update_clear(struct cfg_update *u)
{
	for (size_t i = 0; i < u->nkeys; i++)
		free(u->keys[i].name);
	free(u->keys);
	free(u->journal);
	memset(u, 0, sizeof(*u));
}

/* update: {keys: [NAME...], journal: FILE}. TSIG is required: no keys, no
 * updates. */
static int item_zone_update(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                            const struct schema_item *it)
{
	struct cfg_update *u = &((struct cfg_zone *)obj)->update;
	(void)it;
	if (n->type != YAML_MAPPING_NODE)
		return cfg_fail(c, n, "update: expected a mapping {keys: [...], journal: FILE}, got %s",
		                cfg_node_kind(n));
	if (schema_map(c, n, update_items, u, 0, "update") == -1)
		return -1;
	if (u->nkeys == 0)
		return cfg_fail(c, n, "update: keys: at least one TSIG key is needed");
	if (u->journal[0] == '\0')
		return cfg_fail(c, n, "update: journal: empty file name");
	u->set = true;
	u->line = cfg_node_line(n);
	u->col = cfg_node_col(n);
	return 0;
}

static const struct schema_item zone_items[] = {
	ITEM("name", item_zone_name, struct cfg_zone, name, 0, 0, ITEM_REQUIRED),
	ITEM("ttl", item_secs, struct cfg_zone, ttl, 0, CFG_TTL_MAX, 0, DEF(30)),
	/* Late: all of these need the origin, and default their TTLs to the zone's. */
	/* Default ns.<zone>, set by zone_one. */
	ITEM_FN("ns", item_ns, ITEM_LATE),
	ITEM_MAP("soa", struct cfg_zone, soa, soa_items, ITEM_LATE),
	ITEM_FN("records", item_records, ITEM_LATE),
	ITEM_FN("services", item_services, ITEM_LATE),
	ITEM_FN("transfer", item_zone_transfer, 0),
	ITEM_FN("notify", item_notify, 0),
	ITEM_FN("update", item_zone_update, 0),
	ITEM_END,
};

static int zone_one(struct cfg_ctx *c, yaml_node_t *n, size_t idx, void *obj)
{
	struct config *cfg = obj;
	(void)idx;
	struct cfg_zone *z = &cfg->zones[cfg->nzones++];
	z->line = cfg_node_line(n);
	z->col = cfg_node_col(n);
	c->zone = z;
	if (schema_defaults(c, n, zone_items, z) == -1 ||
	    schema_map(c, n, zone_items, z, 0, "zone") == -1)
		return -1;
	z->soa.ttl = z->ttl;          /* the soa ttl row's default: the zone's */
	if (schema_map(c, n, zone_items, z, 1, "zone") == -1)
		return -1;
	if (z->nns == 0) {
		if (ns_alloc(c, n, z, 1) == -1)
			return -1;
		if (cfg_name_prepend(z->ns[0], &z->nslen[0], "ns", z->origin, z->originlen) == -1)
			return cfg_fail(c, n, "zone: default NS name ns.<zone> is longer than 255 bytes");
		z->nns = 1;
	}
	if (z->soa.mnamelen == 0) {
		memcpy(z->soa.mname, z->ns[0], z->nslen[0]);
		z->soa.mnamelen = z->nslen[0];
	}
	if (z->soa.rnamelen == 0 &&
	    cfg_name_prepend(z->soa.rname, &z->soa.rnamelen, "hostmaster", z->origin,
	                     z->originlen) == -1)
		return cfg_fail(c, n, "zone: default rname hostmaster.<zone> is longer than 255 bytes");
	if (cfg_check_names(c, n, z) == -1)
		return -1;
	z->names_checked = true;
	c->zone = NULL;
	return 0;
}


int item_zones(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	struct config *cfg = obj;
	(void)it;
	if (n->type != YAML_SEQUENCE_NODE)
		return cfg_fail(c, n, "zones: expected a list, got %s", cfg_node_kind(n));
	if (cfg_seq_len(n) == 0)
		return cfg_fail(c, n, "no zones defined");
	cfg->zones = cfg_alloc_array(c, n, cfg_seq_len(n), sizeof(*cfg->zones));
	if (!cfg->zones)
		return -1;
	if (each_item(c, n, "zones", false, cfg, zone_one) == -1)
		return -1;
	return cfg_check_nested_zones(c, cfg);
}


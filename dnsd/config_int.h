/* config_int.h -- what the config*.c files share: the state of one load, the
 * schema rows and the engine that walks them. Only config*.c include it. */
#ifndef MESHDNS_CONFIG_INT_H
#define MESHDNS_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "config.h"
#include "util/itab.h"

enum {
	CFG_MAX_WORKERS = 64,
	CFG_MAX_BACKENDS = 4096,      /* per service; zone.h ZONE_MAX_BACKENDS */
	CFG_MAX_EXPECT = 16,          /* struct cfg_check expect[] */
	CFG_TTL_MAX = 2147483647,     /* RFC 2181 section 8 */
	CFG_DAY_MS = 86400000,
	CFG_RDATA_MAX = 65535,
	CFG_QUOTE = 80,               /* longest piece of a value quoted in a message */
	CFG_MAX_DEPTH = 32,           /* of nested lists and mappings (yamldoc_load) */
	CFG_MAX_UPSTREAMS = 16,
	CFG_RRL_EXEMPT_MAX = 64,      /* as RRL_EXEMPT_MAX */
};

/* State of one load. The first error is written into err and every caller
 * just returns -1 up the stack. */
struct cfg_ctx {
	const char *name;             /* file name for messages */
	yaml_document_t *doc;
	struct config_error *err;
	struct config *cfg;
	struct cfg_zone *zone;        /* zone being parsed: the origin for names */
	bool svc_timeout_set;         /* the service's check gave a timeout */
	const struct cfg_service *svc; /* whose backends are being read */
	/* The zone's service names so far, for the duplicate check: a table
	 * of service indexes, so a zone of 100k services is checked in linear
	 * time. */
	struct itab svc_index;
	uint8_t *rdbuf;               /* CFG_RDATA_MAX bytes of scratch */
	/* The default backend names of the service being read, copied to its
	 * name_pool when its backends are all read: room for every backend
	 * of it, so that the names do not move meanwhile. */
	char *names;
	size_t names_len, names_cap;
	/* Aliases let a small document expand into a huge tree; every mapping
	 * pair and sequence item visited counts against max_visits, which an
	 * alias-free document can never reach (each node is visited once). */
	size_t visits, max_visits;
};

struct schema_item;

/* Parses value node n of item it into obj (the struct the table is for).
 * Returns 0, or -1 after reporting. */
typedef int (*item_parse_fn)(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                             const struct schema_item *it);

enum {
	ITEM_REQUIRED = 1 << 0,
	/* Parsed in a second pass, after every other key of the mapping, so it
	 * may rely on them (the zone's origin and ttl) whatever the key order. */
	ITEM_LATE = 1 << 1,
	/* aux is the table of the struct at off (a nested mapping): its
	 * defaults are applied with those of this table. */
	ITEM_TABLE = 1 << 2,
};

/* One key of a mapping. Tables end with a NULL key; adding a key is one line.
 * A row's default is the only place that value is written: schema_defaults
 * sets it before the mapping is read, so an absent key keeps it. */
struct schema_item {
	const char *key;
	item_parse_fn parse;
	size_t off;                   /* of the field inside obj */
	uint32_t min, max;            /* bounds of integers and durations */
	const void *aux;              /* enum names or a nested table */
	unsigned flags;
	uint8_t size;                 /* of the field (ITEM, ITEM_ENUM) */
	bool has_def;                 /* DEF(v): the field starts as def */
	uint32_t def;                 /* an integer, duration, bool or enum index */
	const char *def_text;         /* DEF_TEXT(s): s is read by parse, as if
	                               * written in the file (a flow list "[a, b]"
	                               * for a list) */
};

#define ITEM(k, fn, st, f, lo, hi, fl, ...) \
	{ .key = (k), .parse = (fn), .off = offsetof(st, f), .size = sizeof(((st *)0)->f), \
	  .min = (lo), .max = (hi), .flags = (fl), __VA_ARGS__ }
#define ITEM_ENUM(k, st, f, names, ...) \
	{ .key = (k), .parse = item_enum, .off = offsetof(st, f), .size = sizeof(((st *)0)->f), \
	  .aux = (names), __VA_ARGS__ }
#define ITEM_MAP(k, st, f, table, fl) \
	{ .key = (k), .parse = item_map, .off = offsetof(st, f), .aux = (table), \
	  .flags = (fl) | ITEM_TABLE }
/* A nested mapping read by fn (which checks more than the table says). */
#define ITEM_SUB(k, fn, st, f, table, fl) \
	{ .key = (k), .parse = (fn), .off = offsetof(st, f), .aux = (table), \
	  .flags = (fl) | ITEM_TABLE }
#define ITEM_FN(k, fn, fl, ...) { .key = (k), .parse = (fn), .flags = (fl), __VA_ARGS__ }
#define ITEM_END { .key = NULL }
#define DEF(v) .has_def = true, .def = (uint32_t)(v)
#define DEF_TEXT(s) .def_text = (s)

/* ---- the engine (config_schema.c) ---- */

/* Report "file:line:col: message" into c->err; both return -1. cfg_fail
 * reports at n's first character. */
__attribute__((format(printf, 4, 5)))
int cfg_fail_at(struct cfg_ctx *c, int line, int col, const char *fmt, ...);
__attribute__((format(printf, 3, 4)))
int cfg_fail(struct cfg_ctx *c, const yaml_node_t *n, const char *fmt, ...);
int cfg_node_line(const yaml_node_t *n);
int cfg_node_col(const yaml_node_t *n);
const char *cfg_node_kind(const yaml_node_t *n);
yaml_node_t *cfg_node_get(struct cfg_ctx *c, int idx);
int cfg_visit(struct cfg_ctx *c, const yaml_node_t *n);
size_t cfg_seq_len(const yaml_node_t *n);
yaml_node_t *cfg_map_find(struct cfg_ctx *c, const yaml_node_t *n, const char *key);
const char *cfg_scalar(struct cfg_ctx *c, const yaml_node_t *n, const char *key,
                       const char *what);
char *cfg_dup_str(struct cfg_ctx *c, const yaml_node_t *n, const char *s);
void *cfg_alloc_array(struct cfg_ctx *c, const yaml_node_t *n, size_t count, size_t size);

void *cfg_field(void *obj, const struct schema_item *it);
int cfg_get_uint(struct cfg_ctx *c, yaml_node_t *n, const struct schema_item *it, uint64_t *v);
int item_u32(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it);
int item_u16(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it);
int item_bool(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it);
int item_secs(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it);
int item_msecs(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it);
int item_str(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it);
int item_enum(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it);
int item_map(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it);
/* Sets the defaults of items (and of their ITEM_TABLE tables) in obj. at is
 * where an error (out of memory) is reported; with c NULL only DEF numbers
 * are allowed. 0, or -1 after reporting. */
int schema_defaults(struct cfg_ctx *c, const yaml_node_t *at, const struct schema_item *items,
                    void *obj);
int schema_map(struct cfg_ctx *c, yaml_node_t *n, const struct schema_item *items, void *obj,
               int pass, const char *what);
int each_item(struct cfg_ctx *c, yaml_node_t *n, const char *key, bool single, void *obj,
              int (*fn)(struct cfg_ctx *c, yaml_node_t *item, size_t idx, void *obj));
size_t item_count(const yaml_node_t *n);

/* Scalars and names. */
int cfg_parse_addr(const char *s, int *family, uint8_t addr[16]);
bool cfg_simple_label(const char *s, size_t max);
int cfg_parse_subnet(const char *s, struct cfg_locality *loc, const char **why);
bool cfg_name_is_absolute(const char *text);
int cfg_name_parse(struct cfg_ctx *c, const yaml_node_t *n, const char *key, const char *text,
                   const uint8_t *origin, size_t originlen, uint8_t out[DNS_NAME_MAX],
                   size_t *outlen);
int cfg_name_prepend(uint8_t out[DNS_NAME_MAX], size_t *outlen, const char *label,
                     const uint8_t *parent, size_t plen);
const char *cfg_name_text(const uint8_t *name, size_t len, char *buf, size_t cap);
const char *cfg_zone_text(const struct cfg_zone *z, char *buf, size_t cap);
uint64_t cfg_name_hash(const uint8_t *name, size_t len);

/* ---- the tables (config_services.c, config_zones.c, config_top.c) ---- */

extern const struct schema_item cfg_top_items[];
int item_services(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it);
int item_zones(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it);
int item_top_transfer(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it);
int cfg_addr_len(int family);
void cfg_check_clear(struct cfg_check *k);
void cfg_backend_check_free(struct cfg_backend *b);
void cfg_transfer_clear(struct cfg_transfer *t);
void cfg_update_clear(struct cfg_update *u);
void cfg_etcd_clear(struct cfg_etcd *e);

/* ---- cross-checks (config_check.c) ---- */

int cfg_check_names(struct cfg_ctx *c, const yaml_node_t *n, struct cfg_zone *z);
int cfg_check_nested_zones(struct cfg_ctx *c, const struct config *cfg);
int cfg_check_keyrefs(struct cfg_ctx *c);
int cfg_check_search_path(struct cfg_ctx *c, yaml_node_t *root);

/* ---- the slab of loaded backends (config.c) ---- */

/* n zeroed bytes in cfg's slab, or NULL; cfg_slab_free unmaps it all. */
void *cfg_slab_alloc(struct config *cfg, size_t n);
void cfg_slab_free(struct config *cfg);

#endif

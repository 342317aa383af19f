/* config.c -- the YAML configuration: libyaml's document tree walked through
 * declarative schema tables (as Knot's conf/schema.c), then cross-checked.
 * Produces a plain struct config; knows nothing of sockets or snapshots. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>
#include <sodium.h>
#include <yaml.h>

#include "addr.h"
#include "cookie.h"
#include "file.h"
#include "hash.h"
#include "num.h"
#include "rdata.h"
#include "wire.h"
#include "yamldoc.h"

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

/* The enums are stored through an int (item_enum). */
_Static_assert(sizeof(enum cfg_policy) == sizeof(int), "enum cfg_policy is not int-sized");
_Static_assert(sizeof(enum cfg_check_type) == sizeof(int), "enum cfg_check_type is not int-sized");
_Static_assert(sizeof(enum cfg_oversize) == sizeof(int), "enum cfg_oversize is not int-sized");

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
	/* The zone's service names so far, for the duplicate check: an
	 * open-addressing table of service index + 1 (0: empty), so a zone of
	 * 100k services is checked in linear time. */
	uint32_t *svc_slots;
	size_t svc_mask;
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
};

/* One key of a mapping. Tables end with a NULL key; adding a key is one line. */
struct schema_item {
	const char *key;
	item_parse_fn parse;
	size_t off;                   /* of the field inside obj */
	uint32_t min, max;            /* bounds of integers and durations */
	const void *aux;              /* enum names or a nested table */
	unsigned flags;
};

#define ITEM(k, fn, st, f, lo, hi, fl) \
	{ .key = (k), .parse = (fn), .off = offsetof(st, f), .min = (lo), .max = (hi), .flags = (fl) }
#define ITEM_ENUM(k, st, f, names) \
	{ .key = (k), .parse = item_enum, .off = offsetof(st, f), .aux = (names) }
#define ITEM_MAP(k, st, f, table, fl) \
	{ .key = (k), .parse = item_map, .off = offsetof(st, f), .aux = (table), .flags = (fl) }
#define ITEM_FN(k, fn, fl) { .key = (k), .parse = (fn), .flags = (fl) }
#define ITEM_END { .key = NULL }

/* ---- errors and nodes --------------------------------------------------- */

static int vfail_at(struct cfg_ctx *c, int line, int col, const char *fmt, va_list ap)
{
	char *msg = c->err->msg;
	size_t cap = sizeof(c->err->msg);
	int n = snprintf(msg, cap, "%s:%d:%d: ", c->name, line, col);

	if (n >= 0 && (size_t)n < cap)
		vsnprintf(msg + n, cap - (size_t)n, fmt, ap);
	return -1;
}

__attribute__((format(printf, 4, 5)))
static int fail_at(struct cfg_ctx *c, int line, int col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail_at(c, line, col, fmt, ap);
	va_end(ap);
	return -1;
}

/* Reports at n's first character (libyaml marks are 0-based). */
__attribute__((format(printf, 3, 4)))
static int fail(struct cfg_ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail_at(c, (int)n->start_mark.line + 1, (int)n->start_mark.column + 1, fmt, ap);
	va_end(ap);
	return -1;
}

static int node_line(const yaml_node_t *n)
{
	return (int)n->start_mark.line + 1;
}

static int node_col(const yaml_node_t *n)
{
	return (int)n->start_mark.column + 1;
}

static const char *node_kind(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_SCALAR_NODE:
		return "a scalar";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_MAPPING_NODE:
		return "a mapping";
	default:
		return "nothing";
	}
}

/* libyaml only links valid indices, but a NULL here must never crash. */
static yaml_node_t *node_get(struct cfg_ctx *c, int idx)
{
	return yaml_document_get_node(c->doc, idx);
}

static int visit(struct cfg_ctx *c, const yaml_node_t *n)
{
	if (++c->visits > c->max_visits)
		return fail(c, n, "document too large after alias expansion");
	return 0;
}

static size_t seq_len(const yaml_node_t *n)
{
	return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

/* The value of a key in mapping n, or NULL. */
static yaml_node_t *map_find(struct cfg_ctx *c, const yaml_node_t *n, const char *key)
{
	if (n->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = node_get(c, p->key);
		if (k && k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, key) == 0)
			return node_get(c, p->value);
	}
	return NULL;
}

/* The text of scalar node n, where what ("an integer") was expected for key.
 * Rejects lists and mappings, nulls (an empty value, "~", "null") and
 * embedded NUL bytes, which C strings cannot carry. NULL after reporting. */
static const char *scalar(struct cfg_ctx *c, const yaml_node_t *n, const char *key,
                          const char *what)
{
	if (n->type != YAML_SCALAR_NODE) {
		fail(c, n, "%s: expected %s, got %s", key, what, node_kind(n));
		return NULL;
	}
	const char *s = (const char *)n->data.scalar.value;
	size_t len = n->data.scalar.length;
	if (memchr(s, '\0', len)) {
		fail(c, n, "%s: value contains a NUL byte", key);
		return NULL;
	}
	if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	    (len == 0 || strcmp(s, "~") == 0 || strcasecmp(s, "null") == 0)) {
		fail(c, n, "%s: missing value (expected %s)", key, what);
		return NULL;
	}
	return s;
}

static char *dup_str(struct cfg_ctx *c, const yaml_node_t *n, const char *s)
{
	char *d = strdup(s);
	if (!d)
		fail(c, n, "out of memory");
	return d;
}

/* calloc for an array of count elements (count may be 0). */
static void *alloc_array(struct cfg_ctx *c, const yaml_node_t *n, size_t count, size_t size)
{
	void *p = calloc(count ? count : 1, size);
	if (!p)
		fail(c, n, "out of memory");
	return p;
}

/* ---- the slab: the loaded backends --------------------------------------- */

/* The backend arrays and default names of a loaded config, packed in big
 * mappings of their own rather than a heap block per service: once the
 * registry's blocks hold the backends (registry_freeze), the mappings go
 * back to the kernel whole, where freed heap blocks among the config's
 * other allocations would stay resident (a million backends: 84 MB). */
struct cfg_slab {
	struct cfg_slab *next;
	size_t size, used;            /* bytes of the mapping; used counts this header */
};
enum { CFG_SLAB_CHUNK = 4 << 20, CFG_SLAB_ALIGN = 16 };

/* LeakSanitizer scans the heap, not our mappings: the names a slab points
 * at would look leaked unless it is told where the slab is. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CFG_SLAB_LSAN 1             /* clang */
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(CFG_SLAB_LSAN)
#include <sanitizer/lsan_interface.h>
#define SLAB_LSAN_ROOT(p, n) __lsan_register_root_region((p), (n))
#define SLAB_LSAN_UNROOT(p, n) __lsan_unregister_root_region((p), (n))
#else
#define SLAB_LSAN_ROOT(p, n) ((void)(p), (void)(n))
#define SLAB_LSAN_UNROOT(p, n) ((void)(p), (void)(n))
#endif

/* n zeroed bytes in cfg's slab, or NULL. */
static void *slab_alloc(struct config *cfg, size_t n)
{
	size_t hdr = (sizeof(struct cfg_slab) + CFG_SLAB_ALIGN - 1) & ~(size_t)(CFG_SLAB_ALIGN - 1);
	n = (n + CFG_SLAB_ALIGN - 1) & ~(size_t)(CFG_SLAB_ALIGN - 1);
	struct cfg_slab *sl = cfg->slab;
	if (!sl || sl->size - sl->used < n) {
		size_t size = CFG_SLAB_CHUNK;
		if (hdr + n > size)
			size = (hdr + n + 4095) & ~(size_t)4095;
		void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			return NULL;
		SLAB_LSAN_ROOT(m, size);
		sl = m;
		sl->next = cfg->slab;
		sl->size = size;
		sl->used = hdr;
		cfg->slab = sl;
	}
	void *p = (char *)sl + sl->used;
	sl->used += n;
	return p;
}

static void slab_free(struct config *cfg)
{
	while (cfg->slab) {
		struct cfg_slab *next = cfg->slab->next;
		SLAB_LSAN_UNROOT(cfg->slab, cfg->slab->size);
		munmap(cfg->slab, cfg->slab->size);
		cfg->slab = next;
	}
}

int config_service_own(struct cfg_service *s)
{
	if (!s->in_slab)
		return 0;
	struct cfg_backend *nb = malloc((s->nbackends ? s->nbackends : 1) * sizeof(*nb));
	if (!nb)
		return -1;
	memcpy(nb, s->backends, s->nbackends * sizeof(*nb));
	for (size_t i = 0; i < s->nbackends; i++) {
		if (!nb[i].name_pooled)
			continue;
		char *d = strdup(nb[i].name);
		if (!d) {
			for (size_t k = 0; k < i; k++)
				if (s->backends[k].name_pooled)
					free(nb[k].name);
			free(nb);
			return -1;
		}
		nb[i].name = d;
	}
	for (size_t i = 0; i < s->nbackends; i++)
		nb[i].name_pooled = false;
	s->backends = nb;
	s->name_pool = NULL;
	s->in_slab = false;
	return 0;
}

int config_slab_release(struct config *cfg)
{
	for (size_t i = 0; i < cfg->nzones; i++)
		for (size_t j = 0; j < cfg->zones[i].nservices; j++)
			if (config_service_own(&cfg->zones[i].services[j]) == -1)
				return -1;
	slab_free(cfg);
	return 0;
}

/* ---- scalars ------------------------------------------------------------ */

int config_parse_duration(const char *text, bool ms, uint32_t *out)
{
	const char *p = text;
	uint64_t v = 0, unit;

	if (!p || *p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > UINT32_MAX)
			return -1;
	}
	if (*p == '\0' || strcmp(p, "s") == 0)
		unit = 1000;
	else if (strcmp(p, "ms") == 0 && ms)
		unit = 1;
	else if (strcmp(p, "m") == 0)
		unit = 60 * 1000;
	else if (strcmp(p, "h") == 0)
		unit = 3600 * 1000;
	else if (strcmp(p, "d") == 0)
		unit = (uint64_t)CFG_DAY_MS;
	else
		return -1;
	/* v < 2^32 and unit < 2^27: no overflow. Without ms every unit is a
	 * whole number of seconds, so the division is exact. */
	v *= unit;
	if (!ms)
		v /= 1000;
	if (v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* A port written after an address: 1..65535. */
static int parse_port(const char *s, uint16_t *out)
{
	uint64_t v;

	if (!num_parse(s, 65535, &v) || v == 0)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

bool config_listen_ambiguous(const char *text)
{
	if (!text || text[0] == '[')
		return false;
	const char *last = strrchr(text, ':');
	if (!last || last == strchr(text, ':'))
		return false;               /* no colon, or ADDR4:PORT */
	size_t ndig = strlen(last + 1);
	if (ndig == 0 || ndig > 5 || strspn(last + 1, "0123456789") != ndig)
		return false;
	char head[INET6_ADDRSTRLEN];
	size_t hlen = (size_t)(last - text);
	if (hlen >= sizeof(head))
		return false;
	memcpy(head, text, hlen);
	head[hlen] = '\0';
	struct in6_addr a;
	return inet_pton(AF_INET6, head, &a) == 1;
}

int config_parse_listen(const char *text, uint16_t defport, struct cfg_listen *out)
{
	return config_parse_listen_port0(text, defport, false, out);
}

int config_parse_listen_port0(const char *text, uint16_t defport, bool port0,
                              struct cfg_listen *out)
{
	char host[INET6_ADDRSTRLEN];
	const char *h = text, *port = NULL;
	size_t hlen;
	bool v6only = false;

	if (!text)
		return -1;
	if (text[0] == '[') {
		const char *end = strchr(text, ']');
		if (!end)
			return -1;
		h = text + 1;
		hlen = (size_t)(end - h);
		if (end[1] == ':')
			port = end + 2;
		else if (end[1] != '\0')
			return -1;
		v6only = true;
	} else {
		const char *colon = strchr(text, ':');
		hlen = strlen(text);
		/* Two colons or more: a bare IPv6 address, no port. */
		if (colon && !strchr(colon + 1, ':')) {
			hlen = (size_t)(colon - text);
			port = colon + 1;
		}
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';

	uint16_t pnum = defport;
	if (port && port0 && strcmp(port, "0") == 0)
		pnum = 0;
	else if (port && parse_port(port, &pnum) == -1)
		return -1;
	if (pnum == 0 && !port0)
		return -1;

	struct cfg_listen l;
	memset(&l, 0, sizeof(l));
	struct sockaddr_in *sin = (struct sockaddr_in *)&l.ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&l.ss;
	if (!v6only && inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(pnum);
		l.len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(pnum);
		l.len = sizeof(*sin6);
	} else {
		return -1;
	}
	*out = l;
	return 0;
}

/* An IPv4 or IPv6 address without port into addr (4 or 16 bytes used). */
static int parse_addr(const char *s, int *family, uint8_t addr[16])
{
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, s, addr) == 1) {
		*family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, addr) == 1) {
		*family = AF_INET6;
		return 0;
	}
	return -1;
}

/* A DNS label we are willing to generate names from: letters, digits, '-'
 * and '_', 1..max bytes. */
static bool simple_label(const char *s, size_t max)
{
	size_t len = strlen(s);

	if (len == 0 || len > max)
		return false;
	for (; *s; s++) {
		char ch = *s;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '-' || ch == '_'))
			return false;
	}
	return true;
}

/* ---- names -------------------------------------------------------------- */

/* True if text ends in a '.' that is not escaped by a backslash. */
static bool name_is_absolute(const char *text)
{
	size_t len = strlen(text);

	if (len == 0 || text[len - 1] != '.')
		return false;
	size_t bs = 0;
	while (bs < len - 1 && text[len - 2 - bs] == '\\')
		bs++;
	return bs % 2 == 0;
}

/* Why wire_name_from_text() refused text (extra: bytes the origin will add):
 * only for the message, so it approximates the escape rules wire.c applies. */
static const char *name_problem(const char *text, size_t extra)
{
	size_t label = 0, total = 1;

	if (strcmp(text, ".") == 0)
		return "invalid name";
	for (const char *p = text; *p; p++) {
		if (*p == '\\') {
			if (p[1] >= '0' && p[1] <= '9' && p[2] >= '0' && p[2] <= '9' && p[3] >= '0' &&
			    p[3] <= '9')
				p += 3;
			else if (p[1])
				p++;
			else
				return "trailing backslash";
			label++;
		} else if (*p == '.') {
			if (label == 0)
				return "empty label";
			total += label + 1;
			label = 0;
		} else {
			label++;
		}
		if (label > DNS_LABEL_MAX)
			return "label longer than 63 bytes";
	}
	if (label)
		total += label + 1;
	if (total + extra > DNS_NAME_MAX)
		return "name longer than 255 bytes";
	return "invalid name";
}

/* Text to an absolute lowercase wire name. "@" is origin; text ending in an
 * unescaped '.' is absolute; any other text is relative to origin (with
 * origin NULL, absolute). Returns 0, or -1 after reporting at n. */
static int name_parse(struct cfg_ctx *c, const yaml_node_t *n, const char *key, const char *text,
                      const uint8_t *origin, size_t originlen, uint8_t out[DNS_NAME_MAX],
                      size_t *outlen)
{
	uint8_t tmp[DNS_NAME_MAX];
	size_t tlen;

	if (origin && strcmp(text, "@") == 0) {
		memcpy(out, origin, originlen);
		*outlen = originlen;
		return 0;
	}
	if (text[0] == '\0')
		return fail(c, n, "%s: empty name", key);
	bool relative = origin && !name_is_absolute(text);
	if (wire_name_from_text(text, tmp, &tlen) != 0 || tlen < 1 || tlen > DNS_NAME_MAX)
		return fail(c, n, "%s: bad name '%.*s': %s", key, CFG_QUOTE, text,
		            name_problem(text, relative ? originlen - 1 : 0));
	if (relative) {
		/* tmp ends in the root label; replace it with the origin. */
		if (tlen - 1 + originlen > DNS_NAME_MAX)
			return fail(c, n, "%s: bad name '%.*s': name longer than 255 bytes", key,
			            CFG_QUOTE, text);
		memcpy(out, tmp, tlen - 1);
		memcpy(out + tlen - 1, origin, originlen);
		*outlen = tlen - 1 + originlen;
	} else {
		memcpy(out, tmp, tlen);
		*outlen = tlen;
	}
	wire_name_lower(out, *outlen);
	return 0;
}

/* label + "." + parent into out; 0, or -1 if the result is over 255 bytes. */
static int name_prepend(uint8_t out[DNS_NAME_MAX], size_t *outlen, const char *label,
                        const uint8_t *parent, size_t plen)
{
	size_t llen = strlen(label);

	if (llen == 0 || llen > DNS_LABEL_MAX || 1 + llen + plen > DNS_NAME_MAX)
		return -1;
	out[0] = (uint8_t)llen;
	memcpy(out + 1, label, llen);
	if (plen)                     /* a service's owner is NULL until its name is read */
		memcpy(out + 1 + llen, parent, plen);
	*outlen = 1 + llen + plen;
	wire_name_lower(out, *outlen);
	return 0;
}

/* A name as text for messages (always NUL-terminated). */
static const char *name_text(const uint8_t *name, size_t len, char *buf, size_t cap)
{
	if (wire_name_to_text(name, len, buf, cap) < 0)
		snprintf(buf, cap, "?");
	return buf;
}

static const char *zone_text(const struct cfg_zone *z, char *buf, size_t cap)
{
	return name_text(z->origin, z->originlen, buf, cap);
}

/* ---- generic items ------------------------------------------------------ */

static void *field(void *obj, const struct schema_item *it)
{
	return (char *)obj + it->off;
}

static int get_uint(struct cfg_ctx *c, yaml_node_t *n, const struct schema_item *it,
                    uint64_t *v)
{
	const char *s = scalar(c, n, it->key, "an integer");
	if (!s)
		return -1;
	if (!num_parse(s, it->max, v) || *v < it->min)
		return fail(c, n, "%s: expected an integer in %u..%u, got '%.*s'", it->key,
		            (unsigned)it->min, (unsigned)it->max, CFG_QUOTE, s);
	return 0;
}

static int item_u32(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	uint64_t v;
	if (get_uint(c, n, it, &v) == -1)
		return -1;
	uint32_t u = (uint32_t)v;
	memcpy(field(obj, it), &u, sizeof(u));
	return 0;
}

static int item_u16(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	uint64_t v;
	if (get_uint(c, n, it, &v) == -1)
		return -1;
	uint16_t u = (uint16_t)v;
	memcpy(field(obj, it), &u, sizeof(u));
	return 0;
}

static int item_bool(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	static const char *const yes[] = { "true", "yes", "on", NULL };
	static const char *const no[] = { "false", "no", "off", NULL };
	const char *s = scalar(c, n, it->key, "true or false");
	if (!s)
		return -1;
	for (size_t i = 0; yes[i]; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*(bool *)field(obj, it) = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*(bool *)field(obj, it) = false;
			return 0;
		}
	}
	return fail(c, n, "%s: expected true or false, got '%.*s'", it->key, CFG_QUOTE, s);
}

static int get_duration(struct cfg_ctx *c, yaml_node_t *n, const struct schema_item *it, bool ms,
                        uint32_t *v)
{
	const char *s = scalar(c, n, it->key, "a duration");
	if (!s)
		return -1;
	if (config_parse_duration(s, ms, v) == -1)
		return fail(c, n, "%s: bad duration '%.*s' (expected e.g. %s)", it->key, CFG_QUOTE, s,
		            ms ? "500ms, 10s, 5m" : "30, 30s, 5m, 1h, 1d");
	if (*v < it->min || *v > it->max)
		return fail(c, n, "%s: '%.*s' is out of range %u%s..%u%s", it->key, CFG_QUOTE, s,
		            (unsigned)it->min, ms ? "ms" : "s", (unsigned)it->max, ms ? "ms" : "s");
	return 0;
}

/* A duration in seconds into a uint32_t. */
static int item_secs(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	uint32_t v;
	if (get_duration(c, n, it, false, &v) == -1)
		return -1;
	memcpy(field(obj, it), &v, sizeof(v));
	return 0;
}

/* A duration in milliseconds into a uint32_t (a bare number is seconds). */
static int item_msecs(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	uint32_t v;
	if (get_duration(c, n, it, true, &v) == -1)
		return -1;
	memcpy(field(obj, it), &v, sizeof(v));
	return 0;
}

/* A non-empty string into a char * (replacing an inherited one). */
static int item_str(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	const char *s = scalar(c, n, it->key, "a string");
	if (!s)
		return -1;
	if (*s == '\0')
		return fail(c, n, "%s: empty string", it->key);
	char *d = dup_str(c, n, s);
	if (!d)
		return -1;
	char **dst = field(obj, it);
	free(*dst);
	*dst = d;
	return 0;
}

/* Edit distance with adjacent transpositions (optimal string alignment),
 * for "did you mean": words of up to 31 bytes, longer ones count as far. */
static size_t edit_distance(const char *a, const char *b)
{
	enum { W = 32 };
	size_t la = strlen(a), lb = strlen(b);
	if (la >= W || lb >= W)
		return W;
	size_t d[W][W];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1];
			size_t v = d[i - 1][j - 1] + cost;
			if (d[i - 1][j] + 1 < v)
				v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[la][lb];
}

/* Keeps in *best the candidate closest to s: one edit away for words of up
 * to 4 bytes, two for longer ones (a typo, not another word). */
static void suggest(const char *s, const char *cand, const char **best, size_t *bestd)
{
	size_t d = edit_distance(s, cand);
	size_t limit = strlen(s) <= 4 ? 1 : 2;
	if (d <= limit && d < *bestd) {
		*best = cand;
		*bestd = d;
	}
}

/* One of the NULL-terminated names in aux; its index into an int-sized enum. */
static int item_enum(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	const char *const *names = it->aux;
	const char *s = scalar(c, n, it->key, "a name");
	if (!s)
		return -1;
	for (int i = 0; names[i]; i++) {
		if (strcmp(s, names[i]) == 0) {
			memcpy(field(obj, it), &i, sizeof(i));
			return 0;
		}
	}
	char list[200] = "";
	const char *best = NULL;
	size_t bestd = SIZE_MAX;
	for (size_t i = 0; names[i]; i++) {
		size_t used = strlen(list);
		snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", names[i]);
		suggest(s, names[i], &best, &bestd);
	}
	if (best)
		return fail(c, n, "%s: unknown value '%.*s'; did you mean '%s'? (expected one of %s)",
		            it->key, CFG_QUOTE, s, best, list);
	return fail(c, n, "%s: expected one of %s, got '%.*s'", it->key, list, CFG_QUOTE, s);
}

static int schema_map(struct cfg_ctx *c, yaml_node_t *n, const struct schema_item *items,
                      void *obj, int pass, const char *what);

/* A nested mapping: aux is its table, the field is the struct it fills. */
static int item_map(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	return schema_map(c, n, it->aux, field(obj, it), 0, it->key);
}

/* Walks mapping n against items (at most 64), with obj the struct they
 * fill. Pass 0 first checks every key (unknown, duplicate, missing required
 * ones) and then parses the items without ITEM_LATE; pass 1 parses only the
 * ITEM_LATE ones. what names the mapping in messages. */
static int schema_map(struct cfg_ctx *c, yaml_node_t *n, const struct schema_item *items,
                      void *obj, int pass, const char *what)
{
	if (n->type != YAML_MAPPING_NODE)
		return fail(c, n, "%s: expected a mapping, got %s", what, node_kind(n));

	yaml_node_pair_t *start = n->data.mapping.pairs.start, *top = n->data.mapping.pairs.top;
	if (pass == 0) {
		uint64_t seen = 0;
		for (yaml_node_pair_t *p = start; p < top; p++) {
			yaml_node_t *k = node_get(c, p->key);
			if (!k || !node_get(c, p->value))
				return fail(c, n, "%s: malformed mapping", what);
			if (visit(c, k) == -1)
				return -1;
			if (k->type != YAML_SCALAR_NODE)
				return fail(c, k, "%s: a key must be a string, not %s", what, node_kind(k));
			const char *key = (const char *)k->data.scalar.value;
			size_t i = 0;
			while (items[i].key && strcmp(items[i].key, key) != 0)
				i++;
			if (!items[i].key) {
				char list[300] = "";
				const char *best = NULL;
				size_t bestd = SIZE_MAX;
				for (size_t j = 0; items[j].key; j++) {
					size_t used = strlen(list);
					snprintf(list + used, sizeof(list) - used, "%s%s", j ? ", " : "",
					         items[j].key);
					suggest(key, items[j].key, &best, &bestd);
				}
				if (best)
					return fail(c, k, "%s: unknown key '%.*s'; did you mean '%s'? "
					            "(expected one of: %s)", what, CFG_QUOTE, key, best, list);
				return fail(c, k, "%s: unknown key '%.*s' (expected one of: %s)", what,
				            CFG_QUOTE, key, list);
			}
			if (seen & (UINT64_C(1) << i))
				return fail(c, k, "%s: duplicate key '%s'", what, items[i].key);
			seen |= UINT64_C(1) << i;
		}
		for (size_t i = 0; items[i].key; i++) {
			if ((items[i].flags & ITEM_REQUIRED) && !(seen & (UINT64_C(1) << i)))
				return fail(c, n, "%s: missing required key '%s'", what, items[i].key);
		}
	}
	for (yaml_node_pair_t *p = start; p < top; p++) {
		yaml_node_t *k = node_get(c, p->key);
		yaml_node_t *v = node_get(c, p->value);
		size_t i = 0;
		while (items[i].key && strcmp(items[i].key, (char *)k->data.scalar.value) != 0)
			i++;
		if (((items[i].flags & ITEM_LATE) != 0) != (pass == 1))
			continue;
		if (items[i].parse(c, v, obj, &items[i]) == -1)
			return -1;
	}
	return 0;
}

/* Calls fn for each item of sequence n (or n itself if it is a scalar or
 * mapping and single is true), with the item's index. */
static int each_item(struct cfg_ctx *c, yaml_node_t *n, const char *key, bool single, void *obj,
                     int (*fn)(struct cfg_ctx *c, yaml_node_t *item, size_t idx, void *obj))
{
	if (n->type != YAML_SEQUENCE_NODE) {
		if (single)
			return fn(c, n, 0, obj);
		return fail(c, n, "%s: expected a list, got %s", key, node_kind(n));
	}
	size_t idx = 0;
	for (yaml_node_item_t *p = n->data.sequence.items.start; p < n->data.sequence.items.top; p++) {
		yaml_node_t *item = node_get(c, *p);
		if (!item)
			return fail(c, n, "%s: malformed list", key);
		if (visit(c, item) == -1 || fn(c, item, idx++, obj) == -1)
			return -1;
	}
	return 0;
}

/* Number of elements each_item() will visit. */
static size_t item_count(const yaml_node_t *n)
{
	return n->type == YAML_SEQUENCE_NODE ? seq_len(n) : 1;
}

/* ---- top level: listen, localities -------------------------------------- */

static int listen_one(struct cfg_ctx *c, yaml_node_t *n, size_t idx, void *obj)
{
	struct config *cfg = obj;
	(void)idx;
	const char *s = scalar(c, n, "listen", "an address");
	if (!s)
		return -1;
	struct cfg_listen *l = &cfg->listen[cfg->nlisten];
	if (config_listen_ambiguous(s))
		return fail(c, n, "listen: '%.*s' is an IPv6 address ending in a number, not an "
		            "address and a port: write \"[%.*s]:%s\" (quoted) for port %s, or "
		            "\"[%.*s]\" for that address on port 53", CFG_QUOTE, s,
		            (int)(strrchr(s, ':') - s), s, strrchr(s, ':') + 1, strrchr(s, ':') + 1,
		            CFG_QUOTE, s);
	if (config_parse_listen(s, 53, l) == -1)
		return fail(c, n, "listen: bad address '%.*s' (expected ADDR, ADDR:PORT or [ADDR6]:PORT, "
		            "port 1..65535)", CFG_QUOTE, s);
	for (size_t i = 0; i < cfg->nlisten; i++) {
		if (cfg->listen[i].len == l->len && memcmp(&cfg->listen[i].ss, &l->ss, l->len) == 0)
			return fail(c, n, "listen: duplicate address '%.*s'", CFG_QUOTE, s);
	}
	cfg->nlisten++;
	return 0;
}

static int item_listen(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	struct config *cfg = obj;
	(void)it;
	size_t count = item_count(n);
	if (n->type == YAML_SEQUENCE_NODE && count == 0)
		return fail(c, n, "listen: empty list");
	if (n->type == YAML_MAPPING_NODE)
		return fail(c, n, "listen: expected an address or a list, got a mapping");
	cfg->listen = alloc_array(c, n, count, sizeof(*cfg->listen));
	if (!cfg->listen)
		return -1;
	return each_item(c, n, "listen", true, cfg, listen_one);
}

/* http: ADDR:PORT, the operator endpoint (off when absent). */
static int item_http(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	struct config *cfg = obj;
	const char *s = scalar(c, n, it->key, "an address");
	if (!s)
		return -1;
	if (!strchr(s, ':') || config_parse_listen_port0(s, 0, false, &cfg->http) == -1)
		return fail(c, n, "http: '%.*s' is not ADDR:PORT or [V6]:PORT", CFG_QUOTE, s);
	cfg->have_http = true;
	return 0;
}

/* "10.0.0.0/8", "fd00::/16", or an address alone (a host). Host bits must
 * be zero: "10.0.0.1/8" is most likely a typo. */
static int parse_subnet(const char *s, struct cfg_locality *loc, const char **why)
{
	char buf[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);

	*why = "expected ADDR/PREFIX";
	if (alen == 0 || alen >= sizeof(buf))
		return -1;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (parse_addr(buf, &loc->family, loc->addr) == -1)
		return -1;
	unsigned max = loc->family == AF_INET ? 32 : 128;
	uint64_t prefix = max;
	if (slash && !num_parse(slash + 1, max, &prefix)) {
		*why = loc->family == AF_INET ? "prefix must be 0..32" : "prefix must be 0..128";
		return -1;
	}
	loc->prefix = (uint8_t)prefix;
	for (unsigned bit = loc->prefix; bit < max; bit++) {
		if (loc->addr[bit / 8] & (0x80u >> (bit % 8))) {
			*why = "address has bits set beyond the prefix";
			return -1;
		}
	}
	return 0;
}

static int item_localities(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                           const struct schema_item *it)
{
	struct config *cfg = obj;
	(void)it;
	if (n->type != YAML_MAPPING_NODE)
		return fail(c, n, "localities: expected a mapping of SUBNET: LABEL, got %s",
		            node_kind(n));
	size_t count = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	cfg->localities = alloc_array(c, n, count, sizeof(*cfg->localities));
	if (!cfg->localities)
		return -1;
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = node_get(c, p->key), *v = node_get(c, p->value);
		if (!k || !v)
			return fail(c, n, "localities: malformed mapping");
		if (visit(c, k) == -1)
			return -1;
		const char *ks = scalar(c, k, "localities", "a subnet");
		if (!ks)
			return -1;
		struct cfg_locality *loc = &cfg->localities[cfg->nlocalities];
		const char *why;
		if (parse_subnet(ks, loc, &why) == -1)
			return fail(c, k, "localities: bad subnet '%.*s': %s", CFG_QUOTE, ks, why);
		for (size_t i = 0; i < cfg->nlocalities; i++) {
			const struct cfg_locality *o = &cfg->localities[i];
			if (o->family == loc->family && o->prefix == loc->prefix &&
			    memcmp(o->addr, loc->addr, 16) == 0)
				return fail(c, k, "localities: duplicate subnet '%.*s'", CFG_QUOTE, ks);
		}
		const char *vs = scalar(c, v, "localities", "a locality label");
		if (!vs)
			return -1;
		if (*vs == '\0')
			return fail(c, v, "localities: empty label");
		if (!(loc->label = dup_str(c, v, vs)))
			return -1;
		cfg->nlocalities++;
	}
	return 0;
}

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
		return fail(c, n, "expect: at most %d status codes", CFG_MAX_EXPECT);
	if (get_uint(c, n, &code, &v) == -1)
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
		return fail(c, n, "expect: expected a status code or a list, got a mapping");
	k->nexpect = 0;
	return each_item(c, n, "expect", true, k, expect_one);
}

static int item_path(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	const char *s = scalar(c, n, it->key, "a path");
	if (!s)
		return -1;
	if (s[0] != '/')
		return fail(c, n, "path: must start with '/', got '%.*s'", CFG_QUOTE, s);
	return item_str(c, n, obj, it);
}

static const struct schema_item check_items[] = {
	ITEM_ENUM("type", struct cfg_check, type, check_type_names),
	ITEM("interval", item_msecs, struct cfg_check, interval_ms, 1, CFG_DAY_MS, 0),
	ITEM("timeout", item_msecs, struct cfg_check, timeout_ms, 1, CFG_DAY_MS, 0),
	ITEM("rise", item_u32, struct cfg_check, rise, 1, 1000, 0),
	ITEM("fall", item_u32, struct cfg_check, fall, 1, 1000, 0),
	ITEM("port", item_u16, struct cfg_check, port, 0, 65535, 0),
	ITEM("path", item_path, struct cfg_check, path, 0, 0, 0),
	ITEM("host", item_str, struct cfg_check, host, 0, 0, 0),
	ITEM("expect", item_expect, struct cfg_check, expect, 0, 0, 0),
	ITEM_ENUM("initial-state", struct cfg_check, initial, initial_state_names),
	ITEM("flap-limit", item_u32, struct cfg_check, flap_limit, 0, 1000, 0),
	ITEM("flap-window", item_msecs, struct cfg_check, flap_window_ms, 1000, CFG_DAY_MS, 0),
	ITEM("flap-hold", item_msecs, struct cfg_check, flap_hold_ms, 1000, CFG_DAY_MS, 0),
	ITEM_END,
};

static void check_clear(struct cfg_check *k)
{
	free(k->path);
	free(k->host);
	k->path = NULL;
	k->host = NULL;
}

static int check_defaults(struct cfg_ctx *c, const yaml_node_t *n, struct cfg_check *k)
{
	memset(k, 0, sizeof(*k));
	k->type = CFG_CHECK_NONE;
	k->interval_ms = 1000;
	k->timeout_ms = 1000;
	k->rise = 2;
	k->fall = 3;
	k->flap_window_ms = 60000;
	k->flap_hold_ms = 60000;
	k->path = dup_str(c, n, "/");
	return k->path ? 0 : -1;
}

/* dst (empty) becomes a deep copy of src. */
static int check_copy(struct cfg_ctx *c, const yaml_node_t *n, struct cfg_check *dst,
                      const struct cfg_check *src)
{
	*dst = *src;
	dst->path = NULL;
	dst->host = NULL;
	if ((src->path && !(dst->path = dup_str(c, n, src->path))) ||
	    (src->host && !(dst->host = dup_str(c, n, src->host))))
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
	yaml_node_t *tn = map_find(c, n, "timeout"), *in = map_find(c, n, "interval");
	*set_here = tn != NULL;
	if (!tn && !timeout_set && k->timeout_ms > k->interval_ms)
		k->timeout_ms = k->interval_ms;
	if (k->timeout_ms > k->interval_ms)
		return fail(c, tn ? tn : in ? in : n, "check: timeout %ums is longer than interval %ums",
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
		return fail(c, n, "out of memory");
	if (check_copy(c, n, b->check, &c->svc->check) == -1)
		return -1;
	return check_parse(c, n, b->check, c->svc_timeout_set, &set);
}

/* Frees b's own check, if it has one. */
static void backend_check_free(struct cfg_backend *b)
{
	if (b->check) {
		check_clear(b->check);
		free(b->check);
		b->check = NULL;
	}
}

/* ---- backends ----------------------------------------------------------- */

static int item_address(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                        const struct schema_item *it)
{
	struct cfg_backend *b = obj;
	const char *s = scalar(c, n, it->key, "an IP address");
	if (!s)
		return -1;
	if (parse_addr(s, &b->family, b->addr) == -1)
		return fail(c, n, "%s: bad IP address '%.*s'", it->key, CFG_QUOTE, s);
	return 0;
}

static int item_backend_name(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                             const struct schema_item *it)
{
	const char *s = scalar(c, n, it->key, "a name");
	if (!s)
		return -1;
	if (!simple_label(s, DNS_LABEL_MAX))
		return fail(c, n, "name: '%.*s' is not a single DNS label of 1..63 letters, digits, "
		            "'-' or '_'", CFG_QUOTE, s);
	return item_str(c, n, obj, it);
}

static const struct schema_item backend_items[] = {
	ITEM_FN("address", item_address, ITEM_REQUIRED),
	ITEM("port", item_u16, struct cfg_backend, port, 1, 65535, 0),
	ITEM("weight", item_u32, struct cfg_backend, weight, 1, 65535, 0),
	ITEM("priority", item_u16, struct cfg_backend, priority, 0, 65535, 0),
	ITEM("locality", item_str, struct cfg_backend, locality, 0, 0, 0),
	ITEM("name", item_backend_name, struct cfg_backend, name, 0, 0, 0),
	ITEM_FN("check", item_backend_check, 0),
	ITEM_END,
};

static int addr_len(int family)
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
		return fail(c, n, "backends: more than %d backends in one service", CFG_MAX_BACKENDS);
	struct cfg_backend *b = &s->backends[s->nbackends++];
	b->weight = 100;
	b->line = node_line(n);
	b->col = node_col(n);
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
	size_t tlen;
	if (name_prepend(target, &tlen, b->name, s->owner, s->ownerlen) == -1)
		return fail(c, n, "backend: target name '%s.%s' is longer than 255 bytes", b->name,
		            s->name);

	for (size_t i = 0; i + 1 < s->nbackends; i++) {
		const struct cfg_backend *o = &s->backends[i];
		bool same_addr = o->family == b->family &&
		                 memcmp(o->addr, b->addr, (size_t)addr_len(b->family)) == 0;
		if (same_addr && o->port == b->port) {
			char text[INET6_ADDRSTRLEN], port[16] = "";
			addr_text(b->family, b->addr, -1, false, text, sizeof(text));
			if (b->port)
				snprintf(port, sizeof(port), " port %u", (unsigned)b->port);
			return fail(c, n, "backend: duplicate backend %s%s (first at line %d)", text, port,
			            o->line);
		}
		/* Two backends on one address (other ports) may share the name,
		 * since it names the host: the SRV target with that address.
		 * Default names of two addresses always differ. */
		if (!same_addr && !(o->name_pooled && b->name_pooled) &&
		    strcasecmp(o->name, b->name) == 0)
			return fail(c, n, "backend: name '%s' is already used by the backend at line %d "
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
		return fail(c, n, "backends: expected a list, got %s", node_kind(n));
	size_t count = seq_len(n);
	if (count > CFG_MAX_BACKENDS)
		count = CFG_MAX_BACKENDS;
	/* In the slab (see there): the schema refuses a second backends key. */
	s->backends = slab_alloc(c->cfg, (count ? count : 1) * sizeof(*s->backends));
	if (!s->backends)
		return fail(c, n, "out of memory");
	s->in_slab = true;
	if (count * INET6_ADDRSTRLEN > c->names_cap) {
		char *p = realloc(c->names, count * INET6_ADDRSTRLEN);
		if (!p)
			return fail(c, n, "out of memory");
		c->names = p;
		c->names_cap = count * INET6_ADDRSTRLEN;
	}
	c->names_len = 0;
	if (each_item(c, n, "backends", false, s, backend_one) == -1)
		return -1;
	if (c->names_len == 0)
		return 0;
	/* The default names move from the scratch to the service's pool. */
	if (!(s->name_pool = slab_alloc(c->cfg, c->names_len))) {
		for (size_t i = 0; i < s->nbackends; i++) {
			if (s->backends[i].name_pooled) {
				s->backends[i].name = NULL;
				s->backends[i].name_pooled = false;
			}
		}
		return fail(c, n, "out of memory");
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
	ITEM_ENUM("proto", struct port_spec, proto, proto_names),
	ITEM_END,
};

/* ports: {NAME: PORT} or {NAME: {port: PORT, proto: tcp|udp}}. */
static int item_ports(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	struct cfg_service *s = obj;
	(void)it;
	if (n->type != YAML_MAPPING_NODE)
		return fail(c, n, "ports: expected a mapping of NAME: PORT, got %s", node_kind(n));
	size_t count = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	if (count == 0)
		return fail(c, n, "ports: at least one port is required");
	s->ports = alloc_array(c, n, count, sizeof(*s->ports));
	if (!s->ports)
		return -1;
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = node_get(c, p->key), *v = node_get(c, p->value);
		if (!k || !v)
			return fail(c, n, "ports: malformed mapping");
		if (visit(c, k) == -1)
			return -1;
		const char *name = scalar(c, k, "ports", "a port name");
		if (!name)
			return -1;
		/* The name becomes the label "_NAME" of _NAME._PROTO.<service>. */
		if (!simple_label(name, DNS_LABEL_MAX - 1))
			return fail(c, k, "ports: name '%.*s' must be 1..62 letters, digits, '-' or '_'",
			            CFG_QUOTE, name);
		for (size_t i = 0; i < s->nports; i++) {
			if (strcasecmp(s->ports[i].name, name) == 0)
				return fail(c, k, "ports: duplicate port name '%s'", name);
		}
		struct cfg_port *port = &s->ports[s->nports++];
		if (!(port->name = dup_str(c, k, name)))
			return -1;
		struct port_spec spec = { .port = 0, .proto = 0 };
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
	const char *text = scalar(c, n, it->key, "a name");
	if (!text)
		return -1;
	uint8_t owner[DNS_NAME_MAX];
	size_t ownerlen;
	if (name_parse(c, n, it->key, text, z->origin, z->originlen, owner, &ownerlen) == -1)
		return -1;
	uint8_t *own = malloc(ownerlen);
	if (!own)
		return fail(c, n, "out of memory");
	memcpy(own, owner, ownerlen);
	free(s->owner);
	s->owner = own;
	s->ownerlen = ownerlen;
	if (!wire_name_is_subdomain(s->owner, s->ownerlen, z->origin, z->originlen))
		return fail(c, n, "name: service '%.*s' is outside zone %s", CFG_QUOTE, text,
		            zone_text(z, zt, sizeof(zt)));
	if (wire_name_equal(s->owner, s->ownerlen, z->origin, z->originlen))
		return fail(c, n, "name: a service cannot be at the zone apex");
	const struct cfg_service *dup = svc_index_add(c, z, z->nservices - 1);
	if (dup)
		return fail(c, n, "name: duplicate service '%.*s' (first at line %d)", CFG_QUOTE, text,
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

/* Case-insensitive hash of a wire name (FNV-1a over lowercased bytes). */
static uint64_t name_hash(const uint8_t *name, size_t len)
{
	return fnv_lower(FNV_SEED, name, len);
}

/* An empty index for a zone of up to count services (at most half full). */
static int svc_index_reset(struct cfg_ctx *c, size_t count)
{
	free(c->svc_slots);
	size_t cap = 16;
	while (cap < 2 * count)
		cap *= 2;
	c->svc_slots = calloc(cap, sizeof(*c->svc_slots));
	c->svc_mask = cap - 1;
	return c->svc_slots ? 0 : -1;
}

/* Adds service si of zone z to the index; returns the service already
 * there with the same name, or NULL. */
static const struct cfg_service *svc_index_add(struct cfg_ctx *c, struct cfg_zone *z, size_t si)
{
	const struct cfg_service *s = &z->services[si];
	for (size_t i = name_hash(s->owner, s->ownerlen) & c->svc_mask;; i = (i + 1) & c->svc_mask) {
		uint32_t v = c->svc_slots[i];
		if (v == 0) {
			c->svc_slots[i] = (uint32_t)si + 1;
			return NULL;
		}
		const struct cfg_service *o = &z->services[v - 1];
		if (wire_name_equal(o->owner, o->ownerlen, s->owner, s->ownerlen))
			return o;
	}
}

static const struct schema_item service_items[] = {
	ITEM("name", item_svc_name, struct cfg_service, name, 0, 0, ITEM_REQUIRED),
	ITEM("ttl", item_svc_ttl, struct cfg_service, ttl, 0, CFG_TTL_MAX, 0),
	ITEM_ENUM("policy", struct cfg_service, policy, cfg_policy_names),
	ITEM("max-answers", item_u32, struct cfg_service, max_answers, 0, 65535, 0),
	ITEM_ENUM("oversize", struct cfg_service, oversize, oversize_names),
	ITEM("fail-open", item_bool, struct cfg_service, fail_open, 0, 0, 0),
	ITEM("slow-start", item_msecs, struct cfg_service, slow_start_ms, 0, CFG_DAY_MS, 0),
	ITEM_FN("ports", item_ports, ITEM_REQUIRED),
	ITEM_FN("check", item_svc_check, 0),
	/* Late: backends start from the service's check, wherever it is written. */
	ITEM_FN("backends", item_backends, ITEM_LATE),
	ITEM_END,
};

static int service_one(struct cfg_ctx *c, yaml_node_t *n, size_t idx, void *obj)
{
	struct cfg_zone *z = obj;
	(void)idx;
	struct cfg_service *s = &z->services[z->nservices++];
	s->ttl = z->ttl;
	s->fail_open = true;
	s->line = node_line(n);
	s->col = node_col(n);
	c->svc_timeout_set = false;
	if (check_defaults(c, n, &s->check) == -1 ||
	    schema_map(c, n, service_items, s, 0, "service") == -1 ||
	    schema_map(c, n, service_items, s, 1, "service") == -1)
		return -1;
	if (s->ttl_auto)
		service_auto_ttl(s, z->ttl);
	return 0;
}

static int item_services(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                         const struct schema_item *it)
{
	struct cfg_zone *z = obj;
	(void)it;
	if (n->type != YAML_SEQUENCE_NODE)
		return fail(c, n, "services: expected a list, got %s", node_kind(n));
	z->services = alloc_array(c, n, seq_len(n), sizeof(*z->services));
	if (!z->services)
		return -1;
	if (svc_index_reset(c, seq_len(n)) == -1)
		return fail(c, n, "out of memory");
	return each_item(c, n, "services", false, z, service_one);
}

/* ---- static records ----------------------------------------------------- */

static int item_rec_name(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                         const struct schema_item *it)
{
	struct cfg_record *r = obj;
	struct cfg_zone *z = c->zone;
	char zt[1024];
	const char *text = scalar(c, n, it->key, "a name");
	if (!text)
		return -1;
	if (name_parse(c, n, it->key, text, z->origin, z->originlen, r->owner, &r->ownerlen) == -1)
		return -1;
	if (!wire_name_is_subdomain(r->owner, r->ownerlen, z->origin, z->originlen))
		return fail(c, n, "name: '%.*s' is outside zone %s", CFG_QUOTE, text,
		            zone_text(z, zt, sizeof(zt)));
	return 0;
}

static int item_rec_type(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                         const struct schema_item *it)
{
	struct cfg_record *r = obj;
	const char *s = scalar(c, n, it->key, "a record type");
	if (!s)
		return -1;
	if (rdata_type_from_name(s, &r->type) == -1 || r->type == 0)
		return fail(c, n, "type: unknown record type '%.*s'", CFG_QUOTE, s);
	if (r->type == DNS_TYPE_SOA)
		return fail(c, n, "type: the SOA record comes from the zone's soa key");
	/* OPT, TSIG and the query-only types (RFC 6895 section 3.1: 128-255)
	 * cannot be stored in a zone. */
	if (r->type == DNS_TYPE_OPT || (r->type >= 128 && r->type <= 255))
		return fail(c, n, "type: %s records cannot be stored in a zone", s);
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
	const char *s = scalar(c, n, it->key, "record data");
	if (!s)
		return -1;
	char *quoted = NULL;
	if (r->type == DNS_TYPE_TXT && s[0] != '"' && strncmp(s, "\\#", 2) != 0) {
		if (!(quoted = txt_quote(s)))
			return fail(c, n, "out of memory");
		s = quoted;
	}
	size_t len = 0;
	const char *why = NULL;
	int rc = rdata_from_text(r->type, s, z->origin, z->originlen, c->rdbuf, CFG_RDATA_MAX, &len,
	                         &why);
	free(quoted);
	if (rc != 0 || len > CFG_RDATA_MAX)
		return fail(c, n, "data: %s in %s data", why ? why : "cannot parse",
		            rdata_type_name(r->type));
	if (!(r->rdata = malloc(len ? len : 1)))
		return fail(c, n, "out of memory");
	memcpy(r->rdata, c->rdbuf, len);
	r->rdlen = (uint16_t)len;
	return 0;
}

static const struct schema_item record_items[] = {
	ITEM_FN("name", item_rec_name, ITEM_REQUIRED),
	ITEM_FN("type", item_rec_type, ITEM_REQUIRED),
	/* Late: parsing depends on the type, wherever it is written. */
	ITEM_FN("data", item_rec_data, ITEM_REQUIRED | ITEM_LATE),
	ITEM("ttl", item_secs, struct cfg_record, ttl, 0, CFG_TTL_MAX, 0),
	ITEM_END,
};

static int record_one(struct cfg_ctx *c, yaml_node_t *n, size_t idx, void *obj)
{
	struct cfg_zone *z = obj;
	(void)idx;
	struct cfg_record *r = &z->records[z->nrecords++];
	r->ttl = z->ttl;
	r->line = node_line(n);
	r->col = node_col(n);
	if (schema_map(c, n, record_items, r, 0, "record") == -1 ||
	    schema_map(c, n, record_items, r, 1, "record") == -1)
		return -1;
	if (r->type == DNS_TYPE_NS && wire_name_equal(r->owner, r->ownerlen, z->origin, z->originlen))
		return fail(c, n, "record: NS records at the apex come from the zone's ns key");
	return 0;
}

static int item_records(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                        const struct schema_item *it)
{
	struct cfg_zone *z = obj;
	(void)it;
	if (n->type != YAML_SEQUENCE_NODE)
		return fail(c, n, "records: expected a list, got %s", node_kind(n));
	z->records = alloc_array(c, n, seq_len(n), sizeof(*z->records));
	if (!z->records)
		return -1;
	return each_item(c, n, "records", false, z, record_one);
}

/* ---- zones: name, ns, soa ----------------------------------------------- */

static int item_zone_name(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                          const struct schema_item *it)
{
	struct cfg_zone *z = obj;
	const char *text = scalar(c, n, it->key, "a zone name");
	if (!text)
		return -1;
	if (name_parse(c, n, it->key, text, NULL, 0, z->origin, &z->originlen) == -1)
		return -1;
	for (size_t i = 0; i + 1 < c->cfg->nzones; i++) {
		const struct cfg_zone *o = &c->cfg->zones[i];
		if (wire_name_equal(o->origin, o->originlen, z->origin, z->originlen))
			return fail(c, n, "name: duplicate zone '%.*s' (first at line %d)", CFG_QUOTE,
			            text, o->line);
	}
	return item_str(c, n, obj, it);
}

static int ns_one(struct cfg_ctx *c, yaml_node_t *n, size_t idx, void *obj)
{
	struct cfg_zone *z = obj;
	(void)idx;
	const char *text = scalar(c, n, "ns", "a name");
	if (!text)
		return -1;
	if (name_parse(c, n, "ns", text, z->origin, z->originlen, z->ns[z->nns], &z->nslen[z->nns]) ==
	    -1)
		return -1;
	for (size_t i = 0; i < z->nns; i++) {
		if (wire_name_equal(z->ns[i], z->nslen[i], z->ns[z->nns], z->nslen[z->nns]))
			return fail(c, n, "ns: duplicate name '%.*s'", CFG_QUOTE, text);
	}
	z->nns++;
	return 0;
}

static int ns_alloc(struct cfg_ctx *c, const yaml_node_t *n, struct cfg_zone *z, size_t count)
{
	z->ns = alloc_array(c, n, count, sizeof(*z->ns));
	z->nslen = alloc_array(c, n, count, sizeof(*z->nslen));
	return z->ns && z->nslen ? 0 : -1;
}

/* A name or a list of names; relative ones are below the zone, but absolute
 * ones may be anywhere (ns1.example.net.). */
static int item_ns(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	struct cfg_zone *z = obj;
	(void)it;
	if (n->type == YAML_MAPPING_NODE)
		return fail(c, n, "ns: expected a name or a list of names, got a mapping");
	if (n->type == YAML_SEQUENCE_NODE && seq_len(n) == 0)
		return fail(c, n, "ns: empty list");
	if (ns_alloc(c, n, z, item_count(n)) == -1)
		return -1;
	return each_item(c, n, "ns", true, z, ns_one);
}

static int item_soa_mname(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                          const struct schema_item *it)
{
	struct cfg_soa *soa = obj;
	const char *text = scalar(c, n, it->key, "a name");
	if (!text)
		return -1;
	return name_parse(c, n, it->key, text, c->zone->origin, c->zone->originlen, soa->mname,
	                  &soa->mnamelen);
}

/* rname is a name ("hostmaster", "hostmaster.example.org.") or a mail
 * address, "john.doe@example.org" -> john\.doe.example.org. (RFC 1035 8). */
static int item_soa_rname(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                          const struct schema_item *it)
{
	struct cfg_soa *soa = obj;
	const char *text = scalar(c, n, it->key, "a name or mail address");
	if (!text)
		return -1;
	const char *at = strchr(text, '@');
	if (!at || strcmp(text, "@") == 0)
		return name_parse(c, n, it->key, text, c->zone->origin, c->zone->originlen,
		                  soa->rname, &soa->rnamelen);
	const char *domain = at + 1;
	if (at == text || *domain == '\0' || strchr(domain, '@'))
		return fail(c, n, "rname: bad mail address '%.*s'", CFG_QUOTE, text);
	size_t len = strlen(text);
	char *buf = malloc(2 * len + 2);
	if (!buf)
		return fail(c, n, "out of memory");
	char *p = buf;
	for (const char *q = text; q < at; q++) {
		if (*q == '.' || *q == '\\')
			*p++ = '\\';
		*p++ = *q;
	}
	*p++ = '.';
	strcpy(p, domain);
	if (!name_is_absolute(domain))
		strcat(p, ".");
	int rc = name_parse(c, n, it->key, buf, NULL, 0, soa->rname, &soa->rnamelen);
	free(buf);
	return rc;
}

static const struct schema_item soa_items[] = {
	ITEM_FN("mname", item_soa_mname, 0),
	ITEM_FN("rname", item_soa_rname, 0),
	ITEM("serial", item_u32, struct cfg_soa, serial, 0, UINT32_MAX, 0),
	ITEM("refresh", item_secs, struct cfg_soa, refresh, 0, CFG_TTL_MAX, 0),
	ITEM("retry", item_secs, struct cfg_soa, retry, 0, CFG_TTL_MAX, 0),
	ITEM("expire", item_secs, struct cfg_soa, expire, 0, CFG_TTL_MAX, 0),
	ITEM("minimum", item_secs, struct cfg_soa, minimum, 0, CFG_TTL_MAX, 0),
	ITEM("ttl", item_secs, struct cfg_soa, ttl, 0, CFG_TTL_MAX, 0),
	ITEM_END,
};

/* ---- transfers and notify ------------------------------------------------- */

static int allow_one(struct cfg_ctx *c, yaml_node_t *n, size_t idx, void *obj)
{
	struct cfg_transfer *t = obj;
	(void)idx;
	const char *s = scalar(c, n, "allow", "an address prefix");
	if (!s)
		return -1;
	struct cfg_locality loc;
	const char *why;
	if (parse_subnet(s, &loc, &why) == -1)
		return fail(c, n, "allow: bad prefix '%.*s': %s", CFG_QUOTE, s, why);
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
		return fail(c, n, "allow: expected a prefix or a list, got a mapping");
	t->allow = alloc_array(c, n, item_count(n), sizeof(*t->allow));
	if (!t->allow)
		return -1;
	return each_item(c, n, "allow", true, t, allow_one);
}

static int keyref_set(struct cfg_ctx *c, yaml_node_t *n, const char *key, struct cfg_keyref *r)
{
	const char *s = scalar(c, n, key, "a key name");
	if (!s)
		return -1;
	if (!(r->name = dup_str(c, n, s)))
		return -1;
	r->line = node_line(n);
	r->col = node_col(n);
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
		return fail(c, n, "keys: expected a key name or a list, got a mapping");
	*keys = alloc_array(c, n, item_count(n), sizeof(**keys));
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

static void transfer_clear(struct cfg_transfer *t)
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

static int item_top_transfer(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                             const struct schema_item *it)
{
	(void)it;
	return transfer_parse(c, n, &((struct config *)obj)->transfer);
}

static int notify_addr(struct cfg_ctx *c, yaml_node_t *n, struct cfg_notify *nt)
{
	const char *s = scalar(c, n, "notify", "an address");
	if (!s)
		return -1;
	if (config_parse_listen(s, 53, &nt->addr) == -1)
		return fail(c, n, "notify: bad address '%.*s' (expected ADDR, ADDR:PORT or "
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
			return fail(c, n, "notify: duplicate address");
	return 0;
}

static int item_notify(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	struct cfg_zone *z = obj;
	(void)it;
	if (n->type == YAML_SEQUENCE_NODE && seq_len(n) == 0)
		return 0;
	z->notify = alloc_array(c, n, item_count(n), sizeof(*z->notify));
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

static void update_clear(struct cfg_update *u)
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
		return fail(c, n, "update: expected a mapping {keys: [...], journal: FILE}, got %s",
		            node_kind(n));
	if (schema_map(c, n, update_items, u, 0, "update") == -1)
		return -1;
	if (u->nkeys == 0)
		return fail(c, n, "update: keys: at least one TSIG key is needed");
	if (u->journal[0] == '\0')
		return fail(c, n, "update: journal: empty file name");
	u->set = true;
	u->line = node_line(n);
	u->col = node_col(n);
	return 0;
}

static int item_zone_check_names(struct cfg_ctx *c, const yaml_node_t *n, struct cfg_zone *z);

static const struct schema_item zone_items[] = {
	ITEM("name", item_zone_name, struct cfg_zone, name, 0, 0, ITEM_REQUIRED),
	ITEM("ttl", item_secs, struct cfg_zone, ttl, 0, CFG_TTL_MAX, 0),
	/* Late: all of these need the origin, and default their TTLs to the zone's. */
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
	z->ttl = 30;
	z->line = node_line(n);
	z->col = node_col(n);
	c->zone = z;
	if (schema_map(c, n, zone_items, z, 0, "zone") == -1)
		return -1;
	z->soa.refresh = 3600;
	z->soa.retry = 600;
	z->soa.expire = 86400;
	z->soa.minimum = 30;
	z->soa.ttl = z->ttl;
	if (schema_map(c, n, zone_items, z, 1, "zone") == -1)
		return -1;
	if (z->nns == 0) {
		if (ns_alloc(c, n, z, 1) == -1)
			return -1;
		if (name_prepend(z->ns[0], &z->nslen[0], "ns", z->origin, z->originlen) == -1)
			return fail(c, n, "zone: default NS name ns.<zone> is longer than 255 bytes");
		z->nns = 1;
	}
	if (z->soa.mnamelen == 0) {
		memcpy(z->soa.mname, z->ns[0], z->nslen[0]);
		z->soa.mnamelen = z->nslen[0];
	}
	if (z->soa.rnamelen == 0 &&
	    name_prepend(z->soa.rname, &z->soa.rnamelen, "hostmaster", z->origin, z->originlen) == -1)
		return fail(c, n, "zone: default rname hostmaster.<zone> is longer than 255 bytes");
	if (item_zone_check_names(c, n, z) == -1)
		return -1;
	z->names_checked = true;
	c->zone = NULL;
	return 0;
}

/* A name of zone z at or below the origin of another configured zone y
 * (y inside z) is never served: lookups pick the longest zone. Only the
 * delegation of y in z (NS at y's apex) and glue addresses below it may
 * sit there. Returns 0, or -1 after reporting the first such name. */
static int check_nested_zones(struct cfg_ctx *c, const struct config *cfg)
{
	char zt[1024], yt[1024];
	for (size_t zi = 0; zi < cfg->nzones; zi++) {
		const struct cfg_zone *z = &cfg->zones[zi];
		for (size_t yi = 0; yi < cfg->nzones; yi++) {
			const struct cfg_zone *y = &cfg->zones[yi];
			if (yi == zi || y->originlen <= z->originlen ||
			    !wire_name_is_subdomain(y->origin, y->originlen, z->origin, z->originlen))
				continue;
			for (size_t i = 0; i < z->nrecords; i++) {
				const struct cfg_record *r = &z->records[i];
				if (!wire_name_is_subdomain(r->owner, r->ownerlen, y->origin, y->originlen))
					continue;
				bool at_apex = wire_name_equal(r->owner, r->ownerlen, y->origin, y->originlen);
				if ((at_apex && r->type == DNS_TYPE_NS) ||
				    r->type == DNS_TYPE_A || r->type == DNS_TYPE_AAAA)
					continue;     /* the delegation and its glue */
				return fail_at(c, r->line, r->col,
				               "record in zone %s is inside zone %s (line %d), which answers "
				               "for it: move it there", zone_text(z, zt, sizeof(zt)),
				               zone_text(y, yt, sizeof(yt)), y->line);
			}
			for (size_t i = 0; i < z->nservices; i++) {
				const struct cfg_service *sv = &z->services[i];
				if (wire_name_is_subdomain(sv->owner, sv->ownerlen, y->origin, y->originlen))
					return fail_at(c, sv->line, sv->col,
					               "service '%s' of zone %s is inside zone %s (line %d), which "
					               "answers for it: move it there", sv->name,
					               zone_text(z, zt, sizeof(zt)), zone_text(y, yt, sizeof(yt)),
					               y->line);
			}
		}
	}
	return 0;
}

static int item_zones(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	struct config *cfg = obj;
	(void)it;
	if (n->type != YAML_SEQUENCE_NODE)
		return fail(c, n, "zones: expected a list, got %s", node_kind(n));
	if (seq_len(n) == 0)
		return fail(c, n, "no zones defined");
	cfg->zones = alloc_array(c, n, seq_len(n), sizeof(*cfg->zones));
	if (!cfg->zones)
		return -1;
	if (each_item(c, n, "zones", false, cfg, zone_one) == -1)
		return -1;
	return check_nested_zones(c, cfg);
}

static const struct schema_item tcp_items[] = {
	ITEM("idle-timeout", item_msecs, struct config, tcp_idle_timeout_ms, 1, CFG_DAY_MS, 0),
	ITEM("max-clients", item_u32, struct config, tcp_max_clients, 1, 65535, 0),
	ITEM("max-per-client", item_u32, struct config, tcp_max_per_client, 0, 65535, 0),
	ITEM_END,
};

static int upstream_one(struct cfg_ctx *c, yaml_node_t *n, size_t idx, void *obj)
{
	struct cfg_forward *f = obj;
	(void)idx;
	const char *s = scalar(c, n, "upstreams", "an address");
	if (!s)
		return -1;
	struct cfg_listen *l = &f->upstreams[f->nupstreams];
	if (config_listen_ambiguous(s))
		return fail(c, n, "upstreams: '%.*s' is an IPv6 address ending in a number, not an "
		            "address and a port: write \"[%.*s]:%s\" (quoted) for port %s, or "
		            "\"[%.*s]\" for that address on port 53", CFG_QUOTE, s,
		            (int)(strrchr(s, ':') - s), s, strrchr(s, ':') + 1, strrchr(s, ':') + 1,
		            CFG_QUOTE, s);
	if (config_parse_listen(s, 53, l) == -1)
		return fail(c, n, "upstreams: bad address '%.*s' (expected ADDR, ADDR:PORT or "
		            "[ADDR6]:PORT, port 1..65535)", CFG_QUOTE, s);
	for (size_t i = 0; i < f->nupstreams; i++) {
		if (f->upstreams[i].len == l->len && memcmp(&f->upstreams[i].ss, &l->ss, l->len) == 0)
			return fail(c, n, "upstreams: duplicate address '%.*s'", CFG_QUOTE, s);
	}
	f->nupstreams++;
	return 0;
}

static int item_upstreams(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                          const struct schema_item *it)
{
	struct cfg_forward *f = obj;
	(void)it;
	size_t count = item_count(n);
	if (n->type == YAML_SEQUENCE_NODE && count == 0)
		return fail(c, n, "upstreams: empty list");
	if (count > CFG_MAX_UPSTREAMS)
		return fail(c, n, "upstreams: at most %d addresses", CFG_MAX_UPSTREAMS);
	if (n->type == YAML_MAPPING_NODE)
		return fail(c, n, "upstreams: expected an address or a list, got a mapping");
	f->upstreams = alloc_array(c, n, count, sizeof(*f->upstreams));
	if (!f->upstreams)
		return -1;
	return each_item(c, n, "upstreams", true, f, upstream_one);
}

static const struct schema_item forward_items[] = {
	ITEM_FN("upstreams", item_upstreams, 0),
	ITEM("resolv-conf", item_str, struct cfg_forward, resolv_conf, 0, 0, 0),
	ITEM("timeout", item_msecs, struct cfg_forward, timeout_ms, 100, 60000, 0),
	ITEM("max-outstanding", item_u32, struct cfg_forward, max_outstanding, 1, 60000, 0),
	ITEM("tcp", item_bool, struct cfg_forward, tcp, 0, 0, 0),
	ITEM_END,
};

/* forward: upstreams and resolv-conf are two sources of the same list. */
static int item_forward(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	struct config *cfg = obj;
	if (schema_map(c, n, forward_items, &cfg->forward, 0, it->key) == -1)
		return -1;
	yaml_node_t *rc = map_find(c, n, "resolv-conf");
	if (cfg->forward.nupstreams && rc)
		return fail(c, rc, "forward: give either upstreams or resolv-conf, not both");
	if (!cfg->forward.nupstreams && !rc)
		return fail(c, n, "forward: missing upstreams (or resolv-conf)");
	return 0;
}

static const struct schema_item cache_items[] = {
	ITEM("max-entries", item_u32, struct cfg_cache, max_entries, 0, 100000000, 0),
	ITEM("max-ttl", item_secs, struct cfg_cache, max_ttl, 1, CFG_TTL_MAX, 0),
	ITEM("min-ttl", item_secs, struct cfg_cache, min_ttl, 0, 86400, 0),
	ITEM("neg-max-ttl", item_secs, struct cfg_cache, neg_max_ttl, 0, 86400, 0),
	ITEM_END,
};

static int item_cache(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	struct config *cfg = obj;
	if (schema_map(c, n, cache_items, &cfg->cache, 0, it->key) == -1)
		return -1;
	if (cfg->cache.min_ttl > cfg->cache.max_ttl) {
		yaml_node_t *v = map_find(c, n, "min-ttl");
		return fail(c, v ? v : n, "cache: min-ttl (%us) is above max-ttl (%us)",
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
	{ .key = "enabled", .parse = item_ck_enabled, .off = offsetof(struct cfg_cookies, enabled) },
	{ .key = "require-under-load", .parse = item_ck_enabled,
	  .off = offsetof(struct cfg_cookies, require) },
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
		return fail(c, n, "cookies: %.*s: expected 16 bytes as 32 hex digits", CFG_QUOTE, path);
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
		if (cookie_secret_load(c, map_find(c, n, "secret-file"), cp.secret_file,
		                       cfg->cookies.secret) == -1)
			goto out;
		cfg->cookies.have_secret = true;
	}
	if (cp.previous_file) {
		yaml_node_t *pn = map_find(c, n, "previous-secret-file");
		if (!cp.secret_file) {
			fail(c, pn, "cookies: previous-secret-file needs secret-file");
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
	const char *s = scalar(c, n, l->key, "an address prefix");
	if (!s)
		return -1;
	struct cfg_locality loc;
	const char *why;
	if (parse_subnet(s, &loc, &why) == -1)
		return fail(c, n, "%s: bad prefix '%.*s': %s", l->key, CFG_QUOTE, s, why);
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
		return fail(c, n, "%s: expected a list of prefixes, got %s", key, node_kind(n));
	if (item_count(n) > CFG_RRL_EXEMPT_MAX)
		return fail(c, n, "%s: at most %d prefixes", key, CFG_RRL_EXEMPT_MAX);
	free(*v);
	*v = NULL;
	*nv = 0;
	if (item_count(n) == 0)
		return 0;
	*v = alloc_array(c, n, item_count(n), sizeof(**v));
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
	ITEM("responses-per-second", item_u32, struct cfg_rrl, rate, 0, 100000, 0),
	ITEM("window", item_secs, struct cfg_rrl, window, 1, 3600, 0),
	ITEM("slip", item_u32, struct cfg_rrl, slip, 0, 10, 0),
	ITEM("ipv4-prefix", item_u32, struct cfg_rrl, v4_prefix, 8, 32, 0),
	ITEM("ipv6-prefix", item_u32, struct cfg_rrl, v6_prefix, 16, 128, 0),
	ITEM_FN("exempt", item_rrl_exempt, 0),
	ITEM_END,
};

static int item_rrl(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	struct config *cfg = obj;
	return schema_map(c, n, rrl_items, &cfg->rrl, 0, it->key);
}

/* rrl's default exempt list: loopback. */
static int rrl_defaults(struct config *cfg)
{
	cfg->rrl = (struct cfg_rrl){ .window = 15, .slip = 2, .v4_prefix = 24, .v6_prefix = 56 };
	cfg->rrl.exempt = calloc(2, sizeof(*cfg->rrl.exempt));
	if (!cfg->rrl.exempt)
		return -1;
	cfg->rrl.exempt[0] = (struct cfg_prefix){ .family = AF_INET, .addr = { 127 }, .prefix = 8 };
	cfg->rrl.exempt[1] = (struct cfg_prefix){ .family = AF_INET6, .addr = { [15] = 1 },
	                                          .prefix = 128 };
	cfg->rrl.nexempt = 2;
	return 0;
}

/* chaos: {allow: [prefixes]}: who may read CHAOS service status
 * (<service>, _why.<service>: backend addresses, health, check errors).
 * Default loopback; an empty list allows nobody. */
static int item_chaos_allow(struct cfg_ctx *c, yaml_node_t *n, void *obj,
                            const struct schema_item *it)
{
	struct cfg_chaos *ch = obj;
	(void)it;
	return prefix_list(c, n, "allow", &ch->allow, &ch->nallow);
}

static const struct schema_item chaos_items[] = {
	ITEM_FN("allow", item_chaos_allow, 0),
	ITEM_END,
};

static int item_chaos(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	struct config *cfg = obj;
	return schema_map(c, n, chaos_items, &cfg->chaos, 0, it->key);
}

static int chaos_defaults(struct config *cfg)
{
	cfg->chaos.allow = calloc(2, sizeof(*cfg->chaos.allow));
	if (!cfg->chaos.allow)
		return -1;
	cfg->chaos.allow[0] = (struct cfg_prefix){ .family = AF_INET, .addr = { 127 }, .prefix = 8 };
	cfg->chaos.allow[1] = (struct cfg_prefix){ .family = AF_INET6, .addr = { [15] = 1 },
	                                           .prefix = 128 };
	cfg->chaos.nallow = 2;
	return 0;
}

/* ---- etcd ------------------------------------------------------------------ */

static int etcd_endpoint_one(struct cfg_ctx *c, yaml_node_t *n, size_t idx, void *obj)
{
	struct cfg_etcd *e = obj;
	(void)idx;
	const char *s = scalar(c, n, "endpoints", "a URL or host:port");
	if (!s)
		return -1;
	size_t len = strlen(s);
	if (len == 0 || len > 200 || strpbrk(s, " \t\r\n\"\\"))
		return fail(c, n, "endpoints: bad endpoint '%.*s' (expected e.g. "
		            "http://127.0.0.1:2379 or 127.0.0.1:2379)", CFG_QUOTE, s);
	const char *colon = strstr(s, "://");
	if (colon && strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0)
		return fail(c, n, "endpoints: '%.*s': the scheme must be http or https", CFG_QUOTE,
		            s);
	for (size_t i = 0; i < e->nendpoints; i++) {
		if (strcmp(e->endpoints[i], s) == 0)
			return fail(c, n, "endpoints: duplicate endpoint '%.*s'", CFG_QUOTE, s);
	}
	if (!(e->endpoints[e->nendpoints] = dup_str(c, n, s)))
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
		return fail(c, n, "endpoints: expected an endpoint or a list, got a mapping");
	if (count == 0)
		return fail(c, n, "endpoints: empty list");
	if (count > CFG_ETCD_MAX_ENDPOINTS)
		return fail(c, n, "endpoints: at most %d endpoints", CFG_ETCD_MAX_ENDPOINTS);
	e->endpoints = alloc_array(c, n, count, sizeof(*e->endpoints));
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
	const char *s = scalar(c, n, it->key, "a key prefix");
	if (!s)
		return -1;
	size_t len = strlen(s);
	if (s[0] != '/' || len > 200)
		return fail(c, n, "prefix: '%.*s' must start with '/' (e.g. /skydns/), at most 200 "
		            "bytes", CFG_QUOTE, s);
	char *d = malloc(len + 2);
	if (!d)
		return fail(c, n, "out of memory");
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
	const char *s = scalar(c, n, it->key, "a file path");
	if (!s)
		return -1;
	char full[4096];
	const char *slash = strrchr(c->name, '/');
	if (s[0] != '/' && slash)
		snprintf(full, sizeof(full), "%.*s/%s", (int)(slash - c->name), c->name, s);
	else
		snprintf(full, sizeof(full), "%s", s);
	if (access(full, R_OK) == -1)
		return fail(c, n, "%s: %s: %s", it->key, full, strerror(errno));
	char *d = dup_str(c, n, full);
	if (!d)
		return -1;
	char **dst = field(obj, it);
	free(*dst);
	*dst = d;
	return 0;
}

static const struct schema_item etcd_items[] = {
	ITEM_FN("endpoints", item_etcd_endpoints, ITEM_REQUIRED),
	ITEM("prefix", item_etcd_prefix, struct cfg_etcd, prefix, 0, 0, 0),
	ITEM("dial-timeout", item_msecs, struct cfg_etcd, dial_timeout_ms, 10, 60000, 0),
	ITEM("request-timeout", item_msecs, struct cfg_etcd, request_timeout_ms, 100, 600000, 0),
	ITEM("max-value-size", item_u32, struct cfg_etcd, max_value_size, 64, 1048576, 0),
	ITEM("username", item_str, struct cfg_etcd, username, 0, 0, 0),
	ITEM("password", item_str, struct cfg_etcd, password, 0, 0, 0),
	ITEM("tls-ca", item_etcd_file, struct cfg_etcd, tls_ca, 0, 0, 0),
	ITEM("tls-cert", item_etcd_file, struct cfg_etcd, tls_cert, 0, 0, 0),
	ITEM("tls-key", item_etcd_file, struct cfg_etcd, tls_key, 0, 0, 0),
	ITEM("serve-stale", item_bool, struct cfg_etcd, serve_stale, 0, 0, 0),
	ITEM_END,
};

static int item_etcd(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	struct config *cfg = obj;
	struct cfg_etcd *e = &cfg->etcd;
	if (schema_map(c, n, etcd_items, e, 0, it->key) == -1)
		return -1;
	if (!e->username != !e->password)
		return fail(c, n, "etcd: give username and password together");
	if (!e->tls_cert != !e->tls_key)
		return fail(c, n, "etcd: give tls-cert and tls-key together");
	if (!e->prefix && !(e->prefix = dup_str(c, n, "/skydns/")))
		return -1;
	return 0;
}

static void etcd_clear(struct cfg_etcd *e)
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
	ITEM_ENUM("algorithm", struct key_parse, alg, tsig_alg_names),
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
		fail(c, n, "secret-file: %s: %s", full, strerror(errno));
		return NULL;
	}
	char *buf = calloc(1, 4096);
	size_t got = buf ? fread(buf, 1, 4095, f) : 0;
	bool more = buf && fgetc(f) != EOF;
	fclose(f);
	if (!buf) {
		fail(c, n, "out of memory");
		return NULL;
	}
	if (more || got == 0) {
		fail(c, n, "secret-file: %s: %s", full, more ? "larger than 4095 bytes" : "empty");
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
	yaml_node_t *sn = map_find(c, n, "secret"), *fn = map_find(c, n, "secret-file");
	if (!!kp.secret == !!kp.secret_file) {
		fail(c, sn ? sn : n, "key: give either secret or secret-file");
		goto out;
	}
	if (kp.secret_file && !(filetext = read_secret_file(c, fn, kp.secret_file)))
		goto out;
	struct tsig_key *k = &cfg->keys[cfg->nkeys];
	const char *why;
	yaml_node_t *nn = map_find(c, n, "name");
	if (tsig_key_init(k, kp.name, (enum tsig_alg)kp.alg, filetext ? filetext : kp.secret, &why) == -1) {
		fail(c, strcmp(why, "bad key name") == 0 ? nn : filetext ? fn : sn, "key %.*s: %s",
		     CFG_QUOTE, kp.name, why);
		goto out;
	}
	for (size_t i = 0; i < cfg->nkeys; i++)
		if (wire_name_equal(cfg->keys[i].name, cfg->keys[i].namelen, k->name, k->namelen)) {
			fail(c, nn, "key: duplicate name '%.*s'", CFG_QUOTE, kp.name);
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
		return fail(c, n, "keys: expected a list of {name, algorithm, secret}, got %s",
		            node_kind(n));
	cfg->keys = alloc_array(c, n, seq_len(n), sizeof(*cfg->keys));
	if (!cfg->keys)
		return -1;
	return each_item(c, n, "keys", false, cfg, key_one);
}

/* Every key named in a transfer ACL or notify entry must exist. */
static int check_keyref(struct cfg_ctx *c, const struct cfg_keyref *r)
{
	if (!r->name)
		return 0;
	uint8_t nm[DNS_NAME_MAX];
	size_t len;
	if (wire_name_from_text(r->name, nm, &len) == 0 &&
	    tsig_key_find(c->cfg->keys, c->cfg->nkeys, nm, len))
		return 0;
	return fail_at(c, r->line, r->col, "no key named '%.*s' (see keys:)", CFG_QUOTE, r->name);
}

static int check_keyrefs(struct cfg_ctx *c)
{
	struct config *cfg = c->cfg;
	for (size_t i = 0; i < cfg->transfer.nkeys; i++)
		if (check_keyref(c, &cfg->transfer.keys[i]) == -1)
			return -1;
	for (size_t z = 0; z < cfg->nzones; z++) {
		const struct cfg_zone *cz = &cfg->zones[z];
		for (size_t i = 0; i < cz->transfer.nkeys; i++)
			if (check_keyref(c, &cz->transfer.keys[i]) == -1)
				return -1;
		for (size_t i = 0; i < cz->nnotify; i++)
			if (check_keyref(c, &cz->notify[i].key) == -1)
				return -1;
		for (size_t i = 0; i < cz->update.nkeys; i++)
			if (check_keyref(c, &cz->update.keys[i]) == -1)
				return -1;
		for (size_t i = 0; i < z && cz->update.set; i++)
			if (cfg->zones[i].update.set &&
			    strcmp(cfg->zones[i].update.journal, cz->update.journal) == 0)
				return fail_at(c, cz->update.line, cz->update.col,
				               "update: journal '%.*s' is already used by zone %s",
				               CFG_QUOTE, cz->update.journal, cfg->zones[i].name);
	}
	return 0;
}

/* One search-path suffix: a name, or "*.<name>" for any one label first. */
static int search_one(struct cfg_ctx *c, yaml_node_t *n, size_t idx, void *obj)
{
	struct config *cfg = obj;
	(void)idx;
	const char *text = scalar(c, n, "search-path", "a name");
	if (!text)
		return -1;
	struct cfg_search *e = &cfg->search[cfg->nsearch];
	bool any = strncmp(text, "*.", 2) == 0;
	uint8_t wire[DNS_NAME_MAX];
	size_t len;
	if (name_parse(c, n, "search-path", any ? text + 2 : text, NULL, 0, wire, &len) == -1)
		return -1;
	if (len <= 1)
		return fail(c, n, "search-path: the root is not a suffix");
	for (size_t i = 0; i < cfg->nsearch; i++)
		if (cfg->search[i].any_label == any &&
		    wire_name_equal(cfg->search[i].name, cfg->search[i].len, wire, len))
			return fail(c, n, "search-path: duplicate suffix '%.*s'", CFG_QUOTE, text);
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
		return fail(c, n, "search-path: expected a name or a list of names, got a mapping");
	if (item_count(n) > CFG_SEARCH_MAX)
		return fail(c, n, "search-path: at most %d suffixes", CFG_SEARCH_MAX);
	cfg->nsearch = 0;
	return each_item(c, n, "search-path", true, cfg, search_one);
}

/* A search-path suffix inside one of our zones would turn names we answer
 * for (NXDOMAIN) into CNAMEs: such suffixes belong to other servers. */
static int check_search_path(struct cfg_ctx *c, yaml_node_t *root)
{
	const struct config *cfg = c->cfg;
	for (size_t i = 0; i < cfg->nsearch; i++) {
		const struct cfg_search *e = &cfg->search[i];
		for (size_t z = 0; z < cfg->nzones; z++) {
			const struct cfg_zone *cz = &cfg->zones[z];
			if (wire_name_is_subdomain(e->name, e->len, cz->origin, cz->originlen)) {
				yaml_node_t *v = map_find(c, root, "search-path");
				char buf[DNS_NAME_MAX * 4];
				return fail(c, v ? v : root,
				            "search-path: suffix %s is inside zone %s, which dnsd answers "
				            "for itself", name_text(e->name, e->len, buf, sizeof(buf)),
				            cz->name);
			}
		}
	}
	return 0;
}

static const struct schema_item top_items[] = {
	ITEM_FN("listen", item_listen, 0),
	ITEM("workers", item_u32, struct config, workers, 0, CFG_MAX_WORKERS, 0),
	/* The tcp keys are fields of struct config itself. */
	{ .key = "tcp", .parse = item_map, .off = 0, .aux = tcp_items },
	ITEM("udp-max-payload", item_u16, struct config, udp_max_payload, 512, 4096, 0),
	ITEM_FN("localities", item_localities, 0),
	ITEM_FN("http", item_http, 0),
	ITEM_FN("zones", item_zones, 0),
	ITEM_FN("forward", item_forward, 0),
	ITEM_FN("cache", item_cache, 0),
	ITEM_FN("keys", item_keys, 0),
	ITEM_FN("transfer", item_top_transfer, 0),
	ITEM_FN("cookies", item_cookies, 0),
	ITEM_FN("rrl", item_rrl, 0),
	ITEM_FN("search-path", item_search_path, 0),
	ITEM_FN("chaos", item_chaos, 0),
	ITEM_FN("etcd", item_etcd, 0),
	ITEM_END,
};

/* ---- names inside a zone ------------------------------------------------ */

/* Who put data at a name. A service owns its name, _PORT._PROTO.<service>
 * and <backend>.<service> (the SRV targets); nothing else may live there. */
enum owner_kind { OWN_APEX, OWN_RECORD, OWN_SERVICE, OWN_SRV, OWN_TARGET };

/* Small, as a million of them are made for a big zone: names built here
 * (SRV names, backend targets) live in one pool (struct owner_pool), the
 * others point at their owner's. */
struct owner_ent {
	const uint8_t *name;
	union {
		const struct cfg_record *rec;  /* OWN_RECORD */
		const struct cfg_service *svc; /* OWN_SERVICE, OWN_SRV, OWN_TARGET */
	};
	uint8_t len;
	uint8_t kind;                 /* enum owner_kind */
	uint16_t type;                /* OWN_APEX and OWN_RECORD */
	int line, col;
	uint32_t seq;                 /* order of creation: ties of line:col */
};

struct owner_pool {
	uint8_t *bytes;
	size_t len, cap;
};

/* Sets e's name to a copy of name in the pool (sized beforehand). */
static void owner_name(struct owner_pool *p, struct owner_ent *e, const uint8_t *name, size_t len)
{
	uint8_t *d = p->bytes + p->len;
	memcpy(d, name, len);
	p->len += len;
	e->name = d;
	e->len = (uint8_t)len;
}

static int pos_cmp(const struct owner_ent *a, const struct owner_ent *b)
{
	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	if (a->col != b->col)
		return a->col < b->col ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int name_cmp(const struct owner_ent *a, const struct owner_ent *b)
{
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return memcmp(a->name, b->name, a->len);
}

/* File order. */
static int ent_cmp_pos(const void *pa, const void *pb)
{
	return pos_cmp(pa, pb);
}

/* Groups records of one RRset, identical rdata next to each other. */
static int ent_cmp_rrset(const void *pa, const void *pb)
{
	const struct owner_ent *a = pa, *b = pb;
	int r = name_cmp(a, b);
	if (r)
		return r;
	if (a->type != b->type)
		return a->type < b->type ? -1 : 1;
	if (a->kind == OWN_RECORD && b->kind == OWN_RECORD) {
		if (a->rec->rdlen != b->rec->rdlen)
			return a->rec->rdlen < b->rec->rdlen ? -1 : 1;
		if ((r = memcmp(a->rec->rdata, b->rec->rdata, a->rec->rdlen)) != 0)
			return r;
	}
	return pos_cmp(a, b);
}

/* The conflict to report: of all found, the first in the file. */
struct conflict {
	bool found;
	struct owner_ent at;          /* a copy: groups are sorted in place */
	char msg[sizeof(((struct config_error *)0)->msg)];
};

__attribute__((format(printf, 3, 4)))
static void conflict_note(struct conflict *cf, const struct owner_ent *at, const char *fmt, ...)
{
	if (cf->found && pos_cmp(&cf->at, at) <= 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cf->msg, sizeof(cf->msg), fmt, ap);
	va_end(ap);
	cf->at = *at;
	cf->found = true;
}

static const char *ent_what(const struct owner_ent *e, char *buf, size_t cap)
{
	switch (e->kind) {
	case OWN_APEX:
		snprintf(buf, cap, "the zone's %s record", rdata_type_name(e->type));
		break;
	case OWN_RECORD:
		snprintf(buf, cap, "the %s record at line %d", rdata_type_name(e->type), e->line);
		break;
	case OWN_SERVICE:
		snprintf(buf, cap, "service '%s' (line %d)", e->svc->name, e->line);
		break;
	case OWN_SRV:
		snprintf(buf, cap, "the SRV name of service '%s' (line %d)", e->svc->name, e->line);
		break;
	case OWN_TARGET:
		snprintf(buf, cap, "a backend of service '%s' (line %d)", e->svc->name, e->line);
		break;
	}
	return buf;
}

/* Checks one group of entries at the same name, in file order: a service's
 * names must be its alone, and a CNAME must be alone (RFC 1034 3.6.2). */
static void check_group(const struct owner_ent *g, size_t count, struct conflict *cf)
{
	char name[1024], what[300];
	const struct owner_ent *svc = NULL, *cname = NULL, *other = NULL;

	for (size_t j = 0; j < count; j++) {
		const struct owner_ent *e = &g[j];
		bool owned = e->kind == OWN_SERVICE || e->kind == OWN_SRV || e->kind == OWN_TARGET;
		bool is_cname = e->kind == OWN_RECORD && e->type == DNS_TYPE_CNAME;
		const struct owner_ent *first = svc ? svc : cname ? cname : other;
		if (first && (owned || svc)) {
			conflict_note(cf, e, "'%s' is already used by %s",
			              name_text(e->name, e->len, name, sizeof(name)),
			              ent_what(first, what, sizeof(what)));
			return;
		}
		if (first && (is_cname || cname)) {
			conflict_note(cf, e, "a CNAME cannot coexist with other data: '%s' already has %s",
			              name_text(e->name, e->len, name, sizeof(name)),
			              ent_what(first, what, sizeof(what)));
			return;
		}
		if (owned)
			svc = e;
		else if (is_cname)
			cname = e;
		else if (!other)
			other = e;
	}
}

/* Checks one RRset (same name and type) sorted by rdata: no duplicates, and
 * one TTL for all (RFC 2181 5.2), that of its first record in the file. */
static void check_rrset(const struct owner_ent *g, size_t count, struct conflict *cf)
{
	char name[1024];
	const struct owner_ent *first = &g[0];

	for (size_t j = 1; j < count; j++) {
		if (pos_cmp(&g[j], first) < 0)
			first = &g[j];
	}
	for (size_t j = 0; j < count; j++) {
		const struct owner_ent *e = &g[j];
		if (e->kind != OWN_RECORD)
			continue;
		if (j > 0 && g[j - 1].kind == OWN_RECORD && g[j - 1].rec->rdlen == e->rec->rdlen &&
		    memcmp(g[j - 1].rec->rdata, e->rec->rdata, e->rec->rdlen) == 0)
			conflict_note(cf, e, "duplicate %s record at '%s' (first at line %d)",
			              rdata_type_name(e->type), name_text(e->name, e->len, name, sizeof(name)),
			              g[j - 1].line);
		else if (first->kind == OWN_RECORD && e->rec->ttl != first->rec->ttl)
			conflict_note(cf, e, "TTL %u differs from the TTL %u of the %s record at line %d "
			              "(one RRset has one TTL)", (unsigned)e->rec->ttl,
			              (unsigned)first->rec->ttl, rdata_type_name(e->type), first->line);
	}
}

/* The entries of a zone by name, so that a zone of a million names is
 * checked in linear time (no sort of them all): an open-addressing table
 * of the first entry of each name, and per entry the next of its name.
 * Only names held by two entries or more (shared) are looked at closely. */
struct owner_index {
	struct owner_ent *ents;
	struct owner_slot {
		uint32_t ent;             /* index + 1 of a name's first entry, 0: empty */
		uint32_t tag;             /* its hash's high bits: most probes stop here */
	} *slots;
	size_t mask;
	uint32_t *next;               /* per entry: index + 1 of the next at its name, 0: none */
	uint32_t *shared;             /* first entries of the names held more than once */
	size_t nshared;
};

/* Zeroed memory for a big temporary table, straight from the kernel in
 * huge pages where the kernel offers them (madvise mode): a zone of a
 * million names makes 60 MB of tables read in random order, where 4 KiB
 * pages cost a page fault each and a TLB miss per probe. NULL on ENOMEM;
 * free with table_free(p, size). */
static void *table_alloc(size_t size)
{
	void *p = mmap(NULL, size ? size : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	               -1, 0);
	if (p == MAP_FAILED)
		return NULL;
#ifdef MADV_HUGEPAGE
	if (size >= (2u << 20))
		madvise(p, size, MADV_HUGEPAGE);      /* only an optimisation */
#endif
	return p;
}

static void table_free(void *p, size_t size)
{
	if (p)
		munmap(p, size ? size : 1);
}

/* Files ents[m] under its name. A backend target already held by a target
 * of the same service is not filed (returns false): backends sharing a name
 * share one address (backend_one), so the name is one SRV target. */
static bool owner_add(struct owner_index *x, size_t m)
{
	const struct owner_ent *e = &x->ents[m];
	uint64_t h = name_hash(e->name, e->len);
	uint32_t tag = (uint32_t)(h >> 32);
	for (size_t i = h & x->mask;; i = (i + 1) & x->mask) {
		uint32_t v = x->slots[i].ent;
		if (v == 0) {
			x->slots[i] = (struct owner_slot){ .ent = (uint32_t)m + 1, .tag = tag };
			return true;
		}
		if (x->slots[i].tag != tag || name_cmp(&x->ents[v - 1], e) != 0)
			continue;
		if (e->kind == OWN_TARGET) {
			for (uint32_t j = v; j; j = x->next[j - 1]) {
				if (x->ents[j - 1].kind == OWN_TARGET && x->ents[j - 1].svc == e->svc)
					return false;
			}
		}
		if (x->next[v - 1] == 0)
			x->shared[x->nshared++] = v - 1;
		x->next[m] = x->next[v - 1];
		x->next[v - 1] = (uint32_t)m + 1;
		return true;
	}
}

/* The checks of one name held by count entries (g, in any order; sorted
 * here): check_group in file order, then check_rrset per RRset. */
static void check_shared(struct owner_ent *g, size_t count, struct conflict *cf)
{
	qsort(g, count, sizeof(*g), ent_cmp_pos);
	check_group(g, count, cf);
	qsort(g, count, sizeof(*g), ent_cmp_rrset);
	for (size_t i = 0, j; i < count; i = j) {
		for (j = i + 1; j < count && g[i].type == g[j].type; j++)
			;
		if (j - i > 1 && g[i].type != 0)
			check_rrset(&g[i], j - i, cf);
	}
}

/* The parents of a zone's names other than backend targets (the name
 * without its first label), by pointer into the names themselves. A
 * backend target <name>.<service> can only clash with a name that is not
 * a target: two services' targets never clash (their parents, the
 * services' names, differ) and one service's targets sharing a name are
 * one target. So a service's targets need a check only when its name is
 * such a parent: in a zone of 100,000 services, almost never. */
struct parent_set {
	struct parent_slot {
		const uint8_t *name;      /* NULL: empty */
		uint32_t tag;
		uint8_t len;
	} *slots;
	size_t mask;
};

/* The slot of name (its hash's high bits in *tag): its own, or the empty
 * one where it would go. */
static struct parent_slot *parent_slot(const struct parent_set *p, const uint8_t *name,
                                       size_t len, uint32_t *tag)
{
	uint64_t h = name_hash(name, len);
	*tag = (uint32_t)(h >> 32);
	for (size_t i = h & p->mask;; i = (i + 1) & p->mask) {
		struct parent_slot *s = &p->slots[i];
		if (!s->name || (s->tag == *tag && s->len == len && memcmp(s->name, name, len) == 0))
			return s;
	}
}

static void parent_add(struct parent_set *p, const uint8_t *name, size_t len)
{
	size_t skip = 1 + (size_t)name[0];
	if (len <= skip)
		return;               /* the root has no parent */
	uint32_t tag;
	struct parent_slot *s = parent_slot(p, name + skip, len - skip, &tag);
	*s = (struct parent_slot){ .name = name + skip, .tag = tag, .len = (uint8_t)(len - skip) };
}

static bool parent_has(const struct parent_set *p, const uint8_t *name, size_t len)
{
	uint32_t tag;
	return parent_slot(p, name, len, &tag)->name != NULL;
}

static int item_zone_check_names(struct cfg_ctx *c, const yaml_node_t *n, struct cfg_zone *z)
{
	/* Entries other than targets first (apex, records, services, SRV
	 * names), then the targets that need a check. seq keeps the order of
	 * creation of one pass over the zone (a service, its SRV names, its
	 * targets), for ties of line:col. */
	size_t nother = 2 + z->nrecords, count = nother, srvcap = 0;
	for (size_t i = 0; i < z->nservices; i++) {
		const struct cfg_service *s = &z->services[i];
		nother += 1 + s->nports;
		count += 1 + s->nports + s->nbackends;
		for (size_t j = 0; j < s->nports; j++) {
			size_t l = s->ownerlen + 7 + strlen(s->ports[j].name);
			srvcap += l < DNS_NAME_MAX ? l : DNS_NAME_MAX;
		}
	}
	if (count > UINT32_MAX / 4)
		return fail(c, n, "too many names in one zone");
	size_t psize = 16;
	while (psize < 2 * nother)
		psize *= 2;
	struct parent_set parents = { .mask = psize - 1 };
	struct owner_index x = { .nshared = 0 };
	struct owner_pool srvpool = { .cap = srvcap }, tpool = { .len = 0 };
	size_t tsize = 0;
	/* Mapped, not touched: only the entries made cost memory. */
	x.ents = table_alloc(count * sizeof(*x.ents));
	x.next = table_alloc(count * sizeof(*x.next));
	x.shared = table_alloc(count * sizeof(*x.shared));
	parents.slots = table_alloc(psize * sizeof(*parents.slots));
	srvpool.bytes = table_alloc(srvpool.cap + 1);
	struct owner_ent *group = NULL;
	int rc = -1;
	if (!x.ents || !x.next || !x.shared || !parents.slots || !srvpool.bytes) {
		fail(c, n, "out of memory");
		goto out;
	}

	size_t m = 0;
	uint32_t seq = 0;
	static const uint16_t apex_types[] = { DNS_TYPE_SOA, DNS_TYPE_NS };
	for (size_t i = 0; i < 2; i++) {
		x.ents[m++] = (struct owner_ent){ .name = z->origin, .len = (uint8_t)z->originlen,
		                                  .kind = OWN_APEX, .type = apex_types[i],
		                                  .line = z->line, .col = z->col, .seq = seq++ };
	}
	for (size_t i = 0; i < z->nrecords; i++) {
		const struct cfg_record *r = &z->records[i];
		x.ents[m++] = (struct owner_ent){ .name = r->owner, .len = (uint8_t)r->ownerlen,
		                                  .rec = r, .kind = OWN_RECORD, .type = r->type,
		                                  .line = r->line, .col = r->col, .seq = seq++ };
	}
	for (size_t i = 0; i < z->nservices; i++) {
		const struct cfg_service *s = &z->services[i];
		x.ents[m++] = (struct owner_ent){ .name = s->owner, .len = (uint8_t)s->ownerlen,
		                                  .svc = s, .kind = OWN_SERVICE, .line = s->line,
		                                  .col = s->col, .seq = seq++ };
		for (size_t j = 0; j < s->nports; j++) {
			uint8_t tmp[DNS_NAME_MAX], full[DNS_NAME_MAX];
			size_t tlen, flen;
			char label[DNS_LABEL_MAX + 1];
			snprintf(label, sizeof(label), "_%s", s->ports[j].name);
			if (name_prepend(tmp, &tlen, s->ports[j].proto == IPPROTO_UDP ? "_udp" : "_tcp",
			                 s->owner, s->ownerlen) == -1 ||
			    name_prepend(full, &flen, label, tmp, tlen) == -1) {
				fail_at(c, s->line, s->col, "service: SRV name _%s._%s.%s is longer than 255 "
				        "bytes", s->ports[j].name,
				        s->ports[j].proto == IPPROTO_UDP ? "udp" : "tcp", s->name);
				goto out;
			}
			x.ents[m] = (struct owner_ent){ .svc = s, .kind = OWN_SRV, .line = s->line,
			                                .col = s->col, .seq = seq++ };
			owner_name(&srvpool, &x.ents[m++], full, flen);
		}
		seq += (uint32_t)s->nbackends;
	}
	for (size_t k = 0; k < m; k++)
		parent_add(&parents, x.ents[k].name, x.ents[k].len);

	/* The services whose targets are checked, and room for those. */
	size_t ntargets = 0;
	for (size_t i = 0; i < z->nservices; i++) {
		const struct cfg_service *s = &z->services[i];
		if (!parent_has(&parents, s->owner, s->ownerlen))
			continue;
		ntargets += s->nbackends;
		for (size_t j = 0; j < s->nbackends; j++) {
			size_t l = s->ownerlen + 1 + strlen(s->backends[j].name);
			tpool.cap += l < DNS_NAME_MAX ? l : DNS_NAME_MAX;
		}
	}
	tsize = 16;
	while (tsize < 2 * (m + ntargets))
		tsize *= 2;
	x.mask = tsize - 1;
	x.slots = table_alloc(tsize * sizeof(*x.slots));
	tpool.bytes = table_alloc(tpool.cap + 1);
	if (!x.slots || !tpool.bytes) {
		fail(c, n, "out of memory");
		goto out;
	}
	for (size_t k = 0; k < m; k++)
		owner_add(&x, k);
	seq = (uint32_t)(2 + z->nrecords);
	for (size_t i = 0; i < z->nservices; i++) {
		const struct cfg_service *s = &z->services[i];
		seq += (uint32_t)(1 + s->nports);
		if (!parent_has(&parents, s->owner, s->ownerlen)) {
			seq += (uint32_t)s->nbackends;
			continue;
		}
		for (size_t j = 0; j < s->nbackends; j++, seq++) {
			const struct cfg_backend *b = &s->backends[j];
			uint8_t full[DNS_NAME_MAX];
			size_t flen;
			if (name_prepend(full, &flen, b->name, s->owner, s->ownerlen) == -1)
				continue;  /* reported by backend_one */
			size_t mark = tpool.len;
			x.ents[m] = (struct owner_ent){ .svc = s, .kind = OWN_TARGET, .line = b->line,
			                                .col = b->col, .seq = seq };
			owner_name(&tpool, &x.ents[m], full, flen);
			if (owner_add(&x, m))
				m++;
			else
				tpool.len = mark;
		}
	}

	/* The names held more than once, each checked alone: the conflicts
	 * found (and so the first of them in the file) are those a sort of
	 * all entries by name would find. */
	struct conflict cf = { .found = false };
	size_t gcap = 0;
	for (size_t k = 0; k < x.nshared; k++) {
		size_t gn = 0;
		for (uint32_t j = (uint32_t)x.shared[k] + 1; j; j = x.next[j - 1]) {
			if (gn == gcap) {
				size_t ncap = gcap ? 2 * gcap : 16;
				struct owner_ent *ng = realloc(group, ncap * sizeof(*ng));
				if (!ng) {
					fail(c, n, "out of memory");
					goto out;
				}
				group = ng;
				gcap = ncap;
			}
			group[gn++] = x.ents[j - 1];
		}
		check_shared(group, gn, &cf);
	}
	if (cf.found) {
		fail_at(c, cf.at.line, cf.at.col, "%s", cf.msg);
		goto out;
	}
	rc = 0;
out:
	free(group);
	table_free(x.ents, count * sizeof(*x.ents));
	table_free(x.slots, tsize * sizeof(*x.slots));
	table_free(x.next, count * sizeof(*x.next));
	table_free(x.shared, count * sizeof(*x.shared));
	table_free(parents.slots, psize * sizeof(*parents.slots));
	table_free(srvpool.bytes, srvpool.cap + 1);
	table_free(tpool.bytes, tpool.cap + 1);
	return rc;
}

/* ---- loading ------------------------------------------------------------ */

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->nzones; i++) {
		struct cfg_zone *z = &cfg->zones[i];
		config_records_free(z->records, z->nrecords);
		for (size_t j = 0; j < z->nservices; j++)
			config_service_clear(&z->services[j]);
		free(z->name);
		free(z->ns);
		free(z->nslen);
		free(z->services);
		transfer_clear(&z->transfer);
		for (size_t j = 0; j < z->nnotify; j++)
			free(z->notify[j].key.name);
		free(z->notify);
		update_clear(&z->update);
	}
	for (size_t i = 0; i < cfg->nkeys; i++)
		free(cfg->keys[i].name_text);
	if (cfg->keys)
		sodium_memzero(cfg->keys, cfg->nkeys * sizeof(*cfg->keys));
	free(cfg->keys);
	transfer_clear(&cfg->transfer);
	free(cfg->rrl.exempt);
	free(cfg->chaos.allow);
	etcd_clear(&cfg->etcd);
	sodium_memzero(&cfg->cookies, sizeof(cfg->cookies));
	for (size_t i = 0; i < cfg->nlocalities; i++)
		free(cfg->localities[i].label);
	free(cfg->localities);
	free(cfg->forward.upstreams);
	free(cfg->forward.resolv_conf);
	free(cfg->zones);
	free(cfg->listen);
	free(cfg->path);
	slab_free(cfg);
	free(cfg);
}

int config_load_string(const char *yaml, size_t len, const char *name, struct config **out,
                       struct config_error *err)
{
	struct cfg_ctx c = { .name = name ? name : "<string>", .err = err };
	struct yamldoc yd = { 0 };
	struct yamldoc_error e;
	int rc = -1;

	err->msg[0] = '\0';
	/* One pass over libyaml's events builds the document (one node array,
	 * one arena, not a malloc per node). Syntax errors, nesting deeper than
	 * CFG_MAX_DEPTH (far more than the schema's 9 levels; libyaml is
	 * quadratic in depth), undefined aliases and a second document fail here. */
	if (yamldoc_load(yaml, len, CFG_MAX_DEPTH, &yd, &e) == -1)
		return fail_at(&c, e.line, e.col, "%s", e.msg);
	c.doc = &yd.doc;
	c.max_visits = 16 * (size_t)(yd.doc.nodes.top - yd.doc.nodes.start) + 100000;

	yaml_node_t *root = yaml_document_get_root_node(&yd.doc);
	if (!root) {
		fail_at(&c, 1, 1, "empty configuration");
		goto out;
	}
	if (root->type != YAML_MAPPING_NODE) {
		fail(&c, root, "the top level must be a mapping, not %s", node_kind(root));
		goto out;
	}
	c.cfg = calloc(1, sizeof(*c.cfg));
	c.rdbuf = malloc(CFG_RDATA_MAX);
	if (!c.cfg || !c.rdbuf || !(c.cfg->path = strdup(c.name))) {
		fail_at(&c, 1, 1, "out of memory");
		goto out;
	}
	c.cfg->tcp_idle_timeout_ms = 10000;
	c.cfg->tcp_max_clients = 256;
	c.cfg->tcp_max_per_client = 64;
	c.cfg->udp_max_payload = DNS_UDP_DEFAULT;
	c.cfg->forward.timeout_ms = 2000;
	c.cfg->forward.max_outstanding = 1000;
	c.cfg->cache = (struct cfg_cache){ .max_entries = 10000, .max_ttl = 86400, .neg_max_ttl = 3600 };
	c.cfg->cookies.enabled = true;
	c.cfg->etcd = (struct cfg_etcd){ .dial_timeout_ms = 2000, .request_timeout_ms = 5000,
	                                 .max_value_size = 4096 };
	if (rrl_defaults(c.cfg) == -1 || chaos_defaults(c.cfg) == -1) {
		fail_at(&c, 1, 1, "out of memory");
		goto out;
	}
	if (schema_map(&c, root, top_items, c.cfg, 0, "top level") == -1)
		goto out;
	if (c.cfg->nzones == 0) {
		fail(&c, root, "no zones defined");
		goto out;
	}
	if (check_keyrefs(&c) == -1 || check_search_path(&c, root) == -1)
		goto out;
	/* Which services have backends with checks of their own: the watcher
	 * then looks at the backends of checked services only. It points at
	 * them, so theirs leave the slab now, before it can. */
	for (size_t zi = 0; zi < c.cfg->nzones; zi++)
		for (size_t si = 0; si < c.cfg->zones[zi].nservices; si++) {
			struct cfg_service *s = &c.cfg->zones[zi].services[si];
			for (size_t bi = 0; bi < s->nbackends && !s->own_checks; bi++)
				s->own_checks = s->backends[bi].check != NULL;
			if ((s->own_checks || s->check.type != CFG_CHECK_NONE) &&
			    config_service_own(s) == -1) {
				fail_at(&c, s->line, s->col, "out of memory");
				goto out;
			}
		}
	if (!c.cfg->listen) {
		c.cfg->listen = calloc(1, sizeof(*c.cfg->listen));
		if (!c.cfg->listen || config_parse_listen("127.0.0.1:53", 53, c.cfg->listen) == -1) {
			fail_at(&c, 1, 1, "out of memory");
			goto out;
		}
		c.cfg->nlisten = 1;
	}
	*out = c.cfg;
	c.cfg = NULL;
	rc = 0;
out:
	config_free(c.cfg);
	free(c.rdbuf);
	free(c.svc_slots);
	free(c.names);
	yamldoc_free(&yd);
	return rc;
}

int config_load(const char *path, struct config **out, struct config_error *err)
{
	char *buf;
	size_t len;
	if (file_read(path, CFG_FILE_MAX, &buf, &len, err->msg, sizeof(err->msg)) == -1)
		return -1;
	int rc = config_load_string(buf, len, path, out, err);
	free(buf);
	return rc;
}

/* ---- changes by dynamic updates ---------------------------------------------- */

long config_find_service(const struct config *cfg, size_t zi, const uint8_t *name, size_t len)
{
	const struct cfg_zone *z = &cfg->zones[zi];
	for (size_t i = 0; i < z->nservices; i++)
		if (wire_name_equal(z->services[i].owner, z->services[i].ownerlen, name, len))
			return (long)i;
	return -1;
}

static void backends_free(struct cfg_service *s)
{
	for (size_t k = 0; k < s->nbackends; k++) {
		if (!s->backends[k].name_pooled)
			free(s->backends[k].name);
		free(s->backends[k].locality);
		free(s->backends[k].src_key);
		backend_check_free(&s->backends[k]);
	}
	if (!s->in_slab) {
		free(s->backends);
		free(s->name_pool);
	}
	s->in_slab = false;
	s->backends = NULL;
	s->name_pool = NULL;
	s->nbackends = 0;
}

void config_service_clear(struct cfg_service *s)
{
	for (size_t k = 0; k < s->nports; k++)
		free(s->ports[k].name);
	backends_free(s);
	free(s->name);
	free(s->owner);
	free(s->ports);
	check_clear(&s->check);
	memset(s, 0, sizeof(*s));
}

bool config_service_freezable(const struct cfg_service *s)
{
	if (s->frozen || s->nbackends == 0 || s->check.type != CFG_CHECK_NONE || s->own_checks)
		return false;
	for (size_t i = 0; i < s->nbackends; i++)
		if (s->backends[i].check)
			return false;
	return true;
}

void config_service_freeze(struct cfg_service *s, uint64_t key)
{
	size_t n = s->nbackends;
	backends_free(s);
	s->frozen = true;
	s->nfrozen = (uint32_t)n;
	s->block_key = key;
}

static char *dup_or_null(const char *s, bool *oom)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	*oom |= !d;
	return d;
}

int config_service_copy(struct cfg_service *dst, const struct cfg_service *src)
{
	bool oom = false;
	*dst = *src;
	dst->name_pool = NULL;        /* the copy's names are its own */
	dst->in_slab = false;
	dst->name = dup_or_null(src->name, &oom);
	dst->owner = NULL;
	if (src->owner && !(dst->owner = malloc(src->ownerlen ? src->ownerlen : 1)))
		oom = true;
	else if (src->owner)
		memcpy(dst->owner, src->owner, src->ownerlen);
	dst->check.path = dup_or_null(src->check.path, &oom);
	dst->check.host = dup_or_null(src->check.host, &oom);
	dst->ports = calloc(src->nports ? src->nports : 1, sizeof(*dst->ports));
	dst->backends = calloc(src->nbackends ? src->nbackends : 1, sizeof(*dst->backends));
	if (!dst->ports || !dst->backends) {
		free(dst->ports);
		free(dst->backends);
		dst->ports = NULL;
		dst->backends = NULL;
		dst->nports = dst->nbackends = 0;
		config_service_clear(dst);
		return -1;
	}
	for (size_t i = 0; i < src->nports; i++) {
		dst->ports[i] = src->ports[i];
		dst->ports[i].name = dup_or_null(src->ports[i].name, &oom);
	}
	for (size_t i = 0; i < src->nbackends; i++) {
		struct cfg_backend *b = &dst->backends[i];
		*b = src->backends[i];
		b->name = dup_or_null(src->backends[i].name, &oom);
		b->name_pooled = false;
		b->locality = dup_or_null(src->backends[i].locality, &oom);
		b->src_key = dup_or_null(src->backends[i].src_key, &oom);
		if (src->backends[i].check) {
			b->check = malloc(sizeof(*b->check));
			if (b->check) {
				*b->check = *src->backends[i].check;
				b->check->path = dup_or_null(src->backends[i].check->path, &oom);
				b->check->host = dup_or_null(src->backends[i].check->host, &oom);
			} else {
				oom = true;
			}
		}
	}
	if (oom) {
		config_service_clear(dst);
		return -1;
	}
	return 0;
}

int config_add_backend(struct config *cfg, size_t zi, size_t si, const struct cfg_backend *tmpl,
                       char *err, size_t errlen)
{
	struct cfg_service *s = &cfg->zones[zi].services[si];
	char text[INET6_ADDRSTRLEN];
	addr_text(tmpl->family, tmpl->addr, -1, false, text, sizeof(text));
	for (size_t i = 0; i < s->nbackends; i++) {
		const struct cfg_backend *o = &s->backends[i];
		if (o->family == tmpl->family &&
		    memcmp(o->addr, tmpl->addr, (size_t)addr_len(tmpl->family)) == 0 &&
		    o->port == tmpl->port)
			return 1;
	}
	if (s->nbackends >= CFG_MAX_BACKENDS) {
		snprintf(err, errlen, "service %s: more than %d backends", s->name, CFG_MAX_BACKENDS);
		return -1;
	}
	struct cfg_backend *nb = config_service_own(s) == -1 ? NULL
	                         : realloc(s->backends, (s->nbackends + 1) * sizeof(*nb));
	if (!nb) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->backends = nb;
	struct cfg_backend *b = &nb[s->nbackends];
	memset(b, 0, sizeof(*b));
	b->family = tmpl->family;
	memcpy(b->addr, tmpl->addr, (size_t)addr_len(tmpl->family));
	b->port = tmpl->port;
	b->weight = tmpl->weight ? tmpl->weight : 100;
	b->priority = tmpl->priority;
	b->line = s->line;
	b->col = s->col;
	/* The loader's default name; a backend on the same address shares it. */
	char label[INET6_ADDRSTRLEN];
	config_addr_label(b->family, b->addr, label);
	for (size_t i = 0; i < s->nbackends; i++) {
		const struct cfg_backend *o = &s->backends[i];
		bool same_addr = o->family == b->family &&
		                 memcmp(o->addr, b->addr, (size_t)addr_len(b->family)) == 0;
		if (same_addr)
			snprintf(label, sizeof(label), "%s", o->name);
		else if (strcasecmp(o->name, label) == 0) {
			snprintf(err, errlen, "service %s: name '%s' is already used by another backend",
			         s->name, label);
			return -1;
		}
	}
	uint8_t target[DNS_NAME_MAX];
	size_t tlen;
	if (name_prepend(target, &tlen, label, s->owner, s->ownerlen) == -1) {
		snprintf(err, errlen, "backend %s: target name is longer than 255 bytes", text);
		return -1;
	}
	b->name = strdup(label);
	b->check = NULL;              /* the service's */
	b->source = CFG_SRC_UPDATE;
	if (!b->name) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->nbackends++;
	cfg->zones[zi].names_checked = false;
	return 0;
}

size_t config_remove_backends(struct config *cfg, size_t zi, size_t si, int family,
                              const uint8_t *addr, bool with_port, uint16_t port)
{
	struct cfg_service *s = &cfg->zones[zi].services[si];
	size_t out = 0, removed = 0;
	for (size_t i = 0; i < s->nbackends; i++) {
		struct cfg_backend *b = &s->backends[i];
		bool match = family == 0 ||
		             (b->family == family &&
		              memcmp(b->addr, addr, (size_t)addr_len(family)) == 0 &&
		              (!with_port || b->port == port));
		if (match) {
			if (!b->name_pooled)
				free(b->name);
			free(b->locality);
			backend_check_free(b);
			removed++;
			continue;
		}
		s->backends[out++] = *b;
	}
	s->nbackends = out;
	if (removed)
		cfg->zones[zi].names_checked = false;
	return removed;
}

int config_records_copy(struct cfg_record **out, const struct cfg_record *src, size_t n)
{
	struct cfg_record *r = calloc(n ? n : 1, sizeof(*r));
	*out = NULL;
	if (!r)
		return -1;
	for (size_t i = 0; i < n; i++) {
		r[i] = src[i];
		if (!(r[i].rdata = malloc(src[i].rdlen ? src[i].rdlen : 1))) {
			config_records_free(r, i);
			return -1;
		}
		if (src[i].rdlen)
			memcpy(r[i].rdata, src[i].rdata, src[i].rdlen);
	}
	*out = r;
	return 0;
}

void config_records_free(struct cfg_record *recs, size_t n)
{
	for (size_t i = 0; recs && i < n; i++)
		free(recs[i].rdata);
	free(recs);
}

int config_add_record(struct config *cfg, size_t zi, const uint8_t *owner, size_t ownerlen,
                      uint16_t type, uint32_t ttl, const uint8_t *rdata, uint16_t rdlen,
                      char *err, size_t errlen)
{
	struct cfg_zone *z = &cfg->zones[zi];
	if (!wire_name_is_subdomain(owner, ownerlen, z->origin, z->originlen)) {
		snprintf(err, errlen, "name outside zone %s", z->name);
		return -1;
	}
	if (type == DNS_TYPE_SOA || type == DNS_TYPE_OPT || (type >= 128 && type <= 255) ||
	    (type == DNS_TYPE_NS && wire_name_equal(owner, ownerlen, z->origin, z->originlen))) {
		snprintf(err, errlen, "%s records cannot be added here", rdata_type_name(type));
		return -1;
	}
	bool dup = false;
	z->names_checked = false;     /* TTLs change even for a duplicate */
	for (size_t i = 0; i < z->nrecords; i++) {
		struct cfg_record *r = &z->records[i];
		if (r->type != type || !wire_name_equal(r->owner, r->ownerlen, owner, ownerlen))
			continue;
		r->ttl = ttl;   /* one RRset, one TTL (RFC 2181 5.2) */
		if (r->rdlen == rdlen && memcmp(r->rdata, rdata, rdlen) == 0)
			dup = true;
	}
	if (dup)
		return 1;
	struct cfg_record *nr = realloc(z->records, (z->nrecords + 1) * sizeof(*nr));
	if (!nr) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	z->records = nr;
	struct cfg_record *r = &nr[z->nrecords];
	memset(r, 0, sizeof(*r));
	memcpy(r->owner, owner, ownerlen);
	r->ownerlen = ownerlen;
	wire_name_lower(r->owner, r->ownerlen);
	r->type = type;
	r->ttl = ttl;
	r->line = z->line;
	r->col = z->col;
	if (!(r->rdata = malloc(rdlen ? rdlen : 1))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (rdlen)
		memcpy(r->rdata, rdata, rdlen);
	r->rdlen = rdlen;
	z->nrecords++;
	return 0;
}

size_t config_remove_records(struct config *cfg, size_t zi, const uint8_t *owner,
                             size_t ownerlen, uint16_t type, const uint8_t *rdata,
                             uint16_t rdlen)
{
	struct cfg_zone *z = &cfg->zones[zi];
	size_t out = 0, removed = 0;
	for (size_t i = 0; i < z->nrecords; i++) {
		struct cfg_record *r = &z->records[i];
		bool match = wire_name_equal(r->owner, r->ownerlen, owner, ownerlen) &&
		             (type == 0 || r->type == type) &&
		             (!rdata || (r->rdlen == rdlen && memcmp(r->rdata, rdata, rdlen) == 0));
		if (match) {
			free(r->rdata);
			removed++;
			continue;
		}
		z->records[out++] = *r;
	}
	z->nrecords = out;
	if (removed)
		z->names_checked = false;
	return removed;
}

int config_check_zone(struct config *cfg, size_t zi, char *err, size_t errlen)
{
	struct config_error ce;
	struct cfg_ctx c = { .name = cfg->path ? cfg->path : "<update>", .err = &ce, .cfg = cfg };
	yaml_node_t none;
	memset(&none, 0, sizeof(none));
	ce.msg[0] = '\0';
	if (cfg->zones[zi].names_checked)
		return 0;
	if (item_zone_check_names(&c, &none, &cfg->zones[zi]) == 0) {
		cfg->zones[zi].names_checked = true;
		return 0;
	}
	/* Drop the "file:line:col: " of a position the update does not have. */
	const char *m = ce.msg, *p = strstr(m, ": ");
	if (p)
		m = p + 2;
	snprintf(err, errlen, "%s", m);
	return -1;
}

/* config_schema.c -- the schema engine: walks libyaml's document tree against
 * tables of rows (keys, parsers, bounds, defaults), and the scalar parsers. */
#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"
#include "util/hash.h"
#include "util/num.h"
#include "svcname.h"
#include "dns/wire.h"
#include "yamldoc.h"

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
int cfg_fail_at(struct cfg_ctx *c, int line, int col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail_at(c, line, col, fmt, ap);
	va_end(ap);
	return -1;
}

/* Reports at n's first character (libyaml marks are 0-based). */
__attribute__((format(printf, 3, 4)))
int cfg_fail(struct cfg_ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail_at(c, (int)n->start_mark.line + 1, (int)n->start_mark.column + 1, fmt, ap);
	va_end(ap);
	return -1;
}

int cfg_node_line(const yaml_node_t *n)
{
	return (int)n->start_mark.line + 1;
}

int cfg_node_col(const yaml_node_t *n)
{
	return (int)n->start_mark.column + 1;
}

const char *cfg_node_kind(const yaml_node_t *n)
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
yaml_node_t *cfg_node_get(struct cfg_ctx *c, int idx)
{
	return yaml_document_get_node(c->doc, idx);
}

int cfg_visit(struct cfg_ctx *c, const yaml_node_t *n)
{
	if (++c->visits > c->max_visits)
		return cfg_fail(c, n, "document too large after alias expansion");
	return 0;
}

size_t cfg_seq_len(const yaml_node_t *n)
{
	return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

/* The value of a key in mapping n, or NULL. */
yaml_node_t *cfg_map_find(struct cfg_ctx *c, const yaml_node_t *n, const char *key)
{
	if (n->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = cfg_node_get(c, p->key);
		if (k && k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, key) == 0)
			return cfg_node_get(c, p->value);
	}
	return NULL;
}

/* The text of scalar node n, where what ("an integer") was expected for key.
 * Rejects lists and mappings, nulls (an empty value, "~", "null") and
 * embedded NUL bytes, which C strings cannot carry. NULL after reporting. */
const char *cfg_scalar(struct cfg_ctx *c, const yaml_node_t *n, const char *key,
                          const char *what)
{
	if (n->type != YAML_SCALAR_NODE) {
		cfg_fail(c, n, "%s: expected %s, got %s", key, what, cfg_node_kind(n));
		return NULL;
	}
	const char *s = (const char *)n->data.scalar.value;
	size_t len = n->data.scalar.length;
	if (memchr(s, '\0', len)) {
		cfg_fail(c, n, "%s: value contains a NUL byte", key);
		return NULL;
	}
	if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	    (len == 0 || strcmp(s, "~") == 0 || strcasecmp(s, "null") == 0)) {
		cfg_fail(c, n, "%s: missing value (expected %s)", key, what);
		return NULL;
	}
	return s;
}

char *cfg_dup_str(struct cfg_ctx *c, const yaml_node_t *n, const char *s)
{
	char *d = strdup(s);
	if (!d)
		cfg_fail(c, n, "out of memory");
	return d;
}

/* calloc for an array of count elements (count may be 0). */
void *cfg_alloc_array(struct cfg_ctx *c, const yaml_node_t *n, size_t count, size_t size)
{
	void *p = calloc(count ? count : 1, size);
	if (!p)
		cfg_fail(c, n, "out of memory");
	return p;
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
int cfg_parse_addr(const char *s, int *family, uint8_t addr[16])
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
bool cfg_simple_label(const char *s, size_t max)
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
bool cfg_name_is_absolute(const char *text)
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
int cfg_name_parse(struct cfg_ctx *c, const yaml_node_t *n, const char *key, const char *text,
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
		return cfg_fail(c, n, "%s: empty name", key);
	bool relative = origin && !cfg_name_is_absolute(text);
	if (wire_name_from_text(text, tmp, &tlen) != 0 || tlen < 1 || tlen > DNS_NAME_MAX)
		return cfg_fail(c, n, "%s: bad name '%.*s': %s", key, CFG_QUOTE, text,
		                name_problem(text, relative ? originlen - 1 : 0));
	if (relative) {
		/* tmp ends in the root label; replace it with the origin. */
		if (tlen - 1 + originlen > DNS_NAME_MAX)
			return cfg_fail(c, n, "%s: bad name '%.*s': name longer than 255 bytes", key,
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

/* label + "." + parent into out, lowercased; 0, or -1 if the result is
 * over 255 bytes. */
int cfg_name_prepend(uint8_t out[DNS_NAME_MAX], size_t *outlen, const char *label,
                     const uint8_t *parent, size_t plen)
{
	size_t len = svcname_target(out, label, parent, plen);
	if (!len)
		return -1;
	*outlen = len;
	wire_name_lower(out, *outlen);
	return 0;
}

/* A name as text for messages (always NUL-terminated). */
const char *cfg_name_text(const uint8_t *name, size_t len, char *buf, size_t cap)
{
	if (wire_name_to_text(name, len, buf, cap) < 0)
		snprintf(buf, cap, "?");
	return buf;
}

const char *cfg_zone_text(const struct cfg_zone *z, char *buf, size_t cap)
{
	return cfg_name_text(z->origin, z->originlen, buf, cap);
}

/* Case-insensitive hash of a wire name (FNV-1a over lowercased bytes). */
uint64_t cfg_name_hash(const uint8_t *name, size_t len)
{
	return fnv_lower(FNV_SEED, name, len);
}

/* ---- generic items ------------------------------------------------------ */

void *cfg_field(void *obj, const struct schema_item *it)
{
	return (char *)obj + it->off;
}

int cfg_get_uint(struct cfg_ctx *c, yaml_node_t *n, const struct schema_item *it,
                    uint64_t *v)
{
	const char *s = cfg_scalar(c, n, it->key, "an integer");
	if (!s)
		return -1;
	if (!num_parse(s, it->max, v) || *v < it->min)
		return cfg_fail(c, n, "%s: expected an integer in %u..%u, got '%.*s'", it->key,
		                (unsigned)it->min, (unsigned)it->max, CFG_QUOTE, s);
	return 0;
}

int item_u32(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	uint64_t v;
	if (cfg_get_uint(c, n, it, &v) == -1)
		return -1;
	uint32_t u = (uint32_t)v;
	memcpy(cfg_field(obj, it), &u, sizeof(u));
	return 0;
}

int item_u16(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	uint64_t v;
	if (cfg_get_uint(c, n, it, &v) == -1)
		return -1;
	uint16_t u = (uint16_t)v;
	memcpy(cfg_field(obj, it), &u, sizeof(u));
	return 0;
}

int item_bool(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	static const char *const yes[] = { "true", "yes", "on", NULL };
	static const char *const no[] = { "false", "no", "off", NULL };
	const char *s = cfg_scalar(c, n, it->key, "true or false");
	if (!s)
		return -1;
	for (size_t i = 0; yes[i]; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*(bool *)cfg_field(obj, it) = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*(bool *)cfg_field(obj, it) = false;
			return 0;
		}
	}
	return cfg_fail(c, n, "%s: expected true or false, got '%.*s'", it->key, CFG_QUOTE, s);
}

static int get_duration(struct cfg_ctx *c, yaml_node_t *n, const struct schema_item *it, bool ms,
                        uint32_t *v)
{
	const char *s = cfg_scalar(c, n, it->key, "a duration");
	if (!s)
		return -1;
	if (config_parse_duration(s, ms, v) == -1)
		return cfg_fail(c, n, "%s: bad duration '%.*s' (expected e.g. %s)", it->key, CFG_QUOTE, s,
		                ms ? "500ms, 10s, 5m" : "30, 30s, 5m, 1h, 1d");
	if (*v < it->min || *v > it->max)
		return cfg_fail(c, n, "%s: '%.*s' is out of range %u%s..%u%s", it->key, CFG_QUOTE, s,
		                (unsigned)it->min, ms ? "ms" : "s", (unsigned)it->max, ms ? "ms" : "s");
	return 0;
}

/* A duration in seconds into a uint32_t. */
int item_secs(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	uint32_t v;
	if (get_duration(c, n, it, false, &v) == -1)
		return -1;
	memcpy(cfg_field(obj, it), &v, sizeof(v));
	return 0;
}

/* A duration in milliseconds into a uint32_t (a bare number is seconds). */
int item_msecs(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	uint32_t v;
	if (get_duration(c, n, it, true, &v) == -1)
		return -1;
	memcpy(cfg_field(obj, it), &v, sizeof(v));
	return 0;
}

/* A non-empty string into a char * (replacing an inherited one). */
int item_str(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	const char *s = cfg_scalar(c, n, it->key, "a string");
	if (!s)
		return -1;
	if (*s == '\0')
		return cfg_fail(c, n, "%s: empty string", it->key);
	char *d = cfg_dup_str(c, n, s);
	if (!d)
		return -1;
	char **dst = cfg_field(obj, it);
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

/* The enums are stored through an int (item_enum, and DEF by size). */
_Static_assert(sizeof(enum cfg_policy) == sizeof(int), "enum cfg_policy is not int-sized");
_Static_assert(sizeof(enum cfg_check_type) == sizeof(int), "enum cfg_check_type is not int-sized");
_Static_assert(sizeof(enum cfg_oversize) == sizeof(int), "enum cfg_oversize is not int-sized");
_Static_assert(sizeof(bool) == 1, "DEF stores a bool as one byte");

/* One of the NULL-terminated names in aux; its index into an int-sized enum. */
int item_enum(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	const char *const *names = it->aux;
	const char *s = cfg_scalar(c, n, it->key, "a name");
	if (!s)
		return -1;
	for (int i = 0; names[i]; i++) {
		if (strcmp(s, names[i]) == 0) {
			memcpy(cfg_field(obj, it), &i, sizeof(i));
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
		return cfg_fail(c, n, "%s: unknown value '%.*s'; did you mean '%s'? (expected one of %s)",
		                it->key, CFG_QUOTE, s, best, list);
	return cfg_fail(c, n, "%s: expected one of %s, got '%.*s'", it->key, list, CFG_QUOTE, s);
}

int schema_map(struct cfg_ctx *c, yaml_node_t *n, const struct schema_item *items,
                      void *obj, int pass, const char *what);

/* A nested mapping: aux is its table, the field is the struct it fills. */
int item_map(struct cfg_ctx *c, yaml_node_t *n, void *obj, const struct schema_item *it)
{
	return schema_map(c, n, it->aux, cfg_field(obj, it), 0, it->key);
}

/* Stores it->def in the item's field, by the field's size. */
static void default_number(void *obj, const struct schema_item *it)
{
	void *p = cfg_field(obj, it);
	switch (it->size) {
	case 1: {
		bool b = it->def != 0;
		memcpy(p, &b, sizeof(b));
		break;
	}
	case 2: {
		uint16_t v = (uint16_t)it->def;
		memcpy(p, &v, sizeof(v));
		break;
	}
	default: {                    /* uint32_t or an int-sized enum */
		assert(it->size == sizeof(uint32_t));
		uint32_t v = it->def;
		memcpy(p, &v, sizeof(v));
		break;
	}
	}
}

/* Reads it->def_text with the item's parser: a scalar as a node of its own,
 * a flow list ("[a, b]") as a document of its own. */
static int default_text(struct cfg_ctx *c, const yaml_node_t *at, void *obj,
                        const struct schema_item *it)
{
	const char *s = it->def_text;
	if (s[0] != '[') {
		yaml_node_t v;
		memset(&v, 0, sizeof(v));
		v.type = YAML_SCALAR_NODE;
		v.data.scalar.value = (yaml_char_t *)(uintptr_t)s;
		v.data.scalar.length = strlen(s);
		v.data.scalar.style = YAML_PLAIN_SCALAR_STYLE;
		v.start_mark = at->start_mark;
		return it->parse(c, &v, obj, it);
	}
	struct yamldoc yd = { 0 };
	struct yamldoc_error e;
	if (yamldoc_load(s, strlen(s), CFG_MAX_DEPTH, &yd, &e) == -1)
		return cfg_fail(c, at, "%s: bad default '%s': %s", it->key, s, e.msg);
	yaml_document_t *doc = c->doc;
	c->doc = &yd.doc;
	yaml_node_t *root = yaml_document_get_root_node(&yd.doc);
	int rc = root ? it->parse(c, root, obj, it) : cfg_fail(c, at, "%s: empty default", it->key);
	c->doc = doc;
	yamldoc_free(&yd);
	return rc;
}

int schema_defaults(struct cfg_ctx *c, const yaml_node_t *at, const struct schema_item *items,
                    void *obj)
{
	for (const struct schema_item *it = items; it->key; it++) {
		if (it->has_def)
			default_number(obj, it);
		if (it->def_text && (!c || default_text(c, at, obj, it) == -1))
			return -1;
		if ((it->flags & ITEM_TABLE) &&
		    schema_defaults(c, at, it->aux, cfg_field(obj, it)) == -1)
			return -1;
	}
	return 0;
}

/* Walks mapping n against items (at most 64), with obj the struct they
 * fill. Pass 0 first checks every key (unknown, duplicate, missing required
 * ones) and then parses the items without ITEM_LATE; pass 1 parses only the
 * ITEM_LATE ones. what names the mapping in messages. */
int schema_map(struct cfg_ctx *c, yaml_node_t *n, const struct schema_item *items,
                      void *obj, int pass, const char *what)
{
	if (n->type != YAML_MAPPING_NODE)
		return cfg_fail(c, n, "%s: expected a mapping, got %s", what, cfg_node_kind(n));

	yaml_node_pair_t *start = n->data.mapping.pairs.start, *top = n->data.mapping.pairs.top;
	if (pass == 0) {
		uint64_t seen = 0;
		for (yaml_node_pair_t *p = start; p < top; p++) {
			yaml_node_t *k = cfg_node_get(c, p->key);
			if (!k || !cfg_node_get(c, p->value))
				return cfg_fail(c, n, "%s: malformed mapping", what);
			if (cfg_visit(c, k) == -1)
				return -1;
			if (k->type != YAML_SCALAR_NODE)
				return cfg_fail(c, k, "%s: a key must be a string, not %s", what, cfg_node_kind(k));
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
					return cfg_fail(c, k, "%s: unknown key '%.*s'; did you mean '%s'? "
					                "(expected one of: %s)", what, CFG_QUOTE, key, best, list);
				return cfg_fail(c, k, "%s: unknown key '%.*s' (expected one of: %s)", what,
				                CFG_QUOTE, key, list);
			}
			if (seen & (UINT64_C(1) << i))
				return cfg_fail(c, k, "%s: duplicate key '%s'", what, items[i].key);
			seen |= UINT64_C(1) << i;
		}
		for (size_t i = 0; items[i].key; i++) {
			if ((items[i].flags & ITEM_REQUIRED) && !(seen & (UINT64_C(1) << i)))
				return cfg_fail(c, n, "%s: missing required key '%s'", what, items[i].key);
		}
	}
	for (yaml_node_pair_t *p = start; p < top; p++) {
		yaml_node_t *k = cfg_node_get(c, p->key);
		yaml_node_t *v = cfg_node_get(c, p->value);
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
int each_item(struct cfg_ctx *c, yaml_node_t *n, const char *key, bool single, void *obj,
                     int (*fn)(struct cfg_ctx *c, yaml_node_t *item, size_t idx, void *obj))
{
	if (n->type != YAML_SEQUENCE_NODE) {
		if (single)
			return fn(c, n, 0, obj);
		return cfg_fail(c, n, "%s: expected a list, got %s", key, cfg_node_kind(n));
	}
	size_t idx = 0;
	for (yaml_node_item_t *p = n->data.sequence.items.start; p < n->data.sequence.items.top; p++) {
		yaml_node_t *item = cfg_node_get(c, *p);
		if (!item)
			return cfg_fail(c, n, "%s: malformed list", key);
		if (cfg_visit(c, item) == -1 || fn(c, item, idx++, obj) == -1)
			return -1;
	}
	return 0;
}

/* Number of elements each_item() will visit. */
size_t item_count(const yaml_node_t *n)
{
	return n->type == YAML_SEQUENCE_NODE ? cfg_seq_len(n) : 1;
}

/* "10.0.0.0/8", "fd00::/16", or an address alone (a host). Host bits must
 * be zero: "10.0.0.1/8" is most likely a typo. */
int cfg_parse_subnet(const char *s, struct cfg_locality *loc, const char **why)
{
	char buf[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);

	*why = "expected ADDR/PREFIX";
	if (alen == 0 || alen >= sizeof(buf))
		return -1;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (cfg_parse_addr(buf, &loc->family, loc->addr) == -1)
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


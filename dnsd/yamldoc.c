/* yamldoc.c -- the one YAML document of a buffer, built from libyaml's
 * events in a single pass (see yamldoc.h for why not yaml_parser_load).
 *
 * The result is the yaml_document_t that yaml_parser_load would build,
 * node for node: a collection takes its index at its start event (the root
 * is 1, "&a [*a]" is a cycle), its item or pair list at its end event. Only
 * tags (NULL), the version and tag directives are not kept. Errors come in
 * the order of the earlier two passes (an event pass bounding the depth,
 * then yaml_parser_load for the first and a second document): a syntax or
 * depth error anywhere in the stream first, then an undefined alias of the
 * first document, then one of the second, then the second document itself.
 * One difference: a repeated anchor name overrides the earlier one from
 * there on (as YAML 1.2 says), where libyaml 0.2.5 failed with "found
 * duplicate anchor". */
#include "yamldoc.h"

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "util/arena.h"

/* One anchor of the current document; its name is in struct loader names. */
struct anchor {
	uint64_t hash;
	size_t off, len;
	int index;                    /* of the node; 0 while only checking */
	bool used;
};

/* An open collection: its node and where its items begin on the scratch
 * stack (children push above them and pop back at their end). */
struct open_coll {
	int index;
	size_t base;
};

enum mode {
	MODE_BUILD,                   /* the first document: nodes are built */
	MODE_CHECK,                   /* the second: only its aliases are resolved */
	MODE_SKIP,                    /* after an error, or a third document on */
};

struct loader {
	const char *yaml;
	size_t len;
	unsigned max_depth, depth;
	struct yamldoc *d;
	struct yamldoc_error *err;
	enum mode mode;
	int docs;                     /* document start events so far */
	bool failed;                  /* err holds an error remembered until the end */
	int *stack;                   /* items (pairs as key, value) of open collections */
	size_t ntop, ncap;
	struct open_coll *open;
	size_t nopen, opencap;
	struct anchor *anchors;       /* open addressing, a power of two slots */
	size_t aslots, acount;
	char *names;
	size_t nameslen, namescap;
	char *prefaulted;             /* the node array's pages are in up to here */
};

__attribute__((format(printf, 4, 5)))
static void set_error(struct yamldoc_error *err, int line, int col, const char *fmt, ...)
{
	va_list ap;

	err->line = line;
	err->col = col;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

/* At a mark (libyaml's are 0-based). */
static void mark_error(struct yamldoc_error *err, const yaml_mark_t *m, const char *msg)
{
	set_error(err, (int)m->line + 1, (int)m->column + 1, "%s", msg);
}

static int oom(struct loader *ld)
{
	set_error(ld->err, 1, 1, "out of memory");
	return -1;
}

/* 1-based line and column of byte offset off in buf (for reader errors,
 * which libyaml reports as an offset only). */
static void offset_pos(const char *buf, size_t len, size_t off, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off && i < len; i++) {
		if (buf[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

/* Whether the line holding offset at has an unquoted "[...]:DIGIT": in a
 * flow list, [::1]:53 opens a nested list and libyaml's error ("did not find
 * expected node content") does not say why. */
static bool ipv6_port_on_line(const char *buf, size_t len, size_t at)
{
	if (at > len)
		at = len;
	size_t start = at, end = at;
	while (start > 0 && buf[start - 1] != '\n')
		start--;
	while (end < len && buf[end] != '\n')
		end++;
	for (size_t i = start; i + 2 < end; i++) {
		if (buf[i] != ']' || buf[i + 1] != ':' || buf[i + 2] < '0' || buf[i + 2] > '9')
			continue;
		size_t j = i;
		while (j > start && buf[j] != '[')
			j--;
		if (buf[j] == '[' && (j == start || (buf[j - 1] != '"' && buf[j - 1] != '\'')))
			return true;
	}
	return false;
}

/* libyaml's own message for a failed yaml_parser_parse, where it points. */
static void parser_error(struct loader *ld, const yaml_parser_t *p)
{
	int line, col;

	if (p->error == YAML_MEMORY_ERROR) {
		oom(ld);
		return;
	}
	if (p->error == YAML_READER_ERROR) {
		offset_pos(ld->yaml, ld->len, p->problem_offset, &line, &col);
		set_error(ld->err, line, col, "%s", p->problem ? p->problem : "cannot read");
		return;
	}
	line = (int)p->problem_mark.line + 1;
	col = (int)p->problem_mark.column + 1;
	const char *hint = ipv6_port_on_line(ld->yaml, ld->len, p->problem_mark.index)
	                   ? "; quote IPv6 addresses with ports: \"[::1]:53\"" : "";
	if (p->context)
		set_error(ld->err, line, col, "%s (%s at line %d)%s",
		          p->problem ? p->problem : "syntax error", p->context,
		          (int)p->context_mark.line + 1, hint);
	else
		set_error(ld->err, line, col, "%s%s", p->problem ? p->problem : "syntax error", hint);
}

/* buf (of *cap elements of size each), grown by doubling to hold need:
 * buf itself if it does already, NULL on ENOMEM (buf stays valid). */
static void *grow(void *buf, size_t *cap, size_t need, size_t size, size_t first)
{
	if (need <= *cap)
		return buf;
	size_t n = *cap ? *cap : first;
	while (n < need) {
		if (n > SIZE_MAX / 2 / size)
			return NULL;
		n *= 2;
	}
	void *p = realloc(buf, n * size);
	if (p)
		*cap = n;
	return p;
}

/* ---- anchors -------------------------------------------------------------- */

/* FNV-1a: anchor names are short and few compared to the nodes. */
static uint64_t name_hash(const char *s, size_t len)
{
	uint64_t h = 14695981039346656037u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211u;
	return h;
}

/* The slot of name: its anchor, or the empty slot where it would go. A
 * table lookup, not a scan, so that a document of many anchors (one per
 * service, say) stays linear. */
static struct anchor *anchor_slot(struct loader *ld, const char *name, size_t len, uint64_t h)
{
	size_t mask = ld->aslots - 1;

	for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
		struct anchor *a = &ld->anchors[i];
		if (!a->used || (a->hash == h && a->len == len && memcmp(ld->names + a->off, name, len) == 0))
			return a;
	}
}

/* Doubles the table (kept at most half full, so probes end). 0 or -1. */
static int anchors_grow(struct loader *ld)
{
	size_t n = ld->aslots ? ld->aslots * 2 : 64;
	struct anchor *old = ld->anchors, *t = calloc(n, sizeof(*t));
	size_t oldn = ld->aslots;

	if (!t)
		return -1;
	ld->anchors = t;
	ld->aslots = n;
	for (size_t i = 0; i < oldn; i++) {
		if (old[i].used)
			*anchor_slot(ld, ld->names + old[i].off, old[i].len, old[i].hash) = old[i];
	}
	free(old);
	return 0;
}

/* Names anchor node index (0 while only checking). A later anchor of the
 * same name overrides the earlier one from here on. 0 or -1 (memory). */
static int anchor_set(struct loader *ld, const yaml_char_t *anchor, int index)
{
	if (!anchor)
		return 0;
	const char *name = (const char *)anchor;
	size_t len = strlen(name);
	uint64_t h = name_hash(name, len);

	if ((ld->acount + 1) * 2 > ld->aslots && anchors_grow(ld) == -1)
		return -1;
	struct anchor *a = anchor_slot(ld, name, len, h);
	if (a->used) {
		a->index = index;
		return 0;
	}
	char *names = grow(ld->names, &ld->namescap, ld->nameslen + len + 1, 1, 256);
	if (!names)
		return -1;
	ld->names = names;
	memcpy(ld->names + ld->nameslen, name, len);
	*a = (struct anchor){ .hash = h, .off = ld->nameslen, .len = len, .index = index, .used = true };
	ld->nameslen += len;
	ld->acount++;
	return 0;
}

static const struct anchor *anchor_get(struct loader *ld, const yaml_char_t *anchor)
{
	if (!ld->aslots)
		return NULL;
	const char *name = (const char *)anchor;
	size_t len = strlen(name);
	struct anchor *a = anchor_slot(ld, name, len, name_hash(name, len));
	return a->used ? a : NULL;
}

/* Anchors are per document (as in libyaml). */
static void anchors_clear(struct loader *ld)
{
	if (ld->anchors)
		memset(ld->anchors, 0, ld->aslots * sizeof(*ld->anchors));
	ld->acount = 0;
	ld->nameslen = 0;
}

/* ---- nodes ------------------------------------------------------------------ */

/* The node array is written once, front to back, and a big one takes a
 * page fault per 4 KiB (a third of the load's time for 1.6 million nodes):
 * its pages are faulted in 4 MiB ahead in one call instead, as arena.c
 * populates its big blocks. Only an optimisation: errors are ignored. */
static void nodes_prefault(struct loader *ld, char *from, char *end)
{
#ifdef MADV_POPULATE_WRITE
	const uintptr_t page = 4096;
	uintptr_t lo = ((uintptr_t)from + page - 1) & ~(page - 1);
	uintptr_t hi = (uintptr_t)end & ~(page - 1);

	if (hi > lo + (4 << 20))
		hi = lo + (4 << 20);
	if (hi > lo)
		madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE);
	ld->prefaulted = (char *)(hi > lo ? hi : lo);
#else
	ld->prefaulted = end;
#endif
}

/* Appends node to the document; its 1-based index, or -1 (memory). Nodes
 * are referred to by index while building: the array moves as it grows. */
static int node_add(struct loader *ld, const yaml_node_t *node)
{
	yaml_document_t *doc = &ld->d->doc;
	size_t n = (size_t)(doc->nodes.top - doc->nodes.start);
	size_t cap = (size_t)(doc->nodes.end - doc->nodes.start);

	if (n >= INT_MAX)
		return -1;
	if (n == cap) {
		yaml_node_t *nodes = grow(doc->nodes.start, &cap, n + 1, sizeof(*node), 256);
		if (!nodes)
			return -1;
		doc->nodes.start = nodes;
		doc->nodes.top = nodes + n;
		doc->nodes.end = nodes + cap;
		ld->prefaulted = (char *)doc->nodes.top;
	}
	if ((char *)(doc->nodes.top + 1) > ld->prefaulted && cap * sizeof(*node) >= (1 << 20))
		nodes_prefault(ld, (char *)doc->nodes.top, (char *)doc->nodes.end);
	*doc->nodes.top++ = *node;
	return (int)n + 1;
}

/* Adds node index to the open collection, as an item or half a pair (the
 * root belongs to none). 0 or -1 (memory). */
static int item_add(struct loader *ld, int index)
{
	if (ld->nopen == 0)
		return 0;
	int *stack = grow(ld->stack, &ld->ncap, ld->ntop + 1, sizeof(*stack), 1024);
	if (!stack)
		return -1;
	ld->stack = stack;
	ld->stack[ld->ntop++] = index;
	return 0;
}

/* In the second document, its first node is an error, but one remembered
 * only: an undefined alias further on in it comes first. */
static void second_document(struct loader *ld, const yaml_mark_t *m)
{
	if (!ld->failed) {
		mark_error(ld->err, m, "only one YAML document is allowed");
		ld->failed = true;
	}
}

static int on_alias(struct loader *ld, const yaml_event_t *ev)
{
	if (ld->mode == MODE_SKIP)
		return 0;
	const struct anchor *a = anchor_get(ld, ev->data.alias.anchor);
	if (!a) {
		/* Replaces the second document's error, if that is the one. */
		mark_error(ld->err, &ev->start_mark, "found undefined alias");
		ld->failed = true;
		ld->mode = MODE_SKIP;
		return 0;
	}
	if (ld->mode == MODE_CHECK) {
		second_document(ld, &ev->start_mark);
		return 0;
	}
	return item_add(ld, a->index) == -1 ? oom(ld) : 0;
}

static int on_scalar(struct loader *ld, const yaml_event_t *ev)
{
	if (ld->mode == MODE_SKIP)
		return 0;
	if (ld->mode == MODE_CHECK) {
		second_document(ld, &ev->start_mark);
		return anchor_set(ld, ev->data.scalar.anchor, 0) == -1 ? oom(ld) : 0;
	}
	size_t len = ev->data.scalar.length;
	/* Zeroed, so NUL-terminated (values may hold "\0" escapes: copy len). */
	yaml_char_t *value = arena_alloc_aligned(ld->d->mem, len + 1, 1);
	if (!value)
		return oom(ld);
	memcpy(value, ev->data.scalar.value, len);
	yaml_node_t node = {
		.type = YAML_SCALAR_NODE,
		.data.scalar = { .value = value, .length = len, .style = ev->data.scalar.style },
		.start_mark = ev->start_mark,
		.end_mark = ev->end_mark,
	};
	int index = node_add(ld, &node);
	if (index == -1 || anchor_set(ld, ev->data.scalar.anchor, index) == -1 ||
	    item_add(ld, index) == -1)
		return oom(ld);
	return 0;
}

/* A sequence or mapping opens: the node exists (and may be aliased) from
 * here, its items come at its end. */
static int on_start(struct loader *ld, const yaml_event_t *ev)
{
	bool seq = ev->type == YAML_SEQUENCE_START_EVENT;
	const yaml_char_t *anchor = seq ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor;

	if (ld->mode == MODE_SKIP)
		return 0;
	if (ld->mode == MODE_CHECK) {
		second_document(ld, &ev->start_mark);
		return anchor_set(ld, anchor, 0) == -1 ? oom(ld) : 0;
	}
	yaml_node_t node = { .start_mark = ev->start_mark, .end_mark = ev->end_mark };
	if (seq) {
		node.type = YAML_SEQUENCE_NODE;
		node.data.sequence.style = ev->data.sequence_start.style;
	} else {
		node.type = YAML_MAPPING_NODE;
		node.data.mapping.style = ev->data.mapping_start.style;
	}
	int index = node_add(ld, &node);
	if (index == -1 || anchor_set(ld, anchor, index) == -1 || item_add(ld, index) == -1)
		return oom(ld);
	struct open_coll *open = grow(ld->open, &ld->opencap, ld->nopen + 1, sizeof(*open), 16);
	if (!open)
		return oom(ld);
	ld->open = open;
	ld->open[ld->nopen++] = (struct open_coll){ .index = index, .base = ld->ntop };
	return 0;
}

/* A collection closes: its items move from the scratch stack to the arena
 * (at least one element, so that start is never NULL). */
static int on_end(struct loader *ld, const yaml_event_t *ev)
{
	if (ld->mode != MODE_BUILD || ld->nopen == 0)
		return 0;
	struct open_coll oc = ld->open[--ld->nopen];
	yaml_node_t *node = &ld->d->doc.nodes.start[oc.index - 1];
	size_t n = ld->ntop - oc.base;
	/* The stack is still NULL if nothing was ever pushed. */
	const int *items = n ? ld->stack + oc.base : NULL;

	node->end_mark = ev->end_mark;
	if (node->type == YAML_SEQUENCE_NODE) {
		yaml_node_item_t *p = arena_alloc_aligned(ld->d->mem, (n ? n : 1) * sizeof(*p),
		                                          _Alignof(yaml_node_item_t));
		if (!p)
			return oom(ld);
		if (n)
			memcpy(p, items, n * sizeof(*p));
		node->data.sequence.items.start = p;
		node->data.sequence.items.top = p + n;
		node->data.sequence.items.end = p + n;
	} else {
		n /= 2;
		yaml_node_pair_t *p = arena_alloc_aligned(ld->d->mem, (n ? n : 1) * sizeof(*p),
		                                          _Alignof(yaml_node_pair_t));
		if (!p)
			return oom(ld);
		for (size_t i = 0; i < n; i++)
			p[i] = (yaml_node_pair_t){ .key = items[2 * i], .value = items[2 * i + 1] };
		node->data.mapping.pairs.start = p;
		node->data.mapping.pairs.top = p + n;
		node->data.mapping.pairs.end = p + n;
	}
	ld->ntop = oc.base;
	return 0;
}

/* One event: 0 to go on, 1 at the stream's end, -1 on an error that ends
 * the load at once (depth, memory). */
static int on_event(struct loader *ld, const yaml_event_t *ev)
{
	yaml_document_t *doc = &ld->d->doc;

	switch (ev->type) {
	case YAML_STREAM_END_EVENT:
		return 1;
	case YAML_DOCUMENT_START_EVENT:
		if (++ld->docs == 1) {
			ld->mode = MODE_BUILD;
			doc->start_implicit = ev->data.document_start.implicit;
			doc->start_mark = ev->start_mark;
		} else if (ld->docs == 2 && !ld->failed) {
			ld->mode = MODE_CHECK;
			anchors_clear(ld);
		} else {
			ld->mode = MODE_SKIP;
		}
		return 0;
	case YAML_DOCUMENT_END_EVENT:
		if (ld->docs == 1 && ld->mode == MODE_BUILD) {
			doc->end_implicit = ev->data.document_end.implicit;
			doc->end_mark = ev->end_mark;
		}
		ld->mode = MODE_SKIP;
		return 0;
	case YAML_ALIAS_EVENT:
		return on_alias(ld, ev);
	case YAML_SCALAR_EVENT:
		return on_scalar(ld, ev);
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		/* libyaml's scanner spends time proportional to the nesting depth
		 * on every token: "[[[[...]]]]" is quadratic, 200000 levels take
		 * minutes. Stop before, in any document. */
		if (++ld->depth > ld->max_depth) {
			set_error(ld->err, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
			          "nested deeper than %u levels", ld->max_depth);
			return -1;
		}
		return on_start(ld, ev);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		ld->depth--;
		return on_end(ld, ev);
	default:
		return 0;
	}
}

int yamldoc_load(const char *yaml, size_t len, unsigned max_depth, struct yamldoc *d,
                 struct yamldoc_error *err)
{
	struct loader ld = { .yaml = yaml, .len = len, .max_depth = max_depth, .d = d, .err = err,
	                     .mode = MODE_SKIP };
	yaml_parser_t parser;
	yaml_event_t ev;
	int rc = -1;

	memset(d, 0, sizeof(*d));
	set_error(err, 0, 0, "%s", "");
	if (!yaml_parser_initialize(&parser))
		return oom(&ld);
	yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
	d->mem = arena_new(0);
	if (!d->mem) {
		oom(&ld);
		goto out;
	}
	for (;;) {
		/* A syntax error wins over a remembered error, as it did when a
		 * first pass over the events came before loading. */
		if (!yaml_parser_parse(&parser, &ev)) {
			parser_error(&ld, &parser);
			goto out;
		}
		int r = on_event(&ld, &ev);
		yaml_event_delete(&ev);
		if (r == -1)
			goto out;
		if (r == 1)
			break;
	}
	rc = ld.failed ? -1 : 0;
out:
	free(ld.stack);
	free(ld.open);
	free(ld.anchors);
	free(ld.names);
	yaml_parser_delete(&parser);
	if (rc == -1)
		yamldoc_free(d);
	return rc;
}

void yamldoc_free(struct yamldoc *d)
{
	free(d->doc.nodes.start);
	arena_free(d->mem);
	memset(d, 0, sizeof(*d));
}

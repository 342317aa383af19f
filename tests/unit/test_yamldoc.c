/* test_yamldoc.c -- yamldoc.c against libyaml itself: every file of zones/
 * and of the config fuzz corpus, and odd snippets, load into the same
 * document node for node as with yaml_parser_load, and fail with the same
 * message at the same place as the former two passes (a depth-bounding event
 * pass, then yaml_parser_load of a first and a second document). Then
 * anchors, cycles, the error order, scalar styles. Run from the tree's root. */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "tap.h"
#include "yamldoc.h"

enum { DEPTH = 32 };

/* ---- the former loader (config.c before yamldoc), as the reference ------ */

static void old_offset_pos(const char *buf, size_t len, size_t off, int *line, int *col)
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

static void old_fail(struct yamldoc_error *e, const yaml_parser_t *p, const char *yaml, size_t len)
{
	e->msg[0] = '\0';
	if (p->error == YAML_MEMORY_ERROR) {
		e->line = e->col = 1;
		snprintf(e->msg, sizeof(e->msg), "out of memory");
		return;
	}
	if (p->error == YAML_READER_ERROR) {
		old_offset_pos(yaml, len, p->problem_offset, &e->line, &e->col);
		snprintf(e->msg, sizeof(e->msg), "%s", p->problem ? p->problem : "cannot read");
		return;
	}
	e->line = (int)p->problem_mark.line + 1;
	e->col = (int)p->problem_mark.column + 1;
	if (p->context)
		snprintf(e->msg, sizeof(e->msg), "%s (%s at line %d)", p->problem ? p->problem : "syntax error",
		         p->context, (int)p->context_mark.line + 1);
	else
		snprintf(e->msg, sizeof(e->msg), "%s", p->problem ? p->problem : "syntax error");
}

static int old_check_depth(const char *yaml, size_t len, unsigned max, struct yamldoc_error *e)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	unsigned depth = 0;
	int rc = -1;

	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
	for (;;) {
		if (!yaml_parser_parse(&parser, &ev)) {
			old_fail(e, &parser, yaml, len);
			break;
		}
		yaml_event_type_t type = ev.type;
		if (type == YAML_SEQUENCE_START_EVENT || type == YAML_MAPPING_START_EVENT) {
			if (++depth > max) {
				e->line = (int)ev.start_mark.line + 1;
				e->col = (int)ev.start_mark.column + 1;
				snprintf(e->msg, sizeof(e->msg), "nested deeper than %u levels", max);
				yaml_event_delete(&ev);
				break;
			}
		} else if (type == YAML_SEQUENCE_END_EVENT || type == YAML_MAPPING_END_EVENT) {
			depth--;
		}
		yaml_event_delete(&ev);
		if (type == YAML_STREAM_END_EVENT) {
			rc = 0;
			break;
		}
	}
	yaml_parser_delete(&parser);
	return rc;
}

/* 0 with doc loaded, or -1 with e set; *dup: libyaml refused a duplicate
 * anchor (which yamldoc lets override instead). */
static int old_load(const char *yaml, size_t len, unsigned max, yaml_document_t *doc,
                    struct yamldoc_error *e, bool *dup)
{
	yaml_parser_t parser;
	int rc = -1;

	*dup = false;
	if (old_check_depth(yaml, len, max, e) == -1)
		return -1;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
	if (!yaml_parser_load(&parser, doc)) {
		old_fail(e, &parser, yaml, len);
		*dup = parser.context && strstr(parser.context, "duplicate anchor");
		goto out;
	}
	yaml_document_t next;
	if (!yaml_parser_load(&parser, &next)) {
		old_fail(e, &parser, yaml, len);
		*dup = parser.context && strstr(parser.context, "duplicate anchor");
		yaml_document_delete(doc);
		goto out;
	}
	yaml_node_t *extra = yaml_document_get_root_node(&next);
	if (extra) {
		e->line = (int)extra->start_mark.line + 1;
		e->col = (int)extra->start_mark.column + 1;
		snprintf(e->msg, sizeof(e->msg), "only one YAML document is allowed");
		yaml_document_delete(&next);
		yaml_document_delete(doc);
		goto out;
	}
	yaml_document_delete(&next);
	rc = 0;
out:
	yaml_parser_delete(&parser);
	return rc;
}

/* ---- comparison --------------------------------------------------------- */

static bool same_mark(yaml_mark_t a, yaml_mark_t b)
{
	return a.index == b.index && a.line == b.line && a.column == b.column;
}

/* Whether got (yamldoc) is want (libyaml) node for node; why says where not. */
static bool same_doc(const yaml_document_t *want, const yaml_document_t *got, char *why, size_t n)
{
	long nw = want->nodes.top - want->nodes.start, ng = got->nodes.top - got->nodes.start;

	if (nw != ng) {
		snprintf(why, n, "%ld nodes, want %ld", ng, nw);
		return false;
	}
	if (nw && (want->start_implicit != got->start_implicit || want->end_implicit != got->end_implicit ||
	           !same_mark(want->start_mark, got->start_mark) ||
	           !same_mark(want->end_mark, got->end_mark))) {
		snprintf(why, n, "document implicit flags or marks differ");
		return false;
	}
	for (long i = 0; i < nw; i++) {
		const yaml_node_t *a = &want->nodes.start[i], *b = &got->nodes.start[i];
		snprintf(why, n, "node %ld", i + 1);
		if (a->type != b->type || b->tag || !same_mark(a->start_mark, b->start_mark) ||
		    !same_mark(a->end_mark, b->end_mark))
			return false;
		switch (a->type) {
		case YAML_SCALAR_NODE:
			if (a->data.scalar.length != b->data.scalar.length ||
			    memcmp(a->data.scalar.value, b->data.scalar.value, a->data.scalar.length) != 0 ||
			    b->data.scalar.value[b->data.scalar.length] != '\0' ||
			    a->data.scalar.style != b->data.scalar.style)
				return false;
			break;
		case YAML_SEQUENCE_NODE: {
			long k = a->data.sequence.items.top - a->data.sequence.items.start;
			if (a->data.sequence.style != b->data.sequence.style || !b->data.sequence.items.start ||
			    b->data.sequence.items.top - b->data.sequence.items.start != k ||
			    b->data.sequence.items.end != b->data.sequence.items.top ||
			    (k && memcmp(a->data.sequence.items.start, b->data.sequence.items.start,
			                 (size_t)k * sizeof(yaml_node_item_t)) != 0))
				return false;
			break;
		}
		case YAML_MAPPING_NODE: {
			long k = a->data.mapping.pairs.top - a->data.mapping.pairs.start;
			if (a->data.mapping.style != b->data.mapping.style || !b->data.mapping.pairs.start ||
			    b->data.mapping.pairs.top - b->data.mapping.pairs.start != k ||
			    b->data.mapping.pairs.end != b->data.mapping.pairs.top)
				return false;
			for (long j = 0; j < k; j++) {
				if (a->data.mapping.pairs.start[j].key != b->data.mapping.pairs.start[j].key ||
				    a->data.mapping.pairs.start[j].value != b->data.mapping.pairs.start[j].value)
					return false;
			}
			break;
		}
		default:
			return false;
		}
	}
	return true;
}

enum { SAME, SKIPPED, DIFFERENT };

/* Loads buf both ways; SKIPPED when libyaml refused a duplicate anchor. */
static int compare(const char *buf, size_t len, char *why, size_t n)
{
	yaml_document_t want;
	struct yamldoc got;
	struct yamldoc_error ew, eg;
	bool dup;
	int rw = old_load(buf, len, DEPTH, &want, &ew, &dup);
	int rg = yamldoc_load(buf, len, DEPTH, &got, &eg);
	int res = DIFFERENT;

	if (rw == -1 && dup) {
		res = SKIPPED;
	} else if (rw != rg) {
		snprintf(why, n, "yamldoc %s, libyaml %s", rg ? eg.msg : "loads", rw ? ew.msg : "loads");
	} else if (rw == -1) {
		if (ew.line == eg.line && ew.col == eg.col && strcmp(ew.msg, eg.msg) == 0)
			res = SAME;
		else
			snprintf(why, n, "%d:%d %s, want %d:%d %s", eg.line, eg.col, eg.msg, ew.line, ew.col,
			         ew.msg);
	} else {
		res = same_doc(&want, &got.doc, why, n) ? SAME : DIFFERENT;
	}
	if (rw == 0)
		yaml_document_delete(&want);
	if (rg == 0)
		yamldoc_free(&got);
	return res;
}

static void compare_str(const char *yaml, const char *what)
{
	char why[512] = "";
	int r = compare(yaml, strlen(yaml), why, sizeof(why));

	ok(r == SAME, "as libyaml: %s", what);
	if (r != SAME)
		diag("%s", r == SKIPPED ? "skipped (duplicate anchor)" : why);
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
		buf[n] = '\0';
		*len = (size_t)n;
	} else {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

/* Every file of dir; need: at least that many must load (not just fail alike). */
static void compare_dir(const char *dir, size_t need_loaded)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t files = 0, same = 0, skipped = 0, loaded = 0;

	if (!ok(d != NULL, "%s readable", dir))
		return;
	while ((de = readdir(d))) {
		char path[1024], why[512] = "";
		size_t len;
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		char *buf = read_file(path, &len);
		if (!buf)
			continue;
		files++;
		int r = compare(buf, len, why, sizeof(why));
		if (r == SAME) {
			same++;
			struct yamldoc yd;
			struct yamldoc_error e;
			if (yamldoc_load(buf, len, DEPTH, &yd, &e) == 0) {
				loaded++;
				yamldoc_free(&yd);
			}
		} else if (r == SKIPPED) {
			skipped++;
		} else {
			diag("%s: %s", path, why);
		}
		free(buf);
	}
	closedir(d);
	ok(files > 0 && same + skipped == files && loaded >= need_loaded,
	   "%s: %zu files as libyaml (%zu loaded, %zu skipped: duplicate anchors)", dir, same, loaded,
	   skipped);
}

static void test_same_as_libyaml(void)
{
	static const char *const odd[] = {
		"zones: [{name: mesh, ns: [a, b]}, {name: x}]\n",
		"a: {b: [1, 2, {c: d}], e: []}\nf: {}\ng: []\n",
		"a: |\n  line 1\n  line 2\nb: >-\n  folded\n  text\n\nc: |+\n  keep\n\n",
		"a: 'single ''quoted'''\nb: \"double \\t \\u00e9 \\0 x\"\nc: plain  text\n  continued\n",
		"base: &b {x: 1, y: [1, 2]}\nother: &o [*b, *b]\nthird: *o\nk: &k key\n*k : v\n",
		"a: &x 1\nb: &y [*x, &z {q: *x}]\nc: *z\nd: *y\n",
		"&r [*r, &s {a: *s}]\n",
		"? [a, b]\n: 1\n? {c: d}\n: 2\n? |\n  long key\n: 3\n",
		"--- !!map\n!!str a: !custom b\nc: !<tag:x> d\n...\n",
		"%YAML 1.1\n%TAG !e! tag:example.com,2000:\n---\na: !e!foo b\n",
		"---\n",
		"--- x\n",
		"- \n- ~\n- null\n-\n  - nested\n  -\n",
		"a:\nb:\n  c:\n",
		"[a, b]: c\n",
		"{a, b: , : c}\n",
		"- - - x\n    - y\n  - z\n- w\n",
		"",
		"# only a comment\n",
		"a: 1\n...\n",
		"a: 1\n---\nb: 1\n",
		"a: 1\n---\n",
		"a: 1\n--- &x [*x]\n",
		"a: 1\n---\nb: *nope\n",
		"a: &x 1\n---\nb: *x\n",
		"a: 1\n---\nb: [1\n",
		"a: *nope\n---\nb: [1\n",
		"a: *nope\n---\nb: *also\n",
		"a: 1\n---\nb: 2\n---\nc: *nope\n",
		"a: 1\n---\nb: 2\n---\nc: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
		"a: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
		"a: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
		"a: *nope\nb: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
		"a:\n\tb: 1\n",
		"zones: [{name: mesh}\nworkers: 1\n",
		"zones: \"x\n",
		"a: \xff\n",
		"a: 1\nb: \xc3\n",
		"a: b: c\n",
		"- a\nb: c\n",
	};
	char name[64];

	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		snprintf(name, sizeof(name), "snippet %zu", i);
		compare_str(odd[i], name);
	}
	compare_dir("zones", 2);
	compare_dir("fuzz/corpus/config", 1);

	/* A big one: growth of the node array and the scratch stack. */
	size_t cap = 4 << 20, n = 0;
	char *big = malloc(cap);
	if (!big)
		return;
	n += (size_t)snprintf(big, cap, "zones:\n  - name: mesh\n    services:\n");
	for (int i = 0; i < 20000; i++)
		n += (size_t)snprintf(big + n, cap - n, "    - {name: s%d, ports: %s, backends: [%s]}\n", i,
		                      i ? "*p" : "&p {http: 80}", "1.1.1.1,1.1.1.2,1.1.1.3,1.1.1.4");
	compare_str(big, "20000 services, one anchor");
	/* Many anchors (libyaml scans them linearly: keep it moderate here). */
	n = (size_t)snprintf(big, cap, "l:\n");
	for (int i = 0; i < 3000; i++)
		n += (size_t)snprintf(big + n, cap - n, "  - &a%d {v: %d}\n  - *a%d\n", i, i, i / 2);
	compare_str(big, "3000 anchors");
	free(big);
}

/* ---- semantics ------------------------------------------------------------ */

static const yaml_node_t *value_of(const yaml_document_t *doc, const yaml_node_t *map, const char *key)
{
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		const yaml_node_t *k = yaml_document_get_node((yaml_document_t *)doc, p->key);
		if (k && k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, key) == 0)
			return yaml_document_get_node((yaml_document_t *)doc, p->value);
	}
	return NULL;
}

static void fails(const char *yaml, unsigned depth, int line, int col, const char *msg, const char *what)
{
	struct yamldoc yd;
	struct yamldoc_error e;
	int rc = yamldoc_load(yaml, strlen(yaml), depth, &yd, &e);

	if (!ok(rc == -1 && e.line == line && e.col == col && strcmp(e.msg, msg) == 0, "%s", what))
		diag("got %d %d:%d '%s', want %d:%d '%s'", rc, e.line, e.col, rc ? e.msg : "", line, col, msg);
	if (rc == 0)
		yamldoc_free(&yd);
}

static void test_anchors(void)
{
	struct yamldoc yd;
	struct yamldoc_error e;
	const char *y = "a: &x [1, 2]\nb: *x\nc: &s text\nd: *s\n";

	if (ok(yamldoc_load(y, strlen(y), DEPTH, &yd, &e) == 0, "anchors load")) {
		yaml_node_t *root = yaml_document_get_root_node(&yd.doc);
		const yaml_node_t *a = value_of(&yd.doc, root, "a"), *b = value_of(&yd.doc, root, "b");
		const yaml_node_t *c = value_of(&yd.doc, root, "c"), *d = value_of(&yd.doc, root, "d");
		ok(a && a == b && a->type == YAML_SEQUENCE_NODE, "alias of a list: the same node");
		ok(c && c == d && c->type == YAML_SCALAR_NODE, "alias of a scalar: the same node");
		yamldoc_free(&yd);
	}

	y = "&a [*a, x]\n";
	if (ok(yamldoc_load(y, strlen(y), DEPTH, &yd, &e) == 0, "cycle loads")) {
		yaml_node_t *root = yaml_document_get_root_node(&yd.doc);
		ok(root == yd.doc.nodes.start && root->type == YAML_SEQUENCE_NODE &&
		   root->data.sequence.items.top - root->data.sequence.items.start == 2 &&
		   root->data.sequence.items.start[0] == 1, "&a [*a]: the list holds itself (index 1)");
		yamldoc_free(&yd);
	}

	y = "a: &x 1\nb: &x 2\nc: *x\nd: &x {e: *x}\n";
	if (ok(yamldoc_load(y, strlen(y), DEPTH, &yd, &e) == 0, "duplicate anchors load")) {
		yaml_node_t *root = yaml_document_get_root_node(&yd.doc);
		const yaml_node_t *c = value_of(&yd.doc, root, "c"), *d = value_of(&yd.doc, root, "d");
		ok(c && c == value_of(&yd.doc, root, "b"), "a later anchor overrides");
		ok(d && value_of(&yd.doc, d, "e") == d, "an anchor is defined from its collection's start");
		yamldoc_free(&yd);
	}

	/* Many anchors, each aliased once, in linear time. */
	size_t cap = 16 << 20, n = 0;
	char *big = malloc(cap);
	if (big) {
		int count = 200000;
		n += (size_t)snprintf(big, cap, "l:\n");
		for (int i = 0; i < count; i++)
			n += (size_t)snprintf(big + n, cap - n, "  - &n%d v%d\n  - *n%d\n", i, i, i);
		if (ok(yamldoc_load(big, n, DEPTH, &yd, &e) == 0, "200000 anchors load")) {
			yaml_node_t *root = yaml_document_get_root_node(&yd.doc);
			const yaml_node_t *l = value_of(&yd.doc, root, "l");
			bool good = l && l->data.sequence.items.top - l->data.sequence.items.start == 2 * count;
			for (int i = 0; good && i < count; i++)
				good = l->data.sequence.items.start[2 * i] == l->data.sequence.items.start[2 * i + 1];
			ok(good, "each alias is its anchor's node");
			yamldoc_free(&yd);
		}
		free(big);
	}
}

static void test_errors(void)
{
	fails("zones: *nope\n", DEPTH, 1, 8, "found undefined alias", "undefined alias at the alias");
	fails("[[[[]]]]\n", 3, 1, 4, "nested deeper than 3 levels", "depth limit at the opening");
	struct yamldoc yd;
	struct yamldoc_error e;
	if (ok(yamldoc_load("[[[]]]\n", 7, 3, &yd, &e) == 0, "depth at the limit loads"))
		yamldoc_free(&yd);
	fails("zones:\n  - name: mesh\n---\nb: 1\n", DEPTH, 4, 1, "only one YAML document is allowed",
	      "a second document, at its node");
	fails("a: 1\n---\n", DEPTH, 3, 1, "only one YAML document is allowed",
	      "an empty second document (an empty scalar)");
	fails("a: 1\n---\nb: *x\n", DEPTH, 3, 4, "found undefined alias",
	      "an undefined alias in the second document comes first");
	fails("a: &x 1\n---\nb: *x\n", DEPTH, 3, 4, "found undefined alias", "anchors are per document");
	fails("a: 1\n---\nb: 1\n---\n[\n", DEPTH, 6, 1,
	      "did not find expected node content (while parsing a flow node at line 6)",
	      "a later syntax error comes first");
	fails("a: *x\n---\n[[[[]]]]\n", 3, 3, 4, "nested deeper than 3 levels",
	      "a later depth error comes first");
	fails("a: \xff\n", DEPTH, 1, 4, "invalid leading UTF-8 octet", "reader error at its offset");
	fails("a:\n\tb: 1\n", DEPTH, 2, 1,
	      "found character that cannot start any token (while scanning for the next token at line 2)",
	      "scanner error with its context");
}

static void test_documents(void)
{
	struct yamldoc yd;
	struct yamldoc_error e;

	ok(yamldoc_load("", 0, DEPTH, &yd, &e) == 0 && yaml_document_get_root_node(&yd.doc) == NULL &&
	   yd.doc.nodes.start == yd.doc.nodes.top, "empty input: no root");
	yamldoc_free(&yd);
	ok(yamldoc_load("# c\n\n", 5, DEPTH, &yd, &e) == 0 && !yaml_document_get_root_node(&yd.doc),
	   "only a comment: no root");
	yamldoc_free(&yd);
	yamldoc_free(&yd);
	ok(yd.mem == NULL && yd.doc.nodes.start == NULL, "yamldoc_free twice (a zeroed struct)");

	const char *y = "- plain\n- 'single'\n- \"dq\\0x\"\n- |\n  lit\n- >\n  fold\n";
	if (ok(yamldoc_load(y, strlen(y), DEPTH, &yd, &e) == 0, "scalars load")) {
		yaml_node_t *root = yaml_document_get_root_node(&yd.doc);
		static const yaml_scalar_style_t want[] = {
			YAML_PLAIN_SCALAR_STYLE, YAML_SINGLE_QUOTED_SCALAR_STYLE, YAML_DOUBLE_QUOTED_SCALAR_STYLE,
			YAML_LITERAL_SCALAR_STYLE, YAML_FOLDED_SCALAR_STYLE,
		};
		bool good = root->data.sequence.items.top - root->data.sequence.items.start == 5;
		for (int i = 0; good && i < 5; i++) {
			yaml_node_t *s = yaml_document_get_node(&yd.doc, root->data.sequence.items.start[i]);
			good = s && s->type == YAML_SCALAR_NODE && s->data.scalar.style == want[i] && !s->tag;
		}
		ok(good, "scalar styles kept, no tags");
		yaml_node_t *dq = yaml_document_get_node(&yd.doc, root->data.sequence.items.start[2]);
		ok(dq && dq->data.scalar.length == 4 && memcmp(dq->data.scalar.value, "dq\0x", 5) == 0,
		   "a NUL inside a value: length kept, NUL-terminated");
		yaml_node_t *lit = yaml_document_get_node(&yd.doc, root->data.sequence.items.start[3]);
		is_str(lit ? (const char *)lit->data.scalar.value : NULL, "lit\n", "literal block value");
		yamldoc_free(&yd);
	}

	y = "a: []\nb: {}\n";
	if (ok(yamldoc_load(y, strlen(y), DEPTH, &yd, &e) == 0, "empty collections load")) {
		yaml_node_t *root = yaml_document_get_root_node(&yd.doc);
		const yaml_node_t *a = value_of(&yd.doc, root, "a"), *b = value_of(&yd.doc, root, "b");
		ok(a && a->data.sequence.items.start && a->data.sequence.items.start == a->data.sequence.items.top &&
		   b && b->data.mapping.pairs.start && b->data.mapping.pairs.start == b->data.mapping.pairs.top &&
		   a->data.sequence.style == YAML_FLOW_SEQUENCE_STYLE &&
		   root->data.mapping.style == YAML_BLOCK_MAPPING_STYLE,
		   "empty list and mapping: start set, no items; styles kept");
		yamldoc_free(&yd);
	}
}

int main(void)
{
	test_same_as_libyaml();
	test_anchors();
	test_errors();
	test_documents();
	return done_testing();
}

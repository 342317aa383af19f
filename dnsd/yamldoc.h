/* yamldoc.h -- the one YAML document of a buffer, as libyaml's
 * yaml_document_t, built from libyaml's event stream in a single pass.
 *
 * libyaml's own yaml_parser_load mallocs every node, scalar and tag
 * separately: for a 14 MB config (a million backends) that is 1.9 million
 * nodes, over a second and 270 MB. Here the nodes are one array and every
 * scalar, item list and pair list comes from one arena, freed at once.
 * The document is read with the usual accessors (yaml_document_get_node,
 * node->data...); only tags are not kept (NULL). Nesting is bounded while
 * parsing (libyaml's scanner is quadratic in depth). */
#ifndef MESHDNS_YAMLDOC_H
#define MESHDNS_YAMLDOC_H

#include <stddef.h>
#include <yaml.h>

struct arena;

struct yamldoc {
	yaml_document_t doc;          /* no root node: the buffer held no document */
	struct arena *mem;
};

struct yamldoc_error {
	int line, col;                /* 1-based */
	char msg[200];
};

/* Loads the only document of yaml[0..len) into d. Returns 0, or -1 with
 * err set (syntax errors, undefined aliases, a second document, nesting
 * deeper than max_depth, out of memory); d needs no freeing then. */
int yamldoc_load(const char *yaml, size_t len, unsigned max_depth, struct yamldoc *d,
                 struct yamldoc_error *err);
void yamldoc_free(struct yamldoc *d);

#endif

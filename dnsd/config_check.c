/* config_check.c -- cross-checks once a zone or the file is read: the names
 * inside a zone, nested zones, key references and the search path. */
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "config_int.h"
#include "dns/rdata.h"
#include "svcname.h"
#include "dns/tsig.h"
#include "dns/wire.h"

/* A name of zone z at or below the origin of another configured zone y
 * (y inside z) is never served: lookups pick the longest zone. Only the
 * delegation of y in z (NS at y's apex) and glue addresses below it may
 * sit there. Returns 0, or -1 after reporting the first such name. */
int cfg_check_nested_zones(struct cfg_ctx *c, const struct config *cfg)
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
				return cfg_fail_at(c, r->line, r->col,
				                   "record in zone %s is inside zone %s (line %d), which answers "
				                   "for it: move it there", cfg_zone_text(z, zt, sizeof(zt)),
				                   cfg_zone_text(y, yt, sizeof(yt)), y->line);
			}
			for (size_t i = 0; i < z->nservices; i++) {
				const struct cfg_service *sv = &z->services[i];
				if (wire_name_is_subdomain(sv->owner, sv->ownerlen, y->origin, y->originlen))
					return cfg_fail_at(c, sv->line, sv->col,
					                   "service '%s' of zone %s is inside zone %s (line %d), which "
					                   "answers for it: move it there", sv->name,
					                   cfg_zone_text(z, zt, sizeof(zt)),
					                   cfg_zone_text(y, yt, sizeof(yt)), y->line);
			}
		}
	}
	return 0;
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
	return cfg_fail_at(c, r->line, r->col, "no key named '%.*s' (see keys:)", CFG_QUOTE, r->name);
}

int cfg_check_keyrefs(struct cfg_ctx *c)
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
				return cfg_fail_at(c, cz->update.line, cz->update.col,
				                   "update: journal '%.*s' is already used by zone %s",
				                   CFG_QUOTE, cz->update.journal, cfg->zones[i].name);
	}
	return 0;
}

/* A search-path suffix inside one of our zones would turn names we answer
 * for (NXDOMAIN) into CNAMEs: such suffixes belong to other servers. */
int cfg_check_search_path(struct cfg_ctx *c, yaml_node_t *root)
{
	const struct config *cfg = c->cfg;
	for (size_t i = 0; i < cfg->nsearch; i++) {
		const struct cfg_search *e = &cfg->search[i];
		for (size_t z = 0; z < cfg->nzones; z++) {
			const struct cfg_zone *cz = &cfg->zones[z];
			if (wire_name_is_subdomain(e->name, e->len, cz->origin, cz->originlen)) {
				yaml_node_t *v = cfg_map_find(c, root, "search-path");
				char buf[DNS_NAME_MAX * 4];
				return cfg_fail(c, v ? v : root,
				                "search-path: suffix %s is inside zone %s, which dnsd answers "
				                "for itself", cfg_name_text(e->name, e->len, buf, sizeof(buf)),
				                cz->name);
			}
		}
	}
	return 0;
}

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
			              cfg_name_text(e->name, e->len, name, sizeof(name)),
			              ent_what(first, what, sizeof(what)));
			return;
		}
		if (first && (is_cname || cname)) {
			conflict_note(cf, e, "a CNAME cannot coexist with other data: '%s' already has %s",
			              cfg_name_text(e->name, e->len, name, sizeof(name)),
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
			              rdata_type_name(e->type),
			              cfg_name_text(e->name, e->len, name, sizeof(name)), g[j - 1].line);
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
	uint64_t h = cfg_name_hash(e->name, e->len);
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
	uint64_t h = cfg_name_hash(name, len);
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

int cfg_check_names(struct cfg_ctx *c, const yaml_node_t *n, struct cfg_zone *z)
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
		return cfg_fail(c, n, "too many names in one zone");
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
		cfg_fail(c, n, "out of memory");
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
			uint8_t full[DNS_NAME_MAX];
			size_t flen = svcname_srv(full, s->ports[j].name, s->ports[j].proto, s->owner,
			                          s->ownerlen);
			if (!flen) {
				cfg_fail_at(c, s->line, s->col, "service: SRV name _%s._%s.%s is longer than 255 "
				            "bytes", s->ports[j].name,
				            s->ports[j].proto == IPPROTO_UDP ? "udp" : "tcp", s->name);
				goto out;
			}
			x.ents[m] = (struct owner_ent){ .svc = s, .kind = OWN_SRV, .line = s->line,
			                                .col = s->col, .seq = seq++ };
			wire_name_lower(full, flen);
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
		cfg_fail(c, n, "out of memory");
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
			size_t flen = svcname_target(full, b->name, s->owner, s->ownerlen);
			if (!flen)
				continue;  /* reported by backend_one */
			wire_name_lower(full, flen);
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
					cfg_fail(c, n, "out of memory");
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
		cfg_fail_at(c, cf.at.line, cf.at.col, "%s", cf.msg);
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

int config_check_zone(struct config *cfg, size_t zi, char *err, size_t errlen)
{
	struct config_error ce;
	struct cfg_ctx c = { .name = cfg->path ? cfg->path : "<update>", .err = &ce, .cfg = cfg };
	yaml_node_t none;
	memset(&none, 0, sizeof(none));
	ce.msg[0] = '\0';
	if (cfg->zones[zi].names_checked)
		return 0;
	if (cfg_check_names(&c, &none, &cfg->zones[zi]) == 0) {
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

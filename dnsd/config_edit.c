/* config_edit.c -- changes to a loaded config by dynamic updates and etcd:
 * backends, records, and services' copies, freezing and memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"
#include "util/addr.h"
#include "dns/rdata.h"
#include "svcname.h"
#include "dns/wire.h"

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
	cfg_slab_free(cfg);
	return 0;
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
		cfg_backend_check_free(&s->backends[k]);
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
	cfg_check_clear(&s->check);
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
		    memcmp(o->addr, tmpl->addr, (size_t)cfg_addr_len(tmpl->family)) == 0 &&
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
	config_backend_defaults(b);
	b->family = tmpl->family;
	memcpy(b->addr, tmpl->addr, (size_t)cfg_addr_len(tmpl->family));
	b->port = tmpl->port;
	if (tmpl->weight)
		b->weight = tmpl->weight;
	b->priority = tmpl->priority;
	b->line = s->line;
	b->col = s->col;
	/* The loader's default name; a backend on the same address shares it. */
	char label[INET6_ADDRSTRLEN];
	config_addr_label(b->family, b->addr, label);
	for (size_t i = 0; i < s->nbackends; i++) {
		const struct cfg_backend *o = &s->backends[i];
		bool same_addr = o->family == b->family &&
		                 memcmp(o->addr, b->addr, (size_t)cfg_addr_len(b->family)) == 0;
		if (same_addr)
			snprintf(label, sizeof(label), "%s", o->name);
		else if (strcasecmp(o->name, label) == 0) {
			snprintf(err, errlen, "service %s: name '%s' is already used by another backend",
			         s->name, label);
			return -1;
		}
	}
	uint8_t target[DNS_NAME_MAX];
	if (!svcname_target(target, label, s->owner, s->ownerlen)) {
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
		              memcmp(b->addr, addr, (size_t)cfg_addr_len(family)) == 0 &&
		              (!with_port || b->port == port));
		if (match) {
			if (!b->name_pooled)
				free(b->name);
			free(b->locality);
			cfg_backend_check_free(b);
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


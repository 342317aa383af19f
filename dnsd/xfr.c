/* xfr.c -- zone transfers out (AXFR, IXFR) and the NOTIFY trigger. A transfer is built whole, from the snapshot the
 * request sees, into one malloc'd buffer of framed messages that the TCP
 * thread then sends as the client reads (server_stream): zones here are
 * small to medium, and building is fast compared with sending. */
#include "xfr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <urcu-qsbr.h>

#include "balance.h"
#include "util/log.h"
#include "notify.h"
#include "util/rcupub.h"
#include "svcname.h"
#include "request.h"
#include "dns/tsig.h"

/* ---- settings (RCU) --------------------------------------------------------- */

struct xfr_acl {
	bool set;
	struct cfg_prefix *allow;
	size_t nallow;
	const struct tsig_key **keys;
	size_t nkeys;
};

struct xfr_zone {
	uint8_t origin[DNS_NAME_MAX];
	size_t originlen;
	struct xfr_acl acl;
	struct notify_job *notify;    /* serial filled in when sent */
	size_t nnotify;
};

struct xfr_conf {
	struct tsig_key *keys;
	size_t nkeys;
	struct xfr_zone *zones;
	size_t nzones;
};

struct jzone;

struct xfr {
	/* RCU: replaced by the control thread (acq_rel exchange, then freed
	 * after synchronize_rcu()), read by server threads with an acquire
	 * load. */
	struct xfr_conf *conf;
	/* The IXFR history (below), under jmu. */
	pthread_mutex_t jmu;
	struct jzone *journal;
	size_t njournal;
	struct notifier *notifier;
};

static void xfr_conf_free(struct xfr_conf *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nzones; i++) {
		free(c->zones[i].acl.allow);
		free(c->zones[i].acl.keys);
		free(c->zones[i].notify);
	}
	free(c->zones);
	if (c->keys)
		memset(c->keys, 0, c->nkeys * sizeof(*c->keys));
	free(c->keys);
	free(c);
}

static const struct tsig_key *key_by_text(const struct xfr_conf *c, const char *text)
{
	uint8_t nm[DNS_NAME_MAX];
	size_t len;
	if (!text || wire_name_from_text(text, nm, &len) != 0)
		return NULL;
	return tsig_key_find(c->keys, c->nkeys, nm, len);
}

int xfr_configure(struct xfr *x, const struct config *cfg)
{
	struct xfr_conf *c = calloc(1, sizeof(*c));
	if (!c)
		return -1;
	c->keys = calloc(cfg->nkeys ? cfg->nkeys : 1, sizeof(*c->keys));
	c->zones = calloc(cfg->nzones ? cfg->nzones : 1, sizeof(*c->zones));
	if (!c->keys || !c->zones)
		goto oom;
	c->nkeys = cfg->nkeys;
	for (size_t i = 0; i < cfg->nkeys; i++) {
		c->keys[i] = cfg->keys[i];
		c->keys[i].name_text = NULL;
	}
	c->nzones = cfg->nzones;
	for (size_t i = 0; i < cfg->nzones; i++) {
		const struct cfg_zone *cz = &cfg->zones[i];
		struct xfr_zone *xz = &c->zones[i];
		const struct cfg_transfer *t = cz->transfer.set ? &cz->transfer : &cfg->transfer;
		memcpy(xz->origin, cz->origin, cz->originlen);
		xz->originlen = cz->originlen;
		xz->acl.set = t->set;
		xz->acl.allow = calloc(t->nallow + 1, sizeof(*xz->acl.allow));
		xz->acl.keys = calloc(t->nkeys + 1, sizeof(*xz->acl.keys));
		xz->notify = calloc(cz->nnotify + 1, sizeof(*xz->notify));
		if (!xz->acl.allow || !xz->acl.keys || !xz->notify)
			goto oom;
		if (t->nallow)
			memcpy(xz->acl.allow, t->allow, t->nallow * sizeof(*t->allow));
		xz->acl.nallow = t->nallow;
		for (size_t k = 0; k < t->nkeys; k++)
			if ((xz->acl.keys[xz->acl.nkeys] = key_by_text(c, t->keys[k].name)))
				xz->acl.nkeys++;
		for (size_t k = 0; k < cz->nnotify; k++) {
			struct notify_job *j = &xz->notify[xz->nnotify++];
			memcpy(&j->addr, &cz->notify[k].addr.ss, sizeof(j->addr));
			j->addrlen = cz->notify[k].addr.len;
			memcpy(j->zone, cz->origin, cz->originlen);
			j->zonelen = cz->originlen;
			const struct tsig_key *key = key_by_text(c, cz->notify[k].key.name);
			if (key) {
				j->has_key = true;
				j->key = *key;
			}
		}
	}
	RCUPUB_REPLACE(x->conf, c, xfr_conf_free);
	return 0;
oom:
	xfr_conf_free(c);
	return -1;
}

static bool acl_addr_ok(const struct xfr_acl *acl, const struct sockaddr *sa)
{
	if (!acl->nallow)
		return true;
	uint8_t addr[16];
	int fam = sa->sa_family;
	if (fam == AF_INET)
		memcpy(addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	else if (fam == AF_INET6)
		memcpy(addr, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
	else
		return false;
	for (size_t i = 0; i < acl->nallow; i++) {
		const struct cfg_prefix *p = &acl->allow[i];
		if (p->family != fam)
			continue;
		unsigned full = p->prefix / 8, rest = p->prefix % 8;
		if (memcmp(addr, p->addr, full) != 0)
			continue;
		if (rest && ((addr[full] ^ p->addr[full]) & (0xff00u >> rest)))
			continue;
		return true;
	}
	return false;
}

/* Allowed: from an allowed prefix (if the ACL names any) and signed with
 * one of its keys (if it names any). */
static bool acl_ok(const struct xfr_acl *acl, const struct sockaddr *sa, const struct tsig_key *key)
{
	if (!acl->set || (!acl->nallow && !acl->nkeys) || !acl_addr_ok(acl, sa))
		return false;
	if (!acl->nkeys)
		return true;
	for (size_t i = 0; key && i < acl->nkeys; i++)
		if (wire_name_equal(acl->keys[i]->name, acl->keys[i]->namelen, key->name, key->namelen))
			return true;
	return false;
}

/* ---- rendering a zone as plain records ----------------------------------------- */

/* One record: owner, type, TTL and rdata live in blob at off. */
struct rec {
	uint32_t off;
	uint8_t ownerlen;
	uint16_t type;
	uint16_t rdlen;
	uint32_t ttl;
};

struct rset {
	struct rec *r;
	size_t n, cap;
	uint8_t *blob;
	size_t bloblen, blobcap;
	int err;
};

static void rset_free(struct rset *s)
{
	free(s->r);
	free(s->blob);
	memset(s, 0, sizeof(*s));
}

static void rset_add(void *arg, const uint8_t *owner, size_t ownerlen, uint16_t type, uint32_t ttl,
                     const uint8_t *rd, uint16_t rdlen)
{
	struct rset *s = arg;
	if (s->err)
		return;
	if (s->n == s->cap) {
		size_t nc = s->cap ? 2 * s->cap : 256;
		struct rec *nr = realloc(s->r, nc * sizeof(*nr));
		if (!nr) {
			s->err = 1;
			return;
		}
		s->r = nr;
		s->cap = nc;
	}
	size_t need = ownerlen + rdlen;
	if (s->bloblen + need > s->blobcap) {
		size_t nc = s->blobcap ? 2 * s->blobcap : 16384;
		while (nc < s->bloblen + need)
			nc *= 2;
		uint8_t *nb = realloc(s->blob, nc);
		if (!nb) {
			s->err = 1;
			return;
		}
		s->blob = nb;
		s->blobcap = nc;
	}
	struct rec *r = &s->r[s->n++];
	r->off = (uint32_t)s->bloblen;
	r->ownerlen = (uint8_t)ownerlen;
	r->type = type;
	r->rdlen = rdlen;
	r->ttl = ttl;
	memcpy(s->blob + s->bloblen, owner, ownerlen);
	wire_name_lower(s->blob + s->bloblen, ownerlen);
	if (rdlen)
		memcpy(s->blob + s->bloblen + ownerlen, rd, rdlen);
	s->bloblen += need;
}

static int rec_cmp(const void *a, const void *b, void *arg)
{
	const struct rec *x = a, *y = b;
	const uint8_t *blob = arg;
	if (x->ownerlen != y->ownerlen)
		return x->ownerlen < y->ownerlen ? -1 : 1;
	int c = memcmp(blob + x->off, blob + y->off, x->ownerlen);
	if (c)
		return c;
	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	if (x->rdlen != y->rdlen)
		return x->rdlen < y->rdlen ? -1 : 1;
	c = memcmp(blob + x->off + x->ownerlen, blob + y->off + y->ownerlen, x->rdlen);
	if (c)
		return c;
	return x->ttl < y->ttl ? -1 : x->ttl > y->ttl;
}

/* Sorts, and drops duplicates (two backends on one address). */
static void rset_sort(struct rset *s)
{
	if (!s->n)
		return;
	qsort_r(s->r, s->n, sizeof(*s->r), rec_cmp, s->blob);
	size_t k = 1;
	for (size_t i = 1; i < s->n; i++)
		if (rec_cmp(&s->r[k - 1], &s->r[i], s->blob) != 0)
			s->r[k++] = s->r[i];
	s->n = k;
}

/* The backends a transfer lists for family (AF_UNSPEC: all): the healthy
 * ones, or with fail-open all of them when the whole service is down; for
 * failover only the best priority group. As balance_select chooses, minus
 * the per-query order. */
static unsigned svc_pick(const struct zone_service *svc, int family, uint16_t *idx)
{
	unsigned n = 0;
	for (unsigned i = 0; i < svc->nbackends; i++) {
		const struct zone_backend *b = &svc->backends[i];
		if ((family == AF_UNSPEC || b->family == family) && zone_backend_up(b))
			idx[n++] = (uint16_t)i;
	}
	bool any_up = n > 0;
	for (unsigned i = 0; !any_up && i < svc->nbackends; i++)
		any_up = zone_backend_up(&svc->backends[i]);
	if (n == 0 && svc->fail_open && !any_up)
		for (unsigned i = 0; i < svc->nbackends; i++)
			if (family == AF_UNSPEC || svc->backends[i].family == family)
				idx[n++] = (uint16_t)i;
	if (svc->policy == CFG_POLICY_FAILOVER && n)
		n = balance_failover_group(svc, idx, n);
	return n;
}

static void render_srv(const struct zone_node *node, const struct zone_service *svc, int port_idx,
                       uint16_t *idx, xfr_rr_fn fn, void *arg)
{
	unsigned n = svc_pick(svc, AF_UNSPEC, idx);
	unsigned first = port_idx < 0 ? 0 : (unsigned)port_idx;
	unsigned last = port_idx < 0 ? svc->nports : (unsigned)port_idx + 1;
	for (unsigned p = first; p < last; p++) {
		for (unsigned i = 0; i < n; i++) {
			const struct zone_backend *b = &svc->backends[idx[i]];
			uint8_t rd[ZONE_SRV_RDATA_MAX];
			/* The configured weight: the slow-start ramp changes by the
			 * second and would make every version differ. */
			size_t rdlen = zone_srv_rdata(svc, b, p, b->weight, rd);
			fn(arg, node->name, node->namelen, DNS_TYPE_SRV, svc->ttl, rd, (uint16_t)rdlen);
		}
	}
}

/* The static RRsets of nodes[0..n) (SOA aside), and what each service
 * or SRV node makes; a service's block is rendered where its node is. */
static void render_nodes(const struct zone_node *nodes, uint32_t n, uint16_t *idx, xfr_rr_fn fn,
                         void *arg)
{
	for (uint32_t h = 0; h < n; h++) {
		const struct zone_node *node = &nodes[h];
		for (unsigned i = 0; i < node->nrrsets; i++) {
			const struct zone_rrset *rs = &node->rrsets[i];
			if (rs->type == DNS_TYPE_SOA)
				continue;
			for (unsigned k = 0; k < rs->count; k++)
				fn(arg, node->name, node->namelen, rs->type, rs->ttl, rs->rd[k]->data,
				   rs->rd[k]->len);
		}
		if (node->kind == ZONE_NODE_SERVICE) {
			const struct zone_service *svc = zone_node_service(node);
			for (int f = 0; f < 2; f++) {
				int fam = f ? AF_INET6 : AF_INET;
				unsigned cnt = svc_pick(svc, fam, idx);
				for (unsigned i = 0; i < cnt; i++)
					fn(arg, node->name, node->namelen, f ? DNS_TYPE_AAAA : DNS_TYPE_A,
					   svc->ttl, svc->backends[idx[i]].addr, f ? 16 : 4);
			}
			if (svc->nports)
				render_srv(node, svc, -1, idx, fn, arg);
			/* Its block's names (the owner is not one), then each
			 * target name's address, whatever the backend's state. */
			render_nodes(svc->nodes, svc->nnodes, idx, fn, arg);
			for (unsigned i = 0; i < svc->nbackends; i++) {
				const struct zone_backend *b = &svc->backends[i];
				if (b->target_first)
					fn(arg, zone_backend_target(b), b->targetlen,
					   b->family == AF_INET ? DNS_TYPE_A : DNS_TYPE_AAAA, svc->ttl, b->addr,
					   b->family == AF_INET ? 4 : 16);
			}
		} else if (node->kind == ZONE_NODE_SRV) {
			render_srv(node, zone_node_service(node), (int)node->port_idx, idx, fn, arg);
		}
	}
}

int xfr_render_zone(const struct zone *z, xfr_rr_fn fn, void *arg)
{
	uint16_t *idx = malloc(ZONE_MAX_BACKENDS * sizeof(*idx));
	if (!idx)
		return -1;
	uint8_t soa[ZONE_SOA_RDATA_MAX];
	size_t soalen = zone_soa_rdata(z, soa);
	if (soalen)
		fn(arg, z->origin, z->originlen, DNS_TYPE_SOA, z->soa->ttl, soa, (uint16_t)soalen);
	render_nodes(z->nodes, z->nnodes, idx, fn, arg);
	free(idx);
	return 0;
}

/* ---- history: differences between serials ---------------------------------------- */

/* One step of a zone's history (RFC 1995 4): from serial `from` to `to`,
 * the records deleted and added, each sorted. A health change of one
 * backend costs a delta of one service's records, not a copy of the zone. */
struct delta {
	uint32_t from, to;
	uint8_t soa_from[ZONE_SOA_RDATA_MAX], soa_to[ZONE_SOA_RDATA_MAX];
	uint16_t soa_from_len, soa_to_len;
	uint32_t soa_ttl;
	struct rset del, add;
};

static void delta_free(struct delta *d)
{
	if (!d)
		return;
	rset_free(&d->del);
	rset_free(&d->add);
	free(d);
}

static int rec_cmp2(const struct rset *x, size_t i, const struct rset *y, size_t k)
{
	const struct rec *p = &x->r[i], *q = &y->r[k];
	if (p->ownerlen != q->ownerlen)
		return p->ownerlen < q->ownerlen ? -1 : 1;
	int c = memcmp(x->blob + p->off, y->blob + q->off, p->ownerlen);
	if (!c && p->type != q->type)
		c = p->type < q->type ? -1 : 1;
	if (!c && p->rdlen != q->rdlen)
		c = p->rdlen < q->rdlen ? -1 : 1;
	if (!c)
		c = memcmp(x->blob + p->off + p->ownerlen, y->blob + q->off + q->ownerlen, p->rdlen);
	if (!c && p->ttl != q->ttl)
		c = p->ttl < q->ttl ? -1 : 1;
	return c;
}

static void rset_copy_rec(struct rset *dst, const struct rset *src, size_t i)
{
	const struct rec *r = &src->r[i];
	rset_add(dst, src->blob + r->off, r->ownerlen, r->type, r->ttl,
	         src->blob + r->off + r->ownerlen, r->rdlen);
}

/* del = a - b, add = b - a (a and b sorted). Returns -1 when out of memory. */
static int rset_diff(const struct rset *a, const struct rset *b, struct rset *del, struct rset *add)
{
	size_t i = 0, k = 0;
	while (i < a->n || k < b->n) {
		int c = i == a->n ? 1 : k == b->n ? -1 : rec_cmp2(a, i, b, k);
		if (c < 0)
			rset_copy_rec(del, a, i++);
		else if (c > 0)
			rset_copy_rec(add, b, k++);
		else
			i++, k++;
	}
	return del->err || add->err ? -1 : 0;
}

/* Per zone, the last XFR_JOURNAL_VERSIONS deltas, oldest first, and at
 * most XFR_JOURNAL_RECORDS records in all. Deltas are kept only while the
 * zone allows transfers (without a peer allowed to ask, no IXFR can use
 * them). Written by the control thread with jmu held; read by the TCP
 * thread with jmu held, which also makes a transfer see one serial and
 * the backend states of that serial (the control thread changes both
 * with jmu held). */
struct jzone {
	uint8_t origin[DNS_NAME_MAX];
	size_t originlen;
	struct delta *d[XFR_JOURNAL_VERSIONS];
	unsigned n;
	size_t nrecs;
};

static struct jzone *jzone_find(struct xfr *x, const uint8_t *origin, size_t len)
{
	for (size_t i = 0; i < x->njournal; i++)
		if (wire_name_equal(x->journal[i].origin, x->journal[i].originlen, origin, len))
			return &x->journal[i];
	return NULL;
}

static struct jzone *jzone_get(struct xfr *x, const uint8_t *origin, size_t len)
{
	struct jzone *j = jzone_find(x, origin, len);
	if (j)
		return j;
	struct jzone *nj = realloc(x->journal, (x->njournal + 1) * sizeof(*nj));
	if (!nj)
		return NULL;
	x->journal = nj;
	j = &x->journal[x->njournal++];
	memset(j, 0, sizeof(*j));
	memcpy(j->origin, origin, len);
	j->originlen = len;
	return j;
}

/* Whether any peer may transfer the zone (what acl_ok needs first). */
static bool transfers_allowed(const struct xfr_conf *c, const uint8_t *origin, size_t len)
{
	for (size_t k = 0; c && k < c->nzones; k++) {
		const struct xfr_acl *acl = &c->zones[k].acl;
		if (wire_name_equal(c->zones[k].origin, c->zones[k].originlen, origin, len))
			return acl->set && (acl->nallow || acl->nkeys);
	}
	return false;
}

static void jzone_drop_oldest(struct jzone *j)
{
	j->nrecs -= j->d[0]->del.n + j->d[0]->add.n;
	delta_free(j->d[0]);
	memmove(j->d, j->d + 1, (j->n - 1) * sizeof(j->d[0]));
	j->n--;
}

static void jzone_clear(struct jzone *j)
{
	while (j->n)
		jzone_drop_oldest(j);
}

/* Appends d (jmu held); takes ownership. */
static void jzone_append(struct jzone *j, struct delta *d)
{
	if (j->n && j->d[j->n - 1]->to != d->from)
		jzone_clear(j);           /* a gap: older deltas cannot be chained */
	if (j->n == XFR_JOURNAL_VERSIONS)
		jzone_drop_oldest(j);
	j->d[j->n++] = d;
	j->nrecs += d->del.n + d->add.n;
	while (j->n > 1 && j->nrecs > XFR_JOURNAL_RECORDS)
		jzone_drop_oldest(j);
	if (j->nrecs > XFR_JOURNAL_RECORDS)
		jzone_clear(j);
}

/* Queues NOTIFY of zone origin at serial to its secondaries. */
static void notify_zone(struct xfr *x, const struct xfr_conf *c, const uint8_t *origin, size_t len,
                        uint32_t serial)
{
	struct notify_job jobs[16];
	size_t njobs = 0;
	for (size_t k = 0; c && k < c->nzones; k++) {
		const struct xfr_zone *xz = &c->zones[k];
		if (!wire_name_equal(xz->origin, xz->originlen, origin, len))
			continue;
		for (size_t t = 0; t < xz->nnotify; t++) {
			if (njobs == sizeof(jobs) / sizeof(jobs[0])) {
				notify_submit(x->notifier, jobs, njobs);
				njobs = 0;
			}
			jobs[njobs] = xz->notify[t];
			jobs[njobs++].serial = serial;
		}
	}
	if (njobs)
		notify_submit(x->notifier, jobs, njobs);
}

static struct delta *delta_new(const struct zone *from, uint32_t from_serial, const struct zone *to,
                               uint32_t to_serial)
{
	struct delta *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->from = from_serial;
	d->to = to_serial;
	d->soa_from_len = (uint16_t)zone_soa_rdata(from, d->soa_from);
	d->soa_to_len = (uint16_t)zone_soa_rdata(to, d->soa_to);
	/* The serials of the step, whatever the zones say right now. */
	if (d->soa_from_len >= 20) {
		uint8_t *p = d->soa_from + d->soa_from_len - 20;
		p[0] = (uint8_t)(from_serial >> 24), p[1] = (uint8_t)(from_serial >> 16);
		p[2] = (uint8_t)(from_serial >> 8), p[3] = (uint8_t)from_serial;
	}
	if (d->soa_to_len >= 20) {
		uint8_t *p = d->soa_to + d->soa_to_len - 20;
		p[0] = (uint8_t)(to_serial >> 24), p[1] = (uint8_t)(to_serial >> 16);
		p[2] = (uint8_t)(to_serial >> 8), p[3] = (uint8_t)to_serial;
	}
	d->soa_ttl = to->soa ? to->soa->ttl : 0;
	return d;
}

/* Renders z without its SOA, sorted. */
static int render_sorted(const struct zone *z, struct rset *rs)
{
	if (xfr_render_zone(z, rset_add, rs) == -1 || rs->err)
		return -1;
	/* Drop the SOA (first, from xfr_render_zone): deltas carry their own. */
	rset_sort(rs);
	size_t k = 0;
	for (size_t i = 0; i < rs->n; i++)
		if (rs->r[i].type != DNS_TYPE_SOA)
			rs->r[k++] = rs->r[i];
	rs->n = k;
	return 0;
}

void xfr_published(struct xfr *x, const struct zone_snapshot *snap,
                   const struct zone_snapshot *prev)
{
	/* The settings are only replaced by this same thread. */
	const struct xfr_conf *c = RCUPUB_LOAD(x->conf);
	for (unsigned zi = 0; zi < snap->nzones; zi++) {
		const struct zone *z = &snap->zones[zi];
		const struct zone *pz = NULL;
		for (unsigned k = 0; prev && k < prev->nzones; k++)
			if (wire_name_equal(prev->zones[k].origin, prev->zones[k].originlen, z->origin,
			                    z->originlen))
				pz = &prev->zones[k];
		uint32_t serial = zone_serial(z);
		if (pz && zone_serial(pz) == serial)
			continue;
		bool keep = transfers_allowed(c, z->origin, z->originlen);
		pthread_mutex_lock(&x->jmu);
		struct jzone *j = jzone_get(x, z->origin, z->originlen);
		if (j && (!keep || !pz)) {
			jzone_clear(j);
		} else if (j) {
			/* A reload or UPDATE: the difference of the two snapshots,
			 * both rendered with the backend states of now. */
			struct rset a = { 0 }, b = { 0 };
			struct delta *d = NULL;
			if (render_sorted(pz, &a) == 0 && render_sorted(z, &b) == 0 &&
			    (d = delta_new(pz, zone_serial(pz), z, serial)) &&
			    rset_diff(&a, &b, &d->del, &d->add) == 0) {
				jzone_append(j, d);
			} else {
				delta_free(d);
				jzone_clear(j);
				log_warn("journal: out of memory; IXFR falls back to AXFR");
			}
			rset_free(&a);
			rset_free(&b);
		}
		pthread_mutex_unlock(&x->jmu);
		notify_zone(x, c, z->origin, z->originlen, serial);
	}
}

/* ---- health changes in place ------------------------------------------------------ */

/* The records of one service as transferred (its A/AAAA/SRV and the SRV
 * of each _port._proto name), added to rs. */
static void render_service(const struct zone_service *svc, struct rset *rs, uint16_t *idx)
{
	for (int f = 0; f < 2; f++) {
		int fam = f ? AF_INET6 : AF_INET;
		unsigned cnt = svc_pick(svc, fam, idx);
		for (unsigned i = 0; i < cnt; i++)
			rset_add(rs, svc->owner, svc->ownerlen, f ? DNS_TYPE_AAAA : DNS_TYPE_A, svc->ttl,
			         svc->backends[idx[i]].addr, f ? 16 : 4);
	}
	unsigned n = svc_pick(svc, AF_UNSPEC, idx);
	for (unsigned p = 0; p < svc->nports; p++) {
		uint8_t name[DNS_NAME_MAX];
		size_t nlen = svcname_srv(name, svc->ports[p].name, svc->ports[p].proto, svc->owner,
		                          svc->ownerlen);
		if (!nlen)
			continue;             /* the builder refused such names */
		for (unsigned i = 0; i < n; i++) {
			const struct zone_backend *b = &svc->backends[idx[i]];
			uint8_t rd[ZONE_SRV_RDATA_MAX];
			size_t rdlen = zone_srv_rdata(svc, b, p, b->weight, rd);
			rset_add(rs, svc->owner, svc->ownerlen, DNS_TYPE_SRV, svc->ttl, rd, (uint16_t)rdlen);
			rset_add(rs, name, nlen, DNS_TYPE_SRV, svc->ttl, rd, (uint16_t)rdlen);
		}
	}
}

struct txn_svc {
	const struct zone *z;
	const struct zone_slot *slot;
};

struct xfr_txn {
	struct xfr *x;
	struct txn_svc *s;
	size_t n, cap;
	bool oom;
	struct rset *old;             /* per distinct zone, after xfr_txn_lock */
	const struct zone **zones;
	size_t nzones;
	uint16_t idx[ZONE_MAX_BACKENDS];
};

struct xfr_txn *xfr_txn_new(struct xfr *x)
{
	struct xfr_txn *t = calloc(1, sizeof(*t));
	if (t)
		t->x = x;
	return t;
}

void xfr_txn_add(struct xfr_txn *t, const struct zone *z, const struct zone_slot *slot)
{
	if (t->n == t->cap) {
		size_t nc = t->cap ? 2 * t->cap : 64;
		struct txn_svc *ns = realloc(t->s, nc * sizeof(*ns));
		if (!ns) {
			t->oom = true;
			return;
		}
		t->s = ns;
		t->cap = nc;
	}
	t->s[t->n++] = (struct txn_svc){ z, slot };
}

static int txn_cmp(const void *a, const void *b)
{
	const struct txn_svc *x = a, *y = b;
	if (x->z != y->z)
		return (uintptr_t)x->z < (uintptr_t)y->z ? -1 : 1;
	return (uintptr_t)x->slot < (uintptr_t)y->slot ? -1 : (uintptr_t)x->slot > (uintptr_t)y->slot;
}

/* Renders the services of zone slot zi (t->zones[zi]) into rs, sorted. */
static void txn_render(struct xfr_txn *t, size_t zi, struct rset *rs)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->s[i].z == t->zones[zi])
			render_service(zone_slot_service(t->s[i].slot), rs, t->idx);
	rset_sort(rs);
}

void xfr_txn_lock(struct xfr_txn *t)
{
	struct xfr *x = t->x;
	if (t->n > 1)
		qsort(t->s, t->n, sizeof(*t->s), txn_cmp);
	size_t k = 0;
	for (size_t i = 0; i < t->n; i++)
		if (!k || txn_cmp(&t->s[k - 1], &t->s[i]) != 0)
			t->s[k++] = t->s[i];
	t->n = k;
	size_t nz = 0;
	for (size_t i = 0; i < t->n; i++)
		nz += i == 0 || t->s[i].z != t->s[i - 1].z;
	t->zones = calloc(nz ? nz : 1, sizeof(*t->zones));
	t->old = calloc(nz ? nz : 1, sizeof(*t->old));
	if (!t->zones || !t->old)
		t->oom = true;
	for (size_t i = 0; t->zones && t->old && i < t->n; i++)
		if (i == 0 || t->s[i].z != t->s[i - 1].z)
			t->zones[t->nzones++] = t->s[i].z;
	pthread_mutex_lock(&x->jmu);
	for (size_t zi = 0; zi < t->nzones; zi++)
		txn_render(t, zi, &t->old[zi]);
}

void xfr_txn_commit(struct xfr_txn *t)
{
	struct xfr *x = t->x;
	const struct xfr_conf *c = RCUPUB_LOAD(x->conf);
	uint32_t *notify_serial = calloc(t->nzones ? t->nzones : 1, sizeof(*notify_serial));
	for (size_t zi = 0; zi < t->nzones; zi++) {
		const struct zone *z = t->zones[zi];
		struct rset now = { 0 };
		txn_render(t, zi, &now);
		struct rset del = { 0 }, add = { 0 };
		bool failed = t->oom || t->old[zi].err || now.err ||
		              rset_diff(&t->old[zi], &now, &del, &add) == -1;
		if (!failed && !del.n && !add.n) {
			/* Nothing visible changed (a backup, or fail-open). */
			rset_free(&now);
			continue;
		}
		uint32_t from = zone_serial(z), to = from + 1;
		bool keep = transfers_allowed(c, z->origin, z->originlen);
		struct jzone *j = keep || jzone_find(x, z->origin, z->originlen)
		                      ? jzone_get(x, z->origin, z->originlen) : NULL;
		struct delta *d = keep && !failed ? delta_new(z, from, z, to) : NULL;
		zone_set_serial(z, to);
		if (d) {
			d->del = del;
			d->add = add;
			memset(&del, 0, sizeof(del));
			memset(&add, 0, sizeof(add));
			if (j)
				jzone_append(j, d);
			else
				delta_free(d);
		} else if (j) {
			jzone_clear(j);
		}
		rset_free(&del);
		rset_free(&add);
		rset_free(&now);
		if (notify_serial)
			notify_serial[zi] = to;
	}
	pthread_mutex_unlock(&x->jmu);
	for (size_t zi = 0; notify_serial && zi < t->nzones; zi++)
		if (notify_serial[zi])
			notify_zone(x, c, t->zones[zi]->origin, t->zones[zi]->originlen, notify_serial[zi]);
	free(notify_serial);
	for (size_t zi = 0; t->old && zi < t->nzones; zi++)
		rset_free(&t->old[zi]);
	free(t->old);
	free(t->zones);
	free(t->s);
	free(t);
}

struct xfr *xfr_new(char *err, size_t errlen)
{
	struct xfr *x = calloc(1, sizeof(*x));
	if (!x) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&x->jmu, NULL);
	if (!(x->notifier = notify_start(err, errlen))) {
		pthread_mutex_destroy(&x->jmu);
		free(x);
		return NULL;
	}
	return x;
}

void xfr_free(struct xfr *x)
{
	if (!x)
		return;
	notify_stop(x->notifier);
	for (size_t i = 0; i < x->njournal; i++)
		jzone_clear(&x->journal[i]);
	free(x->journal);
	pthread_mutex_destroy(&x->jmu);
	RCUPUB_REPLACE(x->conf, NULL, xfr_conf_free);
	free(x);
}

/* ---- writing transfer messages ------------------------------------------------- */

struct out {
	const struct dns_query *q;
	struct tsig_ctx *tsig;        /* NULL: unsigned */
	uint8_t *msg;                 /* DNS_MSG_MAX scratch */
	struct wire_writer w;
	uint16_t count;
	bool question_done;
	uint8_t *buf;                 /* the framed messages */
	size_t len, cap;
	int err;
};

static void msg_begin(struct out *o)
{
	wire_writer_init(&o->w, o->msg, DNS_MSG_MAX - TSIG_RR_MAX);
	struct dns_header h = {
		.id = o->q->hdr.id,
		.flags = (uint16_t)(DNS_FLAG_QR | DNS_FLAG_AA | (o->q->hdr.flags & DNS_FLAG_RD)),
	};
	if (!o->question_done) {
		h.qdcount = 1;
		wire_write_header(&o->w, &h);
		wire_write_name(&o->w, o->q->q.name, o->q->q.namelen, true);
		wire_write_u16(&o->w, o->q->q.qtype);
		wire_write_u16(&o->w, o->q->q.qclass);
		o->question_done = true;
	} else {
		wire_write_header(&o->w, &h);
	}
	o->count = 0;
}

static void msg_end(struct out *o)
{
	if (o->err)
		return;
	wire_patch_u16(&o->w, 6, o->count);
	int n = (int)o->w.pos;
	if (o->tsig)
		n = tsig_sign(o->msg, o->w.pos, DNS_MSG_MAX, o->tsig, (uint64_t)time(NULL));
	if (n < 0 || o->w.err) {
		o->err = 1;
		return;
	}
	if (o->len + 2 + (size_t)n > o->cap) {
		size_t nc = o->cap ? 2 * o->cap : 65536;
		while (nc < o->len + 2 + (size_t)n)
			nc *= 2;
		uint8_t *nb = realloc(o->buf, nc);
		if (!nb) {
			o->err = 1;
			return;
		}
		o->buf = nb;
		o->cap = nc;
	}
	o->buf[o->len] = (uint8_t)(n >> 8);
	o->buf[o->len + 1] = (uint8_t)n;
	memcpy(o->buf + o->len + 2, o->msg, (size_t)n);
	o->len += 2 + (size_t)n;
}

static void put_rr(struct out *o, const uint8_t *owner, size_t ownerlen, uint16_t type, uint32_t ttl,
                   const uint8_t *rd, uint16_t rdlen)
{
	if (o->err)
		return;
	if (o->w.pos > XFR_MSG_TARGET && o->count) {
		msg_end(o);
		msg_begin(o);
	}
	struct wire_mark m = wire_mark(&o->w);
	wire_write_name(&o->w, owner, ownerlen, true);
	wire_write_u16(&o->w, type);
	wire_write_u16(&o->w, DNS_CLASS_IN);
	wire_write_u32(&o->w, ttl);
	wire_write_u16(&o->w, rdlen);
	wire_write_bytes(&o->w, rd, rdlen);
	if (o->w.err) {
		/* A message full before the target (huge RRs): start another. */
		wire_rollback(&o->w, m);
		if (!o->count) {
			o->err = 1;
			return;
		}
		msg_end(o);
		msg_begin(o);
		put_rr(o, owner, ownerlen, type, ttl, rd, rdlen);
		return;
	}
	o->count++;
}

static void put_rec(void *arg, const uint8_t *owner, size_t ownerlen, uint16_t type, uint32_t ttl,
                    const uint8_t *rd, uint16_t rdlen)
{
	put_rr(arg, owner, ownerlen, type, ttl, rd, rdlen);
}

static void put_soa(struct out *o, const struct zone *z)
{
	uint8_t rd[ZONE_SOA_RDATA_MAX];
	size_t len = zone_soa_rdata(z, rd);
	if (len)
		put_rr(o, z->origin, z->originlen, DNS_TYPE_SOA, z->soa->ttl, rd, (uint16_t)len);
}

static void put_set(struct out *o, const struct rset *s, size_t i)
{
	const struct rec *r = &s->r[i];
	put_rr(o, s->blob + r->off, r->ownerlen, r->type, r->ttl, s->blob + r->off + r->ownerlen,
	       r->rdlen);
}

/* AXFR (RFC 5936 2.2): SOA, every record, SOA. */
static void write_axfr(struct out *o, const struct zone *z)
{
	xfr_render_zone(z, put_rec, o);   /* SOA first */
	put_soa(o, z);
}

/* x - y into out (all sorted, without duplicates). */
static void rset_minus(const struct rset *x, const struct rset *y, struct rset *out)
{
	size_t i = 0, k = 0;
	while (i < x->n) {
		int c = k == y->n ? -1 : rec_cmp2(x, i, y, k);
		if (c < 0)
			rset_copy_rec(out, x, i++);
		else if (c > 0)
			k++;
		else
			i++, k++;
	}
}

/* x + y into out (all sorted, without duplicates). */
static void rset_union(const struct rset *x, const struct rset *y, struct rset *out)
{
	size_t i = 0, k = 0;
	while (i < x->n || k < y->n) {
		int c = i == x->n ? 1 : k == y->n ? -1 : rec_cmp2(x, i, y, k);
		if (c <= 0)
			rset_copy_rec(out, x, i++);
		else
			rset_copy_rec(out, y, k++);
		if (c == 0)
			k++;
	}
}

/* Condenses the deltas d[0..n) into one difference (RFC 1995 4: "the
 * server may ... condense"): with D and A the net deletions and additions
 * so far, a step deleting d and adding a gives A' = (A - d) + (a - D'),
 * D' = D + (d - A), then D'' = D' - a. Returns -1 when out of memory. */
static int condense(struct delta *const *d, unsigned n, struct rset *del, struct rset *add)
{
	struct rset D = { 0 }, A = { 0 };
	for (unsigned k = 0; k < n; k++) {
		struct rset t1 = { 0 }, d1 = { 0 }, a1 = { 0 }, t2 = { 0 }, a2 = { 0 }, d2 = { 0 };
		rset_minus(&d[k]->del, &A, &t1);      /* deleted, not added by us */
		rset_union(&D, &t1, &d1);
		rset_minus(&A, &d[k]->del, &a1);      /* our additions it keeps */
		rset_minus(&d[k]->add, &d1, &t2);     /* added, not a re-add of a deletion */
		rset_union(&a1, &t2, &a2);
		rset_minus(&d1, &d[k]->add, &d2);     /* deletions undone by the add */
		int err = t1.err | d1.err | a1.err | t2.err | a2.err | d2.err;
		rset_free(&t1);
		rset_free(&d1);
		rset_free(&a1);
		rset_free(&t2);
		rset_free(&D);
		rset_free(&A);
		D = d2;
		A = a2;
		if (err) {
			rset_free(&D);
			rset_free(&A);
			return -1;
		}
	}
	*del = D;
	*add = A;
	return 0;
}

/* IXFR (RFC 1995 4) over the deltas d[0..n), condensed to one difference:
 * SOA(new), SOA(old), what old has and new lacks, SOA(new), what new
 * adds, SOA(new). Returns -1 when out of memory (nothing written). */
static int write_ixfr(struct out *o, const struct zone *z, struct delta *const *d, unsigned n)
{
	struct rset del = { 0 }, add = { 0 };
	if (condense(d, n, &del, &add) == -1)
		return -1;
	put_soa(o, z);
	put_rr(o, z->origin, z->originlen, DNS_TYPE_SOA, d[0]->soa_ttl, d[0]->soa_from,
	       d[0]->soa_from_len);
	for (size_t i = 0; i < del.n; i++)
		put_set(o, &del, i);
	put_soa(o, z);
	for (size_t i = 0; i < add.n; i++)
		put_set(o, &add, i);
	put_soa(o, z);
	rset_free(&del);
	rset_free(&add);
	return 0;
}

/* ---- requests ------------------------------------------------------------------ */

/* An answer of header, question and, if signed, TSIG. */
static int short_answer(const struct request *r, unsigned rcode, bool aa, uint8_t *resp,
                        size_t cap)
{
	int n = wire_reply_short(&r->q.hdr, &r->q.q, rcode, aa ? DNS_FLAG_AA : 0, resp, cap);
	if (n < 0 || !r->tsig)
		return n;
	return tsig_sign(resp, (size_t)n, cap, r->tsig, (uint64_t)time(NULL));
}

/* The serial of the SOA in an IXFR request's authority section, for zone. */
static int ixfr_client_serial(const uint8_t *req, size_t len, const struct dns_query *q,
                              uint32_t *serial)
{
	if (q->hdr.nscount != 1)
		return -1;
	struct wire_reader r;
	struct dns_rr rr;
	wire_reader_init(&r, req, len);
	wire_skip(&r, q->question_end);
	wire_read_rr(&r, &rr);
	if (r.err || rr.type != DNS_TYPE_SOA ||
	    !wire_name_equal(rr.name, rr.namelen, q->q.name, q->q.namelen))
		return -1;
	struct wire_reader d;
	wire_reader_init(&d, req, rr.rdoff + rr.rdlen);
	wire_skip(&d, rr.rdoff);
	wire_read_name(&d, NULL);
	wire_read_name(&d, NULL);
	*serial = wire_read_u32(&d);
	return d.err ? -1 : 0;
}

int xfr_answer(struct xfr *x, const struct request *r, uint8_t *resp, size_t cap,
               uint8_t **stream, size_t *streamlen)
{
	const struct dns_query *qp = &r->q;
	const uint8_t *req = r->msg;
	size_t len = r->len;
	bool tcp = r->tcp;
	struct tsig_ctx *tsig = r->tsig;
	if (qp->hdr.ancount || qp->hdr.nscount > (qp->q.qtype == DNS_TYPE_IXFR ? 1u : 0u))
		return short_answer(r, DNS_RCODE_FORMERR, false, resp, cap);
	if (qp->q.qclass != DNS_CLASS_IN)
		return short_answer(r, DNS_RCODE_REFUSED, false, resp, cap);
	const struct zone_snapshot *snap = r->snap;
	const struct zone *z = NULL;
	for (unsigned i = 0; snap && i < snap->nzones; i++)
		if (wire_name_equal(snap->zones[i].origin, snap->zones[i].originlen, qp->q.name,
		                    qp->q.namelen))
			z = &snap->zones[i];
	if (!z)   /* RFC 5936 2.2.1: not a zone of ours */
		return short_answer(r, DNS_RCODE_NOTAUTH, false, resp, cap);
	const struct xfr_conf *c = RCUPUB_LOAD(x->conf);
	const struct xfr_zone *xz = NULL;
	for (size_t i = 0; c && i < c->nzones; i++)
		if (wire_name_equal(c->zones[i].origin, c->zones[i].originlen, z->origin, z->originlen))
			xz = &c->zones[i];
	if (!xz || !acl_ok(&xz->acl, r->peer, tsig ? tsig->key : NULL))
		return short_answer(r, DNS_RCODE_REFUSED, false, resp, cap);

	uint32_t cserial = 0;
	bool ixfr = qp->q.qtype == DNS_TYPE_IXFR;
	if (ixfr && ixfr_client_serial(req, len, qp, &cserial) == -1)
		return short_answer(r, DNS_RCODE_FORMERR, false, resp, cap);
	bool current = ixfr && (int32_t)(cserial - zone_serial(z)) >= 0;
	if (!tcp) {
		/* RFC 1995 2: over UDP, the SOA alone when the client is up to
		 * date, else TC so it comes back over TCP. AXFR is TCP only. */
		if (!ixfr)
			return short_answer(r, DNS_RCODE_REFUSED, false, resp, cap);
		if (!current) {
			int n = wire_reply_short(&qp->hdr, &qp->q, DNS_RCODE_NOERROR, DNS_FLAG_AA, resp, cap);
			if (n > 0) {
				resp[2] |= DNS_FLAG_TC >> 8;
				if (tsig)
					n = tsig_sign(resp, (size_t)n, cap, tsig, (uint64_t)time(NULL));
			}
			return n;
		}
	}

	struct out o = { .q = qp, .tsig = tsig };
	o.msg = malloc(DNS_MSG_MAX);
	if (!o.msg)
		return short_answer(r, DNS_RCODE_SERVFAIL, false, resp, cap);
	msg_begin(&o);
	/* With jmu held, the serial and the backend states are those of one
	 * version: the control thread changes both with it held. */
	pthread_mutex_lock(&x->jmu);
	uint32_t serial = zone_serial(z);
	current = ixfr && (int32_t)(cserial - serial) >= 0;
	if (current) {
		put_soa(&o, z);
	} else if (ixfr) {
		const struct jzone *j = jzone_find(x, z->origin, z->originlen);
		unsigned first = j ? j->n : 0;
		for (unsigned k = 0; j && k < j->n; k++)
			if (j->d[k]->from == cserial) {
				first = k;
				break;
			}
		if (!j || first == j->n || j->d[j->n - 1]->to != serial ||
		    write_ixfr(&o, z, j->d + first, j->n - first) == -1)
			write_axfr(&o, z);   /* RFC 1995 4: the whole zone, AXFR-style */
	} else {
		write_axfr(&o, z);
	}
	pthread_mutex_unlock(&x->jmu);
	msg_end(&o);
	free(o.msg);
	if (o.err) {
		free(o.buf);
		return wire_reply_short(&qp->hdr, &qp->q, DNS_RCODE_SERVFAIL, 0, resp, cap);
	}
	if (!tcp) {
		/* The one SOA of an up-to-date UDP client. */
		size_t n = (size_t)(o.buf[0] << 8 | o.buf[1]);
		int ret = -1;
		if (n <= cap && n <= r->limit) {
			memcpy(resp, o.buf + 2, n);
			ret = (int)n;
		}
		free(o.buf);
		return ret;
	}
	*stream = o.buf;
	*streamlen = o.len;
	return XFR_STREAM;
}

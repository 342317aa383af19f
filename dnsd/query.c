/* query.c -- a QUERY to its answer: EDNS, lookup, balance, encode. No allocation and no locks: everything comes from the request,
 * the worker's preallocated state and the current zone snapshot. */
#include "query.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/addr.h"
#include "backend_fmt.h"
#include "balance.h"
#include "cache.h"
#include "util/clock.h"
#include "config.h"
#include "guard.h"
#include "metrics.h"
#include "request.h"
#include "dns/wire.h"
#include "zone.h"

enum {
	CNAME_CHAIN_MAX = 8,   /* in-zone CNAME hops we follow for the client */
	ADDL_MAX = 32,         /* distinct names considered for the additional section */
	OPT_RR_LEN = 11,       /* root owner + type + class + ttl + rdlength */
	/* answer_in's verdict for a name outside our zones when forwarding
	 * is on (beyond every 12-bit RCODE). */
	RCODE_FORWARD = 0x10000,
	/* Over UDP without a valid server cookie, a CHAOS answer may be at
	 * most this many times the query's size (a status answer was 33
	 * times a 37-byte query): a bigger one goes out empty with TC, and
	 * the client asks over TCP, or again with its server cookie. */
	CHAOS_UDP_FACTOR = 3,
};

enum section { SEC_ANSWER, SEC_AUTHORITY, SEC_ADDITIONAL };

struct query_worker {
	const struct query_settings *set;
	unsigned idx;
	struct balance_state bal;
	uint16_t order[ZONE_MAX_BACKENDS];
	struct query_forward fwd;
	/* Addresses already in this answer, for services with shared addresses:
	 * addr_seen[addr_first] == addr_gen means seen. */
	uint32_t addr_seen[ZONE_MAX_BACKENDS];
	uint32_t addr_gen;
	struct metrics_worker *m;
	uint8_t search_name[DNS_NAME_MAX];   /* a search-path CNAME's target */
	unsigned zone_slot;           /* the metrics slot of the last answer's zone (0: none) */
	/* Where the SRV answer wrote each selected backend's target name (0:
	 * past what a pointer reaches): its address record points there. */
	uint16_t target_at[ZONE_MAX_BACKENDS];
};

/* Per-request encoding state, on the stack. */
struct answer {
	const struct dns_query *q;
	uint16_t count[3];
	bool tc;               /* a required RRset did not fit */
	bool full;             /* stop adding anything */
	unsigned naddl;
	bool referral;         /* glue below a cut may go in the additional section */
	const struct zone_snapshot *snap;
	struct balance_client client;
	bool ecs_used;         /* the answer depends on the client subnet */
	bool subset;           /* a service answered with the backends that fit */
	bool search_path;      /* answered through search-path */
	/* From here on not cleared per request (ANSWER_CLEAR): the writer is
	 * set up by wire_writer_init, addl[] is read below naddl only. */
	struct wire_writer w;
	/* Names whose A/AAAA belong in the additional section. */
	const uint8_t *addl[ADDL_MAX];
	uint8_t addl_len[ADDL_MAX];
};

#define ANSWER_CLEAR offsetof(struct answer, w)

const struct query_forward *query_forward_info(const struct query_worker *qw)
{
	return &qw->fwd;
}

unsigned query_zone_slot(const struct query_worker *qw)
{
	return qw->zone_slot;
}

struct query_worker *query_worker_new(const struct query_settings *qs, unsigned idx,
                                      uint64_t seed)
{
	struct query_worker *qw = calloc(1, sizeof(*qw));
	if (!qw)
		return NULL;
	qw->set = qs;
	qw->idx = idx;
	balance_init(&qw->bal, seed, idx);
	return qw;
}

void query_worker_free(struct query_worker *qw)
{
	free(qw);
}

void query_worker_set_metrics(struct query_worker *qw, struct metrics_worker *m)
{
	qw->m = m;
}

/* ---- encoding ---------------------------------------------------------------- */

/* Writes rdata of type, compressing embedded names where RFC 3597 4 allows
 * it (the RFC 1035 types); SRV targets are never compressed (RFC 2782). */
static void put_rdata(struct wire_writer *w, uint16_t type, const uint8_t *rd, uint16_t len)
{
	struct wire_reader r;
	size_t n;
	switch (type) {
	case DNS_TYPE_NS:
	case DNS_TYPE_CNAME:
	case DNS_TYPE_PTR:
		wire_write_name(w, rd, len, true);
		return;
	case DNS_TYPE_MX:
		if (len < 3)
			break;
		wire_write_bytes(w, rd, 2);
		wire_write_name(w, rd + 2, len - 2, true);
		return;
	case DNS_TYPE_SOA:
		wire_reader_init(&r, rd, len);
		n = wire_read_name(&r, NULL);
		size_t m = wire_read_name(&r, NULL);
		if (r.err || wire_remaining(&r) != 20)
			break;
		wire_write_name(w, rd, n, true);
		wire_write_name(w, rd + n, m, true);
		wire_write_bytes(w, rd + n + m, 20);
		return;
	default:
		break;
	}
	wire_write_bytes(w, rd, len);
}

/* Whether owner is the question's own name (the same bytes, written right
 * after the header): a pointer to offset 12 then, without a search. */
static bool owner_is_question(const struct answer *a, const uint8_t *owner, size_t ownerlen)
{
	return owner == a->q->q.name && ownerlen > 1;
}

static void put_owner(struct answer *a, const uint8_t *owner, size_t ownerlen)
{
	if (owner_is_question(a, owner, ownerlen))
		wire_write_ptr(&a->w, DNS_HEADER_LEN);
	else
		wire_write_name(&a->w, owner, ownerlen, true);
}

/* A compression pointer to off and an RR's fixed fields, into 12 bytes
 * reserved for a record written in one piece. */
static void put_ptr_head(uint8_t *p, size_t off, uint16_t type, uint32_t ttl, uint16_t rdlen)
{
	p[0] = (uint8_t)(0xc0 | off >> 8);
	p[1] = (uint8_t)off;
	wire_put_rr_head(p + 2, type, DNS_CLASS_IN, ttl, rdlen);
}

static void put_rr(struct answer *a, const uint8_t *owner, size_t ownerlen, uint16_t type,
                   uint32_t ttl, const uint8_t *rd, uint16_t rdlen)
{
	struct wire_writer *w = &a->w;
	put_owner(a, owner, ownerlen);
	switch (type) {
	case DNS_TYPE_NS:
	case DNS_TYPE_CNAME:
	case DNS_TYPE_PTR:
	case DNS_TYPE_MX:
	case DNS_TYPE_SOA: {
		/* Compressed names inside: the length is known once written. */
		wire_write_rr_head(w, type, DNS_CLASS_IN, ttl, 0);
		size_t lenpos = w->pos - 2;
		put_rdata(w, type, rd, rdlen);
		if (!w->err)
			wire_patch_u16(w, lenpos, (uint16_t)(w->pos - lenpos - 2));
		return;
	}
	default:
		wire_write_rr_head(w, type, DNS_CLASS_IN, ttl, rdlen);
		wire_write_bytes(w, rd, rdlen);
		return;
	}
}

/* An address record whose owner is already in the message at off (the
 * question, an SRV target: a pointer reaches it), in one piece. */
static void put_addr_at(struct answer *a, size_t off, uint16_t type, uint32_t ttl,
                        const uint8_t *addr, uint16_t alen)
{
	uint8_t *p = wire_write_reserve(&a->w, 12 + (size_t)alen);
	if (!p)
		return;
	put_ptr_head(p, off, type, ttl, alen);
	if (alen == 4)                /* a fixed size: a move, not a call */
		memcpy(p + 12, addr, 4);
	else
		memcpy(p + 12, addr, 16);
}

/* One SRV record of backend b written in place; *target_at gets the
 * offset of its target name (0 if a pointer cannot reach it). */
static void put_srv_rr(struct answer *a, const uint8_t *owner, size_t ownerlen,
                       const struct zone_service *svc, const struct zone_backend *b,
                       unsigned port_idx, uint32_t weight, uint16_t *target_at)
{
	struct wire_writer *w = &a->w;
	size_t rdlen = 6 + (size_t)b->targetlen;
	uint8_t *rd;
	if (owner_is_question(a, owner, ownerlen)) {
		/* Pointer, fixed fields and rdata at once. */
		uint8_t *p = wire_write_reserve(w, 12 + rdlen);
		if (!p)
			return;
		put_ptr_head(p, DNS_HEADER_LEN, DNS_TYPE_SRV, svc->ttl, (uint16_t)rdlen);
		rd = p + 12;
	} else {
		put_owner(a, owner, ownerlen);
		wire_write_rr_head(w, DNS_TYPE_SRV, DNS_CLASS_IN, svc->ttl, (uint16_t)rdlen);
		if (!(rd = wire_write_reserve(w, rdlen)))
			return;
	}
	zone_srv_rdata(svc, b, port_idx, weight, rd);
	size_t at = (size_t)(rd - w->buf) + 6;
	*target_at = at < 0x4000 ? (uint16_t)at : 0;
}

/* Starts a unit (an RRset) that must fit whole. */
static struct wire_mark unit_begin(struct answer *a)
{
	return wire_mark(&a->w);
}

/* Ends a unit of n records in sec. If it did not fit it is removed; a
 * missing answer or authority RRset sets TC (RFC 2181 9), a missing
 * additional one does not. Returns false if it did not fit. */
static bool unit_end(struct answer *a, struct wire_mark m, enum section sec, unsigned n)
{
	if (a->w.err) {
		wire_rollback(&a->w, m);
		if (sec != SEC_ADDITIONAL)
			a->tc = true;
		a->full = true;
		return false;
	}
	a->count[sec] = (uint16_t)(a->count[sec] + n);
	return true;
}

static void put_rrset(struct answer *a, enum section sec, const uint8_t *owner, size_t ownerlen,
                      const struct zone_rrset *rs, uint32_t ttl_cap)
{
	if (a->full)
		return;
	uint32_t ttl = rs->ttl < ttl_cap ? rs->ttl : ttl_cap;
	struct wire_mark m = unit_begin(a);
	for (unsigned i = 0; i < rs->count; i++)
		put_rr(a, owner, ownerlen, rs->type, ttl, rs->rd[i]->data, rs->rd[i]->len);
	unit_end(a, m, sec, rs->count);
}

static void addl_want(struct answer *a, const uint8_t *name, size_t len)
{
	for (unsigned i = 0; i < a->naddl; i++)
		if (wire_name_equal(a->addl[i], a->addl_len[i], name, len))
			return;
	if (a->naddl < ADDL_MAX) {
		a->addl[a->naddl] = name;
		a->addl_len[a->naddl++] = (uint8_t)len;
	}
}

/* Queues for the additional section the names an RRset points at. */
static void addl_from_rrset(struct answer *a, const struct zone_rrset *rs)
{
	for (unsigned i = 0; i < rs->count; i++) {
		const struct zone_rdata *rd = rs->rd[i];
		size_t off;
		switch (rs->type) {
		case DNS_TYPE_NS:
			off = 0;
			break;
		case DNS_TYPE_MX:
			off = 2;
			break;
		case DNS_TYPE_SRV:
			off = 6;
			break;
		default:
			return;
		}
		if (rd->len > off && wire_name_valid(rd->data + off, rd->len - off))
			addl_want(a, rd->data + off, rd->len - off);
	}
}

/* The address record of a backend's target name (a ZONE_NODE_TARGET) as
 * one unit of sec, if qtype (0: any address type) asks for it. Returns
 * whether it matched. */
static bool put_target(struct answer *a, enum section sec, const struct zone_node *n,
                       const uint8_t *owner, size_t ownerlen, uint16_t qtype)
{
	const struct zone_service *svc = zone_node_service(n);
	const struct zone_backend *b = &svc->backends[n->port_idx];
	uint16_t type = b->family == AF_INET ? DNS_TYPE_A : DNS_TYPE_AAAA;
	if (qtype && qtype != type && qtype != DNS_TYPE_ANY)
		return false;
	if (a->full)
		return true;
	struct wire_mark m = unit_begin(a);
	put_rr(a, owner, ownerlen, type, svc->ttl, b->addr, b->family == AF_INET ? 4 : 16);
	unit_end(a, m, sec, 1);
	return true;
}

/* A and AAAA of the queued names that we are authoritative for (or hold as
 * glue below a cut). Each name's addresses are one unit. */
static void put_additional(struct answer *a, const struct zone_snapshot *snap)
{
	for (unsigned i = 0; i < a->naddl && !a->full; i++) {
		struct zone_result r;
		zone_lookup(snap, a->addl[i], a->addl_len[i], &r);
		const struct zone_node *n = NULL;
		if (r.status == ZONE_FOUND)
			n = r.node;
		else if (r.status == ZONE_REFERRAL && a->referral)
			n = zone_find(r.zone, a->addl[i], a->addl_len[i]); /* glue below the cut */
		if (!n || n->kind == ZONE_NODE_SRV)
			continue;
		if (n->kind == ZONE_NODE_SERVICE)
			continue; /* service names in NS/MX targets: not glue material */
		if (n->kind == ZONE_NODE_TARGET) {
			put_target(a, SEC_ADDITIONAL, n, n->name, n->namelen, 0);
			continue;
		}
		const struct zone_rrset *v4 = zone_node_rrset(n, DNS_TYPE_A);
		const struct zone_rrset *v6 = zone_node_rrset(n, DNS_TYPE_AAAA);
		if (v4)
			put_rrset(a, SEC_ADDITIONAL, n->name, n->namelen, v4, UINT32_MAX);
		if (v6)
			put_rrset(a, SEC_ADDITIONAL, n->name, n->namelen, v6, UINT32_MAX);
	}
}

/* The SOA RRset of z with its current serial (health changes move the
 * serial on without a new snapshot). */
static void put_soa_rrset(struct answer *a, enum section sec, const struct zone *z,
                          const uint8_t *owner, size_t ownerlen, uint32_t ttl_cap)
{
	uint8_t rd[ZONE_SOA_RDATA_MAX];
	size_t len;
	if (a->full || !z->soa || !(len = zone_soa_rdata(z, rd)))
		return;
	uint32_t ttl = z->soa->ttl < ttl_cap ? z->soa->ttl : ttl_cap;
	struct wire_mark m = unit_begin(a);
	put_rr(a, owner, ownerlen, DNS_TYPE_SOA, ttl, rd, len);
	unit_end(a, m, sec, 1);
}

static void put_soa(struct answer *a, const struct zone *z)
{
	put_soa_rrset(a, SEC_AUTHORITY, z, z->origin, z->originlen, z->neg_ttl);
}

/* ---- services ---------------------------------------------------------------- */

/* Selects at most max backends of family into qw->order; *all (if not
 * NULL) is how many the answer would carry without that cap. */
static unsigned select_backends(struct query_worker *qw, struct answer *a,
                                const struct zone_service *svc, int family, unsigned max,
                                unsigned *all)
{
	struct balance_explain ex;
	if (svc->slow_start_ms)
		qw->bal.now_ms = clock_mono_ms();
	unsigned n = balance_select(a->snap, svc, family, &qw->bal, &a->client, qw->order, max, &ex);
	a->ecs_used |= ex.used_client;
	if (all) {
		*all = n ? ex.candidates : 0;
		if (svc->max_answers && *all > svc->max_answers)
			*all = svc->max_answers;
	}
	return n;
}

/* How many records with rdata of up to rdlen bytes fit in what is left of
 * the answer (the OPT record's room is already kept back), up to want:
 * the first spells its owner out unless it is the question's name, the
 * next ones point at it (2 bytes). An estimate from above of each size,
 * so what it allows always fits. */
static unsigned answer_room(const struct answer *a, const uint8_t *owner, size_t ownerlen,
                            size_t rdlen, unsigned want)
{
	size_t left = a->w.cap > a->w.pos ? a->w.cap - a->w.pos : 0;
	size_t first = (owner == a->q->q.name ? 2 : ownerlen) + 10 + rdlen;
	size_t more = 2 + 10 + rdlen;
	if (a->w.err || left < first || !want)
		return 0;
	if (left - first >= (size_t)(want - 1) * more)
		return want;                  /* all of them: no division */
	size_t n = 1 + (left - first) / more;
	return n < want ? (unsigned)n : want;
}

/* The common answers in one piece: the n backends of qw->order (distinct
 * addresses), each record a pointer to the question, fixed fields the
 * same for all and the address. Returns false, having written nothing,
 * if they do not all fit (the record by record way then decides what
 * goes: TC, or a subset). */
static bool put_addrs_whole(struct query_worker *qw, struct answer *a,
                            const struct zone_service *svc, unsigned n, uint16_t type,
                            uint16_t alen)
{
	size_t rl = 12 + (size_t)alen;
	if (a->w.err || a->w.pos > a->w.cap || a->w.cap - a->w.pos < n * rl)
		return false;
	uint8_t head[12];
	put_ptr_head(head, DNS_HEADER_LEN, type, svc->ttl, alen);
	uint8_t *p = wire_write_reserve(&a->w, n * rl);
	for (unsigned i = 0; i < n; i++, p += rl) {
		const struct zone_backend *b = &svc->backends[qw->order[i]];
		memcpy(p, head, 12);
		if (alen == 4)
			memcpy(p + 12, b->addr, 4);
		else
			memcpy(p + 12, b->addr, 16);
	}
	a->count[SEC_ANSWER] = (uint16_t)(a->count[SEC_ANSWER] + n);
	return true;
}

/* An SRV answer for one port of a service without slow start whose
 * backends have targets of their own, in one piece: the SRV records
 * (owner a pointer to the question, the target spelled out), then each
 * target's address record, its owner a pointer to the target in its SRV
 * record. Returns false, having written nothing, if it does not all fit
 * (or reaches past what a pointer can). */
static bool put_srv_whole(struct query_worker *qw, struct answer *a,
                          const struct zone_service *svc, unsigned n, unsigned port_idx)
{
	size_t srv_len = 0, addr_len = 0;
	for (unsigned i = 0; i < n; i++) {
		const struct zone_backend *b = &svc->backends[qw->order[i]];
		srv_len += 12 + 6 + (size_t)b->targetlen;
		addr_len += b->family == AF_INET ? 16 : 28;
	}
	size_t total = srv_len + addr_len;
	if (a->w.err || a->w.pos > a->w.cap || a->w.cap - a->w.pos < total ||
	    a->w.pos + total > 0x4000)
		return false;
	size_t at = a->w.pos;         /* p's offset in the message */
	uint8_t *p = wire_write_reserve(&a->w, total), *q = p + srv_len;
	/* What every record repeats, laid out once: the SRV records' owner
	 * pointer, type, class and TTL (their first ten bytes), and each
	 * family's address record but for its owner pointer. */
	uint8_t srv_head[12], head4[12], head6[12];
	put_ptr_head(srv_head, DNS_HEADER_LEN, DNS_TYPE_SRV, svc->ttl, 0);
	put_ptr_head(head4, 0, DNS_TYPE_A, svc->ttl, 4);
	put_ptr_head(head6, 0, DNS_TYPE_AAAA, svc->ttl, 16);
	uint16_t port = svc->ports[port_idx].port;
	for (unsigned i = 0; i < n; i++) {
		const struct zone_backend *b = &svc->backends[qw->order[i]];
		uint16_t bport = b->port ? b->port : port;
		uint16_t wgt = b->weight ? b->weight : 1;
		/* RDLENGTH, priority, weight, port: one big-endian word. */
		uint64_t f = (uint64_t)(6 + b->targetlen) << 48 | (uint64_t)b->priority << 32 |
		             (uint64_t)wgt << 16 | bport;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		f = __builtin_bswap64(f);
#endif
		memcpy(p, srv_head, 10);
		memcpy(p + 10, &f, 8);
		wire_copy(p + 18, zone_backend_target(b), b->targetlen);
		size_t target = at + 18;   /* < 0x4000: checked above */
		if (b->family == AF_INET) {
			memcpy(q, head4, 12);
			memcpy(q + 12, b->addr, 4);
		} else {
			memcpy(q, head6, 12);
			memcpy(q + 12, b->addr, 16);
		}
		q[0] = (uint8_t)(0xc0 | target >> 8);
		q[1] = (uint8_t)target;
		q += b->family == AF_INET ? 16 : 28;
		at += 18 + (size_t)b->targetlen;
		p += 18 + (size_t)b->targetlen;
	}
	a->count[SEC_ANSWER] = (uint16_t)(a->count[SEC_ANSWER] + n);
	a->count[SEC_ADDITIONAL] = (uint16_t)(a->count[SEC_ADDITIONAL] + n);
	return true;
}

static void put_service_addrs(struct query_worker *qw, struct answer *a, const uint8_t *owner,
                              size_t ownerlen, const struct zone_service *svc, int family)
{
	if (a->full)
		return;
	uint16_t type = family == AF_INET ? DNS_TYPE_A : DNS_TYPE_AAAA;
	uint16_t alen = family == AF_INET ? 4 : 16;
	/* oversize: subset asks the policy for as many as fit (the same
	 * choice max-answers makes); with nothing fitting, or truncate, for
	 * all, and an RRset that does not fit sets TC. Backends sharing an
	 * address are all asked for and cut after removing repeats. */
	unsigned room = ZONE_MAX_BACKENDS;
	if (svc->oversize == CFG_OVERSIZE_SUBSET) {
		room = answer_room(a, owner, ownerlen, alen, svc->nbackends);
		if (!room)
			room = ZONE_MAX_BACKENDS;
	}
	unsigned all;
	unsigned n = select_backends(qw, a, svc, family, svc->dup_addrs ? ZONE_MAX_BACKENDS : room,
	                             &all);
	if (!n)
		return;
	if (!svc->dup_addrs && owner_is_question(a, owner, ownerlen) &&
	    put_addrs_whole(qw, a, svc, n, type, alen)) {
		a->subset |= n < all;
		return;
	}
	struct wire_mark m = unit_begin(a);
	unsigned put = 0;
	if (svc->dup_addrs && ++qw->addr_gen == 0) {
		memset(qw->addr_seen, 0, sizeof(qw->addr_seen));
		qw->addr_gen = 1;
	}
	bool cut = n < all;
	for (unsigned i = 0; i < n; i++) {
		const struct zone_backend *b = &svc->backends[qw->order[i]];
		if (svc->dup_addrs) {
			if (qw->addr_seen[b->addr_first] == qw->addr_gen)
				continue;
			if (put == room) {
				cut = true;
				break;
			}
			qw->addr_seen[b->addr_first] = qw->addr_gen;
		}
		if (owner_is_question(a, owner, ownerlen))
			put_addr_at(a, DNS_HEADER_LEN, type, svc->ttl, b->addr, alen);
		else
			put_rr(a, owner, ownerlen, type, svc->ttl, b->addr, alen);
		put++;
	}
	if (unit_end(a, m, SEC_ANSWER, put) && cut)
		a->subset = true;
}

/* SRV records for one port (port_idx >= 0) or all ports (-1), ordered by
 * the service's policy, with the targets' addresses as additional data. */
static unsigned put_service_srv(struct query_worker *qw, struct answer *a, const uint8_t *owner,
                                size_t ownerlen, const struct zone_service *svc, int port_idx)
{
	if (!svc->nports || a->full)
		return 0;
	unsigned first = port_idx < 0 ? 0 : (unsigned)port_idx;
	unsigned last = port_idx < 0 ? svc->nports : (unsigned)port_idx + 1;
	/* oversize: subset (see put_service_addrs): each backend's records
	 * (one per port) sized by the longest target, never compressed. */
	unsigned room = ZONE_MAX_BACKENDS;
	if (svc->oversize == CFG_OVERSIZE_SUBSET) {
		room = answer_room(a, owner, ownerlen, 6 + (size_t)svc->target_max,
		                   svc->nbackends * (last - first));
		if (last - first > 1)
			room /= last - first;
		if (!room)
			room = ZONE_MAX_BACKENDS;
	}
	unsigned all;
	unsigned n = select_backends(qw, a, svc, AF_UNSPEC, room, &all);
	if (!n)
		return 0;
	if (last == first + 1 && !svc->slow_start_ms && !svc->dup_targets &&
	    owner_is_question(a, owner, ownerlen) && put_srv_whole(qw, a, svc, n, first)) {
		a->subset |= n < all;
		return n;
	}
	struct wire_mark m = unit_begin(a);
	unsigned count = 0;
	for (unsigned p = first; p < last; p++) {
		for (unsigned i = 0; i < n; i++) {
			const struct zone_backend *b = &svc->backends[qw->order[i]];
			uint16_t at = 0;
			/* The weight clients see includes the slow-start ramp. */
			put_srv_rr(a, owner, ownerlen, svc, b, p, balance_weight(svc, b, qw->bal.now_ms),
			           &at);
			if (p == first)
				qw->target_at[i] = at;
			count++;
		}
	}
	if (!unit_end(a, m, SEC_ANSWER, count))
		return 0;
	a->subset |= n < all;
	/* Targets' addresses: each target one unit, in answer order, its
	 * owner a pointer to the target in the SRV record (RFC 2782 keeps
	 * the target itself uncompressed, not other names from using it). */
	for (unsigned i = 0; i < n && !a->full; i++) {
		const struct zone_backend *b = &svc->backends[qw->order[i]];
		const uint8_t *target = zone_backend_target(b);
		bool dup = false;
		for (unsigned j = 0; svc->dup_targets && j < i; j++)
			dup |= zone_backend_target(&svc->backends[qw->order[j]]) == target;
		if (dup)
			continue;
		struct wire_mark am = unit_begin(a);
		uint16_t type = b->family == AF_INET ? DNS_TYPE_A : DNS_TYPE_AAAA;
		uint16_t alen = b->family == AF_INET ? 4 : 16;
		if (qw->target_at[i])
			put_addr_at(a, qw->target_at[i], type, svc->ttl, b->addr, alen);
		else
			put_rr(a, target, b->targetlen, type, svc->ttl, b->addr, alen);
		unit_end(a, am, SEC_ADDITIONAL, 1);
	}
	return count;
}

/* ---- the answer ---------------------------------------------------------------- */

/* Answers qtype at a found node. Returns true if something was answered
 * (false: NODATA). *next is set to a CNAME target to follow. */
static bool answer_node(struct query_worker *qw, struct answer *a, const struct zone *z,
                        const struct zone_node *n,
                        const uint8_t *owner, size_t ownerlen, uint16_t qtype,
                        const uint8_t **next, size_t *nextlen)
{
	*next = NULL;
	if (n->kind == ZONE_NODE_SERVICE) {
		const struct zone_service *svc = zone_node_service(n);
		uint16_t before = a->count[SEC_ANSWER];
		switch (qtype) {
		case DNS_TYPE_A:
			put_service_addrs(qw, a, owner, ownerlen, svc, AF_INET);
			break;
		case DNS_TYPE_AAAA:
			put_service_addrs(qw, a, owner, ownerlen, svc, AF_INET6);
			break;
		case DNS_TYPE_SRV:
			put_service_srv(qw, a, owner, ownerlen, svc, -1);
			break;
		case DNS_TYPE_ANY:
			/* RFC 8482: one RRset is a complete answer to ANY. */
			put_service_addrs(qw, a, owner, ownerlen, svc, svc->n4 ? AF_INET : AF_INET6);
			break;
		default:
			break;
		}
		return a->count[SEC_ANSWER] != before || a->tc;
	}
	if (n->kind == ZONE_NODE_TARGET)
		return put_target(a, SEC_ANSWER, n, owner, ownerlen, qtype) || a->tc;
	if (n->kind == ZONE_NODE_SRV) {
		if (qtype != DNS_TYPE_SRV && qtype != DNS_TYPE_ANY)
			return false;
		return put_service_srv(qw, a, owner, ownerlen, zone_node_service(n), (int)n->port_idx) || a->tc;
	}
	const struct zone_rrset *cname = zone_node_rrset(n, DNS_TYPE_CNAME);
	if (cname && qtype != DNS_TYPE_CNAME) {
		put_rrset(a, SEC_ANSWER, owner, ownerlen, cname, UINT32_MAX);
		if (qtype != DNS_TYPE_ANY && cname->count == 1) {
			*next = cname->rd[0]->data;
			*nextlen = cname->rd[0]->len;
		}
		return true;
	}
	const struct zone_rrset *rs = NULL;
	if (qtype == DNS_TYPE_ANY)
		rs = n->nrrsets ? &n->rrsets[0] : NULL;
	else
		rs = zone_node_rrset(n, qtype);
	if (!rs)
		return false;
	if (rs->type == DNS_TYPE_SOA)
		put_soa_rrset(a, SEC_ANSWER, z, owner, ownerlen, UINT32_MAX);
	else
		put_rrset(a, SEC_ANSWER, owner, ownerlen, rs, UINT32_MAX);
	addl_from_rrset(a, rs);
	return true;
}

/* Referral to the child zone at cut (RFC 1034 4.3.2): NS in authority,
 * glue in additional, no AA. */
static void answer_referral(struct answer *a, const struct zone_node *cut)
{
	const struct zone_rrset *ns = zone_node_rrset(cut, DNS_TYPE_NS);
	if (!ns)
		return;
	put_rrset(a, SEC_AUTHORITY, cut->name, cut->namelen, ns, UINT32_MAX);
	addl_from_rrset(a, ns);
}

/* search-path: the name <name> in our zones that name (outside them) is
 * <name>.<suffix> of, for the first suffix of the list where there is one,
 * written to qw->search_name; returns its length and sets *z to its zone,
 * or 0. At most CFG_SEARCH_MAX lookups. */
static size_t search_path_target(struct query_worker *qw, const struct zone_snapshot *snap,
                                 const uint8_t *name, size_t len, const struct zone **z)
{
	size_t off[DNS_NAME_MAX / 2 + 1];
	unsigned nl = 0;
	for (size_t p = 0; p < len && name[p] != 0; p += 1 + (size_t)name[p])
		off[nl++] = p;
	for (size_t i = 0; i < qw->set->nsearch; i++) {
		const struct cfg_search *e = &qw->set->search[i];
		if (e->len >= len)
			continue;
		unsigned j = 0;
		while (j < nl && off[j] != len - e->len)
			j++;
		/* <name> keeps at least one label; "*." takes one more. */
		unsigned keep = e->any_label ? 2 : 1;
		if (j == nl || j < keep || !wire_name_equal(name + off[j], e->len, e->name, e->len))
			continue;
		size_t tl = off[j - keep + 1];
		memcpy(qw->search_name, name, tl);
		qw->search_name[tl++] = 0;
		struct zone_result r;
		zone_lookup(snap, qw->search_name, tl, &r);
		if (r.status == ZONE_FOUND) {
			*z = r.zone;
			return tl;
		}
	}
	return 0;
}

/* Fills the sections for an IN query; returns the RCODE and sets *aa. */
static unsigned answer_in(struct query_worker *qw, struct answer *a, const struct zone_snapshot *snap,
                          const struct dns_question *q, bool *aa)
{
	const uint8_t *name = q->name;
	size_t len = q->namelen;
	unsigned rcode = DNS_RCODE_NOERROR;
	/* Names answered so far: a CNAME loop ends at the first repeat instead
	 * of writing the same records again (RFC 2181 5: no duplicate RRs). */
	const uint8_t *seen[CNAME_CHAIN_MAX + 1];
	size_t seenlen[CNAME_CHAIN_MAX + 1];
	*aa = false;
	for (int hop = 0; hop <= CNAME_CHAIN_MAX; hop++) {
		struct zone_result r;
		seen[hop] = name;
		seenlen[hop] = len;
		zone_lookup(snap, name, len, &r);
		if (hop == 0 && r.zone)
			qw->zone_slot = r.zone->metrics_slot;
		if (r.status == ZONE_REFERRAL && q->qtype == DNS_TYPE_DS &&
		    wire_name_equal(r.node->name, r.node->namelen, name, len)) {
			/* DS lives on the parent side of the cut (RFC 4035 3.1.4.1). */
			r.status = ZONE_FOUND;
		}
		switch (r.status) {
		case ZONE_NOTAUTH:
			/* Not ours. The first name: forwarded if forwarding is on,
			 * else REFUSED; after a CNAME: the chain ends here for the
			 * client to follow. */
			if (hop == 0 && qw->set->nsearch) {
				/* The CNAME's TTL is its zone's negative TTL, as
				 * that of the name's absence elsewhere would be. */
				const struct zone *tz;
				size_t tl = search_path_target(qw, snap, name, len, &tz);
				if (tl) {
					struct wire_mark m = unit_begin(a);
					put_rr(a, name, len, DNS_TYPE_CNAME, tz->neg_ttl, qw->search_name,
					       (uint16_t)tl);
					if (!unit_end(a, m, SEC_ANSWER, 1))
						return rcode;
					a->search_path = true;
					if (q->qtype == DNS_TYPE_CNAME)
						return rcode;
					name = qw->search_name;
					len = tl;
					continue;
				}
			}
			if (hop == 0)
				return qw->set->forwarding ? RCODE_FORWARD : DNS_RCODE_REFUSED;
			return rcode;
		case ZONE_REFERRAL:
			if (hop == 0) {
				a->referral = true;
				answer_referral(a, r.node);
				put_additional(a, snap);
			}
			return rcode;
		case ZONE_NXDOMAIN:
			if (hop == 0)
				*aa = true;
			put_soa(a, r.zone);
			return DNS_RCODE_NXDOMAIN;
		case ZONE_FOUND:
			break;
		}
		if (hop == 0)
			*aa = true;
		const uint8_t *next;
		size_t nextlen;
		if (!answer_node(qw, a, r.zone, r.node, name, len, q->qtype, &next, &nextlen)) {
			put_soa(a, r.zone);
			return rcode;
		}
		if (!next || a->full)
			break;
		bool loop = false;
		for (int i = 0; i <= hop; i++)
			loop |= wire_name_equal(seen[i], seenlen[i], next, nextlen);
		if (loop)
			break;
		name = next;
		len = nextlen;
	}
	if (a->naddl)
		put_additional(a, snap);
	return rcode;
}

/* One CH TXT record holding one string (cut at 255 bytes). */
static void put_ch_txt(struct answer *a, const uint8_t *owner, size_t ownerlen, const char *text)
{
	size_t len = strlen(text);
	if (len > 255)
		len = 255;
	struct wire_mark m = unit_begin(a);
	wire_write_name(&a->w, owner, ownerlen, true);
	wire_write_u16(&a->w, DNS_TYPE_TXT);
	wire_write_u16(&a->w, DNS_CLASS_CH);
	wire_write_u32(&a->w, 0);
	wire_write_u16(&a->w, (uint16_t)(len + 1));
	wire_write_u8(&a->w, (uint8_t)len);
	wire_write_bytes(&a->w, text, len);
	unit_end(a, m, SEC_ANSWER, 1);
}


/* CH TXT <service>: the service, then one line per backend with its state,
 * weights and the watcher's last result. */
static void chaos_status(struct query_worker *qw, struct answer *a, const struct dns_question *q,
                         const struct zone_service *svc)
{
	char line[256];
	unsigned up = 0;
	uint64_t now = health_now_ms();
	for (unsigned i = 0; i < svc->nbackends; i++)
		up += zone_backend_up(&svc->backends[i]);
	snprintf(line, sizeof(line), "service policy=%s healthy=%u/%u ttl=%u max-answers=%u fail-open=%s",
	         cfg_policy_name(svc->policy), up, svc->nbackends, svc->ttl, svc->max_answers,
	         svc->fail_open ? "yes" : "no");
	put_ch_txt(a, q->name, q->namelen, line);
	uint64_t uptime = backend_fmt_uptime_s();
	for (unsigned i = 0; i < svc->nbackends && !a->full; i++) {
		const struct zone_backend *b = &svc->backends[i];
		struct health_state hs;
		query_status_fn status = qw->set->status;
		bool have = status && b->sid && status(qw->set->status_arg, b->sid, &hs);
		struct backend_view v;
		backend_fmt(&v, svc, b, have ? &hs : NULL, have && hs.checks, now, uptime);
		char bname[DNS_LABEL_MAX + 1];
		const char *nm = zone_backend_name(b, bname, sizeof(bname));
		snprintf(line, sizeof(line),
		         "%s %s:%u %s weight=%u effective=%u priority=%u locality=%s for=%llus checks=%llu "
		         "last=%s",
		         nm[0] ? nm : "-",
		         v.addr, v.port, v.up ? "up" : "down", v.weight, v.effective, b->priority,
		         zone_backend_locality(b) ? zone_backend_locality(b) : "-",
		         (unsigned long long)v.since_s, (unsigned long long)v.checks, v.last);
		put_ch_txt(a, q->name, q->namelen, line);
	}
}

/* CH TXT _why.<service>: how this client's answer is chosen, with a fresh
 * selection as an example (random policies draw anew each query). */
static void chaos_why(struct query_worker *qw, struct answer *a, const struct dns_question *q,
                      const struct zone_service *svc)
{
	struct balance_explain ex;
	char line[256], host[64], cl[64] = "?";
	unsigned n = balance_select(a->snap, svc, AF_UNSPEC, &qw->bal, &a->client, qw->order,
	                            ZONE_MAX_BACKENDS, &ex);
	if (a->client.family) {
		char h[ADDR_TEXT_MAX];
		addr_text(a->client.family, a->client.addr, -1, false, h, sizeof(h));
		snprintf(cl, sizeof(cl), "%s/%u", h, a->client.prefix);
	}
	snprintf(line, sizeof(line),
	         "policy=%s client=%s (%s) locality=%s healthy=%u/%u candidates=%u%s max-answers=%u",
	         cfg_policy_name(svc->policy), cl, a->client.from_ecs ? "ecs" : "source",
	         ex.locality ? ex.locality : "-", ex.healthy, svc->nbackends, ex.candidates,
	         ex.fail_open ? " fail-open" : "", svc->max_answers);
	put_ch_txt(a, q->name, q->namelen, line);
	size_t off = (size_t)snprintf(line, sizeof(line), "order=");
	for (unsigned i = 0; i < n && off < sizeof(line) - 48; i++) {
		const struct zone_backend *b = &svc->backends[qw->order[i]];
		addr_text(b->family, b->addr, -1, true, host, sizeof(host));
		off += (size_t)snprintf(line + off, sizeof(line) - off, "%s%s", i ? "," : "", host);
	}
	put_ch_txt(a, q->name, q->namelen, line);
}

/* CHAOS class: version.bind/version.server TXT, and the status (<service>)
 * and explanation (_why.<service>) of services, for meshdig and operators.
 * Status reveals backend addresses, health and check errors: only clients
 * in chaos.allow get it (others REFUSED, as for a name we do not have). */
static unsigned answer_chaos(struct query_worker *qw, struct answer *a, const struct dns_question *q,
                             const struct guard_req *gr, bool *aa)
{
	static const uint8_t vbind[] = "\7version\4bind";
	static const uint8_t vserver[] = "\7version\6server";
	*aa = false;
	bool version = wire_name_equal(q->name, q->namelen, vbind, sizeof(vbind)) ||
	               wire_name_equal(q->name, q->namelen, vserver, sizeof(vserver));
	bool why = q->namelen > 5 && q->name[0] == 4 && strncasecmp((const char *)q->name + 1, "_why", 4) == 0;
	const struct zone_service *svc = NULL;
	if (!version && !guard_chaos_allowed(gr))
		return DNS_RCODE_REFUSED;
	if (!version && a->snap) {
		struct zone_result r;
		size_t skip = why ? 5 : 0;
		zone_lookup(a->snap, q->name + skip, q->namelen - skip, &r);
		if (r.status == ZONE_FOUND && r.node->kind == ZONE_NODE_SERVICE)
			svc = zone_node_service(r.node);
	}
	if (!version && !svc)
		return DNS_RCODE_REFUSED;
	*aa = true;
	if (q->qtype != DNS_TYPE_TXT && q->qtype != DNS_TYPE_ANY)
		return DNS_RCODE_NOERROR;
	if (version)
		put_ch_txt(a, q->name, q->namelen, "meshdns " MESHDNS_VERSION);
	else if (why)
		chaos_why(qw, a, q, svc);
	else
		chaos_status(qw, a, q, svc);
	return DNS_RCODE_NOERROR;
}

/* EDNS Client Subnet (RFC 7871 6): family, source prefix, scope prefix
 * (0 in queries), and just enough address bytes, with no bits set past the
 * prefix. Returns 0, 1 if absent or unusable, -1 if malformed (FORMERR). */
static int parse_ecs(const uint8_t *req, const struct dns_query *q, struct balance_client *c)
{
	if (!q->edns.ecs_off)
		return 1;
	const uint8_t *p = req + q->edns.ecs_off;
	size_t len = q->edns.ecs_len;
	if (len < 4)
		return -1;
	unsigned fam = (unsigned)p[0] << 8 | p[1], src = p[2], scope = p[3];
	unsigned maxbits = fam == 1 ? 32 : fam == 2 ? 128 : 0;
	if (!maxbits)
		return 1; /* unknown family: ignore the option */
	if (src > maxbits || scope != 0 || len - 4 != (src + 7) / 8)
		return -1;
	if (src % 8 && (p[4 + src / 8] & (0xff >> (src % 8))))
		return -1;
	memset(c, 0, sizeof(*c));
	c->family = fam == 1 ? AF_INET : AF_INET6;
	memcpy(c->addr, p + 4, len - 4);
	c->prefix = (uint8_t)src;
	c->from_ecs = true;
	return 0;
}

int query_answer(struct query_worker *qw, const struct request *r, uint8_t *resp, size_t respcap)
{
	const struct dns_query *qp = &r->q;
	const uint8_t *req = r->msg;
	size_t reqlen = r->len;
	const struct sockaddr *peer = r->peer;
	bool tcp = r->tcp;
	if (respcap < DNS_UDP_MIN)
		return QUERY_DROP;
	const struct zone_snapshot *snap = r->snap;
	uint16_t ourmax = snap ? snap->udp_max_payload : DNS_UDP_DEFAULT;
	size_t limit = r->limit < respcap ? r->limit : respcap;

	qw->zone_slot = 0;
	struct answer a;
	memset(&a, 0, ANSWER_CLEAR);
	a.q = qp;
	a.snap = snap;
	int ecs = parse_ecs(req, qp, &a.client);
	if (ecs == -1)
		return wire_reply_short(&qp->hdr, &qp->q, DNS_RCODE_FORMERR, 0, resp, respcap);
	if (ecs == 1)
		balance_client_from_sockaddr(&a.client, peer);
	size_t ecs_len = ecs == 0 ? 4 + qp->edns.ecs_len : 0;
	/* DNS Cookies and rate limiting (guard.c): the verdict now, our
	 * COOKIE option with the OPT record, the rate limit once finished. */
	struct guard_req gr;
	enum guard_action ga = guard_request(&gr, qw->set->guard, qw->m, req, qp, peer, tcp);
	size_t ck_len = gr.cookie ? 4 + COOKIE_LEN : 0;
	/* Room for our OPT is kept back so truncation never drops it. */
	wire_writer_init(&a.w, resp, qp->edns.present ? limit - OPT_RR_LEN - ecs_len - ck_len : limit);
	struct dns_header h = { .id = qp->hdr.id, .qdcount = 1 };
	wire_write_header(&a.w, &h);
	wire_write_question(&a.w, qp->q.name, qp->q.namelen, qp->q.qtype, qp->q.qclass);
	if (a.w.err)
		return QUERY_DROP;

	unsigned rcode;
	bool aa = false;
	uint16_t qt = qp->q.qtype;
	if (qp->edns.present && qp->edns.version > 0) {
		rcode = DNS_RCODE_BADVERS;   /* RFC 6891 6.1.3 */
	} else if (ga != GUARD_ANSWER) {
		rcode = ga == GUARD_BADCOOKIE ? DNS_RCODE_BADCOOKIE : DNS_RCODE_NOERROR;
		a.tc = ga == GUARD_TRUNCATE;
	} else if (qt == DNS_TYPE_OPT || qt == DNS_TYPE_TSIG || qt == 249 /* TKEY */) {
		rcode = DNS_RCODE_FORMERR;
	} else if (qt == DNS_TYPE_MAILA || qt == DNS_TYPE_MAILB) {
		rcode = DNS_RCODE_NOTIMP;
	} else if (qp->q.qclass == DNS_CLASS_CH) {
		bool capped = !tcp && !guard_cookie_valid(&gr);
		struct wire_mark qm = wire_mark(&a.w);
		if (capped) {
			size_t reserve = limit - a.w.cap;
			size_t most = reqlen * CHAOS_UDP_FACTOR;
			size_t cap = most > reserve + a.w.pos ? most - reserve : a.w.pos;
			if (cap < a.w.cap)
				a.w.cap = cap;
		}
		rcode = answer_chaos(qw, &a, &qp->q, &gr, &aa);
		if (capped && a.tc) {
			/* All or nothing: the whole status comes over TCP. */
			wire_rollback(&a.w, qm);
			a.count[SEC_ANSWER] = 0;
		}
	} else if (qp->q.qclass != DNS_CLASS_IN && qp->q.qclass != DNS_CLASS_ANY) {
		rcode = DNS_RCODE_REFUSED;
	} else if (!snap) {
		rcode = DNS_RCODE_SERVFAIL;
	} else {
		rcode = answer_in(qw, &a, snap, &qp->q, &aa);
	}
	if (rcode == RCODE_FORWARD) {
		/* Outside our zones: the cache, else upstream. Without RD the
		 * client asked for no recursion: the cache only (RFC 1034 4.3.1). */
		enum cache_edns ek = !qp->edns.present ? CACHE_EDNS_NONE
		                     : qp->edns.do_bit ? CACHE_EDNS_DO : CACHE_EDNS_PLAIN;
		size_t n = cache_get(qw->set->cache, &qp->q, ek, qp->hdr.id, qp->hdr.flags, resp, respcap,
		                     limit);
		if (n)
			return guard_response(&gr, resp, (int)n, DNS_HEADER_LEN + qp->q.namelen + 4,
			                      GUARD_OPT_FIND, tcp);
		if (qp->hdr.flags & DNS_FLAG_RD) {
			qw->fwd.q = qp->q;
			qw->fwd.id = qp->hdr.id;
			qw->fwd.flags = qp->hdr.flags;
			qw->fwd.edns = (uint8_t)ek;
			qw->fwd.limit = (uint16_t)(limit < DNS_MSG_MAX ? limit : DNS_MSG_MAX);
			qw->fwd.cookie_ok = guard_cookie_valid(&gr);
			return QUERY_FORWARD;
		}
		rcode = DNS_RCODE_REFUSED;
	}

	/* The OPT record (RFC 6891 6.1.1): our payload size, the DO bit
	 * echoed (RFC 3225), the upper rcode bits. */
	size_t opt_at = qp->edns.present ? a.w.pos : 0;
	if (qp->edns.present) {
		a.w.cap = limit;
		a.w.err = 0;
		wire_write_u8(&a.w, 0);
		wire_write_u16(&a.w, DNS_TYPE_OPT);
		wire_write_u16(&a.w, ourmax);
		wire_write_u8(&a.w, (uint8_t)(rcode >> 4));
		wire_write_u8(&a.w, 0);
		wire_write_u16(&a.w, qp->edns.do_bit ? DNS_EDNS_DO : 0);
		wire_write_u16(&a.w, (uint16_t)(ecs_len + ck_len));
		if (ecs_len) {
			/* Echo the subnet; the scope says how far the answer depends on
			 * it (0: valid for everyone), so resolvers cache it right. */
			const uint8_t *e = req + qp->edns.ecs_off;
			wire_write_u16(&a.w, DNS_EDNS_ECS);
			wire_write_u16(&a.w, qp->edns.ecs_len);
			wire_write_bytes(&a.w, e, 3);
			wire_write_u8(&a.w, a.ecs_used ? e[2] : 0);
			wire_write_bytes(&a.w, e + 4, qp->edns.ecs_len - 4u);
		}
		if (gr.cookie) {
			wire_write_u16(&a.w, DNS_EDNS_COOKIE);
			wire_write_u16(&a.w, COOKIE_LEN);
			wire_write_bytes(&a.w, gr.opt, COOKIE_LEN);
		}
		if (a.w.err)
			return QUERY_DROP;
		a.count[SEC_ADDITIONAL]++;
	} else if (rcode > 15) {
		rcode = DNS_RCODE_FORMERR;
	}
	uint16_t flags = (uint16_t)(DNS_FLAG_QR | (qp->hdr.flags & (DNS_FLAG_RD | DNS_FLAG_CD)) |
	                            (rcode & 0xfu));
	if (aa)
		flags |= DNS_FLAG_AA;
	if (qw->set->forwarding)
		flags |= DNS_FLAG_RA;
	if (a.tc)
		flags |= DNS_FLAG_TC;
	wire_patch_header(&a.w, flags, a.count[SEC_ANSWER], a.count[SEC_AUTHORITY],
	                  a.count[SEC_ADDITIONAL]);
	if (a.subset)
		METRICS_COUNT(qw->m, subset);
	if (a.search_path)
		METRICS_COUNT(qw->m, search_path);
	return guard_response(&gr, resp, (int)a.w.pos, DNS_HEADER_LEN + qp->q.namelen + 4, opt_at, tcp);
}

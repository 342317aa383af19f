/* test_zone.c -- zone.c on its own: snapshots built from YAML configs and
 * inspected through zone_lookup/zone_find (names, empty non-terminals, zone
 * selection, delegations and glue), their RRsets, SOA and serials, service
 * nodes and backends with a health function, build errors, and publishing
 * with liburcu-qsbr while a reader thread looks names up. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <urcu-qsbr.h>

#include "config.h"
#include "tap.h"
#include "dns/wire.h"
#include "zone.h"

/* ---- helpers -------------------------------------------------------------- */

static struct config *load(const char *yaml)
{
	struct config *cfg = NULL;
	struct config_error err;

	if (config_load_string(yaml, strlen(yaml), "t.yaml", &cfg, &err) == -1) {
		diag("unexpected config error: %s", err.msg);
		return NULL;
	}
	return cfg;
}

static struct bstate *test_states;

static struct zone_snapshot *build(const struct config *cfg, const struct zone_snapshot *prev,
                                   zone_sid_fn health, void *harg)
{
	struct zone_snapshot *snap = NULL;
	char err[256] = "";

	if (!cfg)
		return NULL;
	if (zone_build(cfg, prev, NULL, health ? test_states : NULL, health, harg, &snap, err,
	               sizeof(err)) == -1) {
		diag("unexpected build error: %s", err);
		return NULL;
	}
	return snap;
}

/* Text to wire (absolute), keeping the case as written. */
static size_t wname(const char *text, uint8_t out[DNS_NAME_MAX])
{
	size_t len = 0;
	if (wire_name_from_text(text, out, &len) != 0) {
		diag("bad test name '%s'", text);
		return 0;
	}
	return len;
}

static void look(const struct zone_snapshot *snap, const char *text, struct zone_result *res)
{
	uint8_t n[DNS_NAME_MAX];
	size_t len = wname(text, n);
	zone_lookup(snap, n, len, res);
}

/* The node of text if zone_lookup says FOUND, else NULL. A target's
 * node lives in its result: the last few results are kept (per thread). */
static const struct zone_node *found(const struct zone_snapshot *snap, const char *text)
{
	static _Thread_local struct zone_result keep[8];
	static _Thread_local unsigned next;
	struct zone_result *r = &keep[next++ % 8];
	look(snap, text, r);
	return r->status == ZONE_FOUND ? r->node : NULL;
}

static const struct zone_node *find(const struct zone *z, const char *text)
{
	uint8_t n[DNS_NAME_MAX];
	size_t len = wname(text, n);
	return zone_find(z, n, len);
}

static enum zone_status status_of(const struct zone_snapshot *snap, const char *text)
{
	struct zone_result r;
	look(snap, text, &r);
	return r.status;
}

/* n is one of z's own nodes (not a name inside a service's block). */
static bool in_zone(const struct zone *z, const struct zone_node *n)
{
	return z && n >= z->nodes && n < z->nodes + z->nnodes;
}

/* The zone of snap whose origin is text, or NULL. */
static const struct zone *zone_named(const struct zone_snapshot *snap, const char *text)
{
	uint8_t n[DNS_NAME_MAX];
	size_t len = wname(text, n);
	for (unsigned i = 0; snap && i < snap->nzones; i++)
		if (wire_name_equal(snap->zones[i].origin, snap->zones[i].originlen, n, len))
			return &snap->zones[i];
	return NULL;
}

/* Length of the uncompressed wire name at p (at most max bytes), 0 if bad. */
static size_t name_len(const uint8_t *p, size_t max)
{
	size_t pos = 0;
	while (pos < max) {
		if (p[pos] == 0)
			return pos + 1;
		if (p[pos] > DNS_LABEL_MAX)
			return 0;
		pos += 1 + (size_t)p[pos];
	}
	return 0;
}

/* A wire name as text, in one of a few rotating static buffers. */
static const char *ntext(const uint8_t *name, size_t len)
{
	static char bufs[4][1024];
	static unsigned k;
	char *b = bufs[k++ % 4];
	if (!name || wire_name_to_text(name, len, b, 1024) < 0)
		snprintf(b, 1024, "(bad name)");
	return b;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A backend's target name has no RRset of its own: its one address
 * record, made from the backend as an answer makes it (per thread: the
 * reader test calls this beside the main thread). */
static _Thread_local struct {
	struct zone_rrset rs;
	const struct zone_rdata *rdp;
	_Alignas(8) uint8_t rd[sizeof(struct zone_rdata) + 16];
} tgt;

static const struct zone_rrset *rrset(const struct zone_node *n, uint16_t type)
{
	if (n && n->kind == ZONE_NODE_TARGET) {
		const struct zone_service *svc = zone_node_service(n);
		const struct zone_backend *b = &svc->backends[n->port_idx];
		uint16_t t = b->family == AF_INET ? DNS_TYPE_A : DNS_TYPE_AAAA;
		if (type != t)
			return NULL;
		struct zone_rdata *rd = (struct zone_rdata *)(void *)tgt.rd;
		rd->len = b->family == AF_INET ? 4 : 16;
		memcpy(rd->data, b->addr, rd->len);
		tgt.rdp = rd;
		tgt.rs = (struct zone_rrset){ .type = t, .count = 1, .ttl = svc->ttl, .rd = &tgt.rdp };
		return &tgt.rs;
	}
	return n ? zone_node_rrset(n, type) : NULL;
}

static unsigned rr_count(const struct zone_node *n, uint16_t type)
{
	const struct zone_rrset *rs = rrset(n, type);
	return rs ? rs->count : 0;
}

static long rr_ttl(const struct zone_node *n, uint16_t type)
{
	const struct zone_rrset *rs = rrset(n, type);
	return rs ? (long)rs->ttl : -1;
}

/* True if the RRset of type at n has a record whose rdata is exactly
 * (data, len). */
static bool has_rdata(const struct zone_node *n, uint16_t type, const void *data, size_t len)
{
	const struct zone_rrset *rs = rrset(n, type);
	for (unsigned i = 0; rs && i < rs->count; i++)
		if (rs->rd[i]->len == len && memcmp(rs->rd[i]->data, data, len) == 0)
			return true;
	return false;
}

#define HAS_RD(n, type, lit) has_rdata((n), (type), (lit), sizeof(lit) - 1)

static bool has_a(const struct zone_node *n, const char *addr)
{
	uint8_t a[4];
	return inet_pton(AF_INET, addr, a) == 1 && has_rdata(n, DNS_TYPE_A, a, 4);
}

static bool has_aaaa(const struct zone_node *n, const char *addr)
{
	uint8_t a[16];
	return inet_pton(AF_INET6, addr, a) == 1 && has_rdata(n, DNS_TYPE_AAAA, a, 16);
}

/* A record whose rdata is a single domain name (NS, CNAME, PTR) equal to text. */
static bool has_name_rdata(const struct zone_node *n, uint16_t type, const char *text)
{
	uint8_t w[DNS_NAME_MAX];
	size_t len = wname(text, w);
	const struct zone_rrset *rs = rrset(n, type);
	for (unsigned i = 0; rs && i < rs->count; i++)
		if (wire_name_equal(rs->rd[i]->data, rs->rd[i]->len, w, len))
			return true;
	return false;
}

/* RRsets of a node: SOA first, then strictly ascending types (so each type
 * is one RRset), each non-empty and with a TTL. */
static bool rrsets_well_formed(const struct zone_node *n)
{
	for (unsigned i = 0; i < n->nrrsets; i++) {
		const struct zone_rrset *rs = &n->rrsets[i];
		if (rs->count == 0 || !rs->rd)
			return false;
		if (rs->type == DNS_TYPE_SOA && i != 0)
			return false;
		if (i > 0 && n->rrsets[i - 1].type != DNS_TYPE_SOA && n->rrsets[i - 1].type >= rs->type)
			return false;
	}
	return true;
}

static bool addr_is(const struct zone_backend *b, int family, const char *text)
{
	uint8_t a[16] = { 0 };
	if (inet_pton(family, text, a) != 1)
		return false;
	return b->family == family && memcmp(b->addr, a, family == AF_INET ? 4 : 16) == 0;
}

/* ---- static records, names, ENTs, delegations ----------------------------- */

static const char static_yaml[] =
	"zones:\n"
	"  - name: MeSh\n"
	"    ttl: 60\n"
	"    ns: [ns1, ns2.other.example.]\n"
	"    soa: {rname: ops@example.org, serial: 42, refresh: 2h, retry: 5m, expire: 2d,\n"
	"          minimum: 45, ttl: 120}\n"
	"    records:\n"
	"      - {name: ns1, type: A, data: 10.0.0.53}\n"
	"      - {name: www, type: A, data: 10.0.0.1}\n"
	"      - {name: www, type: AAAA, data: 'fd00::1'}\n"
	"      - {name: WWW, type: A, data: 10.0.0.2}\n"
	"      - {name: www, type: TXT, data: hello, ttl: 15}\n"
	"      - {name: alias, type: CNAME, data: www}\n"
	"      - {name: '@', type: MX, data: '10 mail'}\n"
	"      - {name: '@', type: MX, data: '20 mail.other.example.'}\n"
	"      - {name: '@', type: TXT, data: 'v=spf1 -all'}\n"
	"      - {name: mail, type: A, data: 10.0.0.25}\n"
	"      - {name: _sip._udp, type: SRV, data: '0 5 5060 sip', ttl: 90}\n"
	"      - {name: sip, type: A, data: 10.0.0.60}\n"
	"      - {name: 1.0.0.10.in-addr, type: PTR, data: www}\n"
	"      - {name: a.b.c, type: TXT, data: deep}\n"
	"      - {name: sub, type: NS, data: ns.sub}\n"
	"      - {name: sub, type: NS, data: ns.other.example.}\n"
	"      - {name: ns.sub, type: A, data: 10.0.9.53}\n"
	"      - {name: ns.sub, type: AAAA, data: 'fd00::53'}\n"
	"      - {name: deeper.sub, type: NS, data: ns.deeper.sub}\n"
	"      - {name: ns.deeper.sub, type: A, data: 10.0.9.54}\n"
	"      - {name: far.away.lab, type: NS, data: ns1}\n";

static void test_static(void)
{
	struct config *cfg = load(static_yaml);
	struct zone_snapshot *snap = build(cfg, NULL, NULL, NULL);
	if (!ok(snap != NULL, "static zone builds"))
		goto out;
	is_int(snap->nzones, 1, "one zone");
	is_int(snap->generation, 1, "first snapshot: generation 1");
	ok(snap->bytes > 0, "arena bytes reported");
	is_int(snap->nservices, 0, "no services");
	const struct zone *z = &snap->zones[0];
	is_str(ntext(z->origin, z->originlen), "mesh.", "origin stored lowercase");

	/* Apex: SOA and NS with their settings. */
	const struct zone_node *apex = found(snap, "mesh");
	ok(apex && apex == z->apex, "apex found and is z->apex");
	ok(found(snap, "MESH.") == z->apex, "apex found in upper case");
	ok(apex && !apex->delegation && !apex->cut, "apex is not a cut");
	ok(apex && apex == &z->nodes[0], "the apex is the zone's first node");
	ok(z->soa && z->soa == rrset(apex, DNS_TYPE_SOA), "z->soa is the apex SOA RRset");
	ok(apex && apex->nrrsets > 0 && apex->rrsets[0].type == DNS_TYPE_SOA, "SOA is the apex's first RRset");
	is_int(rr_count(apex, DNS_TYPE_SOA), 1, "one SOA");
	is_int(rr_ttl(apex, DNS_TYPE_SOA), 120, "SOA TTL from soa.ttl");
	is_int(z->neg_ttl, 45, "neg_ttl = min(SOA TTL 120, minimum 45)");
	is_int(z->serial, 42, "explicit serial");
	if (z->soa && z->soa->count == 1) {
		const struct zone_rdata *rd = z->soa->rd[0];
		size_t ml = name_len(rd->data, rd->len);
		size_t rl = ml ? name_len(rd->data + ml, rd->len - ml) : 0;
		is_int(rd->len, ml + rl + 20, "SOA rdata: two names and five numbers");
		is_str(ntext(rd->data, ml), "ns1.mesh.", "mname defaults to the first NS");
		is_str(ntext(rd->data + ml, rl), "ops.example.org.", "rname from the mail address");
		if (rd->len == ml + rl + 20) {
			const uint8_t *p = rd->data + ml + rl;
			is_int(get32(p), 42, "SOA serial");
			is_int(get32(p + 4), 7200, "SOA refresh 2h");
			is_int(get32(p + 8), 300, "SOA retry 5m");
			is_int(get32(p + 12), 172800, "SOA expire 2d");
			is_int(get32(p + 16), 45, "SOA minimum");
		}
	} else {
		ok(0, "SOA rdata present");
	}
	is_int(rr_count(apex, DNS_TYPE_NS), 2, "two apex NS");
	is_int(rr_ttl(apex, DNS_TYPE_NS), 60, "apex NS TTL is the zone's");
	ok(has_name_rdata(apex, DNS_TYPE_NS, "ns1.mesh.") &&
	   has_name_rdata(apex, DNS_TYPE_NS, "ns2.other.example."), "apex NS names (relative and absolute)");
	is_int(rr_count(apex, DNS_TYPE_MX), 2, "two MX at the apex, one RRset");
	ok(HAS_RD(apex, DNS_TYPE_MX, "\x00\x0a\x04mail\x04mesh\x00") &&
	   HAS_RD(apex, DNS_TYPE_MX, "\x00\x14\x04mail\x05other\x07" "example\x00"),
	   "MX rdata: preference and exchange");
	is_int(rr_count(apex, DNS_TYPE_TXT), 1, "apex TXT beside SOA, NS, MX");
	ok(apex && rrsets_well_formed(apex), "apex RRsets: SOA first, then one per type, ascending");
	is_int(apex ? apex->nrrsets : 0, 4, "apex has SOA, NS, MX, TXT");

	/* A name with several types; records given in two cases are one RRset. */
	const struct zone_node *www = found(snap, "www.mesh");
	ok(www != NULL, "www found");
	ok(www && www->kind == ZONE_NODE_PLAIN && !zone_node_service(www), "www is a plain node");
	is_str(www ? ntext(www->name, www->namelen) : NULL, "www.mesh.", "node name lowercase");
	is_int(rr_count(www, DNS_TYPE_A), 2, "www: two A records (www and WWW, an AAAA between) in one RRset");
	ok(has_a(www, "10.0.0.1") && has_a(www, "10.0.0.2"), "www: A rdata");
	is_int(rr_ttl(www, DNS_TYPE_A), 60, "A TTL defaults to the zone's");
	is_int(rr_count(www, DNS_TYPE_AAAA), 1, "www: one AAAA");
	ok(has_aaaa(www, "fd00::1"), "www: AAAA rdata");
	is_int(rr_count(www, DNS_TYPE_TXT), 1, "www: one TXT");
	is_int(rr_ttl(www, DNS_TYPE_TXT), 15, "TXT keeps its own TTL");
	ok(HAS_RD(www, DNS_TYPE_TXT, "\x05hello"), "TXT rdata is one character-string");
	ok(rrset(www, DNS_TYPE_MX) == NULL && rrset(www, DNS_TYPE_CNAME) == NULL,
	   "zone_node_rrset: NULL for absent types (NODATA)");
	is_int(www ? www->nrrsets : 0, 3, "www: three RRsets");
	ok(www && rrsets_well_formed(www), "www RRsets grouped by type, ascending");

	ok(found(snap, "WwW.mEsH") == www, "mixed-case lookup finds the same node");
	ok(find(z, "WWW.MESH.") == www, "zone_find is case-insensitive too");
	ok(find(z, "www.mesh") == www, "zone_find exact");

	const struct zone_node *alias = found(snap, "alias.mesh");
	is_int(rr_count(alias, DNS_TYPE_CNAME), 1, "CNAME record");
	ok(has_name_rdata(alias, DNS_TYPE_CNAME, "www.mesh."), "CNAME target completed by the zone");
	is_int(alias ? alias->nrrsets : 0, 1, "CNAME alone at its name");

	const struct zone_node *srv = found(snap, "_sip._udp.mesh");
	is_int(rr_count(srv, DNS_TYPE_SRV), 1, "static SRV record");
	is_int(rr_ttl(srv, DNS_TYPE_SRV), 90, "SRV TTL");
	ok(HAS_RD(srv, DNS_TYPE_SRV, "\x00\x00\x00\x05\x13\xc4\x03sip\x04mesh\x00"),
	   "SRV rdata: priority, weight, port, target");
	ok(srv && srv->kind == ZONE_NODE_PLAIN, "a static SRV name is a plain node");

	const struct zone_node *ptr = found(snap, "1.0.0.10.in-addr.mesh");
	is_int(rr_count(ptr, DNS_TYPE_PTR), 1, "PTR record");
	ok(has_name_rdata(ptr, DNS_TYPE_PTR, "www.mesh."), "PTR rdata");

	/* Empty non-terminals: every name between a record and the apex exists. */
	const struct zone_node *abc = found(snap, "a.b.c.mesh");
	is_int(rr_count(abc, DNS_TYPE_TXT), 1, "a.b.c: the record");
	const char *ents[] = { "b.c.mesh", "c.mesh", "_udp.mesh", "0.0.10.in-addr.mesh",
	                       "0.10.in-addr.mesh", "10.in-addr.mesh", "in-addr.mesh",
	                       "B.C.MESH" };
	for (size_t i = 0; i < sizeof(ents) / sizeof(ents[0]); i++) {
		const struct zone_node *e = found(snap, ents[i]);
		ok(e && e->nrrsets == 0 && e->kind == ZONE_NODE_PLAIN,
		   "%s is an empty non-terminal (FOUND, no RRsets)", ents[i]);
	}
	ok(found(snap, "b.c.mesh") == found(snap, "B.c.MESH"), "ENT lookups are case-insensitive");
	const char *nx[] = { "nothere.mesh", "x.a.b.c.mesh", "d.c.mesh", "b.mesh", "a.mesh",
	                     "_tcp.mesh", "c.b.a.mesh", "ww.mesh", "wwww.mesh", "2.0.0.10.in-addr.mesh" };
	for (size_t i = 0; i < sizeof(nx) / sizeof(nx[0]); i++) {
		struct zone_result r;
		look(snap, nx[i], &r);
		ok(r.status == ZONE_NXDOMAIN && r.zone == z && r.node == NULL,
		   "%s: NXDOMAIN in the zone, no node", nx[i]);
	}
	ok(find(z, "nothere.mesh") == NULL, "zone_find: NULL for a missing name");

	/* Outside every zone. */
	const char *outside[] = { "example.org", "xmesh", "mesh.example", "esh", "." };
	for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
		struct zone_result r;
		look(snap, outside[i], &r);
		ok(r.status == ZONE_NOTAUTH && r.zone == NULL && r.node == NULL, "%s: NOTAUTH",
		   outside[i]);
	}
	{
		struct zone_result r = { .status = ZONE_FOUND };
		uint8_t n[DNS_NAME_MAX];
		zone_lookup(NULL, n, wname("www.mesh", n), &r);
		ok(r.status == ZONE_NOTAUTH && !r.zone && !r.node, "no snapshot: NOTAUTH");
	}

	/* Delegations: sub (with glue) and, below it, deeper.sub. */
	ok(z->has_cuts, "zone has cuts");
	const struct zone_node *sub = find(z, "sub.mesh");
	ok(sub && sub->delegation, "sub.mesh is a delegation");
	ok(sub && sub->cut && &z->nodes[sub->cut - 1] == sub, "a cut's own cut is itself");
	is_int(rr_count(sub, DNS_TYPE_NS), 2, "delegation NS RRset");
	ok(has_name_rdata(sub, DNS_TYPE_NS, "ns.sub.mesh.") &&
	   has_name_rdata(sub, DNS_TYPE_NS, "ns.other.example."), "delegation NS names");
	struct zone_result r;
	look(snap, "sub.mesh", &r);
	ok(r.status == ZONE_REFERRAL && r.node == sub && r.zone == z, "lookup at the cut: REFERRAL to it");
	look(snap, "NS.Sub.Mesh", &r);
	ok(r.status == ZONE_REFERRAL && r.node == sub, "lookup of the glue: REFERRAL to the cut");
	look(snap, "nothere.sub.mesh", &r);
	ok(r.status == ZONE_REFERRAL && r.node == sub, "missing name below the cut: REFERRAL");
	look(snap, "a.b.c.nothere.sub.mesh", &r);
	ok(r.status == ZONE_REFERRAL && r.node == sub, "deep missing name below the cut: REFERRAL");
	const struct zone_node *glue = find(z, "ns.sub.mesh");
	ok(glue && glue->cut && &z->nodes[glue->cut - 1] == sub && !glue->delegation,
	   "zone_find returns the glue, under the cut");
	ok(has_a(glue, "10.0.9.53") && has_aaaa(glue, "fd00::53"), "glue A and AAAA");
	ok(find(z, "NS.SUB.MESH") == glue, "glue found in any case");
	const struct zone_node *deeper = find(z, "deeper.sub.mesh");
	ok(deeper && deeper->cut && &z->nodes[deeper->cut - 1] == sub,
	   "a cut below a cut: the highest one rules");
	look(snap, "ns.deeper.sub.mesh", &r);
	ok(r.status == ZONE_REFERRAL && r.node == sub, "name below both cuts: REFERRAL to the upper one");
	const struct zone_node *lab = find(z, "far.away.lab.mesh");
	ok(lab && lab->delegation && lab->cut && &z->nodes[lab->cut - 1] == lab,
	   "delegation two labels below ENTs");
	const struct zone_node *away = found(snap, "away.lab.mesh");
	ok(away && !away->cut && !away->delegation && away->nrrsets == 0,
	   "ENT above a cut is not under it");
	look(snap, "x.far.away.lab.mesh", &r);
	ok(r.status == ZONE_REFERRAL && r.node == lab, "below the far cut: REFERRAL");
	look(snap, "x.away.lab.mesh", &r);
	ok(r.status == ZONE_NXDOMAIN && r.node == NULL, "beside the far cut: NXDOMAIN");
	ok(www && !www->cut && !www->delegation, "ordinary nodes are not under a cut");
	ok(find(z, "ns1.mesh") && !find(z, "ns1.mesh")->cut, "apex NS host is not glue");
out:
	zone_free(snap);
	config_free(cfg);
}

/* SOA defaults, and the negative TTL when the SOA TTL is the smaller. */
static void test_soa_defaults(void)
{
	struct config *cfg = load("zones:\n"
	                          "  - name: d.test\n"
	                          "  - name: e.test\n"
	                          "    ttl: 20\n"
	                          "    soa: {minimum: 1h}\n"
	                          "  - name: f.test\n"
	                          "    ttl: 60\n"
	                          "    soa: {ttl: 0, minimum: 30}\n");
	struct zone_snapshot *snap = build(cfg, NULL, NULL, NULL);
	if (!ok(snap != NULL, "zones with SOA defaults build"))
		goto out;
	const struct zone *z = zone_named(snap, "d.test");
	const struct zone_node *apex = z ? z->apex : NULL;
	if (!ok(apex && z->soa && z->soa->count == 1, "d.test has a SOA"))
		goto out;
	const struct zone_rdata *rd = z->soa->rd[0];
	size_t ml = name_len(rd->data, rd->len);
	size_t rl = ml ? name_len(rd->data + ml, rd->len - ml) : 0;
	is_str(ntext(rd->data, ml), "ns.d.test.", "default mname: ns.<zone> (the default NS)");
	is_str(ntext(rd->data + ml, rl), "hostmaster.d.test.", "default rname: hostmaster.<zone>");
	if (ok(rd->len == ml + rl + 20, "SOA rdata length")) {
		const uint8_t *p = rd->data + ml + rl;
		is_int(get32(p), z->serial, "SOA rdata serial is z->serial");
		is_int(get32(p + 4), 3600, "default refresh 1h");
		is_int(get32(p + 8), 600, "default retry 10m");
		is_int(get32(p + 12), 86400, "default expire 1d");
		is_int(get32(p + 16), 30, "default minimum 30");
	}
	is_int(rr_ttl(apex, DNS_TYPE_SOA), 30, "default SOA TTL: the zone's default 30");
	is_int(rr_count(apex, DNS_TYPE_NS), 1, "default NS: one");
	ok(has_name_rdata(apex, DNS_TYPE_NS, "ns.d.test."), "default NS: ns.<zone>");
	is_int(z->neg_ttl, 30, "neg_ttl with defaults: 30");
	ok(!z->has_cuts, "no delegations: has_cuts false");
	ok(snap->udp_max_payload == 1232, "default udp_max_payload 1232");

	const struct zone *e = zone_named(snap, "e.test");
	ok(e && e->soa && e->soa->ttl == 20, "SOA TTL follows the zone ttl");
	is_int(e ? e->neg_ttl : 0, 20, "neg_ttl = min(SOA TTL 20, minimum 3600) = 20");

	/* An explicit SOA TTL of 0 (no caching of the SOA, nor of negative
	 * answers) is a valid setting and must not fall back to the zone ttl. */
	const struct zone *f = zone_named(snap, "f.test");
	ok(f && f->soa, "f.test has a SOA");
	is_int(f && f->soa ? f->soa->ttl : 99, 0, "explicit soa ttl 0 is kept");
	is_int(f ? f->neg_ttl : 99, 0, "neg_ttl = min(0, 30) = 0");
out:
	zone_free(snap);
	config_free(cfg);
}

/* ---- several zones, nested ------------------------------------------------- */

static void test_multi_zone(void)
{
	/* The most specific zone comes first and the least specific in the
	 * middle, so neither "first match" nor "last match" passes. */
	struct config *cfg = load("zones:\n"
	                          "  - name: deep.a.sub.mesh\n"
	                          "    records: [{name: www, type: A, data: 10.3.3.3}]\n"
	                          "  - name: mesh\n"
	                          "    records:\n"
	                          "      - {name: www, type: A, data: 10.1.1.1}\n"
	                          "      - {name: x.sub, type: A, data: 10.1.1.2}\n"
	                          "  - name: sub.mesh\n"
	                          "    records: [{name: www, type: A, data: 10.2.2.2}]\n"
	                          "  - name: other.test\n"
	                          "    records: [{name: www, type: A, data: 10.4.4.4}]\n");
	struct zone_snapshot *snap = build(cfg, NULL, NULL, NULL);
	if (!ok(snap != NULL, "four zones build"))
		goto out;
	is_int(snap->nzones, 4, "four zones");
	const struct zone *zdeep = zone_named(snap, "deep.a.sub.mesh");
	const struct zone *zmesh = zone_named(snap, "mesh");
	const struct zone *zsub = zone_named(snap, "sub.mesh");
	const struct zone *zother = zone_named(snap, "other.test");
	ok(zdeep && zmesh && zsub && zother, "each zone present");
	struct {
		const char *name;
		const struct zone *zone;
		enum zone_status st;
		const char *a;
	} cases[] = {
		{ "www.mesh", zmesh, ZONE_FOUND, "10.1.1.1" },
		{ "mesh", zmesh, ZONE_FOUND, NULL },
		{ "www.sub.mesh", zsub, ZONE_FOUND, "10.2.2.2" },
		{ "WWW.SUB.MESH", zsub, ZONE_FOUND, "10.2.2.2" },
		{ "sub.mesh", zsub, ZONE_FOUND, NULL },
		/* x.sub.mesh is in the mesh zone's data, but sub.mesh is ours and
		 * closer: it answers, and has no such name. */
		{ "x.sub.mesh", zsub, ZONE_NXDOMAIN, NULL },
		{ "www.deep.a.sub.mesh", zdeep, ZONE_FOUND, "10.3.3.3" },
		{ "Www.Deep.A.Sub.Mesh", zdeep, ZONE_FOUND, "10.3.3.3" },
		{ "q.deep.a.sub.mesh", zdeep, ZONE_NXDOMAIN, NULL },
		{ "deep.a.sub.mesh", zdeep, ZONE_FOUND, NULL },
		{ "www.other.test", zother, ZONE_FOUND, "10.4.4.4" },
		{ "nothere.other.test", zother, ZONE_NXDOMAIN, NULL },
		{ "test", NULL, ZONE_NOTAUTH, NULL },
		{ "www.test", NULL, ZONE_NOTAUTH, NULL },
		{ "submesh", NULL, ZONE_NOTAUTH, NULL },
		{ "mesh.other", NULL, ZONE_NOTAUTH, NULL },
		/* sub.mesh's bytes end these names, but not from a label's
		 * start: the mesh zone's. */
		{ "xsub.mesh", zmesh, ZONE_NXDOMAIN, NULL },
		{ "x\\003sub.mesh", zmesh, ZONE_NXDOMAIN, NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct zone_result r;
		look(snap, cases[i].name, &r);
		bool good = r.status == cases[i].st && r.zone == cases[i].zone;
		if (good && cases[i].st == ZONE_FOUND)
			good = r.node && in_zone(cases[i].zone, r.node) &&
			       (cases[i].a ? has_a(r.node, cases[i].a) : r.node == cases[i].zone->apex);
		ok(good, "%s: right zone and status", cases[i].name);
	}
	/* The mesh zone still holds its own data below sub (zone_find). */
	ok(zmesh && has_a(find(zmesh, "x.sub.mesh"), "10.1.1.2"), "parent zone keeps x.sub (zone_find)");
	ok(zmesh && find(zmesh, "sub.mesh") && find(zmesh, "sub.mesh")->nrrsets == 0,
	   "... with sub.mesh as an ENT in the parent");
	ok(zsub && find(zsub, "x.sub.mesh") == NULL, "... but not in the child");
	ok(zsub && zsub->apex && zsub->apex->nrrsets >= 2 && zsub->soa, "child zone has its own SOA and NS");
	ok(zmesh && zsub && zmesh->soa != zsub->soa, "SOAs are per zone");
out:
	zone_free(snap);
	config_free(cfg);
}

/* ---- services -------------------------------------------------------------- */

static const char svc_yaml[] =
	"zones:\n"
	"  - name: mesh\n"
	"    ttl: 30\n"
	"    records:\n"
	"      - {name: x.web, type: TXT, data: below-the-service}\n"
	"    services:\n"
	"      - name: web\n"
	"        ttl: 10\n"
	"        max-answers: 2\n"
	"        fail-open: false\n"
	"        slow-start: 30s\n"
	"        policy: failover\n"
	"        ports: {http: 8080, dns: {port: 53, proto: udp}}\n"
	"        backends:\n"
	"          - 10.0.0.1\n"
	"          - {address: 10.0.0.2, weight: 300, priority: 2, name: b2, port: 9090}\n"
	"          - {address: 'fd00::3', weight: 7, locality: zone-a}\n"
	"          - {address: 10.0.0.1, port: 8081}\n"
	"      - name: api.V1\n"
	"        policy: round-robin\n"
	"        ports: {grpc: 9000}\n"
	"        backends:\n"
	"          - {address: 10.1.0.1, weight: 1, name: one}\n"
	"          - {address: 10.1.0.2, weight: 2, name: Two}\n"
	"          - {address: 10.1.0.3, weight: 3, name: three}\n"
	"          - {address: 'fd00::1:4', weight: 5, name: four}\n"
	"      - name: empty\n"
	"        ports: {http: 80}\n"
	"  - name: other\n"
	"    services:\n"
	"      - name: web\n"
	"        ports: {http: 80}\n"
	"        backends: [10.9.0.1]\n";

/* Counts of each backend index in a round-robin schedule. */
static void sched_counts(const struct zone_service *s, int which, unsigned *counts, unsigned n)
{
	memset(counts, 0, n * sizeof(*counts));
	for (unsigned k = 0; s->rr_sched[which] && k < s->rr_len[which]; k++)
		if (s->rr_sched[which][k] < n)
			counts[s->rr_sched[which][k]]++;
}

static void test_services(void)
{
	struct config *cfg = load(svc_yaml);
	struct zone_snapshot *snap = build(cfg, NULL, NULL, NULL);
	if (!ok(snap != NULL, "services build"))
		goto out;
	const struct zone *z = zone_named(snap, "mesh");
	is_int(snap->nservices, 4, "four services in the snapshot");

	const struct zone_node *n = found(snap, "web.mesh");
	ok(n && n->kind == ZONE_NODE_SERVICE && zone_node_service(n), "web.mesh is a service node");
	ok(found(snap, "WEB.Mesh") == n, "service found in any case");
	const struct zone_service *s = n ? zone_node_service(n) : NULL;
	if (!s)
		goto out;
	is_str(ntext(s->owner, s->ownerlen), "web.mesh.", "service owner");
	is_int(s->ttl, 10, "service ttl");
	is_int(s->policy, CFG_POLICY_FAILOVER, "policy");
	is_int(s->max_answers, 2, "max_answers");
	ok(!s->fail_open, "fail_open false");
	is_int(s->slow_start_ms, 30000, "slow_start_ms");
	is_int(n->nrrsets, 0, "a service node has no static RRsets (A/AAAA made per query)");
	is_int(s->nports, 2, "two ports");
	if (s->nports == 2) {
		is_str(s->ports[0].name, "http", "port 0 name");
		is_int(s->ports[0].port, 8080, "port 0 number");
		is_int(s->ports[0].proto, IPPROTO_TCP, "port 0 tcp (default)");
		is_str(s->ports[1].name, "dns", "port 1 name");
		is_int(s->ports[1].port, 53, "port 1 number");
		is_int(s->ports[1].proto, IPPROTO_UDP, "port 1 udp");
	}
	is_int(s->nbackends, 4, "four backends");
	is_int(s->n4, 3, "three IPv4 backends");
	is_int(s->n6, 1, "one IPv6 backend");
	bool all_up = true;
	for (unsigned i = 0; i < s->nbackends; i++)
		all_up &= zone_backend_up(&s->backends[i]) && s->backends[i].sid == 0;
	ok(all_up, "no state table: every backend up, id 0");
	ok(!s->rr_sched[0] && !s->rr_sched[1] && !s->rr_sched[2], "no round-robin schedule for failover");
	if (s->nbackends == 4) {
		const struct zone_backend *b = s->backends;
		ok(addr_is(&b[0], AF_INET, "10.0.0.1"), "backend 0 address");
		is_int(b[0].port, 0, "backend 0: the service's ports");
		is_int(b[0].weight, 100, "default weight 100");
		is_int(b[0].priority, 0, "default priority 0");
		ok(b[0].state == &bstate_always_up, "up, since 0 without health (the always-up word)");
		char nb[DNS_LABEL_MAX + 1];
		is_str(zone_backend_name(&b[0], nb, sizeof(nb)), "10-0-0-1",
		       "default name from the address (the target's first label)");
		ok(zone_backend_info(&b[0]) == NULL, "nothing kept apart for a plain backend");
		is_str(ntext(zone_backend_target(&b[0]), b[0].targetlen), "10-0-0-1.web.mesh.", "target <name>.<service>");
		ok(zone_backend_locality(&b[0]) == NULL && zone_backend_src_key(&b[0]) == NULL,
		   "no locality, no etcd key");
		ok(addr_is(&b[1], AF_INET, "10.0.0.2"), "backend 1 address");
		is_int(b[1].port, 9090, "backend 1 port");
		is_int(b[1].weight, 300, "backend 1 weight");
		is_int(b[1].priority, 2, "backend 1 priority");
		is_str(ntext(zone_backend_target(&b[1]), b[1].targetlen), "b2.web.mesh.", "named target");
		ok(addr_is(&b[2], AF_INET6, "fd00::3"), "backend 2 is IPv6");
		is_int(b[2].weight, 7, "backend 2 weight");
		is_str(zone_backend_locality(&b[2]), "zone-a", "backend 2 locality");
		is_str(ntext(zone_backend_target(&b[2]), b[2].targetlen), "fd00--3.web.mesh.", "IPv6 default name");
		is_int(b[3].port, 8081, "backend 3 port");
		ok(b[3].targetlen == b[0].targetlen && memcmp(zone_backend_target(&b[3]), zone_backend_target(&b[0]), b[0].targetlen) == 0,
		   "one host on two ports: one target name");
		ok(zone_backend_hkey(&b[0]) != zone_backend_hkey(&b[1]) && zone_backend_hkey(&b[0]) != zone_backend_hkey(&b[3]) && zone_backend_hkey(&b[1]) != zone_backend_hkey(&b[2]),
		   "hash identities differ by address and port");
		ok(b[0].addr_first == 0 && b[1].addr_first == 1 && b[2].addr_first == 2,
		   "addr_first: distinct addresses point at themselves");
		is_int(b[3].addr_first, 0, "addr_first: the host's second port points at its first");
		ok(s->dup_addrs, "dup_addrs: set when two backends share an address");
	}

	/* SRV names and ENTs. */
	const struct zone_node *p0 = found(snap, "_http._tcp.web.mesh");
	ok(p0 && p0->kind == ZONE_NODE_SRV && zone_node_service(p0) == s && p0->port_idx == 0,
	   "_http._tcp.web: SRV node of port 0");
	const struct zone_node *p1 = found(snap, "_DNS._UDP.web.mesh");
	ok(p1 && p1->kind == ZONE_NODE_SRV && zone_node_service(p1) == s && p1->port_idx == 1,
	   "_dns._udp.web: SRV node of port 1 (any case)");
	is_int(status_of(snap, "_dns._tcp.web.mesh"), ZONE_NXDOMAIN, "_dns._tcp: wrong proto, NXDOMAIN");
	is_int(status_of(snap, "_http._udp.web.mesh"), ZONE_NXDOMAIN, "_http._udp: NXDOMAIN");
	is_int(status_of(snap, "_https._tcp.web.mesh"), ZONE_NXDOMAIN, "unknown port name: NXDOMAIN");
	const struct zone_node *t = found(snap, "_tcp.web.mesh");
	ok(t && t->kind == ZONE_NODE_PLAIN && t->nrrsets == 0, "_tcp.web is an ENT");
	t = found(snap, "_udp.web.mesh");
	ok(t && t->kind == ZONE_NODE_PLAIN && t->nrrsets == 0, "_udp.web is an ENT");

	/* Target names with their addresses, at the service TTL. */
	const struct zone_node *t0 = found(snap, "10-0-0-1.web.mesh");
	ok(t0 && t0->kind == ZONE_NODE_TARGET && t0->nrrsets == 0,
	   "a target name is found, made from its backend (no node of its own)");
	is_int(rr_count(t0, DNS_TYPE_A), 1, "one A for the host on two ports");
	ok(has_a(t0, "10.0.0.1"), "target A rdata");
	is_int(rr_ttl(t0, DNS_TYPE_A), 10, "target TTL is the service's");
	ok(rrset(t0, DNS_TYPE_AAAA) == NULL, "no AAAA at an IPv4 target");
	ok(has_a(found(snap, "B2.web.mesh"), "10.0.0.2"), "named target A");
	const struct zone_node *t2 = found(snap, "fd00--3.web.mesh");
	ok(has_aaaa(t2, "fd00::3") && rrset(t2, DNS_TYPE_A) == NULL, "IPv6 target has only AAAA");
	is_int(status_of(snap, "backend.web.mesh"), ZONE_NXDOMAIN, "no stray target names");
	ok(HAS_RD(found(snap, "x.web.mesh"), DNS_TYPE_TXT, "\x11" "below-the-service"),
	   "a record below a service name");

	/* A service with a two-label name, round-robin schedules. */
	const struct zone_node *api = found(snap, "api.v1.mesh");
	ok(api && api->kind == ZONE_NODE_SERVICE, "api.v1 service (name lowercased)");
	const struct zone_node *v1 = found(snap, "v1.mesh");
	ok(v1 && v1->kind == ZONE_NODE_PLAIN && v1->nrrsets == 0, "v1.mesh is an ENT");
	ok(found(snap, "_grpc._tcp.api.v1.mesh") && zone_node_service(found(snap, "_grpc._tcp.api.v1.mesh")) == (api ? zone_node_service(api) : NULL),
	   "SRV node of the two-label service");
	ok(has_a(found(snap, "two.api.v1.mesh"), "10.1.0.2"), "two-label service target");
	ok(has_aaaa(found(snap, "four.api.v1.mesh"), "fd00::1:4"), "two-label service IPv6 target");
	const struct zone_service *as = api ? zone_node_service(api) : NULL;
	if (as && as->nbackends == 4) {
		char nb[DNS_LABEL_MAX + 1];
		is_str(zone_backend_name(&as->backends[1], nb, sizeof(nb)), "Two",
		       "a name with capitals is kept as written");
		is_str(ntext(zone_backend_target(&as->backends[1]), as->backends[1].targetlen), "two.api.v1.mesh.",
		       "... its target lowercase");
		char tiny[3];
		is_str(zone_backend_name(&as->backends[2], tiny, sizeof(tiny)), "",
		       "a name that does not fit its buffer: empty");
		unsigned c[4];
		is_int(as->rr_len[0], 6, "IPv4 schedule: length = sum of weights 1+2+3");
		sched_counts(as, 0, c, 4);
		ok(c[0] == 1 && c[1] == 2 && c[2] == 3 && c[3] == 0, "IPv4 schedule: each backend weight times");
		is_int(as->rr_len[1], 5, "IPv6 schedule: one backend of weight 5");
		sched_counts(as, 1, c, 4);
		ok(c[3] == 5 && c[0] + c[1] + c[2] == 0, "IPv6 schedule: only the IPv6 backend");
		is_int(as->rr_len[2], 11, "both families: 11");
		sched_counts(as, 2, c, 4);
		ok(c[0] == 1 && c[1] == 2 && c[2] == 3 && c[3] == 5, "both families: weights");
		/* Smooth: the heaviest IPv4 backend never comes three times in a row. */
		bool smooth = as->rr_sched[0] && as->rr_len[0] == 6;
		for (unsigned k = 0; smooth && k + 2 < 6; k++)
			smooth = !(as->rr_sched[0][k] == 2 && as->rr_sched[0][k + 1] == 2 &&
			           as->rr_sched[0][k + 2] == 2);
		ok(smooth, "schedule is interleaved");
		ok(!as->dup_addrs, "dup_addrs: clear when every address differs");
	} else {
		ok(0, "api.v1 has four backends");
	}

	const struct zone_node *em = found(snap, "empty.mesh");
	ok(em && em->kind == ZONE_NODE_SERVICE && zone_node_service(em) && zone_node_service(em)->nbackends == 0,
	   "a service without backends is still a service node");
	ok(em && zone_node_service(em) && zone_node_service(em)->n4 == 0 && zone_node_service(em)->n6 == 0, "... with no backends per family");
	ok(found(snap, "_http._tcp.empty.mesh") != NULL, "... and its SRV name");

	/* Service ids: 0..nservices-1, unique across zones. */
	const struct zone_node *ow = found(snap, "web.other");
	ok(ow && zone_node_service(ow) && zone_node_service(ow) != s && 1,
	   "same service name in another zone: its own service (zi 1, si 0)");
	ok(ow && zone_node_service(ow) && has_a(found(snap, "10-9-0-1.web.other"), "10.9.0.1"), "... with its own targets");
	if (ow && zone_node_service(ow) && as && em && zone_node_service(em)) {
		unsigned seen = 0;
		const struct zone_service *all[] = { s, as, zone_node_service(em), zone_node_service(ow) };
		for (int i = 0; i < 4; i++)
			if (all[i]->id < 4)
				seen |= 1u << all[i]->id;
		is_int(seen, 0xf, "service ids are 0..3, each once");
	}
	ok(z && n && in_zone(z, n), "service node's zone");

	/* Rebuilding gives the same hash identities (sticky clients stay put). */
	struct zone_snapshot *again = build(cfg, snap, NULL, NULL);
	const struct zone_node *n2 = again ? found(again, "web.mesh") : NULL;
	ok(n2 && zone_node_service(n2) && zone_node_service(n2)->nbackends == 4 && zone_backend_hkey(&zone_node_service(n2)->backends[0]) == zone_backend_hkey(&s->backends[0]) &&
	   zone_backend_hkey(&zone_node_service(n2)->backends[2]) == zone_backend_hkey(&s->backends[2]), "hash identities are stable across builds");
	zone_free(again);
out:
	zone_free(snap);
	config_free(cfg);
}

/* ---- health ------------------------------------------------------------------ */

struct health_state {
	unsigned calls[2][3][8];      /* [zi][si][bi] */
	unsigned bad_index;
	uint32_t sid[2][3][8];
};

/* Gives every backend a state id (allocated once, kept across builds). */
static uint32_t health_fn(void *arg, size_t zi, size_t si, size_t bi)
{
	struct health_state *h = arg;
	if (zi >= 2 || si >= 3 || bi >= 8) {
		h->bad_index++;
		return 0;
	}
	h->calls[zi][si][bi]++;
	if (!h->sid[zi][si][bi] && bstate_alloc(test_states, &h->sid[zi][si][bi]) == -1)
		return 0;
	return h->sid[zi][si][bi];
}

static void set_down(struct health_state *h, int zi, int si, int bi, bool down)
{
	bstate_set(test_states, h->sid[zi][si][bi], !down,
	           1000000 + (uint64_t)zi * 10000 + (uint64_t)si * 100 + (uint64_t)bi);
}

static unsigned nup(const struct zone_service *s, int family)
{
	unsigned n = 0;
	for (unsigned i = 0; i < s->nbackends; i++)
		n += s->backends[i].family == family && zone_backend_up(&s->backends[i]);
	return n;
}

static const char health_yaml[] =
	"zones:\n"
	"  - name: a.test\n"
	"    services:\n"
	"      - name: rr\n"
	"        policy: round-robin\n"
	"        ports: {http: 80}\n"
	"        backends:\n"
	"          - {address: 10.0.0.1, weight: 1}\n"
	"          - {address: 10.0.0.2, weight: 2}\n"
	"          - {address: 10.0.0.3, weight: 4}\n"
	"          - {address: 'fd00::1', weight: 3}\n"
	"          - {address: 'fd00::2', weight: 5}\n"
	"      - name: w\n"
	"        ports: {http: 80}\n"
	"        backends: [10.0.1.1, 10.0.1.2, 'fd00::11']\n"
	"  - name: b.test\n"
	"    services:\n"
	"      - name: x\n"
	"        ports: {http: 80}\n"
	"        backends: [10.0.2.1]\n"
	"      - name: y\n"
	"        ports: {http: 80}\n"
	"        backends: [10.0.3.1, 10.0.3.2]\n";

static void test_health(void)
{
	struct config *cfg = load(health_yaml);
	static struct health_state h;
	memset(&h, 0, sizeof(h));
	test_states = bstate_new();
	struct zone_snapshot *s1 = build(cfg, NULL, health_fn, &h);
	if (!ok(s1 != NULL, "build with a state table"))
		goto out;
	const unsigned nb[2][3] = { { 5, 3, 0 }, { 1, 2, 0 } };
	bool once = h.bad_index == 0;
	for (int zi = 0; zi < 2; zi++)
		for (int si = 0; si < 3; si++)
			for (int bi = 0; bi < 8; bi++)
				once &= h.calls[zi][si][bi] == (bi < (int)nb[zi][si] ? 2u : 0u);
	ok(once, "ids asked twice per backend (block key, block), with its zone, service and backend index");

	const struct zone_node *rn = found(s1, "rr.a.test");
	const struct zone_service *rr = rn ? zone_node_service(rn) : NULL;
	if (!ok(rr && rr->nbackends == 5, "rr service"))
		goto out;
	ok(rr->backends[1].sid == h.sid[0][0][1] &&
	   rr->backends[1].state == bstate_slot(test_states, h.sid[0][0][1]),
	   "a backend points at its own word");
	is_int(nup(rr, AF_INET), 3, "fresh ids start UP");
	/* State changes write words only: the same snapshot answers them. */
	set_down(&h, 0, 0, 1, true);      /* rr: 10.0.0.2 */
	set_down(&h, 0, 1, 2, true);      /* w: fd00::11, its only IPv6 */
	set_down(&h, 1, 1, 0, true);      /* y: 10.0.3.1 */
	ok(zone_backend_up(&rr->backends[0]) && !zone_backend_up(&rr->backends[1]) &&
	   zone_backend_up(&rr->backends[2]), "a word set DOWN is seen by the built snapshot");
	is_int(bstate_word_since(bstate_load(rr->backends[1].state)), 1000001,
	       "since_ms from the word");
	is_int(nup(rr, AF_INET), 2, "two of three IPv4 up");
	is_int(nup(rr, AF_INET6), 2, "both IPv6 up");
	is_int(rr->n4, 3, "n4 counts down backends too");
	unsigned c[5];
	sched_counts(rr, 0, c, 5);
	ok(rr->rr_len[0] == 7 && c[0] == 1 && c[1] == 2 && c[2] == 4,
	   "IPv4 schedule over every IPv4 backend (down ones are skipped per query)");
	sched_counts(rr, 2, c, 5);
	ok(rr->rr_len[2] == 15 && c[0] == 1 && c[1] == 2 && c[2] == 4 && c[3] == 3 && c[4] == 5,
	   "both-family schedule over every backend");
	uint32_t zi = 9;
	const struct zone_slot *sl = zone_sid_slot(s1, h.sid[1][1][0], &zi);
	ok(sl && zi == 1 && sl == s1->zones[1].slots[found(s1, "y.b.test")->svc_idx],
	   "the sid map finds a backend's service and zone");
	ok(zone_sid_slot(s1, 999999, &zi) == NULL, "an unknown id has no service");

	const struct zone_node *wn = found(s1, "w.a.test");
	const struct zone_service *w = wn ? zone_node_service(wn) : NULL;
	ok(w && nup(w, AF_INET) == 2 && nup(w, AF_INET6) == 0 && w->n6 == 1 &&
	   !zone_backend_up(&w->backends[2]), "w: the only IPv6 backend down");
	const struct zone_node *yn = found(s1, "y.b.test");
	const struct zone_service *y = yn ? zone_node_service(yn) : NULL;
	ok(y && !zone_backend_up(&y->backends[0]) &&
	   zone_backend_up(&y->backends[1]), "second zone: states by its own ids");
	/* Down backends keep their names: SRV targets and their addresses stay. */
	ok(has_a(found(s1, "10-0-0-2.rr.a.test"), "10.0.0.2"), "a down backend's target still resolves");

	/* A rebuild keeps the ids (the watcher's job in dnsd): same words. */
	struct zone_snapshot *s2 = build(cfg, s1, health_fn, &h);
	const struct zone_node *rn2 = s2 ? found(s2, "rr.a.test") : NULL;
	const struct zone_service *rr2 = rn2 ? zone_node_service(rn2) : NULL;
	if (ok(rr2 && rr2->nbackends == 5, "rebuilt")) {
		ok(rr2->backends[1].state == rr->backends[1].state && !zone_backend_up(&rr2->backends[1]),
		   "the new snapshot reads the same words");
		set_down(&h, 0, 1, 2, false);
		const struct zone_service *w2 = found(s2, "w.a.test") ? zone_node_service(found(s2, "w.a.test")) : NULL;
		ok(w2 && nup(w2, AF_INET6) == 1 && nup(w, AF_INET6) == 1,
		   "a word set UP again is seen by both snapshots");
	}

	/* No state table: everything up. */
	struct zone_snapshot *s3 = build(cfg, s2, NULL, NULL);
	const struct zone_service *rr3 = s3 && found(s3, "rr.a.test") ? zone_node_service(found(s3, "rr.a.test")) : NULL;
	ok(rr3 && nup(rr3, AF_INET) == 3 && nup(rr3, AF_INET6) == 2 &&
	   rr3->backends[1].state == &bstate_always_up, "no state table: every backend up");
	zone_free(s3);
	zone_free(s2);
out:
	zone_free(s1);
	config_free(cfg);
	bstate_free(test_states);
	test_states = NULL;
}

/* ---- serials and generations ------------------------------------------------ */

static struct config *serial_cfg(const char *zones[], const unsigned serials[], int n)
{
	char yaml[1024] = "zones:\n";
	for (int i = 0; i < n; i++) {
		char one[128];
		snprintf(one, sizeof(one), "  - name: %s\n    soa: {serial: %u}\n", zones[i], serials[i]);
		strcat(yaml, one);
	}
	return load(yaml);
}

static long serial_of(const struct zone_snapshot *snap, const char *zone)
{
	const struct zone *z = zone_named(snap, zone);
	return z ? (long)zone_serial(z) : -1;
}

/* The serial field of the SOA rdata of zone z. */
static long soa_rdata_serial(const struct zone *z)
{
	if (!z || !z->soa || z->soa->count != 1)
		return -1;
	const struct zone_rdata *rd = z->soa->rd[0];
	size_t ml = name_len(rd->data, rd->len);
	size_t rl = ml ? name_len(rd->data + ml, rd->len - ml) : 0;
	if (!ml || !rl || rd->len != ml + rl + 20)
		return -1;
	return get32(rd->data + ml + rl);
}

static void test_serial(void)
{
	/* Explicit serials. */
	const char *one[] = { "s.test" };
	unsigned v100[] = { 100 }, v500[] = { 500 }, v50[] = { 50 };
	struct config *c100 = serial_cfg(one, v100, 1), *c500 = serial_cfg(one, v500, 1),
	              *c50 = serial_cfg(one, v50, 1);
	struct zone_snapshot *a = build(c100, NULL, NULL, NULL);
	struct zone_snapshot *b = build(c100, a, NULL, NULL);
	struct zone_snapshot *c = build(c500, b, NULL, NULL);
	struct zone_snapshot *d = build(c50, c, NULL, NULL);
	if (ok(a && b && c && d, "explicit-serial snapshots build")) {
		is_int(serial_of(a, "s.test"), 100, "explicit serial used as is");
		is_int(serial_of(b, "s.test"), 101, "same explicit serial again: prev + 1");
		is_int(serial_of(c, "s.test"), 500, "higher explicit serial respected");
		is_int(serial_of(d, "s.test"), 501, "lower explicit serial: never backwards (prev + 1)");
		is_int(soa_rdata_serial(zone_named(d, "s.test")), 501, "SOA rdata carries the serial");
		is_int(a->generation, 1, "generation 1 without prev");
		is_int(b->generation, 2, "generation 2");
		is_int(c->generation, 3, "generation 3");
		is_int(d->generation, 4, "generation 4");
		struct zone_snapshot *e = build(c100, NULL, NULL, NULL);
		ok(e && serial_of(e, "s.test") == 100 && e->generation == 1, "without prev: config serial, generation 1");
		zone_free(e);
	}
	zone_free(d);
	zone_free(c);
	zone_free(b);
	zone_free(a);
	config_free(c100);
	config_free(c500);
	config_free(c50);

	/* Serial arithmetic (RFC 1982): the serial after 4294967295 is 0, then 1. */
	unsigned vmax[] = { 4294967295u };
	struct config *cmax = serial_cfg(one, vmax, 1);
	struct zone_snapshot *m1 = build(cmax, NULL, NULL, NULL);
	struct zone_snapshot *m2 = m1 ? build(cmax, m1, NULL, NULL) : NULL;
	struct zone_snapshot *m3 = m2 ? build(cmax, m2, NULL, NULL) : NULL;
	ok(m1 && m2 && m3 && serial_of(m1, "s.test") == 4294967295L && serial_of(m2, "s.test") == 0 &&
	   serial_of(m3, "s.test") == 1, "serial wraps forward: 4294967295, 0, 1");
	zone_free(m3);
	zone_free(m2);
	zone_free(m1);
	config_free(cmax);

	/* Zones are matched by origin, not by position: b.test moved from
	 * index 1 to 0 and is bumped; c.test is new and keeps its serial. */
	const char *ab[] = { "a.test", "b.test" }, *bc[] = { "B.TEST", "c.test" };
	unsigned v10[] = { 10, 10 }, v10b[] = { 10, 10 };
	struct config *cab = serial_cfg(ab, v10, 2), *cbc = serial_cfg(bc, v10b, 2);
	struct zone_snapshot *x = build(cab, NULL, NULL, NULL);
	struct zone_snapshot *y = x ? build(cbc, x, NULL, NULL) : NULL;
	ok(y && serial_of(y, "b.test") == 11, "zone kept across builds (any case): prev + 1");
	ok(y && serial_of(y, "c.test") == 10, "new zone: its own serial, not another zone's + 1");
	zone_free(y);
	zone_free(x);
	config_free(cab);
	config_free(cbc);

	/* Automatic serials: the time, then strictly increasing. */
	const char *auto_zone[] = { "auto.test" };
	unsigned v0[] = { 0 };
	struct config *cauto = serial_cfg(auto_zone, v0, 1);
	uint32_t t0 = (uint32_t)time(NULL);
	struct zone_snapshot *p = build(cauto, NULL, NULL, NULL);
	uint32_t t1 = (uint32_t)time(NULL);
	long s0 = p ? serial_of(p, "auto.test") : -1;
	ok(s0 >= t0 && s0 <= t1, "automatic serial is the current time");
	bool inc = p != NULL;
	long last = s0;
	for (int i = 0; i < 5 && inc; i++) {
		struct zone_snapshot *q = build(cauto, p, NULL, NULL);
		uint32_t now = (uint32_t)time(NULL);
		long sq = q ? serial_of(q, "auto.test") : -1;
		inc = q && sq > last && sq >= (long)t0 && (sq <= (long)now || sq == last + 1) &&
		      soa_rdata_serial(zone_named(q, "auto.test")) == sq &&
		      q->generation == p->generation + 1;
		last = sq;
		zone_free(p);
		p = q;
	}
	ok(inc, "automatic serial increases on every rebuild (max(now, prev + 1)), generations count on");
	/* A previous serial far ahead of the clock (an explicit one) is not
	 * undercut by the automatic serial. */
	const char *az[] = { "auto.test" };
	unsigned vbig[] = { 3000000000u };
	struct config *cbig = serial_cfg(az, vbig, 1);
	struct zone_snapshot *big = build(cbig, p, NULL, NULL);
	struct zone_snapshot *after = big ? build(cauto, big, NULL, NULL) : NULL;
	ok(big && serial_of(big, "auto.test") == 3000000000L, "explicit serial far ahead of prev");
	ok(after && serial_of(after, "auto.test") == 3000000001L, "then automatic: prev + 1, not the clock");
	zone_free(after);
	zone_free(big);
	zone_free(p);
	config_free(cbig);
	config_free(cauto);
}

/* ---- build errors ------------------------------------------------------------ */

static const char err_yaml[] =
	"zones:\n"
	"  - name: ok.test\n"
	"  - name: mesh\n"
	"    records:\n"
	"      - {name: www, type: A, data: 10.0.0.1}\n"
	"      - {name: txt, type: TXT, data: hi}\n"
	"    services:\n"
	"      - name: web\n"
	"        ports: {http: 80}\n"
	"        backends: [{address: 10.0.0.1, name: b1}, {address: 10.0.0.2, name: b2}]\n";

/* Builds cfg expecting failure with sub in err and *out untouched. */
static void build_fails(const struct config *cfg, const char *sub, const char *what)
{
	struct zone_snapshot *sentinel = (struct zone_snapshot *)&sentinel;
	struct zone_snapshot *out = sentinel;
	char err[256] = "";
	int rc = zone_build(cfg, NULL, NULL, NULL, NULL, NULL, &out, err, sizeof(err));
	bool good = rc == -1 && out == sentinel && strstr(err, sub) != NULL;
	ok(good, "%s", what);
	if (!good)
		diag("want error containing '%s', got rc %d: %s", sub, rc, err);
	if (rc == 0 && out != sentinel)
		zone_free(out);
}

/* Sets a record's owner to text (absolute). */
static void set_owner(struct cfg_record *r, const char *text)
{
	r->ownerlen = wname(text, r->owner);
}

static void test_errors(void)
{
	/* The config loader refuses all of these; zone_build checks again and
	 * must report them rather than build a broken zone. Each case edits a
	 * loaded config and puts it back. */
	struct config *cfg = load(err_yaml);
	if (!cfg)
		return;
	struct zone_snapshot *good = build(cfg, NULL, NULL, NULL);
	ok(good != NULL, "the unedited config builds");
	zone_free(good);
	struct cfg_zone *z = &cfg->zones[1];
	struct cfg_record saved = z->records[0], saved1 = z->records[1];

	set_owner(&z->records[0], "www.elsewhere.");
	build_fails(cfg, "outside zone mesh", "record outside its zone");
	z->records[0] = saved;

	z->records[0].type = DNS_TYPE_SOA;
	build_fails(cfg, "SOA", "SOA in records");
	z->records[0] = saved;

	set_owner(&z->records[0], "web.mesh");
	build_fails(cfg, "service web: name already has other data", "record at a service's name");
	z->records[0] = saved;

	set_owner(&z->records[0], "_http._tcp.web.mesh");
	build_fails(cfg, "_http._tcp.web.mesh. clashes", "record at a service's SRV name");
	z->records[0] = saved;

	set_owner(&z->records[0], "B1.web.mesh");
	build_fails(cfg, "b1.web.mesh. clashes", "record at a backend's target name");
	z->records[0] = saved;

	z->records[1].type = DNS_TYPE_CNAME;
	set_owner(&z->records[1], "www.mesh");
	build_fails(cfg, "www.mesh.: CNAME must be the only record", "CNAME beside an A record");
	z->records[0].type = DNS_TYPE_CNAME;   /* two CNAMEs with different data */
	build_fails(cfg, "www.mesh.: CNAME must be the only record", "two different CNAMEs at one name");
	z->records[0] = saved;
	z->records[1] = saved1;

	struct cfg_service *s = &z->services[0];
	char *b2name = s->backends[1].name;
	s->backends[1].name = s->backends[0].name;
	build_fails(cfg, "backend name b1 used for two addresses", "two addresses under one target name");
	s->backends[1].name = b2name;

	char longlabel[80];
	memset(longlabel, 'p', 64);
	longlabel[64] = '\0';
	char *pname = s->ports[0].name;
	s->ports[0].name = longlabel;
	build_fails(cfg, "makes a name too long", "port name over 63 bytes");
	s->ports[0].name = pname;

	char *bname = s->backends[0].name;
	s->backends[0].name = longlabel;
	build_fails(cfg, "is too long", "backend name over 63 bytes");
	s->backends[0].name = bname;

	size_t nb = s->nbackends;
	s->nbackends = ZONE_MAX_BACKENDS + 1;   /* refused before the array is read */
	build_fails(cfg, "more than 4096 backends", "more backends than ZONE_MAX_BACKENDS");
	s->nbackends = nb;

	good = build(cfg, NULL, NULL, NULL);
	ok(good != NULL, "the restored config builds again");
	zone_free(good);
	config_free(cfg);
}

/* ---- size: many services, and one at the backend limit ----------------------- */

struct text {
	char *buf;
	size_t len, cap;
};

__attribute__((format(printf, 2, 3)))
static void append(struct text *t, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		t->cap = t->cap ? t->cap * 2 : 65536;
		t->buf = realloc(t->buf, t->cap);
		if (!t->buf)
			abort();
	}
}

/* WIDE: one service with more backends than a schedule has slots (1024),
 * kept well under ZONE_MAX_BACKENDS as per-service checks are quadratic
 * (the limit itself is covered in test_errors). */
enum { BIG_SERVICES = 2000, BIG_BACKENDS = 5, WIDE = 1500 };

static void test_large(void)
{
	struct text t = { 0 };
	append(&t, "zones:\n  - name: big.mesh\n    services:\n");
	for (int i = 0; i < BIG_SERVICES; i++) {
		append(&t, "      - {name: s%d, ports: {http: 80}, backends: [", i);
		for (int j = 0; j < BIG_BACKENDS; j++)
			append(&t, "%s10.%d.%d.%d", j ? ", " : "", i / 200, i % 200, j + 1);
		append(&t, "]}\n");
	}
	/* One service with WIDE backends, round-robin. */
	append(&t, "      - name: wide\n        policy: round-robin\n        ports: {http: 80}\n"
	           "        backends:\n");
	for (int i = 0; i < WIDE; i++)
		append(&t, "          - {address: 10.200.%d.%d, weight: %d}\n", i / 256, i % 256,
		       i == 0 ? 65535 : 1 + i % 3);
	struct timespec t0, t1, t2;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct config *cfg = load(t.buf);
	free(t.buf);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	struct zone_snapshot *snap = build(cfg, NULL, NULL, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t2);
	if (!ok(snap != NULL, "large config builds (%d services x %d backends, and %d)", BIG_SERVICES,
	        BIG_BACKENDS, WIDE))
		goto out;
	diag("config loaded in %.1f ms, snapshot built in %.1f ms, %zu arena bytes",
	     (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
	     (double)(t2.tv_sec - t1.tv_sec) * 1e3 + (double)(t2.tv_nsec - t1.tv_nsec) / 1e6, snap->bytes);
	is_int(snap->nservices, BIG_SERVICES + 1, "every service counted");
	static unsigned char idseen[BIG_SERVICES + 1];
	memset(idseen, 0, sizeof(idseen));
	unsigned bad = 0, badsrv = 0, badtarget = 0, dupid = 0;
	for (int i = 0; i < BIG_SERVICES; i++) {
		char name[64], addr[32];
		snprintf(name, sizeof(name), i % 7 ? "s%d.big.mesh" : "S%d.BIG.Mesh", i);
		const struct zone_node *n = found(snap, name);
		const struct zone_service *s = n && n->kind == ZONE_NODE_SERVICE ? zone_node_service(n) : NULL;
		bool good = s && s->nbackends == BIG_BACKENDS && s->n4 == BIG_BACKENDS;
		for (int j = 0; good && j < BIG_BACKENDS; j++) {
			snprintf(addr, sizeof(addr), "10.%d.%d.%d", i / 200, i % 200, j + 1);
			good = addr_is(&s->backends[j], AF_INET, addr);
		}
		bad += !good;
		if (s && s->id <= BIG_SERVICES)
			dupid += idseen[s->id]++ != 0;
		snprintf(name, sizeof(name), "_http._tcp.s%d.big.mesh", i);
		const struct zone_node *p = found(snap, name);
		badsrv += !(p && p->kind == ZONE_NODE_SRV && s && zone_node_service(p) == s);
		int j = i % BIG_BACKENDS;
		snprintf(name, sizeof(name), "10-%d-%d-%d.s%d.big.mesh", i / 200, i % 200, j + 1, i);
		snprintf(addr, sizeof(addr), "10.%d.%d.%d", i / 200, i % 200, j + 1);
		badtarget += !has_a(found(snap, name), addr);
	}
	is_int(bad, 0, "all %d services found with their backends", BIG_SERVICES);
	is_int(badsrv, 0, "all SRV names found");
	is_int(badtarget, 0, "target names found with their A");
	is_int(dupid, 0, "service ids unique");
	is_int(status_of(snap, "s2000.big.mesh"), ZONE_NXDOMAIN, "one past the last: NXDOMAIN");

	const struct zone_node *wn = found(snap, "wide.big.mesh");
	const struct zone_service *w = wn ? zone_node_service(wn) : NULL;
	if (ok(w && w->nbackends == WIDE, "service with %d backends", WIDE)) {
		/* More backends than 1024 slots: each still needs one, and the
		 * heavy one (65535) never gets fewer than a light one. */
		ok(w->rr_len[0] >= WIDE, "schedule has a slot per backend at least (%u)", w->rr_len[0]);
		bool in = w->rr_sched[0] != NULL, all = true, heavy = true;
		static unsigned hit[WIDE];
		memset(hit, 0, sizeof(hit));
		for (unsigned k = 0; in && k < w->rr_len[0]; k++) {
			in = w->rr_sched[0][k] < WIDE;
			if (in)
				hit[w->rr_sched[0][k]]++;
		}
		for (unsigned k = 0; k < WIDE; k++) {
			all &= hit[k] > 0;
			heavy &= hit[0] >= hit[k];
		}
		ok(in, "schedule indexes are backends");
		ok(all, "every backend appears in the schedule despite one of weight 65535");
		ok(heavy, "the heaviest backend has the most slots");
		ok(w->rr_len[2] == w->rr_len[0], "IPv4 only: the both-family schedule is as long");
		ok(has_a(found(snap, "10-200-5-219.wide.big.mesh"), "10.200.5.219"), "last backend's target");
	}
out:
	zone_free(snap);
	config_free(cfg);
}

/* ---- publishing ------------------------------------------------------------- */

static const char pub_yaml[] =
	"localities: {10.0.0.0/8: near, 'fd00::/16': far}\n"
	"udp-max-payload: 4096\n"
	"zones:\n"
	"  - name: mesh\n"
	"    soa: {serial: 1000}\n"
	"    records:\n"
	"      - {name: marker, type: TXT, data: %s}\n"
	"      - {name: a.b.c, type: A, data: 10.9.9.9}\n"
	"    services:\n"
	"      - name: svc\n"
	"        ports: {http: 80}\n"
	"        backends: [%s]\n";

static struct config *pub_cfg(int parity)
{
	char yaml[1024];
	snprintf(yaml, sizeof(yaml), pub_yaml, parity ? "odd" : "even",
	         parity ? "10.0.0.1, 10.0.0.2, 10.0.0.3" : "10.0.0.1, 10.0.0.2");
	return load(yaml);
}

static void test_publish_sequence(void)
{
	rcu_register_thread();
	ok(zone_current() == NULL, "no snapshot before the first publish");
	struct config *cfg[2] = { pub_cfg(0), pub_cfg(1) };
	if (!cfg[0] || !cfg[1])
		goto out;
	struct zone_snapshot *s1 = build(cfg[1], NULL, NULL, NULL);
	ok(s1 && s1->udp_max_payload == 4096, "udp_max_payload from the config");
	ok(s1 && s1->nlocalities == 2 && s1->localities[0].prefix == 8 &&
	   s1->localities[0].family == AF_INET && strcmp(s1->localities[0].label, "near") == 0 &&
	   s1->localities[1].family == AF_INET6 && strcmp(s1->localities[1].label, "far") == 0,
	   "localities copied into the snapshot");
	/* zone_publish waits for a grace period: not as an online reader. */
	rcu_thread_offline();
	zone_publish(s1);
	rcu_thread_online();
	ok(zone_current() == s1, "zone_current: the published snapshot");
	const struct zone_snapshot *last = s1;
	bool seq = true;
	for (int i = 2; i <= 5; i++) {
		struct zone_snapshot *s = build(cfg[i % 2], zone_current(), NULL, NULL);
		if (!s) {
			seq = false;
			break;
		}
		rcu_thread_offline();
		zone_publish(s);
		rcu_thread_online();
		const struct zone_snapshot *cur = zone_current();
		seq &= cur == s && cur != last && cur->generation == (uint64_t)i &&
		       cur->zones[0].serial == 1000u + (unsigned)i - 1;
		last = cur;
	}
	ok(seq, "each publish replaces the current snapshot (generations 2..5, serials 1001..1004)");
	const struct zone_node *m = found(zone_current(), "marker.mesh");
	ok(HAS_RD(m, DNS_TYPE_TXT, "\x03odd"), "the current snapshot has the latest data");
	ok(found(zone_current(), "svc.mesh") && zone_node_service(found(zone_current(), "svc.mesh"))->nbackends == 3,
	   "... and its service");
	rcu_thread_offline();
	zone_shutdown();
	rcu_thread_online();
	ok(zone_current() == NULL, "zone_shutdown unpublishes");
	rcu_thread_offline();
	zone_shutdown();
	rcu_thread_online();
	ok(zone_current() == NULL, "a second zone_shutdown is harmless");
	zone_free(NULL);
	ok(1, "zone_free(NULL) is a no-op");
out:
	config_free(cfg[0]);
	config_free(cfg[1]);
	rcu_unregister_thread();
}

enum { PUBLISHES = 1000 };

struct reader {
	int stop;                     /* atomic */
	unsigned long lookups;        /* atomic: the publisher waits for the first */
	unsigned long errors;
	unsigned long generations;    /* distinct generations seen */
	uint64_t last_gen;
	char first_error[200];
};

static void reader_error(struct reader *r, const char *what, uint64_t gen)
{
	if (r->errors++ == 0)
		snprintf(r->first_error, sizeof(r->first_error), "generation %llu: %s",
		         (unsigned long long)gen, what);
}

/* Checks one snapshot completely: it must be one of the two configs, in
 * every part, and consistent with its generation. */
static void reader_check(struct reader *r, const struct zone_snapshot *snap)
{
	uint64_t gen = snap->generation;
	if (gen < r->last_gen)
		reader_error(r, "generation went backwards", gen);
	if (gen != r->last_gen)
		r->generations++;
	r->last_gen = gen;
	if (snap->nzones != 1 || snap->nservices != 1) {
		reader_error(r, "zone or service count", gen);
		return;
	}
	const struct zone *z = &snap->zones[0];
	if (z->serial != 1000u + gen - 1 || soa_rdata_serial(z) != (long)z->serial)
		reader_error(r, "serial does not match the generation", gen);
	int parity = (int)(gen % 2);
	const struct zone_node *m = found(snap, "MARKER.mesh");
	if (!(parity ? HAS_RD(m, DNS_TYPE_TXT, "\x03odd") : HAS_RD(m, DNS_TYPE_TXT, "\x04" "even")))
		reader_error(r, "marker does not match the generation", gen);
	const struct zone_node *s = found(snap, "svc.mesh");
	if (!s || !zone_node_service(s) || zone_node_service(s)->nbackends != (parity ? 3u : 2u) || !in_zone(z, s))
		reader_error(r, "service does not match the generation", gen);
	else if (!addr_is(&zone_node_service(s)->backends[zone_node_service(s)->nbackends - 1], AF_INET,
	                  parity ? "10.0.0.3" : "10.0.0.2"))
		reader_error(r, "backend address", gen);
	if (!has_a(found(snap, "10-0-0-2.svc.mesh"), "10.0.0.2"))
		reader_error(r, "target", gen);
	bool third = found(snap, "10-0-0-3.svc.mesh") != NULL;
	if (third != (parity == 1))
		reader_error(r, "third target present in the wrong snapshot", gen);
	const struct zone_node *ent = found(snap, "b.c.mesh");
	if (!ent || ent->nrrsets != 0 || status_of(snap, "x.mesh") != ZONE_NXDOMAIN ||
	    status_of(snap, "example.org") != ZONE_NOTAUTH)
		reader_error(r, "ENT, NXDOMAIN or NOTAUTH", gen);
	/* Touch every node of the table. */
	size_t nodes = 0;
	for (uint32_t i = 0; i <= z->mask; i++) {
		if (!z->table[i])
			continue;
		const struct zone_node *n = &z->nodes[(z->table[i] & ~z->tagmask) - 1];
		nodes++;
		if (!in_zone(z, n) || zone_find(z, n->name, n->namelen) != n)
			reader_error(r, "table entry", gen);
	}
	/* mesh, marker, a.b.c, b.c, c, svc; in svc's block: _http._tcp.svc,
	 * _tcp.svc (svc itself is the zone's; its 2 or 3 targets are
	 * backends') */
	const struct zone_service *bs = s ? zone_node_service(s) : NULL;
	if (nodes != 6u || nodes != z->nnodes || !bs || bs->nnodes != 2u ||
	    bs->nbackends != (parity ? 3u : 2u))
		reader_error(r, "node count", gen);
	if (snap->nlocalities != 2 || strcmp(snap->localities[1].label, "far") != 0)
		reader_error(r, "localities", gen);
	__atomic_fetch_add(&r->lookups, 1, __ATOMIC_RELAXED);
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	rcu_register_thread();
	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		/* One load per "query", as query.c does. */
		const struct zone_snapshot *snap = zone_current();
		if (snap)
			reader_check(r, snap);
		rcu_quiescent_state();
	}
	rcu_unregister_thread();
	return NULL;
}

static void test_publish_concurrent(void)
{
	struct config *cfg[2] = { pub_cfg(0), pub_cfg(1) };
	static struct reader r;
	memset(&r, 0, sizeof(r));
	pthread_t th;
	if (!cfg[0] || !cfg[1]) {
		ok(0, "configs load");
		goto out;
	}
	/* The publisher is not a registered reader (as dnsd's main thread).
	 * The first snapshot goes out before the reader is looking, and the
	 * rest only once it is, so the two really overlap. */
	unsigned failed = 0;
	bool started = false;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 1; i <= PUBLISHES; i++) {
		struct zone_snapshot *s = build(cfg[i % 2], zone_current(), NULL, NULL);
		if (!s) {
			failed++;
			break;
		}
		zone_publish(s);
		if (i == 1) {
			if (pthread_create(&th, NULL, reader_main, &r) != 0)
				break;
			started = true;
			/* Until the reader has looked once (10 s at most). */
			struct timespec w0, w1;
			clock_gettime(CLOCK_MONOTONIC, &w0);
			do {
				sched_yield();
				clock_gettime(CLOCK_MONOTONIC, &w1);
			} while (__atomic_load_n(&r.lookups, __ATOMIC_RELAXED) == 0 &&
			         w1.tv_sec - w0.tv_sec < 10);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (started) {
		__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
		pthread_join(th, NULL);
	}
	ok(started, "reader thread started");
	diag("%d publishes in %.0f ms; reader: %lu lookups over %lu generations", PUBLISHES,
	     (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
	     r.lookups, r.generations);
	is_int(failed, 0, "%d snapshots built and published", PUBLISHES);
	const struct zone_snapshot *cur = zone_current();
	ok(cur && cur->generation == PUBLISHES, "the last one is current (generation %d)", PUBLISHES);
	ok(cur && cur->zones[0].serial == 1000u + PUBLISHES - 1, "its serial counted on from 1000");
	ok(r.lookups > 0 && r.generations > 1, "the reader looked up while publishing");
	if (!ok(r.errors == 0, "the reader saw only complete, consistent snapshots"))
		diag("%lu errors, first: %s", r.errors, r.first_error);
	zone_shutdown();
	ok(zone_current() == NULL, "shut down after the readers stopped");
out:
	config_free(cfg[0]);
	config_free(cfg[1]);
}

/* A zone with services is searched from the apex down (zone_lookup): the
 * first missing ancestor ends it, a cut above refers, a service answers
 * for the names below it from its block unless the zone has names below
 * that service (then the general search). Each outcome here is one the
 * top-down search can get wrong. */
static const char lookup_yaml[] =
	"zones:\n"
	"  - name: mesh\n"
	"    records:\n"
	"      - {name: a.b.c, type: TXT, data: deep}\n"
	"      - {name: sub, type: NS, data: ns.sub}\n"
	"      - {name: ns.sub, type: A, data: 10.0.9.53}\n"
	"      - {name: x.web, type: TXT, data: below-web}\n"
	"      - {name: a-label-long-enough-to-live-apart, type: TXT, data: long}\n"
	"    services:\n"
	"      - name: api\n"
	"        ports: {http: 80}\n"
	"        backends: [10.0.0.1, {address: 10.0.0.2, name: two}]\n"
	"      - name: web\n"
	"        ports: {http: 80}\n"
	"        backends: [10.0.1.1]\n"
	"      - name: svc.team\n"
	"        ports: {http: 80}\n"
	"        backends: [10.0.2.1]\n"
	"      - name: many\n"
	"        ports: {p1: 1, p2: 2, p3: 3, p4: 4, p5: 5, p6: {port: 6, proto: udp}}\n"
	"        backends: [10.0.3.1]\n";

static void test_lookup_top_down(void)
{
	struct config *cfg = load(lookup_yaml);
	struct zone_snapshot *snap = build(cfg, NULL, NULL, NULL);
	if (!ok(snap != NULL, "lookup zone builds"))
		goto out;
	const struct zone_node *n = found(snap, "api.mesh");
	ok(n && n->kind == ZONE_NODE_SERVICE && !n->names_below, "service found; no zone names below it");
	n = found(snap, "TWO.api.mesh");
	ok(n && n->kind == ZONE_NODE_TARGET && has_a(n, "10.0.0.2"),
	   "a backend target is found in the service's block, any case");
	n = found(snap, "_http._tcp.api.mesh");
	ok(n && n->kind == ZONE_NODE_SRV, "the SRV name of a port is found in the block");
	ok(found(snap, "_HTTP._Tcp.api.mesh") == n, "... in any case, the same node");
	is_int(status_of(snap, "_http._udp.api.mesh"), ZONE_NXDOMAIN, "another proto: NXDOMAIN");
	is_int(status_of(snap, "_https._tcp.api.mesh"), ZONE_NXDOMAIN, "another port name: NXDOMAIN");
	{
		/* The first ports are matched label by label, the others through
		 * the block's table: each finds its own node. */
		static const char *srv[] = { "_p1._tcp.many.mesh", "_p4._tcp.many.mesh",
			                     "_p5._tcp.many.mesh", "_P6._UDP.many.mesh" };
		static const unsigned idx[] = { 0, 3, 4, 5 };
		for (int i = 0; i < 4; i++) {
			const struct zone_node *p = found(snap, srv[i]);
			ok(p && p->kind == ZONE_NODE_SRV && p->port_idx == idx[i], "%s: port %u", srv[i],
			   idx[i]);
		}
		is_int(status_of(snap, "_p6._tcp.many.mesh"), ZONE_NXDOMAIN, "_p6 is udp only");
		ok(found(snap, "10-0-3-1.many.mesh") != NULL, "two labels less: the target still found");
	}
	n = found(snap, "_tcp.api.mesh");
	ok(n && n->kind == ZONE_NODE_PLAIN && n->nrrsets == 0, "... and its empty non-terminal");
	is_int(status_of(snap, "x._http._tcp.api.mesh"), ZONE_NXDOMAIN, "below a block name: NXDOMAIN");
	is_int(status_of(snap, "nope.api.mesh"), ZONE_NXDOMAIN, "not in the block: NXDOMAIN");
	n = found(snap, "web.mesh");
	ok(n && n->names_below, "a service with zone names below it is marked");
	n = found(snap, "x.web.mesh");
	ok(n && zone_node_rrset(n, DNS_TYPE_TXT), "the zone's name below a service is found");
	ok(found(snap, "10-0-1-1.web.mesh") != NULL, "... and the service's target beside it");
	is_int(status_of(snap, "y.web.mesh"), ZONE_NXDOMAIN, "... and a name in neither: NXDOMAIN");
	n = found(snap, "a.b.c.mesh");
	ok(n && zone_node_rrset(n, DNS_TYPE_TXT), "a deep static name is found from the apex down");
	n = found(snap, "b.c.mesh");
	ok(n && n->nrrsets == 0, "its empty non-terminal is found");
	is_int(status_of(snap, "z.a.b.c.mesh"), ZONE_NXDOMAIN, "below the deepest name: NXDOMAIN");
	is_int(status_of(snap, "q.nothere.mesh"), ZONE_NXDOMAIN, "below a missing name: NXDOMAIN");
	struct zone_result r;
	look(snap, "host.deep.sub.mesh", &r);
	ok(r.status == ZONE_REFERRAL && r.node == find(zone_named(snap, "mesh"), "sub.mesh"),
	   "below a cut: a referral to the cut");
	look(snap, "ns.sub.mesh", &r);
	is_int(r.status, ZONE_REFERRAL, "glue below a cut: a referral");
	n = found(snap, "a-label-long-enough-to-live-apart.mesh");
	ok(n && zone_node_rrset(n, DNS_TYPE_TXT) && n->name != n->inline_name &&
	   n->namelen > ZONE_NODE_INLINE, "a long name is found, its bytes outside the node");
	ok(found(snap, "A-LABEL-LONG-ENOUGH-TO-LIVE-APART.mesh") == n, "... in any case");
	n = found(snap, "api.mesh");
	ok(n && n->name == n->inline_name, "a short name lives in its node");
	n = found(snap, "svc.team.mesh");
	ok(n && n->kind == ZONE_NODE_SERVICE, "a two-label service is found");
	n = found(snap, "team.mesh");
	ok(n && n->kind == ZONE_NODE_PLAIN && n->nrrsets == 0, "... its parent an empty non-terminal");
	ok(found(snap, "10-0-2-1.svc.team.mesh") != NULL, "... and its target in its block");
out:
	zone_free(snap);
	config_free(cfg);
}

int main(void)
{
	test_static();
	test_soa_defaults();
	test_multi_zone();
	test_services();
	test_lookup_top_down();
	test_health();
	test_serial();
	test_errors();
	test_large();
	test_publish_sequence();
	test_publish_concurrent();
	return done_testing();
}

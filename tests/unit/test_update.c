/* test_update.c -- RFC 2136 UPDATE processing (update.c) from the message
 * to the change: which way each update takes (one service's backends in
 * place, static records beside the running config, the rest over the
 * YAML), and the answers to what must not apply: prerequisites, FORMERR
 * for bad rdata, NOTAUTH, REFUSED for a key, a name below a service, a
 * CNAME beside other data. The callbacks do what dnsd's main does with a
 * registry and a served snapshot, so lookups show the result. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "registry.h"
#include "tap.h"
#include "update.h"
#include "dns/wire.h"
#include "zone.h"

static const char yaml[] =
	"zones:\n"
	"  - name: mesh\n"
	"    records:\n"
	"      - {name: www, type: A, data: 192.0.2.1}\n"
	"    services:\n"
	"      - {name: web, ports: {http: 80}, backends: [10.0.0.1]}\n";

static struct config *cfg;
static struct registry *reg;
static unsigned n_service, n_prepare, n_commit, n_abort, n_whole;

static const struct config *op_live(void *arg)
{
	(void)arg;
	return cfg;
}

static int op_whole(void *arg, struct config *ncfg)
{
	(void)arg;
	n_whole++;
	config_free(ncfg);
	return 0;
}

static int op_service(void *arg, size_t zi, size_t si, struct cfg_service *ns)
{
	(void)arg;
	n_service++;
	const struct zone_snapshot *snap = zone_current();
	struct cfg_service old = cfg->zones[zi].services[si];
	cfg->zones[zi].services[si] = *ns;
	memset(ns, 0, sizeof(*ns));
	char err[256];
	int rc = registry_replace(reg, snap->zones[zi].slots[si], &cfg->zones[zi],
	                          &cfg->zones[zi].services[si], NULL, NULL, NULL, zi, si, err,
	                          sizeof(err));
	config_service_clear(&old);
	registry_reclaim(reg);        /* no reader runs here */
	return rc;
}

static int op_prepare(void *arg, const struct config *shadow, void **pending, char *err,
                      size_t errlen)
{
	(void)arg;
	n_prepare++;
	struct zone_snapshot *snap;
	if (zone_build(shadow, zone_current(), reg, NULL, NULL, NULL, &snap, err, errlen) == -1)
		return -1;
	*pending = snap;
	return 0;
}

static void op_commit(void *arg, void *pending, size_t zi, struct cfg_record **recs, size_t *n)
{
	(void)arg;
	n_commit++;
	struct cfg_zone *z = &cfg->zones[zi];
	struct cfg_record *r = z->records;
	size_t nr = z->nrecords;
	z->records = *recs;
	z->nrecords = *n;
	*recs = r;
	*n = nr;
	registry_commit(reg);
	zone_free(zone_swap(pending));
	registry_reclaim(reg);
}

static void op_abort(void *arg, void *pending)
{
	(void)arg;
	n_abort++;
	registry_abort(reg);
	zone_free(pending);
}

static const struct update_ops ops = { .live = op_live, .commit = op_whole,
	                               .service = op_service, .records_prepare = op_prepare,
	                               .records_commit = op_commit, .records_abort = op_abort };

/* An UPDATE message being written: zone section, then prerequisites and
 * updates (their counts patched in at the end). */
struct msg {
	uint8_t buf[2048];
	struct wire_writer w;
	unsigned npre, nupd;
};

static void begin(struct msg *m, const char *zone, uint16_t ztype)
{
	memset(m, 0, sizeof(*m));
	wire_writer_init(&m->w, m->buf, sizeof(m->buf));
	struct dns_header h = { .id = 7, .flags = DNS_OPCODE_UPDATE << 11, .qdcount = 1 };
	wire_write_header(&m->w, &h);
	uint8_t n[DNS_NAME_MAX];
	size_t l;
	wire_name_from_text(zone, n, &l);
	wire_write_name(&m->w, n, l, false);
	wire_write_u16(&m->w, ztype);
	wire_write_u16(&m->w, DNS_CLASS_IN);
}

static void rr(struct msg *m, bool prereq, const char *owner, uint16_t type, uint16_t cls,
               uint32_t ttl, const void *rd, uint16_t rdlen)
{
	uint8_t n[DNS_NAME_MAX];
	size_t l;
	wire_name_from_text(owner, n, &l);
	wire_write_name(&m->w, n, l, false);
	wire_write_u16(&m->w, type);
	wire_write_u16(&m->w, cls);
	wire_write_u32(&m->w, ttl);
	wire_write_u16(&m->w, rdlen);
	wire_write_bytes(&m->w, rd, rdlen);
	if (prereq)
		m->npre++;
	else
		m->nupd++;
}

static unsigned submit(struct update *u, struct msg *m, const char *key)
{
	wire_patch_u16(&m->w, 6, (uint16_t)m->npre);
	wire_patch_u16(&m->w, 8, (uint16_t)m->nupd);
	return update_process_for_test(u, m->buf, m->w.pos, key, &ops);
}

static enum zone_status status(const char *name, uint16_t type, unsigned *count)
{
	uint8_t n[DNS_NAME_MAX];
	size_t l;
	struct zone_result r;
	wire_name_from_text(name, n, &l);
	zone_lookup(zone_current(), n, l, &r);
	*count = 0;
	if (r.status == ZONE_FOUND && r.node->kind == ZONE_NODE_SERVICE)
		*count = zone_node_service(r.node)->nbackends;
	else if (r.status == ZONE_FOUND) {
		const struct zone_rrset *rs = zone_node_rrset(r.node, type);
		*count = rs ? rs->count : 0;
	}
	return r.status;
}

int main(void)
{
	struct config_error ce;
	if (config_load_string(yaml, sizeof(yaml) - 1, "t.yaml", &cfg, &ce) != 0) {
		diag("%s", ce.msg);
		return 1;
	}
	reg = registry_new();
	struct zone_snapshot *snap;
	char err[256];
	if (zone_build(cfg, NULL, reg, NULL, NULL, NULL, &snap, err, sizeof(err)) != 0) {
		diag("%s", err);
		return 1;
	}
	registry_commit(reg);
	zone_publish(snap);
	uint8_t origin[DNS_NAME_MAX];
	size_t olen;
	wire_name_from_text("mesh.", origin, &olen);
	struct update *u = update_new_for_test(origin, olen);
	update_allow_key_for_test(u, "k.");
	struct msg m;
	unsigned n;
	const uint8_t a2[4] = { 10, 0, 0, 2 }, a5[5] = { 1, 2, 3, 4, 5 };

	/* One service's backends: in place. */
	begin(&m, "mesh.", DNS_TYPE_SOA);
	rr(&m, false, "web.mesh.", DNS_TYPE_A, DNS_CLASS_IN, 30, a2, 4);
	is_int(submit(u, &m, "k."), DNS_RCODE_NOERROR, "a backend added: NOERROR");
	ok(n_service == 1 && n_prepare == 0 && n_whole == 0, "by the service's way alone");
	ok(status("web.mesh.", DNS_TYPE_A, &n) == ZONE_FOUND && n == 2, "served: two backends");
	ok(status("10-0-0-2.web.mesh.", DNS_TYPE_A, &n) == ZONE_FOUND, "with its target name");

	/* Static records: beside the running config. */
	begin(&m, "mesh.", DNS_TYPE_SOA);
	rr(&m, false, "hello.mesh.", DNS_TYPE_TXT, DNS_CLASS_IN, 60, "\x02hi", 3);
	rr(&m, false, "www.mesh.", DNS_TYPE_A, DNS_CLASS_ANY, 0, NULL, 0);
	is_int(submit(u, &m, "k."), DNS_RCODE_NOERROR, "a TXT added and an RRset deleted: NOERROR");
	ok(n_prepare == 1 && n_commit == 1 && n_whole == 0 && n_service == 1,
	   "by the records' way: built once, committed");
	ok(status("hello.mesh.", DNS_TYPE_TXT, &n) == ZONE_FOUND && n == 1, "the TXT is served");
	ok(status("www.mesh.", DNS_TYPE_A, &n) == ZONE_NXDOMAIN, "www is gone");
	ok(status("web.mesh.", DNS_TYPE_A, &n) == ZONE_FOUND && n == 2, "the service kept its block");

	/* What must not apply changes nothing. */
	unsigned before = n_prepare + n_commit + n_service + n_whole;
	begin(&m, "mesh.", DNS_TYPE_SOA);
	rr(&m, false, "x.web.mesh.", DNS_TYPE_A, DNS_CLASS_IN, 60, a2, 4);
	is_int(submit(u, &m, "k."), DNS_RCODE_REFUSED, "a name below a service: REFUSED");
	begin(&m, "mesh.", DNS_TYPE_SOA);
	rr(&m, false, "hello.mesh.", DNS_TYPE_CNAME, DNS_CLASS_IN, 60, "\x03www\x04mesh", 10);
	is_int(submit(u, &m, "k."), DNS_RCODE_REFUSED, "a CNAME beside a TXT: REFUSED");
	begin(&m, "mesh.", DNS_TYPE_SOA);
	rr(&m, false, "five.mesh.", DNS_TYPE_A, DNS_CLASS_IN, 60, a5, 5);
	is_int(submit(u, &m, "k."), DNS_RCODE_FORMERR, "an A of five bytes: FORMERR");
	begin(&m, "example.org.", DNS_TYPE_SOA);
	rr(&m, false, "a.example.org.", DNS_TYPE_A, DNS_CLASS_IN, 60, a2, 4);
	is_int(submit(u, &m, "k."), DNS_RCODE_NOTAUTH, "not our zone: NOTAUTH");
	begin(&m, "mesh.", DNS_TYPE_A);
	is_int(submit(u, &m, "k."), DNS_RCODE_FORMERR, "a zone section not of type SOA: FORMERR");
	begin(&m, "mesh.", DNS_TYPE_SOA);
	rr(&m, false, "new.mesh.", DNS_TYPE_A, DNS_CLASS_IN, 60, a2, 4);
	is_int(submit(u, &m, "other."), DNS_RCODE_REFUSED, "a key the zone does not take: REFUSED");
	begin(&m, "mesh.", DNS_TYPE_SOA);
	rr(&m, true, "nothere.mesh.", DNS_TYPE_ANY, DNS_CLASS_ANY, 0, NULL, 0);
	rr(&m, false, "new.mesh.", DNS_TYPE_A, DNS_CLASS_IN, 60, a2, 4);
	is_int(submit(u, &m, "k."), DNS_RCODE_NXDOMAIN, "prerequisite 'name in use' unmet: NXDOMAIN");
	/* Services and records in one update: over the YAML, which a test
	 * state does not have. */
	begin(&m, "mesh.", DNS_TYPE_SOA);
	rr(&m, false, "web.mesh.", DNS_TYPE_A, DNS_CLASS_IN, 30, a5, 4);
	rr(&m, false, "more.mesh.", DNS_TYPE_A, DNS_CLASS_IN, 60, a2, 4);
	is_int(submit(u, &m, "k."), DNS_RCODE_SERVFAIL, "mixed, and no file to apply it over: SERVFAIL");
	ok(n_prepare + n_commit + n_service + n_whole == before, "none of them changed anything");
	ok(status("new.mesh.", DNS_TYPE_A, &n) == ZONE_NXDOMAIN &&
	   status("more.mesh.", DNS_TYPE_A, &n) == ZONE_NXDOMAIN &&
	   status("hello.mesh.", DNS_TYPE_CNAME, &n) == ZONE_FOUND && n == 0,
	   "and nothing is served of them");

	/* A prerequisite met lets the update through. */
	begin(&m, "mesh.", DNS_TYPE_SOA);
	rr(&m, true, "hello.mesh.", DNS_TYPE_TXT, DNS_CLASS_ANY, 0, NULL, 0);
	rr(&m, false, "new.mesh.", DNS_TYPE_A, DNS_CLASS_IN, 60, a2, 4);
	is_int(submit(u, &m, "k."), DNS_RCODE_NOERROR, "prerequisite 'RRset exists' met: NOERROR");
	ok(status("new.mesh.", DNS_TYPE_A, &n) == ZONE_FOUND && n == 1, "new.mesh is served");

	update_free(u);
	zone_shutdown();
	registry_free(reg);
	config_free(cfg);
	return done_testing();
}

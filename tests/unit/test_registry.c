/* test_registry.c -- services by identity: a rebuild keeps the blocks of
 * unchanged services, a changed service gets a block of its own, a
 * removed one is retired; and the property that matters: after any
 * sequence of health flips, in-place service changes (as UPDATE makes)
 * and rebuilds (as reloads make), the registry's snapshot transfers
 * exactly what a snapshot built from scratch from the same state does. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bstate.h"
#include "config.h"
#include "registry.h"
#include "tap.h"
#include "dns/wire.h"
#include "xfr.h"
#include "zone.h"

static struct config *load(const char *yaml)
{
	struct config *cfg = NULL;
	struct config_error err;
	if (config_load_string(yaml, strlen(yaml), "t.yaml", &cfg, &err) != 0) {
		diag("config: %s", err.msg);
		return NULL;
	}
	return cfg;
}

static const char base_yaml[] =
	"zones:\n"
	"  - name: mesh\n"
	"    records:\n"
	"      - {name: www, type: A, data: 192.0.2.1}\n"
	"    services:\n"
	"      - {name: a, ports: {http: 80}, backends: [10.0.0.1, 10.0.0.2]}\n"
	"      - {name: b, ports: {http: 80, dns: {port: 53, proto: udp}}, policy: failover,\n"
	"         backends: [{address: 10.0.1.1, priority: 0}, {address: 10.0.1.2, priority: 1}]}\n"
	"      - {name: c.sub, ports: {grpc: 9000}, backends: ['fd00::1', 10.0.2.1]}\n";

/* Every state id in one table; ids by (service index, backend address). */
static struct bstate *states;
static uint32_t ids[64][64];

static uint32_t sid_of(void *arg, size_t zi, size_t si, size_t bi)
{
	const struct config *cfg = arg;
	const struct cfg_backend *b = &cfg->zones[zi].services[si].backends[bi];
	uint8_t k = b->family == AF_INET ? b->addr[3] : b->addr[15];
	if (si >= 64 || k >= 64)
		return 0;
	if (!ids[si][k] && bstate_alloc(states, &ids[si][k]) == -1)
		return 0;
	return ids[si][k];
}

/* Sorted text of every record a transfer of zone 0 holds, SOA aside. */
struct lines {
	char **v;
	size_t n, cap;
};

static void add_line(void *arg, const uint8_t *owner, size_t ownerlen, uint16_t type, uint32_t ttl,
                     const uint8_t *rd, uint16_t rdlen)
{
	struct lines *l = arg;
	if (type == DNS_TYPE_SOA)
		return;
	char name[DNS_NAME_MAX * 4 + 2], hex[2 * 300 + 1] = "";
	wire_name_to_text(owner, ownerlen, name, sizeof(name));
	for (size_t i = 0; i < rdlen && i < 300; i++)
		snprintf(hex + 2 * i, 3, "%02x", rd[i]);
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
	}
	char *s = malloc(strlen(name) + strlen(hex) + 32);
	sprintf(s, "%s %u %u %s", name, type, ttl, hex);
	l->v[l->n++] = s;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *render(const struct zone_snapshot *snap)
{
	struct lines l = { 0 };
	xfr_render_zone(&snap->zones[0], add_line, &l);
	qsort(l.v, l.n, sizeof(*l.v), cmp_str);
	size_t len = 1;
	for (size_t i = 0; i < l.n; i++)
		len += strlen(l.v[i]) + 1;
	char *out = malloc(len);
	out[0] = '\0';
	for (size_t i = 0; i < l.n; i++) {
		strcat(out, l.v[i]);
		strcat(out, "\n");
		free(l.v[i]);
	}
	free(l.v);
	return out;
}

static struct zone_snapshot *build(const struct config *cfg, struct registry *reg)
{
	struct zone_snapshot *snap = NULL;
	char err[256];
	if (zone_build(cfg, NULL, reg, states, sid_of, (void *)cfg, &snap, err, sizeof(err)) != 0) {
		diag("build: %s", err);
		return NULL;
	}
	return snap;
}

static void test_reuse(void)
{
	struct registry *reg = registry_new();
	struct config *c1 = load(base_yaml);
	struct zone_snapshot *s1 = build(c1, reg);
	registry_commit(reg);
	is_int(registry_builds(reg), 3, "first build: a block per service");
	is_int(registry_count(reg), 3, "three slots");
	const struct zone_service *a1 = zone_slot_service(s1->zones[0].slots[0]);
	const struct zone_service *b1 = zone_slot_service(s1->zones[0].slots[1]);

	/* The same config again (a reload of an unchanged file). */
	struct config *c2 = load(base_yaml);
	struct zone_snapshot *s2 = build(c2, reg);
	registry_commit(reg);
	is_int(registry_builds(reg), 3, "unchanged services keep their blocks");
	ok(s2->zones[0].slots[0] == s1->zones[0].slots[0] &&
	   zone_slot_service(s2->zones[0].slots[0]) == a1, "same slot, same block");

	/* One service changed: only it is rebuilt. */
	char *y3 = strdup(base_yaml);
	char *p = strstr(y3, "10.0.0.2");
	memcpy(p, "10.0.0.3", 8);
	struct config *c3 = load(y3);
	struct zone_snapshot *s3 = build(c3, reg);
	is_int(registry_builds(reg), 4, "one changed service: one block built");
	ok(zone_slot_service(s3->zones[0].slots[0]) == a1, "before commit the old block serves");
	registry_commit(reg);
	const struct zone_service *a3 = zone_slot_service(s3->zones[0].slots[0]);
	ok(a3 != a1 && a3->backends[1].addr[3] == 3, "after commit the new block serves");
	ok(zone_slot_service(s3->zones[0].slots[1]) == b1, "the others keep theirs");
	struct zone_result r;
	uint8_t name[DNS_NAME_MAX];
	size_t len;
	wire_name_from_text("10-0-0-3.a.mesh", name, &len);
	zone_lookup(s3, name, len, &r);
	ok(r.status == ZONE_FOUND, "the new snapshot finds the new block's names");
	/* The old snapshot, read until the grace period ends, keeps the
	 * block it was built with (freed only after that grace period). */
	zone_lookup(s1, name, len, &r);
	ok(r.status == ZONE_NXDOMAIN, "the old snapshot keeps its block");
	wire_name_from_text("a.mesh", name, &len);
	zone_lookup(s3, name, len, &r);
	ok(r.status == ZONE_FOUND && zone_node_service(r.node) == a3,
	   "the new snapshot's service node serves the committed block");

	/* A service removed: retired at commit, freed at reclaim. */
	struct config *c4 = load("zones:\n  - name: mesh\n    services:\n"
	                         "      - {name: a, ports: {http: 80}, backends: [10.0.0.1, 10.0.0.3]}\n");
	struct zone_snapshot *s4 = build(c4, reg);
	registry_commit(reg);
	is_int(registry_count(reg), 1, "two services gone: one slot left");
	is_int(registry_builds(reg), 4, "the remaining one kept its block");
	registry_reclaim(reg);
	zone_free(s1);
	zone_free(s2);
	zone_free(s3);
	zone_free(s4);
	registry_free(reg);
	config_free(c1);
	config_free(c2);
	config_free(c3);
	config_free(c4);
	free(y3);
}

/* xorshift, for a reproducible sequence. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

static const char prop_yaml[] =
	"zones:\n"
	"  - name: mesh\n"
	"    services:\n"
	"      - {name: s0, ports: {http: 80}, check: {type: tcp}, backends: [10.1.0.1, 10.1.0.2]}\n"
	"      - {name: s1, ports: {http: 80, dns: {port: 53, proto: udp}}, check: {type: tcp},\n"
	"         policy: failover, backends: [{address: 10.1.1.1, priority: 1}, 10.1.1.2]}\n"
	"      - {name: s2, ports: {http: 80}, check: {type: tcp}, fail-open: false,\n"
	"         backends: ['fd00::5', 10.1.2.1]}\n";

static void test_property(void)
{
	struct registry *reg = registry_new();
	struct config *cfg = load(prop_yaml);
	struct zone_snapshot *live = build(cfg, reg);
	registry_commit(reg);
	unsigned steps = 0, mismatches = 0, node_mismatches = 0, flips = 0, edits = 0, rebuilds = 0;
	char first[512] = "";
	char first_node[128] = "";
	for (int step = 0; step < 600 && live; step++) {
		int what = (int)rnd(10);
		size_t si = rnd(3);
		struct cfg_service *s = &cfg->zones[0].services[si];
		if (what < 5) {
			/* A health flip: one word. */
			if (s->nbackends) {
				uint32_t id = sid_of(cfg, 0, si, rnd((uint32_t)s->nbackends));
				uint64_t w = bstate_load(bstate_slot(states, id));
				bstate_set(states, id, !bstate_word_up(w), 1000 + (uint64_t)step);
				flips++;
			}
		} else if (what < 9) {
			/* An UPDATE of one service: add or remove a backend, then
			 * that service's block alone is replaced. */
			struct cfg_backend b = { .family = AF_INET };
			b.addr[0] = 10;
			b.addr[1] = 1;
			b.addr[2] = (uint8_t)si;
			b.addr[3] = (uint8_t)(1 + rnd(8));
			char err[256];
			if (rnd(2) && s->nbackends > 0)
				config_remove_backends(cfg, 0, si, AF_INET, b.addr, false, 0);
			else
				config_add_backend(cfg, 0, si, &b, err, sizeof(err));
			if (registry_replace(reg, live->zones[0].slots[si], &cfg->zones[0], s, states,
			                     sid_of, cfg, 0, si, err, sizeof(err)) != 0)
				diag("replace: %s", err);
			registry_reclaim(reg);
			edits++;
		} else {
			/* A reload: a new snapshot over the same registry. */
			struct zone_snapshot *n = build(cfg, reg);
			registry_commit(reg);
			zone_free(live);
			registry_reclaim(reg);
			live = n;
			rebuilds++;
		}
		/* Queries find a service through its zone node: that node
		 * serves the slot's block after every kind of change. */
		for (size_t k = 0; k < live->zones[0].nservices; k++) {
			const struct zone_service *want = zone_slot_service(live->zones[0].slots[k]);
			struct zone_result zr;
			zone_lookup(live, want->owner, want->ownerlen, &zr);
			if ((zr.status != ZONE_FOUND || zone_node_service(zr.node) != want) &&
			    node_mismatches++ == 0)
				snprintf(first_node, sizeof(first_node), "step %d (kind %d, service %zu)",
				         step, what, k);
		}
		/* The property: the registry's snapshot transfers what a fresh
		 * build of the same config and states transfers. */
		struct zone_snapshot *fresh = build(cfg, NULL);
		char *x = render(live), *y = fresh ? render(fresh) : strdup("");
		if (strcmp(x, y) != 0 && mismatches++ == 0)
			snprintf(first, sizeof(first), "step %d (kind %d, service %zu)", step, what, si);
		free(x);
		free(y);
		zone_free(fresh);
		steps++;
	}
	ok(steps == 600, "600 random steps (%u flips, %u in-place service changes, %u rebuilds)", flips,
	   edits, rebuilds);
	is_int(mismatches, 0, "incremental transfers equal a fresh build's at every step%s%s",
	       first[0] ? ": first at " : "", first);
	is_int(node_mismatches, 0, "a query reaches the slot's block at every step%s%s",
	       first_node[0] ? ": first at " : "", first_node);
	zone_free(live);
	registry_free(reg);
	config_free(cfg);
}

/* Frozen services: unchecked ones keep their backends in their blocks
 * alone once served (registry_freeze). A rebuild of the frozen config
 * reuses those blocks; an edit works on a copy thawed from the block; and
 * after any sequence of edits and rebuilds, the snapshot transfers what a
 * fresh build of the thawed config does. */
static const char freeze_yaml[] =
	"zones:\n"
	"  - name: mesh\n"
	"    services:\n"
	"      - {name: a, ports: {http: 80}, backends: [10.2.0.1, 10.2.0.2]}\n"
	"      - {name: b, ports: {http: 80, dns: {port: 53, proto: udp}}, policy: round-robin,\n"
	"         backends: [{address: 10.2.1.1, weight: 3}, {address: 'fd00::7', port: 8080}]}\n"
	"      - {name: c, ports: {grpc: 9000}, policy: locality,\n"
	"         backends: [{address: 10.2.2.1, name: Web1, locality: east}, 10.2.2.2]}\n"
	"      - {name: d, ports: {http: 80}, check: {type: tcp}, backends: [10.2.3.1]}\n";

/* As the watcher: state ids for checked backends only. */
static uint32_t checked_sid(void *arg, size_t zi, size_t si, size_t bi)
{
	const struct config *cfg = arg;
	const struct cfg_service *s = &cfg->zones[zi].services[si];
	if (cfg_backend_check(s, &s->backends[bi])->type == CFG_CHECK_NONE)
		return 0;
	return sid_of(arg, zi, si, bi);
}

static struct zone_snapshot *build_checked(const struct config *cfg, struct registry *reg)
{
	struct zone_snapshot *snap = NULL;
	char err[256];
	if (zone_build(cfg, NULL, reg, states, checked_sid, (void *)cfg, &snap, err, sizeof(err))) {
		diag("build: %s", err);
		return NULL;
	}
	return snap;
}

/* Zone 0 of cfg with every service thawed from snap's blocks (a config
 * of its own; thawed_free frees it). */
static struct config *thawed(const struct config *cfg, const struct zone_snapshot *snap)
{
	struct config *t = calloc(1, sizeof(*t));
	struct cfg_zone *z = calloc(1, sizeof(*z));
	*z = cfg->zones[0];
	z->services = calloc(z->nservices, sizeof(*z->services));
	for (size_t i = 0; i < z->nservices; i++)
		if (zone_service_copy(&z->services[i], &cfg->zones[0].services[i],
		                      zone_slot_service(snap->zones[0].slots[i])) == -1)
			diag("thaw of service %zu failed", i);
	t->zones = z;
	t->nzones = 1;
	return t;
}

static void thawed_free(struct config *t)
{
	for (size_t i = 0; i < t->zones[0].nservices; i++)
		config_service_clear(&t->zones[0].services[i]);
	free(t->zones[0].services);
	free(t->zones);
	free(t);
}

static void test_freeze(void)
{
	struct registry *reg = registry_new();
	struct config *cfg = load(freeze_yaml);
	struct zone_snapshot *live = build_checked(cfg, reg);
	registry_commit(reg);
	char *before = render(live);
	is_int(registry_freeze(reg, cfg), 3, "the three unchecked services freeze");
	const struct cfg_service *sv = cfg->zones[0].services;
	ok(sv[0].frozen && !sv[0].backends && sv[0].nbackends == 0 && sv[0].nfrozen == 2 &&
	   sv[2].frozen && !sv[3].frozen && sv[3].nbackends == 1,
	   "frozen: no backends of their own; the checked one keeps its own");
	ok(cfg->slab == NULL, "the slab is given back");
	is_int(registry_freeze(reg, cfg), 0, "freezing again: nothing to do");

	/* A rebuild of the frozen config (a health rollback): blocks reused. */
	uint64_t builds = registry_builds(reg);
	struct zone_snapshot *n = build_checked(cfg, reg);
	registry_commit(reg);
	is_int(registry_builds(reg), builds, "a rebuild of the frozen config reuses every block");
	char *after = n ? render(n) : strdup("");
	is_str(after, before, "and transfers the same records");
	free(after);
	zone_free(live);
	registry_reclaim(reg);
	live = n;

	/* Thawed: the same key, the name as written, the locality. */
	struct cfg_service ns;
	ok(zone_service_copy(&ns, &sv[2], zone_slot_service(live->zones[0].slots[2])) == 0 &&
	   ns.nbackends == 2 && !ns.frozen && strcmp(ns.backends[0].name, "Web1") == 0 &&
	   ns.backends[0].locality && strcmp(ns.backends[0].locality, "east") == 0 &&
	   zone_block_key(&ns, NULL, NULL, NULL, 0, 2) == sv[2].block_key,
	   "a thawed copy has the backends back, and its block's key");
	config_service_clear(&ns);
	ok(zone_service_copy(&ns, &sv[2], zone_slot_service(live->zones[0].slots[0])) == -1 &&
	   ns.backends == NULL, "another service's block does not thaw it");
	struct zone_snapshot *lone;
	char err[256];
	ok(zone_build(cfg, NULL, NULL, NULL, NULL, NULL, &lone, err, sizeof(err)) == -1 &&
	   strstr(err, "not in this registry"), "a frozen config outside its registry: an error (%s)",
	   err);

	/* Random edits (as UPDATE and etcd make them) and rebuilds. */
	unsigned mismatches = 0, steps = 0, refused = 0;
	char first[128] = "";
	for (int step = 0; step < 300 && live; step++) {
		size_t si = rnd(4);
		int what = (int)rnd(4);
		struct cfg_service *s = &cfg->zones[0].services[si];
		if (what < 3) {
			struct cfg_service copy;
			if (zone_service_copy(&copy, s, zone_slot_service(live->zones[0].slots[si]))) {
				refused++;
				continue;
			}
			struct cfg_zone tz = cfg->zones[0];
			tz.services = &copy;
			tz.nservices = 1;
			struct config tc = { .zones = &tz, .nzones = 1 };
			struct cfg_backend b = { .family = AF_INET, .addr = { 10, 2, (uint8_t)si } };
			b.addr[3] = (uint8_t)(1 + rnd(6));
			if (rnd(2) && copy.nbackends > 1)
				config_remove_backends(&tc, 0, 0, AF_INET, b.addr, false, 0);
			else
				config_add_backend(&tc, 0, 0, &b, err, sizeof(err));
			struct cfg_service old = *s;
			*s = copy;
			if (registry_replace(reg, live->zones[0].slots[si], &cfg->zones[0], s, states,
			                     checked_sid, cfg, 0, si, err, sizeof(err)) != 0)
				diag("replace: %s", err);
			else if (config_service_freezable(s))
				config_service_freeze(s, registry_slot_key(live->zones[0].slots[si]));
			config_service_clear(&old);
			registry_reclaim(reg);
		} else {
			struct zone_snapshot *r = build_checked(cfg, reg);
			registry_commit(reg);
			registry_freeze(reg, cfg);
			zone_free(live);
			registry_reclaim(reg);
			live = r;
		}
		struct config *t = thawed(cfg, live);
		struct zone_snapshot *fresh = build_checked(t, NULL);
		char *x = render(live), *y = fresh ? render(fresh) : strdup("");
		if (strcmp(x, y) != 0 && mismatches++ == 0)
			snprintf(first, sizeof(first), "step %d (kind %d, service %zu)", step, what, si);
		free(x);
		free(y);
		zone_free(fresh);
		thawed_free(t);
		steps++;
	}
	ok(steps == 300 && refused == 0, "300 steps of thaw, edit, replace, freeze and rebuild");
	is_int(mismatches, 0, "transfers equal a fresh build of the thawed config%s%s",
	       first[0] ? ": first at " : "", first);
	free(before);
	zone_free(live);
	registry_free(reg);
	config_free(cfg);
}

int main(void)
{
	states = bstate_new();
	test_reuse();
	test_property();
	test_freeze();
	bstate_free(states);
	return done_testing();
}

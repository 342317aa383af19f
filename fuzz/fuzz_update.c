/* fuzz_update.c -- UPDATE processing (update.c) for any bytes: the zone
 * section, prerequisites against the served zone, the updates read and
 * validated as the YAML's records are, then the way each takes (a
 * service's backends, static records built beside the running config).
 * The changes are checked and built but not kept, so every input meets
 * the same zone. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util/log.h"
#include "registry.h"
#include "update.h"
#include "dns/wire.h"
#include "zone.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char yaml[] =
	"zones:\n"
	"  - name: mesh\n"
	"    records:\n"
	"      - {name: ns1, type: A, data: 127.0.0.1}\n"
	"      - {name: www, type: AAAA, data: '2001:db8::1'}\n"
	"      - {name: txt, type: TXT, data: hello}\n"
	"    services:\n"
	"      - name: user-service\n"
	"        ports: {http: 8080, dns: {port: 53, proto: udp}}\n"
	"        backends: [10.0.0.1, 10.0.0.2, 'fd00::1', {address: 10.0.0.3, name: three}]\n"
	"      - {name: checked, ports: {http: 80}, check: {type: tcp}, backends: [10.0.1.1]}\n";

static struct config *cfg;
static struct registry *reg;
static struct update *upd;

static const struct config *live(void *arg)
{
	(void)arg;
	return cfg;
}

static int whole(void *arg, struct config *ncfg)
{
	(void)arg;
	config_free(ncfg);
	return 0;
}

static int service(void *arg, size_t zi, size_t si, struct cfg_service *ns)
{
	(void)arg;
	(void)zi;
	(void)si;
	config_service_clear(ns);
	return 0;
}

static int prepare(void *arg, const struct config *shadow, void **pending, char *err,
                   size_t errlen)
{
	(void)arg;
	struct zone_snapshot *snap;
	if (zone_build(shadow, zone_current(), reg, NULL, NULL, NULL, &snap, err, errlen) == -1)
		return -1;
	*pending = snap;
	return 0;
}

static void drop(void *arg, void *pending)
{
	(void)arg;
	registry_abort(reg);
	zone_free(pending);
}

/* The records stay with the caller, which frees them: nothing is kept. */
static void commit(void *arg, void *pending, size_t zi, struct cfg_record **recs, size_t *n)
{
	(void)zi;
	(void)recs;
	(void)n;
	drop(arg, pending);
}

static const struct update_ops ops = { .live = live, .commit = whole, .service = service,
	                               .records_prepare = prepare, .records_commit = commit,
	                               .records_abort = drop };

static void setup(void)
{
	struct config_error ce;
	struct zone_snapshot *snap;
	char err[256];
	uint8_t origin[DNS_NAME_MAX];
	size_t olen;
	log_set_level(LOG_LEVEL_ERR);
	if (config_load_string(yaml, sizeof(yaml) - 1, "fuzz.yaml", &cfg, &ce) != 0 ||
	    !(reg = registry_new()) ||
	    zone_build(cfg, NULL, reg, NULL, NULL, NULL, &snap, err, sizeof(err)) != 0)
		abort();
	registry_commit(reg);
	zone_publish(snap);
	wire_name_from_text("mesh.", origin, &olen);
	if (!(upd = update_new_for_test(origin, olen)) ||
	    update_allow_key_for_test(upd, "key.mesh.") != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!cfg)
		setup();
	unsigned rc = update_process_for_test(upd, data, size, "key.mesh.", &ops);
	if (rc > 15)
		abort();
	return 0;
}

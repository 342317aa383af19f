/* fuzz_config.c -- the YAML configuration loader on arbitrary bytes. Besides
 * crashes and leaks, checks what config.c promises: errors read
 * "file:line:col: ...", and a loaded config holds only validated values. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dns/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_check(const struct cfg_check *k)
{
	if (k->timeout_ms == 0 || k->timeout_ms > k->interval_ms || k->rise == 0 || k->fall == 0 ||
	    k->nexpect > sizeof(k->expect) / sizeof(k->expect[0]))
		abort();
}

static void check_config(const struct config *cfg)
{
	if (cfg->nzones == 0 || cfg->nlisten == 0 || cfg->udp_max_payload < 512 ||
	    cfg->udp_max_payload > 4096 || cfg->workers > 64)
		abort();
	for (size_t i = 0; i < cfg->nzones; i++) {
		const struct cfg_zone *z = &cfg->zones[i];
		if (!wire_name_valid(z->origin, z->originlen) || z->nns == 0 || z->soa.mnamelen == 0 ||
		    z->soa.rnamelen == 0)
			abort();
		for (size_t j = 0; j < z->nrecords; j++) {
			const struct cfg_record *r = &z->records[j];
			if (!wire_name_is_subdomain(r->owner, r->ownerlen, z->origin, z->originlen) ||
			    !r->rdata)
				abort();
		}
		for (size_t j = 0; j < z->nservices; j++) {
			const struct cfg_service *s = &z->services[j];
			if (!s->name || s->nports == 0 || !wire_name_valid(s->owner, s->ownerlen) ||
			    !wire_name_is_subdomain(s->owner, s->ownerlen, z->origin, z->originlen))
				abort();
			check_check(&s->check);
			for (size_t k = 0; k < s->nbackends; k++) {
				const struct cfg_backend *b = &s->backends[k];
				if (!b->name || b->weight < 1 || b->weight > 65535)
					abort();
				check_check(cfg_backend_check(s, b));
			}
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *cfg = NULL;
	struct config_error err;

	if (config_load_string((const char *)data, size, "fuzz", &cfg, &err) == 0) {
		check_config(cfg);
		config_free(cfg);
	} else if (strncmp(err.msg, "fuzz:", 5) != 0 || cfg != NULL) {
		abort();
	}
	return 0;
}

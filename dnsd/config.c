/* config.c -- the YAML configuration: loads a file into a plain struct config
 * through the schema tables (config_*.c) and frees it; knows nothing of
 * sockets or snapshots. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sodium.h>

#include "config_int.h"
#include "util/file.h"
#include "dns/wire.h"
#include "yamldoc.h"

/* ---- the slab: the loaded backends --------------------------------------- */

/* The backend arrays and default names of a loaded config, packed in big
 * mappings of their own rather than a heap block per service: once the
 * registry's blocks hold the backends (registry_freeze), the mappings go
 * back to the kernel whole, where freed heap blocks among the config's
 * other allocations would stay resident (a million backends: 84 MB). */
struct cfg_slab {
	struct cfg_slab *next;
	size_t size, used;            /* bytes of the mapping; used counts this header */
};
enum { CFG_SLAB_CHUNK = 4 << 20, CFG_SLAB_ALIGN = 16 };

/* LeakSanitizer scans the heap, not our mappings: the names a slab points
 * at would look leaked unless it is told where the slab is. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CFG_SLAB_LSAN 1             /* clang */
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(CFG_SLAB_LSAN)
#include <sanitizer/lsan_interface.h>
#define SLAB_LSAN_ROOT(p, n) __lsan_register_root_region((p), (n))
#define SLAB_LSAN_UNROOT(p, n) __lsan_unregister_root_region((p), (n))
#else
#define SLAB_LSAN_ROOT(p, n) ((void)(p), (void)(n))
#define SLAB_LSAN_UNROOT(p, n) ((void)(p), (void)(n))
#endif

void *cfg_slab_alloc(struct config *cfg, size_t n)
{
	size_t hdr = (sizeof(struct cfg_slab) + CFG_SLAB_ALIGN - 1) & ~(size_t)(CFG_SLAB_ALIGN - 1);
	n = (n + CFG_SLAB_ALIGN - 1) & ~(size_t)(CFG_SLAB_ALIGN - 1);
	struct cfg_slab *sl = cfg->slab;
	if (!sl || sl->size - sl->used < n) {
		size_t size = CFG_SLAB_CHUNK;
		if (hdr + n > size)
			size = (hdr + n + 4095) & ~(size_t)4095;
		void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			return NULL;
		SLAB_LSAN_ROOT(m, size);
		sl = m;
		sl->next = cfg->slab;
		sl->size = size;
		sl->used = hdr;
		cfg->slab = sl;
	}
	void *p = (char *)sl + sl->used;
	sl->used += n;
	return p;
}

void cfg_slab_free(struct config *cfg)
{
	while (cfg->slab) {
		struct cfg_slab *next = cfg->slab->next;
		SLAB_LSAN_UNROOT(cfg->slab, cfg->slab->size);
		munmap(cfg->slab, cfg->slab->size);
		cfg->slab = next;
	}
}
/* ---- loading ------------------------------------------------------------ */

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->nzones; i++) {
		struct cfg_zone *z = &cfg->zones[i];
		config_records_free(z->records, z->nrecords);
		for (size_t j = 0; j < z->nservices; j++)
			config_service_clear(&z->services[j]);
		free(z->name);
		free(z->ns);
		free(z->nslen);
		free(z->services);
		cfg_transfer_clear(&z->transfer);
		for (size_t j = 0; j < z->nnotify; j++)
			free(z->notify[j].key.name);
		free(z->notify);
		cfg_update_clear(&z->update);
	}
	for (size_t i = 0; i < cfg->nkeys; i++)
		free(cfg->keys[i].name_text);
	if (cfg->keys)
		sodium_memzero(cfg->keys, cfg->nkeys * sizeof(*cfg->keys));
	free(cfg->keys);
	cfg_transfer_clear(&cfg->transfer);
	free(cfg->rrl.exempt);
	free(cfg->chaos.allow);
	cfg_etcd_clear(&cfg->etcd);
	sodium_memzero(&cfg->cookies, sizeof(cfg->cookies));
	for (size_t i = 0; i < cfg->nlocalities; i++)
		free(cfg->localities[i].label);
	free(cfg->localities);
	free(cfg->forward.upstreams);
	free(cfg->forward.resolv_conf);
	free(cfg->zones);
	free(cfg->listen);
	free(cfg->path);
	cfg_slab_free(cfg);
	free(cfg);
}

int config_load_string(const char *yaml, size_t len, const char *name, struct config **out,
                       struct config_error *err)
{
	struct cfg_ctx c = { .name = name ? name : "<string>", .err = err };
	struct yamldoc yd = { 0 };
	struct yamldoc_error e;
	int rc = -1;

	err->msg[0] = '\0';
	/* One pass over libyaml's events builds the document (one node array,
	 * one arena, not a malloc per node). Syntax errors, nesting deeper than
	 * CFG_MAX_DEPTH (far more than the schema's 9 levels; libyaml is
	 * quadratic in depth), undefined aliases and a second document fail here. */
	if (yamldoc_load(yaml, len, CFG_MAX_DEPTH, &yd, &e) == -1)
		return cfg_fail_at(&c, e.line, e.col, "%s", e.msg);
	c.doc = &yd.doc;
	c.max_visits = 16 * (size_t)(yd.doc.nodes.top - yd.doc.nodes.start) + 100000;

	yaml_node_t *root = yaml_document_get_root_node(&yd.doc);
	if (!root) {
		cfg_fail_at(&c, 1, 1, "empty configuration");
		goto out;
	}
	if (root->type != YAML_MAPPING_NODE) {
		cfg_fail(&c, root, "the top level must be a mapping, not %s", cfg_node_kind(root));
		goto out;
	}
	c.cfg = calloc(1, sizeof(*c.cfg));
	c.rdbuf = malloc(CFG_RDATA_MAX);
	if (!c.cfg || !c.rdbuf || !(c.cfg->path = strdup(c.name))) {
		cfg_fail_at(&c, 1, 1, "out of memory");
		goto out;
	}
	if (schema_defaults(&c, root, cfg_top_items, c.cfg) == -1 ||
	    schema_map(&c, root, cfg_top_items, c.cfg, 0, "top level") == -1)
		goto out;
	if (c.cfg->nzones == 0) {
		cfg_fail(&c, root, "no zones defined");
		goto out;
	}
	if (cfg_check_keyrefs(&c) == -1 || cfg_check_search_path(&c, root) == -1)
		goto out;
	/* Which services have backends with checks of their own: the watcher
	 * then looks at the backends of checked services only. It points at
	 * them, so theirs leave the slab now, before it can. */
	for (size_t zi = 0; zi < c.cfg->nzones; zi++)
		for (size_t si = 0; si < c.cfg->zones[zi].nservices; si++) {
			struct cfg_service *s = &c.cfg->zones[zi].services[si];
			for (size_t bi = 0; bi < s->nbackends && !s->own_checks; bi++)
				s->own_checks = s->backends[bi].check != NULL;
			if ((s->own_checks || s->check.type != CFG_CHECK_NONE) &&
			    config_service_own(s) == -1) {
				cfg_fail_at(&c, s->line, s->col, "out of memory");
				goto out;
			}
		}
	*out = c.cfg;
	c.cfg = NULL;
	rc = 0;
out:
	config_free(c.cfg);
	free(c.rdbuf);
	itab_free(&c.svc_index);
	free(c.names);
	yamldoc_free(&yd);
	return rc;
}

int config_load(const char *path, struct config **out, struct config_error *err)
{
	char *buf;
	size_t len;
	if (file_read(path, CFG_FILE_MAX, &buf, &len, err->msg, sizeof(err->msg)) == -1)
		return -1;
	int rc = config_load_string(buf, len, path, out, err);
	free(buf);
	return rc;
}


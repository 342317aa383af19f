/* update.c -- RFC 2136 dynamic updates: the worker-side queue, the
 * per-zone overlay of operations and its journal, and the control-thread
 * processing (zone, key, prerequisites, update section, apply, journal,
 * publish, answer). Not here: sockets (server.c), TSIG (tsig.c, verified
 * by xfr.c before an UPDATE is queued), snapshots (zone.c).
 *
 * The effective config is always the YAML text as last loaded plus the
 * overlay: every accepted update re-parses that text (config_load_string)
 * and re-applies the overlay, so the health watcher and the snapshot get a
 * fresh config they own, as after a reload. */
#include "update.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>

#include "util/file.h"
#include "util/log.h"
#include "dns/rdata.h"
#include "request.h"
#include "server.h"
#include "dns/tsig.h"
#include "dns/wire.h"
#include "xfr.h"
#include "zone.h"

/* ---- the queue (workers -> control thread) ----------------------------------- */

struct update_req {
	struct server_route route;
	bool tcp;
	size_t limit;                 /* the longest answer the client takes */
	struct tsig_ctx tsig;
	struct tsig_key key;          /* a copy: keys may be reloaded meanwhile */
	size_t len;
	uint8_t msg[];                /* the request without its TSIG RR */
};

/* UPDATEs waiting for the control thread, in arrival order. */
struct update_queue {
	pthread_mutex_t mu;
	struct update_req *q[UPDATE_QUEUE_MAX];
	size_t head, len;
	int fd;                       /* eventfd: the control thread polls it */
};

struct update_queue *update_queue_new(void)
{
	struct update_queue *uq = calloc(1, sizeof(*uq));
	if (!uq)
		return NULL;
	uq->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (uq->fd == -1) {
		free(uq);
		return NULL;
	}
	pthread_mutex_init(&uq->mu, NULL);
	return uq;
}

int update_queue_fd(const struct update_queue *uq)
{
	return uq->fd;
}

static struct update_req *queue_pop(struct update_queue *uq)
{
	pthread_mutex_lock(&uq->mu);
	struct update_req *r = NULL;
	if (uq->len) {
		r = uq->q[uq->head];
		uq->head = (uq->head + 1) % UPDATE_QUEUE_MAX;
		uq->len--;
	}
	pthread_mutex_unlock(&uq->mu);
	return r;
}

void update_queue_free(struct update_queue *uq)
{
	if (!uq)
		return;
	struct update_req *r;
	while ((r = queue_pop(uq)))
		free(r);
	close(uq->fd);
	pthread_mutex_destroy(&uq->mu);
	free(uq);
}

/* Header, the zone section if it reads well, rcode. */
static int short_reply(const uint8_t *req, size_t len, unsigned rcode, uint8_t *resp, size_t cap)
{
	if (len < DNS_HEADER_LEN || cap < DNS_HEADER_LEN)
		return -1;
	struct wire_reader r;
	wire_reader_init(&r, req, len);
	struct dns_header h;
	wire_read_header(&r, &h);
	struct dns_question z;
	bool zone = false;
	if (h.qdcount == 1) {
		wire_read_question(&r, &z);
		zone = !r.err;
	}
	return wire_reply_short(&h, zone ? &z : NULL, rcode, 0, resp, cap);
}

int update_submit(struct update_queue *uq, const struct request *r,
                  const struct server_peer *peer)
{
	if (!r->tsig)
		return DNS_RCODE_REFUSED;     /* RFC 2136 3.3 via policy: TSIG required */
	if (r->len > UPDATE_MSG_MAX)
		return DNS_RCODE_REFUSED;
	struct update_req *u = malloc(sizeof(*u) + r->len);
	if (!u)
		return DNS_RCODE_SERVFAIL;
	server_route_save(peer, &u->route);
	u->tcp = r->tcp;
	u->limit = r->limit;
	u->tsig = *r->tsig;
	u->key = *r->tsig->key;
	u->key.name_text = NULL;
	u->tsig.key = &u->key;
	u->len = r->len;
	memcpy(u->msg, r->msg, r->len);
	pthread_mutex_lock(&uq->mu);
	bool queued = uq->len < UPDATE_QUEUE_MAX;
	if (queued) {
		uq->q[(uq->head + uq->len) % UPDATE_QUEUE_MAX] = u;
		uq->len++;
	}
	pthread_mutex_unlock(&uq->mu);
	if (!queued) {
		free(u);
		return DNS_RCODE_SERVFAIL;
	}
	uint64_t one = 1;
	if (write(uq->fd, &one, sizeof(one)) == -1) {
		/* A full counter: the control thread has a wakeup pending. */
	}
	return SERVER_DEFERRED;
}

/* ---- the overlay ------------------------------------------------------------- */

struct overlay {
	uint8_t origin[DNS_NAME_MAX];
	size_t originlen;
	char *journal_path;
	struct journal *j;            /* NULL when checking only */
	struct journal_op *ops;       /* rdata of each malloc'd */
	size_t nops, cap;
	struct cfg_keyref *keys;      /* names of the keys allowed (copies) */
	size_t nkeys;
};

/* The YAML as loaded is not kept (a million backends: 14 MB): only its
 * length and hash, which tell whether the file still holds it. */
enum { UPDATE_HASH_LEN = crypto_generichash_BYTES };

struct update {
	char *path;
	size_t yamllen;
	uint8_t yamlhash[UPDATE_HASH_LEN];
	struct overlay *zones;
	size_t nzones;
};

static void op_free(struct journal_op *op)
{
	free((void *)op->rdata);
	op->rdata = NULL;
}

static int op_copy(struct journal_op *dst, const struct journal_op *src)
{
	*dst = *src;
	uint8_t *rd = malloc(src->rdlen ? src->rdlen : 1);
	if (!rd)
		return -1;
	if (src->rdlen)
		memcpy(rd, src->rdata, src->rdlen);
	dst->rdata = rd;
	wire_name_lower(dst->owner, dst->ownerlen);
	return 0;
}

static void overlay_clear(struct overlay *o)
{
	for (size_t i = 0; i < o->nops; i++)
		op_free(&o->ops[i]);
	free(o->ops);
	o->ops = NULL;
	o->nops = o->cap = 0;
}

static void overlay_free(struct overlay *o)
{
	overlay_clear(o);
	journal_close(o->j);
	free(o->journal_path);
	for (size_t i = 0; i < o->nkeys; i++)
		free(o->keys[i].name);
	free(o->keys);
}

void update_free(struct update *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < u->nzones; i++)
		overlay_free(&u->zones[i]);
	free(u->zones);
	free(u->path);
	free(u);
}

size_t update_count(const struct update *u)
{
	size_t n = 0;
	for (size_t i = 0; u && i < u->nzones; i++)
		n += u->zones[i].nops;
	return n;
}

static bool same_owner(const struct journal_op *a, const struct journal_op *b)
{
	return wire_name_equal(a->owner, a->ownerlen, b->owner, b->ownerlen);
}

static bool same_rr(const struct journal_op *a, const struct journal_op *b)
{
	return same_owner(a, b) && a->type == b->type && a->rdlen == b->rdlen &&
	       memcmp(a->rdata, b->rdata, a->rdlen) == 0;
}

/* Whether the later operation op makes the earlier e redundant. */
static bool covers(const struct journal_op *op, const struct journal_op *e)
{
	if (!same_owner(op, e))
		return false;
	switch (op->kind) {
	case JOURNAL_DEL_NAME:
		return true;
	case JOURNAL_DEL_RRSET:
		return e->kind != JOURNAL_DEL_NAME && e->type == op->type;
	case JOURNAL_DEL_RR:
		return (e->kind == JOURNAL_ADD || e->kind == JOURNAL_DEL_RR) && same_rr(op, e);
	default:
		return false;
	}
}

/* Adds op to o, dropping the earlier operations it makes redundant, so the
 * overlay stays as small as the data it describes: replaying it in order
 * gives the same result as replaying every operation ever accepted. */
static int overlay_merge(struct overlay *o, const struct journal_op *op)
{
	size_t out = 0;
	bool dup = false;
	for (size_t i = 0; i < o->nops; i++) {
		struct journal_op *e = &o->ops[i];
		if (op->kind == JOURNAL_ADD && e->kind == JOURNAL_ADD && same_owner(op, e) &&
		    e->type == op->type) {
			e->ttl = op->ttl;     /* one RRset, one TTL */
			dup = dup || same_rr(op, e);
		}
		if (covers(op, e)) {
			op_free(e);
			continue;
		}
		o->ops[out++] = *e;
	}
	o->nops = out;
	if (dup)
		return 0;
	if (o->nops >= UPDATE_OPS_MAX)
		return -1;
	if (o->nops == o->cap) {
		size_t ncap = o->cap ? 2 * o->cap : 16;
		struct journal_op *n = realloc(o->ops, ncap * sizeof(*n));
		if (!n)
			return -1;
		o->ops = n;
		o->cap = ncap;
	}
	if (op_copy(&o->ops[o->nops], op) == -1)
		return -1;
	o->nops++;
	return 0;
}

static int overlay_copy(struct overlay *dst, const struct overlay *src)
{
	memset(dst, 0, sizeof(*dst));
	if (!src->nops)
		return 0;
	dst->ops = calloc(src->nops, sizeof(*dst->ops));
	if (!dst->ops)
		return -1;
	dst->cap = src->nops;
	for (size_t i = 0; i < src->nops; i++) {
		if (op_copy(&dst->ops[i], &src->ops[i]) == -1) {
			overlay_clear(dst);
			return -1;
		}
		dst->nops++;
	}
	return 0;
}

/* ---- applying operations to a config ---------------------------------------- */

static long zone_index(const struct config *cfg, const uint8_t *origin, size_t len)
{
	for (size_t i = 0; i < cfg->nzones; i++)
		if (wire_name_equal(cfg->zones[i].origin, cfg->zones[i].originlen, origin, len))
			return (long)i;
	return -1;
}

/* "10-0-0-5" or "fd00--5" (a backend's default name) to an address. */
static int label_addr(const uint8_t *label, size_t len, struct cfg_backend *b)
{
	char text[64];
	if (len == 0 || len >= sizeof(text))
		return -1;
	memcpy(text, label, len);
	text[len] = '\0';
	char v4[64], v6[64];
	for (size_t i = 0; i <= len; i++) {
		v4[i] = text[i] == '-' ? '.' : text[i];
		v6[i] = text[i] == '-' ? ':' : text[i];
	}
	if (inet_pton(AF_INET, v4, b->addr) == 1) {
		b->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, v6, b->addr) == 1) {
		b->family = AF_INET6;
		return 0;
	}
	return -1;
}

/* An SRV rdata at a service: priority, weight, port and a target named
 * <address-label>.<service> (the backend's default name). */
static int srv_backend(const struct cfg_service *s, const struct journal_op *op,
                       struct cfg_backend *b, char *err, size_t errlen)
{
	memset(b, 0, sizeof(*b));
	if (op->rdlen < 7) {
		snprintf(err, errlen, "bad SRV data");
		return -1;
	}
	const uint8_t *d = op->rdata;
	b->priority = (uint16_t)(d[0] << 8 | d[1]);
	b->weight = (uint32_t)(d[2] << 8 | d[3]);
	b->port = (uint16_t)(d[4] << 8 | d[5]);
	const uint8_t *t = d + 6;
	size_t tlen = op->rdlen - 6u;
	if (b->weight == 0)
		b->weight = 1;
	if (!wire_name_valid(t, tlen) || t[0] == 0 ||
	    !wire_name_equal(t + 1 + t[0], tlen - 1 - t[0], s->owner, s->ownerlen) ||
	    label_addr(t + 1, t[0], b) == -1 || b->port == 0) {
		snprintf(err, errlen, "SRV target must be <address>.%s (as 10-0-0-5.%s) and the "
		         "port not 0", s->name, s->name);
		return -1;
	}
	return 0;
}

/* Removes every backend of s of family (0: all). */
static size_t remove_family(struct config *cfg, size_t zi, size_t si, int family)
{
	if (family == 0)
		return config_remove_backends(cfg, zi, si, 0, NULL, false, 0);
	size_t n = 0;
	for (;;) {
		const struct cfg_service *s = &cfg->zones[zi].services[si];
		size_t i;
		for (i = 0; i < s->nbackends && s->backends[i].family != family; i++)
			;
		if (i == s->nbackends)
			return n;
		uint8_t addr[16];
		memcpy(addr, s->backends[i].addr, 16);
		n += config_remove_backends(cfg, zi, si, family, addr, false, 0);
	}
}

/* Applies op to zone zi of cfg. 0, or -1 with err set. */
static int apply_op(struct config *cfg, size_t zi, const struct journal_op *op, char *err,
                    size_t errlen)
{
	struct cfg_zone *z = &cfg->zones[zi];
	long si = config_find_service(cfg, zi, op->owner, op->ownerlen);
	if (si >= 0) {
		struct cfg_service *s = &z->services[si];
		struct cfg_backend b;
		memset(&b, 0, sizeof(b));
		int fam = op->type == DNS_TYPE_A ? AF_INET : op->type == DNS_TYPE_AAAA ? AF_INET6 : 0;
		switch (op->kind) {
		case JOURNAL_ADD:
			if (fam) {
				if (op->rdlen != (fam == AF_INET ? 4 : 16)) {
					snprintf(err, errlen, "bad address data");
					return -1;
				}
				b.family = fam;
				memcpy(b.addr, op->rdata, op->rdlen);
			} else if (op->type != DNS_TYPE_SRV) {
				snprintf(err, errlen, "a service name holds only A, AAAA and SRV");
				return -1;
			} else if (srv_backend(s, op, &b, err, errlen) == -1) {
				return -1;
			}
			return config_add_backend(cfg, zi, (size_t)si, &b, err, errlen) < 0 ? -1 : 0;
		case JOURNAL_DEL_RR:
			if (fam && op->rdlen == (fam == AF_INET ? 4u : 16u))
				config_remove_backends(cfg, zi, (size_t)si, fam, op->rdata, false, 0);
			else if (op->type == DNS_TYPE_SRV && srv_backend(s, op, &b, err, errlen) == 0)
				config_remove_backends(cfg, zi, (size_t)si, b.family, b.addr, true, b.port);
			return 0;
		case JOURNAL_DEL_RRSET:
			if (fam)
				remove_family(cfg, zi, (size_t)si, fam);
			else if (op->type == DNS_TYPE_SRV)
				remove_family(cfg, zi, (size_t)si, 0);
			return 0;
		default:
			remove_family(cfg, zi, (size_t)si, 0);
			return 0;
		}
	}
	for (size_t i = 0; i < z->nservices; i++) {
		const struct cfg_service *s = &z->services[i];
		if (op->kind == JOURNAL_ADD &&
		    wire_name_is_subdomain(op->owner, op->ownerlen, s->owner, s->ownerlen)) {
			snprintf(err, errlen, "names below service %s are made by dnsd", s->name);
			return -1;
		}
	}
	switch (op->kind) {
	case JOURNAL_ADD:
		return config_add_record(cfg, zi, op->owner, op->ownerlen, op->type, op->ttl, op->rdata,
		                         op->rdlen, err, errlen) < 0 ? -1 : 0;
	case JOURNAL_DEL_RR:
		config_remove_records(cfg, zi, op->owner, op->ownerlen, op->type, op->rdata, op->rdlen);
		return 0;
	case JOURNAL_DEL_RRSET:
		config_remove_records(cfg, zi, op->owner, op->ownerlen, op->type, NULL, 0);
		return 0;
	default:
		config_remove_records(cfg, zi, op->owner, op->ownerlen, 0, NULL, 0);
		return 0;
	}
}

/* Applies o to cfg. With drop, operations that fail are removed from o
 * (with a warning) and the count of them returned; without, the first
 * failure returns -1 with err set. */
static long overlay_apply(struct overlay *o, struct config *cfg, bool drop, char *err,
                          size_t errlen)
{
	long zi = zone_index(cfg, o->origin, o->originlen);
	if (zi < 0)
		return 0;
	size_t out = 0, dropped = 0;
	char why[256];
	for (size_t i = 0; i < o->nops; i++) {
		if (apply_op(cfg, (size_t)zi, &o->ops[i], why, sizeof(why)) == 0) {
			o->ops[out++] = o->ops[i];
			continue;
		}
		char name[DNS_NAME_MAX * 4 + 2];
		if (wire_name_to_text(o->ops[i].owner, o->ops[i].ownerlen, name, sizeof(name)) < 0)
			snprintf(name, sizeof(name), "?");
		if (!drop) {
			/* Where the YAML conflicts: the service or record at that
			 * name, else the zone. */
			const struct cfg_zone *z = &cfg->zones[zi];
			int line = z->line, col = z->col;
			long si = config_find_service(cfg, (size_t)zi, o->ops[i].owner, o->ops[i].ownerlen);
			if (si >= 0) {
				line = z->services[si].line;
				col = z->services[si].col;
			} else {
				for (size_t r = 0; r < z->nrecords; r++)
					if (wire_name_equal(z->records[r].owner, z->records[r].ownerlen,
					                    o->ops[i].owner, o->ops[i].ownerlen)) {
						line = z->records[r].line;
						col = z->records[r].col;
						break;
					}
			}
			snprintf(err, errlen,
			         "%s:%d:%d: conflicts with the update '%s %s' kept in journal %s (%s); "
			         "change the configuration, or remove the journal to drop the zone's "
			         "updates", cfg->path ? cfg->path : "config", line, col, name,
			         rdata_type_name(o->ops[i].type), o->journal_path, why);
			return -1;
		}
		log_warn("update: %s %s from the journal no longer applies (%s): dropped", name,
		         rdata_type_name(o->ops[i].type), why);
		op_free(&o->ops[i]);
		dropped++;
	}
	o->nops = out;
	if (config_check_zone(cfg, (size_t)zi, why, sizeof(why)) == -1) {
		if (!drop) {
			snprintf(err, errlen, "%s:%d:%d: zone %s conflicts with the updates kept in "
			         "journal %s (%s); change the configuration, or remove the journal to "
			         "drop the zone's updates", cfg->path ? cfg->path : "config",
			         cfg->zones[zi].line, cfg->zones[zi].col, cfg->zones[zi].name,
			         o->journal_path, why);
			return -1;
		}
		/* A conflict with the YAML as it is now: drop every change of the
		 * zone rather than refuse to serve. */
		log_warn("update: zone %s: the journaled changes conflict with the configuration "
		         "(%s): all %zu dropped", cfg->zones[zi].name, why, o->nops);
		dropped += o->nops;
		overlay_clear(o);
		return -2;
	}
	return (long)dropped;
}

size_t update_overlay_apply(const struct update *u, size_t zi, struct config *cfg)
{
	long n = overlay_apply(&u->zones[zi], cfg, true, NULL, 0);
	return n < 0 ? 1 : (size_t)n;
}

int update_overlay_merge(struct update *u, size_t zi, const struct journal_op *op)
{
	return overlay_merge(&u->zones[zi], op);
}

struct update *update_new_for_test(const uint8_t *origin, size_t originlen)
{
	struct update *u = calloc(1, sizeof(*u));
	if (!u || !(u->zones = calloc(1, sizeof(*u->zones)))) {
		free(u);
		return NULL;
	}
	u->nzones = 1;
	memcpy(u->zones[0].origin, origin, originlen);
	u->zones[0].originlen = originlen;
	return u;
}

/* ---- loading ----------------------------------------------------------------- */

/* The configuration's text (as config_load reads it). */
static int read_text(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
	return file_read(path, CFG_FILE_MAX, buf, len, err, errlen);
}

static int replay_one(void *arg, const struct journal_op *op)
{
	return overlay_merge(arg, op);
}

static void text_hash(const char *text, size_t len, uint8_t out[UPDATE_HASH_LEN])
{
	crypto_generichash(out, UPDATE_HASH_LEN, (const unsigned char *)text, len, NULL, 0);
}

/* Whether text is the YAML u was loaded from. */
static bool same_text(const struct update *u, const char *text, size_t len)
{
	uint8_t h[UPDATE_HASH_LEN];
	if (len != u->yamllen)
		return false;
	text_hash(text, len, h);
	return sodium_memcmp(h, u->yamlhash, sizeof(h)) == 0;
}

/* The effective config: the YAML of u (parsed, or read again from its
 * file) plus every overlay. -1 with err set; -2 (err set) when the file
 * no longer holds the YAML that was loaded (edited and not reloaded yet,
 * or gone). */
static int effective(struct update *u, bool drop, struct config *parsed, struct config **out,
                     char *err, size_t errlen)
{
	struct config_error ce;
	struct config *cfg = parsed;
	if (!cfg) {
		char *text;
		size_t len;
		if (!u->path) {
			snprintf(err, errlen, "no configuration file to apply it over");
			return -2;
		}
		if (read_text(u->path, &text, &len, err, errlen) == -1)
			return -2;
		if (!same_text(u, text, len)) {
			free(text);
			snprintf(err, errlen, "%s changed since it was loaded: reload it, then send the "
			         "update again", u->path);
			return -2;
		}
		int rc = config_load_string(text, len, u->path, &cfg, &ce);
		free(text);
		if (rc == -1) {
			snprintf(err, errlen, "%s", ce.msg);
			return -1;
		}
	}
	for (size_t i = 0; i < u->nzones; i++) {
		long rc = overlay_apply(&u->zones[i], cfg, drop, err, errlen);
		if (rc == -2) {
			/* Dropped wholesale: start again from the YAML alone for it. */
			config_free(cfg);
			return effective(u, drop, NULL, out, err, errlen);
		}
		if (rc == -1) {
			config_free(cfg);
			return -1;
		}
	}
	*out = cfg;
	return 0;
}

bool update_unchanged(const struct update *u, const char *path)
{
	/* Hashed as read: a big file is not held in memory for this. */
	FILE *f = u ? fopen(path, "rb") : NULL;
	if (!f)
		return false;
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, UPDATE_HASH_LEN);
	char buf[65536];
	size_t n, total = 0;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		crypto_generichash_update(&st, (const unsigned char *)buf, n);
		total += n;
	}
	bool failed = ferror(f);
	fclose(f);
	uint8_t h[UPDATE_HASH_LEN];
	crypto_generichash_final(&st, h, sizeof(h));
	return !failed && total == u->yamllen && sodium_memcmp(h, u->yamlhash, sizeof(h)) == 0;
}

int update_load(const char *path, bool check, struct config **cfgp, struct update **up,
                char *err, size_t errlen)
{
	struct update *u = calloc(1, sizeof(*u));
	struct config *base = NULL;
	err[0] = '\0';
	if (!u || !(u->path = strdup(path))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	char *text;
	if (read_text(path, &text, &u->yamllen, err, errlen) == -1)
		goto fail;
	text_hash(text, u->yamllen, u->yamlhash);
	struct config_error ce;
	int lrc = config_load_string(text, u->yamllen, path, &base, &ce);
	free(text);
	if (lrc == -1) {
		snprintf(err, errlen, "%s", ce.msg);
		goto fail;
	}
	u->zones = calloc(base->nzones ? base->nzones : 1, sizeof(*u->zones));
	if (!u->zones) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < base->nzones; i++) {
		const struct cfg_zone *z = &base->zones[i];
		if (!z->update.set)
			continue;
		struct overlay *o = &u->zones[u->nzones++];
		memcpy(o->origin, z->origin, z->originlen);
		o->originlen = z->originlen;
		o->keys = calloc(z->update.nkeys, sizeof(*o->keys));
		if (!(o->journal_path = strdup(z->update.journal)) || !o->keys) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		for (size_t k = 0; k < z->update.nkeys; k++) {
			if (!(o->keys[k].name = strdup(z->update.keys[k].name))) {
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
			o->nkeys++;
		}
		long n = journal_replay(o->journal_path, !check, replay_one, o, err, errlen);
		if (n < 0)
			goto fail;
		if (!check) {
			o->j = journal_open(o->journal_path, err, errlen);
			if (!o->j)
				goto fail;
			journal_set_records(o->j, (size_t)n);
		}
		log_info("update: zone %s: journal %s: %ld records, %zu changes", z->name,
		         o->journal_path, n, o->nops);
	}
	/* base, freshly parsed and only read so far, becomes the effective
	 * config: a big file is parsed once. */
	struct config *parsed = base;
	base = NULL;
	/* Acknowledged updates are never dropped behind the operator's back:
	 * one that conflicts with the YAML fails the load (a reload keeps the
	 * running configuration) with the YAML position and the update. */
	if (effective(u, false, parsed, cfgp, err, errlen) < 0)
		goto fail;
	*up = u;
	return 0;
fail:
	config_free(base);
	update_free(u);
	return -1;
}

/* ---- processing an UPDATE ---------------------------------------------------- */

/* The zone's RRs as transferred (healthy backends), for prerequisites. */
struct rrlist {
	struct journal_op *rr;        /* kind unused, rdata malloc'd */
	size_t n, cap;
	bool oom;
};

static void rrlist_add(void *arg, const uint8_t *owner, size_t ownerlen, uint16_t type, uint32_t ttl,
                       const uint8_t *rdata, uint16_t rdlen)
{
	struct rrlist *l = arg;
	if (l->oom)
		return;
	if (l->n == l->cap) {
		size_t ncap = l->cap ? 2 * l->cap : 64;
		struct journal_op *n = realloc(l->rr, ncap * sizeof(*n));
		if (!n) {
			l->oom = true;
			return;
		}
		l->rr = n;
		l->cap = ncap;
	}
	struct journal_op op = { .kind = JOURNAL_ADD, .type = type, .ttl = ttl, .rdlen = rdlen,
	                         .rdata = rdata, .ownerlen = ownerlen };
	memcpy(op.owner, owner, ownerlen);
	if (op_copy(&l->rr[l->n], &op) == -1) {
		l->oom = true;
		return;
	}
	l->n++;
}

static void rrlist_free(struct rrlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		op_free(&l->rr[i]);
	free(l->rr);
}

/* The rdata of rr as the YAML path would store it: printed in its typed
 * form (names decompressed), then parsed back by rdata_from_text, which
 * validates exactly as a record in the YAML is validated (an A of 5
 * bytes, an AAAA of 3, a TXT whose length byte overruns or an empty TXT
 * are refused). Types that rdata.c does not know pass in the \# form,
 * shape-checked as the YAML's \# form is. -1: malformed. */
static int canon_rdata(const uint8_t *msg, size_t len, const struct dns_rr *rr, uint8_t *out,
                       size_t cap, size_t *outlen)
{
	/* Control thread only; \DDD escapes make text up to 4x the rdata. */
	static char text[4 * JOURNAL_RDATA_MAX + 64];
	const char *why;
	bool names = rr->type == DNS_TYPE_NS || rr->type == DNS_TYPE_CNAME ||
	             rr->type == DNS_TYPE_PTR || rr->type == DNS_TYPE_MX ||
	             rr->type == DNS_TYPE_SRV || rr->type == DNS_TYPE_SOA;
	if (rdata_to_text(rr->type, msg, len, rr->rdoff, rr->rdlen, text, sizeof(text)) < 0)
		return -1;
	/* A name type in the \# form could carry a compression pointer. */
	if (names && strncmp(text, "\\#", 2) == 0)
		return -1;
	if (rdata_from_text(rr->type, text, (const uint8_t *)"", 1, out, cap, outlen, &why) != 0)
		return -1;
	return 0;
}

static bool meta_type(uint16_t t)
{
	return t == DNS_TYPE_OPT || t == DNS_TYPE_TSIG || (t >= 128 && t <= 255);
}

static bool name_in_use(const struct rrlist *l, const uint8_t *name, size_t len, uint16_t type)
{
	for (size_t i = 0; i < l->n; i++)
		if ((type == DNS_TYPE_ANY || l->rr[i].type == type) &&
		    wire_name_equal(l->rr[i].owner, l->rr[i].ownerlen, name, len))
			return true;
	return false;
}

/* RFC 2136 3.2.3: the value-dependent prerequisites (class IN) of one name
 * and type, pre[0..n), must equal the zone's RRset. */
static bool rrset_equal(const struct rrlist *zone, const struct journal_op *pre, size_t n)
{
	size_t have = 0;
	for (size_t i = 0; i < zone->n; i++) {
		const struct journal_op *z = &zone->rr[i];
		if (z->type != pre[0].type || !same_owner(z, &pre[0]))
			continue;
		bool found = false;
		for (size_t k = 0; k < n && !found; k++)
			found = same_rr(&pre[k], z);
		if (!found)
			return false;
		have++;
	}
	/* Every distinct prerequisite RR must be in the zone. */
	for (size_t k = 0; k < n; k++) {
		bool found = false;
		for (size_t i = 0; i < zone->n && !found; i++)
			found = same_rr(&pre[k], &zone->rr[i]);
		if (!found)
			return false;
	}
	return have > 0;
}

struct pending {
	struct journal_op *ops;       /* rdata malloc'd */
	size_t n, cap;
};

static int pending_add(struct pending *p, const struct journal_op *op)
{
	if (p->n == p->cap) {
		size_t ncap = p->cap ? 2 * p->cap : 16;
		struct journal_op *n = realloc(p->ops, ncap * sizeof(*n));
		if (!n)
			return -1;
		p->ops = n;
		p->cap = ncap;
	}
	if (op_copy(&p->ops[p->n], op) == -1)
		return -1;
	p->n++;
	return 0;
}

static void pending_free(struct pending *p)
{
	for (size_t i = 0; i < p->n; i++)
		op_free(&p->ops[i]);
	free(p->ops);
	p->ops = NULL;
	p->n = p->cap = 0;
}

static int pending_cmp(const void *a, const void *b)
{
	const struct journal_op *x = a, *y = b;
	if (x->ownerlen != y->ownerlen)
		return x->ownerlen < y->ownerlen ? -1 : 1;
	int c = memcmp(x->owner, y->owner, x->ownerlen);
	if (c)
		return c;
	return x->type < y->type ? -1 : x->type > y->type;
}

/* Checks the prerequisite section (RFC 2136 3.2) against the published
 * zone. Returns an rcode. */
static unsigned check_prereqs(const uint8_t *msg, size_t len, struct wire_reader *r, unsigned count,
                              const struct zone *zone)
{
	if (count == 0) {
		return DNS_RCODE_NOERROR;
	}
	struct rrlist zl = { 0 };
	struct pending vals = { 0 };
	unsigned rcode = DNS_RCODE_NOERROR;
	if (xfr_render_zone(zone, rrlist_add, &zl) == -1 || zl.oom) {
		rcode = DNS_RCODE_SERVFAIL;
		goto out;
	}
	for (unsigned i = 0; i < count; i++) {
		struct dns_rr rr;
		wire_read_rr(r, &rr);
		if (r->err) {
			rcode = DNS_RCODE_FORMERR;
			goto out;
		}
		wire_name_lower(rr.name, rr.namelen);
		if (rr.ttl != 0) {
			rcode = DNS_RCODE_FORMERR;
			goto out;
		}
		if (!wire_name_is_subdomain(rr.name, rr.namelen, zone->origin, zone->originlen)) {
			rcode = RCODE_NOTZONE;
			goto out;
		}
		if (rr.rclass == DNS_CLASS_ANY || rr.rclass == DNS_CLASS_NONE) {
			if (rr.rdlen != 0 || (meta_type(rr.type) && rr.type != DNS_TYPE_ANY)) {
				rcode = DNS_RCODE_FORMERR;
				goto out;
			}
			bool used = name_in_use(&zl, rr.name, rr.namelen, rr.type);
			if (rr.rclass == DNS_CLASS_ANY && !used) {
				rcode = rr.type == DNS_TYPE_ANY ? DNS_RCODE_NXDOMAIN : RCODE_NXRRSET;
				goto out;
			}
			if (rr.rclass == DNS_CLASS_NONE && used) {
				rcode = rr.type == DNS_TYPE_ANY ? RCODE_YXDOMAIN : RCODE_YXRRSET;
				goto out;
			}
		} else if (rr.rclass == DNS_CLASS_IN) {
			if (meta_type(rr.type)) {
				rcode = DNS_RCODE_FORMERR;
				goto out;
			}
			uint8_t rd[JOURNAL_RDATA_MAX];
			size_t rdlen;
			if (canon_rdata(msg, len, &rr, rd, sizeof(rd), &rdlen) == -1) {
				rcode = DNS_RCODE_FORMERR;
				goto out;
			}
			struct journal_op op = { .kind = JOURNAL_ADD, .type = rr.type,
			                         .rdlen = (uint16_t)rdlen, .rdata = rd,
			                         .ownerlen = rr.namelen };
			memcpy(op.owner, rr.name, rr.namelen);
			if (pending_add(&vals, &op) == -1) {
				rcode = DNS_RCODE_SERVFAIL;
				goto out;
			}
		} else {
			rcode = DNS_RCODE_FORMERR;
			goto out;
		}
	}
	if (vals.n > 1)
		qsort(vals.ops, vals.n, sizeof(*vals.ops), pending_cmp);
	for (size_t i = 0, j; i < vals.n; i = j) {
		for (j = i + 1; j < vals.n && pending_cmp(&vals.ops[i], &vals.ops[j]) == 0; j++)
			;
		if (!rrset_equal(&zl, &vals.ops[i], j - i)) {
			rcode = RCODE_NXRRSET;
			goto out;
		}
	}
out:
	pending_free(&vals);
	rrlist_free(&zl);
	return rcode;
}

/* RFC 2136 3.4.1 prescan and conversion of the update section into
 * operations. Returns an rcode. */
static unsigned read_updates(const uint8_t *msg, size_t len, struct wire_reader *r, unsigned count,
                             const struct cfg_zone *z, struct pending *ops)
{
	for (unsigned i = 0; i < count; i++) {
		struct dns_rr rr;
		wire_read_rr(r, &rr);
		if (r->err)
			return DNS_RCODE_FORMERR;
		wire_name_lower(rr.name, rr.namelen);
		if (!wire_name_is_subdomain(rr.name, rr.namelen, z->origin, z->originlen))
			return RCODE_NOTZONE;
		bool apex = wire_name_equal(rr.name, rr.namelen, z->origin, z->originlen);
		struct journal_op op = { .type = rr.type, .ttl = rr.ttl, .ownerlen = rr.namelen };
		memcpy(op.owner, rr.name, rr.namelen);
		uint8_t rd[JOURNAL_RDATA_MAX];
		size_t rdlen = 0;
		if (rr.rclass == DNS_CLASS_IN) {
			if (meta_type(rr.type))
				return DNS_RCODE_FORMERR;
			if (rr.ttl > 2147483647u)
				return DNS_RCODE_FORMERR;
			if (rr.rdlen > JOURNAL_RDATA_MAX)
				return DNS_RCODE_REFUSED;
			/* Policy: the SOA and apex NS come from the YAML. */
			if (rr.type == DNS_TYPE_SOA || (apex && rr.type == DNS_TYPE_NS))
				return DNS_RCODE_REFUSED;
			if (canon_rdata(msg, len, &rr, rd, sizeof(rd), &rdlen) == -1)
				return DNS_RCODE_FORMERR;
			op.kind = JOURNAL_ADD;
		} else if (rr.rclass == DNS_CLASS_ANY) {
			if (rr.ttl != 0 || rr.rdlen != 0 || (meta_type(rr.type) && rr.type != DNS_TYPE_ANY))
				return DNS_RCODE_FORMERR;
			op.kind = rr.type == DNS_TYPE_ANY ? JOURNAL_DEL_NAME : JOURNAL_DEL_RRSET;
			if (op.kind == JOURNAL_DEL_NAME)
				op.type = 0;
			/* RFC 2136 3.4.2.3: the apex SOA and NS are never deleted. */
			if (apex && (rr.type == DNS_TYPE_SOA || rr.type == DNS_TYPE_NS))
				continue;
		} else if (rr.rclass == DNS_CLASS_NONE) {
			if (rr.ttl != 0 || meta_type(rr.type))
				return DNS_RCODE_FORMERR;
			if (rr.type == DNS_TYPE_SOA || (apex && rr.type == DNS_TYPE_NS))
				continue;        /* 3.4.2.4 */
			if (rr.rdlen > JOURNAL_RDATA_MAX)
				return DNS_RCODE_REFUSED;
			if (canon_rdata(msg, len, &rr, rd, sizeof(rd), &rdlen) == -1)
				return DNS_RCODE_FORMERR;
			op.kind = JOURNAL_DEL_RR;
			op.ttl = 0;
		} else {
			return DNS_RCODE_FORMERR;
		}
		op.rdata = rd;
		op.rdlen = (uint16_t)rdlen;
		if (pending_add(ops, &op) == -1)
			return DNS_RCODE_SERVFAIL;
	}
	return DNS_RCODE_NOERROR;
}

static struct overlay *overlay_of(struct update *u, const uint8_t *origin, size_t len)
{
	for (size_t i = 0; i < u->nzones; i++)
		if (wire_name_equal(u->zones[i].origin, u->zones[i].originlen, origin, len))
			return &u->zones[i];
	return NULL;
}

static bool key_allowed(const struct overlay *o, const struct tsig_key *key)
{
	for (size_t i = 0; i < o->nkeys; i++) {
		uint8_t nm[DNS_NAME_MAX];
		size_t len;
		if (wire_name_from_text(o->keys[i].name, nm, &len) == 0 &&
		    wire_name_equal(nm, len, key->name, key->namelen))
			return true;
	}
	return false;
}

/* Compacts o's journal when it holds far more records than the overlay. */
static void maybe_compact(struct overlay *o)
{
	size_t limit = 2 * o->nops > UPDATE_COMPACT_MIN ? 2 * o->nops : UPDATE_COMPACT_MIN;
	if (!o->j || journal_records(o->j) <= limit)
		return;
	size_t before = journal_records(o->j);
	if (journal_rewrite(o->j, o->ops, o->nops) == 0)
		log_info("update: journal %s compacted: %zu records -> %zu", o->journal_path, before,
		         o->nops);
}

/* An accepted update: o becomes trial (left empty), compacted if need be. */
static void overlay_take(struct overlay *o, struct overlay *trial)
{
	overlay_clear(o);
	o->ops = trial->ops;
	o->nops = trial->nops;
	o->cap = trial->cap;
	memset(trial, 0, sizeof(*trial));
	maybe_compact(o);
}

/* One UPDATE: returns the rcode to answer with. */
/* Whether every operation of ops is about the backends of one service of
 * zone zi of cfg (A/AAAA/SRV at its owner, or deleting its RRsets or
 * name): then *si is that service and the UPDATE changes it in place. */
static bool one_service(const struct config *cfg, size_t zi, const struct pending *ops, size_t *si)
{
	long found = -1;
	for (size_t i = 0; i < ops->n; i++) {
		const struct journal_op *op = &ops->ops[i];
		long s = config_find_service(cfg, zi, op->owner, op->ownerlen);
		if (s < 0 || (found >= 0 && s != found))
			return false;
		if (op->kind != JOURNAL_DEL_NAME && op->type != DNS_TYPE_A &&
		    op->type != DNS_TYPE_AAAA && op->type != DNS_TYPE_SRV)
			return false;
		found = s;
	}
	if (found < 0)
		return false;
	*si = (size_t)found;
	return true;
}

/* Whether no operation of ops is at a service's name (each is a static
 * record's, or refused by apply_op as below a service). */
static bool only_records(const struct config *cfg, size_t zi, const struct pending *ops)
{
	for (size_t i = 0; i < ops->n; i++)
		if (config_find_service(cfg, zi, ops->ops[i].owner, ops->ops[i].ownerlen) >= 0)
			return false;
	return ops->n > 0;
}

/* Static records: the ops applied to a copy of zone zi's records beside
 * the running config (which shares everything else), checked as the
 * loader checks them, built with the registry (every service's block
 * reused: nothing is parsed), journaled, then served. */
static unsigned apply_records(struct overlay *o, const struct update_ops *uo,
                              const struct config *cfg, size_t zi, const struct pending *ops,
                              struct overlay *trial)
{
	char err[512] = "";
	unsigned rc = DNS_RCODE_NOERROR;
	struct cfg_zone *zones = malloc(cfg->nzones * sizeof(*zones));
	struct cfg_record *recs;
	if (!zones || config_records_copy(&recs, cfg->zones[zi].records,
	                                  cfg->zones[zi].nrecords) == -1) {
		free(zones);
		return DNS_RCODE_SERVFAIL;
	}
	memcpy(zones, cfg->zones, cfg->nzones * sizeof(*zones));
	zones[zi].records = recs;
	zones[zi].names_checked = false;
	struct config tc = *cfg;
	tc.zones = zones;
	for (size_t i = 0; i < ops->n && rc == DNS_RCODE_NOERROR; i++) {
		if (apply_op(&tc, zi, &ops->ops[i], err, sizeof(err)) == -1) {
			log_info("update refused: %s", err);
			rc = DNS_RCODE_REFUSED;
		}
	}
	if (rc == DNS_RCODE_NOERROR && config_check_zone(&tc, zi, err, sizeof(err)) == -1) {
		log_info("update refused: %s", err);
		rc = DNS_RCODE_REFUSED;
	}
	void *pending = NULL;
	if (rc == DNS_RCODE_NOERROR &&
	    uo->records_prepare(uo->arg, &tc, &pending, err, sizeof(err)) == -1) {
		log_info("update refused: %s", err);
		rc = DNS_RCODE_REFUSED;
	}
	if (rc == DNS_RCODE_NOERROR && o->j && journal_append(o->j, ops->ops, ops->n) == -1)
		rc = DNS_RCODE_SERVFAIL;
	if (rc == DNS_RCODE_NOERROR)
		uo->records_commit(uo->arg, pending, zi, &zones[zi].records, &zones[zi].nrecords);
	else if (pending)
		uo->records_abort(uo->arg, pending);
	config_records_free(zones[zi].records, zones[zi].nrecords);
	free(zones);
	if (rc == DNS_RCODE_NOERROR)
		overlay_take(o, trial);
	return rc;
}

/* The fast path: the ops applied to a copy of service si alone, checked
 * as a build of its block would check them (names, counts) and against
 * the zone's other names, journaled, then handed to ops->service. */
static unsigned apply_one_service(struct overlay *o, const struct update_ops *uo,
                                  const struct config *cfg, size_t zi, size_t si,
                                  const struct zone *zone, const struct pending *ops,
                                  struct overlay *trial)
{
	struct cfg_service ns;
	char err[512] = "";
	unsigned rc = DNS_RCODE_NOERROR;
	if (zone_service_copy(&ns, &cfg->zones[zi].services[si],
	                      si < zone->nservices ? zone_slot_service(zone->slots[si]) : NULL) == -1)
		return DNS_RCODE_SERVFAIL;
	/* A config of one zone holding the copy: apply_op works on it. */
	struct cfg_zone tz = cfg->zones[zi];
	tz.services = &ns;
	tz.nservices = 1;
	struct config tc = { .path = cfg->path, .zones = &tz, .nzones = 1 };
	for (size_t i = 0; i < ops->n && rc == DNS_RCODE_NOERROR; i++) {
		if (apply_op(&tc, 0, &ops->ops[i], err, sizeof(err)) == -1) {
			log_info("update refused: %s", err);
			rc = DNS_RCODE_REFUSED;
		}
	}
	if (rc == DNS_RCODE_NOERROR) {
		struct zone_service *blk = zone_block_build(&tz, &ns, 0, NULL, NULL, NULL, 0, 0, err,
		                                            sizeof(err));
		size_t clen;
		const uint8_t *clash = blk ? zone_block_clash(zone, blk, &clen) : NULL;
		if (clash) {
			char txt[DNS_NAME_MAX * 4 + 1];
			wire_name_to_text(clash, clen, txt, sizeof(txt));
			snprintf(err, sizeof(err), "%.400s clashes with other data", txt);
			zone_block_free(blk);
			blk = NULL;
		}
		if (!blk) {
			log_info("update refused: %s", err);
			rc = DNS_RCODE_REFUSED;
		}
		zone_block_free(blk);
	}
	if (rc == DNS_RCODE_NOERROR && o->j && journal_append(o->j, ops->ops, ops->n) == -1)
		rc = DNS_RCODE_SERVFAIL;
	if (rc == DNS_RCODE_NOERROR && uo->service(uo->arg, zi, si, &ns) == -1) {
		log_err("update: journaled but not applied; it applies at the next reload or start");
		rc = DNS_RCODE_SERVFAIL;
	}
	config_service_clear(&ns);
	if (rc == DNS_RCODE_NOERROR)
		overlay_take(o, trial);
	return rc;
}

static unsigned process_one(struct update *u, struct update_req *req, const struct update_ops *uo)
{
	const uint8_t *msg = req->msg;
	size_t len = req->len;
	struct wire_reader r;
	wire_reader_init(&r, msg, len);
	struct dns_header h;
	wire_read_header(&r, &h);
	if (r.err || h.qdcount != 1)
		return DNS_RCODE_FORMERR;
	struct dns_question zq;
	wire_read_question(&r, &zq);
	if (r.err || zq.qtype != DNS_TYPE_SOA)    /* RFC 2136 3.1.1 */
		return DNS_RCODE_FORMERR;
	if (zq.qclass != DNS_CLASS_IN)
		return DNS_RCODE_NOTAUTH;
	wire_name_lower(zq.name, zq.namelen);
	const struct zone_snapshot *snap = zone_current();
	const struct zone *zone = NULL;
	for (unsigned i = 0; snap && i < snap->nzones; i++)
		if (wire_name_equal(snap->zones[i].origin, snap->zones[i].originlen, zq.name, zq.namelen))
			zone = &snap->zones[i];
	if (!zone)
		return DNS_RCODE_NOTAUTH;           /* 3.1.2: not a zone of ours */
	struct overlay *o = overlay_of(u, zq.name, zq.namelen);
	if (!o || !key_allowed(o, &req->key))
		return DNS_RCODE_REFUSED;
	unsigned rc = check_prereqs(msg, len, &r, h.ancount, zone);
	if (rc != DNS_RCODE_NOERROR)
		return rc;
	struct pending ops = { 0 };
	struct overlay trial;
	bool have_trial = false;
	struct config *ncfg = NULL;
	char err[512] = "";
	/* The zone as it runs, for the prescan's names: no parse of the YAML. */
	const struct config *live = uo->live(uo->arg);
	long zi = zone_index(live, zq.name, zq.namelen);
	if (zi < 0) {
		rc = DNS_RCODE_NOTAUTH;
		goto out;
	}
	rc = read_updates(msg, len, &r, h.nscount, &live->zones[zi], &ops);
	if (rc != DNS_RCODE_NOERROR)
		goto out;
	if (overlay_copy(&trial, o) == -1) {
		rc = DNS_RCODE_SERVFAIL;
		goto out;
	}
	have_trial = true;
	for (size_t i = 0; i < ops.n; i++) {
		if (overlay_merge(&trial, &ops.ops[i]) == -1) {
			log_warn("update: zone %s: more than %d changes, refused", o->journal_path,
			         UPDATE_OPS_MAX);
			rc = DNS_RCODE_REFUSED;
			goto out;
		}
	}
	/* The backends of one service: changed in place, O(service). */
	size_t si;
	if (uo->service && one_service(live, (size_t)zi, &ops, &si)) {
		rc = apply_one_service(o, uo, live, (size_t)zi, si, zone, &ops, &trial);
		have_trial = rc != DNS_RCODE_NOERROR;
		goto out;
	}
	/* Static records alone: beside the running config, nothing parsed. */
	if (uo->records_prepare && only_records(live, (size_t)zi, &ops)) {
		rc = apply_records(o, uo, live, (size_t)zi, &ops, &trial);
		have_trial = rc != DNS_RCODE_NOERROR;
		goto out;
	}
	/* Anything else (services and records in one update): the
	 * effective config with the trial overlay in
	 * place, built and committed whole. */
	struct overlay saved = *o;
	o->ops = trial.ops;
	o->nops = trial.nops;
	o->cap = trial.cap;
	int erc = effective(u, false, NULL, &ncfg, err, sizeof(err));
	trial.ops = o->ops;
	trial.nops = o->nops;
	trial.cap = o->cap;
	o->ops = saved.ops;
	o->nops = saved.nops;
	o->cap = saved.cap;
	if (erc == -2) {
		/* Not the update's fault: the server cannot tell what it would
		 * change until the file is reloaded. */
		log_warn("update not applied: %s", err);
		rc = DNS_RCODE_SERVFAIL;
		goto out;
	}
	if (erc == -1) {
		log_info("update refused: %s", err);
		rc = DNS_RCODE_REFUSED;
		goto out;
	}
	char berr[512];
	struct zone_snapshot *check;
	if (zone_build(ncfg, zone_current(), NULL, NULL, NULL, NULL, &check, berr, sizeof(berr)) == -1) {
		log_info("update refused: %s", berr);
		rc = DNS_RCODE_REFUSED;
		goto out;
	}
	zone_free(check);
	if (o->j && journal_append(o->j, ops.ops, ops.n) == -1) {
		rc = DNS_RCODE_SERVFAIL;
		goto out;
	}
	if (uo->commit(uo->arg, ncfg) == -1) {
		log_err("update: journaled but not applied (health watcher); it applies at the next "
		        "reload or start");
		rc = DNS_RCODE_SERVFAIL;
		goto out;
	}
	ncfg = NULL;
	overlay_take(o, &trial);
	have_trial = false;
	rc = DNS_RCODE_NOERROR;
out:
	if (have_trial)
		overlay_clear(&trial);
	config_free(ncfg);
	pending_free(&ops);
	return rc;
}

unsigned update_process_for_test(struct update *u, const uint8_t *msg, size_t len,
                                 const char *key, const struct update_ops *uo)
{
	struct update_req *r = calloc(1, sizeof(*r) + len);
	if (!r || wire_name_from_text(key, r->key.name, &r->key.namelen) != 0) {
		free(r);
		return DNS_RCODE_SERVFAIL;
	}
	r->len = len;
	memcpy(r->msg, msg, len);
	unsigned rc = process_one(u, r, uo);
	free(r);
	return rc;
}

int update_allow_key_for_test(struct update *u, const char *key)
{
	struct overlay *o = &u->zones[0];
	struct cfg_keyref *k = realloc(o->keys, (o->nkeys + 1) * sizeof(*k));
	if (!k)
		return -1;
	o->keys = k;
	memset(&k[o->nkeys], 0, sizeof(*k));
	if (!(k[o->nkeys].name = strdup(key)))
		return -1;
	o->nkeys++;
	return 0;
}

void update_process(struct update_queue *uq, struct update *u, const struct update_ops *uo)
{
	uint64_t n;
	if (read(uq->fd, &n, sizeof(n)) == -1 && errno != EAGAIN)
		log_warn("update queue: %s", strerror(errno));
	struct update_req *req;
	while ((req = queue_pop(uq))) {
		unsigned rc = u ? process_one(u, req, uo) : DNS_RCODE_REFUSED;
		uint8_t resp[DNS_UDP_MIN + TSIG_RR_MAX];
		int len = short_reply(req->msg, req->len, rc, resp, sizeof(resp));
		if (len > 0)
			len = tsig_sign(resp, (size_t)len, sizeof(resp), &req->tsig, (uint64_t)time(NULL));
		if (len > 0 && server_reply(&req->route, resp, (size_t)len) == -1)
			log_debug("update: answer could not be sent");
		log_debug("update: %s", rdata_rcode_name(rc));
		free(req);
	}
}

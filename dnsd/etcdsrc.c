/* etcdsrc.c -- etcd records as backends: a queue from the etcd thread, a
 * table of records by key on the control thread, and the records written
 * into a config as backends and services. */
#include "etcdsrc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/hash.h"
#include "util/itab.h"
#include "util/log.h"
#include "zone.h"

enum { ETCDSRC_MAX_BACKENDS = ZONE_MAX_BACKENDS };

/* One record as the table keeps it. */
/* Small: a hundred thousand instances are a hundred thousand of these
 * (the value's ttl and text are not served: not kept). */
struct rec {
	char *key;                    /* malloc'd, NUL-terminated */
	uint8_t *owner;               /* malloc'd, ownerlen bytes */
	uint8_t ownerlen;
	uint16_t id_off;              /* the instance id: key + id_off */
	uint8_t family;
	uint8_t addr[16];
	uint16_t port, priority, weight;
	struct rec *onext, **oprev;   /* in its owner bucket (records by name) */
};

static void rec_free_parts(struct rec *r)
{
	free(r->key);
	free(r->owner);
	r->key = NULL;
	r->owner = NULL;
}

/* What the etcd thread queued: a put (v set) or delete, or a snapshot
 * boundary. */
enum qkind { Q_PUT, Q_DEL, Q_BEGIN, Q_END };
struct qent {
	struct qent *next;
	enum qkind kind;
	struct rec r;
};

struct etcdsrc {
	int efd;
	pthread_mutex_t mu;
	struct qent *head, **tail;    /* under mu */
	/* The etcd thread only: the snapshot being read, queued whole at its
	 * end so the control thread never applies half of one. */
	struct qent *snap_head, **snap_tail;
	/* Control thread only. */
	struct rec **tab;             /* open addressing by key; NULL empty, TOMB deleted */
	size_t tsize, n, used;
	/* The same records by owner name: chains of buckets, so the records
	 * of one name cost a bucket, not the table. */
	struct rec **obucket;
	size_t obsize;
	bool synced;
};

static struct rec tomb_rec;
#define TOMB (&tomb_rec)

static uint64_t key_hash(const char *k)
{
	uint64_t h = fnv_str(FNV_SEED, k);
	return h ^ (h >> 29);
}

struct etcdsrc *etcdsrc_new(void)
{
	struct etcdsrc *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->efd == -1) {
		free(s);
		return NULL;
	}
	pthread_mutex_init(&s->mu, NULL);
	s->tail = &s->head;
	s->snap_tail = &s->snap_head;
	return s;
}

static void q_free(struct qent *q)
{
	while (q) {
		struct qent *n = q->next;
		rec_free_parts(&q->r);
		free(q);
		q = n;
	}
}

static void tab_clear(struct etcdsrc *s)
{
	for (size_t i = 0; i < s->tsize; i++)
		if (s->tab[i] && s->tab[i] != TOMB) {
			rec_free_parts(s->tab[i]);
			free(s->tab[i]);
		}
	free(s->tab);
	s->tab = NULL;
	s->tsize = s->n = s->used = 0;
	free(s->obucket);
	s->obucket = NULL;
	s->obsize = 0;
}

static uint64_t owner_hash(const uint8_t *o, size_t len)
{
	uint64_t h = fnv_bytes(FNV_SEED, o, len);
	return h ^ (h >> 29);
}

static void olink(struct etcdsrc *s, struct rec *r)
{
	struct rec **b = &s->obucket[owner_hash(r->owner, r->ownerlen) & (s->obsize - 1)];
	r->onext = *b;
	if (*b)
		(*b)->oprev = &r->onext;
	r->oprev = b;
	*b = r;
}

static void ounlink(struct rec *r)
{
	*r->oprev = r->onext;
	if (r->onext)
		r->onext->oprev = r->oprev;
}

void etcdsrc_free(struct etcdsrc *s)
{
	if (!s)
		return;
	q_free(s->head);
	q_free(s->snap_head);
	tab_clear(s);
	close(s->efd);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

int etcdsrc_fd(const struct etcdsrc *s)
{
	return s->efd;
}

bool etcdsrc_synced(const struct etcdsrc *s)
{
	return s->synced;
}

size_t etcdsrc_count(const struct etcdsrc *s)
{
	return s->n;
}

/* ---- the etcd thread's side ------------------------------------------------ */

static struct qent *qent_of(enum qkind kind, const struct etcd_kv *kv)
{
	struct qent *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->kind = kind;
	if (kv) {
		q->r.key = strndup(kv->key, kv->keylen);
		q->r.owner = malloc(kv->ownerlen ? kv->ownerlen : 1);
		if (!q->r.key || !q->r.owner) {
			rec_free_parts(&q->r);
			free(q);
			return NULL;
		}
		memcpy(q->r.owner, kv->owner, kv->ownerlen);
		q->r.ownerlen = (uint8_t)kv->ownerlen;
		q->r.id_off = (uint16_t)(kv->id - kv->key);
		if (kv->value) {
			q->r.family = (uint8_t)kv->value->family;
			memcpy(q->r.addr, kv->value->addr, sizeof(q->r.addr));
			q->r.port = kv->value->port;
			q->r.priority = kv->value->priority;
			q->r.weight = kv->value->weight;
		}
	}
	return q;
}

static void push(struct etcdsrc *s, struct qent *first, struct qent **last_next)
{
	pthread_mutex_lock(&s->mu);
	*s->tail = first;
	s->tail = last_next;
	pthread_mutex_unlock(&s->mu);
	uint64_t one = 1;
	if (write(s->efd, &one, sizeof(one)) == -1 && errno != EAGAIN)
		log_warn("etcd: eventfd: %s", strerror(errno));
}

static void on_begin(void *ud, int64_t rev)
{
	struct etcdsrc *s = ud;
	(void)rev;
	q_free(s->snap_head);
	s->snap_head = NULL;
	s->snap_tail = &s->snap_head;
	struct qent *q = qent_of(Q_BEGIN, NULL);
	if (q) {
		*s->snap_tail = q;
		s->snap_tail = &q->next;
	}
}

static void on_kv(void *ud, const struct etcd_kv *kv)
{
	struct etcdsrc *s = ud;
	struct qent *q = qent_of(Q_PUT, kv);
	if (!q) {
		log_err("etcd: out of memory taking a record; it is missing until the next change");
		return;
	}
	*s->snap_tail = q;
	s->snap_tail = &q->next;
}

static void on_end(void *ud, int64_t rev, size_t n)
{
	struct etcdsrc *s = ud;
	struct qent *q = qent_of(Q_END, NULL);
	if (!q || !s->snap_head) {
		free(q);
		log_err("etcd: out of memory taking a snapshot");
		return;
	}
	*s->snap_tail = q;
	struct qent *first = s->snap_head;
	s->snap_head = NULL;
	s->snap_tail = &s->snap_head;
	log_info("etcd: %zu records at revision %lld", n, (long long)rev);
	push(s, first, &q->next);
}

static void on_event(void *ud, const struct etcd_kv *kv)
{
	struct etcdsrc *s = ud;
	struct qent *q = qent_of(kv->value ? Q_PUT : Q_DEL, kv);
	if (!q) {
		log_err("etcd: out of memory taking an event; it is missing until the next change");
		return;
	}
	push(s, q, &q->next);
}

struct etcd_callbacks etcdsrc_callbacks(struct etcdsrc *s)
{
	return (struct etcd_callbacks){ on_begin, on_kv, on_end, on_event, s };
}

/* ---- the control thread's table -------------------------------------------- */

static struct rec **tab_slot(struct etcdsrc *s, const char *key, bool for_insert)
{
	if (!s->tsize)
		return NULL;
	struct rec **tomb = NULL;
	for (size_t i = key_hash(key) & (s->tsize - 1);; i = (i + 1) & (s->tsize - 1)) {
		struct rec *r = s->tab[i];
		if (!r)
			return for_insert && tomb ? tomb : for_insert ? &s->tab[i] : NULL;
		if (r == TOMB) {
			if (!tomb)
				tomb = &s->tab[i];
		} else if (strcmp(r->key, key) == 0) {
			return &s->tab[i];
		}
	}
}

static int tab_grow(struct etcdsrc *s)
{
	if ((s->used + 1) * 2 <= s->tsize)
		return 0;
	size_t nsize = s->tsize ? s->tsize * 2 : 256;
	while (nsize < (s->n + 1) * 4)
		nsize *= 2;
	struct rec **nt = calloc(nsize, sizeof(*nt));
	if (!nt)
		return -1;
	for (size_t i = 0; i < s->tsize; i++) {
		struct rec *r = s->tab[i];
		if (!r || r == TOMB)
			continue;
		size_t j = key_hash(r->key) & (nsize - 1);
		while (nt[j])
			j = (j + 1) & (nsize - 1);
		nt[j] = r;
	}
	struct rec **nb = calloc(nsize, sizeof(*nb));
	if (!nb) {
		free(nt);
		return -1;
	}
	free(s->tab);
	s->tab = nt;
	s->tsize = nsize;
	s->used = s->n;
	free(s->obucket);
	s->obucket = nb;
	s->obsize = nsize;
	for (size_t i = 0; i < nsize; i++)
		if (nt[i])
			olink(s, nt[i]);
	return 0;
}

/* Takes q's record into the table (put) or drops the key (delete). */
static int tab_apply(struct etcdsrc *s, struct qent *q)
{
	if (q->kind == Q_DEL) {
		struct rec **slot = tab_slot(s, q->r.key, false);
		if (slot) {
			ounlink(*slot);
			rec_free_parts(*slot);
			free(*slot);
			*slot = TOMB;
			s->n--;
		}
		return 0;
	}
	if (tab_grow(s) == -1)
		return -1;
	struct rec **slot = tab_slot(s, q->r.key, true);
	if (*slot && *slot != TOMB) {
		ounlink(*slot);
		rec_free_parts(*slot);
		**slot = q->r;
		olink(s, *slot);
	} else {
		struct rec *r = malloc(sizeof(*r));
		if (!r)
			return -1;
		*r = q->r;
		if (!*slot)
			s->used++;
		*slot = r;
		s->n++;
		olink(s, r);
	}
	q->r.key = NULL;              /* the table owns them now */
	q->r.owner = NULL;
	return 0;
}

static int note_owner(struct etcdsrc_changes *ch, const uint8_t *owner, size_t len)
{
	for (size_t i = 0; i < ch->n; i++)
		if (ch->ownerlen[i] == len && memcmp(ch->owner[i], owner, len) == 0)
			return 0;
	void *no = realloc(ch->owner, (ch->n + 1) * sizeof(*ch->owner));
	if (!no)
		return -1;
	ch->owner = no;
	size_t *nl = realloc(ch->ownerlen, (ch->n + 1) * sizeof(*ch->ownerlen));
	if (!nl)
		return -1;
	ch->ownerlen = nl;
	memcpy(ch->owner[ch->n], owner, len);
	ch->ownerlen[ch->n++] = len;
	return 0;
}

int etcdsrc_drain(struct etcdsrc *s, struct etcdsrc_changes *ch)
{
	uint64_t cnt;
	if (read(s->efd, &cnt, sizeof(cnt)) == -1 && errno != EAGAIN)
		log_warn("etcd: eventfd: %s", strerror(errno));
	memset(ch, 0, sizeof(*ch));
	pthread_mutex_lock(&s->mu);
	struct qent *q = s->head;
	s->head = NULL;
	s->tail = &s->head;
	pthread_mutex_unlock(&s->mu);
	int rc = 0;
	while (q) {
		struct qent *next = q->next;
		if (q->kind == Q_BEGIN) {
			tab_clear(s);
			ch->snapshot = true;
		} else if (q->kind == Q_END) {
			s->synced = true;
		} else {
			/* The old record's name changes too (a put may move it). */
			struct rec **old = tab_slot(s, q->r.key, false);
			if (old && (rc |= note_owner(ch, (*old)->owner, (*old)->ownerlen)) != 0)
				break;
			if ((rc |= note_owner(ch, q->r.owner, q->r.ownerlen)) != 0 ||
			    (rc |= tab_apply(s, q)) != 0)
				break;
		}
		q->next = NULL;
		q_free(q);
		q = next;
	}
	if (q) {
		/* Out of memory: the rest waits for the next drain. */
		pthread_mutex_lock(&s->mu);
		struct qent *last = q;
		while (last->next)
			last = last->next;
		last->next = s->head;
		if (!s->head)
			s->tail = &last->next;
		s->head = q;
		pthread_mutex_unlock(&s->mu);
		uint64_t one = 1;
		if (write(s->efd, &one, sizeof(one)) == -1 && errno != EAGAIN)
			log_warn("etcd: eventfd: %s", strerror(errno));
		return -1;
	}
	return rc ? -1 : 0;
}

void etcdsrc_changes_free(struct etcdsrc_changes *ch)
{
	free(ch->owner);
	free(ch->ownerlen);
	memset(ch, 0, sizeof(*ch));
}

/* ---- records into a config -------------------------------------------------- */

/* A backend label from the instance id when it is one (letters, digits,
 * '-', '_', 1..63), else from the address as the YAML's default. */
static void label_of(const struct rec *r, char *out, size_t cap)
{
	const char *id = r->key + r->id_off;
	size_t n = strlen(id);
	bool ok = n >= 1 && n <= 63;
	for (size_t i = 0; ok && i < n; i++) {
		char c = id[i];
		ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		     c == '-' || c == '_';
	}
	if (ok) {
		snprintf(out, cap, "%s", id);
		for (char *p = out; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p += 'a' - 'A';
		return;
	}
	char a[INET6_ADDRSTRLEN];
	config_addr_label(r->family, r->addr, a);
	snprintf(out, cap, "%s", a);
}

/* Appends r to s as an etcd backend; a second record of the same address
 * and port is one backend (RFC 2181 5). 0, or -1 when out of memory. */
static int add_backend(struct cfg_service *s, const struct rec *r)
{
	size_t alen = r->family == AF_INET6 ? 16 : 4;
	for (size_t i = 0; i < s->nbackends; i++) {
		const struct cfg_backend *o = &s->backends[i];
		if (o->family == r->family && memcmp(o->addr, r->addr, alen) == 0 &&
		    o->port == r->port)
			return 0;
	}
	if (s->nbackends >= ETCDSRC_MAX_BACKENDS)
		return 0;             /* the zone's limit per service: the rest not served */
	if (config_service_own(s) == -1)
		return -1;
	struct cfg_backend *nb = realloc(s->backends, (s->nbackends + 1) * sizeof(*nb));
	if (!nb)
		return -1;
	s->backends = nb;
	struct cfg_backend *b = &nb[s->nbackends];
	memset(b, 0, sizeof(*b));
	config_backend_defaults(b);
	b->family = r->family;
	memcpy(b->addr, r->addr, alen);
	b->port = r->port;
	if (r->weight)
		b->weight = r->weight;
	b->priority = r->priority;
	b->source = CFG_SRC_ETCD;
	b->line = s->line;
	b->col = s->col;
	char label[64];
	label_of(r, label, sizeof(label));
	/* A label taken by another address gets the address's own. */
	for (size_t i = 0; i < s->nbackends; i++) {
		const struct cfg_backend *o = &s->backends[i];
		if (o->name && strcasecmp(o->name, label) == 0 &&
		    !(o->family == b->family && memcmp(o->addr, b->addr, alen) == 0)) {
			char a[INET6_ADDRSTRLEN];
			config_addr_label(b->family, b->addr, a);
			snprintf(label, sizeof(label), "%s-x", a);
			break;
		}
	}
	b->name = strdup(label);
	b->src_key = strdup(r->key);
	if (!b->name || !b->src_key) {
		free(b->name);
		free(b->src_key);
		return -1;
	}
	s->nbackends++;
	return 0;
}

/* The records of owner, in key order (deterministic backends). */
static int cmp_rec(const void *a, const void *b)
{
	return strcmp((*(const struct rec *const *)a)->key, (*(const struct rec *const *)b)->key);
}

static size_t records_of(const struct etcdsrc *s, const uint8_t *owner, size_t len,
                         const struct rec ***out)
{
	size_t n = 0, cap = 0;
	const struct rec **v = NULL;
	const struct rec *r = s->obsize ? s->obucket[owner_hash(owner, len) & (s->obsize - 1)] : NULL;
	for (; r; r = r->onext) {
		if (r->ownerlen != len || memcmp(r->owner, owner, len) != 0)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 8;
			const struct rec **nv = realloc(v, cap * sizeof(*nv));
			if (!nv) {
				free(v);
				*out = NULL;
				return SIZE_MAX;
			}
			v = nv;
		}
		v[n++] = r;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_rec);
	*out = v;
	return n;
}

int etcdsrc_service(const struct etcdsrc *s, const struct cfg_service *base,
                    struct cfg_service *dst)
{
	if (config_service_copy(dst, base) == -1)
		return -1;
	/* Drop the etcd backends; keep the YAML's and UPDATE's. */
	size_t k = 0;
	for (size_t i = 0; i < dst->nbackends; i++) {
		struct cfg_backend *b = &dst->backends[i];
		if (b->source != CFG_SRC_ETCD) {
			dst->backends[k++] = *b;
			continue;
		}
		free(b->name);
		free(b->locality);
		free(b->src_key);
		if (b->check) {
			free(b->check->path);
			free(b->check->host);
			free(b->check);
		}
	}
	dst->nbackends = k;
	const struct rec **v;
	size_t n = records_of(s, dst->owner, dst->ownerlen, &v);
	if (n == SIZE_MAX) {
		config_service_clear(dst);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (add_backend(dst, v[i]) == -1) {
			free(v);
			config_service_clear(dst);
			return -1;
		}
	free(v);
	return 0;
}

/* The longest zone of cfg holding name, or -1. */
static long zone_of(const struct config *cfg, const uint8_t *name, size_t len)
{
	long best = -1;
	for (size_t i = 0; i < cfg->nzones; i++) {
		const struct cfg_zone *z = &cfg->zones[i];
		if (wire_name_is_subdomain(name, len, z->origin, z->originlen) &&
		    (best < 0 || z->originlen > cfg->zones[best].originlen))
			best = (long)i;
	}
	return best;
}

static bool has_records(const struct cfg_zone *z, const uint8_t *name, size_t len)
{
	for (size_t i = 0; i < z->nrecords; i++)
		if (wire_name_equal(z->records[i].owner, z->records[i].ownerlen, name, len))
			return true;
	return false;
}

/* A service with the zone's defaults for owner, appended to z. */
/* *cap: the room in z->services, grown by doubling (10,000 new names are
 * not 10,000 reallocs of the whole array). */
static long add_service(struct cfg_zone *z, size_t *cap, const uint8_t *owner, size_t len)
{
	char text[DNS_NAME_MAX * 4 + 2], zt[DNS_NAME_MAX * 4 + 2];
	if (wire_name_to_text(owner, len, text, sizeof(text)) < 0 ||
	    wire_name_to_text(z->origin, z->originlen, zt, sizeof(zt)) < 0)
		return -1;
	/* The name relative to the zone: "user-service" of "user-service.mesh." */
	size_t tl = strlen(text), zl = strlen(zt);
	if (tl > zl && text[tl - zl - 1] == '.')
		text[tl - zl - 1] = '\0';
	if (z->nservices + 1 > *cap) {
		size_t nc = *cap < 16 ? 16 : 2 * *cap;
		struct cfg_service *ns = realloc(z->services, nc * sizeof(*ns));
		if (!ns)
			return -1;
		z->services = ns;
		*cap = nc;
	}
	struct cfg_service *s = &z->services[z->nservices];
	memset(s, 0, sizeof(*s));
	s->name = strdup(text);
	s->owner = malloc(len);
	if (!s->name || !s->owner || config_service_defaults(s) == -1) {
		free(s->name);
		free(s->check.path);
		free(s->owner);
		return -1;
	}
	memcpy(s->owner, owner, len);
	s->ownerlen = len;
	s->ttl = z->ttl;              /* as the loader's: the zone's */
	s->from_etcd = true;
	s->line = z->line;
	s->col = z->col;
	return (long)z->nservices++;
}

/* Services by owner name across cfg (zone index, service index), so a
 * hundred thousand names cost a table, not a scan each. */
struct svcmap {
	struct itab index;            /* items: indexes into e */
	struct { uint32_t zi, si; } *e;
	size_t n;
};

static uint64_t name_hash(const uint8_t *n, size_t len)
{
	uint64_t h = fnv_lower(FNV_SEED, n, len);
	return h ^ (h >> 29);
}

static void map_put(struct svcmap *m, const struct config *cfg, size_t zi, size_t si)
{
	const struct cfg_service *s = &cfg->zones[zi].services[si];
	m->e[m->n].zi = (uint32_t)zi;
	m->e[m->n].si = (uint32_t)si;
	itab_put(&m->index, name_hash(s->owner, s->ownerlen), (uint32_t)m->n++);
}

static long map_get(const struct svcmap *m, const struct config *cfg, size_t zi,
                    const uint8_t *owner, size_t len)
{
	size_t pos;
	uint32_t item;
	ITAB_FOR(&m->index, name_hash(owner, len), pos, item) {
		const struct cfg_service *s = &cfg->zones[m->e[item].zi].services[m->e[item].si];
		if (m->e[item].zi == zi && wire_name_equal(s->owner, s->ownerlen, owner, len))
			return (long)m->e[item].si;
	}
	return -1;
}

static void map_free(struct svcmap *m)
{
	itab_free(&m->index);
	free(m->e);
}

int etcdsrc_apply(const struct etcdsrc *s, struct config *cfg, size_t *skipped, char *err,
                  size_t errlen)
{
	*skipped = 0;
	size_t total = s->n;
	for (size_t zi = 0; zi < cfg->nzones; zi++)
		total += cfg->zones[zi].nservices;
	/* Every service of cfg, and one per record at most. */
	struct svcmap map = { .n = 0 };
	map.e = malloc((total + 1) * sizeof(*map.e));
	if (!map.e || itab_init(&map.index, total) == -1) {
		free(map.e);
		snprintf(err, errlen, "out of memory adding etcd records");
		return -1;
	}
	for (size_t zi = 0; zi < cfg->nzones; zi++)
		for (size_t si = 0; si < cfg->zones[zi].nservices; si++)
			map_put(&map, cfg, zi, si);
	size_t *cap = calloc(cfg->nzones + 1, sizeof(*cap));
	if (!cap) {
		map_free(&map);
		snprintf(err, errlen, "out of memory adding etcd records");
		return -1;
	}
	for (size_t zi = 0; zi < cfg->nzones; zi++)
		cap[zi] = cfg->zones[zi].nservices;
	/* In key order, so services and backends come out the same on every
	 * replica and every rebuild. */
	const struct rec **v = malloc((s->n + 1) * sizeof(*v));
	if (!v)
		goto oom;
	size_t n = 0;
	for (size_t i = 0; i < s->tsize; i++)
		if (s->tab[i] && s->tab[i] != TOMB)
			v[n++] = s->tab[i];
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_rec);
	for (size_t i = 0; i < n; i++) {
		const struct rec *r = v[i];
		long zi = zone_of(cfg, r->owner, r->ownerlen);
		if (zi < 0) {
			(*skipped)++;
			continue;
		}
		struct cfg_zone *z = &cfg->zones[zi];
		long si = map_get(&map, cfg, (size_t)zi, r->owner, r->ownerlen);
		if (si < 0) {
			if (has_records(z, r->owner, r->ownerlen) ||
			    wire_name_equal(r->owner, r->ownerlen, z->origin, z->originlen)) {
				(*skipped)++;
				continue;
			}
			if ((si = add_service(z, &cap[zi], r->owner, r->ownerlen)) < 0)
				goto oom;
			map_put(&map, cfg, (size_t)zi, (size_t)si);
		}
		if (add_backend(&z->services[si], r) == -1)
			goto oom;
	}
	free(v);
	map_free(&map);
	free(cap);
	return 0;
oom:
	free(v);
	map_free(&map);
	free(cap);
	snprintf(err, errlen, "out of memory adding etcd records");
	return -1;
}

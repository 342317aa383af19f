/* etcd.h -- the etcd client: one thread reading a key prefix over etcd's v3
 * JSON gateway (a range read, then a watch from the next revision) and
 * handing parsed SkyDNS/CoreDNS records to callbacks. It knows nothing of
 * zones or the registry: the caller turns what it is told into changes. */
#ifndef MESHDNS_ETCD_H
#define MESHDNS_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "dns/wire.h"

enum {
	ETCD_TEXT_MAX = 255,          /* "text": one TXT character-string */
	ETCD_ID_MAX = 253,            /* the instance id, the key's last part */
	ETCD_KEY_MAX = 1024,          /* longer keys are skipped */
	ETCD_WEIGHT_DEFAULT = 100,    /* "weight" absent or 0, as in the YAML */
};

/* One record of a value. Absent fields read as 0 except weight. */
struct etcd_value {
	int family;                   /* AF_INET or AF_INET6 */
	uint8_t addr[16];             /* 4 or 16 bytes used */
	uint16_t port;                /* 0: absent (the service's ports) */
	uint16_t priority;            /* 0..65535, default 0 */
	uint16_t weight;              /* 1..65535, default ETCD_WEIGHT_DEFAULT */
	uint32_t ttl;                 /* 0: absent (the service's ttl) */
	size_t textlen;
	char text[ETCD_TEXT_MAX + 1]; /* NUL-terminated, "" if absent */
};

/* Parses the key of one record below prefix (which ends in '/'):
 * "/skydns/mesh/user-service/x" -> owner user-service.mesh (lowercase
 * absolute wire name, labels reversed) and id "x" (a pointer into key, not
 * terminated). The parts between prefix and id are the labels (at least
 * one, 1..63 bytes, no '.'); id is 1..ETCD_ID_MAX printable ASCII bytes.
 * Returns 0, or -EINVAL with the outputs undefined. Pure; any thread. */
int etcd_parse_key(const char *prefix, const char *key, size_t keylen,
                   uint8_t owner[DNS_NAME_MAX], size_t *ownerlen, const char **id,
                   size_t *idlen);
/* Parses a value: one JSON object (at most len bytes, need not be
 * terminated) with "host" an IPv4 or IPv6 address (required), integers
 * "port" 0..65535, "priority" 0..65535, "weight" 0..65535 (0: default),
 * "ttl" 0..2^31-1 and the string "text" (at most ETCD_TEXT_MAX bytes, no
 * NUL). Other keys (CoreDNS's "mail", "group", ...) are ignored; a known
 * key of the wrong type, a duplicate key or trailing bytes make it
 * malformed. Returns 0, or -EINVAL with *out undefined and, if why is not
 * NULL, *why a static reason. Pure; any thread. */
int etcd_parse_value(const char *json, size_t len, struct etcd_value *out, const char **why);

/* A record as the callbacks see it. Every pointer is valid during the call
 * only. */
struct etcd_kv {
	const char *key;              /* the etcd key, NUL-terminated */
	size_t keylen;
	const uint8_t *owner;         /* parsed key: the name's wire form */
	size_t ownerlen;
	const char *id;               /* the instance id inside key */
	size_t idlen;
	const struct etcd_value *value;   /* NULL for a delete */
	int64_t mod_revision;         /* the revision of this put or delete */
};

/* Called on the etcd thread, never two at once, in revision order.
 *
 * A snapshot (at start, after a compaction made the watch impossible to
 * resume, or after a resume found the revision compacted) replaces all that
 * was known: snapshot_begin(rev), snapshot_kv once per valid key at
 * revision rev (in key order), snapshot_end(rev, n). The whole range is
 * read before begin, so a snapshot is never cut short.
 *
 * An event is one put (value set) or delete (value NULL) after the
 * snapshot, with mod_revision > every earlier one: no event is repeated or
 * lost across reconnects. A put whose key or value does not parse (or is
 * over max-value-size) is counted in skipped and delivered as a delete of
 * that key (a fresh read would not have it either); a skipped key that
 * does not parse is not delivered at all. Callbacks must not block for
 * long: while one runs, the stream is not read. */
struct etcd_callbacks {
	void (*snapshot_begin)(void *ud, int64_t rev);
	void (*snapshot_kv)(void *ud, const struct etcd_kv *kv);
	void (*snapshot_end)(void *ud, int64_t rev, size_t n);
	void (*event)(void *ud, const struct etcd_kv *kv);
	void *ud;
};

/* What /metrics and /status.json show. Times are CLOCK_REALTIME ms. */
struct etcd_status {
	bool synced;                  /* a snapshot was delivered */
	bool connected;               /* a watch stream is open (or a read running) */
	int64_t revision;             /* of the last snapshot or event delivered */
	uint64_t stale_since_ms;      /* 0 while connected; else since when not
	                               * (the start, before the first sync) */
	uint64_t last_sync_ms;        /* the last snapshot */
	uint64_t errors;              /* failed requests and broken streams */
	uint64_t skipped;             /* malformed or oversized keys and values */
	uint64_t snapshots;           /* full reads */
	uint64_t compactions;         /* watch start revisions found compacted */
	uint64_t resumes;             /* watches resumed from revision + 1 */
	uint64_t events;              /* events delivered */
	char endpoint[256];           /* in use (or last tried) */
	char last_error[160];         /* "" if none yet */
};

struct etcd;

/* Starts the client thread for cfg (endpoints must be non-empty; cfg is
 * copied and may be freed after; its timeouts and sizes are used as given,
 * so a cfg not from config_load sets them). Returns NULL with err set on failure.
 * Main thread. */
struct etcd *etcd_new(const struct cfg_etcd *cfg, const struct etcd_callbacks *cb, char *err,
                      size_t errlen);
/* Copies the current status into *out. Any thread. */
void etcd_status(struct etcd *e, struct etcd_status *out);
/* Stops the thread (at once, even inside a request) and frees e. No
 * callback runs after it returns. etcd_free(NULL) is a no-op. Main thread;
 * never from a callback. */
void etcd_free(struct etcd *e);

#endif

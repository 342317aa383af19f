/* etcdsrc.h -- etcd records as backends: the etcd thread's snapshots and
 * events queue up here; the control thread drains them into a table of
 * records (by etcd key) and turns the table into backends of the config:
 * a record's name is a service of ours (declared in the YAML: it keeps
 * its policy, checks and ports; else a service with the zone's defaults),
 * its value one backend. Knows nothing of HTTP or JSON (etcd.c) nor of
 * snapshots (the caller rebuilds). */
#ifndef MESHDNS_ETCDSRC_H
#define MESHDNS_ETCDSRC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "etcd.h"

struct etcdsrc;

/* NULL on ENOMEM. etcdsrc_free(NULL) is a no-op (after the client stopped). */
struct etcdsrc *etcdsrc_new(void);
void etcdsrc_free(struct etcdsrc *s);
/* The callbacks to give etcd_new (their ud is s). */
struct etcd_callbacks etcdsrc_callbacks(struct etcdsrc *s);
/* Readable when changes are queued (an eventfd). */
int etcdsrc_fd(const struct etcdsrc *s);

/* What a drain changed: the owner names whose records changed, and
 * whether a snapshot replaced everything (then all may have). */
struct etcdsrc_changes {
	bool snapshot;
	size_t n;                     /* owners below */
	uint8_t (*owner)[DNS_NAME_MAX];
	size_t *ownerlen;
};
/* Control thread: applies what is queued to the record table. 0, or -1
 * when out of memory (what was taken is applied; the rest stays queued). */
int etcdsrc_drain(struct etcdsrc *s, struct etcdsrc_changes *ch);
void etcdsrc_changes_free(struct etcdsrc_changes *ch);
/* Whether a snapshot was ever applied (/ready). */
bool etcdsrc_synced(const struct etcdsrc *s);

/* Control thread: adds every record to cfg: a backend (source etcd) to the
 * service of its name in the longest zone holding it, a service with the
 * zone's defaults (weighted, the zone's TTL, no check, fail-open, no SRV
 * ports) for a name no service has. Records outside every zone, or at a
 * name holding static records, are counted in *skipped. 0, or -1 with err
 * set (out of memory). */
int etcdsrc_apply(const struct etcdsrc *s, struct config *cfg, size_t *skipped, char *err,
                  size_t errlen);
/* Control thread: dst (empty) becomes base (a service of cfg) with its
 * etcd backends replaced by the table's current records for its name. 0, or
 * -1 when out of memory. */
int etcdsrc_service(const struct etcdsrc *s, const struct cfg_service *base,
                    struct cfg_service *dst);
/* Records in the table. */
size_t etcdsrc_count(const struct etcdsrc *s);

#endif

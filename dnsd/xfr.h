/* xfr.h -- zone transfers out: AXFR (RFC 5936) and IXFR (RFC 1995, from a
 * history of differences) over TCP, restricted by per-zone ACLs (address
 * prefixes and/or TSIG keys), each message signed when the request was
 * (RFC 8945 5.3.1); NOTIFY to secondaries when a zone's serial changes
 * (through notify.c). Services appear in transfers as plain A/AAAA/SRV records of
 * their healthy backends. */
#ifndef MESHDNS_XFR_H
#define MESHDNS_XFR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"
#include "dns/wire.h"
#include "zone.h"

enum {
	XFR_STREAM = -12,             /* a transfer: *stream holds framed messages */
	XFR_JOURNAL_VERSIONS = 1024,  /* differences kept per zone for IXFR */
	XFR_JOURNAL_RECORDS = 4000000, /* and records over all of them */
	XFR_MSG_TARGET = 16384,       /* transfer messages are cut near this size */
};

/* The transfer state of a server: settings, the IXFR history, the NOTIFY
 * thread (started here). NULL with a message in err. */
struct xfr;
struct xfr *xfr_new(char *err, size_t errlen);
/* Stops the NOTIFY thread and frees the history and settings, after the
 * server stopped (NULL: nothing). */
void xfr_free(struct xfr *x);

/* Control thread: installs cfg's ACLs and notify targets with their keys
 * (copied; published with RCU so workers never lock). 0, or -1 when out
 * of memory (the previous settings stay). */
int xfr_configure(struct xfr *x, const struct config *cfg);
/* Control thread, when snap replaces prev (NULL at start; both still
 * readable): records for each zone whose serial changed the difference
 * (for IXFR, when the zone allows transfers) and sends NOTIFY. */
void xfr_published(struct xfr *x, const struct zone_snapshot *snap,
                   const struct zone_snapshot *prev);

/* A change in place (control thread): collect the services that change
 * (by slot) with xfr_txn_add, then xfr_txn_lock renders their records as
 * they are and takes the transfer lock; the caller writes the new backend
 * states (bstate_set) or swaps a service's block (registry_replace);
 * xfr_txn_commit renders them again, and for each zone whose records changed raises the serial,
 * records the difference (when transfers are allowed), releases the lock,
 * sends NOTIFY and frees t. Costs O(records of the services changed). */
struct xfr_txn;
struct xfr_txn *xfr_txn_new(struct xfr *x);
void xfr_txn_add(struct xfr_txn *t, const struct zone *z, const struct zone_slot *slot);
void xfr_txn_lock(struct xfr_txn *t);
void xfr_txn_commit(struct xfr_txn *t);

/* Server threads (online RCU readers): answers the AXFR or IXFR request r
 * (request.c has parsed it and checked its TSIG). Returns
 *   XFR_STREAM (TCP) the transfer, *stream (malloc'd, the caller owns it)
 *              holds *streamlen bytes of 2-byte-length-framed messages;
 *   > 0        a complete answer in resp, signed when r is (errors,
 *              REFUSED, IXFR over UDP);
 *   -1         nothing to send. */
struct request;
int xfr_answer(struct xfr *x, const struct request *r, uint8_t *resp, size_t cap,
               uint8_t **stream, size_t *streamlen);

/* The records of zone z as transferred, for tests: calls fn for each RR
 * (SOA first, SOA not repeated), rdata uncompressed. */
typedef void (*xfr_rr_fn)(void *arg, const uint8_t *owner, size_t ownerlen, uint16_t type,
                          uint32_t ttl, const uint8_t *rdata, uint16_t rdlen);
int xfr_render_zone(const struct zone *z, xfr_rr_fn fn, void *arg);

#endif

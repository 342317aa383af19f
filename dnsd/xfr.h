/* xfr.h -- zone transfers out and TSIG at the server's edge: AXFR (RFC
 * 5936) and IXFR (RFC 1995, from a history of differences) over
 * TCP, restricted by per-zone ACLs (address prefixes and/or TSIG keys);
 * TSIG verification of every signed request and signing of its answer
 * (RFC 8945); NOTIFY to secondaries when a zone's serial changes (through
 * notify.c). Services appear in transfers as plain A/AAAA/SRV records of
 * their healthy backends. */
#ifndef MESHDNS_XFR_H
#define MESHDNS_XFR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"
#include "tsig.h"
#include "wire.h"
#include "zone.h"

enum {
	XFR_PASS = -10,               /* not for us: query_process answers it */
	XFR_SIGNED = -11,             /* a good TSIG on an ordinary request: see below */
	XFR_STREAM = -12,             /* a transfer: *stream holds framed messages */
	XFR_JOURNAL_VERSIONS = 1024,  /* differences kept per zone for IXFR */
	XFR_JOURNAL_RECORDS = 4000000, /* and records over all of them */
	XFR_MSG_TARGET = 16384,       /* transfer messages are cut near this size */
};

/* What xfr_process left for the caller of an XFR_SIGNED request. */
struct xfr_signed {
	struct tsig_ctx tsig;
	const uint8_t *req;           /* the request without its TSIG RR, ARCOUNT less one */
	size_t reqlen;                /* (thread-local storage, valid until the next call) */
	size_t limit;                 /* the longest answer the client takes */
	bool tcp;
};

/* Control thread: installs cfg's keys, ACLs and notify targets (copied;
 * published with RCU so workers never lock). 0, or -1 when out of memory
 * (the previous settings stay). */
int xfr_configure(const struct config *cfg);
/* Control thread, when snap replaces prev (NULL at start; both still
 * readable): records for each zone whose serial changed the difference
 * (for IXFR, when the zone allows transfers) and sends NOTIFY. */
void xfr_published(const struct zone_snapshot *snap, const struct zone_snapshot *prev);

/* A change in place (control thread): collect the services that change
 * (by slot) with xfr_txn_add, then xfr_txn_lock renders their records as
 * they are and takes the transfer lock; the caller writes the new backend
 * states (bstate_set) or swaps a service's block (registry_replace);
 * xfr_txn_commit renders them again, and for each zone whose records changed raises the serial,
 * records the difference (when transfers are allowed), releases the lock,
 * sends NOTIFY and frees t. Costs O(records of the services changed). */
struct xfr_txn;
struct xfr_txn *xfr_txn_new(void);
void xfr_txn_add(struct xfr_txn *t, const struct zone *z, const struct zone_slot *slot);
void xfr_txn_lock(struct xfr_txn *t);
void xfr_txn_commit(struct xfr_txn *t);
/* Starts and stops the NOTIFY thread; frees the journal and settings. */
int xfr_start(char *err, size_t errlen);
void xfr_stop(void);

/* Server threads (online RCU readers): looks at req first. Returns
 *   XFR_PASS   not signed and not a transfer: answer it as usual;
 *   XFR_SIGNED signed with a good key: answer sig->req as usual, then call
 *              xfr_sign_answer;
 *   XFR_STREAM (TCP) the transfer, *stream (malloc'd, the caller owns it)
 *              holds *streamlen bytes of 2-byte-length-framed messages;
 *   > 0        a complete answer in resp (errors, REFUSED, TSIG errors,
 *              IXFR over UDP);
 *   -1         nothing to send. */
int xfr_process(const uint8_t *req, size_t len, uint8_t *resp, size_t cap,
                const struct sockaddr *peer, bool tcp, struct xfr_signed *sig, uint8_t **stream,
                size_t *streamlen);
/* Signs the answer (resp, n bytes) to an XFR_SIGNED request. An answer
 * that no longer fits the client's limit becomes a truncated (TC) one.
 * Returns the new length, or n itself if n <= 0. */
int xfr_sign_answer(struct xfr_signed *sig, uint8_t *resp, int n, size_t cap);

/* The records of zone z as transferred, for tests: calls fn for each RR
 * (SOA first, SOA not repeated), rdata uncompressed. */
typedef void (*xfr_rr_fn)(void *arg, const uint8_t *owner, size_t ownerlen, uint16_t type,
                          uint32_t ttl, const uint8_t *rdata, uint16_t rdlen);
int xfr_render_zone(const struct zone *z, xfr_rr_fn fn, void *arg);

#endif

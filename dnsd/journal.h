/* journal.h -- the on-disk journal of accepted dynamic updates (RFC 2136):
 * an append-only file of CRC-checked, length-prefixed operations, fsync'd
 * before an update is answered and replayed at start. Knows nothing of
 * zones, configs or sockets.
 *
 * File: the 8-byte magic "MDNSJRN1", then records, each
 *   u32 length of the payload (big-endian), u32 CRC-32 (IEEE) of the payload,
 *   payload: u8 op, owner (uncompressed wire name), u16 type, u32 ttl,
 *            u16 rdlength, rdata (uncompressed wire).
 * The operations of one UPDATE are written as one group: a BEGIN record
 * (kind 5, ttl = the count) then the operations, in one write, then one
 * fdatasync. A last record or group cut short (a crash during the write),
 * or a zero-filled tail (a file extended but never written: power loss),
 * is ignored with a warning and cut off; a complete record with a bad CRC
 * or a bad payload is corruption and an error. */
#ifndef MESHDNS_JOURNAL_H
#define MESHDNS_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns/wire.h"

enum journal_opkind {
	JOURNAL_ADD = 1,              /* add one RR */
	JOURNAL_DEL_RR = 2,           /* delete one RR (owner, type, rdata) */
	JOURNAL_DEL_RRSET = 3,        /* delete the RRset (owner, type) */
	JOURNAL_DEL_NAME = 4,         /* delete every RR at owner */
	/* Not an operation: the next ttl records are one UPDATE, applied
	 * all or none (a group cut short by a crash is a torn end). */
	JOURNAL_BEGIN = 5,
};

enum {
	JOURNAL_RDATA_MAX = 4096,     /* larger rdata is refused (UPDATEs are small) */
	JOURNAL_REC_MAX = 1 + DNS_NAME_MAX + 8 + JOURNAL_RDATA_MAX,
	JOURNAL_HDR = 8,              /* length + CRC before each payload */
	JOURNAL_GROUP_MAX = 65535,    /* operations in one group (one UPDATE) */
};

/* One operation; rdata points into a buffer owned by whoever made it. */
struct journal_op {
	uint8_t kind;                 /* enum journal_opkind */
	uint8_t owner[DNS_NAME_MAX];  /* lowercase absolute wire name */
	size_t ownerlen;
	uint16_t type;                /* 0 for JOURNAL_DEL_NAME */
	uint32_t ttl;
	uint16_t rdlen;
	const uint8_t *rdata;
};

/* CRC-32 (IEEE 802.3, as zlib's crc32) of buf. */
uint32_t journal_crc32(const uint8_t *buf, size_t len);

/* Writes op as one framed record (header + payload) into out (capacity cap,
 * JOURNAL_HDR + JOURNAL_REC_MAX is always enough). Returns its length or -1. */
int journal_encode(const struct journal_op *op, uint8_t *out, size_t cap);

/* Result of journal_decode. */
enum journal_dec {
	JOURNAL_DEC_OK = 0,
	JOURNAL_DEC_TORN = 1,         /* fewer bytes than the record needs: a torn end */
	JOURNAL_DEC_BAD = 2,          /* complete but bad CRC or payload */
};

/* Decodes the record at buf[0..len): on JOURNAL_DEC_OK fills op (rdata
 * points into buf) and *used. */
enum journal_dec journal_decode(const uint8_t *buf, size_t len, struct journal_op *op,
                                size_t *used);

/* Reads and replays path: calls fn for every good operation in order
 * (those of a group only once the whole group was read). A missing file
 * is empty. With repair, a torn end is cut off the file
 * (truncate) after a warning; without (dnsd --check) it is only reported.
 * Returns the number of records, BEGIN ones included (>= 0), or -1 with a
 * message in err
 * ("path: offset N: bad CRC"). */
typedef int (*journal_replay_fn)(void *arg, const struct journal_op *op);
long journal_replay(const char *path, bool repair, journal_replay_fn fn, void *arg, char *err,
                    size_t errlen);

/* An open journal for appending. */
struct journal;

/* Opens (creating it with its magic if missing) path for appending.
 * NULL with err set on failure. */
struct journal *journal_open(const char *path, char *err, size_t errlen);
void journal_close(struct journal *j);
/* Appends ops[0..n) as one group (all or none survive a crash) and
 * fsyncs (fdatasync) the file: once this returns 0 they survive a crash.
 * -1 on failure, with the file cut back to its previous length where
 * possible. */
int journal_append(struct journal *j, const struct journal_op *ops, size_t n);
/* Replaces the file by one holding exactly ops[0..n) (a compacted
 * journal): written to path.tmp, fsync'd, renamed over path, directory
 * fsync'd, then reopened. 0, or -1 (the old file stays in use). */
int journal_rewrite(struct journal *j, const struct journal_op *ops, size_t n);
/* Records in the file (as counted since open; grows with appends). */
size_t journal_records(const struct journal *j);
void journal_set_records(struct journal *j, size_t n);

#endif

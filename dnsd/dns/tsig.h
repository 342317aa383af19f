/* tsig.h -- TSIG (RFC 8945): verifying signed requests and signing
 * responses (single and multi-message, as in AXFR) and requests (NOTIFY),
 * with HMAC-SHA256/512 from libsodium. Works on whole wire messages; knows
 * nothing of zones or sockets. Never allocates. */
#ifndef MESHDNS_TSIG_H
#define MESHDNS_TSIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns/wire.h"

enum tsig_alg {
	TSIG_HMAC_SHA256 = 0,
	TSIG_HMAC_SHA512,
};

enum {
	TSIG_MAC_MAX = 64,            /* HMAC-SHA512 */
	TSIG_FUDGE = 300,             /* seconds, RFC 8945 10 */
	TSIG_SECRET_MAX = 512,
	/* Room a TSIG RR takes at the end of a message at most: owner and
	 * algorithm names (uncompressed), fixed fields, MAC and 6 bytes of
	 * other data. Writers keep this much free. */
	TSIG_RR_MAX = 2 * DNS_NAME_MAX + 10 + 16 + TSIG_MAC_MAX + 6,
};

/* TSIG error codes (RFC 8945 3), carried in the TSIG RR's Error field. */
enum tsig_error {
	TSIG_NOERROR = 0,
	TSIG_BADSIG = 16,
	TSIG_BADKEY = 17,
	TSIG_BADTIME = 18,
	TSIG_BADTRUNC = 22,
};

/* A shared secret: name (lowercase absolute wire name) and algorithm. */
struct tsig_key {
	char *name_text;              /* as configured, for messages and ACLs */
	uint8_t name[DNS_NAME_MAX];
	size_t namelen;
	enum tsig_alg alg;
	uint8_t secret[TSIG_SECRET_MAX];
	size_t secretlen;
};

/* One signed exchange. tsig_verify fills it from a request; every
 * tsig_sign updates mac to the MAC just made, which the next message of a
 * multi-message answer chains from (RFC 8945 5.3.1). */
struct tsig_ctx {
	const struct tsig_key *key;   /* NULL: unknown key (BADKEY) */
	uint8_t mac[TSIG_MAC_MAX];    /* the prior MAC */
	size_t maclen;
	uint64_t time_signed;         /* the request's */
	uint16_t error;               /* enum tsig_error of the verification */
	/* The request's key and algorithm names as sent (for BADKEY answers). */
	uint8_t name[DNS_NAME_MAX];
	size_t namelen;
	uint8_t algname[DNS_NAME_MAX];
	size_t algnamelen;
	unsigned nsigned;             /* messages signed so far */
};

/* The algorithm named text ("hmac-sha256", "hmac-sha512"), or -1. */
int tsig_alg_from_text(const char *text);
const char *tsig_alg_name(enum tsig_alg alg);
/* The digest length of alg in bytes. */
size_t tsig_alg_len(enum tsig_alg alg);

/* Fills key from a name, algorithm and base64 secret (whitespace allowed).
 * 0, or -1 with a reason in *why. name_text is not copied: the caller
 * sets key->name_text itself if it wants it. */
int tsig_key_init(struct tsig_key *key, const char *name, enum tsig_alg alg, const char *b64,
                  const char **why);

/* The key called name (any case) among keys, or NULL. */
const struct tsig_key *tsig_key_find(const struct tsig_key *keys, size_t nkeys,
                                     const uint8_t *name, size_t namelen);

/* Verifies the TSIG RR at offset tsig_off of msg (the last RR of its
 * additional section, as wire_parse_query found it) against keys, at time
 * now (seconds since the epoch), in the order RFC 8945 5.2 gives: key
 * (BADKEY), MAC (BADSIG, BADTRUNC), time (BADTIME: now is more than
 * min(the request's fudge, TSIG_FUDGE) from its time signed). ctx is filled in
 * every case but -1 and is what tsig_sign and tsig_error_response need.
 * Returns TSIG_NOERROR (0), a TSIG error (> 0), or -1 if the RR is
 * malformed (FORMERR). */
int tsig_verify(const uint8_t *msg, size_t len, size_t tsig_off, const struct tsig_key *keys,
                size_t nkeys, uint64_t now, struct tsig_ctx *ctx);

/* Verifies a response to a request we signed with ctx (ctx->mac holds the
 * request's MAC): 0 if its TSIG is good, else -1. For NOTIFY answers. */
int tsig_verify_response(const uint8_t *msg, size_t len, size_t tsig_off, uint64_t now,
                         struct tsig_ctx *ctx);

/* Starts ctx for signing a request of our own with key. */
void tsig_ctx_init(struct tsig_ctx *ctx, const struct tsig_key *key);

/* Appends a TSIG RR to the message msg[0..len) (capacity cap) and bumps
 * its ARCOUNT. The first message signed with ctx covers ctx->mac (the
 * request's MAC, if any) and all TSIG variables; later ones chain from
 * the previous MAC and cover the timers only (RFC 8945 5.3.1). Error
 * responses: with ctx->error BADSIG or BADKEY the RR carries no MAC
 * (5.3.2); with BADTIME it is signed, keeps the request's time and carries
 * the server's time as other data (5.2.3). Returns the new length, or -1
 * if it does not fit. */
int tsig_sign(uint8_t *msg, size_t len, size_t cap, struct tsig_ctx *ctx, uint64_t now);

/* Signs the answer msg[0..n) to a verified request for a client that
 * takes at most limit bytes. An answer that no longer fits with its TSIG
 * RR becomes its header and question, TC set, signed (RFC 8945 5.3: the
 * client retries over TCP). Returns the new length, n itself if n is not
 * a message (n <= 12), or -1 if even the short form does not fit. */
int tsig_sign_answer(uint8_t *msg, int n, size_t limit, struct tsig_ctx *ctx, uint64_t now);

#endif

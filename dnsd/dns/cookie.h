/* cookie.h -- DNS Cookies (RFC 7873) with interoperable server cookies
 * (RFC 9018: version 1, SipHash-2-4 via libsodium). Pure functions over
 * caller-supplied buffers: no allocation, no state, no clock. */
#ifndef MESHDNS_COOKIE_H
#define MESHDNS_COOKIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum {
	COOKIE_CLIENT_LEN = 8,
	COOKIE_SERVER_LEN = 16,       /* RFC 9018 4: version, reserved, timestamp, hash */
	COOKIE_LEN = COOKIE_CLIENT_LEN + COOKIE_SERVER_LEN,
	COOKIE_SECRET_LEN = 16,       /* the SipHash-2-4 key */
	COOKIE_MAX_AGE = 3600,        /* RFC 9018 4.3: older is invalid */
	COOKIE_MAX_AHEAD = 300,       /* RFC 9018 4.3: clock skew allowed */
	COOKIE_RENEW_AGE = 1800,      /* RFC 9018 4.3: re-issue after half an hour */
};

/* The secrets a server cookie is checked against; new cookies are made
 * with current only. previous is the one rotated out (RFC 9018 4.4). */
struct cookie_secrets {
	uint8_t current[COOKIE_SECRET_LEN];
	uint8_t previous[COOKIE_SECRET_LEN];
	bool have_previous;
};

enum cookie_verdict {
	COOKIE_NONE = 0,       /* no COOKIE option */
	COOKIE_CLIENT_ONLY,    /* only a client cookie: answer with a new server cookie */
	COOKIE_INVALID,        /* a server cookie that is not ours, expired, or from the
	                        * future: treated as client-only (RFC 7873 5.2.4) */
	COOKIE_VALID,          /* ours and fresh: echoed unchanged */
	COOKIE_RENEW,          /* ours but older than COOKIE_RENEW_AGE, or made with the
	                        * previous secret: valid, answered with a new one */
};

/* The client address as the cookie hash covers it (RFC 9018 4.2): 4 bytes
 * for IPv4 (IPv4-mapped IPv6 included), 16 for IPv6. Returns the length,
 * or 0 for another family. */
size_t cookie_client_ip(const struct sockaddr *sa, uint8_t out[16]);

/* Makes the 16-byte server cookie for client (8 bytes) from ip (iplen 4 or
 * 16) at Unix time now with secret: 0x01, three zero bytes, now (big
 * endian), SipHash-2-4(client | 01 000000 | now | ip). */
void cookie_make(const uint8_t secret[COOKIE_SECRET_LEN], const uint8_t client[COOKIE_CLIENT_LEN],
                 const uint8_t *ip, size_t iplen, uint32_t now, uint8_t out[COOKIE_SERVER_LEN]);

/* Judges the content of a COOKIE option (len 8, or 16..40 as wire.c has
 * already checked) sent from ip at time now. Hash comparison is constant
 * time (sodium_memcmp); the reserved bytes take part in the hash as sent. */
enum cookie_verdict cookie_check(const struct cookie_secrets *s, const uint8_t *opt, size_t len,
                                 const uint8_t *ip, size_t iplen, uint32_t now);

/* The option content to answer with (COOKIE_LEN bytes into out): the
 * client cookie and, for COOKIE_VALID, the server cookie as received, else
 * a new one made with s->current. */
void cookie_answer(const struct cookie_secrets *s, enum cookie_verdict v, const uint8_t *opt,
                   const uint8_t *ip, size_t iplen, uint32_t now, uint8_t out[COOKIE_LEN]);

/* Parses 32 hex digits (surrounding whitespace allowed, as in a file
 * written by `openssl rand -hex 16`). Returns 0, or -1. */
int cookie_secret_from_hex(const char *text, uint8_t out[COOKIE_SECRET_LEN]);

#endif

/* guard.h -- the query path's DNS Cookies and response rate limiting:
 * settings built from the configuration and published to the workers
 * (RCU, like zone snapshots), and the two hooks query.c calls around an
 * answer. No allocation and no lock per query. */
#ifndef MESHDNS_GUARD_H
#define MESHDNS_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dns/cookie.h"
#include "dns/wire.h"

struct config;
struct guard;
struct guard_conf;
struct metrics_worker;

/* The cookie and rate-limit state of a server: NULL when out of memory
 * (or libsodium fails). Answers see no settings until guard_configure. */
struct guard *guard_new(void);
/* After the server and the forwarder stopped (nothing reads it). */
void guard_free(struct guard *g);

/* Builds the settings of cfg (cookies, rrl) and publishes them in g; the
 * previous ones are freed after a grace period. Without a cookies
 * secret-file the secret is generated once and kept across reloads. The
 * rate-limit table is made the first time a rate is set and kept (with its
 * counts) until guard_free. Control thread only. 0, or -1 (out of memory:
 * the previous settings stay). */
int guard_configure(struct guard *g, const struct config *cfg);

enum guard_action {
	GUARD_ANSWER = 0,             /* answer normally */
	GUARD_BADCOOKIE,              /* require-under-load: answer BADCOOKIE, no records */
	GUARD_TRUNCATE,               /* require-under-load, no cookie: empty answer with TC */
};

/* Per request, on the caller's stack. */
struct guard_req {
	const struct guard_conf *g;   /* NULL: nothing configured */
	enum cookie_verdict verdict;
	bool cookie;                  /* answer with the COOKIE option below */
	uint8_t opt[COOKIE_LEN];
	uint8_t ip[16];
	size_t iplen;
	struct metrics_worker *m;     /* where the verdicts are counted, or NULL */
};

/* Judges the request's cookie (req is the message q was parsed from) by
 * g's settings (g NULL: none) and decides per require-under-load,
 * counting in m (the calling worker's metrics, or NULL). The caller must
 * be an online RCU reader until guard_response returns. */
enum guard_action guard_request(struct guard_req *gr, const struct guard *g,
                                struct metrics_worker *m, const uint8_t *req,
                                const struct dns_query *q, const struct sockaddr *peer, bool tcp);

/* opt_at for guard_response: not known, found if needed (cache hits). */
#define GUARD_OPT_FIND ((size_t)-1)

/* Rate limiting of the finished response resp[0..n) (UDP only; exempt:
 * TCP, a valid server cookie, the exempt prefixes): every UDP answer,
 * authoritative, from the cache or forwarded, goes through it. qend is
 * where the question ends, opt_at where the OPT record starts (0: none;
 * GUARD_OPT_FIND: look for it). Returns n, the length of the truncated
 * (TC, OPT kept) form, or -1 to drop it. */
int guard_response(const struct guard_req *gr, uint8_t *resp, int n, size_t qend, size_t opt_at,
                   bool tcp);

/* The same for a UDP answer given later (the forwarder's): peer is the
 * client, cookie_ok whether its query carried a valid server cookie. The
 * caller must be an online RCU reader. */
int guard_response_later(const struct guard *g, const struct sockaddr *peer, bool cookie_ok,
                         uint8_t *resp, int n, size_t qend, size_t opt_at);

/* True if the client of gr may read CHAOS service status (<service>,
 * _why.<service>): its address is in chaos.allow (default loopback). */
bool guard_chaos_allowed(const struct guard_req *gr);

/* True if the request carried a valid server cookie (the client has shown
 * it receives at its address: no amplification through it). */
bool guard_cookie_valid(const struct guard_req *gr);

#endif

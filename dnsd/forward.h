/* forward.h -- names outside our zones sent to upstream servers through
 * c-ares, on one thread that drives the channel from its own epoll loop
 * (ARES_OPT_SOCK_STATE_CB + ares_process_fd). Answers go back to clients
 * through server_reply and into the cache. */
#ifndef MESHDNS_FORWARD_H
#define MESHDNS_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "config.h"
#include "query.h"
#include "server.h"

enum { FORWARD_UPSTREAMS_MAX = 16 };

struct guard;

struct forward_settings {
	const struct cfg_listen *upstreams;  /* copied */
	size_t nupstreams;                   /* >= 1 */
	uint32_t timeout_ms;                 /* clients get SERVFAIL after this */
	uint32_t max_outstanding;            /* queries queued or upstream, <= 60000 */
	bool tcp;                            /* TCP to upstreams (else UDP, TCP on TC) */
	uint16_t udp_max_payload;            /* advertised upstream and to clients; UDP
	                                      * answers of any size we can read are taken */
	struct cache *cache;                 /* answers stored here; may be NULL */
	const struct guard *guard;           /* UDP answers rate limited by it; may be NULL */
};

/* Upstream round trips (sent to c-ares' callback, answered or failed),
 * for dnsd_forward_request_duration_seconds (CoreDNS
 * coredns_forward_request_duration_seconds): bucket upper bounds in us. */
enum { FORWARD_NBUCKETS = 14 };
extern const uint32_t forward_bucket_us[FORWARD_NBUCKETS];

struct forward_stats {
	uint64_t forwarded;           /* queries sent upstream */
	uint64_t answered;            /* upstream answers passed on */
	uint64_t failed;              /* SERVFAIL: upstream error or no answer in time */
	uint64_t over_cap;            /* SERVFAIL at once: max-outstanding reached */
	uint64_t dur_bucket[FORWARD_NBUCKETS];   /* per bucket, not cumulative */
	uint64_t dur_count;           /* round trips (those over the last bound only here) */
	uint64_t dur_sum_us;
	uint64_t coalesced;           /* queries that took the answer of the same
	                               * question already upstream (not sent again) */
	uint64_t bad;                 /* UDP datagrams ignored: no such query, or not
	                               * an answer to it (forged, late, broken) */
	uint64_t via_tcp;             /* queries sent over TCP (truncated over UDP) */
	uint64_t rrl_dropped;         /* answers not sent: rate limited */
};

struct forward;

/* Starts the forwarder thread. NULL on failure with a message in err. */
struct forward *forward_start(const struct forward_settings *set, char *err, size_t errlen);

/* Hands query fq (from query_forward_info) to the forwarder; the answer
 * goes to the client described by peer (see server_route_save) within
 * timeout_ms, through response rate limiting (guard.h) if over UDP. A
 * query whose question is already upstream waits for that answer rather
 * than being sent again (which also ends forwarding loops after one
 * round). 0: queued; -1: not taken (max-outstanding reached or
 * stopping), the caller answers SERVFAIL now. Any thread; allocates. */
int forward_submit(struct forward *f, const struct query_forward *fq,
                   const struct server_peer *peer);

/* An answer to fq with no records: rcode, RA, and OPT if the client sent
 * EDNS. Returns its length, or -1 if cap is too small. */
int forward_error(const struct query_forward *fq, unsigned rcode, uint16_t udp_max_payload,
                  uint8_t *out, size_t cap);

void forward_stats(struct forward *f, struct forward_stats *out);

/* Stops and joins the thread; queries not answered yet get no answer and
 * later forward_submit calls fail. Call before server_stop. */
void forward_stop(struct forward *f);
/* Frees it; call after server_stop (no thread may submit any more).
 * forward_free(NULL) is a no-op. */
void forward_free(struct forward *f);

/* The upstreams of a resolv.conf file: its nameserver lines (port 53),
 * at most max. 0, or -1 with a message in err (unreadable file). */
int forward_read_resolv_conf(const char *path, struct cfg_listen *out, size_t max, size_t *n,
                             char *err, size_t errlen);

/* True if upstream is one of our own listen addresses (forwarding to it
 * would loop): the same port and address in any form (an IPv4-mapped
 * IPv6 address is its IPv4 address), a wildcard listen address matching
 * every local address (loopback, 127/8 and interfaces). A listen port 0
 * matches nothing (the kernel picks it later); a loop through it, or
 * through another server, is ended by coalescing (forward_submit). */
bool forward_is_self(const struct cfg_listen *upstream, const struct cfg_listen *listen,
                     size_t nlisten);

#endif

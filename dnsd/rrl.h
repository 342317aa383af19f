/* rrl.h -- response rate limiting (as BIND, Knot and NSD): token buckets
 * per client prefix and response class, in a fixed table updated with
 * compare-and-swap. No allocation and no lock per response. */
#ifndef MESHDNS_RRL_H
#define MESHDNS_RRL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns/wire.h"

enum {
	RRL_EXEMPT_MAX = 64,
	RRL_TABLE_LOG2 = 17,          /* 131072 buckets of 8 bytes: 1 MiB */
};

/* What a response is limited as, and by which name (BIND's and Knot's
 * classes): answers per name and type, NODATA per name, NXDOMAIN per zone
 * (the SOA owner, so random subdomains share one bucket), referrals per
 * delegation, errors (REFUSED, SERVFAIL, FORMERR, ...) per client only. */
enum rrl_class { RRL_ANSWER, RRL_NODATA, RRL_NXDOMAIN, RRL_REFERRAL, RRL_ERROR };

enum rrl_verdict { RRL_PASS, RRL_SLIP, RRL_DROP };

struct rrl_prefix {
	uint8_t iplen;                /* 4 or 16 */
	uint8_t addr[16];
	uint8_t prefix;
};

/* rate 0: off. Set up once per configuration; read-only afterwards. */
struct rrl_settings {
	uint32_t rate;                /* responses per second per bucket */
	uint32_t window;              /* seconds of debt a bucket can run up: a client
	                               * over the limit stays limited until it has
	                               * slowed down for up to this long */
	uint32_t slip;                /* 0: drop all limited answers; N: every Nth is
	                               * sent truncated (TC), the others dropped */
	uint8_t v4_prefix;            /* clients are grouped by /24 ... */
	uint8_t v6_prefix;            /* ... and /56 */
	size_t nexempt;
	struct rrl_prefix exempt[RRL_EXEMPT_MAX];
};

struct rrl;

/* A table of 2^log2 buckets with a random hash key; NULL if out of memory.
 * Shared by every worker thread; rrl_free only once none uses it. */
struct rrl *rrl_new(unsigned log2);
void rrl_free(struct rrl *t);

/* True if ip (iplen 4 or 16) lies in one of s's exempt prefixes. */
bool rrl_exempt(const struct rrl_settings *s, const uint8_t *ip, size_t iplen);

/* The class of a response we wrote (resp, len >= 12, question first, names
 * possibly compressed), with the name it is counted under copied into name
 * (*namelen 0 for RRL_ERROR) and the query type into *qtype. */
enum rrl_class rrl_classify(const uint8_t *resp, size_t len, uint8_t name[DNS_NAME_MAX],
                            size_t *namelen, uint16_t *qtype);

/* Counts one response of class cls for name/qtype to ip at second now (any
 * monotonic seconds) and says whether to send it, send it truncated or
 * drop it. Lock-free; callable from any thread. The slip count is per
 * calling thread. */
enum rrl_verdict rrl_account(struct rrl *t, const struct rrl_settings *s, const uint8_t *ip,
                             size_t iplen, enum rrl_class cls, const uint8_t *name,
                             size_t namelen, uint16_t qtype, uint32_t now);

#endif

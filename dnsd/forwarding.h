/* forwarding.h -- names outside our zones, as the config asks: the cache
 * and the forwarder (forward.c) made from it, and what a reload cannot
 * change of them. */
#ifndef MESHDNS_FORWARDING_H
#define MESHDNS_FORWARDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cache;
struct cfg_listen;
struct config;
struct forward;
struct forwarding;
struct guard;

/* Starts the cache and the forwarder if cfg forwards, with guard's rate
 * limiting on UDP answers, never to one of listen's addresses (that would
 * loop). *out: the handle, or NULL when forwarding is off (not configured,
 * or no usable upstream: logged). 0, or -1 after logging. Its counters go
 * to /metrics while it runs. */
int forwarding_start(const struct config *cfg, const struct cfg_listen *listen, size_t nlisten,
                     const struct guard *guard, struct forwarding **out);
/* What the request path needs (NULL, NULL, 0 for a NULL handle). */
struct forward *forwarding_forwarder(const struct forwarding *fw);
struct cache *forwarding_cache(const struct forwarding *fw);
uint16_t forwarding_payload(const struct forwarding *fw);
/* Stops taking queries: before the server stops (the forwarder answers
 * through its sockets). */
void forwarding_stop(struct forwarding *fw);
/* After the server stopped: logs the counters and frees (NULL: nothing). */
void forwarding_free(struct forwarding *fw);

/* Whether a and b forward alike (a reload cannot change forwarding). */
bool forwarding_config_equal(const struct config *a, const struct config *b);

#endif

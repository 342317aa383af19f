/* http.h -- the operator endpoint (YAML `http:` or --http): /metrics
 * (Prometheus text), /health, /ready, /status.json and the status page at /.
 * libmicrohttpd parses HTTP; it runs in its external-epoll mode on one
 * thread of ours, which is an RCU reader of the zone snapshot, so it never
 * blocks or slows the DNS workers. */
#ifndef MESHDNS_HTTP_H
#define MESHDNS_HTTP_H

#include <stdbool.h>

#include "config.h"
#include "health.h"

struct http;

/* Binds addr (port 0: any free port) and starts the thread. health may be
 * NULL. Returns NULL with a message in err on failure. */
struct http *http_start(const struct cfg_listen *addr, struct health *health, char *err,
                        size_t errlen);
/* /ready answers 200 only after this was called with true (DNS listeners
 * bound) and every checked backend has been probed once or the bound set
 * with http_set_ready_bound has passed. */
void http_set_serving(struct http *h, bool serving);
/* /ready answers 503 "etcd not read yet" while waiting is true (set until
 * the first etcd snapshot is served, unless etcd.serve-stale). Any thread. */
void http_set_waiting(struct http *h, bool waiting);
/* /metrics and /status.json add the etcd client's state (stale since
 * when, revision, errors). e must outlive h, or be set back to NULL. */
struct etcd;
void http_set_etcd(struct http *h, struct etcd *e);
/* /ready waits for the first health checks at most ms from now (a first
 * probe comes at a random point of its first interval, which may be
 * minutes). Until called, it does not wait for them. Any thread. */
void http_set_ready_bound(struct http *h, unsigned ms);
/* The bound port. */
int http_local_port(const struct http *h);
/* Stops the thread, closes connections; http_stop(NULL) is a no-op. */
void http_stop(struct http *h);

#endif

/* server.h -- sockets and threads: UDP workers (one SO_REUSEPORT socket per
 * worker and listen address, batched recvmmsg/sendmmsg) and a TCP thread
 * (RFC 7766 framing, pipelining, idle timeout, connection cap). It knows no
 * DNS: every message goes through server_ops.handle. */
#ifndef MESHDNS_SERVER_H
#define MESHDNS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"

struct server;

struct server_peer {
	const struct sockaddr *addr;  /* the client */
	socklen_t addrlen;
	bool tcp;
};

/* Callbacks, all called on server threads. Each thread that calls handle
 * is registered with liburcu-qsbr and online while in handle. */
struct server_ops {
	/* Per-thread context, created on the thread that uses it (idx counts
	 * threads from 0). NULL is a startup error. */
	void *(*thread_init)(void *arg, unsigned idx);
	void (*thread_fini)(void *ctx);
	/* Answer one message: write at most cap bytes into resp. Returns the
	 * response length (> 0), or -1 to send nothing. resp has room for
	 * 65535 bytes whatever cap is; for UDP cap is 65535 too and the
	 * handler applies the client's payload size itself. */
	int (*handle)(void *ctx, const uint8_t *req, size_t len, uint8_t *resp, size_t cap,
	              const struct server_peer *peer);
	void *arg;
};

struct server_settings {
	const struct cfg_listen *listen;
	size_t nlisten;
	unsigned udp_workers;          /* per listen address, >= 1 */
	unsigned tcp_max_clients;      /* open connections across all listeners */
	unsigned tcp_idle_timeout_ms;  /* idle or slow connections closed after this */
};

/* Binds every socket (UDP and TCP on each listen address), then starts the
 * threads. On failure returns -1 with a message in err ("bind 127.0.0.1:53:
 * Address already in use") and nothing left running. */
int server_start(struct server **out, const struct server_settings *set,
                 const struct server_ops *ops, char *err, size_t errlen);
/* Stops and joins every thread (within about 0.5 s), closes sockets, frees.
 * server_stop(NULL) is a no-op. Call from the thread that started it. */
void server_stop(struct server *srv);
/* The port listen address listen_idx is bound to (UDP and TCP share it; a
 * configured port 0 was replaced by the one the kernel picked), or -1 if
 * listen_idx is out of range. */
int server_local_port(const struct server *srv, size_t listen_idx);

#endif

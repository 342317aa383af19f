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
	/* Where an answer given later goes; read by server_route_save only. */
	struct server *srv;
	int fd;                       /* UDP: the socket the request came in on */
	const struct msghdr *msg;     /* UDP: the request, with IP_PKTINFO; or NULL */
	uint32_t slot, gen;           /* TCP: the connection */
	/* When the request was received (clock_mono_ns), if the server read
	 * the clock for its batch; 0: the handler reads it. With recv_ns set
	 * the server times the batch itself: see server_ops.batch_done. */
	uint64_t recv_ns;
};

/* The way back to a client for an answer given later, from another thread
 * (the forwarder): a copy, valid for as long as the server runs. An answer
 * to a TCP connection that was closed since, or whose slot now serves
 * another connection, is dropped. */
struct server_route {
	struct server *srv;
	bool tcp;
	int fd;
	uint32_t slot, gen;
	struct sockaddr_storage peer;
	socklen_t peerlen;
	size_t cmsglen;
	_Alignas(struct cmsghdr) uint8_t cmsg[64];  /* IP_PKTINFO of a wildcard listener */
};

/* handle's return value for "answered later through server_reply". */
enum { SERVER_DEFERRED = -2 };
/* handle's return value (TCP only) for "the answer is the stream handed
 * over with server_stream" (a zone transfer: many messages). */
enum { SERVER_STREAM = -3 };

/* Callbacks, all called on server threads. Each thread that calls handle
 * is registered with liburcu-qsbr and online while in handle. */
struct server_ops {
	/* Per-thread context, created on the thread that uses it (idx counts
	 * threads from 0). NULL is a startup error. */
	void *(*thread_init)(void *arg, unsigned idx);
	void (*thread_fini)(void *ctx);
	/* Answer one message: write at most cap bytes into resp. Returns the
	 * response length (> 0), -1 to send nothing, or SERVER_DEFERRED if
	 * the handler saved the route (server_route_save) and will answer
	 * with server_reply; TCP keeps such a connection open until the
	 * answer came or the idle timeout. resp has room for
	 * 65535 bytes whatever cap is; for UDP cap is 65535 too and the
	 * handler applies the client's payload size itself. */
	int (*handle)(void *ctx, const uint8_t *req, size_t len, uint8_t *resp, size_t cap,
	              const struct server_peer *peer);
	/* After a UDP batch, before its answers are sent: n of its requests
	 * (those not deferred) took ns since the batch was received. May be
	 * NULL. One clock read a batch, where the handler would read one a
	 * request: the answers all leave together. */
	void (*batch_done)(void *ctx, unsigned n, uint64_t ns);
	void *arg;
};

struct server_settings {
	const struct cfg_listen *listen;
	size_t nlisten;
	unsigned udp_workers;          /* per listen address, >= 1 */
	/* Open connections across all listeners. When all are in use a new
	 * one takes the place of the least recently active idle one. */
	unsigned tcp_max_clients;
	/* Of them from one client (server_client_key); 0: no cap. */
	unsigned tcp_max_per_client;
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
/* Copies what server_reply needs to answer peer later. Call from handle. */
void server_route_save(const struct server_peer *peer, struct server_route *out);
/* Sends msg (len <= 65535) to the client of route: UDP at once from the
 * socket (and local address) the request came to; TCP queued to the TCP
 * thread, which appends it to the connection's output if it is still the
 * same connection (RFC 7766 6.2.1.1 allows answers out of order). Any
 * thread, while the server runs. 0, or -1 if it could not be sent or
 * queued (the client retries). */
int server_reply(const struct server_route *route, const uint8_t *msg, size_t len);

/* Hands buf (len bytes of messages, each with its 2-byte length prefix;
 * malloc'd, the server frees it) to the TCP connection of peer, to be sent
 * before any later answer on it, as fast as the client reads: the TCP
 * thread copies it into the connection's output in pieces and reads no
 * further queries of that connection meanwhile. Call from handle on the
 * TCP thread only, then return SERVER_STREAM. A peer of no server (a
 * request made up by a test or fuzzer) or not TCP: buf is freed. */
void server_stream(const struct server_peer *peer, uint8_t *buf, size_t len);
/* At most this many transfers are streamed at once; the TCP thread asks
 * server_streams_full(peer) before building another (REFUSED then). */
enum { SERVER_STREAMS_MAX = 8 };
bool server_streams_full(const struct server_peer *peer);

/* Changes max-per-client and the idle timeout of a running server (a
 * reload); max-clients sizes memory allocated at start and cannot change.
 * The TCP thread applies them within about 0.2 s; open connections get
 * the new timeout counted from their last progress. idle_timeout_ms 0 is
 * ignored. Any thread. */
void server_set_tcp_limits(struct server *srv, unsigned max_per_client, unsigned idle_timeout_ms);
/* A reload's tcp settings: idle_timeout_ms and max_per_client as
 * server_set_tcp_limits (logged when they change); max_clients sized what
 * the server allocated at start, so a different one is only logged (it
 * takes effect at the next start). Control thread. */
void server_reconfigure_tcp(struct server *srv, unsigned max_clients, unsigned max_per_client,
                            unsigned idle_timeout_ms);
/* Connections closed so far to make room for new ones at max-clients. */
uint64_t server_tcp_reclaimed(const struct server *srv);
/* What max-per-client counts by: an IPv4 address, an IPv6 /64 (one host or
 * site usually holds a whole /64, RFC 6177), an IPv4-mapped IPv6 address as
 * its IPv4 address. Nonzero; the port is ignored. */
uint64_t server_client_key(const struct sockaddr *sa);

/* The port listen address listen_idx is bound to (UDP and TCP share it; a
 * configured port 0 was replaced by the one the kernel picked), or -1 if
 * listen_idx is out of range. */
int server_local_port(const struct server *srv, size_t listen_idx);

#endif

/* server.c -- sockets and threads: UDP workers on SO_REUSEPORT sockets with
 * recvmmsg/sendmmsg, one epoll TCP thread (RFC 7766). Knows no DNS. */
/* The RCU calls of the UDP loop (offline, online, quiescent state: three
 * per batch) inline, as liburcu offers for LGPL-compatible users; not
 * under TSan, which cannot see through their hand-written barriers. */
#ifndef __SANITIZE_THREAD__
#define _LGPL_SOURCE
#endif
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <urcu-qsbr.h>

#include "util/addr.h"
#include "util/clock.h"
#include "util/hash.h"
#include "util/list.h"
#include "util/log.h"

/* Threads: nlisten * udp_workers UDP workers (thread_init idx 0.. in listen
 * order), then the TCP thread (the last idx). Each owns its socket(s) and
 * buffers; the only shared mutable state is the stop flag and, during
 * server_start only, the startup handshake under srv->mu.
 *
 * RCU: every thread is a liburcu-qsbr reader, online while it handles
 * messages and offline while it blocks. A UDP worker's receive blocks
 * until a datagram comes or server_free shuts its socket; the TCP
 * thread's waits are bounded by WAIT_MS, which bounds how late it sees
 * the stop flag and (since offline threads do not delay a grace period)
 * nothing else. */

enum {
	MSG_MAX = 65535,
	/* Messages per recvmmsg/sendmmsg: one syscall pair per 32 answers
	 * under load; with MSG_WAITFORONE a lone packet is not delayed. */
	UDP_BATCH = 32,
	/* Requests above this are dropped (MSG_TRUNC). DNS queries are far
	 * smaller; larger ones (e.g. TSIG'd updates) are not served here. */
	UDP_REQ_MAX = 4096,
	/* Asked for with SO_RCVBUF/SO_SNDBUF, capped by net.core.[rw]mem_max;
	 * absorbs bursts while a worker is busy with its batch. */
	SOCK_BUF = 4 << 20,
	/* The longest a thread blocks: bounds how long server_stop waits. */
	WAIT_MS = 200,
	TCP_BACKLOG = 1024,
	/* One 2-byte length plus the largest message. */
	TCP_FRAME_MAX = 2 + MSG_MAX,
	TCP_IN_CAP = TCP_FRAME_MAX,
	/* Answers are queued here while the client does not read; once more
	 * than 64 KiB is pending, queries are no longer read or answered
	 * (TCP flow control pushes back on a client that only writes). */
	TCP_OUT_PENDING_MAX = 64 << 10,
	TCP_OUT_CAP = TCP_OUT_PENDING_MAX + TCP_FRAME_MAX,
	/* Accepts per wakeup, so a connection storm does not starve
	 * established connections. */
	ACCEPT_BATCH = 64,
	/* When every slot is taken, this many of the least recently active
	 * connections are looked at for one to close for the newcomer. */
	RECLAIM_SCAN = 16,
	/* After EMFILE/ENFILE/ENOBUFS/ENOMEM on accept, listening sockets are
	 * taken out of the epoll set this long: a level-triggered listener
	 * with a pending connection we cannot accept would spin otherwise. */
	ACCEPT_PAUSE_MS = 100,
	EPOLL_BATCH = 64,
	/* Per-thread rate limit of per-packet warnings. */
	WARN_EVERY_MS = 10000,
	/* Retries of an ephemeral port pick when the port is free for UDP but
	 * not for TCP. */
	PORT_PICK_TRIES = 16,
};

/* Ancillary data for IP_PKTINFO / IPV6_PKTINFO, aligned for cmsghdr. */
union pktinfo_cmsg {
	struct cmsghdr hdr;
	uint8_t buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
};
_Static_assert(sizeof(union pktinfo_cmsg) <= sizeof(((struct server_route *)0)->cmsg),
               "server_route.cmsg too small for IPV6_PKTINFO");

/* epoll key of the TCP thread's reply eventfd (listeners and slots are
 * far below). */
#define TCP_KEY_REPLY UINT32_MAX

/* An answer for a TCP connection, queued by server_reply. */
struct tcp_reply {
	struct tcp_reply *next;
	uint32_t slot, gen;
	size_t len;
	uint8_t msg[];
};

struct udp_worker {
	struct server *srv;
	pthread_t thread;
	bool created;
	int fd;
	bool pktinfo;                 /* wildcard address: answer from the request's */
	bool busy;                    /* the last batch was full: more is probably queued */
	unsigned filled;              /* in[] entries the kernel wrote in the last batch */
	unsigned idx;
	uint64_t last_warn_ms;
	/* Allocated by the thread at its start, freed at its exit. */
	uint8_t *req;                 /* UDP_BATCH * UDP_REQ_MAX */
	uint8_t *resp;                /* UDP_BATCH * MSG_MAX */
	struct mmsghdr in[UDP_BATCH], out[UDP_BATCH];
	struct iovec iov_in[UDP_BATCH], iov_out[UDP_BATCH];
	struct sockaddr_storage peer[UDP_BATCH];
	union pktinfo_cmsg cin[UDP_BATCH], cout[UDP_BATCH];
};

/* A TCP connection slot. Open slots are on the thread's deadline list,
 * free ones on its free list (via next). */
struct tcp_conn {
	int fd;                       /* -1 when free */
	uint32_t events;              /* current epoll interest */
	bool eof;                     /* the client shut down its side */
	bool stalled;                 /* a complete query waits for output room */
	uint32_t gen;                 /* counts the connections this slot served */
	uint32_t inflight;            /* queries answered later (SERVER_DEFERRED) */
	uint64_t deadline_ms;
	struct tcp_conn *prev, *next;
	uint8_t *in;                  /* TCP_IN_CAP: [inoff, inlen) unconsumed */
	size_t inoff, inlen;
	uint8_t *out;                 /* TCP_OUT_CAP: [outoff, outlen) unsent */
	size_t outoff, outlen;
	uint8_t *stream;              /* server_stream: [streamoff, streamlen) not yet in out */
	size_t streamoff, streamlen;
	struct sockaddr_storage peer;
	uint64_t ckey;                /* server_client_key(&peer), for max-per-client */
	socklen_t peerlen;
};

struct client_count {
	uint64_t key;                 /* server_client_key(); 0: empty slot */
	uint32_t n;
};

struct tcp_thread {
	pthread_t thread;
	unsigned active_streams;      /* transfers being streamed (server_stream) */
	bool created;
	unsigned idx;
	int epfd;
	struct tcp_conn *conns;       /* max_clients slots */
	uint8_t *bufs;                /* their buffers, one mapping */
	size_t bufs_len;
	struct tcp_conn *free_list;
	/* Open connections by deadline, earliest first. Every deadline is
	 * "last progress + the one timeout", so moving a connection to the
	 * tail on progress keeps the list sorted: expiry is O(1). */
	struct tcp_conn *head, *tail;
	uint64_t accept_resume_ms;    /* 0: listeners are in the epoll set */
	uint64_t last_warn_ms;
	/* Answers from other threads (server_reply): a list under rmu and an
	 * eventfd in the epoll set that wakes the thread. */
	pthread_mutex_t rmu;
	struct tcp_reply *rhead, *rtail;
	int rfd;
	/* Open connections per client (max-per-client): open addressing
	 * over 2 x max_clients slots, key 0 = empty, deleted by backward
	 * shift. Every connection is counted, so the cap can be switched on
	 * by a reload. Only the TCP thread touches it. */
	struct client_count *cc;
	size_t cc_mask;
	unsigned max_per_client;      /* 0: no per-client cap */
	uint64_t reclaimed;           /* connections closed for a newcomer */
};

struct listen_sock {
	struct sockaddr_storage ss;   /* with the bound port */
	socklen_t len;
	char name[INET6_ADDRSTRLEN + 8]; /* "[::1]:53", for messages */
	int tcp_fd;
};

enum phase { PHASE_STARTING = 0, PHASE_RUNNING, PHASE_ABORT };

struct server {
	struct server_ops ops;
	unsigned max_clients;
	unsigned idle_ms;             /* TCP thread's; set_* below are the wanted ones */
	/* server_set_tcp_limits: read and applied by the TCP thread. */
	atomic_uint set_idle_ms, set_per_client;
	size_t nlisten;
	struct listen_sock *listen;
	size_t nudp;
	struct udp_worker *udp;       /* listen address major */
	struct tcp_thread tcp;
	atomic_bool stop;
	/* Startup handshake: each thread reports after thread_init and waits
	 * for server_start's verdict, so a failed start serves nothing. */
	pthread_mutex_t mu;
	pthread_cond_t cond;
	unsigned nreported;
	bool init_failed;
	unsigned failed_idx;
	enum phase phase;
};

/* True at most once per WARN_EVERY_MS for *last (one per thread). */
static bool warn_allowed(uint64_t *last)
{
	uint64_t now = clock_mono_ms();
	if (*last && now - *last < WARN_EVERY_MS)
		return false;
	*last = now;
	return true;
}

static bool stopping(const struct server *srv)
{
	return atomic_load_explicit(&srv->stop, memory_order_relaxed);
}

/* ---- addresses ----------------------------------------------------------- */

static uint16_t addr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

static void addr_set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons(port);
}

static bool addr_is_wildcard(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
	return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
}

static void addr_format(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	addr_sockaddr_text((const struct sockaddr *)ss, buf, len);
}

/* ---- binding ------------------------------------------------------------- */

/* The setsockopt calls whose failure only costs performance. */
static void sock_tune_udp(int fd, int family)
{
	int size = SOCK_BUF;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	/* Never set DF and ignore learned path MTUs (as NSD and Knot do): a
	 * forged ICMP "fragmentation needed" must not make us fragment answers
	 * for a victim; large answers go over TCP anyway. */
	if (family == AF_INET6) {
		int v = IPV6_PMTUDISC_OMIT;
		setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &v, sizeof(v));
	} else {
		int v = IP_PMTUDISC_OMIT;
		setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &v, sizeof(v));
	}
}

/* Opens and binds one socket of type to ss. Returns the descriptor, or -1
 * with err filled in and errno preserved. */
static int sock_bind(const struct sockaddr_storage *ss, socklen_t len, int type, char *err,
                     size_t errlen)
{
	char name[INET6_ADDRSTRLEN + 8];
	const char *what = "socket";
	int one = 1;
	int family = ss->ss_family;
	int fd = socket(family, type | SOCK_CLOEXEC | (type == SOCK_STREAM ? SOCK_NONBLOCK : 0), 0);
	if (fd == -1)
		goto fail;
	if (family == AF_INET6) {
		what = "setsockopt IPV6_V6ONLY";
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1)
			goto fail;
	}
	if (type == SOCK_DGRAM) {
		/* Every UDP worker has its own socket on the same address; the
		 * kernel spreads datagrams over them by flow hash. */
		what = "setsockopt SO_REUSEPORT";
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1)
			goto fail;
		/* No receive timeout: a timeout arms and cancels a kernel timer
		 * on every wakeup. server_free wakes a blocked worker at the
		 * stop by shutting its socket for reading. */
		if (addr_is_wildcard(ss)) {
			what = "setsockopt PKTINFO";
			if (family == AF_INET6) {
				if (setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one)) == -1)
					goto fail;
			} else if (setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) == -1) {
				goto fail;
			}
		}
		sock_tune_udp(fd, family);
	} else {
		/* A restart must not wait for the old connections' TIME_WAIT. */
		what = "setsockopt SO_REUSEADDR";
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
			goto fail;
	}
	what = "bind";
	if (bind(fd, (const struct sockaddr *)ss, len) == -1)
		goto fail;
	if (type == SOCK_STREAM) {
		what = "listen";
		if (listen(fd, TCP_BACKLOG) == -1)
			goto fail;
	}
	return fd;
fail:;
	int e = errno;
	addr_format(ss, name, sizeof(name));
	snprintf(err, errlen, "%s %s: %s", what, name, strerror(e));
	if (fd != -1)
		close(fd);
	errno = e;
	return -1;
}

/* Binds the UDP sockets of listen address li (one per worker) and its TCP
 * listener, all on one port. For port 0 the first UDP bind picks it, and a
 * pick that TCP cannot have is retried. On failure closes what it opened. */
static int listen_bind(struct server *srv, size_t li, const struct cfg_listen *cl, char *err,
                       size_t errlen)
{
	struct listen_sock *ls = &srv->listen[li];
	struct udp_worker *w = &srv->udp[li * (srv->nudp / srv->nlisten)];
	size_t nw = srv->nudp / srv->nlisten;
	bool pick = addr_port(&cl->ss) == 0;
	for (int attempt = 0;; attempt++) {
		size_t nbound = 0;
		memcpy(&ls->ss, &cl->ss, sizeof(ls->ss));
		ls->len = cl->len;
		for (; nbound < nw; nbound++) {
			w[nbound].fd = sock_bind(&ls->ss, ls->len, SOCK_DGRAM, err, errlen);
			if (w[nbound].fd == -1)
				goto fail;
			w[nbound].pktinfo = addr_is_wildcard(&ls->ss);
			if (nbound == 0 && pick) {
				struct sockaddr_storage got;
				socklen_t gotlen = sizeof(got);
				if (getsockname(w[0].fd, (struct sockaddr *)&got, &gotlen) == -1) {
					int e = errno;
					addr_format(&ls->ss, ls->name, sizeof(ls->name));
					snprintf(err, errlen, "getsockname %s: %s", ls->name, strerror(e));
					close(w[0].fd);
					w[0].fd = -1;
					return -1;
				}
				addr_set_port(&ls->ss, addr_port(&got));
			}
		}
		ls->tcp_fd = sock_bind(&ls->ss, ls->len, SOCK_STREAM, err, errlen);
		if (ls->tcp_fd != -1) {
			addr_format(&ls->ss, ls->name, sizeof(ls->name));
			return 0;
		}
fail:;
		int e = errno;
		for (size_t i = 0; i < nbound; i++) {
			close(w[i].fd);
			w[i].fd = -1;
		}
		if (!pick || e != EADDRINUSE || attempt + 1 >= PORT_PICK_TRIES)
			return -1;
	}
}

/* ---- startup handshake ------------------------------------------------- */

/* Called by each new thread once its thread_init has run: reports ok and
 * waits (offline) for server_start's verdict. True: run; false: exit. */
static bool thread_ready(struct server *srv, bool ok, unsigned idx)
{
	rcu_thread_offline();
	pthread_mutex_lock(&srv->mu);
	srv->nreported++;
	if (!ok && !srv->init_failed) {
		srv->init_failed = true;
		srv->failed_idx = idx;
	}
	pthread_cond_broadcast(&srv->cond);
	while (srv->phase == PHASE_STARTING)
		pthread_cond_wait(&srv->cond, &srv->mu);
	bool run = srv->phase == PHASE_RUNNING;
	pthread_mutex_unlock(&srv->mu);
	rcu_thread_online();
	return run;
}

/* ---- UDP ----------------------------------------------------------------- */

/* Builds the ancillary data that makes the answer leave from the address
 * the request came to (multi-homed hosts on a wildcard socket). Returns its
 * length, 0 if the request carried none. */
static size_t udp_reply_cmsg(struct msghdr *req, union pktinfo_cmsg *out)
{
	memset(out, 0, sizeof(*out));
	for (struct cmsghdr *c = CMSG_FIRSTHDR(req); c; c = CMSG_NXTHDR(req, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo got, pi;
			memcpy(&got, CMSG_DATA(c), sizeof(got));
			/* The source is ipi_spec_dst; ifindex 0 lets routing pick
			 * the interface as for any other packet. */
			memset(&pi, 0, sizeof(pi));
			pi.ipi_spec_dst = got.ipi_addr;
			out->hdr.cmsg_level = IPPROTO_IP;
			out->hdr.cmsg_type = IP_PKTINFO;
			out->hdr.cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(&out->hdr), &pi, sizeof(pi));
			return CMSG_SPACE(sizeof(pi));
		}
		if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
			/* Kept whole: a link-local source needs its interface. */
			struct in6_pktinfo pi;
			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			out->hdr.cmsg_level = IPPROTO_IPV6;
			out->hdr.cmsg_type = IPV6_PKTINFO;
			out->hdr.cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(&out->hdr), &pi, sizeof(pi));
			return CMSG_SPACE(sizeof(pi));
		}
	}
	return 0;
}

/* recvmmsg and sendmmsg as plain system calls: libc's wrappers are
 * cancellation points that switch asynchronous cancellation on and off
 * around every call (two calls more per batch, a tenth of the thread's
 * user time at one datagram a batch), and dnsd never cancels a thread. */
#if defined(__x86_64__)
/* On x86-64 the instruction itself (libc's syscall() is a call that
 * moves every argument one register over). */
static inline long raw_syscall5(long nr, long a1, long a2, long a3, long a4, long a5)
{
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;
	long ret;
	__asm__ volatile("syscall"
	                 : "=a"(ret)
	                 : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8)
	                 : "rcx", "r11", "memory");
	if (ret < 0 && ret > -4096) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
}
#else
static inline long raw_syscall5(long nr, long a1, long a2, long a3, long a4, long a5)
{
	return syscall(nr, a1, a2, a3, a4, a5);
}
#endif

static int udp_recvmmsg(int fd, struct mmsghdr *m, unsigned n, int flags)
{
	return (int)raw_syscall5(SYS_recvmmsg, fd, (long)m, (long)n, flags, 0);
}

static int udp_sendmmsg(int fd, struct mmsghdr *m, unsigned n, int flags)
{
	return (int)raw_syscall5(SYS_sendmmsg, fd, (long)m, (long)n, flags, 0);
}

/* Waits (offline) until fd can take more datagrams. False on timeout or
 * stop: the caller drops what it has rather than stall. */
static bool udp_wait_writable(struct udp_worker *w)
{
	struct pollfd p = { .fd = w->fd, .events = POLLOUT };
	rcu_thread_offline();
	int n = poll(&p, 1, WAIT_MS);
	rcu_thread_online();
	return n > 0 && !stopping(w->srv);
}

static void udp_send(struct udp_worker *w, unsigned nout)
{
	unsigned off = 0;
	while (off < nout) {
		int n = udp_sendmmsg(w->fd, w->out + off, nout - off, MSG_DONTWAIT);
		if (n != -1) {
			off += (unsigned)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (udp_wait_writable(w))
				continue;
			return;
		}
		/* Only this message failed (unreachable client, its source
		 * address was removed, ENOBUFS): drop it, send the rest. */
		if (warn_allowed(&w->last_warn_ms)) {
			char name[INET6_ADDRSTRLEN + 8];
			addr_format(w->out[off].msg_hdr.msg_name, name, sizeof(name));
			log_warn("UDP send to %s: %s (further send errors of this worker are not "
			         "logged for %d s)", name, strerror(errno), WARN_EVERY_MS / 1000);
		}
		off++;
	}
}

/* Receives one batch (blocking, offline, when there is nothing yet, until
 * a datagram comes or the socket is shut), answers it and sends the answers. */
static void udp_batch(struct udp_worker *w, void *ctx)
{
	const struct server_ops *ops = &w->srv->ops;
	/* Only the entries the last batch filled have fields to reset: a
	 * batch is one or two datagrams but for under heavy load. */
	for (unsigned i = 0; i < w->filled; i++) {
		struct msghdr *h = &w->in[i].msg_hdr;
		h->msg_namelen = sizeof(w->peer[i]);
		h->msg_control = w->pktinfo ? &w->cin[i] : NULL;
		h->msg_controllen = w->pktinfo ? sizeof(w->cin[i]) : 0;
		h->msg_flags = 0;
	}
	/* After a full batch more is likely queued: a non-blocking attempt
	 * then nearly always succeeds and saves going offline and online.
	 * After a partial batch the queue was drained, and trying first
	 * would cost a syscall that returns EAGAIN on every wakeup: block. */
	int n = -1;
	if (w->busy)
		n = udp_recvmmsg(w->fd, w->in, UDP_BATCH, MSG_DONTWAIT);
	if (!w->busy || (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))) {
		rcu_thread_offline();
		n = udp_recvmmsg(w->fd, w->in, UDP_BATCH, MSG_WAITFORONE);
		rcu_thread_online();
	}
	w->busy = n == UDP_BATCH;
	w->filled = n > 0 ? (unsigned)n : 0;
	/* Woken by the stop's shutdown: what came back is not datagrams. */
	if (stopping(w->srv))
		return;
	if (n == -1) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
		    warn_allowed(&w->last_warn_ms))
			log_warn("UDP recvmmsg: %s", strerror(errno));
		return;
	}
	unsigned nout = 0;
	/* One clock read for the batch: a request's time in dnsd counts from
	 * here, its wait behind the others included. */
	uint64_t recv_ns = clock_mono_ns();
	struct server_peer peer = {
		.tcp = false,
		.srv = w->srv,
		.fd = w->fd,
		.recv_ns = recv_ns,
	};
	unsigned timed = 0;
	for (int i = 0; i < n; i++) {
		struct msghdr *h = &w->in[i].msg_hdr;
		if (h->msg_flags & MSG_TRUNC)
			continue;
		peer.addr = (const struct sockaddr *)&w->peer[i];
		peer.addrlen = h->msg_namelen;
		peer.msg = w->pktinfo ? h : NULL;
		uint8_t *resp = w->resp + (size_t)i * MSG_MAX;
		int r = ops->handle(ctx, w->req + (size_t)i * UDP_REQ_MAX, w->in[i].msg_len, resp,
		                    MSG_MAX, &peer);
		timed += r != SERVER_DEFERRED;
		if (r <= 0 || r > MSG_MAX)
			continue;
		/* msg_iov, msg_iovlen and msg_flags are set once (udp_main); the
		 * control data only with IP_PKTINFO. */
		struct msghdr *o = &w->out[nout].msg_hdr;
		w->iov_out[nout].iov_base = resp;
		w->iov_out[nout].iov_len = (size_t)r;
		o->msg_name = &w->peer[i];
		o->msg_namelen = h->msg_namelen;
		if (w->pktinfo) {
			size_t cl = udp_reply_cmsg(h, &w->cout[nout]);
			o->msg_control = cl ? &w->cout[nout] : NULL;
			o->msg_controllen = cl;
		}
		nout++;
	}
	if (timed && ops->batch_done)
		ops->batch_done(ctx, timed, clock_mono_ns() - recv_ns);
	udp_send(w, nout);
}

static void *udp_main(void *arg)
{
	struct udp_worker *w = arg;
	struct server *srv = w->srv;
	rcu_register_thread();
	void *ctx = srv->ops.thread_init(srv->ops.arg, w->idx);
	bool ok = ctx != NULL;
	if (ok) {
		w->req = malloc((size_t)UDP_BATCH * UDP_REQ_MAX);
		w->resp = malloc((size_t)UDP_BATCH * MSG_MAX);
		if (!w->req || !w->resp) {
			log_err("UDP worker %u: out of memory", w->idx);
			ok = false;
		}
	}
	if (thread_ready(srv, ok, w->idx)) {
		for (unsigned i = 0; i < UDP_BATCH; i++) {
			w->iov_in[i].iov_base = w->req + (size_t)i * UDP_REQ_MAX;
			w->iov_in[i].iov_len = UDP_REQ_MAX;
			w->in[i].msg_hdr.msg_name = &w->peer[i];
			w->in[i].msg_hdr.msg_iov = &w->iov_in[i];
			w->in[i].msg_hdr.msg_iovlen = 1;
			w->out[i].msg_hdr = (struct msghdr){ .msg_iov = &w->iov_out[i],
			                                     .msg_iovlen = 1 };
		}
		w->filled = UDP_BATCH;
		while (!stopping(srv)) {
			udp_batch(w, ctx);
			/* After a partial batch the next receive blocks offline,
			 * itself a quiescent state: saying so now as well would
			 * cost two more full fences per wakeup. */
			if (w->busy)
				rcu_quiescent_state();
		}
	}
	if (ctx)
		srv->ops.thread_fini(ctx);
	free(w->req);
	w->req = NULL;
	free(w->resp);
	w->resp = NULL;
	rcu_unregister_thread();
	return NULL;
}

/* ---- TCP ----------------------------------------------------------------- */

/* epoll data: fd << 32 | key, key < nlisten for listeners, nlisten + slot
 * for connections. The fd lets a stale event for a reused slot be told
 * apart. */
static uint64_t ev_data(int fd, size_t key)
{
	return (uint64_t)(uint32_t)fd << 32 | (uint32_t)key;
}

static void conn_unlink(struct tcp_thread *t, struct tcp_conn *c)
{
	DLIST_UNLINK(t->head, t->tail, c, prev, next);
}

static void conn_append(struct tcp_thread *t, struct tcp_conn *c)
{
	DLIST_APPEND(t->head, t->tail, c, prev, next);
}

/* Progress (a complete query, or answer bytes taken by the client): the
 * connection gets another full timeout. Bytes of an incomplete query are
 * not progress, so a query trickled in too slowly is cut off (slowloris). */
static void conn_touch(struct server *srv, struct tcp_conn *c, uint64_t now)
{
	c->deadline_ms = now + srv->idle_ms;
	if (srv->tcp.tail != c) {
		conn_unlink(&srv->tcp, c);
		conn_append(&srv->tcp, c);
	}
}

static void cc_release(struct tcp_thread *t, uint64_t key);

bool server_streams_full(const struct server_peer *peer)
{
	return peer->srv && peer->srv->tcp.active_streams >= SERVER_STREAMS_MAX;
}

static void conn_close(struct tcp_thread *t, struct tcp_conn *c)
{
	cc_release(t, c->ckey);
	/* close() also removes it from the epoll set: it is never dup'ed. */
	close(c->fd);
	c->fd = -1;
	if (c->stream)
		t->active_streams--;
	free(c->stream);
	c->stream = NULL;
	conn_unlink(t, c);
	c->next = t->free_list;
	t->free_list = c;
}

static void listeners_arm(struct server *srv, uint32_t events)
{
	for (size_t i = 0; i < srv->nlisten; i++) {
		struct epoll_event ev = {
			.events = events,
			.data.u64 = ev_data(srv->listen[i].tcp_fd, i),
		};
		if (epoll_ctl(srv->tcp.epfd, EPOLL_CTL_MOD, srv->listen[i].tcp_fd, &ev) == -1)
			log_err("epoll_ctl %s: %s", srv->listen[i].name, strerror(errno));
	}
}

/* Connection cap: when all tcp_max_clients slots are in use, a new
 * connection takes the place of the least recently active one that owes
 * no answer (conn_reclaim), as Knot and Unbound reclaim idle connections
 * under pressure: clients that keep many connections open with a query
 * now and then cannot lock everyone else out. If none of the oldest
 * RECLAIM_SCAN qualifies, the new connection is accepted and closed at
 * once, so the client learns right away instead of waiting in the
 * backlog. */
uint64_t server_client_key(const struct sockaddr *sa)
{
	const uint8_t *a;
	size_t n;
	if (sa->sa_family == AF_INET6) {
		a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
		n = 8;
		/* IPv4-mapped (::ffff:a.b.c.d, a dual-stack socket): by the IPv4
		 * address, or every IPv4 client would share one /64. */
		if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)(const void *)a)) {
			a += 12;
			n = 4;
		}
	} else {
		a = (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
		n = 4;
	}
	return fnv_bytes(FNV_SEED ^ n, a, n) | 1;
}

/* The slot of key, or the empty slot where it would go. */
static size_t cc_find(const struct tcp_thread *t, uint64_t key)
{
	size_t i = (size_t)(key >> 7) & t->cc_mask;
	while (t->cc[i].key && t->cc[i].key != key)
		i = (i + 1) & t->cc_mask;
	return i;
}

/* Counts a new connection of key; false (nothing counted) if the client
 * already has max_per_client open. */
static bool cc_take(struct tcp_thread *t, uint64_t key)
{
	size_t i = cc_find(t, key);
	if (t->max_per_client && t->cc[i].key && t->cc[i].n >= t->max_per_client)
		return false;
	t->cc[i].key = key;
	t->cc[i].n++;
	return true;
}

static void cc_release(struct tcp_thread *t, uint64_t key)
{
	size_t i = cc_find(t, key);
	if (!t->cc[i].key || --t->cc[i].n > 0)
		return;
	/* Backward-shift deletion keeps every probe chain unbroken. */
	size_t j = i;
	for (;;) {
		t->cc[i].key = 0;
		t->cc[i].n = 0;
		for (;;) {
			j = (j + 1) & t->cc_mask;
			if (!t->cc[j].key)
				return;
			size_t home = (size_t)(t->cc[j].key >> 7) & t->cc_mask;
			/* Move j back to i unless its home lies cyclically in (i, j]. */
			if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
				continue;
			break;
		}
		t->cc[i] = t->cc[j];
		i = j;
	}
}

static void conn_event(struct server *srv, struct tcp_conn *c, uint32_t events, void *ctx,
                       uint64_t now);

/* True if the client of c has closed or reset its side though the event
 * saying so may not have been handled yet (it can come later in the same
 * epoll batch as, or a batch after, the client's new connection). */
static bool conn_peer_gone(const struct tcp_conn *c)
{
	uint8_t b;
	ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	return n == 0 || (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* Runs the pending close of every connection of client key whose peer is
 * gone (answering what it sent before, as the event would have). Called
 * when that client is at max-per-client: a client that closes its
 * connections and at once opens a new one is not refused because the
 * closes are still queued. A walk over the open connections and one recv
 * per connection of that client (at most max-per-client). */
static void conn_reap_client(struct server *srv, uint64_t key, void *ctx, uint64_t now)
{
	struct tcp_conn *next;
	for (struct tcp_conn *c = srv->tcp.head; c; c = next) {
		next = c->next;
		if (c->ckey == key && conn_peer_gone(c)) {
			/* conn_event may close c, never another connection. */
			conn_event(srv, c, EPOLLIN, ctx, now);
		}
	}
}

/* Frees a slot when all are in use: closes the least recently active of
 * the oldest RECLAIM_SCAN connections that owes nothing (no answer being
 * made elsewhere, no transfer streaming). A peer that is already gone is
 * preferred. False if none qualifies. */
static bool conn_reclaim(struct server *srv)
{
	struct tcp_thread *t = &srv->tcp;
	struct tcp_conn *pick = NULL;
	unsigned n = 0;
	for (struct tcp_conn *c = t->head; c && n < RECLAIM_SCAN; c = c->next, n++) {
		if (c->inflight || c->stream)
			continue;
		if (!pick)
			pick = c;
		if (conn_peer_gone(c)) {
			pick = c;
			break;
		}
	}
	if (!pick)
		return false;
	conn_close(t, pick);
	__atomic_store_n(&t->reclaimed, t->reclaimed + 1, __ATOMIC_RELAXED);
	return true;
}

static void tcp_accept(struct server *srv, size_t li, void *ctx, uint64_t now)
{
	struct tcp_thread *t = &srv->tcp;
	struct listen_sock *ls = &srv->listen[li];
	uint64_t reaped = 0;
	for (int k = 0; k < ACCEPT_BATCH; k++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(ls->tcp_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			switch (errno) {
			case EAGAIN:
#if EWOULDBLOCK != EAGAIN
			case EWOULDBLOCK:
#endif
				return;
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				if (warn_allowed(&t->last_warn_ms))
					log_warn("TCP accept on %s: %s; not accepting for %d ms", ls->name,
					         strerror(errno), ACCEPT_PAUSE_MS);
				listeners_arm(srv, 0);
				t->accept_resume_ms = now + ACCEPT_PAUSE_MS;
				return;
			default:
				/* The connection failed before we got it (ECONNABORTED,
				 * EPROTO, network errors): try the next one. */
				continue;
			}
		}
		uint64_t ckey = server_client_key((const struct sockaddr *)&ss);
		if (!cc_take(t, ckey)) {
			/* Once per client and wakeup: the walk is over every open
			 * connection, and a client at its cap may connect in a loop. */
			if (ckey != reaped)
				conn_reap_client(srv, ckey, ctx, now);
			reaped = ckey;
			if (!cc_take(t, ckey)) {
				close(fd);
				if (warn_allowed(&t->last_warn_ms))
					log_warn("TCP: a client has %u connections open (max-per-client), "
					         "closing its new ones", t->max_per_client);
				continue;
			}
		}
		if (!t->free_list) {
			bool freed = conn_reclaim(srv);
			if (warn_allowed(&t->last_warn_ms))
				log_warn("TCP: %u connections open (max-clients): %s", srv->max_clients,
				         freed ? "closing the least recently active idle ones for new ones"
				               : "none idle to close, closing new ones");
			if (!freed) {
				cc_release(t, ckey);
				close(fd);
				continue;
			}
		}
		struct tcp_conn *c = t->free_list;
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct epoll_event ev = {
			.events = EPOLLIN,
			.data.u64 = ev_data(fd, srv->nlisten + (size_t)(c - t->conns)),
		};
		if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
			if (warn_allowed(&t->last_warn_ms))
				log_warn("TCP epoll_ctl: %s", strerror(errno));
			cc_release(t, ckey);
			close(fd);
			continue;
		}
		t->free_list = c->next;
		c->fd = fd;
		c->events = EPOLLIN;
		c->eof = c->stalled = false;
		c->gen++;
		c->inflight = 0;
		c->inoff = c->inlen = c->outoff = c->outlen = 0;
		memcpy(&c->peer, &ss, sizeof(ss));
		c->peerlen = sl;
		c->ckey = ckey;
		c->deadline_ms = now + srv->idle_ms;
		conn_append(t, c);
	}
}

/* Reads what fits into the input buffer. -1: the connection failed. */
static int conn_read(struct tcp_conn *c)
{
	if (c->inoff) {
		memmove(c->in, c->in + c->inoff, c->inlen - c->inoff);
		c->inlen -= c->inoff;
		c->inoff = 0;
	}
	if (c->inlen == TCP_IN_CAP)
		return 0;
	ssize_t n = recv(c->fd, c->in + c->inlen, TCP_IN_CAP - c->inlen, 0);
	if (n == -1)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
	if (n == 0)
		c->eof = true;
	c->inlen += (size_t)n;
	return 0;
}

/* Moves as much of the connection's stream into its output buffer as
 * fits (the buffer's bound holds: a stream costs no more memory per
 * connection than pending answers do). Returns the bytes still to move. */
static size_t conn_stream_fill(struct tcp_thread *t, struct tcp_conn *c)
{
	if (c->outoff) {
		memmove(c->out, c->out + c->outoff, c->outlen - c->outoff);
		c->outlen -= c->outoff;
		c->outoff = 0;
	}
	size_t n = c->streamlen - c->streamoff;
	if (n > TCP_OUT_CAP - c->outlen)
		n = TCP_OUT_CAP - c->outlen;
	memcpy(c->out + c->outlen, c->stream + c->streamoff, n);
	c->outlen += n;
	c->streamoff += n;
	if (c->streamoff < c->streamlen)
		return c->streamlen - c->streamoff;
	free(c->stream);
	c->stream = NULL;
	t->active_streams--;
	return 0;
}

/* Answers the complete queries in the input buffer, in order, appending
 * the framed answers to the output buffer while it has room for the largest
 * one (c->stalled otherwise). -1: a zero-length message, which ends the
 * connection. */
static int conn_answer(struct server *srv, struct tcp_conn *c, void *ctx, uint64_t now)
{
	c->stalled = false;
	if (c->stream && conn_stream_fill(&srv->tcp, c) > 0) {
		c->stalled = true;   /* the stream goes out before any later answer */
		return 0;
	}
	while (c->inlen - c->inoff >= 2) {
		const uint8_t *p = c->in + c->inoff;
		size_t len = (size_t)p[0] << 8 | p[1];
		if (len == 0)
			return -1;
		if (c->inlen - c->inoff < 2 + len)
			break;
		if (TCP_OUT_CAP - c->outlen < TCP_FRAME_MAX) {
			memmove(c->out, c->out + c->outoff, c->outlen - c->outoff);
			c->outlen -= c->outoff;
			c->outoff = 0;
			if (TCP_OUT_CAP - c->outlen < TCP_FRAME_MAX) {
				c->stalled = true;
				break;
			}
		}
		struct server_peer peer = {
			.addr = (const struct sockaddr *)&c->peer,
			.addrlen = c->peerlen,
			.tcp = true,
			.srv = srv,
			.fd = c->fd,
			.slot = (uint32_t)(c - srv->tcp.conns),
			.gen = c->gen,
		};
		uint8_t *frame = c->out + c->outlen;
		int r = srv->ops.handle(ctx, p + 2, len, frame + 2, MSG_MAX, &peer);
		if (r == SERVER_DEFERRED)
			c->inflight++;
		if (r == SERVER_STREAM && c->stream) {
			c->inoff += 2 + len;
			conn_touch(srv, c, now);
			if (conn_stream_fill(&srv->tcp, c) > 0) {
				c->stalled = true;
				return 0;
			}
			continue;
		}
		if (r > 0 && r <= MSG_MAX) {
			frame[0] = (uint8_t)(r >> 8);
			frame[1] = (uint8_t)r;
			c->outlen += 2 + (size_t)r;
		}
		c->inoff += 2 + len;
		conn_touch(srv, c, now);
	}
	if (c->inoff == c->inlen)
		c->inoff = c->inlen = 0;
	return 0;
}

/* Sends queued answers until the socket is full. Returns the bytes sent,
 * -1 if the connection failed. */
static ssize_t conn_flush(struct server *srv, struct tcp_conn *c, uint64_t now)
{
	ssize_t total = 0;
	while (c->outoff < c->outlen) {
		ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
		                 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return -1;
		}
		c->outoff += (size_t)n;
		total += n;
	}
	if (c->outoff == c->outlen)
		c->outoff = c->outlen = 0;
	if (total > 0)
		conn_touch(srv, c, now);
	return total;
}

/* Answers and flushes as far as possible, then sets the epoll interest:
 * input only while no answered-but-unsendable backlog holds queries up,
 * output while answers are pending. After EOF the remaining complete
 * queries are still answered (a client may half-close), then it closes. */
static void conn_run(struct server *srv, struct tcp_conn *c, void *ctx, uint64_t now)
{
	struct tcp_thread *t = &srv->tcp;
	for (;;) {
		if (conn_answer(srv, c, ctx, now) == -1)
			goto close;
		ssize_t sent = conn_flush(srv, c, now);
		if (sent == -1)
			goto close;
		if (!c->stalled || sent == 0)
			break;
	}
	bool pending = c->outoff < c->outlen;
	if (c->eof && !pending && !c->stalled && !c->inflight)
		goto close;
	uint32_t want = (!c->eof && !c->stalled ? EPOLLIN : 0) | (pending ? EPOLLOUT : 0);
	if (want != c->events) {
		struct epoll_event ev = {
			.events = want,
			.data.u64 = ev_data(c->fd, srv->nlisten + (size_t)(c - t->conns)),
		};
		if (epoll_ctl(t->epfd, EPOLL_CTL_MOD, c->fd, &ev) == -1)
			goto close;
		c->events = want;
	}
	return;
close:
	conn_close(t, c);
}

static void conn_event(struct server *srv, struct tcp_conn *c, uint32_t events, void *ctx,
                       uint64_t now)
{
	/* HUP: both directions are shut, no answer can be delivered. */
	if (events & (EPOLLERR | EPOLLHUP)) {
		conn_close(&srv->tcp, c);
		return;
	}
	if ((events & EPOLLIN) && conn_read(c) == -1) {
		conn_close(&srv->tcp, c);
		return;
	}
	conn_run(srv, c, ctx, now);
}

/* Appends the answers other threads queued to their connections' output,
 * if each is still the connection the query came on and has room (else
 * the answer is dropped and the client retries), and sends them. */
static void tcp_replies(struct server *srv, void *ctx, uint64_t now)
{
	struct tcp_thread *t = &srv->tcp;
	uint64_t n;
	if (read(t->rfd, &n, sizeof(n)) == -1 && errno != EAGAIN)
		log_warn("TCP reply eventfd: %s", strerror(errno));
	pthread_mutex_lock(&t->rmu);
	struct tcp_reply *r = t->rhead;
	t->rhead = t->rtail = NULL;
	pthread_mutex_unlock(&t->rmu);
	while (r) {
		struct tcp_reply *next = r->next;
		struct tcp_conn *c = r->slot < srv->max_clients ? &t->conns[r->slot] : NULL;
		if (c && c->fd != -1 && c->gen == r->gen) {
			if (c->inflight)
				c->inflight--;
			if (TCP_OUT_CAP - c->outlen < 2 + r->len && c->outoff) {
				memmove(c->out, c->out + c->outoff, c->outlen - c->outoff);
				c->outlen -= c->outoff;
				c->outoff = 0;
			}
			if (TCP_OUT_CAP - c->outlen >= 2 + r->len) {
				c->out[c->outlen] = (uint8_t)(r->len >> 8);
				c->out[c->outlen + 1] = (uint8_t)r->len;
				memcpy(c->out + c->outlen + 2, r->msg, r->len);
				c->outlen += 2 + r->len;
				conn_touch(srv, c, now);
			}
			conn_run(srv, c, ctx, now);
		}
		free(r);
		r = next;
	}
}

/* Applies what server_set_tcp_limits asked for. A new idle timeout moves
 * every deadline by the same amount, which keeps the list sorted; one now
 * in the past closes that connection in this round. */
static void tcp_apply_limits(struct server *srv, uint64_t now)
{
	struct tcp_thread *t = &srv->tcp;
	t->max_per_client = atomic_load_explicit(&srv->set_per_client, memory_order_relaxed);
	unsigned idle = atomic_load_explicit(&srv->set_idle_ms, memory_order_relaxed);
	if (idle == srv->idle_ms)
		return;
	for (struct tcp_conn *c = t->head; c; c = c->next) {
		uint64_t last = c->deadline_ms - srv->idle_ms;
		c->deadline_ms = last + idle > now ? last + idle : now;
	}
	srv->idle_ms = idle;
}

/* Milliseconds epoll_wait may sleep: until the next connection deadline or
 * accept resumption, at most WAIT_MS. */
static int tcp_wait_ms(const struct tcp_thread *t, uint64_t now)
{
	uint64_t until = now + WAIT_MS;
	if (t->head && t->head->deadline_ms < until)
		until = t->head->deadline_ms;
	if (t->accept_resume_ms && t->accept_resume_ms < until)
		until = t->accept_resume_ms;
	return until > now ? (int)(until - now) : 0;
}

static void tcp_loop(struct server *srv, void *ctx)
{
	struct tcp_thread *t = &srv->tcp;
	struct epoll_event ev[EPOLL_BATCH];
	while (!stopping(srv)) {
		/* As for UDP: poll first, go offline only to sleep. */
		int n = epoll_wait(t->epfd, ev, EPOLL_BATCH, 0);
		if (n == 0) {
			int ms = tcp_wait_ms(t, clock_mono_ms());
			rcu_thread_offline();
			n = epoll_wait(t->epfd, ev, EPOLL_BATCH, ms);
			rcu_thread_online();
		}
		if (n == -1) {
			if (errno == EINTR)
				continue;
			/* Only a bug gets here (EBADF, EINVAL): do not spin. */
			log_err("TCP epoll_wait: %s; TCP service stopped", strerror(errno));
			return;
		}
		uint64_t now = clock_mono_ms();
		tcp_apply_limits(srv, now);
		/* Listeners last: the closes in this batch free their slots and
		 * per-client counts before new connections are counted, and no
		 * slot is reused while an event for its old fd is pending. */
		size_t accepts[EPOLL_BATCH];
		size_t naccepts = 0;
		for (int i = 0; i < n; i++) {
			int fd = (int)(uint32_t)(ev[i].data.u64 >> 32);
			size_t key = (uint32_t)ev[i].data.u64;
			if (key == TCP_KEY_REPLY) {
				tcp_replies(srv, ctx, now);
				continue;
			}
			if (key < srv->nlisten) {
				accepts[naccepts++] = key;
				continue;
			}
			struct tcp_conn *c = &t->conns[key - srv->nlisten];
			if (c->fd == fd)
				conn_event(srv, c, ev[i].events, ctx, now);
		}
		for (size_t i = 0; i < naccepts; i++)
			tcp_accept(srv, accepts[i], ctx, now);
		while (t->head && t->head->deadline_ms <= now)
			conn_close(t, t->head);
		if (t->accept_resume_ms && t->accept_resume_ms <= now) {
			t->accept_resume_ms = 0;
			listeners_arm(srv, EPOLLIN);
		}
		rcu_quiescent_state();
	}
}

static void *tcp_main(void *arg)
{
	struct server *srv = arg;
	struct tcp_thread *t = &srv->tcp;
	rcu_register_thread();
	void *ctx = srv->ops.thread_init(srv->ops.arg, t->idx);
	if (thread_ready(srv, ctx != NULL, t->idx))
		tcp_loop(srv, ctx);
	while (t->head)
		conn_close(t, t->head);
	if (ctx)
		srv->ops.thread_fini(ctx);
	rcu_unregister_thread();
	return NULL;
}

/* Allocates the connection slots and their buffers. The buffers are one
 * MAP_NORESERVE mapping: pages are only backed once a connection touches
 * them, so max-clients costs address space, not memory, until used. */
static int tcp_pool_new(struct server *srv, char *err, size_t errlen)
{
	struct tcp_thread *t = &srv->tcp;
	size_t per = (size_t)TCP_IN_CAP + TCP_OUT_CAP;
	t->conns = calloc(srv->max_clients, sizeof(*t->conns));
	size_t cc_cap = 16;
	while (cc_cap < 2 * (size_t)srv->max_clients)
		cc_cap *= 2;
	t->cc = calloc(cc_cap, sizeof(*t->cc));
	t->cc_mask = cc_cap - 1;
	if (!t->conns || !t->cc) {
		snprintf(err, errlen, "out of memory for %u TCP connections", srv->max_clients);
		return -1;
	}
	t->bufs_len = per * srv->max_clients;
	void *m = mmap(NULL, t->bufs_len, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED) {
		snprintf(err, errlen, "mmap of TCP buffers (%zu bytes): %s", t->bufs_len,
		         strerror(errno));
		t->bufs_len = 0;
		return -1;
	}
	t->bufs = m;
	for (size_t i = srv->max_clients; i-- > 0;) {
		struct tcp_conn *c = &t->conns[i];
		c->fd = -1;
		c->in = t->bufs + i * per;
		c->out = c->in + TCP_IN_CAP;
		c->next = t->free_list;
		t->free_list = c;
	}
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (t->epfd == -1) {
		snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
		return -1;
	}
	t->rfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct epoll_event rev = { .events = EPOLLIN, .data.u64 = ev_data(t->rfd, TCP_KEY_REPLY) };
	if (t->rfd == -1 || epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->rfd, &rev) == -1) {
		snprintf(err, errlen, "TCP reply eventfd: %s", strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < srv->nlisten; i++) {
		struct epoll_event ev = {
			.events = EPOLLIN,
			.data.u64 = ev_data(srv->listen[i].tcp_fd, i),
		};
		if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, srv->listen[i].tcp_fd, &ev) == -1) {
			snprintf(err, errlen, "epoll_ctl %s: %s", srv->listen[i].name, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* ---- start and stop ------------------------------------------------------ */

/* Joins the threads that were created, closes and frees everything. */
static void server_free(struct server *srv)
{
	/* The stop flag is set: a UDP worker blocked in recvmmsg wakes up
	 * once its socket is shut for reading (the kernel wakes its readers
	 * even on an unconnected socket, and receives then return at once),
	 * sees the flag and ends. Sending still works, for nothing. */
	for (size_t i = 0; i < srv->nudp; i++)
		if (srv->udp[i].fd != -1)
			shutdown(srv->udp[i].fd, SHUT_RD);
	for (size_t i = 0; i < srv->nudp; i++)
		if (srv->udp[i].created)
			pthread_join(srv->udp[i].thread, NULL);
	if (srv->tcp.created)
		pthread_join(srv->tcp.thread, NULL);
	for (size_t i = 0; i < srv->nudp; i++)
		if (srv->udp[i].fd != -1)
			close(srv->udp[i].fd);
	for (size_t i = 0; i < srv->nlisten; i++)
		if (srv->listen[i].tcp_fd != -1)
			close(srv->listen[i].tcp_fd);
	if (srv->tcp.epfd != -1)
		close(srv->tcp.epfd);
	if (srv->tcp.rfd != -1)
		close(srv->tcp.rfd);
	for (struct tcp_reply *r = srv->tcp.rhead, *next; r; r = next) {
		next = r->next;
		free(r);
	}
	pthread_mutex_destroy(&srv->tcp.rmu);
	if (srv->tcp.bufs)
		munmap(srv->tcp.bufs, srv->tcp.bufs_len);
	free(srv->tcp.conns);
	free(srv->tcp.cc);
	free(srv->udp);
	free(srv->listen);
	pthread_cond_destroy(&srv->cond);
	pthread_mutex_destroy(&srv->mu);
	free(srv);
}

/* Creates every thread with all signals blocked (the main thread takes
 * them), then waits for each to run thread_init. */
static int threads_start(struct server *srv, char *err, size_t errlen)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = 0;
	unsigned ncreated = 0;
	for (size_t i = 0; i < srv->nudp && rc == 0; i++) {
		rc = pthread_create(&srv->udp[i].thread, NULL, udp_main, &srv->udp[i]);
		srv->udp[i].created = rc == 0;
		ncreated += rc == 0;
		if (rc == 0) {
			/* Named for top -H and per-thread CPU accounting. */
			char name[16];
			snprintf(name, sizeof(name), "udp-%u", (unsigned)(i % 1000));
			pthread_setname_np(srv->udp[i].thread, name);
		}
	}
	if (rc == 0) {
		rc = pthread_create(&srv->tcp.thread, NULL, tcp_main, srv);
		srv->tcp.created = rc == 0;
		ncreated += rc == 0;
		if (rc == 0)
			pthread_setname_np(srv->tcp.thread, "tcp");
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		snprintf(err, errlen, "pthread_create: %s", strerror(rc));

	pthread_mutex_lock(&srv->mu);
	while (srv->nreported < ncreated)
		pthread_cond_wait(&srv->cond, &srv->mu);
	if (rc == 0 && srv->init_failed) {
		snprintf(err, errlen, "server thread %u: initialization failed", srv->failed_idx);
		rc = -1;
	}
	srv->phase = rc == 0 ? PHASE_RUNNING : PHASE_ABORT;
	pthread_cond_broadcast(&srv->cond);
	pthread_mutex_unlock(&srv->mu);
	return rc == 0 ? 0 : -1;
}

int server_start(struct server **out, const struct server_settings *set,
                 const struct server_ops *ops, char *err, size_t errlen)
{
	if (set->nlisten == 0 || set->udp_workers == 0 || set->tcp_max_clients == 0 ||
	    set->tcp_idle_timeout_ms == 0) {
		snprintf(err, errlen, "server: need listen addresses, udp_workers, tcp_max_clients "
		         "and tcp_idle_timeout_ms > 0");
		return -1;
	}
	struct server *srv = calloc(1, sizeof(*srv));
	if (!srv) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	srv->ops = *ops;
	srv->max_clients = set->tcp_max_clients;
	srv->tcp.max_per_client = set->tcp_max_per_client;
	srv->idle_ms = set->tcp_idle_timeout_ms;
	atomic_init(&srv->set_per_client, set->tcp_max_per_client);
	atomic_init(&srv->set_idle_ms, set->tcp_idle_timeout_ms);
	srv->tcp.epfd = -1;
	srv->tcp.rfd = -1;
	pthread_mutex_init(&srv->tcp.rmu, NULL);
	atomic_init(&srv->stop, false);
	pthread_mutex_init(&srv->mu, NULL);
	pthread_cond_init(&srv->cond, NULL);
	srv->nlisten = set->nlisten;
	srv->nudp = set->nlisten * set->udp_workers;
	srv->listen = calloc(srv->nlisten, sizeof(*srv->listen));
	srv->udp = calloc(srv->nudp, sizeof(*srv->udp));
	if (!srv->listen || !srv->udp) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < srv->nlisten; i++)
		srv->listen[i].tcp_fd = -1;
	for (size_t i = 0; i < srv->nudp; i++) {
		srv->udp[i].srv = srv;
		srv->udp[i].fd = -1;
		srv->udp[i].idx = (unsigned)i;
	}
	srv->tcp.idx = (unsigned)srv->nudp;

	for (size_t i = 0; i < srv->nlisten; i++)
		if (listen_bind(srv, i, &set->listen[i], err, errlen) == -1)
			goto fail;
	if (tcp_pool_new(srv, err, errlen) == -1)
		goto fail;
	if (threads_start(srv, err, errlen) == -1)
		goto fail;
	*out = srv;
	return 0;
fail:
	atomic_store(&srv->stop, true);
	server_free(srv);
	return -1;
}

void server_stop(struct server *srv)
{
	if (!srv)
		return;
	atomic_store(&srv->stop, true);
	server_free(srv);
}

void server_route_save(const struct server_peer *peer, struct server_route *out)
{
	out->srv = peer->srv;
	out->tcp = peer->tcp;
	out->fd = peer->fd;
	out->slot = peer->slot;
	out->gen = peer->gen;
	out->peerlen = peer->addrlen <= sizeof(out->peer) ? peer->addrlen : sizeof(out->peer);
	memcpy(&out->peer, peer->addr, out->peerlen);
	out->cmsglen = 0;
	if (!peer->tcp && peer->msg) {
		union pktinfo_cmsg cm;
		out->cmsglen = udp_reply_cmsg((struct msghdr *)peer->msg, &cm);
		memcpy(out->cmsg, &cm, out->cmsglen);
	}
}

int server_reply(const struct server_route *route, const uint8_t *msg, size_t len)
{
	if (len == 0 || len > MSG_MAX)
		return -1;
	if (!route->tcp) {
		struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
		struct msghdr h = {
			.msg_name = (void *)&route->peer,
			.msg_namelen = route->peerlen,
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = route->cmsglen ? (void *)route->cmsg : NULL,
			.msg_controllen = route->cmsglen,
		};
		return sendmsg(route->fd, &h, MSG_DONTWAIT | MSG_NOSIGNAL) == -1 ? -1 : 0;
	}
	struct tcp_thread *t = &route->srv->tcp;
	struct tcp_reply *r = malloc(sizeof(*r) + len);
	if (!r)
		return -1;
	r->next = NULL;
	r->slot = route->slot;
	r->gen = route->gen;
	r->len = len;
	memcpy(r->msg, msg, len);
	pthread_mutex_lock(&t->rmu);
	if (t->rtail)
		t->rtail->next = r;
	else
		t->rhead = r;
	t->rtail = r;
	pthread_mutex_unlock(&t->rmu);
	uint64_t one = 1;
	if (write(t->rfd, &one, sizeof(one)) == -1 && errno != EAGAIN)
		return -1;
	return 0;
}

void server_stream(const struct server_peer *peer, uint8_t *buf, size_t len)
{
	if (!peer->srv || !peer->tcp) {
		free(buf);
		return;
	}
	struct tcp_conn *c = &peer->srv->tcp.conns[peer->slot];
	if (c->gen != peer->gen || c->stream) {
		free(buf);
		return;
	}
	c->stream = buf;
	c->streamoff = 0;
	c->streamlen = len;
	peer->srv->tcp.active_streams++;
}

void server_set_tcp_limits(struct server *srv, unsigned max_per_client, unsigned idle_timeout_ms)
{
	if (!srv || idle_timeout_ms == 0)
		return;
	atomic_store(&srv->set_per_client, max_per_client);
	atomic_store(&srv->set_idle_ms, idle_timeout_ms);
}

void server_reconfigure_tcp(struct server *srv, unsigned max_clients, unsigned max_per_client,
                            unsigned idle_timeout_ms)
{
	if (!srv)
		return;
	unsigned idle = atomic_load(&srv->set_idle_ms), per = atomic_load(&srv->set_per_client);
	server_set_tcp_limits(srv, max_per_client, idle_timeout_ms);
	if (idle != idle_timeout_ms || per != max_per_client)
		log_info("reload: tcp idle-timeout %u ms, max-per-client %u", idle_timeout_ms,
		         max_per_client);
	if (srv->max_clients != max_clients)
		log_warn("reload: tcp max-clients %u takes effect at the next start (%u until then)",
		         max_clients, srv->max_clients);
}

uint64_t server_tcp_reclaimed(const struct server *srv)
{
	return srv ? __atomic_load_n(&srv->tcp.reclaimed, __ATOMIC_RELAXED) : 0;
}

int server_local_port(const struct server *srv, size_t listen_idx)
{
	if (!srv || listen_idx >= srv->nlisten)
		return -1;
	return addr_port(&srv->listen[listen_idx].ss);
}

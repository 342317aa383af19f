/* test_server.c -- server.c over loopback with an echo handler: UDP batches,
 * TCP framing and pipelining, flow control, timeouts, the connection cap,
 * drops, wildcard source addresses, start failures and a prompt stop. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "server.h"
#include "tap.h"

enum { MAX_THREADS = 64, BIG = 60000, BIG_COUNT = 16 };

/* ---- the handler ---------------------------------------------------------- */

/* Echo with the first byte inverted and 'U' or 'T' appended; a message
 * starting with 'D' gets no answer. Counts calls per thread index. */

struct tctx {
	unsigned idx;
};

static atomic_uint n_init, n_fini;
static atomic_uint udp_calls[MAX_THREADS], tcp_calls[MAX_THREADS];
static atomic_uint bad_args;          /* handle called with a broken contract */
static atomic_uint batch_reqs;        /* requests counted by batch_done */
static atomic_uint batch_bad;         /* batch_done with n 0 or a time over 1 s */
static atomic_int fail_idx = -1;      /* thread_init fails for this idx */
static atomic_uint streams_refused;   /* 'S' requests that found the stream cap full */
static atomic_uint streams_started;   /* 'S' requests streamed */
enum { STREAM_BYTES = 16 << 20 };

static void *t_init(void *arg, unsigned idx)
{
	if (arg != &n_init || idx >= MAX_THREADS || (int)idx == atomic_load(&fail_idx))
		return NULL;
	struct tctx *t = malloc(sizeof(*t));
	if (!t)
		return NULL;
	t->idx = idx;
	atomic_fetch_add(&n_init, 1);
	return t;
}

static void t_fini(void *ctx)
{
	free(ctx);
	atomic_fetch_add(&n_fini, 1);
}

static int t_handle(void *ctx, const uint8_t *req, size_t len, uint8_t *resp, size_t cap,
                    const struct server_peer *peer)
{
	const struct tctx *t = ctx;
	int fam = peer->addr->sa_family;
	if (cap != 65535 || (fam != AF_INET && fam != AF_INET6) ||
	    peer->addrlen != (fam == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) ||
	    (peer->tcp ? peer->recv_ns != 0 : peer->recv_ns == 0))
		atomic_fetch_add(&bad_args, 1);
	atomic_fetch_add(peer->tcp ? &tcp_calls[t->idx] : &udp_calls[t->idx], 1);
	if (len > 0 && req[0] == 'D')
		return -1;
	if (peer->tcp && len > 0 && req[0] == 'S') {
		/* A transfer-like stream of STREAM_BYTES, unless the cap is hit. */
		if (server_streams_full(peer)) {
			atomic_fetch_add(&streams_refused, 1);
			return -1;
		}
		uint8_t *buf = calloc(1, STREAM_BYTES);
		if (!buf)
			return -1;
		for (size_t off = 0; off + 2 <= STREAM_BYTES; off += 2 + 60000) {
			buf[off] = 60000 >> 8;
			buf[off + 1] = 60000 & 0xff;
		}
		server_stream(peer, buf, STREAM_BYTES - STREAM_BYTES % 60002);
		atomic_fetch_add(&streams_started, 1);
		return SERVER_STREAM;
	}
	memcpy(resp, req, len);
	if (len > 0)
		resp[0] ^= 0xff;
	if (len == cap)
		return (int)len;
	resp[len] = peer->tcp ? 'T' : 'U';
	return (int)len + 1;
}

static void t_batch_done(void *ctx, unsigned n, uint64_t ns)
{
	(void)ctx;
	atomic_fetch_add(&batch_reqs, n);
	if (n == 0 || ns > 1000000000u)
		atomic_fetch_add(&batch_bad, 1);
}

static const struct server_ops ops = {
	.thread_init = t_init,
	.thread_fini = t_fini,
	.handle = t_handle,
	.batch_done = t_batch_done,
	.arg = &n_init,
};

/* The answer t_handle gives to msg over tcp or udp. */
static size_t expect(const uint8_t *msg, size_t len, bool tcp, uint8_t *out)
{
	memcpy(out, msg, len);
	out[0] ^= 0xff;
	out[len] = tcp ? 'T' : 'U';
	return len + 1;
}

static void reset_counts(void)
{
	for (int i = 0; i < MAX_THREADS; i++) {
		atomic_store(&udp_calls[i], 0);
		atomic_store(&tcp_calls[i], 0);
	}
}

/* ---- helpers -------------------------------------------------------------- */

static uint64_t ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static struct cfg_listen mk_listen(const char *ip, uint16_t port)
{
	struct cfg_listen l;
	memset(&l, 0, sizeof(l));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&l.ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		inet_pton(AF_INET6, ip, &s6->sin6_addr);
		l.len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&l.ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		inet_pton(AF_INET, ip, &s4->sin_addr);
		l.len = sizeof(*s4);
	}
	return l;
}

static bool ipv6_loopback_works(void)
{
	struct cfg_listen l = mk_listen("::1", 0);
	int fd = socket(AF_INET6, SOCK_DGRAM, 0);
	if (fd == -1)
		return false;
	bool okay = bind(fd, (struct sockaddr *)&l.ss, l.len) == 0;
	close(fd);
	return okay;
}

static struct server *start(const struct cfg_listen *l, size_t n, unsigned workers,
                            unsigned maxc, unsigned idle_ms, char *err, size_t errlen)
{
	struct server_settings set = {
		.listen = l,
		.nlisten = n,
		.udp_workers = workers,
		.tcp_max_clients = maxc,
		.tcp_idle_timeout_ms = idle_ms,
	};
	struct server *srv = NULL;
	if (server_start(&srv, &set, &ops, err, errlen) == -1)
		return NULL;
	return srv;
}

/* l with the server's bound port, as the address clients send to. */
static struct cfg_listen bound(const struct server *srv, size_t i, struct cfg_listen l)
{
	uint16_t port = (uint16_t)server_local_port(srv, i);
	if (l.ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&l.ss)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)&l.ss)->sin_port = htons(port);
	return l;
}

static void set_rcvtimeo(int fd, unsigned ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (long)(ms % 1000) * 1000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static int udp_client(int family)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd != -1)
		set_rcvtimeo(fd, 2000);
	return fd;
}

/* Waits up to ms for a datagram; its length, or -1. */
static ssize_t udp_recv(int fd, uint8_t *buf, size_t cap, unsigned ms,
                        struct sockaddr_storage *from)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, (int)ms) != 1)
		return -1;
	socklen_t fl = sizeof(*from);
	return recvfrom(fd, buf, cap, 0, (struct sockaddr *)from, &fl);
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
	return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
}

static int tcp_connect(const struct cfg_listen *l)
{
	int fd = socket(l->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	set_rcvtimeo(fd, 3000);
	if (connect(fd, (const struct sockaddr *)&l->ss, l->len) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool send_all(int fd, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return false;
		}
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

/* Reads exactly len bytes within ms. 1 done, 0 EOF, -1 error or timeout. */
static int read_full(int fd, uint8_t *buf, size_t len, unsigned ms)
{
	uint64_t end = ms_now() + ms;
	while (len > 0) {
		uint64_t now = ms_now();
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (now >= end || poll(&p, 1, (int)(end - now)) != 1)
			return -1;
		ssize_t n = recv(fd, buf, len, 0);
		if (n == 0)
			return 0;
		if (n == -1) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return errno == ECONNRESET ? 0 : -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 1;
}

/* Reads one framed message. Its length, -2 on EOF, -1 on error/timeout. */
static long read_frame(int fd, uint8_t *buf, size_t cap, unsigned ms)
{
	uint8_t hdr[2];
	int r = read_full(fd, hdr, 2, ms);
	if (r != 1)
		return r == 0 ? -2 : -1;
	size_t len = (size_t)hdr[0] << 8 | hdr[1];
	if (len > cap)
		return -1;
	r = read_full(fd, buf, len, ms);
	if (r != 1)
		return r == 0 ? -2 : -1;
	return (long)len;
}

static size_t frame(uint8_t *out, const char *msg)
{
	size_t len = strlen(msg);
	out[0] = (uint8_t)(len >> 8);
	out[1] = (uint8_t)len;
	memcpy(out + 2, msg, len);
	return len + 2;
}

/* Milliseconds until the server closes fd (EOF or reset), -1 if it has not
 * within ms. */
static long wait_closed(int fd, unsigned ms)
{
	uint64_t t0 = ms_now();
	uint8_t buf[256];
	int r;
	while ((r = read_full(fd, buf, 1, (unsigned)(t0 + ms > ms_now() ? t0 + ms - ms_now() : 0))) == 1)
		;
	return r == 0 ? (long)(ms_now() - t0) : -1;
}

/* Checks one TCP query/answer on fd. */
static bool tcp_roundtrip(int fd, const char *msg)
{
	uint8_t q[256], a[256], want[256];
	size_t qlen = frame(q, msg);
	if (!send_all(fd, q, qlen))
		return false;
	long n = read_frame(fd, a, sizeof(a), 2000);
	size_t wl = expect(q + 2, qlen - 2, true, want);
	return n == (long)wl && memcmp(a, want, wl) == 0;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_udp(struct server *srv, size_t li, const struct cfg_listen *addr, unsigned workers)
{
	int family = addr->ss.ss_family;
	const char *fam = family == AF_INET6 ? "v6" : "v4";
	reset_counts();
	atomic_store(&batch_reqs, 0);
	/* 64 client sockets: their flows hash to every worker. */
	int fds[64];
	unsigned sent = 0, good = 0, from_ok = 0;
	for (int i = 0; i < 64; i++) {
		fds[i] = udp_client(family);
		char msg[32];
		int len = snprintf(msg, sizeof(msg), "query %d via %s", i, fam);
		if (sendto(fds[i], msg, (size_t)len, 0, (const struct sockaddr *)&addr->ss, addr->len) ==
		    len)
			sent++;
	}
	for (int i = 0; i < 64; i++) {
		char msg[32];
		uint8_t got[64], want[64];
		struct sockaddr_storage from;
		int len = snprintf(msg, sizeof(msg), "query %d via %s", i, fam);
		size_t wl = expect((const uint8_t *)msg, (size_t)len, false, want);
		ssize_t n = udp_recv(fds[i], got, sizeof(got), 2000, &from);
		if (n == (ssize_t)wl && memcmp(got, want, wl) == 0)
			good++;
		if (n > 0 && same_addr(&from, &addr->ss))
			from_ok++;
		close(fds[i]);
	}
	is_int(sent, 64, "udp %s: 64 datagrams sent", fam);
	is_int(good, 64, "udp %s: 64 echo answers", fam);
	is_int(from_ok, 64, "udp %s: answers come from the server's address and port", fam);
	unsigned busy = 0, tcp = 0;
	for (int i = 0; i < MAX_THREADS; i++) {
		busy += atomic_load(&udp_calls[i]) > 0;
		tcp += atomic_load(&tcp_calls[i]);
	}
	is_int(busy, workers, "udp %s: all %u workers of the address handled queries", fam, workers);
	is_int(tcp, 0, "udp %s: no call marked tcp", fam);

	/* A dropped message gets no answer; the next one does. */
	int fd = udp_client(family);
	uint8_t got[8192];
	struct sockaddr_storage from;
	sendto(fd, "Drop me", 7, 0, (const struct sockaddr *)&addr->ss, addr->len);
	is_int(udp_recv(fd, got, sizeof(got), 300, &from), -1, "udp %s: handler -1, no answer", fam);
	sendto(fd, "after", 5, 0, (const struct sockaddr *)&addr->ss, addr->len);
	is_int(udp_recv(fd, got, sizeof(got), 2000, &from), 6, "udp %s: next query answered", fam);

	/* 4096 bytes is served, 5000 is truncated by the kernel and dropped. */
	uint8_t *big = calloc(1, 5000);
	big[0] = 'B';
	sendto(fd, big, 5000, 0, (const struct sockaddr *)&addr->ss, addr->len);
	is_int(udp_recv(fd, got, sizeof(got), 300, &from), -1, "udp %s: 5000-byte request dropped",
	       fam);
	sendto(fd, big, 4096, 0, (const struct sockaddr *)&addr->ss, addr->len);
	ssize_t n = udp_recv(fd, got, sizeof(got), 2000, &from);
	ok(n == 4097 && got[0] == ('B' ^ 0xff) && got[4096] == 'U',
	   "udp %s: 4096-byte request answered (%zd)", fam, n);
	free(big);
	close(fd);
	/* Every request handled (the dropped one too, not the truncated one)
	 * was timed in its batch, before the answers went out. */
	unsigned handled = 0;
	for (int i = 0; i < MAX_THREADS; i++)
		handled += atomic_load(&udp_calls[i]);
	is_int(atomic_load(&batch_reqs), handled, "udp %s: batch_done counted all %u requests", fam,
	       handled);
	is_int(atomic_load(&batch_bad), 0, "udp %s: batch_done times under 1 s, never n 0", fam);
	(void)srv;
	(void)li;
}

static void test_tcp_pipeline(const struct cfg_listen *addr)
{
	const char *fam = addr->ss.ss_family == AF_INET6 ? "v6" : "v4";
	const char *msgs[] = { "first", "Dropped", "second", "a third, longer one" };
	uint8_t q[512], a[256], want[256];
	size_t qlen = 0;
	for (size_t i = 0; i < 4; i++)
		qlen += frame(q + qlen, msgs[i]);

	/* All four in one write: three answers, in order. */
	int fd = tcp_connect(addr);
	ok(fd != -1, "tcp %s: connect", fam);
	ok(send_all(fd, q, qlen), "tcp %s: four pipelined queries in one write", fam);
	bool inorder = true;
	for (size_t i = 0; i < 4; i++) {
		if (msgs[i][0] == 'D')
			continue;
		size_t wl = expect((const uint8_t *)msgs[i], strlen(msgs[i]), true, want);
		long n = read_frame(fd, a, sizeof(a), 2000);
		inorder = inorder && n == (long)wl && memcmp(a, want, wl) == 0;
	}
	ok(inorder, "tcp %s: three answers in order, none for the dropped one", fam);

	/* The same byte by byte, again on the same connection. */
	bool sent = true;
	for (size_t i = 0; i < qlen && sent; i++) {
		sent = send_all(fd, q + i, 1);
		if (i % 4 == 0)
			sleep_ms(1);
	}
	ok(sent, "tcp %s: sent byte by byte", fam);
	inorder = true;
	for (size_t i = 0; i < 4; i++) {
		if (msgs[i][0] == 'D')
			continue;
		size_t wl = expect((const uint8_t *)msgs[i], strlen(msgs[i]), true, want);
		long n = read_frame(fd, a, sizeof(a), 2000);
		inorder = inorder && n == (long)wl && memcmp(a, want, wl) == 0;
	}
	ok(inorder, "tcp %s: byte-by-byte queries answered in order", fam);

	/* Half-close after two queries: both answered, then EOF. */
	send_all(fd, q, qlen);
	shutdown(fd, SHUT_WR);
	int answers = 0;
	long n;
	while ((n = read_frame(fd, a, sizeof(a), 2000)) >= 0)
		answers++;
	is_int(answers, 3, "tcp %s: queries before a half-close are answered", fam);
	is_int(n, -2, "tcp %s: then the server closes", fam);
	close(fd);

	/* A zero-length message closes the connection. */
	fd = tcp_connect(addr);
	ok(tcp_roundtrip(fd, "before zero"), "tcp %s: query before a zero-length message", fam);
	send_all(fd, (const uint8_t *)"\0\0", 2);
	ok(wait_closed(fd, 2000) >= 0, "tcp %s: zero-length message closes", fam);
	close(fd);
}

struct writer {
	int fd;
	const uint8_t *buf;
	size_t len;
	bool ok;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	w->ok = send_all(w->fd, w->buf, w->len);
	return NULL;
}

/* Many large pipelined queries while the client does not read at first:
 * the server must stop reading, keep its output, and resume when the
 * client reads, without losing or reordering anything. */
static void test_tcp_flow(const struct cfg_listen *addr)
{
	const char *fam = addr->ss.ss_family == AF_INET6 ? "v6" : "v4";
	size_t flen = 2 + BIG;
	uint8_t *q = malloc(flen * BIG_COUNT);
	uint8_t *a = malloc(65535);
	for (size_t i = 0; i < BIG_COUNT; i++) {
		uint8_t *f = q + i * flen;
		f[0] = (uint8_t)(BIG >> 8);
		f[1] = (uint8_t)BIG;
		for (size_t j = 0; j < BIG; j++)
			f[2 + j] = (uint8_t)(i * 7 + j);
	}
	int fd = tcp_connect(addr);
	int small = 16384;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	struct writer w = { .fd = fd, .buf = q, .len = flen * BIG_COUNT };
	pthread_t th;
	pthread_create(&th, NULL, writer_main, &w);
	sleep_ms(300);
	int good = 0;
	for (size_t i = 0; i < BIG_COUNT; i++) {
		long n = read_frame(fd, a, 65535, 5000);
		const uint8_t *f = q + i * flen + 2;
		if (n == BIG + 1 && (a[0] ^ f[0]) == 0xff && memcmp(a + 1, f + 1, BIG - 1) == 0 &&
		    a[BIG] == 'T')
			good++;
		else
			break;
	}
	pthread_join(th, NULL);
	ok(w.ok, "tcp %s: %d x %d bytes written", fam, BIG_COUNT, BIG);
	is_int(good, BIG_COUNT, "tcp %s: all large answers, in order, with a slow reader", fam);

	/* A 65535-byte query (the largest) gets its 65535-byte answer, on a
	 * fresh connection: the slow reader above may have idled past the
	 * server's timeout while draining its socket buffer. */
	close(fd);
	fd = tcp_connect(addr);
	uint8_t *f = q;
	f[0] = 0xff;
	f[1] = 0xff;
	send_all(fd, f, 2 + 65535);
	long n = read_frame(fd, a, 65535, 5000);
	ok(n == 65535 && (a[0] ^ f[2]) == 0xff && memcmp(a + 1, f + 3, 65534) == 0,
	   "tcp %s: 65535-byte query and answer (n=%ld)", fam, n);
	close(fd);
	free(q);
	free(a);
}

/* A TCP connection to l from source address src (any port). */
static int tcp_connect_from(const struct cfg_listen *l, const char *src)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	inet_pton(AF_INET, src, &sa.sin_addr);
	set_rcvtimeo(fd, 3000);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    connect(fd, (const struct sockaddr *)&l->ss, l->len) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* max-per-client: a client address gets at most N connections; others
 * are not affected; closing one frees its place. Many clients opening and
 * closing in a mixed order keep the per-address counts exact. */
static void test_per_client_cap(void)
{
	char err[256];
	struct cfg_listen l = mk_listen("127.0.0.1", 0);
	struct server_settings set = {
		.listen = &l, .nlisten = 1, .udp_workers = 1, .tcp_max_clients = 64,
		.tcp_max_per_client = 2, .tcp_idle_timeout_ms = 5000,
	};
	struct server *srv = NULL;
	ok(server_start(&srv, &set, &ops, err, sizeof(err)) == 0, "server with max-per-client 2: %s",
	   err);
	if (!srv)
		return;
	struct cfg_listen a = bound(srv, 0, l);
	int c[3];
	int answered = 0;
	for (int i = 0; i < 2; i++) {
		c[i] = tcp_connect_from(&a, "127.0.0.1");
		answered += c[i] != -1 && tcp_roundtrip(c[i], "pc");
	}
	is_int(answered, 2, "two connections from 127.0.0.1 answer");
	c[2] = tcp_connect_from(&a, "127.0.0.1");
	ok(c[2] == -1 || wait_closed(c[2], 1000) >= 0, "the third from 127.0.0.1 is closed");
	if (c[2] != -1)
		close(c[2]);
	int other = tcp_connect_from(&a, "127.0.0.9");
	ok(other != -1 && tcp_roundtrip(other, "other"), "another client address still answers");
	if (other != -1)
		close(other);
	close(c[0]);
	usleep(100000);
	c[0] = tcp_connect_from(&a, "127.0.0.1");
	ok(c[0] != -1 && tcp_roundtrip(c[0], "again"), "after one closes, 127.0.0.1 connects again");
	close(c[0]);
	close(c[1]);
	/* 40 addresses x 2 connections, closed in an interleaved order, then
	 * each address must again get exactly 2. */
	int many[80];
	char ip[32];
	for (int i = 0; i < 80; i++) {
		snprintf(ip, sizeof(ip), "127.0.1.%d", i / 2 + 1);
		many[i] = tcp_connect_from(&a, ip);
	}
	for (int i = 0; i < 80; i += 3)
		if (many[i] != -1)
			close(many[i]), many[i] = -1;
	for (int i = 1; i < 80; i += 3)
		if (many[i] != -1)
			close(many[i]), many[i] = -1;
	for (int i = 0; i < 80; i++)
		if (many[i] != -1)
			close(many[i]), many[i] = -1;
	usleep(200000);
	int good = 0, refused = 0;
	for (int k = 0; k < 40; k++) {
		snprintf(ip, sizeof(ip), "127.0.1.%d", k + 1);
		int x = tcp_connect_from(&a, ip), y = tcp_connect_from(&a, ip);
		int z = tcp_connect_from(&a, ip);
		good += x != -1 && y != -1 && tcp_roundtrip(x, "x") && tcp_roundtrip(y, "y");
		refused += z == -1 || wait_closed(z, 1000) >= 0;
		if (x != -1)
			close(x);
		if (y != -1)
			close(y);
		if (z != -1)
			close(z);
		usleep(20000);
	}
	is_int(good, 40, "after churn every address gets its two connections");
	is_int(refused, 40, "and not a third");
	server_stop(srv);
}

/* At most SERVER_STREAMS_MAX transfers stream at once: with that many
 * clients not reading their 16 MiB streams, the next one is refused; once
 * a client goes away its place is free again. */
static void test_stream_cap(void)
{
	char err[256];
	struct cfg_listen l = mk_listen("127.0.0.1", 0);
	struct server_settings set = {
		.listen = &l, .nlisten = 1, .udp_workers = 1, .tcp_max_clients = 64,
		.tcp_max_per_client = 0, .tcp_idle_timeout_ms = 5000,
	};
	struct server *srv = NULL;
	ok(server_start(&srv, &set, &ops, err, sizeof(err)) == 0, "server for the stream cap: %s", err);
	if (!srv)
		return;
	struct cfg_listen a = bound(srv, 0, l);
	atomic_store(&streams_refused, 0);
	atomic_store(&streams_started, 0);
	int c[SERVER_STREAMS_MAX + 1];
	uint8_t f[8];
	size_t fl = frame(f, "S");
	/* Sanitizer builds are slow: wait for each outcome, up to 20 s. */
	for (int i = 0; i <= SERVER_STREAMS_MAX; i++) {
		c[i] = tcp_connect(&a);
		if (c[i] != -1)
			send_all(c[i], f, fl);
		for (int w = 0; w < 2000 && atomic_load(&streams_started) +
		                                atomic_load(&streams_refused) < (unsigned)i + 1; w++)
			sleep_ms(10);
	}
	is_int(atomic_load(&streams_started), SERVER_STREAMS_MAX, "%d streams run at once",
	       SERVER_STREAMS_MAX);
	is_int(atomic_load(&streams_refused), 1, "the stream past the cap is refused");
	close(c[0]);
	sleep_ms(300);
	int extra = tcp_connect(&a);
	if (extra != -1)
		send_all(extra, f, fl);
	for (int w = 0; w < 2000 && atomic_load(&streams_started) + atomic_load(&streams_refused) <
	                                SERVER_STREAMS_MAX + 2; w++)
		sleep_ms(10);
	is_int(atomic_load(&streams_started), SERVER_STREAMS_MAX + 1,
	       "a closed client's place is taken by the next");
	is_int(atomic_load(&streams_refused), 1, "and nothing else was refused");
	if (extra != -1)
		close(extra);
	for (int i = 1; i <= SERVER_STREAMS_MAX; i++)
		if (c[i] != -1)
			close(c[i]);
	server_stop(srv);
}

static void test_timeouts_and_cap(void)
{
	char err[256] = "";
	struct cfg_listen l = mk_listen("127.0.0.1", 0);
	unsigned before = atomic_load(&n_init);
	struct server *srv = start(&l, 1, 1, 4, 300, err, sizeof(err));
	ok(srv != NULL, "server B (1 worker, max 4 clients, idle 300 ms) starts: %s", err);
	if (!srv)
		return;
	is_int(atomic_load(&n_init) - before, 2, "server B: thread_init ran on 2 threads");
	struct cfg_listen a = bound(srv, 0, l);

	/* Idle: closed after about 300 ms. */
	int fd = tcp_connect(&a);
	long t = wait_closed(fd, 3000);
	ok(t >= 250 && t < 1000, "idle connection closed after %ld ms (300 ms timeout)", t);
	close(fd);

	/* Slowloris: a query trickling in one byte per 50 ms is cut off. */
	fd = tcp_connect(&a);
	uint64_t t0 = ms_now();
	const uint8_t slow[] = { 0, 100 };
	bool closed = false;
	for (int i = 0; i < 40 && !closed; i++) {
		if (!send_all(fd, i < 2 ? slow + i : (const uint8_t *)"x", 1))
			break;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		closed = poll(&p, 1, 50) == 1;
	}
	t = (long)(ms_now() - t0);
	ok(closed && t >= 250 && t < 1000, "slow query cut off after %ld ms", t);
	close(fd);

	/* Busy: a query every 100 ms for 1 s keeps the connection open. */
	fd = tcp_connect(&a);
	int answered = 0;
	for (int i = 0; i < 10; i++) {
		answered += tcp_roundtrip(fd, "keepalive");
		sleep_ms(100);
	}
	is_int(answered, 10, "a connection with a query every 100 ms stays open past the timeout");
	close(fd);

	/* Cap: a fifth connection takes the place of the least recently
	 * active one (c[0]); the other three keep working. */
	int c[5];
	int working = 0;
	for (int i = 0; i < 4; i++) {
		c[i] = tcp_connect(&a);
		working += tcp_roundtrip(c[i], "capped");
	}
	is_int(working, 4, "four connections at the cap answer");
	uint64_t reclaimed0 = server_tcp_reclaimed(srv);
	c[4] = tcp_connect(&a);
	ok(c[4] != -1 && tcp_roundtrip(c[4], "fifth"), "a fifth connection at the cap is served");
	t = wait_closed(c[0], 1000);
	ok(t >= 0 && t < 250, "the least recently active one was closed for it (%ld ms)", t);
	is_int((long)(server_tcp_reclaimed(srv) - reclaimed0), 1, "one connection reclaimed");
	close(c[0]);
	working = 0;
	for (int i = 1; i < 5; i++)
		working += tcp_roundtrip(c[i], "still");
	is_int(working, 4, "the other four answer");

	/* Stop with open connections and a pending partial query. */
	send_all(c[1], slow, 1);
	unsigned fini0 = atomic_load(&n_fini);
	t0 = ms_now();
	server_stop(srv);
	t = (long)(ms_now() - t0);
	ok(t < 500, "server B stops in %ld ms with open connections", t);
	is_int(atomic_load(&n_fini) - fini0, 2, "server B: thread_fini ran for both threads");
	for (int i = 1; i < 5; i++) {
		ok(wait_closed(c[i], 1000) >= 0, "connection %d closed by stop", i);
		close(c[i]);
	}
}

/* Issue 14 item 8: 4 client addresses x 2 connections, each sending a
 * query every 150 ms, hold all 8 slots past the 1 s idle timeout; a new
 * client is still served (the least recently active connection makes
 * room), and the holders lose only that one. When no connection can be
 * given up (each streams a transfer), a new one is closed at once. */
static void test_reclaim_under_load(void)
{
	char err[256];
	struct cfg_listen l = mk_listen("127.0.0.1", 0);
	struct server_settings set = {
		.listen = &l, .nlisten = 1, .udp_workers = 1, .tcp_max_clients = 8,
		.tcp_max_per_client = 64, .tcp_idle_timeout_ms = 1000,
	};
	struct server *srv = NULL;
	ok(server_start(&srv, &set, &ops, err, sizeof(err)) == 0, "server with max-clients 8: %s", err);
	if (!srv)
		return;
	struct cfg_listen a = bound(srv, 0, l);
	int h[8];
	char ip[32];
	for (int i = 0; i < 8; i++) {
		snprintf(ip, sizeof(ip), "127.0.2.%d", i / 2 + 1);
		h[i] = tcp_connect_from(&a, ip);
	}
	int answered = 0, rounds = 0;
	for (uint64_t end = ms_now() + 1500; ms_now() < end; rounds++) {
		for (int i = 0; i < 8; i++)
			answered += h[i] != -1 && tcp_roundtrip(h[i], "hold");
		sleep_ms(150);
	}
	is_int(answered, 8 * rounds, "8 busy connections kept open past the idle timeout");
	int n = tcp_connect_from(&a, "127.0.2.50");
	ok(n != -1 && tcp_roundtrip(n, "newcomer"), "a new client is served with all slots busy");
	int alive = 0;
	for (int i = 0; i < 8; i++)
		alive += tcp_roundtrip(h[i], "after");
	is_int(alive, 7, "one holder gave up its slot, seven still answer");
	for (int i = 0; i < 8; i++)
		close(h[i]);
	if (n != -1)
		close(n);

	/* Eight clients streaming transfers they do not read owe data: none
	 * can be closed, so a ninth connection is refused. */
	sleep_ms(100);
	unsigned started0 = atomic_load(&streams_started);
	int st[8];
	uint8_t f[8];
	for (int i = 0; i < 8; i++) {
		st[i] = tcp_connect(&a);
		size_t fl = frame(f, "S");
		if (st[i] != -1)
			send_all(st[i], f, fl);
	}
	for (int i = 0; i < 500 && atomic_load(&streams_started) - started0 < 8; i++)
		sleep_ms(20);
	is_int(atomic_load(&streams_started) - started0, 8, "eight transfers streaming");
	int x = tcp_connect(&a);
	long t = x == -1 ? 0 : wait_closed(x, 2000);
	ok(t >= 0, "with every connection streaming, a new one is closed (%ld ms)", t);
	if (x != -1)
		close(x);
	for (int i = 0; i < 8; i++)
		if (st[i] != -1)
			close(st[i]);
	server_stop(srv);
}

/* Issue 14 item 10: a client at max-per-client that closes all its
 * connections and at once opens a new one is served, every time, though
 * the server may see the new connection before the closes. */
static void test_close_then_reconnect(void)
{
	char err[256];
	struct cfg_listen l = mk_listen("127.0.0.1", 0);
	enum { PER = 64, TRIES = 40 };
	struct server_settings set = {
		.listen = &l, .nlisten = 1, .udp_workers = 1, .tcp_max_clients = 256,
		.tcp_max_per_client = PER, .tcp_idle_timeout_ms = 5000,
	};
	struct server *srv = NULL;
	ok(server_start(&srv, &set, &ops, err, sizeof(err)) == 0, "server with max-per-client %d: %s",
	   PER, err);
	if (!srv)
		return;
	struct cfg_listen a = bound(srv, 0, l);
	int refused = 0;
	for (int k = 0; k < TRIES; k++) {
		int c[PER];
		/* Odd tries close before the server may have accepted them. */
		for (int i = 0; i < PER; i++) {
			c[i] = tcp_connect_from(&a, "127.0.4.1");
			if (c[i] != -1 && k % 2 == 0 && !tcp_roundtrip(c[i], "q"))
				close(c[i]), c[i] = -1;
		}
		for (int i = 0; i < PER; i++)
			if (c[i] != -1)
				close(c[i]);
		int n = tcp_connect_from(&a, "127.0.4.1");
		refused += n == -1 || !tcp_roundtrip(n, "again");
		if (n != -1)
			close(n);
		sleep_ms(30);
	}
	is_int(refused, 0, "close %d, reconnect at once: refused %d of %d tries", PER, refused,
	       TRIES);
	server_stop(srv);
}

/* Issue 14 items 8 and 11: what max-per-client counts by, and limits
 * changed on a running server. */
static void test_client_key_and_live_limits(void)
{
	struct sockaddr_in6 s6a = { .sin6_family = AF_INET6 }, s6b = s6a, s6c = s6a, s6m = s6a;
	struct sockaddr_in s4 = { .sin_family = AF_INET }, s4b = s4;
	inet_pton(AF_INET6, "2001:db8:1:2::1", &s6a.sin6_addr);
	inet_pton(AF_INET6, "2001:db8:1:2:ffff::99", &s6b.sin6_addr);
	inet_pton(AF_INET6, "2001:db8:1:3::1", &s6c.sin6_addr);
	inet_pton(AF_INET6, "::ffff:192.0.2.7", &s6m.sin6_addr);
	inet_pton(AF_INET, "192.0.2.7", &s4.sin_addr);
	inet_pton(AF_INET, "192.0.2.8", &s4b.sin_addr);
	s6b.sin6_port = htons(53);
#define KEY(x) server_client_key((const struct sockaddr *)&(x))
	ok(KEY(s6a) == KEY(s6b), "two addresses of one IPv6 /64 are one client");
	ok(KEY(s6a) != KEY(s6c), "another /64 is another client");
	ok(KEY(s6m) == KEY(s4), "an IPv4-mapped address counts as its IPv4 address");
	ok(KEY(s4) != KEY(s4b), "IPv4 addresses are counted one by one");
	ok(KEY(s4) != 0 && KEY(s6a) != 0, "keys are nonzero");
#undef KEY

	char err[256];
	struct cfg_listen l = mk_listen("127.0.0.1", 0);
	struct server_settings set = {
		.listen = &l, .nlisten = 1, .udp_workers = 1, .tcp_max_clients = 16,
		.tcp_max_per_client = 0, .tcp_idle_timeout_ms = 5000,
	};
	struct server *srv = NULL;
	ok(server_start(&srv, &set, &ops, err, sizeof(err)) == 0, "server for live limits: %s", err);
	if (!srv)
		return;
	struct cfg_listen a = bound(srv, 0, l);
	int old = tcp_connect_from(&a, "127.0.5.1");
	ok(old != -1 && tcp_roundtrip(old, "before"), "a connection under the old limits");
	server_set_tcp_limits(srv, 2, 300);
	sleep_ms(300);
	long t = wait_closed(old, 2000);
	ok(t >= 0 && t < 400, "idle-timeout 5 s -> 300 ms applies to an open connection (%ld ms)", t);
	close(old);
	int c[3];
	for (int i = 0; i < 3; i++)
		c[i] = tcp_connect_from(&a, "127.0.5.2");
	ok(c[0] != -1 && c[1] != -1 && tcp_roundtrip(c[0], "a") && tcp_roundtrip(c[1], "b"),
	   "max-per-client 0 -> 2: two connections answer");
	ok(c[2] == -1 || wait_closed(c[2], 1000) >= 0, "the third is closed");
	for (int i = 0; i < 3; i++)
		if (c[i] != -1)
			close(c[i]);
	server_stop(srv);
}

/* A wildcard socket answers from the address the query was sent to. */
static void test_wildcard(bool v6)
{
	char err[256] = "";
	struct cfg_listen l[2] = { mk_listen("0.0.0.0", 0), mk_listen("::", 0) };
	struct server *srv = start(l, v6 ? 2 : 1, 2, 8, 1000, err, sizeof(err));
	ok(srv != NULL, "wildcard server starts: %s", err);
	if (!srv)
		return;
	uint16_t port = (uint16_t)server_local_port(srv, 0);
	struct cfg_listen dst = mk_listen("127.0.0.2", port);
	int fd = udp_client(AF_INET);
	struct cfg_listen src = mk_listen("127.0.0.1", 0);
	bind(fd, (struct sockaddr *)&src.ss, src.len);
	uint8_t got[64];
	struct sockaddr_storage from;
	if (sendto(fd, "wild", 4, 0, (struct sockaddr *)&dst.ss, dst.len) != 4) {
		diag("cannot send to 127.0.0.2 (%s): skipping the source address check",
		     strerror(errno));
	} else {
		ssize_t n = udp_recv(fd, got, sizeof(got), 2000, &from);
		is_int(n, 5, "wildcard v4: answered");
		ok(same_addr(&from, &dst.ss), "wildcard v4: answer comes from 127.0.0.2, where the "
		   "query went");
	}
	close(fd);
	if (v6) {
		struct cfg_listen dst6 = mk_listen("::1", (uint16_t)server_local_port(srv, 1));
		fd = udp_client(AF_INET6);
		sendto(fd, "wild6", 5, 0, (struct sockaddr *)&dst6.ss, dst6.len);
		ssize_t n = udp_recv(fd, got, sizeof(got), 2000, &from);
		ok(n == 6 && same_addr(&from, &dst6.ss), "wildcard v6: answered from ::1");
		close(fd);
	}
	int tfd = tcp_connect(&dst);
	ok(tfd != -1 && tcp_roundtrip(tfd, "wild tcp"), "wildcard tcp: answered");
	if (tfd != -1)
		close(tfd);
	server_stop(srv);
}

static void test_start_failures(const struct cfg_listen *taken)
{
	char err[256] = "", want[256], name[64];
	unsigned i0 = atomic_load(&n_init), f0 = atomic_load(&n_fini);
	struct cfg_listen l[2] = { mk_listen("127.0.0.1", 0), *taken };
	struct server *srv = start(l, 2, 2, 8, 1000, err, sizeof(err));
	ok(srv == NULL, "start on a port in use fails");
	inet_ntop(AF_INET, &((const struct sockaddr_in *)&taken->ss)->sin_addr, name, sizeof(name));
	snprintf(want, sizeof(want), "bind %s:%u: %s", name,
	         ntohs(((const struct sockaddr_in *)&taken->ss)->sin_port), strerror(EADDRINUSE));
	is_str(err, want, "the error names the address");
	is_int(atomic_load(&n_init), i0, "no thread was started");
	server_stop(srv);

	/* thread_init failing on the third thread: clean failure, every
	 * successful init undone. */
	atomic_store(&fail_idx, 2);
	srv = start(l, 1, 3, 8, 1000, err, sizeof(err));
	atomic_store(&fail_idx, -1);
	ok(srv == NULL, "start fails when a thread_init fails");
	is_str(err, "server thread 2: initialization failed", "its error");
	is_int(atomic_load(&n_init) - i0, 3, "the other three threads ran thread_init");
	is_int(atomic_load(&n_fini) - f0, 3, "and thread_fini");

	struct server_settings set = { .listen = l, .nlisten = 1, .udp_workers = 0,
	                               .tcp_max_clients = 1, .tcp_idle_timeout_ms = 1 };
	ok(server_start(&srv, &set, &ops, err, sizeof(err)) == -1, "udp_workers 0 is refused");
}

int main(void)
{
	log_set_level(LOG_LEVEL_ERR);
	char err[256] = "";
	bool v6 = ipv6_loopback_works();
	if (!v6)
		diag("IPv6 loopback unavailable: skipping the [::1] tests");
	struct cfg_listen l[2] = { mk_listen("127.0.0.1", 0), mk_listen("::1", 0) };
	size_t nl = v6 ? 2 : 1;
	struct server *srv = start(l, nl, 2, 64, 5000, err, sizeof(err));
	ok(srv != NULL, "server A starts on 127.0.0.1:0%s: %s", v6 ? " and [::1]:0" : "", err);
	if (!srv)
		return done_testing();
	is_int(atomic_load(&n_init), 2 * nl + 1, "thread_init ran on every UDP worker and TCP");
	struct cfg_listen a[2];
	for (size_t i = 0; i < nl; i++) {
		a[i] = bound(srv, i, l[i]);
		ok(server_local_port(srv, i) > 0, "listen %zu got port %d", i, server_local_port(srv, i));
	}
	is_int(server_local_port(srv, nl), -1, "server_local_port out of range");

	for (size_t i = 0; i < nl; i++)
		test_udp(srv, i, &a[i], 2);
	reset_counts();
	for (size_t i = 0; i < nl; i++)
		test_tcp_pipeline(&a[i]);
	test_tcp_flow(&a[0]);
	unsigned tcp_threads = 0, udp_total = 0;
	for (int i = 0; i < MAX_THREADS; i++) {
		tcp_threads += atomic_load(&tcp_calls[i]) > 0;
		udp_total += atomic_load(&udp_calls[i]);
	}
	is_int(tcp_threads, 1, "one thread handled all TCP queries");
	is_int(udp_total, 0, "and none of them was marked udp");

	test_start_failures(&a[0]);

	int idle = tcp_connect(&a[0]);
	uint64_t t0 = ms_now();
	server_stop(srv);
	long t = (long)(ms_now() - t0);
	ok(t < 500, "server A stops in %ld ms", t);
	is_int(atomic_load(&n_fini), atomic_load(&n_init), "thread_fini for every thread_init");
	if (idle != -1)
		close(idle);

	test_timeouts_and_cap();
	test_per_client_cap();
	test_stream_cap();
	test_reclaim_under_load();
	test_close_then_reconnect();
	test_client_key_and_live_limits();
	test_wildcard(v6);
	server_stop(NULL);
	is_int(atomic_load(&n_fini), atomic_load(&n_init), "thread_fini for every thread_init");
	is_int(atomic_load(&bad_args), 0, "handle always got cap 65535 and a sane peer");
	return done_testing();
}

/* bench_health.c -- CPU per health check: dnsd's watcher (dnsd/health.c) against
 * the floor, a minimal loop doing only what one check must do, both probing N
 * backends spread over 127.0.0.0/8 at one interval. Every backend address is
 * served by one listener on 0.0.0.0:PORT (a second thread of this program).
 *
 * Build: tests/bench/health_cpu.sh builds it (against build/libdnsd.a) and
 *        runs the table; by hand:
 *        cc -std=c11 -D_GNU_SOURCE -O2 -g -Idnsd -o /tmp/bench_health \
 *           tests/bench/bench_health.c build/libdnsd.a $(pkg-config --libs \
 *           yaml-0.1 libcares libsodium liburcu-qsbr libcurl libmicrohttpd jansson \
 *           openssl) -lpthread -lm
 * Run:   bench_health [-n backends] [-t seconds] [-i interval_ms] [-m MODE] [-F] [-c]
 *   MODE  tcp      connect, close with a RST (listener: accept, close)
 *         http     GET, status line (listener: HTTP/1.1 keep-alive, 200)
 *         https    the same over TLS (listener: OpenSSL, keep-alive)
 *         refused  tcp against a port nobody listens on
 *   -F    run the floor instead of dnsd's watcher:
 *         tcp   socket, non-blocking connect, epoll for completion, SO_LINGER 0, close
 *         http  send + recv of one request on a connection kept open
 *         https SSL_write + SSL_read on a TLS connection kept open; with -c a
 *               fresh connection per check: connect, resumed TLS handshake,
 *               request, response, close with a RST
 *   -c    the listener closes every connection after its response
 *         (Connection: close), so every http(s) check connects again
 *   -V N  the tcp floor's variant (0-3, see enum tcp_variant)
 *   -w MS warm-up before measuring (default 1.5 intervals + 0.5 s)
 *   -R    floor: probe the backends in a fixed random order from the second
 *         round on (the first, in index order, creates the sockets): dnsd's
 *         jitter reorders its probes, so its sockets are not used in
 *         creation order
 *   -r N  dnsd: backends join in N steps 1.5 intervals apart (https: the
 *         listener on this machine cannot do 2,000 handshakes at once)
 *
 * Output: the checking thread's CPU time (/proc/self/task/<tid>/schedstat;
 * dnsd's watcher and the floor thread are both named "health") as a
 * percentage of one core and per check, the checks completed per second
 * (health_state.checks for dnsd, the loop's count for the floor), the
 * whole process's CPU (getrusage; includes the listener) and VmRSS.
 * `-j` prints one JSON line instead, for health_cpu.sh. */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "bstate.h"
#include "health.h"
#include "util/log.h"

enum mode { MODE_TCP, MODE_HTTP, MODE_HTTPS, MODE_REFUSED };
static const char *const mode_name[] = { "tcp", "http", "https", "refused" };

static const char resp_keep[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
static const char resp_close[] =
	"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = { .tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static uint64_t now_ms(void)
{
	return health_now_ms();
}

/* ---- TLS: a throw-away self-signed P-256 certificate ---------------------- */

static SSL_CTX *tls_server_ctx(void)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!key || !x || !ctx)
		goto fail;
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	X509_NAME *nm = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"bench", -1, -1, 0);
	X509_set_issuer_name(x, nm);
	if (!X509_sign(x, key, EVP_sha256()) || SSL_CTX_use_certificate(ctx, x) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, key) != 1)
		goto fail;
	X509_free(x);
	EVP_PKEY_free(key);
	return ctx;
fail:
	ERR_print_errors_fp(stderr);
	X509_free(x);
	EVP_PKEY_free(key);
	SSL_CTX_free(ctx);
	return NULL;
}

/* ---- the listener: every backend ------------------------------------------ */

struct lconn {
	SSL *ssl;
	bool hs_done;
};

struct listener {
	enum mode mode;
	bool close_each;
	int lfd, stopfd, epfd;
	uint16_t port;
	pthread_t thread;
	SSL_CTX *ctx;
	struct lconn *conns;          /* by descriptor */
	size_t nconns;
	atomic_ulong accepted, answered;
};

static void lconn_close(struct listener *l, int fd)
{
	if ((size_t)fd < l->nconns && l->conns[fd].ssl) {
		SSL_free(l->conns[fd].ssl);
		l->conns[fd].ssl = NULL;
	}
	close(fd);
}

/* One request per read that holds the end of a head: the checks send one
 * request and wait for its answer. */
static void lconn_read(struct listener *l, int fd)
{
	char buf[2048];
	const char *resp = l->close_each ? resp_close : resp_keep;
	size_t rlen = strlen(resp);
	if (l->mode == MODE_HTTP) {
		ssize_t r = recv(fd, buf, sizeof(buf) - 1, 0);
		if (r <= 0) {
			if (r == 0 || (errno != EAGAIN && errno != EINTR))
				lconn_close(l, fd);
			return;
		}
		buf[r] = 0;
		if (!strstr(buf, "\r\n\r\n"))
			return;
		atomic_fetch_add(&l->answered, 1);
		if (send(fd, resp, rlen, MSG_NOSIGNAL) != (ssize_t)rlen || l->close_each)
			lconn_close(l, fd);
		return;
	}
	struct lconn *c = &l->conns[fd];
	if (!c->hs_done) {
		int rc = SSL_accept(c->ssl);
		if (rc != 1) {
			int e = SSL_get_error(c->ssl, rc);
			if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
				lconn_close(l, fd);
			return;
		}
		c->hs_done = true;
	}
	for (;;) {
		int r = SSL_read(c->ssl, buf, sizeof(buf) - 1);
		if (r <= 0) {
			int e = SSL_get_error(c->ssl, r);
			if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
				lconn_close(l, fd);
			return;
		}
		buf[r] = 0;
		if (!strstr(buf, "\r\n\r\n"))
			continue;
		atomic_fetch_add(&l->answered, 1);
		if (SSL_write(c->ssl, resp, (int)rlen) != (int)rlen || l->close_each) {
			lconn_close(l, fd);
			return;
		}
	}
}

static void *listener_main(void *arg)
{
	struct listener *l = arg;
	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(l->epfd, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == l->stopfd)
				return NULL;
			if (fd != l->lfd) {
				lconn_read(l, fd);
				continue;
			}
			int c;
			while ((c = accept4(l->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) != -1) {
				atomic_fetch_add(&l->accepted, 1);
				if (l->mode == MODE_TCP) {
					close(c);
					continue;
				}
				if (l->mode == MODE_HTTPS) {
					if ((size_t)c >= l->nconns) {
						size_t nn = l->nconns ? l->nconns : 1024;
						while (nn <= (size_t)c)
							nn *= 2;
						l->conns = realloc(l->conns, nn * sizeof(*l->conns));
						memset(l->conns + l->nconns, 0, (nn - l->nconns) * sizeof(*l->conns));
						l->nconns = nn;
					}
					l->conns[c].ssl = SSL_new(l->ctx);
					l->conns[c].hs_done = false;
					SSL_set_fd(l->conns[c].ssl, c);
				}
				struct epoll_event ev = { .events = EPOLLIN, .data.fd = c };
				if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, c, &ev) == -1)
					lconn_close(l, c);
			}
		}
	}
}

static int listener_start(struct listener *l, enum mode mode, bool close_each)
{
	l->mode = mode;
	l->close_each = close_each;
	l->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	int one = 1;
	if (l->lfd == -1 || setsockopt(l->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(l->lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(l->lfd, (struct sockaddr *)&sin, &sl) == -1) {
		fprintf(stderr, "listener: %s\n", strerror(errno));
		return -1;
	}
	l->port = ntohs(sin.sin_port);
	if (mode == MODE_REFUSED) {
		/* Bound but not listening: nothing accepts on the port, so
		 * every probe is a complete, refused connection. */
		return 0;
	}
	if (mode == MODE_HTTPS && !(l->ctx = tls_server_ctx()))
		return -1;
	/* Idle connections give their buffers back, as dnsd's do: RSS is
	 * then mostly the SSL objects of both sides. */
	if (l->ctx)
		SSL_CTX_set_mode(l->ctx, SSL_MODE_RELEASE_BUFFERS);
	l->stopfd = eventfd(0, EFD_CLOEXEC);
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = l->lfd };
	struct epoll_event sev = { .events = EPOLLIN, .data.fd = l->stopfd };
	if (listen(l->lfd, 4096) == -1 || l->stopfd == -1 || l->epfd == -1 ||
	    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->lfd, &ev) == -1 ||
	    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->stopfd, &sev) == -1 ||
	    pthread_create(&l->thread, NULL, listener_main, l) != 0) {
		fprintf(stderr, "listener: %s\n", strerror(errno));
		return -1;
	}
	pthread_setname_np(l->thread, "listener");
	return 0;
}

static void listener_stop(struct listener *l)
{
	if (l->mode != MODE_REFUSED) {
		uint64_t one = 1;
		if (write(l->stopfd, &one, sizeof(one)) == -1)
			fprintf(stderr, "eventfd: %s\n", strerror(errno));
		pthread_join(l->thread, NULL);
		close(l->stopfd);
		close(l->epfd);
	}
	for (size_t i = 0; i < l->nconns; i++)
		if (l->conns[i].ssl)
			lconn_close(l, (int)i);
	free(l->conns);
	SSL_CTX_free(l->ctx);
	close(l->lfd);
}

/* ---- backends ------------------------------------------------------------- */

/* Backend i: 127.a.b.c (c in 1..254), the listener's port. */
static struct sockaddr_in backend_addr(size_t i, uint16_t port)
{
	uint32_t a = (uint32_t)(i / 254) << 8 | (uint32_t)(i % 254 + 1);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	sin.sin_addr.s_addr = htonl(0x7f000000u | a);
	return sin;
}

/* One zone, services of up to 100 backends. */
static struct config *bench_config(size_t n, uint16_t port, enum mode mode, uint32_t interval)
{
	struct config *c = calloc(1, sizeof(*c));
	c->nzones = 1;
	c->zones = calloc(1, sizeof(*c->zones));
	struct cfg_zone *z = &c->zones[0];
	z->name = "bench.";
	memcpy(z->origin, "\5bench", 7);
	z->originlen = 7;
	size_t nsvc = (n + 99) / 100;
	z->services = calloc(nsvc, sizeof(*z->services));
	z->nservices = nsvc;
	for (size_t si = 0; si < nsvc; si++) {
		struct cfg_service *s = &z->services[si];
		char name[32];
		snprintf(name, sizeof(name), "svc%zu", si);
		s->name = strdup(name);
		s->nbackends = n - si * 100 < 100 ? n - si * 100 : 100;
		s->backends = calloc(s->nbackends, sizeof(*s->backends));
		s->check.type = mode == MODE_HTTP    ? CFG_CHECK_HTTP
		                : mode == MODE_HTTPS ? CFG_CHECK_HTTPS
		                                     : CFG_CHECK_TCP;
		s->check.interval_ms = interval;
		s->check.timeout_ms = interval;
		s->check.rise = 2;
		s->check.fall = 3;
		s->check.path = "/health";
		for (size_t bi = 0; bi < s->nbackends; bi++) {
			struct cfg_backend *b = &s->backends[bi];
			struct sockaddr_in sin = backend_addr(si * 100 + bi, port);
			b->family = AF_INET;
			memcpy(b->addr, &sin.sin_addr, 4);
			b->port = port;
			b->weight = 100;
		}
	}
	return c;
}

static void bench_config_free(struct config *c)
{
	for (size_t si = 0; si < c->zones[0].nservices; si++) {
		free(c->zones[0].services[si].name);
		free(c->zones[0].services[si].backends);
	}
	free(c->zones[0].services);
	free(c->zones);
	free(c);
}

/* ---- the floor ------------------------------------------------------------ */

enum fphase { F_IDLE, F_CONNECT, F_HANDSHAKE, F_RECV };

struct fb {
	int fd;
	enum fphase phase;
	SSL *ssl;
	SSL_SESSION *sess;            /* -c https: the session to resume */
};

/* tcp floor variants (-V): how completion is seen and how the socket ends. */
enum tcp_variant {
	TV_EPOLL,       /* socket, connect, epoll EPOLLOUT, SO_LINGER 0, close */
	TV_CONNECT2,    /* the same, but a second connect() first: on loopback the
	                 * handshake is done when the first returns */
	TV_DISCONNECT,  /* one socket per backend for good: connect, epoll
	                 * (EPOLLONESHOT), connect(AF_UNSPEC) (a RST), again */
	TV_BOTH,        /* TV_DISCONNECT with TV_CONNECT2's second connect() */
};

struct floor {
	enum mode mode;
	enum tcp_variant tv;
	bool reconnect;               /* -c: a fresh connection per check */
	size_t n;
	uint32_t interval;
	uint16_t port;
	struct fb *b;
	int epfd;
	SSL_CTX *ctx;
	atomic_bool stop;
	atomic_ulong checks, failures, resumed, handshakes;
	uint64_t t0, started;         /* check k starts at t0 + interval * k / n */
	uint32_t *order;              /* -R: backends in a random order, else NULL */
	pthread_t thread;
	char req[128];
	size_t reqlen;
};

static void fb_close(struct fb *b, bool rst)
{
	if (b->ssl) {
		/* No close_notify (a RST follows), but the session stays
		 * resumable: OpenSSL drops a session freed without a shutdown. */
		SSL_set_shutdown(b->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
		SSL_free(b->ssl);
		b->ssl = NULL;
	}
	if (b->fd != -1) {
		if (rst) {
			struct linger lg = { .l_onoff = 1, .l_linger = 0 };
			setsockopt(b->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		close(b->fd);
		b->fd = -1;
	}
	b->phase = F_IDLE;
}

static void fb_result(struct floor *f, struct fb *b, bool ok)
{
	atomic_fetch_add_explicit(&f->checks, 1, memory_order_relaxed);
	if (!ok) {
		atomic_fetch_add_explicit(&f->failures, 1, memory_order_relaxed);
		fb_close(b, true);
	} else if (f->mode == MODE_TCP || f->reconnect) {
		fb_close(b, true);
	} else {
		b->phase = F_IDLE;
	}
}

static void fb_send(struct floor *f, struct fb *b)
{
	if (b->ssl) {
		if (SSL_write(b->ssl, f->req, (int)f->reqlen) != (int)f->reqlen) {
			fb_result(f, b, false);
			return;
		}
	} else if (send(b->fd, f->req, f->reqlen, MSG_NOSIGNAL) != (ssize_t)f->reqlen) {
		fb_result(f, b, false);
		return;
	}
	b->phase = F_RECV;
}

static void fb_handshake(struct floor *f, struct fb *b, uint32_t idx)
{
	int rc = SSL_connect(b->ssl);
	if (rc != 1) {
		int e = SSL_get_error(b->ssl, rc);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
			fb_result(f, b, false);
			return;
		}
		struct epoll_event ev = { .events = e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT,
			                  .data.u32 = idx };
		epoll_ctl(f->epfd, EPOLL_CTL_MOD, b->fd, &ev);
		return;
	}
	atomic_fetch_add_explicit(&f->handshakes, 1, memory_order_relaxed);
	if (SSL_session_reused(b->ssl))
		atomic_fetch_add_explicit(&f->resumed, 1, memory_order_relaxed);
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = idx };
	epoll_ctl(f->epfd, EPOLL_CTL_MOD, b->fd, &ev);
	fb_send(f, b);
}

/* Starts a check: a new connection (tcp; http(s) without one open), or the
 * request on the open one. */
static void fb_start(struct floor *f, struct fb *b, uint32_t idx)
{
	struct sockaddr_in sin = backend_addr(idx, f->port);
	if (f->mode == MODE_TCP && f->tv >= TV_DISCONNECT) {
		struct sockaddr un = { .sa_family = AF_UNSPEC };
		bool fresh = b->fd == -1;
		if (fresh && (b->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1)
			return;
		if (connect(b->fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 && errno != EINPROGRESS) {
			atomic_fetch_add_explicit(&f->checks, 1, memory_order_relaxed);
			atomic_fetch_add_explicit(&f->failures, 1, memory_order_relaxed);
			connect(b->fd, &un, sizeof(un));
			return;
		}
		if (f->tv == TV_BOTH) {
			int rc = connect(b->fd, (struct sockaddr *)&sin, sizeof(sin));
			if (rc == 0 || (errno != EALREADY && errno != EINPROGRESS)) {
				atomic_fetch_add_explicit(&f->checks, 1, memory_order_relaxed);
				if (rc != 0 && errno != EISCONN)
					atomic_fetch_add_explicit(&f->failures, 1, memory_order_relaxed);
				connect(b->fd, &un, sizeof(un));
				return;
			}
		}
		b->phase = F_CONNECT;
		struct epoll_event ev = { .events = EPOLLOUT | EPOLLONESHOT, .data.u32 = idx };
		epoll_ctl(f->epfd, fresh ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, b->fd, &ev);
		return;
	}
	if (b->fd != -1) {
		if (b->phase == F_IDLE)
			fb_send(f, b);
		return;
	}
	b->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (b->fd == -1)
		return;
	if (connect(b->fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 && errno != EINPROGRESS) {
		fb_result(f, b, false);
		return;
	}
	if (f->mode == MODE_TCP && f->tv == TV_CONNECT2) {
		if (connect(b->fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 || errno == EISCONN) {
			fb_result(f, b, true);
			return;
		}
		if (errno != EALREADY && errno != EINPROGRESS) {
			fb_result(f, b, false);
			return;
		}
	}
	b->phase = F_CONNECT;
	struct epoll_event ev = { .events = EPOLLOUT, .data.u32 = idx };
	epoll_ctl(f->epfd, EPOLL_CTL_ADD, b->fd, &ev);
}

static void fb_event(struct floor *f, struct fb *b, uint32_t idx, uint32_t events)
{
	char buf[1024];
	switch (b->phase) {
	case F_CONNECT:
		if (events & (EPOLLERR | EPOLLHUP)) {
			fb_result(f, b, false);
			return;
		}
		if (f->mode == MODE_TCP && f->tv >= TV_DISCONNECT) {
			struct sockaddr un = { .sa_family = AF_UNSPEC };
			atomic_fetch_add_explicit(&f->checks, 1, memory_order_relaxed);
			connect(b->fd, &un, sizeof(un));
			b->phase = F_IDLE;
			return;
		}
		if (f->mode == MODE_TCP) {
			fb_result(f, b, true);
			return;
		}
		if (f->mode == MODE_HTTPS) {
			b->ssl = SSL_new(f->ctx);
			SSL_set_fd(b->ssl, b->fd);
			if (b->sess)
				SSL_set_session(b->ssl, b->sess);
			b->phase = F_HANDSHAKE;
			fb_handshake(f, b, idx);
			return;
		}
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = idx };
		epoll_ctl(f->epfd, EPOLL_CTL_MOD, b->fd, &ev);
		fb_send(f, b);
		return;
	case F_HANDSHAKE:
		fb_handshake(f, b, idx);
		return;
	case F_RECV: {
		int r;
		if (b->ssl) {
			r = SSL_read(b->ssl, buf, sizeof(buf));
			if (r <= 0) {
				int e = SSL_get_error(b->ssl, r);
				if (e == SSL_ERROR_WANT_READ)
					return;
				fb_result(f, b, false);
				return;
			}
			if (f->reconnect) {
				/* TLS 1.3 tickets come after the handshake: the
				 * session to resume is the one held now. */
				SSL_SESSION *s = SSL_get1_session(b->ssl);
				if (s) {
					SSL_SESSION_free(b->sess);
					b->sess = s;
				}
			}
		} else {
			r = (int)recv(b->fd, buf, sizeof(buf), 0);
			if (r == -1 && errno == EAGAIN)
				return;
		}
		fb_result(f, b, r >= 12 && memcmp(buf, "HTTP/1.1 200", 12) == 0);
		return;
	}
	case F_IDLE:
		/* The server closed a kept connection: reconnect at the next check. */
		fb_close(b, false);
		return;
	}
}

static void *floor_main(void *arg)
{
	struct floor *f = arg;
	struct epoll_event evs[256];
	while (!atomic_load(&f->stop)) {
		uint64_t now = now_ms();
		/* Backends in turn, evenly spaced: O(1) per check, no scan. A
		 * check still in flight at its next turn is skipped (none is
		 * on loopback). */
		while (f->t0 + (uint64_t)f->interval * f->started / f->n <= now) {
			/* -R: the first round in index order, which creates
			 * the sockets (and their kernel objects) in that order;
			 * later rounds in the random one. Applied from the
			 * first round, the random order would also be the
			 * creation order, and no different from index order. */
			uint32_t i = (uint32_t)(f->started % f->n);
			if (f->order && f->started >= f->n)
				i = f->order[i];
			f->started++;
			if (f->b[i].phase == F_IDLE)
				fb_start(f, &f->b[i], i);
		}
		/* The same 4 ms tick as the watcher's timer grid. */
		int n = epoll_wait(f->epfd, evs, 256, 4);
		for (int i = 0; i < n; i++)
			fb_event(f, &f->b[evs[i].data.u32], evs[i].data.u32, evs[i].events);
	}
	return NULL;
}

static int floor_start(struct floor *f)
{
	f->epfd = epoll_create1(EPOLL_CLOEXEC);
	f->b = calloc(f->n, sizeof(*f->b));
	f->reqlen = (size_t)snprintf(f->req, sizeof(f->req),
	                             "GET /health HTTP/1.1\r\nHost: bench\r\n\r\n");
	if (f->mode == MODE_HTTPS) {
		f->ctx = SSL_CTX_new(TLS_client_method());
		SSL_CTX_set_verify(f->ctx, SSL_VERIFY_NONE, NULL);
		SSL_CTX_set_session_cache_mode(f->ctx, SSL_SESS_CACHE_CLIENT);
		SSL_CTX_set_mode(f->ctx, SSL_MODE_RELEASE_BUFFERS);
	}
	f->t0 = now_ms();
	for (size_t i = 0; i < f->n; i++)
		f->b[i].fd = -1;
	if (f->order) {
		/* A fixed random permutation (Fisher-Yates, seeded): the order
		 * in which the backends' sockets were created is not the order
		 * they are probed in, as with dnsd's random start offsets. */
		srand(1);
		for (size_t i = 0; i < f->n; i++)
			f->order[i] = (uint32_t)i;
		for (size_t i = f->n - 1; i > 0; i--) {
			size_t j = (size_t)rand() % (i + 1);
			uint32_t t = f->order[i];
			f->order[i] = f->order[j];
			f->order[j] = t;
		}
	}
	if (f->epfd == -1 || !f->b || pthread_create(&f->thread, NULL, floor_main, f) != 0)
		return -1;
	/* The watcher's name, so that one measurement serves both. */
	pthread_setname_np(f->thread, "health");
	return 0;
}

/* Bounded in the floor loop's own idle wait (4 ms). A known warning in the
 * floor's metrics: the SSL objects it frees are the floor's own. */
static void floor_stop(struct floor *f)
{
	atomic_store(&f->stop, true);
	pthread_join(f->thread, NULL);
	for (size_t i = 0; i < f->n; i++) {
		fb_close(&f->b[i], true);
		SSL_SESSION_free(f->b[i].sess);
	}
	free(f->b);
	free(f->order);
	SSL_CTX_free(f->ctx);
	close(f->epfd);
}

/* ---- measuring ------------------------------------------------------------ */

/* The checking thread's tid: the task named "health". */
static long watcher_tid(void)
{
	DIR *d = opendir("/proc/self/task");
	long tid = -1;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char path[300], comm[32] = "";
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && strcmp(comm, "health\n") == 0)
			tid = strtol(e->d_name, NULL, 10);
		fclose(f);
	}
	if (d)
		closedir(d);
	return tid;
}

/* ns the task has run on a CPU. */
static uint64_t task_cpu_ns(long tid)
{
	char path[64];
	unsigned long long ns = 0;
	snprintf(path, sizeof(path), "/proc/self/task/%ld/schedstat", tid);
	FILE *f = fopen(path, "r");
	if (!f || fscanf(f, "%llu", &ns) != 1)
		ns = 0;
	if (f)
		fclose(f);
	return ns;
}

static uint64_t process_cpu_ns(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000u +
	       ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000u;
}

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

static void totals(struct health *h, const struct config *c, uint64_t *checks, size_t *down)
{
	*checks = 0;
	*down = 0;
	for (size_t si = 0; si < c->zones[0].nservices; si++) {
		for (size_t bi = 0; bi < c->zones[0].services[si].nbackends; bi++) {
			struct health_state st;
			if (!health_get(h, 0, si, bi, &st))
				continue;
			*checks += st.checks;
			*down += !st.up;
		}
	}
}

int main(int argc, char **argv)
{
	size_t n = 1000;
	unsigned secs = 10;
	uint32_t interval = 1000;
	enum mode mode = MODE_TCP;
	bool use_floor = false, close_each = false, json = false;
	int opt;
	enum tcp_variant tv = TV_EPOLL;
	uint32_t warmup = 0, ramp = 1;
	bool shuffle = false;
	while ((opt = getopt(argc, argv, "n:t:i:m:FcjV:w:r:R")) != -1) {
		switch (opt) {
		case 'n':
			n = strtoul(optarg, NULL, 10);
			break;
		case 't':
			secs = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'i':
			interval = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'm':
			for (mode = 0; mode <= MODE_REFUSED && strcmp(optarg, mode_name[mode]); mode++)
				;
			if (mode > MODE_REFUSED)
				goto usage;
			break;
		case 'F':
			use_floor = true;
			break;
		case 'c':
			close_each = true;
			break;
		case 'j':
			json = true;
			break;
		case 'V':
			tv = (enum tcp_variant)atoi(optarg);
			break;
		case 'w':
			warmup = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'r':
			ramp = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'R':
			shuffle = true;
			break;
		default:
			goto usage;
		}
	}
	if (n == 0 || n > 254 * 65536 || interval == 0 || secs == 0 || ramp == 0 || ramp > 100)
		goto usage;
	signal(SIGPIPE, SIG_IGN);
	/* In refused mode every backend goes DOWN: no line per backend. */
	log_set_level(LOG_LEVEL_WARN);
	/* Up to one socket per backend, plus the listener's side of each. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 2 * n + 64)
			fprintf(stderr, "warning: RLIMIT_NOFILE %llu may be too low for %zu backends\n",
			        (unsigned long long)rl.rlim_cur, n);
	}

	struct listener l;
	memset(&l, 0, sizeof(l));
	if (listener_start(&l, mode, close_each) == -1)
		return 1;
	struct config *cfg = NULL;
	struct health *h = NULL;
	struct bstate *states = NULL;
	struct floor fl;
	memset(&fl, 0, sizeof(fl));
	if (use_floor) {
		fl.mode = mode == MODE_REFUSED ? MODE_TCP : mode;
		fl.reconnect = close_each;
		fl.tv = tv;
		fl.order = shuffle ? calloc(n, sizeof(*fl.order)) : NULL;
		fl.n = n;
		fl.interval = interval;
		fl.port = l.port;
		if (floor_start(&fl) == -1) {
			fprintf(stderr, "floor: %s\n", strerror(errno));
			return 1;
		}
	} else {
		cfg = bench_config(n, l.port, mode, interval);
		char err[256];
		states = bstate_new();
		/* -r: the backends join in steps, one interval and a half apart
		 * (the first services, then more): the listener serves every
		 * backend's TLS handshakes on this machine's cores, and 2,000 at
		 * once with a 1 s timeout never all finish in time. Backends
		 * already probed keep their connections across the steps. */
		struct config part[100];
		struct cfg_zone pz[100];
		for (uint32_t k = 0; k < ramp; k++) {
			part[k] = *cfg;
			pz[k] = cfg->zones[0];
			pz[k].nservices = (cfg->zones[0].nservices * (k + 1) + ramp - 1) / ramp;
			part[k].zones = &pz[k];
			/* The last step is cfg itself, which outlives this block. */
			const struct config *step = k + 1 == ramp ? cfg : &part[k];
			if (k == 0)
				h = health_start(step, states, NULL, NULL, err, sizeof(err));
			else if (health_reconfigure(h, step) != 0)
				h = NULL;
			if (!h) {
				fprintf(stderr, "health_start: %s\n", err);
				return 1;
			}
			if (k + 1 < ramp)
				sleep_ms(interval + interval / 2);
		}
	}
	long tid = watcher_tid();
	/* First probes are spread over the first interval; connections that
	 * are kept are opened then. 2,000 full TLS handshakes take longer
	 * than one interval on two cores (-w: a longer warm-up). */
	sleep_ms(warmup ? warmup : interval + interval / 2 + 500);

	uint64_t c0 = 0, c1 = 0, f0 = 0, f1 = 0;
	size_t down = 0;
	uint64_t a0 = atomic_load(&l.accepted), r0 = atomic_load(&fl.resumed);
	uint64_t hs0 = atomic_load(&fl.handshakes);
	uint64_t p0 = process_cpu_ns(), w0 = task_cpu_ns(tid), t0 = now_ms();
	if (h)
		totals(h, cfg, &c0, &down);
	else
		c0 = atomic_load(&fl.checks), f0 = atomic_load(&fl.failures);
	sleep_ms((uint64_t)secs * 1000);
	uint64_t p1 = process_cpu_ns(), w1 = task_cpu_ns(tid), t1 = now_ms();
	if (h)
		totals(h, cfg, &c1, &down);
	else
		c1 = atomic_load(&fl.checks), f1 = atomic_load(&fl.failures);
	uint64_t a1 = atomic_load(&l.accepted), r1 = atomic_load(&fl.resumed);
	uint64_t hs1 = atomic_load(&fl.handshakes);
	long rss = rss_kb();

	double wall = (double)(t1 - t0) / 1000.0;
	double checks = (double)(c1 - c0);
	double core = (double)(w1 - w0) / 1e7 / wall;
	double us = checks > 0 ? (double)(w1 - w0) / 1e3 / checks : 0.0;
	double proc = (double)(p1 - p0) / 1e7 / wall;
	const char *who = use_floor ? "floor" : "dnsd";
	char variant[32];
	snprintf(variant, sizeof(variant), "%s%s", mode_name[mode],
	         close_each ? (mode == MODE_TCP ? "" : "-reconnect") : "");
	if (json) {
		printf("{\"who\":\"%s\",\"mode\":\"%s\",\"backends\":%zu,\"interval_ms\":%u,"
		       "\"secs\":%.2f,\"checks_per_s\":%.1f,\"expected_per_s\":%.1f,\"core_pct\":%.2f,"
		       "\"us_per_check\":%.2f,\"process_core_pct\":%.2f,\"connects_per_s\":%.1f,"
		       "\"down\":%zu,\"failures\":%llu,\"resumed_per_s\":%.1f,\"handshakes_per_s\":%.1f,"
		       "\"rss_kb\":%ld}\n",
		       who, variant, n, interval, wall, checks / wall, (double)n * 1000.0 / interval,
		       core, us, proc, (double)(a1 - a0) / wall, down,
		       (unsigned long long)(f1 - f0), (double)(r1 - r0) / wall,
		       (double)(hs1 - hs0) / wall, rss);
	} else {
		printf("%s: %zu backends, %s checks every %u ms, %.1f s: %.0f checks/s (of %.0f), "
		       "%.0f connects/s, %zu down, %llu failed\n", who, n, variant, interval, wall,
		       checks / wall, (double)n * 1000.0 / interval, (double)(a1 - a0) / wall, down,
		       (unsigned long long)(f1 - f0));
		printf("  checking thread: %5.2f%% of one core, %.2f us/check\n", core, us);
		printf("  whole process:   %5.2f%% of one core (checks + listener), RSS %ld kB\n",
		       proc, rss);
		if (h) {
			/* The last result of every backend, by code. */
			int codes[8] = { 0 }, counts[8] = { 0 }, nc = 0;
			for (size_t si = 0; si < cfg->zones[0].nservices; si++)
				for (size_t bi = 0; bi < cfg->zones[0].services[si].nbackends; bi++) {
					struct health_state st;
					if (!health_get(h, 0, si, bi, &st))
						continue;
					int k = 0;
					while (k < nc && codes[k] != st.last_code)
						k++;
					if (k == nc && nc < 8)
						codes[nc++] = st.last_code;
					if (k < nc)
						counts[k]++;
				}
			printf("  last results:  ");
			for (int k = 0; k < nc; k++)
				printf(" %d x %d", counts[k], codes[k]);
			printf("\n");
		}
		if (use_floor && mode == MODE_HTTPS)
			printf("  TLS handshakes:  %.0f/s, %.0f/s resumed\n", (double)(hs1 - hs0) / wall,
			       (double)(r1 - r0) / wall);
	}
	if (h)
		health_stop(h);
	else
		floor_stop(&fl);
	listener_stop(&l);
	if (cfg)
		bench_config_free(cfg);
	bstate_free(states);
	return 0;
usage:
	fprintf(stderr, "usage: %s [-n backends] [-t seconds] [-i interval_ms] "
	                "[-m tcp|http|https|refused] [-F] [-c] [-j] [-V 0-3] [-w warmup_ms]\n",
	        argv[0]);
	return 2;
}

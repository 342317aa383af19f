/* test_health.c -- the health watcher against real fake backends (threads
 * listening on 127.0.0.1, plain or TLS through OpenSSL, and `openssl
 * s_server` for https when present). Builds struct config by hand:
 * config.c is not needed. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "health.h"
#include "util/log.h"
#include "tap.h"

extern char **environ;

/* ---- fake backends -------------------------------------------------------- */

enum srv_mode {
	SRV_ACCEPT,     /* accept and close: a TCP service */
	SRV_HTTP200,
	SRV_HTTP500,
	SRV_FLAP,       /* 200, 500, 200, ... one per connection */
	SRV_GARBAGE,    /* answers something that is not HTTP */
	SRV_HANG,       /* accepts, reads, never answers */
	SRV_RESET,      /* accepts and resets (SO_LINGER 0) */
	/* HTTP/1.1 keep-alive: 200 with a 3-byte body, as many requests per
	 * connection as the client sends (the ones below too; TLS if s->ctx) */
	SRV_KEEP,
	SRV_KEEP_DROP,  /* closes a connection on its second request, unanswered */
	SRV_KEEP_IDLE,  /* closes a connection idle for 20 ms after a response */
	SRV_CLOSE_EACH, /* closes after each response (no Connection: close) */
	SRV_KEEP_ODD,   /* keep-alive; a 300-byte header line, a 5000-byte body
	                 * in two writes 20 ms apart */
	SRV_CHUNKED,    /* keep-alive server, but a chunked body: not read through */
};

enum { HELD_MAX = 64 };

struct srv {
	enum srv_mode mode;
	int lfd, stopfd;
	uint16_t port;
	pthread_t thread;
	int held[HELD_MAX];
	size_t nheld;
	unsigned nconn;
	atomic_uint accepted;
	pthread_mutex_t mu;
	char request[1024];           /* the last request head, under mu */
	SSL_CTX *ctx;                 /* keep-alive modes: TLS when set */
	atomic_uint requests, handshakes, resumed;
};

/* ---- keep-alive servers (plain or TLS) ------------------------------------ */

/* A throw-away self-signed P-256 certificate. */
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
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"test", -1, -1, 0);
	X509_set_issuer_name(x, nm);
	if (!X509_sign(x, key, EVP_sha256()) || SSL_CTX_use_certificate(ctx, x) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, key) != 1)
		goto fail;
	X509_free(x);
	EVP_PKEY_free(key);
	return ctx;
fail:
	X509_free(x);
	EVP_PKEY_free(key);
	SSL_CTX_free(ctx);
	return NULL;
}

/* Waits up to ms for fd to be readable; false on timeout, or when a new
 * connection or the stop request is pending (they take over). */
static bool keep_wait(struct srv *s, int fd, SSL *ssl, int ms)
{
	if (ssl && SSL_pending(ssl))
		return true;
	struct pollfd pfd[3] = { { .fd = fd, .events = POLLIN },
		                 { .fd = s->lfd, .events = POLLIN },
		                 { .fd = s->stopfd, .events = POLLIN } };
	if (poll(pfd, 3, ms) <= 0 || pfd[1].revents || pfd[2].revents)
		return false;
	return pfd[0].revents != 0;
}

/* Serves one connection until the client closes it, the mode closes it,
 * or another connection or the stop request comes. */
static void keep_serve(struct srv *s, int fd)
{
	SSL *ssl = NULL;
	struct timeval tv = { .tv_sec = 1 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (s->ctx) {
		ssl = SSL_new(s->ctx);
		SSL_set_fd(ssl, fd);
		if (SSL_accept(ssl) != 1)
			goto out;
		atomic_fetch_add(&s->handshakes, 1);
		if (SSL_session_reused(ssl))
			atomic_fetch_add(&s->resumed, 1);
	}
	static const char ok200[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
	for (unsigned k = 0;; k++) {
		if (!keep_wait(s, fd, ssl, 2000))
			break;
		char buf[1024];
		size_t n = 0;
		while (n < sizeof(buf) - 1) {
			int r = ssl ? SSL_read(ssl, buf + n, (int)(sizeof(buf) - 1 - n))
			            : (int)recv(fd, buf + n, sizeof(buf) - 1 - n, 0);
			if (r <= 0)
				goto out;
			n += (size_t)r;
			buf[n] = 0;
			if (strstr(buf, "\r\n\r\n"))
				break;
		}
		pthread_mutex_lock(&s->mu);
		snprintf(s->request, sizeof(s->request), "%s", buf);
		pthread_mutex_unlock(&s->mu);
		if (s->mode == SRV_KEEP_DROP && k == 1)
			break;
		atomic_fetch_add(&s->requests, 1);
		char odd[8192];
		const char *resp = ok200;
		size_t first = strlen(ok200), total = first;
		if (s->mode == SRV_KEEP_ODD) {
			int hl = snprintf(odd, sizeof(odd), "HTTP/1.1 200 OK\r\nX-Long: %0300d\r\n"
			                  "Content-Length: 5000\r\n\r\n", 7);
			memset(odd + hl, 'b', 5000);
			resp = odd;
			total = (size_t)hl + 5000;
			first = (size_t)hl + 2000;
		} else if (s->mode == SRV_CHUNKED) {
			resp = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
			first = total = strlen(resp);
		}
		int w = ssl ? SSL_write(ssl, resp, (int)first)
		            : (int)send(fd, resp, first, MSG_NOSIGNAL);
		if (w == (int)first && total > first) {
			usleep(20000);
			w = ssl ? SSL_write(ssl, resp + first, (int)(total - first))
			        : (int)send(fd, resp + first, total - first, MSG_NOSIGNAL);
			first = total - first;
		}
		if (w != (int)first || s->mode == SRV_CLOSE_EACH)
			break;
		if (s->mode == SRV_KEEP_IDLE && !keep_wait(s, fd, ssl, 20))
			break;
	}
out:
	if (ssl) {
		SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	ERR_clear_error();
}

/* A socket bound to 127.0.0.1:port (0: any), not listening: connections
 * to it are refused, and no other process gets the port meanwhile (tests
 * may run in parallel). SO_REUSEPORT lets it share the port with a
 * listener, to hold the port while that listener closes. */
static int bind_port(uint16_t port, uint16_t *bound)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof(sin);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &sl) == -1) {
		close(fd);
		return -1;
	}
	*bound = ntohs(sin.sin_port);
	return fd;
}

enum { RESERVED_MAX = 8 };
static int reserved[RESERVED_MAX];
static size_t nreserved;

/* A port that refuses connections for the whole test. */
static uint16_t closed_port(void)
{
	uint16_t port = 0;
	int fd = bind_port(0, &port);
	if (fd == -1 || nreserved == RESERVED_MAX) {
		diag("closed_port: %s", strerror(errno));
		exit(2);
	}
	reserved[nreserved++] = fd;
	return port;
}

/* A free port for another process to bind (openssl s_server). */
static uint16_t free_port(void)
{
	uint16_t port = 0;
	int fd = bind_port(0, &port);
	if (fd != -1)
		close(fd);
	return port;
}

/* Reads the request head, up to 200 ms, and keeps a copy in s->request. */
static void read_request(struct srv *s, int fd)
{
	char buf[1024];
	size_t n = 0;
	while (n < sizeof(buf) - 1) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, 200) != 1)
			return;
		ssize_t r = recv(fd, buf + n, sizeof(buf) - 1 - n, 0);
		if (r <= 0)
			return;
		n += (size_t)r;
		buf[n] = 0;
		if (strstr(buf, "\r\n\r\n"))
			break;
	}
	pthread_mutex_lock(&s->mu);
	snprintf(s->request, sizeof(s->request), "%s", buf);
	pthread_mutex_unlock(&s->mu);
}

static void answer(int fd, const char *text)
{
	if (send(fd, text, strlen(text), MSG_NOSIGNAL) == -1)
		return;
}

static void *srv_main(void *arg)
{
	struct srv *s = arg;
	for (;;) {
		struct pollfd pfd[2] = { { .fd = s->lfd, .events = POLLIN },
			                 { .fd = s->stopfd, .events = POLLIN } };
		if (poll(pfd, 2, -1) == -1)
			continue;
		if (pfd[1].revents)
			break;
		int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd == -1)
			continue;
		atomic_fetch_add(&s->accepted, 1);
		unsigned k = s->nconn++;
		switch (s->mode) {
		case SRV_ACCEPT:
			break;
		case SRV_HTTP200:
			read_request(s, fd);
			answer(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
			break;
		case SRV_HTTP500:
			read_request(s, fd);
			answer(fd, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n");
			break;
		case SRV_FLAP:
			read_request(s, fd);
			answer(fd, k % 2 ? "HTTP/1.1 500 Oops\r\n\r\n" : "HTTP/1.1 200 OK\r\n\r\n");
			break;
		case SRV_GARBAGE:
			read_request(s, fd);
			answer(fd, "SSH-2.0-OpenSSH_9.2\r\n");
			break;
		case SRV_HANG:
			if (s->nheld == HELD_MAX)
				close(s->held[--s->nheld]);
			s->held[s->nheld++] = fd;
			continue;
		case SRV_RESET: {
			struct linger lg = { .l_onoff = 1, .l_linger = 0 };
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			break;
		}
		case SRV_KEEP:
		case SRV_KEEP_DROP:
		case SRV_KEEP_IDLE:
		case SRV_CLOSE_EACH:
		case SRV_KEEP_ODD:
		case SRV_CHUNKED:
			keep_serve(s, fd);
			break;
		}
		close(fd);
	}
	return NULL;
}

/* Serves on fd (from bind_port), or on a new port if fd is -1; over TLS
 * with ctx (keep-alive modes). */
static struct srv *srv_start_tls(enum srv_mode mode, int fd, SSL_CTX *ctx)
{
	struct srv *s = calloc(1, sizeof(*s));
	if (!s)
		exit(2);
	s->mode = mode;
	s->ctx = ctx;
	pthread_mutex_init(&s->mu, NULL);
	s->lfd = fd != -1 ? fd : bind_port(0, &s->port);
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	s->stopfd = eventfd(0, EFD_CLOEXEC);
	if (s->lfd == -1 || listen(s->lfd, 64) == -1 ||
	    getsockname(s->lfd, (struct sockaddr *)&sin, &sl) == -1 || s->stopfd == -1 ||
	    pthread_create(&s->thread, NULL, srv_main, s) != 0) {
		diag("fake backend: %s", strerror(errno));
		exit(2);
	}
	s->port = ntohs(sin.sin_port);
	return s;
}

static struct srv *srv_start(enum srv_mode mode, int fd)
{
	return srv_start_tls(mode, fd, NULL);
}

static void srv_stop(struct srv *s)
{
	uint64_t one = 1;
	if (write(s->stopfd, &one, sizeof(one)) == -1)
		diag("eventfd: %s", strerror(errno));
	pthread_join(s->thread, NULL);
	close(s->lfd);
	close(s->stopfd);
	for (size_t i = 0; i < s->nheld; i++)
		close(s->held[i]);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* ---- openssl s_server for https ------------------------------------------- */

static int run_quiet(char *const argv[], pid_t *pidp)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	int rc = posix_spawnp(pidp, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	return rc;
}

static bool can_connect(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bool okc = fd != -1 && connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	if (fd != -1)
		close(fd);
	return okc;
}

/* Starts `openssl s_server -www` with a fresh self-signed key on a free
 * port. Returns its pid, or -1 when openssl is not usable. */
static pid_t tls_start(char *dir, uint16_t *port)
{
	char key[128], crt[128], acc[64];
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(crt, sizeof(crt), "%s/cert.pem", dir);
	char *req[] = { "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
		        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", crt,
		        "-subj", "/CN=localhost", "-days", "2", NULL };
	pid_t pid;
	int st;
	if (run_quiet(req, &pid) != 0 || waitpid(pid, &st, 0) == -1 || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0)
		return -1;
	*port = free_port();
	snprintf(acc, sizeof(acc), "127.0.0.1:%u", *port);
	char *srv[] = { "openssl", "s_server", "-accept", acc, "-www", "-cert", crt, "-key", key,
		        "-quiet", NULL };
	if (run_quiet(srv, &pid) != 0)
		return -1;
	for (int i = 0; i < 300; i++) {
		if (can_connect(*port))
			return pid;
		usleep(10000);
	}
	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
	return -1;
}

/* ---- configs built by hand ------------------------------------------------ */

struct tb {
	const char *svc;              /* consecutive entries share a service */
	uint16_t port;
	enum cfg_check_type type;
	uint16_t expect;              /* 0: default 200-399 */
	uint32_t interval_ms, timeout_ms;
	const char *host;             /* http(s) Host; NULL: the address */
};

/* One zone "mesh." with the backends of tb[], all on 127.0.0.1. Checks:
 * interval 100 ms, timeout 50 ms, rise 2, fall 2 unless tb says otherwise
 * (http ones get 200/180 ms: a fake server thread on a loaded 2-core
 * machine may not answer within 50 ms, and the test must not flap).
 * Everything is malloc'd so that freeing it lets ASan catch a watcher
 * still looking at an old config. */
static struct config *tcfg_new(const struct tb *tb, size_t n)
{
	struct config *c = calloc(1, sizeof(*c));
	c->nzones = 1;
	c->zones = calloc(1, sizeof(*c->zones));
	struct cfg_zone *z = &c->zones[0];
	z->name = strdup("mesh.");
	memcpy(z->origin, "\4mesh", 6);
	z->originlen = 6;
	z->services = calloc(n, sizeof(*z->services));
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || strcmp(tb[i].svc, tb[i - 1].svc) != 0) {
			struct cfg_service *s = &z->services[z->nservices++];
			s->name = strdup(tb[i].svc);
			s->backends = calloc(n, sizeof(*s->backends));
			s->ports = calloc(1, sizeof(*s->ports));
			s->nports = 1;
			s->ports[0].name = strdup("http");
			s->ports[0].port = 80;
			s->ports[0].proto = IPPROTO_TCP;
		}
		struct cfg_service *s = &z->services[z->nservices - 1];
		struct cfg_backend *b = &s->backends[s->nbackends++];
		b->family = AF_INET;
		memcpy(b->addr, "\x7f\0\0\1", 4);
		b->port = tb[i].port;
		b->weight = 100;
		b->check = calloc(1, sizeof(*b->check));
		s->own_checks = true;
		b->check->type = tb[i].type;
		b->check->interval_ms = tb[i].interval_ms ? tb[i].interval_ms : 100;
		b->check->timeout_ms = tb[i].timeout_ms ? tb[i].timeout_ms : 50;
		b->check->rise = 2;
		b->check->fall = 2;
		b->check->path = strdup("/health");
		b->check->host = tb[i].host ? strdup(tb[i].host) : NULL;
		if (tb[i].expect) {
			b->check->expect[0] = tb[i].expect;
			b->check->nexpect = 1;
		}
	}
	return c;
}

static void tcfg_free(struct config *c)
{
	if (!c)
		return;
	for (size_t zi = 0; zi < c->nzones; zi++) {
		struct cfg_zone *z = &c->zones[zi];
		for (size_t si = 0; si < z->nservices; si++) {
			struct cfg_service *s = &z->services[si];
			for (size_t bi = 0; bi < s->nbackends; bi++) {
				free(s->backends[bi].check->path);
				free(s->backends[bi].check->host);
				free(s->backends[bi].check);
			}
			free(s->backends);
			free(s->ports[0].name);
			free(s->ports);
			free(s->name);
		}
		free(z->services);
		free(z->name);
	}
	free(c->zones);
	free(c);
}

/* ---- observing the watcher ------------------------------------------------ */

static pthread_mutex_t cb_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cb_cond = PTHREAD_COND_INITIALIZER;
static unsigned cb_calls;
static uint64_t cb_last_ms;

static void on_change(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&cb_mu);
	cb_calls++;
	cb_last_ms = health_now_ms();
	pthread_cond_broadcast(&cb_cond);
	pthread_mutex_unlock(&cb_mu);
}

static unsigned cb_count(void)
{
	pthread_mutex_lock(&cb_mu);
	unsigned n = cb_calls;
	pthread_mutex_unlock(&cb_mu);
	return n;
}

static struct health_state get(struct health *h, size_t si, size_t bi)
{
	struct health_state st;
	memset(&st, 0, sizeof(st));
	if (!health_get(h, 0, si, bi, &st))
		diag("health_get(0, %zu, %zu) out of range", si, bi);
	return st;
}

/* Waits until the backend is up (or down), polling. Returns the ms it took,
 * or -1 after limit_ms. */
static long wait_state(struct health *h, size_t si, size_t bi, bool up, uint64_t limit_ms)
{
	uint64_t t0 = health_now_ms();
	for (;;) {
		if (get(h, si, bi).up == up)
			return (long)(health_now_ms() - t0);
		if (health_now_ms() - t0 > limit_ms)
			return -1;
		usleep(5000);
	}
}

/* Waits until the backend's last result is code (and, if max_ms, took at
 * most that long): a stalled machine may have slipped in another result. */
static bool wait_code(struct health *h, size_t si, size_t bi, int32_t code, uint32_t max_ms)
{
	uint64_t t0 = health_now_ms();
	for (;;) {
		struct health_state st = get(h, si, bi);
		if (st.last_code == code && (!max_ms || st.last_ms <= max_ms))
			return true;
		if (health_now_ms() - t0 > 3000)
			return false;
		usleep(5000);
	}
}

/* Waits until backend (si, bi) changed to up (or down) after t0 and a
 * callback ran after that change (the watcher publishes the state first,
 * then calls back at the end of its loop iteration). Returns the ms from
 * t0 to that callback, or -1 after limit_ms. */
static long wait_callback(struct health *h, size_t si, size_t bi, bool up, uint64_t t0,
                          uint64_t limit_ms)
{
	for (;;) {
		struct health_state st = get(h, si, bi);
		pthread_mutex_lock(&cb_mu);
		uint64_t last = cb_last_ms;
		if (st.up == up && st.since_ms >= t0 && last >= st.since_ms) {
			pthread_mutex_unlock(&cb_mu);
			return (long)(last - t0);
		}
		if (health_now_ms() - t0 > limit_ms) {
			pthread_mutex_unlock(&cb_mu);
			return -1;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 5 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&cb_cond, &cb_mu, &ts);
		pthread_mutex_unlock(&cb_mu);
	}
}

/* The log goes to stderr: capture it to check the transition lines, then
 * repeat it as TAP comments (sanitizer reports included). */
static int log_capture_begin(FILE **tmp)
{
	*tmp = tmpfile();
	int saved = dup(2);
	if (!*tmp || saved == -1 || dup2(fileno(*tmp), 2) == -1)
		return -1;
	return saved;
}

static char *log_capture_end(FILE *tmp, int saved)
{
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	long len = ftell(tmp);
	char *text = calloc(1, len > 0 ? (size_t)len + 1 : 1);
	rewind(tmp);
	if (len > 0 && fread(text, 1, (size_t)len, tmp) != (size_t)len)
		text[0] = 0;
	fclose(tmp);
	for (char *line = text, *nl; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		if (!nl) {
			diag("log: %s", line);
			break;
		}
		diag("log: %.*s", (int)(nl - line), line);
	}
	return text;
}

/* ---- the test ------------------------------------------------------------- */

enum { S_TCP, S_HTTP, S_TLS, S_MISC };

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	FILE *logf;
	int saved_err = log_capture_begin(&logf);
	ok(saved_err != -1, "stderr captured");

	health_stop(NULL);
	ok(1, "health_stop(NULL) is a no-op");

	struct srv *tcp = srv_start(SRV_ACCEPT, -1);
	struct srv *h200 = srv_start(SRV_HTTP200, -1);
	struct srv *h500 = srv_start(SRV_HTTP500, -1);
	struct srv *flap = srv_start(SRV_FLAP, -1);
	struct srv *garbage = srv_start(SRV_GARBAGE, -1);
	struct srv *hang = srv_start(SRV_HANG, -1);
	struct srv *reset = srv_start(SRV_RESET, -1);
	struct srv *notls = srv_start(SRV_ACCEPT, -1);
	uint16_t closed = closed_port(), closed2 = closed_port();
	uint16_t tcp_port = tcp->port;

	char dir[] = "/tmp/test_health.XXXXXX";
	uint16_t tls_port = 0;
	pid_t tls_pid = mkdtemp(dir) ? tls_start(dir, &tls_port) : -1;
	if (tls_pid == -1)
		diag("openssl s_server not usable: skipping the positive https test");

	/* Indices below follow this table: service (si), backend (bi). */
	const struct tb tb1[] = {
		/* 0,0 */ { "tcp", tcp_port, CFG_CHECK_TCP, 0, 0, 0, NULL },
		/* 0,1 */ { "tcp", closed, CFG_CHECK_TCP, 0, 0, 0, NULL },
		/* 1,0 */ { "http", h200->port, CFG_CHECK_HTTP, 0, 200, 180, NULL },
		/* 1,1 */ { "http", h500->port, CFG_CHECK_HTTP, 0, 200, 180, NULL },
		/* 1,2 */ { "http", hang->port, CFG_CHECK_HTTP, 0, 0, 0, NULL },
		/* 1,3 */ { "http", reset->port, CFG_CHECK_HTTP, 0, 200, 180, NULL },
		/* 1,4 */ { "http", closed2, CFG_CHECK_HTTP, 0, 200, 180, NULL },
		/* 1,5 */ { "http", h500->port, CFG_CHECK_HTTP, 500, 200, 180, NULL },
		/* 1,6 */ { "http", flap->port, CFG_CHECK_HTTP, 0, 250, 250, NULL },
		/* 1,7 */ { "http", garbage->port, CFG_CHECK_HTTP, 0, 200, 180, NULL },
		/* 2,0 */ { "tls", notls->port, CFG_CHECK_HTTPS, 0, 200, 180, NULL },
		/* 2,1 */ { "tls", tls_port ? tls_port : closed, CFG_CHECK_HTTPS, 0, 300, 300, NULL },
		/* 2,2 */ { "tls", tls_port ? tls_port : closed, CFG_CHECK_HTTPS, 0, 300, 300,
		             "api.example" },
		/* 3,0 */ { "misc", closed, CFG_CHECK_NONE, 0, 0, 0, NULL },
	};
	struct config *cfg1 = tcfg_new(tb1, sizeof(tb1) / sizeof(tb1[0]));
	/* The flap backend alternates 200/500 per connection: a probe timing
	 * out on a stalled machine shifts the pattern and adds a failure, so
	 * it gets fall 3 and the longest timeout. */
	cfg1->zones[0].services[1].backends[6].check->fall = 3;
	char err[256] = "";
	uint64_t t_start = health_now_ms();
	struct bstate *states = bstate_new();
	struct health *h = health_start(cfg1, states, on_change, NULL, err, sizeof(err));
	if (!ok(h != NULL, "health_start (%s)", err))
		return done_testing();
	uint32_t sid_tcp = health_sid(h, 0, 0, 0), sid_closed = health_sid(h, 0, 0, 1);
	ok(sid_tcp && sid_closed && sid_tcp != sid_closed, "checked backends get distinct ids (%u, %u)",
	   sid_tcp, sid_closed);
	is_int(health_sid(h, 3, 0, 0), 0, "an unchecked backend has id 0");
	is_int(bstate_live(states), 13, "one live id per checked backend");

	bool all_up = true;
	for (size_t i = 0, si = 0, bi = 0; i < sizeof(tb1) / sizeof(tb1[0]); i++) {
		if (i && strcmp(tb1[i].svc, tb1[i - 1].svc) != 0) {
			si++;
			bi = 0;
		}
		all_up &= get(h, si, bi++).up;
	}
	ok(all_up, "every backend starts UP");
	struct health_state st;
	ok(!health_get(h, 1, 0, 0, &st) && !health_get(h, 0, 4, 0, &st) &&
	   !health_get(h, 0, 0, 2, &st) && !health_get(h, 0, 1, 10, &st),
	   "health_get out of range returns false");

	/* Everything settles within a few intervals; waits run in parallel. */
	long t;
	t = wait_state(h, 0, 1, false, 3000);
	ok(t >= 0, "tcp check of a closed port goes DOWN (%ld ms after start)", t);
	ok(wait_code(h, 0, 1, -ECONNREFUSED, 0), "  last_code is -ECONNREFUSED");
	ok(wait_state(h, 1, 1, false, 3000) >= 0, "http 500 goes DOWN");
	ok(wait_code(h, 1, 1, 500, 0), "  last_code is 500");
	ok(wait_state(h, 1, 2, false, 3000) >= 0, "http server that never answers goes DOWN");
	ok(wait_code(h, 1, 2, -ETIMEDOUT, 0), "  last_code is -ETIMEDOUT");
	ok(wait_code(h, 1, 2, -ETIMEDOUT, 50 + 100), "  and last_ms the timeout (50 ms; %u)",
	   get(h, 1, 2).last_ms);
	ok(get(h, 1, 2).last_ms >= 50, "  never before the timeout");
	ok(wait_state(h, 1, 3, false, 3000) >= 0, "http server that resets goes DOWN");
	st = get(h, 1, 3);
	ok(st.last_code < 0, "  last_code is an error (%d: %s)", st.last_code, strerror(-st.last_code));
	ok(wait_state(h, 1, 4, false, 3000) >= 0, "http check of a closed port goes DOWN");
	ok(wait_state(h, 1, 7, false, 3000) >= 0, "a server that does not speak HTTP goes DOWN");
	ok(wait_code(h, 1, 7, -EPROTO, 0), "  last_code is -EPROTO");
	ok(wait_state(h, 2, 0, false, 3000) >= 0, "https against a plain TCP server goes DOWN");
	st = get(h, 2, 0);
	diag("  https vs plain TCP: last_code %d (%s)", st.last_code, strerror(-st.last_code));
	if (tls_pid != -1) {
		/* Give it time to fail if it were going to. */
		for (int i = 0; i < 200 && get(h, 2, 1).checks < 3; i++)
			usleep(10000);
		st = get(h, 2, 1);
		ok(st.up && st.checks >= 3 && st.last_code == 200,
		   "https against openssl s_server (self-signed) stays UP (checks %llu, last %d)",
		   (unsigned long long)st.checks, st.last_code);
		for (int i = 0; i < 200 && get(h, 2, 2).checks < 2; i++)
			usleep(10000);
		st = get(h, 2, 2);
		ok(st.up && st.checks >= 2 && st.last_code == 200,
		   "https with a Host name (connect-to the address) is UP (checks %llu, last %d)",
		   (unsigned long long)st.checks, st.last_code);
	}

	/* By now every other probe has run several times. */
	while (health_now_ms() - t_start < 1000)
		usleep(10000);
	st = get(h, 0, 0);
	ok(st.up && st.checks >= 3 && st.last_code == 0 && st.transitions == 0,
	   "tcp check of a listener is UP (checks %llu, last_code %d)",
	   (unsigned long long)st.checks, st.last_code);
	st = get(h, 1, 0);
	ok(st.up && st.checks >= 2 && st.last_code == 200 && st.transitions == 0,
	   "http 200 is UP (checks %llu, last_code %d, last %u ms)", (unsigned long long)st.checks,
	   st.last_code, st.last_ms);
	pthread_mutex_lock(&h200->mu);
	is_str(h200->request,
	       "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: meshdns-health\r\n\r\n",
	       "http check request on the wire (HTTP/1.1: the connection may persist)");
	ok(atomic_load(&h200->accepted) >= get(h, 1, 0).checks,
	   "a server answering Connection: close gets a connection per check (%u for %llu)",
	   atomic_load(&h200->accepted), (unsigned long long)get(h, 1, 0).checks);
	pthread_mutex_unlock(&h200->mu);
	st = get(h, 1, 5);
	ok(st.up && st.last_code == 500 && st.transitions == 0, "http 500 with expect [500] is UP");
	for (int i = 0; i < 300 && get(h, 1, 6).checks < 6; i++)
		usleep(10000);
	st = get(h, 1, 6);
	ok(st.up && st.transitions == 0 && st.checks >= 6,
	   "hysteresis: alternating 200/500 never flips with rise 2 / fall 3 (checks %llu)",
	   (unsigned long long)st.checks);
	st = get(h, 3, 0);
	ok(st.up && st.checks == 0, "a `none` backend is always UP and never probed");
	st = get(h, 0, 1);
	ok(!st.up && st.transitions == 1 && st.since_ms > t_start && st.since_ms <= health_now_ms(),
	   "a DOWN backend: one transition, since_ms set");
	/* Tolerant: the reset server is counted as hang if the RST races. */
	ok(atomic_load(&hang->accepted) >= 2 && atomic_load(&reset->accepted) >= 2,
	   "fake backends saw the probes");

	/* Close the listener of backend (0,0): DOWN after fall (2) failures.
	 * Expected ~1-2 intervals (100 ms +-10%); bound with slack for a
	 * loaded machine. */
	uint64_t checks0 = get(h, 0, 0).checks;
	uint16_t again;
	int hold = bind_port(tcp_port, &again);
	ok(hold != -1, "the listener's port is held while it is closed");
	uint64_t t0 = health_now_ms();
	srv_stop(tcp);
	t = wait_callback(h, 0, 0, false, t0, 3000);
	ok(t >= 0 && t < 400, "closing the listener: DOWN reported by the callback after %ld ms", t);
	st = get(h, 0, 0);
	is_int(st.last_code, -ECONNREFUSED, "  last_code is -ECONNREFUSED");
	is_int(st.transitions, 1, "  transitions 1");
	ok(st.checks >= checks0 + 2, "  checks moved (%llu -> %llu)", (unsigned long long)checks0,
	   (unsigned long long)st.checks);

	t0 = health_now_ms();
	tcp = srv_start(SRV_ACCEPT, hold);
	t = wait_callback(h, 0, 0, true, t0, 3000);
	ok(t >= 0 && t < 600, "reopening it: UP after rise (2) successes, %ld ms", t);
	st = get(h, 0, 0);
	is_int(st.transitions, 2, "  transitions 2");
	ok(st.since_ms >= t0, "  since_ms updated");

	/* Reconfigure: a new backend first in "tcp" (indices shift), (0,0) and
	 * the closed port unchanged, the 500 one with a new interval (so a new
	 * check), the other http ones dropped. */
	uint16_t closed3 = closed_port();
	const struct tb tb2[] = {
		/* 0,0 */ { "tcp", closed3, CFG_CHECK_TCP, 0, 0, 0, NULL }, /* new */
		/* 0,1 */ { "tcp", tcp_port, CFG_CHECK_TCP, 0, 0, 0, NULL }, /* kept, up */
		/* 0,2 */ { "tcp", closed, CFG_CHECK_TCP, 0, 0, 0, NULL }, /* kept, down */
		/* 1,0 */ { "http", h500->port, CFG_CHECK_HTTP, 0, 220, 180, NULL }, /* changed */
		/* 1,1 */ { "http", h200->port, CFG_CHECK_HTTP, 0, 200, 180, NULL }, /* kept */
	};
	struct health_state kept_up = get(h, 0, 0), kept_down = get(h, 0, 1);
	struct health_state kept_200 = get(h, 1, 0);
	struct config *cfg2 = tcfg_new(tb2, sizeof(tb2) / sizeof(tb2[0]));
	/* Changes queued so far: the closed backends went DOWN, the tcp one
	 * down and up (one entry per backend, its latest state). */
	struct health_change chg[64];
	size_t nchg = health_take_changes(h, chg, 64);
	bool closed_down = false, tcp_up = false;
	unsigned tcp_entries = 0;
	for (size_t i = 0; i < nchg; i++) {
		closed_down |= chg[i].sid == sid_closed && !chg[i].up;
		if (chg[i].sid == sid_tcp) {
			tcp_entries++;
			tcp_up = chg[i].up;
		}
	}
	ok(closed_down, "health_take_changes: the closed backend's DOWN is queued");
	ok(tcp_up, "health_take_changes: the tcp backend's latest state (UP) is queued (%u entries)",
	   tcp_entries);
	is_int(health_take_changes(h, chg, 64), 0, "taken changes are gone");
	is_int(health_reconfigure(h, cfg2), 0, "health_reconfigure");
	ok(health_sid(h, 0, 0, 1) == sid_tcp && health_sid(h, 0, 0, 2) == sid_closed,
	   "kept backends keep their ids across the reconfiguration");
	ok(health_sid(h, 0, 0, 0) && health_sid(h, 0, 0, 0) != sid_tcp &&
	   health_sid(h, 0, 0, 0) != sid_closed, "a new backend gets a new id");
	is_int(bstate_live(states), 5, "ids of dropped backends are released");
	tcfg_free(cfg1);
	cfg1 = NULL;
	st = get(h, 0, 1);
	ok(st.up && st.transitions == kept_up.transitions && st.checks >= kept_up.checks &&
	   st.since_ms == kept_up.since_ms, "an unchanged UP backend keeps its state and counters");
	st = get(h, 0, 2);
	ok(!st.up && st.transitions == 1 && st.checks >= kept_down.checks,
	   "an unchanged DOWN backend stays DOWN");
	st = get(h, 1, 1);
	ok(st.up && st.checks >= kept_200.checks, "the http 200 backend keeps its counters");
	/* Both may have run their first probe already (a random point of the
	 * first interval), not two. */
	st = get(h, 0, 0);
	ok(st.up && st.checks <= 1 && st.transitions == 0, "a new backend starts UP");
	st = get(h, 1, 0);
	ok(st.up && st.checks <= 1 && st.transitions == 0,
	   "a backend whose check settings changed starts afresh (UP)");
	ok(!health_get(h, 2, 0, 0, &st) && !health_get(h, 0, 1, 5, &st),
	   "health_get follows the new config's shape");
	ok(wait_state(h, 0, 0, false, 3000) >= 0, "the new backend on a closed port goes DOWN");
	ok(wait_state(h, 1, 0, false, 3000) >= 0, "the changed 500 backend goes DOWN again");
	usleep(300000);
	st = get(h, 0, 1);
	ok(st.up && st.transitions == kept_up.transitions && st.checks > kept_up.checks,
	   "the kept backend is still probed after the switch");

	unsigned calls = cb_count();
	ok(calls >= 3, "the callback ran (%u calls)", calls);

	/* Probes in flight survive reconfigurations: a backend that accepts
	 * and never answers (interval 100 ms, timeout 300 ms, fall 2) must go
	 * DOWN while the config is switched every 50 ms, each switch shorter
	 * than one probe. Before, every switch cancelled the probe in flight
	 * and the backend stayed UP forever. */
	const struct tb tb3[] = { { "slow", hang->port, CFG_CHECK_HTTP, 0, 100, 300, NULL },
		                  { "slow", closed, CFG_CHECK_TCP, 0, 0, 0, NULL } };
	struct config *c3[2] = { tcfg_new(tb3, 2), tcfg_new(tb3, 2) };
	is_int(health_reconfigure(h, c3[0]), 0, "switch to the slow backend");
	tcfg_free(cfg2);
	cfg2 = NULL;
	uint32_t sid_slow = health_sid(h, 0, 0, 0);
	uint64_t t3 = health_now_ms();
	int switches = 0;
	bool down = false;
	while (health_now_ms() - t3 < 4000 && !down) {
		usleep(50000);
		/* Every switch goes to a fresh copy: the old one is then free. */
		int k = ++switches % 2;
		tcfg_free(c3[k]);
		c3[k] = tcfg_new(tb3, 2);
		if (health_reconfigure(h, c3[k]) != 0)
			break;
		down = !get(h, 0, 0).up;
	}
	ok(down, "a probe in flight completes across reconfigurations: DOWN after %llu ms and %d "
	   "switches", (unsigned long long)(health_now_ms() - t3), switches);
	ok(health_sid(h, 0, 0, 0) == sid_slow, "  and the backend kept its id");

	/* Flap damping: a backend whose every probe flips it (200/500 in
	 * turn, rise 1, fall 1) is held DOWN after more than 3 transitions,
	 * and stays DOWN while held though its probes go on flipping. */
	const struct tb tb4[] = { { "flappy", flap->port, CFG_CHECK_HTTP, 0, 60, 50, NULL } };
	struct config *c4 = tcfg_new(tb4, 1);
	struct cfg_check *ck4 = c4->zones[0].services[0].backends[0].check;
	ck4->rise = ck4->fall = 1;
	ck4->flap_limit = 3;
	ck4->flap_window_ms = 60000;
	ck4->flap_hold_ms = 3000;
	is_int(health_reconfigure(h, c4), 0, "switch to the flapping backend");
	health_take_changes(h, chg, 64);
	uint64_t t4 = health_now_ms();
	while (health_now_ms() - t4 < 3000 && get(h, 0, 0).transitions < 4)
		usleep(20000);
	st = get(h, 0, 0);
	ok(st.transitions >= 4 && !st.up, "flapping: held DOWN after %llu transitions",
	   (unsigned long long)st.transitions);
	uint64_t tr = st.transitions;
	bool stayed_down = true;
	for (int i = 0; i < 20; i++) {
		usleep(30000);
		stayed_down &= !get(h, 0, 0).up;
	}
	st = get(h, 0, 0);
	ok(stayed_down && st.transitions > tr, "  stays DOWN while its probes flip on (%llu -> %llu)",
	   (unsigned long long)tr, (unsigned long long)st.transitions);
	size_t served = health_take_changes(h, chg, 64);
	ok(served <= 2, "  served changes bounded: %zu queued for %llu transitions", served,
	   (unsigned long long)st.transitions);

	/* Kept connections (issue 16): http and https checks reuse their
	 * connection; a server closing it (idle, or as we send) never fails a
	 * check; a reconnect resumes the TLS session; a dead backend is still
	 * seen within interval x fall + timeout. rise 1 / fall 1 on the
	 * closing servers: one failed check would take them DOWN. */
	SSL_CTX *sctx = tls_server_ctx();
	ok(sctx != NULL, "a TLS server context (self-signed P-256)");
	struct srv *keep = srv_start(SRV_KEEP, -1);
	struct srv *kdrop = srv_start(SRV_KEEP_DROP, -1);
	struct srv *kidle = srv_start(SRV_KEEP_IDLE, -1);
	struct srv *tkeep = srv_start_tls(SRV_KEEP, -1, sctx);
	struct srv *tclose = srv_start_tls(SRV_CLOSE_EACH, -1, sctx);
	struct srv *tdrop = srv_start_tls(SRV_KEEP_DROP, -1, sctx);
	struct srv *kodd = srv_start(SRV_KEEP_ODD, -1);
	struct srv *kchunk = srv_start(SRV_CHUNKED, -1);
	const struct tb tb5[] = {
		/* 0,0 */ { "keep", keep->port, CFG_CHECK_HTTP, 0, 100, 180, NULL },
		/* 0,1 */ { "keep", kdrop->port, CFG_CHECK_HTTP, 0, 100, 180, NULL },
		/* 0,2 */ { "keep", kidle->port, CFG_CHECK_HTTP, 0, 100, 180, NULL },
		/* 1,0 */ { "tkeep", tkeep->port, CFG_CHECK_HTTPS, 0, 100, 300, NULL },
		/* 1,1 */ { "tkeep", tclose->port, CFG_CHECK_HTTPS, 0, 100, 300, "api.example" },
		/* 1,2 */ { "tkeep", tdrop->port, CFG_CHECK_HTTPS, 0, 100, 300, NULL },
		/* 2,0 */ { "odd", kodd->port, CFG_CHECK_HTTP, 0, 100, 180, NULL },
		/* 2,1 */ { "odd", kchunk->port, CFG_CHECK_HTTP, 0, 100, 180, NULL },
	};
	struct config *c5 = tcfg_new(tb5, sizeof(tb5) / sizeof(tb5[0]));
	struct cfg_service *s5 = c5->zones[0].services;
	s5[0].backends[1].check->rise = s5[0].backends[1].check->fall = 1;
	s5[0].backends[2].check->rise = s5[0].backends[2].check->fall = 1;
	s5[1].backends[1].check->rise = s5[1].backends[1].check->fall = 1;
	s5[1].backends[2].check->rise = s5[1].backends[2].check->fall = 1;
	is_int(health_reconfigure(h, c5), 0, "switch to the keep-alive backends");
	for (int i = 0; i < 400; i++) {
		bool enough = true;
		for (size_t si = 0; si < 2; si++)
			for (size_t bi = 0; bi < 3; bi++)
				enough &= get(h, si, bi).checks >= 10;
		enough &= get(h, 2, 0).checks >= 10 && get(h, 2, 1).checks >= 10;
		if (enough)
			break;
		usleep(10000);
	}
	st = get(h, 0, 0);
	ok(st.up && st.transitions == 0 && st.checks >= 10 && atomic_load(&keep->accepted) <= 2 &&
	   atomic_load(&keep->requests) >= 10,
	   "http keep-alive: %u requests on %u connections for %llu checks",
	   atomic_load(&keep->requests), atomic_load(&keep->accepted),
	   (unsigned long long)st.checks);
	st = get(h, 0, 1);
	ok(st.up && st.transitions == 0 && st.checks >= 10 &&
	   atomic_load(&kdrop->accepted) >= st.checks / 2,
	   "http: a kept connection closed as the request goes out is retried at once on a new "
	   "one, never a failure (fall 1; %llu checks, %u connections)",
	   (unsigned long long)st.checks, atomic_load(&kdrop->accepted));
	st = get(h, 0, 2);
	ok(st.up && st.transitions == 0 && st.checks >= 10 &&
	   atomic_load(&kidle->accepted) + 1 >= st.checks,
	   "http: a kept connection the server closes while idle is dropped, not a failure "
	   "(fall 1; %llu checks, %u connections)", (unsigned long long)st.checks,
	   atomic_load(&kidle->accepted));
	st = get(h, 1, 0);
	ok(st.up && st.transitions == 0 && st.checks >= 10 && atomic_load(&tkeep->handshakes) <= 2 &&
	   atomic_load(&tkeep->requests) >= 10,
	   "https keep-alive: %u requests over %u TLS handshakes for %llu checks",
	   atomic_load(&tkeep->requests), atomic_load(&tkeep->handshakes),
	   (unsigned long long)st.checks);
	st = get(h, 1, 1);
	unsigned hs = atomic_load(&tclose->handshakes), res = atomic_load(&tclose->resumed);
	ok(st.up && st.transitions == 0 && st.checks >= 10 && hs >= 10 && res + 2 >= hs,
	   "https reconnecting every check resumes the TLS session: %u of %u handshakes resumed",
	   res, hs);
	pthread_mutex_lock(&tclose->mu);
	ok(strstr(tclose->request, "Host: api.example\r\n") != NULL,
	   "  the request carries the configured Host");
	pthread_mutex_unlock(&tclose->mu);
	st = get(h, 1, 2);
	ok(st.up && st.transitions == 0 && st.checks >= 10 &&
	   atomic_load(&tdrop->handshakes) >= st.checks / 2,
	   "https: a kept connection closed as the request goes out is retried (fall 1; %llu "
	   "checks, %u handshakes, %u resumed)", (unsigned long long)st.checks,
	   atomic_load(&tdrop->handshakes), atomic_load(&tdrop->resumed));

	st = get(h, 2, 0);
	ok(st.up && st.transitions == 0 && st.checks >= 10 && atomic_load(&kodd->accepted) <= 2,
	   "http: a 300-byte header line and a 5000-byte body in two pieces are read through "
	   "and the connection kept (%u connections for %llu checks)",
	   atomic_load(&kodd->accepted), (unsigned long long)st.checks);
	st = get(h, 2, 1);
	ok(st.up && st.transitions == 0 && st.checks >= 10 &&
	   atomic_load(&kchunk->accepted) + 1 >= st.checks,
	   "http: a chunked response decides by its status and closes the connection (%u "
	   "connections for %llu checks)", atomic_load(&kchunk->accepted),
	   (unsigned long long)st.checks);

	/* The kept-alive backend dies: its connection closes, the next probe
	 * reconnects and is refused. interval 100 ms x fall 2 + timeout 180. */
	checks0 = get(h, 0, 0).checks;
	hold = bind_port(keep->port, &again);
	ok(hold != -1, "the keep-alive listener's port is held while it is closed");
	t0 = health_now_ms();
	srv_stop(keep);
	t = wait_callback(h, 0, 0, false, t0, 3000);
	ok(t >= 0 && t < 100 * 2 + 180 + 200,
	   "a kept-alive backend that dies goes DOWN after %ld ms (bound 380 ms + 200 slack)", t);
	st = get(h, 0, 0);
	is_int(st.last_code, -ECONNREFUSED, "  last_code is -ECONNREFUSED");
	close(hold);

	/* tcp checks reuse one socket per backend (connect, then
	 * connect(AF_UNSPEC)): a connect that times out (SYNs dropped by a
	 * listener whose accept queue is full) is aborted and the same socket
	 * connects again once the listener accepts. */
	uint16_t bh_port;
	int bh = bind_port(0, &bh_port);
	int filler = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in bsin = { .sin_family = AF_INET, .sin_port = htons(bh_port) };
	bsin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok(bh != -1 && listen(bh, 0) == 0 && filler != -1 &&
	   connect(filler, (struct sockaddr *)&bsin, sizeof(bsin)) == 0,
	   "a listener with a full accept queue (SYNs dropped)");
	const struct tb tb6[] = { { "blackhole", bh_port, CFG_CHECK_TCP, 0, 100, 50, NULL } };
	struct config *c6 = tcfg_new(tb6, 1);
	is_int(health_reconfigure(h, c6), 0, "switch to it");
	ok(wait_state(h, 0, 0, false, 3000) >= 0, "tcp check whose SYNs are dropped goes DOWN");
	ok(wait_code(h, 0, 0, -ETIMEDOUT, 0), "  last_code is -ETIMEDOUT");
	t0 = health_now_ms();
	struct srv *bhs = srv_start(SRV_ACCEPT, bh);
	t = wait_state(h, 0, 0, true, 3000);
	ok(t >= 0, "  and UP again %ld ms after the listener accepts (the socket connects again)", t);
	uint64_t c6a = get(h, 0, 0).checks;
	unsigned acc6 = atomic_load(&bhs->accepted);
	usleep(500000);
	st = get(h, 0, 0);
	ok(st.up && st.checks >= c6a + 3 && atomic_load(&bhs->accepted) - acc6 + 1 >= st.checks - c6a,
	   "  every tcp check is a connection the listener accepts (%llu checks, %u accepts)",
	   (unsigned long long)(st.checks - c6a), atomic_load(&bhs->accepted) - acc6);
	close(filler);

	/* Stop with probes in flight (the hang server holds connections): it
	 * must not wait for them to time out. */
	uint64_t stop0 = health_now_ms();
	health_stop(h);
	uint64_t stop_ms = health_now_ms() - stop0;
	ok(stop_ms < 1000, "health_stop with probes in flight returns at once (%llu ms)",
	   (unsigned long long)stop_ms);
	bstate_free(states);

	char *log = log_capture_end(logf, saved_err);
	char want[256];
	snprintf(want, sizeof(want),
	         "backend 127.0.0.1:%u of tcp.mesh is DOWN (2 failures; last: connect: Connection "
	         "refused)", tcp_port);
	ok(strstr(log, want) != NULL, "log: '%s'", want);
	snprintf(want, sizeof(want), "backend 127.0.0.1:%u of tcp.mesh is UP (2 successes)", tcp_port);
	ok(strstr(log, want) != NULL, "log: '%s'", want);
	snprintf(want, sizeof(want), "backend 127.0.0.1:%u of http.mesh is DOWN (2 failures; last: "
	         "timeout after 50 ms)", hang->port);
	ok(strstr(log, want) != NULL, "log: '%s'", want);
	snprintf(want, sizeof(want), "backend 127.0.0.1:%u of http.mesh is DOWN (2 failures; last: "
	         "http: status 500)", h500->port);
	ok(strstr(log, want) != NULL, "log: '%s'", want);
	free(log);

	tcfg_free(c3[0]);
	tcfg_free(c3[1]);
	tcfg_free(c4);
	tcfg_free(c5);
	tcfg_free(c6);
	srv_stop(bhs);
	srv_stop(kdrop);
	srv_stop(kidle);
	srv_stop(tkeep);
	srv_stop(tclose);
	srv_stop(tdrop);
	srv_stop(kodd);
	srv_stop(kchunk);
	SSL_CTX_free(sctx);
	srv_stop(tcp);
	srv_stop(h200);
	srv_stop(h500);
	srv_stop(flap);
	srv_stop(garbage);
	srv_stop(hang);
	srv_stop(reset);
	srv_stop(notls);
	if (tls_pid != -1) {
		int ws;
		kill(tls_pid, SIGTERM);
		waitpid(tls_pid, &ws, 0);
	}
	char path[128];
	snprintf(path, sizeof(path), "%s/key.pem", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/cert.pem", dir);
	unlink(path);
	rmdir(dir);
	for (size_t i = 0; i < nreserved; i++)
		close(reserved[i]);
	return done_testing();
}

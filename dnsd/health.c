/* health.c -- the health watcher: one thread and one epoll loop probing every
 * checked backend (tcp connect, http and https GET on kept-alive connections,
 * TLS through OpenSSL on the same loop), with rise/fall hysteresis. */
#include "health.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "util/addr.h"
#include "bstate.h"
#include "util/clock.h"
#include "util/hash.h"
#include "util/itab.h"
#include "util/log.h"

/* Scheduling: every checked backend owns one preallocated probe, kept in
 * a timer wheel by the start of its next probe. Timer wakeups fall on a
 * grid of TICK_MS (probes due within one tick share a wakeup, so there are
 * at most 1000 / TICK_MS timer wakeups a second however many backends
 * there are); the wheel has one slot per tick, WHEEL_SLOTS of them, each
 * a list of the probes due in it (a start more than a turn away waits in
 * its slot for its turn). Probe starts are interval_ms apart +-10% (the
 * first at a random point of the first interval) so thousands of backends
 * do not fire in lockstep. A probe's next start is drawn when it starts,
 * and the probe goes into its slot then, before any I/O: adding is one
 * write to a slot head, in a page used by every probe of that tick,
 * rather than a heap sift through pages of its own (every syscall flushes
 * the TLB on the bench VM, and each page a check touches after one is
 * walked again). A probe still in flight when its next start comes stays
 * out of the wheel (start_due) and goes back, due at once, when it ends.
 * Deadlines of probes in flight are in FIFOs, one per timeout value (in a
 * FIFO they come in start order, so in order): a push at the tail when a
 * probe waits for the network, and at its end a mark on that entry, which
 * is dropped when it reaches the head. A wakeup costs O(1) per due probe,
 * per timeout value and per tick passed, never a scan of all backends.
 *
 * Cost: a check should cost little more than the kernel's work for it
 * (tests/bench/bench_health.c measures both). A tcp check keeps one socket
 * per backend: connect, a second connect() that reports the result at once
 * when the handshake is already over (always on loopback, where the peer's
 * side runs inside our first call), else one EPOLLONESHOT event; then
 * connect(AF_UNSPEC), which resets the connection (a RST, no TIME_WAIT)
 * and leaves the socket ready for the next probe. That saves socket(),
 * close(), SO_LINGER and the epoll registration per check: 31 -> 22 us on
 * the bench VM's loopback. http and https checks keep their
 * connection open between probes (HTTP/1.1 keep-alive): a check is one
 * send and one recv (one TLS record each way for https) on a descriptor
 * that stays in the epoll set, with no epoll_ctl. A new connection costs
 * a TCP handshake, and for https a TLS handshake: the session of the last
 * connection is resumed (TLS 1.3 tickets, TLS 1.2 session ids), which is
 * what every check paid before keep-alive. TLS is OpenSSL on our own
 * sockets: libcurl's per-transfer overhead was 5x the floor (150-200 us a
 * check against 30 us on the bench VM).
 *
 * Kept connections: kept after a response whose length is known (HTTP/1.1,
 * Content-Length or no body, no "Connection: close", body at most
 * BODY_MAX), closed otherwise. While idle the descriptor stays in the
 * epoll set: a close by the server (idle timeout, restart) is seen at
 * once and the connection dropped without a result; the next probe
 * connects afresh. A probe on a kept connection that fails before a
 * complete status line (send or recv error, close) is retried once at
 * once on a fresh connection, within the same deadline, so a server
 * closing idle connections as we send never counts as a failure. A
 * timeout is not retried: a dead backend is still seen within
 * interval x fall + timeout (connect refused, or no answer).
 *
 * States: a backend starts UP with since_ms 0 ("never changed", so a
 * restart does not put every backend into slow start); DOWN after `fall`
 * consecutive failures, UP again after `rise` consecutive successes. A
 * failure on our side (EMFILE, ENOBUFS, no ephemeral port) is not counted.
 *
 * Threads: the watcher owns the probes, their TLS state and the wheel. The
 * published health_state of every backend and the pointer to the current
 * view are written by the watcher with h->mu held and read by health_get
 * with it held. health_reconfigure hands the new config over under h->mu,
 * wakes the watcher (eventfd) and waits on h->cond until the watcher has
 * built the new view, carried states (and kept connections) over by key
 * and swapped it in.
 *
 * Descriptors: one per checked backend (in flight, a tcp check's socket,
 * or an http(s) connection kept between probes), so the watcher needs up
 * to (checked backends) descriptors besides the server's. RLIMIT_NOFILE
 * must allow for that (daemon.c's job); when it does not, socket() fails
 * with EMFILE, logged at most every 10 s. Check connections end with a
 * RST (as HAProxy's): TIME_WAIT on our side would use up the ephemeral
 * ports towards a backend at thousands of checks per second. */

enum {
	/* Response bytes read while looking for the end of the status line;
	 * a server sending more without a newline is not speaking HTTP. */
	HTTP_READ_MAX = 1024,
	/* Bytes of the status line kept: "HTTP/1.1 200" plus one separator. */
	STATUS_KEEP = 16,
	/* Bytes of a header line kept: enough for the three that matter
	 * (Content-Length, Connection, Transfer-Encoding); longer lines are
	 * skipped. */
	LINE_KEEP = 48,
	/* A head longer than this is not read through: the status decides
	 * and the connection is closed. */
	HEAD_MAX = 16384,
	/* Body bytes read to keep a connection for the next check; a longer
	 * body is not read: the status decides and the connection is closed. */
	BODY_MAX = 65536,
	EPOLL_BATCH = 256,
	/* Timer wakeups fall on a grid of TICK_MS (see "Scheduling"): starts
	 * and timeouts run up to TICK_MS late, nothing against a +-10%
	 * jitter. The wheel turns in WHEEL_SLOTS ticks (16 s). */
	TICK_MS = 4,
	WHEEL_SLOTS = 4096,
	LOCAL_WARN_EVERY_MS = 10000,
};

#define NO_PROBE UINT32_MAX       /* no probe index (an empty slot, a void entry) */
#define NO_DEADLINE UINT64_MAX

/* epoll_event.data.u64 = tag << 32 | value */
enum ev_tag { TAG_WAKE = 1, TAG_PROBE };

enum phase { PH_IDLE = 0, PH_CONNECT, PH_TLS, PH_SEND, PH_RECV };

/* Where the response parser is. */
enum resp_state { RS_STATUS = 0, RS_HEADERS, RS_BODY };

/* Why the last probe failed; only formatted when a transition is logged. */
enum fail_kind {
	FAIL_NONE = 0,
	FAIL_CONNECT,   /* code: errno */
	FAIL_SEND,      /* code: errno */
	FAIL_RECV,      /* code: errno */
	FAIL_EOF,       /* closed before a complete status line */
	FAIL_PROTO,     /* not "HTTP/1.x NNN" */
	FAIL_STATUS,    /* code: HTTP status not expected */
	FAIL_TIMEOUT,   /* code: timeout ms */
	FAIL_TLS,       /* code: errno or 0; tls_err: OpenSSL's error or 0 */
};

/* One backend. The cfg pointers are valid while the probe's view is the
 * current one; everything else is owned by the probe. */
struct probe {
	/* What every check reads or writes comes first, in as few cache lines
	 * as it fits (a check touches its probe right after a syscall, when
	 * nothing of it is cached): schedule, I/O, hysteresis, then the
	 * response parser and the published state. Watcher only but st. */
	uint64_t next_ms;             /* its next start; its wheel slot's or later */
	uint64_t started_ms;
	enum phase phase;
	int fd;                       /* in flight, or a kept connection while idle */
	uint32_t ev;                  /* epoll events fd is registered for, 0: none */
	enum cfg_check_type type;
	uint32_t interval_ms, timeout_ms, rise, fall;
	uint32_t nok, nfail;          /* consecutive successes / failures */
	uint32_t ring;                /* its deadline FIFO (by timeout) in view.rings */
	uint32_t wnext;               /* the next probe in its wheel slot, NO_PROBE: none */
	bool start_due;               /* out of the wheel: next start passed in flight */
	bool ringed;                  /* its deadline is live in its FIFO, at rseq */
	bool reused;                  /* the probe in flight runs on a kept connection */
	bool keep;                    /* the response allows keeping the connection */
	uint64_t rseq;
	char *req;                    /* http(s): the request, built once */
	size_t reqlen;
	size_t off;                   /* request bytes sent, then response bytes read */
	SSL *ssl;                     /* https: fd's TLS state */
	/* be's check settings (cfg_backend_check), looked up once: the
	 * service's for most, which every check of the service reads, rather
	 * than the backend's own entry in an array of thousands. */
	const struct cfg_check *chk;
	uint64_t held_until;          /* held DOWN for flapping until then */

	char status_line[STATUS_KEEP];
	size_t nstatus;
	enum resp_state rs;
	int status;                   /* the parsed status code */
	int64_t body_left;            /* -1: no Content-Length */
	uint8_t nline;
	bool line_long;               /* the header line is longer than that */
	bool conn_close;              /* "Connection: close", HTTP/1.0, chunked or no length */
	bool hup;                     /* the hysteresis state (st.up is what is served) */
	char line[LINE_KEEP];         /* the header line being read (its start) */

	/* Published: written by the watcher with h->mu held, read with it held. */
	struct health_state st;

	/* The rest: set up once, or used when a state changes. */
	const struct cfg_zone *zone;
	const struct cfg_service *svc;
	const struct cfg_backend *be;
	bool checked;                 /* false: none, or nothing to probe */
	uint16_t port;                /* the port probed */
	union {
		struct sockaddr sa;
		struct sockaddr_in sin;
		struct sockaddr_in6 sin6;
	} addr;
	socklen_t addrlen;
	char *sni;                    /* https: TLS server name; NULL for an address */
	SSL_SESSION *sess;            /* https: resumed by the next connection */
	enum fail_kind fail_kind;
	int fail_code;
	unsigned long tls_err;
	bool taken;                   /* reconfigure: already carried over */
	bool fresh;                   /* sid allocated for this view (not carried over) */
	struct probe *from;           /* view_schedule: the old view's probe it continues */
	double flap_score;            /* transitions, halving every flap-window */
	uint64_t flap_ms;             /* when flap_score was last updated */
	uint32_t log_tokens, log_suppressed;
	uint64_t log_ms;
	uint32_t sid;                 /* its word in the state table, stable across views */
	uint64_t chg_gen;             /* its entry in h->chg is chg_pos - 1 while chg_gen */
	uint32_t chg_pos;             /*   equals h->chg_gen (one entry per probe) */
};

/* The deadlines of probes in flight with one timeout value, oldest first.
 * Entries are numbered (head, tail: numbers, not indexes) and live at
 * number & mask, so a probe's number stays valid when the ring grows. */
struct dl_ent {
	uint64_t deadline;
	uint32_t idx;                 /* into view.probes; NO_PROBE: that probe ended */
};
struct dl_ring {
	uint32_t timeout_ms;
	uint64_t head, tail;
	size_t mask;                  /* capacity - 1 (a power of two), or 0: none yet */
	struct dl_ent *ent;
};

/* Everything derived from one config. */
struct view {
	const struct config *cfg;
	struct probe *probes;         /* checked backends, zone, service, backend order */
	size_t nprobes;
	/* Per backend (zone, service, backend order): its probe, or NO_PROBE
	 * for a backend without a check, which costs these 4 bytes only. */
	size_t nbackends;             /* checked or not, for the log */
	/* Next starts: each probe in one slot, but while start_due. Slot
	 * i holds the ticks t with t % WHEEL_SLOTS == i; tick is the first
	 * not yet run; wbits has a bit per slot that is not empty. */
	uint32_t wheel[WHEEL_SLOTS];  /* a probe index, NO_PROBE: empty */
	uint64_t wbits[WHEEL_SLOTS / 64];
	uint64_t tick;
	struct dl_ring *rings;        /* one per timeout value */
	size_t nrings;
	uint32_t *by_sid;             /* state id -> probe index, NO_PROBE: none */
	size_t nby_sid;
	/* Probes by backend identity (zone, service, address, port): how
	 * health_sid finds a backend's id whatever its position, so a service
	 * changed in place (an UPDATE) does not shift the others. */
	struct itab by_key;           /* items: indexes into probes */
};

struct health {
	pthread_t thread;
	int epfd, wakefd;
	SSL_CTX *tls;                 /* https probes: client, no verification */
	uint64_t rng;
	bool changed;                 /* a transition since the last callback */
	struct bstate *states;
	uint64_t last_local_warn;
	health_changed_fn cb;
	void *arg;

	/* view is replaced by the watcher only, with mu held; other threads
	 * read it (and the states in it) with mu held. */
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct view *view;
	const struct config *pending; /* handed over by health_reconfigure */
	bool adopted;                 /* the watcher answered the hand-over */
	int adopt_rc;
	bool stopping;
	/* Durations of every finished check (with mu held), for /metrics. */
	uint64_t hist[HEALTH_HIST_BUCKETS];
	uint64_t hist_count;
	uint64_t hist_sum_ms;
	/* State changes not yet taken by health_take_changes (with mu held):
	 * at most one per probe, the latest state wins. */
	struct health_change *chg;
	size_t nchg, chg_cap;
	uint64_t chg_gen;
};

uint64_t health_now_ms(void)
{
	return clock_mono_ms();
}

/* ---- helpers -------------------------------------------------------------- */

/* xorshift64*: jitter needs spread, not unpredictability. */
static uint64_t rng_next(struct health *h)
{
	uint64_t x = h->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	h->rng = x;
	return x * 0x2545f4914f6cdd1dull;
}

static uint32_t rng_below(struct health *h, uint32_t n)
{
	return (uint32_t)(((rng_next(h) >> 32) * n) >> 32);
}

/* The gap to the next probe start after a check that could not run: the
 * interval +-10% (a run of local errors does not retry in step). */
static uint64_t next_gap(struct health *h, const struct probe *p)
{
	uint32_t j = p->interval_ms / 10;
	return p->interval_ms - j + rng_below(h, 2 * j + 1);
}

/* The next start of a probe started now, due at p->next_ms: one interval
 * after it was due. Each backend keeps the phase of its first start (the
 * first starts are spread evenly: view_schedule) and its place in the
 * round, so the watcher's sockets are used in the order they were made,
 * every round: a jitter per interval reshuffled them, and each first touch
 * of a socket in a new order costs the kernel misses (http checks at
 * 1.2-1.7x the floor, against 1.06x; tests/bench/checks.py). Late by more
 * than an interval (the watcher was stalled): one interval from now. */
static uint64_t next_start(const struct probe *p, uint64_t now)
{
	uint64_t due = p->next_ms + p->interval_ms;
	return due > now ? due : now + p->interval_ms;
}

static uint64_t tag(enum ev_tag t, uint32_t v)
{
	return (uint64_t)t << 32 | v;
}

/* "127.0.0.12:5000" or "[fd00::5]:5000" */
static void probe_addr_text(const struct probe *p, char *buf, size_t len)
{
	const struct cfg_backend *be = p->be;
	addr_text(be->family, be->addr, be->port ? be->port : p->port, true, buf, len);
}

/* Parses the start of a status line, "HTTP/1.x NNN" followed by a space or
 * the end of the line. Returns NNN (100-999) or -1. */
static int http_parse_status(const char *s, size_t len)
{
	if (len < 12 || memcmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' || s[7] > '9' || s[8] != ' ')
		return -1;
	int code = 0;
	for (int i = 9; i < 12; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		code = code * 10 + (s[i] - '0');
	}
	if (len > 12 && s[12] != ' ' && s[12] != '\r' && s[12] != '\n')
		return -1;
	return code >= 100 ? code : -1;
}

static bool http_status_ok(const struct probe *p, int code)
{
	const struct cfg_check *c = p->chk;
	if (c->nexpect == 0)
		return code >= 200 && code <= 399;
	for (size_t i = 0; i < c->nexpect && i < sizeof(c->expect) / sizeof(c->expect[0]); i++)
		if (c->expect[i] == code)
			return true;
	return false;
}

/* ---- the wheel of next starts ------------------------------------------- */

/* The tick a start at ms runs in: the first on the grid at or after it. */
static uint64_t tick_of(uint64_t ms)
{
	return (ms + TICK_MS - 1) / TICK_MS;
}

/* Puts p into the slot of its next start, p->next_ms (into the tick to
 * run next if that one has run already). */
static void wheel_add(struct view *v, struct probe *p)
{
	uint64_t t = tick_of(p->next_ms);
	size_t slot = (t < v->tick ? v->tick : t) % WHEEL_SLOTS;
	p->wnext = v->wheel[slot];
	v->wheel[slot] = (uint32_t)(p - v->probes);
	v->wbits[slot / 64] |= 1ull << (slot % 64);
}

/* Empties the slot of tick t; returns its first probe (NO_PROBE: none). */
static uint32_t wheel_take(struct view *v, uint64_t t)
{
	size_t slot = t % WHEEL_SLOTS;
	uint32_t first = v->wheel[slot];
	v->wheel[slot] = NO_PROBE;
	v->wbits[slot / 64] &= ~(1ull << (slot % 64));
	return first;
}

/* The first tick from v->tick on whose slot is not empty, or NO_DEADLINE.
 * Its probes may be a turn or more away: then the wakeup finds nothing
 * due, and they wait for the next turn in the same slot. */
static uint64_t wheel_next(const struct view *v)
{
	size_t from = v->tick % WHEEL_SLOTS;
	for (size_t k = 0; k <= WHEEL_SLOTS / 64; k++) {
		size_t w = (from / 64 + k) % (WHEEL_SLOTS / 64);
		uint64_t bits = v->wbits[w];
		if (k == 0)
			bits &= ~0ull << (from % 64);
		else if (k == WHEEL_SLOTS / 64)
			bits &= (from % 64) ? ~(~0ull << (from % 64)) : 0;
		if (bits) {
			size_t slot = w * 64 + (size_t)__builtin_ctzll(bits);
			return v->tick + (slot + WHEEL_SLOTS - from) % WHEEL_SLOTS;
		}
	}
	return NO_DEADLINE;
}

/* ---- the deadlines of probes in flight ------------------------------------ */

/* Appends p's deadline to its FIFO. Returns 0, or -1 when out of memory. */
static int ring_push(struct view *v, struct probe *p, uint64_t deadline)
{
	struct dl_ring *r = &v->rings[p->ring];
	if (!r->mask || r->tail - r->head > r->mask) {
		size_t cap = r->mask ? 2 * (r->mask + 1) : 16;
		struct dl_ent *e = malloc(cap * sizeof(*e));
		if (!e)
			return -1;
		for (uint64_t k = r->head; k < r->tail; k++)
			e[k & (cap - 1)] = r->ent[k & r->mask];
		free(r->ent);
		r->ent = e;
		r->mask = cap - 1;
	}
	r->ent[r->tail & r->mask] = (struct dl_ent){ .deadline = deadline,
		                                     .idx = (uint32_t)(p - v->probes) };
	p->rseq = r->tail++;
	p->ringed = true;
	return 0;
}

/* p's probe ended: its deadline is void. */
static void ring_kill(struct view *v, struct probe *p)
{
	if (!p->ringed)
		return;
	struct dl_ring *r = &v->rings[p->ring];
	r->ent[p->rseq & r->mask].idx = NO_PROBE;
	p->ringed = false;
}

/* The earliest live deadline of r (dropping void ones at its head), or
 * NO_DEADLINE. */
static uint64_t ring_first(struct dl_ring *r)
{
	while (r->head < r->tail && r->ent[r->head & r->mask].idx == NO_PROBE)
		r->head++;
	return r->head < r->tail ? r->ent[r->head & r->mask].deadline : NO_DEADLINE;
}

/* ---- building a view from a config ---------------------------------------- */

/* Whether s is an IPv4 or IPv6 address literal (no SNI for those, RFC 6066
 * section 3). */
static bool is_address(const char *s)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* Fills p for backend be. Returns 0, or -1 when out of memory. */
static int probe_init(struct health *h, struct probe *p, const struct cfg_zone *z,
                      const struct cfg_service *s, const struct cfg_backend *be)
{
	(void)h;
	const struct cfg_check *c = cfg_backend_check(s, be);
	p->zone = z;
	p->svc = s;
	p->be = be;
	p->chk = c;
	p->fd = -1;
	p->st.up = true;
	p->hup = true;
	p->type = c->type;
	if (c->type == CFG_CHECK_NONE)
		return 0;

	p->port = c->port ? c->port : be->port ? be->port : s->nports ? s->ports[0].port : 0;
	char addr[INET6_ADDRSTRLEN];
	if ((be->family != AF_INET && be->family != AF_INET6) || p->port == 0) {
		log_warn("backend %s of service %s has no address and port to check; it is always up",
		         be->name ? be->name : "?", s->name);
		return 0;
	}
	addr_text(be->family, be->addr, -1, false, addr, sizeof(addr));
	if (be->family == AF_INET) {
		p->addr.sin.sin_family = AF_INET;
		p->addr.sin.sin_port = htons(p->port);
		memcpy(&p->addr.sin.sin_addr, be->addr, 4);
		p->addrlen = sizeof(p->addr.sin);
	} else {
		p->addr.sin6.sin6_family = AF_INET6;
		p->addr.sin6.sin6_port = htons(p->port);
		memcpy(&p->addr.sin6.sin6_addr, be->addr, 16);
		p->addrlen = sizeof(p->addr.sin6);
	}
	/* config*.c validate these; the guards only keep a hand-built config
	 * from spinning the loop (interval 0) or never deciding (rise 0). */
	p->interval_ms = c->interval_ms ? c->interval_ms : 1000;
	p->timeout_ms = c->timeout_ms && c->timeout_ms <= p->interval_ms ? c->timeout_ms
	                                                                 : p->interval_ms;
	p->rise = c->rise ? c->rise : 1;
	p->fall = c->fall ? c->fall : 1;

	const char *path = c->path && c->path[0] ? c->path : "/";
	if (c->type == CFG_CHECK_HTTP || c->type == CFG_CHECK_HTTPS) {
		/* HTTP/1.1: the connection persists unless a side says close. */
		bool v6 = be->family == AF_INET6;
		int n = asprintf(&p->req,
		                 "GET %s HTTP/1.1\r\nHost: %s%s%s\r\nUser-Agent: meshdns-health\r\n\r\n",
		                 path, c->host ? "" : v6 ? "[" : "", c->host ? c->host : addr,
		                 c->host ? "" : v6 ? "]" : "");
		if (n == -1) {
			p->req = NULL;
			return -1;
		}
		p->reqlen = (size_t)n;
		if (c->type == CFG_CHECK_HTTPS && c->host && !is_address(c->host) &&
		    !(p->sni = strdup(c->host)))
			return -1;
	} else if (c->type != CFG_CHECK_TCP) {
		log_warn("backend %s of service %s: unknown check type %d; it is always up",
		         be->name ? be->name : "?", s->name, (int)c->type);
		return 0;
	}
	p->checked = true;
	return 0;
}

static void probe_release(struct probe *p)
{
	free(p->req);
	free(p->sni);
	SSL_SESSION_free(p->sess);
	p->sess = NULL;
	if (p->ssl) {
		SSL_free(p->ssl);
		p->ssl = NULL;
	}
}

static void view_free(struct view *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->nprobes; i++)
		probe_release(&v->probes[i]);
	free(v->probes);
	for (size_t i = 0; i < v->nrings; i++)
		free(v->rings[i].ent);
	free(v->rings);
	free(v->by_sid);
	itab_free(&v->by_key);
	free(v);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* One deadline FIFO per timeout value of v's probes (p->ring). Returns 0,
 * or -1 when out of memory. */
static int view_rings(struct view *v)
{
	if (!v->nprobes)
		return 0;
	uint64_t *by = malloc(v->nprobes * sizeof(*by));
	v->rings = calloc(v->nprobes, sizeof(*v->rings));
	if (!by || !v->rings) {
		free(by);
		return -1;
	}
	for (size_t i = 0; i < v->nprobes; i++)
		by[i] = (uint64_t)v->probes[i].timeout_ms << 32 | i;
	qsort(by, v->nprobes, sizeof(*by), cmp_u64);
	for (size_t i = 0; i < v->nprobes; i++) {
		uint32_t t = (uint32_t)(by[i] >> 32);
		if (!v->nrings || v->rings[v->nrings - 1].timeout_ms != t)
			v->rings[v->nrings++].timeout_ms = t;
		v->probes[(uint32_t)by[i]].ring = (uint32_t)(v->nrings - 1);
	}
	free(by);
	struct dl_ring *r = realloc(v->rings, v->nrings * sizeof(*r));
	if (r)
		v->rings = r;
	return 0;
}

/* Builds the probes of cfg; none is scheduled yet. Returns NULL with err
 * set on failure. Touches nothing of h. */
static struct view *view_new(struct health *h, const struct config *cfg, char *err, size_t errlen)
{
	/* Only services with a check cost a look at their backends: a million
	 * unchecked backends cost a pass over their services, nothing more. */
	size_t nbe = 0, nchk = 0;
	for (size_t zi = 0; zi < cfg->nzones; zi++)
		for (size_t si = 0; si < cfg->zones[zi].nservices; si++) {
			const struct cfg_service *s = &cfg->zones[zi].services[si];
			nbe += cfg_service_nbackends(s);
			if (s->check.type == CFG_CHECK_NONE && !s->own_checks)
				continue;
			for (size_t bi = 0; bi < s->nbackends; bi++)
				if ((s->check.type != CFG_CHECK_NONE || s->backends[bi].check) &&
				    cfg_backend_check(s, &s->backends[bi])->type != CFG_CHECK_NONE)
					nchk++;
		}
	if (nchk >= NO_PROBE) {
		snprintf(err, errlen, "too many checked backends (%zu)", nchk);
		return NULL;
	}
	struct view *v = calloc(1, sizeof(*v));
	if (!v)
		goto nomem;
	v->cfg = cfg;
	v->probes = calloc(nchk + 1, sizeof(*v->probes));
	if (!v->probes)
		goto nomem;
	memset(v->wheel, 0xff, sizeof(v->wheel));
	v->nbackends = nbe;
	size_t k = 0;
	for (size_t zi = 0; zi < cfg->nzones; zi++) {
		const struct cfg_zone *z = &cfg->zones[zi];
		for (size_t si = 0; si < z->nservices; si++) {
			const struct cfg_service *s = &z->services[si];
			if (s->check.type == CFG_CHECK_NONE && !s->own_checks)
				continue;
			for (size_t bi = 0; bi < s->nbackends; bi++) {
				if ((s->check.type == CFG_CHECK_NONE && !s->backends[bi].check) ||
				    cfg_backend_check(s, &s->backends[bi])->type == CFG_CHECK_NONE)
					continue;
				struct probe *p = &v->probes[k];
				v->nprobes = k + 1;
				if (probe_init(h, p, z, s, &s->backends[bi]) == -1)
					goto nomem;
				if (!p->checked) {
					/* Nothing to probe (logged): always up, as unchecked. */
					probe_release(p);
					memset(p, 0, sizeof(*p));
					v->nprobes = k;
					continue;
				}
				k++;
			}
		}
	}
	v->nprobes = k;
	if (view_rings(v) == -1)
		goto nomem;
	return v;
nomem:
	snprintf(err, errlen, "out of memory setting up %zu health checks", nchk);
	view_free(v);
	return NULL;
}

/* ---- running probes (watcher thread) -------------------------------------- */

/* Registers p->fd for events (a descriptor kept between probes stays
 * registered for EPOLLIN: no epoll_ctl per check). Returns 0 or -1. */
static int probe_watch(struct health *h, struct probe *p, uint32_t events)
{
	if (p->ev == events)
		return 0;
	struct epoll_event ev = {
		.events = events,
		.data.u64 = tag(TAG_PROBE, (uint32_t)(p - h->view->probes)),
	};
	if (epoll_ctl(h->epfd, p->ev ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, p->fd, &ev) == -1)
		return -1;
	p->ev = events;
	return 0;
}

/* Closes p's connection, if any, with a RST (see "Descriptors" above)
 * unless it never connected. A TLS session that can be resumed is kept
 * for the next connection; freeing the SSL object without a shutdown would
 * make OpenSSL drop it, so no close_notify is sent but the shutdown is
 * marked done. */
static void probe_close(struct probe *p, bool rst)
{
	if (p->ssl) {
		if (SSL_is_init_finished(p->ssl)) {
			SSL_SESSION *s = SSL_get1_session(p->ssl);
			if (s && SSL_SESSION_is_resumable(s)) {
				SSL_SESSION_free(p->sess);
				p->sess = s;
			} else {
				SSL_SESSION_free(s);
			}
			SSL_set_shutdown(p->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
		}
		SSL_free(p->ssl);
		p->ssl = NULL;
		/* What a failed handshake left behind is not for the next. */
		ERR_clear_error();
	}
	if (p->fd != -1) {
		if (rst) {
			struct linger lg = { .l_onoff = 1, .l_linger = 0 };
			setsockopt(p->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		close(p->fd);
		p->fd = -1;
	}
	p->ev = 0;
	p->keep = false;
}

/* Sets p's next start, no earlier than the one of its wheel slot; a probe
 * out of the wheel (start_due) goes back in. */
static void probe_next(struct health *h, struct probe *p, uint64_t when)
{
	p->next_ms = when;
	if (p->start_due) {
		p->start_due = false;
		wheel_add(h->view, p);
	}
}

/* A failure on our side (descriptors, memory, ephemeral ports) says
 * nothing about the backend: it is not counted, and the probe is retried
 * at the next interval. Logged at most every LOCAL_WARN_EVERY_MS. */
static void probe_local_error(struct health *h, struct probe *p, uint64_t now, const char *what,
                              int e)
{
	probe_close(p, false);
	p->phase = PH_IDLE;
	ring_kill(h->view, p);
	if (!h->last_local_warn || now - h->last_local_warn >= LOCAL_WARN_EVERY_MS) {
		char a[64];
		h->last_local_warn = now;
		probe_addr_text(p, a, sizeof(a));
		log_warn("health check of %s not run: %s: %s (not counted; further such errors "
		         "suppressed for %d s)", a, what, e ? strerror(e) : "failed",
		         LOCAL_WARN_EVERY_MS / 1000);
	}
	/* Not earlier than its wheel slot: a later start waits in it. */
	uint64_t next = now + next_gap(h, p);
	probe_next(h, p, next > p->next_ms ? next : p->next_ms);
}

static void fail_text(const struct probe *p, char *buf, size_t len)
{
	switch (p->fail_kind) {
	case FAIL_CONNECT:
		snprintf(buf, len, "connect: %s", strerror(p->fail_code));
		break;
	case FAIL_SEND:
		snprintf(buf, len, "send: %s", strerror(p->fail_code));
		break;
	case FAIL_RECV:
		snprintf(buf, len, "recv: %s", strerror(p->fail_code));
		break;
	case FAIL_EOF:
		snprintf(buf, len, "http: connection closed before the status line");
		break;
	case FAIL_PROTO:
		snprintf(buf, len, "http: malformed status line");
		break;
	case FAIL_STATUS:
		snprintf(buf, len, "http: status %d", p->fail_code);
		break;
	case FAIL_TIMEOUT:
		snprintf(buf, len, "timeout after %d ms", p->fail_code);
		break;
	case FAIL_TLS: {
		const char *r = p->tls_err ? ERR_reason_error_string(p->tls_err) : NULL;
		if (r)
			snprintf(buf, len, "tls: %s", r);
		else if (p->fail_code)
			snprintf(buf, len, "tls: %s", strerror(p->fail_code));
		else
			snprintf(buf, len, "tls: connection closed during the handshake");
		break;
	}
	case FAIL_NONE:
		snprintf(buf, len, "none");
		break;
	}
}

/* Records p's new state for the control thread (h->mu held). One entry
 * per probe: a second flip before the control thread took the first
 * overwrites it. Out of memory drops the change (logged): the served state
 * then lags until the backend's next transition. */
static void queue_change(struct health *h, struct probe *p)
{
	struct health_change c = { .sid = p->sid, .up = p->st.up, .since_ms = p->st.since_ms };
	if (p->chg_gen == h->chg_gen && p->chg_pos) {
		h->chg[p->chg_pos - 1] = c;
		return;
	}
	if (h->nchg == h->chg_cap) {
		size_t nc = h->chg_cap ? 2 * h->chg_cap : 64;
		struct health_change *n = realloc(h->chg, nc * sizeof(*n));
		if (!n) {
			log_err("health: out of memory queueing a state change");
			return;
		}
		h->chg = n;
		h->chg_cap = nc;
	}
	h->chg[h->nchg++] = c;
	p->chg_gen = h->chg_gen;
	p->chg_pos = (uint32_t)h->nchg;
}

/* Flap damping (BGP route-flap damping in spirit): each transition adds
 * one to a count that halves every flap-window; past flap-limit the
 * backend is held DOWN for flap-hold, whatever its probes say. Returns
 * true when this transition started a hold. Off when flap-limit is 0. */
static bool flap_count(struct probe *p, uint64_t now)
{
	const struct cfg_check *ck = p->chk;
	if (!ck->flap_limit)
		return false;
	if (p->flap_ms && now > p->flap_ms)
		p->flap_score *= exp2(-(double)(now - p->flap_ms) / (double)ck->flap_window_ms);
	p->flap_ms = now;
	p->flap_score += 1.0;
	if (p->flap_score <= (double)ck->flap_limit || now < p->held_until)
		return false;
	p->held_until = now + ck->flap_hold_ms;
	p->flap_score = 0;
	return true;
}

/* Transition log lines per backend: a burst of LOG_BURST, then one per
 * LOG_REFILL_MS; the others are counted and the count is given on the
 * next line logged, so a flapping backend cannot flood the log. */
enum { LOG_BURST = 8, LOG_REFILL_MS = 10000 };
static bool log_allowed(struct probe *p, uint64_t now)
{
	if (!p->log_ms) {
		p->log_ms = now;
		p->log_tokens = LOG_BURST;
	}
	uint64_t refill = (now - p->log_ms) / LOG_REFILL_MS;
	if (refill) {
		p->log_tokens = p->log_tokens + refill > LOG_BURST ? LOG_BURST
		                                                   : (uint32_t)(p->log_tokens + refill);
		p->log_ms += refill * LOG_REFILL_MS;
	}
	if (!p->log_tokens)
		return false;
	p->log_tokens--;
	return true;
}

/* Ends the probe in flight: releases its socket (unless p->keep: the
 * connection stays for the next probe), applies hysteresis, publishes the
 * result and schedules the next start. code is the health_state.last_code
 * (HTTP status, 0, or -errno). */
static void probe_done(struct health *h, struct probe *p, uint64_t now, bool ok,
                       enum fail_kind kind, int fail_code, int32_t code)
{
	if (p->type == CFG_CHECK_TCP && p->fd != -1) {
		/* A RST if connected, and the socket is ready for the next
		 * connect (tcp_connect_init clears the error this leaves). */
		struct sockaddr un = { .sa_family = AF_UNSPEC };
		if (connect(p->fd, &un, sizeof(un)) == -1)
			probe_close(p, true);
	} else if (!p->keep || p->fd == -1)
		probe_close(p, p->phase != PH_CONNECT || ok);
	else if (p->ev != EPOLLIN && probe_watch(h, p, EPOLLIN) == -1)
		probe_close(p, true);
	p->phase = PH_IDLE;
	ring_kill(h->view, p);

	bool was_up = p->hup, flip = false;
	if (ok) {
		p->nfail = 0;
		if (p->nok < UINT32_MAX)
			p->nok++;
		flip = !was_up && p->nok >= p->rise;
	} else {
		p->nok = 0;
		if (p->nfail < UINT32_MAX)
			p->nfail++;
		p->fail_kind = kind;
		p->fail_code = fail_code;
		flip = was_up && p->nfail >= p->fall;
	}
	pthread_mutex_lock(&h->mu);
	p->st.checks++;
	p->st.last_ms = (uint32_t)(now - p->started_ms);
	for (unsigned b = 0; b < HEALTH_HIST_BUCKETS; b++)
		if (p->st.last_ms <= health_hist_le_ms[b]) {
			h->hist[b]++;
			break;
		}
	h->hist_count++;
	h->hist_sum_ms += p->st.last_ms;
	p->st.last_code = code;
	bool held = false;
	if (flip) {
		p->hup = !was_up;
		p->st.transitions++;
		held = flap_count(p, now);
	}
	/* Served: the hysteresis state, DOWN while held. */
	bool serve_up = p->hup && now >= p->held_until;
	bool change = serve_up != p->st.up;
	if (change) {
		p->st.up = serve_up;
		p->st.since_ms = now;
		queue_change(h, p);
	}
	pthread_mutex_unlock(&h->mu);

	if (flip && log_allowed(p, now)) {
		char a[64], why[160], more[96] = "";
		size_t zl = strlen(p->zone->name);
		if (zl > 1 && p->zone->name[zl - 1] == '.')
			zl--;
		probe_addr_text(p, a, sizeof(a));
		if (p->log_suppressed)
			snprintf(more, sizeof(more), "; %u transitions not logged before this one",
			         p->log_suppressed);
		p->log_suppressed = 0;
		if (was_up) {
			fail_text(p, why, sizeof(why));
			log_info("backend %s of %s.%.*s is DOWN (%u failures; last: %s%s)", a, p->svc->name,
			         (int)zl, p->zone->name, p->nfail, why, more);
		} else {
			log_info("backend %s of %s.%.*s is UP (%u successes%s)%s", a, p->svc->name, (int)zl,
			         p->zone->name, p->nok, more,
			         p->hup && !serve_up ? ": held DOWN for flapping" : "");
		}
		if (held)
			log_warn("backend %s of %s.%.*s is flapping: held DOWN for %u ms", a, p->svc->name,
			         (int)zl, p->zone->name, p->chk->flap_hold_ms);
	} else if (flip) {
		p->log_suppressed++;
	}
	if (change)
		h->changed = true;
	/* Its next start (drawn when it started) is in the wheel already,
	 * unless it passed while the probe was in flight: then it is now. */
	if (p->start_due)
		probe_next(h, p, now);
}

static void probe_fail_errno(struct health *h, struct probe *p, uint64_t now,
                             enum fail_kind kind, int e)
{
	probe_done(h, p, now, false, kind, e, -e);
}

/* Aborts a probe without a result (reconfigure, stop), closing its
 * connection. */
static void probe_cancel(struct health *h, struct probe *p)
{
	probe_close(p, true);
	p->phase = PH_IDLE;
	ring_kill(h->view, p);
}

static void response_reset(struct probe *p)
{
	p->off = 0;
	p->nstatus = 0;
	p->rs = RS_STATUS;
	p->status = 0;
	p->nline = 0;
	p->line_long = false;
	p->conn_close = false;
	p->body_left = -1;
	p->keep = false;
}

static void probe_send(struct health *h, struct probe *p, uint64_t now);

/* Opens a fresh connection for the probe in flight; its deadline is
 * already in its FIFO. */
static void probe_connect(struct health *h, struct probe *p, uint64_t now)
{
	p->reused = false;
	int fd = socket(p->addr.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		probe_local_error(h, p, now, "socket", errno);
		return;
	}
	p->fd = fd;
	p->ev = 0;
	p->phase = PH_CONNECT;
	if (connect(fd, &p->addr.sa, p->addrlen) == -1 && errno != EINPROGRESS) {
		int e = errno;
		if (e == EADDRNOTAVAIL || e == EAGAIN || e == ENOBUFS || e == ENOMEM)
			probe_local_error(h, p, now, "connect", e);
		else
			probe_fail_errno(h, p, now, FAIL_CONNECT, e);
		return;
	}
	/* Also when connect() succeeded at once: writable right away, and
	 * one path handles both. */
	if (probe_watch(h, p, EPOLLOUT) == -1)
		probe_local_error(h, p, now, "epoll_ctl", errno);
}

/* A tcp probe on the backend's socket (see "Cost" above). */
static void probe_start_tcp(struct health *h, struct probe *p, uint64_t now)
{
	if (p->fd == -1) {
		p->fd = socket(p->addr.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (p->fd == -1) {
			probe_local_error(h, p, now, "socket", errno);
			return;
		}
		p->ev = 0;
	}
	p->phase = PH_CONNECT;
	if (connect(p->fd, &p->addr.sa, p->addrlen) == 0) {
		probe_done(h, p, now, true, FAIL_NONE, 0, 0);
		return;
	}
	int e = errno;
	if (e == EINPROGRESS) {
		if (connect(p->fd, &p->addr.sa, p->addrlen) == 0 || errno == EISCONN) {
			probe_done(h, p, now, true, FAIL_NONE, 0, 0);
			return;
		}
		e = errno;
	}
	if (e == EINPROGRESS || e == EALREADY) {
		/* One event, then the registration sleeps until the next probe
		 * arms it again: an idle socket (CLOSE) would poll as HUP. */
		struct epoll_event ev = {
			.events = EPOLLOUT | EPOLLONESHOT,
			.data.u64 = tag(TAG_PROBE, (uint32_t)(p - h->view->probes)),
		};
		if (epoll_ctl(h->epfd, p->ev ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, p->fd, &ev) == -1) {
			probe_local_error(h, p, now, "epoll_ctl", errno);
			return;
		}
		p->ev = ev.events;
		return;
	}
	if (e == EADDRNOTAVAIL || e == EAGAIN || e == ENOBUFS || e == ENOMEM)
		probe_local_error(h, p, now, "connect", e);
	else
		probe_fail_errno(h, p, now, FAIL_CONNECT, e);
}

/* Starts p, just taken from its wheel slot (see "Scheduling" above). */
static void probe_start(struct health *h, struct probe *p, uint64_t now)
{
	p->started_ms = now;
	p->next_ms = next_start(p, now);
	wheel_add(h->view, p);
	response_reset(p);
	/* An http(s) check waits for the network (for the response on a
	 * kept connection, for the handshake on a new one): its deadline goes
	 * in now, while the FIFO is in cache, rather than after the send. */
	bool tcp = p->type == CFG_CHECK_TCP;
	if (!tcp && ring_push(h->view, p, now + p->timeout_ms) == -1) {
		probe_local_error(h, p, now, "deadline", ENOMEM);
		return;
	}
	if (tcp) {
		probe_start_tcp(h, p, now);
	} else if (p->fd != -1) {
		/* A connection kept from the last probe. */
		p->reused = true;
		p->phase = PH_SEND;
		probe_send(h, p, now);
	} else {
		probe_connect(h, p, now);
	}
	/* A tcp check that ended at once (on loopback, the handshake is over
	 * inside connect()) needs no deadline; one that waits does. */
	if (tcp && p->phase != PH_IDLE && ring_push(h->view, p, now + p->timeout_ms) == -1)
		probe_local_error(h, p, now, "deadline", ENOMEM);
}

/* A failure before a complete status line: on a kept connection the
 * server may just have closed it as we sent (idle timeout), so the probe
 * goes on once on a fresh connection; otherwise it counts. */
static void probe_fail_io(struct health *h, struct probe *p, uint64_t now, enum fail_kind kind,
                          int e)
{
	if (p->reused && p->nstatus == 0) {
		probe_close(p, true);
		response_reset(p);
		probe_connect(h, p, now);
		return;
	}
	probe_fail_errno(h, p, now, kind, e);
}

/* A TLS call returned rc <= 0: waits for the events OpenSSL wants
 * (returns true), or records why it failed (returns false, p->fail_code
 * and p->tls_err set; EOF: both 0). */
static bool tls_wait(struct health *h, struct probe *p, int rc, uint64_t now)
{
	int oserr = errno;
	int e = SSL_get_error(p->ssl, rc);
	(void)now;
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		if (probe_watch(h, p, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT) == 0)
			return true;
		p->tls_err = 0;
		p->fail_code = errno;
		return false;
	}
	p->tls_err = e == SSL_ERROR_SSL ? ERR_peek_last_error() : 0;
	p->fail_code = e == SSL_ERROR_SYSCALL ? oserr : 0;
	ERR_clear_error();
	return false;
}

static void probe_handshake(struct health *h, struct probe *p, uint64_t now)
{
	int rc = SSL_do_handshake(p->ssl);
	if (rc == 1) {
		p->phase = PH_SEND;
		probe_send(h, p, now);
		return;
	}
	if (tls_wait(h, p, rc, now))
		return;
	/* Counted like a failed connect; the errno (or EPROTO) is last_code.
	 * The next connection starts without the session, in case it is
	 * what the server refused. */
	SSL_SESSION_free(p->sess);
	p->sess = NULL;
	int fc = p->fail_code;
	probe_done(h, p, now, false, FAIL_TLS, fc, fc ? -fc : -EPROTO);
}

static void probe_tls_begin(struct health *h, struct probe *p, uint64_t now)
{
	p->ssl = SSL_new(h->tls);
	if (!p->ssl || SSL_set_fd(p->ssl, p->fd) != 1 ||
	    (p->sni && SSL_set_tlsext_host_name(p->ssl, p->sni) != 1) ||
	    (p->sess && SSL_set_session(p->ssl, p->sess) != 1)) {
		ERR_clear_error();
		probe_local_error(h, p, now, "SSL_new", ENOMEM);
		return;
	}
	SSL_set_connect_state(p->ssl);
	p->phase = PH_TLS;
	probe_handshake(h, p, now);
}

static void probe_send(struct health *h, struct probe *p, uint64_t now)
{
	while (p->off < p->reqlen) {
		if (p->ssl) {
			int n = SSL_write(p->ssl, p->req + p->off, (int)(p->reqlen - p->off));
			if (n <= 0) {
				if (tls_wait(h, p, n, now))
					return;
				probe_fail_io(h, p, now, FAIL_SEND, p->fail_code ? p->fail_code : EPIPE);
				return;
			}
			p->off += (size_t)n;
			continue;
		}
		ssize_t n = send(p->fd, p->req + p->off, p->reqlen - p->off, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (probe_watch(h, p, EPOLLOUT) == -1)
					probe_local_error(h, p, now, "epoll_ctl", errno);
				return;
			}
			probe_fail_io(h, p, now, FAIL_SEND, errno);
			return;
		}
		p->off += (size_t)n;
	}
	p->phase = PH_RECV;
	p->off = 0;
	if (probe_watch(h, p, EPOLLIN) == -1)
		probe_local_error(h, p, now, "epoll_ctl", errno);
}

/* The value of a header line's field if its name is name (case-insensitive),
 * else NULL. line is NUL-terminated. */
static const char *header_value(const char *line, const char *name)
{
	size_t n = strlen(name);
	if (strncasecmp(line, name, n) != 0 || line[n] != ':')
		return NULL;
	line += n + 1;
	while (*line == ' ' || *line == '\t')
		line++;
	return line;
}

/* One complete header line (without CR LF, truncated to LINE_KEEP - 1). */
static void response_header(struct probe *p, bool truncated)
{
	const char *v;
	if (truncated)
		return;
	if ((v = header_value(p->line, "Content-Length"))) {
		int64_t n = 0;
		const char *s = v;
		while (*s >= '0' && *s <= '9' && n < INT64_MAX / 10)
			n = n * 10 + (*s++ - '0');
		while (*s == ' ' || *s == '\t')
			s++;
		if (s == v || *s)
			p->conn_close = true;   /* not a length we can trust */
		else
			p->body_left = n;
	} else if ((v = header_value(p->line, "Connection"))) {
		if (strcasestr(v, "close"))
			p->conn_close = true;
	} else if (header_value(p->line, "Transfer-Encoding")) {
		/* chunked: not read through, the status decides. */
		p->conn_close = true;
	}
}

enum parse_rc { P_MORE, P_DONE, P_BAD };

/* Feeds n response bytes to the parser. P_DONE: the status is known and the
 * response is either read through (p->keep set) or not worth reading on. */
static enum parse_rc response_feed(struct probe *p, const char *buf, size_t n)
{
	size_t i = 0;
	while (i < n) {
		if (p->rs == RS_STATUS) {
			const char *nl = memchr(buf + i, '\n', n - i);
			size_t take = nl ? (size_t)(nl - (buf + i)) + 1 : n - i;
			size_t keep = STATUS_KEEP - p->nstatus;
			if (keep > take)
				keep = take;
			memcpy(p->status_line + p->nstatus, buf + i, keep);
			p->nstatus += keep;
			p->off += take;
			i += take;
			if (!nl)
				return p->off >= HTTP_READ_MAX ? P_BAD : P_MORE;
			p->status = http_parse_status(p->status_line, p->nstatus);
			if (p->status == -1)
				return P_BAD;
			/* HTTP/1.0 closes unless asked not to; we do not ask. */
			if (p->status_line[7] == '0')
				p->conn_close = true;
			p->rs = RS_HEADERS;
			p->nline = 0;
			continue;
		}
		if (p->rs == RS_HEADERS) {
			const char *nl = memchr(buf + i, '\n', n - i);
			size_t take = nl ? (size_t)(nl - (buf + i)) + 1 : n - i;
			size_t room = LINE_KEEP - 1 - p->nline;
			size_t copy = take < room ? take : room;
			memcpy(p->line + p->nline, buf + i, copy);
			p->nline = (uint8_t)(p->nline + copy);
			p->line_long |= copy < take;
			p->off += take;
			i += take;
			if (p->off > HEAD_MAX)
				return P_DONE;
			if (!nl)
				continue;
			size_t len = p->nline;
			bool truncated = p->line_long;
			while (len && (p->line[len - 1] == '\n' || p->line[len - 1] == '\r'))
				len--;
			p->line[len] = 0;
			p->nline = 0;
			p->line_long = false;
			if (len || truncated) {
				response_header(p, truncated);
				continue;
			}
			/* The end of the head. */
			if (p->status < 200 || p->status == 204 || p->status == 304)
				p->body_left = p->status < 200 ? -1 : 0;
			if (p->conn_close || p->body_left < 0 || p->body_left > BODY_MAX)
				return P_DONE;
			p->rs = RS_BODY;
			continue;
		}
		size_t take = n - i;
		if ((int64_t)take > p->body_left)
			return P_DONE;     /* more than the response: not ours to keep */
		p->body_left -= (int64_t)take;
		i = n;
	}
	if (p->rs == RS_BODY && p->body_left == 0) {
		p->keep = true;
		return P_DONE;
	}
	return P_MORE;
}

static void probe_status(struct health *h, struct probe *p, uint64_t now)
{
	int code = p->status > 0 ? p->status : http_parse_status(p->status_line, p->nstatus);
	if (code == -1)
		probe_done(h, p, now, false, FAIL_PROTO, 0, -EPROTO);
	else if (http_status_ok(p, code))
		probe_done(h, p, now, true, FAIL_NONE, 0, code);
	else
		probe_done(h, p, now, false, FAIL_STATUS, code, code);
}

/* Reads the response: the status line decides, the rest is read through
 * so that the connection can carry the next probe. */
static void probe_recv(struct health *h, struct probe *p, uint64_t now)
{
	char buf[4096];
	for (;;) {
		ssize_t n;
		if (p->ssl) {
			int r = SSL_read(p->ssl, buf, sizeof(buf));
			if (r <= 0) {
				int e = SSL_get_error(p->ssl, r);
				if (e == SSL_ERROR_ZERO_RETURN) {
					n = 0;
				} else if (tls_wait(h, p, r, now)) {
					return;
				} else if (!p->tls_err && !p->fail_code) {
					n = 0;
				} else {
					probe_fail_io(h, p, now, FAIL_RECV, p->fail_code ? p->fail_code : EPROTO);
					return;
				}
			} else {
				n = r;
			}
		} else {
			n = recv(p->fd, buf, sizeof(buf), 0);
			if (n == -1) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					return;
				probe_fail_io(h, p, now, FAIL_RECV, errno);
				return;
			}
		}
		if (n == 0) {
			/* A status line cut short by the close still counts if it
			 * holds the code; anything shorter is a failure. */
			p->keep = false;
			if (p->nstatus >= 12)
				probe_status(h, p, now);
			else if (p->nstatus == 0 && p->reused)
				probe_fail_io(h, p, now, FAIL_EOF, ENODATA);
			else
				probe_done(h, p, now, false, FAIL_EOF, 0, -ENODATA);
			return;
		}
		switch (response_feed(p, buf, (size_t)n)) {
		case P_MORE:
			continue;
		case P_DONE:
			probe_status(h, p, now);
			return;
		case P_BAD:
			p->keep = false;
			probe_done(h, p, now, false, FAIL_PROTO, 0, -EPROTO);
			return;
		}
	}
}

/* An event on a kept connection between probes: the server closed it (or
 * sent what nobody asked for). It is dropped without a result; the next
 * probe connects afresh. A TLS record may also be a late session ticket,
 * which OpenSSL takes in without any data for us. */
static void probe_idle_event(struct probe *p)
{
	char buf[256];
	if (p->ssl) {
		int r = SSL_read(p->ssl, buf, sizeof(buf));
		if (r <= 0 && SSL_get_error(p->ssl, r) == SSL_ERROR_WANT_READ)
			return;
		ERR_clear_error();
	} else {
		ssize_t r = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
	}
	probe_close(p, true);
}

static void probe_event(struct health *h, struct probe *p, uint32_t events, uint64_t now)
{
	switch (p->phase) {
	case PH_CONNECT: {
		/* A failed connect() raises EPOLLERR; a plain EPOLLOUT is a
		 * connection, which saves a getsockopt() per healthy check. */
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if ((events & (EPOLLERR | EPOLLHUP)) &&
		    getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == -1)
			soerr = errno;
		if (soerr) {
			probe_fail_errno(h, p, now, FAIL_CONNECT, soerr);
		} else if (p->type == CFG_CHECK_TCP) {
			probe_done(h, p, now, true, FAIL_NONE, 0, 0);
		} else if (p->type == CFG_CHECK_HTTPS) {
			probe_tls_begin(h, p, now);
		} else {
			p->phase = PH_SEND;
			probe_send(h, p, now);
		}
		break;
	}
	case PH_TLS:
		probe_handshake(h, p, now);
		break;
	case PH_SEND:
		probe_send(h, p, now);
		break;
	case PH_RECV:
		probe_recv(h, p, now);
		break;
	case PH_IDLE:
		/* A tcp socket's late one-shot event (after a timeout) is
		 * spent by now; a kept http(s) connection has news. */
		if (p->fd != -1 && p->type != CFG_CHECK_TCP)
			probe_idle_event(p);
		break;
	}
}

/* The deadline passed with the probe still in flight. */
static void probe_timeout(struct health *h, struct probe *p, uint64_t now)
{
	p->keep = false;
	probe_done(h, p, now, false, FAIL_TIMEOUT, (int)p->timeout_ms, -ETIMEDOUT);
}

/* ---- the watcher thread --------------------------------------------------- */

/* Ends the probes of r whose deadline passed. */
static void ring_expire(struct health *h, struct dl_ring *r, uint64_t now)
{
	while (r->head < r->tail) {
		struct dl_ent e = r->ent[r->head & r->mask];
		if (e.idx != NO_PROBE && e.deadline > now)
			break;
		r->head++;
		if (e.idx != NO_PROBE) {
			struct probe *p = &h->view->probes[e.idx];
			p->ringed = false;
			probe_timeout(h, p, now);
		}
	}
}

static uint64_t key_hash(const struct probe *p)
{
	uint64_t x = fnv_bytes(FNV_SEED, p->zone->origin, p->zone->originlen);
	x = fnv_str(x, p->svc->name);
	x = fnv_bytes(x, &p->be->family, sizeof(p->be->family));
	x = fnv_bytes(x, p->be->addr, p->be->family == AF_INET6 ? 16u : 4u);
	x = fnv_bytes(x, &p->be->port, sizeof(p->be->port));
	x = fnv_bytes(x, &p->port, sizeof(p->port));
	x = fnv_bytes(x, &p->type, sizeof(p->type));
	return x ^ (x >> 31);
}

static bool str_same(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* The carry-over key: zone, service, address, port, check settings. */
static bool key_same(const struct probe *a, const struct probe *b)
{
	const struct cfg_backend *x = a->be, *y = b->be;
	const struct cfg_check *c = cfg_backend_check(a->svc, x), *d = cfg_backend_check(b->svc, y);
	if (a->zone->originlen != b->zone->originlen ||
	    memcmp(a->zone->origin, b->zone->origin, a->zone->originlen) != 0 ||
	    strcmp(a->svc->name, b->svc->name) != 0 || x->family != y->family ||
	    memcmp(x->addr, y->addr, x->family == AF_INET6 ? 16 : 4) != 0 || x->port != y->port ||
	    a->port != b->port || a->checked != b->checked)
		return false;
	if (c->type != d->type || c->interval_ms != d->interval_ms ||
	    c->timeout_ms != d->timeout_ms || c->rise != d->rise || c->fall != d->fall ||
	    c->port != d->port || !str_same(c->path, d->path) || !str_same(c->host, d->host) ||
	    c->nexpect != d->nexpect)
		return false;
	for (size_t i = 0; i < c->nexpect && i < sizeof(c->expect) / sizeof(c->expect[0]); i++)
		if (c->expect[i] != d->expect[i])
			return false;
	return true;
}

/* p (of the new view v) continues o's connection and probe in flight, if
 * any: a probe survives a reconfiguration that keeps its backend and check,
 * so a burst of reloads or UPDATEs cannot starve a slow backend of results,
 * and a kept connection (and TLS session) is not dropped by a reload. The
 * socket is re-tagged with p's index (both probes are configured alike:
 * same key). */
static void probe_adopt_inflight(struct health *h, struct view *v, struct probe *p, struct probe *o)
{
	p->sess = o->sess;
	o->sess = NULL;
	if (o->fd == -1)
		return;
	p->phase = o->phase;
	p->fd = o->fd;
	p->ev = o->ev;
	p->ssl = o->ssl;
	p->reused = o->reused;
	p->keep = o->keep;
	p->off = o->off;
	memcpy(p->status_line, o->status_line, sizeof(p->status_line));
	p->nstatus = o->nstatus;
	p->rs = o->rs;
	p->status = o->status;
	memcpy(p->line, o->line, sizeof(p->line));
	p->nline = o->nline;
	p->line_long = o->line_long;
	p->conn_close = o->conn_close;
	p->body_left = o->body_left;
	p->started_ms = o->started_ms;
	o->fd = -1;
	o->ev = 0;
	o->ssl = NULL;
	o->phase = PH_IDLE;
	if (!p->ev)
		return;
	struct epoll_event ev = {
		.events = p->ev,
		.data.u64 = tag(TAG_PROBE, (uint32_t)(p - v->probes)),
	};
	if (epoll_ctl(h->epfd, EPOLL_CTL_MOD, p->fd, &ev) == -1) {
		/* Not expected; a probe in flight then ends at its deadline. */
		log_warn("health: epoll_ctl: %s", strerror(errno));
	}
}

/* A backend's identity for health_sid: zone, service name, address, port. */
static uint64_t id_hash(const struct cfg_zone *z, const struct cfg_service *s,
                        const struct cfg_backend *b)
{
	uint64_t x = fnv_bytes(FNV_SEED, z->origin, z->originlen);
	x = fnv_str(x, s->name);
	x = fnv_bytes(x, b->addr, b->family == AF_INET6 ? 16u : 4u);
	x = (x ^ b->port) * FNV_PRIME;
	return x ^ (x >> 31);
}

static bool id_same(const struct probe *p, const struct cfg_zone *z, const struct cfg_service *s,
                    const struct cfg_backend *b)
{
	return p->zone->originlen == z->originlen &&
	       memcmp(p->zone->origin, z->origin, z->originlen) == 0 &&
	       strcmp(p->svc->name, s->name) == 0 && p->be->family == b->family &&
	       memcmp(p->be->addr, b->addr, b->family == AF_INET6 ? 16 : 4) == 0 &&
	       p->be->port == b->port;
}

static int cmp_deadline(const void *a, const void *b)
{
	const struct dl_ent *x = a, *y = b;
	return x->deadline < y->deadline ? -1 : x->deadline > y->deadline;
}

/* The deadlines of the nlive probes in flight that v's probes continue
 * (p->from), into v's FIFOs, oldest first. Returns 0, or -1 when out of
 * memory. */
static int view_carry_deadlines(struct view *v, struct view *old, size_t nlive)
{
	struct dl_ent *live = malloc(nlive * sizeof(*live));
	if (!live)
		return -1;
	size_t k = 0;
	for (size_t i = 0; i < v->nprobes && k < nlive; i++) {
		const struct probe *o = v->probes[i].from;
		if (o && o->ringed) {
			const struct dl_ring *r = &old->rings[o->ring];
			live[k++] = (struct dl_ent){ .deadline = r->ent[o->rseq & r->mask].deadline,
				                     .idx = (uint32_t)i };
		}
	}
	qsort(live, k, sizeof(*live), cmp_deadline);
	int rc = 0;
	for (size_t i = 0; i < k && rc == 0; i++)
		rc = ring_push(v, &v->probes[live[i].idx], live[i].deadline);
	free(live);
	return rc;
}

/* Schedules every checked probe of v, carrying state over from old (may
 * be NULL) by key. Returns 0, or -1 when out of memory (v untouched then). */
static int view_schedule(struct health *h, struct view *v, struct view *old, uint64_t now)
{
	v->tick = now / TICK_MS;
	struct itab olds = { 0 };     /* old's probes by key */
	size_t nlive = 0;             /* carried probes in flight */
	if (old && old->nprobes) {
		if (itab_init(&olds, old->nprobes) == -1)
			return -1;
		for (size_t i = 0; i < old->nprobes; i++)
			itab_put(&olds, key_hash(&old->probes[i]), (uint32_t)i);
	}
	for (size_t i = 0; i < v->nprobes; i++) {
		struct probe *p = &v->probes[i];
		struct probe *o = NULL;
		if (olds.slot) {
			size_t pos;
			uint32_t item;
			ITAB_FOR(&olds, key_hash(p), pos, item) {
				struct probe *c = &old->probes[item];
				if (!c->taken && key_same(c, p)) {
					o = c;
					break;
				}
			}
		}
		/* A new probe's first start: spread evenly over its interval in
		 * the order of the probes (the i-th of n at i/n of it), which
		 * stays the order of every round after (next_start): the sockets
		 * are made, and then used, in one order. */
		uint64_t key = now + (p->checked ? (uint64_t)p->interval_ms * i / v->nprobes : 0);
		if (!o) {
			if (bstate_alloc(h->states, &p->sid) == -1)
				goto nomem;
			p->fresh = true;
			if (p->checked &&
			    cfg_backend_check(p->svc, p->be)->initial == CFG_INITIAL_DOWN) {
				/* No traffic before rise good checks. The word is not
				 * served yet (no block points at a fresh id), so the
				 * watcher may set it. */
				bstate_set(h->states, p->sid, false, 0);
				p->st.up = false;
				p->hup = false;
			}
		}
		if (o) {
			o->taken = true;
			p->sid = o->sid;
			p->st = o->st;
			p->hup = o->hup;
			p->flap_score = o->flap_score;
			p->flap_ms = o->flap_ms;
			p->held_until = o->held_until;
			p->log_tokens = o->log_tokens;
			p->log_suppressed = o->log_suppressed;
			p->log_ms = o->log_ms;
			p->nok = o->nok;
			p->nfail = o->nfail;
			p->fail_kind = o->fail_kind;
			p->fail_code = o->fail_code;
			p->tls_err = o->tls_err;
			p->started_ms = o->started_ms;
			/* Keep the cadence, and the deadline of a probe in flight:
			 * it goes on in the new view (probe_adopt_inflight). */
			if (o->checked) {
				key = o->next_ms;
				if (key < now && o->phase == PH_IDLE)
					key = now;
				p->start_due = o->start_due;
				p->from = o;
				nlive += o->ringed;
			}
		}
		if (p->checked) {
			p->next_ms = key;
			if (!p->start_due)
				wheel_add(v, p);
		}
	}
	if (nlive && view_carry_deadlines(v, old, nlive) == -1)
		goto nomem;
	itab_free(&olds);
	/* The identity index (health_sid, health_get): a backend is found by
	 * zone, service, address and port, whatever its position. */
	if (itab_init(&v->by_key, v->nprobes) == -1)
		goto nomem;
	for (size_t i = 0; i < v->nprobes; i++)
		itab_put(&v->by_key, id_hash(v->probes[i].zone, v->probes[i].svc, v->probes[i].be),
		         (uint32_t)i);
	/* The id index (health_get_sid); without memory for it, lookups by
	 * id find nothing (status shows no details), nothing else changes. */
	uint32_t maxsid = 0;
	for (size_t i = 0; i < v->nprobes; i++)
		if (v->probes[i].sid > maxsid)
			maxsid = v->probes[i].sid;
	v->by_sid = malloc(((size_t)maxsid + 1) * sizeof(*v->by_sid));
	if (v->by_sid) {
		memset(v->by_sid, 0xff, ((size_t)maxsid + 1) * sizeof(*v->by_sid));
		v->nby_sid = (size_t)maxsid + 1;
		for (size_t i = 0; i < v->nprobes; i++)
			if (v->probes[i].sid)
				v->by_sid[v->probes[i].sid] = (uint32_t)i;
	}
	for (size_t i = 0; i < v->nprobes; i++)
		if (v->probes[i].from) {
			probe_adopt_inflight(h, v, &v->probes[i], v->probes[i].from);
			v->probes[i].from = NULL;
		}
	return 0;
nomem:
	/* Undo: ids of this view go back, old probes are not taken. */
	for (size_t i = 0; i < v->nprobes; i++)
		if (v->probes[i].fresh) {
			bstate_release(h->states, v->probes[i].sid);
			v->probes[i].fresh = false;
		}
	for (size_t i = 0; old && i < old->nprobes; i++)
		old->probes[i].taken = false;
	itab_free(&olds);
	return -1;
}

static size_t view_nchecked(const struct view *v)
{
	return v->nprobes;
}

static void warn_nofile(const struct view *v)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	if (rl.rlim_cur != RLIM_INFINITY && view_nchecked(v) + 64 > rl.rlim_cur)
		log_warn("%zu health-checked backends but RLIMIT_NOFILE is %llu: checks may fail "
		         "locally with EMFILE; raise the limit (ulimit -n, LimitNOFILE=)",
		         view_nchecked(v), (unsigned long long)rl.rlim_cur);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* After a switch (h->mu held): the ids of old's probes that were not
 * carried over go back to the table (reused only after the control
 * thread's next publish and grace period), and queued changes of those
 * ids are dropped. */
static void drop_released(struct health *h, struct view *old)
{
	uint32_t *gone = NULL;
	size_t ngone = 0;
	for (size_t i = 0; i < old->nprobes; i++)
		ngone += !old->probes[i].taken && old->probes[i].sid;
	if (ngone && h->nchg)
		gone = malloc(ngone * sizeof(*gone));
	size_t k = 0;
	for (size_t i = 0; i < old->nprobes; i++) {
		struct probe *p = &old->probes[i];
		if (p->taken || !p->sid)
			continue;
		if (gone)
			gone[k++] = p->sid;
		bstate_release(h->states, p->sid);
	}
	if (h->nchg && ngone) {
		size_t n = 0;
		if (gone)
			qsort(gone, k, sizeof(*gone), cmp_u32);
		for (size_t i = 0; i < h->nchg; i++) {
			/* Without memory for the list, every queued change is kept:
			 * the control thread skips ids no snapshot serves. */
			if (gone && bsearch(&h->chg[i].sid, gone, k, sizeof(*gone), cmp_u32))
				continue;
			h->chg[n++] = h->chg[i];
		}
		h->nchg = n;
	}
	free(gone);
	/* Positions of carried-over probes pointed into the old layout: a
	 * new generation forgets them, so a further flip appends (a second
	 * entry for one id is applied in order, the latest last). */
	h->chg_gen++;
}

/* Swaps to the pending config, if any, and answers health_reconfigure. */
static void watcher_adopt(struct health *h, const struct config *cfg, uint64_t now)
{
	char err[256];
	struct view *old = h->view;
	struct view *v = view_new(h, cfg, err, sizeof(err));
	int rc = 0;
	if (!v || view_schedule(h, v, old, now) == -1) {
		if (v)
			snprintf(err, sizeof(err), "out of memory");
		log_err("health reconfigure: %s", err);
		view_free(v);
		rc = -1;
	} else {
		/* Probes in flight of backends that stay moved to the new view;
		 * those of backends that went are cancelled. */
		for (size_t i = 0; i < old->nprobes; i++)
			probe_cancel(h, &old->probes[i]);
		pthread_mutex_lock(&h->mu);
		h->view = v;
		drop_released(h, old);
		pthread_mutex_unlock(&h->mu);
		view_free(old);
		warn_nofile(v);
		log_debug("health: watching %zu of %zu backends", view_nchecked(v), v->nbackends);
	}
	pthread_mutex_lock(&h->mu);
	h->pending = NULL;
	h->adopt_rc = rc;
	h->adopted = true;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->mu);
}

static int wait_ms(const struct health *h, uint64_t now)
{
	struct view *v = h->view;
	uint64_t next = wheel_next(v);
	next = next == NO_DEADLINE ? next : next * TICK_MS;
	for (size_t i = 0; i < v->nrings; i++) {
		uint64_t d = ring_first(&v->rings[i]);
		if (d < next)
			next = d;
	}
	if (next == NO_DEADLINE)
		return -1;
	next = (next + TICK_MS - 1) / TICK_MS * TICK_MS;
	if (next <= now)
		return 0;
	return next - now > 60000 ? 60000 : (int)(next - now);
}

static void *watcher_main(void *arg)
{
	struct health *h = arg;
	struct epoll_event evs[EPOLL_BATCH];
	for (;;) {
		int n = epoll_wait(h->epfd, evs, EPOLL_BATCH, wait_ms(h, health_now_ms()));
		if (n == -1) {
			if (errno != EINTR) {
				log_err("health: epoll_wait: %s", strerror(errno));
				/* Not expected; do not spin if it persists. */
				struct timespec ts = { .tv_sec = 0, .tv_nsec = 100000000 };
				nanosleep(&ts, NULL);
			}
			n = 0;
		}
		uint64_t now = health_now_ms();
		bool woken = false;
		for (int i = 0; i < n; i++) {
			uint32_t t = (uint32_t)(evs[i].data.u64 >> 32);
			uint32_t val = (uint32_t)evs[i].data.u64;
			if (t == TAG_WAKE) {
				uint64_t cnt;
				if (read(h->wakefd, &cnt, sizeof(cnt)) == -1 && errno != EAGAIN)
					log_warn("health: eventfd read: %s", strerror(errno));
				woken = true;
			} else if (t == TAG_PROBE) {
				if (val < h->view->nprobes)
					probe_event(h, &h->view->probes[val], evs[i].events, now);
			}
		}

		struct view *v = h->view;
		for (size_t i = 0; i < v->nrings; i++)
			ring_expire(h, &v->rings[i], now);
		for (; v->tick * TICK_MS <= now; v->tick++) {
			uint32_t i = wheel_take(v, v->tick);
			while (i != NO_PROBE) {
				struct probe *p = &v->probes[i];
				i = p->wnext;
				if (p->next_ms > now) {
					/* A turn or more away, or put off since it
					 * was added (probe_local_error). */
					wheel_add(v, p);
				} else if (p->phase != PH_IDLE) {
					/* Still in flight: starts when it ends. */
					p->start_due = true;
				} else {
					probe_start(h, p, now);
				}
			}
		}

		if (woken) {
			pthread_mutex_lock(&h->mu);
			bool stop = h->stopping;
			const struct config *cfg = h->pending;
			pthread_mutex_unlock(&h->mu);
			if (stop)
				break;
			if (cfg)
				watcher_adopt(h, cfg, now);
		}
		if (h->changed) {
			h->changed = false;
			if (h->cb)
				h->cb(h->arg);
		}
	}
	for (size_t i = 0; i < h->view->nprobes; i++)
		probe_cancel(h, &h->view->probes[i]);
	return NULL;
}

static void wake(struct health *h)
{
	uint64_t one = 1;
	/* EAGAIN: the counter is saturated, a wakeup is pending anyway. */
	if (write(h->wakefd, &one, sizeof(one)) == -1 && errno != EAGAIN)
		log_err("health: eventfd write: %s", strerror(errno));
}

/* ---- the interface -------------------------------------------------------- */

struct health *health_start(const struct config *cfg, struct bstate *states,
                            health_changed_fn cb, void *arg, char *err, size_t errlen)
{
	struct health *h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->states = states;
	h->epfd = h->wakefd = -1;
	h->cb = cb;
	h->arg = arg;
	if (getrandom(&h->rng, sizeof(h->rng), GRND_NONBLOCK) != sizeof(h->rng))
		h->rng = health_now_ms() ^ (uint64_t)(uintptr_t)h;
	h->rng |= 1;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cond, NULL);

	/* https checks verify liveness, not identity: backends usually present
	 * self-signed or internal certificates, so the peer is not verified.
	 * Sessions are kept per probe (probe_close), not in the context's
	 * cache. Idle connections give their buffers back (34 KiB each). An
	 * EOF without close_notify is an EOF, as HTTP servers send it. */
	h->tls = SSL_CTX_new(TLS_client_method());
	if (!h->tls) {
		snprintf(err, errlen, "SSL_CTX_new failed");
		ERR_clear_error();
		goto fail;
	}
	SSL_CTX_set_verify(h->tls, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(h->tls, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
	SSL_CTX_set_mode(h->tls, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(h->tls, SSL_OP_IGNORE_UNEXPECTED_EOF);

	h->epfd = epoll_create1(EPOLL_CLOEXEC);
	h->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (h->epfd == -1 || h->wakefd == -1) {
		snprintf(err, errlen, "epoll/eventfd: %s", strerror(errno));
		goto fail;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag(TAG_WAKE, 0) };
	if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->wakefd, &ev) == -1) {
		snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
		goto fail;
	}
	h->view = view_new(h, cfg, err, errlen);
	if (!h->view)
		goto fail;
	if (view_schedule(h, h->view, NULL, health_now_ms()) == -1) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	warn_nofile(h->view);

	/* The thread takes no signals: main.c handles them on its own. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&h->thread, NULL, watcher_main, h);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		snprintf(err, errlen, "pthread_create: %s", strerror(rc));
		goto fail;
	}
	pthread_setname_np(h->thread, "health");
	log_debug("health: watching %zu of %zu backends", view_nchecked(h->view), h->view->nbackends);
	return h;
fail:
	view_free(h->view);
	SSL_CTX_free(h->tls);
	if (h->epfd != -1)
		close(h->epfd);
	if (h->wakefd != -1)
		close(h->wakefd);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cond);
	free(h);
	return NULL;
}

/* Control thread only (not concurrently with itself or health_stop).
 * Blocks until the watcher has switched: the old config is not referenced
 * any more when this returns 0, nor the new one when it returns -1. */
int health_reconfigure(struct health *h, const struct config *cfg)
{
	pthread_mutex_lock(&h->mu);
	h->pending = cfg;
	h->adopted = false;
	pthread_mutex_unlock(&h->mu);
	wake(h);
	pthread_mutex_lock(&h->mu);
	while (!h->adopted)
		pthread_cond_wait(&h->cond, &h->mu);
	int rc = h->adopt_rc;
	pthread_mutex_unlock(&h->mu);
	return rc;
}

/* Any thread. Holds h->mu for one copy; the watcher holds it only to
 * publish a result or swap configs. */
bool health_get_sid(struct health *h, uint32_t sid, struct health_state *out)
{
	bool found = false;
	pthread_mutex_lock(&h->mu);
	const struct view *v = h->view;
	if (sid && sid < v->nby_sid && v->by_sid[sid] != NO_PROBE) {
		*out = v->probes[v->by_sid[sid]].st;
		found = true;
	}
	pthread_mutex_unlock(&h->mu);
	return found;
}

/* The probe of backend bi of service si of zone zi of v's config, found
 * by identity (by_key), or NULL when it is not checked; *in says whether
 * the indexes are inside the config. */
static const struct probe *probe_find(const struct view *v, size_t zi, size_t si, size_t bi,
                                      bool *in)
{
	const struct config *cfg = v->cfg;
	*in = zi < cfg->nzones && si < cfg->zones[zi].nservices &&
	      bi < cfg->zones[zi].services[si].nbackends;
	if (!*in || !v->by_key.slot)
		return NULL;
	const struct cfg_zone *z = &cfg->zones[zi];
	const struct cfg_service *s = &z->services[si];
	const struct cfg_backend *b = &s->backends[bi];
	if (cfg_backend_check(s, b)->type == CFG_CHECK_NONE)
		return NULL;
	/* The probe made for this very backend first (two backends may share
	 * an identity, e.g. with different checks); else one of its identity. */
	const struct probe *same = NULL;
	size_t pos;
	uint32_t item;
	ITAB_FOR(&v->by_key, id_hash(z, s, b), pos, item) {
		const struct probe *p = &v->probes[item];
		if (p->be == b)
			return p;
		if (!same && id_same(p, z, s, b))
			same = p;
	}
	return same;
}

bool health_get(struct health *h, size_t zi, size_t si, size_t bi, struct health_state *out)
{
	bool in;
	pthread_mutex_lock(&h->mu);
	const struct probe *p = probe_find(h->view, zi, si, bi, &in);
	if (p) {
		*out = p->st;
	} else if (in) {
		memset(out, 0, sizeof(*out));
		out->up = true;
	}
	pthread_mutex_unlock(&h->mu);
	return in;
}

size_t health_take_changes(struct health *h, struct health_change *out, size_t max)
{
	pthread_mutex_lock(&h->mu);
	size_t n = h->nchg < max ? h->nchg : max;
	memcpy(out, h->chg, n * sizeof(*out));
	memmove(h->chg, h->chg + n, (h->nchg - n) * sizeof(*h->chg));
	h->nchg -= n;
	/* Positions moved: later flips append (applied in order). */
	h->chg_gen++;
	pthread_mutex_unlock(&h->mu);
	return n;
}

uint32_t health_sid(void *arg, size_t zi, size_t si, size_t bi)
{
	struct health *h = arg;
	bool in;
	const struct probe *p = probe_find(h->view, zi, si, bi, &in);
	return p ? p->sid : 0;
}

const uint32_t health_hist_le_ms[HEALTH_HIST_BUCKETS] = { 1, 5, 10, 25, 50, 100, 250, 500, 1000,
	                                                        2500, 5000 };

void health_histogram(struct health *h, uint64_t *buckets, uint64_t *count, uint64_t *sum_ms)
{
	pthread_mutex_lock(&h->mu);
	memcpy(buckets, h->hist, sizeof(h->hist));
	*count = h->hist_count;
	*sum_ms = h->hist_sum_ms;
	pthread_mutex_unlock(&h->mu);
}

bool health_checked(struct health *h, size_t zi, size_t si, size_t bi)
{
	bool in;
	pthread_mutex_lock(&h->mu);
	bool checked = probe_find(h->view, zi, si, bi, &in) != NULL;
	pthread_mutex_unlock(&h->mu);
	return checked;
}

bool health_first_round_done(struct health *h)
{
	bool done = true;
	pthread_mutex_lock(&h->mu);
	const struct view *v = h->view;
	for (size_t i = 0; i < v->nprobes && done; i++)
		if (v->probes[i].checked && v->probes[i].st.checks == 0)
			done = false;
	pthread_mutex_unlock(&h->mu);
	return done;
}

/* Control thread; not concurrently with health_reconfigure. */
void health_stop(struct health *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->mu);
	h->stopping = true;
	pthread_mutex_unlock(&h->mu);
	wake(h);
	pthread_join(h->thread, NULL);
	/* The watcher closed every connection (probe_cancel). */
	view_free(h->view);
	SSL_CTX_free(h->tls);
	free(h->chg);
	close(h->epfd);
	close(h->wakefd);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cond);
	free(h);
}

unsigned health_ready_bound_ms(const struct config *cfg)
{
	uint32_t longest = 0;
	for (size_t i = 0; i < cfg->nzones; i++)
		for (size_t j = 0; j < cfg->zones[i].nservices; j++) {
			const struct cfg_service *s = &cfg->zones[i].services[j];
			for (size_t k = 0; k < s->nbackends; k++) {
				const struct cfg_check *c = cfg_backend_check(s, &s->backends[k]);
				uint32_t t = c->timeout_ms && c->timeout_ms <= c->interval_ms ? c->timeout_ms
				                                                             : c->interval_ms;
				if (c->type != CFG_CHECK_NONE && t > longest)
					longest = t;
			}
		}
	return 2 * (uint64_t)longest < HEALTH_READY_BOUND_MAX_MS ? 2 * longest
	                                                        : HEALTH_READY_BOUND_MAX_MS;
}

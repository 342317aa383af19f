/* forward.c -- the forwarder thread: queries for names outside our zones go
 * upstream through one c-ares channel that this thread drives from its own
 * epoll loop; answers go to the client (server_reply) and the cache.
 * It does not parse client requests (query.c does) or own sockets to
 * clients (server.c does). */
#include "forward.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

enum {
	/* The longest the thread sleeps: bounds how late it sees the stop flag. */
	WAIT_MS = 200,
	EPOLL_BATCH = 64,
	/* Upstream ids are unique among queries in flight (c-ares matches an
	 * answer to the first query with its id, so a duplicate would make the
	 * other one time out); max-outstanding is capped below 65536. */
	OUTSTANDING_MAX = 60000,
	ID_BATCH = 256,
	OVER_CAP_LOG_MS = 10000,
	/* Header, question, OPT. */
	QUERY_MAX = DNS_HEADER_LEN + DNS_NAME_MAX + 4 + 11,
};

/* One client query, from forward_submit until c-ares is done with it. */
struct fwd_req {
	struct fwd_req *next, *prev;  /* submission queue (next), then pending list */
	struct forward *f;
	struct query_forward fq;
	struct server_route route;
	uint64_t deadline_ms;
	uint64_t sent_us;             /* CLOCK_MONOTONIC when handed to c-ares */
	uint16_t up_id;
	bool answered;                /* the client got SERVFAIL at the deadline */
};

struct forward {
	struct forward_settings set;
	struct cfg_listen upstreams[FORWARD_UPSTREAMS_MAX];
	pthread_t thread;
	bool started;
	int epfd, evfd;
	atomic_bool stop;
	atomic_uint outstanding;      /* submitted and not yet freed */
	atomic_uint_fast64_t over_cap, forwarded, answered, failed;
	/* Written by the forwarder thread only, read by scrapes. */
	atomic_uint_fast64_t dur_bucket[FORWARD_NBUCKETS], dur_count, dur_sum_us;

	/* Submission queue, from workers to the thread. */
	pthread_mutex_t mu;
	struct fwd_req *qhead, *qtail;
	bool closed;

	/* Thread only. */
	ares_channel ch;
	struct fwd_req *phead, *ptail;   /* waiting for upstream, by deadline */
	uint8_t ids_used[65536 / 8];
	uint16_t ids[ID_BATCH];
	unsigned nids;
	uint64_t over_cap_logged, last_over_log_ms;
	uint8_t *buf;                    /* DNS_MSG_MAX: the answer being sent */
};

const uint32_t forward_bucket_us[FORWARD_NBUCKETS] = {
	250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000,
	2500000, 5000000,
};

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* One upstream round trip of r, answered or not. Forwarder thread. */
static void observe_upstream(struct forward *f, const struct fwd_req *r)
{
	uint64_t us = now_us() - r->sent_us;
	unsigned b = 0;
	while (b < FORWARD_NBUCKETS && us > forward_bucket_us[b])
		b++;
	if (b < FORWARD_NBUCKETS)
		atomic_fetch_add_explicit(&f->dur_bucket[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&f->dur_count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&f->dur_sum_us, us, memory_order_relaxed);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* ---- answers we make ourselves ---------------------------------------- */

int forward_error(const struct query_forward *fq, unsigned rcode, uint16_t udp_max_payload,
                  uint8_t *out, size_t cap)
{
	struct wire_writer w;
	wire_writer_init(&w, out, cap);
	struct dns_header h = {
		.id = fq->id,
		.flags = (uint16_t)(DNS_FLAG_QR | DNS_FLAG_RA | (fq->flags & (DNS_FLAG_RD | DNS_FLAG_CD)) |
		                    (rcode & 0xfu)),
		.qdcount = 1,
		.arcount = fq->edns != CACHE_EDNS_NONE,
	};
	wire_write_header(&w, &h);
	wire_write_name(&w, fq->q.name, fq->q.namelen, false);
	wire_write_u16(&w, fq->q.qtype);
	wire_write_u16(&w, fq->q.qclass);
	if (fq->edns != CACHE_EDNS_NONE) {
		wire_write_u8(&w, 0);
		wire_write_u16(&w, DNS_TYPE_OPT);
		wire_write_u16(&w, udp_max_payload);
		wire_write_u32(&w, fq->edns == CACHE_EDNS_DO ? DNS_EDNS_DO : 0);
		wire_write_u16(&w, 0);
	}
	return w.err ? -1 : (int)w.pos;
}

/* The upstream query: the client's question in the client's case (0x20
 * survives), RD and CD as asked, a fresh id, and an OPT record carrying
 * only our payload size and the DO bit if the client sent EDNS. The
 * client's own options (cookies, client subnet, padding) are not passed
 * on: the answer is cached for every client. */
static size_t build_query(const struct fwd_req *r, uint16_t udp_max_payload, uint8_t *out)
{
	const struct query_forward fq = r->fq;
	struct wire_writer w;
	wire_writer_init(&w, out, QUERY_MAX);
	struct dns_header h = {
		.id = r->up_id,
		.flags = (uint16_t)(fq.flags & (DNS_FLAG_RD | DNS_FLAG_CD)),
		.qdcount = 1,
		.arcount = fq.edns != CACHE_EDNS_NONE,
	};
	wire_write_header(&w, &h);
	wire_write_name(&w, fq.q.name, fq.q.namelen, false);
	wire_write_u16(&w, fq.q.qtype);
	wire_write_u16(&w, fq.q.qclass);
	if (fq.edns != CACHE_EDNS_NONE) {
		wire_write_u8(&w, 0);
		wire_write_u16(&w, DNS_TYPE_OPT);
		wire_write_u16(&w, udp_max_payload);
		wire_write_u32(&w, fq.edns == CACHE_EDNS_DO ? DNS_EDNS_DO : 0);
		wire_write_u16(&w, 0);
	}
	return w.err ? 0 : w.pos;
}

/* ---- ids ------------------------------------------------------------------ */

static uint16_t id_take(struct forward *f)
{
	for (;;) {
		if (f->nids == 0) {
			randombytes_buf(f->ids, sizeof(f->ids));
			f->nids = ID_BATCH;
		}
		uint16_t id = f->ids[--f->nids];
		if (!(f->ids_used[id >> 3] & (1u << (id & 7)))) {
			f->ids_used[id >> 3] |= (uint8_t)(1u << (id & 7));
			return id;
		}
	}
}

static void id_release(struct forward *f, uint16_t id)
{
	f->ids_used[id >> 3] &= (uint8_t)~(1u << (id & 7));
}

/* ---- pending list (by deadline: every query has the same timeout) ------- */

static void pending_append(struct forward *f, struct fwd_req *r)
{
	r->next = NULL;
	r->prev = f->ptail;
	if (f->ptail)
		f->ptail->next = r;
	else
		f->phead = r;
	f->ptail = r;
}

static void pending_unlink(struct forward *f, struct fwd_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		f->phead = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		f->ptail = r->prev;
	r->next = r->prev = NULL;
}

static void req_free(struct forward *f, struct fwd_req *r)
{
	id_release(f, r->up_id);
	free(r);
	atomic_fetch_sub(&f->outstanding, 1);
}

static void reply_servfail(struct forward *f, struct fwd_req *r)
{
	int n = forward_error(&r->fq, DNS_RCODE_SERVFAIL, f->set.udp_max_payload, f->buf, DNS_MSG_MAX);
	if (n > 0)
		server_reply(&r->route, f->buf, (size_t)n);
	atomic_fetch_add(&f->failed, 1);
}

/* ---- c-ares ----------------------------------------------------------------- */

static enum cache_edns req_edns(const struct fwd_req *r)
{
	return (enum cache_edns)r->fq.edns;
}

/* c-ares is done with r: status ARES_SUCCESS with the upstream answer
 * (any rcode, thanks to ARES_FLAG_NOCHECKRESP), or an error (timeout,
 * refused, destruction at shutdown). Runs on the forwarder thread, inside
 * ares_process_fd, ares_send or ares_destroy. */
static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct fwd_req *r = arg;
	struct forward *f = r->f;
	(void)timeouts;
	if (status == ARES_EDESTRUCTION) {
		req_free(f, r);
		return;
	}
	observe_upstream(f, r);
	bool good = status == ARES_SUCCESS && abuf && alen >= DNS_HEADER_LEN && alen <= DNS_MSG_MAX;
	if (good && f->set.cache)
		cache_put(f->set.cache, &r->fq.q, req_edns(r), abuf, (size_t)alen);
	if (r->answered) {
		req_free(f, r);
		return;
	}
	pending_unlink(f, r);
	size_t len = good ? (size_t)alen : 0;
	if (good) {
		memcpy(f->buf, abuf, len);
		good = cache_prepare_answer(f->buf, len, f->set.udp_max_payload);
	}
	if (good) {
		put16(f->buf, r->fq.id);
		uint16_t fl = (uint16_t)((f->buf[2] << 8 | f->buf[3]) & ~(DNS_FLAG_RD | DNS_FLAG_CD));
		put16(f->buf + 2, (uint16_t)(fl | (r->fq.flags & (DNS_FLAG_RD | DNS_FLAG_CD))));
		/* c-ares checked that the question is ours (in any case). */
		memcpy(f->buf + DNS_HEADER_LEN, r->fq.q.name, r->fq.q.namelen);
		if (len > r->fq.limit)
			len = cache_truncate(f->buf, len, r->fq.limit);
		good = len > 0;
	}
	if (good) {
		server_reply(&r->route, f->buf, len);
		atomic_fetch_add(&f->answered, 1);
	} else {
		reply_servfail(f, r);
	}
	req_free(f, r);
}

static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct forward *f = data;
	if (!readable && !writable) {
		epoll_ctl(f->epfd, EPOLL_CTL_DEL, fd, NULL);
		return;
	}
	struct epoll_event ev = {
		.events = (readable ? EPOLLIN : 0u) | (writable ? EPOLLOUT : 0u),
		.data.fd = fd,
	};
	if (epoll_ctl(f->epfd, EPOLL_CTL_MOD, fd, &ev) == -1 && errno == ENOENT &&
	    epoll_ctl(f->epfd, EPOLL_CTL_ADD, fd, &ev) == -1)
		log_warn("forward: epoll_ctl: %s", strerror(errno));
}

static void send_upstream(struct forward *f, struct fwd_req *r, uint64_t now)
{
	uint8_t q[QUERY_MAX];
	r->up_id = id_take(f);
	r->deadline_ms = now + f->set.timeout_ms;
	size_t len = build_query(r, f->set.udp_max_payload, q);
	if (!len) {
		reply_servfail(f, r);
		req_free(f, r);
		return;
	}
	pending_append(f, r);
	atomic_fetch_add(&f->forwarded, 1);
	r->sent_us = now_us();
	/* May call on_answer before it returns (e.g. out of memory). */
	ares_send(f->ch, q, (int)len, on_answer, r);
}

/* Takes everything workers queued. */
static void take_submissions(struct forward *f, uint64_t now)
{
	uint64_t n;
	if (read(f->evfd, &n, sizeof(n)) == -1 && errno != EAGAIN)
		log_warn("forward: eventfd read: %s", strerror(errno));
	pthread_mutex_lock(&f->mu);
	struct fwd_req *r = f->qhead;
	f->qhead = f->qtail = NULL;
	pthread_mutex_unlock(&f->mu);
	while (r) {
		struct fwd_req *next = r->next;
		send_upstream(f, r, now);
		r = next;
	}
}

/* Clients whose deadline passed get SERVFAIL now; c-ares may still finish
 * the query later (its answer is then only cached). */
static void expire(struct forward *f, uint64_t now)
{
	while (f->phead && f->phead->deadline_ms <= now) {
		struct fwd_req *r = f->phead;
		pending_unlink(f, r);
		r->answered = true;
		reply_servfail(f, r);
	}
}

static int wait_ms(struct forward *f, uint64_t now)
{
	struct timeval maxtv = { .tv_sec = 0, .tv_usec = WAIT_MS * 1000 }, tv;
	struct timeval *t = ares_timeout(f->ch, &maxtv, &tv);
	uint64_t ms = (uint64_t)t->tv_sec * 1000 + (uint64_t)(t->tv_usec + 999) / 1000;
	if (f->phead) {
		uint64_t d = f->phead->deadline_ms > now ? f->phead->deadline_ms - now : 0;
		if (d < ms)
			ms = d;
	}
	return (int)ms;
}

static void log_over_cap(struct forward *f, uint64_t now)
{
	uint64_t n = atomic_load(&f->over_cap);
	if (n == f->over_cap_logged)
		return;
	if (f->last_over_log_ms && now - f->last_over_log_ms < OVER_CAP_LOG_MS)
		return;
	log_warn("forward: %llu queries answered SERVFAIL at once: max-outstanding (%u) reached",
	         (unsigned long long)n, f->set.max_outstanding);
	f->over_cap_logged = n;
	f->last_over_log_ms = now;
}

static void *forward_main(void *arg)
{
	struct forward *f = arg;
	struct epoll_event ev[EPOLL_BATCH];
	while (!atomic_load(&f->stop)) {
		int n = epoll_wait(f->epfd, ev, EPOLL_BATCH, wait_ms(f, now_ms()));
		if (n == -1 && errno != EINTR) {
			log_err("forward: epoll_wait: %s; forwarding stopped", strerror(errno));
			break;
		}
		uint64_t now = now_ms();
		for (int i = 0; i < n; i++) {
			int fd = ev[i].data.fd;
			if (fd == f->evfd) {
				take_submissions(f, now);
				continue;
			}
			uint32_t e = ev[i].events;
			ares_process_fd(f->ch, e & (EPOLLIN | EPOLLERR | EPOLLHUP) ? fd : ARES_SOCKET_BAD,
			                e & EPOLLOUT ? fd : ARES_SOCKET_BAD);
		}
		/* Timeouts and retries. */
		ares_process_fd(f->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
		now = now_ms();
		expire(f, now);
		log_over_cap(f, now);
	}
	pthread_mutex_lock(&f->mu);
	f->closed = true;
	struct fwd_req *r = f->qhead;
	f->qhead = f->qtail = NULL;
	pthread_mutex_unlock(&f->mu);
	while (r) {
		struct fwd_req *next = r->next;
		free(r);
		atomic_fetch_sub(&f->outstanding, 1);
		r = next;
	}
	/* Calls on_answer with ARES_EDESTRUCTION for what is in flight. */
	ares_destroy(f->ch);
	f->ch = NULL;
	f->phead = f->ptail = NULL;
	return NULL;
}

/* ---- setup ------------------------------------------------------------------ */

static int channel_new(struct forward *f, char *err, size_t errlen)
{
	int rc = ares_library_init(ARES_LIB_INIT_ALL);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		return -1;
	}
	/* Bounded well inside timeout_ms: each server is tried twice, the
	 * second round with c-ares' doubled timeout; the client's deadline is
	 * kept by expire() whatever c-ares does. */
	unsigned ns = (unsigned)f->set.nupstreams;
	int per_try = (int)(f->set.timeout_ms / (2 * ns));
	struct ares_options o = {
		.flags = ARES_FLAG_NOCHECKRESP | ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES |
		         (f->set.tcp ? ARES_FLAG_USEVC | ARES_FLAG_STAYOPEN : 0),
		.timeout = per_try < 50 ? 50 : per_try,
		.tries = 2,
		.sock_state_cb = sock_state,
		.sock_state_cb_data = f,
	};
	int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB;
	rc = ares_init_options(&f->ch, &o, mask);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares init: %s", ares_strerror(rc));
		f->ch = NULL;
		return -1;
	}
	struct ares_addr_port_node nodes[FORWARD_UPSTREAMS_MAX];
	memset(nodes, 0, sizeof(nodes));
	for (size_t i = 0; i < f->set.nupstreams; i++) {
		const struct sockaddr_storage *ss = &f->upstreams[i].ss;
		struct ares_addr_port_node *nd = &nodes[i];
		nd->next = i + 1 < f->set.nupstreams ? &nodes[i + 1] : NULL;
		nd->family = ss->ss_family;
		int port;
		if (ss->ss_family == AF_INET6) {
			const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
			memcpy(&nd->addr.addr6, &s6->sin6_addr, 16);
			port = ntohs(s6->sin6_port);
		} else {
			const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
			memcpy(&nd->addr.addr4, &s4->sin_addr, 4);
			port = ntohs(s4->sin_port);
		}
		nd->udp_port = nd->tcp_port = port;
	}
	rc = ares_set_servers_ports(f->ch, nodes);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares servers: %s", ares_strerror(rc));
		return -1;
	}
	return 0;
}

struct forward *forward_start(const struct forward_settings *set, char *err, size_t errlen)
{
	if (set->nupstreams == 0 || set->nupstreams > FORWARD_UPSTREAMS_MAX || !set->timeout_ms ||
	    !set->max_outstanding) {
		snprintf(err, errlen, "forward: need 1..%d upstreams, a timeout and max-outstanding",
		         FORWARD_UPSTREAMS_MAX);
		return NULL;
	}
	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium initialization failed");
		return NULL;
	}
	struct forward *f = calloc(1, sizeof(*f));
	if (!f) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	f->set = *set;
	if (f->set.max_outstanding > OUTSTANDING_MAX)
		f->set.max_outstanding = OUTSTANDING_MAX;
	memcpy(f->upstreams, set->upstreams, set->nupstreams * sizeof(*set->upstreams));
	f->set.upstreams = f->upstreams;
	f->epfd = f->evfd = -1;
	atomic_init(&f->stop, false);
	atomic_init(&f->outstanding, 0);
	pthread_mutex_init(&f->mu, NULL);
	f->buf = malloc(DNS_MSG_MAX);
	f->epfd = epoll_create1(EPOLL_CLOEXEC);
	f->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!f->buf || f->epfd == -1 || f->evfd == -1) {
		snprintf(err, errlen, "forward: %s", f->buf ? strerror(errno) : "out of memory");
		goto fail;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = f->evfd };
	if (epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->evfd, &ev) == -1) {
		snprintf(err, errlen, "forward: epoll_ctl: %s", strerror(errno));
		goto fail;
	}
	if (channel_new(f, err, errlen) == -1)
		goto fail;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&f->thread, NULL, forward_main, f);
	if (rc == 0)
		pthread_setname_np(f->thread, "forward");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		snprintf(err, errlen, "forward: pthread_create: %s", strerror(rc));
		goto fail;
	}
	f->started = true;
	return f;
fail:
	if (f->ch)
		ares_destroy(f->ch);
	f->ch = NULL;
	forward_free(f);
	return NULL;
}

int forward_submit(struct forward *f, const struct query_forward *fq,
                   const struct server_peer *peer)
{
	if (atomic_fetch_add(&f->outstanding, 1) >= f->set.max_outstanding) {
		atomic_fetch_sub(&f->outstanding, 1);
		atomic_fetch_add(&f->over_cap, 1);
		return -1;
	}
	struct fwd_req *r = calloc(1, sizeof(*r));
	if (!r) {
		atomic_fetch_sub(&f->outstanding, 1);
		return -1;
	}
	r->f = f;
	r->fq = *fq;
	server_route_save(peer, &r->route);
	pthread_mutex_lock(&f->mu);
	bool closed = f->closed;
	if (!closed) {
		if (f->qtail)
			f->qtail->next = r;
		else
			f->qhead = r;
		f->qtail = r;
	}
	pthread_mutex_unlock(&f->mu);
	if (closed) {
		free(r);
		atomic_fetch_sub(&f->outstanding, 1);
		return -1;
	}
	uint64_t one = 1;
	/* A full counter (never in practice) still wakes the thread. */
	if (write(f->evfd, &one, sizeof(one)) == -1 && errno != EAGAIN)
		log_warn("forward: eventfd write: %s", strerror(errno));
	return 0;
}

void forward_stats(struct forward *f, struct forward_stats *out)
{
	out->forwarded = atomic_load(&f->forwarded);
	out->answered = atomic_load(&f->answered);
	out->failed = atomic_load(&f->failed);
	out->over_cap = atomic_load(&f->over_cap);
	for (unsigned b = 0; b < FORWARD_NBUCKETS; b++)
		out->dur_bucket[b] = atomic_load_explicit(&f->dur_bucket[b], memory_order_relaxed);
	out->dur_count = atomic_load_explicit(&f->dur_count, memory_order_relaxed);
	out->dur_sum_us = atomic_load_explicit(&f->dur_sum_us, memory_order_relaxed);
}

void forward_stop(struct forward *f)
{
	if (!f || !f->started)
		return;
	atomic_store(&f->stop, true);
	uint64_t one = 1;
	if (write(f->evfd, &one, sizeof(one)) == -1 && errno != EAGAIN)
		log_warn("forward: eventfd write: %s", strerror(errno));
	pthread_join(f->thread, NULL);
	f->started = false;
}

void forward_free(struct forward *f)
{
	if (!f)
		return;
	forward_stop(f);
	if (f->epfd != -1)
		close(f->epfd);
	if (f->evfd != -1)
		close(f->evfd);
	pthread_mutex_destroy(&f->mu);
	free(f->buf);
	free(f);
}

/* ---- upstream lists ------------------------------------------------------- */

int forward_read_resolv_conf(const char *path, struct cfg_listen *out, size_t max, size_t *n,
                             char *err, size_t errlen)
{
	FILE *fp = fopen(path, "r");
	*n = 0;
	if (!fp) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	char line[512];
	while (fgets(line, sizeof(line), fp) && *n < max) {
		char word[32], addr[128];
		if (sscanf(line, "%31s %127s", word, addr) != 2 || strcmp(word, "nameserver") != 0)
			continue;
		/* Scoped link-local addresses (fe80::1%eth0) are not supported
		 * by c-ares' server list: skipped. */
		if (strchr(addr, '%'))
			continue;
		char text[160];
		snprintf(text, sizeof(text), strchr(addr, ':') ? "[%s]:53" : "%s:53", addr);
		if (config_parse_listen(text, 53, &out[*n]) == 0)
			(*n)++;
	}
	fclose(fp);
	return 0;
}

static bool sa_addr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		              &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
	return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
	       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
}

static uint16_t sa_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

static bool sa_wildcard(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
	return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
}

/* Loopback, or an address of one of our interfaces. */
static bool sa_local(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6) {
		if (IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr))
			return true;
	} else if ((ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127) {
		return true;
	}
	struct ifaddrs *ifa;
	if (getifaddrs(&ifa) == -1)
		return false;
	bool found = false;
	for (struct ifaddrs *i = ifa; i && !found; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != ss->ss_family)
			continue;
		struct sockaddr_storage a;
		memset(&a, 0, sizeof(a));
		memcpy(&a, i->ifa_addr, ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
		                                                  : sizeof(struct sockaddr_in));
		found = sa_addr_equal(&a, ss);
	}
	freeifaddrs(ifa);
	return found;
}

bool forward_is_self(const struct cfg_listen *up, const struct cfg_listen *listen, size_t nlisten)
{
	for (size_t i = 0; i < nlisten; i++) {
		const struct sockaddr_storage *l = &listen[i].ss;
		if (l->ss_family != up->ss.ss_family)
			continue;
		/* A listen port 0 is picked by the kernel at start: no
		 * configured upstream can name it in advance. */
		if (sa_port(l) != sa_port(&up->ss))
			continue;
		if (sa_addr_equal(l, &up->ss) || (sa_wildcard(l) && sa_local(&up->ss)))
			return true;
	}
	return false;
}

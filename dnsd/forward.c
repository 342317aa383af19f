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

#include <urcu-qsbr.h>

#include "util/clock.h"
#include "guard.h"
#include "util/list.h"
#include "util/log.h"

enum {
	/* The longest the thread sleeps: bounds how late it sees the stop flag. */
	WAIT_MS = 200,
	EPOLL_BATCH = 64,
	/* Upstream ids are unique among queries in flight (an answer is
	 * matched to its query by id, so a duplicate would make the other one
	 * time out); max-outstanding is capped below 65536. */
	OUTSTANDING_MAX = 60000,
	ID_BATCH = 256,
	OVER_CAP_LOG_MS = 10000,
	/* Header, question, OPT. */
	QUERY_MAX = DNS_HEADER_LEN + DNS_NAME_MAX + 4 + 11,
	/* Questions in flight, by hash: leaders of coalesced queries. */
	FLIGHT_BITS = 16,
	/* UDP answers read per socket per wakeup (fairness among sockets). */
	UDP_READ_BATCH = 64,
	/* The shortest wait before a UDP query is sent again. */
	RETRY_MIN_MS = 50,
};

/* One client query, from forward_submit until it is answered and nobody
 * (c-ares) holds it any more. A query whose question (name in any case,
 * type, class, EDNS state, CD) is already upstream is not sent again: it
 * follows that leader and takes its answer (coalescing, as Unbound and
 * CoreDNS do). This is also what stops forwarding loops: a query that
 * comes back to us (through ourselves or a peer forwarding to us) joins
 * its own leader instead of going upstream once more. */
struct fwd_req {
	struct fwd_req *next, *prev;   /* submission queue (next), then pending list */
	struct fwd_req *rnext, *rprev; /* UDP: the retry list, by retry time */
	struct fwd_req *hnext;         /* leader: chain in the flight table */
	struct fwd_req *leader;        /* follower: whose answer it takes */
	struct fwd_req *followers;     /* leader: its followers, through fnext */
	struct fwd_req *fnext;
	struct forward *f;
	struct query_forward fq;
	struct server_route route;
	uint64_t sent_us;             /* CLOCK_MONOTONIC of the first send upstream */
	uint64_t deadline_ms, retry_ms;
	uint64_t hash;
	uint16_t up_id;
	uint16_t qlen;
	uint8_t tries;                 /* UDP sends so far */
	uint8_t server;                /* upstream of the last UDP send */
	bool has_id;
	bool in_flight;                /* leader listed in the flight table */
	bool in_retry;
	bool in_ares;                  /* c-ares (TCP) holds it: freed in on_answer */
	bool answered;                 /* the client got an answer or SERVFAIL */
	uint8_t q[QUERY_MAX];          /* the upstream query, for resends */
};

struct forward {
	struct forward_settings set;
	struct cfg_listen upstreams[FORWARD_UPSTREAMS_MAX];
	pthread_t thread;
	bool started;
	int epfd, evfd;
	int udp[FORWARD_UPSTREAMS_MAX];  /* one connected UDP socket per upstream */
	atomic_bool stop;
	atomic_uint outstanding;      /* submitted and not yet freed */
	atomic_uint_fast64_t over_cap, forwarded, answered, failed, coalesced, bad, via_tcp;
	/* Written by the forwarder thread only, read by scrapes. */
	atomic_uint_fast64_t dur_bucket[FORWARD_NBUCKETS], dur_count, dur_sum_us;
	atomic_uint_fast64_t rrl_dropped;

	/* Submission queue, from workers to the thread. */
	pthread_mutex_t mu;
	struct fwd_req *qhead, *qtail;
	bool closed;

	/* Thread only. */
	ares_channel ch;                 /* TCP to upstreams */
	struct fwd_req *phead, *ptail;   /* answer pending, by deadline */
	struct fwd_req *rhead, *rtail;   /* UDP resends, by retry time */
	struct fwd_req **by_id;          /* 65536: upstream id -> query */
	struct fwd_req **flight;         /* 1 << FLIGHT_BITS chains */
	uint8_t hkey[crypto_shorthash_KEYBYTES];
	uint16_t ids[ID_BATCH];
	unsigned nids;
	uint32_t retry_ms;               /* between UDP sends of one query */
	unsigned max_tries;              /* UDP sends of one query */
	uint64_t over_cap_logged, last_over_log_ms;
	uint8_t *buf;                    /* DNS_MSG_MAX: the answer being sent */
	uint8_t *rbuf;                   /* DNS_MSG_MAX: a UDP answer being read */
};

const uint32_t forward_bucket_us[FORWARD_NBUCKETS] = {
	250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000,
	2500000, 5000000,
};

/* One upstream round trip of r, answered or not. Forwarder thread. */
static void observe_upstream(struct forward *f, const struct fwd_req *r)
{
	uint64_t us = clock_mono_us() - r->sent_us;
	unsigned b = 0;
	while (b < FORWARD_NBUCKETS && us > forward_bucket_us[b])
		b++;
	if (b < FORWARD_NBUCKETS)
		atomic_fetch_add_explicit(&f->dur_bucket[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&f->dur_count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&f->dur_sum_us, us, memory_order_relaxed);
}

/* ---- answers we make ourselves ---------------------------------------- */

int forward_error(const struct query_forward *fq, unsigned rcode, uint16_t udp_max_payload,
                  uint8_t *out, size_t cap)
{
	struct dns_header req = { .id = fq->id, .flags = fq->flags };
	int n = wire_reply_short(&req, &fq->q, rcode, DNS_FLAG_RA, out, cap);
	if (n < 0 || fq->edns == CACHE_EDNS_NONE)
		return n;
	struct wire_writer w;
	wire_writer_init(&w, out, cap);
	w.pos = (size_t)n;
	wire_patch_u16(&w, 10, 1);                /* ARCOUNT: the OPT */
	wire_write_u8(&w, 0);
	wire_write_u16(&w, DNS_TYPE_OPT);
	wire_write_u16(&w, udp_max_payload);
	wire_write_u32(&w, fq->edns == CACHE_EDNS_DO ? DNS_EDNS_DO : 0);
	wire_write_u16(&w, 0);
	return w.err ? -1 : (int)w.pos;
}

/* The upstream query: the client's question in the client's case (0x20
 * survives), RD and CD as asked, a fresh id, and an OPT record carrying
 * only our payload size and the DO bit if the client sent EDNS. The
 * client's own options (cookies, client subnet, padding) are not passed
 * on: the answer is cached for every client. */
static size_t build_query(const struct fwd_req *r, uint16_t udp_max_payload, uint8_t *out)
{
	const struct query_forward *fq = &r->fq;
	struct wire_writer w;
	wire_writer_init(&w, out, QUERY_MAX);
	struct dns_header h = {
		.id = r->up_id,
		.flags = (uint16_t)(fq->flags & (DNS_FLAG_RD | DNS_FLAG_CD)),
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
	return w.err ? 0 : w.pos;
}

/* ---- ids ------------------------------------------------------------------ */

static void id_take(struct forward *f, struct fwd_req *r)
{
	for (;;) {
		if (f->nids == 0) {
			randombytes_buf(f->ids, sizeof(f->ids));
			f->nids = ID_BATCH;
		}
		uint16_t id = f->ids[--f->nids];
		if (!f->by_id[id]) {
			f->by_id[id] = r;
			r->up_id = id;
			r->has_id = true;
			return;
		}
	}
}

/* ---- lists ------------------------------------------------------------------ */

/* The pending list is in deadline order: every query has the same timeout. */
static void pending_append(struct forward *f, struct fwd_req *r)
{
	DLIST_APPEND(f->phead, f->ptail, r, prev, next);
}

static void pending_unlink(struct forward *f, struct fwd_req *r)
{
	DLIST_UNLINK(f->phead, f->ptail, r, prev, next);
}

/* The retry list is in retry order: every resend waits retry_ms. */
static void retry_append(struct forward *f, struct fwd_req *r, uint64_t when)
{
	r->retry_ms = when;
	DLIST_APPEND(f->rhead, f->rtail, r, rprev, rnext);
	r->in_retry = true;
}

static void retry_unlink(struct forward *f, struct fwd_req *r)
{
	if (!r->in_retry)
		return;
	DLIST_UNLINK(f->rhead, f->rtail, r, rprev, rnext);
	r->in_retry = false;
}

/* ---- questions in flight -------------------------------------------------- */

static uint64_t question_hash(const struct forward *f, const struct query_forward *fq)
{
	uint8_t key[DNS_NAME_MAX + 6];
	memcpy(key, fq->q.name, fq->q.namelen);
	wire_name_lower(key, fq->q.namelen);
	size_t n = fq->q.namelen;
	key[n] = (uint8_t)(fq->q.qtype >> 8);
	key[n + 1] = (uint8_t)fq->q.qtype;
	key[n + 2] = (uint8_t)(fq->q.qclass >> 8);
	key[n + 3] = (uint8_t)fq->q.qclass;
	key[n + 4] = fq->edns;
	key[n + 5] = (fq->flags & DNS_FLAG_CD) ? 1 : 0;
	uint8_t out[crypto_shorthash_BYTES];
	crypto_shorthash(out, key, n + 6, f->hkey);
	uint64_t h;
	memcpy(&h, out, sizeof(h));
	return h;
}

static bool same_question(const struct query_forward *a, const struct query_forward *b)
{
	return a->q.qtype == b->q.qtype && a->q.qclass == b->q.qclass && a->edns == b->edns &&
	       (a->flags & DNS_FLAG_CD) == (b->flags & DNS_FLAG_CD) &&
	       wire_name_equal(a->q.name, a->q.namelen, b->q.name, b->q.namelen);
}

static struct fwd_req **flight_slot(struct forward *f, uint64_t hash)
{
	return &f->flight[hash & ((1u << FLIGHT_BITS) - 1)];
}

static struct fwd_req *flight_find(struct forward *f, const struct fwd_req *r)
{
	for (struct fwd_req *l = *flight_slot(f, r->hash); l; l = l->hnext)
		if (l->hash == r->hash && same_question(&l->fq, &r->fq))
			return l;
	return NULL;
}

static void flight_remove(struct forward *f, struct fwd_req *r)
{
	if (!r->in_flight)
		return;
	struct fwd_req **pp = flight_slot(f, r->hash);
	while (*pp && *pp != r)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = r->hnext;
	r->hnext = NULL;
	r->in_flight = false;
}

/* ---- finishing ------------------------------------------------------------------ */

static void req_free(struct forward *f, struct fwd_req *r)
{
	if (r->has_id && f->by_id[r->up_id] == r)
		f->by_id[r->up_id] = NULL;
	free(r);
	atomic_fetch_sub(&f->outstanding, 1);
}

/* Sends msg to r's client, through response rate limiting for UDP (as
 * every answer of query.c). */
static void reply(struct forward *f, struct fwd_req *r, uint8_t *msg, size_t len, size_t opt_off)
{
	int n = (int)len;
	if (!r->route.tcp) {
		rcu_thread_online();
		n = guard_response_later(f->set.guard, (const struct sockaddr *)&r->route.peer,
		                         r->fq.cookie_ok, msg, n, DNS_HEADER_LEN + r->fq.q.namelen + 4,
		                         opt_off);
		rcu_thread_offline();
	}
	if (n > 0)
		server_reply(&r->route, msg, (size_t)n);
	else
		atomic_fetch_add(&f->rrl_dropped, 1);
}

static void reply_servfail(struct forward *f, struct fwd_req *r)
{
	int n = forward_error(&r->fq, DNS_RCODE_SERVFAIL, f->set.udp_max_payload, f->buf, DNS_MSG_MAX);
	if (n > 0)
		reply(f, r, f->buf, (size_t)n,
		      r->fq.edns != CACHE_EDNS_NONE ? DNS_HEADER_LEN + r->fq.q.namelen + 4 : 0);
	atomic_fetch_add(&f->failed, 1);
}

/* Answers r's client with upstream message msg (checked and rewritten
 * for it), or SERVFAIL if msg is NULL or broken. */
static void answer_one(struct forward *f, struct fwd_req *r, const uint8_t *msg, size_t len)
{
	size_t opt_off = 0;
	size_t n = msg ? cache_answer_rewrite(msg, len, &r->fq.q, r->fq.id, r->fq.flags,
	                                      f->set.udp_max_payload, f->buf, DNS_MSG_MAX, &opt_off)
	               : 0;
	if (n > r->fq.limit) {
		n = cache_truncate(f->buf, n, r->fq.limit);
		if (opt_off)
			opt_off = DNS_HEADER_LEN + r->fq.q.namelen + 4;
	}
	if (n) {
		reply(f, r, f->buf, n, opt_off);
		atomic_fetch_add(&f->answered, 1);
	} else {
		reply_servfail(f, r);
	}
	r->answered = true;
}

/* Leader r is done (msg: the upstream's answer, or NULL: none): it and
 * its followers are answered, the answer cached, the followers freed.
 * r itself stays for the caller to free (or c-ares to finish). */
static void finish(struct forward *f, struct fwd_req *r, const uint8_t *msg, size_t len)
{
	flight_remove(f, r);
	retry_unlink(f, r);
	if (msg && f->set.cache && cache_answer_rewrite(msg, len, &r->fq.q, r->fq.id, r->fq.flags,
	                                                 f->set.udp_max_payload, f->buf, DNS_MSG_MAX,
	                                                 NULL))
		cache_put(f->set.cache, &r->fq.q, (enum cache_edns)r->fq.edns, r->fq.flags, msg, len);
	if (!r->answered) {
		pending_unlink(f, r);
		answer_one(f, r, msg, len);
	}
	struct fwd_req *fl = r->followers;
	r->followers = NULL;
	while (fl) {
		struct fwd_req *next = fl->fnext;
		pending_unlink(f, fl);
		answer_one(f, fl, msg, len);
		req_free(f, fl);
		fl = next;
	}
}

/* ---- c-ares (TCP) ----------------------------------------------------------- */

/* c-ares is done with r: status ARES_SUCCESS with the upstream answer
 * (any rcode, thanks to ARES_FLAG_NOCHECKRESP), or an error (timeout,
 * refused, destruction at shutdown). Runs on the forwarder thread, inside
 * ares_process_fd, ares_send or ares_destroy. */
static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct fwd_req *r = arg;
	struct forward *f = r->f;
	(void)timeouts;
	r->in_ares = false;
	if (status == ARES_EDESTRUCTION) {
		req_free(f, r);
		return;
	}
	observe_upstream(f, r);
	bool good = status == ARES_SUCCESS && abuf && alen >= DNS_HEADER_LEN && alen <= DNS_MSG_MAX;
	if (r->answered) {
		/* The client had SERVFAIL at its deadline: only cache it. */
		if (good && f->set.cache && cache_answer_rewrite(abuf, (size_t)alen, &r->fq.q, r->fq.id,
		                                                 r->fq.flags, f->set.udp_max_payload,
		                                                 f->buf, DNS_MSG_MAX, NULL))
			cache_put(f->set.cache, &r->fq.q, (enum cache_edns)r->fq.edns, r->fq.flags, abuf,
			          (size_t)alen);
		req_free(f, r);
		return;
	}
	finish(f, r, good ? abuf : NULL, good ? (size_t)alen : 0);
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

static void send_tcp(struct forward *f, struct fwd_req *r)
{
	retry_unlink(f, r);
	r->in_ares = true;
	atomic_fetch_add(&f->via_tcp, 1);
	/* May call on_answer before it returns (e.g. out of memory). */
	ares_send(f->ch, r->q, (int)r->qlen, on_answer, r);
}

/* ---- UDP ------------------------------------------------------------------------ */

/* Sends r's query over UDP to the next upstream in turn (the first one
 * first, as resolv.conf), to be sent again after retry_ms. A failed send
 * waits for the retry too. */
static void send_udp(struct forward *f, struct fwd_req *r, uint64_t now)
{
	r->server = (uint8_t)(r->tries % f->set.nupstreams);
	r->tries++;
	if (send(f->udp[r->server], r->q, r->qlen, 0) == -1 && errno != EAGAIN &&
	    errno != ECONNREFUSED)
		log_debug("forward: send: %s", strerror(errno));
	if (r->tries < f->max_tries)
		retry_append(f, r, now + f->retry_ms);
}

/* A datagram from upstream s. It is taken only if it answers the query
 * with its id, last sent over UDP, in every part (cache_answer_rewrite):
 * anything else (forged, late, broken) is counted and ignored, and the
 * query waits on for a real answer. A truncated answer (TC) is asked again
 * over TCP. Answers are taken up to any size we can read, which covers
 * the payload size we advertise (c-ares' own UDP took 512 bytes and sent
 * everything longer to TCP). */
static void on_datagram(struct forward *f, const uint8_t *msg, size_t len)
{
	if (len < DNS_HEADER_LEN)
		return;
	struct fwd_req *r = f->by_id[(uint16_t)(msg[0] << 8 | msg[1])];
	if (!r || r->in_ares || r->answered ||
	    !cache_answer_rewrite(msg, len, &r->fq.q, r->fq.id, r->fq.flags, f->set.udp_max_payload,
	                          f->buf, DNS_MSG_MAX, NULL)) {
		atomic_fetch_add(&f->bad, 1);
		return;
	}
	if (msg[2] & (DNS_FLAG_TC >> 8)) {
		send_tcp(f, r);
		return;
	}
	observe_upstream(f, r);
	finish(f, r, msg, len);
	req_free(f, r);
}

/* Upstream s refused (ICMP port unreachable on its connected socket):
 * queries last sent to it go on to the next upstream at once, or fail now
 * if none is left. */
static void on_refused(struct forward *f, unsigned s, uint64_t now)
{
again:
	for (struct fwd_req *r = f->phead; r; r = r->next) {
		if (r->leader || r->in_ares || r->answered || r->server != s || !r->tries)
			continue;
		retry_unlink(f, r);
		if (f->set.nupstreams > 1 && r->tries < f->max_tries) {
			send_udp(f, r, now);
			continue;
		}
		/* finish() frees r's followers, which are further down this list. */
		finish(f, r, NULL, 0);
		req_free(f, r);
		goto again;
	}
}

static void read_udp(struct forward *f, unsigned s, uint64_t now)
{
	for (unsigned i = 0; i < UDP_READ_BATCH; i++) {
		ssize_t n = recv(f->udp[s], f->rbuf, DNS_MSG_MAX, 0);
		if (n == -1) {
			if (errno == ECONNREFUSED)
				on_refused(f, s, now);
			else if (errno != EAGAIN && errno != EINTR)
				log_debug("forward: recv: %s", strerror(errno));
			if (errno != ECONNREFUSED)
				return;
			continue;
		}
		on_datagram(f, f->rbuf, (size_t)n);
	}
}

static void resend_due(struct forward *f, uint64_t now)
{
	while (f->rhead && f->rhead->retry_ms <= now) {
		struct fwd_req *r = f->rhead;
		retry_unlink(f, r);
		send_udp(f, r, now);
	}
}

/* ---- the thread ------------------------------------------------------------------ */

/* A new query: follows a leader with the same question, or goes upstream. */
static void start_query(struct forward *f, struct fwd_req *r, uint64_t now)
{
	r->deadline_ms = now + f->set.timeout_ms;
	r->hash = question_hash(f, &r->fq);
	struct fwd_req *l = flight_find(f, r);
	if (l) {
		r->leader = l;
		r->fnext = l->followers;
		l->followers = r;
		pending_append(f, r);
		atomic_fetch_add(&f->coalesced, 1);
		return;
	}
	id_take(f, r);
	size_t len = build_query(r, f->set.udp_max_payload, r->q);
	if (!len) {
		reply_servfail(f, r);
		req_free(f, r);
		return;
	}
	r->qlen = (uint16_t)len;
	r->hnext = *flight_slot(f, r->hash);
	*flight_slot(f, r->hash) = r;
	r->in_flight = true;
	pending_append(f, r);
	atomic_fetch_add(&f->forwarded, 1);
	r->sent_us = clock_mono_us();
	if (f->set.tcp)
		send_tcp(f, r);
	else
		send_udp(f, r, now);
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
		start_query(f, r, now);
		r = next;
	}
}

/* Clients whose deadline passed get SERVFAIL now, with the followers of
 * a leader. A leader c-ares still holds (TCP) stays until it is done: its
 * answer is then only cached. */
static void expire(struct forward *f, uint64_t now)
{
	while (f->phead && f->phead->deadline_ms <= now) {
		struct fwd_req *r = f->phead;
		if (r->leader) {
			/* Leaders expire first (older): not reached in practice. */
			pending_unlink(f, r);
			r->answered = true;
			reply_servfail(f, r);
			continue;
		}
		finish(f, r, NULL, 0);
		if (!r->in_ares)
			req_free(f, r);
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
	if (f->rhead) {
		uint64_t d = f->rhead->retry_ms > now ? f->rhead->retry_ms - now : 0;
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

static int udp_index(const struct forward *f, int fd)
{
	for (size_t i = 0; i < f->set.nupstreams; i++)
		if (f->udp[i] == fd)
			return (int)i;
	return -1;
}

static void *forward_main(void *arg)
{
	struct forward *f = arg;
	struct epoll_event ev[EPOLL_BATCH];
	/* An RCU reader only while it applies rate limiting (reply). */
	rcu_register_thread();
	rcu_thread_offline();
	while (!atomic_load(&f->stop)) {
		int n = epoll_wait(f->epfd, ev, EPOLL_BATCH, wait_ms(f, clock_mono_ms()));
		if (n == -1 && errno != EINTR) {
			log_err("forward: epoll_wait: %s; forwarding stopped", strerror(errno));
			break;
		}
		uint64_t now = clock_mono_ms();
		for (int i = 0; i < n; i++) {
			int fd = ev[i].data.fd;
			if (fd == f->evfd) {
				take_submissions(f, now);
				continue;
			}
			int s = udp_index(f, fd);
			if (s >= 0) {
				read_udp(f, (unsigned)s, now);
				continue;
			}
			uint32_t e = ev[i].events;
			ares_process_fd(f->ch, e & (EPOLLIN | EPOLLERR | EPOLLHUP) ? fd : ARES_SOCKET_BAD,
			                e & EPOLLOUT ? fd : ARES_SOCKET_BAD);
		}
		/* Timeouts and retries. */
		ares_process_fd(f->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
		now = clock_mono_ms();
		resend_due(f, now);
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
	/* Queries not in c-ares' hands; then c-ares calls on_answer with
	 * ARES_EDESTRUCTION for what it holds. */
	for (r = f->phead; r;) {
		struct fwd_req *next = r->next;
		pending_unlink(f, r);
		if (!r->in_ares)
			req_free(f, r);
		r = next;
	}
	ares_destroy(f->ch);
	f->ch = NULL;
	f->phead = f->ptail = NULL;
	f->rhead = f->rtail = NULL;
	rcu_unregister_thread();
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
	/* TCP only (c-ares' UDP takes no answer over 512 bytes but by TCP):
	 * each server is tried twice, the second round with c-ares' doubled
	 * timeout; the client's deadline is kept by expire() whatever c-ares
	 * does. */
	unsigned ns = (unsigned)f->set.nupstreams;
	int per_try = (int)(f->set.timeout_ms / (2 * ns));
	struct ares_options o = {
		.flags = ARES_FLAG_NOCHECKRESP | ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES |
		         ARES_FLAG_USEVC | ARES_FLAG_STAYOPEN,
		.timeout = per_try < RETRY_MIN_MS ? RETRY_MIN_MS : per_try,
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

/* One UDP socket per upstream, connected: the kernel passes on only its
 * datagrams, and an ICMP port unreachable comes back as ECONNREFUSED. */
static int udp_open(struct forward *f, char *err, size_t errlen)
{
	for (size_t i = 0; i < f->set.nupstreams; i++) {
		const struct cfg_listen *u = &f->upstreams[i];
		int fd = socket(u->ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd == -1 || connect(fd, (const struct sockaddr *)&u->ss, u->len) == -1) {
			snprintf(err, errlen, "forward: UDP socket to upstream %zu: %s", i + 1,
			         strerror(errno));
			if (fd != -1)
				close(fd);
			return -1;
		}
		f->udp[i] = fd;
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
		if (epoll_ctl(f->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
			snprintf(err, errlen, "forward: epoll_ctl: %s", strerror(errno));
			return -1;
		}
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
	for (size_t i = 0; i < FORWARD_UPSTREAMS_MAX; i++)
		f->udp[i] = -1;
	/* Every upstream twice in turn within the timeout, as c-ares did. */
	f->max_tries = 2 * (unsigned)set->nupstreams;
	f->retry_ms = set->timeout_ms / f->max_tries;
	if (f->retry_ms < RETRY_MIN_MS)
		f->retry_ms = RETRY_MIN_MS;
	randombytes_buf(f->hkey, sizeof(f->hkey));
	f->epfd = f->evfd = -1;
	atomic_init(&f->stop, false);
	atomic_init(&f->outstanding, 0);
	pthread_mutex_init(&f->mu, NULL);
	f->buf = malloc(DNS_MSG_MAX);
	f->rbuf = malloc(DNS_MSG_MAX);
	f->by_id = calloc(65536, sizeof(*f->by_id));
	f->flight = calloc((size_t)1 << FLIGHT_BITS, sizeof(*f->flight));
	f->epfd = epoll_create1(EPOLL_CLOEXEC);
	f->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!f->buf || !f->rbuf || !f->by_id || !f->flight || f->epfd == -1 || f->evfd == -1) {
		snprintf(err, errlen, "forward: %s", f->epfd == -1 || f->evfd == -1 ? strerror(errno)
		                                                                    : "out of memory");
		goto fail;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = f->evfd };
	if (epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->evfd, &ev) == -1) {
		snprintf(err, errlen, "forward: epoll_ctl: %s", strerror(errno));
		goto fail;
	}
	if ((!set->tcp && udp_open(f, err, errlen) == -1) || channel_new(f, err, errlen) == -1)
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
	out->coalesced = atomic_load(&f->coalesced);
	out->bad = atomic_load(&f->bad);
	out->via_tcp = atomic_load(&f->via_tcp);
	out->rrl_dropped = atomic_load(&f->rrl_dropped);
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
	for (size_t i = 0; i < FORWARD_UPSTREAMS_MAX; i++)
		if (f->udp[i] != -1)
			close(f->udp[i]);
	if (f->epfd != -1)
		close(f->epfd);
	if (f->evfd != -1)
		close(f->evfd);
	pthread_mutex_destroy(&f->mu);
	free(f->buf);
	free(f->rbuf);
	free(f->by_id);
	free(f->flight);
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

/* An IPv4-mapped IPv6 address (::ffff:127.0.0.1) as the IPv4 address it
 * reaches; anything else unchanged. */
static void sa_unmap(const struct sockaddr_storage *in, struct sockaddr_storage *out)
{
	*out = *in;
	if (in->ss_family != AF_INET6)
		return;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)in;
	if (!IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		return;
	struct sockaddr_in s4;
	memset(&s4, 0, sizeof(s4));
	s4.sin_family = AF_INET;
	s4.sin_port = s6->sin6_port;
	memcpy(&s4.sin_addr, s6->sin6_addr.s6_addr + 12, 4);
	memset(out, 0, sizeof(*out));
	memcpy(out, &s4, sizeof(s4));
}

bool forward_is_self(const struct cfg_listen *upstream, const struct cfg_listen *listen,
                     size_t nlisten)
{
	struct cfg_listen unmapped = *upstream;
	sa_unmap(&upstream->ss, &unmapped.ss);
	const struct cfg_listen *up = &unmapped;
	for (size_t i = 0; i < nlisten; i++) {
		struct sockaddr_storage lss;
		sa_unmap(&listen[i].ss, &lss);
		const struct sockaddr_storage *l = &lss;
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

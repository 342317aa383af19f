/* notify.c -- NOTIFY (RFC 1996) sender: one thread with a UDP socket per
 * address family, a list of secondaries still to be told, and poll() with
 * the next retry as timeout. Retries back off 1, 2, 4, 8 s (RFC 1996 3.6
 * leaves the interval to us) until a NOTIFY answer with our ID arrives
 * from the secondary's address. */
#include "notify.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "util/addr.h"
#include "util/clock.h"
#include "util/log.h"

struct pending {
	struct pending *next;
	struct notify_job job;
	uint16_t id;
	unsigned attempts;
	uint64_t next_ms;
	uint64_t sent_ms;             /* the last send */
	bool newer;                   /* a newer serial came while this one was out */
	bool idle;                    /* answered: kept until next_ms only to space the next */
	struct tsig_ctx tsig;
};

struct notifier {
	bool running;
	pthread_t thread;
	pthread_mutex_t mu;
	struct pending *incoming;     /* submitted, not yet taken by the thread */
	int efd;                      /* wakes the thread: new jobs or stop */
	bool stop;
	int fd4, fd6;
};

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

/* The NOTIFY: opcode 4, AA, the zone's SOA as the question (RFC 1996 3.7). */
static void send_one(struct notifier *ns, struct pending *p)
{
	uint8_t msg[DNS_HEADER_LEN + DNS_NAME_MAX + 4 + TSIG_RR_MAX];
	struct wire_writer w;
	if (!p->attempts)
		getrandom(&p->id, sizeof(p->id), 0);
	wire_writer_init(&w, msg, sizeof(msg));
	struct dns_header h = {
		.id = p->id,
		.flags = (uint16_t)(DNS_OPCODE_NOTIFY << 11 | DNS_FLAG_AA),
		.qdcount = 1,
	};
	wire_write_header(&w, &h);
	wire_write_name(&w, p->job.zone, p->job.zonelen, false);
	wire_write_u16(&w, DNS_TYPE_SOA);
	wire_write_u16(&w, DNS_CLASS_IN);
	int n = w.err ? -1 : (int)w.pos;
	if (n > 0 && p->job.has_key) {
		tsig_ctx_init(&p->tsig, &p->job.key);
		n = tsig_sign(msg, (size_t)n, sizeof(msg), &p->tsig, (uint64_t)time(NULL));
	}
	int fd = p->job.addr.ss_family == AF_INET6 ? ns->fd6 : ns->fd4;
	if (n > 0 && fd != -1 &&
	    sendto(fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL,
	           (const struct sockaddr *)&p->job.addr, p->job.addrlen) == -1) {
		char a[80];
		addr_sockaddr_text((const struct sockaddr *)&p->job.addr, a, sizeof(a));
		log_debug("notify %s: %s", a, strerror(errno));
	}
	p->attempts++;
	p->sent_ms = clock_mono_ms();
	p->next_ms = p->sent_ms + ((uint64_t)NOTIFY_FIRST_WAIT_MS << (p->attempts - 1));
}

static void zone_text(const struct notify_job *j, char *buf, size_t len)
{
	if (wire_name_to_text(j->zone, j->zonelen, buf, len) < 0)
		snprintf(buf, len, "?");
}

/* The offset of the TSIG RR ending the message msg, or 0. */
static size_t tsig_offset(const uint8_t *msg, size_t len)
{
	struct wire_reader r;
	struct dns_header h;
	struct dns_question q;
	wire_reader_init(&r, msg, len);
	wire_read_header(&r, &h);
	for (unsigned i = 0; i < h.qdcount && !r.err; i++)
		wire_read_question(&r, &q);
	unsigned nrr = (unsigned)h.ancount + h.nscount + h.arcount;
	size_t off = 0;
	struct dns_rr rr;
	for (unsigned i = 0; i < nrr && !r.err; i++) {
		off = r.pos;
		wire_read_rr(&r, &rr);
	}
	if (r.err || !nrr || !h.arcount || rr.type != DNS_TYPE_TSIG || wire_remaining(&r))
		return 0;
	return off;
}

/* An answer on fd: settles the pending NOTIFY it is for. */
static void receive(int fd, struct pending **list)
{
	uint8_t buf[4096];
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
	if (n < DNS_HEADER_LEN)
		return;
	uint16_t id = (uint16_t)(buf[0] << 8 | buf[1]);
	uint16_t flags = (uint16_t)(buf[2] << 8 | buf[3]);
	if (!(flags & DNS_FLAG_QR) || DNS_OPCODE(flags) != DNS_OPCODE_NOTIFY)
		return;
	for (struct pending **pp = list; *pp; pp = &(*pp)->next) {
		struct pending *p = *pp;
		if (p->idle || p->id != id || !same_addr(&p->job.addr, &from))
			continue;
		char a[80], zn[DNS_NAME_MAX * 4 + 2];
		addr_sockaddr_text((const struct sockaddr *)&p->job.addr, a, sizeof(a));
		zone_text(&p->job, zn, sizeof(zn));
		if (p->job.has_key) {
			size_t off = tsig_offset(buf, (size_t)n);
			if (!off || tsig_verify_response(buf, (size_t)n, off, (uint64_t)time(NULL),
			                                 &p->tsig) == -1) {
				log_warn("notify %s of %s serial %u: answer without a valid TSIG, ignored", a,
				         zn, p->job.serial);
				return;
			}
		}
		if (DNS_RCODE(flags) != DNS_RCODE_NOERROR)
			log_warn("notify %s of %s serial %u: answered with rcode %u", a, zn, p->job.serial,
			         DNS_RCODE(flags));
		else
			log_info("notify %s of %s serial %u: acknowledged", a, zn, p->job.serial);
		if (p->newer) {
			/* Serials came while this one was out: one more NOTIFY, for
			 * the latest, no sooner than NOTIFY_MIN_INTERVAL_MS after the
			 * last (the secondary may have fetched before they came). */
			p->newer = false;
			p->attempts = 0;
			p->next_ms = p->sent_ms + NOTIFY_MIN_INTERVAL_MS;
			return;
		}
		/* Kept a little, idle: a serial that comes before the interval
		 * is over waits for it instead of going out at once. */
		p->idle = true;
		p->next_ms = p->sent_ms + NOTIFY_MIN_INTERVAL_MS;
		return;
	}
}

static void *notify_main(void *arg)
{
	struct notifier *ns = arg;
	(void)arg;
	struct pending *list = NULL;
	for (;;) {
		pthread_mutex_lock(&ns->mu);
		bool stop = ns->stop;
		struct pending *in = ns->incoming;
		ns->incoming = NULL;
		pthread_mutex_unlock(&ns->mu);
		if (stop)
			break;
		while (in) {
			struct pending *next = in->next;
			/* At most one NOTIFY out per zone and secondary: a newer
			 * serial for one still out (or waiting for its turn) only
			 * marks it, and the latest serial is told once that one is
			 * answered (receive) or its retries send it. */
			struct pending *p = list;
			while (p && !(same_addr(&p->job.addr, &in->job.addr) &&
			              wire_name_equal(p->job.zone, p->job.zonelen, in->job.zone,
			                              in->job.zonelen)))
				p = p->next;
			if (p && p->idle) {
				/* Answered less than the interval ago: the new serial
				 * goes out when it is over. */
				p->job = in->job;
				p->idle = false;
				p->newer = false;
				p->attempts = 0;
				free(in);
			} else if (p) {
				p->job.serial = in->job.serial;
				p->newer = p->attempts > 0;
				free(in);
			} else {
				in->next = list;
				list = in;
				send_one(ns, in);
			}
			in = next;
		}
		uint64_t now = clock_mono_ms(), wake = now + 1000;
		for (struct pending **pp = &list; *pp;) {
			struct pending *p = *pp;
			if (p->next_ms <= now && p->idle) {
				*pp = p->next;
				free(p);
				continue;
			}
			if (p->next_ms <= now) {
				if (p->attempts >= NOTIFY_ATTEMPTS) {
					char a[80], zn[DNS_NAME_MAX * 4 + 2];
					addr_sockaddr_text((const struct sockaddr *)&p->job.addr, a, sizeof(a));
					zone_text(&p->job, zn, sizeof(zn));
					log_warn("notify %s of %s serial %u: no answer after %u attempts", a, zn,
					         p->job.serial, p->attempts);
					*pp = p->next;
					free(p);
					continue;
				}
				send_one(ns, p);
			}
			if (p->next_ms < wake)
				wake = p->next_ms;
			pp = &p->next;
		}
		struct pollfd pfd[3] = {
			{ .fd = ns->efd, .events = POLLIN },
			{ .fd = ns->fd4, .events = POLLIN },
			{ .fd = ns->fd6, .events = POLLIN },
		};
		int r = poll(pfd, 3, wake > now ? (int)(wake - now) : 0);
		if (r <= 0)
			continue;
		if (pfd[0].revents & POLLIN) {
			uint64_t v;
			if (read(ns->efd, &v, sizeof(v)) == -1 && errno != EAGAIN)
				log_warn("notify eventfd: %s", strerror(errno));
		}
		if (pfd[1].revents & POLLIN)
			receive(ns->fd4, &list);
		if (pfd[2].revents & POLLIN)
			receive(ns->fd6, &list);
	}
	while (list) {
		struct pending *next = list->next;
		free(list);
		list = next;
	}
	return NULL;
}

struct notifier *notify_start(char *err, size_t errlen)
{
	struct notifier *ns = calloc(1, sizeof(*ns));
	if (!ns) {
		snprintf(err, errlen, "notify: out of memory");
		return NULL;
	}
	pthread_mutex_init(&ns->mu, NULL);
	ns->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ns->fd4 = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	ns->fd6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (ns->efd == -1 || (ns->fd4 == -1 && ns->fd6 == -1)) {
		snprintf(err, errlen, "notify: %s", strerror(errno));
		goto fail;
	}
	ns->stop = false;
	int rc = pthread_create(&ns->thread, NULL, notify_main, ns);
	if (rc == 0)
		pthread_setname_np(ns->thread, "notify");
	if (rc != 0) {
		snprintf(err, errlen, "notify: pthread_create: %s", strerror(rc));
		goto fail;
	}
	ns->running = true;
	return ns;
fail:
	notify_stop(ns);
	return NULL;
}

void notify_submit(struct notifier *ns, const struct notify_job *jobs, size_t n)
{
	if (!ns || !ns->running)
		return;
	struct pending *head = NULL;
	for (size_t i = 0; i < n; i++) {
		struct pending *p = calloc(1, sizeof(*p));
		if (!p)
			break;
		p->job = jobs[i];
		p->next = head;
		head = p;
	}
	pthread_mutex_lock(&ns->mu);
	while (head) {
		struct pending *next = head->next;
		head->next = ns->incoming;
		ns->incoming = head;
		head = next;
	}
	pthread_mutex_unlock(&ns->mu);
	uint64_t one = 1;
	if (write(ns->efd, &one, sizeof(one)) == -1 && errno != EAGAIN)
		log_warn("notify eventfd: %s", strerror(errno));
}

void notify_stop(struct notifier *ns)
{
	if (!ns)
		return;
	if (ns->running) {
		pthread_mutex_lock(&ns->mu);
		ns->stop = true;
		pthread_mutex_unlock(&ns->mu);
		uint64_t one = 1;
		if (write(ns->efd, &one, sizeof(one)) == -1)
			log_warn("notify eventfd: %s", strerror(errno));
		pthread_join(ns->thread, NULL);
		ns->running = false;
	}
	while (ns->incoming) {
		struct pending *next = ns->incoming->next;
		free(ns->incoming);
		ns->incoming = next;
	}
	if (ns->efd != -1)
		close(ns->efd);
	if (ns->fd4 != -1)
		close(ns->fd4);
	if (ns->fd6 != -1)
		close(ns->fd6);
	pthread_mutex_destroy(&ns->mu);
	free(ns);
}

/* bench_health.c -- CPU cost of the health watcher: N backends spread over
 * 127.0.0.0/8, all checked against one listener on 0.0.0.0:PORT (which
 * accepts on every 127.x address) served by a second thread of this program.
 *
 * Build: gcc -std=c11 -D_GNU_SOURCE -O2 -g -Idnsd -o /tmp/bench_health \
 *            tests/bench/bench_health.c dnsd/health.c dnsd/log.c -lcurl -lpthread
 * Run:   /tmp/bench_health [-n backends] [-t seconds] [-i interval_ms] [-m tcp|http|refused]
 *        (tests/bench/health_cpu.sh builds it and runs 1k and 10k backends)
 *
 * Prints the watcher thread's CPU time (from /proc/self/task/<tid>/schedstat,
 * the thread is named "health") as a percentage of one core and per probe,
 * and the whole process's (getrusage), which includes the listener thread. */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "health.h"
#include "log.h"

enum mode { MODE_TCP, MODE_HTTP, MODE_REFUSED };

struct listener {
	enum mode mode;
	int lfd, stopfd, epfd;
	uint16_t port;
	pthread_t thread;
};

/* tcp: accept and close. http: read the request, answer 200, close. */
static void *listener_main(void *arg)
{
	struct listener *l = arg;
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
	struct epoll_event evs[128];
	for (;;) {
		int n = epoll_wait(l->epfd, evs, 128, -1);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == l->stopfd)
				return NULL;
			if (fd == l->lfd) {
				int c;
				while ((c = accept4(l->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) != -1) {
					if (l->mode != MODE_HTTP) {
						close(c);
						continue;
					}
					struct epoll_event ev = { .events = EPOLLIN, .data.fd = c };
					if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, c, &ev) == -1)
						close(c);
				}
				continue;
			}
			char buf[1024];
			ssize_t r = recv(fd, buf, sizeof(buf), 0);
			if (r > 0 && send(fd, resp, sizeof(resp) - 1, MSG_NOSIGNAL) == -1)
				r = -1;
			close(fd);
		}
	}
}

static int listener_start(struct listener *l, enum mode mode)
{
	l->mode = mode;
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
	pthread_setname_np(l->thread, "accept");
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
	close(l->lfd);
}

/* One zone, services of up to 100 backends at 127.a.b.c, c in 1..254. */
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
	uint32_t a = 0;
	for (size_t si = 0; si < nsvc; si++) {
		struct cfg_service *s = &z->services[si];
		char name[32];
		snprintf(name, sizeof(name), "svc%zu", si);
		s->name = strdup(name);
		s->nbackends = n - si * 100 < 100 ? n - si * 100 : 100;
		s->backends = calloc(s->nbackends, sizeof(*s->backends));
		s->check.type = mode == MODE_HTTP ? CFG_CHECK_HTTP : CFG_CHECK_TCP;
		s->check.interval_ms = interval;
		s->check.timeout_ms = interval;
		s->check.rise = 2;
		s->check.fall = 3;
		s->check.path = "/health";
		for (size_t bi = 0; bi < s->nbackends; bi++) {
			struct cfg_backend *b = &s->backends[bi];
			do
				a++;
			while ((a & 0xff) == 0 || (a & 0xff) == 0xff);
			uint32_t ip = 0x7f000000u | a;
			b->family = AF_INET;
			b->addr[0] = (uint8_t)(ip >> 24);
			b->addr[1] = (uint8_t)(ip >> 16);
			b->addr[2] = (uint8_t)(ip >> 8);
			b->addr[3] = (uint8_t)ip;
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

/* The watcher's tid: the task named "health". */
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

/* User and system time of the task, in clock ticks. */
static void task_ticks(long tid, unsigned long long *utime, unsigned long long *stime)
{
	char path[64], buf[1024];
	*utime = *stime = 0;
	snprintf(path, sizeof(path), "/proc/self/task/%ld/stat", tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* Fields after the ")" closing comm: state is field 3, utime 14. */
	char *p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", utime,
	                 stime) != 2)
		*utime = *stime = 0;
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

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = { .tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

int main(int argc, char **argv)
{
	size_t n = 1000;
	unsigned secs = 10;
	uint32_t interval = 1000;
	enum mode mode = MODE_TCP;
	int opt;
	while ((opt = getopt(argc, argv, "n:t:i:m:")) != -1) {
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
			mode = strcmp(optarg, "http") == 0      ? MODE_HTTP
			       : strcmp(optarg, "refused") == 0 ? MODE_REFUSED
			                                        : MODE_TCP;
			break;
		default:
			fprintf(stderr, "usage: %s [-n backends] [-t seconds] [-i interval_ms] "
			                "[-m tcp|http|refused]\n", argv[0]);
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	/* In refused mode every backend goes DOWN: no line per backend. */
	log_set_level(LOG_LEVEL_WARN);
	/* One socket per backend may be open at once, plus the listener's. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < n + 64)
			fprintf(stderr, "warning: RLIMIT_NOFILE %llu may be too low for %zu backends\n",
			        (unsigned long long)rl.rlim_cur, n);
	}

	struct listener l;
	memset(&l, 0, sizeof(l));
	if (listener_start(&l, mode) == -1)
		return 1;
	struct config *cfg = bench_config(n, l.port, mode, interval);
	char err[256];
	struct health *h = health_start(cfg, NULL, NULL, err, sizeof(err));
	if (!h) {
		fprintf(stderr, "health_start: %s\n", err);
		return 1;
	}
	long tid = watcher_tid();
	/* First probes are spread over the first interval. */
	sleep_ms(interval + interval / 2);

	unsigned long long u0, s0, u1, s1;
	task_ticks(tid, &u0, &s0);
	uint64_t c0, p0 = process_cpu_ns(), w0 = task_cpu_ns(tid), t0 = health_now_ms();
	size_t down;
	totals(h, cfg, &c0, &down);
	sleep_ms((uint64_t)secs * 1000);
	uint64_t c1, p1 = process_cpu_ns(), w1 = task_cpu_ns(tid), t1 = health_now_ms();
	task_ticks(tid, &u1, &s1);
	totals(h, cfg, &c1, &down);

	double wall = (double)(t1 - t0) / 1000.0;
	double probes = (double)(c1 - c0);
	const char *mname[] = { "tcp", "http", "refused" };
	printf("%zu backends, %s checks every %u ms, %.1f s: %.0f probes/s, %zu down\n", n,
	       mname[mode], interval, wall, probes / wall, down);
	printf("  watcher thread: %5.2f%% of one core, %.2f us/probe\n",
	       (double)(w1 - w0) / 1e7 / wall, probes > 0 ? (double)(w1 - w0) / 1e3 / probes : 0.0);
	double ticks = (double)(u1 - u0 + s1 - s0);
	if (ticks > 0)
		printf("  watcher split:  %.0f%% user, %.0f%% kernel (TCP handshakes: on loopback the "
		       "backend's side runs in our softirq context too)\n",
		       100.0 * (double)(u1 - u0) / ticks, 100.0 * (double)(s1 - s0) / ticks);
	printf("  whole process:  %5.2f%% of one core (watcher + listener thread)\n",
	       (double)(p1 - p0) / 1e7 / wall);
	health_stop(h);
	listener_stop(&l);
	bench_config_free(cfg);
	return 0;
}

/* main.c -- dnsd: command line, startup and shutdown order, signals.
 * Wires config -> zone snapshot -> server workers (query.c). */
#include <errno.h>
#include <stddef.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/un.h>
#include <sys/signalfd.h>
#include <time.h>

#include "cache.h"
#include "config.h"
#include "forward.h"
#include "guard.h"
#include "health.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "query.h"
#include "rdata.h"
#include "server.h"
#include "update.h"
#include "wire.h"
#include "xfr.h"
#include "zone.h"
#include "bstate.h"
#include <urcu-qsbr.h>

#define DEFAULT_CONFIG "/etc/meshdns/dnsd.yaml"
enum { LISTEN_MAX = 64 };

struct options {
	const char *config;
	bool check;
	struct cfg_listen listen[LISTEN_MAX];
	size_t nlisten;
	long workers;                 /* -1: from the config */
	uint64_t seed;
	enum log_level level;
	struct cfg_listen http;       /* --http */
	bool have_http;
	const char *user;             /* --user: drop to it after binding */
	const char *pid_file;
	bool syslog;
	unsigned query_log;           /* --query-log: lines per second per thread, 0 off */
	bool reload;                  /* --reload: signal the running dnsd and exit */
};

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: dnsd [options]\n"
	        "Authoritative DNS server for a service mesh: answers A/AAAA/SRV for the\n"
	        "services and backends declared in a YAML file.\n"
	        "\n"
	        "  -c, --config FILE     configuration file (default " DEFAULT_CONFIG ")\n"
	        "      --check           validate the configuration, print the result and exit\n"
	        "                        (0: valid, 1: invalid)\n"
	        "  -l, --listen ADDR[:PORT]\n"
	        "                        listen on ADDR (repeatable; replaces the config's\n"
	        "                        listen list; IPv6 as [::1]:5353; default port 53;\n"
	        "                        port 0: a free port, logged at start)\n"
	        "  -w, --workers N       UDP worker threads per listen address (0: one per core)\n"
	        "      --http ADDR:PORT  serve /metrics, /health, /ready, /status.json and a\n"
	        "                        status page at / (port 0: a free port, logged)\n"
	        "      --user USER       after binding, switch to USER (and its groups)\n"
	        "      --pid-file FILE   write the process id to FILE (removed at exit)\n"
	        "      --reload          with --pid-file: make the running dnsd reload\n"
	        "                        (SIGHUP) and exit; 0 if it was signalled\n"
	        "      --syslog          log to syslog (daemon facility) instead of stderr\n"
	        "      --query-log[=N]   log queries, at most N lines per second per thread\n"
	        "                        (default 100); the excess is counted, not logged\n"
	        "      --seed N          seed every random choice, for reproducible tests\n"
	        "  -v, --verbose         log debug messages\n"
	        "  -q, --quiet           log only warnings and errors\n"
	        "  -h, --help            show this help and exit\n"
	        "  -V, --version         show the version and exit\n"
	        "\n"
	        "Signals: SIGHUP reloads the configuration (the old one keeps serving if the\n"
	        "new one is invalid); SIGINT and SIGTERM stop. Under systemd (Type=notify)\n"
	        "readiness, reloads and stopping are reported on $NOTIFY_SOCKET.\n"
	        "See dnsd(8) and dnsd.yaml(5).\n");
}

static int parse_args(int argc, char **argv, struct options *o)
{
	enum { OPT_CHECK = 256, OPT_SEED, OPT_HTTP, OPT_USER, OPT_PID, OPT_SYSLOG, OPT_QLOG, OPT_RELOAD };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, OPT_CHECK },
		{ "listen", required_argument, NULL, 'l' },
		{ "workers", required_argument, NULL, 'w' },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "http", required_argument, NULL, OPT_HTTP },
		{ "user", required_argument, NULL, OPT_USER },
		{ "pid-file", required_argument, NULL, OPT_PID },
		{ "syslog", no_argument, NULL, OPT_SYSLOG },
		{ "query-log", optional_argument, NULL, OPT_QLOG },
		{ "reload", no_argument, NULL, OPT_RELOAD },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	o->config = DEFAULT_CONFIG;
	o->workers = -1;
	o->level = LOG_LEVEL_INFO;
	int c;
	char *end;
	while ((c = getopt_long(argc, argv, "c:l:w:vqhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case OPT_CHECK:
			o->check = true;
			break;
		case 'l':
			if (o->nlisten == LISTEN_MAX) {
				fprintf(stderr, "dnsd: at most %d listen addresses\n", LISTEN_MAX);
				return -1;
			}
			if (config_parse_listen_port0(optarg, 53, true, &o->listen[o->nlisten]) == -1) {
				fprintf(stderr, "dnsd: invalid listen address '%s' (ADDR[:PORT], [V6]:PORT)\n",
				        optarg);
				return -1;
			}
			o->nlisten++;
			break;
		case 'w':
			errno = 0;
			o->workers = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || o->workers < 0 || o->workers > 64) {
				fprintf(stderr, "dnsd: --workers takes 0..64, not '%s'\n", optarg);
				return -1;
			}
			break;
		case OPT_HTTP:
			if (config_parse_listen_port0(optarg, 0, true, &o->http) == -1 ||
			    !strpbrk(optarg, ":")) {
				fprintf(stderr, "dnsd: invalid --http address '%s' (ADDR:PORT, [V6]:PORT)\n",
				        optarg);
				return -1;
			}
			o->have_http = true;
			break;
		case OPT_USER:
			o->user = optarg;
			break;
		case OPT_PID:
			o->pid_file = optarg;
			break;
		case OPT_SYSLOG:
			o->syslog = true;
			break;
		case OPT_RELOAD:
			o->reload = true;
			break;
		case OPT_QLOG: {
			unsigned long v = optarg ? strtoul(optarg, &end, 10) : 100;
			if (optarg && (*optarg == '\0' || *end != '\0' || v == 0 || v > 1000000)) {
				fprintf(stderr, "dnsd: --query-log=N needs 1..1000000 lines per second\n");
				return -1;
			}
			o->query_log = (unsigned)v;
			break;
		}
		case OPT_SEED:
			errno = 0;
			o->seed = strtoull(optarg, &end, 10);
			if (errno || *end || end == optarg || optarg[0] == '-') {
				fprintf(stderr, "dnsd: --seed takes a non-negative integer, not '%s'\n", optarg);
				return -1;
			}
			break;
		case 'v':
			o->level = LOG_LEVEL_DEBUG;
			break;
		case 'q':
			o->level = LOG_LEVEL_WARN;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("dnsd " MESHDNS_VERSION "\n");
			exit(0);
		default:
			fprintf(stderr, "Try 'dnsd --help'.\n");
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "dnsd: unexpected argument '%s'\nTry 'dnsd --help'.\n", argv[optind]);
		return -1;
	}
	return 0;
}

/* systemd's notification protocol: one datagram to $NOTIFY_SOCKET (a path,
 * or an abstract socket when it starts with '@'). No-op without it. */
static void sd_notify_msg(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !*path)
		return;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t len = strlen(path);
	if (len >= sizeof(sun.sun_path))
		return;
	memcpy(sun.sun_path, path, len);
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0';
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return;
	socklen_t sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sun, sl) == -1)
		log_warn("sd_notify: %s", strerror(errno));
	close(fd);
}

/* Drops root for user (its primary and supplementary groups). */
static int drop_privileges(const char *user)
{
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		log_err("--user: no such user '%s'", user);
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) == -1 || setgid(pw->pw_gid) == -1 ||
	    setuid(pw->pw_uid) == -1) {
		log_err("--user %s: cannot switch: %s", user, strerror(errno));
		return -1;
	}
	if (pw->pw_uid != 0 && setuid(0) == 0) {
		log_err("--user %s: root could be regained; refusing to run", user);
		return -1;
	}
	log_info("running as user %s (uid %u, gid %u)", pw->pw_name, (unsigned)pw->pw_uid,
	         (unsigned)pw->pw_gid);
	return 0;
}

static int write_pid_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1) {
		log_err("pid file %s: %s", path, strerror(errno));
		return -1;
	}
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	bool ok = write(fd, buf, (size_t)n) == n;
	if (close(fd) == -1 || !ok) {
		log_err("pid file %s: write failed", path);
		return -1;
	}
	return 0;
}

/* --reload: SIGHUP to the pid in the pid file, after checking that it is a
 * dnsd process (a stale file must not signal an unrelated process). */
static int signal_running(const char *pid_file)
{
	FILE *f = fopen(pid_file, "r");
	long pid = 0;
	if (!f || fscanf(f, "%ld", &pid) != 1 || pid <= 1) {
		fprintf(stderr, "dnsd: --reload: cannot read a process id from %s\n", pid_file);
		if (f)
			fclose(f);
		return 1;
	}
	fclose(f);
	char path[64], comm[64] = "";
	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	f = fopen(path, "r");
	if (!f || !fgets(comm, sizeof(comm), f) || strncmp(comm, "dnsd", 4) != 0) {
		fprintf(stderr, "dnsd: --reload: process %ld from %s is not running dnsd\n", pid,
		        pid_file);
		if (f)
			fclose(f);
		return 1;
	}
	fclose(f);
	if (kill((pid_t)pid, SIGHUP) == -1) {
		fprintf(stderr, "dnsd: --reload: kill %ld: %s\n", pid, strerror(errno));
		return 1;
	}
	printf("dnsd: asked process %ld to reload (see its log for the result)\n", pid);
	return 0;
}

/* Per server thread: its query state and its metrics block. */
struct worker {
	struct query_worker *qw;
	struct metrics_worker *m;
	unsigned qlog_rate;           /* lines per second, 0: off */
	uint64_t qlog_second;         /* the second being counted */
	unsigned qlog_lines;          /* lines logged in it */
	uint64_t qlog_dropped;        /* lines over the rate since the last report */
};

static void *thread_init(void *arg, unsigned idx)
{
	const struct options *o = arg;
	struct worker *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->qw = query_worker_new(idx, o->seed);
	if (!w->qw) {
		free(w);
		return NULL;
	}
	w->m = metrics_worker_new();
	guard_thread_metrics(w->m);
	query_worker_set_metrics(w->qw, w->m);
	w->qlog_rate = o->query_log;
	return w;
}

static void thread_fini(void *ctx)
{
	struct worker *w = ctx;
	query_worker_free(w->qw);
	free(w);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One query log line, within the thread's per-second budget; lines over it
 * are counted and reported once the next second starts. */
static void query_log(struct worker *w, const uint8_t *req, size_t len, const uint8_t *resp,
                      int n, const struct server_peer *peer, uint64_t t_ns)
{
	uint64_t sec = t_ns / 1000000000u;
	if (sec != w->qlog_second) {
		if (w->qlog_dropped)
			log_info("query log: %llu lines over --query-log=%u not logged",
			         (unsigned long long)w->qlog_dropped, w->qlog_rate);
		w->qlog_second = sec;
		w->qlog_lines = 0;
		w->qlog_dropped = 0;
	}
	if (w->qlog_lines >= w->qlog_rate) {
		w->qlog_dropped++;
		return;
	}
	w->qlog_lines++;
	char client[INET6_ADDRSTRLEN] = "?", name[DNS_NAME_MAX * 4 + 2] = "-", type[16] = "-";
	const struct sockaddr *sa = peer->addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, client,
		          sizeof(client));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, client,
		          sizeof(client));
	struct dns_query q;
	if (wire_parse_query(req, len, &q) != WIRE_PARSE_DROP && q.hdr.qdcount == 1) {
		if (wire_name_to_text(q.q.name, q.q.namelen, name, sizeof(name)) < 0)
			snprintf(name, sizeof(name), "?");
		snprintf(type, sizeof(type), "%s", rdata_type_name(q.q.qtype));
	}
	if (n >= DNS_HEADER_LEN)
		log_info("query %s %s %s %s -> %s%s %d bytes", peer->tcp ? "tcp" : "udp", client, name,
		         type, rdata_rcode_name(resp[3] & 0x0f), (resp[2] & 0x02) ? " TC" : "", n);
	else
		log_info("query %s %s %s %s -> dropped", peer->tcp ? "tcp" : "udp", client, name, type);
}

/* Forwarding, set up before the server starts and stopped after it. */
static struct forward *forwarder;
static struct cache *fwd_cache;
static uint16_t fwd_payload;

/* An AXFR or IXFR query, told without a full parse. */
static bool is_transfer(const uint8_t *req, size_t len)
{
	uint16_t t = wire_peek_qtype(req, len);
	return t == DNS_TYPE_AXFR || t == DNS_TYPE_IXFR;
}

/* REFUSED for req: header (ID, opcode, RD kept) and question echoed. */
static int refuse(const uint8_t *req, size_t len, uint8_t *resp, size_t cap)
{
	struct dns_query q;
	if (wire_parse_query(req, len, &q) == WIRE_PARSE_DROP || q.question_end > cap)
		return -1;
	memcpy(resp, req, q.question_end);
	resp[2] = (uint8_t)((req[2] & 0x79) | 0x80);          /* QR, opcode, RD */
	resp[3] = DNS_RCODE_REFUSED;
	memset(resp + 6, 0, 6);                             /* no AN/NS/AR */
	return (int)q.question_end;
}

static int handle(void *ctx, const uint8_t *req, size_t len, uint8_t *resp, size_t cap,
                  const struct server_peer *peer)
{
	struct worker *w = ctx;
	uint64_t t0 = now_ns();
	/* Transfers and TSIG-signed requests first (xfr.c); a signed ordinary
	 * request is answered below from its unsigned copy, then signed. */
	struct xfr_signed sig;
	uint8_t *stream = NULL;
	size_t slen = 0;
	if (peer->tcp && server_streams_full() && is_transfer(req, len))
		return refuse(req, len, resp, cap);
	int n = xfr_process(req, len, resp, cap, peer->addr, peer->tcp, &sig, &stream, &slen);
	if (n == XFR_STREAM) {
		metrics_observe(w->m, req, len, stream + 2, (int)(stream[0] << 8 | stream[1]), true,
		                now_ns() - t0);
		server_stream(peer, stream, slen);
		return SERVER_STREAM;
	}
	bool sign = n == XFR_SIGNED;
	/* UPDATE (RFC 2136): signed ones are queued to the control thread,
	 * which answers (SERVER_DEFERRED). */
	bool update = (n == XFR_PASS || sign) && len >= DNS_HEADER_LEN &&
	              DNS_OPCODE((unsigned)req[2] << 8) == DNS_OPCODE_UPDATE;
	if (update) {
		n = update_submit(req, len, sign ? &sig : NULL, peer, resp, cap);
		sign = false;
	} else if (n == XFR_PASS || sign)
		n = query_process(w->qw, sign ? sig.req : req, sign ? sig.reqlen : len, resp, cap,
		                  peer->addr, peer->tcp);
	if (sign && n > 0)
		n = xfr_sign_answer(&sig, resp, n, cap);
	if (n == QUERY_FORWARD && !update) {
		const struct query_forward *fq = query_forward_info(w->qw);
		if (forwarder && forward_submit(forwarder, fq, peer) == 0)
			n = SERVER_DEFERRED;
		else
			n = forward_error(fq, DNS_RCODE_SERVFAIL, fwd_payload, resp, cap);
	}
	uint64_t t1 = now_ns();
	metrics_observe(w->m, req, len, resp, n, peer->tcp, t1 - t0);
	if (w->qlog_rate)
		query_log(w, req, len, resp, n, peer, t1);
	return n;
}

static void format_listen(const struct cfg_listen *l, char *buf, size_t len);

/* Forwarder and cache counters for /metrics (names as CoreDNS's cache and
 * forward plugins where the meaning is the same). */
static void render_forward_metrics(struct textbuf *tb, void *arg)
{
	(void)arg;
	struct forward_stats fs;
	struct cache_stats cs;
	memset(&fs, 0, sizeof(fs));
	memset(&cs, 0, sizeof(cs));
	if (forwarder)
		forward_stats(forwarder, &fs);
	if (fwd_cache)
		cache_stats(fwd_cache, &cs);
	tb_printf(tb,
	          "# HELP dnsd_cache_hits_total Answers served from the cache.\n"
	          "# TYPE dnsd_cache_hits_total counter\n"
	          "dnsd_cache_hits_total %llu\n"
	          "# HELP dnsd_cache_misses_total Cache lookups that missed.\n"
	          "# TYPE dnsd_cache_misses_total counter\n"
	          "dnsd_cache_misses_total %llu\n"
	          "# HELP dnsd_cache_entries Answers in the cache.\n"
	          "# TYPE dnsd_cache_entries gauge\n"
	          "dnsd_cache_entries %llu\n"
	          "# HELP dnsd_cache_evictions_total Entries evicted to stay within max-entries.\n"
	          "# TYPE dnsd_cache_evictions_total counter\n"
	          "dnsd_cache_evictions_total %llu\n"
	          "# HELP dnsd_forward_upstream_queries_total Queries sent upstream.\n"
	          "# TYPE dnsd_forward_upstream_queries_total counter\n"
	          "dnsd_forward_upstream_queries_total %llu\n"
	          "# HELP dnsd_forward_responses_total Upstream answers passed on.\n"
	          "# TYPE dnsd_forward_responses_total counter\n"
	          "dnsd_forward_responses_total %llu\n"
	          "# HELP dnsd_forward_errors_total SERVFAIL to the client, by reason.\n"
	          "# TYPE dnsd_forward_errors_total counter\n"
	          "dnsd_forward_errors_total{reason=\"upstream\"} %llu\n"
	          "dnsd_forward_errors_total{reason=\"max-outstanding\"} %llu\n",
	          (unsigned long long)cs.hits, (unsigned long long)cs.misses,
	          (unsigned long long)cs.entries, (unsigned long long)cs.evictions,
	          (unsigned long long)fs.forwarded, (unsigned long long)fs.answered,
	          (unsigned long long)fs.failed, (unsigned long long)fs.over_cap);
}

/* The upstreams to use: the configured list or resolv.conf's, without our
 * own addresses (forwarding to ourselves would loop: CoreDNS exits on
 * such a loop, we drop the entry). 0, or -1 after logging. */
static int forward_upstreams(const struct config *cfg, const struct cfg_listen *listen,
                             size_t nlisten, struct cfg_listen *out, size_t *n)
{
	const struct cfg_forward *fc = &cfg->forward;
	struct cfg_listen all[FORWARD_UPSTREAMS_MAX];
	size_t nall = 0;
	char err[256];
	if (fc->resolv_conf) {
		if (forward_read_resolv_conf(fc->resolv_conf, all, FORWARD_UPSTREAMS_MAX, &nall, err,
		                             sizeof(err)) == -1) {
			log_err("forward: %s", err);
			return -1;
		}
	} else {
		nall = fc->nupstreams < FORWARD_UPSTREAMS_MAX ? fc->nupstreams : FORWARD_UPSTREAMS_MAX;
		memcpy(all, fc->upstreams, nall * sizeof(*all));
	}
	*n = 0;
	for (size_t i = 0; i < nall; i++) {
		char one[80];
		format_listen(&all[i], one, sizeof(one));
		if (forward_is_self(&all[i], listen, nlisten)) {
			log_warn("forward: upstream %s is this server's own address, ignored", one);
			continue;
		}
		out[(*n)++] = all[i];
	}
	return 0;
}

/* Starts the cache and the forwarder if cfg forwards. 0 (forwarding may
 * still be off: no usable upstream), or -1 after logging. */
static int forward_setup(const struct config *cfg, const struct cfg_listen *listen,
                         size_t nlisten)
{
	const struct cfg_forward *fc = &cfg->forward;
	if (!fc->nupstreams && !fc->resolv_conf)
		return 0;
	struct cfg_listen ups[FORWARD_UPSTREAMS_MAX];
	size_t nups;
	if (forward_upstreams(cfg, listen, nlisten, ups, &nups) == -1)
		return -1;
	if (nups == 0) {
		log_warn("forward: no usable upstream%s%s; names outside our zones are REFUSED",
		         fc->resolv_conf ? " in " : "", fc->resolv_conf ? fc->resolv_conf : "");
		return 0;
	}
	struct cache_settings cs = {
		.max_entries = cfg->cache.max_entries,
		.min_ttl = cfg->cache.min_ttl,
		.max_ttl = cfg->cache.max_ttl,
		.neg_max_ttl = cfg->cache.neg_max_ttl,
		.udp_max_payload = cfg->udp_max_payload,
	};
	fwd_cache = cache_new(&cs);
	if (!fwd_cache) {
		log_err("forward: out of memory for the cache");
		return -1;
	}
	fwd_payload = cfg->udp_max_payload;
	struct forward_settings fs = {
		.upstreams = ups,
		.nupstreams = nups,
		.timeout_ms = fc->timeout_ms,
		.max_outstanding = fc->max_outstanding,
		.tcp = fc->tcp,
		.udp_max_payload = cfg->udp_max_payload,
		.cache = fwd_cache,
	};
	char err[256];
	forwarder = forward_start(&fs, err, sizeof(err));
	if (!forwarder) {
		log_err("%s", err);
		cache_free(fwd_cache);
		fwd_cache = NULL;
		return -1;
	}
	query_set_forwarding(true, fwd_cache);
	metrics_set_extra(render_forward_metrics, NULL);
	char list[512] = "";
	for (size_t i = 0, off = 0; i < nups && off < sizeof(list) - 80; i++) {
		char one[80];
		format_listen(&ups[i], one, sizeof(one));
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", i ? " " : "", one);
	}
	log_info("forwarding names outside our zones to %s (%s, timeout %u ms, cache %u entries)",
	         list, fc->tcp ? "TCP" : "UDP", fc->timeout_ms, cfg->cache.max_entries);
	return 0;
}

/* After the server stopped: logs the counters and frees. */
static void forward_teardown(void)
{
	if (!forwarder)
		return;
	struct forward_stats fs;
	struct cache_stats cs;
	forward_stats(forwarder, &fs);
	cache_stats(fwd_cache, &cs);
	log_info("forward: %llu sent upstream, %llu answered, %llu SERVFAIL, %llu over "
	         "max-outstanding; cache: %llu hits, %llu misses, %llu entries",
	         (unsigned long long)fs.forwarded, (unsigned long long)fs.answered,
	         (unsigned long long)fs.failed, (unsigned long long)fs.over_cap,
	         (unsigned long long)cs.hits, (unsigned long long)cs.misses,
	         (unsigned long long)cs.entries);
	forward_free(forwarder);
	forwarder = NULL;
	cache_free(fwd_cache);
	fwd_cache = NULL;
}

static bool forward_config_equal(const struct config *a, const struct config *b)
{
	const struct cfg_forward *x = &a->forward, *y = &b->forward;
	if (x->nupstreams != y->nupstreams || x->timeout_ms != y->timeout_ms ||
	    x->max_outstanding != y->max_outstanding || x->tcp != y->tcp ||
	    memcmp(&a->cache, &b->cache, sizeof(a->cache)) != 0 ||
	    !x->resolv_conf != !y->resolv_conf ||
	    (x->resolv_conf && strcmp(x->resolv_conf, y->resolv_conf) != 0))
		return false;
	for (size_t i = 0; i < x->nupstreams; i++)
		if (memcmp(&x->upstreams[i], &y->upstreams[i], sizeof(x->upstreams[i])) != 0)
			return false;
	return true;
}

/* A reload's tcp: settings: idle-timeout and max-per-client apply to the
 * running server; max-clients sizes what the server allocated at start. */
static void tcp_reconfigure(struct server *srv, unsigned running_max_clients,
                            const struct config *a, const struct config *b)
{
	server_set_tcp_limits(srv, b->tcp_max_per_client, b->tcp_idle_timeout_ms);
	if (a->tcp_idle_timeout_ms != b->tcp_idle_timeout_ms ||
	    a->tcp_max_per_client != b->tcp_max_per_client)
		log_info("reload: tcp idle-timeout %u ms, max-per-client %u", b->tcp_idle_timeout_ms,
		         b->tcp_max_per_client);
	if (running_max_clients != b->tcp_max_clients)
		log_warn("reload: tcp max-clients %u takes effect at the next start (%u until then)",
		         b->tcp_max_clients, running_max_clients);
}

static void note_snapshot(const struct zone_snapshot *snap, uint64_t build_ns)
{
	metrics_set(&metrics_global.snapshot_generation, snap->generation);
	metrics_set(&metrics_global.snapshot_build_ns, build_ns);
	metrics_set(&metrics_global.snapshot_bytes, snap->bytes);
}

static void format_listen(const struct cfg_listen *l, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];
	if (l->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&l->ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&l->ss;
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(s4->sin_port));
	}
}

static void summarize(const struct config *cfg, size_t *nsvc, size_t *nbe)
{
	*nsvc = *nbe = 0;
	for (size_t i = 0; i < cfg->nzones; i++) {
		*nsvc += cfg->zones[i].nservices;
		for (size_t j = 0; j < cfg->zones[i].nservices; j++)
			*nbe += cfg->zones[i].services[j].nbackends;
	}
}

/* Backend states, shared by the watcher (ids), the snapshots (words) and
 * the control thread (writes): process lifetime. */
static struct bstate *states;

/* Builds a snapshot from cfg; checked backends point at their words in
 * the state table (h NULL: every backend up). */
static int build(const struct config *cfg, struct health *h, struct zone_snapshot **snap,
                 uint64_t *took_ns)
{
	char err[512];
	uint64_t t0 = now_ns();
	if (zone_build(cfg, zone_current(), h ? states : NULL, h ? health_sid : NULL, h, snap, err,
	               sizeof(err)) == -1) {
		log_err("rebuild failed, keeping the current snapshot: %s", err);
		return -1;
	}
	*took_ns = now_ns() - t0;
	return 0;
}

/* Publishes snap. Only the control thread publishes, so no lock is needed.
 * The history (IXFR) and NOTIFY are done between the swap and the free:
 * both snapshots are still readable, and a secondary told of the new
 * serial finds it served. */
static void publish(struct zone_snapshot *snap, uint64_t took_ns)
{
	note_snapshot(snap, took_ns);
	struct zone_snapshot *prev = zone_swap(snap);
	xfr_published(snap, prev);
	if (prev) {
		synchronize_rcu();
		zone_free(prev);
	}
	/* No snapshot points at the ids released before this publish now. */
	bstate_reclaim(states);
	log_debug("published snapshot generation %llu (%zu bytes, built in %llu ms)",
	          (unsigned long long)snap->generation, snap->bytes,
	          (unsigned long long)(took_ns / 1000000));
	/* A reload frees a whole parsed config and the build's tables: give
	 * the heap's free pages back rather than keep a big zone's peak. */
	malloc_trim(0);
}

/* Rebuilds the snapshot from cfg and the watcher's current states and
 * publishes it. */
static int rebuild(const struct config *cfg, struct health *h)
{
	struct zone_snapshot *snap;
	uint64_t took;
	if (build(cfg, h, &snap, &took) == -1)
		return -1;
	publish(snap, took);
	return 0;
}

/* The watcher went to a config whose build then failed: it goes back to
 * cfg, and since ids of backends the failed config lacked were released,
 * the served snapshot is rebuilt on the ids it has again. */
static void health_rollback(const struct config *cfg, struct health *h)
{
	if (health_reconfigure(h, cfg) == -1 || rebuild(cfg, h) == -1)
		log_err("the health watcher could not return to the running configuration (out of "
		        "memory); health states may be wrong until the next reload");
}

/* Applies the watcher's queued state changes to the served snapshot:
 * the backends' words, and per zone whose records change a new serial, a
 * difference for IXFR and NOTIFY. O(services changed), no rebuild. */
static void apply_health_changes(struct health *h)
{
	enum { BATCH = 1024 };
	static struct health_change chg[BATCH];
	size_t n;
	while ((n = health_take_changes(h, chg, BATCH)) > 0) {
		const struct zone_snapshot *snap = zone_current();
		struct xfr_txn *t = xfr_txn_new();
		for (size_t i = 0; t && i < n; i++) {
			uint32_t zi;
			const struct zone_service *svc = zone_sid_service(snap, chg[i].sid, &zi);
			if (svc)
				xfr_txn_add(t, &snap->zones[zi], svc);
		}
		if (t)
			xfr_txn_lock(t);
		for (size_t i = 0; i < n; i++)
			bstate_set(states, chg[i].sid, chg[i].up, chg[i].since_ms);
		if (t)
			xfr_txn_commit(t);
		metrics_add(&metrics_global.health_changes_applied, n);
	}
}

static bool status_source(void *arg, size_t zi, size_t si, size_t bi, struct health_state *out)
{
	return health_get(arg, zi, si, bi, out);
}

static void on_health_change(void *arg)
{
	uint64_t one = 1;
	int fd = *(int *)arg;
	/* A full counter only means a rebuild is already pending. */
	if (write(fd, &one, sizeof(one)) == -1)
		return;
}

/* Loads the config and replays the update journals over it (read only
 * with check). On failure logs the error (file:line:col for config
 * errors) and returns -1. */
static int load_config(const char *path, bool check, struct config **cfgp, struct update **up)
{
	char err[512];
	if (update_load(path, check, cfgp, up, err, sizeof(err)) == -1) {
		log_err("%s", err);
		return -1;
	}
	return 0;
}

/* load_config, then (with check) a snapshot from the result to validate
 * the zones, freed again. */
static int load(const char *path, bool check, struct config **cfgp, struct update **up)
{
	struct config *cfg;
	char err[512];
	if (load_config(path, check, &cfg, up) == -1)
		return -1;
	if (check) {
		struct zone_snapshot *snap;
		if (zone_build(cfg, NULL, NULL, NULL, NULL, &snap, err, sizeof(err)) == -1) {
			log_err("%s: %s", path, err);
			config_free(cfg);
			update_free(*up);
			*up = NULL;
			return -1;
		}
		zone_free(snap);
	}
	*cfgp = cfg;
	malloc_trim(0);             /* the YAML document */
	return 0;
}

/* The running config and watcher, for update_commit. */
struct live {
	struct config **cfg;
	struct health *health;
};

/* An accepted UPDATE's effective config goes live as after a reload. */
static int update_commit(void *arg, struct config *ncfg)
{
	struct live *l = arg;
	if (health_reconfigure(l->health, ncfg) == -1)
		return -1;
	if (rebuild(ncfg, l->health) == -1) {
		health_rollback(*l->cfg, l->health);
		return -1;
	}
	config_free(*l->cfg);
	*l->cfg = ncfg;
	return 0;
}

/* How long /ready waits for the first health checks at most: 2 x the
 * longest check timeout (a probe started at once would be done, with room
 * to spare), capped at READY_BOUND_MAX_MS. Backends not probed by then
 * count as up, as they do in answers. */
enum { READY_BOUND_MAX_MS = 30000 };
static unsigned ready_bound_ms(const struct config *cfg)
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
	return 2 * (uint64_t)longest < READY_BOUND_MAX_MS ? 2 * longest : READY_BOUND_MAX_MS;
}

/* Health checks hold one socket per probe in flight and TCP clients one
 * each: lift the soft descriptor limit to the hard one (often 1024 vs
 * 524288), as NSD and HAProxy do. */
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rlim_t want = rl.rlim_max;
		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("cannot raise the descriptor limit to %llu: %s",
			         (unsigned long long)want, strerror(errno));
	}
}

int main(int argc, char **argv)
{
	struct options o;
	memset(&o, 0, sizeof(o));
	if (parse_args(argc, argv, &o) == -1)
		return 1;
	if (o.reload) {
		if (!o.pid_file) {
			fprintf(stderr, "dnsd: --reload needs --pid-file FILE\n");
			return 1;
		}
		return signal_running(o.pid_file);
	}
	log_set_level(o.level);
	if (o.syslog && !o.check)
		log_use_syslog("dnsd");

	struct config *cfg;
	struct update *upd = NULL;
	if (load(o.config, o.check, &cfg, &upd) == -1)
		return 1;
	if (o.check) {
		size_t nsvc, nbe;
		summarize(cfg, &nsvc, &nbe);
		printf("%s: OK (%zu zones, %zu services, %zu backends)\n", o.config, cfg->nzones, nsvc,
		       nbe);
		if (update_count(upd))
			printf("%s: update journals OK (%zu changes)\n", o.config, update_count(upd));
		update_free(upd);
		config_free(cfg);
		return 0;
	}
	states = bstate_new();
	if (!states) {
		log_err("out of memory");
		config_free(cfg);
		return 1;
	}

	raise_nofile();

	/* Signals are taken synchronously by this thread only (signalfd); the
	 * server and the watcher start their threads with everything blocked. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int ufd = update_queue_init();
	if (sfd == -1 || efd == -1 || ufd == -1) {
		log_err("signalfd/eventfd: %s", strerror(errno));
		return 1;
	}

	metrics_set(&metrics_global.start_time_s, (uint64_t)time(NULL));
	char err[256];
	snprintf(err, sizeof(err), "out of memory");
	if (xfr_configure(cfg) == -1 || xfr_start(err, sizeof(err)) == -1) {
		log_err("transfers: %s", err);
		config_free(cfg);
		return 1;
	}
	/* The watcher first: it gives checked backends their state ids, and
	 * the one build at start points them at their words. */
	struct health *health = health_start(cfg, states, on_health_change, &efd, err, sizeof(err));
	if (!health) {
		log_err("health watcher: %s", err);
		xfr_stop();
		config_free(cfg);
		return 1;
	}
	if (rebuild(cfg, health) == -1) {
		log_err("%s: the zones could not be built", o.config);
		health_stop(health);
		xfr_stop();
		config_free(cfg);
		return 1;
	}
	query_set_status_source(status_source, health);
	if (guard_configure(cfg) == -1) {
		log_err("cookies and rate limiting: out of memory");
		health_stop(health);
		zone_shutdown();
		config_free(cfg);
		return 1;
	}
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	struct server_settings set = {
		.listen = o.nlisten ? o.listen : cfg->listen,
		.nlisten = o.nlisten ? o.nlisten : cfg->nlisten,
		.udp_workers = (unsigned)(o.workers >= 0 ? o.workers : (long)cfg->workers),
		.tcp_max_clients = cfg->tcp_max_clients,
		.tcp_max_per_client = cfg->tcp_max_per_client,
		.tcp_idle_timeout_ms = cfg->tcp_idle_timeout_ms,
	};
	/* The server keeps pointing at the listen list: keep a copy that
	 * outlives reloads. */
	struct cfg_listen listen_copy[LISTEN_MAX];
	if (set.nlisten > LISTEN_MAX)
		set.nlisten = LISTEN_MAX;
	memcpy(listen_copy, set.listen, set.nlisten * sizeof(*listen_copy));
	set.listen = listen_copy;
	if (set.udp_workers == 0)
		set.udp_workers = ncpu > 0 ? (unsigned)ncpu : 1;
	struct server_ops ops = {
		.thread_init = thread_init,
		.thread_fini = thread_fini,
		.handle = handle,
		.arg = &o,
	};
	query_set_search_path(cfg->search, cfg->nsearch);
	if (forward_setup(cfg, set.listen, set.nlisten) == -1) {
		health_stop(health);
		zone_shutdown();
		config_free(cfg);
		return 1;
	}
	struct server *srv;
	if (server_start(&srv, &set, &ops, err, sizeof(err)) == -1) {
		log_err("%s", err);
		forward_teardown();
		health_stop(health);
		zone_shutdown();
		config_free(cfg);
		return 1;
	}
	size_t nsvc, nbe;
	summarize(cfg, &nsvc, &nbe);
	char addrs[1024] = "";
	for (size_t i = 0, off = 0; i < set.nlisten && off < sizeof(addrs) - 64; i++) {
		char one[80];
		struct cfg_listen l = set.listen[i];
		uint16_t port = (uint16_t)server_local_port(srv, i);
		if (l.ss.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&l.ss)->sin6_port = htons(port);
		else
			((struct sockaddr_in *)&l.ss)->sin_port = htons(port);
		format_listen(&l, one, sizeof(one));
		off += (size_t)snprintf(addrs + off, sizeof(addrs) - off, "%s%s", i ? " " : "", one);
	}
	log_info("dnsd %s serving %zu zones, %zu services, %zu backends on %s (%u UDP workers per "
	         "address)", MESHDNS_VERSION, cfg->nzones, nsvc, nbe, addrs, set.udp_workers);
	struct http *http = NULL;
	if (!o.have_http && cfg->have_http) {
		o.http = cfg->http;       /* --http wins over the file */
		o.have_http = true;
	}
	if (o.have_http) {
		http = http_start(&o.http, health, err, sizeof(err));
		if (!http) {
			log_err("http: %s", err);
			server_stop(srv);
			health_stop(health);
			zone_shutdown();
			config_free(cfg);
			return 1;
		}
		struct cfg_listen hl = o.http;
		if (hl.ss.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&hl.ss)->sin6_port = htons((uint16_t)http_local_port(http));
		else
			((struct sockaddr_in *)&hl.ss)->sin_port = htons((uint16_t)http_local_port(http));
		char one[80];
		format_listen(&hl, one, sizeof(one));
		log_info("http status on http://%s/ (/metrics, /status.json, /health, /ready)", one);
	}
	bool pid_written = false;
	if ((o.pid_file && !(pid_written = write_pid_file(o.pid_file) == 0)) ||
	    (o.user && drop_privileges(o.user) == -1)) {
		http_stop(http);
		server_stop(srv);
		health_stop(health);
		zone_shutdown();
		config_free(cfg);
		if (pid_written)
			unlink(o.pid_file);
		return 1;
	}
	http_set_ready_bound(http, ready_bound_ms(cfg));
	http_set_serving(http, true);
	{
		char msg[128];
		snprintf(msg, sizeof(msg), "READY=1\nSTATUS=serving %zu zones, %zu services\nMAINPID=%ld",
		         cfg->nzones, nsvc, (long)getpid());
		sd_notify_msg(msg);
	}

	struct live live = { .cfg = &cfg, .health = health };
	for (;;) {
		struct pollfd pfd[3] = { { .fd = sfd, .events = POLLIN }, { .fd = efd, .events = POLLIN },
		                         { .fd = ufd, .events = POLLIN } };
		if (poll(pfd, 3, -1) == -1) {
			if (errno == EINTR)
				continue;
			log_err("poll: %s", strerror(errno));
			break;
		}
		if (pfd[1].revents & POLLIN) {
			uint64_t n;
			/* Every change signalled so far is covered by one rebuild. */
			if (read(efd, &n, sizeof(n)) == sizeof(n))
				apply_health_changes(health);
		}
		if (pfd[2].revents & POLLIN)
			update_process(upd, update_commit, &live);
		if (!(pfd[0].revents & POLLIN))
			continue;
		struct signalfd_siginfo si;
		if (read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (si.ssi_signo == SIGHUP) {
			sd_notify_msg("RELOADING=1");
			struct config *ncfg;
			struct zone_snapshot *nsnap;
			struct update *nupd = NULL;
			uint64_t took;
			/* Validate completely before touching anything live. The
			 * journals are replayed over the new YAML: updates survive
			 * reloads, and those that no longer apply are dropped. The
			 * watcher takes the new backends first (states carry over by
			 * address and check) so that one build, with their states,
			 * both validates the zones and makes the snapshot served; if
			 * it fails the watcher goes back to the running config. */
			if (load_config(o.config, false, &ncfg, &nupd) == -1) {
				log_err("reload failed, continuing with the previous configuration");
				metrics_add(&metrics_global.reload_failures, 1);
				sd_notify_msg("READY=1\nSTATUS=reload failed, previous configuration serving");
				continue;
			}
			if (health_reconfigure(health, ncfg) == -1) {
				log_err("reload failed (health watcher), continuing with the previous "
				        "configuration");
				metrics_add(&metrics_global.reload_failures, 1);
				sd_notify_msg("READY=1\nSTATUS=reload failed, previous configuration serving");
				config_free(ncfg);
				update_free(nupd);
				continue;
			}
			if (build(ncfg, health, &nsnap, &took) == -1) {
				health_rollback(cfg, health);
				log_err("reload failed, continuing with the previous configuration");
				metrics_add(&metrics_global.reload_failures, 1);
				sd_notify_msg("READY=1\nSTATUS=reload failed, previous configuration serving");
				config_free(ncfg);
				update_free(nupd);
				continue;
			}
			update_free(upd);
			upd = nupd;
			if (!forward_config_equal(cfg, ncfg))
				log_warn("reload: forward and cache settings take effect at the next start");
			if (cfg->nsearch != ncfg->nsearch ||
			    memcmp(cfg->search, ncfg->search, cfg->nsearch * sizeof(*cfg->search)) != 0)
				log_warn("reload: search-path takes effect at the next start");
			tcp_reconfigure(srv, set.tcp_max_clients, cfg, ncfg);
			if (xfr_configure(ncfg) == -1)
				log_err("reload: out of memory for keys and transfer settings; the previous "
				        "ones stay");
			if (guard_configure(ncfg) == -1)
				log_err("reload: out of memory for cookie and rate-limit settings; the "
				        "previous ones stay");
			config_free(cfg);
			cfg = ncfg;
			publish(nsnap, took);
			summarize(cfg, &nsvc, &nbe);
			metrics_add(&metrics_global.reloads, 1);
			log_info("reloaded %s: %zu zones, %zu services, %zu backends", o.config,
			         cfg->nzones, nsvc, nbe);
			sd_notify_msg("READY=1\nSTATUS=reloaded");
			continue;
		}
		log_info("received %s, stopping", si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
		break;
	}
	sd_notify_msg("STOPPING=1");
	http_stop(http);
	/* The forwarder answers through the server's sockets: it stops first,
	 * and is freed once no worker can hand it a query. */
	forward_stop(forwarder);
	server_stop(srv);
	update_queue_shutdown();
	update_free(upd);
	forward_teardown();
	guard_shutdown();
	health_stop(health);
	xfr_stop();
	zone_shutdown();
	bstate_free(states);
	config_free(cfg);
	close(efd);
	close(sfd);
	if (pid_written && unlink(o.pid_file) == -1)
		log_warn("pid file %s: %s", o.pid_file, strerror(errno));
	return 0;
}

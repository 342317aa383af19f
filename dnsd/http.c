/* http.c -- the operator endpoint on libmicrohttpd; see http.h.
 *
 * libmicrohttpd runs without threads of its own (MHD_USE_EPOLL, driven by
 * MHD_run from our thread). That thread registers with liburcu-qsbr and is
 * offline while it sleeps, online while handlers read the snapshot, and
 * unregisters before it exits: the same discipline as the DNS workers.
 * Limits: 64 connections (8 per client: an IPv4 address or an IPv6 /64),
 * 10 s idle timeout, 32 KiB per connection, GET and HEAD only.
 *
 * Slowloris: libmicrohttpd's timeout restarts with every byte, so clients
 * sending a header byte every few seconds could hold every slot and leave
 * /health unanswered (a liveness probe then kills dnsd). We track each
 * connection from libmicrohttpd's notifications: one that has not
 * completed a request's header HTTP_HEADER_TIMEOUT_MS after it opened (or
 * after its previous answer) is shut down, and while fewer than
 * HTTP_RESERVE slots are free the longest-waiting such connections are
 * shut down at once, so a probe always finds a slot. shutdown() rather
 * than close(): libmicrohttpd owns the descriptor, sees EOF and closes it. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <microhttpd.h>
#include <urcu-qsbr.h>

#include "health.h"
#include "http.h"

#include <time.h>

#include "etcd.h"
#include "util/log.h"
#include "metrics.h"
#include "server.h"
#include "status.h"
#include "util/textbuf.h"
#include "zone.h"

enum {
	HTTP_MAX_CONNS = 64,
	HTTP_MAX_PER_IP = 8,
	HTTP_TIMEOUT_S = 10,
	HTTP_CONN_MEMORY = 32 << 10,
	HTTP_WAIT_MS = 200,
	/* A request's header must be complete this long after the
	 * connection opened or its previous answer was sent. */
	HTTP_HEADER_TIMEOUT_MS = 5000,
	/* Slots kept free for new connections by shutting down the
	 * connections that have waited longest for a header. */
	HTTP_RESERVE = 16,
};

/* One open connection, from libmicrohttpd's connection notifications. */
struct http_conn {
	struct MHD_Connection *c;     /* NULL: slot free */
	uint64_t key;                 /* server_client_key of the client */
	uint64_t waiting_since_ms;    /* waiting for a header since; 0: a request is served */
	bool shut;                    /* shut down by us, close pending */
};

struct http {
	struct MHD_Daemon *d;
	struct health *health;
	pthread_t thread;
	int stopfd;
	int port;
	bool serving;                 /* atomic: DNS listeners bound */
	bool waiting;                 /* atomic: another source not read yet (etcd) */
	struct etcd *etcd;            /* atomic: NULL without etcd */
	uint64_t ready_by_ms;         /* atomic: /ready stops waiting for first checks */
	bool stop;                    /* atomic */
	/* Open connections; only the http thread (MHD_run's callbacks and
	 * the sweep) touches them. */
	struct http_conn conns[HTTP_MAX_CONNS];
};

static void etcd_metrics(struct textbuf *tb, struct etcd *e);
static void etcd_json(struct textbuf *tb, struct etcd *e);

/* Accept policy: at most HTTP_MAX_PER_IP connections per client. */
static enum MHD_Result http_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct http *h = cls;
	(void)addrlen;
	uint64_t key = server_client_key(addr);
	unsigned n = 0;
	for (size_t i = 0; i < HTTP_MAX_CONNS; i++)
		n += h->conns[i].c && h->conns[i].key == key;
	return n < HTTP_MAX_PER_IP ? MHD_YES : MHD_NO;
}

static void http_conn_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                             enum MHD_ConnectionNotificationCode toe)
{
	struct http *h = cls;
	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		struct http_conn *hc = *socket_context;
		if (hc)
			memset(hc, 0, sizeof(*hc));
		*socket_context = NULL;
		return;
	}
	*socket_context = NULL;
	for (size_t i = 0; i < HTTP_MAX_CONNS; i++) {
		struct http_conn *hc = &h->conns[i];
		if (hc->c)
			continue;
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		hc->c = c;
		hc->key = ci && ci->client_addr ? server_client_key(ci->client_addr) : 0;
		hc->waiting_since_ms = health_now_ms();
		hc->shut = false;
		*socket_context = hc;
		return;
	}
}

static struct http_conn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

/* A request was answered (or failed): the connection waits for the next
 * header from now. */
static void http_request_done(void *cls, struct MHD_Connection *c, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)con_cls;
	(void)toe;
	struct http_conn *hc = conn_of(c);
	if (hc && hc->c == c)
		hc->waiting_since_ms = health_now_ms();
}

static void http_conn_shut(struct http_conn *hc)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(hc->c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci)
		shutdown(ci->connect_fd, SHUT_RDWR);
	hc->shut = true;
}

/* Shuts down the connections whose header is overdue, then, while fewer
 * than HTTP_RESERVE slots are free, the one that has waited longest for a
 * header. O(HTTP_MAX_CONNS) per round of the thread. */
static void http_sweep(struct http *h, uint64_t now)
{
	unsigned open = 0;
	for (size_t i = 0; i < HTTP_MAX_CONNS; i++) {
		struct http_conn *hc = &h->conns[i];
		if (!hc->c || hc->shut)
			continue;
		if (hc->waiting_since_ms && now - hc->waiting_since_ms >= HTTP_HEADER_TIMEOUT_MS)
			http_conn_shut(hc);
		else
			open++;
	}
	while (open + HTTP_RESERVE > HTTP_MAX_CONNS) {
		struct http_conn *old = NULL;
		for (size_t i = 0; i < HTTP_MAX_CONNS; i++) {
			struct http_conn *hc = &h->conns[i];
			if (hc->c && !hc->shut && hc->waiting_since_ms &&
			    (!old || hc->waiting_since_ms < old->waiting_since_ms))
				old = hc;
		}
		if (!old)
			break;
		http_conn_shut(old);
		open--;
	}
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *type,
                             char *body, size_t len, bool must_free)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
		len, body, must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (!r) {
		if (must_free)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	enum MHD_Result ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned code, const char *text)
{
	return reply(c, code, "text/plain; charset=utf-8", (char *)text, strlen(text), false);
}

static enum MHD_Result reply_tb(struct MHD_Connection *c, const char *type, struct textbuf *tb)
{
	size_t len;
	char *body = tb_take(tb, &len);
	if (!body)
		return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	return reply(c, MHD_HTTP_OK, type, body, len, true);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_size, void **con_cls)
{
	struct http *h = cls;
	(void)version;
	(void)upload_data;
	(void)con_cls;
	struct http_conn *hc = conn_of(c);
	if (hc && hc->c == c)
		hc->waiting_since_ms = 0;    /* the header is complete */
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
	/* libmicrohttpd calls with the header alone first: a body announced
	 * there is refused before any of it arrives. */
	const char *clen = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
	if (*upload_size != 0 || (clen && strcmp(clen, "0") != 0) ||
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding"))
		return reply_text(c, MHD_HTTP_BAD_REQUEST, "no body expected\n");

	uint64_t now = health_now_ms();
	struct textbuf tb = { 0 };
	if (strcmp(url, "/health") == 0 || strcmp(url, "/healthz") == 0)
		return reply_text(c, MHD_HTTP_OK, "ok\n");
	if (strcmp(url, "/ready") == 0) {
		const struct zone_snapshot *snap = zone_current();
		if (!snap)
			return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready: no zone loaded\n");
		if (!__atomic_load_n(&h->serving, __ATOMIC_ACQUIRE))
			return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready: listeners not bound\n");
		if (__atomic_load_n(&h->waiting, __ATOMIC_ACQUIRE))
			return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE,
			                  "not ready: etcd not read yet\n");
		if (h->health && now < __atomic_load_n(&h->ready_by_ms, __ATOMIC_RELAXED) &&
		    !health_first_round_done(h->health))
			return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE,
			                  "not ready: first health checks still running\n");
		return reply_text(c, MHD_HTTP_OK, "ready\n");
	}
	if (strcmp(url, "/metrics") == 0) {
		metrics_render(&tb);
		status_metrics(&tb, zone_current(), h->health, now);
		struct etcd *e = __atomic_load_n(&h->etcd, __ATOMIC_ACQUIRE);
		if (e)
			etcd_metrics(&tb, e);
		return reply_tb(c, "text/plain; version=0.0.4; charset=utf-8", &tb);
	}
	if (strcmp(url, "/status.json") == 0) {
		status_json(&tb, zone_current(), h->health, now);
		struct etcd *e = __atomic_load_n(&h->etcd, __ATOMIC_ACQUIRE);
		if (e)
			etcd_json(&tb, e);
		return reply_tb(c, "application/json", &tb);
	}
	if (strcmp(url, "/") == 0 || strcmp(url, "/status") == 0)
		return reply(c, MHD_HTTP_OK, "text/html; charset=utf-8", (char *)status_html,
		             strlen(status_html), false);
	return reply_text(c, MHD_HTTP_NOT_FOUND,
	                  "not found; try /, /status.json, /metrics, /health, /ready\n");
}

static void *http_main(void *arg)
{
	struct http *h = arg;
	rcu_register_thread();
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
	int mfd = info ? info->epoll_fd : -1;
	while (!__atomic_load_n(&h->stop, __ATOMIC_ACQUIRE)) {
		int ms = HTTP_WAIT_MS;
		MHD_UNSIGNED_LONG_LONG to;
		if (MHD_get_timeout(h->d, &to) == MHD_YES && to < (MHD_UNSIGNED_LONG_LONG)ms)
			ms = (int)to;
		struct pollfd p[2] = { { .fd = mfd, .events = POLLIN }, { .fd = h->stopfd, .events = POLLIN } };
		rcu_thread_offline();
		int n = poll(p, 2, ms);
		rcu_thread_online();
		if (n == -1 && errno != EINTR) {
			log_err("http: poll: %s; status endpoint stopped", strerror(errno));
			break;
		}
		MHD_run(h->d);
		http_sweep(h, health_now_ms());
		rcu_quiescent_state();
	}
	rcu_unregister_thread();
	return NULL;
}

struct http *http_start(const struct cfg_listen *addr, struct health *health, char *err,
                        size_t errlen)
{
	struct http *h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->health = health;
	h->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (h->stopfd == -1) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		free(h);
		return NULL;
	}
	unsigned flags = MHD_USE_EPOLL | MHD_USE_TURBO;
	if (addr->ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	uint16_t port = ntohs(addr->ss.ss_family == AF_INET6
	                          ? ((const struct sockaddr_in6 *)&addr->ss)->sin6_port
	                          : ((const struct sockaddr_in *)&addr->ss)->sin_port);
	h->d = MHD_start_daemon(flags, port, http_accept, h, handle, h,
	                        MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&addr->ss,
	                        MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNS,
	                        MHD_OPTION_NOTIFY_CONNECTION, http_conn_notify, h,
	                        MHD_OPTION_NOTIFY_COMPLETED, http_request_done, h,
	                        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT_S,
	                        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
	                        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
	                        MHD_OPTION_END);
	if (!h->d) {
		snprintf(err, errlen, "cannot listen for HTTP on port %u (address in use?)", port);
		close(h->stopfd);
		free(h);
		return NULL;
	}
	const union MHD_DaemonInfo *li = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_LISTEN_FD);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	h->port = port;
	if (li && getsockname(li->listen_fd, (struct sockaddr *)&ss, &sl) == 0)
		h->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
		                                         : ((struct sockaddr_in *)&ss)->sin_port);
	int rc = pthread_create(&h->thread, NULL, http_main, h);
	if (rc == 0)
		pthread_setname_np(h->thread, "http");
	if (rc != 0) {
		snprintf(err, errlen, "pthread_create: %s", strerror(rc));
		MHD_stop_daemon(h->d);
		close(h->stopfd);
		free(h);
		return NULL;
	}
	return h;
}

void http_set_etcd(struct http *h, struct etcd *e)
{
	if (h)
		__atomic_store_n(&h->etcd, e, __ATOMIC_RELEASE);
}

/* The etcd client's state: as metrics, or as the "etcd" member of
 * /status.json (added before its closing brace). */
static void etcd_metrics(struct textbuf *tb, struct etcd *e)
{
	struct etcd_status st;
	etcd_status(e, &st);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	tb_printf(tb,
	          "# HELP dnsd_etcd_synced 1 once the etcd prefix was read.\n"
	          "# TYPE dnsd_etcd_synced gauge\ndnsd_etcd_synced %d\n"
	          "# HELP dnsd_etcd_connected 1 while a watch stream is open.\n"
	          "# TYPE dnsd_etcd_connected gauge\ndnsd_etcd_connected %d\n"
	          "# HELP dnsd_etcd_stale_seconds Seconds since the etcd data stopped being followed "
	          "(0 while connected).\n"
	          "# TYPE dnsd_etcd_stale_seconds gauge\ndnsd_etcd_stale_seconds %.3f\n"
	          "# HELP dnsd_etcd_revision The etcd revision served.\n"
	          "# TYPE dnsd_etcd_revision gauge\ndnsd_etcd_revision %lld\n"
	          "# HELP dnsd_etcd_errors_total Failed etcd requests and broken streams.\n"
	          "# TYPE dnsd_etcd_errors_total counter\ndnsd_etcd_errors_total %llu\n"
	          "# HELP dnsd_etcd_skipped_total Malformed or oversized etcd records skipped.\n"
	          "# TYPE dnsd_etcd_skipped_total counter\ndnsd_etcd_skipped_total %llu\n"
	          "# HELP dnsd_etcd_events_total etcd changes received.\n"
	          "# TYPE dnsd_etcd_events_total counter\ndnsd_etcd_events_total %llu\n",
	          st.synced, st.connected,
	          st.stale_since_ms && now > st.stale_since_ms ? (double)(now - st.stale_since_ms) / 1e3
	                                                       : 0.0,
	          (long long)st.revision, (unsigned long long)st.errors,
	          (unsigned long long)st.skipped, (unsigned long long)st.events);
}

static void etcd_json(struct textbuf *tb, struct etcd *e)
{
	struct etcd_status st;
	etcd_status(e, &st);
	/* status_json ends with "}\n": the member goes before it. */
	if (tb->len < 2 || tb->p[tb->len - 2] != '}')
		return;
	tb->len -= 2;
	tb_printf(tb, ",\"etcd\":{\"synced\":%s,\"connected\":%s,\"revision\":%lld,"
	              "\"stale_since_ms\":%llu,\"last_sync_ms\":%llu,\"errors\":%llu,"
	              "\"skipped\":%llu,\"events\":%llu,\"endpoint\":",
	          st.synced ? "true" : "false", st.connected ? "true" : "false",
	          (long long)st.revision, (unsigned long long)st.stale_since_ms,
	          (unsigned long long)st.last_sync_ms, (unsigned long long)st.errors,
	          (unsigned long long)st.skipped, (unsigned long long)st.events);
	tb_json_str(tb, st.endpoint);
	tb_printf(tb, ",\"last_error\":");
	tb_json_str(tb, st.last_error);
	tb_printf(tb, "}}\n");
}

void http_set_waiting(struct http *h, bool waiting)
{
	if (h)
		__atomic_store_n(&h->waiting, waiting, __ATOMIC_RELEASE);
}

void http_set_serving(struct http *h, bool serving)
{
	if (h)
		__atomic_store_n(&h->serving, serving, __ATOMIC_RELEASE);
}

void http_set_ready_bound(struct http *h, unsigned ms)
{
	if (h)
		__atomic_store_n(&h->ready_by_ms, health_now_ms() + ms, __ATOMIC_RELAXED);
}

int http_local_port(const struct http *h)
{
	return h ? h->port : -1;
}

void http_stop(struct http *h)
{
	if (!h)
		return;
	__atomic_store_n(&h->stop, true, __ATOMIC_RELEASE);
	uint64_t one = 1;
	if (write(h->stopfd, &one, sizeof(one)) == -1)
		log_warn("http: wake-up write: %s", strerror(errno));
	pthread_join(h->thread, NULL);
	MHD_stop_daemon(h->d);
	close(h->stopfd);
	free(h);
}

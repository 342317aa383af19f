/* test_http.c -- the operator endpoint's requests (http.c), over a real
 * socket: which paths exist, GET and HEAD only, no request body, a request
 * that is not HTTP, and /ready's states (no zone, listeners not bound,
 * waiting for etcd, ready). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "http.h"
#include "tap.h"
#include "zone.h"

static int port;

/* Sends raw, returns the status code of the answer (0: none) and its
 * start in out. */
static int request(const char *raw, char *out, size_t cap)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	out[0] = '\0';
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	if (write(fd, raw, strlen(raw)) < 0) {
		close(fd);
		return 0;
	}
	size_t n = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	while (n + 1 < cap && poll(&p, 1, 3000) == 1) {
		ssize_t r = read(fd, out + n, cap - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	out[n] = '\0';
	close(fd);
	int code = 0;
	return sscanf(out, "HTTP/1.%*d %d", &code) == 1 ? code : 0;
}

static int get(const char *path, char *out, size_t cap)
{
	char raw[256];
	snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", path);
	return request(raw, out, cap);
}

int main(void)
{
	struct cfg_listen l;
	char err[256], out[65536];
	if (config_parse_listen_port0("127.0.0.1:0", 0, true, &l) != 0)
		return 1;
	struct http *h = http_start(&l, NULL, err, sizeof(err));
	if (!ok(h != NULL, "started (%s)", h ? "" : err))
		return done_testing();
	port = http_local_port(h);
	is_int(get("/health", out, sizeof(out)), 200, "/health: 200");
	is_int(get("/healthz", out, sizeof(out)), 200, "/healthz: 200");
	ok(get("/ready", out, sizeof(out)) == 503 && strstr(out, "no zone loaded"),
	   "/ready without a zone: 503, says why");
	ok(get("/metrics", out, sizeof(out)) == 200 && strstr(out, "# TYPE "),
	   "/metrics: Prometheus text");
	ok(get("/", out, sizeof(out)) == 200 && strstr(out, "text/html"), "/: the status page");
	ok(get("/nothing", out, sizeof(out)) == 404 && strstr(out, "/status.json"),
	   "an unknown path: 404 naming the real ones");
	ok(request("POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close"
	           "\r\n\r\n", out, sizeof(out)) == 405, "POST: 405");
	ok(request("HEAD /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", out,
	           sizeof(out)) == 200 && !strstr(out, "ok\n"), "HEAD: 200, no body");
	ok(request("GET /health HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nConnection: close"
	           "\r\n\r\nabc", out, sizeof(out)) == 400, "a body with GET: 400");
	int c = request("NOT HTTP AT ALL\r\n\r\n", out, sizeof(out));
	ok(c == 400 || c == 0 || c == 505, "not HTTP: refused (%d)", c);

	/* /ready with a zone: listeners, then etcd, then ready. */
	struct config *cfg;
	struct config_error ce;
	struct zone_snapshot *snap;
	if (config_load_string("zones: [{name: mesh}]\n", 21, "t.yaml", &cfg, &ce) != 0 ||
	    zone_build(cfg, NULL, NULL, NULL, NULL, NULL, &snap, err, sizeof(err)) != 0)
		return 1;
	zone_publish(snap);
	ok(get("/ready", out, sizeof(out)) == 503 && strstr(out, "listeners not bound"),
	   "a zone, no listeners yet: 503");
	http_set_serving(h, true);
	http_set_waiting(h, true);
	ok(get("/ready", out, sizeof(out)) == 503 && strstr(out, "etcd"), "waiting for etcd: 503");
	http_set_waiting(h, false);
	ok(get("/ready", out, sizeof(out)) == 200 && strstr(out, "ready"), "then ready: 200");
	ok(get("/status.json", out, sizeof(out)) == 200 && strstr(out, "\"zones\""),
	   "/status.json lists the zones");
	http_stop(h);
	zone_shutdown();
	config_free(cfg);
	return done_testing();
}

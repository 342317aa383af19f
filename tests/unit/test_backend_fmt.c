/* test_backend_fmt.c -- backend_fmt: the one model of a backend's state
 * that the CHAOS answer, /status.json and /metrics print. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include "backend_fmt.h"
#include "metrics.h"
#include "tap.h"
#include "zone.h"

static const struct zone_port ports[] = { { .name = "http", .port = 8080, .proto = 6 } };

static void test_result_text(void)
{
	char buf[96];
	backend_fmt_result(200, 0, 5, buf, sizeof(buf));
	is_str(buf, "none", "no check yet: none, whatever the code");
	backend_fmt_result(200, 3, 5, buf, sizeof(buf));
	is_str(buf, "http 200", "HTTP status as 'http 200' (not http-200)");
	backend_fmt_result(0, 3, 1, buf, sizeof(buf));
	is_str(buf, "ok", "a TCP connect");
	backend_fmt_result(-ETIMEDOUT, 3, 300, buf, sizeof(buf));
	is_str(buf, "timeout after 300 ms", "timeout as the DOWN log line says it");
	backend_fmt_result(-ECONNREFUSED, 3, 0, buf, sizeof(buf));
	is_str(buf, "connect: Connection refused", "connect errors say so");
	backend_fmt_result(-EPIPE, 3, 0, buf, sizeof(buf));
	is_str(buf, strerror(EPIPE), "other errors: strerror");
}

static void test_view(void)
{
	struct zone_backend b[2];
	memset(b, 0, sizeof(b));
	uint64_t word[2] = { bstate_word(false, 40000), bstate_word(true, 50000) };
	b[0].state = &word[0];
	b[1].state = &word[1];
	b[0].family = AF_INET;
	inet_pton(AF_INET, "10.0.0.1", b[0].addr);
	b[0].weight = 100;
	b[1].family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::1", b[1].addr);
	b[1].weight = 200;
	b[1].port = 9000;
	struct zone_service svc;
	memset(&svc, 0, sizeof(svc));
	svc.ports = ports;
	svc.nports = 1;
	svc.backends = b;
	svc.nbackends = 2;
	svc.slow_start_ms = 10000;

	struct health_state hs = { .up = false, .since_ms = 40000, .last_ms = 300,
		                       .last_code = -ETIMEDOUT, .checks = 9, .transitions = 1 };
	struct backend_view v;
	backend_fmt(&v, &svc, &b[0], &hs, true, 55000, 77);
	ok(!v.up && v.checked, "down, checked");
	is_int(v.weight, 100, "configured weight kept");
	is_int(v.effective, 0, "a down backend's effective weight is 0 (was its weight over DNS)");
	is_int(v.since_s, 15, "seconds in its state from since_ms");
	is_str(v.addr, "10.0.0.1", "IPv4 address");
	is_int(v.port, 8080, "the service's port when it has none");
	is_str(v.result, "timeout after 300 ms", "result");
	is_str(v.last, "timeout after 300 ms", "a timeout carries its duration already");
	is_int(v.checks, 9, "checks");
	is_int(v.transitions, 1, "transitions");

	struct health_state never = { .up = true, .since_ms = 0, .last_ms = 3, .last_code = 200,
		                          .checks = 40 };
	backend_fmt(&v, &svc, &b[1], &never, true, 55000, 77);
	is_int(v.since_s, 77, "never changed: up since start (was 0s over DNS, null over HTTP)");
	is_str(v.addr, "[2001:db8::1]", "IPv6 address in brackets");
	is_int(v.port, 9000, "its own port");
	is_int(v.effective, 200 * (100 + 900 * 5000 / 10000) / 1000, "slow start ramp");
	is_str(v.last, "http 200/3ms", "result/duration");

	backend_fmt(&v, &svc, &b[1], NULL, false, 70000, 5);
	ok(v.up && !v.checked, "no watcher state: as served, unchecked");
	is_int(v.effective, 200, "ramp over");
	is_str(v.last, "none", "never checked: none");
	is_int(v.since_s, 5, "since start");

	metrics_global.start_time_s = 0;
	is_int(backend_fmt_uptime_s(), 0, "uptime 0 before the start time is set");
	metrics_global.start_time_s = (uint64_t)time(NULL) - 40;
	ok(backend_fmt_uptime_s() >= 40 && backend_fmt_uptime_s() <= 41, "uptime from the start time");
}

int main(void)
{
	test_result_text();
	test_view();
	return done_testing();
}

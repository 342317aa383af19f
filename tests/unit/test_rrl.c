/* test_rrl.c -- response rate limiting (rrl.c): buckets, debt and window,
 * slip, prefixes, classes, exemptions, and many threads on one bucket. */
#include "tap.h"
#include "rrl.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>

static struct rrl_settings settings(uint32_t rate, uint32_t window, uint32_t slip)
{
	struct rrl_settings s;
	memset(&s, 0, sizeof(s));
	s.rate = rate;
	s.window = window;
	s.slip = slip;
	s.v4_prefix = 24;
	s.v6_prefix = 56;
	return s;
}

static const uint8_t NAME[] = "\3www\4mesh";
static const uint8_t NAME2[] = "\3api\4mesh";

/* n responses of one kind at second now; counts of each verdict. */
static void run(struct rrl *t, const struct rrl_settings *s, const char *ipt, enum rrl_class cls,
                const uint8_t *name, uint32_t now, int n, int out[3])
{
	uint8_t ip[16];
	size_t iplen = inet_pton(AF_INET, ipt, ip) == 1 ? 4 : 16;
	if (iplen == 16 && inet_pton(AF_INET6, ipt, ip) != 1)
		abort();
	out[0] = out[1] = out[2] = 0;
	for (int i = 0; i < n; i++)
		out[rrl_account(t, s, ip, iplen, cls, name, name ? strlen((const char *)name) + 1 : 0,
		                DNS_TYPE_A, now)]++;
}

static void test_buckets(void)
{
	struct rrl *t = rrl_new(10);
	struct rrl_settings s = settings(5, 2, 2);
	int c[3];
	run(t, &s, "192.0.2.1", RRL_ANSWER, NAME, 100, 100, c);
	is_int(c[RRL_PASS], 5, "rate 5: 5 of 100 answered in one second");
	is_int(c[RRL_SLIP], 47, "slip 2: every second limited answer truncated");
	is_int(c[RRL_SLIP] + c[RRL_DROP], 95, "the rest limited");
	run(t, &s, "192.0.2.77", RRL_ANSWER, NAME, 100, 1, c);
	is_int(c[RRL_PASS], 0, "same /24: same bucket, limited");
	run(t, &s, "192.0.3.1", RRL_ANSWER, NAME, 100, 5, c);
	is_int(c[RRL_PASS], 5, "another /24: its own bucket");
	run(t, &s, "192.0.2.1", RRL_ANSWER, NAME2, 100, 5, c);
	is_int(c[RRL_PASS], 5, "another name: its own bucket");
	/* The debt is capped at window x rate = 10: two seconds of credit
	 * repay it, the third second answers again. */
	run(t, &s, "192.0.2.1", RRL_ANSWER, NAME, 102, 1, c);
	is_int(c[RRL_PASS], 0, "two seconds later: still in debt");
	run(t, &s, "192.0.2.1", RRL_ANSWER, NAME, 105, 10, c);
	is_int(c[RRL_PASS], 5, "after the window: a full second's credit, no more");
	rrl_free(t);
}

static void test_slip(void)
{
	struct rrl *t = rrl_new(10);
	struct rrl_settings s = settings(1, 1, 0);
	int c[3];
	run(t, &s, "198.51.100.1", RRL_ERROR, NULL, 10, 11, c);
	ok(c[RRL_PASS] == 1 && c[RRL_DROP] == 10, "slip 0: every limited answer dropped");
	s.slip = 1;
	run(t, &s, "198.51.100.1", RRL_ERROR, NULL, 10, 10, c);
	is_int(c[RRL_SLIP], 10, "slip 1: every limited answer truncated");
	s.slip = 3;
	run(t, &s, "198.51.100.1", RRL_ERROR, NULL, 10, 30, c);
	is_int(c[RRL_SLIP], 10, "slip 3: one in three truncated");
	s.rate = 0;
	run(t, &s, "198.51.100.1", RRL_ERROR, NULL, 10, 30, c);
	is_int(c[RRL_PASS], 30, "rate 0: off");
	rrl_free(t);
}

static void test_ipv6(void)
{
	struct rrl *t = rrl_new(10);
	struct rrl_settings s = settings(3, 5, 2);
	int c[3];
	run(t, &s, "2001:db8:0:100::1", RRL_NXDOMAIN, NAME, 7, 4, c);
	is_int(c[RRL_PASS], 3, "IPv6 client limited");
	run(t, &s, "2001:db8:0:1ff::2", RRL_NXDOMAIN, NAME, 7, 1, c);
	is_int(c[RRL_PASS], 0, "same /56: same bucket");
	run(t, &s, "2001:db8:0:200::1", RRL_NXDOMAIN, NAME, 7, 1, c);
	is_int(c[RRL_PASS], 1, "another /56: its own bucket");
	run(t, &s, "2001:db8:0:100::1", RRL_NODATA, NAME, 7, 1, c);
	is_int(c[RRL_PASS], 1, "another class: its own bucket");
	s.v6_prefix = 64;
	run(t, &s, "2001:db8:0:1ff::2", RRL_NXDOMAIN, NAME, 7, 1, c);
	is_int(c[RRL_PASS], 1, "ipv6-prefix 64: another bucket");
	rrl_free(t);
}

static void test_exempt(void)
{
	struct rrl_settings s = settings(1, 1, 1);
	s.exempt[0] = (struct rrl_prefix){ .iplen = 4, .addr = { 127 }, .prefix = 8 };
	s.exempt[1] = (struct rrl_prefix){ .iplen = 16, .addr = { [15] = 1 }, .prefix = 128 };
	s.nexempt = 2;
	uint8_t a[16] = { 127, 1, 2, 3 };
	ok(rrl_exempt(&s, a, 4), "127.1.2.3 in 127.0.0.0/8");
	a[0] = 128;
	ok(!rrl_exempt(&s, a, 4), "128.1.2.3 not");
	uint8_t v6[16] = { [15] = 1 };
	ok(rrl_exempt(&s, v6, 16), "::1 in ::1/128");
	v6[15] = 2;
	ok(!rrl_exempt(&s, v6, 16), "::2 not");
}

/* Hand-made responses: header, question www.mesh A, then sections. */
static size_t response(uint8_t *buf, uint16_t flags, uint16_t an, uint16_t ns, const uint8_t *auth,
                       size_t authlen)
{
	struct wire_writer w;
	wire_writer_init(&w, buf, 512);
	struct dns_header h = { .id = 1, .flags = flags, .qdcount = 1, .ancount = an, .nscount = ns };
	wire_write_header(&w, &h);
	wire_write_name(&w, NAME, sizeof(NAME), true);
	wire_write_u16(&w, DNS_TYPE_A);
	wire_write_u16(&w, DNS_CLASS_IN);
	for (unsigned i = 0; i < an; i++) {
		wire_write_name(&w, NAME, sizeof(NAME), true);
		wire_write_u16(&w, DNS_TYPE_A);
		wire_write_u16(&w, DNS_CLASS_IN);
		wire_write_u32(&w, 30);
		wire_write_u16(&w, 4);
		wire_write_u32(&w, 0x7f000001);
	}
	if (ns) {
		wire_write_name(&w, auth, authlen, true);
		wire_write_u16(&w, DNS_TYPE_NS);
		wire_write_u16(&w, DNS_CLASS_IN);
		wire_write_u32(&w, 30);
		wire_write_u16(&w, 1);
		wire_write_u8(&w, 0);
	}
	return w.pos;
}

static void test_classify(void)
{
	static const uint8_t zone[] = "\4MESH";
	uint8_t buf[512], name[DNS_NAME_MAX];
	size_t nl, len;
	uint16_t qt;
	len = response(buf, DNS_FLAG_QR | DNS_FLAG_AA, 1, 0, NULL, 0);
	is_int(rrl_classify(buf, len, name, &nl, &qt), RRL_ANSWER, "an answer");
	ok(nl == sizeof(NAME) && memcmp(name, NAME, nl) == 0 && qt == DNS_TYPE_A, "keyed by qname, type");
	len = response(buf, DNS_FLAG_QR | DNS_FLAG_AA | DNS_RCODE_NXDOMAIN, 1, 1, zone, sizeof(zone));
	is_int(rrl_classify(buf, len, name, &nl, &qt), RRL_NXDOMAIN, "NXDOMAIN (after a CNAME)");
	ok(wire_name_equal(name, nl, zone, sizeof(zone)), "keyed by the SOA owner");
	len = response(buf, DNS_FLAG_QR | DNS_FLAG_AA, 0, 1, NAME + 4, sizeof(NAME) - 4);
	is_int(rrl_classify(buf, len, name, &nl, &qt), RRL_NODATA, "NODATA");
	ok(nl == sizeof(NAME), "keyed by qname");
	len = response(buf, DNS_FLAG_QR, 0, 1, NAME, sizeof(NAME));
	is_int(rrl_classify(buf, len, name, &nl, &qt), RRL_REFERRAL, "referral");
	len = response(buf, DNS_FLAG_QR | DNS_RCODE_REFUSED, 0, 0, NULL, 0);
	is_int(rrl_classify(buf, len, name, &nl, &qt), RRL_ERROR, "REFUSED: an error");
	is_int(nl, 0, "errors: no name");
	is_int(rrl_classify(buf, 5, name, &nl, &qt), RRL_ERROR, "cut short: an error");
}

struct hammer {
	struct rrl *t;
	const struct rrl_settings *s;
	int pass;
};

static void *hammer(void *arg)
{
	struct hammer *h = arg;
	uint8_t ip[4] = { 203, 0, 113, 9 };
	for (int i = 0; i < 20000; i++)
		h->pass += rrl_account(h->t, h->s, ip, 4, RRL_ANSWER, NAME, sizeof(NAME), 1, 50) == RRL_PASS;
	return NULL;
}

static void test_threads(void)
{
	struct rrl *t = rrl_new(8);
	struct rrl_settings s = settings(1000, 15, 2);
	struct hammer h[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		h[i] = (struct hammer){ t, &s, 0 };
		pthread_create(&th[i], NULL, hammer, &h[i]);
	}
	int total = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		total += h[i].pass;
	}
	ok(total >= 1000 && total <= 1010, "4 threads, one bucket, one second: %d answered (rate 1000)",
	   total);
	rrl_free(t);
}

int main(void)
{
	test_buckets();
	test_slip();
	test_ipv6();
	test_exempt();
	test_classify();
	test_threads();
	return done_testing();
}

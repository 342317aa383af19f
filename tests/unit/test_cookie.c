/* test_cookie.c -- server cookies (cookie.c) against the worked examples
 * of RFC 9018 Appendix A, then ages, rotation, addresses and lengths. */
#include "tap.h"
#include "dns/cookie.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>

static void unhex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(s + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
}

static size_t ip_of(const char *text, uint8_t out[16])
{
	if (inet_pton(AF_INET, text, out) == 1)
		return 4;
	if (inet_pton(AF_INET6, text, out) == 1)
		return 16;
	abort();
}

static bool hex_is(const uint8_t *got, size_t n, const char *want, const char *what)
{
	char buf[2 * COOKIE_LEN + 1];
	for (size_t i = 0; i < n; i++)
		snprintf(buf + 2 * i, 3, "%02x", got[i]);
	return is_str(buf, want, "%s", what);
}

static struct cookie_secrets secrets(const char *cur, const char *prev)
{
	struct cookie_secrets s;
	memset(&s, 0, sizeof(s));
	unhex(cur, s.current, COOKIE_SECRET_LEN);
	if (prev) {
		unhex(prev, s.previous, COOKIE_SECRET_LEN);
		s.have_previous = true;
	}
	return s;
}

#define SECRET1 "e5e973e5a6b2a43f48e7dc849e37bfcf"
#define SECRET_OLD "dd3bdf9344b678b185a6f5cb60fca715"
#define SECRET_NEW "445536bcd2513298075a5d379663c962"

static enum cookie_verdict verdict(const struct cookie_secrets *s, const char *ipt,
                                   const char *query, uint32_t now)
{
	uint8_t ip[16], opt[40];
	size_t iplen = ip_of(ipt, ip), len = strlen(query) / 2;
	unhex(query, opt, len);
	return cookie_check(s, opt, len, ip, iplen, now);
}

/* One exchange of Appendix A: the query's option, the server's verdict at
 * now, and the option it answers with. */
static void exchange(const struct cookie_secrets *s, const char *ipt, const char *query,
                     uint32_t now, enum cookie_verdict want_v, const char *want, const char *what)
{
	uint8_t ip[16], opt[40], out[COOKIE_LEN];
	size_t iplen = ip_of(ipt, ip), len = strlen(query) / 2;
	unhex(query, opt, len);
	enum cookie_verdict v = cookie_check(s, opt, len, ip, iplen, now);
	is_int(v, want_v, "%s: verdict", what);
	cookie_answer(s, v, opt, ip, iplen, now, out);
	hex_is(out, COOKIE_LEN, want, what);
}

static void test_rfc9018(void)
{
	struct cookie_secrets s = secrets(SECRET1, NULL);
	/* A.1: learning a new server cookie. */
	exchange(&s, "198.51.100.100", "2464c4abcf10c957", 1559731985, COOKIE_CLIENT_ONLY,
	         "2464c4abcf10c957010000005cf79f111f8130c3eee29480", "A.1 new server cookie");
	/* A.2: the same client 40 minutes later: valid, renewed. */
	exchange(&s, "198.51.100.100", "2464c4abcf10c957010000005cf79f111f8130c3eee29480",
	         1559734385, COOKIE_RENEW, "2464c4abcf10c957010000005cf7a871d4a564a1442aca77",
	         "A.2 renewed server cookie");
	/* A.3: another client, with reserved bytes set, whose cookie is 1h52m
	 * old by now: beyond the hour, so a fresh one (the same bytes as the
	 * RFC's renewal). When it was made it was valid: the reserved bytes
	 * are hashed as sent. */
	const char *a3 = "fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5";
	exchange(&s, "203.0.113.203", a3, 1559734700, COOKIE_INVALID,
	         "fc93fc62807ddb86010000005cf7a9acf73a7810aca2381e", "A.3 fresh server cookie");
	exchange(&s, "203.0.113.203", a3, 1559727985 + 10, COOKIE_VALID, a3,
	         "A.3 cookie valid when young (reserved bytes hashed as sent) and echoed");
	is_int(verdict(&s, "203.0.113.204", a3, 1559727985 + 10), COOKIE_INVALID,
	       "A.3 cookie from another address: invalid");
	/* A.4: an IPv6 client after a rollover: the old secret's cookie is
	 * accepted as previous and answered with one of the new secret. */
	struct cookie_secrets rolled = secrets(SECRET_NEW, SECRET_OLD);
	const char *a4 = "22681ab97d52c298010000005cf7c57926556bd0934c72f8";
	exchange(&rolled, "2001:db8:220:1:59de:d0f4:8769:82b8", a4, 1559741961, COOKIE_RENEW,
	         "22681ab97d52c298010000005cf7c609a6bb79d16625507a", "A.4 IPv6, rolled secret");
	struct cookie_secrets only_new = secrets(SECRET_NEW, NULL);
	is_int(verdict(&only_new, "2001:db8:220:1:59de:d0f4:8769:82b8", a4, 1559741961),
	       COOKIE_INVALID, "A.4 without the previous secret: invalid");
	struct cookie_secrets only_old = secrets(SECRET_OLD, NULL);
	is_int(verdict(&only_old, "2001:db8:220:1:59de:d0f4:8769:82b8", a4, 1559741961),
	       COOKIE_VALID, "A.4 under the old secret: valid");
}

/* A cookie made at t0 judged at t0 + d. */
static enum cookie_verdict aged(int64_t d)
{
	struct cookie_secrets s = secrets(SECRET1, NULL);
	uint8_t ip[4] = { 192, 0, 2, 1 }, opt[COOKIE_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	uint32_t t0 = 4294964696u;   /* 2600 s before the 32-bit wrap */
	cookie_make(s.current, opt, ip, 4, t0, opt + 8);
	return cookie_check(&s, opt, COOKIE_LEN, ip, 4, (uint32_t)(t0 + d));
}

static void test_ages(void)
{
	is_int(aged(0), COOKIE_VALID, "made this second: valid");
	is_int(aged(1800), COOKIE_VALID, "half an hour old: valid, not yet renewed");
	is_int(aged(1801), COOKIE_RENEW, "older than half an hour: renewed");
	is_int(aged(3600), COOKIE_RENEW, "an hour old (across the 32-bit wrap): still valid");
	is_int(aged(3601), COOKIE_INVALID, "an hour and a second: invalid");
	is_int(aged(-300), COOKIE_VALID, "five minutes in the future: valid");
	is_int(aged(-301), COOKIE_INVALID, "more than five minutes in the future: invalid");
	is_int(aged(1LL << 31), COOKIE_INVALID, "68 years away: invalid");
}

static void test_forms(void)
{
	struct cookie_secrets s = secrets(SECRET1, NULL);
	uint8_t ip[4] = { 192, 0, 2, 1 }, opt[40] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	cookie_make(s.current, opt, ip, 4, 1000, opt + 8);
	is_int(cookie_check(&s, opt, COOKIE_LEN, ip, 4, 1000), COOKIE_VALID, "our own: valid");
	is_int(cookie_check(&s, opt, 16, ip, 4, 1000), COOKIE_INVALID, "8-byte server cookie: not ours");
	is_int(cookie_check(&s, opt, 40, ip, 4, 1000), COOKIE_INVALID, "32-byte server cookie: not ours");
	opt[8] = 2;
	is_int(cookie_check(&s, opt, COOKIE_LEN, ip, 4, 1000), COOKIE_INVALID, "version 2: invalid");
	opt[8] = 1;
	opt[23] ^= 1;
	is_int(cookie_check(&s, opt, COOKIE_LEN, ip, 4, 1000), COOKIE_INVALID, "hash bit flipped: invalid");
	opt[23] ^= 1;
	opt[0] ^= 0x80;
	is_int(cookie_check(&s, opt, COOKIE_LEN, ip, 4, 1000), COOKIE_INVALID,
	       "another client cookie: invalid");
	opt[0] ^= 0x80;
	uint8_t ip6[16] = { 192, 0, 2, 1 };
	is_int(cookie_check(&s, opt, COOKIE_LEN, ip6, 16, 1000), COOKIE_INVALID,
	       "from an IPv6 address with the same first bytes: invalid");
	is_int(cookie_check(&s, opt, 8, ip, 4, 1000), COOKIE_CLIENT_ONLY, "8 bytes: client only");

	struct sockaddr_in6 m;
	memset(&m, 0, sizeof(m));
	m.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:192.0.2.1", &m.sin6_addr);
	uint8_t got[16];
	is_int(cookie_client_ip((struct sockaddr *)&m, got), 4, "IPv4-mapped address hashed as IPv4");
	ok(memcmp(got, ip, 4) == 0, "IPv4-mapped address bytes");
	inet_pton(AF_INET6, "2001:db8::1", &m.sin6_addr);
	is_int(cookie_client_ip((struct sockaddr *)&m, got), 16, "IPv6 address: 16 bytes");
	struct sockaddr other = { .sa_family = AF_UNIX };
	is_int(cookie_client_ip(&other, got), 0, "other family: 0");

	uint8_t k[COOKIE_SECRET_LEN];
	is_int(cookie_secret_from_hex(" " SECRET1 "\n", k), 0, "hex secret with whitespace");
	ok(memcmp(k, s.current, sizeof(k)) == 0, "hex secret bytes");
	is_int(cookie_secret_from_hex("e5e973e5a6b2a43f48e7dc849e37bfc", k), -1, "31 digits");
	is_int(cookie_secret_from_hex(SECRET1 "00", k), -1, "34 digits");
	is_int(cookie_secret_from_hex("g5e973e5a6b2a43f48e7dc849e37bfcf", k), -1, "not hex");
	is_int(cookie_secret_from_hex("e5e973e5a6b2a43f 48e7dc849e37bfcf", k), -1,
	       "whitespace inside the digits");
	is_int(cookie_secret_from_hex("E5E973E5A6B2A43F48E7DC849E37BFCF", k), 0, "upper case hex");
	ok(k[0] == 0xe5 && k[15] == 0xcf, "... its bytes");
}

int main(void)
{
	test_rfc9018();
	test_ages();
	test_forms();
	return done_testing();
}

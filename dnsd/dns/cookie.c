/* cookie.c -- DNS Cookies: RFC 9018 server cookies (SipHash-2-4) and their
 * validation; no state of its own (secrets and time come from the caller). */
#include "dns/cookie.h"

#include <ctype.h>
#include <netinet/in.h>
#include <string.h>

#include <sodium.h>

_Static_assert(crypto_shorthash_siphash24_KEYBYTES == COOKIE_SECRET_LEN &&
               crypto_shorthash_siphash24_BYTES == 8, "SipHash-2-4: 16-byte key, 8-byte hash");

size_t cookie_client_ip(const struct sockaddr *sa, uint8_t out[16])
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	if (!sa)
		return 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
		memcpy(out, &s4->sin_addr, 4);
		return 4;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
		const uint8_t *a = s6->sin6_addr.s6_addr;
		if (memcmp(a, mapped, sizeof(mapped)) == 0) {
			memcpy(out, a + 12, 4);
			return 4;
		}
		memcpy(out, a, 16);
		return 16;
	}
	return 0;
}

/* SipHash-2-4 over client | server[0..8) (version, reserved, timestamp) |
 * ip, as RFC 9018 4.4 orders it. */
static void cookie_hash(const uint8_t secret[COOKIE_SECRET_LEN], const uint8_t *client,
                        const uint8_t *head, const uint8_t *ip, size_t iplen, uint8_t out[8])
{
	uint8_t in[COOKIE_CLIENT_LEN + 8 + 16];
	memcpy(in, client, COOKIE_CLIENT_LEN);
	memcpy(in + COOKIE_CLIENT_LEN, head, 8);
	memcpy(in + COOKIE_CLIENT_LEN + 8, ip, iplen);
	crypto_shorthash_siphash24(out, in, COOKIE_CLIENT_LEN + 8 + iplen, secret);
}

void cookie_make(const uint8_t secret[COOKIE_SECRET_LEN], const uint8_t client[COOKIE_CLIENT_LEN],
                 const uint8_t *ip, size_t iplen, uint32_t now, uint8_t out[COOKIE_SERVER_LEN])
{
	out[0] = 1;
	out[1] = out[2] = out[3] = 0;
	out[4] = (uint8_t)(now >> 24);
	out[5] = (uint8_t)(now >> 16);
	out[6] = (uint8_t)(now >> 8);
	out[7] = (uint8_t)now;
	cookie_hash(secret, client, out, ip, iplen, out + 8);
}

enum cookie_verdict cookie_check(const struct cookie_secrets *s, const uint8_t *opt, size_t len,
                                 const uint8_t *ip, size_t iplen, uint32_t now)
{
	if (len == COOKIE_CLIENT_LEN)
		return COOKIE_CLIENT_ONLY;
	/* Only our own format can be ours: version 1, 16 bytes. */
	const uint8_t *sc = opt + COOKIE_CLIENT_LEN;
	if (len != COOKIE_LEN || sc[0] != 1 || (iplen != 4 && iplen != 16))
		return COOKIE_INVALID;
	uint32_t ts = (uint32_t)sc[4] << 24 | (uint32_t)sc[5] << 16 | (uint32_t)sc[6] << 8 | sc[7];
	/* Serial-number arithmetic (RFC 1982): the timestamp wraps in 2106. */
	int32_t age = (int32_t)(now - ts);
	if (age > COOKIE_MAX_AGE || age < -COOKIE_MAX_AHEAD)
		return COOKIE_INVALID;
	uint8_t h[8];
	cookie_hash(s->current, opt, sc, ip, iplen, h);
	if (sodium_memcmp(h, sc + 8, 8) == 0)
		return age > COOKIE_RENEW_AGE ? COOKIE_RENEW : COOKIE_VALID;
	if (s->have_previous) {
		cookie_hash(s->previous, opt, sc, ip, iplen, h);
		if (sodium_memcmp(h, sc + 8, 8) == 0)
			return COOKIE_RENEW;
	}
	return COOKIE_INVALID;
}

void cookie_answer(const struct cookie_secrets *s, enum cookie_verdict v, const uint8_t *opt,
                   const uint8_t *ip, size_t iplen, uint32_t now, uint8_t out[COOKIE_LEN])
{
	memcpy(out, opt, COOKIE_CLIENT_LEN);
	if (v == COOKIE_VALID)
		memcpy(out + COOKIE_CLIENT_LEN, opt + COOKIE_CLIENT_LEN, COOKIE_SERVER_LEN);
	else
		cookie_make(s->current, opt, ip, iplen, now, out + COOKIE_CLIENT_LEN);
}

int cookie_secret_from_hex(const char *text, uint8_t out[COOKIE_SECRET_LEN])
{
	while (isspace((unsigned char)*text))
		text++;
	/* Exactly the secret's digits, then only whitespace. */
	size_t len = strlen(text), got = 0;
	const char *end = NULL;
	if (len < 2 * COOKIE_SECRET_LEN ||
	    sodium_hex2bin(out, COOKIE_SECRET_LEN, text, 2 * COOKIE_SECRET_LEN, NULL, &got, &end) != 0 ||
	    got != COOKIE_SECRET_LEN)
		return -1;
	for (text = end; *text; text++)
		if (!isspace((unsigned char)*text))
			return -1;
	return 0;
}

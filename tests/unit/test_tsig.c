/* test_tsig.c -- TSIG (tsig.c) against messages signed by dnspython
 * (tsig_vectors.h, made by gen_tsig_vectors.py): verification, tampering,
 * time and key errors, and byte-exact signing of single and chained
 * (multi-message) answers. */
#include "tap.h"
#include "dns/tsig.h"
#include "tsig_vectors.h"

#include <stdlib.h>

static struct tsig_key k256, k512, other;

static void keys_init(void)
{
	const char *why = "";
	ok(tsig_key_init(&k256, "xfr-key", TSIG_HMAC_SHA256, VEC_SECRET256, &why) == 0, "key sha256");
	ok(tsig_key_init(&k512, "XFR-Key.", TSIG_HMAC_SHA512, VEC_SECRET512, &why) == 0,
	   "key sha512 (name case folded)");
	ok(tsig_key_init(&other, "other-key", TSIG_HMAC_SHA256, VEC_SECRET256, &why) == 0, "key other");
	struct tsig_key bad;
	ok(tsig_key_init(&bad, "k", TSIG_HMAC_SHA256, "not base64!", &why) == -1, "bad base64");
	ok(tsig_key_init(&bad, "k", TSIG_HMAC_SHA256, "", &why) == -1, "empty secret");
	is_int(tsig_alg_from_text("hmac-sha256"), TSIG_HMAC_SHA256, "alg name sha256");
	is_int(tsig_alg_from_text("HMAC-SHA512."), TSIG_HMAC_SHA512, "alg name sha512");
	is_int(tsig_alg_from_text("hmac-md5"), -1, "md5 not offered");
}

static bool same(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	if (alen == blen && memcmp(a, b, alen) == 0)
		return true;
	diag("lengths %zu vs %zu", alen, blen);
	for (size_t i = 0; i < alen && i < blen; i++)
		if (a[i] != b[i]) {
			diag("first difference at byte %zu: %02x vs %02x", i, a[i], b[i]);
			break;
		}
	return false;
}

static void test_verify(void)
{
	struct tsig_ctx ctx;
	is_int(tsig_verify(vec_req256, sizeof(vec_req256), VEC_REQ_TSIG_OFF, &k256, 1, VEC_TIME + 10,
	                   &ctx), TSIG_NOERROR, "dnspython-signed request verifies");
	ok(ctx.key == &k256 && ctx.maclen == 32, "ctx has the key and the request MAC");
	is_int(tsig_verify(vec_req512, sizeof(vec_req512), VEC_REQ_TSIG_OFF, &k512, 1, VEC_TIME, &ctx),
	       TSIG_NOERROR, "hmac-sha512 request verifies");
	struct tsig_key two[2] = { other, k256 };
	is_int(tsig_verify(vec_req256, sizeof(vec_req256), VEC_REQ_TSIG_OFF, two, 2, VEC_TIME, &ctx),
	       TSIG_NOERROR, "key found among several");
	is_int(tsig_verify(vec_req256, sizeof(vec_req256), VEC_REQ_TSIG_OFF, &other, 1, VEC_TIME, &ctx),
	       TSIG_BADKEY, "unknown key name: BADKEY");
	is_int(tsig_verify(vec_req512, sizeof(vec_req512), VEC_REQ_TSIG_OFF, &k256, 1, VEC_TIME, &ctx),
	       TSIG_BADKEY, "known name, other algorithm: BADKEY");
	is_int(tsig_verify(vec_req256, sizeof(vec_req256), VEC_REQ_TSIG_OFF, &k256, 1,
	                   VEC_TIME + 301, &ctx), TSIG_BADTIME, "301 s late: BADTIME");
	is_int(tsig_verify(vec_req256, sizeof(vec_req256), VEC_REQ_TSIG_OFF, &k256, 1,
	                   VEC_TIME - 301, &ctx), TSIG_BADTIME, "301 s early: BADTIME");
	is_int(tsig_verify(vec_req256, sizeof(vec_req256), VEC_REQ_TSIG_OFF, &k256, 1,
	                   VEC_TIME + 300, &ctx), TSIG_NOERROR, "at the fudge limit: accepted");

	uint8_t m[sizeof(vec_req256)];
	memcpy(m, vec_req256, sizeof(m));
	m[14] ^= 0x20;   /* a letter of the question name changes case */
	is_int(tsig_verify(m, sizeof(m), VEC_REQ_TSIG_OFF, &k256, 1, VEC_TIME, &ctx), TSIG_BADSIG,
	       "question tampered: BADSIG");
	memcpy(m, vec_req256, sizeof(m));
	m[sizeof(m) - 8] ^= 1;  /* last MAC byte */
	is_int(tsig_verify(m, sizeof(m), VEC_REQ_TSIG_OFF, &k256, 1, VEC_TIME, &ctx), TSIG_BADSIG,
	       "MAC tampered: BADSIG");
	memcpy(m, vec_req256, sizeof(m));
	m[3] |= 0x10;   /* CD flag */
	is_int(tsig_verify(m, sizeof(m), VEC_REQ_TSIG_OFF, &k256, 1, VEC_TIME, &ctx), TSIG_BADSIG,
	       "header flags tampered: BADSIG");
	memcpy(m, vec_req256, sizeof(m));
	m[0] ^= 0xff;   /* a forwarder may change the ID: the original ID is MACed */
	is_int(tsig_verify(m, sizeof(m), VEC_REQ_TSIG_OFF, &k256, 1, VEC_TIME, &ctx), TSIG_NOERROR,
	       "changed message ID: original ID used (RFC 8945 4.3.3)");
	memcpy(m, vec_req256, sizeof(m));
	size_t fudge_off = VEC_REQ_TSIG_OFF + 8 + 10 + 13 + 6;  /* owner, fixed, alg, time */
	m[fudge_off + 1] ^= 1;
	is_int(tsig_verify(m, sizeof(m), VEC_REQ_TSIG_OFF, &k256, 1, VEC_TIME, &ctx), TSIG_BADSIG,
	       "fudge tampered: BADSIG");
	is_int(tsig_verify(vec_req256, sizeof(vec_req256) - 1, VEC_REQ_TSIG_OFF, &k256, 1, VEC_TIME,
	                   &ctx), -1, "truncated TSIG RR: malformed");
	is_int(tsig_verify(vec_req256, sizeof(vec_req256), VEC_REQ_TSIG_OFF + 1, &k256, 1, VEC_TIME,
	                   &ctx), -1, "wrong offset: malformed");
}

static void test_sign(void)
{
	struct tsig_ctx ctx;
	uint8_t buf[1024];
	tsig_verify(vec_req256, sizeof(vec_req256), VEC_REQ_TSIG_OFF, &k256, 1, VEC_TIME, &ctx);
	memcpy(buf, vec_resp1_unsigned, VEC_RESP1_UNSIGNED_LEN);
	int n = tsig_sign(buf, VEC_RESP1_UNSIGNED_LEN, sizeof(buf), &ctx, VEC_TIME + 1);
	ok(n > 0 && same(buf, (size_t)n, vec_resp1, sizeof(vec_resp1)),
	   "answer signed as dnspython signs it (request MAC covered)");
	memcpy(buf, vec_resp2_unsigned, VEC_RESP2_UNSIGNED_LEN);
	n = tsig_sign(buf, VEC_RESP2_UNSIGNED_LEN, sizeof(buf), &ctx, VEC_TIME + 2);
	ok(n > 0 && same(buf, (size_t)n, vec_resp2, sizeof(vec_resp2)),
	   "second message chained from the first MAC, timers only (RFC 8945 5.3.1)");
	memcpy(buf, vec_resp1_unsigned, VEC_RESP1_UNSIGNED_LEN);
	is_int(tsig_sign(buf, VEC_RESP1_UNSIGNED_LEN, VEC_RESP1_UNSIGNED_LEN + 20, &ctx, VEC_TIME), -1,
	       "no room: -1");

	/* Our own request (NOTIFY) and the answer to it, both ways. */
	struct tsig_ctx cli, srv;
	tsig_ctx_init(&cli, &k512);
	memcpy(buf, vec_resp2_unsigned, VEC_RESP2_UNSIGNED_LEN);
	buf[2] &= 0x7f;   /* a request */
	n = tsig_sign(buf, VEC_RESP2_UNSIGNED_LEN, sizeof(buf), &cli, VEC_TIME);
	ok(n > 0, "request signed");
	is_int(tsig_verify(buf, (size_t)n, VEC_RESP2_UNSIGNED_LEN, &k512, 1, VEC_TIME, &srv),
	       TSIG_NOERROR, "our signed request verifies");
	uint8_t ans[1024];
	memcpy(ans, buf, VEC_RESP2_UNSIGNED_LEN);
	ans[10] = ans[11] = 0;
	ans[2] |= 0x80;
	ans[11] = buf[11] - 1 + 0;  /* ARCOUNT without the TSIG */
	int m = tsig_sign(ans, VEC_RESP2_UNSIGNED_LEN, sizeof(ans), &srv, VEC_TIME + 1);
	ok(m > 0, "answer signed");
	is_int(tsig_verify_response(ans, (size_t)m, VEC_RESP2_UNSIGNED_LEN, VEC_TIME + 1, &cli), 0,
	       "answer verifies against our request's MAC");
	ans[20] ^= 1;
	is_int(tsig_verify_response(ans, (size_t)m, VEC_RESP2_UNSIGNED_LEN, VEC_TIME + 1, &cli), -1,
	       "tampered answer rejected");

	/* Error answers. */
	tsig_verify(vec_req256, sizeof(vec_req256), VEC_REQ_TSIG_OFF, &other, 1, VEC_TIME, &ctx);
	memcpy(buf, vec_resp1_unsigned, 12);
	buf[6] = buf[7] = buf[4] = buf[5] = 0;
	n = tsig_sign(buf, 12, sizeof(buf), &ctx, VEC_TIME);
	/* owner 9, fixed 10, alg 13, time 6, fudge 2, mac size 2: then id, error. */
	size_t e = 12 + 9 + 10 + 13 + 6 + 2;
	ok(n > 0 && buf[e] == 0 && buf[e + 1] == 0, "BADKEY answer carries no MAC");
	is_int(buf[e + 4] << 8 | buf[e + 5], TSIG_BADKEY, "BADKEY in the error field");
	tsig_verify(vec_req256, sizeof(vec_req256), VEC_REQ_TSIG_OFF, &k256, 1, VEC_TIME + 1000, &ctx);
	n = tsig_sign(buf, 12, sizeof(buf), &ctx, VEC_TIME + 1000);
	ok(n > 0 && (buf[e] << 8 | buf[e + 1]) == 32, "BADTIME answer is signed");
	size_t err_off = e + 2 + 32 + 2;
	is_int(buf[err_off] << 8 | buf[err_off + 1], TSIG_BADTIME, "BADTIME in the error field");
	is_int(buf[err_off + 3], 6, "our time as 6 bytes of other data");
}

int main(void)
{
	keys_init();
	test_verify();
	test_sign();
	return done_testing();
}

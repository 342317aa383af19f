/* fuzz_tsig.c -- TSIG verification and signing (tsig.c) on arbitrary
 * messages: a request is parsed, verified against two keys at a fixed
 * time, and when verification gives an answerable result the request is
 * turned into a response and signed, which must fit and verify as a
 * response. The same bytes are also checked as the answer to a NOTIFY we
 * signed. Nothing may crash, read out of bounds or sign past the buffer. */
#include <stdlib.h>
#include <string.h>

#include "dns/tsig.h"
#include "dns/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { NOW = 1700000000 };

static struct tsig_key keys[2];
static int ready;

static void setup(void)
{
	const char *why;
	/* The key of fuzz/gen_corpus.py's signed seeds, and a SHA-512 one. */
	if (tsig_key_init(&keys[0], "key.mesh.", TSIG_HMAC_SHA256, "c2VjcmV0c2VjcmV0c2VjcmV0", &why) ||
	    tsig_key_init(&keys[1], "xfr-key.", TSIG_HMAC_SHA512,
	                  "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOEhYaHiImKi4yNjo+QkZKTlJWWl5iZmpucnZ6foKGiow==",
	                  &why))
		abort();
	ready = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[65535];
	if (!ready)
		setup();
	struct dns_query q;
	if (wire_parse_query(data, size, &q) == WIRE_PARSE_OK && q.tsig_off) {
		struct tsig_ctx ctx;
		memset(&ctx, 0, sizeof(ctx));
		int rc = tsig_verify(data, size, q.tsig_off, keys, 2, NOW, &ctx);
		if (rc >= 0 && q.tsig_off <= sizeof(buf)) {
			/* The request without its TSIG RR, as a response. */
			memcpy(buf, data, q.tsig_off);
			buf[2] |= 0x80;
			unsigned ar = (unsigned)(buf[10] << 8 | buf[11]);
			if (ar > 0) {
				ar--;
				buf[10] = (uint8_t)(ar >> 8);
				buf[11] = (uint8_t)ar;
			}
			int n = tsig_sign(buf, q.tsig_off, sizeof(buf), &ctx, NOW);
			if (n > (int)sizeof(buf))
				abort();
			if (n > 0 && ctx.key) {
				/* A second message of a multi-message answer chains on. */
				int m = tsig_sign(buf, q.tsig_off, sizeof(buf), &ctx, NOW);
				if (m > (int)sizeof(buf))
					abort();
			}
		}
	}
	/* The same bytes as an answer to a request we signed with key 0. */
	struct dns_header h;
	struct wire_reader r;
	wire_reader_init(&r, data, size);
	wire_read_header(&r, &h);
	if (!r.err && h.arcount) {
		/* Find the last RR of the message, where a TSIG must be. */
		for (unsigned i = 0; i < h.qdcount && !r.err; i++) {
			struct dns_question qq;
			wire_read_question(&r, &qq);
		}
		unsigned total = (unsigned)h.ancount + h.nscount + h.arcount;
		size_t last = 0;
		for (unsigned i = 0; i < total && !r.err; i++) {
			last = r.pos;
			struct dns_rr rr;
			wire_read_rr(&r, &rr);
		}
		if (!r.err && last) {
			struct tsig_ctx ctx;
			tsig_ctx_init(&ctx, &keys[0]);
			memset(ctx.mac, 0x5a, 32);
			ctx.maclen = 32;
			tsig_verify_response(data, size, last, NOW, &ctx);
		}
	}
	return 0;
}

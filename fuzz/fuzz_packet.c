/* fuzz_packet.c -- wire.c and rdata.c on arbitrary packets: request
 * parsing, every record of every section, rdata printing, and a
 * read -> write (compressed) -> read round trip of every name. */
#include <stdlib.h>
#include <string.h>

#include "dns/rdata.h"
#include "dns/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

/* Holds the \# form of the largest rdata (2 hex digits a byte). */
static char text[2 * 65535 + 64];

/* Invariants of a name the reader accepted: valid, printable, and the
 * text parses back to the same bytes. */
static void check_name(const uint8_t *name, size_t len)
{
	char t[DNS_NAME_MAX * 4 + 2];
	uint8_t back[DNS_NAME_MAX];
	size_t blen = 0;

	CHECK(len >= 1 && len <= DNS_NAME_MAX && wire_name_valid(name, len));
	int n = wire_name_to_text(name, len, t, sizeof(t));
	CHECK(n > 0 && (size_t)n == strlen(t));
	CHECK(wire_name_from_text(t, back, &blen) == 0);
	CHECK(blen == len && memcmp(back, name, len) == 0);
	CHECK(wire_name_skip_labels(name, len, wire_name_labels(name, len)) == len - 1);
}

/* Writes name compressed into a fresh writer (exact bytes back) and into
 * the per-packet writer w, where it may point at earlier names (equal
 * ignoring case back). */
static void round_trip(struct wire_writer *w, const uint8_t *name, size_t len)
{
	uint8_t buf[2 * DNS_NAME_MAX], out[DNS_NAME_MAX];
	struct wire_writer fresh;
	struct wire_reader r;

	wire_writer_init(&fresh, buf, sizeof(buf));
	wire_write_name(&fresh, name, len, true);
	wire_write_name(&fresh, name, len, true);
	/* The second copy is one pointer, except for the root (never a target). */
	CHECK(!fresh.err && fresh.pos == len + (len == 1 ? 1 : 2));
	wire_reader_init(&r, buf, fresh.pos);
	CHECK(wire_read_name(&r, out) == len && memcmp(out, name, len) == 0);
	CHECK(wire_read_name(&r, out) == len && memcmp(out, name, len) == 0);
	CHECK(!r.err && r.pos == fresh.pos);

	size_t at = w->pos;
	wire_write_name(w, name, len, true);
	if (w->err)
		return;
	wire_reader_init(&r, w->buf, w->pos);
	r.pos = at;
	size_t n = wire_read_name(&r, out);
	CHECK(n == len && wire_name_equal(out, n, name, len) && r.pos == w->pos);
}

/* Printed rdata parses back: the generic form to the same bytes, a typed
 * form to rdata that prints the same (names come back uncompressed). */
static void check_rdata_text(uint16_t type, const uint8_t *rd, uint16_t rdlen, const char *t)
{
	static uint8_t back[65536];
	static char again[sizeof(text)];
	size_t blen = 0;
	const char *why = NULL;

	int rc = rdata_from_text(type, t, NULL, 0, back, sizeof(back), &blen, &why);
	if (strncmp(t, "\\# ", 3) == 0) {
		if (rc == 0)
			CHECK(blen == rdlen && memcmp(back, rd, rdlen) == 0);
		return;
	}
	CHECK(rc == 0 && blen <= 65535);
	int n = rdata_to_text(type, back, blen, 0, (uint16_t)blen, again, sizeof(again));
	CHECK(n >= 0 && strcmp(again, t) == 0);
}

static void check_query(const uint8_t *data, size_t size)
{
	struct dns_query q;
	enum wire_parse_result res = wire_parse_query(data, size, &q);
	if (res == WIRE_PARSE_DROP) {
		CHECK(size < DNS_HEADER_LEN || (q.hdr.flags & DNS_FLAG_QR));
		return;
	}
	CHECK(size >= DNS_HEADER_LEN);
	if (res != WIRE_PARSE_OK)
		return;
	CHECK(q.hdr.qdcount <= 1 && q.question_end <= size);
	if (q.hdr.qdcount == 1)
		check_name(q.q.name, q.q.namelen);
	CHECK(q.opt_off < size && q.tsig_off < size);
	CHECK(q.edns.present == (q.opt_off != 0));
	CHECK(q.edns.cookie_off + q.edns.cookie_len <= size);
	CHECK(q.edns.ecs_off + q.edns.ecs_len <= size);
	if (q.edns.cookie_off)
		CHECK(q.edns.cookie_len == 8 || (q.edns.cookie_len >= 16 && q.edns.cookie_len <= 40));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t wbuf[4096];
	struct wire_writer w;
	struct wire_reader r;
	struct dns_header h;

	check_query(data, size);

	wire_writer_init(&w, wbuf, sizeof(wbuf));
	wire_reader_init(&r, data, size);
	wire_read_header(&r, &h);
	for (unsigned i = 0; i < h.qdcount && !r.err; i++) {
		struct dns_question q;
		wire_read_question(&r, &q);
		if (r.err)
			break;
		check_name(q.name, q.namelen);
		round_trip(&w, q.name, q.namelen);
	}
	unsigned nrr = (unsigned)h.ancount + h.nscount + h.arcount;
	for (unsigned i = 0; i < nrr && !r.err; i++) {
		struct dns_rr rr;
		wire_read_rr(&r, &rr);
		if (r.err)
			break;
		check_name(rr.name, rr.namelen);
		round_trip(&w, rr.name, rr.namelen);
		CHECK(rr.rdoff + rr.rdlen <= size);
		int n = rdata_to_text(rr.type, data, size, rr.rdoff, rr.rdlen, text, sizeof(text));
		CHECK(n >= 0 && (size_t)n == strlen(text));
		check_rdata_text(rr.type, data + rr.rdoff, rr.rdlen, text);
		/* A small buffer exercises the overflow paths: -1 or a prefix-free fit. */
		char small[24];
		int m = rdata_to_text(rr.type, data, size, rr.rdoff, rr.rdlen, small, sizeof(small));
		CHECK(m == -1 || (m == n && strcmp(small, text) == 0));
		/* Names inside rdata, compressed against the message. */
		struct wire_reader rd;
		wire_reader_init(&rd, data, rr.rdoff + rr.rdlen);
		rd.pos = rr.rdoff;
		if (rr.type == DNS_TYPE_MX || rr.type == DNS_TYPE_SRV)
			wire_skip(&rd, rr.type == DNS_TYPE_MX ? 2 : 6);
		uint8_t name[DNS_NAME_MAX];
		size_t len = wire_read_name(&rd, name);
		if (len) {
			check_name(name, len);
			round_trip(&w, name, len);
		}
		(void)rdata_type_name(rr.type);
		(void)rdata_class_name(rr.rclass);
	}
	(void)rdata_rcode_name(DNS_RCODE(h.flags));
	(void)rdata_opcode_name(DNS_OPCODE(h.flags));
	return 0;
}

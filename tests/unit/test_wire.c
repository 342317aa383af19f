/* test_wire.c -- unit tests of the wire reader/writer, names, compression
 * and request parsing (wire.c). */
#include "tap.h"
#include "dns/wire.h"

#include <stdlib.h>

/* ---- helpers ----------------------------------------------------------- */

static bool bytes_is(const uint8_t *got, size_t glen, const void *want, size_t wlen)
{
	if (glen == wlen && memcmp(got, want, wlen) == 0)
		return true;
	printf("#   got (%zu):", glen);
	for (size_t i = 0; i < glen; i++)
		printf(" %02x", got[i]);
	printf("\n#   want (%zu):", wlen);
	for (size_t i = 0; i < wlen; i++)
		printf(" %02x", ((const uint8_t *)want)[i]);
	printf("\n");
	return false;
}

/* want is a string literal; its NUL terminator is not part of the bytes. */
#define BYTES_IS(got, glen, want, ...) ok(bytes_is(got, glen, want, sizeof(want) - 1), __VA_ARGS__)

static size_t name_of(const char *text, uint8_t out[DNS_NAME_MAX])
{
	size_t len = 0;
	if (wire_name_from_text(text, out, &len) != 0) {
		printf("# bad test name %s\n", text);
		exit(2);
	}
	return len;
}

/* Reads one name from msg at off: returns the expanded length, the error
 * through *err and the cursor after the name through *end. */
static size_t read_name_at(const void *msg, size_t len, size_t off, uint8_t *out, int *err,
                           size_t *end)
{
	struct wire_reader r;
	wire_reader_init(&r, msg, len);
	r.pos = off;
	size_t n = wire_read_name(&r, out);
	*err = r.err;
	*end = r.pos;
	return n;
}

/* ---- reader ------------------------------------------------------------ */

static void test_reader(void)
{
	static const uint8_t buf[] = { 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde };
	struct wire_reader r;

	wire_reader_init(&r, buf, 6);
	is_int(wire_read_u8(&r), 0x12, "u8");
	is_int(wire_read_u16(&r), 0x3456, "u16 big endian");
	is_int(wire_read_u32(&r), 0, "u32 past the end reads 0");
	is_int(r.err, WIRE_ETRUNC, "u32 past the end sets ETRUNC");
	is_int(r.pos, 3, "failed read leaves pos");
	is_int(wire_read_u8(&r), 0, "sticky: later u8 reads 0");
	is_int(r.pos, 3, "sticky: pos unchanged");
	is_int(wire_remaining(&r), 0, "no remaining once failed");

	wire_reader_init(&r, buf, sizeof(buf));
	wire_skip(&r, 3);
	is_int(wire_read_u32(&r), 0x789abcde, "u32 after skip");
	is_int(wire_remaining(&r), 0, "all consumed");
	is_int(r.err, WIRE_OK, "no error at exact end");

	wire_reader_init(&r, buf, sizeof(buf));
	const uint8_t *p = wire_read_ptr(&r, 7);
	ok(p == buf && r.pos == 7, "read_ptr of everything");
	wire_reader_init(&r, buf, sizeof(buf));
	ok(wire_read_ptr(&r, 8) == NULL && r.err == WIRE_ETRUNC, "read_ptr past end is NULL");

	uint8_t dst[4] = { 1, 1, 1, 1 };
	wire_reader_init(&r, buf, 2);
	wire_read_bytes(&r, dst, 4);
	ok(r.err == WIRE_ETRUNC && dst[0] == 0 && dst[3] == 0, "read_bytes past end zeroes dst");

	wire_reader_init(&r, buf, sizeof(buf));
	wire_skip(&r, 8);
	ok(r.err == WIRE_ETRUNC && r.pos == 0, "skip past end");

	static const uint8_t hdr[] = "\xab\xcd\x81\x80\x00\x01\x00\x02\x00\x03\x00\x04";
	struct dns_header h;
	wire_reader_init(&r, hdr, 12);
	wire_read_header(&r, &h);
	ok(h.id == 0xabcd && h.flags == 0x8180 && h.qdcount == 1 && h.ancount == 2 &&
	   h.nscount == 3 && h.arcount == 4 && !r.err, "read_header");
	wire_reader_init(&r, hdr, 11);
	wire_read_header(&r, &h);
	is_int(r.err, WIRE_ETRUNC, "short header");
}

static void test_read_name(void)
{
	uint8_t out[DNS_NAME_MAX];
	int err;
	size_t end, n;

	static const char plain[] = "\3www\7Example\3com\0";
	n = read_name_at(plain, sizeof(plain) - 1, 0, out, &err, &end);
	is_int(n, 17, "plain name length");
	is_int(end, 17, "cursor after plain name");
	BYTES_IS(out, n, "\3www\7Example\3com\0", "plain name bytes, case kept");
	n = read_name_at(plain, sizeof(plain) - 1, 0, NULL, &err, &end);
	ok(n == 17 && end == 17 && err == 0, "out NULL validates and skips");

	static const char root[] = "\0";
	n = read_name_at(root, 1, 0, out, &err, &end);
	ok(n == 1 && out[0] == 0 && end == 1, "root name");

	/* header (12) | 12: example.com. | 25: www + ptr 12 | 31: ptr 25 ... */
	static const char msg[] =
		"\0\0\0\0\0\0\0\0\0\0\0\0"
		"\7example\3com\0"       /* 12 */
		"\3www\xc0\x0c"          /* 25 */
		"\4mail\xc0\x0c"         /* 31 */
		"\1x\3www\xc0\x0c"       /* 38: x.www.example.com, one jump */
		"\1a\xc0\x19";           /* 46: a + ptr 25 -> ptr 12: two jumps */
	n = read_name_at(msg, sizeof(msg) - 1, 25, out, &err, &end);
	is_int(err, 0, "compressed name reads");
	BYTES_IS(out, n, "\3www\7example\3com\0", "compressed name expands");
	is_int(end, 31, "cursor just past the pointer");
	n = read_name_at(msg, sizeof(msg) - 1, 46, out, &err, &end);
	is_int(err, 0, "chained pointers (decreasing targets) read");
	BYTES_IS(out, n, "\1a\3www\7example\3com\0", "chained pointers expand");
	is_int(end, 50, "cursor past the first pointer only");

	/* Rejections. */
	static const char fwd[] = "\0\0\0\0\0\0\0\0\0\0\0\0\xc0\x0e\1a\0";
	n = read_name_at(fwd, sizeof(fwd) - 1, 12, out, &err, &end);
	ok(n == 0 && err == WIRE_EPTR, "forward pointer rejected");
	is_int(end, 12, "failed name leaves the cursor");

	static const char self[] = "\0\0\0\0\0\0\0\0\0\0\0\0\xc0\x0c";
	n = read_name_at(self, sizeof(self) - 1, 12, out, &err, &end);
	ok(n == 0 && err == WIRE_EPTR, "pointer to itself rejected");

	static const char loop[] = "\0\0\0\0\0\0\0\0\0\0\0\0\1a\xc0\x0c";
	n = read_name_at(loop, sizeof(loop) - 1, 12, out, &err, &end);
	ok(n == 0 && err == WIRE_EPTR, "two-step loop rejected");

	/* 12: a b ptr->14 (backward, but not before the earlier target 12
	 * when entered from 18). */
	static const char notbefore[] = "\0\0\0\0\0\0\0\0\0\0\0\0\1a\1b\xc0\x0e\xc0\x0c";
	n = read_name_at(notbefore, sizeof(notbefore) - 1, 18, out, &err, &end);
	ok(n == 0 && err == WIRE_EPTR, "pointer not before an earlier target rejected");
	n = read_name_at(notbefore, sizeof(notbefore) - 1, 12, out, &err, &end);
	ok(n == 0 && err == WIRE_EPTR, "backward loop from its start rejected");

	static const char p2p[] = "\0\0\0\0\0\0\0\0\0\0\0\0\1a\0\xc0\x0c\xc0\x0f";
	n = read_name_at(p2p, sizeof(p2p) - 1, 15, out, &err, &end);
	ok(n == 1 + 2 && err == 0, "single pointer to a name is fine");
	n = read_name_at(p2p, sizeof(p2p) - 1, 17, out, &err, &end);
	ok(n == 0 && err == WIRE_EPTR, "pointer to a pointer rejected");

	static const char t01[] = "\x41" "abc";
	n = read_name_at(t01, sizeof(t01) - 1, 0, out, &err, &end);
	ok(n == 0 && err == WIRE_EBADNAME, "label type 01 (len 65) rejected");
	static const char t64[] = "\x40";
	n = read_name_at(t64, sizeof(t64) - 1, 0, out, &err, &end);
	ok(n == 0 && err == WIRE_EBADNAME, "label length 64 rejected");
	static const char t10[] = "\x80\x01\0";
	n = read_name_at(t10, sizeof(t10) - 1, 0, out, &err, &end);
	ok(n == 0 && err == WIRE_EBADNAME, "label type 10 rejected");

	static const char trunc1[] = "\3ww";
	n = read_name_at(trunc1, sizeof(trunc1) - 1, 0, out, &err, &end);
	ok(n == 0 && err == WIRE_ETRUNC, "label past the end");
	static const char trunc2[] = "\3www";
	n = read_name_at(trunc2, sizeof(trunc2) - 1, 0, out, &err, &end);
	ok(n == 0 && err == WIRE_ETRUNC, "missing root label");
	static const char trunc3[] = "\1a\xc0";
	n = read_name_at(trunc3, sizeof(trunc3) - 1, 0, out, &err, &end);
	ok(n == 0 && err == WIRE_ETRUNC, "half a pointer");
	n = read_name_at(trunc3, 0, 0, out, &err, &end);
	ok(n == 0 && err == WIRE_ETRUNC, "empty buffer");

	/* Length limits: 255 bytes is the maximum, including the root. */
	uint8_t big[600];
	size_t bl = 0;
	for (int i = 0; i < 3; i++) {
		big[bl++] = 63;
		memset(big + bl, 'a' + i, 63);
		bl += 63;
	}
	big[bl++] = 61;
	memset(big + bl, 'z', 61);
	bl += 61;
	big[bl++] = 0;
	n = read_name_at(big, bl, 0, out, &err, &end);
	ok(n == 255 && err == 0 && bl == 255, "255-byte name accepted");
	ok(n == 255 && memcmp(out, big, 255) == 0, "255-byte name expanded intact");
	big[192] = 62;   /* the last label one longer: 256 */
	memset(big + 193, 'z', 62);
	big[255] = 0;
	n = read_name_at(big, 256, 0, out, &err, &end);
	ok(n == 0 && err == WIRE_EBADNAME, "256-byte name rejected");

	/* Over 255 only after expansion: 200 bytes of labels + ptr to a
	 * 60-byte name placed before it. */
	uint8_t cm[400];
	size_t cl = 0;
	cm[cl++] = 58;
	memset(cm + cl, 'q', 58);
	cl += 58;
	cm[cl++] = 0;                 /* 60-byte name at 0 */
	size_t start = cl;
	for (int i = 0; i < 4; i++) {
		cm[cl++] = 49;
		memset(cm + cl, 'r', 49);
		cl += 49;
	}
	cm[cl++] = 0xc0;
	cm[cl++] = 0x00;
	n = read_name_at(cm, cl, start, out, &err, &end);
	ok(n == 0 && err == WIRE_EBADNAME, "name over 255 after decompression rejected");
	cl = start;
	for (int i = 0; i < 4; i++) {
		uint8_t l = i < 3 ? 49 : 44;   /* 3 x 50 + 45 + 60 = 255 */
		cm[cl++] = l;
		memset(cm + cl, 'r', l);
		cl += l;
	}
	cm[cl++] = 0xc0;
	cm[cl++] = 0x00;
	n = read_name_at(cm, cl, start, out, &err, &end);
	ok(n == 255 && err == 0, "exactly 255 after decompression accepted");

	/* Sticky: a failed reader reads no name. */
	struct wire_reader r;
	wire_reader_init(&r, (const uint8_t *)plain, sizeof(plain) - 1);
	r.err = WIRE_EINVAL;
	ok(wire_read_name(&r, out) == 0 && r.pos == 0, "read_name on failed reader");
}

static void test_read_rr(void)
{
	static const char msg[] =
		"\3foo\0\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04\x0a\x00\x00\x01"
		"\xc0\x00\x00\x10\x00\x01\x00\x00\x00\x05\x00\x09";
	struct wire_reader r;
	struct dns_rr rr;
	wire_reader_init(&r, (const uint8_t *)msg, sizeof(msg) - 1);
	wire_read_rr(&r, &rr);
	ok(!r.err && rr.type == 1 && rr.rclass == 1 && rr.ttl == 3600 && rr.rdlen == 4 &&
	   rr.rdoff == 15 && r.pos == 19 && rr.namelen == 5, "read_rr header and rdata skip");
	wire_read_rr(&r, &rr);
	ok(r.err == WIRE_ETRUNC, "read_rr with rdlen past the end");
}

/* ---- names ------------------------------------------------------------- */

static void test_name_text(void)
{
	uint8_t w[DNS_NAME_MAX];
	size_t len = 0;

	is_int(wire_name_from_text("www.Example.com", w, &len), 0, "relative text accepted");
	BYTES_IS(w, len, "\3www\7Example\3com\0", "text to wire, made absolute, case kept");
	is_int(wire_name_from_text("www.example.com.", w, &len), 0, "absolute text");
	BYTES_IS(w, len, "\3www\7example\3com\0", "absolute text to wire");
	is_int(wire_name_from_text(".", w, &len), 0, "root text");
	BYTES_IS(w, len, "\0", "root to wire");
	is_int(wire_name_from_text("a\\.b.c", w, &len), 0, "escaped dot");
	BYTES_IS(w, len, "\3a.b\1c\0", "escaped dot stays in the label");
	is_int(wire_name_from_text("\\065b\\\\\\000.x", w, &len), 0, "\\DDD escapes");
	BYTES_IS(w, len, "\4Ab\\\0\1x\0", "\\DDD decoded, \\\\ literal, \\000 is a NUL byte");
	is_int(wire_name_from_text("", w, &len), -WIRE_EBADNAME, "empty text rejected");
	is_int(wire_name_from_text("a..b", w, &len), -WIRE_EBADNAME, "empty label rejected");
	is_int(wire_name_from_text(".a", w, &len), -WIRE_EBADNAME, "leading dot rejected");
	is_int(wire_name_from_text("a..", w, &len), -WIRE_EBADNAME, "double trailing dot rejected");
	is_int(wire_name_from_text("a\\256", w, &len), -WIRE_EBADNAME, "\\256 rejected");
	is_int(wire_name_from_text("a\\12", w, &len), -WIRE_EBADNAME, "\\DD (two digits) rejected");
	is_int(wire_name_from_text("a\\", w, &len), -WIRE_EBADNAME, "trailing backslash rejected");

	char t[300];
	memset(t, 'a', 63);
	t[63] = '\0';
	ok(wire_name_from_text(t, w, &len) == 0 && len == 65, "63-byte label accepted");
	memset(t, 'a', 64);
	t[64] = '\0';
	is_int(wire_name_from_text(t, w, &len), -WIRE_EBADNAME, "64-byte label rejected");
	memset(t, 'a', 62);
	memcpy(t + 61, "\\097", 5);  /* 61 + one escaped = 62 chars of label */
	ok(wire_name_from_text(t, w, &len) == 0 && len == 64, "escape counts as one byte");
	/* 3 x 63 + 61 + dots: 255 on the wire; one more byte: 256. */
	size_t tl = 0;
	for (int i = 0; i < 3; i++) {
		memset(t + tl, 'b', 63);
		tl += 63;
		t[tl++] = '.';
	}
	memset(t + tl, 'c', 61);
	tl += 61;
	t[tl] = '\0';
	ok(wire_name_from_text(t, w, &len) == 0 && len == 255, "255-byte name from text");
	t[tl++] = '.';
	t[tl] = '\0';
	ok(wire_name_from_text(t, w, &len) == 0 && len == 255, "255-byte name, trailing dot");
	t[tl - 1] = 'c';
	is_int(wire_name_from_text(t, w, &len), -WIRE_EBADNAME, "256-byte name rejected");
	t[tl - 1] = '.';
	t[tl++] = 'd';
	t[tl] = '\0';
	is_int(wire_name_from_text(t, w, &len), -WIRE_EBADNAME, "257-byte name rejected");

	char out[300];
	is_int(wire_name_to_text((const uint8_t *)"\3www\7Example\3com\0", 17, out, sizeof(out)),
	       16, "to text length");
	is_str(out, "www.Example.com.", "to text keeps case, trailing dot");
	is_int(wire_name_to_text((const uint8_t *)"\0", 1, out, sizeof(out)), 1, "root length");
	is_str(out, ".", "root to text");
	static const char odd[] = "\x0c" "a.b\\\" ;()@$\x7f" "\1\xff\0";
	int n = wire_name_to_text((const uint8_t *)odd, sizeof(odd) - 1, out, sizeof(out));
	is_str(out, "a\\.b\\\\\\\"\\032\\;\\(\\)\\@\\$\\127.\\255.", "specials and \\DDD escaped");
	is_int(n, (int)strlen(out), "returned length matches");
	uint8_t back[DNS_NAME_MAX];
	ok(wire_name_from_text(out, back, &len) == 0 &&
	   bytes_is(back, len, odd, sizeof(odd) - 1), "escaped text round-trips");
	is_int(wire_name_to_text((const uint8_t *)"\3www\0", 5, out, 5), 4, "exact fit (4 + NUL)");
	is_int(wire_name_to_text((const uint8_t *)"\3www\0", 5, out, 4), -1, "outcap one short");
	is_int(wire_name_to_text((const uint8_t *)"\1.\0", 3, out, 3), -1, "escape does not fit");
	is_int(wire_name_to_text((const uint8_t *)"\0", 1, out, 1), -1, "root needs two bytes");
	is_int(wire_name_to_text((const uint8_t *)"\3ww", 3, out, sizeof(out)), -1,
	       "malformed name to text fails");
	is_int(wire_name_to_text((const uint8_t *)"\1a\0\0", 4, out, sizeof(out)), -1,
	       "bytes after the root fail");
}

static void test_name_helpers(void)
{
	ok(wire_name_valid((const uint8_t *)"\1a\0", 3), "valid name");
	ok(wire_name_valid((const uint8_t *)"\0", 1), "root valid");
	ok(!wire_name_valid((const uint8_t *)"\1a\0", 2), "short len invalid");
	ok(!wire_name_valid((const uint8_t *)"\1a\0\0", 4), "trailing byte invalid");
	ok(!wire_name_valid((const uint8_t *)"\x40", 1), "label > 63 invalid");
	ok(!wire_name_valid((const uint8_t *)"\xc0\x00", 2), "pointer invalid");
	ok(!wire_name_valid((const uint8_t *)"", 0), "empty invalid");
	ok(!wire_name_valid((const uint8_t *)"\5ab\0", 4), "label past end invalid");
	uint8_t big[256];
	memset(big, 0, sizeof(big));
	for (size_t i = 0; i + 2 < sizeof(big); i += 2)
		big[i] = 1;
	ok(!wire_name_valid(big, sizeof(big)), "256 bytes invalid");

	uint8_t a[DNS_NAME_MAX], b[DNS_NAME_MAX], c[DNS_NAME_MAX];
	size_t al = name_of("WWW.Example.COM", a), bl = name_of("www.example.com", b);
	ok(wire_name_equal(a, al, b, bl), "equal ignores case");
	size_t cl = name_of("www.example.co", c);
	ok(!wire_name_equal(a, al, c, cl), "different names unequal");
	uint8_t x[] = "\1\xc1\0", y[] = "\1\xe1\0";
	ok(!wire_name_equal(x, 3, y, 3), "only ASCII folds");
	/* Whole words compared first: a difference past the first 8 bytes,
	 * and case alone differing there, each in a word of its own. */
	size_t l1 = name_of("service-one.example.com", c), l2 = name_of("service-one.examplx.com", b);
	ok(!wire_name_equal(c, l1, b, l2), "a difference in the second word");
	l2 = name_of("service-one.EXAMPLE.com", b);
	ok(wire_name_equal(c, l1, b, l2), "case in the second word");
	l2 = name_of("service-one.example.coM", b);
	ok(wire_name_equal(c, l1, b, l2), "case in the tail");
	l2 = name_of("service-one.example.cox", b);
	ok(!wire_name_equal(c, l1, b, l2), "a difference in the tail");
	l1 = name_of("mesh", c);
	l2 = name_of("MeSH", b);
	ok(wire_name_equal(c, l1, b, l2), "short names (4-7 bytes): case ignored");
	l2 = name_of("mesx", b);
	ok(!wire_name_equal(c, l1, b, l2), "short names: a difference found");
	l1 = name_of("a", c);
	l2 = name_of("A", b);
	ok(wire_name_equal(c, l1, b, l2), "3 bytes: case ignored");
	ok(wire_name_is_subdomain(a, al, (const uint8_t *)"\3COM\0", 5), "subdomain: case ignored");
	wire_name_lower(a, al);
	BYTES_IS(a, al, "\3www\7example\3com\0", "lower");

	size_t pl = name_of("example.com", c);
	ok(wire_name_is_subdomain(a, al, c, pl), "www.example.com under example.com");
	ok(wire_name_is_subdomain(c, pl, c, pl), "a name is under itself");
	size_t rl = name_of(".", b);
	ok(wire_name_is_subdomain(a, al, b, rl), "everything is under the root");
	ok(!wire_name_is_subdomain(c, pl, a, al), "parent not under child");
	size_t xl = name_of("xexample.com", b);
	ok(!wire_name_is_subdomain(b, xl, c, pl), "suffix not on a label boundary");
	xl = name_of("a.EXAMPLE.com", b);
	ok(wire_name_is_subdomain(b, xl, c, pl), "subdomain ignores case");
	xl = name_of("a.b.example.org", b);
	ok(!wire_name_is_subdomain(b, xl, c, pl), "other tree");

	is_int(wire_name_labels(a, al), 3, "3 labels");
	is_int(wire_name_labels((const uint8_t *)"\0", 1), 0, "root has 0 labels");
	is_int(wire_name_skip_labels(a, al, 0), 0, "skip 0");
	is_int(wire_name_skip_labels(a, al, 1), 4, "skip 1");
	is_int(wire_name_skip_labels(a, al, 2), 12, "skip 2");
	is_int(wire_name_skip_labels(a, al, 3), 16, "skip all: root");
	is_int(wire_name_skip_labels(a, al, 9), 16, "skip too many: root");
}

/* ---- writer ------------------------------------------------------------ */

static void test_writer(void)
{
	uint8_t buf[16];
	struct wire_writer w;

	wire_writer_init(&w, buf, 7);
	wire_write_u8(&w, 0x01);
	wire_write_u16(&w, 0x0203);
	wire_write_u32(&w, 0x04050607);
	BYTES_IS(buf, w.pos, "\1\2\3\4\5\6\7", "u8 u16 u32 big endian");
	ok(!w.err, "exact fit ok");
	wire_write_u8(&w, 8);
	ok(w.err == WIRE_ETRUNC && w.pos == 7, "write past cap: ETRUNC, nothing written");

	wire_writer_init(&w, buf, 5);
	wire_write_u16(&w, 1);
	struct wire_mark m = wire_mark(&w);
	wire_write_u32(&w, 0xdeadbeef);
	ok(w.err == WIRE_ETRUNC && w.pos == 2, "u32 does not fit");
	wire_write_u8(&w, 9);
	ok(w.pos == 2, "sticky: a later small write is refused too");
	wire_rollback(&w, m);
	ok(w.err == 0 && w.pos == 2, "rollback clears err");
	wire_write_u8(&w, 9);
	ok(w.err == 0 && w.pos == 3, "writes resume after rollback");

	wire_writer_init(&w, buf, sizeof(buf));
	wire_write_u16(&w, 0);
	wire_write_u16(&w, 0);
	wire_patch_u16(&w, 2, 0xabcd);
	BYTES_IS(buf, w.pos, "\0\0\xab\xcd", "patch_u16");
	wire_patch_u16(&w, 3, 1);
	is_int(w.err, WIRE_EINVAL, "patch beyond pos is EINVAL");

	struct dns_header h = { 0x1234, 0x8180, 1, 2, 3, 4 };
	wire_writer_init(&w, buf, sizeof(buf));
	wire_write_header(&w, &h);
	BYTES_IS(buf, w.pos, "\x12\x34\x81\x80\0\1\0\2\0\3\0\4", "write_header");

	wire_writer_init(&w, buf, sizeof(buf));
	wire_write_name(&w, (const uint8_t *)"\1a\0\0", 4, false);
	ok(w.err == WIRE_EINVAL && w.pos == 0, "invalid name refused");

	wire_writer_init(&w, buf, sizeof(buf));
	wire_write_u8(&w, 0);
	wire_write_ptr(&w, 0);
	wire_write_rr_head(&w, DNS_TYPE_SRV, DNS_CLASS_IN, 0x01020304, 0x0506);
	BYTES_IS(buf, w.pos, "\0\xc0\0\0\x21\0\1\1\2\3\4\5\6", "ptr, rr_head");
	uint8_t *p = wire_write_reserve(&w, 3);
	ok(p == buf + 13 && w.pos == 16 && !w.err, "reserve: the next bytes");
	ok(!wire_write_reserve(&w, 1) && w.err == WIRE_ETRUNC && w.pos == 16,
	   "reserve past cap: NULL, ETRUNC");
	wire_writer_init(&w, buf, sizeof(buf));
	wire_write_u16(&w, 0);
	wire_write_ptr(&w, 2);
	ok(w.err == WIRE_EINVAL && w.pos == 2, "a pointer forward: EINVAL");
	wire_writer_init(&w, buf, 3);
	wire_write_u16(&w, 0);
	wire_write_rr_head(&w, 1, 1, 1, 1);
	ok(w.err == WIRE_ETRUNC && w.pos == 2, "rr_head that does not fit: nothing written");
}

static void test_compression(void)
{
	uint8_t buf[512], n[DNS_NAME_MAX];
	struct wire_writer w;
	size_t len;

	wire_writer_init(&w, buf, sizeof(buf));
	wire_write_bytes(&w, "\0\0\0\0\0\0\0\0\0\0\0\0", 12);
	len = name_of("www.example.com", n);
	wire_write_name(&w, n, len, true);                     /* 12..28 */
	len = name_of("mail.example.com", n);
	wire_write_name(&w, n, len, true);                     /* 29..35 */
	len = name_of("EXAMPLE.com", n);
	wire_write_name(&w, n, len, true);                     /* 36..37 */
	len = name_of("com", n);
	wire_write_name(&w, n, len, true);                     /* 38..39 */
	len = name_of("www.example.com", n);
	wire_write_name(&w, n, len, true);                     /* 40..41 */
	len = name_of("other.org", n);
	wire_write_name(&w, n, len, true);                     /* 42..52 */
	len = name_of(".", n);
	wire_write_name(&w, n, len, true);                     /* 53 */
	len = name_of("www.example.com", n);
	wire_write_name(&w, n, len, false);                    /* 54..70 */
	len = name_of("x.other.org", n);
	wire_write_name(&w, n, len, true);                     /* 71..74 */
	ok(!w.err, "no error");
	BYTES_IS(buf + 12, w.pos - 12,
	         "\3www\7example\3com\0"
	         "\4mail\xc0\x10"
	         "\xc0\x10"
	         "\xc0\x18"
	         "\xc0\x0c"
	         "\5other\3org\0"
	         "\0"
	         "\3www\7example\3com\0"
	         "\1x\xc0\x2a",
	         "compressed names: exact bytes");
	is_int(w.ncomp, 3 + 1 + 2 + 1, "table holds each new label once");

	/* Everything written decodes back (in original case). */
	static const char *const want[] = { "www.example.com.", "mail.example.com.",
		                                "example.com.",     "com.",
		                                "www.example.com.", "other.org.",
		                                ".",                "www.example.com.",
		                                "x.other.org." };
	struct wire_reader r;
	wire_reader_init(&r, buf, w.pos);
	r.pos = 12;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		char t[300];
		uint8_t out[DNS_NAME_MAX];
		size_t ol = wire_read_name(&r, out);
		wire_name_to_text(out, ol, t, sizeof(t));
		is_str(t, want[i], "written name %zu reads back", i);
	}
	is_int(r.pos, w.pos, "reader ends where the writer did");

	/* Uncompressed writes add no entries; rollback drops entries. */
	wire_writer_init(&w, buf, sizeof(buf));
	len = name_of("foo.bar", n);
	wire_write_name(&w, n, len, false);
	struct wire_mark m = wire_mark(&w);
	wire_write_name(&w, n, len, true);
	wire_write_name(&w, n, len, true);
	BYTES_IS(buf, w.pos, "\3foo\3bar\0\3foo\3bar\0\xc0\x09", "compress=false not in the table");
	wire_rollback(&w, m);
	is_int(w.ncomp, 0, "rollback restores ncomp");
	len = name_of("x.foo.bar", n);
	wire_write_name(&w, n, len, true);
	BYTES_IS(buf, w.pos, "\3foo\3bar\0\1x\3foo\3bar\0", "rolled-back names not used");

	/* The question: written whole; its suffixes join the table only
	 * when a name is compressed against it, first, and a rollback to a
	 * mark taken before that keeps them. */
	wire_writer_init(&w, buf, sizeof(buf));
	memset(buf, 0, DNS_HEADER_LEN);
	w.pos = DNS_HEADER_LEN;
	len = name_of("Svc.Mesh", n);
	wire_write_question(&w, n, len, DNS_TYPE_SRV, DNS_CLASS_IN);
	BYTES_IS(buf + DNS_HEADER_LEN, w.pos - DNS_HEADER_LEN, "\3Svc\4Mesh\0\0\x21\0\1",
	         "question: name, type, class");
	is_int(w.ncomp, 0, "question: no table entries yet");
	m = wire_mark(&w);
	wire_write_name(&w, n, len, true);
	BYTES_IS(buf + 26, w.pos - 26, "\xc0\x0c", "question's name again: a pointer to it");
	is_int(w.ncomp, 0, "a whole-name pointer adds no entries");
	len = name_of("b0.svc.mesh", n);
	wire_write_name(&w, n, len, true);
	BYTES_IS(buf + 28, w.pos - 28, "\2b0\xc0\x0c", "a name below it points into the question");
	is_int(w.ncomp, 3, "the question's two suffixes, then the new label");
	ok(w.comp[0] == DNS_HEADER_LEN && w.comp[1] == DNS_HEADER_LEN + 4 && w.comp[2] == 28,
	   "the question's entries come first");
	wire_rollback(&w, m);
	is_int(w.ncomp, 2, "rollback keeps the question's entries");
	len = name_of("x.mesh", n);
	wire_write_name(&w, n, len, true);
	BYTES_IS(buf + 26, w.pos - 26, "\1x\xc0\x10", "and later names still use them");
	wire_writer_init(&w, buf, sizeof(buf));
	w.pos = DNS_HEADER_LEN + 1;
	wire_write_question(&w, n, len, DNS_TYPE_A, DNS_CLASS_IN);
	is_int(w.err, WIRE_EINVAL, "question anywhere but after the header: refused");
	wire_writer_init(&w, buf, DNS_HEADER_LEN + len + 3);
	w.pos = DNS_HEADER_LEN;
	wire_write_question(&w, n, len, DNS_TYPE_A, DNS_CLASS_IN);
	ok(w.err == WIRE_ETRUNC && w.pos == DNS_HEADER_LEN, "question past cap: nothing written");

	/* The header's flags and counts, patched at once. */
	wire_writer_init(&w, buf, sizeof(buf));
	struct dns_header hh = { .id = 0x1234, .qdcount = 1 };
	wire_write_header(&w, &hh);
	wire_patch_header(&w, 0x8400, 3, 1, 0x0102);
	BYTES_IS(buf, w.pos, "\x12\x34\x84\0\0\1\0\3\0\1\1\2", "header patched");

	/* A name that does not fit writes nothing and adds nothing. */
	wire_writer_init(&w, buf, 10);
	len = name_of("abcdef.ghi", n);
	wire_write_name(&w, n, len, true);
	ok(w.err == WIRE_ETRUNC && w.pos == 0 && w.ncomp == 0, "name past cap: nothing written");
	wire_writer_init(&w, buf, 14);
	len = name_of("ghi", n);
	wire_write_name(&w, n, len, true);
	len = name_of("abcdef.ghi", n);
	wire_write_name(&w, n, len, true);
	ok(!w.err && w.pos == 5 + 9, "name fits thanks to its pointer");
	BYTES_IS(buf, w.pos, "\3ghi\0\6abcdef\xc0\x00", "pointer at offset 0");

	/* Repeated labels: only the suffix of the right length matches. */
	wire_writer_init(&w, buf, sizeof(buf));
	len = name_of("a.a.a.a", n);
	wire_write_name(&w, n, len, true);
	len = name_of("b.a.A", n);
	wire_write_name(&w, n, len, true);
	len = name_of("x.a.a.a.a.a", n);
	wire_write_name(&w, n, len, true);
	BYTES_IS(buf, w.pos, "\1a\1a\1a\1a\0" "\1b\xc0\x04" "\1x\1a\xc0\x00",
	         "repeated labels compress to the longest equal suffix");

	/* Offsets >= 0x4000 cannot be pointer targets. */
	static uint8_t large[0x5000];
	wire_writer_init(&w, large, sizeof(large));
	len = name_of("low.test", n);
	wire_write_name(&w, n, len, true);
	w.pos = 0x3ffc;
	len = name_of("high.example", n);
	wire_write_name(&w, n, len, true);   /* high at 0x3ffc, example at 0x4001 */
	is_int(w.ncomp, 3, "labels at >= 0x4000 not recorded");
	size_t at = w.pos;
	wire_write_name(&w, n, len, true);
	BYTES_IS(large + at, w.pos - at, "\xff\xfc", "pointer to 0x3ffc");
	at = w.pos;
	len = name_of("x.example", n);
	wire_write_name(&w, n, len, true);
	BYTES_IS(large + at, w.pos - at, "\1x\7example\0", "no pointer past 0x3fff");
	at = w.pos;
	len = name_of("LOW.test", n);
	wire_write_name(&w, n, len, true);
	BYTES_IS(large + at, w.pos - at, "\xc0\x00", "case-insensitive match at offset 0");

	/* A full table: later names are written whole but still compress
	 * against what is in the table. */
	wire_writer_init(&w, buf, sizeof(buf));
	for (int i = 0; i < WIRE_COMP_MAX; i++) {
		uint8_t one[4] = { 2, (uint8_t)('A' + i / 26), (uint8_t)('a' + i % 26), 0 };
		wire_write_name(&w, one, 4, true);
	}
	is_int(w.ncomp, WIRE_COMP_MAX, "table full");
	len = name_of("zz", n);
	size_t zz_at = w.pos;
	wire_write_name(&w, n, len, true);
	BYTES_IS(buf + zz_at, w.pos - zz_at, "\2zz\0", "not in a full table: literal");
	at = w.pos;
	wire_write_name(&w, n, len, true);
	uint8_t want_ptr[2] = { (uint8_t)(0xc0 | zz_at >> 8), (uint8_t)zz_at };
	ok(bytes_is(buf + at, w.pos - at, (const char *)want_ptr, 2),
	   "the same name again: a pointer to the last name written");
	len = name_of("yy", n);
	at = w.pos;
	wire_write_name(&w, n, len, true);
	BYTES_IS(buf + at, w.pos - at, "\2yy\0", "another name outside the full table: literal");
	at = w.pos;
	len = name_of("q.Aa", n);
	wire_write_name(&w, n, len, true);
	BYTES_IS(buf + at, w.pos - at, "\1q\xc0\x00", "full table still used");
	is_int(w.ncomp, WIRE_COMP_MAX, "table never overflows");
}

/* ---- parse_query ------------------------------------------------------- */

struct msg {
	uint8_t buf[1024];
	struct wire_writer w;
};

static void msg_begin(struct msg *m, uint16_t flags, uint16_t qd, uint16_t an, uint16_t ns,
                      uint16_t ar)
{
	struct dns_header h = { 0xbeef, flags, qd, an, ns, ar };
	wire_writer_init(&m->w, m->buf, sizeof(m->buf));
	wire_write_header(&m->w, &h);
}

static void msg_question(struct msg *m, const char *name, uint16_t type)
{
	uint8_t n[DNS_NAME_MAX];
	size_t len = name_of(name, n);
	wire_write_name(&m->w, n, len, true);
	wire_write_u16(&m->w, type);
	wire_write_u16(&m->w, DNS_CLASS_IN);
}

/* An OPT RR; opts is the raw option bytes. Returns the RR offset. */
static size_t msg_opt(struct msg *m, const char *owner, uint16_t size, uint32_t ttl,
                      const void *opts, size_t optlen)
{
	size_t off = m->w.pos;
	uint8_t n[DNS_NAME_MAX];
	size_t len = name_of(owner, n);
	wire_write_name(&m->w, n, len, false);
	wire_write_u16(&m->w, DNS_TYPE_OPT);
	wire_write_u16(&m->w, size);
	wire_write_u32(&m->w, ttl);
	wire_write_u16(&m->w, (uint16_t)optlen);
	wire_write_bytes(&m->w, opts, optlen);
	return off;
}

static size_t msg_rr(struct msg *m, const char *owner, uint16_t type, const void *rd, size_t rdlen)
{
	size_t off = m->w.pos;
	uint8_t n[DNS_NAME_MAX];
	size_t len = name_of(owner, n);
	wire_write_name(&m->w, n, len, true);
	wire_write_u16(&m->w, type);
	wire_write_u16(&m->w, type == DNS_TYPE_TSIG ? DNS_CLASS_ANY : DNS_CLASS_IN);
	wire_write_u32(&m->w, 0);
	wire_write_u16(&m->w, (uint16_t)rdlen);
	wire_write_bytes(&m->w, rd, rdlen);
	return off;
}

static enum wire_parse_result msg_parse(struct msg *m, struct dns_query *q)
{
	if (m->w.err) {
		printf("# test message did not fit\n");
		exit(2);
	}
	return wire_parse_query(m->buf, m->w.pos, q);
}

#define OPTS(s) s, sizeof(s) - 1

static void test_parse_plain(void)
{
	struct msg m;
	struct dns_query q;

	msg_begin(&m, DNS_FLAG_RD, 1, 0, 0, 0);
	msg_question(&m, "User-Service.mesh", DNS_TYPE_SRV);
	is_int(msg_parse(&m, &q), WIRE_PARSE_OK, "plain query parses");
	ok(q.hdr.id == 0xbeef && q.hdr.flags == DNS_FLAG_RD && q.hdr.qdcount == 1, "header");
	BYTES_IS(q.q.name, q.q.namelen, "\14User-Service\4mesh\0", "qname, case kept");
	ok(q.q.qtype == DNS_TYPE_SRV && q.q.qclass == DNS_CLASS_IN, "qtype, qclass");
	is_int(q.question_end, m.w.pos, "question_end");
	ok(!q.edns.present && q.opt_off == 0 && q.tsig_off == 0, "no OPT, no TSIG");

	msg_begin(&m, 0, 0, 0, 0, 0);
	is_int(msg_parse(&m, &q), WIRE_PARSE_OK, "qdcount 0 is left to the caller");
	is_int(q.question_end, 12, "question_end after an empty question section");

	msg_begin(&m, DNS_FLAG_QR, 1, 0, 0, 0);
	msg_question(&m, "a.mesh", DNS_TYPE_A);
	is_int(msg_parse(&m, &q), WIRE_PARSE_DROP, "QR set: drop");
	is_int(wire_parse_query(m.buf, 11, &q), WIRE_PARSE_DROP, "11 bytes: drop");
	is_int(wire_parse_query(m.buf, 0, &q), WIRE_PARSE_DROP, "0 bytes: drop");

	msg_begin(&m, 0, 2, 0, 0, 0);
	msg_question(&m, "a.mesh", DNS_TYPE_A);
	msg_question(&m, "b.mesh", DNS_TYPE_A);
	is_int(msg_parse(&m, &q), WIRE_PARSE_FORMERR, "qdcount 2: FORMERR");
	ok(q.hdr.id == 0xbeef && q.hdr.qdcount == 2, "header filled on FORMERR");

	msg_begin(&m, 0, 1, 0, 0, 0);
	msg_question(&m, "a.mesh", DNS_TYPE_A);
	wire_write_u8(&m.w, 0);
	is_int(msg_parse(&m, &q), WIRE_PARSE_FORMERR, "trailing byte: FORMERR");
	is_int(wire_parse_query(m.buf, m.w.pos - 2, &q), WIRE_PARSE_FORMERR,
	       "truncated question: FORMERR");
	is_int(wire_parse_query(m.buf, 12, &q), WIRE_PARSE_FORMERR, "question missing: FORMERR");
	ok(q.hdr.id == 0xbeef, "header filled when the question is missing");

	msg_begin(&m, 0, 1, 0, 0, 0);
	wire_write_bytes(&m.w, "\1a\xc0\x0c\0\1\0\1", 8);
	is_int(msg_parse(&m, &q), WIRE_PARSE_FORMERR, "looping qname: FORMERR");
	msg_begin(&m, 0, 1, 0, 0, 0);
	wire_write_bytes(&m.w, "\x40\0\0\1\0\1", 6);
	is_int(msg_parse(&m, &q), WIRE_PARSE_FORMERR, "bad label type in qname: FORMERR");

	/* Question names at the limit: 255 bytes parse, 256 are FORMERR;
	 * cut anywhere inside the name, the type or the class, FORMERR;
	 * pointers that loop inside the question, FORMERR. */
	{
		uint8_t qn[300];
		size_t ql = 0;
		for (int i = 0; i < 3; i++) {      /* 3 x 63-byte labels: 192 bytes */
			qn[ql++] = 63;
			memset(qn + ql, 'a' + i, 63);
			ql += 63;
		}
		for (int extra = 0; extra < 2; extra++) {
			/* a last label of 61 bytes: 255 in all; of 62: 256 */
			uint8_t nm[300];
			memcpy(nm, qn, ql);
			size_t nl = ql;
			nm[nl++] = (uint8_t)(61 + extra);
			memset(nm + nl, 'z', 61u + (unsigned)extra);
			nl += 61u + (unsigned)extra;
			nm[nl++] = 0;
			msg_begin(&m, 0, 1, 0, 0, 0);
			wire_write_bytes(&m.w, nm, nl);
			wire_write_bytes(&m.w, "\0\1\0\1", 4);
			if (extra == 0) {
				is_int(msg_parse(&m, &q), WIRE_PARSE_OK, "255-byte qname parses");
				ok(q.q.namelen == 255 && memcmp(q.q.name, nm, 255) == 0 &&
				   q.q.qtype == DNS_TYPE_A && q.question_end == m.w.pos,
				   "... whole, with its type");
			} else {
				is_int(msg_parse(&m, &q), WIRE_PARSE_FORMERR, "256-byte qname: FORMERR");
			}
		}
		msg_begin(&m, 0, 1, 0, 0, 0);
		msg_question(&m, "abc.mesh", DNS_TYPE_A);
		bool cut_ok = true;
		for (size_t len = 12; len < m.w.pos; len++)
			cut_ok &= wire_parse_query(m.buf, len, &q) == WIRE_PARSE_FORMERR;
		ok(cut_ok, "a question cut at any byte: FORMERR");
		msg_begin(&m, 0, 1, 0, 0, 0);
		wire_write_bytes(&m.w, "\1x\3abc\xc0\x0e\0\x21\0\1", 12);
		is_int(msg_parse(&m, &q), WIRE_PARSE_FORMERR, "qname looping through its own label: FORMERR");
		msg_begin(&m, 0, 1, 0, 0, 0);
		wire_write_bytes(&m.w, "\1x\xc0\x0c\0\1\0\1", 8);
		is_int(msg_parse(&m, &q), WIRE_PARSE_FORMERR, "qname pointing back at itself: FORMERR");
	}

	msg_begin(&m, 0, 1, 1, 1, 0);
	msg_question(&m, "a.mesh", DNS_TYPE_A);
	msg_rr(&m, "a.mesh", DNS_TYPE_A, "\1\2\3\4", 4);
	msg_rr(&m, "mesh", DNS_TYPE_NS, "\2ns\xc0\x0e", 5);
	is_int(msg_parse(&m, &q), WIRE_PARSE_OK, "answer and authority records skipped");
	msg_begin(&m, 0, 1, 1, 0, 0);
	msg_question(&m, "a.mesh", DNS_TYPE_A);
	is_int(msg_parse(&m, &q), WIRE_PARSE_FORMERR, "ancount 1 but no record: FORMERR");
}

static void test_parse_edns(void)
{
	struct msg m;
	struct dns_query q;

	msg_begin(&m, 0, 1, 0, 0, 1);
	msg_question(&m, "a.mesh", DNS_TYPE_A);
	size_t opt = msg_opt(&m, ".", 1232, 0x00008000, "", 0);
	is_int(msg_parse(&m, &q), WIRE_PARSE_OK, "EDNS query parses");
	ok(q.edns.present, "EDNS present");
	is_int(q.opt_off, opt, "opt_off");
	is_int(q.edns.udp_size, 1232, "payload size from CLASS");
	ok(q.edns.do_bit, "DO bit");
	is_int(q.edns.version, 0, "version 0");
	is_int(q.edns.opt_flags, 0x8000, "opt_flags");
	ok(q.edns.cookie_off == 0 && q.edns.ecs_off == 0 && !q.edns.nsid, "no options");

	msg_begin(&m, 0, 1, 0, 0, 1);
	msg_question(&m, "a.mesh", DNS_TYPE_A);
	msg_opt(&m, ".", 100, 0x12010000, "", 0);
	is_int(msg_parse(&m, &q), WIRE_PARSE_OK, "version 1 parses (BADVERS is the caller's)");
	ok(q.edns.version == 1 && q.edns.ext_rcode == 0x12 && !q.edns.do_bit &&
	   q.edns.udp_size == 100, "version, ext_rcode, no DO, small payload as sent");

	/* COOKIE (client only), ECS, NSID, an unknown option, padding. */
	msg_begin(&m, 0, 1, 0, 0, 1);
	msg_question(&m, "a.mesh", DNS_TYPE_A);
	opt = msg_opt(&m, ".", 4096, 0, OPTS(
		"\x00\x0a\x00\x08" "\1\2\3\4\5\6\7\x08"
		"\x00\x08\x00\x07" "\x00\x01\x18\x00" "\xc0\x00\x02"
		"\x00\x03\x00\x00"
		"\xfd\xe9\x00\x02" "\xab\xcd"
		"\x00\x0c\x00\x03" "\0\0\0"));
	is_int(msg_parse(&m, &q), WIRE_PARSE_OK, "options parse");
	size_t rd = opt + 11;
	is_int(q.edns.cookie_off, rd + 4, "cookie offset is that of the option data");
	is_int(q.edns.cookie_len, 8, "cookie length");
	ok(memcmp(m.buf + q.edns.cookie_off, "\1\2\3\4\5\6\7\x08", 8) == 0, "cookie bytes");
	is_int(q.edns.ecs_off, rd + 16, "ECS offset");
	is_int(q.edns.ecs_len, 7, "ECS length");
	ok(q.edns.nsid, "NSID requested");

	/* Server cookie: 8 + 8 .. 8 + 32. */
	msg_begin(&m, 0, 1, 0, 0, 1);
	msg_question(&m, "a.mesh", DNS_TYPE_A);
	msg_opt(&m, ".", 4096, 0, OPTS("\x00\x0a\x00\x10" "0123456789abcdef"));
	ok(msg_parse(&m, &q) == WIRE_PARSE_OK && q.edns.cookie_len == 16, "16-byte cookie");
	msg_begin(&m, 0, 1, 0, 0, 1);
	msg_question(&m, "a.mesh", DNS_TYPE_A);
	msg_opt(&m, ".", 4096, 0, OPTS("\x00\x0a\x00\x05" "01234"));
	is_int(msg_parse(&m, &q), WIRE_PARSE_FORMERR, "5-byte cookie: FORMERR (RFC 7873 5.2.2)");
	ok(q.edns.present, "EDNS marked present on an option FORMERR");
	msg_begin(&m, 0, 1, 0, 0, 1);
	msg_question(&m, "a.mesh", DNS_TYPE_A);
	msg_opt(&m, ".", 4096, 0, OPTS("\x00\x0a\x00\x0c" "0123456789ab"));
	is_int(msg_parse(&m, &q), WIRE_PARSE_FORMERR, "12-byte cookie: FORMERR");

	msg_begin(&m, 0, 1, 0, 0, 1);
	msg_question(&m, "a.mesh", DNS_TYPE_A);
	msg_opt(&m, ".", 4096, 0, OPTS("\x00\x03\x00\x05" "ab"));
	is_int(msg_parse(&m, &q), WIRE_PARSE_FORMERR, "option longer than the rdata: FORMERR");
	msg_begin(&m, 0, 1, 0, 0, 1);
	msg_question(&m, "a.mesh", DNS_TYPE_A);
	msg_opt(&m, ".", 4096, 0, OPTS("\x00\x03\x00\x00" "\x00\x0c\x00"));
	is_int(msg_parse(&m, &q), WIRE_PARSE_FORMERR, "3 stray bytes after an option: FORMERR");

	msg_begin(&m, 0, 1, 0, 0, 2);
	msg_question(&m, "a.mesh", DNS_TYPE_A);
	msg_opt(&m, ".", 4096, 0, "", 0);
	msg_opt(&m, ".", 4096, 0, "", 0);
	is_int(msg_parse(&m, &q), WIRE_PARSE_FORMERR, "two OPT: FORMERR");
	msg_begin(&m, 0, 1, 0, 0, 1);
	msg_question(&m, "a.mesh", DNS_TYPE_A);
	msg_opt(&m, "a.mesh", 4096, 0, "", 0);
	is_int(msg_parse(&m, &q), WIRE_PARSE_FORMERR, "OPT with a non-root owner: FORMERR");
	msg_begin(&m, 0, 1, 1, 0, 0);
	msg_question(&m, "a.mesh", DNS_TYPE_A);
	msg_opt(&m, ".", 4096, 0, "", 0);
	is_int(msg_parse(&m, &q), WIRE_PARSE_FORMERR, "OPT in the answer section: FORMERR");
	msg_begin(&m, 0, 1, 0, 1, 0);
	msg_question(&m, "a.mesh", DNS_TYPE_A);
	msg_opt(&m, ".", 4096, 0, "", 0);
	is_int(msg_parse(&m, &q), WIRE_PARSE_FORMERR, "OPT in the authority section: FORMERR");

	/* TSIG last in additional; anywhere else FORMERR. */
	msg_begin(&m, 0, 1, 0, 0, 2);
	msg_question(&m, "a.mesh", DNS_TYPE_A);
	opt = msg_opt(&m, ".", 4096, 0, "", 0);
	size_t tsig = msg_rr(&m, "key.mesh", DNS_TYPE_TSIG, "tsigdata", 8);
	is_int(msg_parse(&m, &q), WIRE_PARSE_OK, "OPT then TSIG parses");
	ok(q.opt_off == opt && q.tsig_off == tsig, "opt_off and tsig_off");
	msg_begin(&m, 0, 1, 0, 0, 2);
	msg_question(&m, "a.mesh", DNS_TYPE_A);
	msg_rr(&m, "key.mesh", DNS_TYPE_TSIG, "tsigdata", 8);
	msg_opt(&m, ".", 4096, 0, "", 0);
	is_int(msg_parse(&m, &q), WIRE_PARSE_FORMERR, "TSIG not last: FORMERR");
	msg_begin(&m, 0, 1, 1, 0, 0);
	msg_question(&m, "a.mesh", DNS_TYPE_A);
	msg_rr(&m, "key.mesh", DNS_TYPE_TSIG, "tsigdata", 8);
	is_int(msg_parse(&m, &q), WIRE_PARSE_FORMERR, "TSIG in the answer section: FORMERR");

	msg_begin(&m, 0, 1, 0, 0, 1);
	msg_question(&m, "a.mesh", DNS_TYPE_A);
	msg_opt(&m, ".", 4096, 0, "", 0);
	is_int(wire_parse_query(m.buf, m.w.pos - 1, &q), WIRE_PARSE_FORMERR,
	       "truncated OPT: FORMERR");
}

/* The one short reply: flags by opcode, the question as asked. */
static void test_reply_short(void)
{
	struct dns_question q = { .qtype = DNS_TYPE_AXFR, .qclass = DNS_CLASS_IN };
	size_t l;
	wire_name_from_text("MiXed.Example.", q.name, &l);
	q.namelen = l;
	uint8_t out[512];
	struct dns_header req = { .id = 0xbeef,
		                  .flags = DNS_FLAG_RD | DNS_FLAG_CD | DNS_FLAG_AD | DNS_FLAG_TC };
	int n = wire_reply_short(&req, &q, DNS_RCODE_REFUSED, 0, out, sizeof(out));
	ok(n == (int)(DNS_HEADER_LEN + l + 4), "header and question (%d bytes)", n);
	ok(out[0] == 0xbe && out[1] == 0xef, "the request's id");
	is_int((out[2] << 8 | out[3]), DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_CD | DNS_RCODE_REFUSED,
	       "QUERY: QR, RD and CD echoed, AD and TC not, the rcode");
	ok(out[4] == 0 && out[5] == 1 && memcmp(out + 6, "\0\0\0\0\0\0", 6) == 0,
	   "one question, no records");
	ok(memcmp(out + DNS_HEADER_LEN, q.name, l) == 0, "the question in the case it was asked");
	req.flags = (uint16_t)(DNS_OPCODE_NOTIFY << 11 | DNS_FLAG_RD | DNS_FLAG_CD);
	n = wire_reply_short(&req, &q, DNS_RCODE_NOTIMP, DNS_FLAG_AA, out, sizeof(out));
	is_int((out[2] << 8 | out[3]),
	       DNS_FLAG_QR | DNS_OPCODE_NOTIFY << 11 | DNS_FLAG_AA | DNS_RCODE_NOTIMP,
	       "another opcode: kept, no RD or CD; AA as asked");
	n = wire_reply_short(&req, NULL, DNS_RCODE_FORMERR, 0, out, sizeof(out));
	ok(n == DNS_HEADER_LEN && out[5] == 0, "no question: a header alone");
	ok(wire_reply_short(&req, &q, DNS_RCODE_REFUSED, 0, out, DNS_HEADER_LEN + 2) == -1,
	   "too small a buffer: -1");
}

int main(void)
{
	test_reply_short();
	test_reader();
	test_read_name();
	test_read_rr();
	test_name_text();
	test_name_helpers();
	test_writer();
	test_compression();
	test_parse_plain();
	test_parse_edns();
	return done_testing();
}

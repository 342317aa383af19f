/* rdata.c -- RDATA presentation format <-> wire for the types the server
 * serves, RFC 3597 for the rest, and the mnemonic tables. Off the query
 * path: used when loading config and by meshdig to print answers. */
#include "dns/rdata.h"

#include "util/num.h"
#include "dns/wire.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- mnemonics --------------------------------------------------------- */

struct mnemonic {
	uint16_t code;
	const char *name;
};

static const struct mnemonic types[] = {
	{ DNS_TYPE_A, "A" },         { DNS_TYPE_NS, "NS" },         { DNS_TYPE_CNAME, "CNAME" },
	{ DNS_TYPE_SOA, "SOA" },     { DNS_TYPE_PTR, "PTR" },       { DNS_TYPE_HINFO, "HINFO" },
	{ DNS_TYPE_MX, "MX" },       { DNS_TYPE_TXT, "TXT" },       { 17, "RP" },
	{ DNS_TYPE_AAAA, "AAAA" },   { 29, "LOC" },                 { DNS_TYPE_SRV, "SRV" },
	{ 35, "NAPTR" },             { 39, "DNAME" },               { DNS_TYPE_OPT, "OPT" },
	{ DNS_TYPE_DS, "DS" },       { 44, "SSHFP" },               { DNS_TYPE_RRSIG, "RRSIG" },
	{ 47, "NSEC" },              { 48, "DNSKEY" },              { 50, "NSEC3" },
	{ 51, "NSEC3PARAM" },        { 52, "TLSA" },                { 59, "CDS" },
	{ 60, "CDNSKEY" },           { 64, "SVCB" },                { 65, "HTTPS" },
	{ 99, "SPF" },               { 249, "TKEY" },               { DNS_TYPE_TSIG, "TSIG" },
	{ DNS_TYPE_IXFR, "IXFR" },   { DNS_TYPE_AXFR, "AXFR" },     { DNS_TYPE_MAILB, "MAILB" },
	{ DNS_TYPE_MAILA, "MAILA" }, { DNS_TYPE_ANY, "ANY" },       { 256, "URI" },
	{ 257, "CAA" },
};

static const struct mnemonic classes[] = {
	{ DNS_CLASS_IN, "IN" },     { DNS_CLASS_CH, "CH" },   { 4, "HS" },
	{ DNS_CLASS_NONE, "NONE" }, { DNS_CLASS_ANY, "ANY" },
};

/* 16 is BADVERS with OPT and BADSIG with TSIG (RFC 6891, RFC 8945); the
 * server only produces the former. */
static const struct mnemonic rcodes[] = {
	{ 0, "NOERROR" },   { 1, "FORMERR" },  { 2, "SERVFAIL" },   { 3, "NXDOMAIN" },
	{ 4, "NOTIMP" },    { 5, "REFUSED" },  { 6, "YXDOMAIN" },   { 7, "YXRRSET" },
	{ 8, "NXRRSET" },   { 9, "NOTAUTH" },  { 10, "NOTZONE" },   { 11, "DSOTYPENI" },
	{ 16, "BADVERS" },  { 17, "BADKEY" },  { 18, "BADTIME" },   { 19, "BADMODE" },
	{ 20, "BADNAME" },  { 21, "BADALG" },  { 22, "BADTRUNC" },  { 23, "BADCOOKIE" },
};

static const struct mnemonic opcodes[] = {
	{ DNS_OPCODE_QUERY, "QUERY" },   { DNS_OPCODE_IQUERY, "IQUERY" },
	{ DNS_OPCODE_STATUS, "STATUS" }, { DNS_OPCODE_NOTIFY, "NOTIFY" },
	{ DNS_OPCODE_UPDATE, "UPDATE" }, { 6, "DSO" },
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *mnemonic_name(const struct mnemonic *t, size_t n, unsigned code)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].code == code)
			return t[i].name;
	return NULL;
}

/* A mnemonic from the table, or prefix followed by a decimal code. */
static int mnemonic_code(const struct mnemonic *t, size_t n, const char *prefix, const char *s,
                         uint16_t *code)
{
	for (size_t i = 0; i < n; i++) {
		if (strcasecmp(t[i].name, s) == 0) {
			*code = t[i].code;
			return 0;
		}
	}
	size_t plen = strlen(prefix);
	uint64_t v;
	if (strncasecmp(s, prefix, plen) == 0 && num_parse(s + plen, 65535, &v)) {
		*code = (uint16_t)v;
		return 0;
	}
	return -1;
}

/* The fallbacks are per thread so that workers and the health thread
 * can log at once; the string lives until the thread's next call. */
/* The mnemonic of code in t, else prefix and the number (RFC 3597 style)
 * in buf. */
static const char *name_or_number(const struct mnemonic *t, size_t n, unsigned code,
                                  const char *prefix, char *buf, size_t cap)
{
	const char *s = mnemonic_name(t, n, code);
	if (s)
		return s;
	snprintf(buf, cap, "%s%u", prefix, code);
	return buf;
}

const char *rdata_type_name(uint16_t type)
{
	static _Thread_local char buf[16];
	return name_or_number(types, COUNT(types), type, "TYPE", buf, sizeof(buf));
}

int rdata_type_from_name(const char *s, uint16_t *type)
{
	return mnemonic_code(types, COUNT(types), "TYPE", s, type);
}

const char *rdata_class_name(uint16_t rclass)
{
	static _Thread_local char buf[16];
	return name_or_number(classes, COUNT(classes), rclass, "CLASS", buf, sizeof(buf));
}

int rdata_class_from_name(const char *s, uint16_t *rclass)
{
	return mnemonic_code(classes, COUNT(classes), "CLASS", s, rclass);
}

const char *rdata_rcode_name(unsigned rcode)
{
	static _Thread_local char buf[24];
	return name_or_number(rcodes, COUNT(rcodes), rcode, "RCODE", buf, sizeof(buf));
}

const char *rdata_opcode_name(unsigned opcode)
{
	static _Thread_local char buf[24];
	return name_or_number(opcodes, COUNT(opcodes), opcode, "OPCODE", buf, sizeof(buf));
}

/* ---- text to wire ------------------------------------------------------ */

/* Longest token accepted: a 255-byte name written entirely in \DDD. */
enum { TOKEN_MAX = 1100 };

struct lexer {
	const char *p;
	const char *err;
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool lex_more(struct lexer *lx)
{
	while (is_space(*lx->p))
		lx->p++;
	return *lx->p != '\0';
}

/* The next whitespace-separated token, backslash pairs kept together and
 * verbatim (names and TXT decode them later). Returns false at the end or
 * on error (lx->err set). */
static bool lex_token(struct lexer *lx, char tok[TOKEN_MAX])
{
	if (lx->err || !lex_more(lx))
		return false;
	size_t n = 0;
	while (*lx->p && !is_space(*lx->p)) {
		size_t take = lx->p[0] == '\\' && lx->p[1] ? 2 : 1;
		if (n + take >= TOKEN_MAX) {
			lx->err = "token too long";
			return false;
		}
		memcpy(tok + n, lx->p, take);
		n += take;
		lx->p += take;
	}
	tok[n] = '\0';
	return true;
}

static bool lex_need(struct lexer *lx, char tok[TOKEN_MAX], const char *what)
{
	if (lex_token(lx, tok))
		return true;
	if (!lx->err)
		lx->err = what;
	return false;
}

static bool lex_end(struct lexer *lx)
{
	if (lx->err)
		return false;
	if (lex_more(lx)) {
		lx->err = "trailing data";
		return false;
	}
	return true;
}

/* "@" is the origin; text ending in an unescaped '.' is absolute; other
 * text is made relative to the origin (absolute if there is none). */
static bool name_parse(const char *tok, const uint8_t *origin, size_t originlen,
                       uint8_t out[DNS_NAME_MAX], size_t *outlen)
{
	if (strcmp(tok, "@") == 0) {
		if (!origin || !wire_name_valid(origin, originlen))
			return false;
		memcpy(out, origin, originlen);
		*outlen = originlen;
		return true;
	}
	size_t len = strlen(tok), bs = 0;
	while (len >= 2 + bs && tok[len - 2 - bs] == '\\')
		bs++;
	bool absolute = len > 0 && tok[len - 1] == '.' && bs % 2 == 0;
	uint8_t tmp[DNS_NAME_MAX];
	size_t tlen;
	if (wire_name_from_text(tok, tmp, &tlen) != 0)
		return false;
	if (absolute || !origin || originlen <= 1) {
		memcpy(out, tmp, tlen);
		*outlen = tlen;
		return true;
	}
	if (!wire_name_valid(origin, originlen) || tlen - 1 + originlen > DNS_NAME_MAX)
		return false;
	memcpy(out, tmp, tlen - 1);
	memcpy(out + tlen - 1, origin, originlen);
	*outlen = tlen - 1 + originlen;
	return true;
}

struct parse {
	struct lexer lx;
	struct wire_writer w;
	const uint8_t *origin;
	size_t originlen;
	char tok[TOKEN_MAX];
};

static bool put_name(struct parse *ps)
{
	uint8_t name[DNS_NAME_MAX];
	size_t len;
	if (!lex_need(&ps->lx, ps->tok, "missing name"))
		return false;
	if (!name_parse(ps->tok, ps->origin, ps->originlen, name, &len)) {
		ps->lx.err = "bad name";
		return false;
	}
	wire_write_name(&ps->w, name, len, false);
	return true;
}

static bool put_u16(struct parse *ps, const char *what)
{
	uint64_t v;
	if (!lex_need(&ps->lx, ps->tok, what))
		return false;
	if (!num_parse(ps->tok, 65535, &v)) {
		ps->lx.err = what;
		return false;
	}
	wire_write_u16(&ps->w, (uint16_t)v);
	return true;
}

/* A 32-bit number; with units, BIND's "1w2d3h4m5s" time form as well. */
static bool put_u32(struct parse *ps, const char *what, bool units)
{
	unsigned long long total = 0, cur = 0;
	bool digits = false, unit_seen = false;
	if (!lex_need(&ps->lx, ps->tok, what))
		return false;
	for (const char *s = ps->tok; *s; s++) {
		unsigned long long mult = 0;
		if (*s >= '0' && *s <= '9') {
			cur = cur * 10 + (unsigned long long)(*s - '0');
			digits = true;
			if (cur > 0xffffffffull)
				goto bad;
			continue;
		}
		switch (units ? *s | 0x20 : 0) {
		case 's': mult = 1; break;
		case 'm': mult = 60; break;
		case 'h': mult = 3600; break;
		case 'd': mult = 86400; break;
		case 'w': mult = 604800; break;
		default: goto bad;
		}
		if (!digits)
			goto bad;
		total += cur * mult;
		cur = 0;
		digits = false;
		unit_seen = true;
		if (total > 0xffffffffull)
			goto bad;
	}
	if (digits)
		total += cur;
	else if (!unit_seen)
		goto bad;
	if (total > 0xffffffffull)
		goto bad;
	wire_write_u32(&ps->w, (uint32_t)total);
	return true;
bad:
	ps->lx.err = what;
	return false;
}

int rdata_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* RFC 3597 3: "\# <length> <hex>", the hex in any number of words. */
static bool parse_generic(struct parse *ps)
{
	uint64_t len;
	if (!lex_need(&ps->lx, ps->tok, "missing length after \\#") ||
	    !num_parse(ps->tok, 65535, &len)) {
		ps->lx.err = "bad length after \\#";
		return false;
	}
	unsigned long got = 0;
	int hi = -1;
	while (lex_token(&ps->lx, ps->tok)) {
		for (const char *s = ps->tok; *s; s++) {
			int v = rdata_hex_digit(*s);
			if (v < 0) {
				ps->lx.err = "bad hex in \\# data";
				return false;
			}
			if (hi < 0) {
				hi = v;
				continue;
			}
			if (++got > len) {
				ps->lx.err = "\\# data longer than its length";
				return false;
			}
			wire_write_u8(&ps->w, (uint8_t)(hi << 4 | v));
			hi = -1;
		}
	}
	if (ps->lx.err)
		return false;
	if (hi >= 0) {
		ps->lx.err = "odd number of hex digits";
		return false;
	}
	if (got != len) {
		ps->lx.err = "\\# data shorter than its length";
		return false;
	}
	return true;
}

/* Appends one byte to the current TXT character-string, starting a new
 * one when 255 are full (strings longer than 255 are split). */
struct txt {
	size_t lenpos;    /* offset of the current string's length byte */
	unsigned used;
};

static void txt_begin(struct parse *ps, struct txt *t)
{
	t->lenpos = ps->w.pos;
	t->used = 0;
	wire_write_u8(&ps->w, 0);
}

static void txt_put(struct parse *ps, struct txt *t, uint8_t c)
{
	if (t->used == 255)
		txt_begin(ps, t);
	wire_write_u8(&ps->w, c);
	if (ps->w.err)
		return;
	t->used++;
	ps->w.buf[t->lenpos] = (uint8_t)t->used;
}

/* One character-string, quoted or bare, with \X and \DDD escapes. */
static bool txt_string(struct parse *ps)
{
	struct lexer *lx = &ps->lx;
	struct txt t;
	bool quoted = *lx->p == '"';
	if (quoted)
		lx->p++;
	txt_begin(ps, &t);
	for (;;) {
		char c = *lx->p;
		if (c == '\0') {
			if (quoted) {
				lx->err = "missing closing quote";
				return false;
			}
			break;
		}
		if (quoted ? c == '"' : is_space(c) || c == '"')
			break;
		lx->p++;
		if (c != '\\') {
			txt_put(ps, &t, (uint8_t)c);
			continue;
		}
		const char *d = lx->p;
		if (d[0] >= '0' && d[0] <= '9') {
			if (!(d[1] >= '0' && d[1] <= '9' && d[2] >= '0' && d[2] <= '9')) {
				lx->err = "bad \\DDD escape";
				return false;
			}
			int v = (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
			if (v > 255) {
				lx->err = "bad \\DDD escape";
				return false;
			}
			txt_put(ps, &t, (uint8_t)v);
			lx->p += 3;
		} else if (d[0]) {
			txt_put(ps, &t, (uint8_t)d[0]);
			lx->p++;
		} else {
			lx->err = "trailing backslash";
			return false;
		}
	}
	if (quoted)
		lx->p++;
	return true;
}

static bool parse_txt(struct parse *ps)
{
	if (!lex_more(&ps->lx)) {
		ps->lx.err = "missing TXT data";
		return false;
	}
	while (lex_more(&ps->lx)) {
		if (!txt_string(ps))
			return false;
	}
	return true;
}

static bool parse_addr(struct parse *ps, int af, size_t len)
{
	uint8_t a[16];
	if (!lex_need(&ps->lx, ps->tok, "missing address"))
		return false;
	if (inet_pton(af, ps->tok, a) != 1) {
		ps->lx.err = af == AF_INET ? "bad IPv4 address" : "bad IPv6 address";
		return false;
	}
	wire_write_bytes(&ps->w, a, len);
	return true;
}

/* Length of the uncompressed name at the start of p[0..n), or 0. */
static size_t plain_name_len(const uint8_t *p, size_t n)
{
	size_t pos = 0;
	while (pos < n && pos < DNS_NAME_MAX) {
		if (p[pos] == 0)
			return pos + 1;
		if (p[pos] > DNS_LABEL_MAX)
			return 0;
		pos += 1 + (size_t)p[pos];
	}
	return 0;
}

/* Whether generic (\#) rdata of a type we know has that type's shape, so
 * that "\# 3 010203" cannot become a 3-byte A record. */
static bool wire_shape_ok(uint16_t type, const uint8_t *rd, size_t len)
{
	size_t n, m;
	switch (type) {
	case DNS_TYPE_A:
		return len == 4;
	case DNS_TYPE_AAAA:
		return len == 16;
	case DNS_TYPE_NS:
	case DNS_TYPE_CNAME:
	case DNS_TYPE_PTR:
		return plain_name_len(rd, len) == len;
	case DNS_TYPE_MX:
		return len > 2 && plain_name_len(rd + 2, len - 2) == len - 2;
	case DNS_TYPE_SRV:
		return len > 6 && plain_name_len(rd + 6, len - 6) == len - 6;
	case DNS_TYPE_SOA:
		n = plain_name_len(rd, len);
		if (!n)
			return false;
		m = plain_name_len(rd + n, len - n);
		return m && len - n - m == 20;
	case DNS_TYPE_TXT:
		if (len == 0)
			return false;
		for (n = 0; n < len; n += 1 + (size_t)rd[n])
			if (len - n < 1 + (size_t)rd[n])
				return false;
		return true;
	default:
		return true;
	}
}

int rdata_from_text(uint16_t type, const char *text, const uint8_t *origin, size_t originlen,
                    uint8_t *out, size_t outcap, size_t *outlen, const char **errmsg)
{
	struct parse ps;
	ps.lx.p = text;
	ps.lx.err = NULL;
	ps.origin = origin;
	ps.originlen = originlen;
	wire_writer_init(&ps.w, out, outcap);

	bool generic = false;
	bool done;
	if (lex_more(&ps.lx) && strncmp(ps.lx.p, "\\#", 2) == 0 &&
	    (ps.lx.p[2] == '\0' || is_space(ps.lx.p[2]))) {
		ps.lx.p += 2;
		generic = true;
		done = parse_generic(&ps);
	} else {
		switch (type) {
		case DNS_TYPE_A:
			done = parse_addr(&ps, AF_INET, 4);
			break;
		case DNS_TYPE_AAAA:
			done = parse_addr(&ps, AF_INET6, 16);
			break;
		case DNS_TYPE_NS:
		case DNS_TYPE_CNAME:
		case DNS_TYPE_PTR:
			done = put_name(&ps);
			break;
		case DNS_TYPE_MX:
			done = put_u16(&ps, "bad MX preference") && put_name(&ps);
			break;
		case DNS_TYPE_SRV:
			done = put_u16(&ps, "bad SRV priority") && put_u16(&ps, "bad SRV weight") &&
			       put_u16(&ps, "bad SRV port") && put_name(&ps);
			break;
		case DNS_TYPE_SOA:
			done = put_name(&ps) && put_name(&ps) &&
			       put_u32(&ps, "bad SOA serial", false) &&
			       put_u32(&ps, "bad SOA refresh", true) &&
			       put_u32(&ps, "bad SOA retry", true) &&
			       put_u32(&ps, "bad SOA expire", true) &&
			       put_u32(&ps, "bad SOA minimum", true);
			break;
		case DNS_TYPE_TXT:
			done = parse_txt(&ps);
			break;
		default:
			ps.lx.err = "type needs the \\# form";
			done = false;
			break;
		}
	}
	if (done)
		done = lex_end(&ps.lx);
	if (done && (ps.w.err || ps.w.pos > 65535)) {
		ps.lx.err = "data too long";
		done = false;
	}
	if (done && generic && !wire_shape_ok(type, out, ps.w.pos)) {
		ps.lx.err = "\\# data does not fit the type";
		done = false;
	}
	if (!done) {
		if (errmsg)
			*errmsg = ps.lx.err ? ps.lx.err : "cannot parse";
		return -1;
	}
	*outlen = ps.w.pos;
	return 0;
}

/* ---- wire to text ------------------------------------------------------ */

struct out {
	char *buf;
	size_t cap;
	size_t n;
	bool full;
};

__attribute__((format(printf, 2, 3)))
static void out_printf(struct out *o, const char *fmt, ...)
{
	if (o->full)
		return;
	va_list ap;
	va_start(ap, fmt);
	int r = vsnprintf(o->buf + o->n, o->cap - o->n, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= o->cap - o->n) {
		o->full = true;
		o->buf[o->n] = '\0';
		return;
	}
	o->n += (size_t)r;
}

/* One byte at a time without vsnprintf: hex and TXT bodies of up to
 * 64 KiB are printed byte by byte. */
static void out_putc(struct out *o, char c)
{
	if (o->full)
		return;
	if (o->cap - o->n < 2) {
		o->full = true;
		return;
	}
	o->buf[o->n++] = c;
	o->buf[o->n] = '\0';
}

/* Reads a (possibly compressed) name from r and prints it. */
static bool out_name(struct out *o, struct wire_reader *r)
{
	uint8_t name[DNS_NAME_MAX];
	char text[DNS_NAME_MAX * 4 + 2];
	size_t len = wire_read_name(r, name);
	if (!len)
		return false;
	if (wire_name_to_text(name, len, text, sizeof(text)) < 0)
		return false;
	out_printf(o, "%s", text);
	return true;
}

static void out_generic(struct out *o, const uint8_t *rd, uint16_t rdlen)
{
	static const char hex[] = "0123456789abcdef";
	out_printf(o, "\\# %u", (unsigned)rdlen);
	if (rdlen)
		out_putc(o, ' ');
	for (size_t i = 0; i < rdlen; i++) {
		out_putc(o, hex[rd[i] >> 4]);
		out_putc(o, hex[rd[i] & 0xf]);
	}
}

static void out_txt(struct out *o, struct wire_reader *r)
{
	bool first = true;
	while (wire_remaining(r) > 0) {
		uint8_t n = wire_read_u8(r);
		const uint8_t *s = wire_read_ptr(r, n);
		if (!s)
			return;
		if (!first)
			out_putc(o, ' ');
		out_putc(o, '"');
		first = false;
		for (size_t i = 0; i < n; i++) {
			if (s[i] == '"' || s[i] == '\\') {
				out_putc(o, '\\');
				out_putc(o, (char)s[i]);
			} else if (s[i] < 0x20 || s[i] > 0x7e) {
				out_printf(o, "\\%03u", s[i]);
			} else {
				out_putc(o, (char)s[i]);
			}
		}
		out_putc(o, '"');
	}
}

/* Prints the typed form; false if the rdata is malformed for the type (or
 * the type has no typed form here), in which case the caller starts over
 * in the generic form. */
static bool out_typed(struct out *o, uint16_t type, struct wire_reader *r, uint16_t rdlen)
{
	char addr[INET6_ADDRSTRLEN];
	const uint8_t *p;

	switch (type) {
	case DNS_TYPE_A:
		if (rdlen != 4 || !(p = wire_read_ptr(r, 4)) ||
		    !inet_ntop(AF_INET, p, addr, sizeof(addr)))
			return false;
		out_printf(o, "%s", addr);
		break;
	case DNS_TYPE_AAAA:
		if (rdlen != 16 || !(p = wire_read_ptr(r, 16)) ||
		    !inet_ntop(AF_INET6, p, addr, sizeof(addr)))
			return false;
		out_printf(o, "%s", addr);
		break;
	case DNS_TYPE_NS:
	case DNS_TYPE_CNAME:
	case DNS_TYPE_PTR:
		if (!out_name(o, r))
			return false;
		break;
	case DNS_TYPE_MX: {
		unsigned pref = wire_read_u16(r);
		out_printf(o, "%u ", pref);
		if (!out_name(o, r))
			return false;
		break;
	}
	case DNS_TYPE_SRV: {
		unsigned prio = wire_read_u16(r);
		unsigned weight = wire_read_u16(r);
		unsigned port = wire_read_u16(r);
		out_printf(o, "%u %u %u ", prio, weight, port);
		if (!out_name(o, r))
			return false;
		break;
	}
	case DNS_TYPE_SOA:
		if (!out_name(o, r))
			return false;
		out_printf(o, " ");
		if (!out_name(o, r))
			return false;
		for (int i = 0; i < 5; i++)
			out_printf(o, " %lu", (unsigned long)wire_read_u32(r));
		break;
	case DNS_TYPE_TXT:
		if (rdlen == 0)
			return false;
		out_txt(o, r);
		break;
	default:
		return false;
	}
	return !r->err && wire_remaining(r) == 0;
}

/* Also -1 if [rdoff, rdoff + rdlen) is not inside msg: a caller's bug,
 * since wire_read_rr() never produces such a range. */
int rdata_to_text(uint16_t type, const uint8_t *msg, size_t msglen, size_t rdoff, uint16_t rdlen,
                  char *out, size_t outcap)
{
	if (!out || outcap == 0 || rdoff > msglen || msglen - rdoff < rdlen)
		return -1;
	struct out o = { out, outcap, 0, false };
	out[0] = '\0';

	/* The reader ends with the rdata, so nothing inside it can run past;
	 * compression pointers only go backwards, into the message before. */
	struct wire_reader r;
	wire_reader_init(&r, msg, rdoff + rdlen);
	r.pos = rdoff;
	if (!out_typed(&o, type, &r, rdlen)) {
		o.n = 0;
		o.full = false;
		out[0] = '\0';
		out_generic(&o, msg + rdoff, rdlen);
	}
	return o.full ? -1 : (int)o.n;
}

/* wire.c -- bounds-checked DNS reader and writer, names, compression and
 * request parsing with EDNS0. Never allocates and never logs. */
#include "dns/wire.h"

#include <stdint.h>
#include <stddef.h>
#include <string.h>

/* ---- reader ------------------------------------------------------------ */

void wire_reader_init(struct wire_reader *r, const uint8_t *buf, size_t len)
{
	r->buf = buf;
	r->len = len;
	r->pos = 0;
	r->err = WIRE_OK;
}

/* On failure dst is zeroed so that callers never see stale bytes. */
void wire_read_bytes(struct wire_reader *r, void *dst, size_t n)
{
	const uint8_t *p = wire_reader_take(r, n);
	if (p)
		memcpy(dst, p, n);
	else if (n)
		memset(dst, 0, n);
}

const uint8_t *wire_read_ptr(struct wire_reader *r, size_t n)
{
	return wire_reader_take(r, n);
}

void wire_skip(struct wire_reader *r, size_t n)
{
	wire_reader_take(r, n);
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

void wire_read_header(struct wire_reader *r, struct dns_header *h)
{
	if (wire_remaining(r) >= DNS_HEADER_LEN) {
		const uint8_t *p = wire_reader_take(r, DNS_HEADER_LEN);
		h->id = be16(p);
		h->flags = be16(p + 2);
		h->qdcount = be16(p + 4);
		h->ancount = be16(p + 6);
		h->nscount = be16(p + 8);
		h->arcount = be16(p + 10);
		return;
	}
	/* Short: the fields that are there, zeros after (and err set). */
	h->id = wire_read_u16(r);
	h->flags = wire_read_u16(r);
	h->qdcount = wire_read_u16(r);
	h->ancount = wire_read_u16(r);
	h->nscount = wire_read_u16(r);
	h->arcount = wire_read_u16(r);
}

static size_t reader_fail(struct wire_reader *r, int err)
{
	r->err = err;
	return 0;
}

/* Termination: every jump must land strictly before the previous jump's
 * target (and the first before the pointer itself), so the targets form a
 * strictly decreasing sequence and at most len jumps can happen; between
 * jumps the walk only moves forward, bounded by len and by the 255-byte
 * name limit. Rejecting pointers to pointers (RFC 1035 allows them, no
 * encoder needs them) removes the cheapest way to chain jumps. */
size_t wire_read_name(struct wire_reader *r, uint8_t out[DNS_NAME_MAX])
{
	if (r->err)
		return 0;
	size_t pos = r->pos;
	size_t after = 0;      /* cursor position after the name as stored */
	size_t last_target = 0;
	bool jumped = false;
	size_t n = 0;
	size_t run = pos;      /* labels from here to pos are checked, not yet copied */

	for (;;) {
		if (pos >= r->len)
			return reader_fail(r, WIRE_ETRUNC);
		uint8_t c = r->buf[pos];
		switch (c & 0xc0) {
		case 0xc0: {
			if (r->len - pos < 2)
				return reader_fail(r, WIRE_ETRUNC);
			size_t target = (size_t)(c & 0x3f) << 8 | r->buf[pos + 1];
			if (target >= pos || (jumped && target >= last_target))
				return reader_fail(r, WIRE_EPTR);
			if ((r->buf[target] & 0xc0) == 0xc0)
				return reader_fail(r, WIRE_EPTR);
			if (out && pos > run)
				wire_copy(out + n - (pos - run), r->buf + run, pos - run);
			if (!jumped)
				after = pos + 2;
			jumped = true;
			last_target = target;
			pos = run = target;
			break;
		}
		case 0x00:
			if (c == 0) {
				/* n <= 254 here: every label check below keeps room for it.
				 * The labels since the last jump, in one copy. */
				if (out) {
					if (pos > run)
						wire_copy(out + n - (pos - run), r->buf + run, pos - run);
					out[n] = 0;
				}
				n++;
				r->pos = jumped ? after : pos + 1;
				return n;
			}
			if (r->len - pos - 1 < c)
				return reader_fail(r, WIRE_ETRUNC);
			if (n + 1 + c > DNS_NAME_MAX - 1)
				return reader_fail(r, WIRE_EBADNAME);
			n += 1 + (size_t)c;
			pos += 1 + (size_t)c;
			break;
		default:
			/* 01 (EDNS0 extended labels, RFC 6891 5 deprecates them) and
			 * the unassigned 10. */
			return reader_fail(r, WIRE_EBADNAME);
		}
	}
}

int wire_reply_short(const struct dns_header *req, const struct dns_question *q, unsigned rcode,
                     uint16_t set, uint8_t *out, size_t cap)
{
	struct wire_writer w;
	wire_writer_init(&w, out, cap);
	uint16_t echo = DNS_OPCODE(req->flags) == DNS_OPCODE_QUERY ? DNS_FLAG_RD | DNS_FLAG_CD : 0;
	struct dns_header h = {
		.id = req->id,
		.flags = (uint16_t)(DNS_FLAG_QR | (req->flags & (0x7800u | echo)) | set | (rcode & 0xfu)),
		.qdcount = q ? 1 : 0,
	};
	wire_write_header(&w, &h);
	if (q) {
		wire_write_name(&w, q->name, q->namelen, false);
		wire_write_u16(&w, q->qtype);
		wire_write_u16(&w, q->qclass);
	}
	return w.err ? -1 : (int)w.pos;
}

void wire_read_question(struct wire_reader *r, struct dns_question *q)
{
	/* A question's name is nearly always labels alone, whole in the
	 * message and followed by type and class: checked in one scan and
	 * copied with the four bytes after it in one bounds check. Anything
	 * else (a pointer, a bad label, too short) takes wire_read_name's
	 * way, which says what is wrong. */
	size_t pos = r->pos, end = r->len, i = pos;
	if (!r->err && pos < end) {
		size_t most = end - pos < DNS_NAME_MAX ? end - pos : DNS_NAME_MAX;
		while (i - pos < most && r->buf[i] != 0 && r->buf[i] <= DNS_LABEL_MAX)
			i += 1 + (size_t)r->buf[i];
		size_t n = i + 1 - pos;   /* with the root label */
		if (i - pos < most && r->buf[i] == 0 && n <= DNS_NAME_MAX && end - i - 1 >= 4) {
			const uint8_t *p = r->buf + i + 1;
			wire_copy(q->name, r->buf + pos, n);
			q->namelen = n;
			q->qtype = (uint16_t)(p[0] << 8 | p[1]);
			q->qclass = (uint16_t)(p[2] << 8 | p[3]);
			r->pos = i + 5;
			return;
		}
	}
	q->namelen = wire_read_name(r, q->name);
	q->qtype = wire_read_u16(r);
	q->qclass = wire_read_u16(r);
}

void wire_read_rr(struct wire_reader *r, struct dns_rr *rr)
{
	rr->namelen = wire_read_name(r, rr->name);
	rr->type = wire_read_u16(r);
	rr->rclass = wire_read_u16(r);
	rr->ttl = wire_read_u32(r);
	rr->rdlen = wire_read_u16(r);
	rr->rdoff = r->pos;
	wire_skip(r, rr->rdlen);
}

/* ---- names ------------------------------------------------------------- */

static uint8_t ascii_lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + ('a' - 'A')) : c;
}

/* Decodes the escape after a backslash at *p (RFC 1035 5.1: \DDD is a
 * decimal byte, \X is X) and advances *p past it. Returns the byte, or -1. */
static int text_escape(const char **p)
{
	const char *s = *p;
	if (s[0] >= '0' && s[0] <= '9') {
		if (!(s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9'))
			return -1;
		int v = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
		*p += 3;
		return v <= 255 ? v : -1;
	}
	if (s[0] == '\0')
		return -1;
	*p += 1;
	return (unsigned char)s[0];
}

int wire_name_from_text(const char *text, uint8_t out[DNS_NAME_MAX], size_t *outlen)
{
	const char *p = text;
	size_t n = 0;

	if (!p[0])
		return -WIRE_EBADNAME;
	if (p[0] == '.' && p[1] == '\0') {
		out[0] = 0;
		*outlen = 1;
		return 0;
	}
	while (*p) {
		/* One label: its length byte at out[start], filled in at the end.
		 * Keep one byte for the root label that always follows. */
		size_t start = n;
		if (start + 1 >= DNS_NAME_MAX)
			return -WIRE_EBADNAME;
		n++;
		while (*p && *p != '.') {
			int c = (unsigned char)*p++;
			if (c == '\\' && (c = text_escape(&p)) < 0)
				return -WIRE_EBADNAME;
			if (n - start > DNS_LABEL_MAX || n + 1 >= DNS_NAME_MAX)
				return -WIRE_EBADNAME;
			out[n++] = (uint8_t)c;
		}
		if (n - start == 1)
			return -WIRE_EBADNAME;     /* empty label: "a..b", ".a" */
		out[start] = (uint8_t)(n - start - 1);
		if (*p == '.')
			p++;
	}
	out[n++] = 0;
	*outlen = n;
	return 0;
}

bool wire_name_valid(const uint8_t *name, size_t len)
{
	if (!name || len < 1 || len > DNS_NAME_MAX)
		return false;
	size_t pos = 0;
	while (pos < len) {
		uint8_t c = name[pos];
		if (c == 0)
			return pos == len - 1;
		if (c > DNS_LABEL_MAX)
			return false;
		pos += 1 + (size_t)c;
	}
	return false;
}

int wire_name_to_text(const uint8_t *name, size_t namelen, char *out, size_t outcap)
{
	if (!wire_name_valid(name, namelen) || outcap < 1)
		return -1;
	size_t n = 0;
	size_t pos = 0;

	if (name[0] == 0) {
		if (outcap < 2)
			return -1;
		out[0] = '.';
		out[1] = '\0';
		return 1;
	}
	while (name[pos]) {
		size_t llen = name[pos++];
		for (size_t i = 0; i < llen; i++) {
			uint8_t c = name[pos++];
			char esc[5];
			size_t elen;
			if (c && strchr(".\\\";()@$", c)) {
				esc[0] = '\\';
				esc[1] = (char)c;
				elen = 2;
			} else if (c < 0x21 || c > 0x7e) {
				esc[0] = '\\';
				esc[1] = (char)('0' + c / 100);
				esc[2] = (char)('0' + c / 10 % 10);
				esc[3] = (char)('0' + c % 10);
				elen = 4;
			} else {
				esc[0] = (char)c;
				elen = 1;
			}
			if (outcap - n <= elen)
				return -1;
			memcpy(out + n, esc, elen);
			n += elen;
		}
		if (outcap - n <= 1)
			return -1;
		out[n++] = '.';
	}
	out[n] = '\0';
	return (int)n;
}

/* Length octets are at most 63, below 'A', so lowering every byte of the
 * name leaves them alone; the same holds for the comparisons below. */
void wire_name_lower(uint8_t *name, size_t len)
{
	for (size_t i = 0; i < len; i++)
		name[i] = ascii_lower(name[i]);
}

bool wire_name_is_subdomain(const uint8_t *name, size_t len, const uint8_t *parent, size_t plen)
{
	if (plen < 1 || len < plen)
		return false;
	size_t off = len - plen;
	size_t pos = 0;
	/* The suffix must start on a label boundary: "xexample." is not below
	 * "example.". */
	while (pos < off) {
		if (name[pos] == 0 || name[pos] > DNS_LABEL_MAX)
			return false;
		pos += 1 + (size_t)name[pos];
	}
	return pos == off && wire_bytes_equal_nocase(name + off, parent, plen);
}

unsigned wire_name_labels(const uint8_t *name, size_t len)
{
	unsigned n = 0;
	size_t pos = 0;
	while (pos < len && name[pos] != 0) {
		n++;
		pos += 1 + (size_t)name[pos];
	}
	return n;
}

/* Skipping more labels than the name has gives the offset of the root
 * label (len - 1 for a valid name). */
size_t wire_name_skip_labels(const uint8_t *name, size_t len, unsigned skip)
{
	size_t pos = 0;
	while (skip > 0 && pos < len && name[pos] != 0) {
		size_t next = pos + 1 + (size_t)name[pos];
		if (next >= len)
			break;
		pos = next;
		skip--;
	}
	return pos;
}

/* ---- writer ------------------------------------------------------------ */

void wire_writer_init(struct wire_writer *w, uint8_t *buf, size_t cap)
{
	w->buf = buf;
	w->cap = cap;
	w->pos = 0;
	w->err = WIRE_OK;
	w->ncomp = 0;
	w->last_off = 0;
	w->last_len = 0;
	w->lazy_off = 0;
	w->lazy_len = 0;
	w->nbase = 0;
}

void wire_write_ptr(struct wire_writer *w, size_t off)
{
	if (w->err)
		return;
	if (off >= 0x4000 || off >= w->pos) {
		w->err = WIRE_EINVAL;
		return;
	}
	uint8_t *p = wire_writer_take(w, 2);
	if (p) {
		p[0] = (uint8_t)(0xc0 | off >> 8);
		p[1] = (uint8_t)off;
	}
}

/* Like every write, a no-op once err is set; a patch outside what was
 * written sets WIRE_EINVAL. */
void wire_patch_u16(struct wire_writer *w, size_t off, uint16_t v)
{
	if (w->err)
		return;
	if (off > w->pos || w->pos - off < 2) {
		w->err = WIRE_EINVAL;
		return;
	}
	w->buf[off] = (uint8_t)(v >> 8);
	w->buf[off + 1] = (uint8_t)v;
}

/* True if the name stored at buf[off] (compressed only by us, so pointers
 * go backwards) equals the uncompressed name suffix, ignoring case. The
 * walk stays inside [0, pos) and takes only strictly backward jumps, so it
 * ends even if the buffer was patched over by the caller. */
static bool writer_name_matches(const struct wire_writer *w, size_t off, const uint8_t *suffix,
                                size_t slen)
{
	size_t i = 0;
	size_t limit = w->pos;
	while (off < limit && i < slen) {
		uint8_t c = w->buf[off];
		if ((c & 0xc0) == 0xc0) {
			if (off + 1 >= w->pos)
				return false;
			size_t target = (size_t)(c & 0x3f) << 8 | w->buf[off + 1];
			if (target >= off)
				return false;
			limit = off;
			off = target;
			continue;
		}
		if (c != suffix[i] || c > DNS_LABEL_MAX)
			return false;
		if (c == 0)
			return i + 1 == slen;
		if (off + 1 + c > w->pos || i + 1 + c > slen ||
		    !wire_bytes_equal_nocase(w->buf + off + 1, suffix + i + 1, c))
			return false;
		off += 1 + (size_t)c;
		i += 1 + (size_t)c;
	}
	return false;
}

/* Offset of the longest suffix of name (at least one label) found in the
 * table: *at gets the suffix's position in name, the return value the
 * offset in buf, or -1. An entry's expanded length (recorded with it)
 * says which single suffix it could equal, and most entries fail on
 * that or their first label at once, so each entry is compared in full
 * at most once: bounded by labels x entries + entries x 255 steps, even
 * for 127 one-byte labels that all look alike. */
static long writer_find_suffix(const struct wire_writer *w, const uint8_t *name, size_t len,
                               size_t *at)
{
	for (size_t pos = 0; name[pos] != 0; pos += 1 + (size_t)name[pos]) {
		for (unsigned i = 0; i < w->ncomp; i++) {
			size_t off = w->comp[i];
			if (w->comp_len[i] != len - pos || off + 1 >= w->pos || w->buf[off] != name[pos] ||
			    ascii_lower(w->buf[off + 1]) != ascii_lower(name[pos + 1]) ||
			    !writer_name_matches(w, off, name + pos, len - pos))
				continue;
			*at = pos;
			return (long)off;
		}
	}
	return -1;
}

/* Every label of the name of len bytes written at start begins a suffix
 * later names may point at; pointers hold 14 bits, so later offsets
 * cannot be targets. */
static void writer_add_suffixes(struct wire_writer *w, size_t start, const uint8_t *name,
                                size_t lit, size_t len)
{
	for (size_t i = 0; i < lit && name[i] != 0; i += 1 + (size_t)name[i]) {
		if (w->ncomp >= WIRE_COMP_MAX || start + i >= 0x4000)
			break;
		w->comp_len[w->ncomp] = (uint8_t)(len - i);   /* <= 255: a valid name */
		w->comp[w->ncomp++] = (uint16_t)(start + i);
	}
}

/* The question's suffixes, now that a name is compressed against them:
 * before any other entry, as if written then. */
static void writer_add_lazy(struct wire_writer *w)
{
	size_t off = w->lazy_off, len = w->lazy_len;
	w->lazy_len = 0;
	if (w->ncomp || off + len > w->pos)
		return;
	writer_add_suffixes(w, off, w->buf + off, len, len);
	w->nbase = w->ncomp;
}

void wire_write_question(struct wire_writer *w, const uint8_t *name, size_t len, uint16_t qtype,
                         uint16_t qclass)
{
	if (w->err)
		return;
	if (w->pos != DNS_HEADER_LEN || w->ncomp || len < 1 || len > DNS_NAME_MAX) {
		w->err = WIRE_EINVAL;
		return;
	}
	uint8_t *p = wire_writer_take(w, len + 4);
	if (!p)
		return;
	wire_copy(p, name, len);
	p[len] = (uint8_t)(qtype >> 8);
	p[len + 1] = (uint8_t)qtype;
	p[len + 2] = (uint8_t)(qclass >> 8);
	p[len + 3] = (uint8_t)qclass;
	if (len > 1) {
		w->last_off = w->lazy_off = DNS_HEADER_LEN;
		w->last_len = w->lazy_len = (uint16_t)len;
	}
}

void wire_write_name(struct wire_writer *w, const uint8_t *name, size_t len, bool compress)
{
	if (w->err)
		return;
	if (!wire_name_valid(name, len)) {
		w->err = WIRE_EINVAL;
		return;
	}
	size_t lit = len;     /* bytes written as labels */
	long ptr = -1;
	if (compress && len > 1 && w->last_off && w->last_len == len && w->last_off < w->pos &&
	    ((w->last_off + len <= w->pos && memcmp(w->buf + w->last_off, name, len) == 0) ||
	     writer_name_matches(w, w->last_off, name, len))) {
		/* The same name as the last one (checked byte for byte, since a
		 * rollback may have reused the space): point at it whole. */
		lit = 0;
		ptr = w->last_off;
	} else if (compress && (w->ncomp || w->lazy_len)) {
		if (w->lazy_len)
			writer_add_lazy(w);
		ptr = writer_find_suffix(w, name, len, &lit);
	}
	size_t start = w->pos;
	uint8_t *p = wire_writer_take(w, lit + (ptr >= 0 ? 2 : 0));
	if (!p)
		return;
	memcpy(p, name, lit);
	if (ptr >= 0) {
		p[lit] = (uint8_t)(0xc0 | ptr >> 8);
		p[lit + 1] = (uint8_t)ptr;
	}
	if (!compress)
		return;
	if (len > 1 && lit == 0 && ptr >= 0) {
		w->last_off = (uint16_t)ptr;          /* the whole name is already there */
		w->last_len = (uint16_t)len;
	} else if (len > 1 && start < 0x4000) {
		w->last_off = (uint16_t)start;
		w->last_len = (uint16_t)len;
	}
	writer_add_suffixes(w, start, name, lit, len);
}

struct wire_mark wire_mark(const struct wire_writer *w)
{
	struct wire_mark m = { .pos = w->pos, .ncomp = w->ncomp };
	return m;
}

void wire_rollback(struct wire_writer *w, struct wire_mark m)
{
	if (m.pos <= w->pos)
		w->pos = m.pos;
	if (m.ncomp <= w->ncomp)
		w->ncomp = m.ncomp > w->nbase ? m.ncomp : w->nbase;
	w->err = WIRE_OK;
}

/* ---- messages ---------------------------------------------------------- */

/* RFC 7873 5.2.2: a client cookie alone is 8 bytes, with a server cookie
 * 16 to 40; anything else is malformed. */
static bool cookie_len_valid(uint16_t len)
{
	return len == 8 || (len >= 16 && len <= 40);
}

/* The OPT RR's fixed fields and options (RFC 6891 6.1.2, 6.1.3). Options
 * must tile the rdata exactly. Only the first COOKIE and ECS are kept;
 * their content beyond the cookie length is for the caller to judge. */
static int parse_opt(const uint8_t *buf, const struct dns_rr *rr, struct dns_edns *e)
{
	e->present = true;
	e->udp_size = rr->rclass;
	e->ext_rcode = (uint8_t)(rr->ttl >> 24);
	e->version = (uint8_t)(rr->ttl >> 16);
	e->opt_flags = (uint16_t)rr->ttl;
	e->do_bit = (e->opt_flags & DNS_EDNS_DO) != 0;

	/* A reader over the message ending at the rdata keeps option offsets
	 * relative to the message. */
	struct wire_reader r;
	wire_reader_init(&r, buf, rr->rdoff + rr->rdlen);
	r.pos = rr->rdoff;
	while (wire_remaining(&r) > 0) {
		uint16_t code = wire_read_u16(&r);
		uint16_t olen = wire_read_u16(&r);
		size_t off = r.pos;
		wire_skip(&r, olen);
		if (r.err)
			return -1;
		switch (code) {
		case DNS_EDNS_COOKIE:
			if (!cookie_len_valid(olen))
				return -1;
			if (!e->cookie_off) {
				e->cookie_off = off;
				e->cookie_len = olen;
			}
			break;
		case DNS_EDNS_ECS:
			if (!e->ecs_off) {
				e->ecs_off = off;
				e->ecs_len = olen;
			}
			break;
		case DNS_EDNS_NSID:
			e->nsid = true;
			break;
		default:
			break;
		}
	}
	return 0;
}

/* The QTYPE of the first question, without a full parse: skip the name's
 * labels (a compression pointer ends it), bounded by len. */
uint16_t wire_peek_qtype(const uint8_t *req, size_t len)
{
	if (len < DNS_HEADER_LEN + 5 || req[4] != 0 || req[5] == 0)
		return 0;
	size_t i = DNS_HEADER_LEN;
	while (i < len) {
		uint8_t l = req[i];
		if (l == 0) {
			i++;
			break;
		}
		if ((l & 0xc0) == 0xc0) {
			i += 2;
			break;
		}
		i += 1u + l;
	}
	if (i + 2 > len)
		return 0;
	return (uint16_t)(req[i] << 8 | req[i + 1]);
}

enum wire_parse_result wire_parse_query(const uint8_t *buf, size_t len, struct dns_query *q)
{
	/* Everything but the question's name buffer (read only up to namelen;
	 * a quarter of the struct, cleared on every query for nothing). */
	memset(&q->hdr, 0, sizeof(q->hdr));
	q->q.namelen = 0;
	q->q.qtype = 0;
	q->q.qclass = 0;
	memset(&q->edns, 0, sizeof(q->edns));
	q->question_end = 0;
	q->opt_off = 0;
	q->tsig_off = 0;
	_Static_assert(offsetof(struct dns_query, tsig_off) + sizeof(size_t) ==
	               sizeof(struct dns_query), "a field of dns_query is not cleared here");
	if (len < DNS_HEADER_LEN)
		return WIRE_PARSE_DROP;
	struct wire_reader r;
	wire_reader_init(&r, buf, len);
	wire_read_header(&r, &q->hdr);
	if (q->hdr.flags & DNS_FLAG_QR)
		return WIRE_PARSE_DROP;
	if (q->hdr.qdcount > 1)
		return WIRE_PARSE_FORMERR;
	if (q->hdr.qdcount == 1)
		wire_read_question(&r, &q->q);
	if (r.err)
		return WIRE_PARSE_FORMERR;
	q->question_end = r.pos;

	/* OPT and TSIG belong only in the additional section (RFC 6891 6.1.1,
	 * RFC 8945 5.1). */
	struct dns_rr rr;
	unsigned skip = (unsigned)q->hdr.ancount + q->hdr.nscount;
	for (unsigned i = 0; i < skip; i++) {
		wire_read_rr(&r, &rr);
		if (r.err || rr.type == DNS_TYPE_OPT || rr.type == DNS_TYPE_TSIG)
			return WIRE_PARSE_FORMERR;
	}
	for (unsigned i = 0; i < q->hdr.arcount; i++) {
		size_t off = r.pos;
		wire_read_rr(&r, &rr);
		if (r.err)
			return WIRE_PARSE_FORMERR;
		if (rr.type == DNS_TYPE_OPT) {
			if (q->opt_off || rr.namelen != 1)
				return WIRE_PARSE_FORMERR;
			q->opt_off = off;
			if (parse_opt(buf, &rr, &q->edns) != 0)
				return WIRE_PARSE_FORMERR;
		} else if (rr.type == DNS_TYPE_TSIG) {
			if (i + 1 != q->hdr.arcount)
				return WIRE_PARSE_FORMERR;
			q->tsig_off = off;
		}
	}
	if (r.pos != len)
		return WIRE_PARSE_FORMERR;
	return WIRE_PARSE_OK;
}

/* wire.h -- DNS wire format: a bounds-checked reader and writer, names and
 * compression, query parsing with EDNS0. Never allocates; never reads or
 * writes outside the buffer it was given. */
#ifndef MESHDNS_WIRE_H
#define MESHDNS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum {
	DNS_HEADER_LEN = 12,
	DNS_NAME_MAX = 255,  /* uncompressed wire length, root label included */
	DNS_LABEL_MAX = 63,
	DNS_UDP_MIN = 512,
	/* The EDNS UDP payload size DNS Flag Day 2020 settled on: the
	 * default of dnsd's answers and of meshdig's queries. */
	DNS_UDP_DEFAULT = 1232,
	DNS_MSG_MAX = 65535,
};

enum dns_type {
	DNS_TYPE_A = 1,
	DNS_TYPE_NS = 2,
	DNS_TYPE_CNAME = 5,
	DNS_TYPE_SOA = 6,
	DNS_TYPE_PTR = 12,
	DNS_TYPE_HINFO = 13,
	DNS_TYPE_MX = 15,
	DNS_TYPE_TXT = 16,
	DNS_TYPE_AAAA = 28,
	DNS_TYPE_SRV = 33,
	DNS_TYPE_OPT = 41,
	DNS_TYPE_DS = 43,
	DNS_TYPE_RRSIG = 46,
	DNS_TYPE_TSIG = 250,
	DNS_TYPE_IXFR = 251,
	DNS_TYPE_AXFR = 252,
	DNS_TYPE_MAILB = 253,
	DNS_TYPE_MAILA = 254,
	DNS_TYPE_ANY = 255,
};

enum dns_class {
	DNS_CLASS_IN = 1,
	DNS_CLASS_CH = 3,
	DNS_CLASS_NONE = 254,
	DNS_CLASS_ANY = 255,
};

enum dns_opcode {
	DNS_OPCODE_QUERY = 0,
	DNS_OPCODE_IQUERY = 1,
	DNS_OPCODE_STATUS = 2,
	DNS_OPCODE_NOTIFY = 4,
	DNS_OPCODE_UPDATE = 5,
};

enum dns_rcode {
	DNS_RCODE_NOERROR = 0,
	DNS_RCODE_FORMERR = 1,
	DNS_RCODE_SERVFAIL = 2,
	DNS_RCODE_NXDOMAIN = 3,
	DNS_RCODE_NOTIMP = 4,
	DNS_RCODE_REFUSED = 5,
	DNS_RCODE_NOTAUTH = 9,
	DNS_RCODE_BADVERS = 16, /* extended: needs OPT, upper 8 bits in OPT TTL */
	DNS_RCODE_BADCOOKIE = 23, /* extended (RFC 7873 8) */
};

enum dns_edns_option {
	DNS_EDNS_NSID = 3,
	DNS_EDNS_ECS = 8,
	DNS_EDNS_COOKIE = 10,
	DNS_EDNS_PADDING = 12,
};

/* Bits of the 16-bit flags word of the header. */
#define DNS_FLAG_QR 0x8000u
#define DNS_FLAG_AA 0x0400u
#define DNS_FLAG_TC 0x0200u
#define DNS_FLAG_RD 0x0100u
#define DNS_FLAG_RA 0x0080u
#define DNS_FLAG_Z  0x0040u
#define DNS_FLAG_AD 0x0020u
#define DNS_FLAG_CD 0x0010u
#define DNS_OPCODE(flags) (((flags) >> 11) & 0xfu)
#define DNS_RCODE(flags)  ((flags) & 0xfu)
/* DO bit inside the OPT record's TTL field (low 16 bits). */
#define DNS_EDNS_DO 0x8000u

/* Sticky error codes of a cursor (positive; 0 is success). */
enum wire_err {
	WIRE_OK = 0,
	WIRE_ETRUNC,   /* read past the end / write past the capacity */
	WIRE_EBADNAME, /* label > 63, name > 255, reserved label type */
	WIRE_EPTR,     /* compression pointer: forward, looping, or to a pointer */
	WIRE_EINVAL,   /* anything else malformed */
};

struct dns_header {
	uint16_t id;
	uint16_t flags;
	uint16_t qdcount;
	uint16_t ancount;
	uint16_t nscount;
	uint16_t arcount;
};

/* ---- reader ------------------------------------------------------------ */

/* A read cursor. Once err is set every further read returns 0 and leaves
 * pos alone, so callers check err once at the end (Knot wire_ctx). */
struct wire_reader {
	const uint8_t *buf;
	size_t len;
	size_t pos;
	int err;
};

void wire_reader_init(struct wire_reader *r, const uint8_t *buf, size_t len);

/* The small reads are inline: a request's parse is mostly these. */
static inline size_t wire_remaining(const struct wire_reader *r)
{
	return r->err || r->pos > r->len ? 0 : r->len - r->pos;
}

/* Claims n bytes at the cursor: their start, or NULL with ETRUNC set. All
 * reads go through here, so nothing else compares positions with len. */
static inline const uint8_t *wire_reader_take(struct wire_reader *r, size_t n)
{
	if (r->err)
		return NULL;
	if (n > wire_remaining(r)) {
		r->err = WIRE_ETRUNC;
		return NULL;
	}
	const uint8_t *p = r->buf + r->pos;
	r->pos += n;
	return p;
}

static inline uint8_t wire_read_u8(struct wire_reader *r)
{
	const uint8_t *p = wire_reader_take(r, 1);
	return p ? p[0] : 0;
}

static inline uint16_t wire_read_u16(struct wire_reader *r)
{
	const uint8_t *p = wire_reader_take(r, 2);
	return p ? (uint16_t)(p[0] << 8 | p[1]) : 0;
}

static inline uint32_t wire_read_u32(struct wire_reader *r)
{
	const uint8_t *p = wire_reader_take(r, 4);
	return p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3] : 0;
}

void wire_read_bytes(struct wire_reader *r, void *dst, size_t n);
/* Returns a pointer to the next n bytes inside buf and advances, or NULL
 * (and sets err) if fewer remain. */
const uint8_t *wire_read_ptr(struct wire_reader *r, size_t n);
void wire_skip(struct wire_reader *r, size_t n);
void wire_read_header(struct wire_reader *r, struct dns_header *h);

/* Reads a possibly compressed name at the cursor and expands it into out
 * (uncompressed wire form, root label included, case kept). out may be NULL
 * to only validate and skip. The cursor moves past the name as stored (past
 * the first pointer). Pointers must point strictly before the pointer
 * itself and before every earlier jump target, and never at another
 * pointer; labels > 63, names > 255 and label types 01/10 are rejected.
 * Returns the expanded length (>= 1), or 0 with err set. */
size_t wire_read_name(struct wire_reader *r, uint8_t out[DNS_NAME_MAX]);

/* ---- names (uncompressed wire form) ------------------------------------- */

/* Text to wire: "a.b.c", "a.b.c." and "." are accepted; "\." and "\DDD"
 * escapes as in RFC 1035 master files; empty labels ("a..b") rejected.
 * Returns 0, or -WIRE_EBADNAME. The name is always made absolute. */
int wire_name_from_text(const char *text, uint8_t out[DNS_NAME_MAX], size_t *outlen);
/* Wire to text with a trailing dot ("." for the root), escaping '.', '\\',
 * '"', ';', '(', ')', '@', '$' and bytes outside 0x21..0x7e as \DDD.
 * Returns the text length (NUL not counted), or -1 if outcap is too small or
 * the name is malformed. */
int wire_name_to_text(const uint8_t *name, size_t namelen, char *out, size_t outcap);
/* Validates an uncompressed wire name of exactly len bytes. */
bool wire_name_valid(const uint8_t *name, size_t len);
void wire_name_lower(uint8_t *name, size_t len);
static inline uint8_t wire_lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + ('a' - 'A')) : c;
}

/* Names nearly always match in case too: whole words are compared first
 * (the last one overlapping the one before it), and only if they differ
 * is the name walked byte by byte with case folded. */
static inline bool wire_bytes_equal_nocase(const uint8_t *a, const uint8_t *b, size_t n)
{
	if (n >= 8) {
		uint64_t x, y;
		size_t i = 0;
		for (; i + 8 <= n; i += 8) {
			memcpy(&x, a + i, 8);
			memcpy(&y, b + i, 8);
			if (x != y)
				goto fold;
		}
		if (i < n) {
			memcpy(&x, a + n - 8, 8);
			memcpy(&y, b + n - 8, 8);
			if (x != y)
				goto fold;
		}
		return true;
	}
	if (n >= 4) {
		uint32_t x0, y0, x1, y1;
		memcpy(&x0, a, 4);
		memcpy(&y0, b, 4);
		memcpy(&x1, a + n - 4, 4);
		memcpy(&y1, b + n - 4, 4);
		if (x0 == y0 && x1 == y1)
			return true;
	}
fold:
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i] && wire_lower(a[i]) != wire_lower(b[i]))
			return false;
	return true;
}

static inline bool wire_name_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return alen == blen && wire_bytes_equal_nocase(a, b, alen);
}

/* True if name equals parent or lies below it (case-insensitive). */
bool wire_name_is_subdomain(const uint8_t *name, size_t len,
                            const uint8_t *parent, size_t plen);
/* Number of labels, root not counted ("a.b." -> 2, "." -> 0). */
unsigned wire_name_labels(const uint8_t *name, size_t len);
/* Byte offset of the name with its first `skip` labels removed. */
size_t wire_name_skip_labels(const uint8_t *name, size_t len, unsigned skip);

/* ---- writer ------------------------------------------------------------- */

enum { WIRE_COMP_MAX = 64 };

/* A write cursor with a compression table of the offsets of names (and
 * their suffixes) written so far. Sticky err as the reader. */
struct wire_writer {
	uint8_t *buf;
	size_t cap;
	size_t pos;
	int err;
	unsigned ncomp;
	uint16_t comp[WIRE_COMP_MAX];
	uint8_t comp_len[WIRE_COMP_MAX];  /* the expanded length of each */
	/* The last name written with compression, whole: answers repeat the
	 * owner name RR after RR, and this finds it without a table scan. */
	uint16_t last_off;            /* 0: none (offset 0 is the header) */
	uint16_t last_len;
	/* The question's name (wire_write_question) goes into the table only
	 * when a name is first compressed against the table: most answers
	 * point at the question whole (last_off) or not at all. Its entries
	 * are comp[0..nbase), which a rollback keeps. */
	uint16_t lazy_off;            /* 0: nothing pending */
	uint16_t lazy_len;
	unsigned nbase;
};

/* A position to roll back to (a whole RRset that did not fit). */
struct wire_mark {
	size_t pos;
	unsigned ncomp;
};

void wire_writer_init(struct wire_writer *w, uint8_t *buf, size_t cap);

/* Copies len bytes; the usual name lengths (8 to 32) in two moves that
 * may overlap, never reading or writing outside [0, len) (a call to
 * memcpy costs more than the copy there). */
static inline void wire_copy(uint8_t *dst, const uint8_t *src, size_t len)
{
	if (len >= 8 && len <= 16) {
		memcpy(dst, src, 8);
		memcpy(dst + len - 8, src + len - 8, 8);
	} else if (len > 16 && len <= 32) {
		memcpy(dst, src, 16);
		memcpy(dst + len - 16, src + len - 16, 16);
	} else if (len) {
		memcpy(dst, src, len);
	}
}

/* The small writes are inline: an answer is mostly these. */
/* Claims n bytes: their start, or NULL with ETRUNC set and nothing
 * written, so a failed write never leaves half a field behind. */
static inline uint8_t *wire_writer_take(struct wire_writer *w, size_t n)
{
	if (w->err)
		return NULL;
	if (w->pos > w->cap || n > w->cap - w->pos) {
		w->err = WIRE_ETRUNC;
		return NULL;
	}
	uint8_t *p = w->buf + w->pos;
	w->pos += n;
	return p;
}

static inline void wire_write_u8(struct wire_writer *w, uint8_t v)
{
	uint8_t *p = wire_writer_take(w, 1);
	if (p)
		p[0] = v;
}

static inline void wire_write_u16(struct wire_writer *w, uint16_t v)
{
	uint8_t *p = wire_writer_take(w, 2);
	if (p) {
		p[0] = (uint8_t)(v >> 8);
		p[1] = (uint8_t)v;
	}
}

static inline void wire_write_u32(struct wire_writer *w, uint32_t v)
{
	uint8_t *p = wire_writer_take(w, 4);
	if (p) {
		p[0] = (uint8_t)(v >> 24);
		p[1] = (uint8_t)(v >> 16);
		p[2] = (uint8_t)(v >> 8);
		p[3] = (uint8_t)v;
	}
}

static inline void wire_write_bytes(struct wire_writer *w, const void *src, size_t n)
{
	uint8_t *p = wire_writer_take(w, n);
	if (p && n)
		memcpy(p, src, n);
}

/* Takes n bytes for the caller to fill (one bounds check for a record
 * written in one piece); NULL, with err set, if they do not fit. */
static inline uint8_t *wire_write_reserve(struct wire_writer *w, size_t n)
{
	return wire_writer_take(w, n);
}

/* An RR's fixed fields after its owner (type, class, TTL, RDLENGTH) into
 * 10 bytes the caller reserved. */
static inline void wire_put_rr_head(uint8_t *p, uint16_t type, uint16_t rclass, uint32_t ttl,
                                    uint16_t rdlen)
{
	p[0] = (uint8_t)(type >> 8);
	p[1] = (uint8_t)type;
	p[2] = (uint8_t)(rclass >> 8);
	p[3] = (uint8_t)rclass;
	p[4] = (uint8_t)(ttl >> 24);
	p[5] = (uint8_t)(ttl >> 16);
	p[6] = (uint8_t)(ttl >> 8);
	p[7] = (uint8_t)ttl;
	p[8] = (uint8_t)(rdlen >> 8);
	p[9] = (uint8_t)rdlen;
}

/* The same, written at the cursor. */
static inline void wire_write_rr_head(struct wire_writer *w, uint16_t type, uint16_t rclass,
                                      uint32_t ttl, uint16_t rdlen)
{
	uint8_t *p = wire_writer_take(w, 10);
	if (p)
		wire_put_rr_head(p, type, rclass, ttl, rdlen);
}
/* A compression pointer to a name already written at off (< pos and
 * < 0x4000; else err is WIRE_EINVAL). */
void wire_write_ptr(struct wire_writer *w, size_t off);
/* Overwrites two bytes at off < pos (for counts and RDLENGTH). */
void wire_patch_u16(struct wire_writer *w, size_t off, uint16_t v);
static inline void wire_put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void wire_write_header(struct wire_writer *w, const struct dns_header *h)
{
	uint8_t *p = wire_writer_take(w, DNS_HEADER_LEN);
	if (!p)
		return;
	wire_put_u16(p, h->id);
	wire_put_u16(p + 2, h->flags);
	wire_put_u16(p + 4, h->qdcount);
	wire_put_u16(p + 6, h->ancount);
	wire_put_u16(p + 8, h->nscount);
	wire_put_u16(p + 10, h->arcount);
}
/* The question section's one entry after the header (the writer's first
 * name): name, a valid uncompressed name as wire_parse_query leaves it,
 * then type and class, in one piece. The name is the whole-name target
 * of later compressed writes. */
void wire_write_question(struct wire_writer *w, const uint8_t *name, size_t len, uint16_t qtype,
                         uint16_t qclass);
/* A finished message's flags and its answer, authority and additional
 * counts into its header (bytes 2-3 and 6-11), at once. */
static inline void wire_patch_header(struct wire_writer *w, uint16_t flags, uint16_t an,
                                     uint16_t ns, uint16_t ar)
{
	if (w->err || w->pos < 12)
		return;
	uint8_t *p = w->buf;
	p[2] = (uint8_t)(flags >> 8);
	p[3] = (uint8_t)flags;
	p[6] = (uint8_t)(an >> 8);
	p[7] = (uint8_t)an;
	p[8] = (uint8_t)(ns >> 8);
	p[9] = (uint8_t)ns;
	p[10] = (uint8_t)(ar >> 8);
	p[11] = (uint8_t)ar;
}
/* Writes an uncompressed wire name (case as given). With compress, the
 * longest suffix already in the table is replaced by a pointer, and the
 * new labels are added to the table (while it has room, offsets < 0x4000). */
void wire_write_name(struct wire_writer *w, const uint8_t *name, size_t len, bool compress);
struct wire_mark wire_mark(const struct wire_writer *w);
/* Rolls back to the mark: clears err, drops later compression entries. */
void wire_rollback(struct wire_writer *w, struct wire_mark m);

/* ---- messages ----------------------------------------------------------- */

struct dns_question {
	uint8_t name[DNS_NAME_MAX];
	size_t namelen;
	uint16_t qtype;
	uint16_t qclass;
};

/* One RR's header as read; rdata stays in the buffer at rdoff. */
struct dns_rr {
	uint8_t name[DNS_NAME_MAX];
	size_t namelen;
	uint16_t type;
	uint16_t rclass;
	uint32_t ttl;
	uint16_t rdlen;
	size_t rdoff;
};

void wire_read_question(struct wire_reader *r, struct dns_question *q);

/* The one reply with no records: req's id and opcode, QR, rcode, the flags
 * in set (AA, RA), and RD and CD echoed for QUERY only (RFC 1035 4.1.1
 * and RFC 4035 3.2 define them for queries; ISC's genreport expects an
 * answer to any other opcode to carry none of RD, CD, AD, RA, AA unless
 * set says so); q, if not NULL, as its question. Every short answer of
 * dnsd (FORMERR, NOTIMP, REFUSED, NOTAUTH, SERVFAIL of the forwarder, a
 * refused transfer or update) is made here. The length, or -1 if cap is
 * too small. */
int wire_reply_short(const struct dns_header *req, const struct dns_question *q, unsigned rcode,
                     uint16_t set, uint8_t *out, size_t cap);
/* Reads an RR header and skips its rdata (bounds-checked). */
void wire_read_rr(struct wire_reader *r, struct dns_rr *rr);

struct dns_edns {
	bool present;
	uint8_t version;
	uint8_t ext_rcode;
	bool do_bit;
	uint16_t udp_size;   /* as sent; callers clamp to >= 512 */
	uint16_t opt_flags;  /* the whole low 16 bits of the OPT TTL */
	/* Options the server may act on (offsets into the message, 0 = none). */
	size_t cookie_off;
	uint16_t cookie_len;
	size_t ecs_off;
	uint16_t ecs_len;
	bool nsid;
};

struct dns_query {
	struct dns_header hdr;
	struct dns_question q;   /* valid when hdr.qdcount == 1 */
	struct dns_edns edns;
	size_t question_end;     /* offset just after the question */
	size_t opt_off;          /* offset of the OPT RR, 0 if none */
	size_t tsig_off;         /* offset of a TSIG RR (last in additional), 0 if none */
};

enum wire_parse_result {
	WIRE_PARSE_OK = 0,
	WIRE_PARSE_DROP = -1,    /* too short for a header, or QR set: answer nothing */
	WIRE_PARSE_FORMERR = 1,  /* header readable: answer FORMERR */
};

/* Parses a request: header, at most one question (qdcount > 1 is FORMERR;
 * qdcount 0 is allowed and left to the caller), the answer/authority
 * records skipped, the additional section scanned for OPT (RFC 6891:
 * a second OPT, an OPT with a non-root owner or outside the additional
 * section, or malformed options are FORMERR; unknown options ignored) and
 * TSIG. Trailing bytes after the last record are FORMERR. The header is
 * filled in even on FORMERR when it could be read. */
enum wire_parse_result wire_parse_query(const uint8_t *buf, size_t len, struct dns_query *q);
/* The QTYPE of a request's only question without a full parse (for
 * counting and routing before the real parse), or 0 if there is none. */
uint16_t wire_peek_qtype(const uint8_t *req, size_t len);

#endif

/* meshdig_reply.c -- reading the reply: the parse that checks it and finds
 * its first problem, rdata as text, and the OPT record's options. How the
 * reply is shown is the printers' business. */
#include "meshdig.h"
#include "dns/rdata.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

const char *const dig_section_title[SEC_COUNT] = { "ANSWER", "AUTHORITY", "ADDITIONAL" };

/* The text dig_reply_rdata hands out. */
static char rdtext[RDATA_TEXT_MAX];

int dig_name_text(const uint8_t *name, size_t len, char out[NAME_TEXT_MAX])
{
	int n = wire_name_to_text(name, len, out, NAME_TEXT_MAX);
	if (n < 0)
		snprintf(out, NAME_TEXT_MAX, "<bad name>");
	return n;
}

__attribute__((format(printf, 2, 3)))
static void reply_fail(struct reply *rp, const char *fmt, ...)
{
	if (rp->error)
		return;   /* keep the first error */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rp->errmsg, sizeof(rp->errmsg), fmt, ap);
	va_end(ap);
	rp->error = true;
}

static const char *wire_err_text(int err)
{
	switch (err) {
	case WIRE_ETRUNC: return "message ends early";
	case WIRE_EBADNAME: return "bad name";
	case WIRE_EPTR: return "bad compression pointer";
	default: return "malformed";
	}
}

/* Types rdata.c prints in typed form: anything else printed as "\#" for
 * them means the rdata does not fit the type. */
static bool typed_rdata(uint16_t type)
{
	switch (type) {
	case DNS_TYPE_A: case DNS_TYPE_AAAA: case DNS_TYPE_NS: case DNS_TYPE_CNAME:
	case DNS_TYPE_PTR: case DNS_TYPE_MX: case DNS_TYPE_TXT: case DNS_TYPE_SRV:
	case DNS_TYPE_SOA:
		return true;
	default:
		return false;
	}
}

/* Formats one RR's rdata into rdtext. Returns false if the rdata is
 * malformed for a type we know (it is then shown in RFC 3597 form). */
static bool format_rdata(const struct reply *rp, const struct dns_rr *rr)
{
	int n = rdata_to_text(rr->type, rp->msg, rp->len, rr->rdoff, rr->rdlen, rdtext,
	                      sizeof(rdtext));
	if (n < 0) {
		snprintf(rdtext, sizeof(rdtext), "<rdata not printable>");
		return false;
	}
	/* Dynamic update uses empty rdata with class NONE/ANY (RFC 2136). */
	if (rr->rdlen == 0 && (rr->rclass == DNS_CLASS_ANY || rr->rclass == DNS_CLASS_NONE))
		return true;
	return !(typed_rdata(rr->type) && strncmp(rdtext, "\\#", 2) == 0);
}

/* RFC 6891 6.1.2: options must tile the rdata exactly. */
static bool opt_options_valid(const struct reply *rp, const struct dns_rr *rr)
{
	struct wire_reader r;
	wire_reader_init(&r, rp->msg, rr->rdoff + rr->rdlen);
	r.pos = rr->rdoff;
	while (wire_remaining(&r) > 0) {
		wire_read_u16(&r);
		uint16_t olen = wire_read_u16(&r);
		wire_skip(&r, olen);
	}
	return !r.err;
}

bool dig_reply_rdata(const struct reply *rp, const struct dns_rr *rr, const char **text)
{
	bool fits = format_rdata(rp, rr);
	*text = rdtext;
	return fits;
}

/* Parses as much of the reply as is well-formed; the first problem goes
 * into rp->errmsg. Counts are clamped by what the message could hold
 * (5 bytes per question, 11 per RR), so a lying header cannot make us
 * allocate much. */
void dig_reply_parse(struct reply *rp, const uint8_t *msg, size_t len)
{
	memset(rp, 0, sizeof(*rp));
	rp->msg = msg;
	rp->len = len;
	rp->opt = -1;

	struct wire_reader r;
	wire_reader_init(&r, msg, len);
	wire_read_header(&r, &rp->hdr);
	if (r.err) {
		reply_fail(rp, "reply of %zu bytes is shorter than a DNS header", len);
		return;
	}
	rp->hdr_ok = true;
	rp->rcode = DNS_RCODE(rp->hdr.flags);

	size_t room = len - DNS_HEADER_LEN;
	size_t maxq = rp->hdr.qdcount < room / 5 + 1 ? rp->hdr.qdcount : room / 5 + 1;
	rp->q = calloc(maxq ? maxq : 1, sizeof(*rp->q));
	size_t total = (size_t)rp->hdr.ancount + rp->hdr.nscount + rp->hdr.arcount;
	size_t maxrr = total < room / 11 + 1 ? total : room / 11 + 1;
	rp->rr = calloc(maxrr ? maxrr : 1, sizeof(*rp->rr));
	if (!rp->q || !rp->rr) {
		fprintf(stderr, "%s: out of memory\n", dig_progname);
		exit(EXIT_MALFORMED);
	}

	for (unsigned i = 0; i < rp->hdr.qdcount; i++) {
		size_t off = r.pos;
		if (rp->nq >= maxq) {
			reply_fail(rp, "QDCOUNT %u does not fit the message", rp->hdr.qdcount);
			return;
		}
		wire_read_question(&r, &rp->q[rp->nq]);
		if (r.err) {
			reply_fail(rp, "question %u at offset %zu: %s", i + 1, off,
			           wire_err_text(r.err));
			return;
		}
		rp->nq++;
	}

	const uint16_t counts[SEC_COUNT] = { rp->hdr.ancount, rp->hdr.nscount, rp->hdr.arcount };
	for (int s = 0; s < SEC_COUNT; s++) {
		for (unsigned i = 0; i < counts[s]; i++) {
			size_t off = r.pos;
			if (rp->nrr >= maxrr) {
				reply_fail(rp, "%s count %u does not fit the message", dig_section_title[s],
				           counts[s]);
				return;
			}
			struct rr_entry *e = &rp->rr[rp->nrr];
			wire_read_rr(&r, &e->rr);
			if (r.err) {
				reply_fail(rp, "%s record %u at offset %zu: %s", dig_section_title[s], i + 1,
				           off, wire_err_text(r.err));
				return;
			}
			e->sec = (enum section)s;
			if (e->rr.type == DNS_TYPE_OPT) {
				if (s != SEC_ADDITIONAL || rp->opt >= 0 || e->rr.namelen != 1 ||
				    !opt_options_valid(rp, &e->rr)) {
					reply_fail(rp, "bad OPT record at offset %zu (%s)", off,
					           s != SEC_ADDITIONAL ? "outside the additional section"
					           : rp->opt >= 0 ? "a second OPT"
					           : e->rr.namelen != 1 ? "owner is not the root"
					           : "options do not fit its RDATA");
					return;
				}
				rp->opt = (int)rp->nrr;
				rp->rcode |= (unsigned)(e->rr.ttl >> 24) << 4;
			} else if (!format_rdata(rp, &e->rr)) {
				char owner[NAME_TEXT_MAX];
				dig_name_text(e->rr.name, e->rr.namelen, owner);
				reply_fail(rp, "%s record %u (%s %s): RDATA of %u bytes does not fit the type",
				           dig_section_title[s], i + 1, owner, rdata_type_name(e->rr.type),
				           (unsigned)e->rr.rdlen);
			}
			rp->nrr++;
		}
	}
	if (r.pos != len)
		reply_fail(rp, "%zu bytes of trailing data after the last record", len - r.pos);
}

void dig_reply_free(struct reply *rp)
{
	free(rp->q);
	free(rp->rr);
	rp->q = NULL;
	rp->rr = NULL;
}

unsigned dig_reply_count(const struct reply *rp, enum section s, bool with_opt)
{
	unsigned n = 0;
	for (unsigned i = 0; i < rp->nrr; i++)
		if (rp->rr[i].sec == s && (with_opt || rp->rr[i].rr.type != DNS_TYPE_OPT))
			n++;
	return n;
}

bool dig_opt_next(struct wire_reader *r, struct edns_opt *opt)
{
	if (wire_remaining(r) == 0)
		return false;
	opt->code = wire_read_u16(r);
	opt->len = wire_read_u16(r);
	opt->data = wire_read_ptr(r, opt->len);
	return !r->err;
}

void dig_opt_reader(const struct reply *rp, struct wire_reader *r)
{
	const struct dns_rr *rr = &rp->rr[rp->opt].rr;
	wire_reader_init(r, rp->msg, rr->rdoff + rr->rdlen);
	r->pos = rr->rdoff;
}

const char *dig_opt_name(uint16_t code)
{
	switch (code) {
	case DNS_EDNS_NSID: return "NSID";
	case DNS_EDNS_ECS: return "CLIENT-SUBNET";
	case 9: return "EXPIRE";
	case DNS_EDNS_COOKIE: return "COOKIE";
	case 11: return "TCP-KEEPALIVE";
	case DNS_EDNS_PADDING: return "PADDING";
	case 15: return "EDE";
	default: return NULL;
	}
}

const char *dig_ede_name(unsigned code)
{
	static const char *const names[] = {
		"Other", "Unsupported DNSKEY Algorithm", "Unsupported DS Digest Type",
		"Stale Answer", "Forged Answer", "DNSSEC Indeterminate", "DNSSEC Bogus",
		"Signature Expired", "Signature Not Yet Valid", "DNSKEY Missing",
		"RRSIGs Missing", "No Zone Key Bit Set", "NSEC Missing", "Cached Error",
		"Not Ready", "Blocked", "Censored", "Filtered", "Prohibited",
		"Stale NXDOMAIN Answer", "Not Authoritative", "Not Supported",
		"No Reachable Authority", "Network Error", "Invalid Data",
	};
	return code < sizeof(names) / sizeof(names[0]) ? names[code] : NULL;
}

const char *dig_cookie_status(const struct edns_opt *opt, const uint8_t *sent, size_t sent_len)
{
	if (!sent_len)
		return "unsolicited";
	if (opt->len < COOKIE_CLIENT_LEN || memcmp(opt->data, sent, COOKIE_CLIENT_LEN) != 0)
		return "mismatch";
	return opt->len > COOKIE_CLIENT_LEN ? "good" : "echoed";
}

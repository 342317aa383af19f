/* meshdig_json.c -- +json: the reply as one JSON object with RFC 8427
 * member names, built with jansson. Not the text printers. */
#include "meshdig.h"
#include "dns/rdata.h"

#include <jansson.h>
#include <sodium.h>

#include <stdio.h>
#include <stdlib.h>

static const char *const section_json[SEC_COUNT] = {
	"answerRRs", "authorityRRs", "additionalRRs"
};

/* A tree per reply (jansson), dumped in the order it was built with two
 * spaces of indentation. */
static void jset(json_t *o, const char *key, json_t *v)
{
	json_object_set_new(o, key, v);
}

static json_t *jbytes(const uint8_t *p, size_t n);

/* Our text is ASCII (names and rdata escape other bytes as \\DDD); any
 * other string goes byte by byte (jbytes). */
static void jset_str(json_t *o, const char *key, const char *s)
{
	json_t *v = json_string(s);
	jset(o, key, v ? v : jbytes((const uint8_t *)s, strlen(s)));
}

static void jset_uint(json_t *o, const char *key, unsigned long v)
{
	jset(o, key, json_integer((json_int_t)v));
}

/* Bytes as a string: each byte is the code point of its value (ASCII as
 * is, 0x80-0xff as U+0080-U+00FF), so any bytes make valid UTF-8. */
static json_t *jbytes(const uint8_t *p, size_t n)
{
	char *u = malloc(2 * n + 1);
	size_t k = 0;
	if (!u)
		return json_null();
	for (size_t i = 0; i < n; i++) {
		if (p[i] < 0x80) {
			u[k++] = (char)p[i];
		} else {
			u[k++] = (char)(0xc0 | p[i] >> 6);
			u[k++] = (char)(0x80 | (p[i] & 0x3f));
		}
	}
	json_t *s = json_stringn(u, k);
	free(u);
	return s ? s : json_null();
}

/* Printable ASCII as is, the rest as '.', as the text form shows NSID. */
static json_t *jprintable(const uint8_t *p, size_t n)
{
	char *t = malloc(n + 1);
	if (!t)
		return json_null();
	for (size_t i = 0; i < n; i++)
		t[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '.';
	json_t *s = json_stringn(t, n);
	free(t);
	return s;
}

static json_t *jhex(const uint8_t *p, size_t n)
{
	char *h = malloc(2 * n + 1);
	if (!h)
		return json_null();
	json_t *s = json_stringn(sodium_bin2hex(h, 2 * n + 1, p, n), 2 * n);
	free(h);
	return s;
}

static json_t *json_rr(const struct reply *rp, const struct dns_rr *rr)
{
	char owner[NAME_TEXT_MAX];
	dig_name_text(rr->name, rr->namelen, owner);
	json_t *o = json_object();
	jset_str(o, "NAME", owner);
	jset_uint(o, "TYPE", rr->type);
	jset_str(o, "TYPEname", rdata_type_name(rr->type));
	jset_uint(o, "CLASS", rr->rclass);
	if (rr->type != DNS_TYPE_OPT)
		jset_str(o, "CLASSname", rdata_class_name(rr->rclass));
	jset_uint(o, "TTL", rr->ttl);
	jset_uint(o, "RDLENGTH", rr->rdlen);
	/* RFC 8427 2.3: "rdata" + type name holds the presentation form;
	 * RDATAHEX for types we cannot print (and malformed rdata). */
	const char *rdtext = "";
	bool typed = rr->type != DNS_TYPE_OPT && dig_reply_rdata(rp, rr, &rdtext) &&
	             strncmp(rdtext, "\\#", 2) != 0;
	if (typed) {
		char key[32];
		snprintf(key, sizeof(key), "rdata%s", rdata_type_name(rr->type));
		jset_str(o, key, rdtext);
	} else {
		jset(o, "RDATAHEX", jhex(rp->msg + rr->rdoff, rr->rdlen));
	}
	return o;
}

static json_t *json_edns(const struct reply *rp, const struct context *cx)
{
	const struct dns_rr *rr = &rp->rr[rp->opt].rr;
	unsigned flags = rr->ttl & 0xffff;
	json_t *e = json_object(), *opts = json_array();
	jset_uint(e, "version", (rr->ttl >> 16) & 0xff);
	jset_uint(e, "udpSize", rr->rclass);
	jset(e, "DO", json_boolean(flags & DNS_EDNS_DO));
	jset_uint(e, "flags", flags);
	jset_uint(e, "extendedRCODE", rp->rcode);
	struct wire_reader r;
	struct edns_opt opt;
	dig_opt_reader(rp, &r);
	while (dig_opt_next(&r, &opt)) {
		json_t *o = json_object();
		jset_uint(o, "CODE", opt.code);
		if (dig_opt_name(opt.code))
			jset_str(o, "NAME", dig_opt_name(opt.code));
		jset(o, "HEX", jhex(opt.data, opt.len));
		if (opt.code == DNS_EDNS_NSID) {
			jset(o, "text", jprintable(opt.data, opt.len));
		} else if (opt.code == DNS_EDNS_COOKIE) {
			jset_str(o, "status", dig_cookie_status(&opt, cx->cookie, cx->cookie_len));
		} else if (opt.code == 15 && opt.len >= 2) {
			unsigned code = (unsigned)opt.data[0] << 8 | opt.data[1];
			jset_uint(o, "infoCode", code);
			if (dig_ede_name(code))
				jset_str(o, "purpose", dig_ede_name(code));
			jset(o, "extraText", jbytes(opt.data + 2, opt.len - 2u));
		}
		json_array_append_new(opts, o);
	}
	jset(e, "options", opts);
	return e;
}

void dig_print_json(const struct reply *rp, const struct context *cx)
{
	const struct dns_header *h = &rp->hdr;
	json_t *j = json_object();
	if (rp->hdr_ok) {
		jset_uint(j, "ID", h->id);
		jset_uint(j, "QR", !!(h->flags & DNS_FLAG_QR));
		jset_uint(j, "Opcode", DNS_OPCODE(h->flags));
		jset_uint(j, "AA", !!(h->flags & DNS_FLAG_AA));
		jset_uint(j, "TC", !!(h->flags & DNS_FLAG_TC));
		jset_uint(j, "RD", !!(h->flags & DNS_FLAG_RD));
		jset_uint(j, "RA", !!(h->flags & DNS_FLAG_RA));
		jset_uint(j, "AD", !!(h->flags & DNS_FLAG_AD));
		jset_uint(j, "CD", !!(h->flags & DNS_FLAG_CD));
		jset_uint(j, "RCODE", DNS_RCODE(h->flags));
		jset_str(j, "rcodeName", rdata_rcode_name(rp->rcode));
		jset_uint(j, "QDCOUNT", h->qdcount);
		jset_uint(j, "ANCOUNT", h->ancount);
		jset_uint(j, "NSCOUNT", h->nscount);
		jset_uint(j, "ARCOUNT", h->arcount);
	}
	if (rp->nq > 0) {
		char qname[NAME_TEXT_MAX];
		dig_name_text(rp->q[0].name, rp->q[0].namelen, qname);
		jset_str(j, "QNAME", qname);
		jset_uint(j, "QTYPE", rp->q[0].qtype);
		jset_str(j, "QTYPEname", rdata_type_name(rp->q[0].qtype));
		jset_uint(j, "QCLASS", rp->q[0].qclass);
		jset_str(j, "QCLASSname", rdata_class_name(rp->q[0].qclass));
	}
	if (rp->nq > 1) {
		json_t *qs = json_array();
		for (unsigned i = 0; i < rp->nq; i++) {
			char qname[NAME_TEXT_MAX];
			dig_name_text(rp->q[i].name, rp->q[i].namelen, qname);
			json_t *q = json_object();
			jset_str(q, "NAME", qname);
			jset_uint(q, "TYPE", rp->q[i].qtype);
			jset_str(q, "TYPEname", rdata_type_name(rp->q[i].qtype));
			jset_uint(q, "CLASS", rp->q[i].qclass);
			jset_str(q, "CLASSname", rdata_class_name(rp->q[i].qclass));
			json_array_append_new(qs, q);
		}
		jset(j, "questionRRs", qs);
	}
	for (int s = 0; s < SEC_COUNT; s++) {
		json_t *sec = json_array();
		for (unsigned i = 0; i < rp->nrr; i++)
			if (rp->rr[i].sec == (enum section)s)
				json_array_append_new(sec, json_rr(rp, &rp->rr[i].rr));
		jset(j, section_json[s], sec);
	}
	if (rp->opt >= 0)
		jset(j, "EDNS", json_edns(rp, cx));
	jset_str(j, "server", cx->server_text);
	jset_str(j, "transport", cx->ex->over_tcp ? "TCP" : "UDP");
	jset_uint(j, "queryTimeMsec", (unsigned long)cx->query_ms);
	jset_uint(j, "messageSize", rp->len);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	jset(j, "dateSeconds", json_real((double)now.tv_sec + (double)(now.tv_nsec / 1000000) / 1e3));
	if (rp->error)
		jset_str(j, "error", rp->errmsg);
	/* Seconds and milliseconds: 13 significant digits. */
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(13));
	putchar('\n');
	json_decref(j);
}

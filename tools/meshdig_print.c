/* meshdig_print.c -- the reply as dig prints it: header, OPT pseudosection,
 * sections in dig's columns, stats; and +short. Not +json
 * (meshdig_json.c) nor --status/--why (meshdig_status.c). */
#include "meshdig.h"
#include "dns/rdata.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/socket.h>

static void print_hex(FILE *f, const uint8_t *p, size_t n, const char *sep)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s%02x", i && sep ? sep : "", p[i]);
}

/* Printable ASCII as is, the rest as '.', inside ("...") as dig does. */
static void print_ascii(FILE *f, const uint8_t *p, size_t n)
{
	fputs(" (\"", f);
	for (size_t i = 0; i < n; i++)
		fputc(p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '.', f);
	fputs("\")", f);
}

/* "192.0.2.0/24/0" from RFC 7871 6 option data; false if malformed. */
static bool ecs_text(const struct edns_opt *opt, char *out, size_t cap)
{
	if (opt->len < 4)
		return false;
	unsigned family = (unsigned)opt->data[0] << 8 | opt->data[1];
	unsigned source = opt->data[2], scope = opt->data[3];
	size_t alen = opt->len - 4u;
	uint8_t a[16] = { 0 };
	int af = family == 1 ? AF_INET : family == 2 ? AF_INET6 : 0;
	size_t max = af == AF_INET ? 4 : 16;
	if (!af || alen > max)
		return false;
	memcpy(a, opt->data + 4, alen);
	char addr[INET6_ADDRSTRLEN];
	if (!inet_ntop(af, a, addr, sizeof(addr)))
		return false;
	snprintf(out, cap, "%s/%u/%u", addr, source, scope);
	return true;
}

static void print_opt_pseudosection(const struct reply *rp, const uint8_t *cookie,
                                    size_t cookie_len)
{
	const struct dns_rr *rr = &rp->rr[rp->opt].rr;
	unsigned version = (rr->ttl >> 16) & 0xff;
	unsigned flags = rr->ttl & 0xffff;
	printf("\n;; OPT PSEUDOSECTION:\n");
	printf("; EDNS: version: %u, flags:%s;", version, flags & DNS_EDNS_DO ? " do" : "");
	if (flags & ~DNS_EDNS_DO)
		printf(" MBZ: 0x%04x,", flags & ~DNS_EDNS_DO);
	printf(" udp: %u\n", (unsigned)rr->rclass);

	struct wire_reader r;
	struct edns_opt opt;
	dig_opt_reader(rp, &r);
	while (dig_opt_next(&r, &opt)) {
		char ecs[INET6_ADDRSTRLEN + 16];
		switch (opt.code) {
		case DNS_EDNS_NSID:
			printf("; NSID: ");
			print_hex(stdout, opt.data, opt.len, " ");
			print_ascii(stdout, opt.data, opt.len);
			putchar('\n');
			break;
		case DNS_EDNS_COOKIE:
			printf("; COOKIE: ");
			print_hex(stdout, opt.data, opt.len, NULL);
			printf(" (%s)\n", dig_cookie_status(&opt, cookie, cookie_len));
			break;
		case DNS_EDNS_ECS:
			if (ecs_text(&opt, ecs, sizeof(ecs))) {
				printf("; CLIENT-SUBNET: %s\n", ecs);
				break;
			}
			goto generic;
		case 15:
			if (opt.len < 2)
				goto generic;
			{
				unsigned code = (unsigned)opt.data[0] << 8 | opt.data[1];
				const char *name = dig_ede_name(code);
				printf("; EDE: %u", code);
				if (name)
					printf(" (%s)", name);
				if (opt.len > 2) {
					printf(":");
					print_ascii(stdout, opt.data + 2, opt.len - 2u);
				}
				putchar('\n');
			}
			break;
		case DNS_EDNS_PADDING:
			printf("; PADDING: %u bytes\n", (unsigned)opt.len);
			break;
		default:
		generic:
			if (dig_opt_name(opt.code))
				printf("; %s:", dig_opt_name(opt.code));
			else
				printf("; OPT=%u:", (unsigned)opt.code);
			if (opt.len) {
				putchar(' ');
				print_hex(stdout, opt.data, opt.len, " ");
				print_ascii(stdout, opt.data, opt.len);
			}
			putchar('\n');
			break;
		}
	}
}

/* dig's columns: owner, then TTL at 24, class at 32, type at 40, rdata at
 * 48, reached with 8-wide tabs; a field that overruns its column is
 * followed by one space instead. */
static void pad_to(int *col, int target)
{
	if (*col >= target) {
		putchar(' ');
		(*col)++;
		return;
	}
	while (*col < target) {
		putchar('\t');
		*col = (*col / 8 + 1) * 8;
	}
}

static void print_rr_line(const struct reply *rp, const struct dns_rr *rr)
{
	char owner[NAME_TEXT_MAX];
	const char *rdtext;
	dig_name_text(rr->name, rr->namelen, owner);
	dig_reply_rdata(rp, rr, &rdtext);
	int col = printf("%s", owner);
	pad_to(&col, 24);
	col += printf("%" PRIu32, rr->ttl);
	pad_to(&col, 32);
	col += printf("%s", rdata_class_name(rr->rclass));
	pad_to(&col, 40);
	col += printf("%s", rdata_type_name(rr->type));
	pad_to(&col, 48);
	printf("%s\n", rdtext);
}

static void print_flags(uint16_t flags)
{
	static const struct { uint16_t bit; const char *name; } names[] = {
		{ DNS_FLAG_QR, "qr" }, { DNS_FLAG_AA, "aa" }, { DNS_FLAG_TC, "tc" },
		{ DNS_FLAG_RD, "rd" }, { DNS_FLAG_RA, "ra" }, { DNS_FLAG_AD, "ad" },
		{ DNS_FLAG_CD, "cd" },
	};
	printf(";; flags:");
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (flags & names[i].bit)
			printf(" %s", names[i].name);
	printf(";");
}

void dig_print_text(const struct reply *rp, const struct context *cx)
{
	const struct options *o = cx->o;
	if (o->show_comments && rp->hdr_ok) {
		printf(";; ->>HEADER<<- opcode: %s, status: %s, id: %u\n",
		       rdata_opcode_name(DNS_OPCODE(rp->hdr.flags)), rdata_rcode_name(rp->rcode),
		       (unsigned)rp->hdr.id);
		print_flags(rp->hdr.flags);
		printf(" QUERY: %u, ANSWER: %u, AUTHORITY: %u, ADDITIONAL: %u\n",
		       (unsigned)rp->hdr.qdcount, (unsigned)rp->hdr.ancount,
		       (unsigned)rp->hdr.nscount, (unsigned)rp->hdr.arcount);
		if (!(rp->hdr.flags & DNS_FLAG_QR))
			printf(";; WARNING: the reply does not have QR set\n");
		if (rp->opt >= 0)
			print_opt_pseudosection(rp, cx->cookie, cx->cookie_len);
	}
	if (o->show_question && rp->nq > 0) {
		if (o->show_comments)
			printf("\n;; QUESTION SECTION:\n");
		for (unsigned i = 0; i < rp->nq; i++) {
			char qname[NAME_TEXT_MAX];
			dig_name_text(rp->q[i].name, rp->q[i].namelen, qname);
			/* dig does not count the ';' in its columns. */
			int col = printf(";%s", qname) - 1;
			pad_to(&col, 32);
			col += printf("%s", rdata_class_name(rp->q[i].qclass));
			pad_to(&col, 40);
			printf("%s\n", rdata_type_name(rp->q[i].qtype));
		}
	}
	const bool show[SEC_COUNT] = { o->show_answer, o->show_authority, o->show_additional };
	for (int s = 0; s < SEC_COUNT; s++) {
		if (!show[s] || dig_reply_count(rp, (enum section)s, false) == 0)
			continue;
		if (o->show_comments)
			printf("\n;; %s SECTION:\n", dig_section_title[s]);
		for (unsigned i = 0; i < rp->nrr; i++)
			if (rp->rr[i].sec == (enum section)s && rp->rr[i].rr.type != DNS_TYPE_OPT)
				print_rr_line(rp, &rp->rr[i].rr);
	}
	if (o->show_stats) {
		printf("\n;; Query time: %ld msec\n", cx->query_ms);
		printf(";; SERVER: %s(%s)\n", cx->server_text, cx->ex->over_tcp ? "TCP" : "UDP");
		printf(";; MSG SIZE  rcvd: %zu\n", rp->len);
	}
}

void dig_print_short(const struct reply *rp)
{
	for (unsigned i = 0; i < rp->nrr; i++) {
		if (rp->rr[i].sec != SEC_ANSWER)
			continue;
		const char *rdtext;
		dig_reply_rdata(rp, &rp->rr[i].rr, &rdtext);
		printf("%s\n", rdtext);
	}
}

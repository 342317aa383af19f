/* meshdig.c -- a dig-style DNS client for meshdns: main() wires the
 * arguments (meshdig_args.c), the exchange over c-ares or HTTP
 * (meshdig_exchange.c), the reply (meshdig_reply.c) and its printers, and
 * chooses the exit status. One query per run; not a resolver. */
#include "meshdig.h"
#include "dns/rdata.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>

const char dig_progname[] = "meshdig";

static long elapsed_ms(const struct timespec *a, const struct timespec *b)
{
	return (long)((b->tv_sec - a->tv_sec) * 1000 + (b->tv_nsec - a->tv_nsec) / 1000000);
}

/* --status URL: dnsd's /status.json as tables. */
static int status_http(const char *url, unsigned timeout_ms)
{
	char full[STATUS_URL_MAX];
	char *body = NULL;
	size_t len = 0;
	int rc = dig_fetch_status(url, timeout_ms, full, sizeof(full), &body, &len);
	if (rc != EXIT_REPLY_OK)
		return rc;
	rc = dig_print_status_doc(full, body, len);
	free(body);
	return rc;
}

int main(int argc, char **argv)
{
	struct options o;
	dig_parse_args(argc, argv, &o);
	if (o.mode == MODE_STATUS_HTTP)
		return status_http(o.status_url, o.timeout_ms);

	struct ares_addr_port_node server;
	char server_text[INET6_ADDRSTRLEN + 8];
	dig_resolve_server(&o, &server, server_text, sizeof(server_text));

	uint16_t id;
	dig_random_bytes(&id, sizeof(id));
	uint8_t cookie[COOKIE_MAX_LEN];
	size_t cookie_len = 0;
	if (o.cookie) {
		cookie_len = o.cookie_len ? o.cookie_len : COOKIE_CLIENT_LEN;
		if (o.cookie_len)
			memcpy(cookie, o.cookie_val, cookie_len);
		else
			dig_random_bytes(cookie, cookie_len);
	}
	uint8_t query[QUERY_MAX];
	size_t qlen = dig_build_query(&o, id, cookie, cookie_len, query, sizeof(query));
	if (qlen == 0) {
		fprintf(stderr, "%s: query does not fit %d bytes\n", dig_progname, QUERY_MAX);
		return EXIT_MALFORMED;
	}

	if (o.show_cmd && !o.short_out && !o.json && o.mode == MODE_DIG) {
		printf("; <<>> meshdig %s <<>>", MESHDNS_VERSION);
		for (int i = 1; i < argc; i++)
			printf(" %s", argv[i]);
		printf("\n");
	}
	fflush(stdout);

	struct exchange ex;
	int rc = dig_exchange(&o, &server, server_text, id, query, qlen, &ex);
	if (rc != EXIT_REPLY_OK)
		return rc;

	struct reply rp;
	dig_reply_parse(&rp, ex.reply, ex.reply_len);
	struct context cx = {
		.o = &o,
		.server_text = server_text,
		.cookie = cookie,
		.cookie_len = cookie_len,
		.ex = &ex,
		.query_ms = elapsed_ms(&ex.sent, &ex.received),
	};
	if (o.mode != MODE_DIG && rp.error)
		;
	else if (o.mode == MODE_STATUS && rp.rcode == DNS_RCODE_NOERROR)
		dig_print_status(&rp, server_text);
	else if (o.mode == MODE_WHY && rp.rcode == DNS_RCODE_NOERROR)
		dig_print_why(&rp);
	else if (o.mode != MODE_DIG)
		fprintf(stderr, ";; %s from %s: no such service there?\n", rdata_rcode_name(rp.rcode),
		        server_text);
	else if (o.json)
		dig_print_json(&rp, &cx);
	else if (o.short_out)
		dig_print_short(&rp);
	else
		dig_print_text(&rp, &cx);
	fflush(stdout);

	int status;
	if (rp.error) {
		fprintf(stderr, ";; ERROR: malformed reply: %s\n", rp.errmsg);
		status = EXIT_MALFORMED;
	} else if (rp.rcode == DNS_RCODE_NOERROR || rp.rcode == DNS_RCODE_NXDOMAIN) {
		status = EXIT_REPLY_OK;
	} else {
		if (o.short_out)
			fprintf(stderr, ";; %s from %s\n", rdata_rcode_name(rp.rcode), server_text);
		status = EXIT_RCODE;
	}
	dig_reply_free(&rp);
	free(ex.reply);
	return status;
}

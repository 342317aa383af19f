/* meshdig.h -- what meshdig's modules share: the options, the result of an
 * exchange, the parsed reply and the exit status. Not a library: only
 * tools/meshdig*.c include it. */
#ifndef MESHDNS_MESHDIG_H
#define MESHDNS_MESHDIG_H

#include "dns/wire.h"

#include <ares.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#ifndef MESHDNS_VERSION
#define MESHDNS_VERSION "0.1.0"
#endif

enum exit_code {
	EXIT_REPLY_OK = 0,     /* NOERROR or NXDOMAIN */
	EXIT_USAGE = 1,
	EXIT_RCODE = 2,        /* SERVFAIL, REFUSED, any other rcode */
	EXIT_NO_REPLY = 9,     /* timeout, connection refused */
	EXIT_MALFORMED = 10,   /* malformed reply, or an internal error */
};

enum {
	DEFAULT_PORT = 53,     /* as dig; dnsd's default listener */
	DEFAULT_BUFSIZE = DNS_UDP_DEFAULT,
	DEFAULT_TIMEOUT_MS = 2000,
	DEFAULT_TRIES = 2,
	COOKIE_CLIENT_LEN = 8,
	COOKIE_MAX_LEN = 40,
	/* Text of a 255-byte name written entirely in \DDD, plus dot and NUL. */
	NAME_TEXT_MAX = DNS_NAME_MAX * 4 + 2,
	/* rdata_to_text's worst case: 65535 bytes of TXT, each as \DDD. */
	RDATA_TEXT_MAX = 65535 * 4 + 64,
	QUERY_MAX = 512,
	/* The URL --status fetches, path included. */
	STATUS_URL_MAX = 2048,
};

/* The program's name in its messages ("meshdig: ..."). */
extern const char dig_progname[];

/* Bounds what a bad argument echoes back, so that a 100 kB argument does
 * not become a 100 kB error message. */
#define ARG_SHOWN 80
#define ARG_FMT "'%.80s%s'"
#define ARG_VAL(s) (s), strlen(s) > ARG_SHOWN ? "..." : ""

/* ---- arguments (meshdig_args.c) ----------------------------------------- */

struct options {
	const char *server;
	int family;             /* 0, AF_INET (-4) or AF_INET6 (-6) */
	uint16_t port;
	uint8_t qname[DNS_NAME_MAX];
	size_t qnamelen;
	bool have_name;
	uint16_t qtype;
	uint16_t qclass;
	bool have_type;
	bool have_class;
	bool tcp;
	bool short_out;
	bool json;
	bool rd;
	bool ad;
	bool cd;
	bool edns;
	bool edns_explicit_off;
	uint8_t edns_version;
	uint16_t bufsize;
	bool dnssec;
	bool nsid;
	bool cookie;
	uint8_t cookie_val[COOKIE_MAX_LEN];
	size_t cookie_len;      /* 0: a random 8-byte client cookie */
	unsigned timeout_ms;
	unsigned tries;
	/* What to print (dig's +[no]cmd, +[no]comments, ...). */
	bool show_cmd;
	bool show_comments;
	bool show_question;
	bool show_answer;
	bool show_authority;
	bool show_additional;
	bool show_stats;
	/* --status / --why: a dnsd CHAOS TXT query shown as a table / lines. */
	enum { MODE_DIG = 0, MODE_STATUS, MODE_WHY, MODE_STATUS_HTTP } mode;
	const char *status_url;       /* --status http://... */
	/* +subnet: an EDNS Client Subnet option (RFC 7871). */
	bool subnet;
	uint16_t subnet_family;       /* 1: IPv4, 2: IPv6 (address family numbers) */
	uint8_t subnet_len;
	uint8_t subnet_addr[16];
};

/* Prints "meshdig: MESSAGE" and the --help hint to stderr and exits with
 * EXIT_USAGE. For any module that finds the command line at fault. */
__attribute__((format(printf, 1, 2), noreturn))
void dig_usage_error(const char *fmt, ...);

/* Fills o from the command line with dig's defaults and rules. Prints
 * --help or --version and exits 0; exits EXIT_USAGE on a bad argument.
 * o's pointers point into argv. */
void dig_parse_args(int argc, char **argv, struct options *o);

/* ---- the exchange (meshdig_exchange.c) ---------------------------------- */

/* What one run of the query got back. */
struct exchange {
	int status;             /* ARES_SUCCESS, ARES_ETIMEOUT, ... */
	uint8_t *reply;         /* malloc'd copy of the answer; the caller frees it */
	size_t reply_len;
	bool over_tcp;
	struct timespec sent;
	struct timespec received;
};

/* len bytes from getrandom(); exits EXIT_MALFORMED if it fails. */
void dig_random_bytes(void *buf, size_t len);

/* Fills node with o's server (a literal, "[v6]", or a name resolved with
 * getaddrinfo) and port, and text with "addr#port". Exits EXIT_USAGE for a
 * server -4/-6 rules out, EXIT_MALFORMED for a name that does not resolve. */
void dig_resolve_server(const struct options *o, struct ares_addr_port_node *node, char *text,
                        size_t cap);

/* Writes o's query with this id and cookie (used when o->cookie) into buf.
 * Returns its length, or 0 if it does not fit cap. */
size_t dig_build_query(const struct options *o, uint16_t id, const uint8_t *cookie,
                       size_t cookie_len, uint8_t *buf, size_t cap);

/* Sends query (whose ID is id) to server, o->tries times at most, and
 * fills ex. Reports each failed try and a final failure on stderr.
 * Returns EXIT_REPLY_OK with ex->reply set, EXIT_NO_REPLY, or
 * EXIT_MALFORMED if c-ares cannot be set up. */
int dig_exchange(const struct options *o, struct ares_addr_port_node *server,
                 const char *server_text, uint16_t id, const uint8_t *query, size_t qlen,
                 struct exchange *ex);

/* --status URL: GETs dnsd's status document (a bare server URL means its
 * /status.json) within 2 * timeout_ms. Writes the URL fetched into full
 * (cap >= STATUS_URL_MAX) and sets *body (NUL-terminated, malloc'd, the
 * caller frees it; NULL for an empty body) and *len. Returns EXIT_REPLY_OK,
 * or EXIT_USAGE / EXIT_NO_REPLY after a message on stderr. */
int dig_fetch_status(const char *url, unsigned timeout_ms, char *full, size_t cap, char **body,
                     size_t *len);

/* ---- the reply (meshdig_reply.c) ---------------------------------------- */

enum section { SEC_ANSWER, SEC_AUTHORITY, SEC_ADDITIONAL, SEC_COUNT };

/* "ANSWER", "AUTHORITY", "ADDITIONAL". */
extern const char *const dig_section_title[SEC_COUNT];

struct rr_entry {
	struct dns_rr rr;
	enum section sec;
};

struct reply {
	const uint8_t *msg;
	size_t len;
	struct dns_header hdr;
	bool hdr_ok;
	struct dns_question *q;
	unsigned nq;
	struct rr_entry *rr;
	unsigned nrr;
	int opt;                /* index into rr, -1 if none */
	unsigned rcode;         /* with the OPT's extended bits */
	bool error;
	char errmsg[256];
};

/* Parses as much of msg as is well-formed into rp; the first problem sets
 * rp->error and rp->errmsg. rp points into msg, which must outlive it.
 * Exits EXIT_MALFORMED if out of memory. Free with dig_reply_free. */
void dig_reply_parse(struct reply *rp, const uint8_t *msg, size_t len);
void dig_reply_free(struct reply *rp);

/* The records of section s, the OPT record counted only if with_opt. */
unsigned dig_reply_count(const struct reply *rp, enum section s, bool with_opt);

/* Sets *text to rr's rdata in presentation form, in a buffer this module
 * owns that the next call overwrites. Returns false if the rdata is
 * malformed for a type we know (it is then in RFC 3597 form). */
bool dig_reply_rdata(const struct reply *rp, const struct dns_rr *rr, const char **text);

/* A wire name as text into out; "<bad name>" (and a negative return) if
 * it cannot be printed. Returns the text's length. */
int dig_name_text(const uint8_t *name, size_t len, char out[NAME_TEXT_MAX]);

/* ---- EDNS options of the reply (meshdig_reply.c) ------------------------ */

struct edns_opt {
	uint16_t code;
	uint16_t len;
	const uint8_t *data;
};

/* Sets r to read the options of rp's OPT record (rp->opt >= 0). */
void dig_opt_reader(const struct reply *rp, struct wire_reader *r);
/* The next option from r into opt; false at the end. opt->data points
 * into the reply. */
bool dig_opt_next(struct wire_reader *r, struct edns_opt *opt);
/* "NSID", "COOKIE", ... or NULL for a code we do not name. */
const char *dig_opt_name(uint16_t code);
/* RFC 8914 4: the name of an extended DNS error code, or NULL. */
const char *dig_ede_name(unsigned code);
/* The server's COOKIE option against the sent client cookie (RFC 7873
 * 5.3): "unsolicited", "mismatch", "good" or "echoed". */
const char *dig_cookie_status(const struct edns_opt *opt, const uint8_t *sent, size_t sent_len);

/* ---- printers (meshdig_print.c, meshdig_json.c, meshdig_status.c) ------- */

/* What a printer knows besides the reply. */
struct context {
	const struct options *o;
	const char *server_text;    /* "127.0.0.1#53" */
	const uint8_t *cookie;      /* what we sent, for the status */
	size_t cookie_len;
	const struct exchange *ex;
	long query_ms;
};

/* dig's text form on stdout: header, OPT pseudosection, sections, stats,
 * each as cx->o asks. */
void dig_print_text(const struct reply *rp, const struct context *cx);
/* +short: the answer section's rdata, one per line. */
void dig_print_short(const struct reply *rp);
/* +json: the reply as one JSON object with RFC 8427 member names. */
void dig_print_json(const struct reply *rp, const struct context *cx);
/* --status SVC: dnsd's CHAOS TXT status answer as a table. */
void dig_print_status(const struct reply *rp, const char *server_text);
/* --why SVC: dnsd's CHAOS TXT explanation, one string a line. */
void dig_print_why(const struct reply *rp);
/* --status URL: dnsd's status document (body of len bytes, may be NULL)
 * fetched from full as tables on stdout. Returns EXIT_REPLY_OK, or
 * EXIT_MALFORMED after a message on stderr if it is not one. */
int dig_print_status_doc(const char *full, const char *body, size_t len);

#endif

/* meshdig.c -- a dig-style DNS client for meshdns: builds the query with
 * wire.c, sends it with c-ares (ares_send, our own poll loop) and prints
 * the reply with wire.c and rdata.c. One query per run; not a resolver. */
#include "rdata.h"
#include "wire.h"

#include <ares.h>
#include <curl/curl.h>
#include <jansson.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
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
};

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

/* ---- small helpers ------------------------------------------------------ */

static const char *progname = "meshdig";

__attribute__((format(printf, 1, 2), noreturn))
static void usage_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help' for more information.\n", progname);
	exit(EXIT_USAGE);
}

/* Bounds what a bad argument echoes back, so that a 100 kB argument does
 * not become a 100 kB error message. */
#define ARG_SHOWN 80
#define ARG_FMT "'%.80s%s'"
#define ARG_VAL(s) (s), strlen(s) > ARG_SHOWN ? "..." : ""

static bool parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *v)
{
	unsigned long x = 0;
	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		x = x * 10 + (unsigned long)(*s - '0');
		if (x > max)
			return false;
	}
	if (x < min)
		return false;
	*v = x;
	return true;
}

/* Seconds with up to three decimals ("2", "0.5") to milliseconds. */
static bool parse_seconds_ms(const char *s, unsigned *ms)
{
	unsigned long whole = 0, frac = 0;
	unsigned fdigits = 0;
	bool digits = false;
	for (; *s >= '0' && *s <= '9'; s++) {
		whole = whole * 10 + (unsigned long)(*s - '0');
		digits = true;
		if (whole > 3600)
			return false;
	}
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++) {
			digits = true;
			if (fdigits++ < 3)
				frac = frac * 10 + (unsigned long)(*s - '0');
		}
		for (; fdigits < 3; fdigits++)
			frac *= 10;
	}
	if (*s || !digits)
		return false;
	unsigned long total = whole * 1000 + frac;
	if (total < 1 || total > 3600000)
		return false;
	*ms = (unsigned)total;
	return true;
}

static int name_text(const uint8_t *name, size_t len, char out[NAME_TEXT_MAX])
{
	int n = wire_name_to_text(name, len, out, NAME_TEXT_MAX);
	if (n < 0)
		snprintf(out, NAME_TEXT_MAX, "<bad name>");
	return n;
}

static void random_bytes(void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "%s: getrandom: %s\n", progname, strerror(errno));
			exit(EXIT_MALFORMED);
		}
		p += n;
		len -= (size_t)n;
	}
}

/* ---- arguments ---------------------------------------------------------- */

static void print_help(void)
{
	printf(
"Usage: meshdig [@server] [-p port] [-t type] [-c class] [-4|-6] [-x addr]\n"
"               [name] [type] [class] [+option...]\n"
"\n"
"Sends one DNS query and prints the reply in dig's format.\n"
"\n"
"Defaults: server 127.0.0.1, port %u (dnsd's default), type A (NS when no\n"
"name is given), class IN, RD set, EDNS0 with a %u-byte UDP size,\n"
"timeout %u s, %u tries.\n"
"\n"
"Options:\n"
"  @server         server address (IPv4 or IPv6 literal, or a host name)\n"
"  -p port         server port\n"
"  -t type         query type (A, AAAA, SRV, TXT, ..., TYPEnnn)\n"
"  -c class        query class (IN, CH, ..., CLASSnnn)\n"
"  -q name         query name (even if it looks like a type or class)\n"
"  -x addr         reverse lookup: PTR query for an IPv4 or IPv6 address\n"
"  --status SVC    dnsd's view of a service: each backend's state, weight,\n"
"                  effective weight and last check, as a table (CH TXT SVC)\n"
"  --status URL    the same for every service, from dnsd's HTTP endpoint\n"
"                  (http://127.0.0.1:8053/ reads /status.json)\n"
"  --why SVC       how dnsd picks this client's answer for SVC: policy,\n"
"                  candidates and order (CH TXT _why.SVC; try +subnet)\n"
"  -4, -6          use only IPv4 / IPv6 when resolving a server name\n"
"  -h, --help      print this help and exit\n"
"  -V, --version   print the version and exit\n"
"\n"
"Query options (each boolean also has a +no form, e.g. +notcp):\n"
"  +tcp (+vc)      use TCP instead of UDP\n"
"  +recurse        set RD (default); +norecurse clears it\n"
"  +adflag         set AD in the query\n"
"  +cdflag         set CD in the query\n"
"  +edns[=N]       send EDNS0 OPT with version N (default on, 0)\n"
"  +noedns         send no OPT record\n"
"  +bufsize=N      advertised EDNS UDP size, 0..65535 (default %u)\n"
"  +dnssec         set the DO bit\n"
"  +nsid           ask for the server's NSID\n"
"  +cookie[=HEX]   send a DNS cookie (random client cookie, or HEX)\n"
"  +subnet=A[/L]   send EDNS Client Subnet A/L (RFC 7871)\n"
"  +timeout=S      seconds to wait per try (decimals allowed)\n"
"  +tries=N        number of tries over UDP/TCP (1..100)\n"
"  +retry=N        retries after the first try (tries = N + 1)\n"
"\n"
"Output options:\n"
"  +short          print only the answer RDATA, one per line\n"
"  +json           print the reply as one JSON object (RFC 8427 names)\n"
"  +[no]all        set or clear all of the display options below\n"
"  +[no]cmd        the '; <<>> meshdig' line\n"
"  +[no]comments   header, OPT pseudosection and section titles\n"
"  +[no]question   +[no]answer  +[no]authority  +[no]additional  sections\n"
"  +[no]stats      query time, server, message size\n"
"\n"
"Exit status: 0 reply with NOERROR or NXDOMAIN; 1 usage error; 2 reply with\n"
"another RCODE (SERVFAIL, REFUSED, ...); 9 no reply; 10 malformed reply or\n"
"internal error.\n",
	       DEFAULT_PORT, DEFAULT_BUFSIZE, DEFAULT_TIMEOUT_MS / 1000, DEFAULT_TRIES,
	       DEFAULT_BUFSIZE);
}

static void set_name(struct options *o, const char *text)
{
	if (o->have_name)
		usage_error("only one query name may be given (" ARG_FMT " and another)",
		            ARG_VAL(text));
	if (wire_name_from_text(text, o->qname, &o->qnamelen) != 0)
		usage_error("invalid name " ARG_FMT
		            " (empty label, label over 63 bytes, name over 255 bytes, or bad escape)",
		            ARG_VAL(text));
	o->have_name = true;
}

static void set_type(struct options *o, const char *text)
{
	if (rdata_type_from_name(text, &o->qtype) != 0)
		usage_error("unknown type " ARG_FMT, ARG_VAL(text));
	o->have_type = true;
}

static void set_class(struct options *o, const char *text)
{
	if (rdata_class_from_name(text, &o->qclass) != 0)
		usage_error("unknown class " ARG_FMT, ARG_VAL(text));
	o->have_class = true;
}

/* -x: 4.3.2.1.in-addr.arpa. or the 32 reversed nibbles under ip6.arpa. */
static void set_reverse(struct options *o, const char *addr)
{
	uint8_t a[16];
	char text[128];
	int n = 0;
	if (inet_pton(AF_INET, addr, a) == 1) {
		n = snprintf(text, sizeof(text), "%u.%u.%u.%u.in-addr.arpa.", a[3], a[2], a[1], a[0]);
	} else if (inet_pton(AF_INET6, addr, a) == 1) {
		static const char hex[] = "0123456789abcdef";
		for (int i = 15; i >= 0; i--) {
			text[n++] = hex[a[i] & 0xf];
			text[n++] = '.';
			text[n++] = hex[a[i] >> 4];
			text[n++] = '.';
		}
		memcpy(text + n, "ip6.arpa.", sizeof("ip6.arpa."));
	} else {
		usage_error("-x needs an IPv4 or IPv6 address, not " ARG_FMT, ARG_VAL(addr));
	}
	set_name(o, text);
	if (!o->have_type)
		o->qtype = DNS_TYPE_PTR;
	o->have_type = true;
}

static void set_cookie_hex(struct options *o, const char *hex)
{
	size_t len = strlen(hex);
	if (len % 2 != 0 || len / 2 > COOKIE_MAX_LEN)
		goto bad;
	for (size_t i = 0; i < len; i += 2) {
		int hi = rdata_hex_digit(hex[i]), lo = rdata_hex_digit(hex[i + 1]);
		if (hi < 0 || lo < 0)
			goto bad;
		o->cookie_val[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	o->cookie_len = len / 2;
	/* RFC 7873 4: 8 bytes of client cookie, optionally 8..32 of server's. */
	if (o->cookie_len == COOKIE_CLIENT_LEN || (o->cookie_len >= 16 && o->cookie_len <= 40))
		return;
bad:
	usage_error("+cookie=HEX needs 8 or 16..40 bytes in hex, not " ARG_FMT, ARG_VAL(hex));
}

enum plus_kind { PLUS_BOOL, PLUS_VALUE, PLUS_BOTH };

/* One +option; "+noX" negates a boolean X. */
/* +subnet=ADDR[/LEN]: LEN defaults to the whole address. */
static void set_subnet(struct options *o, const char *val)
{
	char addr[INET6_ADDRSTRLEN];
	const char *slash = strchr(val, '/');
	size_t alen = slash ? (size_t)(slash - val) : strlen(val);
	if (alen == 0 || alen >= sizeof(addr))
		usage_error("+subnet needs ADDR[/LEN], not " ARG_FMT, ARG_VAL(val));
	memcpy(addr, val, alen);
	addr[alen] = '\0';
	unsigned max;
	memset(o->subnet_addr, 0, sizeof(o->subnet_addr));
	if (inet_pton(AF_INET, addr, o->subnet_addr) == 1) {
		o->subnet_family = 1;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, o->subnet_addr) == 1) {
		o->subnet_family = 2;
		max = 128;
	} else {
		usage_error("+subnet: " ARG_FMT " is not an IPv4 or IPv6 address", ARG_VAL(addr));
	}
	unsigned long v = max;
	if (slash && !parse_ulong(slash + 1, 0, max, &v))
		usage_error("+subnet prefix length must be 0..%u, not " ARG_FMT, max, ARG_VAL(slash + 1));
	o->subnet_len = (uint8_t)v;
	/* RFC 7871 6: address bits beyond the prefix must be zero. */
	for (unsigned bit = o->subnet_len; bit < max; bit++)
		o->subnet_addr[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
}

static void parse_plus(struct options *o, const char *arg)
{
	const char *opt = arg + 1;
	const char *eq = strchr(opt, '=');
	const char *val = eq ? eq + 1 : NULL;
	size_t nlen = eq ? (size_t)(eq - opt) : strlen(opt);
	bool on = true;
	if (nlen > 2 && strncmp(opt, "no", 2) == 0) {
		on = false;
		opt += 2;
		nlen -= 2;
	}
#define IS(s) (nlen == sizeof(s) - 1 && strncmp(opt, s, nlen) == 0)
#define NO_VALUE() do { if (val) usage_error("option %s takes no value", arg); } while (0)
#define NEED_VALUE() do { \
		if (!on) \
			usage_error("option +%.*s has no +no form", (int)nlen, opt); \
		if (!val) \
			usage_error("option %s needs a value (+%.*s=...)", arg, (int)nlen, opt); \
	} while (0)
	unsigned long v;

	if (IS("tcp") || IS("vc")) {
		NO_VALUE();
		o->tcp = on;
	} else if (IS("short")) {
		NO_VALUE();
		o->short_out = on;
	} else if (IS("json")) {
		NO_VALUE();
		o->json = on;
	} else if (IS("recurse") || IS("rec")) {
		NO_VALUE();
		o->rd = on;
	} else if (IS("adflag")) {
		NO_VALUE();
		o->ad = on;
	} else if (IS("cdflag")) {
		NO_VALUE();
		o->cd = on;
	} else if (IS("edns")) {
		o->edns = on;
		o->edns_explicit_off = !on;
		if (val) {
			if (!on || !parse_ulong(val, 0, 255, &v))
				usage_error("+edns=N needs a version 0..255, not " ARG_FMT, ARG_VAL(val));
			o->edns_version = (uint8_t)v;
		} else if (on) {
			o->edns_version = 0;
		}
	} else if (IS("bufsize")) {
		NEED_VALUE();
		if (!parse_ulong(val, 0, 65535, &v))
			usage_error("+bufsize=N needs 0..65535, not " ARG_FMT, ARG_VAL(val));
		o->bufsize = (uint16_t)v;
	} else if (IS("dnssec")) {
		NO_VALUE();
		o->dnssec = on;
	} else if (IS("nsid")) {
		NO_VALUE();
		o->nsid = on;
	} else if (IS("cookie")) {
		o->cookie = on;
		o->cookie_len = 0;
		if (val) {
			if (!on)
				usage_error("option %s takes no value", arg);
			set_cookie_hex(o, val);
		}
	} else if (IS("subnet")) {
		o->subnet = on;
		if (on) {
			NEED_VALUE();
			set_subnet(o, val);
		}
	} else if (IS("timeout")) {
		NEED_VALUE();
		if (!parse_seconds_ms(val, &o->timeout_ms))
			usage_error("+timeout=S needs 0.001..3600 seconds, not " ARG_FMT, ARG_VAL(val));
	} else if (IS("tries")) {
		NEED_VALUE();
		if (!parse_ulong(val, 1, 100, &v))
			usage_error("+tries=N needs 1..100, not " ARG_FMT, ARG_VAL(val));
		o->tries = (unsigned)v;
	} else if (IS("retry")) {
		NEED_VALUE();
		if (!parse_ulong(val, 0, 99, &v))
			usage_error("+retry=N needs 0..99, not " ARG_FMT, ARG_VAL(val));
		o->tries = (unsigned)v + 1;
	} else if (IS("all")) {
		NO_VALUE();
		o->show_cmd = o->show_comments = o->show_question = o->show_answer = on;
		o->show_authority = o->show_additional = o->show_stats = on;
	} else if (IS("cmd")) {
		NO_VALUE();
		o->show_cmd = on;
	} else if (IS("comments")) {
		NO_VALUE();
		o->show_comments = on;
	} else if (IS("question")) {
		NO_VALUE();
		o->show_question = on;
	} else if (IS("answer")) {
		NO_VALUE();
		o->show_answer = on;
	} else if (IS("authority")) {
		NO_VALUE();
		o->show_authority = on;
	} else if (IS("additional")) {
		NO_VALUE();
		o->show_additional = on;
	} else if (IS("stats")) {
		NO_VALUE();
		o->show_stats = on;
	} else {
		usage_error("unknown option " ARG_FMT, ARG_VAL(arg));
	}
#undef IS
#undef NO_VALUE
#undef NEED_VALUE
}

/* The value of -p/-t/-c/-q/-x: attached ("-tMX") or the next argument. */
static const char *dash_value(int argc, char **argv, int *i)
{
	const char *arg = argv[*i];
	if (arg[2])
		return arg + 2;
	if (*i + 1 >= argc)
		usage_error("option %s needs an argument", arg);
	return argv[++*i];
}

/* The value of a long option: "--status=X" or "--status X". */
static const char *dash_value_long(int argc, char **argv, int *i, const char *opt)
{
	if (*i + 1 >= argc)
		usage_error("option %s needs a service name", opt);
	return argv[++*i];
}

static void parse_args(int argc, char **argv, struct options *o)
{
	memset(o, 0, sizeof(*o));
	o->server = "127.0.0.1";
	o->port = DEFAULT_PORT;
	o->qtype = DNS_TYPE_A;
	o->qclass = DNS_CLASS_IN;
	o->rd = true;
	o->edns = true;
	o->bufsize = DEFAULT_BUFSIZE;
	o->timeout_ms = DEFAULT_TIMEOUT_MS;
	o->tries = DEFAULT_TRIES;
	o->show_cmd = o->show_comments = o->show_question = o->show_answer = true;
	o->show_authority = o->show_additional = o->show_stats = true;

	/* Positional type/class as in dig: the first argument that reads as a
	 * type is the type, and likewise the class; anything else is the
	 * name. A name that looks like a type needs -q or a trailing dot. */
	bool pos_type = false, pos_class = false;
	unsigned long v;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (arg[0] == '@') {
			if (!arg[1])
				usage_error("'@' needs a server address");
			o->server = arg + 1;
		} else if (arg[0] == '+') {
			parse_plus(o, arg);
		} else if (arg[0] == '-' && arg[1]) {
			if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
				print_help();
				exit(0);
			} else if (strcmp(arg, "-V") == 0 || strcmp(arg, "-v") == 0 ||
			           strcmp(arg, "--version") == 0) {
				printf("meshdig %s\n", MESHDNS_VERSION);
				exit(0);
			} else if (strcmp(arg, "--status") == 0 || strcmp(arg, "--why") == 0) {
				bool why = arg[2] == 'w';
				const char *svc = dash_value_long(argc, argv, &i, arg);
				if (!why && (strncmp(svc, "http://", 7) == 0 || strncmp(svc, "https://", 8) == 0)) {
					o->mode = MODE_STATUS_HTTP;
					o->status_url = svc;
					continue;
				}
				o->mode = why ? MODE_WHY : MODE_STATUS;
				char name[NAME_TEXT_MAX + 8];
				snprintf(name, sizeof(name), "%s%s", why ? "_why." : "", svc);
				set_name(o, name);
				o->qtype = DNS_TYPE_TXT;
				o->qclass = DNS_CLASS_CH;
				o->have_type = o->have_class = true;
			} else if (strcmp(arg, "-4") == 0) {
				o->family = AF_INET;
			} else if (strcmp(arg, "-6") == 0) {
				o->family = AF_INET6;
			} else if (arg[1] == 'p') {
				const char *p = dash_value(argc, argv, &i);
				if (!parse_ulong(p, 1, 65535, &v))
					usage_error("-p needs a port 1..65535, not " ARG_FMT, ARG_VAL(p));
				o->port = (uint16_t)v;
			} else if (arg[1] == 't') {
				set_type(o, dash_value(argc, argv, &i));
			} else if (arg[1] == 'c') {
				set_class(o, dash_value(argc, argv, &i));
			} else if (arg[1] == 'q') {
				set_name(o, dash_value(argc, argv, &i));
			} else if (arg[1] == 'x') {
				set_reverse(o, dash_value(argc, argv, &i));
			} else {
				usage_error("unknown option " ARG_FMT, ARG_VAL(arg));
			}
		} else {
			uint16_t code;
			if (!pos_type && rdata_type_from_name(arg, &code) == 0) {
				o->qtype = code;
				o->have_type = pos_type = true;
			} else if (!pos_class && rdata_class_from_name(arg, &code) == 0) {
				o->qclass = code;
				o->have_class = pos_class = true;
			} else {
				set_name(o, arg);
			}
		}
	}
	if (!o->have_name) {
		/* dig: no name asks for the root's NS records. */
		o->qname[0] = 0;
		o->qnamelen = 1;
		if (!o->have_type)
			o->qtype = DNS_TYPE_NS;
	}
	if (!o->edns && (o->dnssec || o->nsid || o->cookie))
		usage_error("+dnssec, +nsid and +cookie need EDNS; drop +noedns");
	if (o->qtype == DNS_TYPE_AXFR || o->qtype == DNS_TYPE_IXFR)
		o->tcp = true;   /* zone transfers only work over TCP; we print one message */
	if (o->short_out && o->json)
		usage_error("+short and +json exclude each other");
	if (o->mode != MODE_DIG && (o->short_out || o->json))
		usage_error("--status and --why print their own format; drop +short/+json");
	if (o->subnet && !o->edns)
		usage_error("+subnet needs EDNS; drop +noedns");
}

/* ---- the query ---------------------------------------------------------- */

static size_t build_query(const struct options *o, uint16_t id, const uint8_t *cookie,
                          size_t cookie_len, uint8_t *buf, size_t cap)
{
	struct wire_writer w;
	wire_writer_init(&w, buf, cap);
	struct dns_header h = {
		.id = id,
		.flags = (uint16_t)((o->rd ? DNS_FLAG_RD : 0) | (o->ad ? DNS_FLAG_AD : 0) |
		                    (o->cd ? DNS_FLAG_CD : 0)),
		.qdcount = 1,
		.arcount = o->edns ? 1 : 0,
	};
	wire_write_header(&w, &h);
	wire_write_name(&w, o->qname, o->qnamelen, false);
	wire_write_u16(&w, o->qtype);
	wire_write_u16(&w, o->qclass);
	if (o->edns) {
		/* RFC 6891 6.1.2: root owner, CLASS = UDP size, TTL = extended
		 * rcode, version, DO and zero bits. */
		wire_write_u8(&w, 0);
		wire_write_u16(&w, DNS_TYPE_OPT);
		wire_write_u16(&w, o->bufsize);
		wire_write_u32(&w, (uint32_t)o->edns_version << 16 | (o->dnssec ? DNS_EDNS_DO : 0));
		size_t rdlen_off = w.pos;
		wire_write_u16(&w, 0);
		if (o->nsid) {
			wire_write_u16(&w, DNS_EDNS_NSID);
			wire_write_u16(&w, 0);
		}
		if (o->cookie) {
			wire_write_u16(&w, DNS_EDNS_COOKIE);
			wire_write_u16(&w, (uint16_t)cookie_len);
			wire_write_bytes(&w, cookie, cookie_len);
		}
		if (o->subnet) {
			/* RFC 7871 6: family, source prefix, scope 0, the prefix's
			 * bytes only. */
			size_t nbytes = ((size_t)o->subnet_len + 7) / 8;
			wire_write_u16(&w, DNS_EDNS_ECS);
			wire_write_u16(&w, (uint16_t)(4 + nbytes));
			wire_write_u16(&w, o->subnet_family);
			wire_write_u8(&w, o->subnet_len);
			wire_write_u8(&w, 0);
			wire_write_bytes(&w, o->subnet_addr, nbytes);
		}
		wire_patch_u16(&w, rdlen_off, (uint16_t)(w.pos - rdlen_off - 2));
	}
	return w.err ? 0 : w.pos;
}

/* ---- the transport: c-ares driven by poll() ----------------------------- */

struct exchange {
	bool done;
	int status;             /* ARES_SUCCESS, ARES_ETIMEOUT, ... */
	uint8_t *reply;         /* malloc'd copy of the answer */
	size_t reply_len;
	bool over_tcp;
	struct timespec sent;
	struct timespec received;
	ares_socket_t current_fd;   /* the socket ares_process_fd is working on */
	bool tcp_requested;
	uint16_t id;
	bool noted_retry;
	size_t udp_limit;       /* the largest UDP reply c-ares takes: 512, or the EDNS size */
};

static bool fd_is_tcp(ares_socket_t fd)
{
	int type = 0;
	socklen_t len = sizeof(type);
	if (fd == ARES_SOCKET_BAD || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1)
		return false;
	return type == SOCK_STREAM;
}

/* c-ares calls back from inside ares_process_fd (or ares_send): the
 * socket it was working on is the one the answer came from, which tells
 * whether a truncated UDP reply made it retry over TCP. abuf is only
 * valid during the call. */
static void on_reply(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct exchange *ex = arg;
	(void)timeouts;
	ex->done = true;
	ex->status = status;
	clock_gettime(CLOCK_MONOTONIC, &ex->received);
	if (status != ARES_SUCCESS || !abuf || alen <= 0)
		return;
	ex->reply = malloc((size_t)alen);
	if (!ex->reply) {
		ex->status = ARES_ENOMEM;
		return;
	}
	memcpy(ex->reply, abuf, (size_t)alen);
	ex->reply_len = (size_t)alen;
	ex->over_tcp = ex->current_fd != ARES_SOCKET_BAD ? fd_is_tcp(ex->current_fd)
	                                                 : ex->tcp_requested;
}

/* c-ares drops a truncated UDP reply (and any UDP reply over udp_limit:
 * 512 bytes without ARES_FLAG_EDNS) and asks again over TCP without telling us.
 * Peeking at the datagram first lets us say so, as dig does. */
static void peek_udp(struct exchange *ex, ares_socket_t fd)
{
	uint8_t hdr[DNS_HEADER_LEN];
	if (ex->tcp_requested || ex->noted_retry || fd_is_tcp(fd))
		return;
	ssize_t n = recv(fd, hdr, sizeof(hdr), MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC);
	if (n < DNS_HEADER_LEN || (uint16_t)(hdr[0] << 8 | hdr[1]) != ex->id)
		return;
	if (hdr[2] & (DNS_FLAG_TC >> 8)) {
		fprintf(stderr, ";; Truncated, retrying in TCP mode.\n");
		ex->noted_retry = true;
	} else if ((size_t)n > ex->udp_limit) {
		fprintf(stderr, ";; UDP reply of %zd bytes is over c-ares' %zu-byte limit, "
		        "retrying in TCP mode.\n", n, ex->udp_limit);
		ex->noted_retry = true;
	}
}

static void run_exchange(ares_channel channel, const uint8_t *query, size_t qlen,
                         struct exchange *ex)
{
	ex->done = false;
	ex->current_fd = ARES_SOCKET_BAD;
	clock_gettime(CLOCK_MONOTONIC, &ex->sent);
	ares_send(channel, query, (int)qlen, on_reply, ex);
	while (!ex->done) {
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		struct pollfd pfd[ARES_GETSOCK_MAXNUM];
		nfds_t nfds = 0;
		/* c-ares' ARES_GETSOCK_WRITABLE shifts a signed 1 into bit 31. */
		unsigned bits = (unsigned)ares_getsock(channel, socks, ARES_GETSOCK_MAXNUM);
		for (unsigned i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			short events = 0;
			if (bits & (1u << i))
				events |= POLLIN;
			if (bits & (1u << (i + ARES_GETSOCK_MAXNUM)))
				events |= POLLOUT;
			if (!events)
				continue;
			pfd[nfds].fd = socks[i];
			pfd[nfds].events = events;
			pfd[nfds].revents = 0;
			nfds++;
		}
		struct timeval tv;
		struct timeval *tvp = ares_timeout(channel, NULL, &tv);
		int ms = tvp ? (int)(tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000) : 1000;
		int n = poll(pfd, nfds, ms);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "%s: poll: %s\n", progname, strerror(errno));
			exit(EXIT_MALFORMED);
		}
		if (n == 0) {
			ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
			continue;
		}
		for (nfds_t i = 0; i < nfds && !ex->done; i++) {
			if (!pfd[i].revents)
				continue;
			bool rd = pfd[i].revents & (POLLIN | POLLERR | POLLHUP);
			bool wr = pfd[i].revents & (POLLOUT | POLLERR | POLLHUP);
			/* Peeking would consume a pending socket error (ICMP port
			 * unreachable), which c-ares must see as ECONNREFUSED. */
			if ((pfd[i].revents & POLLIN) && !(pfd[i].revents & POLLERR))
				peek_udp(ex, pfd[i].fd);
			ex->current_fd = pfd[i].fd;
			ares_process_fd(channel, rd ? pfd[i].fd : ARES_SOCKET_BAD,
			                wr ? pfd[i].fd : ARES_SOCKET_BAD);
			ex->current_fd = ARES_SOCKET_BAD;
		}
	}
}

/* ---- the reply ---------------------------------------------------------- */

enum section { SEC_ANSWER, SEC_AUTHORITY, SEC_ADDITIONAL, SEC_COUNT };

static const char *const section_title[SEC_COUNT] = { "ANSWER", "AUTHORITY", "ADDITIONAL" };
static const char *const section_json[SEC_COUNT] = {
	"answerRRs", "authorityRRs", "additionalRRs"
};

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

static char rdtext[RDATA_TEXT_MAX];

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

/* Parses as much of the reply as is well-formed; the first problem goes
 * into rp->errmsg. Counts are clamped by what the message could hold
 * (5 bytes per question, 11 per RR), so a lying header cannot make us
 * allocate much. */
static void reply_parse(struct reply *rp, const uint8_t *msg, size_t len)
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
		fprintf(stderr, "%s: out of memory\n", progname);
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
				reply_fail(rp, "%s count %u does not fit the message", section_title[s],
				           counts[s]);
				return;
			}
			struct rr_entry *e = &rp->rr[rp->nrr];
			wire_read_rr(&r, &e->rr);
			if (r.err) {
				reply_fail(rp, "%s record %u at offset %zu: %s", section_title[s], i + 1,
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
				name_text(e->rr.name, e->rr.namelen, owner);
				reply_fail(rp, "%s record %u (%s %s): RDATA of %u bytes does not fit the type",
				           section_title[s], i + 1, owner, rdata_type_name(e->rr.type),
				           (unsigned)e->rr.rdlen);
			}
			rp->nrr++;
		}
	}
	if (r.pos != len)
		reply_fail(rp, "%zu bytes of trailing data after the last record", len - r.pos);
}

static void reply_free(struct reply *rp)
{
	free(rp->q);
	free(rp->rr);
	rp->q = NULL;
	rp->rr = NULL;
}

static unsigned reply_count(const struct reply *rp, enum section s, bool with_opt)
{
	unsigned n = 0;
	for (unsigned i = 0; i < rp->nrr; i++)
		if (rp->rr[i].sec == s && (with_opt || rp->rr[i].rr.type != DNS_TYPE_OPT))
			n++;
	return n;
}

/* ---- EDNS options ------------------------------------------------------- */

struct edns_opt {
	uint16_t code;
	uint16_t len;
	const uint8_t *data;
};

/* Iterates the options of the (validated) OPT record. */
static bool next_option(struct wire_reader *r, struct edns_opt *opt)
{
	if (wire_remaining(r) == 0)
		return false;
	opt->code = wire_read_u16(r);
	opt->len = wire_read_u16(r);
	opt->data = wire_read_ptr(r, opt->len);
	return !r->err;
}

static void opt_reader(const struct reply *rp, struct wire_reader *r)
{
	const struct dns_rr *rr = &rp->rr[rp->opt].rr;
	wire_reader_init(r, rp->msg, rr->rdoff + rr->rdlen);
	r->pos = rr->rdoff;
}

static const char *option_name(uint16_t code)
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

/* RFC 8914 4: the extended DNS error codes. */
static const char *ede_name(unsigned code)
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

/* Cookie check against what we sent (RFC 7873 5.3). */
static const char *cookie_status(const struct edns_opt *opt, const uint8_t *sent, size_t sent_len)
{
	if (!sent_len)
		return "unsolicited";
	if (opt->len < COOKIE_CLIENT_LEN || memcmp(opt->data, sent, COOKIE_CLIENT_LEN) != 0)
		return "mismatch";
	return opt->len > COOKIE_CLIENT_LEN ? "good" : "echoed";
}

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
	opt_reader(rp, &r);
	while (next_option(&r, &opt)) {
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
			printf(" (%s)\n", cookie_status(&opt, cookie, cookie_len));
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
				const char *name = ede_name(code);
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
			if (option_name(opt.code))
				printf("; %s:", option_name(opt.code));
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

/* ---- text output -------------------------------------------------------- */

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
	name_text(rr->name, rr->namelen, owner);
	format_rdata(rp, rr);
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

struct context {
	const struct options *o;
	const char *server_text;    /* "127.0.0.1#53" */
	const uint8_t *cookie;      /* what we sent, for the status */
	size_t cookie_len;
	const struct exchange *ex;
	long query_ms;
};

static void print_text(const struct reply *rp, const struct context *cx)
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
			name_text(rp->q[i].name, rp->q[i].namelen, qname);
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
		if (!show[s] || reply_count(rp, (enum section)s, false) == 0)
			continue;
		if (o->show_comments)
			printf("\n;; %s SECTION:\n", section_title[s]);
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

/* The strings of a TXT rdata, joined by spaces. */
static void txt_join(const struct reply *rp, const struct dns_rr *rr, char *out, size_t cap)
{
	const uint8_t *p = rp->msg + rr->rdoff, *end = p + rr->rdlen;
	size_t n = 0;
	out[0] = '\0';
	while (p < end && n + 1 < cap) {
		size_t len = *p++;
		if (len > (size_t)(end - p))
			len = (size_t)(end - p);
		for (size_t k = 0; k < len && n + 1 < cap; k++)
			out[n++] = p[k] >= 0x20 && p[k] < 0x7f ? (char)p[k] : '?';
		p += len;
		if (p < end && n + 1 < cap)
			out[n++] = ' ';
	}
	out[n] = '\0';
}

/* The value of key=VALUE in a status line ("" if absent); "last=" runs to
 * the end of the line, since error texts contain spaces. */
static void status_field(const char *line, const char *key, char *out, size_t cap)
{
	size_t klen = strlen(key);
	out[0] = '\0';
	for (const char *p = line; (p = strstr(p, key)) != NULL; p += klen) {
		if ((p != line && p[-1] != ' ') || p[klen] != '=')
			continue;
		const char *v = p + klen + 1;
		size_t len = strcmp(key, "last") == 0 ? strlen(v) : strcspn(v, " ");
		snprintf(out, cap, "%.*s", (int)(len < cap ? len : cap - 1), v);
		return;
	}
}

/* --status: the service line, then one table row per backend line
 * ("NAME ADDR:PORT STATE key=value ... last=TEXT"). */
static void print_status(const struct reply *rp, const char *server_text)
{
	char line[1024], f[8][128];
	static const char *const keys[] = { "weight", "effective", "priority", "locality", "for",
		                                "checks", "last" };
	bool header = false;
	unsigned rows = 0;
	for (unsigned i = 0; i < rp->nrr; i++) {
		const struct dns_rr *rr = &rp->rr[i].rr;
		if (rp->rr[i].sec != SEC_ANSWER || rr->type != DNS_TYPE_TXT)
			continue;
		txt_join(rp, rr, line, sizeof(line));
		if (strncmp(line, "service ", 8) == 0) {
			char name[NAME_TEXT_MAX];
			name_text(rr->name, rr->namelen, name);
			printf("%s (from %s): %s\n", name, server_text, line + 8);
			continue;
		}
		char bname[128] = "", addr[128] = "", state[32] = "";
		if (sscanf(line, "%127s %127s %31s", bname, addr, state) != 3)
			continue;
		if (!header) {
			printf("%-24s %-28s %-5s %6s %9s %4s %-10s %8s %7s %-6s %s\n", "BACKEND", "ADDRESS",
			       "STATE", "WEIGHT", "EFFECTIVE", "PRIO", "LOCALITY", "FOR", "CHECKS", "SOURCE",
			       "LAST");
			header = true;
		}
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			status_field(line, keys[k], f[k], sizeof(f[k]));
		printf("%-24s %-28s %-5s %6s %9s %4s %-10s %8s %7s  %s\n", bname, addr, state, f[0], f[1],
		       f[2], f[3], f[4], f[5], f[6]);
		rows++;
	}
	if (!header && rp->rcode == DNS_RCODE_NOERROR)
		printf("no status: the server gave no service lines (not a dnsd service?)\n");
	else if (header && rows == 0)
		printf("(no backends)\n");
}

/* --why: the explanation strings, one per line. */
static void print_why(const struct reply *rp)
{
	char line[1024];
	for (unsigned i = 0; i < rp->nrr; i++) {
		const struct dns_rr *rr = &rp->rr[i].rr;
		if (rp->rr[i].sec != SEC_ANSWER || rr->type != DNS_TYPE_TXT)
			continue;
		txt_join(rp, rr, line, sizeof(line));
		printf("%s\n", line);
	}
}

static void print_short(const struct reply *rp)
{
	for (unsigned i = 0; i < rp->nrr; i++) {
		if (rp->rr[i].sec != SEC_ANSWER)
			continue;
		format_rdata(rp, &rp->rr[i].rr);
		printf("%s\n", rdtext);
	}
}

/* ---- JSON output (RFC 8427 member names) -------------------------------- */

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

static json_t *jhex(const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	char *h = malloc(2 * n + 1);
	if (!h)
		return json_null();
	for (size_t i = 0; i < n; i++) {
		h[2 * i] = digits[p[i] >> 4];
		h[2 * i + 1] = digits[p[i] & 0xf];
	}
	json_t *s = json_stringn(h, 2 * n);
	free(h);
	return s;
}

static json_t *json_rr(const struct reply *rp, const struct dns_rr *rr)
{
	char owner[NAME_TEXT_MAX];
	name_text(rr->name, rr->namelen, owner);
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
	bool typed = rr->type != DNS_TYPE_OPT && format_rdata(rp, rr) &&
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
	opt_reader(rp, &r);
	while (next_option(&r, &opt)) {
		json_t *o = json_object();
		jset_uint(o, "CODE", opt.code);
		if (option_name(opt.code))
			jset_str(o, "NAME", option_name(opt.code));
		jset(o, "HEX", jhex(opt.data, opt.len));
		if (opt.code == DNS_EDNS_NSID) {
			for (size_t i = 0; i < opt.len; i++)
				rdtext[i] = opt.data[i] >= 0x20 && opt.data[i] < 0x7f ? (char)opt.data[i] : '.';
			jset(o, "text", json_stringn(rdtext, opt.len));
		} else if (opt.code == DNS_EDNS_COOKIE) {
			jset_str(o, "status", cookie_status(&opt, cx->cookie, cx->cookie_len));
		} else if (opt.code == 15 && opt.len >= 2) {
			unsigned code = (unsigned)opt.data[0] << 8 | opt.data[1];
			jset_uint(o, "infoCode", code);
			if (ede_name(code))
				jset_str(o, "purpose", ede_name(code));
			jset(o, "extraText", jbytes(opt.data + 2, opt.len - 2u));
		}
		json_array_append_new(opts, o);
	}
	jset(e, "options", opts);
	return e;
}

static void print_json(const struct reply *rp, const struct context *cx)
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
		name_text(rp->q[0].name, rp->q[0].namelen, qname);
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
			name_text(rp->q[i].name, rp->q[i].namelen, qname);
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

/* ---- server address ----------------------------------------------------- */

/* Fills node from a literal or a resolved name; prints "addr#port". */
static void resolve_server(const struct options *o, struct ares_addr_port_node *node,
                           char *text, size_t cap)
{
	const char *s = o->server;
	char lit[INET6_ADDRSTRLEN + 2];
	size_t len = strlen(s);
	/* "[::1]" as well as "::1". */
	if (len >= 2 && s[0] == '[' && s[len - 1] == ']' && len - 2 < sizeof(lit)) {
		memcpy(lit, s + 1, len - 2);
		lit[len - 2] = '\0';
		s = lit;
	}
	if (strchr(s, '%'))
		usage_error("scoped IPv6 server addresses (" ARG_FMT ") are not supported",
		            ARG_VAL(o->server));

	memset(node, 0, sizeof(*node));
	if (inet_pton(AF_INET, s, &node->addr.addr4) == 1) {
		node->family = AF_INET;
	} else if (inet_pton(AF_INET6, s, &node->addr.addr6) == 1) {
		node->family = AF_INET6;
	} else {
		struct addrinfo hints = { .ai_family = o->family ? o->family : AF_UNSPEC,
		                          .ai_socktype = SOCK_DGRAM };
		struct addrinfo *res = NULL;
		int rc = getaddrinfo(s, NULL, &hints, &res);
		if (rc != 0 || !res) {
			fprintf(stderr, "%s: couldn't get address for " ARG_FMT ": %s\n", progname,
			        ARG_VAL(s), gai_strerror(rc));
			exit(EXIT_MALFORMED);
		}
		node->family = res->ai_family;
		if (res->ai_family == AF_INET)
			memcpy(&node->addr.addr4,
			       &((const struct sockaddr_in *)(const void *)res->ai_addr)->sin_addr, 4);
		else
			memcpy(&node->addr.addr6,
			       &((const struct sockaddr_in6 *)(const void *)res->ai_addr)->sin6_addr, 16);
		freeaddrinfo(res);
	}
	if (o->family && node->family != o->family)
		usage_error("server " ARG_FMT " is not an %s address", ARG_VAL(o->server),
		            o->family == AF_INET ? "IPv4 (-4)" : "IPv6 (-6)");
	node->udp_port = o->port;
	node->tcp_port = o->port;
	node->next = NULL;

	char addr[INET6_ADDRSTRLEN];
	inet_ntop(node->family, &node->addr, addr, sizeof(addr));
	snprintf(text, cap, "%s#%u", addr, (unsigned)o->port);
}

/* ---- --status URL: dnsd's /status.json as tables ------------------------ */

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
	struct { char *p; size_t len; } *b = arg;
	size_t add = size * n;
	if (b->len + add > (64u << 20))
		return 0;                 /* refuse absurd bodies */
	char *np = realloc(b->p, b->len + add + 1);
	if (!np)
		return 0;
	memcpy(np + b->len, data, add);
	b->p = np;
	b->len += add;
	b->p[b->len] = '\0';
	return add;
}

static const char *jstr(json_t *o, const char *key, const char *dflt)
{
	const char *v = json_string_value(json_object_get(o, key));
	return v ? v : dflt;
}

static long long jint(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

static int status_http(const char *url, unsigned timeout_ms)
{
	char full[2048];
	size_t ul = strlen(url);
	if (ul >= sizeof(full) - 16) {
		fprintf(stderr, "%s: URL too long\n", progname);
		return EXIT_USAGE;
	}
	/* A bare server URL means its status document. */
	const char *path = strchr(url + (url[4] == 's' ? 8 : 7), '/');
	snprintf(full, sizeof(full), "%s%s", url,
	         !path ? "/status.json" : strcmp(path, "/") == 0 ? "status.json" : "");
	struct { char *p; size_t len; } body = { NULL, 0 };
	curl_global_init(CURL_GLOBAL_DEFAULT);
	CURL *c = curl_easy_init();
	long code = 0;
	CURLcode rc = CURLE_FAILED_INIT;
	if (c) {
		curl_easy_setopt(c, CURLOPT_URL, full);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms * 2);
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		rc = curl_easy_perform(c);
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		curl_easy_cleanup(c);
	}
	curl_global_cleanup();
	if (rc != CURLE_OK || code != 200) {
		if (rc != CURLE_OK)
			fprintf(stderr, "%s: %s: %s\n", progname, full, curl_easy_strerror(rc));
		else
			fprintf(stderr, "%s: %s: HTTP status %ld\n", progname, full, code);
		free(body.p);
		return EXIT_NO_REPLY;
	}
	json_error_t jerr;
	json_t *root = json_loadb(body.p ? body.p : "", body.len, 0, &jerr);
	free(body.p);
	json_t *zones = json_object_get(root, "zones");
	if (!root || !json_is_array(zones)) {
		fprintf(stderr, "%s: %s: not a dnsd status document (%s)\n", progname, full,
		        root ? "no zones" : jerr.text);
		json_decref(root);
		return EXIT_MALFORMED;
	}
	printf("%s: snapshot generation %lld\n", full, jint(root, "generation"));
	size_t zi, si, bi;
	json_t *z, *svc, *b;
	json_array_foreach(zones, zi, z) {
		printf("\nzone %s serial %lld\n", jstr(z, "name", "?"), jint(z, "serial"));
		json_array_foreach(json_object_get(z, "services"), si, svc) {
			json_t *bes = json_object_get(svc, "backends");
			printf("\n%s policy=%s healthy=%lld/%zu ttl=%lld%s\n", jstr(svc, "name", "?"),
			       jstr(svc, "policy", "?"), jint(svc, "healthy"), json_array_size(bes),
			       jint(svc, "ttl"),
			       json_is_true(json_object_get(svc, "fail_open")) ? " fail-open" : "");
			printf("%-24s %-28s %-5s %6s %9s %4s %-10s %8s %7s  %s\n", "BACKEND", "ADDRESS",
			       "STATE", "WEIGHT", "EFFECTIVE", "PRIO", "LOCALITY", "FOR", "CHECKS", "LAST");
			json_array_foreach(bes, bi, b) {
				char addr[160], since[32], last[160];
				snprintf(addr, sizeof(addr), "%s:%lld", jstr(b, "address", "?"), jint(b, "port"));
				/* As the CHAOS answer shows them (dnsd's backend_fmt):
				 * whole seconds, and last_check as it is. */
				json_t *sv = json_object_get(b, "since_seconds");
				if (json_is_number(sv))
					snprintf(since, sizeof(since), "%llds", (long long)json_number_value(sv));
				else
					snprintf(since, sizeof(since), "-");
				if (json_is_string(json_object_get(b, "last_check")))
					snprintf(last, sizeof(last), "%s", jstr(b, "last_check", "?"));
				else
					snprintf(last, sizeof(last), "%s/%lldms", jstr(b, "last_result", "?"),
					         jint(b, "last_check_ms"));
				printf("%-24s %-28s %-5s %6lld %9lld %4lld %-10s %8s %7lld %-6s %s%s%s\n",
				       jstr(b, "name", "-"), addr, jstr(b, "state", "?"), jint(b, "weight"),
				       jint(b, "effective_weight"), jint(b, "priority"),
				       jstr(b, "locality", "-"), since, jint(b, "checks"),
				       jstr(b, "source", "yaml"),
				       json_is_true(json_object_get(b, "checked")) ? last : "unchecked",
				       json_is_string(json_object_get(b, "key")) ? "  key " : "",
				       json_is_string(json_object_get(b, "key")) ? jstr(b, "key", "") : "");
			}
		}
	}
	json_decref(root);
	return EXIT_REPLY_OK;
}

/* ---- main --------------------------------------------------------------- */

static long elapsed_ms(const struct timespec *a, const struct timespec *b)
{
	return (long)((b->tv_sec - a->tv_sec) * 1000 + (b->tv_nsec - a->tv_nsec) / 1000000);
}

static const char *comm_error(int status)
{
	switch (status) {
	case ARES_ETIMEOUT: return "timed out";
	case ARES_ECONNREFUSED: return "connection refused";
	default: return ares_strerror(status);
	}
}

int main(int argc, char **argv)
{
	struct options o;
	parse_args(argc, argv, &o);
	if (o.mode == MODE_STATUS_HTTP)
		return status_http(o.status_url, o.timeout_ms);

	struct ares_addr_port_node server;
	char server_text[INET6_ADDRSTRLEN + 8];
	resolve_server(&o, &server, server_text, sizeof(server_text));

	uint16_t id;
	random_bytes(&id, sizeof(id));
	uint8_t cookie[COOKIE_MAX_LEN];
	size_t cookie_len = 0;
	if (o.cookie) {
		cookie_len = o.cookie_len ? o.cookie_len : COOKIE_CLIENT_LEN;
		if (o.cookie_len)
			memcpy(cookie, o.cookie_val, cookie_len);
		else
			random_bytes(cookie, cookie_len);
	}
	uint8_t query[QUERY_MAX];
	size_t qlen = build_query(&o, id, cookie, cookie_len, query, sizeof(query));
	if (qlen == 0) {
		fprintf(stderr, "%s: query does not fit %d bytes\n", progname, QUERY_MAX);
		return EXIT_MALFORMED;
	}

	if (o.show_cmd && !o.short_out && !o.json && o.mode == MODE_DIG) {
		printf("; <<>> meshdig %s <<>>", MESHDNS_VERSION);
		for (int i = 1; i < argc; i++)
			printf(" %s", argv[i]);
		printf("\n");
	}
	fflush(stdout);

	int rc = ares_library_init(ARES_LIB_INIT_ALL);
	if (rc != ARES_SUCCESS) {
		fprintf(stderr, "%s: ares_library_init: %s\n", progname, ares_strerror(rc));
		return EXIT_MALFORMED;
	}
	/* NOCHECKRESP: hand SERVFAIL/REFUSED/NOTIMP to us instead of trying the
	 * next server and reporting no answer. We add OPT ourselves; c-ares
	 * takes a UDP reply over 512 bytes only with ARES_FLAG_EDNS, whose
	 * FORMERR fallback cuts the last 11 bytes off the query: exactly our
	 * OPT when it carries no option, part of an option otherwise. So the
	 * flag is on for a bare OPT only (--status answers are ~540 bytes).
	 * One try per ares_send: we retry ourselves with a fixed timeout per
	 * try, as dig does (c-ares doubles it on every round). */
	struct ares_options copts;
	memset(&copts, 0, sizeof(copts));
	copts.flags = ARES_FLAG_NOCHECKRESP | ARES_FLAG_NOSEARCH | (o.tcp ? ARES_FLAG_USEVC : 0);
	copts.timeout = (int)o.timeout_ms;
	copts.tries = 1;
	int optmask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
	size_t udp_limit = 512;
	if (o.edns && !o.nsid && !o.cookie && !o.subnet && o.bufsize > 512) {
		copts.flags |= ARES_FLAG_EDNS;
		copts.ednspsz = o.bufsize;
		optmask |= ARES_OPT_EDNSPSZ;
		udp_limit = o.bufsize;
	}
	ares_channel channel;
	rc = ares_init_options(&channel, &copts, optmask);
	if (rc != ARES_SUCCESS) {
		fprintf(stderr, "%s: ares_init_options: %s\n", progname, ares_strerror(rc));
		return EXIT_MALFORMED;
	}
	rc = ares_set_servers_ports(channel, &server);
	if (rc != ARES_SUCCESS) {
		fprintf(stderr, "%s: ares_set_servers_ports: %s\n", progname, ares_strerror(rc));
		ares_destroy(channel);
		return EXIT_MALFORMED;
	}

	struct exchange ex = { .tcp_requested = o.tcp, .id = id, .udp_limit = udp_limit };
	for (unsigned attempt = 0; attempt < o.tries; attempt++) {
		run_exchange(channel, query, qlen, &ex);
		if (ex.status == ARES_SUCCESS)
			break;
		fprintf(stderr, ";; communications error to %s: %s\n", server_text,
		        comm_error(ex.status));
	}
	ares_destroy(channel);
	ares_library_cleanup();

	if (ex.status != ARES_SUCCESS) {
		fprintf(stderr, ";; no servers could be reached\n");
		return EXIT_NO_REPLY;
	}

	struct reply rp;
	reply_parse(&rp, ex.reply, ex.reply_len);
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
		print_status(&rp, server_text);
	else if (o.mode == MODE_WHY && rp.rcode == DNS_RCODE_NOERROR)
		print_why(&rp);
	else if (o.mode != MODE_DIG)
		fprintf(stderr, ";; %s from %s: no such service there?\n", rdata_rcode_name(rp.rcode),
		        server_text);
	else if (o.json)
		print_json(&rp, &cx);
	else if (o.short_out)
		print_short(&rp);
	else
		print_text(&rp, &cx);
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
	reply_free(&rp);
	free(ex.reply);
	return status;
}

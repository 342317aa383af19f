/* meshdig_args.c -- meshdig's command line: the defaults, --help, and dig's
 * @server, -x, positional name/type/class and +options into struct
 * options. Checks arguments; sends and prints nothing else. */
#include "meshdig.h"
#include "util/num.h"
#include "dns/rdata.h"

#include <sodium.h>

#include <arpa/inet.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

void dig_usage_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", dig_progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help' for more information.\n", dig_progname);
	exit(EXIT_USAGE);
}

/* A decimal in min..max: num_parse's strict digits, then the lower bound. */
static bool parse_range(const char *s, uint64_t min, uint64_t max, uint64_t *v)
{
	return num_parse(s, max, v) && *v >= min;
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
		dig_usage_error("only one query name may be given (" ARG_FMT " and another)",
		            ARG_VAL(text));
	if (wire_name_from_text(text, o->qname, &o->qnamelen) != 0)
		dig_usage_error("invalid name " ARG_FMT
		            " (empty label, label over 63 bytes, name over 255 bytes, or bad escape)",
		            ARG_VAL(text));
	o->have_name = true;
}

static void set_type(struct options *o, const char *text)
{
	if (rdata_type_from_name(text, &o->qtype) != 0)
		dig_usage_error("unknown type " ARG_FMT, ARG_VAL(text));
	o->have_type = true;
}

static void set_class(struct options *o, const char *text)
{
	if (rdata_class_from_name(text, &o->qclass) != 0)
		dig_usage_error("unknown class " ARG_FMT, ARG_VAL(text));
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
		dig_usage_error("-x needs an IPv4 or IPv6 address, not " ARG_FMT, ARG_VAL(addr));
	}
	set_name(o, text);
	if (!o->have_type)
		o->qtype = DNS_TYPE_PTR;
	o->have_type = true;
}

static void set_cookie_hex(struct options *o, const char *hex)
{
	size_t len = 0;
	/* RFC 7873 4: 8 bytes of client cookie, optionally 8..32 of server's. */
	if (sodium_hex2bin(o->cookie_val, sizeof(o->cookie_val), hex, strlen(hex), NULL, &len,
	                   NULL) != 0 ||
	    (len != COOKIE_CLIENT_LEN && (len < 16 || len > COOKIE_MAX_LEN)))
		dig_usage_error("+cookie=HEX needs 8 or 16..40 bytes in hex, not " ARG_FMT, ARG_VAL(hex));
	o->cookie_len = len;
}

/* +subnet=ADDR[/LEN]: LEN defaults to the whole address. */
static void set_subnet(struct options *o, const char *val)
{
	char addr[INET6_ADDRSTRLEN];
	const char *slash = strchr(val, '/');
	size_t alen = slash ? (size_t)(slash - val) : strlen(val);
	if (alen == 0 || alen >= sizeof(addr))
		dig_usage_error("+subnet needs ADDR[/LEN], not " ARG_FMT, ARG_VAL(val));
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
		dig_usage_error("+subnet: " ARG_FMT " is not an IPv4 or IPv6 address", ARG_VAL(addr));
	}
	uint64_t v = max;
	if (slash && !parse_range(slash + 1, 0, max, &v))
		dig_usage_error("+subnet prefix length must be 0..%u, not " ARG_FMT, max, ARG_VAL(slash + 1));
	o->subnet_len = (uint8_t)v;
	/* RFC 7871 6: address bits beyond the prefix must be zero. */
	for (unsigned bit = o->subnet_len; bit < max; bit++)
		o->subnet_addr[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
}

/* The +options that set or clear one flag and take no value. */
static const struct {
	const char *name;
	size_t off;
} plus_flags[] = {
	{ "tcp", offsetof(struct options, tcp) },
	{ "vc", offsetof(struct options, tcp) },
	{ "short", offsetof(struct options, short_out) },
	{ "json", offsetof(struct options, json) },
	{ "recurse", offsetof(struct options, rd) },
	{ "rec", offsetof(struct options, rd) },
	{ "adflag", offsetof(struct options, ad) },
	{ "cdflag", offsetof(struct options, cd) },
	{ "dnssec", offsetof(struct options, dnssec) },
	{ "nsid", offsetof(struct options, nsid) },
	{ "cmd", offsetof(struct options, show_cmd) },
	{ "comments", offsetof(struct options, show_comments) },
	{ "question", offsetof(struct options, show_question) },
	{ "answer", offsetof(struct options, show_answer) },
	{ "authority", offsetof(struct options, show_authority) },
	{ "additional", offsetof(struct options, show_additional) },
	{ "stats", offsetof(struct options, show_stats) },
};

/* One +option; "+noX" negates a boolean X. */
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
#define NO_VALUE() do { if (val) dig_usage_error("option %s takes no value", arg); } while (0)
#define NEED_VALUE() do { \
		if (!on) \
			dig_usage_error("option +%.*s has no +no form", (int)nlen, opt); \
		if (!val) \
			dig_usage_error("option %s needs a value (+%.*s=...)", arg, (int)nlen, opt); \
	} while (0)
	uint64_t v;

	for (size_t i = 0; i < sizeof(plus_flags) / sizeof(plus_flags[0]); i++) {
		const char *name = plus_flags[i].name;
		if (strlen(name) == nlen && strncmp(opt, name, nlen) == 0) {
			NO_VALUE();
			*(bool *)((char *)o + plus_flags[i].off) = on;
			return;
		}
	}
	if (IS("edns")) {
		o->edns = on;
		o->edns_explicit_off = !on;
		if (val) {
			if (!on || !parse_range(val, 0, 255, &v))
				dig_usage_error("+edns=N needs a version 0..255, not " ARG_FMT, ARG_VAL(val));
			o->edns_version = (uint8_t)v;
		} else if (on) {
			o->edns_version = 0;
		}
	} else if (IS("bufsize")) {
		NEED_VALUE();
		if (!parse_range(val, 0, 65535, &v))
			dig_usage_error("+bufsize=N needs 0..65535, not " ARG_FMT, ARG_VAL(val));
		o->bufsize = (uint16_t)v;
	} else if (IS("cookie")) {
		o->cookie = on;
		o->cookie_len = 0;
		if (val) {
			if (!on)
				dig_usage_error("option %s takes no value", arg);
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
			dig_usage_error("+timeout=S needs 0.001..3600 seconds, not " ARG_FMT, ARG_VAL(val));
	} else if (IS("tries")) {
		NEED_VALUE();
		if (!parse_range(val, 1, 100, &v))
			dig_usage_error("+tries=N needs 1..100, not " ARG_FMT, ARG_VAL(val));
		o->tries = (unsigned)v;
	} else if (IS("retry")) {
		NEED_VALUE();
		if (!parse_range(val, 0, 99, &v))
			dig_usage_error("+retry=N needs 0..99, not " ARG_FMT, ARG_VAL(val));
		o->tries = (unsigned)v + 1;
	} else if (IS("all")) {
		NO_VALUE();
		o->show_cmd = o->show_comments = o->show_question = o->show_answer = on;
		o->show_authority = o->show_additional = o->show_stats = on;
	} else {
		dig_usage_error("unknown option " ARG_FMT, ARG_VAL(arg));
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
		dig_usage_error("option %s needs an argument", arg);
	return argv[++*i];
}

/* The value of a long option: "--status X". */
static const char *dash_value_long(int argc, char **argv, int *i, const char *opt)
{
	if (*i + 1 >= argc)
		dig_usage_error("option %s needs a service name", opt);
	return argv[++*i];
}

void dig_parse_args(int argc, char **argv, struct options *o)
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
	uint64_t v;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (arg[0] == '@') {
			if (!arg[1])
				dig_usage_error("'@' needs a server address");
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
				if (!parse_range(p, 1, 65535, &v))
					dig_usage_error("-p needs a port 1..65535, not " ARG_FMT, ARG_VAL(p));
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
				dig_usage_error("unknown option " ARG_FMT, ARG_VAL(arg));
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
		dig_usage_error("+dnssec, +nsid and +cookie need EDNS; drop +noedns");
	if (o->qtype == DNS_TYPE_AXFR || o->qtype == DNS_TYPE_IXFR)
		o->tcp = true;   /* zone transfers only work over TCP; we print one message */
	if (o->short_out && o->json)
		dig_usage_error("+short and +json exclude each other");
	if (o->mode != MODE_DIG && (o->short_out || o->json))
		dig_usage_error("--status and --why print their own format; drop +short/+json");
	if (o->subnet && !o->edns)
		dig_usage_error("+subnet needs EDNS; drop +noedns");
}


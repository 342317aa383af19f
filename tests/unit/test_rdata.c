/* test_rdata.c -- unit tests of rdata.c: presentation <-> wire for each
 * supported type, RFC 3597, malformed rdata, and the mnemonic tables. */
#include "dns/rdata.h"
#include "tap.h"
#include "dns/wire.h"

static const uint8_t origin[] = "\4mesh\0";
#define ORIGIN origin, sizeof(origin) - 1

static uint8_t wire[70000];
static size_t wlen;
static const char *why;

static int from(uint16_t type, const char *text)
{
	why = NULL;
	wlen = 0;
	return rdata_from_text(type, text, ORIGIN, wire, sizeof(wire), &wlen, &why);
}

static bool wire_is(const void *want, size_t len)
{
	if (wlen == len && memcmp(wire, want, len) == 0)
		return true;
	printf("#   got (%zu):", wlen);
	for (size_t i = 0; i < wlen && i < 80; i++)
		printf(" %02x", wire[i]);
	printf("\n");
	return false;
}

#define WIRE_IS(want) wire_is(want, sizeof(want) - 1)

/* Formats wire[0..wlen) as standalone rdata. */
static const char *text_of(uint16_t type)
{
	static char buf[4096];
	if (rdata_to_text(type, wire, wlen, 0, (uint16_t)wlen, buf, sizeof(buf)) < 0)
		return "(error)";
	return buf;
}

static const char *fmt(uint16_t type, const void *rd, size_t len)
{
	memcpy(wire, rd, len);
	wlen = len;
	return text_of(type);
}

/* from_text then to_text must give back want. */
static void round_trip(uint16_t type, const char *text, const char *want)
{
	if (from(type, text) != 0) {
		ok(0, "%s '%s' parses (%s)", rdata_type_name(type), text, why ? why : "?");
		return;
	}
	is_str(text_of(type), want, "%s '%s' round-trips", rdata_type_name(type), text);
}

static void test_addresses(void)
{
	ok(from(DNS_TYPE_A, "192.0.2.1") == 0 && WIRE_IS("\xc0\x00\x02\x01"), "A to wire");
	is_str(text_of(DNS_TYPE_A), "192.0.2.1", "A to text");
	ok(from(DNS_TYPE_A, "  10.0.0.1\t") == 0 && WIRE_IS("\x0a\0\0\1"), "A with blanks");
	ok(from(DNS_TYPE_A, "192.0.2") == -1 && why, "short A rejected with a message");
	ok(from(DNS_TYPE_A, "192.0.2.256") == -1, "A octet > 255 rejected");
	ok(from(DNS_TYPE_A, "::1") == -1, "IPv6 in A rejected");
	ok(from(DNS_TYPE_A, "1.2.3.4 5.6.7.8") == -1 && strcmp(why, "trailing data") == 0,
	   "two addresses rejected: trailing data");
	ok(from(DNS_TYPE_A, "") == -1, "empty A rejected");
	ok(from(DNS_TYPE_AAAA, "2001:db8::1") == 0 &&
	   WIRE_IS("\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\1"), "AAAA to wire");
	is_str(text_of(DNS_TYPE_AAAA), "2001:db8::1", "AAAA to text");
	ok(from(DNS_TYPE_AAAA, "1.2.3.4") == -1, "IPv4 in AAAA rejected");
	round_trip(DNS_TYPE_AAAA, "::ffff:192.0.2.1", "::ffff:192.0.2.1");
	is_str(fmt(DNS_TYPE_A, "\1\2\3", 3), "\\# 3 010203", "3-byte A printed as \\#");
	is_str(fmt(DNS_TYPE_AAAA, "\1\2\3\4", 4), "\\# 4 01020304", "4-byte AAAA printed as \\#");
}

static void test_names(void)
{
	ok(from(DNS_TYPE_CNAME, "user-service") == 0 && WIRE_IS("\14user-service\4mesh\0"),
	   "relative name completed with origin");
	ok(from(DNS_TYPE_NS, "ns1.example.") == 0 && WIRE_IS("\3ns1\7example\0"),
	   "absolute name kept");
	ok(from(DNS_TYPE_PTR, "@") == 0 && WIRE_IS("\4mesh\0"), "@ is the origin");
	ok(from(DNS_TYPE_CNAME, "a\\.b") == 0 && WIRE_IS("\3a.b\4mesh\0"),
	   "escaped dot is not a separator");
	ok(from(DNS_TYPE_CNAME, "a\\.") == 0 && WIRE_IS("\2a.\4mesh\0"),
	   "escaped final dot is relative");
	ok(from(DNS_TYPE_CNAME, "a\\\\.") == 0 && WIRE_IS("\2a\\\0"),
	   "escaped backslash then dot is absolute");
	ok(from(DNS_TYPE_CNAME, "Www.Mesh.") == 0 && WIRE_IS("\3Www\4Mesh\0"), "case kept");
	is_str(text_of(DNS_TYPE_CNAME), "Www.Mesh.", "name to text");
	ok(from(DNS_TYPE_CNAME, "a..b") == -1 && strcmp(why, "bad name") == 0, "empty label");
	ok(from(DNS_TYPE_CNAME, "a b") == -1, "two names rejected");
	ok(from(DNS_TYPE_CNAME, "") == -1 && strcmp(why, "missing name") == 0, "missing name");
	char big[300];
	memset(big, 'x', 63);
	memcpy(big + 63, ".", 1);
	memset(big + 64, 'y', 63);
	memcpy(big + 127, ".", 1);
	memset(big + 128, 'z', 63);
	memcpy(big + 191, ".", 1);
	memset(big + 192, 'w', 56);
	big[248] = '\0';
	ok(from(DNS_TYPE_NS, big) == 0 && wlen == 255, "249 + origin (6) = 255 bytes fits");
	big[248] = 'w';
	big[249] = '\0';
	ok(from(DNS_TYPE_NS, big) == -1, "one more byte with the origin is too long");

	uint8_t none[DNS_NAME_MAX];
	size_t len;
	why = NULL;
	ok(rdata_from_text(DNS_TYPE_NS, "a.b", NULL, 0, none, sizeof(none), &len, &why) == 0 &&
	   len == 5 && memcmp(none, "\1a\1b\0", 5) == 0, "no origin: relative is absolute");
	ok(rdata_from_text(DNS_TYPE_NS, "@", NULL, 0, none, sizeof(none), &len, &why) == -1,
	   "no origin: @ rejected");
	ok(rdata_from_text(DNS_TYPE_NS, "a.b.c", origin, sizeof(origin) - 1, none, 8, &len, &why) ==
	   -1 && strcmp(why, "data too long") == 0, "outcap too small");

	is_str(fmt(DNS_TYPE_NS, "\1a\0\0", 4), "\\# 4 01610000", "bytes after the name: \\#");
	is_str(fmt(DNS_TYPE_NS, "\1a", 2), "\\# 2 0161", "unterminated name: \\#");
	is_str(fmt(DNS_TYPE_NS, "\xc0\x00", 2), "\\# 2 c000", "pointer to itself: \\#");
	is_str(fmt(DNS_TYPE_CNAME, "", 0), "\\# 0", "empty CNAME: \\# 0");
	is_str(fmt(DNS_TYPE_CNAME, "\1.\1 \0", 5), "\\..\\032.", "name escapes in output");
}

static void test_mx_srv_soa(void)
{
	ok(from(DNS_TYPE_MX, "10 mail") == 0 && WIRE_IS("\0\12\4mail\4mesh\0"), "MX to wire");
	is_str(text_of(DNS_TYPE_MX), "10 mail.mesh.", "MX to text");
	ok(from(DNS_TYPE_MX, "65536 mail") == -1 && strcmp(why, "bad MX preference") == 0,
	   "MX preference > 65535");
	ok(from(DNS_TYPE_MX, "-1 mail") == -1, "negative MX preference");
	ok(from(DNS_TYPE_MX, "10") == -1 && strcmp(why, "missing name") == 0, "MX without name");
	ok(from(DNS_TYPE_SRV, "1 2 8080 backend-1.user-service") == 0 &&
	   WIRE_IS("\0\1\0\2\x1f\x90\11backend-1\14user-service\4mesh\0"), "SRV to wire");
	is_str(text_of(DNS_TYPE_SRV), "1 2 8080 backend-1.user-service.mesh.", "SRV to text");
	ok(from(DNS_TYPE_SRV, "1 2 x t") == -1 && strcmp(why, "bad SRV port") == 0, "bad SRV port");
	ok(from(DNS_TYPE_SRV, "1 2 3") == -1, "SRV without target");
	ok(from(DNS_TYPE_SRV, "0 0 0 .") == 0 && WIRE_IS("\0\0\0\0\0\0\0"), "SRV root target");
	is_str(text_of(DNS_TYPE_SRV), "0 0 0 .", "SRV root target to text");

	ok(from(DNS_TYPE_SOA, "ns1 hostmaster 2024010101 3600 600 86400 60") == 0 &&
	   WIRE_IS("\3ns1\4mesh\0\12hostmaster\4mesh\0\x78\xa3\xf1\x75\0\0\x0e\x10\0\0\x02\x58"
	           "\0\1\x51\x80\0\0\0\x3c"), "SOA to wire");
	is_str(text_of(DNS_TYPE_SOA), "ns1.mesh. hostmaster.mesh. 2024010101 3600 600 86400 60",
	       "SOA to text");
	round_trip(DNS_TYPE_SOA, "a. b. 4294967295 1h 10m 1w2d 1h30m", "a. b. 4294967295 3600 600 777600 5400");
	ok(from(DNS_TYPE_SOA, "a. b. 4294967296 1 1 1 1") == -1 && strcmp(why, "bad SOA serial") == 0,
	   "SOA serial > 2^32-1");
	ok(from(DNS_TYPE_SOA, "a. b. 1h 1 1 1 1") == -1, "SOA serial with units");
	ok(from(DNS_TYPE_SOA, "a. b. 1 1 1 1") == -1, "SOA with 4 numbers");
	ok(from(DNS_TYPE_SOA, "a. b. 1 1 1 1 1 1") == -1, "SOA with 6 numbers");
	ok(from(DNS_TYPE_SOA, "a. b. 1 h 1 1 1") == -1, "SOA unit without number");
	ok(from(DNS_TYPE_SOA, "a. b. 1 1x 1 1 1") == -1, "SOA unknown unit");

	/* Compressed names inside a message are followed. */
	static const uint8_t msg[] =
		"\0\0\0\0\0\0\0\0\0\0\0\0"
		"\4mesh\0"                          /* 12 */
		"\0\5\0\6\x1f\x90\3svc\xc0\x0c"     /* 18: SRV rdata, 12 bytes */
		"\0\12\xc0\x0c"                     /* 30: MX rdata, 4 bytes */
		"\xc0\x0c\5admin\xc0\x0c"           /* 34: SOA rdata, 30 bytes */
		"\0\0\0\1\0\0\0\2\0\0\0\3\0\0\0\4\0\0\0\5";
	char out[512];
	ok(rdata_to_text(DNS_TYPE_SRV, msg, sizeof(msg) - 1, 18, 12, out, sizeof(out)) > 0,
	   "compressed SRV target");
	is_str(out, "5 6 8080 svc.mesh.", "compressed SRV target read");
	rdata_to_text(DNS_TYPE_MX, msg, sizeof(msg) - 1, 30, 4, out, sizeof(out));
	is_str(out, "10 mesh.", "compressed MX exchange read");
	rdata_to_text(DNS_TYPE_SOA, msg, sizeof(msg) - 1, 34, 30, out, sizeof(out));
	is_str(out, "mesh. admin.mesh. 1 2 3 4 5", "compressed SOA names read");
	rdata_to_text(DNS_TYPE_SRV, msg, sizeof(msg) - 1, 18, 11, out, sizeof(out));
	is_str(out, "\\# 11 000500061f9003737663c0", "name running past rdlen: \\#");
	rdata_to_text(DNS_TYPE_SOA, msg, sizeof(msg) - 1, 34, 29, out, sizeof(out));
	ok(strncmp(out, "\\# 29 ", 6) == 0, "short SOA: \\#");
	is_int(rdata_to_text(DNS_TYPE_SRV, msg, sizeof(msg) - 1, 18, 200, out, sizeof(out)), -1,
	       "rdata range outside msg: -1");
	is_str(fmt(DNS_TYPE_MX, "\0\1", 2), "\\# 2 0001", "MX without exchange: \\#");
	is_str(fmt(DNS_TYPE_SRV, "\0\1\0\2\0\3\1a", 8), "\\# 8 0001000200030161",
	       "SRV with a bad target: \\#");
}

static void test_txt(void)
{
	ok(from(DNS_TYPE_TXT, "\"hello world\"") == 0 && WIRE_IS("\13hello world"), "quoted TXT");
	is_str(text_of(DNS_TYPE_TXT), "\"hello world\"", "TXT to text");
	ok(from(DNS_TYPE_TXT, "\"first\" \"second\"") == 0 && WIRE_IS("\5first\6second"),
	   "two strings");
	is_str(text_of(DNS_TYPE_TXT), "\"first\" \"second\"", "two strings to text");
	ok(from(DNS_TYPE_TXT, "bare") == 0 && WIRE_IS("\4bare"), "bare string");
	ok(from(DNS_TYPE_TXT, "\"\"") == 0 && WIRE_IS("\0"), "empty string");
	is_str(text_of(DNS_TYPE_TXT), "\"\"", "empty string to text");
	ok(from(DNS_TYPE_TXT, "\"a\\\"b\\\\c\\065\\255\"") == 0 && WIRE_IS("\7a\"b\\cA\xff"),
	   "escapes in TXT");
	is_str(text_of(DNS_TYPE_TXT), "\"a\\\"b\\\\cA\\255\"", "escapes out of TXT");
	ok(from(DNS_TYPE_TXT, "\"tab\there\"") == 0, "control character in quotes");
	is_str(text_of(DNS_TYPE_TXT), "\"tab\\009here\"", "control character as \\DDD");
	ok(from(DNS_TYPE_TXT, "\"open") == -1 && strcmp(why, "missing closing quote") == 0,
	   "unterminated quote");
	ok(from(DNS_TYPE_TXT, "\"a\\25\"") == -1, "short \\DD escape");
	ok(from(DNS_TYPE_TXT, "\"a\\256\"") == -1, "\\256 rejected");
	ok(from(DNS_TYPE_TXT, "") == -1 && strcmp(why, "missing TXT data") == 0, "empty TXT");
	ok(from(DNS_TYPE_TXT, "a\\") == -1, "trailing backslash");

	/* > 255 bytes are split into 255-byte strings. */
	static char t[1200];
	t[0] = '"';
	memset(t + 1, 'x', 600);
	t[601] = '"';
	t[602] = '\0';
	ok(from(DNS_TYPE_TXT, t) == 0 && wlen == 603, "600 bytes: three strings");
	ok(wire[0] == 255 && wire[256] == 255 && wire[512] == 90, "split 255 + 255 + 90");
	t[1 + 255] = '"';
	t[1 + 255 + 1] = '\0';
	ok(from(DNS_TYPE_TXT, t) == 0 && wlen == 256 && wire[0] == 255, "exactly 255: one string");

	is_str(fmt(DNS_TYPE_TXT, "\5abc", 4), "\\# 4 05616263", "string past rdlen: \\#");
	is_str(fmt(DNS_TYPE_TXT, "", 0), "\\# 0", "empty TXT rdata: \\#");
	is_str(fmt(DNS_TYPE_TXT, "\0\0", 2), "\"\" \"\"", "two empty strings");
}

static void test_generic(void)
{
	ok(from(DNS_TYPE_A, "\\# 4 0A000001") == 0 && WIRE_IS("\x0a\0\0\1"), "\\# for A");
	ok(from(257, "\\# 5 00 0569 7373") == 0 && WIRE_IS("\0\5iss"), "\\# hex split in words");
	ok(from(65280, "\\# 0") == 0 && wlen == 0, "\\# 0");
	ok(from(DNS_TYPE_A, "\\# 3 010203") == -1 && strcmp(why, "\\# data does not fit the type") == 0,
	   "\\# with a wrong shape for A");
	ok(from(DNS_TYPE_NS, "\\# 3 016100") == 0, "\\# name ok");
	ok(from(DNS_TYPE_NS, "\\# 3 016101") == -1, "\\# bad name");
	ok(from(DNS_TYPE_TXT, "\\# 3 05abcd") == -1, "\\# bad TXT");
	ok(from(65280, "\\# 2 0102 03") == -1, "\\# longer than its length");
	ok(from(65280, "\\# 3 0102") == -1, "\\# shorter than its length");
	ok(from(65280, "\\# 2 010") == -1, "\\# odd hex digits");
	ok(from(65280, "\\# 1 0g") == -1, "\\# bad hex");
	ok(from(65280, "\\# x") == -1, "\\# bad length");
	ok(from(65280, "\\#") == -1, "\\# without a length");
	ok(from(65280, "\\# 65536") == -1, "\\# length > 65535");
	ok(from(65280, "01 02") == -1 && strcmp(why, "type needs the \\# form") == 0,
	   "unknown type needs \\#");
	ok(from(DNS_TYPE_TXT, "\\#abc") == 0 && WIRE_IS("\4#abc"), "\\#abc is TXT text, not RFC 3597");
	is_str(fmt(65280, "\xde\xad", 2), "\\# 2 dead", "unknown type to text");
	is_str(fmt(DNS_TYPE_DS, "\1", 1), "\\# 1 01", "DS is printed generically");

	char small[8];
	memcpy(wire, "\1\2\3\4", 4);
	is_int(rdata_to_text(DNS_TYPE_A, wire, 4, 0, 4, small, 8), 7, "1.2.3.4 fits in 8");
	is_int(rdata_to_text(DNS_TYPE_A, wire, 4, 0, 4, small, 7), -1, "not in 7");
	is_int(rdata_to_text(65280, wire, 4, 0, 4, small, sizeof(small)), -1,
	       "generic that does not fit: -1");
	is_int(rdata_to_text(DNS_TYPE_A, wire, 4, 0, 4, small, 0), -1, "outcap 0");
}

static void test_mnemonics(void)
{
	static const struct { uint16_t code; const char *name; } t[] = {
		{ 1, "A" },       { 2, "NS" },      { 5, "CNAME" },  { 6, "SOA" },     { 12, "PTR" },
		{ 13, "HINFO" },  { 15, "MX" },     { 16, "TXT" },   { 28, "AAAA" },   { 33, "SRV" },
		{ 41, "OPT" },    { 43, "DS" },     { 46, "RRSIG" }, { 47, "NSEC" },   { 48, "DNSKEY" },
		{ 250, "TSIG" },  { 251, "IXFR" },  { 252, "AXFR" }, { 255, "ANY" },   { 257, "CAA" },
		{ 65, "HTTPS" },  { 64, "SVCB" },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		uint16_t code = 0;
		is_str(rdata_type_name(t[i].code), t[i].name, "type %u is %s", t[i].code, t[i].name);
		ok(rdata_type_from_name(t[i].name, &code) == 0 && code == t[i].code, "%s parses",
		   t[i].name);
	}
	uint16_t code = 0;
	is_str(rdata_type_name(65280), "TYPE65280", "unknown type");
	is_str(rdata_type_name(0), "TYPE0", "type 0");
	ok(rdata_type_from_name("aaaa", &code) == 0 && code == 28, "case-insensitive");
	ok(rdata_type_from_name("Srv", &code) == 0 && code == 33, "mixed case");
	ok(rdata_type_from_name("TYPE65280", &code) == 0 && code == 65280, "TYPEnnn");
	ok(rdata_type_from_name("type1", &code) == 0 && code == 1, "typennn");
	ok(rdata_type_from_name("TYPE65536", &code) == -1, "TYPE65536 rejected");
	ok(rdata_type_from_name("TYPE", &code) == -1, "TYPE alone rejected");
	ok(rdata_type_from_name("TYPE1x", &code) == -1, "TYPE1x rejected");
	ok(rdata_type_from_name("TYPE-1", &code) == -1, "TYPE-1 rejected");
	ok(rdata_type_from_name("FOO", &code) == -1, "unknown mnemonic rejected");
	ok(rdata_type_from_name("", &code) == -1, "empty rejected");

	is_str(rdata_class_name(1), "IN", "IN");
	is_str(rdata_class_name(3), "CH", "CH");
	is_str(rdata_class_name(255), "ANY", "ANY class");
	is_str(rdata_class_name(7), "CLASS7", "CLASS7");
	ok(rdata_class_from_name("ch", &code) == 0 && code == 3, "ch parses");
	ok(rdata_class_from_name("CLASS254", &code) == 0 && code == 254, "CLASS254 parses");
	ok(rdata_class_from_name("XX", &code) == -1, "unknown class rejected");

	static const char *const rc[] = { "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP",
		                          "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH",
		                          "NOTZONE" };
	for (unsigned i = 0; i < sizeof(rc) / sizeof(rc[0]); i++)
		is_str(rdata_rcode_name(i), rc[i], "rcode %u", i);
	is_str(rdata_rcode_name(16), "BADVERS", "rcode 16");
	is_str(rdata_rcode_name(17), "BADKEY", "rcode 17");
	is_str(rdata_rcode_name(18), "BADTIME", "rcode 18");
	is_str(rdata_rcode_name(23), "BADCOOKIE", "rcode 23");
	is_str(rdata_rcode_name(15), "RCODE15", "rcode 15");
	is_str(rdata_rcode_name(4095), "RCODE4095", "rcode 4095");

	is_str(rdata_opcode_name(0), "QUERY", "opcode 0");
	is_str(rdata_opcode_name(1), "IQUERY", "opcode 1");
	is_str(rdata_opcode_name(2), "STATUS", "opcode 2");
	is_str(rdata_opcode_name(4), "NOTIFY", "opcode 4");
	is_str(rdata_opcode_name(5), "UPDATE", "opcode 5");
	is_str(rdata_opcode_name(3), "OPCODE3", "opcode 3");
}

int main(void)
{
	test_addresses();
	test_names();
	test_mx_srv_soa();
	test_txt();
	test_generic();
	test_mnemonics();
	return done_testing();
}

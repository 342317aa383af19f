/* test_forward.c -- forward.c's pure parts: resolv.conf reading, the
 * own-address check that prevents loops, and the SERVFAIL we build. The
 * forwarder thread itself is tested against real servers in
 * tests/integration/test_forward.py. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "forward.h"
#include "tap.h"

static struct cfg_listen addr(const char *text)
{
	struct cfg_listen l;
	memset(&l, 0, sizeof(l));
	if (config_parse_listen(text, 53, &l) == -1)
		diag("bad test address %s", text);
	return l;
}

static void test_resolv_conf(void)
{
	char path[] = "/tmp/test_forward_resolvXXXXXX";
	int fd = mkstemp(path);
	const char *text = "# a comment\n"
	                   "search default.svc.cluster.local svc.cluster.local\n"
	                   "nameserver 10.96.0.10\n"
	                   "nameserver   fd00::10\n"
	                   "nameserver fe80::1%eth0\n"
	                   "nameserver not-an-address\n"
	                   "options ndots:5\n"
	                   "nameserver 127.0.0.53\n";
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		diag("short write");
	close(fd);
	struct cfg_listen out[4];
	size_t n = 99;
	char err[128];
	is_int(forward_read_resolv_conf(path, out, 4, &n, err, sizeof(err)), 0, "read");
	is_int(n, 3, "three usable nameservers (scoped and bad ones skipped)");
	struct cfg_listen want = addr("10.96.0.10:53");
	ok(n >= 1 && memcmp(&out[0].ss, &want.ss, want.len) == 0, "first: 10.96.0.10:53");
	want = addr("[fd00::10]:53");
	ok(n >= 2 && out[1].ss.ss_family == AF_INET6 && memcmp(&out[1].ss, &want.ss, want.len) == 0,
	   "IPv6 nameserver");
	is_int(forward_read_resolv_conf(path, out, 1, &n, err, sizeof(err)), 0, "read, max 1");
	is_int(n, 1, "at most max");
	unlink(path);
	is_int(forward_read_resolv_conf(path, out, 4, &n, err, sizeof(err)), -1, "missing file");
	ok(strstr(err, "No such file") != NULL, "error names the cause: %s", err);
}

static void test_is_self(void)
{
	struct cfg_listen listen[2] = { addr("127.0.0.53:53"), addr("[::1]:5353") };
	struct cfg_listen up = addr("127.0.0.53:53");
	ok(forward_is_self(&up, listen, 2), "our own address and port");
	up = addr("127.0.0.53:5300");
	ok(!forward_is_self(&up, listen, 2), "same address, other port");
	up = addr("127.0.0.54:53");
	ok(!forward_is_self(&up, listen, 2), "other address");
	up = addr("[::1]:5353");
	ok(forward_is_self(&up, listen, 2), "IPv6");
	struct cfg_listen any[1] = { addr("0.0.0.0:53") };
	up = addr("127.0.0.1:53");
	ok(forward_is_self(&up, any, 1), "wildcard listener: loopback is us");
	up = addr("192.0.2.99:53");
	ok(!forward_is_self(&up, any, 1), "wildcard listener: a foreign address is not");
	struct cfg_listen port0[1] = { addr("127.0.0.1:53") };
	memset(&((struct sockaddr_in *)&port0[0].ss)->sin_port, 0, 2);
	up = addr("127.0.0.1:53");
	ok(!forward_is_self(&up, port0, 1), "listen port 0 cannot be named in advance");
	/* issue 14: one query became 1,000 upstream queries through these. */
	up = addr("[::ffff:127.0.0.53]:53");
	ok(forward_is_self(&up, listen, 2), "IPv4-mapped IPv6 form of our address");
	up = addr("[::ffff:127.0.0.9]:53");
	ok(forward_is_self(&up, any, 1), "IPv4-mapped loopback, wildcard listener");
	up = addr("[::ffff:127.0.0.54]:53");
	ok(!forward_is_self(&up, listen, 2), "IPv4-mapped other address");
	struct cfg_listen mapped_listen[1] = { addr("[::ffff:127.0.0.53]:53") };
	up = addr("127.0.0.53:53");
	ok(forward_is_self(&up, mapped_listen, 1), "listening on the mapped form");
}

static void test_error(void)
{
	struct query_forward fq;
	memset(&fq, 0, sizeof(fq));
	wire_name_from_text("Www.Example.Test", fq.q.name, &fq.q.namelen);
	fq.q.qtype = DNS_TYPE_AAAA;
	fq.q.qclass = DNS_CLASS_IN;
	fq.id = 0x4242;
	fq.flags = DNS_FLAG_RD | DNS_FLAG_CD | DNS_FLAG_AD;
	fq.edns = CACHE_EDNS_DO;
	uint8_t out[512];
	int n = forward_error(&fq, DNS_RCODE_SERVFAIL, 1232, out, sizeof(out));
	ok(n == 12 + (int)fq.q.namelen + 4 + 11, "header, question, OPT (%d bytes)", n);
	struct wire_reader r;
	struct dns_header h;
	wire_reader_init(&r, out, (size_t)n);
	wire_read_header(&r, &h);
	is_int(h.id, 0x4242, "client's id");
	is_int(h.flags, DNS_FLAG_QR | DNS_FLAG_RA | DNS_FLAG_RD | DNS_FLAG_CD | DNS_RCODE_SERVFAIL,
	       "QR RA RD CD SERVFAIL, nothing else");
	ok(h.qdcount == 1 && h.ancount == 0 && h.nscount == 0 && h.arcount == 1, "counts");
	ok(memcmp(out + 12, fq.q.name, fq.q.namelen) == 0, "question in the client's case");
	ok(out[n - 4] == 0x80 && out[n - 8] == (1232 >> 8), "OPT with DO and our size");
	fq.edns = CACHE_EDNS_NONE;
	n = forward_error(&fq, DNS_RCODE_SERVFAIL, 1232, out, sizeof(out));
	wire_reader_init(&r, out, (size_t)n);
	wire_read_header(&r, &h);
	ok(h.arcount == 0 && (size_t)n == 12 + fq.q.namelen + 4, "no OPT without client EDNS");
	is_int(forward_error(&fq, DNS_RCODE_SERVFAIL, 1232, out, 20), -1, "too small a buffer");
}

int main(void)
{
	test_resolv_conf();
	test_is_self();
	test_error();
	return done_testing();
}

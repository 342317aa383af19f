/* test_notify.c -- NOTIFY to a secondary (notify.c), with a UDP socket of
 * ours as the secondary: the message (opcode 4, AA, the zone's SOA as its
 * question, no serial: RFC 1996 makes it optional), a retry with the same
 * id while unanswered, nothing more once answered, and with a key a TSIG
 * on the NOTIFY and an unsigned answer ignored (so it is sent again).
 * Takes about 5 s (the retries). The latest serial winning a burst is
 * tested with a real secondary (tests/integration/test_registry_live.py). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "notify.h"
#include "tap.h"
#include "dns/wire.h"

static int sec;
static struct sockaddr_in sec_addr;

struct got {
	bool ok;
	uint16_t id, flags, qtype, arcount;
	uint16_t last_type;           /* type of the last record (TSIG: 250) */
	struct sockaddr_in from;
};

/* The next datagram within ms, parsed. */
static struct got receive(int ms)
{
	struct got g = { 0 };
	struct pollfd p = { .fd = sec, .events = POLLIN };
	if (poll(&p, 1, ms) != 1)
		return g;
	uint8_t buf[1024];
	socklen_t fl = sizeof(g.from);
	ssize_t n = recvfrom(sec, buf, sizeof(buf), 0, (struct sockaddr *)&g.from, &fl);
	if (n < DNS_HEADER_LEN)
		return g;
	struct wire_reader r;
	struct dns_header h;
	struct dns_question q;
	wire_reader_init(&r, buf, (size_t)n);
	wire_read_header(&r, &h);
	wire_read_question(&r, &q);
	g.id = h.id;
	g.flags = h.flags;
	g.qtype = q.qtype;

	g.arcount = h.arcount;
	for (unsigned i = 0; i < (unsigned)h.ancount + h.nscount + h.arcount && !r.err; i++) {
		struct dns_rr rr;
		wire_read_rr(&r, &rr);
		g.last_type = rr.type;
	}
	g.ok = !r.err;
	return g;
}

/* The secondary's answer to g: the header turned into a response. */
static void answer(const struct got *g)
{
	uint8_t buf[DNS_HEADER_LEN] = { (uint8_t)(g->id >> 8), (uint8_t)g->id,
		                        (uint8_t)((g->flags >> 8) | 0x80), 0 };
	sendto(sec, buf, sizeof(buf), 0, (const struct sockaddr *)&g->from, sizeof(g->from));
}

static struct notify_job job(uint32_t serial, bool keyed)
{
	struct notify_job j;
	memset(&j, 0, sizeof(j));
	memcpy(&j.addr, &sec_addr, sizeof(sec_addr));
	j.addrlen = sizeof(sec_addr);
	wire_name_from_text("mesh.", j.zone, &j.zonelen);
	j.serial = serial;
	if (keyed) {
		j.has_key = true;
		wire_name_from_text("k.", j.key.name, &j.key.namelen);
		j.key.alg = TSIG_HMAC_SHA256;
		memset(j.key.secret, 7, 32);
		j.key.secretlen = 32;
	}
	return j;
}

int main(void)
{
	sec = socket(AF_INET, SOCK_DGRAM, 0);
	sec_addr.sin_family = AF_INET;
	sec_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t al = sizeof(sec_addr);
	if (sec < 0 || bind(sec, (struct sockaddr *)&sec_addr, sizeof(sec_addr)) != 0 ||
	    getsockname(sec, (struct sockaddr *)&sec_addr, &al) != 0)
		return 1;
	char err[128];
	struct notifier *ns = notify_start(err, sizeof(err));
	ok(ns != NULL, "the NOTIFY thread starts");

	struct notify_job j = job(7, false);
	notify_submit(ns, &j, 1);
	struct got g = receive(3000);
	ok(g.ok && DNS_OPCODE(g.flags) == DNS_OPCODE_NOTIFY && (g.flags & DNS_FLAG_AA) &&
	   !(g.flags & DNS_FLAG_QR) && g.qtype == DNS_TYPE_SOA && g.arcount == 0,
	   "a NOTIFY: opcode 4, AA, the zone's SOA as question, unsigned");
	struct got again = receive(2500);
	ok(again.ok && again.id == g.id, "unanswered: sent again after a second, same id");
	answer(&again);
	struct got none = receive(2500);
	ok(!none.ok, "answered: nothing more");

	j = job(11, true);
	notify_submit(ns, &j, 1);
	g = receive(3000);
	ok(g.ok && g.arcount >= 1 && g.last_type == DNS_TYPE_TSIG,
	   "a secondary with a key: the NOTIFY is signed (TSIG last)");
	answer(&g);                   /* unsigned: not a valid answer */
	again = receive(2500);
	ok(again.ok && again.id == g.id && again.last_type == DNS_TYPE_TSIG,
	   "an unsigned answer is ignored: sent again, signed");
	notify_stop(ns);
	close(sec);
	return done_testing();
}

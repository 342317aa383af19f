/* fuzz_xfr.c -- xfr_process (xfr.c) for any bytes: the first request
 * stage of every packet (TSIG verification, transfer ACLs, AXFR and IXFR
 * over TCP and UDP, NOTIFY), against two zones: one open to 127.0.0.0/8,
 * one that needs a key, and a change between two snapshots (serial 100,
 * then 101) so that IXFR from 100 has a difference to send. The first input byte picks the transport
 * (odd: TCP); a stream must be well framed, an answer a response. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "wire.h"
#include "xfr.h"
#include "zone.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define YAML_HEAD                                                                                  \
	"keys:\n"                                                                                  \
	"  - {name: k, algorithm: hmac-sha256, secret: "                                           \
	"\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"}\n"                                      \
	"zones:\n"                                                                                 \
	"  - name: mesh\n"                                                                         \
	"    soa: {serial: 100}\n"                                                                 \
	"    transfer: {allow: [127.0.0.0/8]}\n"                                                   \
	"    records:\n"                                                                           \
	"      - {name: ns1, type: A, data: 127.0.0.1}\n"                                          \
	"      - {name: txt, type: TXT, data: '\"a\" \"b\"'}\n"                                     \
	"      - {name: sub, type: NS, data: ns.sub}\n"                                            \
	"      - {name: ns.sub, type: A, data: 127.0.0.53}\n"
#define YAML_TAIL                                                                                  \
	"    services:\n"                                                                          \
	"      - name: user-service\n"                                                             \
	"        ports: {http: 5000, grpc: {port: 9000, proto: udp}}\n"                            \
	"        backends: [127.0.0.11, 127.0.0.12, 'fd00::1', {address: 127.0.0.13, name: u3}]\n" \
	"  - name: keyed.test\n"                                                                   \
	"    transfer: {keys: [k]}\n"                                                              \
	"    records:\n"                                                                           \
	"      - {name: a, type: AAAA, data: '::1'}\n"

static const char yaml1[] = YAML_HEAD YAML_TAIL;
/* The second snapshot: one record more, one service backend less. */
static const char yaml2[] = YAML_HEAD "      - {name: new, type: A, data: 192.0.2.7}\n" YAML_TAIL;

static struct config *cfg1, *cfg2;

static void setup(void)
{
	struct config_error ce;
	struct zone_snapshot *s1, *s2;
	char err[256];
	log_set_level(LOG_LEVEL_ERR);
	if (config_load_string(yaml1, sizeof(yaml1) - 1, "fuzz.yaml", &cfg1, &ce) != 0 ||
	    config_load_string(yaml2, sizeof(yaml2) - 1, "fuzz.yaml", &cfg2, &ce) != 0 ||
	    zone_build(cfg1, NULL, NULL, NULL, NULL, NULL, &s1, err, sizeof(err)) != 0 ||
	    xfr_configure(cfg1) != 0)
		abort();
	zone_publish(s1);
	xfr_published(s1, NULL);
	if (zone_build(cfg2, s1, NULL, NULL, NULL, NULL, &s2, err, sizeof(err)) != 0)
		abort();
	struct zone_snapshot *prev = zone_swap(s2);
	xfr_published(s2, prev);
	zone_free(prev);              /* single-threaded: no reader holds it */
}

/* A stream is 2-byte-length-framed DNS responses filling it exactly. */
static void check_stream(const uint8_t *s, size_t n)
{
	size_t off = 0;
	while (off < n) {
		if (n - off < 2)
			abort();
		size_t len = (size_t)s[off] << 8 | s[off + 1];
		off += 2;
		if (len < DNS_HEADER_LEN || len > n - off || !(s[off + 2] & 0x80))
			abort();
		off += len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t resp[65535];
	if (!cfg1)
		setup();
	if (size < 1)
		return 0;
	bool tcp = data[0] & 1;
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	struct xfr_signed sig;
	uint8_t *stream = NULL;
	size_t slen = 0;
	size_t cap = tcp ? sizeof(resp) : 1232;
	int n = xfr_process(data + 1, size - 1, resp, cap, (const struct sockaddr *)&peer, tcp, &sig,
	                    &stream, &slen);
	if (n == XFR_STREAM) {
		if (!tcp)
			abort();
		check_stream(stream, slen);
		free(stream);
	} else if (n == XFR_SIGNED) {
		/* As a server would: an answer to the unsigned copy, signed. */
		if (sig.reqlen < DNS_HEADER_LEN || sig.reqlen > size)
			abort();
		int m = wire_reply_short(&(struct dns_header){ .id = 1 }, NULL, DNS_RCODE_NOERROR, 0,
		                         resp, cap);
		xfr_sign_answer(&sig, resp, m, cap);
	} else if (n > 0) {
		if ((size_t)n > cap || n < DNS_HEADER_LEN || !(resp[2] & 0x80))
			abort();
	} else if (n != XFR_PASS && n != -1) {
		abort();
	}
	return 0;
}

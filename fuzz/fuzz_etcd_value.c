/* fuzz_etcd_value.c -- etcd.c's parsers of the SkyDNS/CoreDNS layout: the
 * input as a value (parse -> JSON again -> parse must give the same record)
 * and as a key below /skydns/ (owner -> key again -> parse must give the
 * same owner and id). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <jansson.h>

#include "etcd.h"
#include "dns/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

static void value_round_trip(const uint8_t *data, size_t size)
{
	struct etcd_value v, w;
	const char *why = NULL;
	if (etcd_parse_value((const char *)data, size, &v, &why) != 0) {
		CHECK(why != NULL);
		return;
	}
	CHECK(v.family == AF_INET || v.family == AF_INET6);
	CHECK(v.weight >= 1 && v.ttl <= INT32_MAX);
	CHECK(v.textlen <= ETCD_TEXT_MAX && v.text[v.textlen] == '\0' &&
	      strlen(v.text) == v.textlen);
	char host[INET6_ADDRSTRLEN];
	CHECK(inet_ntop(v.family, v.addr, host, sizeof(host)) != NULL);
	json_t *j = json_pack("{s:s, s:I, s:I, s:I, s:I, s:s#}", "host", host, "port",
	                      (json_int_t)v.port, "priority", (json_int_t)v.priority, "weight",
	                      (json_int_t)v.weight, "ttl", (json_int_t)v.ttl, "text", v.text,
	                      (int)v.textlen);
	CHECK(j != NULL);
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	CHECK(s != NULL);
	CHECK(etcd_parse_value(s, strlen(s), &w, NULL) == 0);
	free(s);
	CHECK(w.family == v.family && memcmp(w.addr, v.addr, 16) == 0 && w.port == v.port &&
	      w.priority == v.priority && w.weight == v.weight && w.ttl == v.ttl &&
	      w.textlen == v.textlen && memcmp(w.text, v.text, v.textlen) == 0);
}

static void key_round_trip(const uint8_t *data, size_t size)
{
	static const char prefix[] = "/skydns/";
	char key[8 + 2048];
	size_t n = size < 2048 ? size : 2048;
	memcpy(key, prefix, 8);
	memcpy(key + 8, data, n);
	uint8_t owner[DNS_NAME_MAX], owner2[DNS_NAME_MAX];
	size_t ol, il, ol2, il2;
	const char *id, *id2;
	if (etcd_parse_key(prefix, key, 8 + n, owner, &ol, &id, &il) != 0)
		return;
	CHECK(wire_name_valid(owner, ol) && wire_name_labels(owner, ol) >= 1);
	CHECK(il >= 1 && il <= ETCD_ID_MAX && id >= key && id + il == key + 8 + n);
	/* The key again from the owner: its labels reversed under the prefix. */
	char again[8 + 2048 + DNS_NAME_MAX + 2];
	size_t len = 0;
	memcpy(again, prefix, 8);
	len = 8;
	unsigned labels = wire_name_labels(owner, ol);
	for (unsigned i = labels; i-- > 0; ) {
		size_t off = wire_name_skip_labels(owner, ol, i);
		memcpy(again + len, owner + off + 1, owner[off]);
		len += owner[off];
		again[len++] = '/';
	}
	memcpy(again + len, id, il);
	len += il;
	CHECK(etcd_parse_key(prefix, again, len, owner2, &ol2, &id2, &il2) == 0);
	CHECK(ol2 == ol && memcmp(owner2, owner, ol) == 0 && il2 == il && memcmp(id2, id, il) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	value_round_trip(data, size);
	key_round_trip(data, size);
	return 0;
}

/* test_etcd.c -- etcd.c's pure parsers (SkyDNS/CoreDNS key and value
 * layout) and the etcd: section of the configuration. The client thread is
 * tested against a real etcd cluster in tests/integration/test_etcd.py. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "config.h"
#include "etcd.h"
#include "tap.h"
#include "dns/wire.h"

/* The owner of key as text ("user-service.mesh."), or "ERR". */
static const char *key_owner(const char *prefix, const char *key, char id[300])
{
	static char text[DNS_NAME_MAX * 4 + 2];
	uint8_t owner[DNS_NAME_MAX];
	size_t ownerlen = 0, idlen = 0;
	const char *idp = NULL;
	id[0] = '\0';
	if (etcd_parse_key(prefix, key, strlen(key), owner, &ownerlen, &idp, &idlen) != 0)
		return "ERR";
	if (!wire_name_valid(owner, ownerlen) || wire_name_to_text(owner, ownerlen, text,
	                                                          sizeof(text)) < 0)
		return "INVALID";
	snprintf(id, 300, "%.*s", (int)idlen, idp);
	return text;
}

static void test_keys(void)
{
	char id[300];
	is_str(key_owner("/skydns/", "/skydns/mesh/user-service/x", id), "user-service.mesh.",
	       "labels are reversed: /skydns/mesh/user-service/x");
	is_str(id, "x", "the last part is the instance id");
	is_str(key_owner("/skydns/", "/skydns/local/cluster/svc/ns/web/10-0-0-1", id),
	       "web.ns.svc.cluster.local.", "a deep key");
	is_str(id, "10-0-0-1", "its id");
	is_str(key_owner("/skydns/", "/skydns/Mesh/User-Service/AbC", id), "user-service.mesh.",
	       "the owner is lowercased");
	is_str(id, "AbC", "the id keeps its case");
	is_str(key_owner("/skydns/", "/skydns/mesh/x", id), "mesh.", "one label and an id");
	is_str(key_owner("/reg/", "/reg/mesh/a/1", id), "a.mesh.", "another prefix");
	is_str(key_owner("/skydns/", "/skydns/x", id), "ERR", "no label: rejected");
	is_str(key_owner("/skydns/", "/skydns/", id), "ERR", "the prefix itself: rejected");
	is_str(key_owner("/skydns/", "/skydns/mesh/a/", id), "ERR", "empty id: rejected");
	is_str(key_owner("/skydns/", "/skydns//a/x", id), "ERR", "empty first label: rejected");
	is_str(key_owner("/skydns/", "/skydns/mesh//x", id), "ERR", "empty label: rejected");
	is_str(key_owner("/skydns/", "/skydnsx/mesh/a/x", id), "ERR", "outside the prefix");
	is_str(key_owner("/skydns/", "/other/mesh/a/x", id), "ERR", "another prefix: rejected");
	is_str(key_owner("/skydns/", "/skydns/mesh/a.b/x", id), "ERR", "a dot in a label");
	is_str(key_owner("/skydns/", "/skydns/mesh/a b/x", id), "ERR", "a space in a label");
	is_str(key_owner("/skydns/", "/skydns/mesh/a/x y", id), "ERR", "a space in the id");

	char key[1200];
	snprintf(key, sizeof(key), "/skydns/mesh/%0*d/x", 63, 0);
	is_str(key_owner("/skydns/", key, id), "000000000000000000000000000000000000000000000000"
	       "000000000000000.mesh.", "a 63-byte label");
	snprintf(key, sizeof(key), "/skydns/mesh/%0*d/x", 64, 0);
	is_str(key_owner("/skydns/", key, id), "ERR", "a 64-byte label: rejected");
	/* 4 labels of 63 bytes and "mesh" make 4*64+5+1 = 262 > 255. */
	char l63[64];
	memset(l63, 'a', 63);
	l63[63] = '\0';
	snprintf(key, sizeof(key), "/skydns/mesh/%s/%s/%s/x", l63, l63, l63);
	ok(strcmp(key_owner("/skydns/", key, id), "ERR") != 0, "a 203-byte name");
	snprintf(key, sizeof(key), "/skydns/mesh/%s/%s/%s/%s/x", l63, l63, l63, l63);
	is_str(key_owner("/skydns/", key, id), "ERR", "a name over 255 bytes: rejected");
	/* 130 one-byte labels: the label array bound. */
	char *p = key + snprintf(key, sizeof(key), "/skydns");
	for (int i = 0; i < 130; i++)
		p += sprintf(p, "/a");
	sprintf(p, "/x");
	is_str(key_owner("/skydns/", key, id), "ERR", "130 labels: rejected");
	snprintf(key, sizeof(key), "/skydns/mesh/a/%0*d", ETCD_ID_MAX + 1, 0);
	is_str(key_owner("/skydns/", key, id), "ERR", "an id over ETCD_ID_MAX: rejected");
	/* Not terminated where keylen ends. */
	uint8_t owner[DNS_NAME_MAX];
	size_t ol, il;
	const char *idp;
	const char *k = "/skydns/mesh/a/xyz-garbage";
	ok(etcd_parse_key("/skydns/", k, strlen("/skydns/mesh/a/xyz"), owner, &ol, &idp, &il) == 0 &&
	   il == 3 && memcmp(idp, "xyz", 3) == 0, "keylen, not the NUL, ends the key");
}

static int value(const char *json, struct etcd_value *v, const char **why)
{
	return etcd_parse_value(json, strlen(json), v, why);
}

static void test_values(void)
{
	struct etcd_value v;
	const char *why = NULL;
	char host[INET6_ADDRSTRLEN];

	is_int(value("{\"host\":\"10.0.0.5\",\"port\":5000,\"priority\":10,\"weight\":50,"
	             "\"ttl\":30,\"text\":\"hello\"}", &v, &why), 0, "a full SkyDNS value");
	inet_ntop(v.family, v.addr, host, sizeof(host));
	ok(v.family == AF_INET && strcmp(host, "10.0.0.5") == 0, "host 10.0.0.5");
	ok(v.port == 5000 && v.priority == 10 && v.weight == 50 && v.ttl == 30, "port, priority, "
	   "weight, ttl");
	ok(v.textlen == 5 && strcmp(v.text, "hello") == 0, "text");

	is_int(value("{\"host\":\"fd00::5\"}", &v, &why), 0, "host alone (IPv6)");
	ok(v.family == AF_INET6 && v.port == 0 && v.priority == 0 && v.ttl == 0 && v.textlen == 0 &&
	   v.text[0] == '\0', "absent fields read as 0, text as \"\"");
	is_int(v.weight, ETCD_WEIGHT_DEFAULT, "absent weight: the default");
	is_int(value("{\"host\":\"10.0.0.1\",\"weight\":0}", &v, &why), 0, "weight 0");
	is_int(v.weight, ETCD_WEIGHT_DEFAULT, "weight 0 reads as the default (as CoreDNS)");
	is_int(value("{\"host\":\"10.0.0.1\",\"port\":null,\"text\":null}", &v, &why), 0,
	       "null members read as absent");
	is_int(value("{\"host\":\"10.0.0.1\",\"mail\":false,\"group\":\"g\",\"targetstrip\":1,"
	             "\"key\":\"/x\"}", &v, &why), 0, "CoreDNS's other members are ignored");
	is_int(value(" {\"host\" : \"10.0.0.1\"}\n", &v, &why), 0, "white space around");
	is_int(value("{\"host\":\"10.0.0.1\",\"port\":65535,\"priority\":65535,\"weight\":65535,"
	             "\"ttl\":2147483647}", &v, &why), 0, "the largest numbers");
	ok(v.port == 65535 && v.priority == 65535 && v.weight == 65535 && v.ttl == 2147483647u,
	   "kept exactly");

	static const struct { const char *json, *what; } badv[] = {
		{ "", "empty" },
		{ "null", "null" },
		{ "[]", "an array" },
		{ "\"10.0.0.1\"", "a string" },
		{ "{}", "no host" },
		{ "{\"host\":\"example.com\"}", "host a name, not an address" },
		{ "{\"host\":\"10.0.0.256\"}", "host a bad IPv4 address" },
		{ "{\"host\":\"fe80::1%eth0\"}", "host with a zone" },
		{ "{\"host\":10}", "host a number" },
		{ "{\"host\":\"10.0.0.1\",\"port\":65536}", "port 65536" },
		{ "{\"host\":\"10.0.0.1\",\"port\":-1}", "port -1" },
		{ "{\"host\":\"10.0.0.1\",\"port\":\"80\"}", "port a string" },
		{ "{\"host\":\"10.0.0.1\",\"port\":80.0}", "port a real" },
		{ "{\"host\":\"10.0.0.1\",\"port\":1e3}", "port in exponent form" },
		{ "{\"host\":\"10.0.0.1\",\"priority\":70000}", "priority over 65535" },
		{ "{\"host\":\"10.0.0.1\",\"weight\":70000}", "weight over 65535" },
		{ "{\"host\":\"10.0.0.1\",\"ttl\":2147483648}", "ttl over 2^31-1" },
		{ "{\"host\":\"10.0.0.1\",\"ttl\":99999999999999999999999}", "ttl over int64" },
		{ "{\"host\":\"10.0.0.1\",\"text\":5}", "text a number" },
		{ "{\"host\":\"10.0.0.1\",\"text\":\"a\\u0000b\"}", "text with a NUL" },
		{ "{\"host\":\"10.0.0.1\",\"host\":\"10.0.0.2\"}", "a duplicate key" },
		{ "{\"host\":\"10.0.0.1\"} x", "trailing bytes" },
		{ "{\"host\":\"10.0.0.1\"", "cut short" },
		{ "{\"host\":\"10.0.0.1\",}", "a trailing comma" },
	};
	for (size_t i = 0; i < sizeof(badv) / sizeof(badv[0]); i++) {
		why = NULL;
		ok(value(badv[i].json, &v, &why) == -EINVAL && why, "malformed: %s", badv[i].what);
	}

	char json[600];
	char text[ETCD_TEXT_MAX + 2];
	memset(text, 't', ETCD_TEXT_MAX);
	text[ETCD_TEXT_MAX] = '\0';
	snprintf(json, sizeof(json), "{\"host\":\"10.0.0.1\",\"text\":\"%s\"}", text);
	ok(value(json, &v, &why) == 0 && v.textlen == ETCD_TEXT_MAX, "text of 255 bytes");
	memset(text, 't', ETCD_TEXT_MAX + 1);
	text[ETCD_TEXT_MAX + 1] = '\0';
	snprintf(json, sizeof(json), "{\"host\":\"10.0.0.1\",\"text\":\"%s\"}", text);
	is_int(value(json, &v, &why), -EINVAL, "text of 256 bytes: malformed");

	/* len bounds the input: the same bytes with a shorter len are cut short. */
	const char *full = "{\"host\":\"10.0.0.1\"}";
	is_int(etcd_parse_value(full, strlen(full) - 1, &v, &why), -EINVAL,
	       "len, not the NUL, ends the value");
	/* Deep nesting under an ignored member must not crash or pass. */
	char deep[5000];
	size_t n = (size_t)snprintf(deep, sizeof(deep), "{\"host\":\"10.0.0.1\",\"x\":");
	for (int i = 0; i < 2200; i++)
		deep[n++] = '[';
	deep[n] = '\0';
	is_int(value(deep, &v, &why), -EINVAL, "2200 nested arrays: rejected");
}

static struct config *load(const char *yaml, char *err, size_t errlen)
{
	struct config *cfg = NULL;
	struct config_error ce;
	if (config_load_string(yaml, strlen(yaml), "t.yaml", &cfg, &ce) == -1) {
		snprintf(err, errlen, "%s", ce.msg);
		return NULL;
	}
	return cfg;
}

#define ZONES "zones:\n  - name: mesh\n"

static void test_config(void)
{
	char err[600];
	struct config *cfg = load(ZONES, err, sizeof(err));
	ok(cfg && cfg->etcd.nendpoints == 0, "no etcd: section: off");
	config_free(cfg);

	cfg = load(ZONES "etcd:\n  endpoints: [127.0.0.1:2379, \"http://127.0.0.2:2379\"]\n",
	           err, sizeof(err));
	ok(cfg && cfg->etcd.nendpoints == 2 && strcmp(cfg->etcd.endpoints[1],
	   "http://127.0.0.2:2379") == 0, "two endpoints");
	ok(cfg && strcmp(cfg->etcd.prefix, "/skydns/") == 0 && cfg->etcd.dial_timeout_ms == 2000 &&
	   cfg->etcd.request_timeout_ms == 5000 && cfg->etcd.max_value_size == 4096 &&
	   !cfg->etcd.username && !cfg->etcd.tls_ca, "defaults: /skydns/, 2 s, 5 s, 4096, no auth");
	config_free(cfg);

	cfg = load(ZONES "etcd:\n  endpoints: 127.0.0.1:2379\n  prefix: /reg\n  dial-timeout: 300ms\n"
	           "  request-timeout: 3s\n  max-value-size: 1024\n  username: root\n"
	           "  password: pw\n  tls-ca: /dev/null\n  tls-cert: /dev/null\n  tls-key: /dev/null\n",
	           err, sizeof(err));
	ok(cfg && cfg->etcd.nendpoints == 1 && strcmp(cfg->etcd.prefix, "/reg/") == 0 &&
	   cfg->etcd.dial_timeout_ms == 300 && cfg->etcd.request_timeout_ms == 3000 &&
	   cfg->etcd.max_value_size == 1024 && strcmp(cfg->etcd.username, "root") == 0 &&
	   strcmp(cfg->etcd.password, "pw") == 0 && strcmp(cfg->etcd.tls_key, "/dev/null") == 0,
	   "every key; a '/' is added to the prefix");
	if (!cfg)
		diag("%s", err);
	config_free(cfg);

	static const struct { const char *yaml, *sub, *what; } badc[] = {
		{ ZONES "etcd:\n  prefix: /x/\n", "missing required key 'endpoints'", "no endpoints" },
		{ ZONES "etcd:\n  endpoints: []\n", "empty list", "empty endpoints" },
		{ ZONES "etcd:\n  endpoints: [a:1, a:1]\n", "duplicate", "a duplicate endpoint" },
		{ ZONES "etcd:\n  endpoints: ftp://a:1\n", "http or https", "another scheme" },
		{ ZONES "etcd:\n  endpoints: a:1\n  prefix: skydns\n", "must start with '/'",
		  "a relative prefix" },
		{ ZONES "etcd:\n  endpoints: a:1\n  username: u\n", "together", "user without password" },
		{ ZONES "etcd:\n  endpoints: a:1\n  tls-cert: /dev/null\n", "together",
		  "cert without key" },
		{ ZONES "etcd:\n  endpoints: a:1\n  tls-ca: /nonexistent/ca.pem\n", "No such file",
		  "a missing CA file" },
		{ ZONES "etcd:\n  endpoints: a:1\n  max-value-size: 10\n", "64..", "a tiny value limit" },
		{ ZONES "etcd:\n  endpoints: a:1\n  prefx: /x/\n", "did you mean 'prefix'",
		  "a misspelt key" },
	};
	for (size_t i = 0; i < sizeof(badc) / sizeof(badc[0]); i++) {
		err[0] = '\0';
		cfg = load(badc[i].yaml, err, sizeof(err));
		ok(!cfg && strstr(err, badc[i].sub), "config rejects %s", badc[i].what);
		if (cfg || !strstr(err, badc[i].sub))
			diag("got: %s", cfg ? "success" : err);
		config_free(cfg);
	}
}

static void nop_begin(void *ud, int64_t rev) { (void)ud; (void)rev; }
static void nop_kv(void *ud, const struct etcd_kv *kv) { (void)ud; (void)kv; }
static void nop_end(void *ud, int64_t rev, size_t n) { (void)ud; (void)rev; (void)n; }

/* etcd_new's argument checks, and a client that never reaches etcd stops
 * at once and says why. */
static void test_lifetime(void)
{
	char err[256] = "";
	struct etcd_callbacks cb = { nop_begin, nop_kv, nop_end, nop_kv, NULL };
	char *eps[] = { "127.0.0.1:1" };
	struct cfg_etcd cfg = { .endpoints = eps, .nendpoints = 1, .prefix = "/skydns",
	                        .request_timeout_ms = 5000, .max_value_size = 4096 };
	ok(etcd_new(&cfg, &cb, err, sizeof(err)) == NULL && err[0], "a prefix without '/': refused");
	cfg.prefix = "/skydns/";
	cb.event = NULL;
	ok(etcd_new(&cfg, &cb, err, sizeof(err)) == NULL, "a missing callback: refused");
	cb.event = nop_kv;
	cfg.dial_timeout_ms = 100;
	struct etcd *e = etcd_new(&cfg, &cb, err, sizeof(err));
	ok(e != NULL, "started against a closed port");
	struct etcd_status st = { 0 };
	for (int i = 0; e && i < 200; i++) {
		etcd_status(e, &st);
		if (st.errors)
			break;
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000000 }, NULL);
	}
	ok(st.errors > 0 && !st.synced && !st.connected && st.stale_since_ms > 0 &&
	   st.last_error[0] && strcmp(st.endpoint, "http://127.0.0.1:1") == 0,
	   "status: errors counted, not synced, stale, the endpoint and why");
	etcd_free(e);
	etcd_free(NULL);
	ok(1, "etcd_free stops it; etcd_free(NULL) is a no-op");
}

int main(void)
{
	test_keys();
	test_values();
	test_config();
	test_lifetime();
	return done_testing();
}

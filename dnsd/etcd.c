/* etcd.c -- the etcd client thread (v3 JSON gateway over HTTP/1.1 via
 * libcurl) and the pure parsers of the SkyDNS/CoreDNS key and value layout.
 * It reads and follows one prefix; what a record means is the caller's.
 *
 * Protocol (checked on etcd 3.4.23): POST /v3/kv/range pages through the
 * prefix at one revision R; POST /v3/watch from R + 1 streams one JSON
 * object per line. int64 fields are JSON strings, keys and values base64.
 * A watch whose start revision was compacted answers "compact_revision"
 * and is cancelled (the stream stays open: we close it) and we read the
 * range again. Any other failure moves to the next endpoint and resumes
 * the watch from the last delivered revision + 1, after a backoff once
 * every endpoint has failed in a row. */
#include "etcd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "util/clock.h"
#include "util/log.h"

enum {
	/* All the raw records of one snapshot (SNAPSHOT_MAX: 100,000 records
	 * of 200 bytes are 20 MB). */
	SNAPSHOT_MAX = 1 << 30,
	/* Keys per range page. A page is parsed whole (jansson: ~10 MB for
	 * 10,000 records), so this bounds the memory of one step; a page over
	 * RESP_MAX halves it and retries. etcd 3.4 counts the whole range for
	 * every page and its gateway is slow to write JSON: 100,000 records
	 * take ~3.5 s in pages of 1,000 and ~2.5 s in pages of 10,000. */
	PAGE_KEYS = 10000,
	/* Largest response body or watch line we buffer: more is an error. */
	RESP_MAX = 64 << 20,
	BACKOFF_MIN_MS = 100,
	BACKOFF_MAX_MS = 5000,
	/* At most one log line per kind per this many ms (skipped values,
	 * connection errors): a broken registrator or a long etcd outage must
	 * not flood the log. */
	LOG_EVERY_MS = 10000,
};

struct buf {
	char *p;
	size_t len, cap;
	size_t max;                   /* 0: RESP_MAX */
};

struct ratelimit {
	uint64_t last_ms;             /* monotonic; 0: never logged */
	uint64_t suppressed;
};

struct etcd {
	/* Set by etcd_new, then read-only. */
	char **urls;                  /* base URLs, no trailing '/' */
	size_t nurls;
	char *prefix;
	size_t prefixlen;
	char *b64_key, *b64_end;      /* the prefix and its range_end, base64 */
	uint32_t dial_ms, req_ms, max_value;
	char *user, *password, *ca, *cert, *key;
	struct etcd_callbacks cb;

	CURLM *multi;                 /* the thread's; etcd_free only wakes it */
	pthread_t thread;
	atomic_bool stop;

	pthread_mutex_t lock;         /* guards st */
	struct etcd_status st;

	/* The thread's own state. */
	size_t cur;                   /* endpoint in use */
	int64_t rev;                  /* last revision delivered */
	bool synced;                  /* a snapshot was delivered */
	bool need_range;              /* the watch cannot resume: read again */
	char token[512];              /* auth token, "" if none */
	struct buf resp;              /* a response body, or the watch's partial line */
	bool created;                 /* the watch stream said created */
	bool overflow;                /* a body or line was over RESP_MAX */
	int stream_rc;                /* why a stream callback stopped the transfer */
	uint32_t page_keys;
	struct ratelimit rl_skip, rl_err;
	char errbuf[CURL_ERROR_SIZE];
};

/* ---- small helpers -------------------------------------------------------- */

/* Whether a line may be logged now; counts it as suppressed if not. */
static bool ratelimit_pass(struct ratelimit *rl, uint64_t *suppressed)
{
	uint64_t now = clock_mono_ms();
	if (rl->last_ms && now - rl->last_ms < LOG_EVERY_MS) {
		rl->suppressed++;
		return false;
	}
	*suppressed = rl->suppressed;
	rl->suppressed = 0;
	rl->last_ms = now;
	return true;
}

/* key as printable text for logs: other bytes as '?', at most 120. */
static void key_text(const char *key, size_t len, char out[128])
{
	size_t n = len < 120 ? len : 120;
	for (size_t i = 0; i < n; i++)
		out[i] = key[i] >= 0x20 && key[i] < 0x7f ? key[i] : '?';
	memcpy(out + n, len > n ? "..." : "", len > n ? 4 : 1);
}

/* Makes room for n more bytes (and a NUL after them); the caller fills
 * them and adds n to len. */
static int buf_reserve(struct buf *b, size_t n)
{
	size_t max = b->max ? b->max : RESP_MAX;
	if (n > max - b->len)
		return -EMSGSIZE;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *q = realloc(b->p, cap);
		if (!q)
			return -ENOMEM;
		b->p = q;
		b->cap = cap;
	}
	return 0;
}

static int buf_append(struct buf *b, const void *p, size_t n)
{
	int rc = buf_reserve(b, n);
	if (rc)
		return rc;
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static char *b64_encode(const void *bin, size_t len)
{
	size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	char *s = malloc(cap);
	if (s)
		sodium_bin2base64(s, cap, bin, len, sodium_base64_VARIANT_ORIGINAL);
	return s;
}

/* Decodes base64 text s into out (cap bytes). Returns the length, or -1. */
static long b64_decode(const char *s, size_t slen, uint8_t *out, size_t cap)
{
	size_t got = 0;
	if (sodium_base642bin(out, cap, s, slen, NULL, &got, NULL,
	                      sodium_base64_VARIANT_ORIGINAL) != 0)
		return -1;
	return (long)got;
}

/* An int64 field: etcd writes them as strings; absent reads as 0. */
static int64_t json_i64(const json_t *obj, const char *name)
{
	const json_t *v = json_object_get(obj, name);
	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	return 0;
}

/* ---- parsers ---------------------------------------------------------------- */

int etcd_parse_key(const char *prefix, const char *key, size_t keylen,
                   uint8_t owner[DNS_NAME_MAX], size_t *ownerlen, const char **id,
                   size_t *idlen)
{
	size_t plen = strlen(prefix);
	if (keylen <= plen || memcmp(key, prefix, plen) != 0)
		return -EINVAL;
	const char *p = key + plen, *end = key + keylen;
	const char *slash = memrchr(p, '/', (size_t)(end - p));
	if (!slash || slash == p)
		return -EINVAL;
	*id = slash + 1;
	*idlen = (size_t)(end - *id);
	if (*idlen == 0 || *idlen > ETCD_ID_MAX)
		return -EINVAL;
	for (size_t i = 0; i < *idlen; i++) {
		if ((*id)[i] < 0x21 || (*id)[i] > 0x7e)
			return -EINVAL;
	}
	/* The labels p..slash, in key order; the name is them reversed. */
	struct { const char *s; size_t len; } lab[DNS_NAME_MAX / 2];
	size_t nlab = 0;
	for (const char *s = p; s <= slash; ) {
		const char *e = memchr(s, '/', (size_t)(slash - s) + 1);
		size_t len = (size_t)(e - s);
		if (len == 0 || len > 63 || nlab == sizeof(lab) / sizeof(lab[0]))
			return -EINVAL;
		for (size_t i = 0; i < len; i++) {
			if (s[i] < 0x21 || s[i] > 0x7e || s[i] == '.')
				return -EINVAL;
		}
		lab[nlab].s = s;
		lab[nlab++].len = len;
		s = e + 1;
	}
	size_t off = 0;
	for (size_t i = nlab; i-- > 0; ) {
		if (off + 1 + lab[i].len + 1 > DNS_NAME_MAX)
			return -EINVAL;
		owner[off++] = (uint8_t)lab[i].len;
		for (size_t j = 0; j < lab[i].len; j++) {
			char ch = lab[i].s[j];
			owner[off++] = (uint8_t)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
		}
	}
	owner[off++] = 0;
	*ownerlen = off;
	return 0;
}

/* An optional integer member in lo..hi into *out; null reads as absent. */
static int value_int(const json_t *root, const char *name, json_int_t lo, json_int_t hi,
                     json_int_t *out, const char **why, const char *bad)
{
	const json_t *v = json_object_get(root, name);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
		*why = bad;
		return -EINVAL;
	}
	*out = json_integer_value(v);
	return 0;
}

int etcd_parse_value(const char *json, size_t len, struct etcd_value *out, const char **why)
{
	const char *reason = NULL;
	int rc = -EINVAL;
	json_error_t jerr;
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	memset(out, 0, sizeof(*out));
	if (!root) {
		reason = "not JSON (or a duplicate key)";
		goto out;
	}
	if (!json_is_object(root)) {
		reason = "not a JSON object";
		goto out;
	}
	const json_t *host = json_object_get(root, "host");
	if (!json_is_string(host)) {
		reason = host ? "\"host\" is not a string" : "no \"host\"";
		goto out;
	}
	const char *h = json_string_value(host);
	if (json_string_length(host) < INET6_ADDRSTRLEN && inet_pton(AF_INET, h, out->addr) == 1) {
		out->family = AF_INET;
	} else if (json_string_length(host) < INET6_ADDRSTRLEN &&
	           inet_pton(AF_INET6, h, out->addr) == 1) {
		out->family = AF_INET6;
	} else {
		reason = "\"host\" is not an IP address";
		goto out;
	}
	json_int_t port = 0, prio = 0, weight = 0, ttl = 0;
	if (value_int(root, "port", 0, 65535, &port, &reason, "bad \"port\"") ||
	    value_int(root, "priority", 0, 65535, &prio, &reason, "bad \"priority\"") ||
	    value_int(root, "weight", 0, 65535, &weight, &reason, "bad \"weight\"") ||
	    value_int(root, "ttl", 0, INT32_MAX, &ttl, &reason, "bad \"ttl\""))
		goto out;
	out->port = (uint16_t)port;
	out->priority = (uint16_t)prio;
	out->weight = weight ? (uint16_t)weight : ETCD_WEIGHT_DEFAULT;
	out->ttl = (uint32_t)ttl;
	const json_t *text = json_object_get(root, "text");
	if (text && !json_is_null(text)) {
		if (!json_is_string(text) || json_string_length(text) > ETCD_TEXT_MAX) {
			reason = "bad \"text\" (a string of at most 255 bytes)";
			goto out;
		}
		out->textlen = json_string_length(text);
		memcpy(out->text, json_string_value(text), out->textlen);
	}
	out->text[out->textlen] = '\0';
	rc = 0;
out:
	json_decref(root);
	if (why)
		*why = reason;
	return rc;
}

/* ---- status ------------------------------------------------------------------ */

static void status_error(struct etcd *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Counts a failed request or stream, records why and logs it rate-limited. */
static void status_error(struct etcd *e, const char *fmt, ...)
{
	char msg[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&e->lock);
	e->st.errors++;
	e->st.connected = false;
	if (!e->st.stale_since_ms)
		e->st.stale_since_ms = clock_wall_ms();
	snprintf(e->st.last_error, sizeof(e->st.last_error), "%s", msg);
	pthread_mutex_unlock(&e->lock);
	uint64_t sup;
	char more[64] = "";
	if (!ratelimit_pass(&e->rl_err, &sup))
		return;
	if (sup)
		snprintf(more, sizeof(more), " (%" PRIu64 " earlier errors not logged)", sup);
	log_warn("etcd: %s: %s%s", e->urls[e->cur], msg, more);
}

static void status_skip(struct etcd *e, const char *key, size_t keylen, const char *why)
{
	pthread_mutex_lock(&e->lock);
	e->st.skipped++;
	pthread_mutex_unlock(&e->lock);
	uint64_t sup;
	char kt[128], more[64] = "";
	if (!ratelimit_pass(&e->rl_skip, &sup))
		return;
	if (sup)
		snprintf(more, sizeof(more), " (%" PRIu64 " earlier skips not logged)", sup);
	key_text(key, keylen, kt);
	log_warn("etcd: skipped %s: %s%s", kt, why, more);
}

void etcd_status(struct etcd *e, struct etcd_status *out)
{
	pthread_mutex_lock(&e->lock);
	*out = e->st;
	pthread_mutex_unlock(&e->lock);
}

/* ---- HTTP ------------------------------------------------------------------------- */

static size_t write_body(char *p, size_t size, size_t n, void *ud)
{
	struct etcd *e = ud;
	if (atomic_load(&e->stop))
		return 0;
	int rc = buf_append(&e->resp, p, size * n);
	if (rc) {
		e->overflow = rc == -EMSGSIZE;
		return 0;
	}
	return size * n;
}

static int watch_line(struct etcd *e, const char *line, size_t len);

/* The watch stream: hands each complete line to watch_line. A non-zero
 * result of watch_line stops the transfer (kept in stream_rc). */
static size_t write_stream(char *p, size_t size, size_t n, void *ud)
{
	struct etcd *e = ud;
	if (atomic_load(&e->stop))
		return 0;
	int rc = buf_append(&e->resp, p, size * n);
	if (rc) {
		status_error(e, "watch: a line over %d bytes, or out of memory", RESP_MAX);
		e->stream_rc = rc;
		return 0;
	}
	char *start = e->resp.p, *nl;
	while ((nl = memchr(start, '\n', e->resp.len - (size_t)(start - e->resp.p)))) {
		if (nl > start && (rc = watch_line(e, start, (size_t)(nl - start))) != 0) {
			e->stream_rc = rc;
			return 0;
		}
		start = nl + 1;
	}
	size_t rest = e->resp.len - (size_t)(start - e->resp.p);
	memmove(e->resp.p, start, rest);
	e->resp.len = rest;
	e->resp.p[rest] = '\0';
	return size * n;
}

/* The watch's socket: 3 unanswered keepalives (after 5 s idle, 2 s apart)
 * end it, so a member behind a dead link is left after ~11 s. (A member
 * that is frozen but whose kernel still answers is not noticed.) */
static int watch_sockopt(void *ud, curl_socket_t fd, curlsocktype purpose)
{
	(void)ud;
	int cnt = 3;
	if (purpose == CURLSOCKTYPE_IPCXN)
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	return CURL_SOCKOPT_OK;
}

/* POSTs body to path on the current endpoint. Without stream the response
 * is in e->resp (NUL-terminated) when 0 is returned; with it the body goes
 * to watch_line and the call lasts as long as the stream. Returns 0 on
 * HTTP 200, -ECANCELED when stopping, else a negative errno with the
 * error counted (a stream ended by watch_line returns its result). */
static int http_post(struct etcd *e, const char *path, const char *body, bool stream)
{
	char url[512], auth[600];
	snprintf(url, sizeof(url), "%s%s", e->urls[e->cur], path);
	e->resp.len = 0;
	e->stream_rc = 0;
	e->created = false;
	e->overflow = false;
	e->errbuf[0] = '\0';
	CURL *h = curl_easy_init();
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
	struct curl_slist *h2 = hdr ? curl_slist_append(hdr, "Expect:") : NULL;
	if (h2)
		hdr = h2;
	if (h2 && e->token[0]) {
		snprintf(auth, sizeof(auth), "Authorization: %s", e->token);
		if ((h2 = curl_slist_append(hdr, auth)))
			hdr = h2;
	}
	/* A member cut off from the leader cancels this watch instead of
	 * keeping it open without events (etcd's require-leader metadata). */
	if (h2 && stream && (h2 = curl_slist_append(hdr, "Grpc-Metadata-hasleader: true")))
		hdr = h2;
	if (!h || !h2) {
		curl_slist_free_all(hdr);
		curl_easy_cleanup(h);
		status_error(e, "out of memory");
		return -ENOMEM;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)e->dial_ms);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, e->errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, e);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, stream ? write_stream : write_body);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (stream) {
		/* The watch has no end; a dead peer shows in keepalives. */
		curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
		curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 5L);
		curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 2L);
		curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, watch_sockopt);
	} else {
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)e->req_ms);
	}
	if (e->ca)
		curl_easy_setopt(h, CURLOPT_CAINFO, e->ca);
	if (e->cert) {
		curl_easy_setopt(h, CURLOPT_SSLCERT, e->cert);
		curl_easy_setopt(h, CURLOPT_SSLKEY, e->key);
	}

	int rc = 0;
	CURLcode cc = CURLE_OK;
	uint64_t t0 = clock_mono_ms();
	curl_multi_add_handle(e->multi, h);
	for (;;) {
		int running = 0;
		if (curl_multi_perform(e->multi, &running) != CURLM_OK) {
			cc = CURLE_FAILED_INIT;
			break;
		}
		CURLMsg *m;
		int left;
		bool done = false;
		while ((m = curl_multi_info_read(e->multi, &left))) {
			if (m->msg == CURLMSG_DONE && m->easy_handle == h) {
				cc = m->data.result;
				done = true;
			}
		}
		if (done || !running)
			break;
		if (atomic_load(&e->stop)) {
			rc = -ECANCELED;
			break;
		}
		/* A watch that is not created within the request timeout is as
		 * good as a failed request. */
		if (stream && !e->created && clock_mono_ms() - t0 > e->req_ms) {
			cc = CURLE_OPERATION_TIMEDOUT;
			break;
		}
		curl_multi_poll(e->multi, NULL, 0, 1000, NULL);
	}
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_multi_remove_handle(e->multi, h);
	curl_easy_cleanup(h);
	curl_slist_free_all(hdr);

	if (rc || atomic_load(&e->stop))
		return -ECANCELED;
	if (e->stream_rc > 0)
		return 0;                 /* watch_line ended it on purpose */
	if (e->stream_rc < 0)
		return e->stream_rc;      /* counted by watch_line, or below */
	if (e->overflow) {
		status_error(e, "answer over %d bytes", RESP_MAX);
		return -EMSGSIZE;
	}
	if (cc != CURLE_OK) {
		status_error(e, "%s%s%s", curl_easy_strerror(cc), e->errbuf[0] ? ": " : "",
		             e->errbuf);
		return cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO;
	}
	if (stream) {
		status_error(e, "watch stream ended");
		return -EPIPE;
	}
	if (status != 200) {
		json_t *j = json_loadb(e->resp.p ? e->resp.p : "", e->resp.len, 0, NULL);
		const char *msg = j ? json_string_value(json_object_get(j, "message")) : NULL;
		if (j && json_i64(j, "code") == 16)
			e->token[0] = '\0';   /* Unauthenticated: a new token next time */
		status_error(e, "HTTP %ld%s%s", status, msg ? ": " : "", msg ? msg : "");
		json_decref(j);
		return -EPROTO;
	}
	return 0;
}

/* With username set and no token yet, gets one (/v3/auth/authenticate). */
static int auth_ensure(struct etcd *e)
{
	if (!e->user || e->token[0])
		return 0;
	json_t *req = json_pack("{s:s, s:s}", "name", e->user, "password", e->password);
	char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!body) {
		status_error(e, "out of memory");
		return -ENOMEM;
	}
	int rc = http_post(e, "/v3/auth/authenticate", body, false);
	sodium_memzero(body, strlen(body));
	free(body);
	if (rc)
		return rc;
	json_t *j = json_loadb(e->resp.p, e->resp.len, 0, NULL);
	const char *tok = json_string_value(json_object_get(j, "token"));
	if (!tok || strlen(tok) >= sizeof(e->token)) {
		json_decref(j);
		status_error(e, "authenticate: no token in the answer");
		return -EPROTO;
	}
	snprintf(e->token, sizeof(e->token), "%s", tok);
	json_decref(j);
	return 0;
}

/* ---- delivering records -------------------------------------------------- */

/* A value's checks before it reaches the callbacks. 0, or -EINVAL after
 * counting and logging the skip. */
static int record_parse(struct etcd *e, const char *key, size_t keylen, const char *val,
                        size_t vallen, bool oversize, uint8_t owner[DNS_NAME_MAX],
                        struct etcd_kv *kv, struct etcd_value *v, bool *key_ok)
{
	const char *why = NULL;
	*key_ok = false;
	kv->key = key;
	kv->keylen = keylen;
	kv->owner = owner;
	kv->value = NULL;
	if (keylen > ETCD_KEY_MAX || memchr(key, '\0', keylen)) {
		why = "key too long or with a NUL byte";
		goto skip;
	}
	if (etcd_parse_key(e->prefix, key, keylen, owner, &kv->ownerlen, &kv->id, &kv->idlen) != 0) {
		why = "key is not <prefix>/<labels reversed>/<instance>";
		goto skip;
	}
	*key_ok = true;
	if (oversize || vallen > e->max_value) {
		why = "value over max-value-size";
		goto skip;
	}
	if (etcd_parse_value(val, vallen, v, &why) != 0)
		goto skip;
	kv->value = v;
	return 0;
skip:
	status_skip(e, key, keylen, why);
	return -EINVAL;
}

/* ---- range ------------------------------------------------------------------ */

/* The raw records of a snapshot, packed: keylen u32, key, NUL, vallen u32
 * (UINT32_MAX: oversize, no bytes), value, mod_revision i64. */
struct packed {
	struct buf b;
	size_t n;
};

static int packed_add(struct etcd *e, struct packed *pk, const json_t *kv)
{
	const char *k64 = json_string_value(json_object_get(kv, "key"));
	const char *v64 = json_string_value(json_object_get(kv, "value"));
	size_t k64len = k64 ? strlen(k64) : 0, v64len = v64 ? strlen(v64) : 0;
	if (!k64 || k64len > (ETCD_KEY_MAX + 2) / 3 * 4 + 4)
		return 0;                 /* not ours to judge: never a record */
	uint8_t key[ETCD_KEY_MAX + 8];
	long klen = b64_decode(k64, k64len, key, sizeof(key));
	if (klen < 0)
		return -EPROTO;
	uint32_t kl = (uint32_t)klen;
	bool oversize = v64len / 4 * 3 > (size_t)e->max_value + 2;
	uint32_t vl = oversize ? UINT32_MAX : (uint32_t)(v64len / 4 * 3 + 3);
	int64_t mod = json_i64(kv, "mod_revision");
	int rc = buf_append(&pk->b, &kl, sizeof(kl));
	if (!rc)
		rc = buf_append(&pk->b, key, kl);
	if (!rc)
		rc = buf_append(&pk->b, "", 1);
	size_t vl_at = pk->b.len;
	if (!rc)
		rc = buf_append(&pk->b, &vl, sizeof(vl));
	if (!rc && !oversize) {
		/* Room for the decoded value, then its real length. */
		size_t at = pk->b.len;
		rc = buf_reserve(&pk->b, vl);
		long got = rc ? -1 : b64_decode(v64 ? v64 : "", v64len, (uint8_t *)pk->b.p + at, vl);
		if (!rc && got < 0)
			rc = -EPROTO;
		if (!rc) {
			vl = (uint32_t)got;
			memcpy(pk->b.p + vl_at, &vl, sizeof(vl));
			pk->b.len = at + vl;
		}
	}
	if (!rc)
		rc = buf_append(&pk->b, &mod, sizeof(mod));
	if (!rc)
		pk->n++;
	return rc;
}

/* Reads the whole prefix at one revision, page by page, then delivers it
 * as a snapshot. 0, or a negative errno (counted). */
static int do_range(struct etcd *e)
{
	struct packed pk = { .b.max = SNAPSHOT_MAX };
	int64_t rev = 0;
	uint64_t t0 = clock_mono_ms(), t_read = 0;
	char *from = NULL;            /* base64 of the next page's first key */
	int rc = auth_ensure(e);
	if (rc)
		return rc;
	for (;;) {
		char body[1024 + 4 * ETCD_KEY_MAX];
		char revtxt[48] = "";
		if (rev)
			snprintf(revtxt, sizeof(revtxt), ",\"revision\":\"%" PRId64 "\"", rev);
		snprintf(body, sizeof(body), "{\"key\":\"%s\",\"range_end\":\"%s\",\"limit\":\"%u\"%s}",
		         from ? from : e->b64_key, e->b64_end, e->page_keys, revtxt);
		rc = http_post(e, "/v3/kv/range", body, false);
		if (rc == -EMSGSIZE) {
			/* A page of huge values: smaller pages, from the start. */
			if (e->page_keys > 1)
				e->page_keys /= 2;
			goto out;
		}
		if (rc)
			goto out;
		json_error_t jerr;
		json_t *j = json_loadb(e->resp.p, e->resp.len, 0, &jerr);
		const json_t *kvs = json_object_get(j, "kvs");
		if (!j || (kvs && !json_is_array(kvs))) {
			json_decref(j);
			status_error(e, "range: bad answer");
			rc = -EPROTO;
			goto out;
		}
		if (!rev)
			rev = json_i64(json_object_get(j, "header"), "revision");
		size_t i;
		const json_t *kv;
		json_array_foreach(kvs, i, kv) {
			if ((rc = packed_add(e, &pk, kv)) != 0)
				break;
		}
		bool more = json_is_true(json_object_get(j, "more"));
		const char *last = NULL;
		if (more && json_array_size(kvs))
			last = json_string_value(json_object_get(json_array_get(kvs,
			                         json_array_size(kvs) - 1), "key"));
		free(from);
		from = NULL;
		if (!rc && last) {
			/* The next page starts right after the last key: key + "\0". */
			uint8_t k[ETCD_KEY_MAX + 9];
			long kl = b64_decode(last, strlen(last), k, sizeof(k) - 1);
			if (kl < 0) {
				rc = -EPROTO;
			} else {
				k[kl] = 0;
				from = b64_encode(k, (size_t)kl + 1);
				rc = from ? 0 : -ENOMEM;
			}
		}
		json_decref(j);
		if (rc) {
			status_error(e, "range: %s", rc == -ENOMEM ? "out of memory" : "bad answer");
			goto out;
		}
		if (!more)
			break;
		if (!last) {
			status_error(e, "range: more without keys");
			rc = -EPROTO;
			goto out;
		}
	}
	if (rev <= 0) {
		status_error(e, "range: no revision in the answer");
		rc = -EPROTO;
		goto out;
	}

	t_read = clock_mono_ms();
	e->cb.snapshot_begin(e->cb.ud, rev);
	size_t delivered = 0;
	const char *p = pk.b.p;
	for (size_t i = 0; i < pk.n; i++) {
		uint32_t kl, vl;
		int64_t mod;
		memcpy(&kl, p, sizeof(kl));
		const char *key = p + sizeof(kl);
		p = key + kl + 1;
		memcpy(&vl, p, sizeof(vl));
		const char *val = p + sizeof(vl);
		bool oversize = vl == UINT32_MAX;
		p = val + (oversize ? 0 : vl);
		memcpy(&mod, p, sizeof(mod));
		p += sizeof(mod);
		struct etcd_kv kv = { .mod_revision = mod };
		struct etcd_value v;
		uint8_t owner[DNS_NAME_MAX];
		bool key_ok;
		if (record_parse(e, key, kl, val, oversize ? 0 : vl, oversize, owner, &kv, &v,
		                 &key_ok) == 0) {
			e->cb.snapshot_kv(e->cb.ud, &kv);
			delivered++;
		}
	}
	e->cb.snapshot_end(e->cb.ud, rev, delivered);
	e->rev = rev;
	e->synced = true;
	e->need_range = false;
	pthread_mutex_lock(&e->lock);
	e->st.synced = true;
	e->st.revision = rev;
	e->st.snapshots++;
	e->st.last_sync_ms = clock_wall_ms();
	pthread_mutex_unlock(&e->lock);
	uint64_t t1 = clock_mono_ms();
	log_info("etcd: read %zu records of %s at revision %" PRId64 " from %s in %" PRIu64 " ms "
	         "(%" PRIu64 " ms reading, %" PRIu64 " ms handing over)", delivered, e->prefix, rev,
	         e->urls[e->cur], t1 - t0, t_read - t0, t1 - t_read);
	rc = 0;
out:
	free(from);
	free(pk.b.p);
	return rc;
}

/* ---- watch ------------------------------------------------------------------ */

enum { WATCH_RERANGE = 1 };

/* One JSON object of the watch stream. 0 to go on, WATCH_RERANGE to stop
 * and read the range again, or a negative errno (counted) to stop. */
static int watch_line(struct etcd *e, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *j = json_loadb(line, len, 0, &jerr);
	int rc = 0;
	if (!j) {
		status_error(e, "watch: bad JSON: %s", jerr.text);
		return -EPROTO;
	}
	const json_t *res = json_object_get(j, "result");
	if (!json_is_object(res)) {
		const json_t *err = json_object_get(j, "error");
		const char *msg = json_string_value(json_object_get(err, "message"));
		status_error(e, "watch: %s", msg ? msg : "error");
		rc = -EPROTO;
		goto out;
	}
	int64_t compact = json_i64(res, "compact_revision");
	if (compact > 0) {
		log_warn("etcd: revision %" PRId64 " was compacted (up to %" PRId64 "): reading %s again",
		         e->rev + 1, compact, e->prefix);
		pthread_mutex_lock(&e->lock);
		e->st.compactions++;
		pthread_mutex_unlock(&e->lock);
		e->need_range = true;
		rc = WATCH_RERANGE;
		goto out;
	}
	if (json_is_true(json_object_get(res, "canceled"))) {
		const char *why = json_string_value(json_object_get(res, "cancel_reason"));
		status_error(e, "watch cancelled%s%s", why ? ": " : "", why ? why : "");
		rc = -ECONNRESET;
		goto out;
	}
	if (json_is_true(json_object_get(res, "created"))) {
		e->created = true;
		pthread_mutex_lock(&e->lock);
		e->st.connected = true;
		e->st.stale_since_ms = 0;
		snprintf(e->st.endpoint, sizeof(e->st.endpoint), "%s", e->urls[e->cur]);
		pthread_mutex_unlock(&e->lock);
	}
	const json_t *events = json_object_get(res, "events");
	size_t i;
	const json_t *ev;
	int64_t before = e->rev, top = e->rev;
	size_t n = 0;
	json_array_foreach(events, i, ev) {
		const json_t *kvj = json_object_get(ev, "kv");
		int64_t mod = json_i64(kvj, "mod_revision");
		/* Events of one revision (a transaction) come in one response;
		 * anything at or below what was delivered is a repeat. */
		if (mod <= before)
			continue;
		if (mod > top)
			top = mod;
		const char *k64 = json_string_value(json_object_get(kvj, "key"));
		const char *v64 = json_string_value(json_object_get(kvj, "value"));
		size_t k64len = k64 ? strlen(k64) : 0, v64len = v64 ? strlen(v64) : 0;
		char key[ETCD_KEY_MAX + 8];
		long kl = k64 && k64len <= (ETCD_KEY_MAX + 2) / 3 * 4 + 4 ?
		          b64_decode(k64, k64len, (uint8_t *)key, sizeof(key) - 1) : -1;
		if (kl < 0) {
			status_skip(e, "?", 1, "key missing, too long or not base64");
			continue;
		}
		key[kl] = '\0';
		bool del = json_is_string(json_object_get(ev, "type")) &&
		           strcmp(json_string_value(json_object_get(ev, "type")), "DELETE") == 0;
		struct etcd_kv kv = { .mod_revision = mod };
		struct etcd_value v;
		uint8_t owner[DNS_NAME_MAX];
		kv.owner = owner;
		if (del) {
			kv.key = key;
			kv.keylen = (size_t)kl;
			if (etcd_parse_key(e->prefix, key, (size_t)kl, owner, &kv.ownerlen, &kv.id,
			                   &kv.idlen) != 0)
				continue;     /* its put was skipped already */
		} else {
			bool oversize = v64len / 4 * 3 > (size_t)e->max_value + 2;
			char *val = oversize ? NULL : malloc(v64len / 4 * 3 + 3);
			long vl = val ? b64_decode(v64 ? v64 : "", v64len, (uint8_t *)val,
			                           v64len / 4 * 3 + 3) : -1;
			if (!oversize && vl < 0) {
				free(val);
				status_skip(e, key, (size_t)kl, "value not base64");
				continue;
			}
			bool key_ok;
			int prc = record_parse(e, key, (size_t)kl, val, vl > 0 ? (size_t)vl : 0, oversize,
			                       owner, &kv, &v, &key_ok);
			free(val);
			if (prc != 0 && !key_ok)
				continue;
			/* prc != 0 with a good key: delivered as a delete (value NULL). */
		}
		e->cb.event(e->cb.ud, &kv);
		n++;
	}
	if (top > e->rev) {
		e->rev = top;
		pthread_mutex_lock(&e->lock);
		e->st.revision = top;
		e->st.events += n;
		pthread_mutex_unlock(&e->lock);
	}
out:
	json_decref(j);
	return rc;
}

/* Follows the prefix from e->rev + 1 until the stream ends. 0 when it was
 * ended on purpose (a compaction: need_range is set), else a negative
 * errno (counted). */
static int do_watch(struct etcd *e)
{
	int rc = auth_ensure(e);
	if (rc)
		return rc;
	char body[512];
	snprintf(body, sizeof(body), "{\"create_request\":{\"key\":\"%s\",\"range_end\":\"%s\","
	         "\"start_revision\":\"%" PRId64 "\"}}", e->b64_key, e->b64_end, e->rev + 1);
	return http_post(e, "/v3/watch", body, true);
}

/* ---- the thread ---------------------------------------------------------- */

static void *etcd_main(void *arg)
{
	struct etcd *e = arg;
	unsigned failures = 0;
	uint32_t backoff = BACKOFF_MIN_MS;
	bool resumed = false;

	while (!atomic_load(&e->stop)) {
		pthread_mutex_lock(&e->lock);
		snprintf(e->st.endpoint, sizeof(e->st.endpoint), "%s", e->urls[e->cur]);
		pthread_mutex_unlock(&e->lock);
		int rc;
		if (!e->synced || e->need_range) {
			rc = do_range(e);
		} else {
			if (resumed) {
				pthread_mutex_lock(&e->lock);
				e->st.resumes++;
				pthread_mutex_unlock(&e->lock);
				log_info("etcd: resuming the watch of %s from revision %" PRId64 " on %s",
				         e->prefix, e->rev + 1, e->urls[e->cur]);
			}
			rc = do_watch(e);
			resumed = true;
		}
		if (rc == -ECANCELED || atomic_load(&e->stop))
			break;
		if (rc == 0) {
			failures = 0;
			backoff = BACKOFF_MIN_MS;
			continue;
		}
		/* The watch made progress before it broke: that endpoint worked. */
		if (e->created)
			failures = 0;
		e->cur = (e->cur + 1) % e->nurls;
		e->token[0] = '\0';
		if (++failures < e->nurls)
			continue;
		/* Every endpoint failed in a row: wait, with jitter so that many
		 * replicas do not come back in step. */
		uint32_t wait = backoff / 2 + randombytes_uniform(backoff / 2 + 1);
		if (backoff < BACKOFF_MAX_MS)
			backoff = backoff * 2 < BACKOFF_MAX_MS ? backoff * 2 : BACKOFF_MAX_MS;
		failures = 0;
		uint64_t until = clock_mono_ms() + wait;
		for (uint64_t now; !atomic_load(&e->stop) && (now = clock_mono_ms()) < until; )
			curl_multi_poll(e->multi, NULL, 0, (int)(until - now), NULL);
	}
	return NULL;
}

/* ---- lifetime ------------------------------------------------------------- */

static char *dup_or_null(const char *s, bool *bad)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*bad = true;
	return d;
}

static void etcd_destroy(struct etcd *e)
{
	for (size_t i = 0; i < e->nurls; i++)
		free(e->urls[i]);
	free(e->urls);
	free(e->prefix);
	free(e->b64_key);
	free(e->b64_end);
	free(e->user);
	if (e->password)
		sodium_memzero(e->password, strlen(e->password));
	free(e->password);
	free(e->ca);
	free(e->cert);
	free(e->key);
	free(e->resp.p);
	if (e->multi)
		curl_multi_cleanup(e->multi);
	pthread_mutex_destroy(&e->lock);
	sodium_memzero(e->token, sizeof(e->token));
	free(e);
	curl_global_cleanup();
}

struct etcd *etcd_new(const struct cfg_etcd *cfg, const struct etcd_callbacks *cb, char *err,
                      size_t errlen)
{
	if (!cfg->nendpoints || !cfg->prefix || !cfg->prefix[0] ||
	    cfg->prefix[strlen(cfg->prefix) - 1] != '/' || !cb->snapshot_begin ||
	    !cb->snapshot_kv || !cb->snapshot_end || !cb->event) {
		snprintf(err, errlen, "etcd: no endpoints, a prefix not ending in '/' or a callback "
		         "missing");
		return NULL;
	}
	if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "etcd: libsodium or libcurl failed to initialise");
		return NULL;
	}
	struct etcd *e = calloc(1, sizeof(*e));
	if (!e) {
		curl_global_cleanup();
		snprintf(err, errlen, "etcd: out of memory");
		return NULL;
	}
	pthread_mutex_init(&e->lock, NULL);
	bool bad = false;
	e->urls = calloc(cfg->nendpoints, sizeof(*e->urls));
	bad |= !e->urls;
	for (size_t i = 0; !bad && i < cfg->nendpoints; i++) {
		const char *ep = cfg->endpoints[i];
		const char *scheme = strstr(ep, "://") ? "" : cfg->tls_ca ? "https://" : "http://";
		size_t len = strlen(scheme) + strlen(ep) + 1;
		if (!(e->urls[i] = malloc(len))) {
			bad = true;
			break;
		}
		snprintf(e->urls[i], len, "%s%s", scheme, ep);
		while (len > 2 && e->urls[i][len - 2] == '/')
			e->urls[i][--len - 1] = '\0';
		e->nurls++;
	}
	e->prefix = dup_or_null(cfg->prefix, &bad);
	e->user = dup_or_null(cfg->username, &bad);
	e->password = dup_or_null(cfg->password, &bad);
	e->ca = dup_or_null(cfg->tls_ca, &bad);
	e->cert = dup_or_null(cfg->tls_cert, &bad);
	e->key = dup_or_null(cfg->tls_key, &bad);
	if (!bad) {
		/* The prefix's range_end: its last byte + 1 ('/' -> '0'). */
		e->prefixlen = strlen(e->prefix);
		e->b64_key = b64_encode(e->prefix, e->prefixlen);
		e->prefix[e->prefixlen - 1]++;
		e->b64_end = b64_encode(e->prefix, e->prefixlen);
		e->prefix[e->prefixlen - 1]--;
		bad = !e->b64_key || !e->b64_end;
	}
	e->multi = bad ? NULL : curl_multi_init();
	if (bad || !e->multi) {
		etcd_destroy(e);
		snprintf(err, errlen, "etcd: out of memory");
		return NULL;
	}
	e->dial_ms = cfg->dial_timeout_ms;
	e->req_ms = cfg->request_timeout_ms;
	e->max_value = cfg->max_value_size;
	e->cb = *cb;
	e->page_keys = cfg->page_keys ? cfg->page_keys : PAGE_KEYS;
	e->st.stale_since_ms = clock_wall_ms();
	snprintf(e->st.endpoint, sizeof(e->st.endpoint), "%s", e->urls[0]);
	int prc = pthread_create(&e->thread, NULL, etcd_main, e);
	if (prc != 0) {
		etcd_destroy(e);
		snprintf(err, errlen, "etcd: pthread_create: %s", strerror(prc));
		return NULL;
	}
	return e;
}

void etcd_free(struct etcd *e)
{
	if (!e)
		return;
	atomic_store(&e->stop, true);
	curl_multi_wakeup(e->multi);
	pthread_join(e->thread, NULL);
	etcd_destroy(e);
}

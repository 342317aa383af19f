/* config.h -- the YAML configuration (libyaml) as a plain struct.
 * config*.c validate everything the zone builder and server rely on; they
 * know nothing of sockets or snapshots. */
#ifndef MESHDNS_CONFIG_H
#define MESHDNS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dns/tsig.h"
#include "dns/wire.h"

struct cfg_listen {
	struct sockaddr_storage ss;   /* AF_INET or AF_INET6, port set */
	socklen_t len;
};

enum cfg_policy {
	CFG_POLICY_WEIGHTED = 0,
	CFG_POLICY_ROUND_ROBIN,
	CFG_POLICY_HASH,
	CFG_POLICY_FAILOVER,
	CFG_POLICY_LOCALITY,
};

/* The policies' names as written in the YAML (and shown in status,
 * CHAOS answers and explanations), indexed by enum cfg_policy; NULL last. */
extern const char *const cfg_policy_names[];

static inline const char *cfg_policy_name(enum cfg_policy p)
{
	return (unsigned)p <= CFG_POLICY_LOCALITY ? cfg_policy_names[p] : "?";
}

/* A service answer (A/AAAA/SRV) larger than the client takes over UDP. */
enum cfg_oversize {
	CFG_OVERSIZE_SUBSET = 0,      /* the policy's best backends that fit, no TC */
	CFG_OVERSIZE_TRUNCATE,        /* TC and no records: the client retries over TCP */
};

enum cfg_check_type {
	CFG_CHECK_NONE = 0,           /* static, always up */
	CFG_CHECK_TCP,
	CFG_CHECK_HTTP,
	CFG_CHECK_HTTPS,
};

/* Health check settings; a backend's copy starts as its service's and keys
 * given on the backend override it. Durations in milliseconds. The defaults
 * of this and the structs below are in their schema rows (config_*.c, the
 * tables), and only there. */
struct cfg_check {
	enum cfg_check_type type;
	uint32_t interval_ms;
	uint32_t timeout_ms;          /* <= interval; not given: cut to it */
	uint32_t rise;
	uint32_t fall;
	uint16_t port;                /* 0: the backend's port */
	char *path;                   /* http(s) */
	char *host;                   /* http(s): Host header, NULL: the address */
	uint16_t expect[16];          /* accepted status codes; empty: 200-399 */
	size_t nexpect;
	/* Flap damping: past flap_limit transitions (a count halving every
	 * flap_window_ms) the backend is held DOWN for flap_hold_ms.
	 * flap_limit 0: off. */
	uint32_t flap_limit;
	uint32_t flap_window_ms;
	uint32_t flap_hold_ms;
	/* The state of a backend new to the watcher (at start, or added by a
	 * reload or UPDATE) before its first checks: up (by default: a
	 * restart does not blackhole traffic) or down (no traffic until rise
	 * checks passed). */
	enum cfg_initial_state { CFG_INITIAL_UP = 0, CFG_INITIAL_DOWN } initial;
};

struct cfg_port {
	char *name;                   /* "http" -> _http._tcp.<service> */
	uint16_t port;
	uint8_t proto;                /* IPPROTO_TCP or IPPROTO_UDP */
};

struct cfg_backend {
	char *name;                   /* SRV target label; default from the address:
	                               * "127-0-0-2", "fd00--5" */
	int family;                   /* AF_INET or AF_INET6 */
	uint8_t addr[16];             /* 4 or 16 bytes used */
	uint16_t port;                /* 0: use each service port */
	uint32_t weight;              /* 1..65535 */
	uint16_t priority;            /* 0..65535 (lower wins) */
	bool name_pooled;             /* name lives in the service's name_pool */
	uint8_t source;               /* enum cfg_source: where it comes from */
	char *locality;               /* NULL if none */
	struct cfg_check *check;      /* its own check settings; NULL: the
	                               * service's (a million backends share
	                               * it): read it with cfg_backend_check */
	int line, col;
	char *src_key;                /* etcd: its key; NULL otherwise */
};
/* A million of them for 100k services x 10 backends: keep it at 72 bytes. */
_Static_assert(sizeof(struct cfg_backend) <= 72, "struct cfg_backend grew");

enum cfg_source { CFG_SRC_YAML = 0, CFG_SRC_UPDATE, CFG_SRC_ETCD };

struct cfg_service {
	char *name;                   /* single label relative to the zone, or
	                               * a relative multi-label name */
	uint8_t *owner;               /* absolute wire name, ownerlen bytes (malloc'd:
	                               * 100k services do not carry 255 bytes each) */
	size_t ownerlen;
	uint32_t ttl;                 /* default: the zone's ttl */
	bool ttl_auto;                /* ttl: auto, from the checks' interval x fall */
	enum cfg_policy policy;
	uint32_t max_answers;         /* 0: all healthy backends */
	enum cfg_oversize oversize;
	bool fail_open;
	uint32_t slow_start_ms;       /* 0: off */
	struct cfg_check check;       /* defaults for its backends */
	bool own_checks;              /* some backend has a check of its own */
	bool from_etcd;               /* not in the YAML: made for etcd records */
	struct cfg_port *ports;
	size_t nports;
	struct cfg_backend *backends;
	size_t nbackends;
	/* The default names of the loaded backends, in one block (a million
	 * backends are not a million mallocs); names added later are their own. */
	char *name_pool;
	int line, col;
	/* Frozen (config_service_freeze): once its block serves, an unchecked
	 * service's backends are kept there alone, not here as well (a million
	 * of them would be 72 MB twice). backends is then NULL and nbackends
	 * 0; nfrozen is their count and block_key the key of the block that
	 * holds them (zone_block_key). zone_service_copy gives a copy its
	 * backends back from the block, for an edit. */
	bool frozen;
	bool in_slab;                 /* backends and name_pool are in the config's slab */
	uint32_t nfrozen;
	uint64_t block_key;
};

/* Its backends, frozen or not. */
static inline size_t cfg_service_nbackends(const struct cfg_service *s)
{
	return s->frozen ? s->nfrozen : s->nbackends;
}

/* The check settings of backend b of service s. */
static inline const struct cfg_check *cfg_backend_check(const struct cfg_service *s,
                                                        const struct cfg_backend *b)
{
	return b->check ? b->check : &s->check;
}

struct cfg_record {
	uint8_t owner[DNS_NAME_MAX];  /* absolute wire name */
	size_t ownerlen;
	uint16_t type;
	uint32_t ttl;
	uint8_t *rdata;               /* uncompressed wire rdata */
	uint16_t rdlen;
	int line, col;
};

struct cfg_soa {
	uint8_t mname[DNS_NAME_MAX];  /* default: first NS, else ns.<zone> */
	size_t mnamelen;
	uint8_t rname[DNS_NAME_MAX];  /* default: hostmaster.<zone> */
	size_t rnamelen;
	uint32_t serial;              /* 0: automatic (time-based, increasing) */
	uint32_t refresh;
	uint32_t retry;
	uint32_t expire;
	uint32_t minimum;             /* negative-caching TTL */
	uint32_t ttl;                 /* default: the zone's ttl */
};

/* An address prefix of an ACL ("127.0.0.0/8", "::1"). */
struct cfg_prefix {
	int family;
	uint8_t addr[16];
	uint8_t prefix;
};

/* A reference to a key of config.keys, checked once the whole file is read. */
struct cfg_keyref {
	char *name;
	int line, col;
};

/* transfer: who may AXFR/IXFR a zone (xfr.c). Without it, nobody. A request
 * must come from an allow prefix (if any are given) and be signed with one
 * of keys (if any are given). */
struct cfg_transfer {
	bool set;
	struct cfg_prefix *allow;
	size_t nallow;
	struct cfg_keyref *keys;
	size_t nkeys;
};

/* notify: a secondary told of every new serial (RFC 1996), signed with key
 * if one is named. */
struct cfg_notify {
	struct cfg_listen addr;       /* default port 53 */
	struct cfg_keyref key;        /* name NULL: unsigned */
};

/* update: dynamic updates (RFC 2136) of the zone, accepted only signed
 * with one of keys and written to journal before they are answered
 * (update.c). Without it, UPDATE is REFUSED. */
struct cfg_update {
	bool set;
	struct cfg_keyref *keys;
	size_t nkeys;
	char *journal;                /* file path, required */
	int line, col;
};

struct cfg_zone {
	char *name;                   /* as written */
	uint8_t origin[DNS_NAME_MAX];
	size_t originlen;
	uint32_t ttl;
	struct cfg_soa soa;
	uint8_t (*ns)[DNS_NAME_MAX];  /* apex NS names; default: ns.<zone> */
	size_t *nslen;
	size_t nns;
	struct cfg_record *records;
	size_t nrecords;
	struct cfg_service *services;
	size_t nservices;
	struct cfg_transfer transfer; /* set: overrides the top-level one */
	struct cfg_notify *notify;
	size_t nnotify;
	struct cfg_update update;
	/* The name checks of config_check_zone passed and nothing changed the
	 * zone since: the loader sets it and the editing functions below clear
	 * it, so the journal replay at start does not check a million names a
	 * second time. Code that changes a zone's names otherwise clears it. */
	bool names_checked;
	int line, col;
};

/* Client subnet -> locality label, for the locality policy. */
struct cfg_locality {
	int family;
	uint8_t addr[16];
	uint8_t prefix;
	char *label;
};

/* forward: names outside our zones go to upstream servers (forward.c).
 * Off when neither upstreams nor resolv_conf is given. */
struct cfg_forward {
	struct cfg_listen *upstreams; /* ADDR[:PORT], default port 53 */
	size_t nupstreams;
	char *resolv_conf;            /* or: the nameserver lines of this file */
	uint32_t timeout_ms;          /* SERVFAIL to the client after this */
	uint32_t max_outstanding;     /* upstream queries at once */
	bool tcp;                     /* false: UDP, TCP on truncation */
};

/* cache: forwarded answers (cache.c). TTLs in seconds. */
struct cfg_cache {
	uint32_t max_entries;         /* 0: no cache */
	uint32_t max_ttl;
	uint32_t min_ttl;
	uint32_t neg_max_ttl;         /* NXDOMAIN and NODATA */
};

/* cookies: DNS Cookies (cookie.c, RFC 7873/9018). Secrets are read from
 * their files at load (and at every reload: rotation); without secret-file
 * dnsd generates one at start and keeps it across reloads. */
struct cfg_cookies {
	bool enabled;
	bool require;                 /* require-under-load */
	bool have_secret;
	uint8_t secret[16];
	bool have_previous;           /* previous-secret-file: still accepted */
	uint8_t previous[16];
};

/* rrl: response rate limiting (rrl.c); off with responses-per-second 0. */
struct cfg_rrl {
	uint32_t rate;                /* responses-per-second; 0: off */
	uint32_t window;              /* seconds */
	uint32_t slip;                /* 0: drop all */
	uint32_t v4_prefix;
	uint32_t v6_prefix;
	struct cfg_prefix *exempt;
	size_t nexempt;
};

/* search-path: suffixes of the clients' search lists (Kubernetes'
 * <ns>.svc.cluster.local svc.cluster.local cluster.local). A query for
 * <name>.<suffix> outside our zones, where <name> is a name of ours, is
 * answered with a CNAME to <name> and its records (query.c). */
enum { CFG_SEARCH_MAX = 8 };
struct cfg_search {
	uint8_t name[DNS_NAME_MAX];   /* absolute lowercase wire name, without the '*' */
	uint8_t len;
	bool any_label;               /* "*.<name>": one label of any value first */
};

/* chaos: who may read CHAOS service status (query.c). */
struct cfg_chaos {
	struct cfg_prefix *allow;
	size_t nallow;
};

/* etcd: backends read from an etcd key prefix (etcd.c). Off when not
 * given; given, endpoints is non-empty. */
enum { CFG_ETCD_MAX_ENDPOINTS = 16 };
struct cfg_etcd {
	char **endpoints;             /* "http[s]://host:port" (a bare host:port gets
	                               * http://, or https:// with tls-ca) */
	size_t nendpoints;
	char *prefix;                 /* always ends in '/' */
	uint32_t dial_timeout_ms;
	uint32_t request_timeout_ms;  /* a range read, not the watch */
	uint32_t max_value_size;      /* bytes; larger values are skipped */
	char *username;               /* with password: etcd auth; NULL: none */
	char *password;
	char *tls_ca;                 /* PEM files; NULL: none */
	char *tls_cert;               /* with tls_key: client certificate */
	char *tls_key;
	uint32_t page_keys;           /* keys per range page; 0: 10,000. Not a YAML
	                               * key: the tests make pages small */
	bool serve_stale;             /* /ready before the first sync */
};

struct config {
	char *path;
	bool reads_files;             /* other files were read (secret-file): a reload reads them */
	struct cfg_listen *listen;
	size_t nlisten;
	uint32_t workers;             /* UDP workers per address; 0: one per core */
	uint32_t tcp_idle_timeout_ms;
	uint32_t tcp_max_clients;
	uint32_t tcp_max_per_client;  /* 0: no per-client cap */
	uint16_t udp_max_payload;     /* largest UDP answer we send */
	struct cfg_listen http;       /* http: the operator endpoint, if have_http */
	bool have_http;
	struct cfg_locality *localities;
	size_t nlocalities;
	struct cfg_zone *zones;
	size_t nzones;
	struct cfg_forward forward;
	struct cfg_cache cache;
	struct tsig_key *keys;        /* TSIG keys (keys:), name_text owned */
	size_t nkeys;
	struct cfg_transfer transfer; /* the default of every zone */
	struct cfg_cookies cookies;
	struct cfg_rrl rrl;
	struct cfg_search search[CFG_SEARCH_MAX];   /* default: none (off) */
	size_t nsearch;
	struct cfg_chaos chaos;
	struct cfg_etcd etcd;         /* nendpoints 0: no etcd */
	/* The loaded services' backend arrays and default names (cfg_service
	 * in_slab), packed in mappings of their own: config_slab_release
	 * gives them back to the kernel whole once the blocks hold them. */
	struct cfg_slab *slab;
};

/* The largest configuration file read (100k services x 10 backends is
 * about 14 MB of YAML). */
enum { CFG_FILE_MAX = 256 << 20 };

/* Errors read "file:line:col: message" (line and column 1-based). */
struct config_error {
	char msg[512];
};

/* Loads and validates path. On success *out owns everything (free with
 * config_free) and 0 is returned; on failure -1 with err filled in and *out
 * untouched. */
int config_load(const char *path, struct config **out, struct config_error *err);
/* Same from memory; name is used in messages. */
int config_load_string(const char *yaml, size_t len, const char *name,
                       struct config **out, struct config_error *err);
void config_free(struct config *cfg);

/* Whether text is an unbracketed IPv6 address whose last group reads as a
 * port ("::1:5353"): valid as an address, but almost surely meant as
 * [::1]:5353. Callers reject it with a hint; brackets say which. */
bool config_listen_ambiguous(const char *text);
/* Parses "1.2.3.4:53", "[::1]:53", "1.2.3.4" (port defport). 0 or -1. */
int config_parse_listen(const char *text, uint16_t defport, struct cfg_listen *out);
/* Same, and with port0 an explicit ":0" is accepted (the kernel picks a
 * free port, the same one for UDP and TCP; dnsd logs it). For -l. */
int config_parse_listen_port0(const char *text, uint16_t defport, bool port0,
                              struct cfg_listen *out);
/* Parses "30", "30s", "5m", "1h", "1d" (seconds) or, with ms, also "100ms"
 * into milliseconds. 0 or -1. */
int config_parse_duration(const char *text, bool ms, uint32_t *out);

/* The schema's defaults, for a service or backend made outside the loader
 * (etcd, UPDATE): every field with a default in its schema row gets it,
 * the others are left alone. A service's ttl defaults to its zone's, which
 * the caller sets. config_service_defaults allocates s->check.path: 0, or
 * -1 out of memory. */
int config_service_defaults(struct cfg_service *s);
void config_backend_defaults(struct cfg_backend *b);

/* ---- changes by dynamic updates (update.c) ----------------------------------
 * These edit a loaded config that nothing else uses yet (the control thread
 * builds a new one for every accepted update), growing its arrays, and
 * validate as the loader does. Errors go to err without a file position. */

/* The index of the service of zone zi whose owner is name, or -1. */
/* A deep copy of src into dst (which it overwrites). 0, or -1 when out of
 * memory (dst then empty). config_service_clear frees what dst holds. */
/* A backend's default name: its address as a label, 127.0.0.2 ->
 * 127-0-0-2, fd00::5 -> fd00--5 (one address, one name; two addresses
 * never share one). out has INET6_ADDRSTRLEN bytes. Returns the length. */
size_t config_addr_label(int family, const uint8_t *addr, char *out);
int config_service_copy(struct cfg_service *dst, const struct cfg_service *src);
void config_service_clear(struct cfg_service *s);
/* Whether s may be frozen: it has backends, none of them checked (the
 * watcher reads checked backends from the config). */
bool config_service_freezable(const struct cfg_service *s);
/* Frees s's backends, which the block of key key holds (see frozen). */
void config_service_freeze(struct cfg_service *s, uint64_t key);
/* s's backends in memory of its own (out of the slab), before an edit
 * that reallocates the array. 0, or -1 out of memory (s unchanged). */
int config_service_own(struct cfg_service *s);
/* Gives cfg's slab back: the services still in it get arrays and names
 * of their own first. 0, or -1 out of memory (the slab stays). Checked
 * services are never in the slab (the watcher points at their backends:
 * they must not move); the others may move until this returns. */
int config_slab_release(struct config *cfg);
long config_find_service(const struct config *cfg, size_t zi, const uint8_t *name, size_t len);
/* Adds a backend to service si of zone zi, from tmpl's family, addr,
 * port, weight and priority (other fields ignored); its name is made from
 * the address and its check is the service's. Returns 0, 1 if the service
 * already has that address and port (nothing changed), or -1. */
int config_add_backend(struct config *cfg, size_t zi, size_t si, const struct cfg_backend *tmpl,
                       char *err, size_t errlen);
/* Removes the backends of service si with family and addr (4 or 16
 * bytes), and if with_port also port; family 0 removes them all.
 * Returns how many were removed. */
size_t config_remove_backends(struct config *cfg, size_t zi, size_t si, int family,
                              const uint8_t *addr, bool with_port, uint16_t port);
/* Adds a static record (rdata uncompressed wire, copied). An identical
 * record is not added again (returns 1); a record joining an RRset with
 * another TTL gives the whole RRset its TTL. 0, 1, or -1. */
/* A copy of n records (their rdata too) in *out; 0, or -1 out of memory
 * (*out NULL). config_records_free frees such an array (NULL: no-op). */
int config_records_copy(struct cfg_record **out, const struct cfg_record *src, size_t n);
void config_records_free(struct cfg_record *recs, size_t n);
int config_add_record(struct config *cfg, size_t zi, const uint8_t *owner, size_t ownerlen,
                      uint16_t type, uint32_t ttl, const uint8_t *rdata, uint16_t rdlen,
                      char *err, size_t errlen);
/* Removes static records at owner: of type (0: any type) and, if rdata is
 * not NULL, with that rdata. Returns how many were removed. */
size_t config_remove_records(struct config *cfg, size_t zi, const uint8_t *owner,
                             size_t ownerlen, uint16_t type, const uint8_t *rdata,
                             uint16_t rdlen);
/* The loader's name checks of zone zi (CNAME and service conflicts, one
 * TTL per RRset, duplicates). 0, or -1 with err set. Nothing to do (0) if
 * the zone's names_checked is set. */
int config_check_zone(struct config *cfg, size_t zi, char *err, size_t errlen);

#endif

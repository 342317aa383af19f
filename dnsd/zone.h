/* zone.h -- the immutable zone snapshot: built from a config in one arena,
 * looked up by name (hash table per zone, case-insensitive), published with
 * one RCU pointer swap and freed whole after a grace period. Knows nothing
 * of packets; query.c turns lookups into answers. */
#ifndef MESHDNS_ZONE_H
#define MESHDNS_ZONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bstate.h"
#include "config.h"
#include "util/hash.h"

enum { ZONE_MAX_BACKENDS = 4096 }; /* per service; bounds per-query scratch */

struct zone_rdata {
	uint16_t len;
	uint8_t data[];               /* uncompressed wire rdata */
};

struct zone_rrset {
	uint16_t type;
	uint16_t count;
	uint32_t ttl;
	const struct zone_rdata **rd;
};

struct zone_port {
	const char *name;
	uint16_t port;
	uint8_t proto;                /* IPPROTO_TCP or IPPROTO_UDP */
	/* Its _name._proto node in the block: an SRV query finds it by
	 * comparing labels, without hashing the name. */
	const struct zone_node *srv;
};

/* What answers seldom read: the name as configured when it is not its
 * target's first label (it has capitals), the locality label, the etcd
 * key. Most backends have none of them: no info at all. */
struct zone_backend_info {
	const char *name;
	const char *locality;
	const char *src_key;          /* etcd: its key (status only) */
};

/* 48 bytes: a million of them, and an answer reads those of its service. */
struct zone_backend {
	/* Health lives outside the name data: the backend's word in the state
	 * table (bstate.h), read at answer time; &bstate_always_up when the
	 * backend is not checked. A state change writes that word only. */
	const uint64_t *state;
	uint8_t addr[16];
	/* In the block, as byte offsets from the backend itself (half a
	 * pointer each; a block is never copied): the SRV target, an absolute
	 * wire name (lowercase), and the info (0: none). Read them with
	 * zone_backend_target and zone_backend_info. */
	int32_t target_off;
	int32_t info_off;
	uint32_t sid;                 /* its state id (0: not checked) */
	uint16_t weight;              /* 1..65535 */
	uint16_t port;                /* 0: the service's port */
	uint16_t priority;
	uint16_t addr_first;          /* index of the first backend with this address */
	uint8_t family;               /* AF_INET or AF_INET6 */
	uint8_t targetlen;
	uint8_t source;               /* enum cfg_source */
	bool target_first;            /* the first backend with its target name: that
	                               * name's A/AAAA (transfers render it once) */
};
_Static_assert(sizeof(struct zone_backend) == 48, "a zone backend grew");

static inline const uint8_t *zone_backend_target(const struct zone_backend *b)
{
	return (const uint8_t *)((intptr_t)b + b->target_off);
}

static inline const struct zone_backend_info *zone_backend_info(const struct zone_backend *b)
{
	return b->info_off ? (const struct zone_backend_info *)((intptr_t)b + b->info_off) : NULL;
}

/* For builders (and tests): target and info at offsets from b. */
static inline void zone_backend_set_target(struct zone_backend *b, const uint8_t *target)
{
	b->target_off = (int32_t)((intptr_t)target - (intptr_t)b);
}

static inline void zone_backend_set_info(struct zone_backend *b, const struct zone_backend_info *in)
{
	b->info_off = in ? (int32_t)((intptr_t)in - (intptr_t)b) : 0;
}

/* The backend's identity for rendezvous hashing: its address and port,
 * so sticky clients stay where they are across rebuilds and restarts. */
static inline uint64_t zone_backend_hkey(const struct zone_backend *b)
{
	uint64_t lo, hi;
	memcpy(&lo, b->addr, sizeof(lo));
	memcpy(&hi, b->addr + 8, sizeof(hi));
	return hash_mix64(hash_mix64(lo ^ 0x6d657368646e73ull ^ b->family) ^ hi ^
	                  ((uint64_t)b->port << 40));
}

static inline const char *zone_backend_locality(const struct zone_backend *b)
{
	const struct zone_backend_info *in = zone_backend_info(b);
	return in ? in->locality : NULL;
}

static inline const char *zone_backend_src_key(const struct zone_backend *b)
{
	const struct zone_backend_info *in = zone_backend_info(b);
	return in ? in->src_key : NULL;
}

/* The backend's name as configured, in buf if need be: its target's first
 * label unless its info says otherwise. "" if buf is too small. */
const char *zone_backend_name(const struct zone_backend *b, char *buf, size_t len);

struct zone_service {
	/* What a lookup and an answer read first, in one cache line. The
	 * names below the owner (backend targets, _port._proto SRV names and
	 * their empty non-terminals), found by zone_lookup through the
	 * service: a service is a block of its own (below), so changing its
	 * backends rebuilds it alone. */
	const uint32_t *table;        /* index + 1 | hash tag (zone.c), 0: empty; an index
	                               * from nnodes on is backend index - nnodes: the
	                               * backend's target name */
	uint32_t mask;
	uint32_t tagmask;
	uint64_t hash_key;
	const struct zone_node *nodes;
	const struct zone_backend *backends;
	unsigned nbackends;
	uint32_t ttl;
	enum cfg_policy policy;
	uint32_t max_answers;
	uint32_t id;                  /* for per-worker round-robin counters */
	uint32_t slow_start_ms;
	bool fail_open;
	uint8_t oversize;             /* enum cfg_oversize */
	bool dup_addrs;               /* some backends share an address (host on two ports) */
	uint8_t ownerlen;
	uint32_t nnodes;
	const uint8_t *owner;
	const struct zone_port *ports;
	unsigned nports;
	unsigned n4, n6;              /* backends per family */
	/* Smooth weighted round-robin schedules over the backends of each
	 * family (index 0: AF_INET, 1: AF_INET6, 2: both), built with the
	 * snapshot so a query only indexes them with its own counter and skips
	 * the entries of backends that are down at that moment. */
	const uint16_t *rr_sched[3];
	uint16_t rr_len[3];
	/* Some backends share a target name (one host on several ports);
	 * they share its bytes too, so one pointer compare tells them apart. */
	bool dup_targets;
	uint8_t target_max;           /* the longest target name (sizes SRV answers) */
	/* Every backend has the same weight and there is no slow start: a
	 * weighted order is then a uniform shuffle (false is always safe). */
	bool equal_weights;
};

/* Where a service is served: zone-level nodes and snapshots point at the
 * slot, and the slot at the service's current block. Replacing a block
 * (an UPDATE, a reload that changed the service) is one pointer store;
 * the old block is freed after a grace period. Slots and blocks belong to
 * a registry (registry.h), which outlives snapshots: an unchanged service
 * keeps its block across reloads. */
struct zone_slot {
	const struct zone_service *svc;   /* atomic: zone_slot_service() */
};

static inline const struct zone_service *zone_slot_service(const struct zone_slot *s)
{
	return __atomic_load_n(&s->svc, __ATOMIC_ACQUIRE);
}

/* Client subnet -> locality label (longest prefix wins). */
struct zone_locality {
	int family;
	uint8_t addr[16];
	uint8_t prefix;
	const char *label;
};

enum zone_node_kind {
	ZONE_NODE_PLAIN = 0,          /* static RRsets only (maybe none: empty non-terminal) */
	ZONE_NODE_SERVICE,            /* A/AAAA/SRV made per query from svc */
	ZONE_NODE_SRV,                /* _port._proto.<service>: SRV of one port */
	/* A backend's target name (<name>.<service>): its A or AAAA is the
	 * backend's address. Targets have no node in their block (a million
	 * of them would be 64 bytes each plus an RRset): only a lookup result
	 * holds one (zone_result.tnode), with svc and port_idx, the index of
	 * the first backend of that name. */
	ZONE_NODE_TARGET,
};

struct zone;

enum { ZONE_NODE_INLINE = 24 };  /* name bytes kept in the node itself */

/* One cache line: a lookup that finds a node reads its name from the same
 * line when the name is short (most service names are). */
struct zone_node {
	const uint8_t *name;          /* lowercase absolute wire name: inline_name[]
	                               * when it fits, else the zone's name block */
	const struct zone_rrset *rrsets;
	/* The service it answers for, read with zone_node_service(): SRV nodes
	 * (inside their service's block) and SERVICE nodes (zone level; the
	 * registry's handle is the zone's slots[svc_idx], and this copy of
	 * the slot's block saves a query a dependent read; registry_replace
	 * stores a new block in both). */
	const struct zone_service *svc;
	uint32_t cut;                 /* zone level: index + 1 in the zone's nodes of the
	                               * nearest zone cut at or above; 0: none */
	uint32_t svc_idx;             /* SERVICE nodes: its index in the zone's slots (and config) */
	uint16_t nrrsets;
	uint16_t port_idx;            /* SRV nodes */
	uint8_t namelen;
	uint8_t kind;
	bool delegation;              /* NS below the apex: a zone cut */
	bool names_below;             /* SERVICE nodes: the zone has names below it */
	uint8_t inline_name[ZONE_NODE_INLINE];
};
_Static_assert(sizeof(struct zone_node) == 64, "a zone node is one cache line");

struct zone {
	const uint8_t *origin;        /* lowercase */
	uint8_t originlen;
	const struct zone_node *apex;
	/* The SOA serial: rises on every visible change, including health
	 * changes that rebuild nothing. Written by the control thread only
	 * (zone_set_serial), read with zone_serial; the SOA rdata's own
	 * serial field is stale and replaced by this one on output. */
	uint32_t serial;
	uint32_t neg_ttl;             /* RFC 2308: min(SOA TTL, SOA MINIMUM) */
	const struct zone_rrset *soa;
	bool has_cuts;
	uint64_t hash_key;
	uint32_t mask;                /* table size - 1 */
	uint32_t tagmask;             /* the hash tag's bits in table entries */
	const uint32_t *table;        /* node index + 1 | hash tag, 0: empty; open addressing */
	const struct zone_node *nodes;    /* all names, the apex first */
	uint32_t nnodes;
	const struct zone_slot *const *slots;  /* its services, in config order */
	uint32_t nservices;
	bool has_services;
	/* Its slot in the metrics' zone label (set by the control thread
	 * before it publishes the snapshot): counting a query costs no search. */
	uint8_t metrics_slot;
};

/* The service a SERVICE or SRV node answers for, as of now. */
static inline const struct zone_service *zone_node_service(const struct zone_node *n)
{
	return __atomic_load_n(&n->svc, __ATOMIC_ACQUIRE);
}

/* Where a checked backend's state id is served (for the control thread
 * applying health changes). */
struct zone_sidref {
	uint32_t sid;                 /* 0: empty slot */
	uint32_t zi;                  /* index into snapshot.zones */
	const struct zone_slot *slot;
};

struct zone_snapshot {
	struct arena *arena;
	const struct zone *zones;
	unsigned nzones;
	uint64_t generation;          /* 1, 2, ... per published snapshot */
	size_t bytes;                 /* arena bytes in use */
	uint16_t udp_max_payload;     /* largest UDP answer we send */
	const struct zone_locality *localities;
	unsigned nlocalities;
	uint32_t nservices;
	const struct zone_sidref *sidmap;  /* open addressing by sid */
	uint32_t sidmask;                  /* table size - 1 */
	struct registry *own;         /* built without a registry: its services' own */
};

enum zone_status {
	ZONE_NOTAUTH = 0,             /* no zone of ours contains the name */
	ZONE_NXDOMAIN,
	ZONE_FOUND,                   /* the node exists (it may lack the type: NODATA) */
	ZONE_REFERRAL,                /* at or below a zone cut: node = the cut */
};

struct zone_result {
	enum zone_status status;
	const struct zone *zone;
	const struct zone_node *node;     /* may be &tnode: valid while the result is */
	struct zone_node tnode;           /* a ZONE_NODE_TARGET found */
};

/* The state id of backend bi of service si of zone zi (indexes into cfg),
 * 0 for a backend that is not checked (always up). */
typedef uint32_t (*zone_sid_fn)(void *arg, size_t zi, size_t si, size_t bi);

/* Builds a snapshot from cfg (which it does not keep). prev, if not NULL,
 * is the snapshot being replaced: serials never go backwards and the
 * generation counts on. states and sid may be NULL (every backend up);
 * otherwise each backend points at its word in states, which must outlive
 * the snapshot. Returns 0, or -1 with a message in err. */
struct registry;
/* reg: where the services' slots and blocks live (registry.h); NULL: the
 * snapshot gets a registry of its own, freed with it (tests, --check).
 * With a registry, a service whose content and state ids are unchanged
 * keeps its block; new blocks wait in reg until registry_commit. */
int zone_build(const struct config *cfg, const struct zone_snapshot *prev, struct registry *reg,
               const struct bstate *states, zone_sid_fn sid, void *sarg,
               struct zone_snapshot **out, char *err, size_t errlen);

/* One service's block: the zone_service and the names below its owner,
 * in an arena of its own. zi/si: its indexes in cfg for sid. O(service).
 * NULL with err set on failure (a name too long, too many backends, out
 * of memory). zone_block_free(NULL) is a no-op. */
struct zone_service *zone_block_build(const struct cfg_zone *cz, const struct cfg_service *cs,
                                      uint32_t id, const struct bstate *states, zone_sid_fn sid,
                                      void *sarg, size_t zi, size_t si, char *err,
                                      size_t errlen);
void zone_block_free(struct zone_service *svc);
/* Bytes of a block (metrics). */
size_t zone_block_bytes(const struct zone_service *svc);
/* A hash of what zone_block_build makes of cs with those ids: equal
 * hashes, equal blocks (reuse across reloads). */
uint64_t zone_block_key(const struct cfg_service *cs, const struct bstate *states, zone_sid_fn sid,
                        void *sarg, size_t zi, size_t si);

static inline bool zone_backend_up(const struct zone_backend *b)
{
	return bstate_word_up(bstate_load(b->state));
}
static inline uint32_t zone_serial(const struct zone *z)
{
	return __atomic_load_n(&z->serial, __ATOMIC_ACQUIRE);
}
/* Control thread only: a published zone's serial moves on in place. */
void zone_set_serial(const struct zone *z, uint32_t serial);
/* The zone index and service slot where sid is served in snap, or NULL. */
const struct zone_slot *zone_sid_slot(const struct zone_snapshot *snap, uint32_t sid, uint32_t *zi);
/* Writes the SOA rdata of z with its current serial into out (at least
 * ZONE_SOA_RDATA_MAX bytes); returns the length, 0 if z has no SOA. */
enum { ZONE_SOA_RDATA_MAX = 2 * 255 + 20 };
size_t zone_soa_rdata(const struct zone *z, uint8_t *out);
/* zone_free(NULL) is a no-op. Only for snapshots nobody can still read. */
void zone_free(struct zone_snapshot *snap);

/* The SRV rdata of backend b for port port_idx of svc: priority, weight
 * (capped at 65535), the backend's port or the service's, target. Writes
 * at most ZONE_SRV_RDATA_MAX bytes to rd; returns the length. */
enum { ZONE_SRV_RDATA_MAX = 6 + 255 };
size_t zone_srv_rdata(const struct zone_service *svc, const struct zone_backend *b,
                      unsigned port_idx, uint32_t weight, uint8_t *rd);

/* A copy of src (config_service_copy) with backends of its own: when src
 * is frozen, made from its block blk (the backends' names, addresses,
 * ports, weights, priorities, localities and etcd keys; the line numbers
 * of the YAML are gone). For an edit: O(service). 0, or -1 (out of
 * memory, blk not src's block): dst is then empty. */
int zone_service_copy(struct cfg_service *dst, const struct cfg_service *src,
                      const struct zone_service *blk);

/* Looks up an absolute wire name (any case). Never allocates. */
void zone_lookup(const struct zone_snapshot *snap, const uint8_t *name, size_t len,
                 struct zone_result *res);
/* A name of svc's block that z also has with data on either side (a
 * static record at a backend's target name, a service named like
 * another's backend), with *len, or NULL: a block must not be served
 * beside such a name. */
const uint8_t *zone_block_clash(const struct zone *z, const struct zone_service *svc, size_t *len);
/* The node named exactly name in z (glue under cuts included), or NULL. */
const struct zone_node *zone_find(const struct zone *z, const uint8_t *name, size_t len);
/* The node's RRset of type, or NULL. */
const struct zone_rrset *zone_node_rrset(const struct zone_node *node, uint16_t type);

/* Publishes snap as the current snapshot, waits for a grace period (every
 * reader thread passed a quiescent state) and frees the previous one.
 * Call from a thread that is NOT a registered RCU reader (main, builders);
 * publishers must be serialized by the caller. */
void zone_publish(struct zone_snapshot *snap);
/* Publishes snap and returns the previous snapshot without waiting: the
 * caller frees it after synchronize_rcu(). Same callers as zone_publish. */
struct zone_snapshot *zone_swap(struct zone_snapshot *snap);
/* The current snapshot, or NULL before the first publish. The caller must
 * be an online RCU reader (or the publisher) and must load it once per query. */
const struct zone_snapshot *zone_current(void);
/* Unpublishes and frees the current snapshot (at shutdown, after readers stopped). */
void zone_shutdown(void);

#endif

/* registry.h -- services by stable identity: one slot per (zone, service
 * name), holding the block that answers for the service now. Snapshots
 * point at slots, so a change of one service (an UPDATE, a reload that
 * changed it) builds that service's block alone and swaps one pointer;
 * a reload keeps the blocks of the services it did not change.
 *
 * Threads: everything here runs on the control thread (or in a builder
 * that owns a private registry). Readers only follow zone_slot_service(). */
#ifndef MESHDNS_REGISTRY_H
#define MESHDNS_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "zone.h"

struct registry;

/* NULL on ENOMEM. registry_free(NULL) is a no-op; it frees every slot and
 * block, so only when no snapshot using them can be read any more. */
struct registry *registry_new(void);
void registry_free(struct registry *r);

/* A build of a snapshot: registry_begin, then registry_get per service;
 * then registry_commit when the snapshot is published (or registry_abort
 * when the build failed). */
void registry_begin(struct registry *r);
/* The slot of service cs of zone cz. Its block is kept when unchanged
 * (zone_block_key), else a new one is built and waits until commit.
 * *svc is the block the new snapshot will serve. NULL with err set when
 * the block cannot be built. */
const struct zone_slot *registry_get(struct registry *r, const struct cfg_zone *cz,
                                     const struct cfg_service *cs, uint32_t id,
                                     const struct bstate *states, zone_sid_fn sid, void *sarg,
                                     size_t zi, size_t si, const struct zone_service **svc,
                                     char *err, size_t errlen);
/* node is the build's zone node for slot (NULL reg: nothing to do). At
 * commit it becomes the node registry_replace keeps pointing at the
 * slot's block, as the slot itself: the served snapshot's node. */
void registry_bind(struct registry *r, const struct zone_slot *slot, struct zone_node *node);
/* The block slot will serve once the pending build is committed. */
const struct zone_service *registry_slot_next(const struct zone_slot *slot);
/* Makes the pending blocks current (one release store each) and retires
 * the slots the build did not use. Call right before the new snapshot is
 * swapped in. */
void registry_commit(struct registry *r);
/* Drops what the failed build made (new blocks, new slots). */
void registry_abort(struct registry *r);
/* Frees the blocks replaced and slots retired so far. Call after a grace
 * period that followed them (zone_publish / synchronize_rcu). */
void registry_reclaim(struct registry *r);

/* Replaces the block of a live slot by one built for cs now (an UPDATE):
 * O(service). The old block is freed at the next registry_reclaim, after a
 * grace period. 0, or -1 with err set (the slot is unchanged). */
int registry_replace(struct registry *r, const struct zone_slot *slot, const struct cfg_zone *cz,
                     const struct cfg_service *cs, const struct bstate *states, zone_sid_fn sid,
                     void *sarg, size_t zi, size_t si, char *err, size_t errlen);

/* The slot (and *zi, its zone's index in the snapshot) whose current
 * block has a backend with state id sid, or NULL: for the control thread
 * applying health changes, whatever reloads and UPDATEs did. */
const struct zone_slot *registry_sid_slot(const struct registry *r, uint32_t sid, uint32_t *zi);

/* The key (zone_block_key) of the block slot serves. */
uint64_t registry_slot_key(const struct zone_slot *slot);
/* Freezes (config_service_freeze) every unchecked service of cfg whose
 * block in r, served now, was built from it: cfg must be the config the
 * served snapshot was built from, and a later build of cfg reuses those
 * blocks (or fails). Returns how many it froze. O(services). */
size_t registry_freeze(struct registry *r, struct config *cfg);

/* Live slots and the bytes of their blocks (metrics, tests). */
size_t registry_count(const struct registry *r);
size_t registry_bytes(const struct registry *r);
/* Blocks built since registry_new (tests: what a reload rebuilt). */
uint64_t registry_builds(const struct registry *r);

#endif

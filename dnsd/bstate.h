/* bstate.h -- the backend state table: one 64-bit word per health-checked
 * backend (up/down and the time of its last change), addressed by a stable
 * id and read by queries at answer time. Zone snapshots hold pointers to
 * these words, never copies: a backend going down changes one word, not
 * the names or rdata (gdnsd's monitor state array, read at answer time).
 *
 * Words live in fixed 32 KiB chunks that never move, so a pointer to a
 * word stays valid for the table's lifetime and readers need no lock.
 * Id 0 is a word that is always UP (every unchecked backend points at it).
 *
 * Threads: words are written by one thread at a time (the control thread
 * applies the watcher's changes) with release stores and read by any
 * thread with relaxed loads. Allocation and release take an internal
 * mutex: they happen on configuration changes, never per query. */
#ifndef MESHDNS_BSTATE_H
#define MESHDNS_BSTATE_H

#include <stdbool.h>
#include <stdint.h>

struct bstate;

/* A word: bit 0 = up, bits 1..63 = CLOCK_MONOTONIC ms of the last change
 * (0: never changed, so no slow start after a restart). */
static inline uint64_t bstate_word(bool up, uint64_t since_ms)
{
	return since_ms << 1 | (up ? 1u : 0u);
}
static inline uint64_t bstate_load(const uint64_t *w)
{
	return __atomic_load_n(w, __ATOMIC_RELAXED);
}
static inline bool bstate_word_up(uint64_t w)
{
	return w & 1;
}
static inline uint64_t bstate_word_since(uint64_t w)
{
	return w >> 1;
}

/* The word of id 0 (always UP, since 0), for builds without a table. */
extern const uint64_t bstate_always_up;

/* NULL on ENOMEM. bstate_free(NULL) is a no-op; only once no reader is left. */
struct bstate *bstate_new(void);
void bstate_free(struct bstate *t);

/* A fresh id (>= 1) whose word is UP since 0. Returns 0, or -1 when out of
 * memory or ids (BSTATE_MAX). Any thread. */
enum { BSTATE_CHUNK = 4096, BSTATE_MAX_CHUNKS = 16384 };
int bstate_alloc(struct bstate *t, uint32_t *id);
/* Gives id back. It is not handed out again before bstate_reclaim, which
 * the caller runs after a grace period in which no snapshot that points
 * at the word can still be read. Any thread; id 0 is ignored. */
void bstate_release(struct bstate *t, uint32_t id);
/* Makes the ids released so far reusable. Call after synchronize_rcu()
 * (zone_publish) that followed their release. */
void bstate_reclaim(struct bstate *t);

/* The word of id (stable for the table's lifetime); &bstate_always_up
 * for id 0 or an id never allocated. */
const uint64_t *bstate_slot(const struct bstate *t, uint32_t id);
/* Stores a new state for id (release). One writer at a time per id. */
void bstate_set(struct bstate *t, uint32_t id, bool up, uint64_t since_ms);
/* Ids handed out and not yet released (for tests and metrics). */
uint32_t bstate_live(const struct bstate *t);

#endif

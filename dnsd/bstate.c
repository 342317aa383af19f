/* bstate.c -- the backend state table: chunked words, a free list, and
 * release deferred to a grace period. */
#include "bstate.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

const uint64_t bstate_always_up = 1;

struct bstate {
	/* Written under mu (a chunk appears once, then never moves), read
	 * lock-free by bstate_slot with an acquire load. */
	uint64_t *chunks[BSTATE_MAX_CHUNKS];
	pthread_mutex_t mu;
	uint32_t next;                /* ids below this were handed out once */
	uint32_t *free_ids;           /* reusable now */
	size_t nfree, free_cap;
	uint32_t *pending;            /* released, reusable after a grace period */
	size_t npending, pending_cap;
	uint32_t live;
};

struct bstate *bstate_new(void)
{
	struct bstate *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	pthread_mutex_init(&t->mu, NULL);
	t->next = 1;
	return t;
}

void bstate_free(struct bstate *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < BSTATE_MAX_CHUNKS && t->chunks[i]; i++)
		free(t->chunks[i]);
	free(t->free_ids);
	free(t->pending);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

static int push(uint32_t **v, size_t *n, size_t *cap, uint32_t id)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 256;
		uint32_t *nv = realloc(*v, nc * sizeof(*nv));
		if (!nv)
			return -1;
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = id;
	return 0;
}

int bstate_alloc(struct bstate *t, uint32_t *id)
{
	int rc = -1;
	pthread_mutex_lock(&t->mu);
	uint32_t i;
	if (t->nfree) {
		i = t->free_ids[--t->nfree];
	} else {
		i = t->next;
		size_t c = i / BSTATE_CHUNK;
		if (c >= BSTATE_MAX_CHUNKS)
			goto out;
		if (!t->chunks[c]) {
			uint64_t *chunk = calloc(BSTATE_CHUNK, sizeof(*chunk));
			if (!chunk)
				goto out;
			__atomic_store_n(&t->chunks[c], chunk, __ATOMIC_RELEASE);
		}
		t->next++;
	}
	__atomic_store_n(&t->chunks[i / BSTATE_CHUNK][i % BSTATE_CHUNK], bstate_word(true, 0),
	                 __ATOMIC_RELEASE);
	__atomic_add_fetch(&t->live, 1, __ATOMIC_RELAXED);
	*id = i;
	rc = 0;
out:
	pthread_mutex_unlock(&t->mu);
	return rc;
}

void bstate_release(struct bstate *t, uint32_t id)
{
	if (!id)
		return;
	pthread_mutex_lock(&t->mu);
	/* Out of memory here only leaks the id: it is never reused. */
	if (push(&t->pending, &t->npending, &t->pending_cap, id) == 0)
		__atomic_sub_fetch(&t->live, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&t->mu);
}

void bstate_reclaim(struct bstate *t)
{
	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < t->npending; i++)
		if (push(&t->free_ids, &t->nfree, &t->free_cap, t->pending[i]) == -1)
			break;
	t->npending = 0;
	pthread_mutex_unlock(&t->mu);
}

const uint64_t *bstate_slot(const struct bstate *t, uint32_t id)
{
	if (!t || !id)
		return &bstate_always_up;
	const uint64_t *chunk = __atomic_load_n(&t->chunks[id / BSTATE_CHUNK], __ATOMIC_ACQUIRE);
	if (!chunk)
		return &bstate_always_up;
	return &chunk[id % BSTATE_CHUNK];
}

void bstate_set(struct bstate *t, uint32_t id, bool up, uint64_t since_ms)
{
	if (!id)
		return;
	uint64_t *chunk = __atomic_load_n(&t->chunks[id / BSTATE_CHUNK], __ATOMIC_ACQUIRE);
	if (chunk)
		__atomic_store_n(&chunk[id % BSTATE_CHUNK], bstate_word(up, since_ms),
		                 __ATOMIC_RELEASE);
}

uint32_t bstate_live(const struct bstate *t)
{
	return __atomic_load_n(&t->live, __ATOMIC_RELAXED);
}

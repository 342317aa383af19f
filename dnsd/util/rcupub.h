/* rcupub.h -- one pointer that RCU readers load and one writer replaces:
 * the snapshot (zone.c), the transfer settings (xfr.c) and the cookie and
 * rate-limit settings (guard.c). Loaded with acquire and swapped with
 * acq_rel: the instructions of rcu_dereference/rcu_xchg_pointer on x86
 * and ARM64, but visible to ThreadSanitizer, which cannot see liburcu's
 * own barriers. (What TSan still cannot see is that synchronize_rcu orders
 * the readers' last accesses before the free; tests/tsan.supp names
 * those pairs.) */
#ifndef MESHDNS_RCUPUB_H
#define MESHDNS_RCUPUB_H

#include <urcu-qsbr.h>

/* The current value of slot (an lvalue of pointer type), for a reader. */
#define RCUPUB_LOAD(slot) __atomic_load_n(&(slot), __ATOMIC_ACQUIRE)

/* Swaps p into slot and returns what was there: the caller frees it once
 * a grace period has passed. */
#define RCUPUB_SWAP(slot, p) __atomic_exchange_n(&(slot), (p), __ATOMIC_ACQ_REL)

/* Swaps p into slot (NULL: unpublish) and frees the old value with
 * free_fn after a grace period. From a thread that is not a registered
 * reader; writers serialized by the caller. */
#define RCUPUB_REPLACE(slot, p, free_fn)                                                           \
	do {                                                                                       \
		__typeof__(slot) rcupub_old_ = RCUPUB_SWAP(slot, p);                               \
		if (rcupub_old_) {                                                                 \
			synchronize_rcu();                                                         \
			free_fn(rcupub_old_);                                                      \
		}                                                                                  \
	} while (0)

#endif

/* list.h -- the doubly-linked list with a head and a tail, intrusive: an
 * element carries its own prev and next pointers, named by the caller (an
 * element on two lists has two pairs), and a list is its head and tail
 * pointers. Append, prepend and unlink in O(1), no allocation. The TCP
 * connections (server.c), the forwarder's pending and retry lists
 * (forward.c) and the cache's LRU (cache.c) are such lists. Arguments are
 * evaluated more than once: pass plain lvalues. */
#ifndef MESHDNS_LIST_H
#define MESHDNS_LIST_H

#include <stddef.h>

#define DLIST_APPEND(head, tail, e, prev, next)                                                     \
	do {                                                                                       \
		(e)->next = NULL;                                                                  \
		(e)->prev = (tail);                                                                \
		if (tail)                                                                          \
			(tail)->next = (e);                                                        \
		else                                                                               \
			(head) = (e);                                                              \
		(tail) = (e);                                                                      \
	} while (0)

#define DLIST_PREPEND(head, tail, e, prev, next)                                                    \
	do {                                                                                       \
		(e)->prev = NULL;                                                                  \
		(e)->next = (head);                                                                \
		if (head)                                                                          \
			(head)->prev = (e);                                                        \
		else                                                                               \
			(tail) = (e);                                                              \
		(head) = (e);                                                                      \
	} while (0)

#define DLIST_UNLINK(head, tail, e, prev, next)                                                     \
	do {                                                                                       \
		if ((e)->prev)                                                                     \
			(e)->prev->next = (e)->next;                                               \
		else                                                                               \
			(head) = (e)->next;                                                        \
		if ((e)->next)                                                                     \
			(e)->next->prev = (e)->prev;                                               \
		else                                                                               \
			(tail) = (e)->prev;                                                        \
		(e)->prev = (e)->next = NULL;                                                      \
	} while (0)

#endif

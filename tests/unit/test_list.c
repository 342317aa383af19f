/* test_list.c -- the intrusive doubly-linked list (list.h): append,
 * prepend and unlink at the head, the tail and the middle, and one
 * element on two lists at once. */
#include <stdio.h>
#include <string.h>

#include "util/list.h"
#include "tap.h"

struct item {
	char name;
	struct item *prev, *next;     /* list a */
	struct item *bprev, *bnext;   /* list b */
};

struct lists {
	struct item *head, *tail;
	struct item *bhead, *btail;
};

/* The names along list a forwards, then a '|', then backwards. */
static const char *walk(const struct lists *l)
{
	static char buf[64];
	size_t n = 0;
	for (const struct item *i = l->head; i && n < 20; i = i->next)
		buf[n++] = i->name;
	buf[n++] = '|';
	for (const struct item *i = l->tail; i && n < 40; i = i->prev)
		buf[n++] = i->name;
	buf[n] = '\0';
	return buf;
}

static const char *walk_b(const struct lists *l)
{
	static char buf[64];
	size_t n = 0;
	for (const struct item *i = l->bhead; i && n < 20; i = i->bnext)
		buf[n++] = i->name;
	buf[n] = '\0';
	return buf;
}

int main(void)
{
	struct item it[4];
	struct lists l = { 0 };
	memset(it, 0, sizeof(it));
	for (int i = 0; i < 4; i++)
		it[i].name = (char)('a' + i);
	is_str(walk(&l), "|", "empty");
	DLIST_APPEND(l.head, l.tail, &it[0], prev, next);
	is_str(walk(&l), "a|a", "one appended");
	DLIST_APPEND(l.head, l.tail, &it[1], prev, next);
	DLIST_APPEND(l.head, l.tail, &it[2], prev, next);
	is_str(walk(&l), "abc|cba", "appended in order, linked both ways");
	DLIST_PREPEND(l.head, l.tail, &it[3], prev, next);
	is_str(walk(&l), "dabc|cbad", "prepended at the head");
	DLIST_UNLINK(l.head, l.tail, &it[1], prev, next);
	is_str(walk(&l), "dac|cad", "unlinked from the middle");
	ok(!it[1].prev && !it[1].next, "an unlinked element points nowhere");
	DLIST_UNLINK(l.head, l.tail, &it[3], prev, next);
	is_str(walk(&l), "ac|ca", "unlinked at the head");
	DLIST_UNLINK(l.head, l.tail, &it[2], prev, next);
	is_str(walk(&l), "a|a", "unlinked at the tail");
	DLIST_APPEND(l.bhead, l.btail, &it[0], bprev, bnext);
	DLIST_APPEND(l.bhead, l.btail, &it[2], bprev, bnext);
	DLIST_APPEND(l.head, l.tail, &it[2], prev, next);
	is_str(walk_b(&l), "ac", "a second list through other pointers");
	DLIST_UNLINK(l.head, l.tail, &it[0], prev, next);
	is_str(walk(&l), "c|c", "leaving one list...");
	is_str(walk_b(&l), "ac", "...keeps the other");
	DLIST_UNLINK(l.head, l.tail, &it[2], prev, next);
	ok(!l.head && !l.tail, "the last one out leaves it empty");
	DLIST_PREPEND(l.head, l.tail, &it[1], prev, next);
	is_str(walk(&l), "b|b", "prepended to an empty list");
	return done_testing();
}

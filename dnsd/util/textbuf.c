/* textbuf.c -- growable text buffer; see textbuf.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/textbuf.h"

/* Makes room for n more bytes plus a NUL. */
static bool tb_reserve(struct textbuf *tb, size_t n)
{
	if (tb->oom)
		return false;
	if (tb->len + n + 1 <= tb->cap)
		return true;
	size_t cap = tb->cap ? tb->cap : 1024;
	while (cap < tb->len + n + 1) {
		if (cap > ((size_t)-1) / 2) {
			tb->oom = true;
			return false;
		}
		cap *= 2;
	}
	char *p = realloc(tb->p, cap);
	if (!p) {
		tb->oom = true;
		return false;
	}
	tb->p = p;
	tb->cap = cap;
	return true;
}

void tb_put(struct textbuf *tb, const char *s, size_t n)
{
	if (!tb_reserve(tb, n))
		return;
	memcpy(tb->p + tb->len, s, n);
	tb->len += n;
	tb->p[tb->len] = '\0';
}

void tb_printf(struct textbuf *tb, const char *fmt, ...)
{
	va_list ap;
	char small[256];
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		tb->oom = true;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		tb_put(tb, small, (size_t)n);
		return;
	}
	if (!tb_reserve(tb, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(tb->p + tb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	tb->len += (size_t)n;
}

void tb_json_str(struct textbuf *tb, const char *s)
{
	tb_put(tb, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char esc[8];
		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			tb_put(tb, esc, 2);
		} else if (*p < 0x20 || *p >= 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			tb_put(tb, esc, 6);
		} else {
			tb_put(tb, (const char *)p, 1);
		}
	}
	tb_put(tb, "\"", 1);
}

char *tb_take(struct textbuf *tb, size_t *len)
{
	if (tb->oom) {
		tb_free(tb);
		return NULL;
	}
	if (!tb_reserve(tb, 0)) {
		tb_free(tb);
		return NULL;
	}
	tb->p[tb->len] = '\0';
	char *p = tb->p;
	if (len)
		*len = tb->len;
	tb->p = NULL;
	tb->len = tb->cap = 0;
	return p;
}

void tb_free(struct textbuf *tb)
{
	free(tb->p);
	tb->p = NULL;
	tb->len = tb->cap = 0;
	tb->oom = false;
}

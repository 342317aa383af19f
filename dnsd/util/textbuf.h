/* textbuf.h -- a growable text buffer for pages built off the query path
 * (metrics, status JSON). An allocation failure is sticky: the text is then
 * incomplete and tb.oom is set; callers check once at the end. */
#ifndef MESHDNS_TEXTBUF_H
#define MESHDNS_TEXTBUF_H

#include <stdbool.h>
#include <stddef.h>

struct textbuf {
	char *p;                      /* NUL-terminated when len > 0 */
	size_t len, cap;
	bool oom;
};

__attribute__((format(printf, 2, 3)))
void tb_printf(struct textbuf *tb, const char *fmt, ...);
void tb_put(struct textbuf *tb, const char *s, size_t n);
/* A JSON string literal with quotes, escaping per RFC 8259 7; bytes outside
 * printable ASCII become \u00XX. */
void tb_json_str(struct textbuf *tb, const char *s);
/* Hands the text over (caller frees) and resets tb; NULL after oom. */
char *tb_take(struct textbuf *tb, size_t *len);
void tb_free(struct textbuf *tb);

#endif

/* num.h -- strict decimal numbers from text: config values, record data
 * and command-line options all read them the same way. Digits only (no
 * sign, no spaces, no empty string), at most max, without overflow. */
#ifndef MESHDNS_NUM_H
#define MESHDNS_NUM_H

#include <stdbool.h>
#include <stdint.h>

static inline bool num_parse(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		uint64_t d = (uint64_t)(*s - '0');
		if (v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

#endif

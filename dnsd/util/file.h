/* file.h -- a whole file into memory, bounded: the configuration, and its
 * text again for an update applied over the YAML. */
#ifndef MESHDNS_FILE_H
#define MESHDNS_FILE_H

#include <stddef.h>

/* Reads path into *buf (malloc'd, *len bytes; the caller frees it). Less
 * than max bytes, else an error. 0, or -1 with "path: reason" in err. */
int file_read(const char *path, size_t max, char **buf, size_t *len, char *err, size_t errlen);

#endif

/* watch.h -- notices that the config file changed (--watch-config), for
 * setups where no one sends SIGHUP: a Kubernetes ConfigMap volume, an
 * editor. Only tells; main reloads exactly as on SIGHUP. */
#ifndef MESHDNS_WATCH_H
#define MESHDNS_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config_watch;

/* Watches the directory holding path with inotify: the file itself may be
 * replaced (an editor's rename) or be a symlink through "..data", which
 * kubelet swaps atomically (a new timestamped directory, "..data_tmp"
 * renamed over "..data"): a watch on the file would miss both. NULL with a
 * message in err. Control thread. */
struct config_watch *config_watch_new(const char *path, char *err, size_t errlen);
/* The descriptor to poll for input. */
int config_watch_fd(const struct config_watch *w);
/* Drains the pending events; true if one names the file or "..data".
 * Never blocks. */
bool config_watch_read(struct config_watch *w);
/* Whether the file's content differs from the last call's (the first call
 * records it and returns true). An unreadable file counts as changed, so
 * that the reload reports the error. */
bool config_watch_changed(struct config_watch *w);
/* config_watch_free(NULL) is a no-op. */
void config_watch_free(struct config_watch *w);

#endif

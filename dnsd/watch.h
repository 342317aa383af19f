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
/* A burst of events (an editor's save, kubelet's swap) becomes one
 * reload WATCH_QUIET_MS after its last event, and at most
 * WATCH_MAX_DELAY_MS after its first even if events keep coming. */
enum { WATCH_QUIET_MS = 250, WATCH_MAX_DELAY_MS = 2000 };
/* Drains the pending events (config_watch_read) and, if one concerns the
 * file, counts it in the pending burst at now_ms. */
void config_watch_events(struct config_watch *w, uint64_t now_ms);
/* How long until the pending burst is due (0: now), or -1: none pending
 * (w may be NULL). For poll's timeout. */
int config_watch_wait_ms(const struct config_watch *w, uint64_t now_ms);
/* True once the pending burst is due at now_ms: it is then over. */
bool config_watch_due(struct config_watch *w, uint64_t now_ms);
/* Whether the file's content differs from the last call's (the first call
 * records it and returns true). An unreadable file counts as changed, so
 * that the reload reports the error. */
bool config_watch_changed(struct config_watch *w);
/* config_watch_free(NULL) is a no-op. */
void config_watch_free(struct config_watch *w);

#endif

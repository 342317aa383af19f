/* watch.c -- inotify on the config file's directory; see watch.h. */
#include "watch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "util/hash.h"

struct config_watch {
	int fd;
	char *path;
	const char *base;             /* the file's name in its directory */
	uint64_t hash;                /* FNV-1a of the content last seen */
	bool have_hash;
	uint64_t first_ms, last_ms;   /* the pending burst's first and last event; 0: none */
};

struct config_watch *config_watch_new(const char *path, char *err, size_t errlen)
{
	struct config_watch *w = calloc(1, sizeof(*w));
	if (w) {
		w->fd = -1;
		w->path = strdup(path);
	}
	if (!w || !w->path) {
		free(w);
		snprintf(err, errlen, "--watch-config: out of memory");
		return NULL;
	}
	char *slash = strrchr(w->path, '/');
	char dir[PATH_MAX];
	if (slash) {
		w->base = slash + 1;
		snprintf(dir, sizeof(dir), "%.*s", slash == w->path ? 1 : (int)(slash - w->path),
		         w->path);
	} else {
		w->base = w->path;
		snprintf(dir, sizeof(dir), ".");
	}
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	/* CLOSE_WRITE: written in place; MOVED_TO/CREATE: renamed or linked
	 * into place (editors, kubelet's ..data); DELETE: removed, then made
	 * again (the reload reports a missing file). */
	if (w->fd == -1 || inotify_add_watch(w->fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE |
	                                               IN_DELETE | IN_ONLYDIR) == -1) {
		snprintf(err, errlen, "--watch-config: inotify on %s: %s", dir, strerror(errno));
		config_watch_free(w);
		return NULL;
	}
	return w;
}

int config_watch_fd(const struct config_watch *w)
{
	return w->fd;
}

/* When the pending burst is due (ms). */
static uint64_t burst_due(const struct config_watch *w)
{
	uint64_t due = w->last_ms + WATCH_QUIET_MS;
	return due < w->first_ms + WATCH_MAX_DELAY_MS ? due : w->first_ms + WATCH_MAX_DELAY_MS;
}

int config_watch_wait_ms(const struct config_watch *w, uint64_t now_ms)
{
	if (!w || !w->first_ms)
		return -1;
	uint64_t due = burst_due(w);
	return due > now_ms ? (int)(due - now_ms) : 0;
}

bool config_watch_due(struct config_watch *w, uint64_t now_ms)
{
	if (!w || !w->first_ms || now_ms < burst_due(w))
		return false;
	w->first_ms = w->last_ms = 0;
	return true;
}

void config_watch_events(struct config_watch *w, uint64_t now_ms)
{
	if (!config_watch_read(w))
		return;
	w->last_ms = now_ms ? now_ms : 1;
	if (!w->first_ms)
		w->first_ms = w->last_ms;
}

bool config_watch_read(struct config_watch *w)
{
	/* Aligned as inotify(7) asks; at least one event with a full name. */
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool hit = false;
	for (;;) {
		ssize_t n = read(w->fd, buf, sizeof(buf));
		if (n <= 0)
			return hit;           /* EAGAIN: drained */
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
			if (ev->len && (strcmp(ev->name, w->base) == 0 || strcmp(ev->name, "..data") == 0))
				hit = true;
			if (ev->mask & IN_Q_OVERFLOW)
				hit = true;
			p += sizeof(*ev) + ev->len;
		}
	}
}

bool config_watch_changed(struct config_watch *w)
{
	uint64_t h = FNV_SEED;
	int fd = open(w->path, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		w->have_hash = false;
		return true;
	}
	char buf[65536];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		h = fnv_bytes(h, buf, (size_t)n);
	close(fd);
	if (n == -1) {
		w->have_hash = false;
		return true;
	}
	bool changed = !w->have_hash || h != w->hash;
	w->hash = h;
	w->have_hash = true;
	return changed;
}

void config_watch_free(struct config_watch *w)
{
	if (!w)
		return;
	if (w->fd != -1)
		close(w->fd);
	free(w->path);
	free(w);
}

/* notify.h -- NOTIFY (RFC 1996) to secondaries, from a thread of its own:
 * one UDP datagram per secondary and new serial, retried with doubling
 * timeouts until the secondary answers. Never runs on the DNS workers. */
#ifndef MESHDNS_NOTIFY_H
#define MESHDNS_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dns/tsig.h"
#include "dns/wire.h"

enum {
	NOTIFY_ATTEMPTS = 5,          /* sends per secondary and serial */
	NOTIFY_FIRST_WAIT_MS = 1000,  /* then 2, 4, 8, 16 s */
	NOTIFY_MIN_INTERVAL_MS = 1000, /* between two NOTIFYs of one zone to one secondary */
};

/* One secondary to tell that zone now has serial. A self-contained copy:
 * the key travels with it, so reloads cannot pull it away. */
struct notify_job {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	uint8_t zone[DNS_NAME_MAX];
	size_t zonelen;
	uint32_t serial;
	bool has_key;
	struct tsig_key key;
};

/* Starts the thread (with its sockets): the handle, or NULL with a
 * message in err. */
struct notifier;
struct notifier *notify_start(char *err, size_t errlen);
/* Queues jobs (copied). At most one NOTIFY per zone and secondary is out
 * at a time: a job for one still out only records its serial, and once
 * that one is answered the latest serial is sent, no sooner than
 * NOTIFY_MIN_INTERVAL_MS after the last send (bursts of changes cost one
 * NOTIFY a second). Any thread; a no-op when ns is NULL. */
void notify_submit(struct notifier *ns, const struct notify_job *jobs, size_t n);
/* Stops and joins the thread, dropping what is pending, and frees ns
 * (NULL: nothing). */
void notify_stop(struct notifier *ns);

#endif

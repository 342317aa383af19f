/* svcname.h -- the names a service owns besides its own: _<port>._<proto>.<service>
 * (its SRV names) and <backend>.<service> (its backends' targets). One
 * definition for the config's name checks and the zone builder. */
#ifndef MESHDNS_SVCNAME_H
#define MESHDNS_SVCNAME_H

#include <stddef.h>
#include <stdint.h>

#include "dns/wire.h"

/* _<port>._udp.<owner> if proto is IPPROTO_UDP, else _<port>._tcp.<owner>,
 * into out (owner: a wire name of ownerlen bytes). The labels are copied as
 * given, not lowercased. Returns the length, or 0 if "_<port>" is longer
 * than a label or the name longer than 255 bytes. */
size_t svcname_srv(uint8_t out[DNS_NAME_MAX], const char *port, uint8_t proto,
                   const uint8_t *owner, size_t ownerlen);
/* <label>.<owner> into out, label copied as given. Returns the length, or 0
 * if label is empty or too long, or the name longer than 255 bytes. */
size_t svcname_target(uint8_t out[DNS_NAME_MAX], const char *label, const uint8_t *owner,
                      size_t ownerlen);

#endif

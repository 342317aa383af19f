/* svcname.c -- the SRV and target names of a service (see svcname.h); pure
 * functions over wire names. */
#include "svcname.h"

#include <netinet/in.h>
#include <string.h>

size_t svcname_target(uint8_t out[DNS_NAME_MAX], const char *label, const uint8_t *owner,
                      size_t ownerlen)
{
	size_t llen = strlen(label);

	if (llen == 0 || llen > DNS_LABEL_MAX || 1 + llen + ownerlen > DNS_NAME_MAX)
		return 0;
	out[0] = (uint8_t)llen;
	memcpy(out + 1, label, llen);
	if (ownerlen)                 /* a service's owner is NULL until its name is read */
		memcpy(out + 1 + llen, owner, ownerlen);
	return 1 + llen + ownerlen;
}

size_t svcname_srv(uint8_t out[DNS_NAME_MAX], const char *port, uint8_t proto,
                   const uint8_t *owner, size_t ownerlen)
{
	size_t plen = 1 + strlen(port);
	const char *pl = proto == IPPROTO_UDP ? "\4_udp" : "\4_tcp";

	if (plen > DNS_LABEL_MAX || 1 + plen + 5 + ownerlen > DNS_NAME_MAX)
		return 0;
	out[0] = (uint8_t)plen;
	out[1] = '_';
	memcpy(out + 2, port, plen - 1);
	memcpy(out + 1 + plen, pl, 5);
	if (ownerlen)
		memcpy(out + 1 + plen + 5, owner, ownerlen);
	return 1 + plen + 5 + ownerlen;
}

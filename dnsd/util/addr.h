/* addr.h -- addresses as text, one way everywhere (logs, metrics, status,
 * the query log): "192.0.2.1", "192.0.2.1:53", "[2001:db8::1]" and
 * "[2001:db8::1]:53". Never fails: an address inet_ntop cannot print is
 * "?". */
#ifndef MESHDNS_ADDR_H
#define MESHDNS_ADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Room for any of them: brackets, colon, port and NUL included. */
enum { ADDR_TEXT_MAX = INET6_ADDRSTRLEN + 8 };

/* family's addr (4 or 16 bytes), then ":port" unless port < 0; an IPv6
 * address is in brackets when a port follows or brackets is set. Returns
 * buf. */
const char *addr_text(int family, const void *addr, int port, bool brackets, char *buf,
                      size_t len);
/* A socket address with its port ("?" for a family other than IPv4 and
 * IPv6). Returns buf. */
const char *addr_sockaddr_text(const struct sockaddr *sa, char *buf, size_t len);
/* A socket address's host with another port (the one a socket bound to
 * port 0 got). Returns buf. */
const char *addr_sockaddr_port_text(const struct sockaddr *sa, int port, char *buf, size_t len);
/* A socket address's host alone, no brackets. Returns buf. */
const char *addr_sockaddr_host(const struct sockaddr *sa, char *buf, size_t len);

#endif

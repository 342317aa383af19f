/* addr.c -- addresses as text (addr.h). */
#include "util/addr.h"

#include <arpa/inet.h>
#include <stdio.h>

const char *addr_text(int family, const void *addr, int port, bool brackets, char *buf,
                      size_t len)
{
	char host[INET6_ADDRSTRLEN];
	if ((family != AF_INET && family != AF_INET6) || !inet_ntop(family, addr, host, sizeof(host)))
		snprintf(host, sizeof(host), "?");
	bool br = family == AF_INET6 && (brackets || port >= 0);
	if (port >= 0)
		snprintf(buf, len, br ? "[%s]:%d" : "%s:%d", host, port);
	else
		snprintf(buf, len, br ? "[%s]" : "%s", host);
	return buf;
}

/* The address bytes and port of sa, or NULL for another family. */
static const void *sock_addr(const struct sockaddr *sa, uint16_t *port)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
		*port = ntohs(s4->sin_port);
		return &s4->sin_addr;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
		*port = ntohs(s6->sin6_port);
		return &s6->sin6_addr;
	}
	return NULL;
}

const char *addr_sockaddr_text(const struct sockaddr *sa, char *buf, size_t len)
{
	uint16_t port = 0;
	const void *a = sock_addr(sa, &port);
	if (!a) {
		snprintf(buf, len, "?");
		return buf;
	}
	return addr_text(sa->sa_family, a, port, true, buf, len);
}

const char *addr_sockaddr_host(const struct sockaddr *sa, char *buf, size_t len)
{
	uint16_t port;
	const void *a = sock_addr(sa, &port);
	if (!a) {
		snprintf(buf, len, "?");
		return buf;
	}
	return addr_text(sa->sa_family, a, -1, false, buf, len);
}

const char *addr_sockaddr_port_text(const struct sockaddr *sa, int port, char *buf, size_t len)
{
	uint16_t ignored;
	return addr_text(sa->sa_family, sock_addr(sa, &ignored), port, true, buf, len);
}

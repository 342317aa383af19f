/* test_addr.c -- addresses as text (addr.h): with and without a port,
 * IPv6 in brackets, socket addresses, what cannot be printed. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "util/addr.h"
#include "tap.h"

int main(void)
{
	char buf[ADDR_TEXT_MAX];
	uint8_t v4[4] = { 192, 0, 2, 1 }, v6[16];
	inet_pton(AF_INET6, "2001:db8::1", v6);
	is_str(addr_text(AF_INET, v4, -1, true, buf, sizeof(buf)), "192.0.2.1", "IPv4 alone");
	is_str(addr_text(AF_INET, v4, 53, false, buf, sizeof(buf)), "192.0.2.1:53", "IPv4 and a port");
	is_str(addr_text(AF_INET6, v6, -1, false, buf, sizeof(buf)), "2001:db8::1", "IPv6 alone");
	is_str(addr_text(AF_INET6, v6, -1, true, buf, sizeof(buf)), "[2001:db8::1]",
	       "IPv6 in brackets when asked");
	is_str(addr_text(AF_INET6, v6, 8080, false, buf, sizeof(buf)), "[2001:db8::1]:8080",
	       "IPv6 and a port: brackets always");
	is_str(addr_text(AF_INET, v4, 0, false, buf, sizeof(buf)), "192.0.2.1:0", "port 0 is a port");
	is_str(addr_text(AF_UNIX, v4, 53, false, buf, sizeof(buf)), "?:53", "another family: ?");
	char small[6];
	addr_text(AF_INET, v4, 53, false, small, sizeof(small));
	is_str(small, "192.0", "cut to the buffer, terminated");

	struct sockaddr_in s4 = { .sin_family = AF_INET, .sin_port = htons(5353) };
	memcpy(&s4.sin_addr, v4, 4);
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_port = htons(53) };
	memcpy(&s6.sin6_addr, v6, 16);
	struct sockaddr_un su = { .sun_family = AF_UNIX };
	is_str(addr_sockaddr_text((struct sockaddr *)&s4, buf, sizeof(buf)), "192.0.2.1:5353",
	       "sockaddr_in");
	is_str(addr_sockaddr_text((struct sockaddr *)&s6, buf, sizeof(buf)), "[2001:db8::1]:53",
	       "sockaddr_in6");
	is_str(addr_sockaddr_text((struct sockaddr *)&su, buf, sizeof(buf)), "?", "a unix socket: ?");
	is_str(addr_sockaddr_port_text((struct sockaddr *)&s6, 40123, buf, sizeof(buf)),
	       "[2001:db8::1]:40123", "the host with the port a socket got");
	is_str(addr_sockaddr_port_text((struct sockaddr *)&s4, 40123, buf, sizeof(buf)),
	       "192.0.2.1:40123", "... IPv4");
	is_str(addr_sockaddr_host((struct sockaddr *)&s6, buf, sizeof(buf)), "2001:db8::1",
	       "the host alone, no brackets");
	s4.sin_port = 0;
	is_str(addr_sockaddr_text((struct sockaddr *)&s4, buf, sizeof(buf)), "192.0.2.1:0",
	       "not bound yet: port 0");
	return done_testing();
}

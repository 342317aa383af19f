/* resolve.c -- the client matrix's C resolver (tests/integration/
 * test_clients.py), built with glibc and with musl-gcc -static:
 * getaddrinfo(AF_UNSPEC) for each name on the command line, one line each:
 *   NAME<TAB>ok<TAB>ADDR ADDR ...   (distinct addresses, in the order given)
 *   NAME<TAB>notfound               (EAI_NONAME, or EAI_NODATA where defined)
 *   NAME<TAB>error<TAB>MESSAGE      (anything else) */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

enum { MAX_ADDRS = 512 };

int main(int argc, char **argv)
{
	static char addrs[MAX_ADDRS][INET6_ADDRSTRLEN];
	for (int i = 1; i < argc; i++) {
		struct addrinfo hints, *res = NULL;
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		int rc = getaddrinfo(argv[i], NULL, &hints, &res);
#ifdef EAI_NODATA
		if (rc == EAI_NODATA)
			rc = EAI_NONAME;
#endif
		if (rc == EAI_NONAME) {
			printf("%s\tnotfound\n", argv[i]);
			continue;
		}
		if (rc != 0) {
			printf("%s\terror\t%s\n", argv[i], gai_strerror(rc));
			continue;
		}
		int n = 0;
		printf("%s\tok\t", argv[i]);
		for (struct addrinfo *p = res; p && n < MAX_ADDRS; p = p->ai_next) {
			const void *a = p->ai_family == AF_INET
			                ? (const void *)&((struct sockaddr_in *)p->ai_addr)->sin_addr
			                : (const void *)&((struct sockaddr_in6 *)p->ai_addr)->sin6_addr;
			if (!inet_ntop(p->ai_family, a, addrs[n], sizeof(addrs[n])))
				continue;
			int dup = 0;
			for (int j = 0; j < n && !dup; j++)
				dup = strcmp(addrs[j], addrs[n]) == 0;
			if (!dup) {
				printf("%s%s", n ? " " : "", addrs[n]);
				n++;
			}
		}
		printf("\n");
		freeaddrinfo(res);
	}
	return 0;
}

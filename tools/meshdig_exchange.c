/* meshdig_exchange.c -- meshdig talking to the server: the server's
 * address, the query on the wire, one c-ares exchange driven by our own
 * poll loop, and the HTTP GET of --status URL. Prints no reply. */
#include "meshdig.h"

#include <curl/curl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/socket.h>

void dig_random_bytes(void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "%s: getrandom: %s\n", dig_progname, strerror(errno));
			exit(EXIT_MALFORMED);
		}
		p += n;
		len -= (size_t)n;
	}
}

void dig_resolve_server(const struct options *o, struct ares_addr_port_node *node, char *text,
                        size_t cap)
{
	const char *s = o->server;
	char lit[INET6_ADDRSTRLEN + 2];
	size_t len = strlen(s);
	/* "[::1]" as well as "::1". */
	if (len >= 2 && s[0] == '[' && s[len - 1] == ']' && len - 2 < sizeof(lit)) {
		memcpy(lit, s + 1, len - 2);
		lit[len - 2] = '\0';
		s = lit;
	}
	if (strchr(s, '%'))
		dig_usage_error("scoped IPv6 server addresses (" ARG_FMT ") are not supported",
		            ARG_VAL(o->server));

	memset(node, 0, sizeof(*node));
	if (inet_pton(AF_INET, s, &node->addr.addr4) == 1) {
		node->family = AF_INET;
	} else if (inet_pton(AF_INET6, s, &node->addr.addr6) == 1) {
		node->family = AF_INET6;
	} else {
		struct addrinfo hints = { .ai_family = o->family ? o->family : AF_UNSPEC,
		                          .ai_socktype = SOCK_DGRAM };
		struct addrinfo *res = NULL;
		int rc = getaddrinfo(s, NULL, &hints, &res);
		if (rc != 0 || !res) {
			fprintf(stderr, "%s: couldn't get address for " ARG_FMT ": %s\n", dig_progname,
			        ARG_VAL(s), gai_strerror(rc));
			exit(EXIT_MALFORMED);
		}
		node->family = res->ai_family;
		if (res->ai_family == AF_INET)
			memcpy(&node->addr.addr4,
			       &((const struct sockaddr_in *)(const void *)res->ai_addr)->sin_addr, 4);
		else
			memcpy(&node->addr.addr6,
			       &((const struct sockaddr_in6 *)(const void *)res->ai_addr)->sin6_addr, 16);
		freeaddrinfo(res);
	}
	if (o->family && node->family != o->family)
		dig_usage_error("server " ARG_FMT " is not an %s address", ARG_VAL(o->server),
		            o->family == AF_INET ? "IPv4 (-4)" : "IPv6 (-6)");
	node->udp_port = o->port;
	node->tcp_port = o->port;
	node->next = NULL;

	char addr[INET6_ADDRSTRLEN];
	inet_ntop(node->family, &node->addr, addr, sizeof(addr));
	snprintf(text, cap, "%s#%u", addr, (unsigned)o->port);
}

size_t dig_build_query(const struct options *o, uint16_t id, const uint8_t *cookie,
                       size_t cookie_len, uint8_t *buf, size_t cap)
{
	struct wire_writer w;
	wire_writer_init(&w, buf, cap);
	struct dns_header h = {
		.id = id,
		.flags = (uint16_t)((o->rd ? DNS_FLAG_RD : 0) | (o->ad ? DNS_FLAG_AD : 0) |
		                    (o->cd ? DNS_FLAG_CD : 0)),
		.qdcount = 1,
		.arcount = o->edns ? 1 : 0,
	};
	wire_write_header(&w, &h);
	wire_write_name(&w, o->qname, o->qnamelen, false);
	wire_write_u16(&w, o->qtype);
	wire_write_u16(&w, o->qclass);
	if (o->edns) {
		/* RFC 6891 6.1.2: root owner, CLASS = UDP size, TTL = extended
		 * rcode, version, DO and zero bits. */
		wire_write_u8(&w, 0);
		wire_write_u16(&w, DNS_TYPE_OPT);
		wire_write_u16(&w, o->bufsize);
		wire_write_u32(&w, (uint32_t)o->edns_version << 16 | (o->dnssec ? DNS_EDNS_DO : 0));
		size_t rdlen_off = w.pos;
		wire_write_u16(&w, 0);
		if (o->nsid) {
			wire_write_u16(&w, DNS_EDNS_NSID);
			wire_write_u16(&w, 0);
		}
		if (o->cookie) {
			wire_write_u16(&w, DNS_EDNS_COOKIE);
			wire_write_u16(&w, (uint16_t)cookie_len);
			wire_write_bytes(&w, cookie, cookie_len);
		}
		if (o->subnet) {
			/* RFC 7871 6: family, source prefix, scope 0, the prefix's
			 * bytes only. */
			size_t nbytes = ((size_t)o->subnet_len + 7) / 8;
			wire_write_u16(&w, DNS_EDNS_ECS);
			wire_write_u16(&w, (uint16_t)(4 + nbytes));
			wire_write_u16(&w, o->subnet_family);
			wire_write_u8(&w, o->subnet_len);
			wire_write_u8(&w, 0);
			wire_write_bytes(&w, o->subnet_addr, nbytes);
		}
		wire_patch_u16(&w, rdlen_off, (uint16_t)(w.pos - rdlen_off - 2));
	}
	return w.err ? 0 : w.pos;
}

/* ---- the transport: c-ares driven by poll() ----------------------------- */

/* One query in flight: the result and what the callbacks need to fill it. */
struct pending {
	struct exchange *ex;
	bool done;
	ares_socket_t current_fd;   /* the socket ares_process_fd is working on */
	bool tcp_requested;
	uint16_t id;
	bool noted_retry;
	size_t udp_limit;       /* the largest UDP reply c-ares takes: 512, or the EDNS size */
};

static bool fd_is_tcp(ares_socket_t fd)
{
	int type = 0;
	socklen_t len = sizeof(type);
	if (fd == ARES_SOCKET_BAD || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1)
		return false;
	return type == SOCK_STREAM;
}

/* c-ares calls back from inside ares_process_fd (or ares_send): the
 * socket it was working on is the one the answer came from, which tells
 * whether a truncated UDP reply made it retry over TCP. abuf is only
 * valid during the call. */
static void on_reply(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct pending *pd = arg;
	struct exchange *ex = pd->ex;
	(void)timeouts;
	pd->done = true;
	ex->status = status;
	clock_gettime(CLOCK_MONOTONIC, &ex->received);
	if (status != ARES_SUCCESS || !abuf || alen <= 0)
		return;
	ex->reply = malloc((size_t)alen);
	if (!ex->reply) {
		ex->status = ARES_ENOMEM;
		return;
	}
	memcpy(ex->reply, abuf, (size_t)alen);
	ex->reply_len = (size_t)alen;
	ex->over_tcp = pd->current_fd != ARES_SOCKET_BAD ? fd_is_tcp(pd->current_fd)
	                                                 : pd->tcp_requested;
}

/* c-ares drops a truncated UDP reply (and any UDP reply over udp_limit:
 * 512 bytes without ARES_FLAG_EDNS) and asks again over TCP without telling us.
 * Peeking at the datagram first lets us say so, as dig does. */
static void peek_udp(struct pending *pd, ares_socket_t fd)
{
	uint8_t hdr[DNS_HEADER_LEN];
	if (pd->tcp_requested || pd->noted_retry || fd_is_tcp(fd))
		return;
	ssize_t n = recv(fd, hdr, sizeof(hdr), MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC);
	if (n < DNS_HEADER_LEN || (uint16_t)(hdr[0] << 8 | hdr[1]) != pd->id)
		return;
	if (hdr[2] & (DNS_FLAG_TC >> 8)) {
		fprintf(stderr, ";; Truncated, retrying in TCP mode.\n");
		pd->noted_retry = true;
	} else if ((size_t)n > pd->udp_limit) {
		fprintf(stderr, ";; UDP reply of %zd bytes is over c-ares' %zu-byte limit, "
		        "retrying in TCP mode.\n", n, pd->udp_limit);
		pd->noted_retry = true;
	}
}

static void run_exchange(ares_channel channel, const uint8_t *query, size_t qlen,
                         struct pending *pd)
{
	pd->done = false;
	pd->current_fd = ARES_SOCKET_BAD;
	clock_gettime(CLOCK_MONOTONIC, &pd->ex->sent);
	ares_send(channel, query, (int)qlen, on_reply, pd);
	while (!pd->done) {
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		struct pollfd pfd[ARES_GETSOCK_MAXNUM];
		nfds_t nfds = 0;
		/* c-ares' ARES_GETSOCK_WRITABLE shifts a signed 1 into bit 31. */
		unsigned bits = (unsigned)ares_getsock(channel, socks, ARES_GETSOCK_MAXNUM);
		for (unsigned i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			short events = 0;
			if (bits & (1u << i))
				events |= POLLIN;
			if (bits & (1u << (i + ARES_GETSOCK_MAXNUM)))
				events |= POLLOUT;
			if (!events)
				continue;
			pfd[nfds].fd = socks[i];
			pfd[nfds].events = events;
			pfd[nfds].revents = 0;
			nfds++;
		}
		struct timeval tv;
		struct timeval *tvp = ares_timeout(channel, NULL, &tv);
		int ms = tvp ? (int)(tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000) : 1000;
		int n = poll(pfd, nfds, ms);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "%s: poll: %s\n", dig_progname, strerror(errno));
			exit(EXIT_MALFORMED);
		}
		if (n == 0) {
			ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
			continue;
		}
		for (nfds_t i = 0; i < nfds && !pd->done; i++) {
			if (!pfd[i].revents)
				continue;
			bool rd = pfd[i].revents & (POLLIN | POLLERR | POLLHUP);
			bool wr = pfd[i].revents & (POLLOUT | POLLERR | POLLHUP);
			/* Peeking would consume a pending socket error (ICMP port
			 * unreachable), which c-ares must see as ECONNREFUSED. */
			if ((pfd[i].revents & POLLIN) && !(pfd[i].revents & POLLERR))
				peek_udp(pd, pfd[i].fd);
			pd->current_fd = pfd[i].fd;
			ares_process_fd(channel, rd ? pfd[i].fd : ARES_SOCKET_BAD,
			                wr ? pfd[i].fd : ARES_SOCKET_BAD);
			pd->current_fd = ARES_SOCKET_BAD;
		}
	}
}

static const char *comm_error(int status)
{
	switch (status) {
	case ARES_ETIMEOUT: return "timed out";
	case ARES_ECONNREFUSED: return "connection refused";
	default: return ares_strerror(status);
	}
}

int dig_exchange(const struct options *o, struct ares_addr_port_node *server,
                 const char *server_text, uint16_t id, const uint8_t *query, size_t qlen,
                 struct exchange *ex)
{
	int rc = ares_library_init(ARES_LIB_INIT_ALL);
	if (rc != ARES_SUCCESS) {
		fprintf(stderr, "%s: ares_library_init: %s\n", dig_progname, ares_strerror(rc));
		return EXIT_MALFORMED;
	}
	/* NOCHECKRESP: hand SERVFAIL/REFUSED/NOTIMP to us instead of trying the
	 * next server and reporting no answer. We add OPT ourselves; c-ares
	 * takes a UDP reply over 512 bytes only with ARES_FLAG_EDNS, whose
	 * FORMERR fallback cuts the last 11 bytes off the query: exactly our
	 * OPT when it carries no option, part of an option otherwise. So the
	 * flag is on for a bare OPT only (--status answers are ~540 bytes).
	 * One try per ares_send: we retry ourselves with a fixed timeout per
	 * try, as dig does (c-ares doubles it on every round). */
	struct ares_options copts;
	memset(&copts, 0, sizeof(copts));
	copts.flags = ARES_FLAG_NOCHECKRESP | ARES_FLAG_NOSEARCH | (o->tcp ? ARES_FLAG_USEVC : 0);
	copts.timeout = (int)o->timeout_ms;
	copts.tries = 1;
	int optmask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
	size_t udp_limit = 512;
	if (o->edns && !o->nsid && !o->cookie && !o->subnet && o->bufsize > 512) {
		copts.flags |= ARES_FLAG_EDNS;
		copts.ednspsz = o->bufsize;
		optmask |= ARES_OPT_EDNSPSZ;
		udp_limit = o->bufsize;
	}
	ares_channel channel;
	rc = ares_init_options(&channel, &copts, optmask);
	if (rc != ARES_SUCCESS) {
		fprintf(stderr, "%s: ares_init_options: %s\n", dig_progname, ares_strerror(rc));
		return EXIT_MALFORMED;
	}
	rc = ares_set_servers_ports(channel, server);
	if (rc != ARES_SUCCESS) {
		fprintf(stderr, "%s: ares_set_servers_ports: %s\n", dig_progname, ares_strerror(rc));
		ares_destroy(channel);
		return EXIT_MALFORMED;
	}

	memset(ex, 0, sizeof(*ex));
	struct pending pd = { .ex = ex, .tcp_requested = o->tcp, .id = id, .udp_limit = udp_limit };
	for (unsigned attempt = 0; attempt < o->tries; attempt++) {
		run_exchange(channel, query, qlen, &pd);
		if (ex->status == ARES_SUCCESS)
			break;
		fprintf(stderr, ";; communications error to %s: %s\n", server_text,
		        comm_error(ex->status));
	}
	ares_destroy(channel);
	ares_library_cleanup();

	if (ex->status != ARES_SUCCESS) {
		fprintf(stderr, ";; no servers could be reached\n");
		return EXIT_NO_REPLY;
	}
	return EXIT_REPLY_OK;
}

/* ---- --status URL ------------------------------------------------------- */

struct body {
	char *p;
	size_t len;
};

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
	struct body *b = arg;
	size_t add = size * n;
	if (b->len + add > (64u << 20))
		return 0;                 /* refuse absurd bodies */
	char *np = realloc(b->p, b->len + add + 1);
	if (!np)
		return 0;
	memcpy(np + b->len, data, add);
	b->p = np;
	b->len += add;
	b->p[b->len] = '\0';
	return add;
}

int dig_fetch_status(const char *url, unsigned timeout_ms, char *full, size_t cap, char **body,
                     size_t *len)
{
	size_t ul = strlen(url);
	if (ul >= cap - 16) {
		fprintf(stderr, "%s: URL too long\n", dig_progname);
		return EXIT_USAGE;
	}
	/* A bare server URL means its status document. */
	const char *path = strchr(url + (url[4] == 's' ? 8 : 7), '/');
	snprintf(full, cap, "%s%s", url,
	         !path ? "/status.json" : strcmp(path, "/") == 0 ? "status.json" : "");
	struct body b = { NULL, 0 };
	curl_global_init(CURL_GLOBAL_DEFAULT);
	CURL *c = curl_easy_init();
	long code = 0;
	CURLcode rc = CURLE_FAILED_INIT;
	if (c) {
		curl_easy_setopt(c, CURLOPT_URL, full);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms * 2);
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		rc = curl_easy_perform(c);
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		curl_easy_cleanup(c);
	}
	curl_global_cleanup();
	if (rc != CURLE_OK || code != 200) {
		if (rc != CURLE_OK)
			fprintf(stderr, "%s: %s: %s\n", dig_progname, full, curl_easy_strerror(rc));
		else
			fprintf(stderr, "%s: %s: HTTP status %ld\n", dig_progname, full, code);
		free(b.p);
		return EXIT_NO_REPLY;
	}
	*body = b.p;
	*len = b.len;
	return EXIT_REPLY_OK;
}

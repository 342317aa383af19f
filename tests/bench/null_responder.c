/* null_responder.c -- the floor for tests/bench/perf.py: a UDP "server"
 * that does the least a DNS server must do per query (receive it, send a
 * reply) and nothing else: recvmmsg a batch, flip the QR bit of each
 * datagram, sendmmsg them back to their senders.  Its CPU per query is the
 * kernel's cost of a UDP round trip on this machine.
 *
 *   null_responder -l ADDR:PORT          UDP echo with QR set (one thread)
 *   null_responder -t ADDR:PORT          TCP: accept and close, for health
 *                                        checks (ADDR 0.0.0.0: all of 127/8)
 *
 * Runs until SIGTERM or SIGINT.  Build: cc -O2 -o null_responder null_responder.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64
#define BUFSZ 4096

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int parse_addr(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((unsigned short)atoi(colon + 1));
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

static int serve_udp(const struct sockaddr_in *sa)
{
	static unsigned char bufs[BATCH][BUFSZ];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_in peers[BATCH];
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd == -1 || bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) == -1) {
		perror("null_responder: udp bind");
		return 1;
	}
	while (!stop) {
		for (int i = 0; i < BATCH; i++) {
			iov[i].iov_base = bufs[i];
			iov[i].iov_len = BUFSZ;
			memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
			msgs[i].msg_hdr.msg_name = &peers[i];
			msgs[i].msg_hdr.msg_namelen = sizeof(peers[i]);
		}
		/* Blocks for the first datagram, then takes what is queued. */
		int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			perror("null_responder: recvmmsg");
			return 1;
		}
		int m = 0;
		for (int i = 0; i < n; i++) {
			if (msgs[i].msg_len < 12)
				continue;
			bufs[i][2] |= 0x80; /* QR */
			iov[i].iov_len = msgs[i].msg_len;
			if (m != i) {
				msgs[m] = msgs[i];
			}
			m++;
		}
		for (int off = 0; off < m;) {
			int s = sendmmsg(fd, msgs + off, (unsigned)(m - off), 0);
			if (s <= 0) {
				if (s == -1 && errno == EINTR)
					continue;
				break; /* drop the rest of the batch, as a server would */
			}
			off += s;
		}
	}
	close(fd);
	return 0;
}

/* One datagram per syscall: a blocking recvfrom, a sendto back.  The
 * batch loop's recvmmsg tries the queue once more after each datagram
 * (MSG_WAITFORONE); this one does not. */
static int serve_udp1(const struct sockaddr_in *sa)
{
	static unsigned char buf[BUFSZ];
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd == -1 || bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) == -1) {
		perror("null_responder: udp bind");
		return 1;
	}
	while (!stop) {
		struct sockaddr_in peer;
		socklen_t plen = sizeof(peer);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &plen);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			perror("null_responder: recvfrom");
			return 1;
		}
		if (n < 12)
			continue;
		buf[2] |= 0x80; /* QR */
		sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&peer, plen);
	}
	close(fd);
	return 0;
}

static int serve_tcp(const struct sockaddr_in *sa)
{
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd == -1) {
		perror("null_responder: socket");
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) == -1 || listen(fd, 4096) == -1) {
		perror("null_responder: tcp bind/listen");
		return 1;
	}
	while (!stop) {
		int c = accept(fd, NULL, NULL);
		if (c >= 0)
			close(c);
		else if (errno != EINTR && errno != ECONNABORTED && errno != EMFILE)
			perror("null_responder: accept");
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa;
	if (argc != 3 || (strcmp(argv[1], "-l") && strcmp(argv[1], "-t") && strcmp(argv[1], "-1")) ||
	    parse_addr(argv[2], &sa) == -1) {
		fprintf(stderr, "usage: null_responder -l|-1|-t ADDR:PORT\n"
		                "  -l  UDP, recvmmsg/sendmmsg batches\n"
		                "  -1  UDP, one datagram per recvfrom/sendto\n"
		                "  -t  TCP, accept and close\n");
		return 2;
	}
	struct sigaction act;
	memset(&act, 0, sizeof(act));
	act.sa_handler = on_signal; /* no SA_RESTART: blocking calls return EINTR */
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	if (argv[1][1] == '1')
		return serve_udp1(&sa);
	return argv[1][1] == 'l' ? serve_udp(&sa) : serve_tcp(&sa);
}

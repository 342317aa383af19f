/* daemon.c -- the process's life among others: systemd notifications, the
 * pid file, --reload's signal, the descriptor limit, dropping root. No DNS. */
#include <sys/signalfd.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "daemon.h"
#include "util/log.h"

void daemon_notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !*path)
		return;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t len = strlen(path);
	if (len >= sizeof(sun.sun_path))
		return;
	memcpy(sun.sun_path, path, len);
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0';
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return;
	socklen_t sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sun, sl) == -1)
		log_warn("sd_notify: %s", strerror(errno));
	close(fd);
}

int daemon_drop_privileges(const char *user)
{
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		log_err("--user: no such user '%s'", user);
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) == -1 || setgid(pw->pw_gid) == -1 ||
	    setuid(pw->pw_uid) == -1) {
		log_err("--user %s: cannot switch: %s", user, strerror(errno));
		return -1;
	}
	if (pw->pw_uid != 0 && setuid(0) == 0) {
		log_err("--user %s: root could be regained; refusing to run", user);
		return -1;
	}
	log_info("running as user %s (uid %u, gid %u)", pw->pw_name, (unsigned)pw->pw_uid,
	         (unsigned)pw->pw_gid);
	return 0;
}

int daemon_write_pid_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1) {
		log_err("pid file %s: %s", path, strerror(errno));
		return -1;
	}
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	bool ok = write(fd, buf, (size_t)n) == n;
	if (close(fd) == -1 || !ok) {
		log_err("pid file %s: write failed", path);
		return -1;
	}
	return 0;
}

int daemon_signal_reload(const char *pid_file)
{
	FILE *f = fopen(pid_file, "r");
	long pid = 0;
	if (!f || fscanf(f, "%ld", &pid) != 1 || pid <= 1) {
		fprintf(stderr, "dnsd: --reload: cannot read a process id from %s\n", pid_file);
		if (f)
			fclose(f);
		return 1;
	}
	fclose(f);
	char path[64], comm[64] = "";
	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	f = fopen(path, "r");
	if (!f || !fgets(comm, sizeof(comm), f) || strncmp(comm, "dnsd", 4) != 0) {
		fprintf(stderr, "dnsd: --reload: process %ld from %s is not running dnsd\n", pid,
		        pid_file);
		if (f)
			fclose(f);
		return 1;
	}
	fclose(f);
	if (kill((pid_t)pid, SIGHUP) == -1) {
		fprintf(stderr, "dnsd: --reload: kill %ld: %s\n", pid, strerror(errno));
		return 1;
	}
	printf("dnsd: asked process %ld to reload (see its log for the result)\n", pid);
	return 0;
}

/* Health checks hold one socket per probe in flight and TCP clients one
 * each: lift the soft descriptor limit to the hard one (often 1024 vs
 * 524288), as NSD and HAProxy do. */
void daemon_raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rlim_t want = rl.rlim_max;
		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("cannot raise the descriptor limit to %llu: %s",
			         (unsigned long long)want, strerror(errno));
	}
}

int daemon_signalfd(void)
{
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	return signalfd(-1, &sigs, SFD_CLOEXEC);
}

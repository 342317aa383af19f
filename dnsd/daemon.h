/* daemon.h -- the process's life among others: systemd notifications, the
 * pid file, --reload's signal, the descriptor limit, dropping root. No DNS. */
#ifndef MESHDNS_DAEMON_H
#define MESHDNS_DAEMON_H

/* systemd's notification protocol: msg ("READY=1", "RELOADING=1", ...) as
 * one datagram to $NOTIFY_SOCKET (a path, or an abstract socket when it
 * starts with '@'). No-op without it; a failed send is logged. Any
 * thread (main and the control thread use it). */
void daemon_notify(const char *msg);

/* Drops root for user (its primary and supplementary groups), and checks
 * that root cannot be regained. 0, or -1 after logging. Main thread,
 * after binding and before serving. */
int daemon_drop_privileges(const char *user);

/* Writes our process id and a newline to path (created 0644 or
 * truncated); the caller removes it at exit. 0, or -1 after logging. */
int daemon_write_pid_file(const char *path);

/* --reload: SIGHUP to the process whose id pid_file holds, once
 * /proc/PID/comm says it is a dnsd (a stale file must not signal an
 * unrelated process). Prints the outcome (stdout, or stderr for a
 * failure) and returns the exit status: 0 if it was signalled, else 1. */
int daemon_signal_reload(const char *pid_file);

/* Lifts the soft descriptor limit to the hard one; a failure is logged as
 * a warning and dnsd goes on. Main thread, at start. */
void daemon_raise_nofile(void);
/* SIGINT, SIGTERM and SIGHUP blocked and taken synchronously from the
 * returned signalfd (-1 on failure) by the calling thread alone: threads
 * started afterwards inherit the mask. SIGPIPE is ignored. */
int daemon_signalfd(void);

#endif

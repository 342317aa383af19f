/* options.h -- dnsd's command line: what it asks for, parsed and checked.
 * Nothing is started here; main.c acts on the result. */
#ifndef MESHDNS_OPTIONS_H
#define MESHDNS_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "util/log.h"

enum { OPTIONS_LISTEN_MAX = 64 };

struct options {
	const char *config;
	bool check;
	struct cfg_listen listen[OPTIONS_LISTEN_MAX];
	size_t nlisten;
	long workers;                 /* -1: from the config */
	uint64_t seed;
	enum log_level level;
	struct cfg_listen http;       /* --http */
	bool have_http;
	const char *user;             /* --user: drop to it after binding */
	const char *pid_file;
	bool syslog;
	unsigned query_log;           /* --query-log: lines per second per thread, 0 off */
	bool reload;                  /* --reload: signal the running dnsd and exit */
	bool watch_config;            /* --watch-config: reload when the file changes */
};

/* Parses argv into *o, which must be zeroed; the strings stay argv's.
 * Returns 0, or -1 after printing why to stderr (exit status 1). --help
 * and --version print to stdout and exit(0). Main thread, at start. */
int options_parse(int argc, char **argv, struct options *o);

#endif

/* etcd_watch.c -- the etcd client (dnsd/etcd.c) as a command for the
 * integration tests: prints every snapshot and event it is handed, one per
 * line on stdout, and its status whenever the status changes, until SIGTERM.
 *
 *   etcd_watch [-p PREFIX] [-m MAX_VALUE_SIZE] [-d DIAL_MS] [-r REQUEST_MS]
 *              [-k PAGE_KEYS] [-u USER -P PASSWORD] ENDPOINT...
 *
 * Lines (fields separated by one space; keys and ids hold no spaces):
 *   snapshot REV
 *   kv MODREV KEY OWNER ID HOST PORT PRIORITY WEIGHT TTL TEXTLEN
 *   end REV N
 *   put MODREV KEY OWNER ID HOST PORT PRIORITY WEIGHT TTL TEXTLEN
 *   del MODREV KEY OWNER ID
 *   status synced=0|1 connected=0|1 rev=N stale=0|1 errors=N skipped=N snapshots=N
 *          compactions=N resumes=N events=N endpoint=URL */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "etcd.h"
#include "util/log.h"
#include "dns/wire.h"

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static void print_kv(const char *what, const struct etcd_kv *kv)
{
	char owner[DNS_NAME_MAX * 4 + 2];
	if (wire_name_to_text(kv->owner, kv->ownerlen, owner, sizeof(owner)) < 0)
		snprintf(owner, sizeof(owner), "?");
	if (!kv->value) {
		printf("del %" PRId64 " %s %s %.*s\n", kv->mod_revision, kv->key, owner,
		       (int)kv->idlen, kv->id);
	} else {
		const struct etcd_value *v = kv->value;
		char host[INET6_ADDRSTRLEN];
		inet_ntop(v->family, v->addr, host, sizeof(host));
		printf("%s %" PRId64 " %s %s %.*s %s %u %u %u %u %zu\n", what, kv->mod_revision,
		       kv->key, owner, (int)kv->idlen, kv->id, host, v->port, v->priority, v->weight,
		       v->ttl, v->textlen);
	}
	fflush(stdout);
}

static void on_begin(void *ud, int64_t rev)
{
	(void)ud;
	printf("snapshot %" PRId64 "\n", rev);
}

static void on_kv(void *ud, const struct etcd_kv *kv)
{
	(void)ud;
	print_kv("kv", kv);
}

static void on_end(void *ud, int64_t rev, size_t n)
{
	(void)ud;
	printf("end %" PRId64 " %zu\n", rev, n);
	fflush(stdout);
}

static void on_event(void *ud, const struct etcd_kv *kv)
{
	(void)ud;
	print_kv("put", kv);
}

static void usage(void)
{
	fprintf(stderr, "usage: etcd_watch [-p PREFIX] [-m MAX_VALUE_SIZE] [-d DIAL_MS] "
	        "[-r REQUEST_MS] [-k PAGE_KEYS] [-u USER -P PASSWORD] ENDPOINT...\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct cfg_etcd cfg = { .prefix = "/skydns/", .dial_timeout_ms = 500,
	                        .request_timeout_ms = 2000, .max_value_size = 4096 };
	int opt;
	while ((opt = getopt(argc, argv, "p:m:d:r:k:u:P:")) != -1) {
		switch (opt) {
		case 'p': cfg.prefix = optarg; break;
		case 'm': cfg.max_value_size = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'd': cfg.dial_timeout_ms = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'r': cfg.request_timeout_ms = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'k': cfg.page_keys = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'u': cfg.username = optarg; break;
		case 'P': cfg.password = optarg; break;
		default: usage();
		}
	}
	if (optind >= argc)
		usage();
	cfg.endpoints = argv + optind;
	cfg.nendpoints = (size_t)(argc - optind);

	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	log_set_level(LOG_LEVEL_INFO);

	struct etcd_callbacks cb = { .snapshot_begin = on_begin, .snapshot_kv = on_kv,
	                             .snapshot_end = on_end, .event = on_event };
	char err[256];
	struct etcd *e = etcd_new(&cfg, &cb, err, sizeof(err));
	if (!e) {
		fprintf(stderr, "etcd_watch: %s\n", err);
		return 1;
	}
	char last[1024] = "";
	while (!stopping) {
		struct etcd_status st;
		etcd_status(e, &st);
		char line[1024];
		snprintf(line, sizeof(line), "status synced=%d connected=%d rev=%" PRId64 " stale=%d "
		         "errors=%" PRIu64 " skipped=%" PRIu64 " snapshots=%" PRIu64 " compactions=%"
		         PRIu64 " resumes=%" PRIu64 " events=%" PRIu64 " endpoint=%s", st.synced,
		         st.connected, st.revision, st.stale_since_ms != 0, st.errors, st.skipped,
		         st.snapshots, st.compactions, st.resumes, st.events, st.endpoint);
		if (strcmp(line, last) != 0) {
			printf("%s\n", line);
			fflush(stdout);
			memcpy(last, line, sizeof(last));
		}
		nanosleep(&(struct timespec){ .tv_nsec = 20 * 1000000 }, NULL);
	}
	etcd_free(e);
	return 0;
}

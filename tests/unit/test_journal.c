/* test_journal.c -- journal framing, CRC, torn and corrupt records, append
 * and compaction; the update overlay's merge and its application to a
 * config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "journal.h"
#include "tap.h"
#include "update.h"
#include "dns/wire.h"

static struct journal_op mkop(uint8_t kind, const char *owner, uint16_t type, const void *rd,
                              uint16_t rdlen)
{
	struct journal_op op = { .kind = kind, .type = type, .ttl = 30, .rdata = rd, .rdlen = rdlen };
	wire_name_from_text(owner, op.owner, &op.ownerlen);
	return op;
}

static int count_cb(void *arg, const struct journal_op *op)
{
	(void)op;
	(*(int *)arg)++;
	return 0;
}

static void test_codec(void)
{
	ok(journal_crc32((const uint8_t *)"123456789", 9) == 0xcbf43926u, "CRC-32 check value");
	uint8_t a[4] = { 10, 0, 0, 5 };
	struct journal_op op = mkop(JOURNAL_ADD, "svc.mesh", DNS_TYPE_A, a, 4), back;
	uint8_t buf[JOURNAL_HDR + JOURNAL_REC_MAX];
	int n = journal_encode(&op, buf, sizeof(buf));
	ok(n > JOURNAL_HDR, "encoded");
	size_t used;
	is_int(journal_decode(buf, (size_t)n, &back, &used), JOURNAL_DEC_OK, "decodes");
	is_int(used, n, "whole record used");
	ok(back.kind == JOURNAL_ADD && back.type == DNS_TYPE_A && back.rdlen == 4 &&
	   memcmp(back.rdata, a, 4) == 0 && wire_name_equal(back.owner, back.ownerlen, op.owner,
	                                                     op.ownerlen), "round trip");
	for (int cut = 0; cut < n; cut++)
		if (journal_decode(buf, (size_t)cut, &back, &used) != JOURNAL_DEC_TORN) {
			ok(0, "prefix of %d bytes is torn", cut);
			return;
		}
	ok(1, "every prefix is a torn record");
	buf[n - 1] ^= 1;
	is_int(journal_decode(buf, (size_t)n, &back, &used), JOURNAL_DEC_BAD, "bad CRC");
}

static void test_file(void)
{
	char path[] = "/tmp/test_journal.XXXXXX";
	int fd = mkstemp(path);
	close(fd);
	unlink(path);
	char err[256];
	int count = 0;
	is_int(journal_replay(path, true, count_cb, &count, err, sizeof(err)), 0, "missing file: empty");
	struct journal *j = journal_open(path, err, sizeof(err));
	ok(j != NULL, "open creates");
	uint8_t a[4] = { 10, 0, 0, 5 };
	struct journal_op ops[3] = {
		mkop(JOURNAL_ADD, "svc.mesh", DNS_TYPE_A, a, 4),
		mkop(JOURNAL_DEL_RRSET, "x.mesh", DNS_TYPE_TXT, NULL, 0),
		mkop(JOURNAL_DEL_NAME, "y.mesh", 0, NULL, 0),
	};
	is_int(journal_append(j, ops, 3), 0, "append");
	is_int(journal_records(j), 4, "3 records and the group's BEGIN");
	journal_close(j);
	count = 0;
	is_int(journal_replay(path, true, count_cb, &count, err, sizeof(err)), 4, "replay 4");
	is_int(count, 3, "callback 3 times");
	FILE *f = fopen(path, "ab");
	fwrite("\0\0\0\x20\1\2\3", 1, 7, f);
	fclose(f);
	count = 0;
	is_int(journal_replay(path, false, count_cb, &count, err, sizeof(err)), 4, "torn end ignored");
	is_int(journal_replay(path, true, count_cb, &count, err, sizeof(err)), 4, "torn end cut");
	f = fopen(path, "rb");
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	fclose(f);
	j = journal_open(path, err, sizeof(err));
	is_int(journal_rewrite(j, ops, 1), 0, "compaction");
	journal_close(j);
	count = 0;
	is_int(journal_replay(path, true, count_cb, &count, err, sizeof(err)), 1, "1 after compaction");
	/* A complete record with a flipped byte is corruption. */
	f = fopen(path, "r+b");
	fseek(f, -2, SEEK_END);
	fputc(0x55, f);
	fclose(f);
	is_int(journal_replay(path, true, count_cb, &count, err, sizeof(err)), -1, "corrupt: error");
	ok(strstr(err, "corrupt") != NULL, "message: %s", err);
	ok(size > 8, "file had content");
	unlink(path);
}

static long file_size(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fclose(f);
	return n;
}

/* One UPDATE is all or nothing on disk: killed between the writes of its
 * records (here: the file cut after the first of them), a replay applies
 * none of it, and cuts the group off. A zero-filled tail (power loss on an
 * extended file) is cut with a warning, not a refusal to start. */
static void test_groups(void)
{
	char path[] = "/tmp/test_journal_grp.XXXXXX";
	int fd = mkstemp(path);
	close(fd);
	unlink(path);
	char err[256];
	struct journal *j = journal_open(path, err, sizeof(err));
	uint8_t t1[] = "\3one", t2[] = "\3two";
	struct journal_op one = mkop(JOURNAL_ADD, "a.mesh", DNS_TYPE_TXT, "\3one", 4);
	is_int(journal_append(j, &one, 1), 0, "a single operation");
	long after_one = file_size(path);
	struct journal_op upd[3] = {
		mkop(JOURNAL_DEL_RRSET, "t.mesh", DNS_TYPE_TXT, NULL, 0),
		mkop(JOURNAL_ADD, "t.mesh", DNS_TYPE_TXT, t1, 4),
		mkop(JOURNAL_ADD, "t.mesh", DNS_TYPE_TXT, t2, 4),
	};
	is_int(journal_append(j, upd, 3), 0, "an update of three operations");
	journal_close(j);
	long full = file_size(path);
	int count = 0;
	is_int(journal_replay(path, false, count_cb, &count, err, sizeof(err)), 5, "all of it");
	is_int(count, 4, "four operations");
	/* Cut inside the group: BEGIN and the delete are on disk, the adds not. */
	uint8_t rec[JOURNAL_HDR + JOURNAL_REC_MAX];
	struct journal_op begin = { .kind = JOURNAL_BEGIN, .ownerlen = 1, .ttl = 3 };
	long cut = after_one + journal_encode(&begin, rec, sizeof(rec)) +
	           journal_encode(&upd[0], rec, sizeof(rec));
	ok(cut < full, "cut point inside the group");
	if (truncate(path, cut) != 0)
		diag("truncate failed");
	count = 0;
	is_int(journal_replay(path, true, count_cb, &count, err, sizeof(err)), 1,
	       "a group cut short: only the earlier update");
	is_int(count, 1, "none of the cut update applied (not the delete alone)");
	is_int(file_size(path), after_one, "the cut group is cut off the file");
	/* A zero-filled tail. */
	FILE *f = fopen(path, "ab");
	static const uint8_t zeros[4096];
	fwrite(zeros, 1, sizeof(zeros), f);
	fclose(f);
	count = 0;
	is_int(journal_replay(path, true, count_cb, &count, err, sizeof(err)), 1,
	       "zero-filled tail: the good records replay (%s)", err);
	is_int(file_size(path), after_one, "and the zeros are cut off");
	unlink(path);
}

static const char yaml[] =
	"zones:\n"
	"  - name: mesh\n"
	"    records:\n"
	"      - {name: www, type: TXT, data: hello}\n"
	"    services:\n"
	"      - name: svc\n"
	"        ports: {http: 80}\n"
	"        backends: [10.0.0.1]\n";

static void test_overlay(void)
{
	uint8_t origin[DNS_NAME_MAX];
	size_t olen;
	wire_name_from_text("mesh", origin, &olen);
	struct update *u = update_new_for_test(origin, olen);
	uint8_t a2[4] = { 10, 0, 0, 2 }, a3[4] = { 10, 0, 0, 3 };
	struct journal_op add2 = mkop(JOURNAL_ADD, "svc.mesh", DNS_TYPE_A, a2, 4);
	struct journal_op add3 = mkop(JOURNAL_ADD, "svc.mesh", DNS_TYPE_A, a3, 4);
	struct journal_op del2 = mkop(JOURNAL_DEL_RR, "svc.mesh", DNS_TYPE_A, a2, 4);
	struct journal_op delw = mkop(JOURNAL_DEL_NAME, "www.mesh", 0, NULL, 0);
	struct journal_op txt = mkop(JOURNAL_ADD, "new.mesh", DNS_TYPE_TXT, "\3abc", 4);
	struct journal_op bad = mkop(JOURNAL_ADD, "svc.mesh", DNS_TYPE_TXT, "\3abc", 4);
	update_overlay_merge(u, 0, &add2);
	update_overlay_merge(u, 0, &add2);
	update_overlay_merge(u, 0, &add3);
	update_overlay_merge(u, 0, &del2);
	update_overlay_merge(u, 0, &delw);
	update_overlay_merge(u, 0, &txt);
	is_int(update_count(u), 4, "merged: add3, del2, delete www, add TXT");
	struct config *cfg;
	struct config_error ce;
	ok(config_load_string(yaml, sizeof(yaml) - 1, "t", &cfg, &ce) == 0, "config %s", ce.msg);
	is_int(update_overlay_apply(u, 0, cfg), 0, "all apply");
	const struct cfg_service *s = &cfg->zones[0].services[0];
	is_int(s->nbackends, 2, "10.0.0.1 and 10.0.0.3");
	ok(s->nbackends == 2 && memcmp(s->backends[1].addr, a3, 4) == 0 &&
	   strcmp(s->backends[1].name, "10-0-0-3") == 0, "registered backend named by address");
	is_int(cfg->zones[0].nrecords, 1, "www deleted, new added");
	config_free(cfg);
	update_overlay_merge(u, 0, &bad);
	ok(config_load_string(yaml, sizeof(yaml) - 1, "t", &cfg, &ce) == 0, "config again");
	is_int(update_overlay_apply(u, 0, cfg), 1, "TXT at a service name is dropped");
	is_int(update_count(u), 4, "and left the overlay");
	config_free(cfg);
	update_free(u);
}

int main(void)
{
	test_codec();
	test_file();
	test_groups();
	test_overlay();
	return done_testing();
}

/* test_balance.c -- balance.c policies over hand-built services (round
 * robin over the schedule zone.c builds for them): weight
 * accuracy, round-robin smoothness, hash stickiness, failover groups,
 * locality, fail-open and slow start. */
#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balance.h"
#include "config.h"
#include "tap.h"
#include "zone.h"

static struct zone_backend be[8];
/* Their words in a state table of our own (bstate.h). */
static uint64_t word[8];

static void set_up(unsigned i, bool up)
{
	word[i] = bstate_word(up, bstate_word_since(word[i]));
}
static struct zone_service svc;
static uint16_t sched[3][1024];
static bool built_equal;       /* the last block setup_rr built has equal_weights */

static void setup(unsigned n, const uint32_t *w, enum cfg_policy pol)
{
	memset(be, 0, sizeof(be));
	memset(&svc, 0, sizeof(svc));
	for (unsigned i = 0; i < n; i++) {
		be[i].family = AF_INET;
		be[i].addr[0] = 10;
		be[i].addr[3] = (uint8_t)(i + 1);
		be[i].weight = w[i];
		word[i] = bstate_word(true, 0);
		be[i].state = &word[i];
	}
	svc.backends = be;
	svc.nbackends = n;
	svc.n4 = n;
	svc.policy = pol;
	svc.fail_open = true;
}

/* The round-robin schedule zone.c builds for these weights: a service of
 * the same backends loaded from YAML and built into a block, whose
 * schedule the test service then uses. */
static void setup_rr(unsigned n)
{
	char yaml[1024];
	int len = snprintf(yaml, sizeof(yaml),
	                   "zones:\n  - name: mesh\n    services:\n      - name: rr\n"
	                   "        policy: round-robin\n        ports: {http: 80}\n"
	                   "        backends:\n");
	for (unsigned i = 0; i < n; i++)
		len += snprintf(yaml + len, sizeof(yaml) - (size_t)len,
		                "          - {address: 10.0.0.%u, weight: %u}\n", i + 1,
		                (unsigned)be[i].weight);
	struct config *cfg = NULL;
	struct config_error cerr;
	char err[256];
	struct zone_service *blk = NULL;
	if (config_load_string(yaml, (size_t)len, "rr.yaml", &cfg, &cerr) == -1)
		diag("rr config: %s", cerr.msg);
	else if (!(blk = zone_block_build(&cfg->zones[0], &cfg->zones[0].services[0], 0, NULL, NULL,
	                                  NULL, 0, 0, err, sizeof(err))))
		diag("rr block: %s", err);
	for (int f = 0; f < 3; f += 2) {
		unsigned l = blk && blk->rr_sched[f] ? blk->rr_len[f] : 0;
		if (l > 1024)
			l = 1024;
		if (l)
			memcpy(sched[f], blk->rr_sched[f], l * sizeof(sched[f][0]));
		svc.rr_sched[f] = l ? sched[f] : NULL;
		svc.rr_len[f] = (uint16_t)l;
	}
	built_equal = blk && blk->equal_weights;
	zone_block_free(blk);
	config_free(cfg);
}

static struct balance_state st;
static uint16_t idx[ZONE_MAX_BACKENDS];

static void client_v4(struct balance_client *c, uint32_t a)
{
	memset(c, 0, sizeof(*c));
	c->family = AF_INET;
	c->addr[0] = (uint8_t)(a >> 24);
	c->addr[1] = (uint8_t)(a >> 16);
	c->addr[2] = (uint8_t)(a >> 8);
	c->addr[3] = (uint8_t)a;
	c->prefix = 32;
}

int main(void)
{
	struct zone_snapshot snap;
	memset(&snap, 0, sizeof(snap));
	balance_init(&st, 7, 0);

	/* Weighted: first-answer shares over 100,000 queries. */
	const uint32_t w3[] = { 100, 200, 700 };
	setup(3, w3, CFG_POLICY_WEIGHTED);
	svc.max_answers = 1;
	unsigned cnt[8] = { 0 };
	for (int i = 0; i < 100000; i++) {
		unsigned n = balance_select(&snap, &svc, AF_INET, &st, NULL, idx, 64, NULL);
		if (n != 1)
			break;
		cnt[idx[0]]++;
	}
	for (int i = 0; i < 3; i++) {
		double share = cnt[i] / 1000.0, want = w3[i] / 10.0;
		ok(fabs(share - want) < 1.0, "weighted: backend %d share %.2f%% vs %.0f%% (within 1 pp)",
		   i, share, want);
	}
	/* Full ordering: every backend exactly once. */
	svc.max_answers = 0;
	unsigned n = balance_select(&snap, &svc, AF_INET, &st, NULL, idx, 64, NULL);
	is_int(n, 3, "weighted: all three without max-answers");
	ok(idx[0] != idx[1] && idx[1] != idx[2] && idx[0] != idx[2], "a permutation");
	/* Second position also follows weights among the rest: with the 700
	 * backend first, 200 should come second 2/3 of the time. */
	unsigned second200 = 0, first700 = 0;
	for (int i = 0; i < 30000; i++) {
		balance_select(&snap, &svc, AF_INET, &st, NULL, idx, 64, NULL);
		if (idx[0] == 2) {
			first700++;
			second200 += idx[1] == 1;
		}
	}
	ok(fabs((double)second200 / first700 - 2.0 / 3) < 0.02, "second slot weighted among the rest (%.3f)",
	   (double)second200 / first700);
	/* Health: a down backend is never chosen. */
	set_up(2, false);
	unsigned got2 = 0;
	for (int i = 0; i < 1000; i++) {
		n = balance_select(&snap, &svc, AF_INET, &st, NULL, idx, 64, NULL);
		for (unsigned j = 0; j < n; j++)
			got2 += idx[j] == 2;
	}
	is_int(got2, 0, "down backend never answered");
	is_int(n, 2, "two healthy answers");
	/* All down: fail open answers all; fail closed answers none. */
	set_up(0, false);
	set_up(1, false);
	n = balance_select(&snap, &svc, AF_INET, &st, NULL, idx, 64, NULL);
	is_int(n, 3, "all down + fail-open: every backend");
	svc.fail_open = false;
	n = balance_select(&snap, &svc, AF_INET, &st, NULL, idx, 64, NULL);
	is_int(n, 0, "all down + fail-closed: none (NODATA)");
	n = balance_select(&snap, &svc, AF_INET6, &st, NULL, idx, 64, NULL);
	is_int(n, 0, "no backend of the family");
	/* Fail-open is per service, not per family: a healthy IPv4 backend
	 * means AAAA answers none of the dead IPv6 ones. */
	svc.fail_open = true;
	set_up(0, true);
	be[2].family = AF_INET6;
	n = balance_select(&snap, &svc, AF_INET6, &st, NULL, idx, 64, NULL);
	is_int(n, 0, "v6 all down, v4 up: AAAA gets nothing despite fail-open");
	n = balance_select(&snap, &svc, AF_INET, &st, NULL, idx, 64, NULL);
	is_int(n, 1, "and A the healthy v4 backend");
	set_up(0, false);
	n = balance_select(&snap, &svc, AF_INET6, &st, NULL, idx, 64, NULL);
	is_int(n, 1, "everything down: fail-open answers the v6 backend too");
	be[2].family = AF_INET;

	/* Reproducibility with a seed. */
	setup(3, w3, CFG_POLICY_WEIGHTED);
	struct balance_state s1, s2;
	balance_init(&s1, 99, 1);
	balance_init(&s2, 99, 1);
	uint16_t i1[8], i2[8];
	bool same = true;
	for (int i = 0; i < 100; i++) {
		balance_select(&snap, &svc, AF_INET, &s1, NULL, i1, 8, NULL);
		balance_select(&snap, &svc, AF_INET, &s2, NULL, i2, 8, NULL);
		same &= memcmp(i1, i2, 3 * sizeof(*i1)) == 0;
	}
	ok(same, "same seed, same answers");

	/* Round robin: weights 1:2:3 give exact shares per cycle and never the
	 * same backend three times running. */
	const uint32_t w123[] = { 1, 2, 3 };
	setup(3, w123, CFG_POLICY_ROUND_ROBIN);
	setup_rr(3);
	ok(!built_equal, "a block with weights 1:2:3 is not equal_weights");
	memset(cnt, 0, sizeof(cnt));
	unsigned run = 0, maxrun = 0, prev = 99;
	for (int i = 0; i < 600; i++) {
		n = balance_select(&snap, &svc, AF_INET, &st, NULL, idx, 64, NULL);
		cnt[idx[0]]++;
		run = idx[0] == prev ? run + 1 : 1;
		if (run > maxrun)
			maxrun = run;
		prev = idx[0];
	}
	ok(cnt[0] == 100 && cnt[1] == 200 && cnt[2] == 300, "round robin: exact 1:2:3 (%u/%u/%u)",
	   cnt[0], cnt[1], cnt[2]);
	ok(maxrun <= 2, "round robin is smooth (longest run %u)", maxrun);
	is_int(n, 3, "round robin answers all");
	/* A backend down (its word only, the schedule unchanged): its turns go
	 * to the next entries of the schedule, never to it. */
	set_up(2, false);
	memset(cnt, 0, sizeof(cnt));
	for (int i = 0; i < 600; i++) {
		n = balance_select(&snap, &svc, AF_INET, &st, NULL, idx, 64, NULL);
		cnt[idx[0]]++;
	}
	ok(cnt[2] == 0 && cnt[0] > 160 && cnt[0] < 240 && n == 2,
	   "round robin: a down backend's turns go to the others by weight (%u/%u/%u, 1:2)",
	   cnt[0], cnt[1], cnt[2]);
	set_up(2, true);

	/* Hash: sticky per client, proportional, minimal disruption. */
	const uint32_t w5[] = { 100, 100, 100, 100, 100 };
	setup(5, w5, CFG_POLICY_HASH);
	svc.max_answers = 1;
	enum { NC = 20000 };
	static uint8_t before[NC];
	memset(cnt, 0, sizeof(cnt));
	struct balance_explain ex;
	for (uint32_t c = 0; c < NC; c++) {
		struct balance_client cl;
		client_v4(&cl, 0x0a000000u + c * 7919u);
		balance_select(&snap, &svc, AF_INET, &st, &cl, idx, 64, &ex);
		before[c] = (uint8_t)idx[0];
		cnt[idx[0]]++;
	}
	ok(ex.used_client, "hash uses the client");
	bool even = true;
	for (int i = 0; i < 5; i++)
		even &= cnt[i] > NC / 5 * 0.9 && cnt[i] < NC / 5 * 1.1;
	ok(even, "hash spreads clients evenly (%u %u %u %u %u)", cnt[0], cnt[1], cnt[2], cnt[3], cnt[4]);
	unsigned moved_other = 0, moved_own = 0, again_diff = 0;
	for (uint32_t c = 0; c < NC; c++) {
		struct balance_client cl;
		client_v4(&cl, 0x0a000000u + c * 7919u);
		balance_select(&snap, &svc, AF_INET, &st, &cl, idx, 64, NULL);
		again_diff += idx[0] != before[c];
	}
	is_int(again_diff, 0, "hash is sticky: same client, same backend");
	set_up(3, false);
	for (uint32_t c = 0; c < NC; c++) {
		struct balance_client cl;
		client_v4(&cl, 0x0a000000u + c * 7919u);
		balance_select(&snap, &svc, AF_INET, &st, &cl, idx, 64, NULL);
		if (before[c] == 3)
			moved_own += idx[0] != 3;
		else
			moved_other += idx[0] != before[c];
	}
	is_int(moved_other, 0, "removing a backend moves none of the others' clients");
	is_int(moved_own, cnt[3], "... and all of its own");
	set_up(3, true);
	/* Weighted hash shares. */
	be[0].weight = 400;
	memset(cnt, 0, sizeof(cnt));
	for (uint32_t c = 0; c < NC; c++) {
		struct balance_client cl;
		client_v4(&cl, 0x0b000000u + c * 104729u);
		balance_select(&snap, &svc, AF_INET, &st, &cl, idx, 64, NULL);
		cnt[idx[0]]++;
	}
	ok(fabs(cnt[0] / (double)NC - 0.5) < 0.03, "weighted hash: weight 400 of 800 gets %.1f%%",
	   100.0 * cnt[0] / NC);

	/* Failover: the lowest priority group with a healthy backend. */
	setup(3, w3, CFG_POLICY_FAILOVER);
	be[0].priority = 0;
	be[1].priority = 0;
	be[2].priority = 1;
	bool only0 = true;
	for (int i = 0; i < 200; i++) {
		n = balance_select(&snap, &svc, AF_INET, &st, NULL, idx, 64, NULL);
		only0 &= n == 2 && idx[0] != 2 && idx[1] != 2;
	}
	ok(only0, "failover: only the priority-0 group");
	set_up(0, false);
	n = balance_select(&snap, &svc, AF_INET, &st, NULL, idx, 64, NULL);
	ok(n == 1 && idx[0] == 1, "failover: group keeps serving with one member");
	set_up(1, false);
	n = balance_select(&snap, &svc, AF_INET, &st, NULL, idx, 64, NULL);
	ok(n == 1 && idx[0] == 2, "failover: next group when the first is empty");

	/* Locality. */
	struct zone_locality locs[2] = {
		{ .family = AF_INET, .addr = { 10, 1 }, .prefix = 16, .label = "a" },
		{ .family = AF_INET, .addr = { 10, 1, 2 }, .prefix = 24, .label = "b" },
	};
	snap.localities = locs;
	snap.nlocalities = 2;
	setup(3, w3, CFG_POLICY_LOCALITY);
	static const struct zone_backend_info loc_a = { .locality = "a" }, loc_b = { .locality = "b" };
	zone_backend_set_info(&be[0], &loc_a);
	zone_backend_set_info(&be[1], &loc_b);
	zone_backend_set_info(&be[2], &loc_b);
	struct balance_client cl;
	client_v4(&cl, 0x0a010101u);
	is_str(balance_locality(&snap, &cl), "a", "10.1.1.1 is in a");
	n = balance_select(&snap, &svc, AF_INET, &st, &cl, idx, 64, NULL);
	ok(n == 1 && idx[0] == 0, "locality a: only its backend");
	client_v4(&cl, 0x0a010203u);
	is_str(balance_locality(&snap, &cl), "b", "longest prefix wins");
	n = balance_select(&snap, &svc, AF_INET, &st, &cl, idx, 64, NULL);
	ok(n == 2 && idx[0] != 0 && idx[1] != 0, "locality b: its two backends");
	set_up(1, false);
	set_up(2, false);
	n = balance_select(&snap, &svc, AF_INET, &st, &cl, idx, 64, NULL);
	ok(n == 1 && idx[0] == 0, "locality b down: falls back to all healthy");
	client_v4(&cl, 0xc0a80001u);
	ok(balance_locality(&snap, &cl) == NULL, "unmapped client has no locality");

	/* Equal weights: a uniform shuffle. Over 60,000 orders of four
	 * backends each of the 24 orders is seen 1/24 of the time (each
	 * within 12 % of that), every backend first a quarter of the time. */
	const uint32_t w4[] = { 5, 5, 5, 5 };
	setup(4, w4, CFG_POLICY_WEIGHTED);
	setup_rr(4);
	ok(built_equal, "a block with weights 5:5:5:5 is equal_weights");
	memset((void *)svc.rr_sched, 0, sizeof(svc.rr_sched));
	svc.equal_weights = true;
	unsigned perm[256] = { 0 }, first[4] = { 0 };
	bool perms_ok = true;
	for (int i = 0; i < 60000; i++) {
		n = balance_select(&snap, &svc, AF_INET, &st, NULL, idx, 64, NULL);
		unsigned seen = 0, code = 0;
		for (unsigned j = 0; j < n; j++) {
			seen |= 1u << idx[j];
			code = code * 4 + idx[j];
		}
		perms_ok &= n == 4 && seen == 0xf;
		perm[code]++;
		first[idx[0]]++;
	}
	ok(perms_ok, "equal weights: every order is a permutation");
	unsigned distinct = 0, worst = 0;
	for (int i = 0; i < 256; i++) {
		if (!perm[i])
			continue;
		distinct++;
		unsigned d = perm[i] > 2500 ? perm[i] - 2500 : 2500 - perm[i];
		if (d > worst)
			worst = d;
	}
	is_int(distinct, 24, "equal weights: all 24 orders occur");
	ok(worst < 300, "equal weights: each order within 12 %% of 1/24 (worst off by %u)", worst);
	for (int i = 0; i < 4; i++)
		ok(abs((int)first[i] - 15000) < 600, "equal weights: backend %d first %u of 60000", i,
		   first[i]);
	/* max-answers 2 of 4: the first two slots uniform over the 12 pairs. */
	svc.max_answers = 2;
	memset(perm, 0, sizeof(perm));
	for (int i = 0; i < 24000; i++) {
		n = balance_select(&snap, &svc, AF_INET, &st, NULL, idx, 64, NULL);
		perm[n == 2 && idx[0] != idx[1] ? idx[0] * 4 + idx[1] : 255]++;
	}
	distinct = 0;
	bool pairs_ok = perm[255] == 0;
	for (int i = 0; i < 16; i++)
		if (perm[i]) {
			distinct++;
			pairs_ok &= perm[i] > 1700 && perm[i] < 2300;
		}
	ok(distinct == 12 && pairs_ok, "equal weights, max-answers 2: 12 pairs, each near 1/12");
	svc.max_answers = 0;
	svc.equal_weights = false;

	/* Slow start: 10% on return, linear to 100%. */
	setup(3, w3, CFG_POLICY_WEIGHTED);
	svc.slow_start_ms = 10000;
	word[2] = bstate_word(true, 50000);
	is_int(balance_weight(&svc, &be[2], 50000), 70, "slow start: 10%% at once");
	is_int(balance_weight(&svc, &be[2], 55000), 385, "slow start: 55%% half way");
	is_int(balance_weight(&svc, &be[2], 60000), 700, "slow start: full weight after");
	svc.slow_start_ms = 0;
	is_int(balance_weight(&svc, &be[2], 50000), 700, "no slow start: full weight");
	return done_testing();
}

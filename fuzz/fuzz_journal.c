/* fuzz_journal.c -- the UPDATE journal's record decoder (journal.c) and
 * the overlay it feeds (update.c), on arbitrary file contents: records
 * are decoded one after another as a replay does; every decoded operation
 * must re-encode to the same bytes, and is merged into an overlay and
 * applied to a small config. A torn or bad record ends the walk. */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "journal.h"
#include "update.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char yaml[] =
	"zones:\n"
	"  - name: mesh\n"
	"    records:\n"
	"      - {name: www, type: A, data: 192.0.2.1}\n"
	"    services:\n"
	"      - name: web\n"
	"        ports: {http: 80}\n"
	"        backends: [127.0.0.1]\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t enc[JOURNAL_HDR + JOURNAL_REC_MAX];
	static const uint8_t origin[] = { 4, 'm', 'e', 's', 'h', 0 };
	struct update *u = update_new_for_test(origin, sizeof(origin));
	if (!u)
		return 0;
	size_t off = 0;
	unsigned nops = 0;
	while (off < size && nops < 64) {
		struct journal_op op;
		size_t used = 0;
		if (journal_decode(data + off, size - off, &op, &used) != JOURNAL_DEC_OK)
			break;
		if (used == 0 || used > size - off)
			abort();
		int n = journal_encode(&op, enc, sizeof(enc));
		if (n != (int)used || memcmp(enc, data + off, used) != 0)
			abort();                  /* decode and encode disagree */
		update_overlay_merge(u, 0, &op);
		off += used;
		nops++;
	}
	struct config *cfg;
	struct config_error cerr;
	if (config_load_string(yaml, sizeof(yaml) - 1, "fuzz.yaml", &cfg, &cerr) == 0) {
		update_overlay_apply(u, 0, cfg);
		config_free(cfg);
	}
	update_free(u);
	return 0;
}

/* fuzz_name.c -- name text <-> wire: text -> wire -> text -> wire must be
 * stable, and raw bytes as an uncompressed wire name must be judged like
 * the reader judges them. */
#include <stdlib.h>
#include <string.h>

#include "dns/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

/* The fuzzer input as text: up to the first NUL, at most 2048 bytes. */
static void text_round_trip(const uint8_t *data, size_t size)
{
	char in[2049], t1[DNS_NAME_MAX * 4 + 2], t2[DNS_NAME_MAX * 4 + 2];
	uint8_t w1[DNS_NAME_MAX], w2[DNS_NAME_MAX];
	size_t l1 = 0, l2 = 0;

	size_t n = size < sizeof(in) - 1 ? size : sizeof(in) - 1;
	memcpy(in, data, n);
	in[n] = '\0';
	if (wire_name_from_text(in, w1, &l1) != 0)
		return;
	CHECK(wire_name_valid(w1, l1));
	int n1 = wire_name_to_text(w1, l1, t1, sizeof(t1));
	CHECK(n1 > 0 && (size_t)n1 == strlen(t1) && t1[n1 - 1] == '.');
	CHECK(wire_name_from_text(t1, w2, &l2) == 0);
	CHECK(l1 == l2 && memcmp(w1, w2, l1) == 0);
	int n2 = wire_name_to_text(w2, l2, t2, sizeof(t2));
	CHECK(n1 == n2 && strcmp(t1, t2) == 0);
	/* Too small a buffer fails cleanly; the exact size fits. */
	CHECK(wire_name_to_text(w1, l1, t2, (size_t)n1) == -1);
	CHECK(wire_name_to_text(w1, l1, t2, (size_t)n1 + 1) == n1);
}

/* The input as an uncompressed wire name. */
static void wire_bytes(const uint8_t *data, size_t size)
{
	bool valid = wire_name_valid(data, size);
	struct wire_reader r;
	uint8_t out[DNS_NAME_MAX];
	char t[DNS_NAME_MAX * 4 + 2];

	/* The reader reads a valid name as it is; anything else it accepts
	 * either is not all of the input or went through a pointer, and then
	 * expands to other bytes. */
	wire_reader_init(&r, data, size);
	size_t n = wire_read_name(&r, out);
	bool same = !r.err && r.pos == size && n == size && memcmp(out, data, size) == 0;
	CHECK(valid == same);
	if (n)
		CHECK(wire_name_valid(out, n));
	if (!valid) {
		CHECK(wire_name_to_text(data, size, t, sizeof(t)) == -1);
		return;
	}
	int tl = wire_name_to_text(data, size, t, sizeof(t));
	CHECK(tl > 0);
	uint8_t back[DNS_NAME_MAX];
	size_t bl = 0;
	CHECK(wire_name_from_text(t, back, &bl) == 0 && bl == size && memcmp(back, data, size) == 0);

	unsigned labels = wire_name_labels(data, size);
	for (unsigned i = 0; i <= labels; i++) {
		size_t off = wire_name_skip_labels(data, size, i);
		CHECK(off < size && wire_name_valid(data + off, size - off));
		CHECK(wire_name_labels(data + off, size - off) == labels - i);
		CHECK(wire_name_is_subdomain(data, size, data + off, size - off));
	}
	memcpy(back, data, size);
	wire_name_lower(back, size);
	CHECK(wire_name_valid(back, size) && wire_name_equal(back, size, data, size));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	text_round_trip(data, size);
	wire_bytes(data, size);
	return 0;
}

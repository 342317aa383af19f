/* rdata.h -- RDATA presentation format <-> uncompressed wire, and the
 * mnemonics of types, classes, opcodes and rcodes. Used by config*.c (static
 * records) and meshdig (printing); not on the query path. */
#ifndef MESHDNS_RDATA_H
#define MESHDNS_RDATA_H

#include <stddef.h>
#include <stdint.h>

/* Parses the text of one record's data for type (A, AAAA, NS, CNAME, PTR,
 * MX, TXT, SRV, SOA; any type in RFC 3597 "\# len hex" form). Relative names
 * (no trailing dot) are completed with origin; "@" is the origin.
 * TXT accepts one or more "quoted" strings or a single bare string; strings
 * longer than 255 bytes are split. Writes uncompressed wire rdata.
 * Returns 0, or -1 with *errmsg set to a static message. */
int rdata_from_text(uint16_t type, const char *text, const uint8_t *origin, size_t originlen,
                    uint8_t *out, size_t outcap, size_t *outlen, const char **errmsg);

/* Formats the rdata at msg[rdoff .. rdoff+rdlen) of type as presentation
 * text; names inside may be compressed against msg. Unknown types and
 * malformed rdata use the RFC 3597 "\# len hex" form.
 * Returns the text length, or -1 if outcap is too small. */
int rdata_to_text(uint16_t type, const uint8_t *msg, size_t msglen, size_t rdoff,
                  uint16_t rdlen, char *out, size_t outcap);

/* "A", "AAAA", ... or "TYPE65280". Returns a static string or writes into a
 * thread-local buffer. */
const char *rdata_type_name(uint16_t type);
/* Accepts mnemonics case-insensitively and "TYPEnnn". 0 or -1. */
int rdata_type_from_name(const char *s, uint16_t *type);
const char *rdata_class_name(uint16_t rclass);   /* "IN", "CH", "CLASS7" */
int rdata_class_from_name(const char *s, uint16_t *rclass);
const char *rdata_rcode_name(unsigned rcode);    /* "NOERROR", ... "RCODE23" */
const char *rdata_opcode_name(unsigned opcode);  /* "QUERY", ... */

/* The value of hex digit c (either case), or -1. */
int rdata_hex_digit(char c);

#endif

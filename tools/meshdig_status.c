/* meshdig_status.c -- --status and --why: dnsd's CHAOS TXT answers as a
 * backend table or as lines, and its HTTP status document as tables. Not
 * how they are fetched (meshdig_exchange.c). */
#include "meshdig.h"
#include "dns/rdata.h"

#include <jansson.h>

#include <stdio.h>

/* The strings of a TXT rdata, joined by spaces. */
static void txt_join(const struct reply *rp, const struct dns_rr *rr, char *out, size_t cap)
{
	const uint8_t *p = rp->msg + rr->rdoff, *end = p + rr->rdlen;
	size_t n = 0;
	out[0] = '\0';
	while (p < end && n + 1 < cap) {
		size_t len = *p++;
		if (len > (size_t)(end - p))
			len = (size_t)(end - p);
		for (size_t k = 0; k < len && n + 1 < cap; k++)
			out[n++] = p[k] >= 0x20 && p[k] < 0x7f ? (char)p[k] : '?';
		p += len;
		if (p < end && n + 1 < cap)
			out[n++] = ' ';
	}
	out[n] = '\0';
}

/* The value of key=VALUE in a status line ("" if absent); "last=" runs to
 * the end of the line, since error texts contain spaces. */
static void status_field(const char *line, const char *key, char *out, size_t cap)
{
	size_t klen = strlen(key);
	out[0] = '\0';
	for (const char *p = line; (p = strstr(p, key)) != NULL; p += klen) {
		if ((p != line && p[-1] != ' ') || p[klen] != '=')
			continue;
		const char *v = p + klen + 1;
		size_t len = strcmp(key, "last") == 0 ? strlen(v) : strcspn(v, " ");
		snprintf(out, cap, "%.*s", (int)(len < cap ? len : cap - 1), v);
		return;
	}
}

/* --status: the service line, then one table row per backend line
 * ("NAME ADDR:PORT STATE key=value ... last=TEXT"). */
void dig_print_status(const struct reply *rp, const char *server_text)
{
	char line[1024], f[8][128];
	static const char *const keys[] = { "weight", "effective", "priority", "locality", "for",
		                                "checks", "last" };
	bool header = false;
	unsigned rows = 0;
	for (unsigned i = 0; i < rp->nrr; i++) {
		const struct dns_rr *rr = &rp->rr[i].rr;
		if (rp->rr[i].sec != SEC_ANSWER || rr->type != DNS_TYPE_TXT)
			continue;
		txt_join(rp, rr, line, sizeof(line));
		if (strncmp(line, "service ", 8) == 0) {
			char name[NAME_TEXT_MAX];
			dig_name_text(rr->name, rr->namelen, name);
			printf("%s (from %s): %s\n", name, server_text, line + 8);
			continue;
		}
		char bname[128] = "", addr[128] = "", state[32] = "";
		if (sscanf(line, "%127s %127s %31s", bname, addr, state) != 3)
			continue;
		if (!header) {
			printf("%-24s %-28s %-5s %6s %9s %4s %-10s %8s %7s %-6s %s\n", "BACKEND", "ADDRESS",
			       "STATE", "WEIGHT", "EFFECTIVE", "PRIO", "LOCALITY", "FOR", "CHECKS", "SOURCE",
			       "LAST");
			header = true;
		}
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			status_field(line, keys[k], f[k], sizeof(f[k]));
		printf("%-24s %-28s %-5s %6s %9s %4s %-10s %8s %7s  %s\n", bname, addr, state, f[0], f[1],
		       f[2], f[3], f[4], f[5], f[6]);
		rows++;
	}
	if (!header && rp->rcode == DNS_RCODE_NOERROR)
		printf("no status: the server gave no service lines (not a dnsd service?)\n");
	else if (header && rows == 0)
		printf("(no backends)\n");
}

/* --why: the explanation strings, one per line. */
void dig_print_why(const struct reply *rp)
{
	char line[1024];
	for (unsigned i = 0; i < rp->nrr; i++) {
		const struct dns_rr *rr = &rp->rr[i].rr;
		if (rp->rr[i].sec != SEC_ANSWER || rr->type != DNS_TYPE_TXT)
			continue;
		txt_join(rp, rr, line, sizeof(line));
		printf("%s\n", line);
	}
}

static const char *jstr(json_t *o, const char *key, const char *dflt)
{
	const char *v = json_string_value(json_object_get(o, key));
	return v ? v : dflt;
}

static long long jint(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

int dig_print_status_doc(const char *full, const char *body, size_t len)
{
	json_error_t jerr;
	json_t *root = json_loadb(body ? body : "", len, 0, &jerr);
	json_t *zones = json_object_get(root, "zones");
	if (!root || !json_is_array(zones)) {
		fprintf(stderr, "%s: %s: not a dnsd status document (%s)\n", dig_progname, full,
		        root ? "no zones" : jerr.text);
		json_decref(root);
		return EXIT_MALFORMED;
	}
	printf("%s: snapshot generation %lld\n", full, jint(root, "generation"));
	size_t zi, si, bi;
	json_t *z, *svc, *b;
	json_array_foreach(zones, zi, z) {
		printf("\nzone %s serial %lld\n", jstr(z, "name", "?"), jint(z, "serial"));
		json_array_foreach(json_object_get(z, "services"), si, svc) {
			json_t *bes = json_object_get(svc, "backends");
			printf("\n%s policy=%s healthy=%lld/%zu ttl=%lld%s\n", jstr(svc, "name", "?"),
			       jstr(svc, "policy", "?"), jint(svc, "healthy"), json_array_size(bes),
			       jint(svc, "ttl"),
			       json_is_true(json_object_get(svc, "fail_open")) ? " fail-open" : "");
			printf("%-24s %-28s %-5s %6s %9s %4s %-10s %8s %7s  %s\n", "BACKEND", "ADDRESS",
			       "STATE", "WEIGHT", "EFFECTIVE", "PRIO", "LOCALITY", "FOR", "CHECKS", "LAST");
			json_array_foreach(bes, bi, b) {
				char addr[160], since[32], last[160];
				snprintf(addr, sizeof(addr), "%s:%lld", jstr(b, "address", "?"), jint(b, "port"));
				/* As the CHAOS answer shows them (dnsd's backend_fmt):
				 * whole seconds, and last_check as it is. */
				json_t *sv = json_object_get(b, "since_seconds");
				if (json_is_number(sv))
					snprintf(since, sizeof(since), "%llds", (long long)json_number_value(sv));
				else
					snprintf(since, sizeof(since), "-");
				if (json_is_string(json_object_get(b, "last_check")))
					snprintf(last, sizeof(last), "%s", jstr(b, "last_check", "?"));
				else
					snprintf(last, sizeof(last), "%s/%lldms", jstr(b, "last_result", "?"),
					         jint(b, "last_check_ms"));
				printf("%-24s %-28s %-5s %6lld %9lld %4lld %-10s %8s %7lld %-6s %s%s%s\n",
				       jstr(b, "name", "-"), addr, jstr(b, "state", "?"), jint(b, "weight"),
				       jint(b, "effective_weight"), jint(b, "priority"),
				       jstr(b, "locality", "-"), since, jint(b, "checks"),
				       jstr(b, "source", "yaml"),
				       json_is_true(json_object_get(b, "checked")) ? last : "unchecked",
				       json_is_string(json_object_get(b, "key")) ? "  key " : "",
				       json_is_string(json_object_get(b, "key")) ? jstr(b, "key", "") : "");
			}
		}
	}
	json_decref(root);
	return EXIT_REPLY_OK;
}

/* log.h -- leveled logging to stderr or syslog. Nothing a packet can
 * trigger is logged per packet: such events are counted (metrics.h). */
#ifndef MESHDNS_LOG_H
#define MESHDNS_LOG_H

#include <stddef.h>

enum log_level { LOG_LEVEL_ERR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

void log_set_level(enum log_level lvl);
/* From now on, log to syslog (facility daemon) instead of stderr. */
void log_use_syslog(const char *ident);
/* From now on, stderr lines carry the message alone: no time, name or
 * level. For dnsd --check, whose errors are file:line:col: message, the
 * form editors and CI problem matchers parse. */
void log_use_plain(void);
enum log_level log_get_level(void);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)   log_msg(LOG_LEVEL_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

/* word, or its plural for n != 1, for counts in messages: word is one of
 * "zone", "service", "backend", "change" (any other is returned as is).
 * The result is a static string. */
const char *log_plural(size_t n, const char *word);

#endif

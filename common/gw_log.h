/* Logging: one line per event on stderr, "<time> <LEVEL> <message>", or with gw_log_json one
 * JSON object per line: {"ts":"<time>","level":"info","msg":"<message>"}. */
#ifndef GW_LOG_H
#define GW_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "gw_error.h"

enum gw_log_level { GW_LOG_ERROR = 0, GW_LOG_WARN, GW_LOG_INFO, GW_LOG_DEBUG };

extern enum gw_log_level gw_log_threshold;
extern bool gw_log_json;

void gw_log(enum gw_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Between gw_log_hold() and the matching gw_log_release() (they nest), lines are kept and
 * written together at the release, or earlier when the buffer fills: the lines of one batch of
 * events (sessions closing, publishes) cost one write(2), not one each. Error lines are written
 * at once (with what was held before them, in order). */
void gw_log_hold(void);
void gw_log_release(void);
/* Writes what is held now, before the process aborts. */
void gw_log_flush(void);
/* "error", "warn", "info" or "debug" (any case) into *out: 0, or GW_EINVAL. */
int gw_log_parse_level(const char *name, enum gw_log_level *out);
/* "text" or "json" into *json: 0, or GW_EINVAL. */
int gw_log_parse_format(const char *name, bool *json);

/* A condition that may repeat thousands of times a second (out of descriptors, a flood of bad
 * requests) is logged at most once per interval, saying how many were not. */
struct gw_log_gate {
    uint64_t next_ms;    /* monotonic time before which lines are held back */
    uint64_t suppressed; /* held back since the last line */
};

/* Whether to log now (at most once per interval_ms); when it returns true, *suppressed is
 * the number of events held back since the previous line, and the count restarts. */
bool gw_log_gate_open(struct gw_log_gate *gate, uint32_t interval_ms, uint64_t *suppressed);

#define GW_ERROR(...) gw_log(GW_LOG_ERROR, __VA_ARGS__)
#define GW_WARN(...) gw_log(GW_LOG_WARN, __VA_ARGS__)
#define GW_INFO(...) gw_log(GW_LOG_INFO, __VA_ARGS__)
#define GW_DEBUG(...)                                                                              \
    do {                                                                                           \
        if (gw_log_threshold >= GW_LOG_DEBUG)                                                      \
            gw_log(GW_LOG_DEBUG, __VA_ARGS__);                                                     \
    } while (0)

#endif

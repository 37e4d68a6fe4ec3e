/* Logging: one line per event on stderr, "<time> <LEVEL> <message>". */
#ifndef GW_LOG_H
#define GW_LOG_H

enum gw_log_level { GW_LOG_ERROR = 0, GW_LOG_WARN, GW_LOG_INFO, GW_LOG_DEBUG };

extern enum gw_log_level gw_log_threshold;

void gw_log(enum gw_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int gw_log_parse_level(const char *name, enum gw_log_level *out);

#define GW_ERROR(...) gw_log(GW_LOG_ERROR, __VA_ARGS__)
#define GW_WARN(...) gw_log(GW_LOG_WARN, __VA_ARGS__)
#define GW_INFO(...) gw_log(GW_LOG_INFO, __VA_ARGS__)
#define GW_DEBUG(...)                                                                              \
    do {                                                                                           \
        if (gw_log_threshold >= GW_LOG_DEBUG)                                                      \
            gw_log(GW_LOG_DEBUG, __VA_ARGS__);                                                     \
    } while (0)

#endif

#include "gw_log.h"
#include "gw_alloc.h"
#include "gw_error.h"
#include "gw_utf8.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum gw_log_level gw_log_threshold = GW_LOG_INFO;
bool gw_log_json;

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
static const char *const json_levels[] = {"error", "warn", "info", "debug"};

/* The message as a JSON string's contents, into out (at most cap - 1 bytes and a NUL, never a
 * partial escape): quotes, backslashes and control characters escaped; a message that is not
 * valid UTF-8 (a client's bytes in it) has its bytes above 0x7f escaped one by one. */
static size_t json_escape(char *out, size_t cap, const char *msg, size_t len)
{
    bool utf8 = gw_utf8_valid(msg, len);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)msg[i];
        char esc[8];
        size_t e;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            e = 2;
        } else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) {
            e = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", c);
        } else {
            esc[0] = (char)c;
            e = 1;
        }
        if (n + e >= cap)
            break;
        memcpy(out + n, esc, e);
        n += e;
    }
    out[n] = '\0';
    return n;
}

/* Lines held back by gw_log_hold(), written by one write at the release. PIPE_BUF: a write of
 * at most that much to a pipe is atomic, so held lines never interleave with another process's
 * lines on a shared log pipe; that still holds a busy turn's dozen or so lines, and a fuller
 * turn writes when the buffer fills. */
#define HELD_BYTES PIPE_BUF
static char held[HELD_BYTES];
static size_t held_len;
static unsigned hold_depth;

static void write_out(const char *data, size_t len)
{
    fwrite(data, 1, len, stderr);
    fflush(stderr);
}

void gw_log_flush(void)
{
    if (held_len)
        write_out(held, held_len);
    held_len = 0;
}

/* One whole line: held, or written at once (with what was held first, keeping the order). An
 * error line is never held: it may be the process's last. */
static void emit(enum gw_log_level level, const char *line, size_t len)
{
    if (hold_depth && level > GW_LOG_ERROR) {
        if (len > HELD_BYTES - held_len)
            gw_log_flush();
        if (len <= HELD_BYTES) {
            memcpy(held + held_len, line, len);
            held_len += len;
            return;
        }
    }
    gw_log_flush();
    /* One write per line so that lines from several processes never interleave. */
    write_out(line, len);
}

void gw_log_hold(void)
{
    hold_depth++;
}

void gw_log_release(void)
{
    GW_ASSERT(hold_depth > 0);
    if (--hold_depth == 0)
        gw_log_flush();
}

/* "2024-05-01T12:00:00.000Z <LEVEL> " at out (room for 64 bytes); returns its length. The
 * seconds' text is made once per second: busy turns log a line per session close or publish. */
static int format_prefix(char *out, enum gw_log_level level)
{
    static time_t cached_sec = -1;
    static char cached[64]; /* 19 bytes for any real date; room for what gcc fears */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != cached_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        snprintf(cached, sizeof(cached), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cached_sec = ts.tv_sec;
    }
    return snprintf(out, 64, "%s.%03ldZ %s ", cached, ts.tv_nsec / 1000000, level_names[level]);
}

void gw_log(enum gw_log_level level, const char *fmt, ...)
{
    if (level > gw_log_threshold)
        return;
    char line[1024];
    int n = format_prefix(line, level);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    char json[3 * sizeof(line)];
    if (gw_log_json) {
        /* The same time text (without its trailing space), then the escaped message. */
        size_t t =
            (size_t)snprintf(json, sizeof(json), "{\"ts\":\"%.24s\",\"level\":\"%s\",\"msg\":\"",
                             line, json_levels[level]);
        t += json_escape(json + t, sizeof(json) - t - 3, line + n, len - (size_t)n);
        memcpy(json + t, "\"}\n", 3);
        emit(level, json, t + 3);
        return;
    }
    line[len++] = '\n';
    emit(level, line, len);
}

int gw_log_parse_level(const char *name, enum gw_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (enum gw_log_level)i;
            return 0;
        }
    }
    return GW_EINVAL;
}

int gw_log_parse_format(const char *name, bool *json)
{
    if (strcmp(name, "text") == 0 || strcmp(name, "json") == 0) {
        *json = name[0] == 'j';
        return 0;
    }
    return GW_EINVAL;
}

bool gw_log_gate_open(struct gw_log_gate *gate, uint32_t interval_ms, uint64_t *suppressed)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    if (now < gate->next_ms) {
        gate->suppressed++;
        return false;
    }
    *suppressed = gate->suppressed;
    gate->suppressed = 0;
    gate->next_ms = now + interval_ms;
    return true;
}

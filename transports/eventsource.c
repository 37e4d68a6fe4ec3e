/* The eventsource transport: one frame per server-sent event. */
#include "eventsource.h"

#include "http_receiver.h"

/* The client runs decodeURI() on every event: '%' must survive it, and CR, LF and NUL would
 * end or break the event line. */
static void encode(const struct http_receiver *r, const char *frame, size_t len, struct gw_buf *out)
{
    (void)r;
    gw_buf_append(out, "data: ", 6);
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        const char *esc = frame[i] == '%'    ? "%25"
                          : frame[i] == '\r' ? "%0D"
                          : frame[i] == '\n' ? "%0A"
                          : frame[i] == '\0' ? "%00"
                                             : NULL;
        if (!esc)
            continue;
        gw_buf_append(out, frame + start, i - start);
        gw_buf_append(out, esc, 3);
        start = i + 1;
    }
    gw_buf_append(out, frame + start, len - start);
    gw_buf_append(out, "\r\n\r\n", 4);
}

static void prelude(const struct http_receiver *r, struct gw_buf *out)
{
    (void)r;
    gw_buf_append(out, "\r\n", 2);
}

static const struct http_receiver_kind eventsource_kind = {
    .name = "eventsource",
    .transport = SOCKJS_TRANSPORT_EVENTSOURCE,
    .content_type = "text/event-stream; charset=UTF-8",
    /* A page on another origin opens the stream directly (EventSource with credentials). */
    .head_flags = TP_CORS,
    .streaming = true,
    .prelude = prelude,
    .encode = encode,
};

void eventsource_handle(const struct tp_request *req, const char *session_id, size_t id_len)
{
    http_receiver_handle(req, &eventsource_kind, session_id, id_len, NULL);
}

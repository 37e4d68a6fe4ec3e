#include "htmlfile.h"

#include <string.h>

#include "http_receiver.h"
#include "sockjs_frame.h"

static void prelude(const struct http_receiver *r, struct gw_buf *out)
{
    size_t start = out->len;
    gw_buf_appendf(out,
                   "<!doctype html>\n"
                   "<html><head>\n"
                   "  <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n"
                   "  <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n"
                   "</head><body><h2>Don't panic!</h2>\n"
                   "  <script>\n"
                   "    document.domain = document.domain;\n"
                   "    var c = parent.%s;\n"
                   "    c.start();\n"
                   "    function p(d) {c.message(d);};\n"
                   "    window.onload = function() {c.stop();};\n"
                   "  </script>",
                   r->callback);
    /* Browsers render (and run scripts of) a streamed page only after its first kilobyte. */
    size_t len = out->len - start;
    if (len <= 1024) {
        size_t pad = 1025 - len;
        memset(gw_buf_reserve(out, pad), ' ', pad);
        out->len += pad;
    }
    gw_buf_append(out, "\r\n\r\n", 4);
}

/* The frame as a JSON string inside a <script>, as sockjs-node writes it, but for "<": it is
 * written \u003c, so that a message holding "</script>" cannot end the script element (the
 * client decodes both alike). */
static void encode(const struct http_receiver *r, const char *frame, size_t len, struct gw_buf *out)
{
    (void)r;
    gw_buf_append_str(out, "<script>\np(");
    size_t start = out->len;
    sockjs_quote(out, frame, len);
    size_t quoted = out->len - start, lts = 0;
    for (size_t i = 0; i < quoted; i++)
        lts += out->data[start + i] == '<';
    if (lts) {
        /* Widened in place from the back: one pass however many there are. */
        gw_buf_reserve(out, 5 * lts);
        char *q = out->data + start;
        size_t w = quoted + 5 * lts;
        for (size_t i = quoted; i-- > 0;) {
            if (q[i] == '<') {
                w -= 6;
                memcpy(q + w, "\\u003c", 6);
            } else {
                q[--w] = q[i];
            }
        }
        out->len += 5 * lts;
    }
    gw_buf_append_str(out, ");\n</script>\r\n");
}

static const struct http_receiver_kind htmlfile_kind = {
    .name = "htmlfile",
    .transport = SOCKJS_TRANSPORT_HTMLFILE,
    .content_type = "text/html; charset=UTF-8",
    .streaming = true,
    .prelude = prelude,
    .encode = encode,
};

void htmlfile_handle(const struct tp_request *req, const char *session_id, size_t id_len)
{
    char callback[HTTP_CALLBACK_MAX + 1];
    if (http_receiver_callback(req, callback) == 0)
        http_receiver_handle(req, &htmlfile_kind, session_id, id_len, callback);
}

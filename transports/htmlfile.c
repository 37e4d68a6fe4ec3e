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

/* The frame as a JSON string inside a <script>: "<" is escaped too, so that a message holding
 * "</script>" cannot end the script element. */
static void encode(const struct http_receiver *r, const char *frame, size_t len,
                   struct gw_buf *out)
{
    (void)r;
    gw_buf_append_str(out, "<script>\np(");
    size_t start = out->len;
    sockjs_quote(out, frame, len);
    for (size_t i = start; i < out->len; i++) {
        if (out->data[i] != '<')
            continue;
        gw_buf_reserve(out, 5);
        memmove(out->data + i + 6, out->data + i + 1, out->len - i - 1);
        memcpy(out->data + i, "\\u003c", 6);
        out->len += 5;
        i += 5;
    }
    gw_buf_append_str(out, ");\n</script>\r\n");
}

static const struct http_receiver_kind htmlfile_kind = {
    .name = "htmlfile",
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

/* The gateway's own web files: the demo page, the SockJS client library that /iframe.html and
 * pages can load from the gateway, and the gateway's client library on top of it
 * (web/sockjs-gateway.js). They are built into the binary (gateway/embed_assets.cmake), so that
 * it needs no file on disk; gw_static_init may replace them, once at start, by the files of a
 * directory laid out like web/ (an install's share/sockjs-gateway/web by default). Requests
 * never read the disk. */
#ifndef GW_STATIC_H
#define GW_STATIC_H

#include <stdbool.h>
#include <stddef.h>

struct tp_request;

struct gw_asset {
    const char *name; /* path under web/ ("vendor/sockjs-client-1.6.1.min.js") */
    const unsigned char *data;
    size_t len;
};

extern const struct gw_asset gw_assets[];
extern const size_t gw_n_assets;

/* The largest web file gw_static_init reads. */
#define GW_STATIC_MAX_BYTES (8u * 1024 * 1024)

/* Chooses the files served, from --static-dir:
 * - "embedded": the copies built into the binary;
 * - "auto": when the running binary (/proc/self/exe) is PREFIX/bin/sockjs-gateway and
 *   PREFIX/share/sockjs-gateway/web is a directory (an install, wherever it was moved), as if
 *   that directory were given; otherwise (a build tree) the embedded copies;
 * - a directory: each of the assets' files present under it (same paths as under web/) is read
 *   now and served instead of its embedded copy; a missing one keeps the embedded copy.
 * Logs what it chose. Returns 0, or after logging why GW_EIO: the directory cannot be opened,
 * or one of its asset files is not a regular file, cannot be read or exceeds
 * GW_STATIC_MAX_BYTES. */
int gw_static_init(const char *setting);
/* Frees what gw_static_init read (the embedded copies are served again). */
void gw_static_cleanup(void);

/* Where the client library is served: the default of --sockjs-url. */
#define GW_STATIC_SOCKJS_PATH "/static/sockjs.min.js"
/* Where web/sockjs-gateway.js is served. */
#define GW_STATIC_LIBRARY_PATH "/static/sockjs-gateway.js"

/* Answers GET /static/sockjs.min.js, /static/sockjs-gateway.js, /demo/ (and /demo, /
 * redirecting there); false when path is none of these. */
bool gw_static_handle(const struct tp_request *req, const char *path, size_t len);

#endif

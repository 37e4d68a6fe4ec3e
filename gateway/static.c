#include "static.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw_alloc.h"
#include "gw_error.h"
#include "gw_log.h"
#include "transport.h"

/* The assets served: the embedded table, or after gw_static_init read a directory a copy of it
 * whose entries point at the files read (owned[i] set). */
static struct gw_asset *loaded;
static unsigned char **owned;

static const struct gw_asset *find_asset(const char *name)
{
    const struct gw_asset *table = loaded ? loaded : gw_assets;
    for (size_t i = 0; i < gw_n_assets; i++) {
        if (strcmp(table[i].name, name) == 0)
            return &table[i];
    }
    return NULL;
}

void gw_static_cleanup(void)
{
    if (owned) {
        for (size_t i = 0; i < gw_n_assets; i++)
            gw_free(owned[i]);
    }
    gw_free(owned);
    gw_free(loaded);
    owned = NULL;
    loaded = NULL;
}

/* Reads dir/name whole into *out (0), leaves *out NULL when there is no such file (0), or
 * logs why it cannot (GW_EIO). */
static int read_asset(const char *dir, const char *name, unsigned char **out, size_t *len)
{
    char path[PATH_MAX];
    *out = NULL;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
        GW_ERROR("--static-dir: %s/%s: path too long", dir, name);
        return GW_EIO;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        GW_ERROR("--static-dir: %s: %s", path, strerror(errno));
        return GW_EIO;
    }
    struct stat st;
    int rc = GW_EIO;
    if (fstat(fd, &st) != 0) {
        GW_ERROR("--static-dir: %s: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        GW_ERROR("--static-dir: %s: not a regular file", path);
    } else if ((uint64_t)st.st_size > GW_STATIC_MAX_BYTES) {
        GW_ERROR("--static-dir: %s: %llu bytes, more than the %u a web file may have", path,
                 (unsigned long long)st.st_size, GW_STATIC_MAX_BYTES);
    } else {
        /* One byte more than the size, to see a file that grew meanwhile. */
        size_t cap = (size_t)st.st_size + 1, got = 0;
        unsigned char *buf = gw_malloc(cap);
        ssize_t n = 0;
        while (got < cap && (n = read(fd, buf + got, cap - got)) != 0) {
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                break;
            got += (size_t)n;
        }
        if (n < 0) {
            GW_ERROR("--static-dir: %s: %s", path, strerror(errno));
            gw_free(buf);
        } else if (got != (size_t)st.st_size) {
            GW_ERROR("--static-dir: %s: changed while being read", path);
            gw_free(buf);
        } else {
            *out = buf;
            *len = got;
            rc = 0;
        }
    }
    close(fd);
    return rc;
}

static int load_dir(const char *dir)
{
    struct stat st;
    const char *problem = NULL;
    if (stat(dir, &st) != 0)
        problem = strerror(errno);
    else if (!S_ISDIR(st.st_mode))
        problem = "not a directory";
    else if (access(dir, R_OK | X_OK) != 0)
        problem = strerror(errno);
    if (problem) {
        GW_ERROR("--static-dir %s: %s", dir, problem);
        return GW_EIO;
    }
    loaded = gw_calloc(gw_n_assets, sizeof(*loaded));
    owned = gw_calloc(gw_n_assets, sizeof(*owned));
    size_t n_read = 0;
    for (size_t i = 0; i < gw_n_assets; i++) {
        loaded[i] = gw_assets[i];
        size_t len = 0;
        if (read_asset(dir, gw_assets[i].name, &owned[i], &len) != 0) {
            gw_static_cleanup();
            return GW_EIO;
        }
        if (owned[i]) {
            loaded[i].data = owned[i];
            loaded[i].len = len;
            n_read++;
        } else {
            GW_WARN("--static-dir %s: no %s, serving the built-in copy", dir, gw_assets[i].name);
        }
    }
    GW_INFO("web files: %zu of %zu from %s", n_read, gw_n_assets, dir);
    return 0;
}

/* PREFIX/share/sockjs-gateway/web when the running binary is PREFIX/bin/sockjs-gateway and
 * that directory exists; false otherwise. The install directories are those of the build
 * (GNUInstallDirs), relative to the prefix; an absolute one pins no prefix to find. */
static bool installed_dir(char *out, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0 || GW_INSTALL_BINDIR[0] == '/' || GW_INSTALL_DATADIR[0] == '/')
        return false;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return false;
    *slash = '\0';
    size_t dir_len = strlen(exe), bin_len = strlen(GW_INSTALL_BINDIR);
    if (dir_len <= bin_len || exe[dir_len - bin_len - 1] != '/' ||
        strcmp(exe + dir_len - bin_len, GW_INSTALL_BINDIR) != 0)
        return false;
    exe[dir_len - bin_len - 1] = '\0';
    struct stat st;
    if ((size_t)snprintf(out, cap, "%s/%s/sockjs-gateway/web", exe, GW_INSTALL_DATADIR) >= cap)
        return false;
    return stat(out, &st) == 0 && S_ISDIR(st.st_mode);
}

int gw_static_init(const char *setting)
{
    gw_static_cleanup();
    if (strcmp(setting, "embedded") == 0) {
        GW_INFO("web files: built in");
        return 0;
    }
    if (strcmp(setting, "auto") != 0)
        return load_dir(setting);
    char dir[PATH_MAX];
    if (!installed_dir(dir, sizeof(dir))) {
        GW_INFO("web files: built in (no installed share/sockjs-gateway/web next to the binary)");
        return 0;
    }
    return load_dir(dir);
}

static void redirect(const struct tp_request *req, const char *location)
{
    struct tp_head h;
    tp_head_start(&h, req, 301, "Moved Permanently", "text/plain; charset=UTF-8", 0);
    tp_head_add(&h, "Location", "%s", location);
    tp_respond(req, &h, location, strlen(location));
}

bool gw_static_handle(const struct tp_request *req, const char *path, size_t len)
{
#define IS(p) (len == sizeof(p) - 1 && memcmp(path, p, len) == 0)
    bool get = strcmp(req->method, "GET") == 0;
    if (IS(GW_STATIC_SOCKJS_PATH) || IS(GW_STATIC_LIBRARY_PATH)) {
        bool stock = IS(GW_STATIC_SOCKJS_PATH);
        const struct gw_asset *a =
            find_asset(stock ? "vendor/sockjs-client-1.6.1.min.js" : "sockjs-gateway.js");
        if (!get || !a)
            return false;
        /* Pages of any origin load them (the cross-origin SockJS setups). The stock client
         * never changes at its URL; the gateway's own library changes with the gateway at the
         * same URL, so browsers revalidate it (a 304 while the ETag, its hash, holds). */
        tp_respond_tagged(req, "application/javascript; charset=UTF-8", a->data, a->len,
                          stock ? TP_LONG_CACHE : TP_REVALIDATE, true);
        return true;
    }
    if (IS("/") || IS("/demo")) {
        if (!get)
            return false;
        redirect(req, "/demo/");
        return true;
    }
    if (IS("/demo/")) {
        const struct gw_asset *a = find_asset("demo.html");
        if (!get || !a)
            return false;
        struct tp_head h;
        tp_head_start(&h, req, 200, "OK", "text/html; charset=UTF-8", TP_NO_CACHE);
        tp_respond(req, &h, a->data, a->len);
        return true;
    }
    return false;
#undef IS
}

#include "gw_error.h"

const char *gw_strerror(int err)
{
    switch (err) {
    case GW_OK:
        return "ok";
    case GW_EAGAIN:
        return "try again";
    case GW_EINVAL:
        return "invalid input";
    case GW_ELIMIT:
        return "limit exceeded";
    case GW_EPROTO:
        return "protocol error";
    case GW_ECLOSED:
        return "closed";
    case GW_EIO:
        return "i/o error";
    case GW_ENOTFOUND:
        return "not found";
    case GW_EDENIED:
        return "denied";
    case GW_EEXPIRED:
        return "expired";
    case GW_ENOTYET:
        return "not yet valid";
    case GW_EUNSUPPORTED:
        return "not supported";
    case GW_EEMPTY:
        return "empty";
    }
    return "unknown error";
}

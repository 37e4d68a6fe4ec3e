/* Result codes: 0 is success, negative values are GW_E* errors. */
#ifndef GW_ERROR_H
#define GW_ERROR_H

enum {
    GW_OK = 0,
    GW_EAGAIN = -1,   /* need more input, or more room to write */
    GW_EINVAL = -2,   /* malformed input */
    GW_ELIMIT = -3,   /* a configured limit was crossed */
    GW_EPROTO = -4,   /* protocol violation by the peer */
    GW_ECLOSED = -5,  /* the object is closed or closing */
    GW_EIO = -6,      /* socket or system error */
    GW_ENOTFOUND = -7 /* no such object */
};

const char *gw_strerror(int err);

#endif

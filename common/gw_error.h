/* Result codes, the one convention for every fallible function of the project: an int (or a
 * byte count) that is 0 (or the count) on success and a negative GW_E* on failure, with
 * gw_strerror() for logs. A function that has more to say (which field of a publish is wrong)
 * also sets a static reason through a `const char **reason` argument. Predicates return bool,
 * lookups a pointer or NULL. */
#ifndef GW_ERROR_H
#define GW_ERROR_H

enum {
    GW_OK = 0,
    GW_EAGAIN = -1,        /* need more input, or more room to write */
    GW_EINVAL = -2,        /* malformed input, or a value that is not acceptable */
    GW_ELIMIT = -3,        /* a configured limit was crossed */
    GW_EPROTO = -4,        /* the peer broke the protocol or format it speaks */
    GW_ECLOSED = -5,       /* the object is closed or closing */
    GW_EIO = -6,           /* socket or system error (errno says which) */
    GW_ENOTFOUND = -7,     /* no such object, or an absent parameter */
    GW_EDENIED = -8,       /* credentials that do not verify (a token's signature) */
    GW_EEXPIRED = -9,      /* past its validity */
    GW_ENOTYET = -10,      /* before its validity */
    GW_EUNSUPPORTED = -11, /* a well-formed request for something not supported */
    GW_EEMPTY = -12,       /* content expected and none given */
    GW_ELAST = GW_EEMPTY,  /* the lowest code; a new one moves it */
};

/* A short lower-case text for err ("invalid input"); "unknown error" for anything else. */
const char *gw_strerror(int err);

#endif

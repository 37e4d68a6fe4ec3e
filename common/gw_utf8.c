/* Incremental UTF-8 validation with a small DFA: each byte maps to a class, and (state, class)
 * to the next state. The states say how many continuation bytes are still due and which range
 * the next one must fall in, so overlong forms, surrogates and code points above U+10FFFF are
 * rejected at the first byte that proves them invalid:
 *
 *   ACCEPT --00..7F--> ACCEPT
 *   ACCEPT --C2..DF--> TAIL1 --80..BF--> ACCEPT
 *   ACCEPT --E1..EC, EE, EF--> TAIL2 --80..BF--> TAIL1
 *   ACCEPT --E0--> E0 --A0..BF--> TAIL1          (no overlong 3-byte forms)
 *   ACCEPT --ED--> ED --80..9F--> TAIL1          (no surrogates U+D800..DFFF)
 *   ACCEPT --F1..F3--> TAIL3 --80..BF--> TAIL2
 *   ACCEPT --F0--> F0 --90..BF--> TAIL2          (no overlong 4-byte forms)
 *   ACCEPT --F4--> F4 --80..8F--> TAIL2          (nothing above U+10FFFF)
 *   any other byte --> REJECT (sticky)           (C0, C1, F5..FF never occur; stray 80..BF)
 */
#include "gw_utf8.h"

#include <string.h>

#include "gw_alloc.h"

/* Byte classes: the columns of the transition table. */
enum {
    C_ASCII,   /* 00..7F */
    C_CONT_LO, /* 80..8F */
    C_CONT_MI, /* 90..9F */
    C_CONT_HI, /* A0..BF */
    C_BAD,     /* C0, C1, F5..FF */
    C_LEAD2,   /* C2..DF */
    C_E0,      /* E0 */
    C_LEAD3,   /* E1..EC, EE, EF */
    C_ED,      /* ED */
    C_F0,      /* F0 */
    C_LEAD4,   /* F1..F3 */
    C_F4,      /* F4 */
    C_COUNT
};

/* States: the rows of the transition table. ACCEPT and REJECT are the public 0 and 1, so the
 * others follow them. */
enum {
    S_ACCEPT = GW_UTF8_ACCEPT,
    S_REJECT = GW_UTF8_REJECT,
    S_TAIL1,
    S_TAIL2,
    S_TAIL3,
    S_E0,
    S_ED,
    S_F0,
    S_F4,
    S_COUNT
};

/* clang-format off */
/* The C_* class of each byte value. */
static const uint8_t byte_class[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,      /* 00..0F */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,      /* 10..1F */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,      /* 20..2F */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,      /* 30..3F */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,      /* 40..4F */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,      /* 50..5F */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,      /* 60..6F */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,      /* 70..7F */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,      /* 80..8F */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,      /* 90..9F */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,      /* A0..AF */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,      /* B0..BF */
    4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,      /* C0..CF */
    5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,      /* D0..DF */
    6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 7,      /* E0..EF */
    9, 10, 10, 10, 11, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,  /* F0..FF */
};

#define R_ S_REJECT
static const uint8_t transitions[S_COUNT][C_COUNT] = {
    /*            00..7F    80..8F   90..9F   A0..BF   bad  C2..DF   E0    E1..EF   ED    F0    F1..F3   F4 */
    [S_ACCEPT] = {S_ACCEPT, R_,      R_,      R_,      R_,  S_TAIL1, S_E0, S_TAIL2, S_ED, S_F0, S_TAIL3, S_F4},
    [S_REJECT] = {R_,       R_,      R_,      R_,      R_,  R_,      R_,   R_,      R_,   R_,   R_,      R_},
    [S_TAIL1] =  {R_,       S_ACCEPT,S_ACCEPT,S_ACCEPT,R_,  R_,      R_,   R_,      R_,   R_,   R_,      R_},
    [S_TAIL2] =  {R_,       S_TAIL1, S_TAIL1, S_TAIL1, R_,  R_,      R_,   R_,      R_,   R_,   R_,      R_},
    [S_TAIL3] =  {R_,       S_TAIL2, S_TAIL2, S_TAIL2, R_,  R_,      R_,   R_,      R_,   R_,   R_,      R_},
    [S_E0] =     {R_,       R_,      R_,      S_TAIL1, R_,  R_,      R_,   R_,      R_,   R_,   R_,      R_},
    [S_ED] =     {R_,       S_TAIL1, S_TAIL1, R_,      R_,  R_,      R_,   R_,      R_,   R_,   R_,      R_},
    [S_F0] =     {R_,       R_,      S_TAIL2, S_TAIL2, R_,  R_,      R_,   R_,      R_,   R_,   R_,      R_},
    [S_F4] =     {R_,       S_TAIL2, R_,      R_,      R_,  R_,      R_,   R_,      R_,   R_,   R_,      R_},
};
#undef R_
/* clang-format on */

#define HIGH_BITS UINT64_C(0x8080808080808080)

uint32_t gw_utf8_feed(uint32_t state, const uint8_t *data, size_t len)
{
    GW_ASSERT(state < S_COUNT);
    size_t i = 0;
    while (i < len) {
        /* Between characters, skip whole words of ASCII: most text is mostly ASCII. memcpy
         * makes the unaligned load legal and compiles to a single move. */
        while (state == S_ACCEPT && len - i >= 8) {
            uint64_t word;
            memcpy(&word, data + i, 8);
            if (word & HIGH_BITS)
                break;
            i += 8;
        }
        /* Then step the DFA through at most one word's worth of bytes before trying the fast
         * path again, so a non-ASCII byte costs one failed word test per 8 bytes, not per byte. */
        size_t stop = len - i > 8 ? i + 8 : len;
        while (i < stop)
            state = transitions[state][byte_class[data[i++]]];
        if (state == S_REJECT)
            break;
    }
    return state;
}

bool gw_utf8_valid(const void *data, size_t len)
{
    return gw_utf8_feed(GW_UTF8_ACCEPT, data, len) == GW_UTF8_ACCEPT;
}

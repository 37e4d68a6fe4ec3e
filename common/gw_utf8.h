/* Incremental UTF-8 validation (RFC 3629: no overlong forms, no surrogates, nothing above
 * U+10FFFF), usable across fragment boundaries. */
#ifndef GW_UTF8_H
#define GW_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { GW_UTF8_ACCEPT = 0, GW_UTF8_REJECT = 1 };

/* Feeds len bytes to a validator in `state` (start with GW_UTF8_ACCEPT) and returns the new
 * state: GW_UTF8_ACCEPT at a character boundary, GW_UTF8_REJECT once invalid (sticky), any
 * other value in the middle of a character. */
uint32_t gw_utf8_feed(uint32_t state, const uint8_t *data, size_t len);

/* Whether data is complete, valid UTF-8. */
bool gw_utf8_valid(const void *data, size_t len);

#endif

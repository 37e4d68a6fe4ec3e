#include "config.h"

#include "gw_version.h"

const char *gw_version(void)
{
    return GW_VERSION;
}

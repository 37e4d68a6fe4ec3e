/* lat_hist: see lat_hist.h. */
#include "lat_hist.h"

static unsigned bucket_of(uint64_t v)
{
    unsigned e;

    if (v < LAT_HIST_SUB)
        return (unsigned)v;
    if (v >> LAT_HIST_TOP_EXP)
        return LAT_HIST_BUCKETS - 1;
    e = 63u - (unsigned)__builtin_clzll(v); /* 7 <= e < 37 */
    /* The top LAT_HIST_SUB_BITS + 1 bits of v: 128..255, i.e. the sub-bucket plus 128. */
    return (e - LAT_HIST_SUB_BITS + 1) * LAT_HIST_SUB + (unsigned)(v >> (e - LAT_HIST_SUB_BITS)) -
           LAT_HIST_SUB;
}

/* Midpoint of a bucket's value range. */
static double bucket_mid(unsigned b)
{
    unsigned oct = b / LAT_HIST_SUB, sub = b % LAT_HIST_SUB;
    double width, low;

    if (oct == 0)
        return (double)b;
    width = (double)(1ull << (oct - 1)); /* 2^(e - 7) with e = oct + 6 */
    low = (double)(LAT_HIST_SUB + sub) * width;
    return low + (width - 1) / 2;
}

void lat_hist_record(struct lat_hist *h, int64_t ns)
{
    uint64_t v = ns < 0 ? 0 : (uint64_t)ns;

    if (ns < 0)
        h->negative++;
    h->counts[bucket_of(v)]++;
    h->n++;
    if (v > h->max_ns)
        h->max_ns = v;
}

void lat_hist_merge(struct lat_hist *into, const struct lat_hist *from)
{
    into->n += from->n;
    into->negative += from->negative;
    if (from->max_ns > into->max_ns)
        into->max_ns = from->max_ns;
    for (unsigned b = 0; b < LAT_HIST_BUCKETS; b++)
        into->counts[b] += from->counts[b];
}

double lat_hist_percentile(const struct lat_hist *h, double p)
{
    uint64_t rank, seen = 0;

    if (!h->n)
        return 0;
    rank = (uint64_t)(p / 100.0 * (double)h->n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > h->n)
        rank = h->n;
    for (unsigned b = 0; b < LAT_HIST_BUCKETS; b++) {
        seen += h->counts[b];
        if (seen >= rank) {
            double mid = bucket_mid(b);
            /* Never report more than the largest sample actually seen. */
            return mid > (double)h->max_ns ? (double)h->max_ns : mid;
        }
    }
    return (double)h->max_ns;
}

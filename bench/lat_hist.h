/*
 * lat_hist: a mergeable latency histogram with log-linear buckets.
 *
 * Values are nanoseconds. Below 128 ns every value has its own bucket; above, each power of two
 * is split into 128 equal buckets, so a bucket is at most 1/128 (0.8 %) of its values wide and
 * a percentile reported as the bucket's midpoint is within 0.4 % of the true value. The range
 * ends at 2^37 ns (137 s); larger values land in the last bucket (max is kept exactly).
 *
 * Fixed size, no pointers: a worker process can write the struct to a pipe as it is and the
 * parent can add it to its own with lat_hist_merge() (same binary on both ends).
 */
#ifndef LAT_HIST_H
#define LAT_HIST_H

#include <stdint.h>

#define LAT_HIST_SUB_BITS 7
#define LAT_HIST_SUB (1u << LAT_HIST_SUB_BITS)
#define LAT_HIST_TOP_EXP 37 /* values >= 2^37 ns go to the last bucket */
#define LAT_HIST_BUCKETS (LAT_HIST_SUB * (LAT_HIST_TOP_EXP - LAT_HIST_SUB_BITS + 1))

struct lat_hist {
    uint64_t n;
    uint64_t max_ns;
    uint64_t negative; /* samples below 0 (clock stepped), recorded as 0 */
    uint64_t counts[LAT_HIST_BUCKETS];
};

void lat_hist_record(struct lat_hist *h, int64_t ns);
void lat_hist_merge(struct lat_hist *into, const struct lat_hist *from);

/* The value at percentile p (0 < p <= 100, nearest rank) in ns; 0 if empty. */
double lat_hist_percentile(const struct lat_hist *h, double p);

#endif

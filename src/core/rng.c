/* Owns the seeded generator (xoshiro256**, seeded through splitmix64). */
#include "core/rng.h"

#include <math.h>

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void dpt_rng_seed(dpt_rng_t *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = dpt_hash3(seed, stream, 0x5eedULL);
    for (int i = 0; i < 4; i++) {
        x = dpt_mix64(x);
        r->s[i] = x;
    }
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3])) r->s[0] = 1; /* all-zero state is fixed point */
}

uint64_t dpt_rng_next(dpt_rng_t *r)
{
    uint64_t *s = r->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t dpt_rng_below(dpt_rng_t *r, uint64_t n)
{
    /* Rejection sampling removes modulo bias. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
        x = dpt_rng_next(r);
    } while (x >= limit);
    return x % n;
}

double dpt_rng_uniform(dpt_rng_t *r)
{
    return (double)(dpt_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

double dpt_rng_normal(dpt_rng_t *r)
{
    double u1 = dpt_rng_uniform(r), u2 = dpt_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void dpt_rng_shuffle_u32(dpt_rng_t *r, uint32_t *idx, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)dpt_rng_below(r, i);
        uint32_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}

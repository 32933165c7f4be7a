/* Seeded, explicit random numbers: a counter-based hash for randomness keyed by
 * (seed, stream, index) and a small xoshiro256** generator for sequential draws.
 * Never rand(): results must not depend on threads or on the C library. */
#ifndef DPT_CORE_RNG_H
#define DPT_CORE_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct dpt_rng {
    uint64_t s[4];
} dpt_rng_t;

/* splitmix64 finaliser: a bijective 64-bit mix. */
static inline uint64_t dpt_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* A 64-bit value that depends only on its three keys (e.g. seed, epoch, sample index). */
static inline uint64_t dpt_hash3(uint64_t a, uint64_t b, uint64_t c)
{
    return dpt_mix64(dpt_mix64(dpt_mix64(a) ^ b) ^ c);
}

/* Uniform float in [0, 1) from 24 high bits. */
static inline float dpt_u64_to_unit_float(uint64_t x)
{
    return (float)(x >> 40) * (1.0f / 16777216.0f);
}

/* Seeds a generator from a 64-bit seed and a stream id (independent sequences). */
void dpt_rng_seed(dpt_rng_t *r, uint64_t seed, uint64_t stream);
uint64_t dpt_rng_next(dpt_rng_t *r);
/* Uniform integer in [0, n), unbiased (n > 0). */
uint64_t dpt_rng_below(dpt_rng_t *r, uint64_t n);
/* Uniform double in [0, 1). */
double dpt_rng_uniform(dpt_rng_t *r);
/* Standard normal (Box-Muller, no cached second value so the state is just s[4]). */
double dpt_rng_normal(dpt_rng_t *r);
/* Fisher-Yates shuffle of idx[0..n). */
void dpt_rng_shuffle_u32(dpt_rng_t *r, uint32_t *idx, size_t n);

#endif

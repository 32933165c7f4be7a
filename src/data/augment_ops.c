/* Owns the image kernels of augmentation (see augment_ops.h): flips, padded crops, the
 * bilinear affine warp behind rotate / translate / scale / affine, and the photometric and
 * mixing ops. Tight loops over contiguous floats that the compiler vectorises; no draws. */
#include "data/augment_ops.h"

#include <math.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif
#include <string.h>

static inline float clamp255(float v)
{
    return v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
}

void dpt_aug_clamp(float *img, size_t n)
{
    for (size_t i = 0; i < n; i++)
        img[i] = clamp255(img[i]);
}

void dpt_aug_hflip(float *img, size_t c, size_t h, size_t w)
{
    for (size_t r = 0; r < c * h; r++) {
        float *row = img + r * w;
        for (size_t a = 0, b = w - 1; a < b; a++, b--) {
            float t = row[a];
            row[a] = row[b];
            row[b] = t;
        }
    }
}

void dpt_aug_vflip(float *img, size_t c, size_t h, size_t w)
{
    for (size_t ch = 0; ch < c; ch++) {
        float *p = img + ch * h * w;
        for (size_t a = 0, b = h - 1; a < b; a++, b--)
            for (size_t x = 0; x < w; x++) {
                float t = p[a * w + x];
                p[a * w + x] = p[b * w + x];
                p[b * w + x] = t;
            }
    }
}

/* numpy's 'reflect' index of i (pad < n, so one reflection suffices). */
static inline size_t reflect_index(ptrdiff_t i, size_t n)
{
    if (i < 0) return (size_t)-i;
    if ((size_t)i >= n) return 2 * (n - 1) - (size_t)i;
    return (size_t)i;
}

void dpt_aug_crop(const float *src, float *dst, size_t c, size_t h, size_t w, size_t pad, size_t dx,
                  size_t dy, int reflect)
{
    const ptrdiff_t ox = (ptrdiff_t)dx - (ptrdiff_t)pad, oy = (ptrdiff_t)dy - (ptrdiff_t)pad;
    /* The columns whose source lies inside the row: [x_lo, x_hi). */
    const ptrdiff_t x_lo = ox < 0 ? -ox : 0;
    const ptrdiff_t x_hi = ox > 0 ? (ptrdiff_t)w - ox : (ptrdiff_t)w;
    for (size_t ch = 0; ch < c; ch++) {
        const float *s = src + ch * h * w;
        float *d = dst + ch * h * w;
        for (size_t y = 0; y < h; y++) {
            ptrdiff_t sy = (ptrdiff_t)y + oy;
            float *o = d + y * w;
            if (!reflect && (sy < 0 || sy >= (ptrdiff_t)h)) {
                memset(o, 0, w * sizeof *o);
                continue;
            }
            const float *row = s + reflect_index(sy, h) * w;
            for (ptrdiff_t x = 0; x < x_lo; x++)
                o[x] = reflect ? row[reflect_index(x + ox, w)] : 0.0f;
            memcpy(o + x_lo, row + x_lo + ox, (size_t)(x_hi - x_lo) * sizeof *o);
            for (ptrdiff_t x = x_hi; x < (ptrdiff_t)w; x++)
                o[x] = reflect ? row[reflect_index(x + ox, w)] : 0.0f;
        }
    }
}

static float snap(double v)
{
    double r = nearbyint(v);
    return (float)(fabs(v - r) < 1e-9 ? r : v);
}

dpt_aug_affine_t dpt_aug_affine_make(size_t h, size_t w, double degrees, double tx, double ty,
                                     double scale, double shear)
{
    /* Forward: out - ctr - t = s R Sh (src - ctr), R counter-clockwise as displayed (y down),
     * Sh = [1 tan(shear); 0 1]. Inverse: src = ctr + (1/s) Sh^-1 R^-1 (out - ctr - t). */
    const double pi = 3.14159265358979323846;
    double a = degrees * pi / 180.0, cs = cos(a), sn = sin(a), t = tan(shear * pi / 180.0);
    double i00 = (cs - t * sn) / scale, i01 = (-sn - t * cs) / scale;
    double i10 = sn / scale, i11 = cs / scale;
    double cx = ((double)w - 1) / 2, cy = ((double)h - 1) / 2;
    double ux = cx + tx, uy = cy + ty;
    dpt_aug_affine_t m = {{snap(i00), snap(i01), snap(cx - i00 * ux - i01 * uy), snap(i10),
                           snap(i11), snap(cy - i10 * ux - i11 * uy)}};
    return m;
}

size_t dpt_aug_warp_scratch(size_t h, size_t w)
{
    /* A one-pixel border of fill around the channel, one more row and one more float: the
     * taps of a coordinate clamped to (w, h) read up to (h + 2) * (w + 2) + w + 2 with weight
     * 0, so every float there must be finite (a fuzz find). */
    return (h + 3) * (w + 2) + 1;
}

/* The warp's row loop, 8 pixels at a time, for as many whole blocks of 8 as the row has;
 * returns the first pixel it left to the scalar loop. The same arithmetic as that loop (its
 * multiply-adds contracted to FMAs as GCC contracts them with -march=native). */
#if defined(__AVX2__) && defined(__FMA__)
static int warp_row_avx2(const float *restrict s, float *restrict o, int w, int ipw, float m0,
                         float m3, float bx, float by, float xmax, float ymax)
{
    const __m256 lo = _mm256_set1_ps(-1.0f), hx = _mm256_set1_ps(xmax), hy = _mm256_set1_ps(ymax);
    const __m256 lane = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256 vm0 = _mm256_set1_ps(m0), vm3 = _mm256_set1_ps(m3);
    const __m256 vbx = _mm256_set1_ps(bx), vby = _mm256_set1_ps(by);
    const __m256i one = _mm256_set1_epi32(1), pitch = _mm256_set1_epi32(ipw);
    int x = 0;
    for (; x + 8 <= w; x += 8) {
        __m256 xs = _mm256_add_ps(_mm256_set1_ps((float)x), lane);
        __m256 sx = _mm256_min_ps(_mm256_max_ps(_mm256_fmadd_ps(vm0, xs, vbx), lo), hx);
        __m256 sy = _mm256_min_ps(_mm256_max_ps(_mm256_fmadd_ps(vm3, xs, vby), lo), hy);
        __m256 fx = _mm256_floor_ps(sx), fy = _mm256_floor_ps(sy);
        __m256 ax = _mm256_sub_ps(sx, fx), ay = _mm256_sub_ps(sy, fy);
        __m256i row = _mm256_mullo_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fy), one), pitch);
        __m256i k = _mm256_add_epi32(row, _mm256_add_epi32(_mm256_cvttps_epi32(fx), one));
        __m256 s00 = _mm256_i32gather_ps(s, k, 4), s01 = _mm256_i32gather_ps(s + 1, k, 4);
        __m256 s10 = _mm256_i32gather_ps(s + ipw, k, 4);
        __m256 s11 = _mm256_i32gather_ps(s + ipw + 1, k, 4);
        __m256 top = _mm256_fmadd_ps(ax, _mm256_sub_ps(s01, s00), s00);
        __m256 bot = _mm256_fmadd_ps(ax, _mm256_sub_ps(s11, s10), s10);
        _mm256_storeu_ps(o + x, _mm256_fmadd_ps(ay, _mm256_sub_ps(bot, top), top));
    }
    return x;
}
#else
static int warp_row_avx2(const float *s, float *o, int w, int ipw, float m0, float m3, float bx,
                         float by, float xmax, float ymax)
{
    (void)s, (void)o, (void)w, (void)ipw, (void)m0, (void)m3, (void)bx, (void)by, (void)xmax;
    (void)ymax;
    return 0; /* no AVX2: the scalar loop does the row */
}
#endif

void dpt_aug_warp(float *img, size_t c, size_t h, size_t w, const dpt_aug_affine_t *map, float fill,
                  float *pad)
{
    const size_t pw = w + 2;
    const int ipw = (int)pw;
    const float m0 = map->m[0], m1 = map->m[1], m2 = map->m[2];
    const float m3 = map->m[3], m4 = map->m[4], m5 = map->m[5];
    const float xmax = (float)w, ymax = (float)h;
    for (size_t ch = 0; ch < c; ch++) {
        float *p = img + ch * h * w;
        for (size_t i = 0; i < pw; i++)
            pad[i] = fill, pad[(h + 1) * pw + i] = fill, pad[(h + 2) * pw + i] = fill;
        pad[(h + 3) * pw] = fill;
        for (size_t y = 0; y < h; y++) {
            float *row = pad + (y + 1) * pw;
            row[0] = fill;
            memcpy(row + 1, p + y * w, w * sizeof *row);
            row[w + 1] = fill;
        }
        const float *restrict s = pad;
        for (size_t y = 0; y < h; y++) {
            const float bx = m1 * (float)y + m2, by = m4 * (float)y + m5;
            float *restrict o = p + y * w;
            /* Coordinates clamped to [-1, w] x [-1, h] read the fill border: outside the image
             * every tap is fill, as with a constant-padded source, with no branch per tap.
             * The four taps are gathers. GCC 12 leaves the scalar loop scalar on this
             * project's Intel CPU (~4.3 us for a 28x28 image); the AVX2 block does 8 pixels
             * with four gathers (~0.7 us; the same floats, docs/performance.md). */
            int x = warp_row_avx2(s, o, (int)w, ipw, m0, m3, bx, by, xmax, ymax);
            for (; x < (int)w; x++) {
                float sx = m0 * (float)x + bx, sy = m3 * (float)x + by;
                sx = sx < -1.0f ? -1.0f : sx > xmax ? xmax : sx;
                sy = sy < -1.0f ? -1.0f : sy > ymax ? ymax : sy;
                float fx = floorf(sx), fy = floorf(sy);
                float ax = sx - fx, ay = sy - fy;
                int k = ((int)fy + 1) * ipw + (int)fx + 1;
                float s00 = s[k], s01 = s[k + 1], s10 = s[k + ipw], s11 = s[k + ipw + 1];
                float top = s00 + ax * (s01 - s00);
                float bot = s10 + ax * (s11 - s10);
                o[x] = top + ay * (bot - top);
            }
        }
    }
}

void dpt_aug_brightness(float *img, size_t n, float delta)
{
    for (size_t i = 0; i < n; i++)
        img[i] = clamp255(img[i] + delta);
}

void dpt_aug_contrast(float *img, size_t n, float factor)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += img[i];
    const float mean = (float)(sum / (double)n);
    for (size_t i = 0; i < n; i++)
        img[i] = clamp255(mean + (img[i] - mean) * factor);
}

void dpt_aug_saturation(float *img, size_t h, size_t w, float factor)
{
    const size_t n = h * w;
    float *r = img, *g = img + n, *b = img + 2 * n;
    for (size_t i = 0; i < n; i++) {
        float grey = 0.299f * r[i] + 0.587f * g[i] + 0.114f * b[i];
        r[i] = clamp255(grey + (r[i] - grey) * factor);
        g[i] = clamp255(grey + (g[i] - grey) * factor);
        b[i] = clamp255(grey + (b[i] - grey) * factor);
    }
}

void dpt_aug_fill_box(float *img, size_t c, size_t h, size_t w, size_t y0, size_t x0, size_t rh,
                      size_t rw, float value)
{
    for (size_t ch = 0; ch < c; ch++)
        for (size_t y = y0; y < y0 + rh; y++)
            for (size_t x = x0; x < x0 + rw; x++)
                img[(ch * h + y) * w + x] = value;
}

void dpt_aug_paste_box(float *img, const float *src, size_t c, size_t h, size_t w, size_t y0,
                       size_t x0, size_t rh, size_t rw)
{
    for (size_t ch = 0; ch < c; ch++)
        for (size_t y = y0; y < y0 + rh; y++)
            memcpy(img + (ch * h + y) * w + x0, src + (ch * h + y) * w + x0, rw * sizeof *img);
}

void dpt_aug_mix(float *img, const float *other, size_t n, float lam)
{
    const float mu = 1.0f - lam;
    for (size_t i = 0; i < n; i++)
        img[i] = lam * img[i] + mu * other[i];
}

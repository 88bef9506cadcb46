/*
 * quant_amx_x16.h: the x16 q8_0 / q4_0 product (quant.h's gemm_x16) on AMX
 * tiles, written once against six tile operations its includer defines:
 *   AMX_CONFIG(cfg)            load a tile configuration (amx_tilecfg *)
 *   AMX_RELEASE()              return the tiles to the init state
 *   AMX_ZERO(t)                zero tile t
 *   AMX_LOAD(t, base, stride)  tile t's rows from base, stride bytes apart
 *   AMX_DPBSUD(c, a, b)        c += a (signed bytes) x b (unsigned bytes)
 *   AMX_STORE(t, base, stride) tile t's rows to base, stride bytes apart
 * and the name AMX_X16_FN of the function it defines (without AMX_X16_FN:
 * only the configuration type). quant_amx.c maps the
 * operations to the AMX instructions; tests/test_amx_tiles.c maps them to a
 * plain-C emulation of the same instructions, so the tiling, layouts and
 * scaling below run (and are checked against the VNNI kernel) on CPUs
 * without AMX. The includer compiles it with AVX-512 (the float epilogue).
 *
 * Why it fits the x16 layout as it is: a packed q8_0 block of one group is
 * 8 vectors of 64 bytes, vector v lane j = row j's values 4v..4v+3 (+128):
 * exactly an AMX B tile of 8 rows x 64 bytes (K/4 rows of 16 dwords). The
 * activations' block b of 16 tokens, 32 bytes each, xq_stride apart, is an
 * A tile of 16 rows x 32 bytes loaded in place. TDPBSUD (signed A, unsigned
 * B) gives, per token and row, the sum the VNNI kernel's vpdpbusd gives;
 * the block's correction, activation scale and weight scales are then
 * applied in the same order as the VNNI panel kernel, so the two produce
 * the same floats. q4_0 blocks are split into their nibbles first (low
 * nibbles = values 0..15 = B rows 0..3, high = 16..31 = rows 4..7).
 *
 * Per step: 2 token tiles x 2 groups (tiles 0-1: A, 2-3: B, 4-7: C), one
 * block; the C tiles are stored and scaled into float accumulators in L1.
 * Requires n % 16 == 0 (full token tiles; the caller runs the rest on the
 * VNNI kernel).
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "cllm/formats/ggml_types.h"

#ifndef CLLM_QUANT_AMX_X16_TYPES
#define CLLM_QUANT_AMX_X16_TYPES
/* LDTILECFG's 64-byte operand, palette 1. */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16]; /* bytes per row of each tile */
    uint8_t rows[16];
} amx_tilecfg;

#define AMX_TOK 16 /* tokens per A / C tile */

/* dst[16][16] int32 = A tile a x B tile b, through C tile c. */
#define AMX_X16_PRODUCT(c, a, b, dst) \
    do {                              \
        AMX_ZERO(c);                  \
        AMX_DPBSUD(c, a, b);          \
        AMX_STORE(c, dst, 64);        \
    } while (0)
#endif

#ifdef AMX_X16_FN /* included only for the types above when not defined */

static void AMX_X16_FN(uint32_t type, const void *Pv, int groups, int64_t K, const void *xqv, size_t xs,
                       const float *dy, const int32_t *corr, int n, float *out, size_t ldo) {
    const uint8_t *P = Pv, *xq = xqv;
    const int q4 = type == CLLM_GGML_Q4_0;
    const int64_t nb = K / 32;
    const size_t qb = q4 ? 256 : 512, sb = ((size_t)nb * 32 + 63) / 64 * 64, gs = sb + (size_t)nb * qb;
    amx_tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 2; t++) cfg.rows[t] = AMX_TOK, cfg.colsb[t] = 32;      /* A: 16 tokens x one block */
    for (int t = 2; t < 4; t++) cfg.rows[t] = 8, cfg.colsb[t] = 64;            /* B: 8 x (16 rows x 4 values) */
    for (int t = 4; t < 8; t++) cfg.rows[t] = AMX_TOK, cfg.colsb[t] = 64;      /* C: 16 tokens x 16 rows, int32 */
    AMX_CONFIG(&cfg);
    _Alignas(64) int32_t c[4][AMX_TOK * 16];
    _Alignas(64) uint8_t w4[2][512];
    _Alignas(64) float acc[4][AMX_TOK * 16]; /* [2 * token tile + group][token * 16 + row] */
    for (int t0 = 0; t0 < n; t0 += 2 * AMX_TOK) {
        const int nt = n - t0 >= 2 * AMX_TOK ? 2 : 1;
        for (int g0 = 0; g0 < groups; g0 += 2) {
            const int ng = groups - g0 >= 2 ? 2 : 1;
            memset(acc, 0, sizeof acc);
            for (int64_t b = 0; b < nb; b++) {
                AMX_LOAD(0, xq + (size_t)t0 * xs + (size_t)b * CLLM_Q8_0_BYTES + 2, xs);
                if (nt > 1) AMX_LOAD(1, xq + (size_t)(t0 + AMX_TOK) * xs + (size_t)b * CLLM_Q8_0_BYTES + 2, xs);
                for (int gi = 0; gi < ng; gi++) {
                    const uint8_t *q = P + (size_t)(g0 + gi) * gs + sb + (size_t)b * qb;
                    if (q4) {
                        const __m512i m = _mm512_set1_epi8(0x0F);
                        for (int h = 0; h < 4; h++) {
                            const __m512i v = _mm512_load_si512((const void *)(q + 64 * h));
                            _mm512_store_si512((void *)(w4[gi] + 64 * h), _mm512_and_si512(v, m));
                            _mm512_store_si512((void *)(w4[gi] + 64 * (h + 4)),
                                               _mm512_and_si512(_mm512_srli_epi16(v, 4), m));
                        }
                        q = w4[gi];
                    }
                    if (gi == 0) AMX_LOAD(2, q, 64);
                    else AMX_LOAD(3, q, 64);
                }
                /* C tile 4 + 2 ti + gi = token tile ti x group gi (tile numbers are immediates) */
                AMX_X16_PRODUCT(4, 0, 2, c[0]);
                if (ng > 1) AMX_X16_PRODUCT(5, 0, 3, c[1]);
                if (nt > 1) AMX_X16_PRODUCT(6, 1, 2, c[2]);
                if (nt > 1 && ng > 1) AMX_X16_PRODUCT(7, 1, 3, c[3]);
                for (int gi = 0; gi < ng; gi++) {
                    const uint8_t *S = P + (size_t)(g0 + gi) * gs;
                    const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(const void *)(S + 32 * b)));
                    for (int ti = 0; ti < nt; ti++) {
                        const int ci = 2 * ti + gi;
                        for (int t = 0; t < AMX_TOK; t++) {
                            const size_t tok = (size_t)(t0 + AMX_TOK * ti + t);
                            const __m512i s = _mm512_add_epi32(_mm512_load_si512((const void *)(c[ci] + 16 * t)),
                                                               _mm512_set1_epi32(corr[tok * (size_t)nb + (size_t)b]));
                            float *a = acc[ci] + 16 * t;
                            _mm512_store_ps(a, _mm512_fmadd_ps(_mm512_cvtepi32_ps(s),
                                                               _mm512_mul_ps(dw, _mm512_set1_ps(dy[tok * (size_t)nb + (size_t)b])),
                                                               _mm512_load_ps(a)));
                        }
                    }
                }
            }
            for (int ti = 0; ti < nt; ti++)
                for (int gi = 0; gi < ng; gi++)
                    for (int t = 0; t < AMX_TOK; t++)
                        memcpy(out + (size_t)(t0 + AMX_TOK * ti + t) * ldo + (size_t)(g0 + gi) * 16,
                               acc[2 * ti + gi] + 16 * t, 16 * sizeof(float));
        }
    }
    AMX_RELEASE();
}
#endif

/*
 * quant_amx.c: the x16 q8_0 / q4_0 prompt product on AMX-INT8 tiles
 * (quant_amx_x16.h over the real tile instructions), for the "amx" table
 * of quant.c: CPUs with AMX-TILE + AMX-INT8 whose kernel granted the
 * tile-data permission (dispatch.c asks for it).
 *
 * Does: run full 16-token tiles through the AMX kernel and the tokens left
 * over (and single-token decoding, where a tile would be one row) through
 * the VNNI kernel; both give the same floats (quant_amx_x16.h).
 * Does not: run on the project machine (no AMX there): its logic is checked
 * there through tests/test_amx_tiles.c's emulation of the instructions; on
 * an AMX machine test_quant checks this table like every other.
 */
#include <immintrin.h>

#include "quant_internal.h"

#define AMX_CONFIG(cfg) _tile_loadconfig(cfg)
#define AMX_RELEASE() _tile_release()
#define AMX_ZERO(t) _tile_zero(t)
#define AMX_LOAD(t, base, stride) _tile_loadd(t, base, (long)(stride))
#define AMX_DPBSUD(c, a, b) _tile_dpbsud(c, a, b)
#define AMX_STORE(t, base, stride) _tile_stored(t, base, (long)(stride))
#define AMX_X16_FN amx_gemm_x16_tiles
#include "quant_amx_x16.h"

void cllm_quant_gemm_x16_amx(uint32_t type, const void *P, int groups, int64_t K, const void *xq, size_t xq_stride,
                             const float *dy, const int32_t *corr, int n, float *out, size_t ld_out) {
    const int tiled = n / AMX_TOK * AMX_TOK, nb = (int)(K / 32);
    if (tiled > 0) amx_gemm_x16_tiles(type, P, groups, K, xq, xq_stride, dy, corr, tiled, out, ld_out);
    if (tiled < n)
        cllm_quant_gemm_x16_vnni_avx512(type, P, groups, K, (const uint8_t *)xq + (size_t)tiled * xq_stride, xq_stride,
                                        dy + (size_t)tiled * nb, corr + (size_t)tiled * nb, n - tiled,
                                        out + (size_t)tiled * ld_out, ld_out);
}

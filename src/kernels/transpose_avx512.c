/*
 * transpose_avx512.c: the float transpose behind oneDNN's few-row GEMM route
 * (gemm_onednn.c computes T = B A^T and copies C = T^T): 16 x 16 tiles
 * transposed in registers (unpack, in-lane shuffle, two 128-bit lane
 * shuffles), ragged edges element by element. Compiled with AVX-512 flags
 * (file suffix); called only when the CPU has AVX-512.
 * A scalar 16 x 16 tile copy was 4-5% of a 128-token prompt chunk.
 */
#include <immintrin.h>

#include "kernels_internal.h"

static void tile16(float *dst, size_t ldd, const float *src, size_t lds) {
    __m512 r[16], t[16], u[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + (size_t)i * lds);
    /* t[2k], t[2k+1]: rows 2k, 2k+1 interleaved, columns 4l+0..1 and 4l+2..3 of each 128-bit lane l */
    for (int k = 0; k < 8; k++) {
        t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
    /* u[4k+e], lane l: rows 4k..4k+3 at column 4l+e */
    for (int k = 0; k < 4; k++) {
        u[4 * k + 0] = _mm512_shuffle_ps(t[4 * k], t[4 * k + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * k + 1] = _mm512_shuffle_ps(t[4 * k], t[4 * k + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[4 * k + 2] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * k + 3] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    /* output row 4l+e = lane l of u[e], u[4+e], u[8+e], u[12+e] */
    for (int e = 0; e < 4; e++) {
        const __m512 a = _mm512_shuffle_f32x4(u[e], u[4 + e], 0x88), b = _mm512_shuffle_f32x4(u[e], u[4 + e], 0xDD);
        const __m512 c = _mm512_shuffle_f32x4(u[8 + e], u[12 + e], 0x88);
        const __m512 d = _mm512_shuffle_f32x4(u[8 + e], u[12 + e], 0xDD);
        _mm512_storeu_ps(dst + (size_t)e * ldd, _mm512_shuffle_f32x4(a, c, 0x88));
        _mm512_storeu_ps(dst + (size_t)(4 + e) * ldd, _mm512_shuffle_f32x4(b, d, 0x88));
        _mm512_storeu_ps(dst + (size_t)(8 + e) * ldd, _mm512_shuffle_f32x4(a, c, 0xDD));
        _mm512_storeu_ps(dst + (size_t)(12 + e) * ldd, _mm512_shuffle_f32x4(b, d, 0xDD));
    }
}

void cllm_kernels_transpose_avx512(float *dst, size_t ldd, const float *src, size_t lds, int rows, int cols) {
    const int r16 = rows / 16 * 16, c16 = cols / 16 * 16;
    for (int i = 0; i < r16; i += 16)
        for (int j = 0; j < c16; j += 16) tile16(dst + (size_t)j * ldd + (size_t)i, ldd, src + (size_t)i * lds + (size_t)j, lds);
    for (int i = 0; i < rows; i++) /* the edges: columns past c16 of every row, rows past r16 */
        for (int j = i < r16 ? c16 : 0; j < cols; j++) dst[(size_t)j * ldd + (size_t)i] = src[(size_t)i * lds + (size_t)j];
}

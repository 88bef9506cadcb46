/*
 * test_amx_tiles.c: the AMX x16 kernel (src/kernels/quant_amx_x16.h) on an
 * emulation of the tile operations it uses, written here from the
 * instructions' definitions (LDTILECFG, TILEZERO, TILELOADD, TDPBSUD,
 * TILESTORED, TILERELEASE; palette 1), so its tiling, layouts, nibble split
 * and scaling are checked on CPUs without AMX (the project machine). The
 * emulator also counts every operation whose shapes the real instruction
 * would refuse. Checked: the emulated kernel gives the VNNI x16 kernel's
 * floats bit for bit (integer sums are exact, the scaling runs in the same
 * order) for q8_0 and q4_0, odd group and token-tile counts, several K, a
 * padded output that must stay untouched; and the emulator's TDPBSUD on a
 * hand case (signed A, unsigned B). Needs AVX-512 VNNI (the kernel's float
 * epilogue, the kernel compared); without it only the hand case runs. On a
 * CPU with AMX, test_quant runs the real instructions (the "amx" table).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/formats/ggml_types.h"
#include "cllm/kernels/kernels.h"
#include "cllm/kernels/quant.h"
#include "cllm/core/rng.h"
#include "test.h"

/* ---- the emulated tiles -------------------------------------------------- */

static struct {
    int rows, colsb;
    uint8_t d[16][64];
} emu[8];
static int emu_faults; /* operations the real instruction would refuse (#UD / #GP) */

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")
#include "../src/kernels/quant_amx_x16.h" /* amx_tilecfg, AMX_TOK (the kernel itself below) */

static void emu_config(const amx_tilecfg *c) {
    emu_faults += c->palette != 1;
    for (int t = 0; t < 8; t++) {
        emu[t].rows = c->rows[t], emu[t].colsb = c->colsb[t];
        emu_faults += c->rows[t] > 16 || c->colsb[t] > 64;
        memset(emu[t].d, 0, sizeof emu[t].d);
    }
}

static void emu_zero(int t) { memset(emu[t].d, 0, sizeof emu[t].d); }

static void emu_load(int t, const void *base, size_t stride) {
    emu_faults += emu[t].rows == 0;
    memset(emu[t].d, 0, sizeof emu[t].d);
    for (int r = 0; r < emu[t].rows; r++) memcpy(emu[t].d[r], (const uint8_t *)base + (size_t)r * stride, (size_t)emu[t].colsb);
}

static void emu_store(int t, void *base, size_t stride) {
    for (int r = 0; r < emu[t].rows; r++) memcpy((uint8_t *)base + (size_t)r * stride, emu[t].d[r], (size_t)emu[t].colsb);
}

/* TDPBSUD c, a, b: c.row[m].dword[n] += sum over k < a.colsb / 4 of the four
 * products of a.row[m]'s bytes 4k..4k+3 (signed) and b.row[k]'s bytes
 * 4n..4n+3 (unsigned). Shapes: a.colsb = 4 b.rows, c.colsb = b.colsb,
 * c.rows = a.rows. */
static void emu_dpbsud(int c, int a, int b) {
    if (emu[a].colsb % 4 || emu[a].colsb / 4 != emu[b].rows || emu[c].colsb != emu[b].colsb ||
        emu[c].rows != emu[a].rows) {
        emu_faults++;
        return;
    }
    for (int m = 0; m < emu[c].rows; m++)
        for (int n = 0; n < emu[c].colsb / 4; n++) {
            int32_t acc;
            memcpy(&acc, emu[c].d[m] + 4 * n, 4);
            for (int k = 0; k < emu[a].colsb / 4; k++)
                for (int i = 0; i < 4; i++) acc += (int8_t)emu[a].d[m][4 * k + i] * (int32_t)emu[b].d[k][4 * n + i];
            memcpy(emu[c].d[m] + 4 * n, &acc, 4);
        }
}

#define AMX_CONFIG(cfg) emu_config(cfg)
#define AMX_RELEASE() ((void)0)
#define AMX_ZERO(t) emu_zero(t)
#define AMX_LOAD(t, base, stride) emu_load(t, base, stride)
#define AMX_DPBSUD(c, a, b) emu_dpbsud(c, a, b)
#define AMX_STORE(t, base, stride) emu_store(t, base, stride)
#define AMX_X16_FN emulated_gemm_x16
#include "../src/kernels/quant_amx_x16.h"
#pragma GCC pop_options

/* ---- tests ----------------------------------------------------------------- */

static void test_amx_tiles_emulator_dpbsud_signs(void) {
    amx_tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 3; t++) cfg.rows[t] = 1, cfg.colsb[t] = 4;
    emu_faults = 0;
    emu_config(&cfg);
    const int8_t a[4] = {-128, 127, -1, 2};
    const uint8_t b[4] = {255, 255, 3, 4};
    int32_t c = 7;
    emu_load(0, a, 4);
    emu_load(1, b, 4);
    emu_load(2, &c, 4);
    emu_dpbsud(2, 0, 1);
    emu_store(2, &c, 4);
    CHECK(c == 7 - 128 * 255 + 127 * 255 - 3 + 8, "TDPBSUD emulation: %d", c);
    cfg.rows[1] = 2; /* b.rows != a.colsb / 4 */
    emu_config(&cfg);
    emu_dpbsud(2, 0, 1);
    CHECK(emu_faults == 1, "a shape TDPBSUD refuses must count as a fault (%d)", emu_faults);
}

static void test_amx_tiles_kernel_matches_vnni(void) {
    const cllm_quant_kernels *vnni = cllm_quant_kernels_backend(CLLM_QUANT_AVX512_VNNI);
    if (!vnni || !vnni->gemm_x16) {
        printf("  (no AVX-512 VNNI on this CPU: the emulated AMX kernel is not run)\n");
        return;
    }
    cllm_rng r;
    cllm_rng_seed(&r, 31);
    const uint32_t types[2] = {CLLM_GGML_Q8_0, CLLM_GGML_Q4_0};
    const int shapes[5][3] = {{1, 16, 32}, {3, 48, 800}, {2, 32, 96}, {5, 16, 3072}, {4, 64, 256}}; /* groups, n, K */
    for (int sh = 0; sh < 5; sh++) {
        const int groups = shapes[sh][0], rows = 16 * groups, n = shapes[sh][1], K = shapes[sh][2], nb = K / 32;
        const size_t xs = cllm_quant_q8_0_bytes(K) + 6, ldo = (size_t)rows + 5;
        float *w = malloc(sizeof(float) * (size_t)rows * K), *x = malloc(sizeof(float) * (size_t)n * K);
        float *want = malloc(sizeof(float) * (size_t)n * ldo), *got = malloc(sizeof(float) * (size_t)n * ldo);
        float *dy = malloc(sizeof(float) * (size_t)n * nb);
        int32_t *corr = malloc(sizeof(int32_t) * (size_t)n * nb);
        uint8_t *xq = calloc((size_t)n, xs);
        for (int i = 0; i < rows * K; i++) w[i] = 0.05f * (2.0f * cllm_rng_float(&r) - 1.0f);
        for (int i = 0; i < n * K; i++) x[i] = 2.0f * cllm_rng_float(&r) - 1.0f;
        for (int t = 0; t < n; t++) vnni->quantize_q8_0(x + (size_t)t * K, xq + (size_t)t * xs, K);
        for (int ty = 0; ty < 2; ty++) {
            const int32_t cw = types[ty] == CLLM_GGML_Q4_0 ? 8 : 128; /* the layout's weight offset */
            for (int t = 0; t < n; t++)
                for (int b = 0; b < nb; b++) {
                    const uint8_t *blk = xq + (size_t)t * xs + (size_t)b * CLLM_Q8_0_BYTES;
                    uint16_t h;
                    memcpy(&h, blk, 2);
                    int32_t sum = 0;
                    for (int i = 0; i < 32; i++) sum += (int8_t)blk[2 + i];
                    dy[(size_t)t * nb + b] = cllm_fp16_to_fp32(h);
                    corr[(size_t)t * nb + b] = -cw * sum;
                }
            size_t rb = 0;
            cllm_ggml_row_size(types[ty], K, &rb);
            uint8_t *wq = malloc(rb * (size_t)rows);
            for (int i = 0; i < rows; i++) cllm_ggml_from_f32(types[ty], w + (size_t)i * K, wq + (size_t)i * rb, K);
            const size_t pb = cllm_quant_x16_bytes(types[ty], groups, K);
            uint8_t *P = aligned_alloc(64, (pb + 63) / 64 * 64);
            cllm_quant_x16_pack(types[ty], wq, rb, groups, K, P);
            for (size_t i = 0; i < (size_t)n * ldo; i++) want[i] = got[i] = -12345.0f;
            vnni->gemm_x16(types[ty], P, groups, K, xq, xs, dy, corr, n, want, ldo);
            emu_faults = 0;
            emulated_gemm_x16(types[ty], P, groups, K, xq, xs, dy, corr, n, got, ldo);
            int differ = 0, pad = 0;
            for (int t = 0; t < n; t++) {
                differ += memcmp(got + (size_t)t * ldo, want + (size_t)t * ldo, sizeof(float) * (size_t)rows) != 0;
                for (size_t i = (size_t)rows; i < ldo; i++) pad += got[(size_t)t * ldo + i] != -12345.0f;
            }
            CHECK(emu_faults == 0, "%s groups=%d n=%d K=%d: %d tile operations the hardware would refuse",
                  cllm_ggml_type_name(types[ty]), groups, n, K, emu_faults);
            CHECK(differ == 0 && pad == 0, "%s groups=%d n=%d K=%d: %d token rows differ from VNNI, %d padding written",
                  cllm_ggml_type_name(types[ty]), groups, n, K, differ, pad);
            free(P), free(wq);
        }
        free(w), free(x), free(want), free(got), free(dy), free(corr), free(xq);
    }
}

int main(void) {
    TEST_RUN(test_amx_tiles_emulator_dpbsud_signs);
    TEST_RUN(test_amx_tiles_kernel_matches_vnni);
    return test_finish();
}

/*
 * quant_ref.c: byte-for-byte comparison of cllm's f16, bf16, q8_0, q4_0,
 * q4_1, q5_0, q5_1, q2_K .. q6_K and q8_K encoders with ggml's own reference
 * functions, loaded with dlopen from a libggml-base.so (the one node-llama-cpp
 * ships, or /tmp/llama-src/build/bin's), and of the decoders with ggml's
 * dequantize_row_* on the same blocks (bit-identical floats).
 *
 * Not part of `make test`; run by tests/interop/run.sh.
 * Usage: quant_ref /path/to/libggml-base.so   ("N passed, N failed" at the end)
 */
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/formats/ggml_types.h"

typedef void (*quant_fn)(const float *x, void *y, int64_t k);    /* quantize_row_*_ref */
typedef void (*deq_fn)(const void *x, float *y, int64_t k);      /* dequantize_row_* */
typedef void (*conv_fn)(const float *x, uint16_t *y, int64_t n); /* ggml_fp32_to_*_row */

static uint32_t rng = 2463534242u;
static float rnd(void) {
    rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
    return (float)(rng >> 8) / 16777216.0f - 0.5f;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: quant_ref libggml-base.so\n"); return 2; }
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    quant_fn q8 = (quant_fn)dlsym(h, "quantize_row_q8_0_ref");
    quant_fn q4 = (quant_fn)dlsym(h, "quantize_row_q4_0_ref");
    conv_fn f16 = (conv_fn)dlsym(h, "ggml_fp32_to_fp16_row");
    conv_fn bf16 = (conv_fn)dlsym(h, "ggml_fp32_to_bf16_row_ref");
    if (!q8 || !q4 || !f16 || !bf16) { fprintf(stderr, "missing ggml symbols\n"); return 1; }
    enum { N = 256 * 512 };
    float *x = malloc(N * sizeof *x);
    uint8_t *a = malloc(N * 4), *b = malloc(N * 4);
    /* random values at many scales, plus exact ties, zeros, tiny and huge values */
    for (int i = 0; i < N; i++) {
        int blk = i / 32;
        float scale = ldexpf(1.0f, (blk % 40) - 20);
        x[i] = rnd() * scale;
        if (blk % 7 == 3) x[i] = (float)((i % 17) - 8) * 0.5f * scale; /* halfway points */
        if (blk % 11 == 5) x[i] = 0.0f;
        if (blk % 13 == 6 && i % 5 == 0) x[i] = -x[i] * 1e4f;
    }
    int passed = 0, failed = 0;
    struct { const char *name; uint32_t type; size_t bytes; } cases[] = {
        {"q8_0", CLLM_GGML_Q8_0, (size_t)N / 32 * 34}, {"q4_0", CLLM_GGML_Q4_0, (size_t)N / 32 * 18},
        {"f16", CLLM_GGML_F16, (size_t)N * 2}, {"bf16", CLLM_GGML_BF16, (size_t)N * 2}};
    for (int c = 0; c < 4; c++) {
        memset(a, 0, N * 4), memset(b, 0, N * 4);
        cllm_ggml_from_f32(cases[c].type, x, a, N);
        if (c == 0) q8(x, b, N);
        else if (c == 1) q4(x, b, N);
        else if (c == 2) f16(x, (uint16_t *)b, N);
        else bf16(x, (uint16_t *)b, N);
        size_t diff = 0, first = (size_t)-1;
        for (size_t k = 0; k < cases[c].bytes; k++)
            if (a[k] != b[k]) { diff++; if (first == (size_t)-1) first = k; }
        if (diff) failed++; else passed++;
        printf("%s %s: %zu of %zu bytes differ%s\n", diff ? "FAIL  " : "ok    ", cases[c].name, diff,
               cases[c].bytes, diff ? " (see first)" : "");
        if (diff) printf("       first at byte %zu: cllm %02x ggml %02x\n", first, a[first], b[first]);
    }
    /* the other block types: encoder bytes, then decoder floats on ggml's blocks */
    struct { const char *name; uint32_t type; } more[] = {
        {"q4_1", CLLM_GGML_Q4_1}, {"q5_0", CLLM_GGML_Q5_0}, {"q5_1", CLLM_GGML_Q5_1}, {"q2_K", CLLM_GGML_Q2_K},
        {"q3_K", CLLM_GGML_Q3_K}, {"q4_K", CLLM_GGML_Q4_K}, {"q5_K", CLLM_GGML_Q5_K}, {"q6_K", CLLM_GGML_Q6_K},
        {"q8_K", CLLM_GGML_Q8_K}};
    float *fa = malloc(N * sizeof *fa), *fb = malloc(N * sizeof *fb);
    for (size_t c = 0; c < sizeof more / sizeof more[0]; c++) {
        char sym[64];
        snprintf(sym, sizeof sym, "quantize_row_%s_ref", more[c].name);
        quant_fn ref = (quant_fn)dlsym(h, sym);
        snprintf(sym, sizeof sym, "dequantize_row_%s", more[c].name);
        deq_fn deq = (deq_fn)dlsym(h, sym);
        if (!ref || !deq) { printf("FAIL   %s: ggml symbols missing\n", more[c].name); failed++; continue; }
        size_t bytes = 0;
        cllm_ggml_row_size(more[c].type, N, &bytes);
        memset(a, 0, N * 4), memset(b, 0, N * 4);
        if (more[c].type == CLLM_GGML_Q8_K) cllm_ggml_quantize_q8_K(x, a, N);
        else cllm_ggml_from_f32(more[c].type, x, a, N);
        ref(x, b, N);
        size_t diff = 0, first = (size_t)-1;
        for (size_t k = 0; k < bytes; k++)
            if (a[k] != b[k]) { diff++; if (first == (size_t)-1) first = k; }
        if (diff) failed++; else passed++;
        printf("%s %s: %zu of %zu bytes differ\n", diff ? "FAIL  " : "ok    ", more[c].name, diff, bytes);
        if (diff) printf("       first at byte %zu (block %zu): cllm %02x ggml %02x\n", first,
                         first / cllm_ggml_type_get(more[c].type)->type_size, a[first], b[first]);
        if (more[c].type == CLLM_GGML_Q8_K) continue; /* no cllm decoder: an activation type */
        deq(b, fb, N);
        cllm_ggml_to_f32(more[c].type, b, fa, N);
        size_t fd = 0;
        for (size_t k = 0; k < N; k++) fd += memcmp(&fa[k], &fb[k], 4) != 0;
        if (fd) failed++; else passed++;
        printf("%s %s decode: %zu of %d values differ\n", fd ? "FAIL  " : "ok    ", more[c].name, fd, N);
    }
    free(fa), free(fb);
    free(x), free(a), free(b);
    dlclose(h);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

/*
 * quant_ref.c: byte-for-byte comparison of cllm's f16, bf16, q8_0 and q4_0
 * encoders with ggml's own reference functions, loaded with dlopen from the
 * libggml-base.so that node-llama-cpp ships (the llama.cpp build it runs).
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
    enum { N = 32 * 4096 };
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
    free(x), free(a), free(b);
    dlclose(h);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

/*
 * bench_layers.c: prints JSON with the time of each layer's forward and
 * backward at the GPT-2 124M training shape (B=4, T=64, C=768, NH=12, HS=64,
 * V=50257), per call, with 1 and 2 threads, to show which non-GEMM layers
 * matter next to the GEMMs (bench_gemm.c). Best of `reps` runs.
 * Usage: bench_layers [reps]   (default 5)
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cllm/kernels/kernels.h"
#include "cllm/layers/layers.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *buf(size_t n, unsigned seed) {
    float *x = malloc(n * sizeof *x);
    if (!x) {
        fprintf(stderr, "bench_layers: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) x[i] = (float)(((i * 2654435761u + seed) >> 8) % 2001) * 1e-3f - 1.0f;
    return x;
}

#define TIME(label, stmt)                                                        \
    do {                                                                         \
        double best = 1e300;                                                     \
        for (int r = 0; r < reps + 1; r++) {                                     \
            double t0 = now();                                                   \
            stmt;                                                                \
            double dt = now() - t0;                                              \
            if (r > 0 && dt < best) best = dt;                                   \
        }                                                                        \
        printf("%s    {\"layer\": \"%s\", \"threads\": %d, \"ms\": %.3f}", first ? "" : ",\n", \
               label, threads, best * 1e3);                                      \
        first = 0;                                                               \
    } while (0)

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    if (reps <= 0) {
        fprintf(stderr, "usage: bench_layers [reps > 0]\n");
        return 2;
    }
    const int B = 4, T = 64, C = 768, NH = 12, HS = 64, V = 50257, N = B * T;
    size_t nq = (size_t)N * 3 * C, na = (size_t)B * NH * T * T;
    float *x = buf((size_t)N * C, 1), *y = buf((size_t)N * C, 2), *dy = buf((size_t)N * C, 3);
    float *dx = buf((size_t)N * C, 4), *w = buf(C, 5), *b = buf(C, 6), *dw = buf(C, 7),
          *db = buf(C, 8);
    float *mean = buf(N, 9), *rstd = buf(N, 10);
    float *qkv = buf(nq, 11), *dqkv = buf(nq, 12), *att = buf(na, 13), *datt = buf(na, 14);
    float *h = buf((size_t)N * 4 * C, 15), *hg = buf((size_t)N * 4 * C, 16),
          *dh = buf((size_t)N * 4 * C, 17);
    float *logits = buf((size_t)N * V, 18), *dlogits = buf((size_t)N * V, 19),
          *losses = buf(N, 20), *rmax = buf(N, 21), *rsum = buf(N, 22);
    int32_t *targets = malloc((size_t)N * sizeof *targets);
    for (int i = 0; i < N; i++) targets[i] = (i * 7919) % V;
    printf("{\n  \"bench\": \"layers_gpt2_124m\",\n  \"B\": %d, \"T\": %d, \"C\": %d, \"V\": %d,\n"
           "  \"wait_policy\": \"%s\",\n  \"results\": [\n",
           B, T, C, V, cllm_kernels_wait_policy());
    int first = 1;
    for (int threads = 1; threads <= 2; threads++) {
        cllm_kernels_set_threads(threads);
        TIME("layernorm_fwd", cllm_layernorm_forward(y, mean, rstd, x, w, b, N, C, 1e-5f));
        TIME("layernorm_bwd", cllm_layernorm_backward(dx, dw, db, dy, x, w, mean, rstd, N, C));
        TIME("attention_fwd", cllm_attention_forward(y, att, qkv, B, T, NH, NH, HS));
        TIME("attention_bwd", cllm_attention_backward(dqkv, datt, dy, att, qkv, B, T, NH, NH, HS));
        TIME("gelu_fwd", cllm_gelu_forward(hg, h, (size_t)N * 4 * C));
        TIME("gelu_bwd", cllm_gelu_backward(dh, h, hg, (size_t)N * 4 * C));
        TIME("residual_fwd", cllm_residual_forward(y, x, dy, (size_t)N * C));
        TIME("crossentropy_fwd", cllm_crossentropy_forward(losses, rmax, rsum, logits, targets, B, T, V));
        /* out of place here so every repetition sees the same logits */
        TIME("crossentropy_bwd", cllm_crossentropy_backward(dlogits, logits, rmax, rsum, targets, B, T, V, 1.0f / N));
    }
    printf("\n  ]\n}\n");
    free(x), free(y), free(dy), free(dx), free(w), free(b), free(dw), free(db), free(mean);
    free(rstd), free(qkv), free(dqkv), free(att), free(datt), free(h), free(hg), free(dh);
    free(logits), free(dlogits), free(losses), free(rmax), free(rsum), free(targets);
    return 0;
}

/*
 * bench_gemm.c: prints JSON with the measured fp32 GEMM GFLOP/s of the
 * dispatched kernel (oneDNN unless CLLM_KERNELS=reference) at the GPT-2 124M
 * training shapes, B*T = 256 rows, on 1 and 2 threads, plus the peak that
 * `cllm pretrain` reports MFU against (cllm_kernels_measure_gemm_peak).
 *
 * Shapes are the linear layer's forward form C[M,N] = A[M,K] B[N,K]^T:
 * qkv 256x2304x768, fc 256x3072x768, fc-proj 256x768x3072, attn-proj
 * 256x768x768 and the LM head 256x50257x768. The machine's load average
 * is recorded because the 2 cores are shared and a busy neighbour halves
 * the numbers; repeat when it is high.
 * Usage: bench_gemm [reps]   (default 5)
 */
#include <stdio.h>
#include <stdlib.h>

#include "cllm/kernels/kernels.h"

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    if (reps <= 0) {
        fprintf(stderr, "usage: bench_gemm [reps > 0]\n");
        return 2;
    }
    static const struct { const char *name; int m, n, k; } shapes[] = {
        {"qkv", 256, 2304, 768},    {"fc", 256, 3072, 768},    {"fcproj", 256, 768, 3072},
        {"attproj", 256, 768, 768}, {"lmhead", 256, 50257, 768},
    };
    double load[3] = {0, 0, 0};
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = -1;
        fclose(f);
    }
    char feat[128];
    cllm_kernels_features_string(feat, sizeof feat);
    printf("{\n  \"bench\": \"gemm_fp32\",\n  \"backend\": \"%s\",\n  \"cpu_features\": \"%s\",\n",
           cllm_kernels_gemm_name(), feat);
    printf("  \"wait_policy\": \"%s\",\n  \"loadavg_1m_before\": %.2f,\n  \"reps\": %d,\n",
           cllm_kernels_wait_policy(), load[0], reps);
    printf("  \"results\": [\n");
    int first = 1;
    for (int threads = 1; threads <= 2; threads++) {
        cllm_kernels_set_threads(threads);
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            double g = 0;
            cllm_error err;
            if (cllm_kernels_measure_gemm(shapes[i].m, shapes[i].n, shapes[i].k, reps, &g, &err)) {
                fprintf(stderr, "bench_gemm: %s\n", err.msg);
                return 1;
            }
            printf("%s    {\"shape\": \"%s\", \"M\": %d, \"N\": %d, \"K\": %d, \"threads\": %d, "
                   "\"gflops\": %.1f}",
                   first ? "" : ",\n", shapes[i].name, shapes[i].m, shapes[i].n, shapes[i].k,
                   threads, g);
            first = 0;
        }
    }
    printf("\n  ],\n");
    for (int threads = 1; threads <= 2; threads++) {
        double peak = 0;
        cllm_error err;
        if (cllm_kernels_measure_gemm_peak(threads, &peak, &err)) {
            fprintf(stderr, "bench_gemm: %s\n", err.msg);
            return 1;
        }
        printf("  \"peak_gflops_%dthread\": %.1f%s\n", threads, peak, threads == 1 ? "," : "");
    }
    printf("}\n");
    return 0;
}

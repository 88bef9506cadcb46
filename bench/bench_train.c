/*
 * bench_train.c: times cllm training steps (forward, backward, clipping,
 * AdamW) for a model preset at B x T in fp32 and prints one JSON object.
 * optimizer_ms covers the global gradient norm and AdamW with clipping at
 * norm 1.0 fused in (cllm_adamw_params.grad_scale), as `cllm pretrain` does.
 * bench/bench_train.sh runs it beside the PyTorch peer and prints ratios.
 *
 *   build/bench/bench_train --preset gpt2 --batch 4 --seq 64 --steps 10 --threads 2
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cllm/kernels/kernels.h"
#include "cllm/model/model.h"
#include "cllm/train/optim.h"
#include "cllm/core/progress.h"
#include "cllm/core/rng.h"

static int compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    const char *preset = "gpt2";
    const char *sets[16];
    int n_sets = 0;
    int B = 4, T = 64, steps = 10, warmup = 2, threads = 2;
    cllm_precision precision = CLLM_PRECISION_FP32;
    int mirror = 1; /* bf16: keep bf16 copies of the weights (as the harness does); 0 rounds them per product */
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--preset")) preset = argv[i + 1];
        else if (!strcmp(argv[i], "--batch")) B = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seq")) T = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--warmup")) warmup = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--set") && n_sets < 16) sets[n_sets++] = argv[i + 1];
        else if (!strcmp(argv[i], "--precision") && cllm_precision_from_name(argv[i + 1], &precision)) continue;
        else if (!strcmp(argv[i], "--bf16-mirror")) mirror = atoi(argv[i + 1]) != 0;
        else {
            fprintf(stderr, "usage: bench_train [--preset P] [--set key=value]... [--batch B] [--seq T] [--steps N] "
                            "[--warmup N] [--threads N] [--precision fp32|bf16] [--bf16-mirror 0|1]\n");
            return 2;
        }
    }
    if (B < 1 || T < 1 || steps < 1 || warmup < 0 || threads < 1) {
        fprintf(stderr, "bench_train: batch, seq, steps, threads must be >= 1\n");
        return 2;
    }
    cllm_error err;
    cllm_kernels_set_threads(threads);
    cllm_model_config cfg;
    if (cllm_model_preset(preset, &cfg, &err) != CLLM_OK) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        return 1;
    }
    for (int i = 0; i < n_sets; i++) {
        char key[64];
        const char *eq = strchr(sets[i], '=');
        if (!eq || eq - sets[i] >= (int)sizeof key) {
            fprintf(stderr, "bench_train: --set expects key=value, got '%s'\n", sets[i]);
            return 2;
        }
        snprintf(key, sizeof key, "%.*s", (int)(eq - sets[i]), sets[i]);
        if (cllm_model_config_set(&cfg, key, eq + 1, &err) != CLLM_OK) {
            fprintf(stderr, "bench_train: %s\n", err.msg);
            return 2;
        }
    }
    cllm_model_options opt = cllm_model_default_options();
    opt.max_batch = B;
    opt.max_seq = T;
    opt.training = 1;
    cllm_model *m;
    if (cllm_model_create(&cfg, &opt, &m, &err) != CLLM_OK) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        return 1;
    }
    cllm_model_init_weights(m, 1);
    if (cllm_precision_check(precision, &err) != CLLM_OK) {
        fprintf(stderr, "bench_train: --precision: %s\n", err.msg);
        return 2;
    }
    /* as the training harness does: bf16 products, the weights mirrored once per step */
    cllm_matmul_set_precision(precision);
    if (precision == CLLM_PRECISION_BF16 && mirror)
        for (int k = 0; k < cllm_model_num_tensors(m); k++) {
            const cllm_tensor *t = cllm_model_tensor(m, k);
            cllm_bf16_mirror_add(cllm_model_params(m) + t->offset, t->numel);
        }
    size_t n = cllm_model_num_params(m);
    float *mom1 = calloc(n, sizeof(float)), *mom2 = calloc(n, sizeof(float));
    int32_t *tokens = malloc((size_t)B * T * sizeof *tokens), *targets = malloc((size_t)B * T * sizeof *targets);
    if (!mom1 || !mom2 || !tokens || !targets) {
        fprintf(stderr, "bench_train: out of memory\n");
        return 1;
    }
    cllm_rng rng;
    cllm_rng_seed(&rng, 1);
    for (int i = 0; i < B * T; i++) {
        tokens[i] = (int32_t)cllm_rng_below(&rng, (uint64_t)cfg.vocab_size);
        targets[i] = (int32_t)cllm_rng_below(&rng, (uint64_t)cfg.vocab_size);
    }
    cllm_adamw_params hp = cllm_adamw_default_params();
    hp.lr = 1e-4f;
    hp.weight_decay = 0.1f;
    double *times = malloc((size_t)steps * sizeof *times);
    double fwd_s = 0, bwd_s = 0, opt_s = 0;
    float loss = 0;
    float *params = cllm_model_params(m), *grads = cllm_model_grads(m);
    for (int s = 0; s < warmup + steps; s++) {
        double t0 = cllm_now_seconds();
        cllm_model_zero_grad(m);
        if (cllm_model_forward(m, tokens, targets, B, T, &loss, &err) != CLLM_OK) {
            fprintf(stderr, "bench_train: %s\n", err.msg);
            return 1;
        }
        double t1 = cllm_now_seconds();
        if (cllm_model_backward(m, 1.0f / (float)(B * T), &err) != CLLM_OK) {
            fprintf(stderr, "bench_train: %s\n", err.msg);
            return 1;
        }
        double t2 = cllm_now_seconds();
        /* global-norm clipping at 1.0, fused into the update (optim.h) */
        hp.grad_scale = cllm_grad_clip_scale(cllm_grad_norm(grads, n), 1.0f);
        for (int k = 0; k < cllm_model_num_tensors(m); k++) {
            const cllm_tensor *t = cllm_model_tensor(m, k);
            cllm_adamw_update(params + t->offset, grads + t->offset, mom1 + t->offset, mom2 + t->offset, t->numel, &hp,
                              s + 1, t->decay);
        }
        cllm_bf16_mirror_stale(params, n);
        double t3 = cllm_now_seconds();
        if (s >= warmup) {
            times[s - warmup] = t3 - t0;
            fwd_s += t1 - t0;
            bwd_s += t2 - t1;
            opt_s += t3 - t2;
        }
    }
    qsort(times, (size_t)steps, sizeof *times, compare_double);
    double median = times[steps / 2];
    double flops_step = 3.0 * cllm_model_flops_per_token(&cfg, T) * (double)B * T;
    double peak = 0;
    if (cllm_kernels_measure_gemm_peak(threads, &peak, &err) != CLLM_OK) peak = 0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"peer\": \"cllm\", \"preset\": \"%s\", \"layers\": %d, \"embd\": %d, \"vocab\": %d, \"threads\": %d, \"batch\": %d, \"seq\": %d, \"params\": %zu, "
           "\"ms_per_step_median\": %.2f, \"ms_per_step_min\": %.2f, \"tokens_per_s\": %.1f, "
           "\"forward_ms\": %.2f, \"backward_ms\": %.2f, \"optimizer_ms\": %.2f, "
           "\"achieved_gflops\": %.1f, \"gemm_peak_gflops\": %.1f, \"mfu\": %.3f, \"peak_rss_mb\": %.1f, "
           "\"gemm\": \"%s\", \"precision\": \"%s\", \"bf16_mirror\": %d, \"bf16_kernel\": \"%s\", \"wait_policy\": \"%s\", \"final_loss\": %.4f}\n",
           preset, cfg.n_layer, cfg.n_embd, cfg.vocab_size, threads, B, T, n, median * 1e3, times[0] * 1e3, B * T / median, fwd_s / steps * 1e3,
           bwd_s / steps * 1e3, opt_s / steps * 1e3, flops_step / median / 1e9, peak,
           peak > 0 ? flops_step / median / 1e9 / peak : 0.0, ru.ru_maxrss / 1024.0, cllm_kernels_gemm_name(),
           cllm_precision_name(precision), precision == CLLM_PRECISION_BF16 && mirror, precision == CLLM_PRECISION_BF16 ? cllm_quant_bf16_onednn_impl() : "none",
           cllm_kernels_wait_policy(), loss);
    free(times);
    free(mom1);
    free(mom2);
    free(tokens);
    free(targets);
    cllm_model_destroy(m);
    return 0;
}

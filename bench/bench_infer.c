/*
 * bench_infer.c: cllm inference speed on GGUF files, as JSON on stdout.
 *
 *   bench_infer make PRESET DIR [TYPE...]
 *                                     random-weight PRESET (gpt2, llama-110m,
 *                                     ...) saved as DIR/<preset>-f32.gguf and
 *                                     quantized to each TYPE (cllm quantize's
 *                                     names; default f16, bf16, q8_0, q4_0,
 *                                     q4_k_m)
 *   bench_infer run FILE THREADS [DEPTH]
 *                                     prompt tokens/s at 128 and 512 tokens
 *                                     (one chunk each, fresh cache), generation
 *                                     tokens/s for 64 tokens (BENCH_TG=N: N
 *                                     tokens, reported as "tgN") after a 16-token
 *                                     prompt; best of 3 runs each; bytes read
 *                                     per generated token (weights, and the K/V
 *                                     rows its attention reads); with DEPTH > 0
 *                                     (default 512) also tg64 after a DEPTH-token
 *                                     prompt with the f32, f16 and q8_0 KV caches
 *   bench_infer bw THREADS            read bandwidth (GB/s), see cmd_bw
 *
 * Weights are random (speed does not depend on them). Not a test. The
 * environment variable BF16_PROMPT=own|onednn picks the route of bf16
 * prompt products (cllm_bf16_prompt; default auto); "bf16_onednn_kernel"
 * in the JSON names the oneDNN kernel that ran ("none": not that route).
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cllm/formats/ggml_types.h"
#include "cllm/kernels/kernels.h"
#include "cllm/kernels/kv_attn.h"
#include "cllm/model/model.h"
#include "cllm/model/gguf_io.h"
#include "cllm/model/mapped.h"
#include "cllm/kernels/quant.h"
#include "cllm/infer/quantize.h"
#include "cllm/tokenizer/tokenizer.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int die(const cllm_error *e) {
    fprintf(stderr, "bench_infer: %s\n", e->msg);
    return 1;
}

/* llama.cpp refuses a model file without a vocabulary, so the random models
 * carry one: the 256 byte tokens, the other ids unused placeholders. */
static cllm_status add_vocab(cllm_gguf_writer *w, void *ctx, cllm_error *err) {
    const cllm_tokenizer *tok = ctx;
    return cllm_tokenizer_gguf_set(tok, w, NULL, err);
}

static int cmd_make(const char *preset, const char *dir, int n_types, char **types) {
    cllm_model_config c;
    cllm_error err = {0};
    if (cllm_model_preset(preset, &c, &err) != CLLM_OK) return die(&err);
    cllm_model *m = NULL;
    if (cllm_model_create(&c, NULL, &m, &err) != CLLM_OK) return die(&err);
    cllm_model_init_weights(m, 1);
    char f32[512], q[512];
    snprintf(f32, sizeof f32, "%s/%s-f32.gguf", dir, preset);
    cllm_tokenizer *tok = NULL;
    cllm_status st = cllm_tokenizer_new(&tok, (uint32_t)c.vocab_size, CLLM_PRETOK_GPT2, NULL, &err);
    for (uint32_t b = 0; st == CLLM_OK && b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        st = cllm_tokenizer_set_token(tok, b, &byte, 1, CLLM_TOKEN_NORMAL, &err);
    }
    if (st == CLLM_OK) st = cllm_tokenizer_finalize(tok, CLLM_BPE_RANKS, &err);
    cllm_model_save_params sp = cllm_model_save_default_params();
    sp.extra = add_vocab;
    sp.extra_ctx = tok;
    if (st == CLLM_OK) st = cllm_model_save_gguf(m, f32, &sp, &err);
    cllm_tokenizer_destroy(tok);
    cllm_model_destroy(m);
    if (st != CLLM_OK) return die(&err);
    static char *default_types[] = {"f16", "bf16", "q8_0", "q4_0", "q4_k_m"};
    if (n_types == 0) {
        n_types = 5;
        types = default_types;
    }
    for (int i = 0; i < n_types; i++) {
        uint32_t t;
        cllm_quantize_mix mix;
        if (cllm_quantize_parse_target(types[i], &t, &mix) != 0) {
            fprintf(stderr, "bench_infer: unknown type '%s'\n", types[i]);
            return 1;
        }
        snprintf(q, sizeof q, "%s/%s-%s.gguf", dir, preset, types[i]);
        if (cllm_quantize_gguf_mix(f32, q, t, mix, NULL, &err) != CLLM_OK) return die(&err);
    }
    return 0;
}

/* Best-of-3 tokens/s of n single-token decodes at positions from..from+n-1
 * of slot 0, whose positions 0..from-1 are cached (each run rewinds). */
static double tg_n(cllm_model *m, const int32_t *toks, int from, int n, cllm_error *err) {
    const float *lg;
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        for (int i = 0; i < n; i++)
            if (cllm_model_decode(m, 0, toks + from + i, 1, from + i, 0, &lg, err) != CLLM_OK) return -1;
        double r = n / (now() - t0);
        if (r > best) best = r;
    }
    return best;
}

/* K+V bytes the attention of one token at position p reads: rows 0..p of
 * every layer, NKV*HS values each in the cache type. */
static double kv_read_bytes(const cllm_model_config *c, int kv_type, double positions) {
    const double KVW = (double)c->n_kv_head * (c->n_embd / c->n_head);
    const double row = kv_type == CLLM_GGML_Q8_0 ? KVW / 32 * 34 : kv_type == CLLM_GGML_F16 ? KVW * 2 : KVW * 4;
    return 2.0 * c->n_layer * positions * row;
}

/* tg64 after a depth-token prompt with a cache of type kv_type (-1: not
 * possible, e.g. a head size the q8_0 cache cannot hold). */
/* The bf16 prompt route from BF16_PROMPT (own, onednn; unset or other: auto). */
static int bf16_prompt_from_env(void) {
    const char *v = getenv("BF16_PROMPT");
    if (v && !strcmp(v, "own")) return CLLM_BF16_PROMPT_OWN;
    if (v && !strcmp(v, "onednn")) return CLLM_BF16_PROMPT_ONEDNN;
    return CLLM_BF16_PROMPT_AUTO;
}

static double tg64_at_depth(const char *path, int depth, int kv_type, cllm_error *err) {
    cllm_model_options o = cllm_model_default_options();
    o.max_seq = 512;
    o.kv_slots = 1;
    o.kv_context = depth + 64;
    o.kv_type = kv_type;
    o.bf16_prompt = bf16_prompt_from_env();
    cllm_model *m = NULL;
    if (cllm_model_load_gguf_mapped(path, &o, &m, err) != CLLM_OK) return -1;
    const int V = cllm_model_get_config(m)->vocab_size;
    int32_t *toks = malloc(sizeof *toks * (size_t)(depth + 64));
    double r = -1;
    if (toks) {
        for (int i = 0; i < depth + 64; i++) toks[i] = (int32_t)((i * 7919u + 13u) % (unsigned)V);
        int ok = 1;
        for (int p = 0; ok && p < depth; p += 512)
            ok = cllm_model_decode(m, 0, toks + p, depth - p < 512 ? depth - p : 512, p, 0, NULL, err) == CLLM_OK;
        if (ok) r = tg_n(m, toks, depth, 64, err);
    }
    free(toks);
    cllm_model_destroy(m);
    return r;
}

static int cmd_run(const char *path, int threads, int depth) {
    cllm_kernels_set_threads(threads);
    cllm_error err = {0};
    cllm_model_options o = cllm_model_default_options();
    o.max_seq = 512;
    o.kv_slots = 1;
    o.kv_context = 512 + 16;
    o.bf16_prompt = bf16_prompt_from_env();
    cllm_model *m = NULL;
    if (cllm_model_load_gguf_mapped(path, &o, &m, &err) != CLLM_OK) return die(&err);
    const cllm_model_config cfg = *cllm_model_get_config(m);
    const int V = cfg.vocab_size;
    int32_t toks[600];
    for (int i = 0; i < 600; i++) toks[i] = (int32_t)((i * 7919u + 13u) % (unsigned)V);
    const float *lg;
    double pp[2] = {0, 0};
    const int plen[2] = {128, 512};
    for (int k = 0; k < 2; k++)
        for (int rep = 0; rep < 3; rep++) {
            cllm_model_kv_reset(m, 0);
            double t0 = now();
            if (cllm_model_decode(m, 0, toks, plen[k], 0, 0, &lg, &err) != CLLM_OK) return die(&err);
            double r = plen[k] / (now() - t0);
            if (r > pp[k]) pp[k] = r;
        }
    cllm_model_kv_reset(m, 0);
    if (cllm_model_decode(m, 0, toks, 16, 0, 0, &lg, &err) != CLLM_OK) return die(&err);
    const char *tg_env = getenv("BENCH_TG");
    const int n_gen = tg_env ? atoi(tg_env) : 64;
    if (n_gen < 1 || n_gen > 512) {
        fprintf(stderr, "bench_infer: BENCH_TG must be 1..512\n");
        return 2;
    }
    const double tg = tg_n(m, toks, 16, n_gen, &err);
    if (tg < 0) return die(&err);
    const size_t wbytes = cllm_model_decode_weight_bytes(m);
    cllm_model_destroy(m);
    /* tokens at positions 16..15+n_gen read 17..16+n_gen cached rows: 16.5 + n_gen / 2 on average */
    printf("{\"file\": \"%s\", \"threads\": %d, \"pp128\": %.2f, \"pp512\": %.2f, \"tg%d\": %.2f, "
           "\"decode_weight_bytes\": %zu, \"decode_kv_bytes\": %.0f, \"kernels\": \"%s\", \"kv_attn_q8_0\": \"%s\", "
           "\"quant_kernels\": \"%s\", \"bf16_onednn_kernel\": \"%s\"",
           path, threads, pp[0], pp[1], n_gen, tg, wbytes, kv_read_bytes(&cfg, CLLM_GGML_F32, 16.5 + n_gen / 2.0),
           cllm_kernels_vec_name(),
           cllm_kv_attend_name(), cllm_quant_kernels_get()->name, cllm_quant_bf16_onednn_impl());
    if (depth > 0) {
        const double f = tg64_at_depth(path, depth, CLLM_GGML_F32, &err);
        if (f < 0) return die(&err);
        const double h = tg64_at_depth(path, depth, CLLM_GGML_F16, &err);
        if (h < 0) return die(&err);
        const double q = (cfg.n_embd / cfg.n_head) % 32 == 0 ? tg64_at_depth(path, depth, CLLM_GGML_Q8_0, &err) : -1;
        const double mean_pos = depth + 32.5; /* positions depth..depth+63 read depth+1..depth+64 rows */
        printf(", \"depth\": %d, \"tg64_depth_kv_f32\": %.2f, \"tg64_depth_kv_f16\": %.2f, \"tg64_depth_kv_q8_0\": %.2f, "
               "\"decode_kv_bytes_depth_f32\": %.0f, \"decode_kv_bytes_depth_f16\": %.0f, "
               "\"decode_kv_bytes_depth_q8_0\": %.0f",
               depth, f, h, q, kv_read_bytes(&cfg, CLLM_GGML_F32, mean_pos), kv_read_bytes(&cfg, CLLM_GGML_F16, mean_pos),
               kv_read_bytes(&cfg, CLLM_GGML_Q8_0, mean_pos));
    }
    printf("}\n");
    return 0;
}

/* Sustained read bandwidth: a 1 GiB buffer (32x the 32 MiB L3 here, so
 * nothing is served from cache), written first by the same threads with the
 * same split (every page faulted in, and local, before timing), then read
 * in 8 passes with the library's f32 dot kernel (AVX-512 loads, four
 * independent accumulators: the kernel the f32 decode mat-vec runs; the
 * second operand is the same address, an L1 hit). Each pass is cut into 64
 * slices of 16 MiB, split over the threads.
 *   read_gb_s: both threads read a slice between two barriers, timed as a
 *     whole (the slower thread's time); the 90th percentile of the 512 slice
 *     rates. On the shared, loaded machine a whole 1 GiB pass almost always
 *     includes time a thread spent descheduled; a 0.5 ms slice mostly does
 *     not. This feeds the roofline.
 *   sum_of_threads_gb_s: threads x the 90th percentile of slices each thread
 *     timed alone (no barriers): a cross-check.
 *   best_pass_gb_s: the plain best whole pass (agrees on a quiet machine).
 * The old loop (one dependent double add per float, not vectorised)
 * measured the add latency, about 4.9 GB/s, not memory. */
static int cmp_double(const void *x, const void *y) {
    const double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static int cmd_bw(int threads) {
    enum { PASSES = 8, SLICES = 64 };
    cllm_kernels_set_threads(threads);
    const size_t bytes = (size_t)1 << 30, n = bytes / sizeof(float), sn = n / SLICES;
    float *a = aligned_alloc(64, bytes);
    if (!a) return 1;
    const cllm_quant_kernels *k = cllm_quant_kernels_get();
#pragma omp parallel num_threads(threads)
    for (int sl = 0; sl < SLICES; sl++) {
        const size_t nt = (size_t)omp_get_num_threads(), t = (size_t)omp_get_thread_num();
        const size_t lo = sn * sl + sn * t / nt, hi = sn * sl + sn * (t + 1) / nt;
        for (size_t i = lo; i < hi; i++) a[i] = (float)(i & 1023) * (1.0f / 1024.0f);
    }
    static double rate[2 * PASSES * SLICES];
    if (threads > 2) threads = 2; /* rate[] holds two threads' slices */
    double best_pass = 0, sink = 0;
    for (int rep = 0; rep < PASSES; rep++) {
        double s = 0;
        const double p0 = now();
#pragma omp parallel num_threads(threads) reduction(+ : s)
        {
            const size_t nt = (size_t)omp_get_num_threads(), t = (size_t)omp_get_thread_num();
            for (int sl = 0; sl < SLICES; sl++) {
                const size_t lo = sn * sl + sn * t / nt, hi = sn * sl + sn * (t + 1) / nt;
                const double t0 = now();
                s += k->dot_f32_f32(a + lo, a + lo, (int64_t)(hi - lo));
                rate[(t * PASSES + (size_t)rep) * SLICES + (size_t)sl] = (double)(hi - lo) * sizeof(float) / (now() - t0) / 1e9;
            }
        }
        const double gbs = (double)bytes / (now() - p0) / 1e9;
        sink += s;
        if (gbs > best_pass) best_pass = gbs;
    }
    /* Together: the same slices, both threads between two barriers, timed
     * by thread 0 (a slice's time is the slower thread's). */
    static double together[PASSES * SLICES];
    for (int rep = 0; rep < PASSES; rep++) {
        double s = 0;
#pragma omp parallel num_threads(threads) reduction(+ : s)
        {
            const size_t nt = (size_t)omp_get_num_threads(), t = (size_t)omp_get_thread_num();
            for (int sl = 0; sl < SLICES; sl++) {
                const size_t lo = sn * sl + sn * t / nt, hi = sn * sl + sn * (t + 1) / nt;
                double t0 = 0;
#pragma omp barrier
                if (t == 0) t0 = now();
                s += k->dot_f32_f32(a + lo, a + lo, (int64_t)(hi - lo));
#pragma omp barrier
                if (t == 0) together[rep * SLICES + sl] = (double)sn * sizeof(float) / (now() - t0) / 1e9;
            }
        }
        sink += s;
    }
    qsort(together, PASSES * SLICES, sizeof together[0], cmp_double);
    const int nr = threads * PASSES * SLICES;
    qsort(rate, (size_t)nr, sizeof rate[0], cmp_double);
    printf("{\"threads\": %d, \"read_gb_s\": %.2f, \"sum_of_threads_gb_s\": %.2f, \"best_pass_gb_s\": %.2f, "
           "\"median_slice_gb_s_per_thread\": %.2f, \"bytes\": %zu, \"passes\": %d, \"kernel\": \"%s\", "
           "\"checksum_ok\": %s}\n",
           threads, together[PASSES * SLICES * 9 / 10], threads * rate[nr * 9 / 10], best_pass, rate[nr / 2], bytes,
           PASSES, k->name, sink > 0 ? "true" : "false");
    free(a);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 4 && !strcmp(argv[1], "make")) return cmd_make(argv[2], argv[3], argc - 4, argv + 4);
    if ((argc == 4 || argc == 5) && !strcmp(argv[1], "run"))
        return cmd_run(argv[2], atoi(argv[3]), argc == 5 ? atoi(argv[4]) : 512);
    if (argc == 3 && !strcmp(argv[1], "bw")) return cmd_bw(atoi(argv[2]));
    fprintf(stderr, "usage: bench_infer make PRESET DIR [TYPE...] | run FILE THREADS [DEPTH] | bw THREADS\n");
    return 2;
}

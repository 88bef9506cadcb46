/*
 * bench_infer.c: cllm inference speed on GGUF files, as JSON on stdout.
 *
 *   bench_infer make PRESET DIR       random-weight PRESET (gpt2, llama-110m,
 *                                     ...) saved as DIR/<preset>-f32.gguf and
 *                                     quantized to f16, bf16, q8_0, q4_0
 *   bench_infer run FILE THREADS      prompt tokens/s at 128 and 512 tokens
 *                                     (one chunk each, fresh cache), generation
 *                                     tokens/s for 64 tokens after a 16-token
 *                                     prompt; best of 3 runs each; decode
 *                                     weight bytes per token
 *   bench_infer bw THREADS            read bandwidth (GB/s) over 512 MiB
 *
 * Weights are random (speed does not depend on them). Not a test.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cllm/ggml_types.h"
#include "cllm/kernels.h"
#include "cllm/model.h"
#include "cllm/model_io.h"
#include "cllm/model_quant.h"
#include "cllm/quantize.h"
#include "cllm/tokenizer.h"

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

static int cmd_make(const char *preset, const char *dir) {
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
    const char *types[] = {"f16", "bf16", "q8_0", "q4_0"};
    for (int i = 0; i < 4; i++) {
        cllm_ggml_type t;
        cllm_ggml_type_parse(types[i], &t);
        snprintf(q, sizeof q, "%s/%s-%s.gguf", dir, preset, types[i]);
        if (cllm_quantize_gguf(f32, q, t, NULL, &err) != CLLM_OK) return die(&err);
    }
    return 0;
}

static int cmd_run(const char *path, int threads) {
    cllm_kernels_set_threads(threads);
    cllm_error err = {0};
    cllm_model_options o = cllm_model_default_options();
    o.max_seq = 512;
    o.kv_slots = 1;
    o.kv_context = 512 + 16;
    cllm_model *m = NULL;
    if (cllm_model_load_gguf_mapped(path, &o, &m, &err) != CLLM_OK) return die(&err);
    const int V = cllm_model_get_config(m)->vocab_size;
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
    double tg = 0;
    for (int rep = 0; rep < 3; rep++) {
        cllm_model_kv_reset(m, 0);
        if (cllm_model_decode(m, 0, toks, 16, 0, 0, &lg, &err) != CLLM_OK) return die(&err);
        double t0 = now();
        for (int i = 0; i < 64; i++)
            if (cllm_model_decode(m, 0, toks + 16 + i, 1, 16 + i, 0, &lg, &err) != CLLM_OK) return die(&err);
        double r = 64 / (now() - t0);
        if (r > tg) tg = r;
    }
    printf("{\"file\": \"%s\", \"threads\": %d, \"pp128\": %.2f, \"pp512\": %.2f, \"tg64\": %.2f, "
           "\"decode_weight_bytes\": %zu, \"kernels\": \"%s\"}\n",
           path, threads, pp[0], pp[1], tg, cllm_model_decode_weight_bytes(m), cllm_kernels_vec_name());
    cllm_model_destroy(m);
    return 0;
}

static int cmd_bw(int threads) {
    cllm_kernels_set_threads(threads);
    const size_t n = (512u << 20) / sizeof(float);
    float *a = malloc(n * sizeof(float));
    if (!a) return 1;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) a[i] = (float)(i & 1023);
    double best = 0, sink = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now(), s = 0;
#pragma omp parallel for schedule(static) reduction(+ : s)
        for (size_t i = 0; i < n; i++) s += a[i];
        double gbs = (double)n * sizeof(float) / (now() - t0) / 1e9;
        sink += s;
        if (gbs > best) best = gbs;
    }
    printf("{\"threads\": %d, \"read_gb_s\": %.2f, \"checksum\": %.0f}\n", threads, best, sink > 0 ? 1.0 : 0.0);
    free(a);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "make")) return cmd_make(argv[2], argv[3]);
    if (argc == 4 && !strcmp(argv[1], "run")) return cmd_run(argv[2], atoi(argv[3]));
    if (argc == 3 && !strcmp(argv[1], "bw")) return cmd_bw(atoi(argv[2]));
    fprintf(stderr, "usage: bench_infer make PRESET DIR | run FILE THREADS | bw THREADS\n");
    return 2;
}

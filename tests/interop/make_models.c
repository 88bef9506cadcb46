/*
 * make_models.c: writes small gpt2- and llama-arch GGUF files with cllm
 * (f32, f16, q8_0, q4_0) plus cllm's own logits for a fixed token sequence,
 * for compare.mjs to check against llama.cpp (node-llama-cpp).
 *
 * Not part of `make test` (llama.cpp comes from a ~700 MB npm package);
 * run tests/interop/run.sh. Usage: make_models OUT_DIR [--archs]
 * With --archs it writes the families of tests/interop/archs.sh instead:
 * qwen2 (q/k/v biases, NEOX rope), llama with linear and with Llama-3.1
 * rope scaling, Mistral-style llama with a sliding window of 16 (longer
 * than the test's 14 positions) and of 4, in f32, f16, q8_0 and q4_0, and
 * checks that cllm's KV-cache decoding gives the greedy continuation that
 * full forwards give.
 * For each file OUT_DIR/<name>.gguf it writes OUT_DIR/<name>.json:
 *   {"tokens": [...], "logits": [[V floats] per position], "greedy": [...]}
 * where logits come from the model as loaded back from that same file
 * (dequantized), and greedy is 8 argmax continuations of the tokens.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/model/gguf_io.h"

#define T_PROMPT 6
#define N_GREEDY 8

/* A minimal SentencePiece-style vocabulary so llama.cpp accepts the file:
 * <unk>, <s>, </s>, the 256 byte tokens <0x00>..<0xFF> (llama.cpp's
 * tokenizer falls back to them), then plain tokens. Ids are fed directly; text is unused. */
static cllm_status add_vocab(cllm_gguf_writer *w, void *ctx, cllm_error *err) {
    int V = *(const int *)ctx;
    char **toks = calloc((size_t)V, sizeof *toks);
    float *scores = calloc((size_t)V, sizeof *scores);
    int32_t *types = calloc((size_t)V, sizeof *types);
    for (int i = 0; i < V; i++) {
        toks[i] = malloc(16);
        if (i == 0) snprintf(toks[i], 16, "<unk>");
        else if (i == 1) snprintf(toks[i], 16, "<s>");
        else if (i == 2) snprintf(toks[i], 16, "</s>");
        else if (i < 3 + 256) snprintf(toks[i], 16, "<0x%02X>", i - 3); /* byte fallback tokens */
        else snprintf(toks[i], 16, "t%d", i);
        scores[i] = -(float)i;
        types[i] = i == 0 ? 2 : i < 3 ? 3 : i < 3 + 256 ? 6 : 1; /* unknown, control, byte, normal */
    }
    cllm_status st = cllm_gguf_set_str(w, "tokenizer.ggml.model", "llama", err);
    if (!st) st = cllm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)toks, NULL, (uint64_t)V, err);
    if (!st) st = cllm_gguf_set_arr(w, "tokenizer.ggml.scores", CLLM_GGUF_FLOAT32, scores, (uint64_t)V, err);
    if (!st) st = cllm_gguf_set_arr(w, "tokenizer.ggml.token_type", CLLM_GGUF_INT32, types, (uint64_t)V, err);
    if (!st) st = cllm_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 1, err);
    if (!st) st = cllm_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 2, err);
    if (!st) st = cllm_gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", 0, err);
    for (int i = 0; i < V; i++) free(toks[i]);
    free(toks);
    free(scores);
    free(types);
    return st;
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static int kv_check; /* --archs: also run the KV-cache path (decode_check) */

/* The same file through cllm_model_decode (prompt chunk, then one token at
 * a time): the greedy tokens must equal the full-forward ones in toks. */
static int decode_check(char *path, const char *dir, const char *name, const int32_t *toks) {
    cllm_error err;
    cllm_model_options o = cllm_model_default_options();
    o.max_seq = T_PROMPT + N_GREEDY;
    o.kv_slots = 1;
    cllm_model *m = NULL;
    snprintf(path, 1024, "%s/%s.gguf", dir, name);
    if (cllm_model_load_gguf(path, &o, 1, &m, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    const float *lg = NULL;
    int rc = 0, V = cllm_model_get_config(m)->vocab_size;
    if (cllm_model_decode(m, 0, toks, T_PROMPT, 0, 0, &lg, &err)) { fprintf(stderr, "%s\n", err.msg); rc = 1; }
    for (int g = 0; g < N_GREEDY && !rc; g++) {
        int next = argmax(lg, V);
        if (next != toks[T_PROMPT + g]) {
            fprintf(stderr, "%s: KV-cache decoding gives token %d at step %d, full forwards %d\n", name, next, g,
                    toks[T_PROMPT + g]);
            rc = 1;
        }
        if (g + 1 < N_GREEDY && cllm_model_decode(m, 0, &toks[T_PROMPT + g], 1, T_PROMPT + g, 0, &lg, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            rc = 1;
        }
    }
    cllm_model_destroy(m);
    return rc;
}

static int emit(const char *dir, const char *name, const cllm_model_config *cfg, uint32_t type) {
    cllm_error err;
    cllm_model_options o = cllm_model_default_options();
    o.max_seq = T_PROMPT + N_GREEDY;
    cllm_model *m = NULL;
    if (cllm_model_create(cfg, &o, &m, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    cllm_model_init_weights(m, 1234);
    /* larger-than-init weights so logits are far from uniform and differences show */
    float *p = cllm_model_params(m);
    for (size_t i = 0; i < cllm_model_num_params(m); i++) p[i] *= 5.0f;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.gguf", dir, name);
    cllm_model_save_params sp = cllm_model_save_default_params();
    sp.weight_type = type;
    sp.name = name;
    sp.extra = add_vocab;
    sp.extra_ctx = (void *)&cfg->vocab_size;
    if (cllm_model_save_gguf(m, path, &sp, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    cllm_model_destroy(m);
    /* cllm's logits from the file as written (dequantized weights) */
    o.max_seq = T_PROMPT + N_GREEDY;
    if (cllm_model_load_gguf(path, &o, 1, &m, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    int V = cfg->vocab_size;
    int32_t toks[T_PROMPT + N_GREEDY] = {265, 17, 300, 8, 260, 121};
    if (cllm_model_forward(m, toks, NULL, 1, T_PROMPT, NULL, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) return 1;
    fprintf(f, "{\"tokens\": [");
    for (int t = 0; t < T_PROMPT; t++) fprintf(f, "%s%d", t ? ", " : "", toks[t]);
    fprintf(f, "],\n\"logits\": [");
    const float *lg = cllm_model_logits(m);
    for (int t = 0; t < T_PROMPT; t++) {
        fprintf(f, "%s[", t ? ",\n" : "");
        for (int v = 0; v < V; v++) fprintf(f, "%s%.9g", v ? ", " : "", lg[(size_t)t * V + v]);
        fprintf(f, "]");
    }
    fprintf(f, "],\n\"greedy\": [");
    int T = T_PROMPT;
    for (int g = 0; g < N_GREEDY; g++) {
        if (cllm_model_forward(m, toks, NULL, 1, T, NULL, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
        int next = argmax(cllm_model_logits(m) + (size_t)(T - 1) * V, V);
        fprintf(f, "%s%d", g ? ", " : "", next);
        toks[T++] = next;
    }
    fprintf(f, "]}\n");
    fclose(f);
    cllm_model_destroy(m);
    return kv_check ? decode_check(path, dir, name, toks) : 0;
}

static const struct { const char *sfx; uint32_t type; } types[] = {
    {"f32", CLLM_GGML_F32}, {"f16", CLLM_GGML_F16}, {"q8_0", CLLM_GGML_Q8_0}, {"q4_0", CLLM_GGML_Q4_0}};

static int archs(const char *dir) {
    cllm_error err;
    enum { N_FAM = 5 };
    cllm_model_config c[N_FAM];
    const char *fam[N_FAM] = {"qwen2", "llama-rope-linear", "llama-rope-llama3", "mistral-w16", "mistral-w4"};
    if (cllm_model_preset("tiny-qwen2", &c[0], &err) || cllm_model_preset("tiny-llama", &c[1], &err) ||
        cllm_model_preset("tiny-llama", &c[2], &err) || cllm_model_preset("tiny-mistral", &c[3], &err) ||
        cllm_model_preset("tiny-mistral", &c[4], &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    c[1].rope_scaling = CLLM_ROPE_SCALING_LINEAR, c[1].rope_factor = 4.0f;
    /* head size 16: wavelengths 6.3, 20, 63, 199, ...: unscaled, ramp and divided pairs */
    c[2].rope_scaling = CLLM_ROPE_SCALING_LLAMA3, c[2].rope_factor = 8.0f, c[2].rope_orig_context = 64;
    c[3].sliding_window = 16, c[4].sliding_window = 4;
    for (int f = 0; f < N_FAM; f++) {
        c[f].n_embd = 64, c[f].ffn_hidden = 128, c[f].n_head = 4, c[f].n_kv_head = 2, c[f].vocab_size = 320;
        for (int i = 0; i < 4; i++) {
            char name[64];
            snprintf(name, sizeof name, "%s-%s", fam[f], types[i].sfx);
            if (emit(dir, name, &c[f], types[i].type)) return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[2], "--archs")) {
        kv_check = 1;
        return archs(argv[1]);
    }
    if (argc != 2) { fprintf(stderr, "usage: make_models OUT_DIR [--archs]\n"); return 2; }
    cllm_error err;
    cllm_model_config g, l;
    if (cllm_model_preset("tiny-gpt2", &g, &err) || cllm_model_preset("tiny-llama", &l, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    /* widths that are whole q8_0/q4_0 blocks */
    g.n_embd = 64, g.ffn_hidden = 256, g.n_head = 4, g.n_kv_head = 4, g.vocab_size = 320;
    l.n_embd = 64, l.ffn_hidden = 128, l.n_head = 4, l.n_kv_head = 2, l.vocab_size = 320;
    for (int i = 0; i < 4; i++) {
        char name[64];
        snprintf(name, sizeof name, "gpt2-%s", types[i].sfx);
        if (emit(argv[1], name, &g, types[i].type)) return 1;
        snprintf(name, sizeof name, "llama-%s", types[i].sfx);
        if (emit(argv[1], name, &l, types[i].type)) return 1;
    }
    return 0;
}

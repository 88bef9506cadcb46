/*
 * test_lora.c: LoRA on the model (lora.h): gradients through the whole
 * model, merging, adapter files, frozen-base memory, and decode with
 * adapters loaded. The layer's own double-precision gradient check lives in
 * test_layers.c.
 *
 * Tolerances: float models of width <= 32; identities between two float
 * computations of the same quantity in different order agree to ~1e-6
 * relative; we allow 1e-4 relative + 1e-6 absolute (reason: sums over
 * B*T*C products of O(1) terms in float).
 *
 * QLoRA (adapters on a q8_0 / q4_K base kept in its types, mapped.h): the
 * reference is plain LoRA on the f32 model obtained by dequantizing the same
 * file (cllm_model_load_gguf), i.e. the same weight values; only the
 * product's path differs (row blocks dequantized into scratch + GEMM, in
 * another summation order), so losses agree to 1e-5 relative, logits to
 * 1e-4 absolute and adapter gradients to 1e-3 relative of the largest one
 * (float GEMMs of width 256 in different blocking).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cllm/kernels/kernels.h"
#include "cllm/formats/gguf.h"
#include "cllm/model/lora.h"
#include "cllm/model/mapped.h"
#include "cllm/formats/ggml_types.h"
#include "cllm/model/model.h"
#include "cllm/model/gguf_io.h"
#include "cllm/core/rng.h"
#include "test.h"
#include "../src/model/model_internal.h" /* model_linear_forward/backward: the QLoRA product */

static cllm_model_config tiny(int rope) {
    cllm_model_config c;
    cllm_error err;
    cllm_model_preset(rope ? "tiny-llama" : "tiny-gpt2", &c, &err);
    c.vocab_size = 37;
    c.context_length = 16;
    c.n_layer = 2;
    c.n_embd = 16;
    c.n_head = 4;
    c.n_kv_head = rope ? 2 : 4;
    c.ffn_hidden = 24;
    c.dropout = 0;
    return c;
}

static cllm_model *make(const cllm_model_config *c, int training, int freeze, uint64_t seed) {
    cllm_model_options o = cllm_model_default_options();
    o.max_batch = 2;
    o.max_seq = 8;
    o.training = training;
    o.freeze_base = freeze;
    o.kv_slots = 1;
    cllm_model *m = NULL;
    cllm_error err;
    if (cllm_model_create(c, &o, &m, &err) != CLLM_OK) {
        fprintf(stderr, "create: %s\n", err.msg);
        return NULL;
    }
    cllm_model_init_weights(m, seed);
    return m;
}

static void tokens(int32_t *tok, int32_t *tgt, int n, int V, uint64_t seed) {
    cllm_rng r;
    cllm_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) tok[i] = (int32_t)cllm_rng_below(&r, (uint64_t)V);
    for (int i = 0; i < n; i++) tgt[i] = (i % 3 == 0) ? -1 : (int32_t)cllm_rng_below(&r, (uint64_t)V);
}

/* Random nonzero B so the adapters matter (fresh adapters have B = 0). */
static void randomize_b(cllm_model *m, uint64_t seed) {
    cllm_rng r;
    cllm_rng_seed(&r, seed);
    for (int i = 0; i < cllm_model_lora_num_tensors(m); i++) {
        const cllm_tensor *t = cllm_model_lora_tensor(m, i);
        if (strstr(t->name, "lora_b"))
            for (size_t j = 0; j < t->numel; j++) t->data[j] = 0.2f * cllm_rng_normal(&r);
    }
}

static void copy_params(cllm_model *dst, cllm_model *src) {
    memcpy(cllm_model_params(dst), cllm_model_params(src), cllm_model_num_params(src) * sizeof(float));
}

/* Adapter gradients equal the chain rule through the merged weight:
 * W_eff = W + s B A  =>  dB = s dW A^T,  dA = s B^T dW  (dW of the merged model). */
static void check_chain_rule(int rope, const char *targets) {
    cllm_model_config c = tiny(rope);
    cllm_error err;
    cllm_lora_config lc = {3, 6.0f, 0};
    CHECK(cllm_lora_targets_parse(targets, &lc.targets, &err) == CLLM_OK, "%s", err.msg);
    cllm_model *a = make(&c, 1, 1, 7), *full = make(&c, 1, 0, 7);
    CHECK(cllm_model_grads(a) == NULL, "a frozen base has no gradient block");
    CHECK(cllm_model_lora_attach(a, &lc, 99, &err) == CLLM_OK, "%s", err.msg);
    randomize_b(a, 5);
    int32_t tok[16], tgt[16];
    tokens(tok, tgt, 16, c.vocab_size, 3);
    float la = 0, lf = 0;
    cllm_model_lora_zero_grad(a);
    CHECK(cllm_model_forward(a, tok, tgt, 2, 8, &la, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_model_backward(a, 1.0f / (float)cllm_model_num_targets(a), &err) == CLLM_OK, "%s", err.msg);
    /* the merged model: same function, full gradients */
    cllm_model *merged = make(&c, 0, 0, 7);
    CHECK(cllm_model_lora_load_gguf(merged, "/dev/null", &err) != CLLM_OK, "loading /dev/null as an adapter fails");
    char path[64];
    snprintf(path, sizeof path, "/tmp/test_lora_%d.gguf", (int)getpid());
    CHECK(cllm_model_lora_save_gguf(a, path, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_model_lora_load_gguf(merged, path, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_model_lora_merge(merged, &err) == CLLM_OK, "%s", err.msg);
    copy_params(full, merged);
    cllm_model_zero_grad(full);
    CHECK(cllm_model_forward(full, tok, tgt, 2, 8, &lf, &err) == CLLM_OK, "%s", err.msg);
    CHECK_NEAR(lf, la, 1e-6, 1e-5, "merged model loss == base + adapter loss");
    CHECK(cllm_model_backward(full, 1.0f / (float)cllm_model_num_targets(full), &err) == CLLM_OK, "%s", err.msg);
    const float s = lc.alpha / (float)lc.rank;
    double worst = 0, maxg = 0;
    int n_checked = 0;
    for (int i = 0; i < cllm_model_lora_num_tensors(a); i += 2) {
        const cllm_tensor *A = cllm_model_lora_tensor(a, i), *Bt = cllm_model_lora_tensor(a, i + 1);
        /* base tensor and row block: from the adapter name */
        char base[64];
        int l = A->layer;
        const char *tname = strchr(strchr(A->name, '.') + 1, '.') + 1; /* after "blk.N." */
        int r = lc.rank, IC = (int)A->shape[1], OC = (int)Bt->shape[0], row_off = 0;
        const int q = c.n_embd, kv = c.n_kv_head * (c.n_embd / c.n_head);
        if (!strncmp(tname, "attn_q.", 7) || !strncmp(tname, "attn_k.", 7) || !strncmp(tname, "attn_v.", 7)) {
            snprintf(base, sizeof base, "blk.%d.attn_qkv.weight", l);
            row_off = tname[5] == 'q' ? 0 : tname[5] == 'k' ? q : q + kv;
        } else if (!strncmp(tname, "ffn_gate.", 9) || !strncmp(tname, "ffn_up.", 7)) {
            snprintf(base, sizeof base, "blk.%d.%s.weight", l, c.mlp == CLLM_MLP_SWIGLU ? "ffn_gate_up" : "ffn_up");
            row_off = (c.mlp == CLLM_MLP_SWIGLU && !strncmp(tname, "ffn_up.", 7)) ? c.ffn_hidden : 0;
        } else {
            snprintf(base, sizeof base, "blk.%d.%.*s.weight", l, (int)(strchr(tname, '.') - tname), tname);
        }
        const cllm_tensor *W = cllm_model_find_tensor(full, base);
        CHECK(W != NULL, "base tensor %s of %s", base, A->name);
        if (!W) continue;
        const float *dW = W->grad + (size_t)row_off * IC;
        for (int o = 0; o < OC; o++)
            for (int k = 0; k < r; k++) {
                double e = 0;
                for (int j = 0; j < IC; j++) e += (double)dW[(size_t)o * IC + j] * A->data[(size_t)k * IC + j];
                e *= s;
                double d = fabs(e - Bt->grad[(size_t)o * r + k]) - 1e-4 * fabs(e);
                if (d > worst) worst = d;
                if (fabs(e) > maxg) maxg = fabs(e);
                n_checked++;
            }
        for (int k = 0; k < r; k++)
            for (int j = 0; j < IC; j++) {
                double e = 0;
                for (int o = 0; o < OC; o++) e += (double)Bt->data[(size_t)o * r + k] * dW[(size_t)o * IC + j];
                e *= s;
                double d = fabs(e - A->grad[(size_t)k * IC + j]) - 1e-4 * fabs(e);
                if (d > worst) worst = d;
                n_checked++;
            }
    }
    fprintf(stderr, "  %s targets %s: %d adapter gradients vs chain rule, worst excess %.3g (max |g| %.3g)\n",
            rope ? "llama" : "gpt2", targets, n_checked, worst, maxg);
    CHECK(worst <= 1e-6, "adapter gradient differs from s*dW A^T / s*B^T dW by %g", worst);
    CHECK(maxg > 1e-4, "gradients are not vacuous");
    unlink(path);
    cllm_model_destroy(a);
    cllm_model_destroy(full);
    cllm_model_destroy(merged);
}

static void test_lora_gradients_match_chain_rule(void) {
    check_chain_rule(0, "q,k,v,o,up,down");
    check_chain_rule(1, "all");
    check_chain_rule(1, "v,gate");
}

/* A float central difference on a few adapter entries, as an independent check. */
static void test_lora_finite_differences(void) {
    cllm_model_config c = tiny(1);
    cllm_error err;
    cllm_lora_config lc = {2, 4.0f, 0};
    cllm_lora_targets_parse("q,o,down", &lc.targets, &err);
    cllm_model *m = make(&c, 1, 1, 11);
    CHECK(cllm_model_lora_attach(m, &lc, 1, &err) == CLLM_OK, "%s", err.msg);
    randomize_b(m, 2);
    int32_t tok[16], tgt[16];
    tokens(tok, tgt, 16, c.vocab_size, 4);
    float loss;
    cllm_model_lora_zero_grad(m);
    cllm_model_forward(m, tok, tgt, 2, 8, &loss, &err);
    cllm_model_backward(m, 1.0f / (float)cllm_model_num_targets(m), &err);
    int checked = 0;
    for (int i = 0; i < cllm_model_lora_num_tensors(m); i++) {
        const cllm_tensor *t = cllm_model_lora_tensor(m, i);
        for (size_t j = 0; j < t->numel; j += t->numel / 3 + 1) {
            float x0 = t->data[j], h = 1e-2f, lp, lm;
            t->data[j] = x0 + h;
            cllm_model_forward(m, tok, tgt, 2, 8, &lp, &err);
            t->data[j] = x0 - h;
            cllm_model_forward(m, tok, tgt, 2, 8, &lm, &err);
            t->data[j] = x0;
            double num = ((double)lp - lm) / (2.0 * h);
            /* float losses ~3.6 with h = 1e-2: rounding ~1e-7*3.6/1e-2 ~ 4e-5, curvature O(h^2) */
            CHECK_NEAR(t->grad[j], num, 2e-4, 2e-2, t->name);
            checked++;
        }
    }
    fprintf(stderr, "  %d adapter entries checked by central differences\n", checked);
    cllm_model_destroy(m);
}

/* Merged model == base + adapter at inference: full forward and KV decode. */
static void test_lora_merge_equals_adapter_at_inference(void) {
    for (int rope = 0; rope < 2; rope++) {
        cllm_model_config c = tiny(rope);
        cllm_error err;
        cllm_lora_config lc = {4, 8.0f, (1u << CLLM_LORA_TARGET_COUNT) - 1};
        if (!rope) lc.targets &= ~(1u << CLLM_LORA_GATE);
        cllm_model *ad = make(&c, 0, 0, 21), *mg = make(&c, 0, 0, 21), *base = make(&c, 0, 0, 21);
        CHECK(cllm_model_lora_attach(ad, &lc, 3, &err) == CLLM_OK, "%s", err.msg);
        randomize_b(ad, 9);
        char path[64];
        snprintf(path, sizeof path, "/tmp/test_lora_m%d.gguf", (int)getpid());
        CHECK(cllm_model_lora_save_gguf(ad, path, &err) == CLLM_OK, "%s", err.msg);
        CHECK(cllm_model_lora_load_gguf(mg, path, &err) == CLLM_OK, "%s", err.msg);
        CHECK(cllm_model_lora_merge(mg, &err) == CLLM_OK, "%s", err.msg);
        CHECK(cllm_model_lora_config(mg) == NULL, "merge removes the adapters");
        int32_t tok[8], tgt[8];
        tokens(tok, tgt, 8, c.vocab_size, 8);
        cllm_model_forward(ad, tok, NULL, 1, 8, NULL, &err);
        float *la = malloc(sizeof(float) * 8 * c.vocab_size);
        memcpy(la, cllm_model_logits(ad), sizeof(float) * 8 * c.vocab_size);
        cllm_model_forward(mg, tok, NULL, 1, 8, NULL, &err);
        cllm_model_forward(base, tok, NULL, 1, 8, NULL, &err);
        double worst = 0, moved = 0;
        for (int i = 0; i < 8 * c.vocab_size; i++) {
            worst = fmax(worst, fabs(la[i] - cllm_model_logits(mg)[i]));
            moved = fmax(moved, fabs(la[i] - cllm_model_logits(base)[i]));
        }
        fprintf(stderr, "  %s: max |logit(base+adapter) - logit(merged)| = %.3g (adapter moved logits by %.3g)\n",
                rope ? "llama" : "gpt2", worst, moved);
        CHECK(worst <= 1e-5, "merged logits differ from base+adapter by %g (tolerance 1e-5)", worst);
        CHECK(moved > 1e-2, "the adapter changes the model (else the check is vacuous)");
        /* decode path (KV cache) with the adapter loaded, without merging */
        const float *dl = NULL;
        CHECK(cllm_model_decode(ad, 0, tok, 8, 0, 1, &dl, &err) == CLLM_OK, "%s", err.msg);
        double wd = 0;
        for (int i = 0; dl && i < 8 * c.vocab_size; i++) wd = fmax(wd, fabs(dl[i] - la[i]));
        CHECK(wd <= 1e-4, "decode with adapters differs from forward by %g", wd); /* different op order */
        free(la);
        unlink(path);
        cllm_model_destroy(ad);
        cllm_model_destroy(mg);
        cllm_model_destroy(base);
    }
}

static void test_lora_fresh_adapter_is_identity_and_bad_files(void) {
    cllm_model_config c = tiny(1), c2 = tiny(1);
    c2.n_embd = 32;
    cllm_error err;
    cllm_model *m = make(&c, 0, 0, 5), *b = make(&c, 0, 0, 5), *other = make(&c2, 0, 0, 5);
    cllm_lora_config lc = cllm_lora_default_config();
    CHECK(cllm_model_lora_attach(m, &lc, 1, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_model_lora_attach(m, &lc, 1, &err) != CLLM_OK, "attaching twice fails");
    int32_t tok[8], tgt[8];
    tokens(tok, tgt, 8, c.vocab_size, 1);
    cllm_model_forward(m, tok, NULL, 1, 8, NULL, &err);
    float l0 = cllm_model_logits(m)[5];
    cllm_model_forward(b, tok, NULL, 1, 8, NULL, &err);
    CHECK(l0 == cllm_model_logits(b)[5], "B = 0: a fresh adapter leaves the logits bit-identical");
    char path[64];
    snprintf(path, sizeof path, "/tmp/test_lora_b%d.gguf", (int)getpid());
    CHECK(cllm_model_lora_save_gguf(m, path, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_model_lora_load_gguf(other, path, &err) != CLLM_OK, "an adapter for another shape is refused");
    CHECK(strstr(err.msg, "n_embd") != NULL, "the error names the field: %s", err.msg);
    CHECK(cllm_model_lora_config(other) == NULL, "a failed load leaves no adapters");
    /* the same adapter with alpha -1: refused deep in the adapter set-up, whose
     * message knew no file; the loader names it */
    char bad_path[80];
    snprintf(bad_path, sizeof bad_path, "/tmp/test_lora_alpha%d.gguf", (int)getpid());
    cllm_gguf *rg = NULL;
    cllm_gguf_writer *w = cllm_gguf_writer_create();
    CHECK(cllm_gguf_open(&rg, path, &err) == CLLM_OK && w, "reopen: %s", err.msg);
    for (uint64_t i = 0; rg && i < cllm_gguf_n_kv(rg); i++) {
        const cllm_gguf_kv *kv = cllm_gguf_kv_at(rg, i);
        if (strcmp(kv->key, "adapter.lora.alpha")) cllm_gguf_set_kv(w, kv, &err);
    }
    cllm_gguf_set_f32(w, "adapter.lora.alpha", -1.0f, &err);
    for (uint64_t i = 0; rg && i < cllm_gguf_n_tensors(rg); i++) {
        const cllm_gguf_tensor *t = cllm_gguf_tensor_at(rg, i);
        cllm_gguf_add_tensor(w, t->name, t->type, t->n_dims, t->dims, t->data, t->nbytes, &err);
    }
    CHECK(cllm_gguf_writer_write(w, bad_path, &err) == CLLM_OK, "write: %s", err.msg);
    cllm_gguf_writer_destroy(w);
    cllm_gguf_close(rg);
    cllm_model *fresh = make(&c, 0, 0, 5);
    CHECK(cllm_model_lora_load_gguf(fresh, bad_path, &err) != CLLM_OK && strstr(err.msg, "alpha") &&
              strstr(err.msg, bad_path),
          "alpha -1 refused naming the file: %s", err.msg);
    cllm_model_destroy(fresh);
    unlink(bad_path);
    unsigned t;
    CHECK(cllm_lora_targets_parse("q,x", &t, &err) != CLLM_OK && strstr(err.msg, "\"x\""), "unknown target named");
    CHECK(cllm_lora_targets_parse("q,q", &t, &err) != CLLM_OK, "duplicate target refused");
    cllm_model_config g = tiny(0);
    cllm_model *gm = make(&g, 0, 0, 1);
    cllm_lora_config gate = {2, 2, 1u << CLLM_LORA_GATE};
    CHECK(cllm_model_lora_attach(gm, &gate, 1, &err) != CLLM_OK, "gate on a GELU model is refused");
    cllm_lora_config bad = {0, 2, 1};
    CHECK(cllm_model_lora_attach(gm, &bad, 1, &err) != CLLM_OK, "rank 0 is refused");
    unlink(path);
    cllm_model_destroy(m);
    cllm_model_destroy(b);
    cllm_model_destroy(other);
    cllm_model_destroy(gm);
}

/* Frozen base: no gradient block; trainable memory is the adapters'. */
static void test_lora_frozen_base_memory(void) {
    cllm_model_config c;
    cllm_error err;
    cllm_model_preset("llama-10m", &c, &err);
    c.vocab_size = 512;
    cllm_model_options o = cllm_model_default_options();
    o.max_batch = 1;
    o.max_seq = 8;
    o.training = 1;
    cllm_model_memory full, frozen;
    cllm_model_memory_estimate(&c, &o, &full, &err);
    o.freeze_base = 1;
    cllm_model_memory_estimate(&c, &o, &frozen, &err);
    cllm_model *m = NULL;
    CHECK(cllm_model_create(&c, &o, &m, &err) == CLLM_OK, "%s", err.msg);
    cllm_lora_config lc = {8, 16, 0};
    cllm_lora_targets_parse("q,k,v,o", &lc.targets, &err);
    CHECK(cllm_model_lora_attach(m, &lc, 1, &err) == CLLM_OK, "%s", err.msg);
    size_t nl = cllm_model_lora_num_params(m);
    fprintf(stderr,
            "  llama-10m: full fine-tuning grads+AdamW %.1f MB; frozen base %.1f MB + LoRA r8 q,k,v,o "
            "%zu params -> grads+AdamW %.2f MB (%.2f%% of the model)\n",
            (full.grad_bytes + full.adamw_bytes) / 1e6, (frozen.grad_bytes + frozen.adamw_bytes) / 1e6, nl,
            3.0 * nl * 4 / 1e6, 100.0 * nl / (double)full.n_params);
    CHECK(frozen.grad_bytes == 0 && frozen.adamw_bytes == 0, "a frozen base has no gradient or optimizer memory");
    CHECK(cllm_model_grads(m) == NULL && cllm_model_lora_grads(m) != NULL, "only adapter gradients exist");
    for (int i = 0; i < cllm_model_num_tensors(m); i++)
        CHECK(!cllm_model_tensor(m, i)->trainable && !cllm_model_tensor(m, i)->grad, "base tensor %d frozen", i);
    CHECK(nl * 50 < full.n_params, "adapters are a small fraction of the model");
    cllm_model_destroy(m);
}

/* ---- QLoRA ---------------------------------------------------------------------- */

/* A llama-shaped model whose matrices all have rows of 256 (the k-quant
 * block), written in `type` to path. */
static cllm_model_config qcfg(void) {
    cllm_model_config c = tiny(1);
    c.vocab_size = 64;
    c.n_embd = 256;
    c.ffn_hidden = 256;
    c.n_head = 4;
    c.n_kv_head = 2;
    c.tied_embeddings = 0;
    return c;
}

static int write_quantized(const cllm_model_config *c, uint32_t type, const char *path) {
    cllm_model *m = make(c, 0, 0, 31);
    if (!m) return 0;
    cllm_model_save_params sp = cllm_model_save_default_params();
    sp.weight_type = type;
    cllm_error err;
    int ok = cllm_model_save_gguf(m, path, &sp, &err) == CLLM_OK;
    if (!ok) fprintf(stderr, "save: %s\n", err.msg);
    cllm_model_destroy(m);
    return ok;
}

static cllm_model_options qopts(void) {
    cllm_model_options o = cllm_model_default_options();
    o.max_batch = 2;
    o.max_seq = 8;
    o.training = 1;
    o.freeze_base = 1;
    return o;
}

/* The QLoRA model (mapped) and the LoRA-on-dequantized-f32 model of one file,
 * both with the same adapters (nonzero B). */
static int qlora_pair(const char *path, const cllm_lora_config *lc, cllm_model **q, cllm_model **f) {
    cllm_error err;
    cllm_model_options o = qopts();
    *q = *f = NULL;
    cllm_gguf *g = NULL;
    if (cllm_gguf_open(&g, path, &err) != CLLM_OK || cllm_model_from_gguf_mapped(g, &o, q, &err) != CLLM_OK ||
        cllm_model_load_gguf(path, &o, 1, f, &err) != CLLM_OK) {
        fprintf(stderr, "load %s: %s\n", path, err.msg);
        return 0;
    }
    if (cllm_model_lora_attach(*q, lc, 5, &err) != CLLM_OK || cllm_model_lora_attach(*f, lc, 5, &err) != CLLM_OK) {
        fprintf(stderr, "attach: %s\n", err.msg);
        return 0;
    }
    randomize_b(*q, 6);
    randomize_b(*f, 6);
    return 1;
}

/* Forward (loss, logits) and backward (every adapter gradient) on a q8_0,
 * a q4_K and every other block-type base equal LoRA on the dequantized f32 model. */
static void test_qlora_matches_lora_on_dequantized_base(void) {
    /* q8_0 and q4_K as the issue asks; the other block types share the path (dequantize_rows) */
    const uint32_t types[] = {CLLM_GGML_Q8_0, CLLM_GGML_Q4_K, CLLM_GGML_Q4_0, CLLM_GGML_Q4_1, CLLM_GGML_Q5_0,
                              CLLM_GGML_Q5_1, CLLM_GGML_Q2_K, CLLM_GGML_Q3_K, CLLM_GGML_Q5_K, CLLM_GGML_Q6_K};
    cllm_model_config c = qcfg();
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        char path[96];
        snprintf(path, sizeof path, "/tmp/test_qlora_%d_%s.gguf", (int)getpid(), cllm_ggml_type_name(types[ti]));
        CHECK(write_quantized(&c, types[ti], path), "write %s", path);
        cllm_error err;
        cllm_gguf *g = NULL;
        CHECK(cllm_gguf_open(&g, path, &err) == CLLM_OK && cllm_lora_base_is_quantized(g), "the file is quantized");
        cllm_gguf_close(g);
        cllm_lora_config lc = {4, 8.0f, (1u << CLLM_LORA_TARGET_COUNT) - 1};
        cllm_model *q = NULL, *f = NULL;
        CHECK(qlora_pair(path, &lc, &q, &f), "models of %s", path);
        if (!q || !f) continue;
        CHECK(cllm_model_is_mapped(q) && !cllm_model_is_mapped(f), "one mapped, one f32");
        int32_t tok[16], tgt[16];
        tokens(tok, tgt, 16, c.vocab_size, 12);
        float lq = 0, lf = 0;
        cllm_model_lora_zero_grad(q);
        cllm_model_lora_zero_grad(f);
        CHECK(cllm_model_forward(q, tok, tgt, 2, 8, &lq, &err) == CLLM_OK, "qlora forward: %s", err.msg);
        double wl = 0;
        for (int i = 0; i < 16 * c.vocab_size; i++) wl = fmax(wl, fabs(cllm_model_logits(q)[i]));
        float *lgq = malloc(sizeof(float) * 16 * c.vocab_size);
        memcpy(lgq, cllm_model_logits(q), sizeof(float) * 16 * c.vocab_size);
        CHECK(cllm_model_forward(f, tok, tgt, 2, 8, &lf, &err) == CLLM_OK, "f32 forward: %s", err.msg);
        double dl = 0;
        for (int i = 0; i < 16 * c.vocab_size; i++) dl = fmax(dl, fabs(lgq[i] - cllm_model_logits(f)[i]));
        free(lgq);
        CHECK_NEAR(lq, lf, 0, 1e-5, "QLoRA loss == LoRA on the dequantized base");
        CHECK(dl <= 1e-4, "logits differ by %g (tolerance 1e-4; max |logit| %g)", dl, wl);
        CHECK(cllm_model_backward(q, 1.0f / (float)cllm_model_num_targets(q), &err) == CLLM_OK, "%s", err.msg);
        CHECK(cllm_model_backward(f, 1.0f / (float)cllm_model_num_targets(f), &err) == CLLM_OK, "%s", err.msg);
        double gmax = 0, gdiff = 0;
        const float *gq = cllm_model_lora_grads(q), *gf = cllm_model_lora_grads(f);
        for (size_t i = 0; i < cllm_model_lora_num_params(q); i++) {
            gmax = fmax(gmax, fabs(gf[i]));
            gdiff = fmax(gdiff, fabs(gq[i] - gf[i]));
        }
        fprintf(stderr, "  %s base: loss %.7f vs %.7f, max |dlogit| %.3g, adapter grads max |diff| %.3g of max |g| %.3g\n",
                cllm_ggml_type_name(types[ti]), lq, lf, dl, gdiff, gmax);
        CHECK(gmax > 1e-4, "gradients are not vacuous");
        CHECK(gdiff <= 1e-3 * gmax, "adapter gradients differ by %g (tolerance 1e-3 x %g)", gdiff, gmax);
        CHECK(cllm_model_grads(q) == NULL, "the quantized base has no gradient block");
        cllm_model_destroy(q);
        cllm_model_destroy(f);
        unlink(path);
    }
}

/* Float central differences on adapter entries through a q4_K base. */
static void test_qlora_finite_differences(void) {
    cllm_model_config c = qcfg();
    char path[96];
    snprintf(path, sizeof path, "/tmp/test_qlora_fd_%d.gguf", (int)getpid());
    CHECK(write_quantized(&c, CLLM_GGML_Q4_K, path), "write");
    cllm_lora_config lc = {2, 4.0f, 0};
    cllm_error err;
    cllm_lora_targets_parse("q,o,gate,down", &lc.targets, &err);
    cllm_model *q = NULL, *f = NULL;
    CHECK(qlora_pair(path, &lc, &q, &f), "models");
    if (!q) return;
    int32_t tok[16], tgt[16];
    tokens(tok, tgt, 16, c.vocab_size, 4);
    float loss;
    cllm_model_lora_zero_grad(q);
    cllm_model_forward(q, tok, tgt, 2, 8, &loss, &err);
    cllm_model_backward(q, 1.0f / (float)cllm_model_num_targets(q), &err);
    int checked = 0;
    for (int i = 0; i < cllm_model_lora_num_tensors(q); i++) {
        const cllm_tensor *t = cllm_model_lora_tensor(q, i);
        for (size_t j = 0; j < t->numel; j += t->numel / 2 + 1) {
            float x0 = t->data[j], h = 1e-2f, lp, lm;
            t->data[j] = x0 + h;
            cllm_model_forward(q, tok, tgt, 2, 8, &lp, &err);
            t->data[j] = x0 - h;
            cllm_model_forward(q, tok, tgt, 2, 8, &lm, &err);
            t->data[j] = x0;
            double num = ((double)lp - lm) / (2.0 * h);
            /* float losses ~4.2 with h = 1e-2: rounding ~1e-7*4.2/1e-2 ~ 4e-5, curvature O(h^2) */
            CHECK_NEAR(t->grad[j], num, 2e-4, 2e-2, t->name);
            checked++;
        }
    }
    fprintf(stderr, "  %d adapter entries through a q4_K base checked by central differences\n", checked);
    cllm_model_destroy(q);
    cllm_model_destroy(f);
    unlink(path);
}

/* A few AdamW steps: the loss curve of QLoRA (q8_0 base) follows LoRA on the
 * dequantized base; tolerance 1e-4 relative per step (the gradients differ
 * by float rounding, AdamW normalises them, so curves drift slowly). */
static void test_qlora_training_curve(void) {
    cllm_model_config c = qcfg();
    char path[96];
    snprintf(path, sizeof path, "/tmp/test_qlora_tr_%d.gguf", (int)getpid());
    CHECK(write_quantized(&c, CLLM_GGML_Q8_0, path), "write");
    cllm_lora_config lc = {4, 8.0f, 0};
    cllm_error err;
    cllm_lora_targets_parse("q,v,o,down", &lc.targets, &err);
    cllm_model *m[2] = {NULL, NULL};
    CHECK(qlora_pair(path, &lc, &m[0], &m[1]), "models");
    if (!m[0]) return;
    int32_t tok[16], tgt[16];
    tokens(tok, tgt, 16, c.vocab_size, 21);
    for (int i = 0; i < 16; i++) tgt[i] = tok[(i + 1) % 16]; /* learnable: predict the next token */
    double first = 0, last = 0, worst = 0;
    size_t n = cllm_model_lora_num_params(m[0]);
    float *mom[2][2];
    for (int k = 0; k < 2; k++) mom[k][0] = calloc(n, sizeof(float)), mom[k][1] = calloc(n, sizeof(float));
    const int steps = 8;
    for (int s = 0; s < steps; s++) {
        float l[2];
        for (int k = 0; k < 2; k++) {
            cllm_model_lora_zero_grad(m[k]);
            cllm_model_forward(m[k], tok, tgt, 2, 8, &l[k], &err);
            cllm_model_backward(m[k], 1.0f / (float)cllm_model_num_targets(m[k]), &err);
            float *p = cllm_model_lora_params(m[k]), *g = cllm_model_lora_grads(m[k]);
            const double b1 = 0.9, b2 = 0.999, lr = 1e-2;
            for (size_t i = 0; i < n; i++) { /* plain AdamW, no decay: the same update for both models */
                mom[k][0][i] = (float)(b1 * mom[k][0][i] + (1 - b1) * g[i]);
                mom[k][1][i] = (float)(b2 * mom[k][1][i] + (1 - b2) * (double)g[i] * g[i]);
                double mh = mom[k][0][i] / (1 - pow(b1, s + 1)), vh = mom[k][1][i] / (1 - pow(b2, s + 1));
                p[i] -= (float)(lr * mh / (sqrt(vh) + 1e-8));
            }
        }
        worst = fmax(worst, fabs((double)l[0] - l[1]) / fabs((double)l[1]));
        if (s == 0) first = l[0];
        last = l[0];
    }
    fprintf(stderr, "  q8_0 QLoRA %d steps: loss %.4f -> %.4f; worst relative gap to LoRA on the dequantized base %.3g\n",
            steps, first, last, worst);
    CHECK(last < first - 0.05, "the loss falls (%g -> %g)", first, last);
    CHECK(worst <= 1e-4, "loss curves differ by %g relative (tolerance 1e-4)", worst);
    for (int k = 0; k < 2; k++) free(mom[k][0]), free(mom[k][1]), cllm_model_destroy(m[k]);
    unlink(path);
}

/* Memory: the QLoRA estimate of a q4_K file is well under LoRA on f32; a
 * mapped model refuses training without a frozen base. */
static void test_qlora_memory_and_refusals(void) {
    cllm_model_config c = qcfg();
    char path[96];
    snprintf(path, sizeof path, "/tmp/test_qlora_mem_%d.gguf", (int)getpid());
    CHECK(write_quantized(&c, CLLM_GGML_Q4_K, path), "write");
    cllm_error err;
    cllm_gguf *g = NULL;
    CHECK(cllm_gguf_open(&g, path, &err) == CLLM_OK, "%s", err.msg);
    cllm_lora_config lc = {8, 16.0f, (1u << CLLM_LORA_Q) | (1u << CLLM_LORA_V)};
    cllm_model_options o = qopts();
    cllm_lora_memory f32m, qm;
    CHECK(cllm_lora_memory_estimate(&c, &lc, &o, NULL, &f32m, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_lora_memory_estimate(&c, &lc, &o, g, &qm, &err) == CLLM_OK, "%s", err.msg);
    fprintf(stderr, "  base bytes: f32 %zu, q4_K %zu; adapters %zu params\n", f32m.base_bytes, qm.base_bytes,
            qm.adapter_params);
    CHECK(qm.adapter_bytes == f32m.adapter_bytes && qm.activation_bytes == f32m.activation_bytes, "same adapters");
    CHECK(qm.base_bytes * 2 < f32m.base_bytes, "a q4_K base (with its scratch) is under half the f32 one");
    cllm_model *m = NULL;
    cllm_gguf *g2 = NULL;
    cllm_gguf_open(&g2, path, &err);
    CHECK(cllm_model_from_gguf_mapped(g2, &o, &m, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_model_lora_attach(m, &lc, 1, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_model_lora_num_params(m) == qm.adapter_params, "estimate %zu == attached %zu", qm.adapter_params,
          cllm_model_lora_num_params(m));
    cllm_model_destroy(m);
    o.freeze_base = 0;
    CHECK(cllm_gguf_open(&g2, path, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_model_from_gguf_mapped(g2, &o, &m, &err) == CLLM_ERR_ARG && strstr(err.msg, "freeze_base"),
          "training a mapped model without a frozen base is refused: %s", err.msg);
    cllm_gguf_close(g);
    unlink(path);
}

/* The one new backward of QLoRA, dX = dY W of the frozen quantized base
 * (model_linear_backward on a mapped q4_K model: the fused qkv of three file
 * parts, ffn_down, and the output head), against double-precision central
 * differences of L(x) = sum R . (W x) with W the dequantized weights in
 * double; the forward against W x in double. Tolerance 1e-5 relative to
 * the largest value + 1e-6 absolute: float GEMMs over at most 512 terms of
 * O(1) products (rounding ~1e-7 each) against an exact double reference; L is
 * linear in x, so the differences have no truncation error. */
static void test_qlora_input_gradient_double_fd(void) {
    cllm_model_config c = qcfg();
    char path[96];
    snprintf(path, sizeof path, "/tmp/test_qlora_dfd_%d.gguf", (int)getpid());
    CHECK(write_quantized(&c, CLLM_GGML_Q4_K, path), "write");
    cllm_error err;
    cllm_model_options o = qopts();
    cllm_model *q = NULL, *f = NULL;
    cllm_gguf *g = NULL;
    CHECK(cllm_gguf_open(&g, path, &err) == CLLM_OK && cllm_model_from_gguf_mapped(g, &o, &q, &err) == CLLM_OK,
          "mapped: %s", err.msg);
    CHECK(cllm_model_load_gguf(path, &o, 1, &f, &err) == CLLM_OK, "f32: %s", err.msg);
    if (!q || !f) return;
    const int HS = c.n_embd / c.n_head, QKV = (c.n_head + 2 * c.n_kv_head) * HS;
    const struct { int l, role, IC, OC; const char *name; } cases[3] = {
        {1, LIN_QKV, c.n_embd, QKV, "blk.1.attn_qkv.weight"},
        {0, LIN_FFN_DOWN, c.ffn_hidden, c.n_embd, "blk.0.ffn_down.weight"},
        {-1, LIN_OUTPUT, c.n_embd, c.vocab_size, "output.weight"}};
    enum { N = 3 };
    cllm_rng r;
    cllm_rng_seed(&r, 77);
    for (int ci = 0; ci < 3; ci++) {
        const int IC = cases[ci].IC, OC = cases[ci].OC;
        const cllm_tensor *W = cllm_model_find_tensor(f, cases[ci].name);
        CHECK(W && W->shape[0] == OC && W->shape[1] == IC, "%s in the f32 model", cases[ci].name);
        if (!W) continue;
        float *x = malloc(sizeof(float) * N * IC), *dx = calloc((size_t)N * IC, sizeof(float));
        float *R = malloc(sizeof(float) * N * OC), *y = malloc(sizeof(float) * N * OC);
        for (int i = 0; i < N * IC; i++) x[i] = cllm_rng_normal(&r);
        for (int i = 0; i < N * OC; i++) R[i] = cllm_rng_normal(&r);
        model_linear_forward(q, cases[ci].l, cases[ci].role, y, x, NULL, NULL, N, IC, OC);
        model_linear_backward(q, cases[ci].l, cases[ci].role, dx, NULL, NULL, R, x, NULL, N, IC, OC);
        double fworst = 0, fmaxv = 0;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < OC; j++) {
                double e = 0;
                for (int k = 0; k < IC; k++) e += (double)W->data[(size_t)j * IC + k] * x[(size_t)i * IC + k];
                fworst = fmax(fworst, fabs(e - y[(size_t)i * OC + j]));
                fmaxv = fmax(fmaxv, fabs(e));
            }
        /* L(x) in double, central differences on a spread of entries */
        double *xd = malloc(sizeof(double) * N * IC);
        for (int i = 0; i < N * IC; i++) xd[i] = x[i];
        double gworst = 0, gmax = 0;
        int checked = 0;
        for (int idx = 0; idx < N * IC; idx += 37) {
            const double h = 1e-3, x0 = xd[idx];
            double Lpm[2];
            for (int sgn = 0; sgn < 2; sgn++) {
                xd[idx] = x0 + (sgn ? -h : h);
                const int i = idx / IC;
                double L = 0;
                for (int j = 0; j < OC; j++) {
                    double e = 0;
                    for (int k = 0; k < IC; k++) e += (double)W->data[(size_t)j * IC + k] * xd[(size_t)i * IC + k];
                    L += (double)R[(size_t)i * OC + j] * e;
                }
                Lpm[sgn] = L;
            }
            xd[idx] = x0;
            const double num = (Lpm[0] - Lpm[1]) / (2 * h);
            gworst = fmax(gworst, fabs(num - dx[idx]));
            gmax = fmax(gmax, fabs(num));
            checked++;
        }
        fprintf(stderr, "  q4_K %s: forward max |err| %.3g (max %.3g); dX vs double differences, %d entries: max |err| %.3g (max %.3g)\n",
                cases[ci].name, fworst, fmaxv, checked, gworst, gmax);
        CHECK(fworst <= 1e-5 * fmaxv + 1e-6, "%s forward off by %g", cases[ci].name, fworst);
        CHECK(gworst <= 1e-5 * gmax + 1e-6, "%s dX off by %g", cases[ci].name, gworst);
        CHECK(gmax > 1e-2, "nonvacuous");
        free(x), free(dx), free(R), free(y), free(xd);
    }
    cllm_model_destroy(q);
    cllm_model_destroy(f);
    unlink(path);
}

int main(void) {
    cllm_kernels_set_threads(2);
    TEST_RUN(test_lora_gradients_match_chain_rule);
    TEST_RUN(test_lora_finite_differences);
    TEST_RUN(test_lora_merge_equals_adapter_at_inference);
    TEST_RUN(test_lora_fresh_adapter_is_identity_and_bad_files);
    TEST_RUN(test_lora_frozen_base_memory);
    TEST_RUN(test_qlora_matches_lora_on_dequantized_base);
    TEST_RUN(test_qlora_finite_differences);
    TEST_RUN(test_qlora_input_gradient_double_fd);
    TEST_RUN(test_qlora_training_curve);
    TEST_RUN(test_qlora_memory_and_refusals);
    return test_finish();
}

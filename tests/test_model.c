/*
 * test_model.c: the transformer's config validation, tensor table, memory
 * plan, determinism, loss at init, masked targets, gradient accumulation,
 * a directional finite-difference check (with dropout), and incremental
 * KV-cache decoding against the full forward pass for every position
 * encoding. PyTorch parity lives in test_model_parity.c.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/kernels/kernels.h"
#include "cllm/model/model.h"
#include "cllm/core/rng.h"
#include "test.h"

static cllm_model_config tiny(const char *preset) {
    cllm_model_config c;
    cllm_error err;
    if (cllm_model_preset(preset, &c, &err) != CLLM_OK) {
        fprintf(stderr, "%s\n", err.msg);
        abort();
    }
    return c;
}

static cllm_model *make(const cllm_model_config *c, int B, int T, int training, int kv_slots) {
    cllm_model_options o = cllm_model_default_options();
    o.max_batch = B;
    o.max_seq = T;
    o.training = training;
    o.kv_slots = kv_slots;
    cllm_model *m = NULL;
    cllm_error err;
    if (cllm_model_create(c, &o, &m, &err) != CLLM_OK) {
        fprintf(stderr, "create: %s\n", err.msg);
        return NULL;
    }
    return m;
}

static void random_tokens(int32_t *t, size_t n, int V, uint64_t seed) {
    cllm_rng r;
    cllm_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) t[i] = (int32_t)cllm_rng_below(&r, (uint64_t)V);
}

/* Expects validation to fail with CLLM_ERR_ARG and a message containing `field`. */
static void expect_invalid(const cllm_model_config *c, const char *field) {
    cllm_error err;
    err.msg[0] = 0;
    cllm_status st = cllm_model_config_validate(c, &err);
    CHECK(st == CLLM_ERR_ARG, "config with bad %s accepted", field);
    CHECK(strstr(err.msg, field) != NULL, "error '%s' does not name %s", err.msg, field);
    cllm_model *m = (cllm_model *)1;
    CHECK(cllm_model_create(c, NULL, &m, &err) == CLLM_ERR_ARG && m == NULL, "create accepted bad %s", field);
}

static void test_model_config_validation_names_field(void) {
    cllm_model_config base = tiny("tiny-llama"), c;
    cllm_error err;
    CHECK(cllm_model_config_validate(&base, &err) == CLLM_OK, "tiny-llama valid: %s", err.msg);
    c = base; c.n_head = 0; expect_invalid(&c, "n_head");
    c = base; c.n_embd = 30; c.n_head = 4; c.n_kv_head = 4; expect_invalid(&c, "n_embd");
    c = base; c.n_layer = CLLM_MODEL_MAX_LAYERS + 1; expect_invalid(&c, "n_layer");
    c = base; c.n_layer = 0; expect_invalid(&c, "n_layer");
    c = base; c.n_kv_head = 3; expect_invalid(&c, "n_kv_head");      /* 3 does not divide 4 */
    c = base; c.n_kv_head = 8; expect_invalid(&c, "n_kv_head");      /* > n_head */
    c = base; c.vocab_size = -5; expect_invalid(&c, "vocab_size");
    c = base; c.context_length = 0; expect_invalid(&c, "context_length");
    c = base; c.ffn_hidden = 0; expect_invalid(&c, "ffn_hidden");
    c = base; c.dropout = 1.0f; expect_invalid(&c, "dropout");
    c = base; c.dropout = NAN; expect_invalid(&c, "dropout");
    c = base; c.norm_eps = 0.0f; expect_invalid(&c, "norm_eps");
    c = base; c.rope_theta = -1.0f; expect_invalid(&c, "rope_theta");
    c = base; c.n_embd = 36; c.n_head = 4; c.n_kv_head = 2; expect_invalid(&c, "rope"); /* HS 9 odd */
    c = base; c.pos = (cllm_pos_kind)7; expect_invalid(&c, "pos");
    c = base; c.mlp = CLLM_MLP_COUNT; expect_invalid(&c, "mlp");
    c = base; c.bias = 2; expect_invalid(&c, "bias");
    c = base; c.qkv_bias = 2; expect_invalid(&c, "qkv_bias");
    c = base; c.n_embd = 4096; c.n_head = 2; c.n_kv_head = 1; expect_invalid(&c, "exceeds 1024 for rope");
    c = base; c.rope_neox = -1; expect_invalid(&c, "rope_neox");
    c = base; c.sliding_window = -1; expect_invalid(&c, "sliding_window");
    c = base; c.rope_scaling = CLLM_ROPE_SCALING_COUNT; expect_invalid(&c, "rope_scaling");
    c = base; c.rope_scaling = CLLM_ROPE_SCALING_LINEAR; c.rope_factor = 0.0f; expect_invalid(&c, "rope_factor");
    c = base; c.rope_scaling = CLLM_ROPE_SCALING_LLAMA3; c.rope_low_freq_factor = 4.0f; expect_invalid(&c, "low");
    c = base; c.rope_scaling = CLLM_ROPE_SCALING_LLAMA3; c.rope_orig_context = 0; expect_invalid(&c, "rope_orig_context");
    c = base; c.pos = CLLM_POS_LEARNED; c.rope_scaling = CLLM_ROPE_SCALING_LINEAR; expect_invalid(&c, "pos = rope");
    /* text overrides */
    c = base;
    CHECK(cllm_model_config_set(&c, "n_layer", "7", &err) == CLLM_OK && c.n_layer == 7, "set n_layer");
    CHECK(cllm_model_config_set(&c, "pos", "sinusoidal", &err) == CLLM_OK && c.pos == CLLM_POS_SINUSOIDAL, "set pos");
    CHECK(cllm_model_config_set(&c, "bias", "true", &err) == CLLM_OK && c.bias == 1, "set bias");
    CHECK(cllm_model_config_set(&c, "rope_scaling", "llama3", &err) == CLLM_OK &&
              c.rope_scaling == CLLM_ROPE_SCALING_LLAMA3, "set rope_scaling");
    CHECK(cllm_model_config_set(&c, "rope_scaling", "yarn", &err) == CLLM_ERR_ARG && strstr(err.msg, "rope_scaling"),
          "bad rope_scaling");
    CHECK(cllm_model_config_set(&c, "sliding_window", "4096", &err) == CLLM_OK && c.sliding_window == 4096,
          "set sliding_window");
    CHECK(cllm_model_config_set(&c, "qkv_bias", "1", &err) == CLLM_OK && c.qkv_bias == 1, "set qkv_bias");
    CHECK(cllm_model_config_set(&c, "n_layer", "7x", &err) == CLLM_ERR_ARG && strstr(err.msg, "n_layer"), "bad int");
    CHECK(cllm_model_config_set(&c, "mlp", "relu", &err) == CLLM_ERR_ARG && strstr(err.msg, "mlp"), "bad enum");
    CHECK(cllm_model_config_set(&c, "n_layers", "2", &err) == CLLM_ERR_ARG && strstr(err.msg, "n_layers"), "unknown key");
    CHECK(cllm_model_preset("gpt5", &c, &err) == CLLM_ERR_ARG && strstr(err.msg, "gpt5") && strstr(err.msg, "gpt2"),
          "unknown preset lists known ones: %s", err.msg);
    /* options */
    cllm_model_options o = cllm_model_default_options();
    o.max_seq = base.context_length + 1;
    cllm_model *m = NULL;
    CHECK(cllm_model_create(&base, &o, &m, &err) == CLLM_ERR_ARG && strstr(err.msg, "max_seq"), "max_seq > context");
    o = cllm_model_default_options();
    o.max_batch = 0;
    CHECK(cllm_model_create(&base, &o, &m, &err) == CLLM_ERR_ARG && strstr(err.msg, "max_batch"), "max_batch 0");
    /* an absurd plan is refused before allocating */
    cllm_model_config big = tiny("gpt2");
    o = cllm_model_default_options();
    o.max_batch = 65536;
    o.max_seq = 1024;
    o.training = 1;
    CHECK(cllm_model_create(&big, &o, &m, &err) == CLLM_ERR_LIMIT && m == NULL, "huge activations refused: %s", err.msg);
}

/* Independent closed-form count: what each preset family must total. */
static size_t formula_params(const cllm_model_config *c) {
    size_t C = c->n_embd, V = c->vocab_size, H = c->ffn_hidden, L = c->n_layer;
    size_t HS = C / c->n_head, QKV = (c->n_head + 2 * (size_t)c->n_kv_head) * HS;
    size_t up = c->mlp == CLLM_MLP_SWIGLU ? 2 * H : H;
    size_t nb = c->norm == CLLM_NORM_LAYERNORM && c->bias; /* norm has a bias */
    size_t per = C * (1 + nb) * 2 + QKV * C + C * C + up * C + H * C;
    if (c->bias) per += QKV + C + up + C;
    else if (c->qkv_bias) per += QKV; /* Qwen2: q/k/v biases alone */
    size_t n = V * C + L * per + C * (1 + nb);
    if (c->pos == CLLM_POS_LEARNED) n += (size_t)c->context_length * C;
    if (!c->tied_embeddings) n += V * C;
    return n;
}

static void test_model_parameter_counts_match_known_sizes(void) {
    /* Published GPT-2 sizes with tied embeddings, vocab 50257, context 1024. */
    static const struct { const char *name; size_t n; } known[] = {
        {"gpt2", 124439808}, {"gpt2-medium", 354823168}, {"gpt2-large", 774030080}, {"gpt2-xl", 1557611200},
        /* Hugging Face's counts for Qwen/Qwen2.5-0.5B and mistralai/Mistral-7B-v0.1 */
        {"qwen2-0.5b", 494032768}, {"mistral-7b", 7241732096},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        cllm_model_config c = tiny(known[i].name);
        size_t n = cllm_model_config_num_params(&c);
        CHECK(n == known[i].n, "%s: %zu params, expected %zu", known[i].name, n, known[i].n);
    }
    /* Every preset: table count equals the closed form, and names match sizes. */
    for (int i = 0; i < cllm_model_preset_count(); i++) {
        cllm_model_config c = tiny(cllm_model_preset_name(i));
        cllm_error err;
        CHECK(cllm_model_config_validate(&c, &err) == CLLM_OK, "%s: %s", cllm_model_preset_name(i), err.msg);
        CHECK(cllm_model_config_num_params(&c) == formula_params(&c), "%s: table %zu vs formula %zu",
              cllm_model_preset_name(i), cllm_model_config_num_params(&c), formula_params(&c));
    }
    static const struct { const char *name; double lo, hi; } approx[] = {
        {"llama-1m", 0.8e6, 1.3e6}, {"llama-10m", 8e6, 12e6}, {"llama-30m", 25e6, 35e6},
        {"llama-110m", 100e6, 120e6}, {"llama-350m", 320e6, 380e6}, {"llama-1b", 0.95e9, 1.2e9},
    };
    for (size_t i = 0; i < sizeof approx / sizeof approx[0]; i++) {
        cllm_model_config c = tiny(approx[i].name);
        double n = (double)cllm_model_config_num_params(&c);
        CHECK(n >= approx[i].lo && n <= approx[i].hi, "%s has %.0f params", approx[i].name, n);
    }
    /* FLOPs: GPT-2 124M at T=1024, PaLM convention: 2*(85M block matmuls + 38.6M head) + 4*L*T*C. */
    cllm_model_config g = tiny("gpt2");
    double matmul = 12.0 * (2304.0 * 768 + 768.0 * 768 + 2.0 * 3072 * 768) + 50257.0 * 768;
    CHECK_NEAR(cllm_model_flops_per_token(&g, 1024), 2 * matmul + 4.0 * 12 * 1024 * 768, 0, 1e-12,
               "gpt2 forward flops/token (exact formula)");
}

static void test_model_tensor_table_covers_every_parameter(void) {
    const char *names[] = {"tiny-gpt2", "tiny-llama"};
    for (int k = 0; k < 2; k++) {
        cllm_model_config c = tiny(names[k]);
        c.bias = k == 1 ? 1 : c.bias; /* llama with biases too: more tensors to check */
        cllm_model *m = make(&c, 2, 8, 1, 0);
        CHECK(m != NULL, "create %s", names[k]);
        if (!m) continue;
        float *P = cllm_model_params(m), *G = cllm_model_grads(m);
        size_t np = cllm_model_num_params(m), total = 0;
        CHECK(((uintptr_t)P % 64) == 0 && ((uintptr_t)G % 64) == 0, "blocks 64-byte aligned");
        /* mark coverage: every parameter element belongs to exactly one tensor */
        unsigned char *owner = calloc(np, 1);
        int overlaps = 0, bad = 0;
        for (int i = 0; i < cllm_model_num_tensors(m); i++) {
            const cllm_tensor *t = cllm_model_tensor(m, i);
            total += t->numel;
            if (t->data != P + t->offset || t->grad != G + t->offset || t->offset + t->numel > np ||
                ((uintptr_t)t->data % 64) != 0 || t->decay != (t->ndim == 2) ||
                (size_t)(t->shape[0] * t->shape[1]) != t->numel)
                bad++;
            for (size_t j = 0; j < t->numel && t->offset + j < np; j++) overlaps += owner[t->offset + j]++ != 0;
            CHECK(cllm_model_find_tensor(m, t->name) == t, "find %s", t->name);
        }
        free(owner);
        CHECK(bad == 0 && overlaps == 0, "%s: %d bad tensors, %d overlapping elements", names[k], bad, overlaps);
        CHECK(total == cllm_model_config_num_params(&c), "%s: table sums to %zu", names[k], total);
        CHECK(cllm_model_tensor(m, -1) == NULL && cllm_model_tensor(m, cllm_model_num_tensors(m)) == NULL, "range");
        CHECK(cllm_model_find_tensor(m, "blk.9.attn_q.weight") == NULL, "absent name");
        /* the GGUF names and shapes */
        int HS = c.n_embd / c.n_head, QKV = (c.n_head + 2 * c.n_kv_head) * HS;
        const cllm_tensor *t = cllm_model_find_tensor(m, "blk.1.attn_qkv.weight");
        CHECK(t && t->shape[0] == QKV && t->shape[1] == c.n_embd && t->layer == 1, "attn_qkv shape");
        t = cllm_model_find_tensor(m, k == 0 ? "blk.0.ffn_up.weight" : "blk.0.ffn_gate_up.weight");
        CHECK(t && t->shape[0] == (k == 0 ? 1 : 2) * c.ffn_hidden && t->shape[1] == c.n_embd, "ffn up shape");
        t = cllm_model_find_tensor(m, "blk.0.ffn_down.weight");
        CHECK(t && t->shape[0] == c.n_embd && t->shape[1] == c.ffn_hidden, "ffn_down shape");
        CHECK((cllm_model_find_tensor(m, "position_embd.weight") != NULL) == (k == 0), "position_embd iff learned");
        CHECK((cllm_model_find_tensor(m, "output.weight") != NULL) == (k == 1), "output.weight iff untied");
        CHECK((cllm_model_find_tensor(m, "output_norm.bias") != NULL) == (k == 0), "norm bias iff LayerNorm+bias");
        const cllm_tensor *e = cllm_model_find_tensor(m, "token_embd.weight");
        CHECK(e && e->decay == 1 && e->shape[0] == c.vocab_size, "embeddings decayed (nanoGPT rule)");
        /* memory estimate agrees with the table */
        cllm_model_memory mem;
        cllm_error err;
        CHECK(cllm_model_memory_estimate(&c, cllm_model_get_options(m), &mem, &err) == CLLM_OK, "%s", err.msg);
        CHECK(mem.n_params == total && mem.param_bytes == np * 4 && mem.grad_bytes == np * 4 &&
                  mem.adamw_bytes == 2 * np * 4 && mem.kv_cache_bytes == 0 && mem.activation_bytes > 0,
              "memory estimate fields");
        cllm_model_destroy(m);
    }
    cllm_model_destroy(NULL);
}

static void test_model_init_is_deterministic_and_loss_near_ln_vocab(void) {
    cllm_model_config c = tiny("tiny-gpt2");
    c.vocab_size = 256;
    enum { B = 2, T = 16 };
    cllm_model *a = make(&c, B, T, 1, 0), *b = make(&c, B, T, 1, 0);
    CHECK(a && b, "create");
    if (!a || !b) goto out;
    int32_t tok[B * T], tgt[B * T];
    random_tokens(tok, B * T, c.vocab_size, 1);
    random_tokens(tgt, B * T, c.vocab_size, 2);
    int threads = cllm_kernels_threads();
    cllm_kernels_set_threads(1);
    cllm_model_init_weights(a, 42);
    cllm_kernels_set_threads(2);
    cllm_model_init_weights(b, 42);
    cllm_kernels_set_threads(threads);
    size_t np = cllm_model_num_params(a);
    CHECK(!memcmp(cllm_model_params(a), cllm_model_params(b), np * 4), "same seed, same weights (1 vs 2 threads)");
    float la, lb;
    cllm_error err;
    CHECK(cllm_model_forward(a, tok, tgt, B, T, &la, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_model_forward(b, tok, tgt, B, T, &lb, &err) == CLLM_OK, "%s", err.msg);
    CHECK(la == lb, "same loss bits %.9g %.9g", la, lb);
    /* std 0.02 weights give near-uniform predictions: loss ~ ln(256) = 5.545. */
    CHECK_NEAR(la, log(256.0), 0.05, 0, "loss at init vs ln(V) (logit std ~0.02*sqrt(C)*|h|, tiny)");
    cllm_model_zero_grad(a);
    cllm_model_zero_grad(b);
    CHECK(cllm_model_backward(a, 1.0f / (float)cllm_model_num_targets(a), &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_model_backward(b, 1.0f / (float)cllm_model_num_targets(b), &err) == CLLM_OK, "%s", err.msg);
    CHECK(!memcmp(cllm_model_grads(a), cllm_model_grads(b), np * 4), "same gradients bit for bit");
    double gn = 0;
    for (size_t i = 0; i < np; i++) gn += (double)cllm_model_grads(a)[i] * cllm_model_grads(a)[i];
    CHECK(gn > 0 && isfinite(gn), "gradient nonzero and finite (%g)", gn);
    /* init statistics: a residual projection has std 0.02/sqrt(2L) = 0.01 for L=2 */
    const cllm_tensor *t = cllm_model_find_tensor(a, "blk.0.ffn_down.weight");
    double s2 = 0;
    for (size_t i = 0; i < t->numel; i++) s2 += (double)t->data[i] * t->data[i];
    CHECK_NEAR(sqrt(s2 / (double)t->numel), 0.01, 0.0015, 0, "ffn_down std (4096 samples: ~1.1% s.e.)");
    t = cllm_model_find_tensor(a, "blk.1.ffn_norm.weight");
    CHECK(t->data[0] == 1.0f && t->data[t->numel - 1] == 1.0f, "norm weights start at 1");
    cllm_model_init_weights(b, 43);
    CHECK(memcmp(cllm_model_params(a), cllm_model_params(b), np * 4) != 0, "another seed, other weights");
out:
    cllm_model_destroy(a);
    cllm_model_destroy(b);
}

/* Loss from logits in double: mean over unmasked of logsumexp - logit[target]. */
static double loss_from_logits(const float *logits, const int32_t *tgt, int N, int V) {
    double sum = 0;
    int n = 0;
    for (int i = 0; i < N; i++) {
        if (tgt[i] < 0) continue;
        const float *r = logits + (size_t)i * V;
        double mx = r[0], s = 0;
        for (int v = 1; v < V; v++) mx = r[v] > mx ? r[v] : mx;
        for (int v = 0; v < V; v++) s += exp(r[v] - mx);
        sum += mx + log(s) - r[tgt[i]];
        n++;
    }
    return n ? sum / n : 0;
}

static void test_model_masked_targets_and_limits(void) {
    cllm_model_config c = tiny("tiny-llama");
    enum { B = 2, T = 8 };
    cllm_model *m = make(&c, B, T, 1, 0);
    CHECK(m != NULL, "create");
    if (!m) return;
    cllm_model_init_weights(m, 5);
    int32_t tok[B * T], tgt[B * T];
    random_tokens(tok, B * T, c.vocab_size, 3);
    random_tokens(tgt, B * T, c.vocab_size, 4);
    for (int i = 0; i < B * T; i += 3) tgt[i] = -1;
    float loss;
    cllm_error err;
    CHECK(cllm_model_forward(m, tok, tgt, B, T, &loss, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_model_num_targets(m) == B * T - (B * T + 2) / 3, "unmasked count %lld", (long long)cllm_model_num_targets(m));
    CHECK_NEAR(loss, loss_from_logits(cllm_model_logits(m), tgt, B * T, c.vocab_size), 1e-5, 1e-5,
               "masked mean loss from logits (float logsumexp rounding)");
    /* all masked: loss 0, backward gives zero gradients */
    for (int i = 0; i < B * T; i++) tgt[i] = -1;
    CHECK(cllm_model_forward(m, tok, tgt, B, T, &loss, &err) == CLLM_OK && loss == 0.0f, "all masked loss 0");
    cllm_model_zero_grad(m);
    CHECK(cllm_model_backward(m, 1.0f, &err) == CLLM_OK, "%s", err.msg);
    int nz = 0;
    for (size_t i = 0; i < cllm_model_num_params(m); i++) nz += cllm_model_grads(m)[i] != 0.0f;
    CHECK(nz == 0, "%d nonzero grads with every target masked", nz);
    /* limits and bad ids */
    CHECK(cllm_model_forward(m, tok, NULL, B + 1, T, &loss, &err) == CLLM_ERR_LIMIT && strstr(err.msg, "max_batch"), "B > max");
    CHECK(cllm_model_forward(m, tok, NULL, 1, T + 1, &loss, &err) == CLLM_ERR_LIMIT, "T > max");
    tok[5] = c.vocab_size;
    CHECK(cllm_model_forward(m, tok, NULL, B, T, &loss, &err) == CLLM_ERR_ARG && strstr(err.msg, "tokens[5]"), "%s", err.msg);
    tok[5] = 0;
    tgt[2] = -2;
    CHECK(cllm_model_forward(m, tok, tgt, B, T, &loss, &err) == CLLM_ERR_ARG && strstr(err.msg, "targets[2]"), "%s", err.msg);
    CHECK(cllm_model_backward(m, 1.0f, &err) == CLLM_ERR_ARG, "backward after a failed forward refused");
    CHECK(cllm_model_forward(m, tok, NULL, B, T, &loss, &err) == CLLM_OK && loss == 0.0f, "logits only");
    CHECK(cllm_model_backward(m, 1.0f, &err) == CLLM_ERR_ARG, "backward without targets refused");
    const int32_t one = 1;
    const float *lg;
    CHECK(cllm_model_decode(m, 0, &one, 1, 0, 0, &lg, &err) == CLLM_ERR_ARG && strstr(err.msg, "kv_slots"), "no cache");
    cllm_model_destroy(m);
    m = make(&c, B, T, 0, 0);
    CHECK(m && cllm_model_forward(m, tok, NULL, B, T, &loss, &err) == CLLM_OK, "inference-only forward");
    for (int i = 0; i < B * T; i++) tgt[i] = 1;
    CHECK(m && cllm_model_forward(m, tok, tgt, B, T, &loss, &err) == CLLM_OK &&
              cllm_model_backward(m, 1.0f, &err) == CLLM_ERR_ARG && strstr(err.msg, "training"),
          "backward on an inference model refused");
    cllm_model_destroy(m);
}

/* Gradient of one batch of 2 equals the sum of two single-row backwards when
 * both use the same per-token scale (gradient accumulation is exact). */
static void test_model_gradient_accumulation_is_exact(void) {
    cllm_model_config c = tiny("tiny-gpt2");
    enum { B = 2, T = 8 };
    cllm_model *m = make(&c, B, T, 1, 0);
    CHECK(m != NULL, "create");
    if (!m) return;
    cllm_model_init_weights(m, 9);
    int32_t tok[B * T], tgt[B * T];
    random_tokens(tok, B * T, c.vocab_size, 5);
    random_tokens(tgt, B * T, c.vocab_size, 6);
    tgt[3] = tgt[12] = -1;
    size_t np = cllm_model_num_params(m);
    float *full = malloc(np * 4), loss;
    cllm_error err;
    const float scale = 1.0f / 14.0f; /* 16 positions, 2 masked */
    cllm_model_zero_grad(m);
    CHECK(cllm_model_forward(m, tok, tgt, B, T, &loss, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_model_num_targets(m) == 14, "14 targets");
    cllm_model_backward(m, scale, &err);
    memcpy(full, cllm_model_grads(m), np * 4);
    cllm_model_zero_grad(m);
    for (int b = 0; b < B; b++) {
        CHECK(cllm_model_forward(m, tok + b * T, tgt + b * T, 1, T, &loss, &err) == CLLM_OK, "%s", err.msg);
        cllm_model_backward(m, scale, &err);
    }
    double worst = 0, gmax = 0;
    for (size_t i = 0; i < np; i++) {
        double d = fabs((double)full[i] - cllm_model_grads(m)[i]);
        worst = d > worst ? d : worst;
        gmax = fabs(full[i]) > gmax ? fabs(full[i]) : gmax;
    }
    /* Same math, different summation order (batch GEMM vs two GEMMs): float rounding only. */
    CHECK(worst <= 1e-6 + 1e-5 * gmax, "accumulated vs full-batch gradient differ by %g (max |g| %g)", worst, gmax);
    free(full);
    cllm_model_destroy(m);
}

/* Directional derivative check in float: (L(p + h d) - L(p - h d)) / 2h vs
 * g.d with d = g/|g|, for dense dropout and each variant. */
static void directional_check(cllm_model_config c, const char *what) {
    enum { B = 2, T = 8 };
    cllm_model *m = make(&c, B, T, 1, 0);
    CHECK(m != NULL, "create %s", what);
    if (!m) return;
    cllm_model_init_weights(m, 11);
    /* larger weights than init so the loss is not flat */
    float *P = cllm_model_params(m);
    size_t np = cllm_model_num_params(m);
    for (size_t i = 0; i < np; i++) P[i] *= 5.0f;
    int32_t tok[B * T], tgt[B * T];
    random_tokens(tok, B * T, c.vocab_size, 7);
    random_tokens(tgt, B * T, c.vocab_size, 8);
    tgt[1] = -1;
    cllm_model_set_train_mode(m, 1);
    const uint64_t seed = 99;
    cllm_error err;
    float loss;
    cllm_model_zero_grad(m);
    cllm_model_set_dropout_seed(m, seed);
    cllm_model_forward(m, tok, tgt, B, T, &loss, &err);
    CHECK(c.dropout == 0.0f || cllm_model_dropout_seed(m) != seed, "dropout seed advances");
    cllm_model_backward(m, 1.0f / (float)cllm_model_num_targets(m), &err);
    double *p0 = malloc(np * sizeof *p0), *d = malloc(np * sizeof *d), gn = 0;
    for (size_t i = 0; i < np; i++) gn += (double)cllm_model_grads(m)[i] * cllm_model_grads(m)[i];
    gn = sqrt(gn);
    for (size_t i = 0; i < np; i++) {
        p0[i] = P[i];
        d[i] = cllm_model_grads(m)[i] / gn;
    }
    const double h = 3e-4; /* sharp configs (qwen2 at 5x init: |grad| ~80) need the O(h^2) term small */
    float lp, lm;
    for (size_t i = 0; i < np; i++) P[i] = (float)(p0[i] + h * d[i]);
    cllm_model_set_dropout_seed(m, seed);
    cllm_model_forward(m, tok, tgt, B, T, &lp, &err);
    for (size_t i = 0; i < np; i++) P[i] = (float)(p0[i] - h * d[i]);
    cllm_model_set_dropout_seed(m, seed);
    cllm_model_forward(m, tok, tgt, B, T, &lm, &err);
    double fd = ((double)lp - lm) / (2 * h);
    /* float loss (~1e-7 relative of ~4) over 2h = 6e-4 gives ~7e-4 noise; curvature O(h^2). */
    CHECK_NEAR(fd, gn, 2e-3, 2e-2, what);
    free(p0);
    free(d);
    cllm_model_destroy(m);
}

static void test_model_directional_derivative_matches_gradient(void) {
    cllm_model_config c = tiny("tiny-gpt2");
    directional_check(c, "gpt2-style: finite difference vs |grad|");
    c.dropout = 0.2f;
    directional_check(c, "gpt2-style with dropout 0.2: finite difference vs |grad|");
    c = tiny("tiny-llama");
    directional_check(c, "llama-style (rope, rmsnorm, swiglu, GQA): finite difference vs |grad|");
    c = tiny("tiny-gpt2");
    c.pos = CLLM_POS_SINUSOIDAL;
    c.bias = 0;
    c.tied_embeddings = 0;
    c.n_kv_head = 1; /* multi-query */
    directional_check(c, "sinusoidal, no bias, untied, MQA: finite difference vs |grad|");
    directional_check(tiny("tiny-qwen2"), "qwen2 (q/k/v biases, neox rope): finite difference vs |grad|");
    directional_check(tiny("tiny-mistral"), "mistral (sliding window 4): finite difference vs |grad|");
    c = tiny("tiny-llama");
    c.rope_scaling = CLLM_ROPE_SCALING_LLAMA3, c.rope_factor = 8.0f, c.rope_orig_context = 16;
    directional_check(c, "llama3 rope scaling: finite difference vs |grad|");
}

static void test_model_dropout_only_in_train_mode(void) {
    cllm_model_config c = tiny("tiny-gpt2");
    c.dropout = 0.5f;
    enum { B = 1, T = 8 };
    cllm_model *m = make(&c, B, T, 1, 0);
    if (!m) { CHECK(0, "create"); return; }
    cllm_model_init_weights(m, 1);
    int32_t tok[T], tgt[T];
    random_tokens(tok, T, c.vocab_size, 1);
    random_tokens(tgt, T, c.vocab_size, 2);
    float e1, e2, t1, t2, t3;
    cllm_error err;
    cllm_model_forward(m, tok, tgt, B, T, &e1, &err);
    cllm_model_forward(m, tok, tgt, B, T, &e2, &err);
    CHECK(e1 == e2, "eval mode is deterministic");
    cllm_model_set_train_mode(m, 1);
    cllm_model_set_dropout_seed(m, 7);
    cllm_model_forward(m, tok, tgt, B, T, &t1, &err);
    cllm_model_forward(m, tok, tgt, B, T, &t2, &err);
    cllm_model_set_dropout_seed(m, 7);
    cllm_model_forward(m, tok, tgt, B, T, &t3, &err);
    CHECK(t1 != e1 && t1 != t2, "train mode applies fresh masks each forward (%g %g %g)", e1, t1, t2);
    CHECK(t1 == t3, "restoring the dropout seed reproduces the masks");
    cllm_model_destroy(m);
}

/* Incremental decoding with the KV cache equals the full forward pass. */
static void kv_check(cllm_model_config c, const char *what) {
    enum { T = 12 };
    c.context_length = 16;
    cllm_model_options o = cllm_model_default_options();
    o.max_batch = 1;
    o.max_seq = T;
    o.kv_slots = 2;
    cllm_model *m = NULL;
    cllm_error err;
    CHECK(cllm_model_create(&c, &o, &m, &err) == CLLM_OK, "%s: %s", what, err.msg);
    if (!m) return;
    cllm_model_init_weights(m, 21);
    float *P = cllm_model_params(m);
    for (size_t i = 0; i < cllm_model_num_params(m); i++) P[i] *= 4.0f; /* sharper attention */
    int32_t tok[T];
    random_tokens(tok, T, c.vocab_size, 13);
    const int V = c.vocab_size;
    float *full = malloc((size_t)T * V * 4);
    CHECK(cllm_model_forward(m, tok, NULL, 1, T, NULL, &err) == CLLM_OK, "%s", err.msg);
    memcpy(full, cllm_model_logits(m), (size_t)T * V * 4);
    double worst = 0;
    const float *lg;
    /* slot 1: prompt chunk of 5 with all logits, then one token at a time */
    CHECK(cllm_model_decode(m, 1, tok, 5, 0, 1, &lg, &err) == CLLM_OK, "%s", err.msg);
    for (int i = 0; i < 5 * V; i++) worst = fmax(worst, fabs(lg[i] - full[i]));
    for (int t = 5; t < T; t++) {
        CHECK(cllm_model_decode(m, 1, tok + t, 1, t, 0, &lg, &err) == CLLM_OK, "%s", err.msg);
        for (int v = 0; v < V; v++) worst = fmax(worst, fabs(lg[v] - full[(size_t)t * V + v]));
    }
    CHECK(cllm_model_kv_length(m, 1) == T && cllm_model_kv_length(m, 0) == 0, "slot lengths");
    /* slot 0 with other tokens must not disturb slot 1; then rewind slot 1 to 8 */
    int32_t other[4] = {1, 2, 3, 4};
    CHECK(cllm_model_decode(m, 0, other, 4, 0, 0, &lg, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_model_decode(m, 1, tok + 8, 4, 8, 1, &lg, &err) == CLLM_OK, "rewind: %s", err.msg);
    for (int i = 0; i < 4 * V; i++) worst = fmax(worst, fabs(lg[i] - full[(size_t)8 * V + i]));
    /* Different summation order (GEMM vs dot products over the cache): float rounding of
     * logits of magnitude ~1-10. */
    CHECK(worst < 2e-4, "%s: cache vs full forward max |diff| %g", what, worst);
    /* errors */
    CHECK(cllm_model_decode(m, 0, tok, 1, 6, 0, &lg, &err) == CLLM_ERR_ARG && strstr(err.msg, "pos"), "gap refused");
    CHECK(cllm_model_decode(m, 2, tok, 1, 0, 0, &lg, &err) == CLLM_ERR_ARG, "bad slot");
    CHECK(cllm_model_decode(m, 1, tok, 12, 12, 0, &lg, &err) == CLLM_ERR_LIMIT, "past the context");
    CHECK(cllm_model_decode(m, 1, tok, T + 1, 0, 0, &lg, &err) == CLLM_ERR_LIMIT, "chunk > max_seq");
    cllm_model_kv_reset(m, 1);
    CHECK(cllm_model_kv_length(m, 1) == 0, "reset");
    free(full);
    cllm_model_destroy(m);
}

static void test_model_kv_cache_matches_full_forward(void) {
    cllm_model_config c = tiny("tiny-gpt2");
    kv_check(c, "learned positions, MHA");
    c.pos = CLLM_POS_SINUSOIDAL;
    c.n_kv_head = 2;
    kv_check(c, "sinusoidal, GQA 4/2");
    c = tiny("tiny-llama");
    kv_check(c, "rope, GQA 4/2, swiglu, rmsnorm");
    c.n_kv_head = 1;
    kv_check(c, "rope, MQA");
    kv_check(tiny("tiny-qwen2"), "qwen2");
    kv_check(tiny("tiny-mistral"), "mistral, window 4");
}

int main(void) {
    TEST_RUN(test_model_config_validation_names_field);
    TEST_RUN(test_model_parameter_counts_match_known_sizes);
    TEST_RUN(test_model_tensor_table_covers_every_parameter);
    TEST_RUN(test_model_init_is_deterministic_and_loss_near_ln_vocab);
    TEST_RUN(test_model_masked_targets_and_limits);
    TEST_RUN(test_model_gradient_accumulation_is_exact);
    TEST_RUN(test_model_directional_derivative_matches_gradient);
    TEST_RUN(test_model_dropout_only_in_train_mode);
    TEST_RUN(test_model_kv_cache_matches_full_forward);
    return test_finish();
}

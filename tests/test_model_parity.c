/*
 * test_model_parity.c: the C transformer against an independent PyTorch
 * implementation (tests/reference/model_reference.py, Debian python3-torch
 * run as /usr/bin/python3) on a GPT-2-style and a Llama-style config:
 * logits, loss, every parameter gradient, and the losses and final weights
 * of 10 AdamW steps with global-norm clipping.
 *
 * Protocol: this test writes the config, the initial weights (table order),
 * tokens and targets (some masked with -1) to a temporary directory, runs the
 * script, and reads back its results computed in float64 (the reference we
 * check against) and in float32 (torch's own fp32 error, printed as a
 * yardstick). The test fails when python or torch is missing.
 *
 * bf16 (--precision bf16): the same checks with cllm's matrix products in
 * bf16 (weights mirrored, the copies rewritten by AdamW, as in the training
 * harness), against float64 with bf16-sized tolerances and
 * against torch.autocast("cpu", bfloat16) on the same weights and batch:
 * ours must stay within a small multiple of autocast's own distance from
 * float64 (autocast also rounds the products' outputs and runs the softmax
 * on bf16 scores, so it is the noisier of the two).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cllm/core/fileio.h"
#include "cllm/kernels/kernels.h"
#include "cllm/model/model.h"
#include "cllm/train/optim.h"
#include "cllm/core/rng.h"
#include "test.h"

enum { B = 2, T = 12, STEPS = 10 };
static const float LR = 1e-2f, WD = 0.1f, CLIP = 1.0f;

typedef struct {
    double logits, loss, grad_rel, step_loss, final_param;
} errs;

static void write_file(const char *dir, const char *name, const void *data, size_t len) {
    char path[512];
    cllm_error err;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK(cllm_file_write_atomic(path, data, len, &err) == CLLM_OK, "%s", err.msg);
}

static float *read_floats(const char *dir, const char *name, size_t expect) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *data = NULL;
    size_t len = 0;
    cllm_error err;
    if (cllm_file_read_all(path, 0, &data, &len, &err) != CLLM_OK) {
        CHECK(0, "reading reference output: %s", err.msg);
        return NULL;
    }
    if (len != expect * sizeof(float)) {
        CHECK(0, "%s has %zu bytes, expected %zu", path, len, expect * sizeof(float));
        free(data);
        return NULL;
    }
    return (float *)data; /* malloc'ed by read_all; suitably aligned for float */
}

static double maxabs(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* bf16 tolerances, per quantity: ours vs float64 must be within
 * BF16_FACTOR x autocast's own error, or within the floor (both tiny). The
 * floors come from bf16's unit roundoff 2^-9 ~ 2e-3 carried through a few
 * products of magnitude ~1-5 (measured: see the printed line). */
#define BF16_FACTOR 2.0
static int bf16_ok(double ours, double autocast, double floor) { return ours <= fmax(BF16_FACTOR * autocast, floor); }

static void mirror_weights(cllm_model *m) {
    for (int i = 0; i < cllm_model_num_tensors(m); i++) {
        const cllm_tensor *t = cllm_model_tensor(m, i);
        CHECK(cllm_bf16_mirror_add(t->data, t->numel), "mirror");
    }
}

/* Runs one config at precision prec; returns the C-vs-float64 and
 * torch-vs-float64 errors (torch: float32, or autocast bf16 when prec is bf16). */
static void parity(cllm_model_config cfg, const char *what, cllm_precision prec, errs *ours, errs *torch32) {
    const int bf16 = prec == CLLM_PRECISION_BF16;
    memset(ours, 0, sizeof *ours);
    memset(torch32, 0, sizeof *torch32);
    cllm_error err;
    cllm_model_options o = cllm_model_default_options();
    o.max_batch = B;
    o.max_seq = T;
    o.training = 1;
    cllm_model *m = NULL;
    CHECK(cllm_model_create(&cfg, &o, &m, &err) == CLLM_OK, "%s: %s", what, err.msg);
    if (!m) return;
    /* Init, then make every tensor non-trivial: sharper attention (std 0.1),
     * norm weights and biases away from 1 and 0 so their gradients matter. */
    cllm_model_init_weights(m, 1234);
    cllm_rng rng;
    cllm_rng_seed(&rng, 77);
    const int nt = cllm_model_num_tensors(m);
    size_t n_real = 0;
    for (int i = 0; i < nt; i++) {
        const cllm_tensor *t = cllm_model_tensor(m, i);
        for (size_t j = 0; j < t->numel; j++)
            t->data[j] = t->ndim == 2 ? 5.0f * t->data[j] : t->data[j] + 0.1f * cllm_rng_normal(&rng);
        n_real += t->numel;
    }
    int32_t tok[B * T], tgt[B * T];
    for (int i = 0; i < B * T; i++) {
        tok[i] = (int32_t)cllm_rng_below(&rng, (uint64_t)cfg.vocab_size);
        tgt[i] = i % 5 == 2 ? -1 : (int32_t)cllm_rng_below(&rng, (uint64_t)cfg.vocab_size);
    }
    /* exchange directory */
    char dir[] = "/tmp/cllm-parity-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char text[2048];
    int n = snprintf(text, sizeof text,
                     "vocab_size=%d\nn_layer=%d\nn_head=%d\nn_kv_head=%d\nn_embd=%d\nffn_hidden=%d\n"
                     "pos=%s\nrope_theta=%.9g\nnorm=%s\nnorm_eps=%.9g\nmlp=%s\ntied_embeddings=%d\n"
                     "B=%d\nT=%d\nlr=%.9g\nbeta1=0.9\nbeta2=0.95\neps=1e-8\nweight_decay=%.9g\n"
                     "clip=%.9g\nsteps=%d\nrope_neox=%d\nrope_scaling=%s\nrope_factor=%.9g\n"
                     "rope_low_freq_factor=%.9g\nrope_high_freq_factor=%.9g\nrope_orig_context=%d\n"
                     "sliding_window=%d\n",
                     cfg.vocab_size, cfg.n_layer, cfg.n_head, cfg.n_kv_head, cfg.n_embd, cfg.ffn_hidden,
                     cllm_model_pos_name(cfg.pos), (double)cfg.rope_theta, cllm_model_norm_name(cfg.norm),
                     (double)cfg.norm_eps, cllm_model_mlp_name(cfg.mlp), cfg.tied_embeddings, B, T,
                     (double)LR, (double)WD, (double)CLIP, STEPS, cfg.rope_neox,
                     cllm_model_rope_scaling_name(cfg.rope_scaling), (double)cfg.rope_factor,
                     (double)cfg.rope_low_freq_factor, (double)cfg.rope_high_freq_factor, cfg.rope_orig_context,
                     cfg.sliding_window);
    write_file(dir, "config.txt", text, (size_t)n);
    char *names = malloc((size_t)nt * 128);
    float *flat = malloc(n_real * sizeof *flat);
    size_t nlen = 0, k = 0;
    for (int i = 0; i < nt; i++) {
        const cllm_tensor *t = cllm_model_tensor(m, i);
        nlen += (size_t)snprintf(names + nlen, 128, "%s %d %lld %lld %d\n", t->name, t->ndim,
                                 (long long)t->shape[0], (long long)t->shape[1], t->decay);
        memcpy(flat + k, t->data, t->numel * sizeof *flat);
        k += t->numel;
    }
    write_file(dir, "tensors.txt", names, nlen);
    write_file(dir, "weights.bin", flat, n_real * sizeof *flat);
    write_file(dir, "tokens.bin", tok, sizeof tok);
    write_file(dir, "targets.bin", tgt, sizeof tgt);
    const char *src = getenv("CLLM_SOURCE_DIR");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/reference/model_reference.py %s",
             src ? src : ".", dir);
    int rc = system(cmd);
    CHECK(rc == 0, "%s: '%s' failed (status %d): python3-torch is required", what, cmd, rc);

    const size_t V = (size_t)cfg.vocab_size, NV = (size_t)B * T * V;
    const size_t total = NV + 1 + n_real + STEPS + n_real;
    float *ref = rc == 0 ? read_floats(dir, "out_float64.bin", total) : NULL;
    float *r32 = rc == 0 ? read_floats(dir, bf16 ? "out_autocast_bf16.bin" : "out_float32.bin", total) : NULL;
    cllm_matmul_set_precision(prec);
    if (bf16) mirror_weights(m);
    if (ref && r32) {
        const float *rl = ref, *rloss = ref + NV, *rg = rloss + 1, *rsteps = rg + n_real, *rfinal = rsteps + STEPS;
        const float *tl = r32, *tloss = r32 + NV, *tg = tloss + 1, *tsteps = tg + n_real, *tfinal = tsteps + STEPS;
        /* forward + backward */
        float loss;
        cllm_model_zero_grad(m);
        CHECK(cllm_model_forward(m, tok, tgt, B, T, &loss, &err) == CLLM_OK, "%s", err.msg);
        ours->logits = maxabs(cllm_model_logits(m), rl, NV);
        torch32->logits = maxabs(tl, rl, NV);
        ours->loss = fabs((double)loss - rloss[0]);
        torch32->loss = fabs((double)tloss[0] - rloss[0]);
        CHECK(cllm_model_backward(m, 1.0f / (float)cllm_model_num_targets(m), &err) == CLLM_OK, "%s", err.msg);
        k = 0;
        for (int i = 0; i < nt; i++) {
            const cllm_tensor *t = cllm_model_tensor(m, i);
            double scale = 0;
            for (size_t j = 0; j < t->numel; j++) scale = fmax(scale, fabs(rg[k + j]));
            double e = maxabs(t->grad, rg + k, t->numel) / fmax(scale, 1e-30);
            double e32 = maxabs(tg + k, rg + k, t->numel) / fmax(scale, 1e-30);
            /* Per tensor, relative to its largest gradient: fp32 accumulation over
             * B*T = 24 rows and a few layers gives ~1e-6; 1e-4 leaves room. */
            if (bf16)
                CHECK(bf16_ok(e, e32, 2e-2), "%s: gradient of %s: max |diff| / max |g| = %g (torch autocast: %g)",
                      what, t->name, e, e32);
            else
                CHECK(e <= 1e-4, "%s: gradient of %s: max |diff| / max |g| = %g (torch fp32: %g)", what,
                      t->name, e, e32);
            CHECK(scale > 0, "%s: reference gradient of %s is all zero", what, t->name);
            ours->grad_rel = fmax(ours->grad_rel, e);
            torch32->grad_rel = fmax(torch32->grad_rel, e32);
            k += t->numel;
        }
        /* Logits of magnitude ~1-5: fp32 GEMM rounding ~1e-6; 1e-4 absolute. */
        if (bf16) {
            CHECK(bf16_ok(ours->logits, torch32->logits, 5e-2), "%s: logits max |diff| %g (autocast %g)", what,
                  ours->logits, torch32->logits);
            CHECK(bf16_ok(ours->loss, torch32->loss, 5e-3), "%s: loss %.9g vs %.9g (autocast %g)", what, loss,
                  rloss[0], torch32->loss);
        } else {
            CHECK(ours->logits <= 1e-4, "%s: logits max |diff| %g", what, ours->logits);
            CHECK(ours->loss <= 1e-5, "%s: loss %.9g vs %.9g", what, loss, rloss[0]);
        }
        /* 10 AdamW steps from the same initial weights */
        k = 0;
        for (int i = 0; i < nt; i++) {
            const cllm_tensor *t = cllm_model_tensor(m, i);
            memcpy(t->data, flat + k, t->numel * sizeof *flat);
            k += t->numel;
        }
        cllm_bf16_mirror_stale(cllm_model_params(m), cllm_model_num_params(m));
        size_t np = cllm_model_num_params(m);
        float *mom = calloc(np, sizeof *mom), *var = calloc(np, sizeof *var);
        cllm_adamw_params hp = cllm_adamw_default_params();
        hp.lr = LR;
        hp.weight_decay = WD;
        float first = 0, last = 0;
        for (int s = 0; s < STEPS; s++) {
            cllm_model_zero_grad(m);
            cllm_model_forward(m, tok, tgt, B, T, &loss, &err);
            ours->step_loss = fmax(ours->step_loss, fabs((double)loss - rsteps[s]));
            torch32->step_loss = fmax(torch32->step_loss, fabs((double)tsteps[s] - rsteps[s]));
            if (s == 0) first = loss;
            last = loss;
            cllm_model_backward(m, 1.0f / (float)cllm_model_num_targets(m), &err);
            float *G = cllm_model_grads(m);
            cllm_grad_clip(G, np, cllm_grad_norm(G, np), CLIP);
            for (int i = 0; i < nt; i++) {
                const cllm_tensor *t = cllm_model_tensor(m, i);
                cllm_adamw_update(t->data, t->grad, mom + t->offset, var + t->offset, t->numel, &hp,
                                  s + 1, t->decay);
            } /* (AdamW rewrites the bf16 copies itself) */
        }
        /* The key bias gets an exactly-zero gradient in exact arithmetic (adding
         * a constant to every key shifts each query's scores uniformly, which
         * softmax ignores), so in fp32 its gradient is rounding noise that Adam
         * normalises into steps of up to lr: compare it only against that bound. */
        const size_t kb_lo = (size_t)cfg.n_head * (cfg.n_embd / cfg.n_head);
        const size_t kb_hi = kb_lo + (size_t)cfg.n_kv_head * (cfg.n_embd / cfg.n_head);
        double key_bias = 0;
        k = 0;
        for (int i = 0; i < nt; i++) {
            const cllm_tensor *t = cllm_model_tensor(m, i);
            int is_qkv_bias = strstr(t->name, "attn_qkv.bias") != NULL;
            for (size_t j = 0; j < t->numel; j++) {
                double d = fabs((double)t->data[j] - rfinal[k + j]);
                double d32 = fabs((double)tfinal[k + j] - rfinal[k + j]);
                if (is_qkv_bias && j >= kb_lo && j < kb_hi) {
                    key_bias = fmax(key_bias, d);
                    continue;
                }
                ours->final_param = fmax(ours->final_param, d);
                torch32->final_param = fmax(torch32->final_param, d32);
            }
            k += t->numel;
        }
        CHECK(key_bias <= 2.0 * STEPS * LR, "%s: key bias moved %g, more than Adam's bound", what, key_bias);
        CHECK(last < first - 0.1f, "%s: 10 AdamW steps should lower the loss (%g -> %g)", what, first, last);
        /* Losses over 10 steps: fp32 rounding compounds a little per step; 1e-4.
         * Weights: Adam divides by sqrt(v), so a relative gradient error e moves a
         * weight by ~lr*e per step, more where a gradient is near zero; torch's own
         * fp32 run lands up to ~8e-5 from float64 here, so 3e-4 absolute. */
        if (bf16) {
            CHECK(bf16_ok(ours->step_loss, torch32->step_loss, 1e-2), "%s: AdamW step losses max |diff| %g (autocast %g)",
                  what, ours->step_loss, torch32->step_loss);
            CHECK(bf16_ok(ours->final_param, torch32->final_param, 5e-3), "%s: final weights max |diff| %g (autocast %g)",
                  what, ours->final_param, torch32->final_param);
        } else {
            CHECK(ours->step_loss <= 1e-4, "%s: AdamW step losses max |diff| %g", what, ours->step_loss);
            CHECK(ours->final_param <= 3e-4, "%s: final weights max |diff| %g", what, ours->final_param);
        }
        free(mom);
        free(var);
    }
    fprintf(stderr,
            "  %s: max errors vs torch float64 (ours %s | torch %s): logits %.2e | %.2e, loss %.2e | %.2e, "
            "grad (rel per tensor) %.2e | %.2e, AdamW losses %.2e | %.2e, final weights %.2e | %.2e\n",
            what, cllm_precision_name(prec), bf16 ? "autocast bf16" : "float32", ours->logits, torch32->logits, ours->loss, torch32->loss, ours->grad_rel,
            torch32->grad_rel, ours->step_loss, torch32->step_loss, ours->final_param,
            torch32->final_param);
    free(ref);
    free(r32);
    free(names);
    free(flat);
    cllm_matmul_set_precision(CLLM_PRECISION_FP32);
    cllm_bf16_mirror_clear();
    const char *files[] = {"config.txt", "tensors.txt", "weights.bin", "tokens.bin", "targets.bin",
                           "out_float64.bin", "out_float32.bin", "out_autocast_bf16.bin"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
    cllm_model_destroy(m);
}

static void test_model_parity_gpt2_style(void) {
    cllm_model_config c;
    cllm_error err;
    cllm_model_preset("tiny-gpt2", &c, &err); /* learned pos, LayerNorm, GELU, biases, tied */
    errs a, b;
    parity(c, "gpt2-style", CLLM_PRECISION_FP32, &a, &b);
}

static void test_model_parity_llama_style(void) {
    cllm_model_config c;
    cllm_error err;
    cllm_model_preset("tiny-llama", &c, &err); /* RoPE, RMSNorm, SwiGLU, GQA 4/2, no bias, untied */
    errs a, b;
    parity(c, "llama-style", CLLM_PRECISION_FP32, &a, &b);
}

static void test_model_parity_sinusoidal_mqa_bias(void) {
    cllm_model_config c;
    cllm_error err;
    cllm_model_preset("tiny-llama", &c, &err);
    c.pos = CLLM_POS_SINUSOIDAL;
    c.norm = CLLM_NORM_LAYERNORM;
    c.bias = 1;
    c.n_kv_head = 1;
    errs a, b;
    parity(c, "sinusoidal+layernorm+swiglu+bias+MQA", CLLM_PRECISION_FP32, &a, &b);
}

/* Qwen2: q/k/v biases without other biases, NEOX rope pairs, theta 1e6. */
static void test_model_parity_qwen2(void) {
    cllm_model_config c;
    cllm_error err;
    cllm_model_preset("tiny-qwen2", &c, &err);
    errs a, b;
    parity(c, "qwen2-style", CLLM_PRECISION_FP32, &a, &b);
}

/* RoPE scaling: linear (factor 4), and Llama 3.1's with an original context
 * of 64 so that head size 8's four pairs cover all three regimes
 * (wavelengths 6.3 < 64/4: unscaled; 62.8: ramp; 628, 6283 > 64: / factor). */
static void test_model_parity_rope_scaling(void) {
    cllm_model_config c;
    cllm_error err;
    errs a, b;
    cllm_model_preset("tiny-llama", &c, &err);
    c.rope_scaling = CLLM_ROPE_SCALING_LINEAR;
    c.rope_factor = 4.0f;
    parity(c, "llama-style linear rope x4", CLLM_PRECISION_FP32, &a, &b);
    cllm_model_preset("tiny-llama", &c, &err);
    c.rope_scaling = CLLM_ROPE_SCALING_LLAMA3;
    c.rope_factor = 8.0f;
    c.rope_orig_context = 64;
    parity(c, "llama-style llama3 rope", CLLM_PRECISION_FP32, &a, &b);
    cllm_model_preset("tiny-qwen2", &c, &err); /* neox pairs with llama3 divisors */
    c.rope_theta = 10000.0f;
    c.rope_scaling = CLLM_ROPE_SCALING_LLAMA3;
    c.rope_factor = 8.0f;
    c.rope_orig_context = 64;
    parity(c, "qwen2-style llama3 rope", CLLM_PRECISION_FP32, &a, &b);
}

/* Mistral: sliding window 4 over T = 12 positions. */
static void test_model_parity_mistral_window(void) {
    cllm_model_config c;
    cllm_error err;
    cllm_model_preset("tiny-mistral", &c, &err);
    errs a, b;
    parity(c, "mistral-style window 4", CLLM_PRECISION_FP32, &a, &b);
}

/* --precision bf16 against torch.autocast bf16 (and float64) */
static void test_model_parity_bf16(void) {
    cllm_model_config c;
    cllm_error err;
    errs a, b;
    cllm_model_preset("tiny-gpt2", &c, &err);
    parity(c, "gpt2-style bf16", CLLM_PRECISION_BF16, &a, &b);
    cllm_model_preset("tiny-llama", &c, &err);
    parity(c, "llama-style bf16", CLLM_PRECISION_BF16, &a, &b);
}

int main(void) {
    TEST_RUN(test_model_parity_gpt2_style);
    TEST_RUN(test_model_parity_llama_style);
    TEST_RUN(test_model_parity_sinusoidal_mqa_bias);
    TEST_RUN(test_model_parity_qwen2);
    TEST_RUN(test_model_parity_rope_scaling);
    TEST_RUN(test_model_parity_mistral_window);
    TEST_RUN(test_model_parity_bf16);
    return test_finish();
}

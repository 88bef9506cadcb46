/*
 * config.c: model config defaults, validation, text overrides and enum names.
 *
 * Validation is for input (a config from a file, flags or a preset plus
 * overrides): every rule names the field it checks. It does not build or
 * size anything (tensors.c does that).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cllm/model/model.h"

static const char *const pos_names[CLLM_POS_COUNT] = {"learned", "sinusoidal", "rope"};
static const char *const norm_names[CLLM_NORM_COUNT] = {"layernorm", "rmsnorm"};
static const char *const mlp_names[CLLM_MLP_COUNT] = {"gelu", "swiglu"};
static const char *const rope_scaling_names[CLLM_ROPE_SCALING_COUNT] = {"none", "linear", "llama3"};

const char *cllm_model_pos_name(cllm_pos_kind k) {
    return (unsigned)k < CLLM_POS_COUNT ? pos_names[k] : "?";
}
const char *cllm_model_norm_name(cllm_norm_kind k) {
    return (unsigned)k < CLLM_NORM_COUNT ? norm_names[k] : "?";
}
const char *cllm_model_mlp_name(cllm_mlp_kind k) {
    return (unsigned)k < CLLM_MLP_COUNT ? mlp_names[k] : "?";
}

const char *cllm_model_rope_scaling_name(cllm_rope_scaling s) {
    return (unsigned)s < CLLM_ROPE_SCALING_COUNT ? rope_scaling_names[s] : "?";
}

static int parse_name(const char *name, const char *const *names, int n) {
    if (!name) return -1;
    for (int i = 0; i < n; i++)
        if (!strcasecmp(name, names[i])) return i;
    return -1;
}
int cllm_model_pos_parse(const char *name) { return parse_name(name, pos_names, CLLM_POS_COUNT); }
int cllm_model_norm_parse(const char *name) { return parse_name(name, norm_names, CLLM_NORM_COUNT); }
int cllm_model_mlp_parse(const char *name) { return parse_name(name, mlp_names, CLLM_MLP_COUNT); }
int cllm_model_rope_scaling_parse(const char *name) {
    return parse_name(name, rope_scaling_names, CLLM_ROPE_SCALING_COUNT);
}

/* Llama 3.1's frequency divisors (model.h), in double. */
void cllm_model_rope_freq_div(const cllm_model_config *c, double *f) {
    const int HS = c->n_embd / c->n_head;
    for (int i = 0; 2 * i + 1 < HS; i++) {
        f[i] = 1.0;
        if (c->rope_scaling != CLLM_ROPE_SCALING_LLAMA3) continue;
        const double freq = pow((double)c->rope_theta, -2.0 * i / HS), wavelen = 2.0 * M_PI / freq;
        const double orig = c->rope_orig_context, lo = c->rope_low_freq_factor, hi = c->rope_high_freq_factor;
        const double factor = c->rope_factor;
        if (wavelen < orig / hi) f[i] = 1.0;
        else if (wavelen > orig / lo) f[i] = factor;
        else {
            const double s = (orig / wavelen - lo) / (hi - lo);
            f[i] = 1.0 / ((1.0 - s) / factor + s);
        }
    }
}

cllm_model_config cllm_model_default_config(void) {
    cllm_model_config c;
    memset(&c, 0, sizeof c);
    c.vocab_size = 50257;
    c.context_length = 1024;
    c.n_layer = 12;
    c.n_head = 12;
    c.n_kv_head = 12;
    c.n_embd = 768;
    c.ffn_hidden = 3072;
    c.pos = CLLM_POS_LEARNED;
    c.rope_theta = 10000.0f;
    c.norm = CLLM_NORM_LAYERNORM;
    c.norm_eps = 1e-5f;
    c.mlp = CLLM_MLP_GELU;
    c.tied_embeddings = 1;
    c.bias = 1;
    c.dropout = 0.0f;
    c.rope_scaling = CLLM_ROPE_SCALING_NONE;
    c.rope_factor = 1.0f;
    c.rope_low_freq_factor = 1.0f;
    c.rope_high_freq_factor = 4.0f;
    c.rope_orig_context = 8192;
    return c;
}

#define RANGE(field, lo, hi)                                                                   \
    do {                                                                                       \
        if (cfg->field < (lo) || cfg->field > (hi))                                            \
            return cllm_error_set(err, CLLM_ERR_ARG, "model config: " #field                   \
                                  " = %d is out of range [%d, %d]", cfg->field, (int)(lo),     \
                                  (int)(hi));                                                  \
    } while (0)

cllm_status cllm_model_config_validate(const cllm_model_config *cfg, cllm_error *err) {
    if (!cfg) return cllm_error_set(err, CLLM_ERR_ARG, "model config: NULL");
    RANGE(vocab_size, 1, CLLM_MODEL_MAX_VOCAB);
    RANGE(context_length, 1, CLLM_MODEL_MAX_CONTEXT);
    RANGE(n_layer, 1, CLLM_MODEL_MAX_LAYERS);
    RANGE(n_head, 1, CLLM_MODEL_MAX_HEADS);
    RANGE(n_kv_head, 1, cfg->n_head);
    RANGE(n_embd, 1, CLLM_MODEL_MAX_EMBD);
    RANGE(ffn_hidden, 1, CLLM_MODEL_MAX_FFN);
    if (cfg->n_head % cfg->n_kv_head != 0)
        return cllm_error_set(err, CLLM_ERR_ARG,
                              "model config: n_kv_head (%d) must divide n_head (%d)",
                              cfg->n_kv_head, cfg->n_head);
    if (cfg->n_embd % cfg->n_head != 0)
        return cllm_error_set(err, CLLM_ERR_ARG,
                              "model config: n_embd (%d) must be divisible by n_head (%d)",
                              cfg->n_embd, cfg->n_head);
    if ((unsigned)cfg->pos >= CLLM_POS_COUNT)
        return cllm_error_set(err, CLLM_ERR_ARG, "model config: pos = %d is not a known kind",
                              (int)cfg->pos);
    if ((unsigned)cfg->norm >= CLLM_NORM_COUNT)
        return cllm_error_set(err, CLLM_ERR_ARG, "model config: norm = %d is not a known kind",
                              (int)cfg->norm);
    if ((unsigned)cfg->mlp >= CLLM_MLP_COUNT)
        return cllm_error_set(err, CLLM_ERR_ARG, "model config: mlp = %d is not a known kind",
                              (int)cfg->mlp);
    int hs = cfg->n_embd / cfg->n_head;
    if (cfg->pos == CLLM_POS_ROPE && hs > 1024) /* rope.c keeps a head's frequencies on the stack */
        return cllm_error_set(err, CLLM_ERR_ARG, "model config: head size n_embd/n_head = %d exceeds 1024 for rope", hs);
    if (cfg->pos == CLLM_POS_ROPE && hs % 2 != 0)
        return cllm_error_set(err, CLLM_ERR_ARG,
                              "model config: head size n_embd/n_head = %d must be even for rope", hs);
    if (cfg->pos == CLLM_POS_ROPE && !(isfinite(cfg->rope_theta) && cfg->rope_theta > 1.0f))
        return cllm_error_set(err, CLLM_ERR_ARG,
                              "model config: rope_theta = %g must be a finite number > 1",
                              (double)cfg->rope_theta);
    if (cfg->pos == CLLM_POS_SINUSOIDAL && cfg->n_embd % 2 != 0)
        return cllm_error_set(err, CLLM_ERR_ARG,
                              "model config: n_embd = %d must be even for sinusoidal positions",
                              cfg->n_embd);
    if (!(isfinite(cfg->norm_eps) && cfg->norm_eps > 0.0f && cfg->norm_eps < 1.0f))
        return cllm_error_set(err, CLLM_ERR_ARG, "model config: norm_eps = %g must be in (0, 1)",
                              (double)cfg->norm_eps);
    if (!(isfinite(cfg->dropout) && cfg->dropout >= 0.0f && cfg->dropout < 1.0f))
        return cllm_error_set(err, CLLM_ERR_ARG, "model config: dropout = %g must be in [0, 1)",
                              (double)cfg->dropout);
    if (cfg->tied_embeddings != 0 && cfg->tied_embeddings != 1)
        return cllm_error_set(err, CLLM_ERR_ARG, "model config: tied_embeddings = %d must be 0 or 1",
                              cfg->tied_embeddings);
    if (cfg->bias != 0 && cfg->bias != 1)
        return cllm_error_set(err, CLLM_ERR_ARG, "model config: bias = %d must be 0 or 1",
                              cfg->bias);
    if (cfg->qkv_bias != 0 && cfg->qkv_bias != 1)
        return cllm_error_set(err, CLLM_ERR_ARG, "model config: qkv_bias = %d must be 0 or 1", cfg->qkv_bias);
    if (cfg->rope_neox != 0 && cfg->rope_neox != 1)
        return cllm_error_set(err, CLLM_ERR_ARG, "model config: rope_neox = %d must be 0 or 1", cfg->rope_neox);
    if ((unsigned)cfg->rope_scaling >= CLLM_ROPE_SCALING_COUNT)
        return cllm_error_set(err, CLLM_ERR_ARG, "model config: rope_scaling = %d is not a known kind",
                              (int)cfg->rope_scaling);
    if (cfg->rope_scaling != CLLM_ROPE_SCALING_NONE) {
        if (cfg->pos != CLLM_POS_ROPE)
            return cllm_error_set(err, CLLM_ERR_ARG, "model config: rope_scaling = %s needs pos = rope",
                                  cllm_model_rope_scaling_name(cfg->rope_scaling));
        if (!(isfinite(cfg->rope_factor) && cfg->rope_factor > 0.0f && cfg->rope_factor <= 1e6f))
            return cllm_error_set(err, CLLM_ERR_ARG, "model config: rope_factor = %g must be in (0, 1e6]",
                                  (double)cfg->rope_factor);
    }
    if (cfg->rope_scaling == CLLM_ROPE_SCALING_LLAMA3) {
        if (!(isfinite(cfg->rope_low_freq_factor) && isfinite(cfg->rope_high_freq_factor) &&
              cfg->rope_low_freq_factor > 0.0f && cfg->rope_high_freq_factor > cfg->rope_low_freq_factor))
            return cllm_error_set(err, CLLM_ERR_ARG,
                                  "model config: rope_low_freq_factor = %g and rope_high_freq_factor = %g must "
                                  "satisfy 0 < low < high",
                                  (double)cfg->rope_low_freq_factor, (double)cfg->rope_high_freq_factor);
        RANGE(rope_orig_context, 1, CLLM_MODEL_MAX_CONTEXT);
    }
    RANGE(sliding_window, 0, CLLM_MODEL_MAX_CONTEXT);
    if (cllm_model_config_num_params(cfg) == 0)
        return cllm_error_set(err, CLLM_ERR_ARG,
                              "model config: the parameter count overflows (n_layer %d, n_embd %d, "
                              "ffn_hidden %d, vocab_size %d)",
                              cfg->n_layer, cfg->n_embd, cfg->ffn_hidden, cfg->vocab_size);
    return CLLM_OK;
}

static cllm_status parse_int(const char *key, const char *v, int *out, cllm_error *err) {
    char *end = NULL;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno == ERANGE || x < -2147483647L || x > 2147483647L)
        return cllm_error_set(err, CLLM_ERR_ARG, "model config: %s expects an integer, got '%s'",
                              key, v);
    *out = (int)x;
    return CLLM_OK;
}

static cllm_status parse_float(const char *key, const char *v, float *out, cllm_error *err) {
    char *end = NULL;
    errno = 0;
    double x = strtod(v, &end);
    if (!*v || *end || errno == ERANGE || !isfinite(x))
        return cllm_error_set(err, CLLM_ERR_ARG, "model config: %s expects a number, got '%s'",
                              key, v);
    *out = (float)x;
    return CLLM_OK;
}

static cllm_status parse_flag(const char *key, const char *v, int *out, cllm_error *err) {
    if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "on")) *out = 1;
    else if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "off")) *out = 0;
    else
        return cllm_error_set(err, CLLM_ERR_ARG, "model config: %s expects true/false, got '%s'",
                              key, v);
    return CLLM_OK;
}

cllm_status cllm_model_config_set(cllm_model_config *cfg, const char *key, const char *value,
                                  cllm_error *err) {
    if (!cfg || !key || !value) return cllm_error_set(err, CLLM_ERR_ARG, "model config: NULL argument");
    static const struct {
        const char *name;
        size_t off;
    } ints[] = {
        {"vocab_size", offsetof(cllm_model_config, vocab_size)},
        {"context_length", offsetof(cllm_model_config, context_length)},
        {"n_layer", offsetof(cllm_model_config, n_layer)},
        {"n_head", offsetof(cllm_model_config, n_head)},
        {"n_kv_head", offsetof(cllm_model_config, n_kv_head)},
        {"n_embd", offsetof(cllm_model_config, n_embd)},
        {"ffn_hidden", offsetof(cllm_model_config, ffn_hidden)},
        {"rope_orig_context", offsetof(cllm_model_config, rope_orig_context)},
        {"sliding_window", offsetof(cllm_model_config, sliding_window)},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (!strcmp(key, ints[i].name)) return parse_int(key, value, (int *)((char *)cfg + ints[i].off), err);
    if (!strcmp(key, "rope_theta")) return parse_float(key, value, &cfg->rope_theta, err);
    if (!strcmp(key, "norm_eps")) return parse_float(key, value, &cfg->norm_eps, err);
    if (!strcmp(key, "dropout")) return parse_float(key, value, &cfg->dropout, err);
    if (!strcmp(key, "tied_embeddings")) return parse_flag(key, value, &cfg->tied_embeddings, err);
    if (!strcmp(key, "bias")) return parse_flag(key, value, &cfg->bias, err);
    if (!strcmp(key, "qkv_bias")) return parse_flag(key, value, &cfg->qkv_bias, err);
    if (!strcmp(key, "rope_neox")) return parse_flag(key, value, &cfg->rope_neox, err);
    if (!strcmp(key, "rope_factor")) return parse_float(key, value, &cfg->rope_factor, err);
    if (!strcmp(key, "rope_low_freq_factor")) return parse_float(key, value, &cfg->rope_low_freq_factor, err);
    if (!strcmp(key, "rope_high_freq_factor")) return parse_float(key, value, &cfg->rope_high_freq_factor, err);
    int k;
    if (!strcmp(key, "pos")) {
        if ((k = cllm_model_pos_parse(value)) < 0)
            return cllm_error_set(err, CLLM_ERR_ARG,
                                  "model config: pos must be learned, sinusoidal or rope, got '%s'", value);
        cfg->pos = (cllm_pos_kind)k;
        return CLLM_OK;
    }
    if (!strcmp(key, "norm")) {
        if ((k = cllm_model_norm_parse(value)) < 0)
            return cllm_error_set(err, CLLM_ERR_ARG,
                                  "model config: norm must be layernorm or rmsnorm, got '%s'", value);
        cfg->norm = (cllm_norm_kind)k;
        return CLLM_OK;
    }
    if (!strcmp(key, "mlp")) {
        if ((k = cllm_model_mlp_parse(value)) < 0)
            return cllm_error_set(err, CLLM_ERR_ARG,
                                  "model config: mlp must be gelu or swiglu, got '%s'", value);
        cfg->mlp = (cllm_mlp_kind)k;
        return CLLM_OK;
    }
    if (!strcmp(key, "rope_scaling")) {
        if ((k = cllm_model_rope_scaling_parse(value)) < 0)
            return cllm_error_set(err, CLLM_ERR_ARG,
                                  "model config: rope_scaling must be none, linear or llama3, got '%s'", value);
        cfg->rope_scaling = (cllm_rope_scaling)k;
        return CLLM_OK;
    }
    return cllm_error_set(err, CLLM_ERR_ARG, "model config: unknown field '%s'", key);
}

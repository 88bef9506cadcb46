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

const char *cllm_model_pos_name(cllm_pos_kind k) {
    return (unsigned)k < CLLM_POS_COUNT ? pos_names[k] : "?";
}
const char *cllm_model_norm_name(cllm_norm_kind k) {
    return (unsigned)k < CLLM_NORM_COUNT ? norm_names[k] : "?";
}
const char *cllm_model_mlp_name(cllm_mlp_kind k) {
    return (unsigned)k < CLLM_MLP_COUNT ? mlp_names[k] : "?";
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
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (!strcmp(key, ints[i].name)) return parse_int(key, value, (int *)((char *)cfg + ints[i].off), err);
    if (!strcmp(key, "rope_theta")) return parse_float(key, value, &cfg->rope_theta, err);
    if (!strcmp(key, "norm_eps")) return parse_float(key, value, &cfg->norm_eps, err);
    if (!strcmp(key, "dropout")) return parse_float(key, value, &cfg->dropout, err);
    if (!strcmp(key, "tied_embeddings")) return parse_flag(key, value, &cfg->tied_embeddings, err);
    if (!strcmp(key, "bias")) return parse_flag(key, value, &cfg->bias, err);
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
    return cllm_error_set(err, CLLM_ERR_ARG, "model config: unknown field '%s'", key);
}

/*
 * sampler_args.c: parsing of the sampling flags (see sampler_args.h).
 */
#include "sampler_args.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cllm/core/fileio.h"

int sampler_set(const char *command, cllm_sampler_params *p, const char *name, const char *value) {
    double d;
    int64_t n;
    cllm_error err;
    if (!strcmp(name, "temperature")) {
        if (!cli_parse_double(command, "temperature", value, 0, 100, &d)) return 0;
        p->temperature = (float)d;
    } else if (!strcmp(name, "top-k") || !strcmp(name, "top_k")) {
        if (!cli_parse_i64(command, "top-k", value, 0, 1 << 24, &n)) return 0;
        p->top_k = (int)n;
    } else if (!strcmp(name, "top-p") || !strcmp(name, "top_p")) {
        if (!cli_parse_double(command, "top-p", value, 1e-9, 1, &d)) return 0;
        p->top_p = (float)d;
    } else if (!strcmp(name, "min-p") || !strcmp(name, "min_p")) {
        if (!cli_parse_double(command, "min-p", value, 0, 0.999999, &d)) return 0;
        p->min_p = (float)d;
    } else if (!strcmp(name, "repeat-penalty") || !strcmp(name, "repeat_penalty")) {
        if (!cli_parse_double(command, "repeat-penalty", value, 0.01, 100, &d)) return 0;
        p->repeat_penalty = (float)d;
    } else if (!strcmp(name, "presence-penalty") || !strcmp(name, "presence_penalty")) {
        if (!cli_parse_double(command, "presence-penalty", value, -2, 2, &d)) return 0;
        p->presence_penalty = (float)d;
    } else if (!strcmp(name, "frequency-penalty") || !strcmp(name, "frequency_penalty")) {
        if (!cli_parse_double(command, "frequency-penalty", value, -2, 2, &d)) return 0;
        p->frequency_penalty = (float)d;
    } else if (!strcmp(name, "penalty-window") || !strcmp(name, "penalty_window")) {
        if (!cli_parse_i64(command, "penalty-window", value, 0, 1 << 20, &n)) return 0;
        p->penalty_window = (int)n;
    } else if (!strcmp(name, "seed")) {
        if (!cli_parse_i64(command, "seed", value, 0, INT64_MAX, &n)) return 0;
        p->seed = (uint64_t)n;
    } else if (!strcmp(name, "sampler-order") || !strcmp(name, "sampler_order")) {
        if (cllm_sampler_parse_order(p, value, &err) != CLLM_OK) {
            cli_usage_error(command, "%s", err.msg);
            return 0;
        }
    } else if (!strcmp(name, "logit-bias") || !strcmp(name, "logit_bias")) {
        const char *eq = strchr(value, '=');
        char id_text[32];
        if (!eq || eq == value || (size_t)(eq - value) >= sizeof id_text) {
            cli_usage_error(command, "logit-bias expects ID=BIAS, got '%s'", value);
            return 0;
        }
        snprintf(id_text, sizeof id_text, "%.*s", (int)(eq - value), value);
        if (!cli_parse_i64(command, "logit-bias id", id_text, 0, INT32_MAX, &n)) return 0;
        if (!strcmp(eq + 1, "-inf")) d = -INFINITY;
        else if (!cli_parse_double(command, "logit-bias value", eq + 1, -100, 100, &d)) return 0;
        if (p->n_bias >= CLLM_SAMPLER_MAX_BIAS) {
            cli_usage_error(command, "at most %d --logit-bias entries", CLLM_SAMPLER_MAX_BIAS);
            return 0;
        }
        p->bias[p->n_bias++] = (cllm_logit_bias){(int32_t)n, (float)d};
    } else {
        cli_usage_error(command, "unknown sampling setting '%s'", name);
        return 0;
    }
    return 1;
}

int sampler_arg(const char *command, cllm_sampler_params *p, int argc, char **argv, int *i) {
    static const char *const flags[] = {"--temperature", "--top-k", "--top-p", "--min-p", "--repeat-penalty",
                                        "--presence-penalty", "--frequency-penalty", "--penalty-window",
                                        "--seed", "--sampler-order", "--logit-bias"};
    const char *a = !strcmp(argv[*i], "--temp") ? "--temperature" : argv[*i]; /* llama.cpp's spelling */
    for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++) {
        if (strcmp(a, flags[k])) continue;
        const char *v = cli_value(command, argc, argv, i);
        if (!v) return -1;
        return sampler_set(command, p, flags[k] + 2, v) ? 1 : -1;
    }
    return 0;
}

int grammar_arg(const char *command, grammar_args *g, int argc, char **argv, int *i) {
    const char **slot = !strcmp(argv[*i], "--grammar") ? &g->grammar_path
                        : !strcmp(argv[*i], "--json-schema") ? &g->schema_path : NULL;
    if (!slot) return 0;
    if (!(*slot = cli_value(command, argc, argv, i))) return -1;
    if (g->grammar_path && g->schema_path) {
        cli_usage_error(command, "give --grammar or --json-schema, not both");
        return -1;
    }
    return 1;
}

int grammar_args_load(const char *command, grammar_args *g) {
    const char *path = g->grammar_path ? g->grammar_path : g->schema_path;
    if (!path) return CLI_EXIT_OK;
    cllm_error err;
    char *text = NULL, *gbnf = NULL;
    size_t len = 0;
    cllm_status st = cllm_file_read_all(path, CLLM_GRAMMAR_MAX_TEXT, &text, &len, &err);
    if (st == CLLM_OK && g->schema_path) {
        st = cllm_json_schema_to_gbnf(text, len, path, &gbnf, &err);
        if (st == CLLM_OK) st = cllm_grammar_parse(gbnf, strlen(gbnf), path, &g->grammar, &err);
    } else if (st == CLLM_OK) {
        st = cllm_grammar_parse(text, len, path, &g->grammar, &err);
    }
    free(text);
    free(gbnf);
    return st == CLLM_OK ? CLI_EXIT_OK : cli_fail(command, &err);
}

cllm_status grammar_args_vocab(grammar_args *g, const cllm_tokenizer *tok, const int32_t *eog, int n_eog,
                               cllm_error *err) {
    if (g->vocab || !g->grammar) return CLLM_OK;
    g->vocab = cllm_grammar_vocab_from_tokenizer(tok, eog, n_eog, err);
    return g->vocab ? CLLM_OK : err->status;
}

cllm_status grammar_args_attach(grammar_args *g, cllm_sampler *s, const cllm_tokenizer *tok, const int32_t *eog,
                                int n_eog, cllm_error *err) {
    if (!g->grammar) return CLLM_OK;
    cllm_status st = grammar_args_vocab(g, tok, eog, n_eog, err);
    return st == CLLM_OK ? cllm_sampler_set_grammar(s, g->grammar, g->vocab, err) : st;
}

void grammar_args_free(grammar_args *g) {
    cllm_grammar_vocab_destroy(g->vocab);
    cllm_grammar_destroy(g->grammar);
    g->vocab = NULL;
    g->grammar = NULL;
}

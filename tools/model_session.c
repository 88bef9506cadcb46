/*
 * model_session.c: model + tokenizer + chat template for inference commands:
 * the command-line flags over the library loader (model_file.h).
 */
#include "model_session.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cllm/formats/ggml_types.h"
#include "cllm/kernels/kernels.h"
#include "cllm/model/lora.h"
#include "cllm/load/model_file.h"
#include "cllm/model/mapped.h"

void model_session_args_init(model_session_args *a) {
    memset(a, 0, sizeof *a);
}

int model_session_arg(const char *command, model_session_args *a, int argc, char **argv, int *i) {
    const char *flag = argv[*i];
    const char *v;
    if (!strcmp(flag, "-m") || !strcmp(flag, "--model")) {
        if (!(v = cli_value(command, argc, argv, i))) return -1;
        a->model_path = v;
        return 1;
    }
    if (!strcmp(flag, "--ctx")) {
        if (!(v = cli_value(command, argc, argv, i))) return -1;
        return cli_parse_int(command, flag, v, 2, 1 << 20, &a->context) ? 1 : -1;
    }
    if (!strcmp(flag, "--threads")) {
        if (!(v = cli_value(command, argc, argv, i))) return -1;
        return cli_parse_int(command, flag, v, 1, 1024, &a->threads) ? 1 : -1;
    }
    if (!strcmp(flag, "--cache-type")) {
        if (!(v = cli_value(command, argc, argv, i))) return -1;
        return model_session_parse_cache_type(command, v, &a->cache_type) ? 1 : -1;
    }
    if (!strcmp(flag, "--no-check-weights")) {
        a->no_check_weights = 1;
        return 1;
    }
    if (!strcmp(flag, "--no-repack")) {
        a->no_repack = 1;
        return 1;
    }
    if (!strcmp(flag, "--bf16-prompt")) {
        if (!(v = cli_value(command, argc, argv, i))) return -1;
        return model_session_parse_bf16_prompt(command, v, &a->bf16_prompt) ? 1 : -1;
    }
    if (!strcmp(flag, "--lora")) {
        if (!(v = cli_value(command, argc, argv, i))) return -1;
        a->lora_path = v;
        return 1;
    }
    if (!strcmp(flag, "--chat-template") || !strcmp(flag, "--template")) {
        if (!(v = cli_value(command, argc, argv, i))) return -1;
        a->chat_template = v; /* a name or a file, read with the model */
        return 1;
    }
    return tok_source_arg(command, &a->tokenizer, argc, argv, i);
}

int model_session_parse_cache_type(const char *command, const char *v, int *type) {
    if (!strcmp(v, "f32")) *type = CLLM_GGML_F32;
    else if (!strcmp(v, "f16")) *type = CLLM_GGML_F16;
    else if (!strcmp(v, "q8_0")) *type = CLLM_GGML_Q8_0;
    else {
        cli_usage_error(command, "--cache-type must be f32, f16 or q8_0, got '%s'", v);
        return 0;
    }
    return 1;
}

int model_session_parse_bf16_prompt(const char *command, const char *v, int *route) {
    if (!strcmp(v, "auto")) *route = CLLM_BF16_PROMPT_AUTO;
    else if (!strcmp(v, "own")) *route = CLLM_BF16_PROMPT_OWN;
    else if (!strcmp(v, "onednn")) *route = CLLM_BF16_PROMPT_ONEDNN;
    else {
        cli_usage_error(command, "--bf16-prompt must be auto, own or onednn, got '%s'", v);
        return 0;
    }
    return 1;
}

/* The KV cache of --ctx x slots must fit in 3/4 of the machine's memory,
 * checked before anything is allocated; prints the usage error. */
static int check_cache_fits(const char *command, const cllm_model_config *cfg, const cllm_model_options *opt) {
    cllm_model_memory mem;
    cllm_error err;
    if (cllm_model_memory_estimate(cfg, opt, &mem, &err) != CLLM_OK) return cli_usage_error(command, "%s", err.msg);
    const double phys = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    const double gib = 1024.0 * 1024.0 * 1024.0;
    if (phys > 0 && (double)mem.kv_cache_bytes > 0.75 * phys)
        return cli_usage_error(command,
                               "a %d-token KV cache for %d slot%s needs %.1f GiB, more than 3/4 of this machine's "
                               "%.1f GiB: lower --ctx%s or use --cache-type q8_0",
                               opt->kv_context, opt->kv_slots, opt->kv_slots == 1 ? "" : "s",
                               (double)mem.kv_cache_bytes / gib, phys / gib,
                               opt->kv_slots > 1 ? " or --parallel" : "");
    return CLI_EXIT_OK;
}

int model_session_open(const char *command, const model_session_args *a, int kv_slots, model_session *s) {
    memset(s, 0, sizeof *s);
    if (!a->model_path) return cli_usage_error(command, "a model is required: -m MODEL.gguf");
    cllm_kernels_set_threads(a->threads);
    cllm_model_file_params fp = cllm_model_file_default_params();
    if (a->tokenizer.path) {
        int rc = tok_source_load(command, &a->tokenizer, &fp.tokenizer);
        if (rc != 0) return rc;
    }
    /* config, tokenizer and template first: --ctx is checked before the weights load */
    fp.load_model = 0;
    fp.chat_template = a->chat_template;
    fp.chat_template_optional = a->template_optional;
    cllm_error err;
    cllm_model_file f;
    if (cllm_model_file_open(a->model_path, &fp, &f, &err) != CLLM_OK) return cli_fail(command, &err);
    if (f.chat_template_refused)
        fprintf(stderr, "cllm %s: warning: %s (not needed here)\n", command, f.chat_template_error.msg);
    /* A file may claim any context (2^20 positions in a 146 KB model made
     * generate allocate 2.3 GiB): without --ctx the cache covers at most
     * SESSION_DEFAULT_CONTEXT positions, as llama.cpp's default. */
    int context = a->context > 0 ? a->context : f.config.context_length;
    if (a->context <= 0 && context > SESSION_DEFAULT_CONTEXT) {
        context = SESSION_DEFAULT_CONTEXT;
        fprintf(stderr, "cllm %s: using a %d-token context (the model allows %d; --ctx N for more)\n", command,
                context, f.config.context_length);
    }
    if (context > f.config.context_length) {
        int rc = cli_usage_error(command, "--ctx %d is larger than the model's context length %d", context,
                                 f.config.context_length);
        cllm_model_file_close(&f);
        return rc;
    }
    cllm_model_options opt = cllm_model_default_options();
    opt.kv_slots = kv_slots;
    opt.kv_context = context;
    opt.kv_type = a->cache_type;
    opt.keep_file_layout = a->no_repack;
    opt.skip_weight_check = a->no_check_weights;
    opt.bf16_prompt = a->bf16_prompt;
    opt.max_seq = context < 512 ? context : 512; /* prompt chunk */
    if (check_cache_fits(command, &f.config, &opt) != CLI_EXIT_OK) {
        cllm_model_file_close(&f);
        return CLI_EXIT_USAGE;
    }
    /* Weights stay memory-mapped in the file's own types (f32, f16, bf16,
     * q8_0, q4_0) and are copied into a huge-page arena (q8_0/q4_0 repacked
     * for the VNNI kernels) unless --no-repack. */
    memcpy(s->name, f.name, sizeof s->name);
    memcpy(s->description, f.description, sizeof s->description);
    cllm_gguf *g = f.gguf; /* the loader's parse, handed to the mapped model (parsed once) */
    f.gguf = NULL;
    cllm_status st = cllm_model_from_gguf_mapped(g, &opt, &s->model, &err);
    if (st == CLLM_OK && a->lora_path) st = cllm_model_lora_load_gguf(s->model, a->lora_path, &err);
    s->tok = f.tok;
    f.tok = NULL;
    s->chat_template = f.chat_template;
    f.chat_template = cllm_chat_template_builtin(CLLM_CHAT_TEMPLATE_PLAIN);
    s->context = context;
    cllm_model_file_close(&f);
    if (st != CLLM_OK) {
        model_session_close(s);
        return cli_fail(command, &err);
    }
    return CLI_EXIT_OK;
}

void model_session_close(model_session *s) {
    cllm_model_destroy(s->model);
    cllm_tokenizer_destroy(s->tok);
    cllm_chat_template_free(&s->chat_template);
    memset(s, 0, sizeof *s);
}

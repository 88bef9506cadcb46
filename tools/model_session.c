/*
 * model_session.c: model + tokenizer + chat template for inference commands.
 */
#include "model_session.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cllm/ggml_types.h"
#include "cllm/gguf.h"
#include "cllm/kernels.h"
#include "cllm/lora.h"
#include "cllm/model_io.h"
#include "cllm/model_quant.h"

void model_session_args_init(model_session_args *a) {
    memset(a, 0, sizeof *a);
    a->chat_template = -1;
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
    if (!strcmp(flag, "--template")) {
        if (!(v = cli_value(command, argc, argv, i))) return -1;
        a->chat_template = cllm_chat_template_parse(v);
        if (a->chat_template < 0) {
            cli_usage_error(command, "--template must be chatml or plain, got '%s'", v);
            return -1;
        }
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

int model_session_open(const char *command, const model_session_args *a, int kv_slots, model_session *s) {
    memset(s, 0, sizeof *s);
    if (!a->model_path) return cli_usage_error(command, "a model is required: -m MODEL.gguf");
    cllm_kernels_set_threads(a->threads);
    cllm_error err;
    cllm_gguf *g = NULL;
    cllm_status st = cllm_gguf_open(&g, a->model_path, &err);
    cllm_model_config cfg;
    if (st == CLLM_OK) st = cllm_model_config_from_gguf(g, &cfg, &err);
    if (st != CLLM_OK) {
        cllm_gguf_close(g);
        return cli_fail(command, &err);
    }
    int context = a->context > 0 ? a->context : cfg.context_length;
    if (context > cfg.context_length) {
        cllm_gguf_close(g);
        return cli_usage_error(command, "--ctx %d is larger than the model's context length %d", context,
                               cfg.context_length);
    }
    cllm_model_options opt = cllm_model_default_options();
    opt.kv_slots = kv_slots;
    opt.kv_context = context;
    opt.kv_type = a->cache_type;
    opt.keep_file_layout = a->no_repack;
    opt.bf16_prompt = a->bf16_prompt;
    opt.max_seq = context < 512 ? context : 512; /* prompt chunk */
    /* Weights stay memory-mapped in the file's own types (f32, f16, bf16,
     * q8_0, q4_0) and are copied into a huge-page arena (q8_0/q4_0 repacked
     * for the VNNI kernels) unless --no-repack. */
    st = cllm_model_load_gguf_mapped(a->model_path, &opt, &s->model, &err);
    if (st == CLLM_OK && a->lora_path && (st = cllm_model_lora_load_gguf(s->model, a->lora_path, &err)) != CLLM_OK)
        model_session_close(s);
    if (st != CLLM_OK) {
        cllm_gguf_close(g);
        return cli_fail(command, &err);
    }
    s->context = context;
    /* Tokenizer: explicit file, then the model's own, then raw bytes. */
    if (a->tokenizer.path) {
        int rc = tok_source_load(command, &a->tokenizer, &s->tok);
        if (rc != 0) {
            cllm_gguf_close(g);
            model_session_close(s);
            return rc;
        }
    } else if (cllm_gguf_find_kv(g, "tokenizer.ggml.tokens")) {
        st = cllm_tokenizer_from_gguf(g, &s->tok, &err);
    } else if (cfg.vocab_size == 256) {
        st = cllm_tokenizer_new_bytes(&s->tok, &err);
    } else {
        st = cllm_error_set(&err, CLLM_ERR_FORMAT,
                            "%s: the model has no tokenizer inside (no tokenizer.ggml.tokens); pass --tokenizer FILE",
                            a->model_path);
    }
    if (st == CLLM_OK && (int64_t)cllm_tokenizer_n_vocab(s->tok) != cfg.vocab_size)
        st = cllm_error_set(&err, CLLM_ERR_ARG, "the tokenizer has %u tokens but %s expects %d",
                            cllm_tokenizer_n_vocab(s->tok), a->model_path, cfg.vocab_size);
    /* Chat template: flag, then the file's, then what the vocabulary supports. */
    if (st == CLLM_OK) {
        char jinja[8192];
        if (a->chat_template >= 0) s->chat_template = (cllm_chat_template)a->chat_template;
        else if (cllm_gguf_get_str_buf(g, "tokenizer.chat_template", jinja, sizeof jinja, NULL) == CLLM_OK)
            st = cllm_chat_template_detect(jinja, &s->chat_template, &err);
        else s->chat_template = cllm_chat_template_for(s->tok);
    }
    cllm_gguf_close(g);
    if (st != CLLM_OK) {
        model_session_close(s);
        return cli_fail(command, &err);
    }
    return CLI_EXIT_OK;
}

void model_session_close(model_session *s) {
    cllm_model_destroy(s->model);
    cllm_tokenizer_destroy(s->tok);
    memset(s, 0, sizeof *s);
}

/*
 * cmd_lora.c: `cllm lora merge BASE.gguf ADAPTER.gguf OUT.gguf`: folds a
 * LoRA adapter into the base weights and writes a new f32 model file that
 * keeps the base's tokenizer and chat template metadata.
 * Does not: train adapters (cllm sft --lora-rank) or quantize (cllm quantize).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cllm/formats/ggml_types.h"
#include "cllm/formats/gguf.h"
#include "cllm/infer/quantize.h"
#include "cllm/model/lora.h"
#include "cllm/model/gguf_io.h"

#define CMD "lora"

static void usage(void) {
    printf("Usage: cllm lora merge BASE.gguf ADAPTER.gguf OUT.gguf [--type TYPE]\n"
           "       cllm lora merge BASE.gguf ADAPTER.gguf -o OUT.gguf   (-o, --out: the same)\n\n"
           "Merges a LoRA adapter (from cllm sft --lora-rank) into its base model:\n"
           "W += (alpha/r) B A for every adapted matrix. OUT keeps the base's tokenizer\n"
           "and chat template and is written atomically, with f32 weights unless\n"
           "--type TYPE re-quantizes the matrices as cllm quantize does (f16, bf16, q8_0,\n"
           "q4_0, q4_1, q5_0, q5_1, q2_K..q6_K, or the mixes q3_k_m, q4_k_m, q5_k_m; the\n"
           "merged f32 model is written next to OUT first and removed). A quantized base\n"
           "(an adapter trained by QLoRA) is dequantized, merged in f32 and written in f32\n"
           "or --type; the command says which.\n");
}

/* Copies the base file's tokenizer.* and cllm.tokenizer_hash keys. */
static cllm_status copy_keys(cllm_gguf_writer *w, void *ctx, cllm_error *err) {
    const cllm_gguf *g = ctx;
    for (uint64_t i = 0; i < cllm_gguf_n_kv(g); i++) {
        const cllm_gguf_kv *kv = cllm_gguf_kv_at(g, i);
        if (!strncmp(kv->key, "tokenizer.", 10) || !strcmp(kv->key, "cllm.tokenizer_hash")) {
            cllm_status st = cllm_gguf_set_kv(w, kv, err);
            if (st != CLLM_OK) return st;
        }
    }
    return CLLM_OK;
}

int cllm_cmd_lora(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (cli_is_help(argv[i])) {
            usage();
            return CLI_EXIT_OK;
        }
    if (argc < 2 || strcmp(argv[1], "merge")) return cli_usage_error(CMD, "expected the subcommand 'merge'");
    uint32_t type = CLLM_GGML_F32;
    cllm_quantize_mix mix = CLLM_QUANTIZE_PURE;
    const char *type_name = "f32";
    int have_type = 0;
    for (int i = 2; i < argc; i++) /* --type TYPE anywhere after merge: taken out of argv */
        if (!strcmp(argv[i], "--type")) {
            if (i + 1 >= argc) return cli_usage_error(CMD, "--type needs a value");
            if (strcmp(argv[i + 1], "f32") && cllm_quantize_parse_target(argv[i + 1], &type, &mix) != 0)
                return cli_usage_error(CMD, "--type: unknown type '%s' (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, "
                                            "q2_K..q6_K, q3_k_m, q4_k_m, q5_k_m)", argv[i + 1]);
            type_name = argv[i + 1];
            have_type = strcmp(argv[i + 1], "f32") != 0;
            for (int j = i; j + 2 < argc; j++) argv[j] = argv[j + 2];
            argc -= 2;
            i--;
        }
    if (argc == 6 && (!strcmp(argv[4], "-o") || !strcmp(argv[4], "--out"))) { /* merge BASE ADAPTER -o OUT */
        argv[4] = argv[5];
        argc = 5;
    }
    if (argc != 5) return cli_usage_error(CMD, "merge takes BASE.gguf ADAPTER.gguf OUT.gguf (or -o OUT.gguf)");
    cllm_error err;
    cllm_gguf *g = NULL;
    cllm_model *m = NULL;
    cllm_status st = cllm_gguf_open(&g, argv[2], &err);
    const int quantized = st == CLLM_OK && cllm_lora_base_is_quantized(g);
    if (st == CLLM_OK) st = cllm_model_from_gguf(g, NULL, 1, &m, &err);
    if (st == CLLM_OK) st = cllm_model_lora_load_gguf(m, argv[3], &err);
    if (st == CLLM_OK) st = cllm_model_lora_merge(m, &err);
    /* --type: the merged f32 model, then the quantizer's rules (mixes and fallbacks as cllm quantize) */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.merge-f32.tmp", argv[4]);
    if (st == CLLM_OK) {
        cllm_model_save_params sp = cllm_model_save_default_params();
        sp.extra = copy_keys;
        sp.extra_ctx = g;
        st = cllm_model_save_gguf(m, have_type ? tmp : argv[4], &sp, &err);
        if (st == CLLM_OK && have_type) st = cllm_quantize_gguf_mix(tmp, argv[4], type, mix, NULL, &err);
        if (have_type) unlink(tmp);
    }
    cllm_model_destroy(m);
    cllm_gguf_close(g);
    if (st != CLLM_OK) return cli_fail(CMD, &err);
    fprintf(stderr, "cllm lora: merged %s into %s -> %s (%s weights%s)\n", argv[3], argv[2], argv[4], type_name,
            quantized && !have_type ? "; the base was quantized: it was dequantized and the merged model is "
                                      "written in f32, --type re-quantizes" : "");
    return CLI_EXIT_OK;
}

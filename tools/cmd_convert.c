/*
 * cmd_convert.c: `cllm convert HF_DIR -o OUT.gguf [--type TYPE]`: import a
 * Hugging Face model folder (config.json, safetensors, tokenizer) as the
 * GGUF file llama.cpp's converter writes (rules in cllm/infer/convert.h).
 * Argument checks and messages only.
 */
#include <libgen.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cllm/core/fileio.h"
#include "cllm/formats/ggml_types.h"
#include "cllm/infer/convert.h"

#define CMD "convert"

static void usage(FILE *out) {
    fprintf(out,
            "Usage: cllm convert HF_DIR -o OUT.gguf [--type TYPE]\n\n"
            "Reads a Hugging Face model folder (config.json; model.safetensors or the\n"
            "shards of model.safetensors.index.json; tokenizer.model or tokenizer.json;\n"
            "tokenizer_config.json) and writes OUT.gguf as llama.cpp's\n"
            "convert_hf_to_gguf.py does: GPT2LMHeadModel (gpt2), LlamaForCausalLM and\n"
            "MistralForCausalLM (llama), Qwen2ForCausalLM (qwen2). Tensors are checked\n"
            "against config.json; anything cllm cannot express is refused by name.\n"
            "The output appears only complete.\n\n"
            "Options:\n"
            "  -o, --out OUT.gguf  the file to write (required)\n"
            "  -t, --type TYPE     matrices' type: auto (default: the checkpoint's f16/bf16/f32),\n"
            "                      f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_K .. q6_K,\n"
            "                      q3_k_m, q4_k_m, q5_k_m (as `cllm quantize`); 1-D tensors are f32\n"
            "  --name NAME         general.name (default: the folder's name)\n"
            "  -q, --quiet         no summary line on stderr\n"
            "  -h, --help          this help\n");
}

int cllm_cmd_convert(int argc, char **argv) {
    const char *dir = NULL, *out = NULL, *type_arg = NULL;
    cllm_convert_params p = cllm_convert_default_params();
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return CLI_EXIT_OK;
        } else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) {
            quiet = 1;
        } else if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--out")) {
            if (!(out = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(argv[i], "-t") || !strcmp(argv[i], "--type")) {
            if (!(type_arg = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(argv[i], "--name")) {
            if (!(p.name = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return cli_unknown_flag(CMD, argv[i]);
        } else if (!dir) {
            dir = argv[i];
        } else {
            return cli_usage_error(CMD, "unexpected argument '%s'", argv[i]);
        }
    }
    if (!dir || !out) return cli_usage_error(CMD, "expected HF_DIR -o OUT.gguf");
    if (type_arg && strcmp(type_arg, "auto") != 0) {
        if (cllm_quantize_parse_target(type_arg, &p.type, &p.mix) != 0)
            return cli_usage_error(CMD,
                                   "unknown type '%s' (use auto, f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_K, "
                                   "q3_K, q4_K, q5_K, q6_K, q3_k_m, q4_k_m or q5_k_m)",
                                   type_arg);
        p.auto_type = 0;
    }
    cllm_error err = {0};
    char odir[4096]; /* OUT's directory, checked before any work */
    snprintf(odir, sizeof odir, "%s", out);
    if (cllm_dir_check_writable(dirname(odir), &err) != CLLM_OK) return cli_fail(CMD, &err);
    cllm_convert_stats s;
    if (cllm_convert_hf(dir, out, &p, &s, &err) != CLLM_OK) return cli_fail(CMD, &err);
    if (!quiet)
        fprintf(stderr,
                "cllm convert: %s (%s) -> %s (arch %s, %s, tokenizer from %s): %llu checkpoint tensors in %u file%s, "
                "%d written, %d converted, %d in a fallback type; %.1f MiB -> %.1f MiB\n",
                dir, s.hf_arch, out, s.arch, type_arg && strcmp(type_arg, "auto") ? type_arg : cllm_ggml_type_name(s.type),
                s.tokenizer, (unsigned long long)s.n_source, s.n_files, s.n_files == 1 ? "" : "s", s.q.n_tensors,
                s.q.n_converted, s.q.n_fallback, (double)s.q.bytes_in / 1048576.0, (double)s.q.bytes_out / 1048576.0);
    if (s.pre_unknown) /* even with -q: the file is not what llama.cpp will read the same way */
        fprintf(stderr,
                "cllm convert: note: %s/tokenizer.json splits text with a regex llama.cpp has no name for; the GGUF says "
                "tokenizer.ggml.pre 'default', so llama.cpp will split differently (cllm reads the regex itself)\n",
                dir);
    return CLI_EXIT_OK;
}

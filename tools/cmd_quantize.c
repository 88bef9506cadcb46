/*
 * cmd_quantize.c: `cllm quantize IN.gguf OUT.gguf TYPE`: rewrite a model file
 * with its matrices in one ggml type or a llama-quantize k-quant mix
 * (llama.cpp's block layouts; rules in cllm/infer/quantize.h). Argument
 * checks and messages only.
 */
#include <libgen.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cllm/core/fileio.h"
#include "cllm/formats/ggml_types.h"
#include "cllm/infer/quantize.h"

#define CMD "quantize"

static void usage(FILE *out) {
    fprintf(out,
            "Usage: cllm quantize IN.gguf OUT.gguf TYPE\n"
            "       cllm quantize IN.gguf TYPE -o OUT.gguf\n"
            "       cllm quantize IN.gguf OUT.gguf --type TYPE\n\n"
            "Writes OUT.gguf with every matrix of IN.gguf in TYPE, keeping all metadata\n"
            "(tokenizer, chat template). TYPE: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0,\n"
            "q5_1, q2_K, q3_K, q4_K, q5_K, q6_K (llama.cpp's layouts and rounding, so\n"
            "llama.cpp runs the file), or a mix of llama-quantize: q3_k_m, q4_k_m,\n"
            "q5_k_m (q6_K for the output head and some attn_v / ffn_down layers, as\n"
            "llama-quantize chooses them). 1-D tensors and position_embd.weight are kept\n"
            "as they are; a matrix whose rows are not a multiple of the block falls back\n"
            "as in llama.cpp (q4_K -> q5_0, q5_K -> q5_1, q6_K -> q8_0, q2_K/q3_K -> q4_0,\n"
            "then f16). The output appears only complete.\n\n"
            "Options:\n"
            "  -o, --out OUT.gguf  the file to write (instead of the second argument)\n"
            "  -t, --type TYPE     the target (instead of the last argument)\n"
            "  -q, --quiet   no summary line on stderr\n"
            "  -h, --help    this help\n");
}

int cllm_cmd_quantize(int argc, char **argv) {
    const char *pos[3] = {0}, *out = NULL, *type_arg = NULL;
    int npos = 0, quiet = 0;
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
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return cli_unknown_flag(CMD, argv[i]);
        } else if (npos < 3) {
            pos[npos++] = argv[i];
        } else {
            return cli_usage_error(CMD, "unexpected argument '%s'", argv[i]);
        }
    }
    if (type_arg) { /* --type TYPE: the positional arguments are IN [OUT] */
        if (npos > 2 || (out && npos != 1) || (!out && npos != 2))
            return cli_usage_error(CMD, "with --type TYPE, give IN.gguf and OUT.gguf (or -o OUT.gguf) only");
        if (out) pos[npos++] = out;
        pos[npos++] = type_arg;
        out = NULL;
    }
    if (out && npos == 2) { /* IN TYPE -o OUT */
        pos[2] = pos[1];
        pos[1] = out;
        npos = 3;
    } else if (out) {
        return cli_usage_error(CMD, "with -o OUT.gguf, give IN.gguf and TYPE only");
    }
    if (npos != 3) return cli_usage_error(CMD, "expected IN.gguf OUT.gguf TYPE (or IN.gguf TYPE -o OUT.gguf)");
    uint32_t type;
    cllm_quantize_mix mix;
    if (cllm_quantize_parse_target(pos[2], &type, &mix) != 0)
        return cli_usage_error(CMD,
                               "unknown type '%s' (use f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_K, q3_K, "
                               "q4_K, q5_K, q6_K, q3_k_m, q4_k_m or q5_k_m)",
                               pos[2]);
    if (!strcmp(pos[0], pos[1])) return cli_usage_error(CMD, "IN and OUT are the same file");
    cllm_error err = {0};
    char dir[4096]; /* OUT's directory, checked before any work (RELIABILITY.md) */
    snprintf(dir, sizeof dir, "%s", pos[1]);
    if (cllm_dir_check_writable(dirname(dir), &err) != CLLM_OK) return cli_fail(CMD, &err);
    cllm_quantize_stats s;
    if (cllm_quantize_gguf_mix(pos[0], pos[1], type, mix, &s, &err) != CLLM_OK) return cli_fail(CMD, &err);
    if (!quiet)
        fprintf(stderr,
                "cllm quantize: %s -> %s (%s): %d tensors, %d converted, %d kept, %d in a fallback type (rows "
                "not a multiple of the block); %.1f MiB -> %.1f MiB\n",
                pos[0], pos[1], mix ? pos[2] : cllm_ggml_type_name(type), s.n_tensors, s.n_converted, s.n_kept,
                s.n_fallback,
                (double)s.bytes_in / 1048576.0, (double)s.bytes_out / 1048576.0);
    return CLI_EXIT_OK;
}

/*
 * cmd_perplexity.c: `cllm perplexity -m MODEL FILE`: perplexity of a GGUF
 * model on a text file, and with --kl-base BASE.gguf the quantization-damage
 * report against a base model (mean KL, top-1 agreement, PPL ratio). Method
 * in cllm/infer/perplexity.h. Both models run through the mapped-weights path
 * (model/mapped.h), so f32 and quantized files are read in place.
 *
 * Text: tokenized with --tokenizer PATH (any format cllm_tokenizer_load_any
 * reads), else with the tokenizer stored in the model file, else, for a
 * model with a 256-token vocabulary, as raw bytes. --tokens reads ids directly (one
 * decimal id per whitespace-separated word).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cllm/core/fileio.h"
#include "cllm/kernels/kernels.h"
#include "cllm/model/model.h"
#include "cllm/load/model_file.h"
#include "cllm/model/mapped.h"
#include "cllm/infer/perplexity.h"
#include "cllm/formats/gguf.h"
#include "cllm/tokenizer/tokenizer.h"
#include "model_session.h"

#define CMD "perplexity"
#define MAX_TEXT (1ull << 31)

static void usage(FILE *out) {
    fprintf(out,
            "Usage: cllm perplexity -m MODEL.gguf [options] FILE\n\n"
            "Perplexity of MODEL on the text in FILE, scored llama.cpp's way: chunks of\n"
            "--ctx tokens, the second half of each chunk scored. With --kl-base, also the\n"
            "mean KL divergence KL(base || model), top-1 agreement and PPL ratio against\n"
            "BASE (e.g. the f32 original of a quantized MODEL) on the same tokens.\n\n"
            "Options:\n"
            "  -m, --model PATH      model to evaluate (GGUF: f32, f16, bf16, q8_0, q4_0, q4_1, q5_*, q2_K..q6_K)\n"
            "  --kl-base PATH        base model for the KL report (same vocabulary)\n"
            "  -c, --ctx N           tokens per chunk (default min(512, context))\n"
            "  --tokenizer PATH      tokenizer for FILE (default: the model's own, or bytes)\n"
            "  --tokens              FILE holds token ids (decimal, whitespace separated)\n"
            "  --max-chunks N        evaluate at most N chunks (default all)\n"
            "  --cache-type T        MODEL's KV cache: f32 (default), f16 or q8_0; the base keeps f32,\n"
            "                        so -m X --kl-base X --cache-type q8_0 measures the cache's damage\n"
            "  --bf16-prompt R       bf16 prompt products: auto (default), own or onednn (see cllm generate)\n"
            "  -t, --threads N       threads (default: all CPUs)\n"
            "  --json                one JSON object on stdout\n"
            "  -h, --help            this help\n");
}

static int read_ids(const char *path, int V, int32_t **ids, size_t *n, cllm_error *err) {
    char *data = NULL;
    size_t len = 0;
    if (cllm_file_read_all(path, MAX_TEXT, &data, &len, err) != CLLM_OK) return -1;
    size_t cap = len / 2 + 1, k = 0;
    int32_t *out = malloc(sizeof *out * cap);
    char *p = data;
    while (out) {
        while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
        if (!*p) break;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v >= V || (*end && *end != ' ' && *end != '\n' && *end != '\t' && *end != '\r')) {
            cllm_error_set(err, CLLM_ERR_FORMAT, "%s: byte %zu: expected a token id in [0, %d)", path,
                           (size_t)(p - data), V);
            free(out);
            free(data);
            return -1;
        }
        out[k++] = (int32_t)v;
        p = end;
    }
    free(data);
    if (!out) {
        cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
        return -1;
    }
    *ids = out;
    *n = k;
    return 0;
}

/* The text in `path` as ids of the model's tokenizer (the loader's choice:
 * --tokenizer, else the model file's, else bytes for a 256-token model). */
static int tokenize_file(const char *path, const cllm_tokenizer *tk, int V, int32_t **ids, size_t *n,
                         cllm_error *err) {
    char *data = NULL;
    size_t len = 0;
    if (cllm_file_read_all(path, MAX_TEXT, &data, &len, err) != CLLM_OK) return -1;
    cllm_tokens toks = {0};
    int rc = -1;
    if (cllm_tokenizer_encode_parallel(tk, data, len, NULL, 0, &toks, err) == CLLM_OK) {
        int32_t *out = malloc(sizeof *out * (toks.n ? toks.n : 1));
        rc = 0;
        for (size_t i = 0; out && i < toks.n; i++) {
            if (toks.ids[i] >= (uint32_t)V) {
                cllm_error_set(err, CLLM_ERR_ARG, "token id %u is outside the model's vocabulary of %d", toks.ids[i], V);
                rc = -1;
                break;
            }
            out[i] = (int32_t)toks.ids[i];
        }
        if (!out) rc = -1, cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
        if (rc == 0) *ids = out, *n = toks.n;
        else free(out);
    }
    cllm_tokens_free(&toks);
    free(data);
    return rc;
}

int cllm_cmd_perplexity(int argc, char **argv) {
    const char *model = NULL, *base = NULL, *file = NULL, *tok = NULL;
    int ctx = 0, threads = 0, json = 0, as_ids = 0, max_chunks = 0, cache_type = 0, bf16_prompt = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (cli_is_help(a)) {
            usage(stdout);
            return CLI_EXIT_OK;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--kl-base")) {
            if (!(base = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--tokenizer")) {
            if (!(tok = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_int(CMD, a, v, 2, CLLM_MODEL_MAX_CONTEXT, &ctx))
                return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--cache-type")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !model_session_parse_cache_type(CMD, v, &cache_type))
                return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--bf16-prompt")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !model_session_parse_bf16_prompt(CMD, v, &bf16_prompt))
                return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--max-chunks")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_int(CMD, a, v, 1, 1 << 30, &max_chunks))
                return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_int(CMD, a, v, 1, 4096, &threads))
                return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--tokens")) {
            as_ids = 1;
        } else if (a[0] == '-' && a[1]) {
            return cli_unknown_flag(CMD, a);
        } else if (!file) {
            file = a;
        } else {
            return cli_usage_error(CMD, "unexpected argument '%s'", a);
        }
    }
    if (!model) return cli_usage_error(CMD, "missing -m MODEL.gguf");
    if (!file) return cli_usage_error(CMD, "missing the text FILE");
    if (as_ids && tok) return cli_usage_error(CMD, "--tokens and --tokenizer exclude each other");
    cllm_kernels_set_threads(threads);
    cllm_error err = {0};
    cllm_model *m = NULL, *b = NULL;
    cllm_model_file f = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = CLI_EXIT_DATA;
    /* One parse of the file: config, tokenizer (none needed with --tokens),
     * then the mapped model with the chunk-sized cache. */
    cllm_model_file_params fp = cllm_model_file_default_params();
    fp.load_model = 0;
    fp.tokenizer_optional = as_ids;
    if (tok && cllm_tokenizer_load_any(tok, CLLM_PRETOK_GPT2, &fp.tokenizer, &err) != CLLM_OK) goto fail;
    if (cllm_model_file_open(model, &fp, &f, &err) != CLLM_OK) goto fail;
    cllm_model_options o = cllm_model_default_options();
    const int context = f.config.context_length, V = f.config.vocab_size;
    if (ctx == 0) ctx = context < 512 ? context : 512;
    if (ctx > context) {
        rc = cli_usage_error(CMD, "--ctx %d exceeds the model's context of %d", ctx, context);
        goto out;
    }
    o.max_seq = ctx < 512 ? ctx : 512;
    o.kv_slots = 1;
    o.kv_context = ctx;
    o.kv_type = cache_type;
    o.bf16_prompt = bf16_prompt; /* both models: the base is the same kind of reference */
    cllm_gguf *g = f.gguf; /* handed to the mapped model */
    f.gguf = NULL;
    if (cllm_model_from_gguf_mapped(g, &o, &m, &err) != CLLM_OK) goto fail;
    o.kv_type = 0; /* the base is the f32-cache reference */
    if (base && cllm_model_load_gguf_mapped(base, &o, &b, &err) != CLLM_OK) {
        cllm_error_prefix(&err, "--kl-base");
        goto fail;
    }
    if ((as_ids ? read_ids(file, V, &ids, &n, &err) : tokenize_file(file, f.tok, V, &ids, &n, &err)) != 0) goto fail;
    if (n < (size_t)ctx) {
        fprintf(stderr, "cllm perplexity: %zu tokens are fewer than one chunk of %d; using --ctx %zu\n", n, ctx, n);
        ctx = (int)n;
    }
    if (max_chunks && n > (size_t)max_chunks * (size_t)ctx) n = (size_t)max_chunks * (size_t)ctx;
    cllm_perplexity_result r;
    if (cllm_perplexity_eval(m, b, ids, n, ctx, &r, &err) != CLLM_OK) goto fail;
    if (json) {
        printf("{\"tokens\": %zu, \"ctx\": %d, \"chunks\": %d, \"scored\": %lld, \"nll\": %.6f, \"nll_stderr\": %.6f, "
               "\"ppl\": %.6f",
               n, ctx, r.n_chunks, (long long)r.n_scored, r.nll, r.nll_stderr, r.ppl);
        if (b)
            printf(", \"base_ppl\": %.6f, \"ppl_ratio\": %.6f, \"kl_mean\": %.8f, \"kl_max\": %.6f, \"top1_agree\": %.6f",
                   r.base_ppl, r.ppl_ratio, r.kl_mean, r.kl_max, r.top1_agree);
        printf("}\n");
    } else {
        printf("tokens %zu, ctx %d, chunks %d, scored %lld\n", n, ctx, r.n_chunks, (long long)r.n_scored);
        printf("PPL %.4f  (mean NLL %.5f +- %.5f)\n", r.ppl, r.nll, r.nll_stderr);
        if (b) {
            printf("base PPL %.4f  ratio %.5f\n", r.base_ppl, r.ppl_ratio);
            printf("KL(base || model) mean %.6f  max %.6f nats\n", r.kl_mean, r.kl_max);
            printf("top-1 agreement %.2f%%\n", 100.0 * r.top1_agree);
        }
    }
    rc = CLI_EXIT_OK;
    goto out;
fail:
    rc = cli_fail(CMD, &err);
out:
    free(ids);
    cllm_model_destroy(m);
    cllm_model_destroy(b);
    cllm_model_file_close(&f);
    return rc;
}

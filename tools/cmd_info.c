/*
 * cmd_info.c: `cllm info`: parameter count, training and inference memory,
 * and FLOPs per token of a preset (optionally with --set overrides) or of a
 * model file.
 *
 * All numbers come from the library (cllm_model_config_num_params,
 * cllm_model_memory_estimate, cllm_model_flops_per_token), which uses the
 * same tensor table and memory plan as model creation, so nothing here is
 * a separate estimate. Prints a table, or one JSON object with --json.
 *
 * The Chinchilla line: a compute-optimal run (Hoffmann et al. 2022: about
 * 20 training tokens per parameter) takes C = 6 N D FLOPs; its time here comes
 * from a measured training speed: forward + backward of a one-layer copy of
 * the model (same width, heads and vocabulary) at B 1 x T min(128, context),
 * scaled to the whole model by the FLOPs per token (--no-speed skips it).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cllm/formats/ggml_types.h"
#include "cllm/formats/gguf.h"
#include "cllm/kernels/kernels.h"
#include "cllm/load/model_file.h"
#include "cllm/model/model.h"
#include "cllm/model/gguf_io.h"
#include "cllm/model/lora.h"
#include "cllm/train/dist.h"
#include "cllm/train/scale.h"

#define CMD "info"

static void usage(FILE *out) {
    fprintf(out,
            "Usage: cllm info (--preset NAME | -m MODEL.gguf) [options]\n\n"
            "Prints a model's parameter count, training memory (parameters, gradients,\n"
            "AdamW moments, activations at B x T), inference memory (weights + KV cache\n"
            "at a context length) and FLOPs per token.\n\n"
            "Options:\n"
            "  --preset NAME        a built-in shape (see --list)\n"
            "  -m, --model PATH     a GGUF model file\n"
            "  --set KEY=VALUE      override a config field (repeatable), e.g. n_layer=4,\n"
            "                       pos=rope, norm=rmsnorm, mlp=swiglu, tied_embeddings=false\n"
            "  -b, --batch B        training micro-batch (default 4)\n"
            "  -t, --seq T          training sequence length (default min(1024, context))\n"
            "  -c, --context N      inference context for the KV cache (default: the model's)\n"
            "  --chunk N            inference prompt chunk (default min(512, context))\n"
            "  --lora-rank R        fine-tuning memory with rank-R adapters (default 8): full\n"
            "                       fine-tuning, LoRA on an f32 base, and for a model file QLoRA on\n"
            "                       its own (quantized) matrix types\n"
            "  --lora-targets LIST  q,k,v,o,up,down,gate|all (default q,v)\n"
            "  --ranks N            data-parallel training over N MPI ranks: AdamW memory per\n"
            "                       rank with and without ZeRO-1 sharding (docs/MPI.md)\n"
            "  --no-speed           skip the training-speed measurement behind the\n"
            "                       Chinchilla-optimal run's time (prints its FLOPs only)\n"
            "  --json               one JSON object instead of the table\n"
            "  --list               list the presets and exit\n"
            "  -h, --help           this help\n");
}

/* The config of a GGUF model file, from its metadata (validated by the
 * GGUF module); only the header is needed, weights stay mapped, unread. */
static cllm_status config_from_model_file(const char *path, cllm_model_config *cfg, cllm_error *err) {
    cllm_gguf *g = NULL;
    cllm_status st = cllm_gguf_open(&g, path, err);
    if (st == CLLM_OK) st = cllm_model_config_from_gguf(g, cfg, err);
    cllm_gguf_close(g);
    return st;
}

/* The chat template commands would use for the model file, as
 * "chatml", "plain" or "jinja", with where it comes from ("none": a
 * tokenizer-less file; "refused: why": a stored template that does not compile). */
/* The chat template's description into out[cap], and what the file says
 * it was trained to do (general.name, general.description) into about[cap]. */
static void template_of(const char *path, char *out, size_t cap, char *about, size_t about_cap) {
    cllm_model_file_params fp = cllm_model_file_default_params();
    fp.load_model = 0;
    fp.tokenizer_optional = 1;
    fp.chat_template_optional = 1;
    cllm_model_file f;
    cllm_error err;
    if (cllm_model_file_open(path, &fp, &f, &err) != CLLM_OK) {
        snprintf(out, cap, "unknown (%s)", err.msg);
        return;
    }
    snprintf(about, about_cap, "%s%s%s", f.name, f.name[0] && f.description[0] ? ": " : "", f.description);
    int stored = cllm_gguf_find_kv(f.gguf, CLLM_CHAT_TEMPLATE_KEY) != NULL;
    if (f.chat_template_refused) snprintf(out, cap, "refused: %s", f.chat_template_error.msg);
    else if (!f.tok) snprintf(out, cap, "none");
    else snprintf(out, cap, "%s (%s)", cllm_chat_template_name(f.chat_template),
                  stored ? CLLM_CHAT_TEMPLATE_KEY : "the vocabulary's default");
    cllm_model_file_close(&f);
}

/* The file's tensor types as "f32 17, q4_K 49, q6_K 9 (5.1 MiB of tensor
 * data)" into out[cap] (json: {"f32":17,...} and bytes into *bytes). */
static void types_of(const char *path, char *out, size_t cap, int json, uint64_t *bytes) {
    cllm_gguf *g = NULL;
    cllm_error err;
    out[0] = '\0';
    *bytes = 0;
    if (cllm_gguf_open(&g, path, &err) != CLLM_OK) return;
    int count[CLLM_GGML_TYPE_COUNT] = {0};
    for (uint64_t i = 0; i < cllm_gguf_n_tensors(g); i++) {
        const cllm_gguf_tensor *t = cllm_gguf_tensor_at(g, i);
        count[t->type]++; /* the reader accepts known type ids only */
        *bytes += t->nbytes;
    }
    size_t n = 0;
    if (json) n += (size_t)snprintf(out + n, cap - n, "{");
    for (uint32_t t = 0; t < CLLM_GGML_TYPE_COUNT && n < cap; t++)
        if (count[t])
            n += (size_t)snprintf(out + n, cap - n, json ? "%s\"%s\":%d" : "%s%s %d", n > (size_t)json ? ", " : "",
                                  cllm_ggml_type_name(t), count[t]);
    if (json && n < cap) snprintf(out + n, cap - n, "}");
    cllm_gguf_close(g);
}

/* Prints s as a JSON string literal (quotes, backslashes, control bytes escaped). */
static void json_string(const char *s) {
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') printf("\\%c", *p);
        else if (*p < 0x20) printf("\\u%04x", *p);
        else putchar(*p);
    }
    putchar('"');
}

static void human_bytes(char *buf, size_t cap, double b) {
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024.0 && i < 4) {
        b /= 1024.0;
        i++;
    }
    snprintf(buf, cap, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

static void human_count(char *buf, size_t cap, double n) {
    if (n >= 1e18) snprintf(buf, cap, "%.2f E", n / 1e18);
    else if (n >= 1e15) snprintf(buf, cap, "%.2f P", n / 1e15);
    else if (n >= 1e12) snprintf(buf, cap, "%.2f T", n / 1e12);
    else if (n >= 1e9) snprintf(buf, cap, "%.2f G", n / 1e9);
    else if (n >= 1e6) snprintf(buf, cap, "%.2f M", n / 1e6);
    else if (n >= 1e3) snprintf(buf, cap, "%.2f K", n / 1e3);
    else snprintf(buf, cap, "%.0f", n);
}

static void row_bytes(const char *label, size_t b) {
    char h[32];
    human_bytes(h, sizeof h, (double)b);
    printf("  %-28s %14zu  %s\n", label, b, h);
}

int cllm_cmd_info(int argc, char **argv) {
    const char *preset = NULL, *model_path = NULL;
    const char *sets[64];
    int n_sets = 0, B = 4, T = 0, ctx = 0, chunk = 0, json = 0, ranks = 0, speed = 1;
    cllm_lora_config lc = cllm_lora_default_config(); /* rank 8, targets q,v: as cllm sft --lora-rank 8 */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (cli_is_help(a)) {
            usage(stdout);
            return CLI_EXIT_OK;
        } else if (!strcmp(a, "--list")) {
            for (int k = 0; k < cllm_model_preset_count(); k++) {
                cllm_model_config c;
                cllm_model_preset(cllm_model_preset_name(k), &c, NULL);
                char n[32];
                human_count(n, sizeof n, (double)cllm_model_config_num_params(&c));
                printf("%-22s %10s  %s\n", cllm_model_preset_name(k), n, cllm_model_preset_description(k));
            }
            return CLI_EXIT_OK;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--no-speed")) {
            speed = 0;
        } else if (!strcmp(a, "--preset")) {
            if (!(preset = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model_path = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--set")) {
            if (!(v = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
            if (!strchr(v, '=')) return cli_usage_error(CMD, "--set expects KEY=VALUE, got '%s'", v);
            if (n_sets == 64) return cli_usage_error(CMD, "too many --set flags (at most 64)");
            sets[n_sets++] = v;
        } else if (!strcmp(a, "-b") || !strcmp(a, "--batch")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_int(CMD, a, v, 1, 65536, &B)) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--seq")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_int(CMD, a, v, 1, CLLM_MODEL_MAX_CONTEXT, &T)) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--context")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_int(CMD, a, v, 1, CLLM_MODEL_MAX_CONTEXT, &ctx)) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--ranks")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_int(CMD, a, v, 1, 1 << 20, &ranks)) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--lora-rank")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_int(CMD, a, v, 1, CLLM_LORA_MAX_RANK, &lc.rank))
                return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--lora-targets")) {
            cllm_error e;
            if (!(v = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
            if (cllm_lora_targets_parse(v, &lc.targets, &e) != CLLM_OK) return cli_usage_error(CMD, "--lora-targets: %s", e.msg);
        } else if (!strcmp(a, "--chunk")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_int(CMD, a, v, 1, CLLM_MODEL_MAX_CONTEXT, &chunk)) return CLI_EXIT_USAGE;
        } else {
            return cli_unknown_flag(CMD, a);
        }
    }
    if (!preset == !model_path) return cli_usage_error(CMD, "give exactly one of --preset NAME or -m MODEL.gguf");

    cllm_error err;
    cllm_model_config cfg;
    cllm_status st = preset ? cllm_model_preset(preset, &cfg, &err) : config_from_model_file(model_path, &cfg, &err);
    if (st != CLLM_OK) return preset ? cli_usage_error(CMD, "%s", err.msg) : cli_fail(CMD, &err);
    for (int k = 0; k < n_sets; k++) {
        char key[64];
        const char *eq = strchr(sets[k], '=');
        size_t kl = (size_t)(eq - sets[k]);
        if (kl >= sizeof key) return cli_usage_error(CMD, "--set key too long in '%s'", sets[k]);
        memcpy(key, sets[k], kl);
        key[kl] = 0;
        if (cllm_model_config_set(&cfg, key, eq + 1, &err) != CLLM_OK) return cli_usage_error(CMD, "--set: %s", err.msg);
    }
    if (cllm_model_config_validate(&cfg, &err) != CLLM_OK) return cli_usage_error(CMD, "%s", err.msg);
    if (T == 0) T = cfg.context_length < 1024 ? cfg.context_length : 1024;
    if (ctx == 0) ctx = cfg.context_length;
    if (chunk == 0) chunk = ctx < 512 ? ctx : 512;
    if (T > cfg.context_length) return cli_usage_error(CMD, "--seq %d exceeds the context length %d", T, cfg.context_length);
    if (ctx > cfg.context_length) return cli_usage_error(CMD, "--context %d exceeds the context length %d", ctx, cfg.context_length);
    if (chunk > ctx) return cli_usage_error(CMD, "--chunk %d exceeds --context %d", chunk, ctx);

    cllm_model_options tr = cllm_model_default_options(), inf = cllm_model_default_options();
    tr.max_batch = B;
    tr.max_seq = T;
    tr.training = 1;
    inf.max_batch = 1;
    inf.max_seq = chunk;
    inf.kv_slots = 1;
    inf.kv_context = ctx;
    cllm_model_memory mt, mi;
    if (cllm_model_memory_estimate(&cfg, &tr, &mt, &err) != CLLM_OK) return cli_fail(CMD, &err);
    if (cllm_model_memory_estimate(&cfg, &inf, &mi, &err) != CLLM_OK) return cli_fail(CMD, &err);
    /* The same inference plan with an f16 and a q8_0 KV cache (--cache-type),
     * q8_0 when the head size allows it (a multiple of 32; mq stays 0 otherwise). */
    cllm_model_memory mq = {0}, mh = {0};
    inf.kv_type = CLLM_GGML_F16; /* --cache-type f16: any head size */
    if (cllm_model_memory_estimate(&cfg, &inf, &mh, &err) != CLLM_OK) return cli_fail(CMD, &err);
    inf.kv_type = CLLM_GGML_Q8_0;
    if (cllm_model_memory_estimate(&cfg, &inf, &mq, &err) != CLLM_OK) memset(&mq, 0, sizeof mq);
    /* Fine-tuning with adapters: on an f32 copy of the base, and (a model file
     * without --set) QLoRA on the file's own matrix types (lora.h). */
    if (lc.targets & (1u << CLLM_LORA_GATE) && cfg.mlp != CLLM_MLP_SWIGLU) lc.targets &= ~(1u << CLLM_LORA_GATE);
    if (!lc.targets) return cli_usage_error(CMD, "--lora-targets: gate alone needs a SwiGLU model");
    lc.alpha = 2.0f * (float)lc.rank;
    cllm_lora_memory ml, mql = {0};
    if (cllm_lora_memory_estimate(&cfg, &lc, &tr, NULL, &ml, &err) != CLLM_OK) return cli_fail(CMD, &err);
    int have_q = 0, quantized = 0;
    if (model_path && n_sets == 0) {
        cllm_gguf *g = NULL;
        if (cllm_gguf_open(&g, model_path, &err) != CLLM_OK) return cli_fail(CMD, &err);
        quantized = cllm_lora_base_is_quantized(g);
        st = cllm_lora_memory_estimate(&cfg, &lc, &tr, g, &mql, &err);
        cllm_gguf_close(g);
        if (st != CLLM_OK) return cli_fail(CMD, &err);
        have_q = 1;
    }
    char lora_targets[64];
    cllm_lora_targets_format(lc.targets, lora_targets, sizeof lora_targets);
    double fwd = cllm_model_flops_per_token(&cfg, T), fwd_ctx = cllm_model_flops_per_token(&cfg, ctx);
    /* Chinchilla-optimal run: D = 20 N tokens, C = 6 N D; time at the measured speed. */
    const double chin_tokens = 20.0 * (double)mt.n_params, chin_flops = 6.0 * (double)mt.n_params * chin_tokens;
    double train_tps = NAN;
    if (speed) {
        cllm_model_config one = cfg;
        one.n_layer = 1;
        const int Ts = cfg.context_length < 128 ? cfg.context_length : 128;
        double tps1;
        if (cllm_scale_measure_speed(&one, 1, Ts, &tps1, &err) != CLLM_OK) return cli_fail(CMD, &err);
        train_tps = tps1 * cllm_model_flops_per_token(&one, Ts) / cllm_model_flops_per_token(&cfg, Ts);
    }
    const char *name = preset ? preset : model_path;
    char tmpl[1200] = "", about[700] = "", types[512] = "";
    uint64_t tensor_bytes = 0;
    if (model_path) template_of(model_path, tmpl, sizeof tmpl, about, sizeof about);
    if (model_path) types_of(model_path, types, sizeof types, json, &tensor_bytes);

    if (json) {
        printf("{\"model\":");
        json_string(name);
        if (model_path) {
            printf(",\"chat_template\":");
            json_string(tmpl);
            printf(",\"about\":");
            json_string(about);
            printf(",\"tensor_types\":%s,\"tensor_bytes\":%llu", types[0] ? types : "{}",
                   (unsigned long long)tensor_bytes);
        }
        printf(",\"config\":{\"vocab_size\":%d,\"context_length\":%d,\"n_layer\":%d,"
               "\"n_head\":%d,\"n_kv_head\":%d,\"n_embd\":%d,\"ffn_hidden\":%d,\"pos\":\"%s\","
               "\"rope_theta\":%g,\"norm\":\"%s\",\"norm_eps\":%g,\"mlp\":\"%s\",\"tied_embeddings\":%s,"
               "\"bias\":%s,\"dropout\":%g,\"qkv_bias\":%s,\"rope_neox\":%s,\"rope_scaling\":\"%s\","
               "\"rope_factor\":%g,\"sliding_window\":%d},",
               cfg.vocab_size, cfg.context_length, cfg.n_layer, cfg.n_head, cfg.n_kv_head, cfg.n_embd,
               cfg.ffn_hidden, cllm_model_pos_name(cfg.pos), (double)cfg.rope_theta,
               cllm_model_norm_name(cfg.norm), (double)cfg.norm_eps, cllm_model_mlp_name(cfg.mlp),
               cfg.tied_embeddings ? "true" : "false", cfg.bias ? "true" : "false", (double)cfg.dropout,
               cfg.qkv_bias ? "true" : "false", cfg.rope_neox ? "true" : "false",
               cllm_model_rope_scaling_name(cfg.rope_scaling), (double)cfg.rope_factor, cfg.sliding_window);
        printf("\"n_params\":%zu,", mt.n_params);
        printf("\"training\":{\"batch\":%d,\"seq\":%d,\"param_bytes\":%zu,\"grad_bytes\":%zu,"
               "\"adamw_bytes\":%zu,\"activation_bytes\":%zu,\"total_bytes\":%zu},",
               B, T, mt.param_bytes, mt.grad_bytes, mt.adamw_bytes, mt.activation_bytes, mt.total_bytes);
        printf("\"inference\":{\"context\":%d,\"chunk\":%d,\"weight_bytes\":%zu,\"kv_cache_bytes\":%zu,"
               "\"activation_bytes\":%zu,\"total_bytes\":%zu,\"kv_f32_bytes\":%zu,\"kv_f16_bytes\":%zu,\"kv_q8_0_bytes\":%zu,"
               "\"kv_cache_bytes_q8_0\":%zu,\"total_bytes_q8_0\":%zu},",
               ctx, chunk, mi.param_bytes, mi.kv_cache_bytes, mi.activation_bytes, mi.total_bytes,
               mi.kv_store_bytes, mh.kv_store_bytes, mq.kv_store_bytes, mq.kv_cache_bytes, mq.total_bytes);
        printf("\"fine_tuning\":{\"lora_rank\":%d,\"lora_targets\":\"%s\",\"adapter_params\":%zu,"
               "\"full_bytes\":%zu,\"lora_f32_bytes\":%zu",
               lc.rank, lora_targets, ml.adapter_params, mt.total_bytes, ml.total_bytes);
        if (have_q)
            printf(",\"qlora_bytes\":%zu,\"qlora_base_bytes\":%zu,\"base_quantized\":%s", mql.total_bytes,
                   mql.base_bytes, quantized ? "true" : "false");
        printf("},");
        if (ranks > 0)
            printf("\"data_parallel\":{\"ranks\":%d,\"adamw_bytes_per_rank\":%.0f,\"adamw_bytes_per_rank_zero1\":%.0f,"
                   "\"reduce_buffer_bytes\":%.0f,\"reduce_buffer_bytes_zero1\":%.0f},",
                   ranks, cllm_dist_optimizer_bytes(mt.n_params, ranks, 0), cllm_dist_optimizer_bytes(mt.n_params, ranks, 1),
                   cllm_dist_reduce_buffer_bytes(mt.n_params, ranks, 0), cllm_dist_reduce_buffer_bytes(mt.n_params, ranks, 1));
        printf("\"flops_per_token\":{\"seq\":%d,\"forward\":%.6g,\"training\":%.6g,\"forward_at_context\":%.6g},",
               T, fwd, 3.0 * fwd, fwd_ctx);
        printf("\"chinchilla_optimal\":{\"tokens\":%.10g,\"flops\":%.10g", chin_tokens, chin_flops);
        if (speed) printf(",\"train_tokens_per_s\":%.10g,\"seconds\":%.10g", train_tps, chin_tokens / train_tps);
        printf("}}\n");
        return CLI_EXIT_OK;
    }
    char h[32];
    printf("model %s\n", name);
    if (about[0]) printf("  about %s\n", about);
    if (model_path) printf("  chat template %s\n", tmpl);
    if (model_path && types[0]) {
        human_bytes(h, sizeof h, (double)tensor_bytes);
        printf("  tensor types %s (%s of tensor data)\n", types, h);
    }
    printf("  vocab %d, context %d, %d layers, %d heads (%d kv), n_embd %d, ffn %d\n", cfg.vocab_size,
           cfg.context_length, cfg.n_layer, cfg.n_head, cfg.n_kv_head, cfg.n_embd, cfg.ffn_hidden);
    printf("  positions %s, %s (eps %g), %s MLP, %s embeddings, bias %s, dropout %g\n",
           cllm_model_pos_name(cfg.pos), cllm_model_norm_name(cfg.norm), (double)cfg.norm_eps,
           cllm_model_mlp_name(cfg.mlp), cfg.tied_embeddings ? "tied" : "untied", cfg.bias ? "on" : "off",
           (double)cfg.dropout);
    if (cfg.pos == CLLM_POS_ROPE)
        printf("  rope theta %g, %s pairs, q/k/v bias %s, scaling %s (factor %g)\n", (double)cfg.rope_theta,
               cfg.rope_neox ? "neox" : "adjacent", cfg.qkv_bias || cfg.bias ? "on" : "off",
               cllm_model_rope_scaling_name(cfg.rope_scaling), (double)cfg.rope_factor);
    if (cfg.sliding_window) printf("  sliding window %d positions\n", cfg.sliding_window);
    human_count(h, sizeof h, (double)mt.n_params);
    printf("parameters %27zu  %s\n", mt.n_params, h);
    printf("training memory, fp32, B=%d T=%d (bytes)\n", B, T);
    row_bytes("parameters", mt.param_bytes);
    row_bytes("gradients", mt.grad_bytes);
    row_bytes("AdamW moments", mt.adamw_bytes);
    row_bytes("activations", mt.activation_bytes);
    row_bytes("total", mt.total_bytes);
    printf("fine-tuning memory, B=%d T=%d, LoRA rank %d on %s (%zu adapter params) (bytes)\n", B, T, lc.rank,
           lora_targets, ml.adapter_params);
    row_bytes("full fine-tuning (fp32)", mt.total_bytes);
    row_bytes("LoRA, f32 base", ml.total_bytes);
    if (have_q) {
        row_bytes(quantized ? "QLoRA, the file's types" : "LoRA, the file's types", mql.total_bytes);
        row_bytes("  of which the frozen base", mql.base_bytes);
        if (!quantized) printf("  (no quantized matrices: cllm sft --lora-rank trains on an f32 copy)\n");
    }
    if (ranks > 0) {
        printf("data-parallel training over %d ranks, per rank (bytes)\n", ranks);
        row_bytes("AdamW moments, unsharded", (size_t)cllm_dist_optimizer_bytes(mt.n_params, ranks, 0));
        row_bytes("AdamW moments, ZeRO-1", (size_t)cllm_dist_optimizer_bytes(mt.n_params, ranks, 1));
        row_bytes("reduction buffer", (size_t)cllm_dist_reduce_buffer_bytes(mt.n_params, ranks, 1));
    }
    printf("inference memory, fp32, context %d, prompt chunk %d (bytes)\n", ctx, chunk);
    row_bytes("weights", mi.param_bytes);
    row_bytes("KV cache + decode scratch", mi.kv_cache_bytes);
    row_bytes("forward activations", mi.activation_bytes);
    row_bytes("total", mi.total_bytes);
    printf("KV cache alone (K and V, context %d), by --cache-type (bytes)\n", ctx);
    row_bytes("f32", mi.kv_store_bytes);
    row_bytes("f16", mh.kv_store_bytes);
    if (mq.kv_store_bytes) row_bytes("q8_0 (34 B per 32 values)", mq.kv_store_bytes);
    else printf("  %-28s %14s  head size %d is not a multiple of 32\n", "q8_0", "n/a", cfg.n_embd / cfg.n_head);
    printf("FLOPs per token (PaLM convention, T=%d)\n", T);
    human_count(h, sizeof h, fwd);
    printf("  %-28s %14.4g  %sFLOP\n", "forward", fwd, h);
    human_count(h, sizeof h, 3.0 * fwd);
    printf("  %-28s %14.4g  %sFLOP\n", "training (fwd+bwd, 3x)", 3.0 * fwd, h);
    printf("Chinchilla-optimal training (20 tokens per parameter, C = 6 N D)\n");
    human_count(h, sizeof h, chin_tokens);
    printf("  %-28s %14.4g  %s\n", "tokens", chin_tokens, h);
    human_count(h, sizeof h, chin_flops);
    printf("  %-28s %14.4g  %sFLOP\n", "compute", chin_flops, h);
    if (speed) {
        double sec = chin_tokens / train_tps;
        char when[64];
        if (sec < 120) snprintf(when, sizeof when, "%.0f seconds", sec);
        else if (sec < 7200) snprintf(when, sizeof when, "%.1f minutes", sec / 60);
        else if (sec < 2 * 86400) snprintf(when, sizeof when, "%.1f hours", sec / 3600);
        else if (sec < 730 * 86400) snprintf(when, sizeof when, "%.1f days", sec / 86400);
        else snprintf(when, sizeof when, "%.1f years", sec / (365.25 * 86400));
        printf("  %-28s %14.4g  tokens/s measured here (%d threads), fp32\n", "training speed", train_tps, cllm_kernels_threads());
        printf("  %-28s %14.4g  s = %s\n", "time here", sec, when);
    }
    return CLI_EXIT_OK;
}

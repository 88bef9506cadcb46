/*
 * cmd_pretrain.c: `cllm pretrain`: flag parsing and validation, signal
 * handling, and printing; the work is cllm_pretrain_run (train/pretrain.h).
 *
 * Every flag and path is checked before any work starts (exit 2 for usage,
 * 1 for unreadable data or a failed run). SIGINT/SIGTERM ask the trainer to
 * finish the current step, save a checkpoint and exit 0; a second signal
 * kills the process (the last complete checkpoint still loads).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cllm/core/fileio.h"
#include "cllm/train/pretrain.h"
#include "tok_common.h"

#define CMD "pretrain"
#define MAX_DATA 256

static void usage(void) {
    printf(
        "Usage: cllm pretrain --data FILE[,FILE...] --out RUN_DIR [options]\n\n"
        "Pre-trains a decoder-only transformer by next-token prediction.\n"
        "Text files are read as raw bytes (vocabulary 256); .tok token shards\n"
        "(cllm tokenize) use their tokenizer's vocabulary.\n\n"
        "Data:\n"
        "  --data FILES         text files or token shards; comma-separated or repeated\n"
        "  --val-frac F         held-out fraction at the end of the data (default 0.1)\n"
        "  --order O            random | sequential batch windows (default random)\n"
        "  --tokenizer FILE     the tokenizer the shards were made with (required for\n"
        "                       shards; stored in the model file so it runs alone)\n"
        "Model (a preset, then overrides):\n"
        "  --preset NAME        default nanogpt-shakespeare (see 'cllm info --list')\n"
        "  --n-layer N  --n-head N  --n-kv-head N  --n-embd N  --ffn-hidden N\n"
        "  --context N          context length (default: the preset's, raised to --seq)\n"
        "  --pos learned|sinusoidal|rope   --norm layernorm|rmsnorm   --mlp gelu|swiglu\n"
        "  --tied 0|1           tie input and output embeddings\n"
        "  --bias 0|1           biases in linear layers and norms\n"
        "  --rope-theta X       RoPE base\n"
        "  --qkv-bias 0|1       biases on the q/k/v projection alone (Qwen2)\n"
        "  --rope-neox 0|1      RoPE pairs (x[i], x[i+HS/2]) (Qwen2, GGUF arch qwen2)\n"
        "  --rope-scaling KIND  none, linear (SmolLM style) or llama3 (Llama 3.1)\n"
        "  --rope-factor X      linear/llama3 scaling factor\n"
        "  --rope-low-freq X    llama3 low_freq_factor (1)\n"
        "  --rope-high-freq X   llama3 high_freq_factor (4)\n"
        "  --rope-orig-context N  llama3 original_max_position_embeddings (8192)\n"
        "  --sliding-window N   attend to the last N positions only (Mistral); 0 = full\n"
        "  --dropout P          dropout probability in [0, 1) (default: the preset's)\n"
        "Batch and optimizer:\n"
        "  --batch B            micro-batch sequences (default 12)\n"
        "  --seq T              tokens per sequence (default 64)\n"
        "  --total-batch N      tokens per optimizer step, a multiple of B*T (default B*T)\n"
        "  --steps N            optimizer steps (default 2000)\n"
        "  --lr X               peak learning rate (default 1e-3)\n"
        "  --min-lr X           final learning rate (default lr/10)\n"
        "  --warmup N           linear warmup steps (default 100)\n"
        "  --schedule S         cosine | linear | constant | wsd (default cosine)\n"
        "  --wsd-decay F        WSD: fraction of steps spent decaying (default 0.2)\n"
        "  --weight-decay X     AdamW decay on matrices (default 0.1)\n"
        "  --beta1 X --beta2 X  AdamW betas (default 0.9, 0.99)\n"
        "  --clip X             max global gradient norm, 0 = off (default 1.0)\n"
        CLI_PRECISION_HELP
        "Evaluation and stopping:\n"
        "  --eval-every N       validate every N steps, 0 = never (default 250)\n"
        "  --eval-batches N     validation batches per evaluation (default 20)\n"
        "  --patience K         stop after K evaluations without improvement, 0 = off; model.gguf\n"
        "                       is then the best evaluated weights (kept as best.gguf meanwhile)\n"
        "  --max-nonfinite N    stop after N NaN/Inf steps in a row (default 10)\n"
        "Run:\n"
        "  -o, --out RUN_DIR    run directory (created if missing): checkpoints, train.csv, loss.svg\n"
        "  --save-every N       checkpoint every N steps, 0 = only at the end (default 0)\n"
        "  --keep K             complete checkpoints kept (default 2)\n"
        "  --resume             continue from the newest complete checkpoint in RUN_DIR\n"
        "                       (same settings and data; starts fresh if there is none)\n"
        "  --seed N             random seed (default 1337)\n"
        "  --threads N          threads, 0 = all CPUs (default 0)\n"
        "  --peak-gflops X      GEMM peak for MFU (at --precision); 0 = measure (default), -1 = no MFU\n"
        "  --no-progress        no progress bar\n"
        CLI_JSON_HELP "\n"
        "Outputs in RUN_DIR: ckpt-<step>.{gguf,optim,state,done}, model.gguf (f32 GGUF),\n"
        "train.csv (step,loss,val_loss,lr,grad_norm,tokens_per_s,ranks,comm_s,rank_compute_s), loss.svg.\n"
        "Ctrl-C finishes the step, saves and exits 0; --resume continues bit-exactly.\n" CLI_SUMMARY_HELP);
}

static int check_data_path(const char *path) {
    cllm_error err;
    if (cllm_file_check_regular(path, NULL, &err) != CLLM_OK) return cli_fail(CMD, &err);
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "cllm %s: error: %s: not readable: %s\n", CMD, path, strerror(errno));
        return CLI_EXIT_DATA;
    }
    return CLI_EXIT_OK;
}

/* The run directory may exist (then it must be a writable directory) or be
 * created (then its parent must be a writable directory). */
static int check_out_dir(const char *dir) {
    struct stat st;
    cllm_error err;
    if (stat(dir, &st) == 0) {
        if (cllm_dir_check_writable(dir, &err) != CLLM_OK) return cli_fail(CMD, &err);
        return CLI_EXIT_OK;
    }
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", dir);
    size_t n = strlen(parent);
    while (n > 1 && parent[n - 1] == '/') parent[--n] = '\0';
    char *slash = strrchr(parent, '/');
    if (!slash) snprintf(parent, sizeof parent, ".");
    else if (slash == parent) parent[1] = '\0';
    else *slash = '\0';
    if (cllm_dir_check_writable(parent, &err) != CLLM_OK) {
        fprintf(stderr, "cllm %s: error: cannot create --out %s: %s\n", CMD, dir, err.msg);
        return CLI_EXIT_DATA;
    }
    return CLI_EXIT_OK;
}

static int set_model(cllm_model_config *cfg, const char *key, const char *flag, const char *value) {
    cllm_error err;
    if (cllm_model_config_set(cfg, key, value, &err) != CLLM_OK) return cli_usage_error(CMD, "%s: %s", flag, err.msg);
    return CLI_EXIT_OK;
}

int cllm_cmd_pretrain(int argc, char **argv) {
    cllm_pretrain_params p = cllm_pretrain_default_params();
    tok_source tok_src = {0};
    cllm_tokenizer *tokenizer = NULL;
    const char *data[MAX_DATA];
    int n_data = 0;
    char *data_copies[MAX_DATA];
    int n_copies = 0;
    const char *preset = "nanogpt-shakespeare";
    /* model overrides applied after the preset: (config key, value) */
    const char *ov_key[32], *ov_flag[32], *ov_val[32];
    int n_ov = 0;
    int64_t total_batch = 0, context = 0;
    double min_lr = -1;
    int rc = CLI_EXIT_OK, json = 0;
    int64_t i64;
    double d;
    int iv;
    for (int i = 1; i < argc && rc == CLI_EXIT_OK; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            usage();
            goto out;
        }
        if (!strcmp(a, "--resume")) { p.resume = 1; continue; }
        if (!strcmp(a, "--no-progress")) { p.progress = 0; continue; }
        if (!strcmp(a, "--json")) { json = 1; continue; }
        if (!strcmp(a, "--precision-change")) { p.precision_change = 1; continue; }
        if (!strcmp(a, "-o")) a = "--out";
        if (strncmp(a, "--", 2) != 0) { rc = cli_usage_error(CMD, "unexpected argument '%s'", a); break; }
        const char *v = cli_value(CMD, argc, argv, &i);
        if (!v) { rc = CLI_EXIT_USAGE; break; }
#define I64(flag, lo, hi, dst) else if (!strcmp(a, flag)) { if (!cli_parse_i64(CMD, flag, v, lo, hi, &i64)) rc = CLI_EXIT_USAGE; else dst = i64; }
#define INT(flag, lo, hi, dst) else if (!strcmp(a, flag)) { if (!cli_parse_int(CMD, flag, v, lo, hi, &iv)) rc = CLI_EXIT_USAGE; else dst = iv; }
#define DBL(flag, lo, hi, dst) else if (!strcmp(a, flag)) { if (!cli_parse_double(CMD, flag, v, lo, hi, &d)) rc = CLI_EXIT_USAGE; else dst = d; }
#define MODEL(flag, key) else if (!strcmp(a, flag)) { if (n_ov == 32) rc = cli_usage_error(CMD, "too many model flags"); else { ov_key[n_ov] = key; ov_flag[n_ov] = flag; ov_val[n_ov++] = v; } }
        if (!strcmp(a, "--data")) {
            char *copy = strdup(v);
            if (!copy) { fprintf(stderr, "cllm %s: out of memory\n", CMD); rc = CLI_EXIT_DATA; break; }
            data_copies[n_copies++] = copy;
            char *save = NULL;
            for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                if (n_data == MAX_DATA) { rc = cli_usage_error(CMD, "--data: more than %d files", MAX_DATA); break; }
                data[n_data++] = tok;
            }
            if (n_copies == MAX_DATA && rc == CLI_EXIT_OK) { rc = cli_usage_error(CMD, "too many --data flags"); break; }
            if (!*v || (n_data == 0 && rc == CLI_EXIT_OK)) rc = cli_usage_error(CMD, "--data needs at least one file");
        }
        else if (!strcmp(a, "--out")) { if (!*v) rc = cli_usage_error(CMD, "--out needs a directory"); p.run_dir = v; }
        else if (!strcmp(a, "--preset")) preset = v;
        else if (!strcmp(a, "--schedule")) {
            int k = cllm_schedule_parse(v);
            if (k < 0) rc = cli_usage_error(CMD, "--schedule must be cosine, linear, constant or wsd, got '%s'", v);
            else p.schedule = (cllm_schedule_kind)k;
        }
        else if (!strcmp(a, "--order")) {
            if (!strcmp(v, "random")) p.order = CLLM_DATA_RANDOM;
            else if (!strcmp(v, "sequential")) p.order = CLLM_DATA_SEQUENTIAL;
            else rc = cli_usage_error(CMD, "--order must be random or sequential, got '%s'", v);
        }
        MODEL("--n-layer", "n_layer") MODEL("--n-head", "n_head") MODEL("--n-kv-head", "n_kv_head")
        MODEL("--n-embd", "n_embd") MODEL("--ffn-hidden", "ffn_hidden") MODEL("--pos", "pos")
        MODEL("--norm", "norm") MODEL("--mlp", "mlp") MODEL("--tied", "tied_embeddings")
        MODEL("--bias", "bias") MODEL("--rope-theta", "rope_theta") MODEL("--dropout", "dropout")
        MODEL("--qkv-bias", "qkv_bias") MODEL("--rope-neox", "rope_neox") MODEL("--rope-scaling", "rope_scaling")
        MODEL("--rope-factor", "rope_factor") MODEL("--rope-low-freq", "rope_low_freq_factor")
        MODEL("--rope-high-freq", "rope_high_freq_factor") MODEL("--rope-orig-context", "rope_orig_context")
        MODEL("--sliding-window", "sliding_window")
        I64("--context", 1, CLLM_MODEL_MAX_CONTEXT, context)
        INT("--batch", 1, 1 << 20, p.B)
        INT("--seq", 1, CLLM_MODEL_MAX_CONTEXT, p.T)
        I64("--total-batch", 1, INT64_MAX / 2, total_batch)
        I64("--steps", 1, INT64_MAX / 2, p.steps)
        DBL("--lr", 1e-12, 10.0, p.lr)
        DBL("--min-lr", 0.0, 10.0, min_lr)
        I64("--warmup", 0, INT64_MAX / 2, p.warmup)
        DBL("--wsd-decay", 0.0, 1.0, p.wsd_decay_frac)
        DBL("--weight-decay", 0.0, 10.0, p.weight_decay)
        DBL("--beta1", 0.0, 0.999999, p.beta1)
        DBL("--beta2", 0.0, 0.999999, p.beta2)
        DBL("--clip", 0.0, 1e6, p.clip)
        I64("--eval-every", 0, INT64_MAX / 2, p.eval_every)
        INT("--eval-batches", 1, 1000000, p.eval_batches)
        DBL("--val-frac", 0.0, 0.9, p.val_frac)
        INT("--patience", 0, 1000000, p.patience)
        INT("--max-nonfinite", 1, 1000000, p.max_nonfinite)
        I64("--seed", 0, INT64_MAX, p.seed)
        INT("--threads", 0, 4096, p.threads)
        I64("--save-every", 0, INT64_MAX / 2, p.save_every)
        INT("--keep", 1, 1000, p.keep)
        DBL("--peak-gflops", -1.0, 1e9, p.peak_gflops)
        else if (!strcmp(a, "--tokenizer")) tok_src.path = v;
        else if (!strcmp(a, "--precision")) { if (!cli_parse_precision(CMD, v, &p.precision)) rc = CLI_EXIT_USAGE; }
        else rc = cli_unknown_flag(CMD, a);
#undef I64
#undef INT
#undef DBL
#undef MODEL
    }
    if (rc != CLI_EXIT_OK) goto out;
    if (n_data == 0) { rc = cli_usage_error(CMD, "--data is required"); goto out; }
    if (!p.run_dir) { rc = cli_usage_error(CMD, "--out is required"); goto out; }
    {
        cllm_error err;
        if (cllm_model_preset(preset, &p.model, &err) != CLLM_OK) {
            rc = cli_usage_error(CMD, "--preset: %s", err.msg);
            goto out;
        }
    }
    for (int k = 0; k < n_ov && rc == CLI_EXIT_OK; k++) rc = set_model(&p.model, ov_key[k], ov_flag[k], ov_val[k]);
    if (rc != CLI_EXIT_OK) goto out;
    if (context > 0) {
        if (context < p.T) { rc = cli_usage_error(CMD, "--context %" PRId64 " is shorter than --seq %d", context, p.T); goto out; }
        p.model.context_length = (int)context;
    } else if (p.model.context_length < p.T) {
        p.model.context_length = p.T;
    }
    p.total_batch = total_batch > 0 ? total_batch : (int64_t)p.B * p.T;
    if (min_lr < 0) min_lr = p.lr / 10.0;
    p.min_lr = (float)min_lr;
    if (p.warmup > p.steps) p.warmup = p.steps;
    if (p.eval_every > 0 && p.val_frac == 0) p.eval_every = 0; /* no split: no evaluation */
    {
        cllm_error err;
        cllm_model_config probe = p.model;
        probe.vocab_size = probe.vocab_size > 0 ? probe.vocab_size : 256;
        if (cllm_model_config_validate(&probe, &err) != CLLM_OK) { rc = cli_usage_error(CMD, "model: %s", err.msg); goto out; }
        p.data_paths = data;
        p.n_data = n_data;
        if (cllm_pretrain_validate(&p, &err) != CLLM_OK) { rc = cli_usage_error(CMD, "%s", err.msg); goto out; }
    }
    for (int k = 0; k < n_data && rc == CLI_EXIT_OK; k++) rc = check_data_path(data[k]);
    if (rc == CLI_EXIT_OK) rc = check_out_dir(p.run_dir);
    if (rc == CLI_EXIT_OK && tok_src.path) rc = tok_source_load(CMD, &tok_src, &tokenizer);
    if (rc != CLI_EXIT_OK) goto out;
    p.tokenizer = tokenizer;

    p.stop_flag = cli_stop_on_signal(CMD);
    p.log = cli_log_line;

    cllm_pretrain_result res;
    cllm_error err;
    if (cllm_pretrain_run(&p, &res, &err) != CLLM_OK) {
        rc = cli_fail(CMD, &err);
        goto out;
    }
    cli_print_train_summary(&res.summary, json);
out:
    cllm_tokenizer_destroy(tokenizer);
    for (int k = 0; k < n_copies; k++) free(data_copies[k]);
    return rc;
}

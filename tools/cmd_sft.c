/*
 * cmd_sft.c: `cllm sft`: flag parsing, signal handling and the summary;
 * the work is cllm_sft_run (sft.h).
 *
 * Usage errors exit 2 before any work; bad data or a failed run exit 1
 * with the library's message (file:line:column for JSONL). SIGINT/SIGTERM
 * finish the step, save a checkpoint and exit 0 (continue with --resume).
 * The summary (stdout) is the trainers' one shape (cli_print_train_summary; --json: JSON).
 */
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cllm/core/fileio.h"
#include "cllm/formats/gguf.h"
#include "cllm/model/lora.h"
#include "cllm/train/sft.h"

#define CMD "sft"

static void usage(void) {
    printf("Usage: cllm sft --model BASE.gguf --data train.jsonl --out RUN_DIR [options]\n\n"
           "Supervised fine-tuning on JSONL in TRL's formats: {\"messages\": [...]},\n"
           "{\"prompt\": ..., \"completion\": ...} (strings or message lists), {\"text\": ...}.\n"
           "The loss covers assistant tokens only. Writes RUN_DIR/model.gguf (with the\n"
           "tokenizer and chat template) or, with --lora-rank, RUN_DIR/adapter.gguf.\n\n"
           "Data:\n"
           "  --data FILE          training JSONL (required)\n"
           "  --val FILE           validation JSONL (loss every --eval-every steps and at the end)\n"
           "  --chat-template NAME|FILE  chatml | plain | a Jinja file (default: the model's, else what\n"
           "                       the vocabulary has); --template is an alias\n"
           "  --no-pack            one example per row, padded (default: short examples are packed\n"
           "                       into rows, attention kept inside each; --pack is accepted)\n"
           "  --truncate           cut examples longer than --seq instead of failing (counted)\n"
           "Batch and schedule:\n"
           "  --batch N  --seq N  --accum N   rows per micro-batch, row length, micro-batches per step\n"
           "                       (defaults 8, 256 capped at the model's context, 1)\n"
           "  --steps N | --epochs N          length of the run (default 1 epoch)\n"
           "  --lr F --min-lr F --warmup N --schedule cosine|linear|constant|wsd\n"
           "  --weight-decay F --beta1 F --beta2 F --eps F --clip F\n"
           CLI_PRECISION_HELP
           "LoRA (frozen base; only adapters train):\n"
           "  --lora-rank R  --lora-alpha A (default 2R)  --lora-targets q,k,v,o,up,down,gate|all (default q,v)\n"
           "Base model types:\n"
           "  f32, f16, bf16       full fine-tuning, or LoRA on an f32 copy of the base\n"
           "  q8_0, q4_0, q4_1, q5_0, q5_1, q2_K..q6_K and mixes (Q4_K_M, ...): --lora-rank only\n"
           "                       (QLoRA: the matrices stay quantized and frozen, fp32 adapters; full\n"
           "                       fine-tuning is refused: dequantize with `cllm quantize IN OUT f32`)\n"
           "Run:\n"
           "  -o/--out DIR  --resume  --save-every N  --keep N  --eval-every N  --seed N  --threads N  --quiet\n"
           CLI_JSON_HELP CLI_SUMMARY_HELP);
}

int cllm_cmd_sft(int argc, char **argv) {
    cllm_sft_params p = cllm_sft_default_params();
    p.pack = 1; /* unpacked rows of short chat examples are mostly padding */
    int quiet = 0, json = 0;
    int64_t v64;
    double d;
    int have_alpha = 0;
    unsigned targets = p.lora.targets;
    cllm_error err;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = NULL;
        if (cli_is_help(f)) {
            usage();
            return CLI_EXIT_OK;
        }
#define VAL() do { if (!(v = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE; } while (0)
#define INT(field, lo, hi) do { VAL(); if (!cli_parse_int(CMD, f, v, lo, hi, &p.field)) return CLI_EXIT_USAGE; } while (0)
#define I64(field, lo, hi) do { VAL(); if (!cli_parse_i64(CMD, f, v, lo, hi, &v64)) return CLI_EXIT_USAGE; p.field = v64; } while (0)
#define FLT(field, lo, hi) do { VAL(); if (!cli_parse_double(CMD, f, v, lo, hi, &d)) return CLI_EXIT_USAGE; p.field = (float)d; } while (0)
        if (!strcmp(f, "--model") || !strcmp(f, "-m")) { VAL(); p.model_path = v; }
        else if (!strcmp(f, "--data")) { VAL(); p.data_path = v; }
        else if (!strcmp(f, "--val")) { VAL(); p.val_path = v; }
        else if (!strcmp(f, "--out") || !strcmp(f, "-o")) { VAL(); p.run_dir = v; }
        else if (!strcmp(f, "--chat-template") || !strcmp(f, "--template")) { VAL(); p.chat_template = v; }
        else if (!strcmp(f, "--pack")) p.pack = 1;
        else if (!strcmp(f, "--no-pack")) p.pack = 0;
        else if (!strcmp(f, "--truncate")) p.truncate = 1;
        else if (!strcmp(f, "--resume")) p.resume = 1;
        else if (!strcmp(f, "--precision-change")) p.precision_change = 1;
        else if (!strcmp(f, "--precision")) { VAL(); if (!cli_parse_precision(CMD, v, &p.precision)) return CLI_EXIT_USAGE; }
        else if (!strcmp(f, "--quiet")) quiet = 1;
        else if (!strcmp(f, "--json")) json = 1;
        else if (!strcmp(f, "--batch")) INT(B, 1, 4096);
        else if (!strcmp(f, "--seq")) INT(T, 2, 1 << 20);
        else if (!strcmp(f, "--accum")) INT(accum, 1, 1 << 16);
        else if (!strcmp(f, "--steps")) I64(steps, 1, INT64_MAX / 2);
        else if (!strcmp(f, "--epochs")) INT(epochs, 1, 1 << 20);
        else if (!strcmp(f, "--lr")) FLT(lr, 1e-12, 10);
        else if (!strcmp(f, "--min-lr")) FLT(min_lr, 0, 10);
        else if (!strcmp(f, "--warmup")) I64(warmup, 0, INT64_MAX / 2);
        else if (!strcmp(f, "--schedule")) {
            VAL();
            int k = cllm_schedule_parse(v);
            if (k < 0) return cli_usage_error(CMD, "--schedule must be cosine, linear, constant or wsd, got '%s'", v);
            p.schedule = (cllm_schedule_kind)k;
        }
        else if (!strcmp(f, "--weight-decay")) FLT(weight_decay, 0, 10);
        else if (!strcmp(f, "--beta1")) FLT(beta1, 0, 0.999999);
        else if (!strcmp(f, "--beta2")) FLT(beta2, 0, 0.999999);
        else if (!strcmp(f, "--eps")) FLT(eps, 1e-30, 1);
        else if (!strcmp(f, "--clip")) FLT(clip, 0, 1e6);
        else if (!strcmp(f, "--lora-rank")) INT(lora.rank, 1, CLLM_LORA_MAX_RANK);
        else if (!strcmp(f, "--lora-alpha")) { FLT(lora.alpha, 1e-6, 1e6); have_alpha = 1; }
        else if (!strcmp(f, "--lora-targets")) {
            VAL();
            if (cllm_lora_targets_parse(v, &targets, &err) != CLLM_OK) return cli_usage_error(CMD, "--lora-targets: %s", err.msg);
        }
        else if (!strcmp(f, "--save-every")) I64(save_every, 0, INT64_MAX / 2);
        else if (!strcmp(f, "--eval-every")) I64(eval_every, 0, INT64_MAX / 2);
        else if (!strcmp(f, "--keep")) INT(keep, 1, 1000);
        else if (!strcmp(f, "--seed")) { VAL(); if (!cli_parse_i64(CMD, f, v, 0, INT64_MAX, &v64)) return CLI_EXIT_USAGE; p.seed = (uint64_t)v64; }
        else if (!strcmp(f, "--threads")) INT(threads, 1, 1024);
        else return cli_unknown_flag(CMD, f);
#undef VAL
#undef INT
#undef I64
#undef FLT
    }
    if (!p.model_path) return cli_usage_error(CMD, "--model BASE.gguf is required");
    if (!p.data_path) return cli_usage_error(CMD, "--data FILE is required");
    if (!p.run_dir) return cli_usage_error(CMD, "--out RUN_DIR is required");
    if (p.min_lr > p.lr) return cli_usage_error(CMD, "--min-lr %g is above --lr %g", (double)p.min_lr, (double)p.lr);
    p.lora.targets = targets;
    if (p.lora.rank > 0 && !have_alpha) p.lora.alpha = 2.0f * (float)p.lora.rank;
    if (p.lora.rank == 0 && (have_alpha)) return cli_usage_error(CMD, "--lora-alpha needs --lora-rank");
    /* inputs must be readable files before any work */
    const char *files[3] = {p.model_path, p.data_path, p.val_path};
    for (int k = 0; k < 3; k++)
        if (files[k] && cllm_file_check_regular(files[k], NULL, &err) != CLLM_OK) return cli_fail(CMD, &err);
    if (p.lora.rank == 0) { /* a quantized base trains adapters only: a usage error before any work */
        cllm_gguf *g = NULL;
        int quantized = cllm_gguf_open(&g, p.model_path, &err) == CLLM_OK && cllm_lora_base_is_quantized(g);
        cllm_gguf_close(g);
        if (quantized)
            return cli_usage_error(CMD,
                                   "%s has quantized weight matrices: full fine-tuning needs f32/f16/bf16 weights; "
                                   "add --lora-rank R (QLoRA: adapters on the quantized base) or dequantize first "
                                   "with `cllm quantize %s BASE-f32.gguf f32`",
                                   p.model_path, p.model_path);
    }
    p.progress = !quiet;
    p.log = quiet ? NULL : cli_log_line;
    p.stop_flag = cli_stop_on_signal(CMD);
    cllm_sft_result r;
    if (cllm_sft_run(&p, &r, &err) != CLLM_OK) return cli_fail(CMD, &err);
    cli_print_train_summary(&r.summary, json);
    return CLI_EXIT_OK;
}

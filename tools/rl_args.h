/*
 * rl_args.h: flag parsing shared by `cllm reward|dpo|ppo|grpo` (tools/ only).
 * Each command lists the flags it accepts; every value is range-checked
 * (exit 2 with a --help hint), every input path checked before work starts
 * (exit 1), and training runs through the library (src/train/).
 */
#ifndef CLLM_TOOLS_RL_ARGS_H
#define CLLM_TOOLS_RL_ARGS_H

#include "cli.h" /* CLI_PRECISION_HELP in RL_COMMON_HELP */
#include "cllm/train/rlhf.h"

enum {
    RL_F_REF = 1 << 0,     /* --ref */
    RL_F_REWARD = 1 << 1,  /* --reward-model */
    RL_F_VAL = 1 << 2,     /* --val-frac */
    RL_F_BETA = 1 << 3,    /* --beta */
    RL_F_ROLLOUT = 1 << 4, /* --max-new --temperature --epochs --clip-eps */
    RL_F_GROUP = 1 << 5,   /* --group --verify --pattern */
    RL_F_PPO = 1 << 6,     /* --kl-coef --gamma --lam --vf-coef --vf-clip */
};

/* Parses argv into p (defaults already set). Returns -1 after printing
 * usage (--help: exit 0), or an exit code > 0 on error, or 0. *vr receives
 * an owned verifiable reward when --verify is given; *json is set by --json. */
int rl_args_parse(const char *cmd, int argc, char **argv, unsigned flags, void (*usage)(void), cllm_rl_params *p,
                  cllm_vreward **vr, int *json);

/* Runs fn with a stderr logger, prints the summary (cli_print_train_summary); returns the exit code. */
int rl_args_run(const char *cmd, cllm_status (*fn)(const cllm_rl_params *, cllm_rl_result *, cllm_error *),
                cllm_rl_params *p, int json);

#define RL_COMMON_HELP                                                                               \
    "  -m, --model FILE     the policy / base model GGUF (required)\n"                               \
    "  --data FILE          JSONL (required)\n"                                                      \
    "  -o, --out RUN_DIR    run directory: lock, checkpoints, train.csv, loss.svg and the\n"          \
    "                       final RUN_DIR/model.gguf (checked writable before the first step)\n"     \
    "  --resume             continue the newest checkpoint of RUN_DIR (same settings)\n"             \
    "  --no-progress        no progress bar (shown when stderr is a terminal)\n"                    \
    "  --save-every N       checkpoint every N steps (default: at the end and on SIGINT/SIGTERM,\n"  \
    "                       which finish the step, save and exit 0)\n"                               \
    "  --keep N             complete checkpoints kept (default 1)\n"                                 \
    "  --steps N            optimizer steps (default 100)\n"                                         \
    "  --batch N            pairs or prompts per step (default 8)\n"                                 \
    "  --lr X               AdamW learning rate (default 1e-4)\n"                                    \
    "  --weight-decay X     AdamW decay on matrices (default 0)\n"                                   \
    "  --clip X             max global gradient norm, 0 = off (default 1)\n"                         \
    "  --seed N             random seed (default 1337)\n"                                            \
    "  --threads N          CPU threads, 0 = all (default 0)\n"                                      \
    CLI_PRECISION_HELP CLI_JSON_HELP

#endif

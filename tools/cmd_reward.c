/*
 * cmd_reward.c: `cllm reward`: train a Bradley-Terry reward model on
 * prompt/chosen/rejected JSONL (cllm_reward_train); prints the trainers' summary (--json: as JSON).
 */
#include <stdio.h>

#include "cli.h"
#include "rl_args.h"

static void usage(void) {
    printf("Usage: cllm reward -m BASE.gguf --data PAIRS.jsonl -o RUN_DIR [options]\n\n"
           "Trains a scalar reward head (and the transformer under it) with the Bradley-Terry\n"
           "loss -log sigmoid(r(chosen) - r(rejected)). JSONL lines: {\"prompt\",\"chosen\",\"rejected\"},\n"
           "strings or lists of {\"role\",\"content\"} messages (TRL's formats).\n"
           "Reports pairwise accuracy on a held-out split; the output GGUF is the model plus\n"
           "cls.weight [n_embd] and cls.bias [1].\n\n" RL_COMMON_HELP
           "  --val-frac F         held-out fraction of pairs (default 0.1)\n" CLI_SUMMARY_HELP);
}

int cllm_cmd_reward(int argc, char **argv) {
    cllm_rl_params p = cllm_rl_default_params();
    cllm_vreward *vr = NULL;
    int json = 0;
    int rc = rl_args_parse("reward", argc, argv, RL_F_VAL, usage, &p, &vr, &json);
    if (rc < 0) return CLI_EXIT_OK;
    if (rc == 0) rc = rl_args_run("reward", cllm_reward_train, &p, json);
    cllm_vreward_destroy(vr);
    return rc;
}

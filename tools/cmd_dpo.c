/*
 * cmd_dpo.c: `cllm dpo`: Direct Preference Optimization on
 * prompt/chosen/rejected JSONL (cllm_dpo_train); prints the trainers' summary (--json: as JSON).
 */
#include <stdio.h>

#include "cli.h"
#include "rl_args.h"

static void usage(void) {
    printf("Usage: cllm dpo -m POLICY.gguf --data PAIRS.jsonl -o RUN_DIR [options]\n\n"
           "Direct Preference Optimization: loss -log sigmoid(beta((pi_c - ref_c) - (pi_r - ref_r)))\n"
           "with the reference log-probabilities computed once from a frozen copy of the policy\n"
           "(or --ref). Logs loss, chosen/rejected rewards, margin and accuracy.\n\n" RL_COMMON_HELP
           "  --ref FILE           reference model (default: the policy itself, frozen)\n"
           "  --beta X             DPO temperature (default 0.1)\n"
           "  --rpo-alpha X        add X * the chosen replies' token NLL (TRL's rpo_alpha; default 0)\n"
           "  --val-frac F         held-out fraction of pairs (default 0.1)\n" CLI_SUMMARY_HELP);
}

int cllm_cmd_dpo(int argc, char **argv) {
    cllm_rl_params p = cllm_rl_default_params();
    cllm_vreward *vr = NULL;
    int json = 0;
    int rc = rl_args_parse("dpo", argc, argv, RL_F_REF | RL_F_BETA | RL_F_VAL, usage, &p, &vr, &json);
    if (rc < 0) return CLI_EXIT_OK;
    if (rc == 0) rc = rl_args_run("dpo", cllm_dpo_train, &p, json);
    cllm_vreward_destroy(vr);
    return rc;
}

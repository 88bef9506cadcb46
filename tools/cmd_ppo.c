/*
 * cmd_ppo.c: `cllm ppo`: RLHF with PPO on prompt JSONL, a reward model from
 * `cllm reward` and a frozen reference (cllm_ppo_train); prints the trainers' summary (--json: as JSON).
 */
#include <stdio.h>

#include "cli.h"
#include "rl_args.h"

static void usage(void) {
    printf("Usage: cllm ppo -m POLICY.gguf --reward-model RM.gguf --data PROMPTS.jsonl -o RUN_DIR [options]\n\n"
           "PPO with a per-token KL penalty to the reference, GAE advantages, clipped policy and\n"
           "value losses, several epochs per rollout batch. The value model starts from the reward\n"
           "model. Logs reward, KL, entropy and clip fraction. JSONL lines: {\"prompt\": ...}.\n\n"
           RL_COMMON_HELP
           "  --ref FILE           reference model (default: the policy itself, frozen)\n"
           "  --reward-model FILE  a `cllm reward` model (required)\n"
           "  --max-new N          completion tokens per rollout (default 32)\n"
           "  --temperature X      sampling temperature (default 1)\n"
           "  --epochs N           optimisation passes per rollout batch (default 2)\n"
           "  --missing-eos-penalty X  subtract X from the reward of a reply that does not end\n"
           "                       its turn within --max-new (default 0)\n"
           "  --clip-eps X         policy ratio clip (default 0.2)\n"
           "  --kl-coef X          per-token KL penalty (default 0.05)\n"
           "  --gamma X --lam X    GAE discount and lambda (default 1, 0.95)\n"
           "  --vf-coef X          value loss weight (default 0.1)\n"
           "  --vf-clip X          value clip range (default 0.2)\n" CLI_SUMMARY_HELP);
}

int cllm_cmd_ppo(int argc, char **argv) {
    cllm_rl_params p = cllm_rl_default_params();
    cllm_vreward *vr = NULL;
    int json = 0;
    int rc = rl_args_parse("ppo", argc, argv, RL_F_REF | RL_F_REWARD | RL_F_ROLLOUT | RL_F_PPO, usage, &p, &vr, &json);
    if (rc < 0) rc = CLI_EXIT_OK;
    else if (rc == 0) rc = rl_args_run("ppo", cllm_ppo_train, &p, json);
    cllm_vreward_destroy(vr);
    return rc;
}

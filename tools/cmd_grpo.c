/*
 * cmd_grpo.c: `cllm grpo`: Group Relative Policy Optimization on prompt
 * JSONL (cllm_grpo_train); prints the trainers' summary (--json: as JSON).
 */
#include <stdio.h>

#include "cli.h"
#include "rl_args.h"

static void usage(void) {
    printf("Usage: cllm grpo -m POLICY.gguf --data PROMPTS.jsonl -o RUN_DIR\n"
           "                 (--verify exact|number|regex|tool_call | --reward-model RM.gguf) [options]\n\n"
           "Samples --group completions per prompt, scores them, normalises the rewards within\n"
           "each group into advantages and maximises the clipped surrogate minus beta * KL to\n"
           "the reference. JSONL lines: {\"prompt\": string or messages, \"answer\": string or number}.\n\n"
           RL_COMMON_HELP
           "  --ref FILE           reference model (default: the policy itself, frozen)\n"
           "  --reward-model FILE  a `cllm reward` model\n"
           "  --verify KIND        built-in reward: exact (trimmed text == answer), number (first\n"
           "                       number == answer's), regex (completion matches --pattern),\n"
           "                       tool_call (the first <tool_call> is the answer's {\"name\", \"arguments\"};\n"
           "                       prompts with \"tools\": docs/TOOLS.md)\n"
           "  --pattern RE         PCRE2 pattern for --verify regex\n"
           "  --group N            completions per prompt (default 4)\n"
           "  --beta X             KL coefficient (default 0.1)\n"
           "  --max-new N          completion tokens per rollout (default 32)\n"
           "  --temperature X      sampling temperature (default 1)\n"
           "  --epochs N           optimisation passes per rollout batch (default 2)\n"
           "  --missing-eos-penalty X  subtract X from the reward of a reply that does not end\n"
           "                       its turn within --max-new (default 0)\n"
           "  --clip-eps X         ratio clip (default 0.2)\n" CLI_SUMMARY_HELP);
}

int cllm_cmd_grpo(int argc, char **argv) {
    cllm_rl_params p = cllm_rl_default_params();
    cllm_vreward *vr = NULL;
    int json = 0;
    int rc = rl_args_parse("grpo", argc, argv, RL_F_REF | RL_F_REWARD | RL_F_BETA | RL_F_ROLLOUT | RL_F_GROUP, usage,
                           &p, &vr, &json);
    if (rc < 0) rc = CLI_EXIT_OK;
    else if (rc == 0) rc = rl_args_run("grpo", cllm_grpo_train, &p, json);
    cllm_vreward_destroy(vr);
    return rc;
}

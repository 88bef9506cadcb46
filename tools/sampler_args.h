/*
 * sampler_args.h: the sampling flags shared by `cllm generate` and
 * `cllm chat` (tools/ only). Ranges are those of cllm_sampler_params_validate.
 */
#ifndef CLLM_TOOLS_SAMPLER_ARGS_H
#define CLLM_TOOLS_SAMPLER_ARGS_H

#include "cllm/infer/sampler.h"

/* Consumes argv[*i] if it is a sampling flag: 1 consumed, 0 not ours, -1
 * usage error (printed). */
int sampler_arg(const char *command, cllm_sampler_params *p, int argc, char **argv, int *i);
/* Applies "name value" (as typed in chat's /set) to p; 1 ok, 0 error printed. */
int sampler_set(const char *command, cllm_sampler_params *p, const char *name, const char *value);

#define SAMPLER_HELP                                                                          \
    "Sampling:\n"                                                                             \
    "  --temperature T        0 = greedy (default 0.8); --temp is an alias\n"                  \
    "  --top-k K              keep the K most likely tokens, 0 = off (default 40)\n"          \
    "  --top-p P              nucleus: smallest set with probability >= P (default 0.95)\n"   \
    "  --min-p P              drop tokens below P x the top probability (default 0.05)\n"     \
    "  --repeat-penalty R     divide repeated tokens' logits by R (default 1 = off)\n"        \
    "  --presence-penalty X   subtract X from seen tokens' logits (default 0)\n"              \
    "  --frequency-penalty X  subtract X per occurrence (default 0)\n"                        \
    "  --penalty-window N     tokens the penalties look back over (default 64)\n"             \
    "  --logit-bias ID=BIAS   add BIAS to token ID's logit (-inf bans it); repeatable\n"      \
    "  --sampler-order LIST   stage order, default\n"                                         \
    "                         penalties,logit_bias,top_k,top_p,min_p,temperature\n"          \
    "  --seed N               random seed (default 0)\n"

#endif

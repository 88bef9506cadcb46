/*
 * sampler_args.h: the sampling flags shared by `cllm generate` and
 * `cllm chat` (tools/ only). Ranges are those of cllm_sampler_params_validate.
 */
#ifndef CLLM_TOOLS_SAMPLER_ARGS_H
#define CLLM_TOOLS_SAMPLER_ARGS_H

#include "cllm/infer/grammar.h"
#include "cllm/infer/sampler.h"

/* Consumes argv[*i] if it is a sampling flag: 1 consumed, 0 not ours, -1
 * usage error (printed). */
int sampler_arg(const char *command, cllm_sampler_params *p, int argc, char **argv, int *i);
/* Applies "name value" (as typed in chat's /set) to p; 1 ok, 0 error printed. */
int sampler_set(const char *command, cllm_sampler_params *p, const char *name, const char *value);

/* --grammar FILE / --json-schema FILE (generate, chat, eval): constrained
 * output (docs/GRAMMAR.md). Loaded and checked before the model; the
 * vocabulary trie is built once, on the first attach. */
typedef struct {
    const char *grammar_path, *schema_path;
    cllm_grammar *grammar;     /* owned, after grammar_args_load */
    cllm_grammar_vocab *vocab; /* owned, built by grammar_args_attach */
} grammar_args;

/* Consumes --grammar / --json-schema like sampler_arg (1, 0, -1). */
int grammar_arg(const char *command, grammar_args *g, int argc, char **argv, int *i);
/* Reads and parses the file given (nothing to do without one). Returns
 * CLI_EXIT_OK, or an exit code after printing one error naming the file (and
 * line:column in a grammar, the keyword and its place in a schema). */
int grammar_args_load(const char *command, grammar_args *g);
/* Builds the vocabulary for tok / eog ids on the first call; fills err. */
cllm_status grammar_args_vocab(grammar_args *g, const cllm_tokenizer *tok, const int32_t *eog, int n_eog,
                               cllm_error *err);
/* Sets the loaded grammar (if any) on a new sampler. */
cllm_status grammar_args_attach(grammar_args *g, cllm_sampler *s, const cllm_tokenizer *tok, const int32_t *eog,
                                int n_eog, cllm_error *err);
void grammar_args_free(grammar_args *g);

#define GRAMMAR_HELP                                                                          \
    "Constrained output (docs/GRAMMAR.md):\n"                                                  \
    "  --grammar FILE         constrain the output to a GBNF grammar (llama.cpp syntax)\n"    \
    "  --json-schema FILE     constrain the output to JSON matching a JSON Schema\n"

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

/*
 * world.h: the built-in practice world: a deterministic generator of simple
 * English stories (TinyStories-like), their Korean rendering, and task sets
 * with exact references (translation both ways, summarisation, sentiment,
 * shop FAQ, arithmetic) plus preference pairs, all written here from a seed.
 * No external text is read.
 *
 * Output files (cllm_world_write, `cllm data world`):
 *   stories.{train,val}.txt   pre-training text: stories separated by blank
 *                             lines, each followed by its Korean rendering
 *                             (formal -습니다 style) and bilingual lines
 *   <task>.{train,val,test}.jsonl, one example per line:
 *       {"task": T, "metrics": [..], "messages": [{"role":"user",..},
 *        {"role":"assistant",..}], "reference": R}
 *     tasks: translate_en_ko, translate_ko_en, summary, sentiment, faq, arithmetic
 *   tool_arithmetic / tool_shop.{train,val,test}.jsonl: questions that need a
 *       tool (sums, differences and products of numbers up to 4 digits; an
 *       order's status or an item's stock): {"task", "metrics", "tools",
 *       "messages": [user, assistant with "tool_calls", tool result,
 *       assistant answer], "reference"}; split by the numbers (or the
 *       order), so no test computation or order is in training
 *   tools.json: the tools as a toolbox file for the built-ins (agent.h);
 *   shop.json: the shop's order and stock table the shop tools read
 *   tool_prompts.train.jsonl: the tool tasks' training questions as GRPO
 *       prompts, {"task", "tools", "prompt": [user], "answer": the expected
 *       call {"name", "arguments"}} (`cllm grpo --verify tool_call`)
 *   tool_sft.{train,val}.jsonl: the same train / val exchanges four to a
 *       conversation under one tool list (~700 tokens instead of 4 x ~400)
 *   preferences.{train,val}.jsonl: {"task", "prompt", "chosen", "rejected",
 *       "rejected_kind": "wrong"|"rude"|"rambling"}, and for the tool tasks
 *       {"tools", "prompt": [user], "chosen": [the right call], "rejected":
 *       [a call with a wrong argument, or a guess without a call],
 *       "rejected_kind": "wrong_args"|"no_call"} (prompts from the train /
 *       val splits only; the test split never appears in any training file)
 *   manifest.json: seed, size, per-file record and byte counts
 *
 * Splits: every example's input is normalised (case-folded ASCII, collapsed
 * whitespace), deduplicated across the whole task, and assigned to
 * train/val/test by a hash of the normalised input, so the three splits share
 * no input. Stories used for the summary task are never in the pre-training
 * text.
 *
 * Korean: particles are chosen from the final consonant (batchim) of the
 * preceding Hangul syllable, computed with the Unicode syllable arithmetic
 * (U+AC00 + (initial*21 + medial)*28 + final). Translation references use
 * the polite -요 style throughout; story renderings use -습니다 throughout.
 *
 * Not here: tokenization, training, evaluation (metrics.h, `cllm eval`).
 */
#ifndef CLLM_WORLD_H
#define CLLM_WORLD_H

#include <stddef.h>
#include <stdint.h>

#include "cllm/core/status.h"

typedef enum {
    CLLM_WORLD_SMALL = 0, /* CI size: ~1.5 MB of pre-training text, well under a second */
    CLLM_WORLD_FULL,      /* ~15 MB of pre-training text */
    CLLM_WORLD_SIZE_COUNT
} cllm_world_size;

typedef struct {
    uint64_t seed;
    cllm_world_size size;
    int n_stories; /* pre-training stories; 0 = the size's default */
} cllm_world_params;

/* seed 1, small, default story count. */
cllm_world_params cllm_world_default_params(void);
const char *cllm_world_size_name(cllm_world_size s); /* "small", "full" */
int cllm_world_size_parse(const char *name);         /* -1 when unknown */

typedef struct {
    char name[64];    /* file name inside the output directory */
    char *data;       /* [len] bytes, owned by the cllm_world, NUL-terminated */
    size_t len;
    size_t n_records; /* JSONL lines, or stories for .txt */
} cllm_world_file;

typedef struct {
    cllm_world_file *files; /* [n_files], owned */
    int n_files;
} cllm_world;

/* Builds every file in memory. Deterministic: the same params give the same
 * bytes on every machine. *out must be freed with cllm_world_free. */
cllm_status cllm_world_build(const cllm_world_params *p, cllm_world *out, cllm_error *err);
/* NULL when absent. Borrowed. */
const cllm_world_file *cllm_world_find(const cllm_world *w, const char *name);
/* Writes every file atomically into dir (created if missing, one level). */
cllm_status cllm_world_write(const cllm_world *w, const char *dir, cllm_error *err);
void cllm_world_free(cllm_world *w); /* accepts a zeroed world */

/* ---- Korean ------------------------------------------------------------- */

typedef enum {
    CLLM_KO_TOPIC = 0, /* 은 / 는 */
    CLLM_KO_SUBJECT,   /* 이 / 가 */
    CLLM_KO_OBJECT,    /* 을 / 를 */
    CLLM_KO_WITH,      /* 과 / 와 ("and", "with") */
    CLLM_KO_TOWARD,    /* 으로 / 로; 로 also after ㄹ */
    CLLM_KO_COPULA,    /* 이에요 / 예요 (polite "is") */
    CLLM_KO_PARTICLE_COUNT
} cllm_ko_particle;

/* The final-consonant index (1..27) of the last character of word[0,len)
 * when it is a precomposed Hangul syllable (U+AC00..U+D7A3), 0 when that
 * syllable has no final consonant, -1 when the last character is not a
 * Hangul syllable (or len is 0 / the UTF-8 is invalid). 8 is ㄹ. */
int cllm_ko_final_consonant(const char *word, size_t len);

/* The particle form that follows `word` (borrowed static text). A word whose
 * last character is not a Hangul syllable takes the after-vowel form. */
const char *cllm_ko_particle_for(const char *word, cllm_ko_particle p);

/* Formal present (-ㅂ니다 / -습니다) of a verb or adjective stem (the
 * dictionary form without 다): a vowel-final stem gets ㅂ as its final
 * consonant (가 -> 갑니다), an ㄹ-final stem drops the ㄹ first (만들 ->
 * 만듭니다), any other stem takes 습니다 (먹 -> 먹습니다). Writes a
 * NUL-terminated string; CLLM_ERR_ARG if stem is not Hangul-final or buf is
 * too small. */
cllm_status cllm_ko_formal_present(const char *stem, char *buf, size_t cap, cllm_error *err);

#endif

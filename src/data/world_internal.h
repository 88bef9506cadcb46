/*
 * world_internal.h: shared pieces of the practice-world generator
 * (src/data/world*.c only): a growable text buffer, the lexicon tables, the
 * story plot, and the entry points of each generator file.
 */
#ifndef CLLM_WORLD_INTERNAL_H
#define CLLM_WORLD_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "cllm/core/rng.h"
#include "cllm/data/world.h"

/* ---- growable text buffer (world_buf.c) -----------------------------------
 * Appends never fail loudly: an allocation failure sets oom and later
 * appends are no-ops; the caller checks oom once at the end. */
typedef struct {
    char *data; /* [len] + NUL, capacity cap */
    size_t len, cap;
    int oom;
} wbuf;

void wb_free(wbuf *b);
void wb_reset(wbuf *b); /* len = 0, keeps memory */
void wb_putn(wbuf *b, const char *s, size_t n);
void wb_puts(wbuf *b, const char *s);
void wb_printf(wbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal (quotes and escapes included). */
void wb_json_str(wbuf *b, const char *s);
/* word + its Korean particle. */
void wb_ko(wbuf *b, const char *word, cllm_ko_particle p);
/* Uppercases the first ASCII letter of b->data[from..]. */
void wb_capitalize_at(wbuf *b, size_t from);
/* Picks one of n strings uniformly. */
#define W_PICK(rng, arr) ((arr)[cllm_rng_below((rng), sizeof(arr) / sizeof((arr)[0]))])
#define W_COUNT(arr) ((int)(sizeof(arr) / sizeof((arr)[0])))

/* ---- lexicon (world_lexicon.c) ------------------------------------------ */
enum { W_FOOD = 1, W_TOY = 2, W_READ = 4, W_OPEN = 8, W_THING = 16, W_ANIMAL = 32, W_MADE = 64 };

typedef struct {
    const char *en, *ko; /* "Lily", "릴리" */
    int female;
} w_person;

typedef struct {
    const char *en, *en_pl, *ko; /* "box", "boxes", "상자" */
    int kinds;                   /* W_* bits */
} w_thing;

typedef struct {
    const char *en, *ko; /* "park", "공원" (English always takes "the") */
    const char *at;      /* preposition of location: "at" the park, "in" the forest, "on" the farm */
} w_place;

typedef struct {
    const char *base, *past, *s3; /* "find", "found", "finds" */
    const char *ko_polite;        /* present polite: "찾아요" */
    const char *ko_past;          /* past stem: "찾았" (+어요 / +습니다) */
    int kinds;                    /* objects it takes (W_* bits) */
} w_verb;

typedef struct {
    const char *en;        /* "happy" */
    const char *ko_polite; /* "행복해요" */
    const char *ko_past;   /* "행복했" */
    int polarity;          /* +1, -1 */
} w_feeling;

typedef struct {
    const char *en, *ko; /* "red", "빨간" */
} w_adj;

extern const w_person w_people[];
extern const int w_n_people;
extern const w_thing w_things[];
extern const int w_n_things;
extern const w_place w_places[];
extern const int w_n_places;
extern const w_verb w_verbs[];
extern const int w_n_verbs;
extern const w_feeling w_feelings[];
extern const int w_n_feelings;
extern const w_adj w_adjs[];
extern const int w_n_adjs;
extern const char *const w_traits[];
extern const int w_n_traits;
extern const char *const w_ko_numbers[]; /* native numerals before a counter, [0] unused: 한, 두, ... (1..10) */
extern const char *const w_en_numbers[]; /* "zero".."twenty" */

/* Picks a thing with any of the given kind bits. */
int w_pick_thing(cllm_rng *rng, int kinds);
/* "a" or "an" for the word that follows. */
const char *w_article(const char *next_word);

/* ---- stories (world_story.c) --------------------------------------------- */
enum { W_PLOT_LOST = 0, W_PLOT_SHARE, W_PLOT_FEAR, W_PLOT_MAKE, W_PLOT_QUARREL, W_PLOT_TRIP, W_PLOT_COUNT };

typedef struct {
    int kind;          /* W_PLOT_* */
    int hero, friend;  /* w_people indices, distinct */
    int place;         /* w_places */
    int thing;         /* w_things */
    int adj;           /* w_adjs */
    int trait;         /* w_traits */
    int count;         /* a small number used by some plots (2..6) */
    int aux;           /* plot-specific choice: the scary thing (FEAR), the parent (TRIP) */
} w_plot;

void w_plot_random(cllm_rng *rng, w_plot *p);
/* English story text (no trailing newline). brief = 1 leaves out the
 * optional scene-setting and closing sentences (summary inputs). */
void w_story_english(cllm_rng *rng, const w_plot *p, int brief, wbuf *out);
/* The exact one- or two-sentence summary of the plot. */
void w_story_summary(const w_plot *p, wbuf *out);
/* Korean rendering of the plot's main events, formal -습니다 style. */
void w_story_korean(const w_plot *p, wbuf *out);

/* ---- tasks (world_tasks.c) ----------------------------------------------
 * Each generator appends one (input, reference) example. */
void w_task_translation(cllm_rng *rng, wbuf *en, wbuf *ko);
/* Fixed everyday phrases, always in the train split. */
int w_translation_n_fixed(void);
void w_translation_fixed(int i, wbuf *en, wbuf *ko);
void w_task_sentiment(cllm_rng *rng, wbuf *text, const char **label);
/* intent index into the fixed answers; n_intents via w_faq_n_intents */
void w_task_faq(cllm_rng *rng, wbuf *question, int *intent);
int w_faq_n_intents(void);
const char *w_faq_answer(int intent);
void w_task_arithmetic(cllm_rng *rng, wbuf *question, int *answer);

/* ---- tools (world_tools.c) ------------------------------------------------ */
#define W_SHOP_MAX_ORDERS 4000
typedef struct {
    int n_orders;
    int order_id[W_SHOP_MAX_ORDERS];     /* 1000..9999, distinct */
    int order_item[W_SHOP_MAX_ORDERS];   /* w_things index */
    int order_status[W_SHOP_MAX_ORDERS]; /* index into the status names */
    int stock[64];                       /* per w_things index */
} w_shop;
void w_shop_build(uint64_t seed, int n_orders, w_shop *shop);
/* The table as agent.h's shop reads it; the tool definitions (with the
 * x-cllm keys of a toolbox file when builtin). */
void w_shop_json(const w_shop *shop, wbuf *out);
void w_tools_json(wbuf *out, int builtin);
/* A question, the tool, the call's arguments or expression, the result, the answer;
 * *key is the split key (0: the question's text). */
void w_task_tool_arith(cllm_rng *rng, wbuf *question, wbuf *expression, long long *answer, uint64_t *key);
void w_task_tool_shop(cllm_rng *rng, const w_shop *shop, wbuf *question, const char **tool, wbuf *args, wbuf *result,
                      wbuf *answer, uint64_t *key);

#endif

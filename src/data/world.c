/*
 * world.c: assembles the practice world: draws stories and task examples
 * from their generators, deduplicates each task by normalised input, assigns
 * splits by a hash of that input, renders the JSONL / text / manifest files
 * in memory and writes them atomically. The sentence and task grammars live
 * in world_story.c and world_tasks.c; Korean rules in world_korean.c.
 */
#include <stdlib.h>
#include <string.h>

#include "cllm/core/fileio.h"
#include "cllm/core/hash.h"
#include "world_internal.h"

#define WORLD_VERSION 1

cllm_world_params cllm_world_default_params(void) {
    cllm_world_params p = {.seed = 1, .size = CLLM_WORLD_SMALL, .n_stories = 0};
    return p;
}

const char *cllm_world_size_name(cllm_world_size s) {
    return s == CLLM_WORLD_FULL ? "full" : s == CLLM_WORLD_SMALL ? "small" : "?";
}

int cllm_world_size_parse(const char *name) {
    if (!strcmp(name, "small")) return CLLM_WORLD_SMALL;
    if (!strcmp(name, "full")) return CLLM_WORLD_FULL;
    return -1;
}

/* ---- normalised-input hashing and the split rule ------------------------- */

/* The offset basis this generator has always hashed from: FNV's with its last
 * digit lost. Kept, because every split of every world depends on it. */
#define WORLD_HASH_BASIS 1469598103934665603ULL

/* FNV-1a of the text with ASCII case folded, whitespace runs collapsed to one
 * space and leading/trailing whitespace dropped. Never returns 0. */
static uint64_t norm_hash(const char *s) {
    uint64_t h = WORLD_HASH_BASIS;
    int pending_space = 0, started = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
            pending_space = started;
            continue;
        }
        if (pending_space) {
            h = cllm_fnv1a64_mix(h, ' ');
            pending_space = 0;
        }
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
        h = cllm_fnv1a64_mix(h, c);
        started = 1;
    }
    return h ? h : 1;
}

enum { SPLIT_TRAIN = 0, SPLIT_VAL, SPLIT_TEST, SPLIT_COUNT };
static const char *const split_name[SPLIT_COUNT] = {"train", "val", "test"};

/* 80 / 10 / 10 by the normalised input's hash, salted with the seed. */
static int split_of(uint64_t h, uint64_t seed) {
    uint64_t r = cllm_mix64(h ^ cllm_mix64(seed + 0x5eed)) % 100;
    return r < 80 ? SPLIT_TRAIN : r < 90 ? SPLIT_VAL : SPLIT_TEST;
}

typedef struct {
    uint64_t *keys; /* [cap], 0 = empty */
    size_t cap, n;
} hset;

/* 1 added, 0 already present, -1 out of memory. */
static int hset_add(hset *s, uint64_t k) {
    if (2 * (s->n + 1) > s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 1024;
        uint64_t *keys = calloc(cap, sizeof *keys);
        if (!keys) return -1;
        for (size_t i = 0; i < s->cap; i++)
            if (s->keys[i]) {
                size_t j = cllm_mix64(s->keys[i]) & (cap - 1);
                while (keys[j]) j = (j + 1) & (cap - 1);
                keys[j] = s->keys[i];
            }
        free(s->keys);
        s->keys = keys;
        s->cap = cap;
    }
    size_t j = cllm_mix64(k) & (s->cap - 1);
    while (s->keys[j]) {
        if (s->keys[j] == k) return 0;
        j = (j + 1) & (s->cap - 1);
    }
    s->keys[j] = k;
    s->n++;
    return 1;
}

static int hset_has(const hset *s, uint64_t k) {
    if (!s->cap) return 0;
    size_t j = cllm_mix64(k) & (s->cap - 1);
    while (s->keys[j]) {
        if (s->keys[j] == k) return 1;
        j = (j + 1) & (s->cap - 1);
    }
    return 0;
}

/* ---- tasks and output files ----------------------------------------------- */

enum { T_EN_KO = 0, T_KO_EN, T_SUMMARY, T_SENTIMENT, T_FAQ, T_ARITH, T_TOOL_ARITH, T_TOOL_SHOP, T_COUNT };
static const struct {
    const char *name, *metrics, *prompt;
} task_info[T_COUNT] = {
    {"translate_en_ko", "[\"chrf\", \"exact_match\"]", "Translate to Korean: "},
    {"translate_ko_en", "[\"chrf\", \"exact_match\"]", "Translate to English: "},
    {"summary", "[\"rouge_l\", \"chrf\"]", "Summarize this story in one or two sentences.\n\n"},
    {"sentiment", "[\"accuracy\"]", "Is this text positive, negative or neutral?\n\n"},
    {"faq", "[\"exact_match\", \"chrf\"]", ""},
    {"arithmetic", "[\"accuracy\"]", ""},
    {"tool_arithmetic", "[\"accuracy\"]", ""},
    {"tool_shop", "[\"exact_match\", \"chrf\"]", ""},
};

/* Examples drawn per task before deduplication (small size; full x5). */
static const int task_draws_small[T_COUNT] = {3000, 0, 800, 2500, 2000, 2500, 1500, 1500};
#define SHOP_ORDERS_SMALL 800 /* the shop's orders (full x5) */
#define TOOL_SFT_EXCHANGES 4  /* tool exchanges per tool_sft conversation: the ~300-token tool list once for 4 */
#define STORIES_SMALL 2000
#define FULL_FACTOR 10
#define TASK_FULL_FACTOR 5

typedef struct {
    wbuf text[2];                     /* stories.train / stories.val */
    size_t n_text[2];
    wbuf task[T_COUNT][SPLIT_COUNT];
    size_t n_task[T_COUNT][SPLIT_COUNT];
    wbuf pref[2];
    size_t n_pref[2];
    wbuf last_ref[T_COUNT][2];        /* previous reference per task and split, for "wrong" answers */
    hset seen[T_COUNT];
    cllm_rng pref_rng;
    uint64_t seed;
    /* every example, per split, for the conversations (build_conversations) */
    struct w_item {
        int task;
        char *input, *ref; /* owned */
    } *items[SPLIT_COUNT];
    size_t n_items[SPLIT_COUNT], cap_items[SPLIT_COUNT];
    int items_oom;
    wbuf conv[SPLIT_COUNT];
    size_t n_conv[SPLIT_COUNT];
    w_shop shop;
    wbuf tools, toolbox, shop_table; /* the tool definitions; tools.json; shop.json */
    wbuf tool_prompts;               /* tool_prompts.train.jsonl: GRPO prompts with the expected call */
    size_t n_tool_prompts;
    wbuf tool_sft[2], tool_pending[2]; /* tool_sft.{train,val}.jsonl: TOOL_SFT_EXCHANGES per conversation */
    size_t n_tool_sft[2];
    int n_pending[2];
} builder;

static void keep_item(builder *b, int task, int split, const char *input, const char *ref) {
    if (b->n_items[split] == b->cap_items[split]) {
        size_t cap = b->cap_items[split] ? 2 * b->cap_items[split] : 1024;
        struct w_item *v = realloc(b->items[split], cap * sizeof *v);
        if (!v) {
            b->items_oom = 1;
            return;
        }
        b->items[split] = v, b->cap_items[split] = cap;
    }
    char *i = strdup(input), *r = strdup(ref);
    if (!i || !r) {
        free(i), free(r);
        b->items_oom = 1;
        return;
    }
    b->items[split][b->n_items[split]++] = (struct w_item){task, i, r};
}

static void put_example(builder *b, int task, int split, const char *input, const char *ref) {
    wbuf *o = &b->task[task][split];
    wbuf prompt = {0};
    wb_puts(&prompt, task_info[task].prompt);
    wb_puts(&prompt, input);
    wb_puts(o, "{\"task\": ");
    wb_json_str(o, task_info[task].name);
    wb_printf(o, ", \"metrics\": %s, \"messages\": [{\"role\": \"user\", \"content\": ", task_info[task].metrics);
    wb_json_str(o, prompt.data ? prompt.data : "");
    wb_puts(o, "}, {\"role\": \"assistant\", \"content\": ");
    wb_json_str(o, ref);
    wb_puts(o, "}], \"reference\": ");
    wb_json_str(o, ref);
    wb_puts(o, "}\n");
    b->n_task[task][split]++;
    if (prompt.oom) o->oom = 1;
    keep_item(b, task, split, input, ref);

    /* One preference pair per train / val example. */
    if (split == SPLIT_TEST) {
        wb_free(&prompt);
        return;
    }
    cllm_rng *r = &b->pref_rng;
    wbuf rej = {0};
    const char *kind;
    uint64_t k = cllm_rng_below(r, 3);
    wbuf *last = &b->last_ref[task][split];
    if (k == 0) {
        kind = "wrong";
        if (task == T_SENTIMENT) {
            static const char *const labels[] = {"positive", "negative", "neutral"};
            const char *l;
            do l = W_PICK(r, labels);
            while (!strcmp(l, ref));
            wb_puts(&rej, l);
        } else if (task == T_ARITH) {
            int v = atoi(ref), d = 1 + (int)cllm_rng_below(r, 3);
            wb_printf(&rej, "%d", v >= d && cllm_rng_below(r, 2) ? v - d : v + d);
        } else if (last->len && strcmp(last->data, ref)) {
            wb_puts(&rej, last->data);
        } else {
            k = 1;
        }
    }
    if (k == 1) {
        static const char *const rude[] = {"Ugh, figure it out yourself.", "Stop bothering me with questions.",
                                           "Whatever. ", "That is a silly question. ", "I don't care. "};
        const char *s = W_PICK(r, rude);
        kind = "rude";
        wb_puts(&rej, s);
        if (s[strlen(s) - 1] == ' ') wb_puts(&rej, ref);
    } else if (k == 2) {
        kind = "rambling";
        wb_puts(&rej, "Well, that is a very interesting question, and there is a lot to say about it, so let me think "
                      "for a while before I answer. ");
        wb_puts(&rej, ref);
        wb_puts(&rej, " Anyway, I hope that helps, although I am not completely sure, and there is much more that "
                      "could be said about all of this.");
    }
    wbuf *p = &b->pref[split];
    wb_puts(p, "{\"task\": ");
    wb_json_str(p, task_info[task].name);
    wb_puts(p, ", \"prompt\": ");
    wb_json_str(p, prompt.data ? prompt.data : "");
    wb_puts(p, ", \"chosen\": ");
    wb_json_str(p, ref);
    wb_puts(p, ", \"rejected\": ");
    wb_json_str(p, rej.data ? rej.data : "");
    wb_printf(p, ", \"rejected_kind\": \"%s\"}\n", kind);
    b->n_pref[split]++;
    if (rej.oom) p->oom = 1;
    wb_reset(last);
    wb_puts(last, ref);
    wb_free(&rej);
    wb_free(&prompt);
}

/* Adds (input, ref) to task unless its normalised input was seen; split
 * forced when forced_split >= 0, else by key_hash (0: hash of the input). */
static int add_example(builder *b, int task, const char *input, const char *ref, uint64_t key_hash, int forced_split) {
    int added = hset_add(&b->seen[task], norm_hash(input));
    if (added <= 0) return added;
    int split = forced_split >= 0 ? forced_split : split_of(key_hash ? key_hash : norm_hash(input), b->seed);
    put_example(b, task, split, input, ref);
    return 1;
}

/* {"role": "assistant", "content": "", "tool_calls": [one call of tool with args]} */
static void tool_call_message(wbuf *o, const char *tool, const char *args) {
    wb_printf(o, "{\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{\"id\": \"call_0\", \"type\": "
                 "\"function\", \"function\": {\"name\": \"%s\", \"arguments\": ", tool);
    wb_json_str(o, args);
    wb_puts(o, "}}]}");
}

/* The pending exchanges of split as one tool_sft conversation. */
static void flush_tool_sft(builder *b, int split) {
    if (!b->n_pending[split]) return;
    wb_printf(&b->tool_sft[split], "{\"task\": \"tool_sft\", \"tools\": %s, \"messages\": [%s]}\n", b->tools.data,
              b->tool_pending[split].data);
    b->n_tool_sft[split]++;
    b->n_pending[split] = 0;
    wb_reset(&b->tool_pending[split]);
}

/* A tool task's example: the question, the assistant's call, the tool's
 * result, the answer (the reference). Train and val examples also give a
 * preference pair: the right call against a call with wrong arguments
 * (wrong_args, the same call with one digit or the item changed) or no call
 * at all (a guessed answer, no_call). Split by key (0: the question). */
static int add_tool_example(builder *b, int task, const char *question, const char *tool, const char *args,
                            const char *wrong_args, const char *result, const char *answer, const char *guess,
                            uint64_t key) {
    int added = hset_add(&b->seen[task], norm_hash(question));
    if (added <= 0) return added;
    int split = split_of(key ? key : norm_hash(question), b->seed);
    wbuf ex = {0}; /* the exchange: question, call, result, answer */
    wb_puts(&ex, "{\"role\": \"user\", \"content\": ");
    wb_json_str(&ex, question);
    wb_puts(&ex, "}, ");
    tool_call_message(&ex, tool, args);
    wb_printf(&ex, ", {\"role\": \"tool\", \"tool_call_id\": \"call_0\", \"name\": \"%s\", \"content\": ", tool);
    wb_json_str(&ex, result);
    wb_puts(&ex, "}, {\"role\": \"assistant\", \"content\": ");
    wb_json_str(&ex, answer);
    wb_puts(&ex, "}");
    wbuf *o = &b->task[task][split];
    wb_puts(o, "{\"task\": ");
    wb_json_str(o, task_info[task].name);
    wb_printf(o, ", \"metrics\": %s, \"tools\": %s, \"messages\": [%s], \"reference\": ", task_info[task].metrics,
              b->tools.data, ex.data ? ex.data : "");
    wb_json_str(o, answer);
    wb_puts(o, "}\n");
    b->n_task[task][split]++;
    if (split != SPLIT_TEST) { /* TOOL_SFT_EXCHANGES per SFT conversation, under one tool list */
        wbuf *pend = &b->tool_pending[split];
        wb_printf(pend, "%s%s", pend->len ? ", " : "", ex.data ? ex.data : "");
        if (++b->n_pending[split] == TOOL_SFT_EXCHANGES) flush_tool_sft(b, split);
    }
    if (ex.oom) o->oom = 1;
    wb_free(&ex);
    if (split == SPLIT_TEST) return 1;
    if (split == SPLIT_TRAIN) { /* for GRPO's tool_call reward: the question and the call it needs */
        wbuf *g = &b->tool_prompts, call = {0};
        wb_puts(g, "{\"task\": ");
        wb_json_str(g, task_info[task].name);
        wb_printf(g, ", \"tools\": %s, \"prompt\": [{\"role\": \"user\", \"content\": ", b->tools.data);
        wb_json_str(g, question);
        wb_printf(&call, "{\"name\": \"%s\", \"arguments\": %s}", tool, args);
        wb_puts(g, "}], \"answer\": ");
        wb_json_str(g, call.data ? call.data : "");
        wb_puts(g, "}\n");
        if (call.oom) g->oom = 1;
        wb_free(&call);
        b->n_tool_prompts++;
    }
    int no_call = cllm_rng_below(&b->pref_rng, 2) == 0;
    wbuf *p = &b->pref[split];
    wb_puts(p, "{\"task\": ");
    wb_json_str(p, task_info[task].name);
    wb_printf(p, ", \"tools\": %s, \"prompt\": [{\"role\": \"user\", \"content\": ", b->tools.data);
    wb_json_str(p, question);
    wb_puts(p, "}], \"chosen\": [");
    tool_call_message(p, tool, args);
    wb_puts(p, "], \"rejected\": [");
    if (no_call) {
        wb_puts(p, "{\"role\": \"assistant\", \"content\": ");
        wb_json_str(p, guess);
        wb_puts(p, "}");
    } else {
        tool_call_message(p, tool, wrong_args);
    }
    wb_printf(p, "], \"rejected_kind\": \"%s\"}\n", no_call ? "no_call" : "wrong_args");
    b->n_pref[split]++;
    return 1;
}

/* text with its last digit changed (a wrong argument that still looks right) */
static void change_a_digit(cllm_rng *r, const char *text, wbuf *out) {
    wb_reset(out);
    wb_puts(out, text);
    for (size_t i = out->len; i-- > 0;)
        if (out->data[i] >= '0' && out->data[i] <= '9') {
            out->data[i] = (char)('0' + (out->data[i] - '0' + 1 + (int)cllm_rng_below(r, 9)) % 10);
            return;
        }
}

static cllm_rng stream(uint64_t seed, uint64_t id) {
    cllm_rng r;
    cllm_rng_seed(&r, cllm_mix64(seed) ^ cllm_mix64(id * CLLM_GOLDEN_GAMMA + 1));
    return r;
}

static void builder_free(builder *b) {
    for (int i = 0; i < 2; i++) wb_free(&b->text[i]), wb_free(&b->pref[i]);
    wb_free(&b->tools), wb_free(&b->toolbox), wb_free(&b->shop_table), wb_free(&b->tool_prompts);
    for (int i = 0; i < 2; i++) wb_free(&b->tool_sft[i]), wb_free(&b->tool_pending[i]);
    for (int s = 0; s < SPLIT_COUNT; s++) {
        for (size_t i = 0; i < b->n_items[s]; i++) free(b->items[s][i].input), free(b->items[s][i].ref);
        free(b->items[s]);
        wb_free(&b->conv[s]);
    }
    for (int t = 0; t < T_COUNT; t++) {
        for (int s = 0; s < SPLIT_COUNT; s++) wb_free(&b->task[t][s]);
        for (int s = 0; s < 2; s++) wb_free(&b->last_ref[t][s]);
        free(b->seen[t].keys);
    }
}

static int builder_oom(const builder *b) {
    int oom = b->items_oom | b->tools.oom | b->toolbox.oom | b->shop_table.oom | b->tool_prompts.oom;
    for (int i = 0; i < 2; i++) oom |= b->tool_sft[i].oom | b->tool_pending[i].oom;
    for (int s = 0; s < SPLIT_COUNT; s++) oom |= b->conv[s].oom;
    for (int i = 0; i < 2; i++) oom |= b->text[i].oom | b->pref[i].oom;
    for (int t = 0; t < T_COUNT; t++)
        for (int s = 0; s < SPLIT_COUNT; s++) oom |= b->task[t][s].oom;
    return oom;
}

#define FIXED_COPIES 8

static int build(builder *b, const cllm_world_params *p) {
    int factor = p->size == CLLM_WORLD_FULL ? TASK_FULL_FACTOR : 1;
    int n_stories = p->n_stories > 0 ? p->n_stories : STORIES_SMALL * (p->size == CLLM_WORLD_FULL ? FULL_FACTOR : 1);
    wbuf x = {0}, y = {0};
    b->pref_rng = stream(p->seed, 100);

    /* Translation: one pair feeds both directions, split by the English side.
     * The fixed everyday phrases (the guide's "Hello, how are you?") go to
     * train FIXED_COPIES times: once each among thousands of pairs, the demo
     * model mixed up the short ones ("how are you?" -> "where are you going?").
     * The first copy registers the text, so no other split can hold it. */
    for (int i = 0; i < w_translation_n_fixed(); i++) {
        wb_reset(&x), wb_reset(&y);
        w_translation_fixed(i, &x, &y);
        if (add_example(b, T_EN_KO, x.data, y.data, 0, SPLIT_TRAIN) < 0) goto oom;
        if (add_example(b, T_KO_EN, y.data, x.data, 0, SPLIT_TRAIN) < 0) goto oom;
        for (int c = 1; c < FIXED_COPIES; c++) {
            put_example(b, T_EN_KO, SPLIT_TRAIN, x.data, y.data);
            put_example(b, T_KO_EN, SPLIT_TRAIN, y.data, x.data);
        }
    }
    cllm_rng r = stream(p->seed, T_EN_KO);
    for (int i = 0; i < task_draws_small[T_EN_KO] * factor; i++) {
        wb_reset(&x), wb_reset(&y);
        w_task_translation(&r, &x, &y);
        uint64_t key = norm_hash(x.data);
        if (add_example(b, T_EN_KO, x.data, y.data, key, -1) < 0) goto oom;
        if (add_example(b, T_KO_EN, y.data, x.data, key, -1) < 0) goto oom;
    }

    /* Summaries: brief stories, never part of the pre-training text. */
    r = stream(p->seed, T_SUMMARY);
    for (int i = 0; i < task_draws_small[T_SUMMARY] * factor; i++) {
        w_plot plot;
        w_plot_random(&r, &plot);
        wb_reset(&x), wb_reset(&y);
        w_story_english(&r, &plot, 1, &x);
        w_story_summary(&plot, &y);
        if (add_example(b, T_SUMMARY, x.data, y.data, 0, -1) < 0) goto oom;
    }

    r = stream(p->seed, T_SENTIMENT);
    for (int i = 0; i < task_draws_small[T_SENTIMENT] * factor; i++) {
        const char *label;
        wb_reset(&x);
        w_task_sentiment(&r, &x, &label);
        if (add_example(b, T_SENTIMENT, x.data, label, 0, -1) < 0) goto oom;
    }

    r = stream(p->seed, T_FAQ);
    for (int i = 0; i < task_draws_small[T_FAQ] * factor; i++) {
        int intent;
        wb_reset(&x);
        w_task_faq(&r, &x, &intent);
        if (add_example(b, T_FAQ, x.data, w_faq_answer(intent), 0, -1) < 0) goto oom;
    }

    r = stream(p->seed, T_ARITH);
    for (int i = 0; i < task_draws_small[T_ARITH] * factor; i++) {
        int answer;
        char ans[16];
        wb_reset(&x);
        w_task_arithmetic(&r, &x, &answer);
        snprintf(ans, sizeof ans, "%d", answer);
        if (add_example(b, T_ARITH, x.data, ans, 0, -1) < 0) goto oom;
    }

    /* Tools: the shop's table, the definitions, and questions that need them. */
    w_shop_build(p->seed, SHOP_ORDERS_SMALL * factor, &b->shop);
    w_shop_json(&b->shop, &b->shop_table);
    w_tools_json(&b->tools, 0);
    w_tools_json(&b->toolbox, 1);
    wb_puts(&b->toolbox, "\n");
    wbuf args = {0}, result = {0}, wrong = {0}, guess = {0};
    if (b->tools.oom) goto tools_oom;
    r = stream(p->seed, T_TOOL_ARITH);
    for (int i = 0; i < task_draws_small[T_TOOL_ARITH] * factor; i++) {
        long long answer;
        uint64_t key;
        char ans[32];
        wb_reset(&x), wb_reset(&y), wb_reset(&args), wb_reset(&guess);
        w_task_tool_arith(&r, &x, &y, &answer, &key);
        snprintf(ans, sizeof ans, "%lld", answer);
        wb_puts(&args, "{\"expression\": ");
        wb_json_str(&args, y.data);
        wb_puts(&args, "}");
        change_a_digit(&b->pref_rng, args.data, &wrong);
        change_a_digit(&b->pref_rng, ans, &guess);
        if (add_tool_example(b, T_TOOL_ARITH, x.data, "calculator", args.data, wrong.data, ans, ans, guess.data, key) < 0)
            goto tools_oom;
    }
    r = stream(p->seed, T_TOOL_SHOP);
    for (int i = 0; i < task_draws_small[T_TOOL_SHOP] * factor; i++) {
        uint64_t key;
        const char *tool;
        wb_reset(&x), wb_reset(&y), wb_reset(&args), wb_reset(&result);
        w_task_tool_shop(&r, &b->shop, &x, &tool, &args, &result, &y, &key);
        change_a_digit(&b->pref_rng, args.data, &wrong);
        if (!strstr(args.data, "order")) { /* an item: ask for another one */
            wb_reset(&wrong);
            wb_puts(&wrong, "{\"item\": ");
            wb_json_str(&wrong, w_things[w_pick_thing(&b->pref_rng, W_FOOD | W_TOY | W_THING)].en);
            wb_puts(&wrong, "}");
        }
        wb_reset(&guess);
        change_a_digit(&b->pref_rng, y.data, &guess);
        if (add_tool_example(b, T_TOOL_SHOP, x.data, tool, args.data, wrong.data, result.data, y.data, guess.data, key) < 0)
            goto tools_oom;
    }
    wb_free(&args), wb_free(&result), wb_free(&wrong), wb_free(&guess);
    for (int s = 0; s < 2; s++) flush_tool_sft(b, s); /* the exchanges left over */

    /* Pre-training text: full stories with their Korean rendering, 5% to val;
     * none equal to a summary input. */
    r = stream(p->seed, 1000);
    hset story_seen = {0};
    for (int i = 0; i < n_stories; i++) {
        w_plot plot;
        w_plot_random(&r, &plot);
        wb_reset(&x), wb_reset(&y);
        w_story_english(&r, &plot, cllm_rng_below(&r, 4) == 0, &x);
        uint64_t h = norm_hash(x.data);
        if (hset_has(&b->seen[T_SUMMARY], h)) continue;
        int added = hset_add(&story_seen, h);
        if (added < 0) {
            free(story_seen.keys);
            goto oom;
        }
        if (!added) continue;
        w_story_korean(&plot, &y);
        int split = cllm_mix64(h ^ p->seed) % 100 < 5;
        wb_printf(&b->text[split], "%s\n%s\n\n", x.data, y.data);
        b->n_text[split]++;
    }
    free(story_seen.keys);
    wb_free(&x), wb_free(&y);
    return builder_oom(b) ? -1 : 0;
tools_oom:
    wb_free(&args), wb_free(&result), wb_free(&wrong), wb_free(&guess);
oom:
    wb_free(&x), wb_free(&y);
    return -1;
}

/* The "conversations" task: what a chat assistant meets beyond one bare
 * question. Each record is 1-3 turns, each a question of the six tasks with
 * its answer, half of them after a system message, and the instructions of
 * the translation, summary and sentiment questions reworded half of the time
 * (among them the guide's Korean "다음 문장을 한국어로 번역하세요: ..."). The
 * turns of a split's conversations are that split's own examples, so no test
 * question is seen in training; the wordings are shared by all splits (the
 * task measures answering a known wording of a new question after other
 * turns and a system message, not understanding an unseen wording). The
 * reference is the last turn's answer. A summary question (a whole story)
 * only comes alone, so every conversation fits a 256-token row. */
#define CONVERSATIONS_PER_EXAMPLES 5 /* one conversation per 5 examples of the split */
static void build_conversations(builder *b, uint64_t seed) {
    static const char *const systems[] = {
        "You are a helpful assistant.", "You are a helpful assistant. Answer briefly.",
        "You are a friendly assistant for Maple Corner, a toy shop.",
        "You translate between English and Korean, and you answer short questions.",
        "당신은 친절한 도우미입니다."};
    static const char *const en_ko[] = {"Translate to Korean: ", "다음 문장을 한국어로 번역하세요: ",
                                        "Translate this into Korean: ", "Please translate into Korean: ",
                                        "How do you say this in Korean? "};
    static const char *const ko_en[] = {"Translate to English: ", "다음 문장을 영어로 번역하세요: ",
                                        "Translate this into English: ", "Please translate into English: ",
                                        "What does this mean in English? "};
    static const char *const summary[] = {"Summarize this story briefly.\n\n",
                                          "Give a one or two sentence summary of this story.\n\n",
                                          "What happens in this story? Answer in one or two sentences.\n\n"};
    static const char *const sentiment[] = {"Is the feeling of this text positive, negative or neutral?\n\n",
                                            "Positive, negative or neutral?\n\n",
                                            "What is the sentiment of this text (positive, negative or neutral)?\n\n"};
    for (int s = 0; s < SPLIT_COUNT; s++) {
        size_t n = b->n_items[s];
        if (n == 0) continue;
        cllm_rng r = stream(seed, 2000 + (uint64_t)s);
        wbuf *o = &b->conv[s];
        for (size_t c = 0; c < n / CONVERSATIONS_PER_EXAMPLES; c++) {
            int turns = 1 + (int)cllm_rng_below(&r, 3);
            wb_puts(o, "{\"task\": \"conversations\", \"metrics\": [\"chrf\", \"exact_match\"], \"messages\": [");
            if (cllm_rng_below(&r, 2)) {
                wb_puts(o, "{\"role\": \"system\", \"content\": ");
                wb_json_str(o, W_PICK(&r, systems));
                wb_puts(o, "}, ");
            }
            const char *ref = "";
            for (int t = 0; t < turns; t++) {
                const struct w_item *it = &b->items[s][cllm_rng_below(&r, n)];
                /* a story to summarize is long: it only comes alone, so a
                 * conversation fits a 256-token training row */
                for (int tries = 0; turns > 1 && it->task == T_SUMMARY && tries < 64; tries++)
                    it = &b->items[s][cllm_rng_below(&r, n)];
                int reword = (int)cllm_rng_below(&r, 2);
                const char *prefix = task_info[it->task].prompt;
                if (reword && it->task == T_EN_KO) prefix = W_PICK(&r, en_ko);
                else if (reword && it->task == T_KO_EN) prefix = W_PICK(&r, ko_en);
                else if (reword && it->task == T_SUMMARY) prefix = W_PICK(&r, summary);
                else if (reword && it->task == T_SENTIMENT) prefix = W_PICK(&r, sentiment);
                wbuf u = {0};
                wb_puts(&u, prefix);
                wb_puts(&u, it->input);
                wb_puts(o, t ? ", {\"role\": \"user\", \"content\": " : "{\"role\": \"user\", \"content\": ");
                wb_json_str(o, u.data ? u.data : "");
                wb_puts(o, "}, {\"role\": \"assistant\", \"content\": ");
                wb_json_str(o, it->ref);
                wb_puts(o, "}");
                if (u.oom) o->oom = 1;
                wb_free(&u);
                ref = it->ref;
            }
            wb_puts(o, "], \"reference\": ");
            wb_json_str(o, ref);
            wb_puts(o, "}\n");
            b->n_conv[s]++;
        }
    }
}

/* Next blank-line-separated block of text[*pos, len), including its
 * trailing blank line; returns its length (0 at the end). */
static size_t next_block(const char *text, size_t len, size_t *pos) {
    size_t start = *pos, i = start;
    while (i < len && !(text[i] == '\n' && i + 1 < len && text[i + 1] == '\n')) i++;
    i = i < len ? i + 2 : len;
    *pos = i;
    return i - start;
}

/* Interleaves the blocks of a and b in proportion (a Bresenham walk), so any
 * contiguous stretch of the result, such as the held-out tail a trainer's
 * --val-frac takes, has the same mix of stories and translation lines. */
static void interleave_blocks(wbuf *out, const wbuf *a, const wbuf *b) {
    size_t na = 0, nb = 0, pos = 0;
    while (next_block(a->data, a->len, &pos)) na++;
    pos = 0;
    while (next_block(b->data, b->len, &pos)) nb++;
    size_t pa = 0, pb = 0, ta = 0, tb = 0;
    while (ta < na || tb < nb) {
        int take_a = tb >= nb || (ta < na && ta * nb <= tb * na);
        size_t *p = take_a ? &pa : &pb;
        const wbuf *src = take_a ? a : b;
        size_t start = *p, n = next_block(src->data, src->len, p);
        wb_putn(out, src->data + start, n);
        if (n >= 1 && src->data[start + n - 1] != '\n') wb_puts(out, "\n");
        if (take_a) ta++;
        else tb++;
    }
}

/* Bilingual lines of the translation train (val) pairs ("English = 한국어",
 * in groups of eight), mixed into the train (val) pre-training text so the
 * model sees the -요 forms. */
static void append_bilingual(builder *b, cllm_error *err) {
    (void)err;
    for (int s = 0; s < 2; s++) {
        wbuf pairs = {0}, mixed = {0};
        const char *line = b->task[T_EN_KO][s].data;
        size_t n = 0;
        while (line && *line) {
            const char *end = strchr(line, '\n');
            /* user content after the prompt prefix, assistant content: parse
             * our own fixed layout (we wrote it just above). */
            const char *u = strstr(line, "Translate to Korean: ");
            const char *a = strstr(line, "\"role\": \"assistant\", \"content\": \"");
            if (u && a && a < end) {
                u += strlen("Translate to Korean: ");
                const char *ue = strchr(u, '"');
                a += strlen("\"role\": \"assistant\", \"content\": \"");
                const char *ae = strchr(a, '"');
                wb_putn(&pairs, u, (size_t)(ue - u));
                wb_puts(&pairs, " = ");
                wb_putn(&pairs, a, (size_t)(ae - a));
                wb_puts(&pairs, (++n % 8) ? "\n" : "\n\n");
            }
            line = end ? end + 1 : NULL;
        }
        if (n % 8) wb_puts(&pairs, "\n");
        interleave_blocks(&mixed, &b->text[s], &pairs);
        wb_free(&b->text[s]);
        wb_free(&pairs);
        b->text[s] = mixed;
    }
}

static cllm_status add_file(cllm_world *w, const char *name, wbuf *src, size_t records, cllm_error *err) {
    cllm_world_file *f = &w->files[w->n_files];
    snprintf(f->name, sizeof f->name, "%s", name);
    if (!src->data) {
        src->data = calloc(1, 1);
        if (!src->data) return cllm_error_set(err, CLLM_ERR_NOMEM, "world: out of memory");
    }
    f->data = src->data;
    f->len = src->len;
    f->n_records = records;
    memset(src, 0, sizeof *src); /* ownership moves to the world */
    w->n_files++;
    return CLLM_OK;
}

cllm_status cllm_world_build(const cllm_world_params *p, cllm_world *out, cllm_error *err) {
    memset(out, 0, sizeof *out);
    if (!p || (unsigned)p->size >= CLLM_WORLD_SIZE_COUNT)
        return cllm_error_set(err, CLLM_ERR_ARG, "world: size must be small or full");
    if (p->n_stories < 0 || p->n_stories > 10000000)
        return cllm_error_set(err, CLLM_ERR_ARG, "world: stories (%d) must be in [0, 10000000]", p->n_stories);
    builder *b = calloc(1, sizeof *b);
    if (!b) return cllm_error_set(err, CLLM_ERR_NOMEM, "world: out of memory");
    b->seed = p->seed;
    int max_files = 2 + T_COUNT * SPLIT_COUNT + SPLIT_COUNT + 2 + 5 + 1;
    out->files = calloc((size_t)max_files, sizeof *out->files);
    cllm_status st = CLLM_OK;
    if (!out->files || build(b, p) != 0) {
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "world: out of memory");
        goto done;
    }
    append_bilingual(b, err);
    build_conversations(b, p->seed);
    if (builder_oom(b)) {
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "world: out of memory");
        goto done;
    }
    char name[64];
    for (int s = 0; s < 2 && st == CLLM_OK; s++) {
        snprintf(name, sizeof name, "stories.%s.txt", split_name[s]);
        st = add_file(out, name, &b->text[s], b->n_text[s], err);
    }
    for (int t = 0; t < T_COUNT && st == CLLM_OK; t++)
        for (int s = 0; s < SPLIT_COUNT && st == CLLM_OK; s++) {
            snprintf(name, sizeof name, "%s.%s.jsonl", task_info[t].name, split_name[s]);
            st = add_file(out, name, &b->task[t][s], b->n_task[t][s], err);
        }
    for (int s = 0; s < SPLIT_COUNT && st == CLLM_OK; s++) {
        snprintf(name, sizeof name, "conversations.%s.jsonl", split_name[s]);
        st = add_file(out, name, &b->conv[s], b->n_conv[s], err);
    }
    for (int s = 0; s < 2 && st == CLLM_OK; s++) {
        snprintf(name, sizeof name, "preferences.%s.jsonl", split_name[s]);
        st = add_file(out, name, &b->pref[s], b->n_pref[s], err);
    }
    if (st == CLLM_OK) st = add_file(out, "tools.json", &b->toolbox, 2, err);
    if (st == CLLM_OK) st = add_file(out, "shop.json", &b->shop_table, 1, err);
    if (st == CLLM_OK) st = add_file(out, "tool_prompts.train.jsonl", &b->tool_prompts, b->n_tool_prompts, err);
    for (int s = 0; s < 2 && st == CLLM_OK; s++) {
        snprintf(name, sizeof name, "tool_sft.%s.jsonl", split_name[s]);
        st = add_file(out, name, &b->tool_sft[s], b->n_tool_sft[s], err);
    }
    if (st == CLLM_OK) {
        wbuf m = {0};
        wb_printf(&m, "{\n  \"generator\": \"cllm world\",\n  \"version\": %d,\n  \"seed\": %llu,\n  \"size\": \"%s\",\n",
                  WORLD_VERSION, (unsigned long long)p->seed, cllm_world_size_name(p->size));
        wb_puts(&m, "  \"tasks\": {");
        for (int t = 0; t < T_COUNT; t++)
            wb_printf(&m, "%s\"%s\": %s", t ? ", " : "", task_info[t].name, task_info[t].metrics);
        wb_puts(&m, ", \"conversations\": [\"chrf\", \"exact_match\"]},\n  \"files\": [\n");
        for (int i = 0; i < out->n_files; i++)
            wb_printf(&m, "    {\"name\": \"%s\", \"records\": %zu, \"bytes\": %zu}%s\n", out->files[i].name,
                      out->files[i].n_records, out->files[i].len, i + 1 < out->n_files ? "," : "");
        wb_puts(&m, "  ]\n}\n");
        if (m.oom) {
            wb_free(&m);
            st = cllm_error_set(err, CLLM_ERR_NOMEM, "world: out of memory");
        } else {
            st = add_file(out, "manifest.json", &m, 1, err);
        }
    }
done:
    builder_free(b);
    free(b);
    if (st != CLLM_OK) cllm_world_free(out);
    return st;
}

const cllm_world_file *cllm_world_find(const cllm_world *w, const char *name) {
    for (int i = 0; i < w->n_files; i++)
        if (!strcmp(w->files[i].name, name)) return &w->files[i];
    return NULL;
}

cllm_status cllm_world_write(const cllm_world *w, const char *dir, cllm_error *err) {
    cllm_status st = cllm_dir_ensure(dir, err);
    if (st == CLLM_OK) st = cllm_dir_check_writable(dir, err);
    for (int i = 0; i < w->n_files && st == CLLM_OK; i++) {
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, w->files[i].name) >= sizeof path)
            return cllm_error_set(err, CLLM_ERR_ARG, "output path '%s/%s' is too long", dir, w->files[i].name);
        st = cllm_file_write_atomic(path, w->files[i].data, w->files[i].len, err);
    }
    return st;
}

void cllm_world_free(cllm_world *w) {
    if (!w) return;
    for (int i = 0; i < w->n_files; i++) free(w->files[i].data);
    free(w->files);
    memset(w, 0, sizeof *w);
}

/*
 * test_world.c: the practice-world generator: Korean particles and formal
 * endings on a fixed word list, determinism in the seed, split disjointness
 * (no normalised input shared between train/val/test, nor between the test
 * split and any training file), file shapes, particle agreement in the
 * generated Korean for every lexicon word, arithmetic answers recomputed from
 * the question wording, and the guide's greeting among the training pairs.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cllm/core/hash.h"
#include "../src/data/world_internal.h"
#include "cllm/data/world.h"
#include "test.h"

static const char *particle(const char *w, cllm_ko_particle p) { return cllm_ko_particle_for(w, p); }

static void test_world_final_consonant(void) {
    CHECK(cllm_ko_final_consonant("책", strlen("책")) == 1, "책 ends in ㄱ (index 1)");
    CHECK(cllm_ko_final_consonant("물", strlen("물")) == 8, "물 ends in ㄹ (index 8)");
    CHECK(cllm_ko_final_consonant("집", strlen("집")) == 17, "집 ends in ㅂ (index 17)");
    CHECK(cllm_ko_final_consonant("사과", strlen("사과")) == 0, "사과 has no final consonant");
    CHECK(cllm_ko_final_consonant("가", 3) == 0 && cllm_ko_final_consonant("힣", 3) == 27, "U+AC00 and U+D7A3");
    CHECK(cllm_ko_final_consonant("abc", 3) == -1, "Latin is not Hangul");
    CHECK(cllm_ko_final_consonant("", 0) == -1, "empty");
    CHECK(cllm_ko_final_consonant("책", 2) == -1, "truncated UTF-8");
    CHECK(cllm_ko_final_consonant("ㄱ", strlen("ㄱ")) == -1, "a lone jamo is not a syllable");
}

static void test_world_korean_particles(void) {
    static const struct {
        const char *word, *topic, *subject, *object, *with, *toward, *copula;
    } cases[] = {
        {"책", "은", "이", "을", "과", "으로", "이에요"},     /* ㄱ */
        {"사과", "는", "가", "를", "와", "로", "예요"},       /* vowel */
        {"물", "은", "이", "을", "과", "로", "이에요"},       /* ㄹ takes 로 */
        {"집", "은", "이", "을", "과", "으로", "이에요"},     /* ㅂ */
        {"학교", "는", "가", "를", "와", "로", "예요"},
        {"연필", "은", "이", "을", "과", "로", "이에요"},     /* ㄹ */
        {"공원", "은", "이", "을", "과", "으로", "이에요"},   /* ㄴ */
        {"강아지", "는", "가", "를", "와", "로", "예요"},
        {"곰 인형", "은", "이", "을", "과", "으로", "이에요"}, /* last word decides */
        {"톰", "은", "이", "을", "과", "으로", "이에요"},
        {"미나", "는", "가", "를", "와", "로", "예요"},
        {"Tom", "는", "가", "를", "와", "로", "예요"},         /* not Hangul: after-vowel forms (documented) */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *w = cases[i].word;
        CHECK(!strcmp(particle(w, CLLM_KO_TOPIC), cases[i].topic), "%s topic: %s", w, particle(w, CLLM_KO_TOPIC));
        CHECK(!strcmp(particle(w, CLLM_KO_SUBJECT), cases[i].subject), "%s subject: %s", w, particle(w, CLLM_KO_SUBJECT));
        CHECK(!strcmp(particle(w, CLLM_KO_OBJECT), cases[i].object), "%s object: %s", w, particle(w, CLLM_KO_OBJECT));
        CHECK(!strcmp(particle(w, CLLM_KO_WITH), cases[i].with), "%s with: %s", w, particle(w, CLLM_KO_WITH));
        CHECK(!strcmp(particle(w, CLLM_KO_TOWARD), cases[i].toward), "%s toward: %s", w, particle(w, CLLM_KO_TOWARD));
        CHECK(!strcmp(particle(w, CLLM_KO_COPULA), cases[i].copula), "%s copula: %s", w, particle(w, CLLM_KO_COPULA));
    }
}

static void test_world_formal_present(void) {
    static const char *const cases[][2] = {
        {"가", "갑니다"}, {"먹", "먹습니다"}, {"만들", "만듭니다"}, {"하", "합니다"},
        {"좋아하", "좋아합니다"}, {"읽", "읽습니다"}, {"살", "삽니다"}, {"이", "입니다"},
    };
    char buf[64];
    cllm_error err;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(cllm_ko_formal_present(cases[i][0], buf, sizeof buf, &err) == CLLM_OK, "%s: %s", cases[i][0], err.msg);
        CHECK(!strcmp(buf, cases[i][1]), "%s -> %s, expected %s", cases[i][0], buf, cases[i][1]);
    }
    CHECK(cllm_ko_formal_present("go", buf, sizeof buf, &err) == CLLM_ERR_ARG, "Latin stem refused");
    CHECK(cllm_ko_formal_present("만들", buf, 8, &err) == CLLM_ERR_ARG, "small buffer refused");
}

static cllm_world build(uint64_t seed) {
    cllm_world_params p = cllm_world_default_params();
    p.seed = seed;
    cllm_world w;
    cllm_error err;
    cllm_status st = cllm_world_build(&p, &w, &err);
    CHECK(st == CLLM_OK, "build: %s", err.msg);
    return w;
}

static int same_world(const cllm_world *a, const cllm_world *b) {
    if (a->n_files != b->n_files) return 0;
    for (int i = 0; i < a->n_files; i++)
        if (strcmp(a->files[i].name, b->files[i].name) || a->files[i].len != b->files[i].len ||
            memcmp(a->files[i].data, b->files[i].data, a->files[i].len))
            return 0;
    return 1;
}

static void test_world_deterministic(void) {
    cllm_world a = build(7), b = build(7), c = build(8);
    CHECK(a.n_files == 37, "37 files, got %d", a.n_files);
    CHECK(same_world(&a, &b), "same seed gives identical bytes");
    int differ = 0;
    for (int i = 0; i < a.n_files && i < c.n_files; i++)
        if (strcmp(a.files[i].name, "manifest.json") && strcmp(a.files[i].name, "tools.json") && /* same tools */
            (a.files[i].len != c.files[i].len || memcmp(a.files[i].data, c.files[i].data, a.files[i].len)))
            differ++;
    CHECK(differ == a.n_files - 2, "a different seed changes every data file (%d of %d differ)", differ, a.n_files - 2);
    const cllm_world_file *st = cllm_world_find(&a, "stories.train.txt");
    CHECK(st && st->len > 1000000 && st->len < 2500000, "small pre-training text is 1-2.5 MB: %zu", st ? st->len : 0);
    CHECK(st && strstr(st->data, "습니다.") && strstr(st->data, "Once upon a time"), "English and Korean mixed");
    cllm_world_free(&a);
    cllm_world_free(&b);
    cllm_world_free(&c);
}

/* Same normalisation the generator documents: ASCII case folded, whitespace
 * collapsed, trimmed. Caller frees. */
static char *norm(const char *s) {
    char *o = malloc(strlen(s) + 1);
    size_t k = 0;
    int sp = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
            sp = k > 0;
            continue;
        }
        if (sp) o[k++] = ' ', sp = 0;
        o[k++] = (char)((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
    }
    o[k] = 0;
    return o;
}

/* Small string set for the tests (linear probing on FNV-1a). */
typedef struct {
    char **keys;
    size_t cap;
} sset;
static size_t fnv(const char *s) { return cllm_fnv1a64(s, strlen(s), CLLM_FNV_OFFSET); }
static void sset_add(sset *s, char *k) { /* takes ownership */
    size_t j = fnv(k) & (s->cap - 1);
    while (s->keys[j]) {
        if (!strcmp(s->keys[j], k)) {
            free(k);
            return;
        }
        j = (j + 1) & (s->cap - 1);
    }
    s->keys[j] = k;
}
static int sset_has(const sset *s, const char *k) {
    size_t j = fnv(k) & (s->cap - 1);
    while (s->keys[j]) {
        if (!strcmp(s->keys[j], k)) return 1;
        j = (j + 1) & (s->cap - 1);
    }
    return 0;
}
static void sset_free(sset *s) {
    for (size_t i = 0; i < s->cap; i++) free(s->keys[i]);
    free(s->keys);
}

/* Calls fn on every JSON line of a file; checks each parses. */
typedef void (*line_fn)(cJSON *obj, void *ctx);
static size_t each_line(const cllm_world_file *f, line_fn fn, void *ctx) {
    size_t n = 0;
    const char *p = f->data;
    while (*p) {
        const char *e = strchr(p, '\n');
        CHECK(e != NULL, "%s: last line ends with a newline", f->name);
        if (!e) break;
        cJSON *o = cJSON_ParseWithLength(p, (size_t)(e - p));
        CHECK(o != NULL, "%s line %zu parses", f->name, n + 1);
        if (o) fn(o, ctx);
        cJSON_Delete(o);
        n++;
        p = e + 1;
    }
    return n;
}

typedef struct {
    sset *set;
    const char *file;
    int bad;
    int collide; /* count of inputs already present in `other` */
    const sset *other;
} split_ctx;

static void collect_input(cJSON *o, void *vctx) {
    split_ctx *c = vctx;
    cJSON *task = cJSON_GetObjectItem(o, "task"), *msgs = cJSON_GetObjectItem(o, "messages");
    cJSON *ref = cJSON_GetObjectItem(o, "reference"), *metrics = cJSON_GetObjectItem(o, "metrics");
    cJSON *u = cJSON_GetArrayItem(msgs, 0), *a = cJSON_GetArrayItem(msgs, 1);
    const char *uc = cJSON_GetStringValue(cJSON_GetObjectItem(u, "content"));
    const char *ac = cJSON_GetStringValue(cJSON_GetObjectItem(a, "content"));
    int ok = cJSON_IsString(task) && cJSON_IsArray(metrics) && cJSON_GetArraySize(metrics) >= 1 &&
             cJSON_GetArraySize(msgs) == 2 &&
             !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(u, "role")), "user") &&
             !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(a, "role")), "assistant") && uc && ac &&
             cJSON_IsString(ref) && !strcmp(ac, ref->valuestring) && *ac;
    if (!ok) {
        c->bad++;
        return;
    }
    char *k = norm(uc);
    if (c->other && sset_has(c->other, k)) c->collide++;
    if (c->set) sset_add(c->set, k);
    else free(k);
}

static void test_world_splits_disjoint(void) {
    cllm_world w = build(3);
    static const char *const tasks[] = {"translate_en_ko", "translate_ko_en", "summary", "sentiment", "faq", "arithmetic"};
    static const char *const splits[] = {"train", "val", "test"};
    for (size_t t = 0; t < 6; t++) {
        sset seen[3];
        for (int s = 0; s < 3; s++) seen[s].cap = 1 << 15, seen[s].keys = calloc(seen[s].cap, sizeof(char *));
        for (int s = 0; s < 3; s++) {
            char name[64];
            snprintf(name, sizeof name, "%s.%s.jsonl", tasks[t], splits[s]);
            const cllm_world_file *f = cllm_world_find(&w, name);
            CHECK(f && f->n_records >= 50, "%s has examples (%zu)", name, f ? f->n_records : 0);
            if (!f) continue;
            split_ctx c = {.set = &seen[s], .file = name};
            size_t n = each_line(f, collect_input, &c);
            CHECK(n == f->n_records, "%s: %zu lines, manifest says %zu", name, n, f->n_records);
            CHECK(c.bad == 0, "%s: %d lines with a wrong shape", name, c.bad);
        }
        for (int s = 0; s < 3; s++)
            for (int r = s + 1; r < 3; r++) {
                int shared = 0;
                for (size_t i = 0; i < seen[s].cap; i++)
                    if (seen[s].keys[i] && sset_has(&seen[r], seen[s].keys[i])) shared++;
                CHECK(shared == 0, "%s: %s and %s share %d inputs", tasks[t], splits[s], splits[r], shared);
            }
        /* The preference pairs come from train/val only: no prompt is a test input. */
        for (int ps = 0; ps < 2; ps++) {
            char name[64];
            snprintf(name, sizeof name, "preferences.%s.jsonl", splits[ps]);
            const cllm_world_file *f = cllm_world_find(&w, name);
            const char *p = f ? f->data : "";
            int leaked = 0, same = 0;
            while (*p) {
                const char *e = strchr(p, '\n');
                cJSON *o = cJSON_ParseWithLength(p, (size_t)(e - p));
                const char *task = cJSON_GetStringValue(cJSON_GetObjectItem(o, "task"));
                const char *prompt = cJSON_GetStringValue(cJSON_GetObjectItem(o, "prompt"));
                const char *ch = cJSON_GetStringValue(cJSON_GetObjectItem(o, "chosen"));
                const char *rj = cJSON_GetStringValue(cJSON_GetObjectItem(o, "rejected"));
                if (task && prompt && ch && rj && !strcmp(task, tasks[t])) {
                    char *k = norm(prompt);
                    leaked += sset_has(&seen[2], k);
                    free(k);
                    same += !strcmp(ch, rj);
                }
                cJSON_Delete(o);
                p = e + 1;
            }
            CHECK(leaked == 0, "%s: %d %s prompts are test inputs", name, leaked, tasks[t]);
            CHECK(same == 0, "%s: %d pairs with chosen == rejected", name, same);
        }
        for (int s = 0; s < 3; s++) sset_free(&seen[s]);
    }
    /* The test split never appears in the pre-training text: no summary test
     * story and no translation test pair. */
    const cllm_world_file *text = cllm_world_find(&w, "stories.train.txt");
    const cllm_world_file *sum = cllm_world_find(&w, "summary.test.jsonl");
    const cllm_world_file *tr = cllm_world_find(&w, "translate_en_ko.test.jsonl");
    int leaks = 0;
    for (const cllm_world_file *f = sum; f; f = (f == sum ? tr : NULL)) {
        const char *p = f->data;
        while (*p) {
            const char *e = strchr(p, '\n');
            cJSON *o = cJSON_ParseWithLength(p, (size_t)(e - p));
            const char *u = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "messages"), 0), "content"));
            const char *ref = cJSON_GetStringValue(cJSON_GetObjectItem(o, "reference"));
            if (f == sum) {
                const char *story = strstr(u, "\n\n");
                leaks += story && strstr(text->data, story + 2) != NULL;
            } else {
                char line[1024];
                snprintf(line, sizeof line, "%s = %s\n", u + strlen("Translate to Korean: "), ref);
                leaks += strstr(text->data, line) != NULL;
            }
            cJSON_Delete(o);
            p = e + 1;
        }
    }
    CHECK(leaks == 0, "%d test examples found in stories.train.txt", leaks);
    cllm_world_free(&w);
}

/* Every lexicon word followed by the WRONG form of a particle must never
 * appear in the generated Korean (e.g. "톰는", "미나을", "마을으로"). */
static void test_world_generated_particles_agree(void) {
    cllm_world w = build(5);
    const char *files[] = {"stories.train.txt", "translate_en_ko.train.jsonl", "translate_ko_en.test.jsonl"};
    static const char *const pairs[][2] = {{"은", "는"}, {"이", "가"}, {"을", "를"}, {"과", "와"}, {"이에요", "예요"}};
    int checked = 0, wrong = 0, right = 0;
    for (int wi = 0; wi < w_n_people + w_n_things + w_n_places; wi++) {
        const char *word = wi < w_n_people ? w_people[wi].ko
                           : wi < w_n_people + w_n_things ? w_things[wi - w_n_people].ko
                                                          : w_places[wi - w_n_people - w_n_things].ko;
        int jong = cllm_ko_final_consonant(word, strlen(word));
        for (int pi = 0; pi < 6; pi++) {
            const char *bad;
            if (pi < 5) bad = pairs[pi][jong > 0 ? 1 : 0];
            else bad = (jong > 0 && jong != 8) ? "로 " : "으로"; /* toward */
            char needle[96];
            snprintf(needle, sizeof needle, " %s%s", word, bad);
            for (size_t f = 0; f < 3; f++) {
                const cllm_world_file *wf = cllm_world_find(&w, files[f]);
                const char *hit = strstr(wf->data, needle);
                if (pi < 5) { /* the search itself works: correct forms are found */
                    char good[96];
                    snprintf(good, sizeof good, " %s%s", word, pairs[pi][jong > 0 ? 0 : 1]);
                    right += strstr(wf->data, good) != NULL;
                }
                if (hit) {
                    wrong++;
                    fprintf(stderr, "  wrong particle: '%s' in %s\n", needle, files[f]);
                }
                checked++;
            }
        }
    }
    CHECK(wrong == 0, "%d wrong particle uses (of %d checks)", wrong, checked);
    CHECK(right > 100, "correct particle uses found: %d", right);
    cllm_world_free(&w);
}

/* Recomputes an arithmetic answer from the question text alone, by its
 * wording: the numbers in order and the operation its words name. -1 when
 * the wording is not recognised. */
static int solve_arithmetic(const char *q) {
    const char *lst = strstr(q, "appear in this list: ");
    if (!strncmp(q, "How many times does the word \"", 30) && lst) {
        const char *w = q + 30, *we = strchr(w, '"');
        size_t wl = (size_t)(we - w);
        int count = 0;
        for (const char *p = lst + strlen("appear in this list: "); *p && *p != '?';) {
            size_t n = strcspn(p, ",?");
            if (n == wl && !strncmp(p, w, wl)) count++;
            p += n;
            if (*p == ',') p += 2;
        }
        return count;
    }
    int num[2], n = 0;
    for (const char *p = q; *p && n < 3; p++)
        if (*p >= '0' && *p <= '9' && (p == q || p[-1] < '0' || p[-1] > '9')) {
            if (n < 2) num[n] = atoi(p);
            n++;
        }
    if (n != 2) return -1;
    int a = num[0], b = num[1];
    if (strstr(q, "Subtract ") || strstr(q, "Take ")) return b - a; /* "Subtract a from b" */
    if (strstr(q, " - ") || strstr(q, "minus") || strstr(q, " gave ")) return a - b;
    if (strstr(q, " + ") || strstr(q, "plus") || strstr(q, "sum of") || strstr(q, "add") || strstr(q, "Add") ||
        strstr(q, " more."))
        return a + b;
    return -1;
}

static void test_world_arithmetic_answers_correct(void) {
    cllm_rng rng;
    cllm_rng_seed(&rng, 7);
    wbuf q = {0};
    int wrong = 0, unknown = 0, bare = 0, counting = 0;
    for (int i = 0; i < 3000; i++) {
        int answer;
        wb_reset(&q);
        w_task_arithmetic(&rng, &q, &answer);
        int want = solve_arithmetic(q.data);
        if (want < 0) {
            if (unknown++ < 3) fprintf(stderr, "  unrecognised question: %s\n", q.data);
            continue;
        }
        if (want != answer && wrong++ < 3) fprintf(stderr, "  %s -> %d, expected %d\n", q.data, answer, want);
        bare += !strncmp(q.data, "What is ", 8) && strlen(q.data) < 24;
        counting += !strncmp(q.data, "How many times", 14);
        CHECK(answer >= 0 && answer <= 40, "answer %d in 0..40: %s", answer, q.data);
    }
    wb_free(&q);
    CHECK(unknown == 0, "%d questions with an unrecognised wording", unknown);
    CHECK(wrong == 0, "%d wrong answers of 3000", wrong);
    CHECK(bare > 100 && counting > 300, "bare sums (%d) and counting (%d) both drawn", bare, counting);
}

static void test_world_guide_greeting_in_train(void) {
    cllm_world w = build(1);
    const cllm_world_file *f = cllm_world_find(&w, "translate_en_ko.train.jsonl");
    CHECK(f && strstr(f->data, "\"Translate to Korean: Hello, how are you?\"}, {\"role\": \"assistant\", \"content\": "
                                "\"안녕하세요, 어떻게 지내세요?\"}"),
          "the guide's example is a training pair");
    /* Small talk beyond the fixed phrases: other greetings with the same question. */
    int variants = 0;
    for (int s = 0; s < 3 && f; s++) {
        static const char *const names[] = {"translate_en_ko.train.jsonl", "translate_en_ko.val.jsonl",
                                            "translate_en_ko.test.jsonl"};
        const cllm_world_file *g = cllm_world_find(&w, names[s]);
        for (const char *p = g ? g->data : ""; (p = strstr(p, ", how are you?\"}")); p++) variants++;
    }
    CHECK(variants >= 3, "greetings vary (%d pairs ending in \", how are you?\")", variants);
    cllm_world_free(&w);
}

static void test_world_write_and_bad_args(void) {
    cllm_world_params p = cllm_world_default_params();
    p.n_stories = 20;
    cllm_world w;
    cllm_error err;
    CHECK(cllm_world_build(&p, &w, &err) == CLLM_OK, "%s", err.msg);
    char dir[] = "/tmp/cllm-test-world.XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char sub[128];
    snprintf(sub, sizeof sub, "%s/out", dir);
    CHECK(cllm_world_write(&w, sub, &err) == CLLM_OK, "write: %s", err.msg);
    char path[256];
    snprintf(path, sizeof path, "%s/manifest.json", sub);
    FILE *fp = fopen(path, "rb");
    CHECK(fp != NULL, "manifest written");
    if (fp) fclose(fp);
    snprintf(path, sizeof path, "%s/missing/deeper", dir);
    CHECK(cllm_world_write(&w, path, &err) != CLLM_OK && strstr(err.msg, "missing"), "missing parent refused: %s", err.msg);
    for (int i = 0; i < w.n_files; i++) {
        snprintf(path, sizeof path, "%s/%s", sub, w.files[i].name);
        remove(path);
    }
    rmdir(sub);
    rmdir(dir);
    cllm_world_free(&w);
    p.size = (cllm_world_size)7;
    CHECK(cllm_world_build(&p, &w, &err) == CLLM_ERR_ARG, "bad size refused");
    p.size = CLLM_WORLD_SMALL;
    p.n_stories = -1;
    CHECK(cllm_world_build(&p, &w, &err) == CLLM_ERR_ARG, "negative story count refused");
    CHECK(cllm_world_size_parse("full") == CLLM_WORLD_FULL && cllm_world_size_parse("huge") == -1, "size names");
}

/* conversations.*.jsonl (issue 23 item 4): system messages, several turns,
 * reworded instructions (the guide's Korean one among them); every record
 * alternates user/assistant after an optional system message, ends with the
 * assistant, whose answer is the reference; a split's turns are its own
 * examples (the last answer of every test conversation answers a test
 * question of its task). */
typedef struct {
    int bad, with_system, multi_turn, korean_instruction;
} conv_ctx;

static void check_conversation(cJSON *o, void *ctx) {
    conv_ctx *c = ctx;
    const cJSON *task = cJSON_GetObjectItemCaseSensitive(o, "task");
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(o, "messages");
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(o, "reference");
    int n = cJSON_GetArraySize(msgs), first = 0, users = 0, ok = cJSON_IsString(task) && cJSON_IsString(ref) && n >= 2;
    if (ok && strcmp(task->valuestring, "conversations") != 0) ok = 0;
    for (int i = 0; ok && i < n; i++) {
        const cJSON *m = cJSON_GetArrayItem(msgs, i);
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role"), *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsString(role) || !cJSON_IsString(content)) { ok = 0; break; }
        if (i == 0 && !strcmp(role->valuestring, "system")) { first = 1, c->with_system++; continue; }
        const char *want = (i - first) % 2 ? "assistant" : "user";
        if (strcmp(role->valuestring, want)) ok = 0;
        if (!strcmp(want, "user")) users++;
        if (strstr(content->valuestring, "다음 문장을 한국어로 번역하세요: ")) c->korean_instruction++;
        if (i == n - 1 && (strcmp(want, "assistant") || strcmp(content->valuestring, ref->valuestring))) ok = 0;
    }
    if (users >= 2) c->multi_turn++;
    if (!ok) c->bad++;
}

static void test_world_conversations(void) {
    cllm_world w = build(3);
    static const char *const splits[] = {"train", "val", "test"};
    for (int s = 0; s < 3; s++) {
        char name[64];
        snprintf(name, sizeof name, "conversations.%s.jsonl", splits[s]);
        const cllm_world_file *f = cllm_world_find(&w, name);
        CHECK(f && f->n_records >= 50, "%s has conversations (%zu)", name, f ? f->n_records : 0);
        if (!f) continue;
        conv_ctx c = {0};
        size_t n = each_line(f, check_conversation, &c);
        CHECK(n == f->n_records, "%s: %zu lines, manifest says %zu", name, n, f->n_records);
        CHECK(c.bad == 0, "%s: %d records with a wrong shape", name, c.bad);
        CHECK(c.with_system > 0 && (size_t)c.with_system < n, "%s: some with a system message (%d of %zu)", name,
              c.with_system, n);
        CHECK(c.multi_turn > 0, "%s: some with several turns (%d)", name, c.multi_turn);
        if (s == 0) CHECK(c.korean_instruction > 0, "%s: the Korean instruction occurs (%d)", name, c.korean_instruction);
    }
    /* no test question in training: each test conversation's last answer's question is a test example */
    const cllm_world_file *conv = cllm_world_find(&w, "conversations.test.jsonl");
    const cllm_world_file *train = cllm_world_find(&w, "translate_en_ko.train.jsonl");
    CHECK(conv && train, "files present");
    if (conv && train) {
        int leaked = 0, checked = 0;
        for (const char *p = conv->data; (p = strstr(p, "Translate to Korean: ")) != NULL; p++) {
            const char *e = strchr(p, '"');
            char needle[600];
            if (!e || e - p >= (long)sizeof needle - 2) continue;
            snprintf(needle, sizeof needle, "%.*s\"", (int)(e - p), p);
            checked++;
            leaked += strstr(train->data, needle) != NULL;
        }
        CHECK(checked > 0 && leaked == 0, "test conversations ask no training translation (%d of %d)", leaked, checked);
    }
    cllm_world_free(&w);
}

int main(void) {
    TEST_RUN(test_world_final_consonant);
    TEST_RUN(test_world_korean_particles);
    TEST_RUN(test_world_formal_present);
    TEST_RUN(test_world_deterministic);
    TEST_RUN(test_world_splits_disjoint);
    TEST_RUN(test_world_generated_particles_agree);
    TEST_RUN(test_world_write_and_bad_args);
    TEST_RUN(test_world_arithmetic_answers_correct);
    TEST_RUN(test_world_guide_greeting_in_train);
    TEST_RUN(test_world_conversations);
    return test_finish();
}

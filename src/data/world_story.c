/*
 * world_story.c: the story grammar. A plot (who, where, what happens) is
 * drawn at random; the English story is written from sentence templates,
 * each slot choosing one of several variants, with agreement handled by the
 * placeholders (he/she, him/her, his/her, a/an, plurals, past tense is
 * fixed in the templates). The summary is computed from the plot alone, so
 * it is exact. The Korean rendering states the plot's main events in the
 * formal -습니다 style with particles chosen by cllm_ko_particle_for.
 * Does not write files or choose splits (world.c).
 */
#include <string.h>

#include "world_internal.h"

static const char *const scary_en[] = {"the dark", "a big dog", "the loud thunder", "the tall slide", "the deep water",
                                       "a big spider"};
static const char *const scary_ko[] = {"어둠", "큰 개", "천둥", "높은 미끄럼틀", "깊은 물", "큰 거미"};
static const int trip_places[] = {9, 4, 14, 3, 15, 0, 7}; /* zoo, beach, farm, forest, lake, park, river */

void w_plot_random(cllm_rng *rng, w_plot *p) {
    memset(p, 0, sizeof *p);
    p->kind = (int)cllm_rng_below(rng, W_PLOT_COUNT);
    p->hero = (int)cllm_rng_below(rng, (uint64_t)w_n_people);
    do p->friend = (int)cllm_rng_below(rng, (uint64_t)w_n_people);
    while (p->friend == p->hero);
    p->place = (int)cllm_rng_below(rng, (uint64_t)w_n_places);
    p->adj = (int)cllm_rng_below(rng, (uint64_t)w_n_adjs);
    p->trait = (int)cllm_rng_below(rng, (uint64_t)w_n_traits);
    p->count = 2 + (int)cllm_rng_below(rng, 5);
    switch (p->kind) {
    case W_PLOT_LOST: p->thing = w_pick_thing(rng, W_TOY | W_THING | W_READ); break;
    case W_PLOT_SHARE: p->thing = w_pick_thing(rng, W_FOOD); break;
    case W_PLOT_FEAR:
        p->thing = w_pick_thing(rng, W_TOY);
        p->aux = (int)cllm_rng_below(rng, (uint64_t)W_COUNT(scary_en));
        break;
    case W_PLOT_MAKE: p->thing = w_pick_thing(rng, W_MADE); break;
    case W_PLOT_QUARREL: p->thing = w_pick_thing(rng, W_TOY); break;
    default:
        p->thing = w_pick_thing(rng, W_ANIMAL);
        p->place = trip_places[cllm_rng_below(rng, (uint64_t)W_COUNT(trip_places))];
        p->aux = (int)cllm_rng_below(rng, 2); /* 0 mom, 1 dad */
        break;
    }
}

/* ---- template expansion ----------------------------------------------- */

/* Writes the value of placeholder key (lowercase) into out. */
static void value(const w_plot *p, const char *key, size_t klen, wbuf *out) {
    const w_person *h = &w_people[p->hero], *f = &w_people[p->friend];
    const w_thing *t = &w_things[p->thing];
    const char *adj = w_adjs[p->adj].en;
#define KEY(s) (klen == sizeof(s) - 1 && !memcmp(key, s, klen))
    if (KEY("h")) wb_puts(out, h->en);
    else if (KEY("f")) wb_puts(out, f->en);
    else if (KEY("he")) wb_puts(out, h->female ? "she" : "he");
    else if (KEY("him")) wb_puts(out, h->female ? "her" : "him");
    else if (KEY("his")) wb_puts(out, h->female ? "her" : "his");
    else if (KEY("kid")) wb_puts(out, h->female ? "girl" : "boy");
    else if (KEY("fhe")) wb_puts(out, f->female ? "she" : "he");
    else if (KEY("fhim")) wb_puts(out, f->female ? "her" : "him");
    else if (KEY("fhis")) wb_puts(out, f->female ? "her" : "his");
    else if (KEY("fkid")) wb_puts(out, f->female ? "girl" : "boy");
    else if (KEY("place")) wb_puts(out, w_places[p->place].en);
    else if (KEY("at")) wb_puts(out, w_places[p->place].at);
    else if (KEY("thing")) wb_puts(out, t->en);
    else if (KEY("things")) wb_puts(out, t->en_pl);
    else if (KEY("a_thing")) wb_printf(out, "%s %s", w_article(t->en), t->en);
    else if (KEY("adj_thing")) wb_printf(out, "%s %s", adj, t->en);
    else if (KEY("a_adj_thing")) wb_printf(out, "%s %s %s", w_article(adj), adj, t->en);
    else if (KEY("trait")) wb_puts(out, w_traits[p->trait]);
    else if (KEY("a_trait")) wb_printf(out, "%s %s", w_article(w_traits[p->trait]), w_traits[p->trait]);
    else if (KEY("n")) wb_puts(out, w_en_numbers[p->count]);
    else if (KEY("scary")) wb_puts(out, scary_en[p->aux]);
    else if (KEY("parent")) wb_puts(out, p->aux ? "dad" : "mom");
    else CLLM_ASSERT(!"unknown story placeholder");
#undef KEY
}

/* Expands {key} placeholders; a key written with a capital first letter
 * ({He}) capitalises the value. */
static void expand(const w_plot *p, const char *tmpl, wbuf *out) {
    const char *s = tmpl;
    while (*s) {
        const char *open = strchr(s, '{');
        if (!open) {
            wb_puts(out, s);
            return;
        }
        wb_putn(out, s, (size_t)(open - s));
        const char *close = strchr(open, '}');
        CLLM_ASSERT(close);
        char key[32];
        size_t klen = (size_t)(close - open - 1);
        CLLM_ASSERT(klen > 0 && klen < sizeof key);
        for (size_t i = 0; i < klen; i++) {
            char c = open[1 + i];
            key[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
        }
        size_t at = out->len;
        value(p, key, klen, out);
        if (open[1] >= 'A' && open[1] <= 'Z') wb_capitalize_at(out, at);
        s = close + 1;
    }
}

/* One sentence slot: picks a variant and appends it with a separating space. */
#define SAY(rng, p, out, ...)                                                    \
    do {                                                                         \
        static const char *const v_[] = {__VA_ARGS__};                           \
        if ((out)->len) wb_putn((out), " ", 1);                                  \
        expand((p), v_[cllm_rng_below((rng), sizeof v_ / sizeof v_[0])], (out)); \
    } while (0)

static void opening(cllm_rng *rng, const w_plot *p, int brief, wbuf *out) {
    SAY(rng, p, out, "Once upon a time, there was {a_trait} little {kid} named {H}.",
        "There once was {a_trait} {kid} called {H}.", "{H} was {a_trait} {kid} who lived in a small village.",
        "Once there was a little {kid} named {H}. {He} was very {trait}.");
    if (!brief)
        SAY(rng, p, out, "{He} liked to play outside every day.", "Everyone said that {he} was very {trait}.",
            "{He} had a big smile and a lot of friends.", "{He} loved to sing songs in the morning.");
}

static void closing(cllm_rng *rng, const w_plot *p, wbuf *out) {
    SAY(rng, p, out, "From that day on, {H} and {F} were best friends.",
        "That night, {H} went to bed with a big smile.", "It was a very good day.",
        "{H} knew that {he} would remember this day for a long time.");
}

void w_story_english(cllm_rng *rng, const w_plot *p, int brief, wbuf *out) {
    wbuf s = {0};
    opening(rng, p, brief, &s);
    switch (p->kind) {
    case W_PLOT_LOST:
        SAY(rng, p, &s, "One day, {H} went to the {place}.", "One sunny morning, {H} walked to the {place}.",
            "One afternoon, {H} ran to the {place} to play.");
        SAY(rng, p, &s, "There {he} saw {F}, who looked very sad.", "{At} the {place}, {he} met a {fkid} named {F}. {F} was crying.",
            "Near the {place}, {H} found {F} sitting alone and looking sad.");
        SAY(rng, p, &s, "{F} had lost {fhis} {adj_thing}.", "\"I lost my {adj_thing},\" said {F}.",
            "\"I can't find my {adj_thing},\" {F} said with tears in {fhis} eyes.");
        SAY(rng, p, &s, "\"Don't worry, I will help you,\" said {H}.", "{H} wanted to help {fhim}.",
            "\"Let's look for it together,\" {H} said.");
        if (!brief)
            SAY(rng, p, &s, "They looked under the trees and behind the rocks.", "They searched high and low.",
                "They looked everywhere, but at first they could not find it.");
        SAY(rng, p, &s, "At last, {H} found the {thing} near a big rock.", "Then {H} saw the {thing} under a bench.",
            "Finally, {H} found the {thing} behind a bush.", "Soon {H} spotted the {thing} in the tall grass.");
        SAY(rng, p, &s, "{F} was so happy. \"Thank you, {H}!\" {fhe} said.", "{F} was very happy and hugged {H}.",
            "{F} jumped for joy and thanked {H}.");
        break;
    case W_PLOT_SHARE:
        SAY(rng, p, &s, "One day, {H} took {n} {things} to the {place}.",
            "One morning, {H}'s mom gave {him} {n} {things}, and {he} went to the {place}.",
            "{H} packed {n} {things} in {his} bag and went to the {place}.");
        SAY(rng, p, &s, "{At} the {place}, {he} saw {F} sitting alone.", "There {he} met {F}, who looked hungry.",
            "{At} the {place}, {H} met {F}.");
        SAY(rng, p, &s, "{F} had no {things}.", "\"I forgot my lunch,\" said {F} sadly.",
            "{F} looked at the {things} and said nothing.");
        if (!brief) SAY(rng, p, &s, "{H} thought for a moment.", "{H} looked at {his} {things}.", "{H} smiled at {F}.");
        SAY(rng, p, &s, "Then {he} gave {F} some of {his} {things}.",
            "\"Would you like to share my {things}?\" asked {H}.", "{H} decided to share {his} {things} with {F}.");
        SAY(rng, p, &s, "{F} smiled. \"Thank you, you are very kind!\"", "{F} was very happy and said thank you.",
            "\"Thank you so much!\" said {F} happily.");
        SAY(rng, p, &s, "They ate the {things} together and laughed.", "They shared the {things} and felt happy.",
            "Both of them were happy as they ate.");
        break;
    case W_PLOT_FEAR:
        SAY(rng, p, &s, "One evening, {H} was {at} the {place} with {F}.", "One day, {H} and {F} went to the {place}.",
            "{H} and {F} were playing {at} the {place}.");
        SAY(rng, p, &s, "Suddenly, {H} saw {scary} and felt scared.", "{H} was afraid of {scary}.",
            "Then {H} noticed {scary}, and {he} was very scared.");
        if (!brief)
            SAY(rng, p, &s, "{He} did not want to go near it.", "{His} hands began to shake.",
                "{He} wanted to run home.");
        SAY(rng, p, &s, "{F} held {his} hand. \"Don't be afraid. I am here with you,\" {fhe} said.",
            "\"It's okay,\" said {F}. \"I will stay with you.\"", "{F} smiled and said, \"You can do it. I will help you.\"");
        SAY(rng, p, &s, "{H} took a deep breath.", "{H} counted to three.", "{H} held {F}'s hand tightly.");
        SAY(rng, p, &s, "Step by step, {he} felt braver.", "Soon {he} was not scared anymore.",
            "After a while, {he} felt brave again.");
        SAY(rng, p, &s, "\"Thank you, {F},\" said {H}. \"You are a good friend.\"", "{H} thanked {F} for {fhis} help.",
            "{H} smiled at {F}. {He} felt brave and happy.");
        break;
    case W_PLOT_MAKE:
        SAY(rng, p, &s, "One day, {H} and {F} wanted to make {a_thing}.",
            "{H} had an idea. \"Let's make {a_thing}!\" {he} said to {F}.",
            "{H} and {F} decided to make {a_thing} together.");
        SAY(rng, p, &s, "They went to the {place} and worked hard.", "They sat down {at} the {place} and started to work.",
            "{At} the {place}, they got everything they needed.");
        if (!brief)
            SAY(rng, p, &s, "{H} did one part, and {F} did the other.", "They worked and worked all afternoon.",
                "It was a lot of fun.");
        SAY(rng, p, &s, "But then, the {thing} broke!", "Oh no! The {thing} fell down and broke.",
            "Suddenly, the {thing} broke into pieces.");
        SAY(rng, p, &s, "{F} felt sad.", "{H} was sad for a moment.", "They both looked at the {thing} and felt sad.");
        SAY(rng, p, &s, "\"We can fix it,\" said {H}.", "\"Let's try again,\" said {F}.",
            "\"Don't give up,\" said {H}.");
        SAY(rng, p, &s, "They worked together again, and soon the {thing} was even better than before.",
            "Together, they fixed the {thing}, and it looked wonderful.", "They fixed the {thing} together.");
        SAY(rng, p, &s, "They were very proud.", "{H} and {F} were proud of their work.",
            "They smiled because they did it together.");
        break;
    case W_PLOT_QUARREL:
        SAY(rng, p, &s, "One day, {H} and {F} were playing {at} the {place}.", "{H} and {F} went to the {place} to play.",
            "One afternoon, {H} and {F} met {at} the {place}.");
        SAY(rng, p, &s, "They both wanted the same {adj_thing}.", "There was only one {adj_thing}, and they both wanted it.",
            "They saw {a_adj_thing}, and they both wanted to play with it.");
        SAY(rng, p, &s, "\"It is mine!\" said {H}. \"No, it is mine!\" said {F}.",
            "{H} pulled the {thing}, and {F} pulled it too.", "\"Give it to me!\" shouted {F}.");
        SAY(rng, p, &s, "They both got angry.", "Soon they were both angry and sad.", "They started to argue.");
        if (!brief) SAY(rng, p, &s, "Then {H} saw that {F} was sad.", "Then {H} stopped and thought.", "They sat down.");
        SAY(rng, p, &s, "\"I am sorry,\" said {H}. \"We can take turns.\"",
            "{H} said sorry, and {F} said sorry too.", "\"I'm sorry,\" said {F}. \"Let's take turns.\"");
        SAY(rng, p, &s, "They took turns with the {thing} and had lots of fun.",
            "After that, they took turns and played happily.", "They took turns, and they were friends again.");
        break;
    default: /* W_PLOT_TRIP */
        SAY(rng, p, &s, "One day, {H} went to the {place} with {his} {parent}.",
            "On Saturday, {H}'s {parent} took {him} to the {place}.", "{H} and {his} {parent} went to the {place}.");
        if (!brief)
            SAY(rng, p, &s, "The sun was warm and the sky was blue.", "{H} was very excited.",
                "{H} wore {his} favorite hat.");
        SAY(rng, p, &s, "There {he} saw {n} {things}.", "{At} the {place}, {H} saw {n} {things}.",
            "{H} counted {n} {things} {at} the {place}.");
        SAY(rng, p, &s, "\"Look!\" said {H}. \"They are so cute!\"", "{H} laughed and waved at the {things}.",
            "{H} watched the {things} for a long time.");
        SAY(rng, p, &s, "Then it started to rain.", "Suddenly, dark clouds came, and it began to rain.",
            "After a while, it started to rain.");
        SAY(rng, p, &s, "{H} and {his} {parent} went home happy.", "They went home, and {H} was happy.",
            "They ran home, laughing in the rain.");
        break;
    }
    if (!brief) closing(rng, p, &s);
    wb_putn(out, s.data ? s.data : "", s.len);
    if (s.oom) out->oom = 1;
    wb_free(&s);
}

void w_story_summary(const w_plot *p, wbuf *out) {
    static const char *const tmpl[W_PLOT_COUNT] = {
        "{H} helped {F} find {fhis} lost {adj_thing} {at} the {place}. {F} was very happy.",
        "{H} shared {his} {things} with {F} {at} the {place}, and they both felt happy.",
        "{H} was scared of {scary} {at} the {place}, but {F} helped {him} feel brave.",
        "{H} and {F} made {a_thing} {at} the {place}, and when it broke they fixed it together.",
        "{H} and {F} argued over {a_adj_thing} {at} the {place}, but they said sorry and took turns.",
        "{H} went to the {place} with {his} {parent} and saw {n} {things}. When it started to rain, they went home happy.",
    };
    expand(p, tmpl[p->kind], out);
}

/* Korean: one line per main event, formal style. */
static void ko_formal(wbuf *out, const char *stem) {
    char buf[128];
    cllm_error err;
    CLLM_ASSERT(cllm_ko_formal_present(stem, buf, sizeof buf, &err) == CLLM_OK);
    wb_puts(out, buf);
}

void w_story_korean(const w_plot *p, wbuf *out) {
    const char *h = w_people[p->hero].ko, *f = w_people[p->friend].ko;
    const char *place = w_places[p->place].ko, *thing = w_things[p->thing].ko, *adj = w_adjs[p->adj].ko;
    switch (p->kind) {
    case W_PLOT_LOST:
        wb_ko(out, h, CLLM_KO_TOPIC), wb_puts(out, " "), wb_ko(out, place, CLLM_KO_TOWARD), wb_puts(out, " 갔습니다. ");
        wb_ko(out, f, CLLM_KO_TOPIC), wb_printf(out, " %s ", adj), wb_ko(out, thing, CLLM_KO_OBJECT);
        wb_puts(out, " 잃어버렸습니다. ");
        wb_ko(out, h, CLLM_KO_SUBJECT), wb_puts(out, " "), wb_ko(out, thing, CLLM_KO_OBJECT), wb_puts(out, " 찾았습니다. ");
        wb_ko(out, f, CLLM_KO_TOPIC), wb_puts(out, " 정말 행복했습니다.");
        break;
    case W_PLOT_SHARE:
        wb_ko(out, h, CLLM_KO_TOPIC), wb_puts(out, " "), wb_ko(out, thing, CLLM_KO_OBJECT);
        wb_printf(out, " %s 개 가지고 있었습니다. ", w_ko_numbers[p->count]);
        wb_ko(out, h, CLLM_KO_TOPIC), wb_printf(out, " %s에서 ", place), wb_ko(out, f, CLLM_KO_OBJECT),
            wb_puts(out, " 만났습니다. ");
        wb_ko(out, h, CLLM_KO_TOPIC), wb_puts(out, " "), wb_ko(out, f, CLLM_KO_WITH), wb_puts(out, " "),
            wb_ko(out, thing, CLLM_KO_OBJECT), wb_puts(out, " 나누어 먹었습니다. ");
        wb_puts(out, "두 사람은 행복했습니다.");
        break;
    case W_PLOT_FEAR:
        wb_ko(out, h, CLLM_KO_TOPIC), wb_puts(out, " "), wb_ko(out, f, CLLM_KO_WITH),
            wb_printf(out, " 함께 %s에 있었습니다. ", place);
        wb_ko(out, h, CLLM_KO_TOPIC), wb_puts(out, " "), wb_ko(out, scary_ko[p->aux], CLLM_KO_OBJECT),
            wb_puts(out, " 무서워했습니다. ");
        wb_ko(out, f, CLLM_KO_SUBJECT), wb_puts(out, " "), wb_ko(out, h, CLLM_KO_OBJECT), wb_puts(out, " 도와주었습니다. ");
        wb_ko(out, h, CLLM_KO_TOPIC), wb_puts(out, " 이제 "), ko_formal(out, "용감하"), wb_puts(out, ".");
        break;
    case W_PLOT_MAKE:
        wb_ko(out, h, CLLM_KO_WITH), wb_puts(out, " "), wb_ko(out, f, CLLM_KO_TOPIC), wb_printf(out, " %s에서 ", place),
            wb_ko(out, thing, CLLM_KO_OBJECT), wb_puts(out, " 만들었습니다. ");
        wb_ko(out, thing, CLLM_KO_SUBJECT), wb_puts(out, " 망가졌습니다. ");
        wb_puts(out, "두 사람은 함께 "), wb_ko(out, thing, CLLM_KO_OBJECT), wb_puts(out, " 고쳤습니다. ");
        wb_puts(out, "두 사람은 지금도 함께 "), ko_formal(out, "만들"), wb_puts(out, ".");
        break;
    case W_PLOT_QUARREL:
        wb_ko(out, h, CLLM_KO_WITH), wb_puts(out, " "), wb_ko(out, f, CLLM_KO_TOPIC), wb_printf(out, " %s에서 놀았습니다. ", place);
        wb_printf(out, "두 사람은 모두 %s ", adj), wb_ko(out, thing, CLLM_KO_OBJECT), wb_puts(out, " 원했습니다. ");
        wb_puts(out, "두 사람은 서로 사과했습니다. ");
        wb_puts(out, "두 사람은 "), wb_ko(out, thing, CLLM_KO_OBJECT), wb_puts(out, " 번갈아 가지고 놀았습니다.");
        break;
    default: {
        const char *parent = p->aux ? "아빠" : "엄마";
        wb_ko(out, h, CLLM_KO_TOPIC), wb_puts(out, " "), wb_ko(out, parent, CLLM_KO_WITH), wb_puts(out, " 함께 "),
            wb_ko(out, place, CLLM_KO_TOWARD), wb_puts(out, " 갔습니다. ");
        wb_ko(out, h, CLLM_KO_TOPIC), wb_puts(out, " "), wb_ko(out, thing, CLLM_KO_OBJECT),
            wb_printf(out, " %s 마리 봤습니다. ", w_ko_numbers[p->count]);
        wb_puts(out, "비가 왔습니다. 두 사람은 집으로 돌아갔습니다. ");
        wb_ko(out, h, CLLM_KO_TOPIC), wb_puts(out, " "), wb_ko(out, place, CLLM_KO_OBJECT), wb_puts(out, " "),
            ko_formal(out, "좋아하"), wb_puts(out, ".");
        break;
    }
    }
}

/*
 * world_tasks.c: generators of single task examples for the practice world:
 * English/Korean sentence pairs (polite -요 style, small talk included),
 * sentiment texts with their label, shop FAQ questions phrased many ways with one fixed answer per
 * intent, and arithmetic / counting questions with a checkable integer
 * answer. Each call appends one example; deduplication and splits are done
 * by world.c. Does not write files.
 */
#include <string.h>

#include "world_internal.h"

/* ---- translation ---------------------------------------------------------- */

/* Fixed everyday phrases (the guide's "Hello, how are you?" kind); world.c
 * keeps them in the train split so a demo can show them. */
static const char *const fixed_en[] = {
    "Hello, how are you?", "Thank you very much.", "Good morning.", "Nice to meet you.", "See you tomorrow.",
    "I am sorry.", "I am hungry.", "It is raining.", "The weather is nice today.", "Where are you going?",
    "I am fine, thank you.", "What is your name?", "Let's play together.", "Goodbye.", "Hello!",
};
static const char *const fixed_ko[] = {
    "안녕하세요, 어떻게 지내세요?", "정말 고마워요.", "좋은 아침이에요.", "만나서 반가워요.", "내일 봐요.",
    "미안해요.", "배고파요.", "비가 와요.", "오늘 날씨가 좋아요.", "어디에 가요?",
    "저는 잘 지내요, 고마워요.", "이름이 뭐예요?", "같이 놀아요.", "안녕히 가세요.", "안녕하세요!",
};

int w_translation_n_fixed(void) { return W_COUNT(fixed_en); }
void w_translation_fixed(int i, wbuf *en, wbuf *ko) {
    wb_puts(en, fixed_en[i]);
    wb_puts(ko, fixed_ko[i]);
}

/* Small talk: a greeting, then a question or phrase ("Hi, how are you?" ->
 * "안녕하세요, 어떻게 지내세요?"). Every English phrase has one Korean rendering,
 * so both directions are consistent. */
static const char *const greet_en[] = {"Hello", "Hi", "Good morning", "Good evening"};
static const char *const greet_ko[] = {"안녕하세요", "안녕하세요", "좋은 아침이에요", "좋은 저녁이에요"};
static const char *const talk_en[] = {
    "how are you?", "nice to meet you.", "what is your name?", "where are you going?", "thank you very much.",
    "how was your day?", "I am fine, thank you.", "see you tomorrow.", "what are you doing?", "where do you live?",
    "the weather is nice today.", "I am happy to see you.",
};
static const char *const talk_ko[] = {
    "어떻게 지내세요?", "만나서 반가워요.", "이름이 뭐예요?", "어디에 가요?", "정말 고마워요.",
    "오늘 하루 어땠어요?", "저는 잘 지내요, 고마워요.", "내일 봐요.", "뭐 하고 있어요?", "어디에 살아요?",
    "오늘 날씨가 좋아요.", "만나서 기뻐요.",
};

static void small_talk(cllm_rng *rng, const w_place *pl, const w_thing *t, wbuf *en, wbuf *ko) {
    int g = (int)cllm_rng_below(rng, (uint64_t)W_COUNT(greet_en));
    wb_printf(en, "%s, ", greet_en[g]);
    wb_printf(ko, "%s, ", greet_ko[g]);
    uint64_t k = cllm_rng_below(rng, (uint64_t)W_COUNT(talk_en) + 2);
    if (k < (uint64_t)W_COUNT(talk_en)) {
        wb_puts(en, talk_en[k]);
        wb_puts(ko, talk_ko[k]);
    } else if (k == (uint64_t)W_COUNT(talk_en)) {
        wb_printf(en, "do you like %s?", t->en_pl);
        wb_ko(ko, t->ko, CLLM_KO_OBJECT), wb_puts(ko, " 좋아해요?");
    } else {
        wb_printf(en, "let's go to the %s together.", pl->en);
        wb_puts(ko, "같이 "), wb_ko(ko, pl->ko, CLLM_KO_TOWARD), wb_puts(ko, " 가요.");
    }
}

static int pick_verb_for(cllm_rng *rng, int thing) {
    int idx[32], n = 0;
    for (int i = 0; i < w_n_verbs; i++)
        if (w_verbs[i].kinds & w_things[thing].kinds) idx[n++] = i;
    CLLM_ASSERT(n > 0);
    return idx[cllm_rng_below(rng, (uint64_t)n)];
}

void w_task_translation(cllm_rng *rng, wbuf *en, wbuf *ko) {
    const w_person *a = &w_people[cllm_rng_below(rng, (uint64_t)w_n_people)];
    const w_person *b;
    do b = &w_people[cllm_rng_below(rng, (uint64_t)w_n_people)];
    while (b == a);
    const w_place *pl = &w_places[cllm_rng_below(rng, (uint64_t)w_n_places)];
    int ti = (int)cllm_rng_below(rng, (uint64_t)w_n_things);
    const w_thing *t = &w_things[ti];
    const w_adj *adj = &w_adjs[cllm_rng_below(rng, (uint64_t)w_n_adjs)];
    const w_feeling *fe = &w_feelings[cllm_rng_below(rng, (uint64_t)w_n_feelings)];
    const w_verb *v = &w_verbs[pick_verb_for(rng, ti)];
    int n = 1 + (int)cllm_rng_below(rng, 10);
    switch (cllm_rng_below(rng, 14)) {
    case 12:
    case 13:
        small_talk(rng, pl, t, en, ko);
        break;
    case 0:
        wb_printf(en, "%s went to the %s.", a->en, pl->en);
        wb_ko(ko, a->ko, CLLM_KO_TOPIC), wb_puts(ko, " "), wb_ko(ko, pl->ko, CLLM_KO_TOWARD), wb_puts(ko, " 갔어요.");
        break;
    case 1:
    case 2:
        wb_printf(en, "%s %s %s %s %s.", a->en, v->past, w_article(adj->en), adj->en, t->en);
        wb_ko(ko, a->ko, CLLM_KO_TOPIC), wb_printf(ko, " %s ", adj->ko), wb_ko(ko, t->ko, CLLM_KO_OBJECT);
        wb_printf(ko, " %s어요.", v->ko_past);
        break;
    case 3:
        wb_printf(en, "%s %s %s.", a->en, v->s3, t->en_pl);
        wb_ko(ko, a->ko, CLLM_KO_TOPIC), wb_puts(ko, " "), wb_ko(ko, t->ko, CLLM_KO_OBJECT);
        wb_printf(ko, " %s.", v->ko_polite);
        break;
    case 4:
        wb_printf(en, "%s and %s played %s the %s.", a->en, b->en, pl->at, pl->en);
        wb_ko(ko, a->ko, CLLM_KO_WITH), wb_puts(ko, " "), wb_ko(ko, b->ko, CLLM_KO_TOPIC);
        wb_printf(ko, " %s에서 놀았어요.", pl->ko);
        break;
    case 5:
        wb_printf(en, "%s is %s.", a->en, fe->en);
        wb_ko(ko, a->ko, CLLM_KO_TOPIC), wb_printf(ko, " %s.", fe->ko_polite);
        break;
    case 6:
        wb_printf(en, "%s was %s.", a->en, fe->en);
        wb_ko(ko, a->ko, CLLM_KO_TOPIC), wb_printf(ko, " %s어요.", fe->ko_past);
        break;
    case 7:
        wb_printf(en, "%s has %s %s.", a->en, w_en_numbers[n], n == 1 ? t->en : t->en_pl);
        wb_ko(ko, a->ko, CLLM_KO_TOPIC), wb_puts(ko, " "), wb_ko(ko, t->ko, CLLM_KO_SUBJECT);
        wb_printf(ko, " %s %s 있어요.", w_ko_numbers[n], (t->kinds & W_ANIMAL) ? "마리" : "개");
        break;
    case 8:
        wb_printf(en, "%s went to the %s with %s.", a->en, pl->en, b->en);
        wb_ko(ko, a->ko, CLLM_KO_TOPIC), wb_puts(ko, " "), wb_ko(ko, b->ko, CLLM_KO_WITH), wb_puts(ko, " 함께 ");
        wb_ko(ko, pl->ko, CLLM_KO_TOWARD), wb_puts(ko, " 갔어요.");
        break;
    case 9:
        if (cllm_rng_below(rng, 2)) {
            wb_printf(en, "This is %s %s.", w_article(t->en), t->en);
            wb_puts(ko, "이것은 "), wb_ko(ko, t->ko, CLLM_KO_COPULA), wb_puts(ko, ".");
        } else {
            wb_printf(en, "My name is %s.", a->en);
            wb_puts(ko, "제 이름은 "), wb_ko(ko, a->ko, CLLM_KO_COPULA), wb_puts(ko, ".");
        }
        break;
    case 10:
        wb_printf(en, "Where is the %s?", pl->en);
        wb_ko(ko, pl->ko, CLLM_KO_TOPIC), wb_puts(ko, " 어디에 있어요?");
        break;
    default:
        wb_printf(en, "I like %s.", t->en_pl);
        wb_puts(ko, "저는 "), wb_ko(ko, t->ko, CLLM_KO_OBJECT), wb_puts(ko, " 좋아해요.");
        break;
    }
}

/* ---- sentiment ------------------------------------------------------------ */

static const char *const days[] = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};

static void sentiment_sentence(cllm_rng *rng, int polarity, wbuf *out) {
    const w_thing *t = &w_things[w_pick_thing(rng, W_TOY | W_READ | W_THING | W_FOOD)];
    const w_person *p = &w_people[cllm_rng_below(rng, (uint64_t)w_n_people)];
    const w_place *place = &w_places[cllm_rng_below(rng, (uint64_t)w_n_places)];
    const char *pl = place->en, *prep = place->at;
    const char *adj = w_adjs[cllm_rng_below(rng, (uint64_t)w_n_adjs)].en;
    size_t at = out->len;
    if (polarity > 0) {
        static const char *const good[] = {"great", "wonderful", "excellent", "lovely", "perfect", "amazing"};
        switch (cllm_rng_below(rng, 8)) {
        case 0: wb_printf(out, "I love this %s!", t->en); break;
        case 1: wb_printf(out, "The %s is %s.", t->en, W_PICK(rng, good)); break;
        case 2: wb_printf(out, "%s was very happy with %s new %s.", p->en, p->female ? "her" : "his", t->en); break;
        case 3: wb_printf(out, "What a %s day %s the %s!", W_PICK(rng, good), prep, pl); break;
        case 4: wb_puts(out, "The staff were friendly and helpful."); break;
        case 5: wb_printf(out, "This is the best %s I have ever bought.", t->en); break;
        case 6: wb_printf(out, "My kids love the %s %s. Thank you!", adj, t->en); break;
        default: wb_printf(out, "%s smiled and laughed all day.", p->en); break;
        }
    } else if (polarity < 0) {
        static const char *const bad[] = {"terrible", "awful", "disappointing", "horrible", "very poor"};
        switch (cllm_rng_below(rng, 8)) {
        case 0: wb_printf(out, "The %s broke after one day.", t->en); break;
        case 1: wb_printf(out, "I am very disappointed with this %s.", t->en); break;
        case 2: wb_printf(out, "%s felt sad and lonely %s the %s.", p->en, prep, pl); break;
        case 3: wb_printf(out, "The %s was dirty and smelled bad.", t->en); break;
        case 4: wb_printf(out, "The service was %s, and I will not come back.", W_PICK(rng, bad)); break;
        case 5: wb_puts(out, "The delivery was late and the box was broken."); break;
        case 6: wb_printf(out, "What a %s %s!", W_PICK(rng, bad), t->en); break;
        default: wb_printf(out, "%s cried because %s lost %s %s %s.", p->en, p->female ? "she" : "he",
                           p->female ? "her" : "his", adj, t->en); break;
        }
    } else {
        switch (cllm_rng_below(rng, 7)) {
        case 0: wb_printf(out, "The %s is %s.", t->en, adj); break;
        case 1: wb_printf(out, "%s went to the %s on %s.", p->en, pl, W_PICK(rng, days)); break;
        case 2: wb_printf(out, "The shop opens at %d o'clock.", 8 + (int)cllm_rng_below(rng, 3)); break;
        case 3: wb_printf(out, "I bought %s %s yesterday.", w_article(t->en), t->en); break;
        case 4: wb_printf(out, "The box arrived on %s.", W_PICK(rng, days)); break;
        case 5: wb_printf(out, "There are %d %s on the table.", 2 + (int)cllm_rng_below(rng, 8), t->en_pl); break;
        default: wb_printf(out, "%s has %s %s %s.", p->en, w_article(adj), adj, t->en); break;
        }
    }
    wb_capitalize_at(out, at);
}

void w_task_sentiment(cllm_rng *rng, wbuf *text, const char **label) {
    int polarity = (int)cllm_rng_below(rng, 3) - 1;
    sentiment_sentence(rng, polarity, text);
    /* Half the time a second sentence: the same polarity, or neutral. */
    uint64_t r = cllm_rng_below(rng, 4);
    if (r >= 2) {
        wb_puts(text, " ");
        sentiment_sentence(rng, r == 2 ? polarity : 0, text);
    }
    *label = polarity > 0 ? "positive" : polarity < 0 ? "negative" : "neutral";
}

/* ---- FAQ ----------------------------------------------------------------- */

typedef struct {
    const char *answer;
    const char *q[8]; /* NULL-terminated phrasings (lowercase start) */
} faq_intent;

static const faq_intent faq[] = {
    {"We are open from 9 am to 6 pm, Monday to Saturday. We are closed on Sundays.",
     {"what are your opening hours", "when are you open", "what time do you open", "what time do you close",
      "are you open on sundays", "how late are you open", "what are the store hours", NULL}},
    {"We are at 12 Willow Street, next to the library.",
     {"where is your shop", "what is your address", "where are you located", "how do i find your store",
      "where can i find maple corner", "is the shop near the library", NULL}},
    {"You can return any item within 30 days with your receipt for a full refund.",
     {"can i return something", "what is your return policy", "how do i return an item",
      "can i get my money back", "how many days do i have to return a toy", "do you give refunds", NULL}},
    {"We deliver in 2 to 4 days. Delivery costs $5 and is free on orders over $30.",
     {"how long does delivery take", "do you deliver", "how much is shipping", "when will my order arrive",
      "is delivery free", "how fast is your delivery", "do you ship to my house", NULL}},
    {"We accept cash, credit cards and mobile payments.",
     {"how can i pay", "do you take credit cards", "can i pay with cash", "what payment methods do you accept",
      "can i pay with my phone", NULL}},
    {"A kite costs $12.",
     {"how much is a kite", "how much does a kite cost", "what is the price of a kite", "how much are your kites",
      "what do kites cost", NULL}},
    {"Picture books cost $8 each.",
     {"how much is a picture book", "how much do books cost", "what is the price of a book",
      "how much are your picture books", "what do books cost", NULL}},
    {"A teddy bear costs $15.",
     {"how much is a teddy bear", "how much does a teddy bear cost", "what is the price of a teddy bear",
      "how much are the teddy bears", NULL}},
    {"Yes, we wrap gifts for free. Just ask at the counter.",
     {"do you wrap gifts", "can you gift wrap my present", "is gift wrapping free", "can i get a present wrapped",
      "do you offer gift wrapping", NULL}},
    {"You can call us at 555-0142 or email hello@maplecorner.example.",
     {"what is your phone number", "how can i contact you", "can i call the shop", "what is your email address",
      "how do i reach customer service", NULL}},
    {"We are sorry! Bring the broken item back within 30 days and we will replace it for free.",
     {"my toy arrived broken", "the item i bought is broken", "what if my order is damaged",
      "my kite broke on the first day", "can you replace a broken toy", NULL}},
    {"You can track your order with the link in your confirmation email.",
     {"where is my order", "how do i track my order", "can i see where my package is", "my order has not arrived yet",
      "how can i check my delivery status", NULL}},
};

int w_faq_n_intents(void) { return W_COUNT(faq); }
const char *w_faq_answer(int intent) { return faq[intent].answer; }

void w_task_faq(cllm_rng *rng, wbuf *question, int *intent) {
    static const char *const prefix[] = {"", "Hi, ", "Hello! ", "Excuse me, ", "Good morning. ", "Hey, ",
                                         "Quick question: ", "Sorry to bother you, ", "Hi there! "};
    static const char *const suffix[] = {"?", "? Thanks.", " please?", "? Thank you!", "??"};
    int k = (int)cllm_rng_below(rng, (uint64_t)W_COUNT(faq));
    int nq = 0;
    while (nq < 8 && faq[k].q[nq]) nq++;
    const char *q = faq[k].q[cllm_rng_below(rng, (uint64_t)nq)];
    const char *pre = W_PICK(rng, prefix);
    const char *suf = W_PICK(rng, suffix);
    /* "my toy arrived broken" is a statement: it takes a period. */
    int statement = !strncmp(q, "my ", 3) || !strncmp(q, "the item", 8);
    wb_puts(question, pre);
    size_t at = question->len;
    wb_puts(question, q);
    size_t plen = strlen(pre);
    if (plen == 0 || pre[plen - 2] == '.' || pre[plen - 2] == '!') wb_capitalize_at(question, at);
    /* the pronoun "i" */
    for (size_t i = at; i + 2 < question->len; i++)
        if (question->data[i] == ' ' && question->data[i + 1] == 'i' && question->data[i + 2] == ' ')
            question->data[i + 1] = 'I';
    wb_puts(question, statement ? ". What can I do?" : suf);
    *intent = k;
}

/* ---- arithmetic and counting ---------------------------------------------
 * Bare sums and differences of operands 0..20 asked in several phrasings,
 * word problems, and counting a word in a short list. The numbers stay small
 * (answers 0..40): a 2M-parameter model can learn them, and with single-digit
 * tokens (the demo's "gpt4-digits" tokenizer) every number is spelled digit
 * by digit. Splits go by the question text, so a test question is never in
 * training, while the same sum may be asked there in another phrasing (as a
 * FAQ intent is). The answer always comes first in the reference: `cllm
 * eval` scores the first word. */

static void arith_sum(cllm_rng *rng, int x, int y, wbuf *q) {
    switch (cllm_rng_below(rng, 8)) {
    case 0: wb_printf(q, "What is %d + %d?", x, y); break;
    case 1: wb_printf(q, "What is %d plus %d?", x, y); break;
    case 2: wb_printf(q, "%d + %d = ?", x, y); break;
    case 3: wb_printf(q, "Add %d and %d.", x, y); break;
    case 4: wb_printf(q, "What is the sum of %d and %d?", x, y); break;
    case 5: wb_printf(q, "How much is %d + %d?", x, y); break;
    case 6: wb_printf(q, "Calculate %d + %d.", x, y); break;
    default: wb_printf(q, "Please add %d to %d.", y, x); break;
    }
}

static void arith_difference(cllm_rng *rng, int x, int y, wbuf *q) {
    switch (cllm_rng_below(rng, 7)) {
    case 0: wb_printf(q, "What is %d - %d?", x, y); break;
    case 1: wb_printf(q, "What is %d minus %d?", x, y); break;
    case 2: wb_printf(q, "%d - %d = ?", x, y); break;
    case 3: wb_printf(q, "Subtract %d from %d.", y, x); break;
    case 4: wb_printf(q, "How much is %d - %d?", x, y); break;
    case 5: wb_printf(q, "Calculate %d - %d.", x, y); break;
    default: wb_printf(q, "Take %d away from %d. What is left?", y, x); break;
    }
}

void w_task_arithmetic(cllm_rng *rng, wbuf *question, int *answer) {
    const w_person *a = &w_people[cllm_rng_below(rng, (uint64_t)w_n_people)];
    const w_person *b;
    do b = &w_people[cllm_rng_below(rng, (uint64_t)w_n_people)];
    while (b == a);
    int x = (int)cllm_rng_below(rng, 21), y = (int)cllm_rng_below(rng, 21);
    const w_thing *t = &w_things[w_pick_thing(rng, W_FOOD | W_TOY | W_THING)];
    switch (cllm_rng_below(rng, 10)) {
    case 0:
    case 1:
    case 2:
    case 3:
        arith_sum(rng, x, y, question);
        *answer = x + y;
        break;
    case 4:
    case 5:
        if (x < y) { int s = x; x = y; y = s; }
        arith_difference(rng, x, y, question);
        *answer = x - y;
        break;
    case 6:
        x = 1 + x % 10, y = 1 + y % 10;
        wb_printf(question, "%s has %d %s. %s gives %s %d more. How many %s does %s have now?", a->en, x,
                  x == 1 ? t->en : t->en_pl, b->en, a->female ? "her" : "him", y, t->en_pl, a->en);
        *answer = x + y;
        break;
    case 7: {
        x = 2 + x % 12;
        y = 1 + (int)cllm_rng_below(rng, (uint64_t)x);
        wb_printf(question, "%s had %d %s and gave %d to %s. How many %s are left?", a->en, x, t->en_pl, y, b->en,
                  t->en_pl);
        *answer = x - y;
        break;
    }
    default: {
        /* Counting: how often one animal appears in a short list (3..6 words),
         * the word asked for named before the list. */
        int target = w_pick_thing(rng, W_ANIMAL), n = 3 + (int)cllm_rng_below(rng, 4), count = 0;
        wb_printf(question, "How many times does the word \"%s\" appear in this list: ", w_things[target].en);
        for (int i = 0; i < n; i++) {
            int pick = cllm_rng_below(rng, 3) == 0 ? target : w_pick_thing(rng, W_ANIMAL);
            if (pick == target) count++;
            wb_printf(question, "%s%s", i ? ", " : "", w_things[pick].en);
        }
        wb_puts(question, "?");
        *answer = count;
        break;
    }
    }
}

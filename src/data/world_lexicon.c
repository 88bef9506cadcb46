/*
 * world_lexicon.c: the practice world's vocabulary: people, things, places,
 * verbs, feelings and adjectives, each with its English forms (plural, past,
 * third person) and its Korean word or stem. Korean verb forms are stored as
 * the polite present (-요) and the past stem (ending in ㅆ, to which -어요 or
 * -습니다 attaches), because Korean conjugation has too many irregular
 * classes to derive safely from one stem. Does not generate sentences.
 */
#include <string.h>

#include "world_internal.h"

const w_person w_people[] = {
    {"Lily", "릴리", 1}, {"Tom", "톰", 0},     {"Mina", "미나", 1}, {"Ben", "벤", 0},   {"Sara", "사라", 1},
    {"Jack", "잭", 0},   {"Lucy", "루시", 1},  {"Sam", "샘", 0},    {"Anna", "안나", 1}, {"Leo", "레오", 0},
    {"Emma", "엠마", 1}, {"Max", "맥스", 0},   {"Sora", "소라", 1}, {"Jun", "준", 0},   {"Mia", "미아", 1},
    {"Noah", "노아", 0}, {"Hana", "하나", 1},  {"Minho", "민호", 0}, {"Zoe", "조이", 1}, {"Bill", "빌", 0},
    {"Ella", "엘라", 1}, {"Dan", "댄", 0},     {"Yuna", "유나", 1}, {"Paul", "폴", 0},
};
const int w_n_people = W_COUNT(w_people);

const w_thing w_things[] = {
    {"ball", "balls", "공", W_TOY | W_THING},
    {"kite", "kites", "연", W_TOY | W_MADE},
    {"doll", "dolls", "인형", W_TOY},
    {"toy car", "toy cars", "장난감 자동차", W_TOY},
    {"teddy bear", "teddy bears", "곰 인형", W_TOY},
    {"apple", "apples", "사과", W_FOOD},
    {"banana", "bananas", "바나나", W_FOOD},
    {"orange", "oranges", "오렌지", W_FOOD},
    {"cookie", "cookies", "쿠키", W_FOOD | W_MADE},
    {"cake", "cakes", "케이크", W_FOOD | W_MADE},
    {"egg", "eggs", "달걀", W_FOOD},
    {"sandwich", "sandwiches", "샌드위치", W_FOOD | W_MADE},
    {"book", "books", "책", W_READ | W_OPEN | W_THING},
    {"letter", "letters", "편지", W_READ | W_OPEN},
    {"box", "boxes", "상자", W_OPEN | W_THING | W_MADE},
    {"umbrella", "umbrellas", "우산", W_OPEN | W_THING},
    {"hat", "hats", "모자", W_THING | W_MADE},
    {"cup", "cups", "컵", W_THING},
    {"flower", "flowers", "꽃", W_THING},
    {"shell", "shells", "조개껍데기", W_THING},
    {"leaf", "leaves", "나뭇잎", W_THING},
    {"key", "keys", "열쇠", W_THING},
    {"bag", "bags", "가방", W_OPEN | W_THING},
    {"puppy", "puppies", "강아지", W_ANIMAL},
    {"cat", "cats", "고양이", W_ANIMAL},
    {"bird", "birds", "새", W_ANIMAL},
    {"rabbit", "rabbits", "토끼", W_ANIMAL},
    {"frog", "frogs", "개구리", W_ANIMAL},
    {"fish", "fish", "물고기", W_ANIMAL},
    {"mouse", "mice", "쥐", W_ANIMAL},
    {"owl", "owls", "부엉이", W_ANIMAL},
    {"duck", "ducks", "오리", W_ANIMAL},
};
const int w_n_things = W_COUNT(w_things);

const w_place w_places[] = {
    {"park", "공원", "at"},     {"school", "학교", "at"},     {"garden", "정원", "in"},  {"forest", "숲", "in"},
    {"beach", "바닷가", "at"},  {"library", "도서관", "at"},  {"market", "시장", "at"}, {"river", "강", "by"},
    {"hill", "언덕", "on"},     {"zoo", "동물원", "at"},      {"kitchen", "부엌", "in"}, {"shop", "가게", "at"},
    {"village", "마을", "in"},  {"classroom", "교실", "in"},  {"farm", "농장", "on"},   {"lake", "호수", "at"},
    {"playground", "놀이터", "at"},
};
const int w_n_places = W_COUNT(w_places);

#define W_ALL (W_FOOD | W_TOY | W_READ | W_OPEN | W_THING | W_ANIMAL)
const w_verb w_verbs[] = {
    {"find", "found", "finds", "찾아요", "찾았", W_ALL},
    {"see", "saw", "sees", "봐요", "봤", W_ALL},
    {"like", "liked", "likes", "좋아해요", "좋아했", W_ALL},
    {"want", "wanted", "wants", "원해요", "원했", W_FOOD | W_TOY | W_READ | W_THING},
    {"eat", "ate", "eats", "먹어요", "먹었", W_FOOD},
    {"buy", "bought", "buys", "사요", "샀", W_FOOD | W_TOY | W_READ | W_THING},
    {"read", "read", "reads", "읽어요", "읽었", W_READ},
    {"open", "opened", "opens", "열어요", "열었", W_OPEN},
    {"draw", "drew", "draws", "그려요", "그렸", W_ALL},
    {"lose", "lost", "loses", "잃어버려요", "잃어버렸", W_TOY | W_THING | W_READ},
    {"make", "made", "makes", "만들어요", "만들었", W_MADE},
    {"hug", "hugged", "hugs", "안아요", "안았", W_ANIMAL},
};
const int w_n_verbs = W_COUNT(w_verbs);

const w_feeling w_feelings[] = {
    {"happy", "행복해요", "행복했", 1},     {"glad", "기뻐요", "기뻤", 1},
    {"excited", "신나요", "신났", 1},       {"proud", "자랑스러워요", "자랑스러웠", 1},
    {"sad", "슬퍼요", "슬펐", -1},          {"angry", "화가 나요", "화가 났", -1},
    {"scared", "무서워해요", "무서워했", -1}, {"tired", "피곤해요", "피곤했", -1},
    {"lonely", "외로워요", "외로웠", -1},
};
const int w_n_feelings = W_COUNT(w_feelings);

const w_adj w_adjs[] = {
    {"red", "빨간"}, {"blue", "파란"}, {"yellow", "노란"}, {"green", "초록색"}, {"big", "큰"},
    {"small", "작은"}, {"new", "새"},  {"old", "낡은"},    {"pretty", "예쁜"},  {"shiny", "반짝이는"},
};
const int w_n_adjs = W_COUNT(w_adjs);

const char *const w_traits[] = {"kind", "brave", "curious", "shy", "funny", "clever",
                                "gentle", "cheerful", "quiet", "friendly", "honest", "happy"};
const int w_n_traits = W_COUNT(w_traits);

const char *const w_ko_numbers[] = {"", "한", "두", "세", "네", "다섯", "여섯", "일곱", "여덟", "아홉", "열"};
const char *const w_en_numbers[] = {"zero",   "one",    "two",      "three",    "four",     "five",    "six",
                                    "seven",  "eight",  "nine",     "ten",      "eleven",   "twelve",  "thirteen",
                                    "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"};

int w_pick_thing(cllm_rng *rng, int kinds) {
    int idx[64], n = 0;
    for (int i = 0; i < w_n_things && n < 64; i++)
        if (w_things[i].kinds & kinds) idx[n++] = i;
    CLLM_ASSERT(n > 0);
    return idx[cllm_rng_below(rng, (uint64_t)n)];
}

const char *w_article(const char *next_word) {
    /* English uses "an" before a vowel sound; our lexicon has no silent h or
     * "u" pronounced "you", so the first letter decides. */
    char c = next_word[0];
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    return strchr("aeiou", c) && c ? "an" : "a";
}

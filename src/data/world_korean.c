/*
 * world_korean.c: Korean particle and ending selection from the final
 * consonant (batchim) of a Hangul syllable.
 *
 * A precomposed syllable is U+AC00 + (initial * 21 + medial) * 28 + final,
 * with initial 0..18, medial 0..20 and final 0..27 (0 = none, 8 = ㄹ,
 * 17 = ㅂ), per the Unicode Standard, section 3.12 (Conjoining Jamo
 * Behavior). The particle rules:
 *   은/는, 이/가, 을/를, 과/와, 이에요/예요: first form after a final consonant,
 *   second after a vowel;
 *   으로/로: 으로 after a final consonant except ㄹ, 로 after a vowel or ㄹ.
 * Does not handle words ending in Latin letters or digits (they are given
 * the after-vowel form) or irregular verb stems beyond the ㄹ-drop.
 */
#include <string.h>

#include "cllm/core/utf8.h"
#include "cllm/data/world.h"

#define HANGUL_FIRST 0xAC00u
#define HANGUL_LAST 0xD7A3u
#define JONG_COUNT 28u
#define JONG_RIEUL 8u
#define JONG_BIEUP 17u

/* Decodes the last UTF-8 code point of s[0,len); returns its start offset
 * or -1 when the tail is not a valid 1..4 byte sequence. */
static long last_codepoint(const char *s, size_t len, unsigned *cp) {
    if (len == 0) return -1;
    size_t i = len - 1, n = 1;
    while (i > 0 && n < 4 && ((unsigned char)s[i] & 0xC0) == 0x80) i--, n++;
    const unsigned char *p = (const unsigned char *)s + i;
    unsigned c;
    size_t need;
    if (p[0] < 0x80) c = p[0], need = 1;
    else if ((p[0] & 0xE0) == 0xC0) c = p[0] & 0x1F, need = 2;
    else if ((p[0] & 0xF0) == 0xE0) c = p[0] & 0x0F, need = 3;
    else if ((p[0] & 0xF8) == 0xF0) c = p[0] & 0x07, need = 4;
    else return -1;
    if (need != n) return -1;
    for (size_t k = 1; k < n; k++) c = (c << 6) | (p[k] & 0x3F);
    *cp = c;
    return (long)i;
}

int cllm_ko_final_consonant(const char *word, size_t len) {
    unsigned cp;
    if (last_codepoint(word, len, &cp) < 0) return -1;
    if (cp < HANGUL_FIRST || cp > HANGUL_LAST) return -1;
    return (int)((cp - HANGUL_FIRST) % JONG_COUNT);
}

const char *cllm_ko_particle_for(const char *word, cllm_ko_particle p) {
    int jong = cllm_ko_final_consonant(word, strlen(word));
    int consonant = jong > 0;
    switch (p) {
    case CLLM_KO_TOPIC: return consonant ? "은" : "는";
    case CLLM_KO_SUBJECT: return consonant ? "이" : "가";
    case CLLM_KO_OBJECT: return consonant ? "을" : "를";
    case CLLM_KO_WITH: return consonant ? "과" : "와";
    case CLLM_KO_TOWARD: return consonant && jong != (int)JONG_RIEUL ? "으로" : "로";
    case CLLM_KO_COPULA: return consonant ? "이에요" : "예요";
    default: return "";
    }
}

cllm_status cllm_ko_formal_present(const char *stem, char *buf, size_t cap, cllm_error *err) {
    size_t len = strlen(stem);
    unsigned cp;
    long at = last_codepoint(stem, len, &cp);
    if (at < 0 || cp < HANGUL_FIRST || cp > HANGUL_LAST)
        return cllm_error_set(err, CLLM_ERR_ARG, "Korean stem '%s' does not end in a Hangul syllable", stem);
    unsigned jong = (cp - HANGUL_FIRST) % JONG_COUNT;
    const char *tail;
    unsigned last = cp;
    if (jong == 0 || jong == JONG_RIEUL) {
        last = cp - jong + JONG_BIEUP; /* 가 -> 갑, 만들 -> 만듭 (ㄹ dropped) */
        tail = "니다";
    } else {
        tail = "습니다";
    }
    size_t need = (size_t)at + 3 + strlen(tail) + 1;
    if (need > cap) return cllm_error_set(err, CLLM_ERR_ARG, "buffer of %zu bytes is too small for '%s'", cap, stem);
    memcpy(buf, stem, (size_t)at);
    size_t k = (size_t)at + cllm_utf8_put(last, (uint8_t *)(buf + at));
    memcpy(buf + k, tail, strlen(tail) + 1);
    return CLLM_OK;
}

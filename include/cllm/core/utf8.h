/*
 * utf8.h: one code point written as UTF-8, for the code that builds text
 * from code points (Jinja string escapes, the text llama.cpp's tokenizer
 * sees, the practice world's Korean endings). The one place for it.
 * Reading UTF-8 stays with each reader: their rules for invalid input
 * differ on purpose (llama.cpp's, the grammar's, the stream decoder's).
 */
#ifndef CLLM_UTF8_H
#define CLLM_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Writes c to o (room for 4 bytes) and returns its length, 1..4; 0 (nothing
 * written) above U+10FFFF. Surrogates are written like any other value. */
static inline size_t cllm_utf8_put(uint32_t c, uint8_t *o) {
    if (c < 0x80) return o[0] = (uint8_t)c, 1;
    if (c < 0x800) return o[0] = (uint8_t)(0xC0 | c >> 6), o[1] = (uint8_t)(0x80 | (c & 0x3F)), 2;
    if (c < 0x10000) {
        o[0] = (uint8_t)(0xE0 | c >> 12);
        o[1] = (uint8_t)(0x80 | (c >> 6 & 0x3F));
        o[2] = (uint8_t)(0x80 | (c & 0x3F));
        return 3;
    }
    if (c > 0x10FFFF) return 0;
    o[0] = (uint8_t)(0xF0 | c >> 18);
    o[1] = (uint8_t)(0x80 | (c >> 12 & 0x3F));
    o[2] = (uint8_t)(0x80 | (c >> 6 & 0x3F));
    o[3] = (uint8_t)(0x80 | (c & 0x3F));
    return 4;
}

#endif

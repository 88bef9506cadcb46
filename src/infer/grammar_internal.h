/*
 * grammar_internal.h: what grammar.c shares with json_schema.c (not public).
 */
#ifndef CLLM_GRAMMAR_INTERNAL_H
#define CLLM_GRAMMAR_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Decodes one UTF-8 character at s[0..n) into *cp; returns its length in
 * bytes, or 0 when it is not valid UTF-8 (overlong, surrogate, truncated). */
size_t cllm_grammar_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

#endif

/*
 * jinja_internal.h: what the Jinja parser (jinja_parse.c) hands the renderer
 * (jinja.c): a bump arena and the syntax tree of a compiled template.
 * Not part of the public API (include/cllm/infer/jinja.h).
 */
#ifndef CLLM_JINJA_INTERNAL_H
#define CLLM_JINJA_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "cllm/infer/jinja.h"

/* Bump allocator: everything lives until jarena_free. alloc returns NULL
 * when the arena would pass `limit` bytes (or malloc fails). */
typedef struct jarena_block {
    struct jarena_block *next;
    size_t used, cap;
    _Alignas(16) char data[];
} jarena_block;

typedef struct {
    jarena_block *head;
    size_t total, limit;
} jarena;

void *jarena_alloc(jarena *a, size_t n); /* zeroed, 16-byte aligned */
void jarena_free(jarena *a);

typedef enum {
    /* statements */
    JN_TEXT, JN_OUTPUT, JN_IF, JN_FOR, JN_SET, JN_MACRO, JN_BREAK, JN_CONTINUE, JN_BLOCK,
    /* expressions */
    JN_STR, JN_INT, JN_FLOAT, JN_BOOL, JN_NONE, JN_NAME, JN_LIST, JN_TUPLE, JN_DICT, JN_ATTR, JN_ITEM,
    JN_SLICE, JN_CALL, JN_KWARG, JN_FILTER, JN_TEST, JN_NOT, JN_NEG, JN_POS, JN_BIN, JN_CONCAT, JN_AND,
    JN_OR, JN_CMP, JN_COND,
    JN_COUNT
} jnode_kind;

typedef enum {
    JOP_ADD, JOP_SUB, JOP_MUL, JOP_DIV, JOP_FLOORDIV, JOP_MOD, JOP_POW,
    JOP_EQ, JOP_NE, JOP_LT, JOP_LE, JOP_GT, JOP_GE, JOP_IN, JOP_NOTIN,
    JOP_COUNT
} jop;

typedef enum {
    JF_ABS, JF_CAPITALIZE, JF_COUNT_, JF_DEFAULT, JF_FIRST, JF_FLOAT, JF_INDENT, JF_INT, JF_ITEMS, JF_JOIN,
    JF_LAST, JF_LENGTH, JF_LIST, JF_LOWER, JF_MAP, JF_REJECT, JF_REJECTATTR, JF_REPLACE, JF_REVERSE,
    JF_SAFE, JF_SELECT, JF_SELECTATTR, JF_SORT, JF_STRING, JF_TITLE, JF_TOJSON, JF_TRIM, JF_UPPER,
    JF_COUNT
} jfilter;

typedef enum {
    JT_BOOLEAN, JT_CALLABLE, JT_DEFINED, JT_DIVISIBLEBY, JT_EQ, JT_EVEN, JT_FALSE, JT_FLOAT, JT_GE, JT_GT,
    JT_IN, JT_INTEGER, JT_ITERABLE, JT_LE, JT_LOWER, JT_LT, JT_MAPPING, JT_NE, JT_NONE, JT_NUMBER, JT_ODD,
    JT_SAMEAS, JT_SEQUENCE, JT_STRING, JT_TRUE, JT_UNDEFINED, JT_UPPER,
    JT_COUNT
} jtest;

int jinja_filter_lookup(const char *name, size_t n); /* jfilter or -1 */
int jinja_test_lookup(const char *name, size_t n);   /* jtest or -1 */

typedef struct jnode jnode;
typedef struct {
    jnode **v;
    size_t n;
} jnodes;

/* One node for every kind; which fields a kind uses:
 *   TEXT s,n | OUTPUT a | IF a=cond body orelse | FOR args=target names,
 *   a=iterable, b=filter condition, body, orelse | SET a=target (NAME,
 *   ATTR or TUPLE of NAMEs), b=value or body | MACRO s,n=name, args=params
 *   (NAME, a=default), body | BLOCK body
 *   STR s,n | INT i | FLOAT f | BOOL i | NAME s,n | LIST/TUPLE args |
 *   DICT args=key,value,... | ATTR a . s,n | ITEM a[b] | SLICE a[args 0:1:2]
 *   (entries may be NULL) | CALL a(args) with KWARG s,n=a | FILTER a|op(args)
 *   | TEST a is [not when i] op(args) | NOT/NEG/POS a | BIN a op b |
 *   CONCAT args | AND/OR a b | CMP args[0] ops[0] args[1] ... | COND a if b
 *   else c (c may be NULL) */
struct jnode {
    jnode_kind kind;
    int line;
    int op;
    const char *s;
    size_t n;
    int64_t i;
    double f;
    jnode *a, *b, *c;
    jnodes args, body, orelse;
    int *ops;
};

struct cllm_jinja {
    jarena arena;
    jnodes body;
    char name[128];
};

/* Lexes and parses src into t->body (nodes in t->arena). */
cllm_status jinja_parse(cllm_jinja *t, const char *src, size_t len, cllm_error *err);

/* Writes "name: line N: <fmt>" into err unless *failed is already set (the
 * first error wins), sets *failed; returns -1. Shared by parser and renderer. */
int jinja_error(cllm_error *err, int *failed, cllm_status status, const char *name, int line, const char *fmt, va_list ap);

/* Python's str.isspace for the code point starting at s[0..n): its byte
 * length, or 0 when it is not whitespace. */
size_t jinja_space_at(const char *s, size_t n);
/* Byte length of the whitespace code point that ends at s[n-1], or 0. */
size_t jinja_space_before(const char *s, size_t n);

#endif

/*
 * grammar.c: the GBNF parser and the pushdown matcher of grammar.h.
 *
 * The rule table. Every rule is a run of elements in one flat array:
 *   alt1... ALT alt2... ALT ... altN... END
 * where an element is a character set (ranges of code points, possibly
 * negated) or a reference to another rule. Groups and repetitions are
 * rewritten at parse time into generated rules:
 *   X*      ->  R ::= X R |          (right recursion: constant stack depth)
 *   X{m,n}  ->  X...X (m times) O_{n-m},  O_k ::= X O_{k-1} |
 *
 * The matcher. A parse position is a stack of element indices, bottom to top;
 * the top is the next element to match and each one below is where its rule
 * continues when the rule above it ends. Stacks are kept "settled": the top
 * is always a character set (or the stack is empty, which means the whole
 * root rule has matched). Settling expands a rule reference into one stack
 * per alternative and pops finished alternatives; a reference that ends its
 * alternative is replaced instead of kept (a tail call), so right recursion
 * does not grow the stack. Left recursion would never settle; the parser
 * refuses it. Identical stacks are merged, so ambiguity costs only the
 * number of distinct parses, capped by CLLM_GRAMMAR_MAX_STACKS.
 *
 * Stacks live in one arena (positions + descriptors); a set of stacks is a
 * range of descriptors. Masking pushes a new set per trie depth at the end of
 * the arena and truncates on the way back, so after the first calls nothing
 * is allocated per decode step.
 */
#include "cllm/infer/grammar.h"

#include "grammar_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the rule table ------------------------------------------------------ */

typedef enum { EL_END = 0, EL_ALT, EL_RULE, EL_CHARS, EL_KIND_COUNT } element_kind;

typedef struct {
    uint8_t kind;   /* element_kind */
    uint8_t negate; /* EL_CHARS: matches code points outside the ranges */
    uint32_t a;     /* EL_RULE: rule id; EL_CHARS: first range */
    uint32_t b;     /* EL_CHARS: number of ranges */
} element;

typedef struct {
    char *name;
    size_t pos;         /* byte offset of the definition (or of the group) in the text */
    size_t use_pos;     /* first reference, for "undefined rule" */
    int defined;
    element *el;        /* [n] while parsing */
    size_t n, cap;
} rule_build;

struct cllm_grammar {
    int n_rules;
    element *el;          /* [n_el] all rules, END-terminated each */
    size_t n_el;
    uint32_t *ranges;     /* [2 * n_ranges] lo, hi pairs (inclusive) */
    size_t n_ranges;
    uint32_t *alt_first;  /* [n_rules] index into alts */
    uint32_t *alt_count;  /* [n_rules] */
    uint32_t *alts;       /* [n_alts] element index where each alternative starts */
    char **names;         /* [n_rules] for messages */
    int root;
};

int cllm_grammar_n_rules(const cllm_grammar *g) { return g->n_rules; }

void cllm_grammar_destroy(cllm_grammar *g) {
    if (!g) return;
    for (int i = 0; i < g->n_rules; i++) free(g->names[i]);
    free(g->names);
    free(g->el);
    free(g->ranges);
    free(g->alt_first);
    free(g->alt_count);
    free(g->alts);
    free(g);
}

static int chars_match(const cllm_grammar *g, const element *e, uint32_t cp) {
    const uint32_t *r = g->ranges + 2 * (size_t)e->a;
    int in = 0;
    for (uint32_t i = 0; i < e->b && !in; i++) in = cp >= r[2 * i] && cp <= r[2 * i + 1];
    return in != e->negate;
}

/* 1 when some code point in [lo, hi] matches e (for a partial character). */
static int chars_intersect(const cllm_grammar *g, const element *e, uint32_t lo, uint32_t hi) {
    const uint32_t *r = g->ranges + 2 * (size_t)e->a;
    if (!e->negate) {
        for (uint32_t i = 0; i < e->b; i++)
            if (r[2 * i] <= hi && r[2 * i + 1] >= lo) return 1;
        return 0;
    }
    /* Negated: some point of [lo, hi] lies outside every range. Ranges are
     * few; test lo and each point just past a range end. */
    if (chars_match(g, e, lo)) return 1;
    for (uint32_t i = 0; i < e->b; i++) {
        uint32_t after = r[2 * i + 1] + 1;
        if (after > lo && after <= hi && chars_match(g, e, after)) return 1;
    }
    return 0;
}

/* ---- the parser ---------------------------------------------------------- */

typedef struct {
    const char *s;
    size_t n, pos;
    const char *name;
    cllm_error *err;
    cllm_status st;      /* first error */
    rule_build *rules;
    size_t n_rules, cap_rules;
    uint32_t *ranges;
    size_t n_ranges, cap_ranges;
    size_t n_elements;   /* across all rules, for the limit */
} parser;

static void line_col(const parser *p, size_t pos, int *line, int *col) {
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < pos && i < p->n; i++) {
        if (p->s[i] == '\n') {
            (*line)++;
            *col = 1;
        } else if (((unsigned char)p->s[i] & 0xC0) != 0x80) {
            (*col)++;
        }
    }
}

__attribute__((format(printf, 3, 4))) static int fail_at(parser *p, size_t pos, const char *fmt, ...) {
    if (p->st != CLLM_OK) return 0;
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line, col;
    line_col(p, pos, &line, &col);
    p->st = cllm_error_set(p->err, CLLM_ERR_FORMAT, "%s:%d:%d: %s", p->name, line, col, msg);
    return 0;
}

static int fail_nomem(parser *p) {
    if (p->st == CLLM_OK) p->st = cllm_error_set(p->err, CLLM_ERR_NOMEM, "%s: out of memory parsing the grammar", p->name);
    return 0;
}

static int grow(void **v, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) return 1;
    size_t c = *cap ? *cap * 2 : 16;
    while (c < need) c *= 2;
    void *nv = realloc(*v, c * size);
    if (!nv) return 0;
    *v = nv;
    *cap = c;
    return 1;
}

static int push_el(parser *p, uint32_t rule, element e) {
    rule_build *r = &p->rules[rule];
    if (++p->n_elements > CLLM_GRAMMAR_MAX_ELEMENTS)
        return fail_at(p, p->pos, "the grammar expands to more than %u symbols", CLLM_GRAMMAR_MAX_ELEMENTS);
    if (!grow((void **)&r->el, &r->cap, r->n + 1, sizeof *r->el)) return fail_nomem(p);
    r->el[r->n++] = e;
    return 1;
}

static int push_range(parser *p, uint32_t lo, uint32_t hi) {
    if (!grow((void **)&p->ranges, &p->cap_ranges, 2 * (p->n_ranges + 1), sizeof *p->ranges)) return fail_nomem(p);
    p->ranges[2 * p->n_ranges] = lo;
    p->ranges[2 * p->n_ranges + 1] = hi;
    p->n_ranges++;
    return 1;
}

/* A new rule named `name` (len bytes); returns its id or -1. */
static int64_t new_rule(parser *p, const char *name, size_t len, size_t pos) {
    if (!grow((void **)&p->rules, &p->cap_rules, p->n_rules + 1, sizeof *p->rules)) return fail_nomem(p) - 1;
    rule_build *r = &p->rules[p->n_rules];
    memset(r, 0, sizeof *r);
    r->name = strndup(name, len);
    if (!r->name) return fail_nomem(p) - 1;
    r->pos = r->use_pos = pos;
    return (int64_t)p->n_rules++;
}

static int64_t find_or_add_rule(parser *p, const char *name, size_t len, size_t pos) {
    for (size_t i = 0; i < p->n_rules; i++)
        if (strlen(p->rules[i].name) == len && !memcmp(p->rules[i].name, name, len)) return (int64_t)i;
    return new_rule(p, name, len, pos);
}

/* A generated rule for a group or repetition inside rule `parent`; its name
 * ("parent~7") cannot clash with a user's, '~' not being a name character. */
static int64_t new_sub_rule(parser *p, uint32_t parent, size_t pos) {
    char name[160];
    int len = snprintf(name, sizeof name, "%.100s~%zu", p->rules[parent].name, p->n_rules);
    int64_t id = new_rule(p, name, (size_t)len, pos);
    if (id >= 0) p->rules[id].defined = 1;
    return id;
}

static int is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static void skip_space(parser *p, int newline_ok) {
    while (p->pos < p->n) {
        char c = p->s[p->pos];
        if (c == ' ' || c == '\t' || c == '\r' || (newline_ok && c == '\n')) {
            p->pos++;
        } else if (c == '#') {
            while (p->pos < p->n && p->s[p->pos] != '\n') p->pos++;
        } else {
            break;
        }
    }
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

size_t cllm_grammar_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    if (n == 0) return 0;
    unsigned char c = s[0];
    size_t len;
    uint32_t v;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
    } else {
        return 0;
    }
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF))) || (len == 4 && (v < 0x10000 || v > 0x10FFFF)))
        return 0;
    *cp = v;
    return len;
}

/* One character of a literal or class at p->pos (escapes decoded). */
static int parse_char(parser *p, uint32_t *cp) {
    size_t start = p->pos;
    if (p->pos >= p->n) return fail_at(p, start, "unexpected end of grammar inside a literal or class");
    if (p->s[p->pos] == '\n') return fail_at(p, start, "unexpected end of line inside a literal or class");
    if (p->s[p->pos] != '\\') {
        size_t len = cllm_grammar_utf8_decode((const unsigned char *)p->s + p->pos, p->n - p->pos, cp);
        if (!len) return fail_at(p, start, "invalid UTF-8 in the grammar text");
        p->pos += len;
        return 1;
    }
    if (++p->pos >= p->n) return fail_at(p, start, "unexpected end of grammar after '\\'");
    char c = p->s[p->pos++];
    int digits = 0;
    switch (c) {
    case 'n': *cp = '\n'; return 1;
    case 'r': *cp = '\r'; return 1;
    case 't': *cp = '\t'; return 1;
    case '0': *cp = 0; return 1;
    case '\\': case '"': case '\'': case '[': case ']': case '-': case '^': case '/':
        *cp = (uint32_t)(unsigned char)c;
        return 1;
    case 'x': digits = 2; break;
    case 'u': digits = 4; break;
    case 'U': digits = 8; break;
    default: return fail_at(p, start, "unknown escape '\\%c'", c);
    }
    uint32_t v = 0;
    for (int i = 0; i < digits; i++) {
        int h = p->pos < p->n ? hex_value(p->s[p->pos]) : -1;
        if (h < 0) return fail_at(p, start, "'\\%c' needs %d hex digits", c, digits);
        v = v * 16 + (uint32_t)h;
        p->pos++;
    }
    if (v > 0x10FFFF) return fail_at(p, start, "code point U+%X is beyond U+10FFFF", v);
    *cp = v;
    return 1;
}

static int parse_alternates(parser *p, uint32_t rule, int nested);

static int64_t parse_uint(parser *p) {
    int64_t v = -1;
    while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
        v = (v < 0 ? 0 : v) * 10 + (p->s[p->pos++] - '0');
        if (v > CLLM_GRAMMAR_MAX_REPEAT) v = CLLM_GRAMMAR_MAX_REPEAT + 1;
    }
    return v;
}

/* Applies a repetition {min,max} (max -1: unbounded) to the elements
 * r->el[last..n) of rule `rule`. */
static int repeat_last(parser *p, uint32_t rule, size_t last, int64_t min, int64_t max, size_t pos) {
    rule_build *r = &p->rules[rule];
    uint32_t x;
    if (r->n - last == 1 && r->el[last].kind == EL_RULE) {
        x = r->el[last].a;
    } else {
        int64_t id = new_sub_rule(p, rule, pos);
        if (id < 0) return 0;
        r = &p->rules[rule]; /* rules may have moved */
        for (size_t i = last; i < r->n; i++)
            if (!push_el(p, (uint32_t)id, p->rules[rule].el[i])) return 0;
        if (!push_el(p, (uint32_t)id, (element){EL_END, 0, 0, 0})) return 0;
        x = (uint32_t)id;
    }
    p->rules[rule].n = last;
    for (int64_t i = 0; i < min; i++)
        if (!push_el(p, rule, (element){EL_RULE, 0, x, 0})) return 0;
    if (max == min) return 1;
    int64_t tail = -1; /* the rule for what follows the m copies */
    int64_t count = max < 0 ? 1 : max - min;
    for (int64_t k = 0; k < count; k++) {
        int64_t id = new_sub_rule(p, rule, pos);
        if (id < 0) return 0;
        /* id ::= x (tail | id) | <empty> */
        if (!push_el(p, (uint32_t)id, (element){EL_RULE, 0, x, 0})) return 0;
        if (max < 0) {
            if (!push_el(p, (uint32_t)id, (element){EL_RULE, 0, (uint32_t)id, 0})) return 0;
        } else if (tail >= 0) {
            if (!push_el(p, (uint32_t)id, (element){EL_RULE, 0, (uint32_t)tail, 0})) return 0;
        }
        if (!push_el(p, (uint32_t)id, (element){EL_ALT, 0, 0, 0})) return 0;
        if (!push_el(p, (uint32_t)id, (element){EL_END, 0, 0, 0})) return 0;
        tail = id;
    }
    return push_el(p, rule, (element){EL_RULE, 0, (uint32_t)tail, 0});
}

static int parse_sequence(parser *p, uint32_t rule, int nested) {
    size_t last = (size_t)-1; /* start of the last symbol, for a repetition */
    for (;;) {
        skip_space(p, nested);
        if (p->pos >= p->n) return 1;
        size_t start = p->pos;
        char c = p->s[p->pos];
        size_t before = p->rules[rule].n;
        if (c == '"') {
            p->pos++;
            while (p->pos < p->n && p->s[p->pos] != '"' && p->s[p->pos] != '\n') {
                uint32_t cp;
                if (!parse_char(p, &cp) || !push_range(p, cp, cp)) return 0;
                if (!push_el(p, rule, (element){EL_CHARS, 0, (uint32_t)(p->n_ranges - 1), 1})) return 0;
            }
            if (p->pos >= p->n || p->s[p->pos] == '\n') return fail_at(p, start, "unterminated string literal");
            p->pos++;
            last = before;
        } else if (c == '[') {
            p->pos++;
            int negate = p->pos < p->n && p->s[p->pos] == '^';
            if (negate) p->pos++;
            size_t first = p->n_ranges;
            while (p->pos < p->n && p->s[p->pos] != ']' && p->s[p->pos] != '\n') {
                uint32_t lo, hi;
                if (!parse_char(p, &lo)) return 0;
                hi = lo;
                if (p->pos + 1 < p->n && p->s[p->pos] == '-' && p->s[p->pos + 1] != ']') {
                    p->pos++;
                    size_t at = p->pos;
                    if (!parse_char(p, &hi)) return 0;
                    if (hi < lo) return fail_at(p, at, "character range ends before it starts");
                }
                if (!push_range(p, lo, hi)) return 0;
            }
            if (p->pos >= p->n || p->s[p->pos] == '\n') return fail_at(p, start, "unterminated character class");
            p->pos++;
            element e = {EL_CHARS, (uint8_t)negate, (uint32_t)first, (uint32_t)(p->n_ranges - first)};
            if (!push_el(p, rule, e)) return 0;
            last = before;
        } else if (c == '.') {
            p->pos++;
            if (!push_el(p, rule, (element){EL_CHARS, 1, 0, 0})) return 0;
            last = before;
        } else if (is_name_char(c)) {
            size_t len = 0;
            while (p->pos + len < p->n && is_name_char(p->s[p->pos + len])) len++;
            int64_t id = find_or_add_rule(p, p->s + p->pos, len, p->pos);
            if (id < 0) return 0;
            p->pos += len;
            if (!push_el(p, rule, (element){EL_RULE, 0, (uint32_t)id, 0})) return 0;
            last = before;
        } else if (c == '(') {
            p->pos++;
            int64_t id = new_sub_rule(p, rule, start);
            if (id < 0 || !parse_alternates(p, (uint32_t)id, 1)) return 0;
            skip_space(p, 1);
            if (p->pos >= p->n || p->s[p->pos] != ')') return fail_at(p, start, "'(' is never closed");
            p->pos++;
            if (!push_el(p, (uint32_t)id, (element){EL_END, 0, 0, 0})) return 0;
            if (!push_el(p, rule, (element){EL_RULE, 0, (uint32_t)id, 0})) return 0;
            last = before;
        } else if (c == '*' || c == '+' || c == '?' || c == '{') {
            if (last == (size_t)-1) return fail_at(p, start, "'%c' has nothing before it to repeat", c);
            int64_t min = c == '+' ? 1 : 0, max = c == '?' ? 1 : -1;
            p->pos++;
            if (c == '{') {
                skip_space(p, 0);
                min = parse_uint(p);
                if (min < 0) return fail_at(p, start, "expected a number after '{'");
                skip_space(p, 0);
                max = min;
                if (p->pos < p->n && p->s[p->pos] == ',') {
                    p->pos++;
                    skip_space(p, 0);
                    max = parse_uint(p);
                    skip_space(p, 0);
                }
                if (p->pos >= p->n || p->s[p->pos] != '}') return fail_at(p, start, "expected '}' to close '{'");
                p->pos++;
                if (min > CLLM_GRAMMAR_MAX_REPEAT || max > CLLM_GRAMMAR_MAX_REPEAT)
                    return fail_at(p, start, "repetition counts are limited to %d", CLLM_GRAMMAR_MAX_REPEAT);
                if (max >= 0 && max < min) return fail_at(p, start, "repetition {%lld,%lld} has max < min",
                                                          (long long)min, (long long)max);
            }
            if (!repeat_last(p, rule, last, min, max, start)) return 0;
            last = (size_t)-1; /* "a**" is an error, as in llama.cpp */
        } else {
            return 1;
        }
    }
}

static int parse_alternates(parser *p, uint32_t rule, int nested) {
    if (!parse_sequence(p, rule, nested)) return 0;
    while (p->pos < p->n && p->s[p->pos] == '|') {
        p->pos++;
        if (!push_el(p, rule, (element){EL_ALT, 0, 0, 0})) return 0;
        skip_space(p, 1);
        if (!parse_sequence(p, rule, nested)) return 0;
    }
    return 1;
}

static int parse_rule(parser *p) {
    size_t start = p->pos, len = 0;
    while (p->pos + len < p->n && is_name_char(p->s[p->pos + len])) len++;
    if (len == 0) return fail_at(p, start, "expected a rule name, found '%c'", p->s[p->pos]);
    int64_t id = find_or_add_rule(p, p->s + start, len, start);
    if (id < 0) return 0;
    if (p->rules[id].defined) return fail_at(p, start, "rule '%.*s' is defined twice", (int)len, p->s + start);
    p->rules[id].defined = 1;
    p->rules[id].pos = start;
    p->pos += len;
    skip_space(p, 0);
    if (p->n - p->pos < 3 || memcmp(p->s + p->pos, "::=", 3))
        return fail_at(p, p->pos, "expected '::=' after rule name '%.*s'", (int)len, p->s + start);
    p->pos += 3;
    skip_space(p, 1);
    if (!parse_alternates(p, (uint32_t)id, 0)) return 0;
    if (!push_el(p, (uint32_t)id, (element){EL_END, 0, 0, 0})) return 0;
    skip_space(p, 0);
    if (p->pos < p->n && p->s[p->pos] != '\n') {
        char c = p->s[p->pos];
        if (c == ')') return fail_at(p, p->pos, "')' without a matching '('");
        return fail_at(p, p->pos, "unexpected '%c' in rule '%.*s'", c, (int)len, p->s + start);
    }
    return 1;
}

/* nullable[r]: rule r can match the empty string (fixpoint). */
static void compute_nullable(const cllm_grammar *g, uint8_t *nullable) {
    memset(nullable, 0, (size_t)g->n_rules);
    for (int changed = 1; changed;) {
        changed = 0;
        for (int r = 0; r < g->n_rules; r++) {
            if (nullable[r]) continue;
            for (uint32_t a = 0; a < g->alt_count[r] && !nullable[r]; a++) {
                const element *e = g->el + g->alts[g->alt_first[r] + a];
                while (e->kind == EL_RULE && nullable[e->a]) e++;
                if (e->kind == EL_ALT || e->kind == EL_END) nullable[r] = changed = 1;
            }
        }
    }
}

/* Depth-first search over "rule r can begin with rule s" edges; state 1 =
 * on the path, 2 = done. Returns a rule on a cycle, or -1. */
static int left_cycle(const cllm_grammar *g, const uint8_t *nullable, uint8_t *state, int r) {
    if (state[r] == 1) return r;
    if (state[r] == 2) return -1;
    state[r] = 1;
    for (uint32_t a = 0; a < g->alt_count[r]; a++) {
        for (const element *e = g->el + g->alts[g->alt_first[r] + a]; e->kind == EL_RULE; e++) {
            int c = left_cycle(g, nullable, state, (int)e->a);
            if (c >= 0) return c;
            if (!nullable[e->a]) break;
        }
    }
    state[r] = 2;
    return -1;
}

static cllm_status build_table(parser *p, cllm_grammar **out) {
    cllm_grammar *g = calloc(1, sizeof *g);
    if (!g) return fail_nomem(p), p->st;
    g->n_rules = (int)p->n_rules;
    g->names = calloc(p->n_rules, sizeof *g->names);
    g->alt_first = calloc(p->n_rules, sizeof *g->alt_first);
    g->alt_count = calloc(p->n_rules, sizeof *g->alt_count);
    size_t n_el = 0, n_alts = 0;
    for (size_t i = 0; i < p->n_rules; i++) {
        n_el += p->rules[i].n;
        for (size_t k = 0; k < p->rules[i].n; k++) n_alts += p->rules[i].el[k].kind == EL_ALT;
        n_alts++;
    }
    g->el = malloc((n_el ? n_el : 1) * sizeof *g->el);
    g->alts = malloc((n_alts ? n_alts : 1) * sizeof *g->alts);
    g->ranges = malloc((p->n_ranges ? 2 * p->n_ranges : 1) * sizeof *g->ranges);
    if (!g->names || !g->alt_first || !g->alt_count || !g->el || !g->alts || !g->ranges) {
        cllm_grammar_destroy(g);
        return fail_nomem(p), p->st;
    }
    if (p->n_ranges) memcpy(g->ranges, p->ranges, 2 * p->n_ranges * sizeof *g->ranges);
    g->n_ranges = p->n_ranges;
    size_t at = 0, alt = 0;
    for (size_t i = 0; i < p->n_rules; i++) {
        g->names[i] = p->rules[i].name;
        p->rules[i].name = NULL;
        g->alt_first[i] = (uint32_t)alt;
        g->alts[alt++] = (uint32_t)at;
        for (size_t k = 0; k < p->rules[i].n; k++) {
            g->el[at++] = p->rules[i].el[k];
            if (p->rules[i].el[k].kind == EL_ALT) g->alts[alt++] = (uint32_t)at;
        }
        g->alt_count[i] = (uint32_t)(alt - g->alt_first[i]);
    }
    g->n_el = n_el;
    *out = g;
    return CLLM_OK;
}

cllm_status cllm_grammar_parse(const char *text, size_t len, const char *name, cllm_grammar **out,
                               cllm_error *err) {
    *out = NULL;
    parser p = {.s = text, .n = len, .name = name ? name : "grammar", .err = err, .st = CLLM_OK};
    if (len > CLLM_GRAMMAR_MAX_TEXT)
        return cllm_error_set(err, CLLM_ERR_LIMIT, "%s: the grammar has %zu bytes (limit %u)", p.name, len,
                              CLLM_GRAMMAR_MAX_TEXT);
    cllm_grammar *g = NULL;
    for (;;) {
        skip_space(&p, 1);
        if (p.pos >= p.n) break;
        if (!parse_rule(&p)) goto done;
    }
    for (size_t i = 0; i < p.n_rules; i++)
        if (!p.rules[i].defined) {
            fail_at(&p, p.rules[i].use_pos, "rule '%s' is used but never defined", p.rules[i].name);
            goto done;
        }
    int64_t root = -1;
    for (size_t i = 0; i < p.n_rules; i++)
        if (!strcmp(p.rules[i].name, "root")) root = (int64_t)i;
    if (root < 0) {
        p.st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: the grammar has no 'root' rule", p.name);
        goto done;
    }
    if (build_table(&p, &g) != CLLM_OK) goto done;
    g->root = (int)root;
    uint8_t *nullable = calloc((size_t)g->n_rules, 2);
    if (!nullable) {
        fail_nomem(&p);
        goto done;
    }
    compute_nullable(g, nullable); /* nullable[0..n_rules), search state after it */
    for (int r = 0; r < g->n_rules && p.st == CLLM_OK; r++) {
        int c = left_cycle(g, nullable, nullable + g->n_rules, r);
        if (c >= 0)
            fail_at(&p, p.rules[c].pos,
                    "rule '%s' is left-recursive (it can reach itself without consuming a character; "
                    "repeating something that can be empty does this too)",
                    g->names[c]);
    }
    free(nullable);
done:
    for (size_t i = 0; i < p.n_rules; i++) {
        free(p.rules[i].name);
        free(p.rules[i].el);
    }
    free(p.rules);
    free(p.ranges);
    if (p.st != CLLM_OK) {
        cllm_grammar_destroy(g);
        return p.st;
    }
    *out = g;
    return CLLM_OK;
}

/* ---- the matcher --------------------------------------------------------- */

typedef struct {
    uint32_t off, len, hash; /* positions data[off..off+len), bottom first */
} stack_desc;

typedef struct {
    size_t first, end;     /* st[first..end) */
    uint64_t hash;         /* independent of the stacks' order */
} interned_set;

typedef struct {
    uint64_t key;          /* set id << 21 | code point */
    int32_t next;          /* the set reached, or -1: no stack takes the code point */
    uint32_t gen;
} memo_entry;

#define MEMO_SIZE (1u << 16) /* transitions remembered per mask call (beyond half of it: recomputed) */

struct cllm_grammar_matcher {
    const cllm_grammar *g;
    uint32_t *data;        /* [n_data] stack contents of every live set */
    size_t n_data, cap_data;
    stack_desc *st;        /* [n_st]; the current set is st[0..n_cur) */
    size_t n_st, cap_st;
    size_t n_cur;
    uint32_t *tmp;         /* [n_tmp] scratch stacks while settling */
    size_t n_tmp, cap_tmp;
    uint32_t partial;      /* bits of an incomplete UTF-8 character */
    int need;              /* its continuation bytes still to come; 0 = none */
    int oom;               /* an allocation failed: treated as a rejection */
    /* mask only: the distinct sets met in one walk, and the transitions
     * between them already computed (see mask_walk) */
    interned_set *sets;    /* [n_sets] */
    size_t n_sets, cap_sets;
    memo_entry *memo;      /* [MEMO_SIZE] open addressing, valid when gen matches */
    uint32_t memo_gen;
    size_t memo_used;
};

static int is_alt_end(const element *e) { return e->kind == EL_ALT || e->kind == EL_END; }

/* Adds the settled stack tmp[off..off+len) to the set that starts at
 * st[first], unless the set has it already. */
static void add_stack(cllm_grammar_matcher *m, size_t first, size_t off, uint32_t len) {
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < len; i++) h = (h ^ m->tmp[off + i]) * 16777619u;
    for (size_t i = first; i < m->n_st; i++) {
        const stack_desc *d = &m->st[i];
        if (d->hash == h && d->len == len && (len == 0 || !memcmp(m->data + d->off, m->tmp + off, len * sizeof *m->tmp)))
            return;
    }
    if (m->n_st - first >= CLLM_GRAMMAR_MAX_STACKS) return; /* documented cap: further parses dropped */
    if (!grow((void **)&m->data, &m->cap_data, m->n_data + len, sizeof *m->data) ||
        !grow((void **)&m->st, &m->cap_st, m->n_st + 1, sizeof *m->st)) {
        m->oom = 1;
        return;
    }
    if (len) memcpy(m->data + m->n_data, m->tmp + off, len * sizeof *m->tmp);
    m->st[m->n_st++] = (stack_desc){(uint32_t)m->n_data, len, h};
    m->n_data += len;
}

/* Settles the stack tmp[off..off+len) (see the top of the file) into the set
 * starting at st[first]. The region is this call's own to change. */
static void settle(cllm_grammar_matcher *m, size_t first, size_t off, uint32_t len) {
    const cllm_grammar *g = m->g;
    for (;;) {
        if (len == 0) {
            add_stack(m, first, off, 0);
            return;
        }
        uint32_t top = m->tmp[off + len - 1];
        const element *e = &g->el[top];
        if (is_alt_end(e)) {
            len--; /* the alternative is done: continue in the rule below */
            continue;
        }
        if (e->kind == EL_CHARS) {
            add_stack(m, first, off, len);
            return;
        }
        uint32_t base = len;
        if (is_alt_end(&g->el[top + 1])) base--; /* tail call: nothing left here */
        else m->tmp[off + len - 1] = top + 1;
        if (base + 1 > CLLM_GRAMMAR_MAX_DEPTH) return; /* documented cap: this parse is dropped */
        for (uint32_t a = 0; a < g->alt_count[e->a]; a++) {
            size_t nt = m->n_tmp;
            if (!grow((void **)&m->tmp, &m->cap_tmp, nt + base + 1, sizeof *m->tmp)) {
                m->oom = 1;
                return;
            }
            memcpy(m->tmp + nt, m->tmp + off, base * sizeof *m->tmp);
            m->tmp[nt + base] = g->alts[g->alt_first[e->a] + a];
            m->n_tmp = nt + base + 1;
            settle(m, first, nt, base + 1);
            m->n_tmp = nt;
        }
        return;
    }
}

/* Appends to the arena the set reached from st[from..to) by code point cp;
 * returns the number of stacks in it. */
static size_t step_cp(cllm_grammar_matcher *m, size_t from, size_t to, uint32_t cp) {
    size_t first = m->n_st;
    for (size_t i = from; i < to; i++) {
        stack_desc d = m->st[i];
        if (d.len == 0 || !chars_match(m->g, &m->g->el[m->data[d.off + d.len - 1]], cp)) continue;
        size_t nt = m->n_tmp;
        if (!grow((void **)&m->tmp, &m->cap_tmp, nt + d.len, sizeof *m->tmp)) {
            m->oom = 1;
            break;
        }
        memcpy(m->tmp + nt, m->data + d.off, d.len * sizeof *m->tmp);
        m->tmp[nt + d.len - 1]++;
        m->n_tmp = nt + d.len;
        settle(m, first, nt, d.len);
        m->n_tmp = nt;
    }
    return m->n_st - first;
}

/* 1 when some stack of st[from..to) can take a character in [lo, hi]. */
static int partial_ok(const cllm_grammar_matcher *m, size_t from, size_t to, uint32_t lo, uint32_t hi) {
    for (size_t i = from; i < to; i++) {
        stack_desc d = m->st[i];
        if (d.len && chars_intersect(m->g, &m->g->el[m->data[d.off + d.len - 1]], lo, hi)) return 1;
    }
    return 0;
}

/* End of the data of the sets before st[k] (data is appended with its descriptor, so offsets grow with k). */
static size_t data_end(const cllm_grammar_matcher *m, size_t k) {
    return k == 0 ? 0 : m->st[k - 1].off + m->st[k - 1].len;
}

/* Truncates the arena to the sets before st[first]. */
static void drop_sets(cllm_grammar_matcher *m, size_t first) {
    m->n_data = data_end(m, first);
    m->n_st = first;
}

/* Moves the set st[from..n_st) down to start at st[to] (to <= from), dropping
 * what was between; its data moves down likewise. */
static void move_set_down(cllm_grammar_matcher *m, size_t from, size_t to) {
    if (from == to) return;
    size_t dst = data_end(m, to), src = data_end(m, from), n = m->n_st - from;
    if (m->n_data > src) memmove(m->data + dst, m->data + src, (m->n_data - src) * sizeof *m->data);
    memmove(m->st + to, m->st + from, n * sizeof *m->st);
    for (size_t i = 0; i < n; i++) m->st[to + i].off -= (uint32_t)(src - dst);
    m->n_data -= src - dst;
    m->n_st = to + n;
}

/* UTF-8 state machine for one byte. Returns 1 and sets *cp when a character
 * completes, 0 when more bytes are needed (partial/need updated), -1 when
 * the byte is invalid here: not UTF-8, an overlong form, a surrogate, or past
 * U+10FFFF (each caught at the byte that decides it). */
static int utf8_byte(uint32_t *partial, int *need, uint8_t b, uint32_t *cp) {
    if (*need == 0) {
        if (b < 0x80) {
            *cp = b;
            return 1;
        }
        if (b >= 0xC2 && b <= 0xDF) *partial = b & 0x1F, *need = 1;
        else if (b >= 0xE0 && b <= 0xEF) *partial = b & 0x0F, *need = 2;
        else if (b >= 0xF0 && b <= 0xF4) *partial = b & 0x07, *need = 3;
        else return -1;
        return 0;
    }
    if ((b & 0xC0) != 0x80) return -1;
    /* The second byte of E0, ED, F0, F4 (partial is the lead's bits then;
     * at a 4-byte form's third byte it is >= 0x10, so these cannot clash). */
    if (*need == 2 && *partial == 0x0 && b < 0xA0) return -1;  /* E0: overlong */
    if (*need == 2 && *partial == 0xD && b > 0x9F) return -1;  /* ED: surrogate */
    if (*need == 3 && *partial == 0x0 && b < 0x90) return -1;  /* F0: overlong */
    if (*need == 3 && *partial == 0x4 && b > 0x8F) return -1;  /* F4: > U+10FFFF */
    *partial = (*partial << 6) | (b & 0x3F);
    if (--*need > 0) return 0;
    *cp = *partial;
    return 1;
}
/* The code points an incomplete character can still become. Right after a
 * 3- or 4-byte lead the bits alone allow overlong values (E0 gives 0..0xFFF),
 * which no valid completion reaches: clamp to the form's smallest value
 * (after a 4-byte form's second byte the bits are already >= 0x10000). */
static void partial_range(uint32_t partial, int need, uint32_t *lo, uint32_t *hi) {
    *lo = partial << (6 * need);
    *hi = *lo | ((1u << (6 * need)) - 1);
    if (need == 2 && *lo < 0x800) *lo = 0x800;
    if (need == 3 && *lo < 0x10000) *lo = 0x10000;
    if (*hi > 0x10FFFF) *hi = 0x10FFFF;
}

void cllm_grammar_matcher_reset(cllm_grammar_matcher *m) {
    m->n_data = m->n_st = m->n_tmp = m->n_cur = 0;
    m->need = 0;
    m->partial = 0;
    m->oom = 0;
    if (!grow((void **)&m->tmp, &m->cap_tmp, 1, sizeof *m->tmp)) {
        m->oom = 1;
        return;
    }
    /* One stack per alternative of root (no element refers to root itself). */
    for (uint32_t a = 0; a < m->g->alt_count[m->g->root]; a++) {
        m->tmp[0] = m->g->alts[m->g->alt_first[m->g->root] + a];
        m->n_tmp = 1;
        settle(m, 0, 0, 1);
    }
    m->n_tmp = 0;
    m->n_cur = m->n_st;
}

cllm_grammar_matcher *cllm_grammar_matcher_create(const cllm_grammar *g, cllm_error *err) {
    cllm_grammar_matcher *m = calloc(1, sizeof *m);
    if (!m) {
        cllm_error_set(err, CLLM_ERR_NOMEM, "grammar: out of memory for the matcher");
        return NULL;
    }
    m->g = g;
    cllm_grammar_matcher_reset(m);
    if (m->oom) {
        cllm_grammar_matcher_destroy(m);
        cllm_error_set(err, CLLM_ERR_NOMEM, "grammar: out of memory for the matcher");
        return NULL;
    }
    return m;
}

void cllm_grammar_matcher_destroy(cllm_grammar_matcher *m) {
    if (!m) return;
    free(m->sets);
    free(m->memo);
    free(m->data);
    free(m->st);
    free(m->tmp);
    free(m);
}

/* Runs bytes through the matcher; with commit the result becomes the
 * current state, without it the matcher is left as it was either way. */
static int feed(cllm_grammar_matcher *m, const uint8_t *bytes, size_t n, int commit) {
    uint32_t partial = m->partial;
    int need = m->need;
    size_t work = m->n_cur; /* the working set starts here; the current one stays below until done */
    size_t from = 0, to = m->n_cur;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp;
        int r = utf8_byte(&partial, &need, bytes[i], &cp);
        if (r < 0) goto reject;
        if (r == 0) continue;
        size_t first = m->n_st;
        if (step_cp(m, from, to, cp) == 0 || m->oom) goto reject;
        if (first != work) move_set_down(m, first, work);
        from = work;
        to = m->n_st;
    }
    if (need > 0) {
        uint32_t lo, hi;
        partial_range(partial, need, &lo, &hi);
        if (!partial_ok(m, from, to, lo, hi)) goto reject;
    }
    if (!commit) {
        drop_sets(m, m->n_cur);
        return 1;
    }
    if (from != 0) move_set_down(m, from, 0);
    m->n_cur = m->n_st;
    m->partial = partial;
    m->need = need;
    return 1;
reject:
    drop_sets(m, m->n_cur);
    m->oom = 0;
    return 0;
}

int cllm_grammar_matcher_accept(cllm_grammar_matcher *m, const uint8_t *bytes, size_t n) {
    return feed(m, bytes, n, 1);
}

int cllm_grammar_matcher_complete(const cllm_grammar_matcher *m) {
    if (m->need) return 0;
    for (size_t i = 0; i < m->n_cur; i++)
        if (m->st[i].len == 0) return 1;
    return 0;
}

int cllm_grammar_matcher_can_continue(const cllm_grammar_matcher *m) {
    for (size_t i = 0; i < m->n_cur; i++)
        if (m->st[i].len > 0) return 1;
    return 0;
}

/* ---- the vocabulary trie and the mask ------------------------------------ */

enum { TOKEN_NEVER = 0, TOKEN_TEXT, TOKEN_EOG };

typedef struct {
    int32_t first_child, next_sibling;
    int32_t first_token; /* tokens whose bytes end here, chained through next_token */
    uint8_t byte;
} trie_node;

struct cllm_grammar_vocab {
    int V;
    uint8_t *kind;        /* [V] TOKEN_* */
    uint8_t *bytes;       /* all token bytes */
    size_t *off;          /* [V + 1] token i's bytes are bytes[off[i]..off[i+1]) */
    int32_t *next_token;  /* [V] */
    trie_node *nodes;     /* [n_nodes], node 0 is the root (the empty prefix) */
    size_t n_nodes, cap_nodes;
    int32_t *eog;         /* [n_eog] */
    int n_eog;
};

int cllm_grammar_vocab_size(const cllm_grammar_vocab *v) { return v->V; }

void cllm_grammar_vocab_destroy(cllm_grammar_vocab *v) {
    if (!v) return;
    free(v->kind);
    free(v->bytes);
    free(v->off);
    free(v->next_token);
    free(v->nodes);
    free(v->eog);
    free(v);
}

static int32_t trie_child(cllm_grammar_vocab *v, int32_t node, uint8_t b) {
    int32_t c = v->nodes[node].first_child;
    while (c >= 0 && v->nodes[c].byte != b) c = v->nodes[c].next_sibling;
    if (c >= 0) return c;
    if (!grow((void **)&v->nodes, &v->cap_nodes, v->n_nodes + 1, sizeof *v->nodes)) return -1;
    c = (int32_t)v->n_nodes++;
    v->nodes[c] = (trie_node){-1, v->nodes[node].first_child, -1, b};
    v->nodes[node].first_child = c;
    return c;
}

cllm_grammar_vocab *cllm_grammar_vocab_create(int V, const uint8_t *const *bytes, const size_t *len,
                                              const int32_t *eog, int n_eog, cllm_error *err) {
    if (V <= 0 || n_eog < 0) {
        cllm_error_set(err, CLLM_ERR_ARG, "grammar vocabulary: V must be > 0 (got %d)", V);
        return NULL;
    }
    cllm_grammar_vocab *v = calloc(1, sizeof *v);
    size_t total = 0;
    for (int i = 0; i < V; i++) total += len[i];
    if (!v || !(v->kind = calloc((size_t)V, 1)) || !(v->off = malloc(((size_t)V + 1) * sizeof *v->off)) ||
        !(v->bytes = malloc(total ? total : 1)) || !(v->next_token = malloc((size_t)V * sizeof *v->next_token)) ||
        !(v->eog = malloc((size_t)(n_eog ? n_eog : 1) * sizeof *v->eog)) ||
        !grow((void **)&v->nodes, &v->cap_nodes, 1, sizeof *v->nodes))
        goto nomem;
    v->V = V;
    v->nodes[0] = (trie_node){-1, -1, -1, 0};
    v->n_nodes = 1;
    size_t at = 0;
    for (int i = 0; i < V; i++) {
        v->off[i] = at;
        v->next_token[i] = -1;
        if (len[i]) memcpy(v->bytes + at, bytes[i], len[i]);
        at += len[i];
        if (len[i] == 0) continue;
        v->kind[i] = TOKEN_TEXT;
        int32_t node = 0;
        for (size_t k = 0; k < len[i] && node >= 0; k++) node = trie_child(v, node, bytes[i][k]);
        if (node < 0) goto nomem;
        v->next_token[i] = v->nodes[node].first_token;
        v->nodes[node].first_token = i;
    }
    v->off[V] = at;
    for (int i = 0; i < n_eog; i++) {
        if (eog[i] < 0 || eog[i] >= V) continue;
        v->kind[eog[i]] = TOKEN_EOG;
        v->eog[v->n_eog++] = eog[i];
    }
    return v;
nomem:
    cllm_grammar_vocab_destroy(v);
    cllm_error_set(err, CLLM_ERR_NOMEM, "grammar vocabulary: out of memory for %d tokens", V);
    return NULL;
}

cllm_grammar_vocab *cllm_grammar_vocab_from_tokenizer(const cllm_tokenizer *tok, const int32_t *eog, int n_eog,
                                                      cllm_error *err) {
    int V = (int)cllm_tokenizer_n_vocab(tok);
    const uint8_t **bytes = calloc((size_t)V, sizeof *bytes);
    size_t *len = calloc((size_t)V, sizeof *len);
    cllm_grammar_vocab *v = NULL;
    if (!bytes || !len) {
        cllm_error_set(err, CLLM_ERR_NOMEM, "grammar vocabulary: out of memory for %d tokens", V);
        goto done;
    }
    for (int i = 0; i < V; i++) {
        if (cllm_tokenizer_token_kind(tok, (uint32_t)i) != CLLM_TOKEN_NORMAL) continue;
        cllm_error ignored; /* a hole has no bytes: it never matches */
        if (cllm_tokenizer_token_bytes(tok, (uint32_t)i, &bytes[i], &len[i], &ignored) != CLLM_OK) len[i] = 0;
    }
    v = cllm_grammar_vocab_create(V, bytes, len, eog, n_eog, err);
done:
    free(bytes);
    free(len);
    return v;
}

/* Order-independent hash of the set st[first..end) (stacks are merged, so a
 * set is a set: the same stacks in another order are the same state). */
static uint64_t set_hash(const cllm_grammar_matcher *m, size_t first, size_t end) {
    uint64_t h = end - first;
    for (size_t i = first; i < end; i++) h += (m->st[i].hash + 0x9E3779B97F4A7C15ull) * 0xBF58476D1CE4E5B9ull;
    return h;
}

static int same_set(const cllm_grammar_matcher *m, const interned_set *a, size_t first, size_t end) {
    if (a->end - a->first != end - first) return 0;
    for (size_t i = first; i < end; i++) {
        const stack_desc *d = &m->st[i];
        size_t k = a->first;
        while (k < a->end && !(m->st[k].hash == d->hash && m->st[k].len == d->len &&
                               (d->len == 0 || !memcmp(m->data + m->st[k].off, m->data + d->off,
                                                       d->len * sizeof *m->data))))
            k++;
        if (k == a->end) return 0;
    }
    return 1;
}

/* The id of the set st[first..n_st) (just built): an earlier identical set's,
 * whose copy is then dropped, or a new one. -1 when out of memory. */
static int32_t intern_set(cllm_grammar_matcher *m, size_t first) {
    uint64_t h = set_hash(m, first, m->n_st);
    for (size_t i = 0; i < m->n_sets; i++)
        if (m->sets[i].hash == h && same_set(m, &m->sets[i], first, m->n_st)) {
            drop_sets(m, first);
            return (int32_t)i;
        }
    if (!grow((void **)&m->sets, &m->cap_sets, m->n_sets + 1, sizeof *m->sets)) return -1;
    m->sets[m->n_sets] = (interned_set){first, m->n_st, h};
    return (int32_t)m->n_sets++;
}

/* The set reached from set `id` by code point cp: remembered, or computed
 * (appended to the arena, interned) and remembered. -1: none. */
static int32_t transition(cllm_grammar_matcher *m, int32_t id, uint32_t cp) {
    uint64_t key = (uint64_t)id << 21 | cp;
    memo_entry *e = NULL;
    if (m->memo) {
        size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 48) & (MEMO_SIZE - 1);
        while (m->memo[i].gen == m->memo_gen && m->memo[i].key != key) i = (i + 1) & (MEMO_SIZE - 1);
        e = &m->memo[i];
        if (e->gen == m->memo_gen) return e->next;
    }
    size_t first = m->n_st;
    int32_t next = -1;
    if (step_cp(m, m->sets[id].first, m->sets[id].end, cp) == 0) drop_sets(m, first);
    else next = intern_set(m, first);
    if (e && m->memo_used < MEMO_SIZE / 2) {
        *e = (memo_entry){key, next, m->memo_gen};
        m->memo_used++;
    }
    return next;
}

/* Marks the tokens below trie node `node` that set `id` (with the partial
 * character partial/need) can take; returns how many. Tokens share
 * prefixes through the trie, and different prefixes often lead to the same
 * set (any letter inside a JSON string does), so each distinct (set, code
 * point) step is computed once per walk. */
static int mask_walk(cllm_grammar_matcher *m, const cllm_grammar_vocab *v, int32_t node, int32_t id,
                     uint32_t partial, int need, uint8_t *allowed) {
    int n = 0;
    for (int32_t c = v->nodes[node].first_child; c >= 0; c = v->nodes[c].next_sibling) {
        uint32_t p = partial, cp;
        int nd = need;
        int r = utf8_byte(&p, &nd, v->nodes[c].byte, &cp);
        if (r < 0) continue;
        int32_t next = id;
        if (r == 1) {
            if ((next = transition(m, id, cp)) < 0) continue;
        } else {
            uint32_t lo, hi;
            partial_range(p, nd, &lo, &hi);
            if (!partial_ok(m, m->sets[id].first, m->sets[id].end, lo, hi)) continue;
        }
        for (int32_t t = v->nodes[c].first_token; t >= 0; t = v->next_token[t]) {
            allowed[t] = 1;
            n++;
        }
        n += mask_walk(m, v, c, next, p, nd, allowed);
    }
    return n;
}

int cllm_grammar_matcher_mask(cllm_grammar_matcher *m, const cllm_grammar_vocab *v, uint8_t *allowed) {
    memset(allowed, 0, (size_t)v->V);
    if (!m->memo) m->memo = calloc(MEMO_SIZE, sizeof *m->memo); /* without it: every step computed */
    if (++m->memo_gen == 0) { /* the stamps wrapped: clear them */
        if (m->memo) memset(m->memo, 0, MEMO_SIZE * sizeof *m->memo);
        m->memo_gen = 1;
    }
    m->memo_used = 0;
    m->n_sets = 0;
    int n = 0;
    if (grow((void **)&m->sets, &m->cap_sets, 1, sizeof *m->sets)) {
        m->sets[m->n_sets++] = (interned_set){0, m->n_cur, set_hash(m, 0, m->n_cur)};
        n = mask_walk(m, v, 0, 0, m->partial, m->need, allowed);
    }
    drop_sets(m, m->n_cur);
    m->n_sets = 0;
    m->oom = 0;
    if (cllm_grammar_matcher_complete(m))
        for (int i = 0; i < v->n_eog; i++) n += !allowed[v->eog[i]], allowed[v->eog[i]] = 1;
    return n;
}

/* accept_token (commit) or check_token (not). */
static int feed_token(cllm_grammar_matcher *m, const cllm_grammar_vocab *v, int32_t token, int commit) {
    if (token < 0 || token >= v->V || v->kind[token] == TOKEN_NEVER) return 0;
    if (v->kind[token] == TOKEN_EOG) return cllm_grammar_matcher_complete(m);
    return feed(m, v->bytes + v->off[token], v->off[token + 1] - v->off[token], commit);
}

int cllm_grammar_matcher_accept_token(cllm_grammar_matcher *m, const cllm_grammar_vocab *v, int32_t token) {
    return feed_token(m, v, token, 1);
}

int cllm_grammar_matcher_check_token(cllm_grammar_matcher *m, const cllm_grammar_vocab *v, int32_t token) {
    return feed_token(m, v, token, 0);
}

/*
 * json_schema.c: JSON Schema -> GBNF (grammar.h), and the generic JSON
 * grammar.
 *
 * One rule per schema node, named after its path ("root-address-city"), plus
 * shared rules for the JSON lexicon (string, number, ws, ...), emitted only
 * when used. Objects list their properties in the schema's order; required
 * ones must appear, optional ones may be left out, and no other property is
 * generated (as if "additionalProperties": false, which is what constrained
 * output wants; "additionalProperties": true or a schema is refused when the
 * object has properties, and an object without "properties" is a map whose
 * values follow "additionalProperties", any JSON value by default). Whitespace
 * between tokens is bounded as in llama.cpp (one space, or a newline and up
 * to 20 spaces or tabs) and so are a number's digits (16 before and after the
 * point, 3 in the exponent), so a model cannot pad or count forever.
 *
 * Every keyword is either handled, ignored as an annotation (title,
 * description, ...), or refused with its name and JSON pointer: a schema
 * keyword that was silently dropped would let invalid output through.
 * String "pattern" (a regular-expression subset), "format" (date, time,
 * date-time, uuid, ipv4) and integer bounds are translated below.
 * Not here: $ref, allOf/oneOf/not, if/then/else, bounds on non-integer
 * numbers, multipleOf (docs/GRAMMAR.md lists them).
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/infer/grammar.h"
#include "grammar_internal.h"

#define JSON_LEXICON                                                                               \
    "value ::= object | array | string | number | boolean | null\n"                                \
    "object ::= \"{\" ws ( string ws \":\" ws value ws ( \",\" ws string ws \":\" ws value ws )* )? \"}\"\n" \
    "array ::= \"[\" ws ( value ws ( \",\" ws value ws )* )? \"]\"\n"                               \
    "string ::= \"\\\"\" char* \"\\\"\"\n"                                                          \
    "char ::= [^\"\\\\\\x00-\\x1F] | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4} )\n"           \
    "number ::= integer ( \".\" [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?\n"                       \
    "integer ::= \"-\"? ( [0-9] | [1-9] [0-9]{1,15} )\n"                                            \
    "boolean ::= \"true\" | \"false\"\n"                                                            \
    "null ::= \"null\"\n"                                                                           \
    "ws ::= | \" \" | \"\\n\" [ \\t]{0,20}\n"

static const char json_object_grammar[] =
    "# Any JSON object (response_format {\"type\": \"json_object\"}).\n"
    "root ::= object\n" JSON_LEXICON;

const char *cllm_grammar_json_object_text(void) { return json_object_grammar; }

typedef struct {
    FILE *out;        /* the rules written so far (open_memstream) */
    char **names;     /* [n_names] rule names used, for unique names */
    size_t n_names, cap_names;
    const char *name; /* for messages */
    cllm_error *err;
    cllm_status st;
    int depth;
} converter;

#define MAX_SCHEMA_DEPTH 64

__attribute__((format(printf, 3, 4))) static int refuse(converter *c, cllm_status st, const char *fmt, ...) {
    if (c->st != CLLM_OK) return 0;
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->st = cllm_error_set(c->err, st, "%s: %s", c->name, msg);
    return 0;
}

/* A JSON pointer for messages: the root's is "" and reads better as "/". */
static const char *at(const char *path) { return *path ? path : "/"; }

/* A unique rule name from a hint (GBNF name characters only), owned by c. */
static const char *unique_name(converter *c, const char *hint) {
    char base[120];
    size_t n = 0;
    for (const char *h = hint; *h && n < 100; h++) {
        char ch = *h;
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-';
        base[n++] = ok ? ch : '-';
    }
    base[n] = 0;
    char name[140];
    snprintf(name, sizeof name, "%s", base);
    for (int k = 2;; k++) {
        size_t i = 0;
        while (i < c->n_names && strcmp(c->names[i], name)) i++;
        if (i == c->n_names) break;
        snprintf(name, sizeof name, "%s-%d", base, k);
    }
    if (c->n_names == c->cap_names) {
        size_t cap = c->cap_names ? 2 * c->cap_names : 32;
        char **nn = realloc(c->names, cap * sizeof *nn);
        if (!nn) return refuse(c, CLLM_ERR_NOMEM, "out of memory"), NULL;
        c->names = nn;
        c->cap_names = cap;
    }
    if (!(c->names[c->n_names] = strdup(name))) return refuse(c, CLLM_ERR_NOMEM, "out of memory"), NULL;
    return c->names[c->n_names++];
}

/* Writes s as a GBNF string literal; characters beyond ASCII as \\u / \\U
 * escapes. Refuses text that is not UTF-8 (cJSON passes such bytes through,
 * and no valid output could spell them). */
static int put_literal(converter *c, const char *s, const char *path) {
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    fputc('"', c->out);
    while (n > 0) {
        uint32_t cp;
        size_t len = cllm_grammar_utf8_decode(p, n, &cp);
        if (!len) return refuse(c, CLLM_ERR_ARG, "a name or value at %s is not valid UTF-8", at(path));
        if (cp == '"' || cp == '\\') fprintf(c->out, "\\%c", (char)cp);
        else if (cp < 0x20 || cp == 0x7F) fprintf(c->out, "\\x%02X", (unsigned)cp);
        else if (cp < 0x80) fputc((int)cp, c->out);
        else if (cp <= 0xFFFF) fprintf(c->out, "\\u%04X", (unsigned)cp);
        else fprintf(c->out, "\\U%08X", (unsigned)cp);
        p += len;
        n -= len;
    }
    fputc('"', c->out);
    return 1;
}

/* Writes a JSON value's exact text (as a generated output must spell it). */
static int put_json_literal(converter *c, const cJSON *v, const char *path) {
    char *text = cJSON_PrintUnformatted(v);
    if (!text) return refuse(c, CLLM_ERR_NOMEM, "out of memory");
    int ok = put_literal(c, text, path);
    free(text);
    return ok;
}

static const char *const annotations[] = {"title", "description", "$schema", "$id", "$comment", "default",
                                          "examples", "deprecated", "readOnly", "writeOnly"};

static int is_one_of(const char *k, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(k, list[i])) return 1;
    return 0;
}

/* ---- "pattern": a regular-expression subset -> GBNF ------------------------
 *
 * A JSON Schema pattern is an ECMA-262 regular expression over the string's
 * value (its decoded characters) and is not anchored: "a+" holds for any
 * string containing an "a". The translation writes one GBNF expression for
 * the JSON text between the quotes of such strings: a top-level alternative
 * without "^" starts with char* and one without "$" ends with char*, and a
 * character is written as JSON spells it ('"' as \", '\' as \\, a newline as
 * \n, other control characters as \u00XX, everything else as itself; the
 * other spellings JSON allows, such as \u0041 for A, are not generated).
 *
 * Handled: literal characters; escapes \d \D \w \W \s \S \t \n \r \f \v \0
 * \cX \xHH \uHHHH (surrogate pairs joined) \u{H...} and escaped punctuation;
 * classes [...] with ranges, negation and class escapes; "."; groups (...),
 * (?:...) and (?<name>...); "|"; the quantifiers * + ? {m} {m,} {m,n} and
 * their lazy forms (same language); "^" and "$" at the start and end of a
 * top-level alternative. Refused, naming the construct: backreferences,
 * lookahead and lookbehind, word boundaries, Unicode property escapes,
 * anchors anywhere else, and an unbounded repetition of something that can
 * match the empty string (the grammar engine refuses such loops).
 */

#define RE_MAX_RANGES 256 /* code-point ranges in one character class */
#define RE_MAX_DEPTH 64   /* nested groups */
#define CP_MAX 0x10FFFFu

typedef struct {
    struct {
        uint32_t lo, hi;
    } r[RE_MAX_RANGES];
    int n;
} cp_set;

typedef struct {
    converter *c;
    FILE *out;
    const char *s; /* the pattern (UTF-8), n bytes */
    size_t n, pos;
    const char *path;
    int depth;
} regex;

static int cmp_range(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorts the ranges and merges those that overlap or touch. */
static void set_normalize(cp_set *s) {
    if (s->n == 0) return;
    qsort(s->r, (size_t)s->n, sizeof s->r[0], cmp_range);
    int k = 0;
    for (int i = 1; i < s->n; i++) {
        if (s->r[i].lo <= s->r[k].hi + 1) {
            if (s->r[i].hi > s->r[k].hi) s->r[k].hi = s->r[i].hi;
        } else {
            s->r[++k] = s->r[i];
        }
    }
    s->n = k + 1;
}

static int set_add(cp_set *s, uint32_t lo, uint32_t hi) {
    if (s->n == RE_MAX_RANGES) set_normalize(s);
    if (s->n == RE_MAX_RANGES) return 0;
    s->r[s->n].lo = lo;
    s->r[s->n++].hi = hi;
    return 1;
}

/* 0 when the complement has more ranges than a set holds. */
static int set_complement(cp_set *s) {
    set_normalize(s);
    cp_set t = {.n = 0};
    uint32_t next = 0;
    for (int i = 0; i < s->n; i++) {
        if (s->r[i].lo > next && !set_add(&t, next, s->r[i].lo - 1)) return 0;
        next = s->r[i].hi + 1;
    }
    if (next <= CP_MAX && !set_add(&t, next, CP_MAX)) return 0;
    *s = t;
    return 1;
}

static int set_has(const cp_set *s, uint32_t cp) {
    for (int i = 0; i < s->n; i++)
        if (cp >= s->r[i].lo && cp <= s->r[i].hi) return 1;
    return 0;
}

static int set_union(cp_set *s, const cp_set *t) {
    for (int i = 0; i < t->n; i++)
        if (!set_add(s, t->r[i].lo, t->r[i].hi)) return 0;
    return 1;
}

/* JavaScript's \s: WhiteSpace and LineTerminator. */
static void set_space(cp_set *s) {
    static const uint32_t ranges[][2] = {{0x09, 0x0D}, {0x20, 0x20}, {0xA0, 0xA0}, {0x1680, 0x1680},
                                         {0x2000, 0x200A}, {0x2028, 0x2029}, {0x202F, 0x202F},
                                         {0x205F, 0x205F}, {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};
    for (size_t i = 0; i < sizeof ranges / sizeof *ranges; i++) set_add(s, ranges[i][0], ranges[i][1]);
}

/* Refuses the pattern: a construct the converter does not take (unsupported)
 * or a pattern that is no regular expression; fmt says what, at r->pos. */
__attribute__((format(printf, 3, 4))) static int re_refuse(regex *r, int unsupported, const char *fmt, ...) {
    char what[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (unsupported)
        return refuse(r->c, CLLM_ERR_ARG, "unsupported JSON Schema keyword 'pattern' at %s: %s (at offset %zu of the "
                                          "pattern) is not supported",
                      at(r->path), what, r->pos);
    return refuse(r->c, CLLM_ERR_ARG, "'pattern' at %s is not a valid regular expression: %s (at offset %zu)",
                  at(r->path), what, r->pos);
}
#define re_unsupported(r, ...) re_refuse(r, 1, __VA_ARGS__)
#define re_invalid(r, ...) re_refuse(r, 0, __VA_ARGS__)

/* A code point inside a GBNF class: ASCII letters and digits as they are,
 * the rest escaped. */
static void put_class_cp(FILE *f, uint32_t cp) {
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9')) fputc((int)cp, f);
    else if (cp <= 0xFF) fprintf(f, "\\x%02X", (unsigned)cp);
    else if (cp <= 0xFFFF) fprintf(f, "\\u%04X", (unsigned)cp);
    else fprintf(f, "\\U%08X", (unsigned)cp);
}

/* Writes (f non-NULL) and counts the parts of [lo, hi] that JSON writes as
 * themselves: not the control characters, '"', '\' or the surrogates. */
static int put_plain_range(FILE *f, uint32_t lo, uint32_t hi) {
    static const uint32_t cut_lo[] = {0x00, 0x22, 0x5C, 0xD800}, cut_hi[] = {0x1F, 0x22, 0x5C, 0xDFFF};
    int n = 0;
    uint32_t cur = lo;
    for (size_t i = 0; i < sizeof cut_lo / sizeof *cut_lo && cur <= hi; i++) {
        if (cut_hi[i] < cur) continue;
        if (cut_lo[i] > hi) break;
        if (cur < cut_lo[i]) {
            n++;
            if (f) put_class_cp(f, cur), fputc('-', f), put_class_cp(f, cut_lo[i] - 1);
        }
        cur = cut_hi[i] + 1;
    }
    if (cur <= hi) {
        n++;
        if (f) {
            put_class_cp(f, cur);
            if (hi > cur) fputc('-', f), put_class_cp(f, hi);
        }
    }
    return n;
}

/* Writes one GBNF element matching the JSON spelling of any character of s
 * (not empty). */
static void put_json_set(FILE *f, cp_set *s) {
    set_normalize(s);
    int plain = 0, controls = 0, all_controls = 1;
    for (int i = 0; i < s->n; i++) plain += put_plain_range(NULL, s->r[i].lo, s->r[i].hi);
    for (uint32_t cp = 0; cp < 0x20; cp++) {
        if (set_has(s, cp)) controls++;
        else all_controls = 0;
    }
    int quote = set_has(s, '"'), backslash = set_has(s, '\\');
    int n_alts = (plain > 0) + (all_controls ? 1 : controls) + quote + backslash;
    int group = n_alts > 1 || all_controls;
    const char *sep = "";
    if (group) fputs("( ", f);
    if (plain) {
        fputc('[', f);
        for (int i = 0; i < s->n; i++) put_plain_range(f, s->r[i].lo, s->r[i].hi);
        fputc(']', f);
        sep = " | ";
    }
    if (all_controls) {
        fprintf(f, "%s\"\\\\\" ( [bfnrt] | \"u00\" [01] [0-9a-fA-F] )", sep);
        sep = " | ";
    } else {
        static const char short_escape[0x20] = {['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};
        for (uint32_t cp = 0; cp < 0x20; cp++) {
            if (!set_has(s, cp)) continue;
            if (short_escape[cp]) fprintf(f, "%s\"\\\\%c\"", sep, short_escape[cp]);
            else fprintf(f, "%s\"\\\\u%04X\"", sep, (unsigned)cp);
            sep = " | ";
        }
    }
    if (quote) fprintf(f, "%s\"\\\\\\\"\"", sep), sep = " | ";
    if (backslash) fprintf(f, "%s\"\\\\\\\\\"", sep);
    if (group) fputs(" )", f);
}

static int hex_digit(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    return ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/* n hex digits at r->pos (n 0: \u{...}'s 1-6 digits up to '}'). */
static int re_hex(regex *r, int n, uint32_t *cp) {
    uint32_t v = 0;
    int k = 0, braced = n == 0;
    while (r->pos < r->n && (braced ? k < 6 : k < n)) {
        int h = hex_digit(r->s[r->pos]);
        if (h < 0) break;
        v = v * 16 + (uint32_t)h;
        r->pos++, k++;
    }
    if (braced) {
        if (k == 0 || r->pos >= r->n || r->s[r->pos] != '}') return re_invalid(r, "'\\u{' needs hex digits and '}'");
        r->pos++;
    } else if (k < n) {
        return re_invalid(r, "an escape needs %d hex digits", n);
    }
    if (v > CP_MAX) return re_invalid(r, "code point U+%X is beyond U+10FFFF", (unsigned)v);
    *cp = v;
    return 1;
}

/* One literal character at r->pos (UTF-8). */
static int re_char(regex *r, uint32_t *cp) {
    size_t len = cllm_grammar_utf8_decode((const unsigned char *)r->s + r->pos, r->n - r->pos, cp);
    if (!len) return re_invalid(r, "the pattern is not valid UTF-8");
    r->pos += len;
    return 1;
}

/* The escape after a '\' at r->pos, as a set of code points; *single says
 * whether it is one character (a range may end at it). */
static int re_escape(regex *r, int in_class, cp_set *set, int *single) {
    size_t start = r->pos - 1; /* the '\\', for messages */
    if (r->pos >= r->n) return re_invalid(r, "'\\' at the end of the pattern");
    char e = r->s[r->pos++];
    uint32_t cp = 0;
    *single = 1;
    switch (e) {
    case 'd': case 'D': case 'w': case 'W': case 's': case 'S': {
        cp_set t = {.n = 0};
        char lower = (char)(e | 0x20);
        if (lower == 'd') set_add(&t, '0', '9');
        else if (lower == 'w') set_add(&t, '0', '9'), set_add(&t, 'A', 'Z'), set_add(&t, 'a', 'z'), set_add(&t, '_', '_');
        else set_space(&t);
        if (e != lower) (void)set_complement(&t); /* a few ranges: it always fits */
        *single = 0;
        if (!set_union(set, &t)) return re_unsupported(r, "a character class of more than %d ranges", RE_MAX_RANGES);
        return 1;
    }
    case 't': cp = '\t'; break;
    case 'n': cp = '\n'; break;
    case 'r': cp = '\r'; break;
    case 'f': cp = '\f'; break;
    case 'v': cp = '\v'; break;
    case 'b':
        if (!in_class) return r->pos = start, re_unsupported(r, "the word boundary assertion '\\b'");
        cp = '\b';
        break;
    case 'B': return r->pos = start, re_unsupported(r, "the assertion '\\B'");
    case '0':
        if (r->pos < r->n && r->s[r->pos] >= '0' && r->s[r->pos] <= '9')
            return r->pos = start, re_unsupported(r, "an octal escape '\\0%c'", r->s[start + 2]);
        cp = 0;
        break;
    case 'c':
        if (r->pos >= r->n || !((r->s[r->pos] | 0x20) >= 'a' && (r->s[r->pos] | 0x20) <= 'z'))
            return re_invalid(r, "'\\c' needs a letter");
        cp = (uint32_t)(r->s[r->pos++] % 32);
        break;
    case 'x':
        if (!re_hex(r, 2, &cp)) return 0;
        break;
    case 'u':
        if (r->pos < r->n && r->s[r->pos] == '{') {
            r->pos++;
            if (!re_hex(r, 0, &cp)) return 0;
        } else {
            if (!re_hex(r, 4, &cp)) return 0;
            if (cp >= 0xD800 && cp <= 0xDBFF && r->pos + 1 < r->n && r->s[r->pos] == '\\' && r->s[r->pos + 1] == 'u') {
                size_t back = r->pos;
                uint32_t low = 0;
                r->pos += 2;
                if (re_hex(r, 4, &low) && low >= 0xDC00 && low <= 0xDFFF)
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                else r->pos = back;
                if (r->c->st != CLLM_OK) return 0;
            }
        }
        if (cp >= 0xD800 && cp <= 0xDFFF) return re_unsupported(r, "a lone surrogate \\u%04X", (unsigned)cp);
        break;
    case 'k': return r->pos = start, re_unsupported(r, "a named backreference '\\k'");
    case 'p': case 'P': return r->pos = start, re_unsupported(r, "a Unicode property escape '\\%c'", e);
    default:
        if (e >= '1' && e <= '9') return r->pos = start, re_unsupported(r, "a backreference '\\%c'", e);
        if ((unsigned char)e >= 0x80) { /* an escaped non-ASCII character: the character */
            r->pos--;
            if (!re_char(r, &cp)) return 0;
            break;
        }
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z'))
            return r->pos = start, re_invalid(r, "unknown escape '\\%c'", e);
        cp = (uint32_t)(unsigned char)e; /* escaped punctuation: the character itself */
    }
    set_add(set, cp, cp);
    return 1;
}

/* A class after its '[', up to and including the ']'. */
static int re_class(regex *r, cp_set *set) {
    int negate = r->pos < r->n && r->s[r->pos] == '^';
    if (negate) r->pos++;
    while (r->pos < r->n && r->s[r->pos] != ']') {
        cp_set item = {.n = 0};
        int single = 1;
        uint32_t lo;
        if (r->s[r->pos] == '\\') {
            r->pos++;
            if (!re_escape(r, 1, &item, &single)) return 0;
            lo = item.r[0].lo;
        } else if (!re_char(r, &lo)) {
            return 0;
        } else {
            set_add(&item, lo, lo);
        }
        if (r->pos + 1 < r->n && r->s[r->pos] == '-' && r->s[r->pos + 1] != ']') {
            size_t dash = r->pos++;
            uint32_t hi;
            cp_set end = {.n = 0};
            int end_single = 1;
            if (r->s[r->pos] == '\\') {
                r->pos++;
                if (!re_escape(r, 1, &end, &end_single)) return 0;
                hi = end.r[0].lo;
            } else if (!re_char(r, &hi)) {
                return 0;
            }
            if (!single || !end_single) return r->pos = dash, re_unsupported(r, "a range with a class escape at an end");
            if (hi < lo) return r->pos = dash, re_invalid(r, "the range's end comes before its start");
            item.r[0].hi = hi;
        }
        if (!set_union(set, &item)) return re_unsupported(r, "a character class of more than %d ranges", RE_MAX_RANGES);
    }
    if (r->pos >= r->n) return re_invalid(r, "unterminated character class");
    r->pos++;
    if (negate && !set_complement(set))
        return re_unsupported(r, "a negated character class of more than %d ranges", RE_MAX_RANGES - 1);
    return 1;
}

static int re_alternatives(regex *r, int *nullable);

/* A quantifier at r->pos, if any, into min and max (-1 unbounded); 0 when none. */
static int re_quantifier(regex *r, int64_t *min, int64_t *max) {
    if (r->pos >= r->n) return 0;
    char q = r->s[r->pos];
    if (q == '*' || q == '+' || q == '?') {
        *min = q == '+';
        *max = q == '?' ? 1 : -1;
        r->pos++;
    } else if (q == '{') {
        size_t p = r->pos + 1;
        int64_t a = -1, b;
        while (p < r->n && r->s[p] >= '0' && r->s[p] <= '9' && a < 100000) a = (a < 0 ? 0 : a * 10) + (r->s[p++] - '0');
        if (a < 0) return 0; /* '{' not followed by a count: the caller refuses it */
        b = a;
        if (p < r->n && r->s[p] == ',') {
            p++;
            b = -1;
            while (p < r->n && r->s[p] >= '0' && r->s[p] <= '9' && b < 100000) b = (b < 0 ? 0 : b * 10) + (r->s[p++] - '0');
        }
        if (p >= r->n || r->s[p] != '}') return 0;
        r->pos = p + 1;
        *min = a;
        *max = b;
    } else {
        return 0;
    }
    if (r->pos < r->n && r->s[r->pos] == '?') r->pos++; /* lazy: the same strings */
    return 1;
}

/* A sequence of quantified atoms up to '|', ')', a final '$' or the end. */
static int re_sequence(regex *r, int *nullable) {
    int wrote = 0;
    *nullable = 1;
    while (r->pos < r->n) {
        char ch = r->s[r->pos];
        if (ch == '|' || (ch == ')' && r->depth > 0)) break;
        if (ch == '$' && r->depth == 0 && (r->pos + 1 == r->n || r->s[r->pos + 1] == '|')) break;
        if (ch == '$') return re_unsupported(r, "the anchor '$' other than at the end of the pattern");
        if (ch == '^') return re_unsupported(r, "the anchor '^' other than at the start of the pattern");
        if (ch == ')') return re_invalid(r, "unbalanced ')'");
        if (ch == '*' || ch == '+' || ch == '?') return re_invalid(r, "'%c' with nothing to repeat", ch);
        if (ch == '{')
            return re_invalid(r, "a '{' that repeats nothing or is not {m}, {m,} or {m,n} (\\{ is the character)");
        if (wrote) fputc(' ', r->out);
        wrote = 1;
        int atom_nullable = 0;
        size_t atom_pos = r->pos;
        if (ch == '(') {
            r->pos++;
            if (r->pos < r->n && r->s[r->pos] == '?') {
                const char *g = r->s + r->pos + 1;
                size_t left = r->n - r->pos - 1;
                if (left >= 1 && *g == ':') {
                    r->pos += 2;
                } else if (left >= 1 && (*g == '=' || *g == '!')) {
                    r->pos--;
                    return re_unsupported(r, "a lookahead '(?%c'", *g);
                } else if (left >= 2 && g[0] == '<' && (g[1] == '=' || g[1] == '!')) {
                    r->pos--;
                    return re_unsupported(r, "a lookbehind '(?<%c'", g[1]);
                } else if (left >= 1 && *g == '<') {
                    const char *end = memchr(g, '>', left);
                    if (!end || end == g + 1) return re_invalid(r, "a group name needs '<name>'");
                    r->pos += (size_t)(end - g) + 2;
                } else {
                    return re_invalid(r, "unknown group syntax '(?'");
                }
            }
            if (++r->depth > RE_MAX_DEPTH) return re_unsupported(r, "groups nested deeper than %d", RE_MAX_DEPTH);
            fputs("( ", r->out);
            if (!re_alternatives(r, &atom_nullable)) return 0;
            if (r->pos >= r->n || r->s[r->pos] != ')') return re_invalid(r, "missing ')'");
            r->pos++;
            r->depth--;
            fputs(" )", r->out);
        } else {
            cp_set set = {.n = 0};
            int single;
            if (ch == '[') {
                r->pos++;
                if (!re_class(r, &set)) return 0;
            } else if (ch == '.') { /* any character but a line terminator */
                r->pos++;
                set_add(&set, '\n', '\n'), set_add(&set, '\r', '\r'), set_add(&set, 0x2028, 0x2029);
                (void)set_complement(&set); /* 4 ranges: it always fits */
            } else if (ch == '\\') {
                r->pos++;
                if (!re_escape(r, 0, &set, &single)) return 0;
            } else {
                uint32_t cp;
                if (!re_char(r, &cp)) return 0;
                set_add(&set, cp, cp);
            }
            set_normalize(&set);
            int any = 0; /* anything but surrogates, which no text holds */
            for (int i = 0; i < set.n; i++) any |= set.r[i].lo < 0xD800 || set.r[i].hi > 0xDFFF;
            if (set.n == 0 || !any) return r->pos = atom_pos, re_unsupported(r, "a character class that matches nothing");
            put_json_set(r->out, &set);
        }
        int64_t min, max;
        size_t q_pos = r->pos;
        if (re_quantifier(r, &min, &max)) {
            if (max >= 0 && max < min) return r->pos = q_pos, re_invalid(r, "a repetition {m,n} with n < m");
            if (min > CLLM_GRAMMAR_MAX_REPEAT || max > CLLM_GRAMMAR_MAX_REPEAT)
                return r->pos = q_pos, re_unsupported(r, "a repetition count above %d", CLLM_GRAMMAR_MAX_REPEAT);
            if (max < 0 && atom_nullable)
                return r->pos = q_pos, re_unsupported(r, "an unbounded repetition of something that can be empty");
            if (min == 0 && max == 1) fputc('?', r->out);
            else if (min == 0 && max < 0) fputc('*', r->out);
            else if (min == 1 && max < 0) fputc('+', r->out);
            else if (max < 0) fprintf(r->out, "{%lld,}", (long long)min);
            else if (min == max) fprintf(r->out, "{%lld}", (long long)min);
            else fprintf(r->out, "{%lld,%lld}", (long long)min, (long long)max);
            if (min == 0) atom_nullable = 1;
        }
        *nullable &= atom_nullable;
    }
    if (!wrote) fputs("\"\"", r->out);
    return 1;
}

/* Alternatives inside a group, up to its ')'. */
static int re_alternatives(regex *r, int *nullable) {
    *nullable = 0;
    for (;;) {
        int n;
        if (!re_sequence(r, &n)) return 0;
        *nullable |= n;
        if (r->pos >= r->n || r->s[r->pos] != '|') return 1;
        r->pos++;
        fputs(" | ", r->out);
    }
}

/* The rule `name ::= "\"" ( ... ) "\""` for strings that pattern holds for. */
static int put_pattern_rule(converter *c, const char *name, const char *pattern, const char *path) {
    regex r = {.c = c, .out = c->out, .s = pattern, .n = strlen(pattern), .path = path};
    fprintf(c->out, "%s ::= \"\\\"\" ( ", name);
    for (;;) {
        if (r.pos < r.n && r.s[r.pos] == '^') r.pos++;
        else fputs("char* ", c->out);
        int nullable;
        if (!re_sequence(&r, &nullable)) return 0;
        if (r.pos < r.n && r.s[r.pos] == '$') r.pos++;
        else fputs(" char*", c->out);
        if (r.pos >= r.n) break;
        r.pos++; /* '|': re_sequence stops only there or at the end */
        fputs(" | ", c->out);
    }
    fputs(" ) \"\\\"\"\n", c->out);
    return 1;
}

/* ---- "format" -------------------------------------------------------------
 * RFC 3339 date, time and date-time (a day of 01-31 whatever the month; "T"
 * and "Z" in capitals, as most writers do), uuid (RFC 4122's 8-4-4-4-12 hex
 * digits) and ipv4 (dotted decimal, no leading zeros). */

#define FMT_DATE "[0-9]{4} \"-\" ( \"0\" [1-9] | \"1\" [0-2] ) \"-\" ( \"0\" [1-9] | [12] [0-9] | \"3\" [01] )"
#define FMT_TIME                                                                                  \
    "( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] \":\" ( [0-5] [0-9] | \"60\" ) ( \".\" [0-9]{1,9} )? " \
    "( \"Z\" | [+-] ( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] )"
#define FMT_OCTET "( \"25\" [0-5] | \"2\" [0-4] [0-9] | \"1\" [0-9] [0-9] | [1-9] [0-9] | [0-9] )"

static const struct {
    const char *name, *gbnf;
} formats[] = {
    {"date", FMT_DATE},
    {"time", FMT_TIME},
    {"date-time", FMT_DATE " \"T\" " FMT_TIME},
    {"uuid", "[0-9a-fA-F]{8} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{12}"},
    {"ipv4", FMT_OCTET " \".\" " FMT_OCTET " \".\" " FMT_OCTET " \".\" " FMT_OCTET},
};

static int put_format_rule(converter *c, const char *name, const cJSON *fmt, const char *path) {
    const char *f = cJSON_IsString(fmt) ? fmt->valuestring : "";
    for (size_t i = 0; i < sizeof formats / sizeof *formats; i++) {
        if (strcmp(f, formats[i].name)) continue;
        fprintf(c->out, "%s ::= \"\\\"\" %s \"\\\"\"\n", name, formats[i].gbnf);
        return 1;
    }
    return refuse(c, CLLM_ERR_ARG,
                  "unsupported JSON Schema keyword 'format' at %s: format '%s' is not supported (date, time, "
                  "date-time, uuid and ipv4 are)",
                  at(path), f);
}

/* ---- integer bounds: minimum, maximum, exclusiveMinimum, exclusiveMaximum --
 * The integers in [lo, hi] as decimal text, built digit by digit: numbers of
 * one length at a time, and for one length, the common leading digits, then
 * the part from lo's next digit up, whole digits in between, and the part up
 * to hi's next digit. Bounds beyond the lexicon's 16 digits are no bound. */

#define INT_LIMIT 9999999999999999LL /* the largest 16-digit integer */

/* Every d-digit string from a to b (a <= b, both d digits). */
static void put_digits_between(FILE *f, const char *a, const char *b, size_t d) {
    if (d == 0) return;
    if (a[0] == b[0]) {
        fprintf(f, "\"%c\"", a[0]);
        if (d > 1) fputc(' ', f), put_digits_between(f, a + 1, b + 1, d - 1);
        return;
    }
    int low_zeros = strspn(a + 1, "0") == d - 1, high_nines = strspn(b + 1, "9") == d - 1;
    char zeros[20] = {0}, nines[20] = {0}; /* d <= 16 */
    memset(zeros, '0', d - 1), memset(nines, '9', d - 1);
    const char *sep = "";
    fputs("( ", f);
    if (!low_zeros) {
        fprintf(f, "\"%c\" ", a[0]);
        put_digits_between(f, a + 1, nines, d - 1);
        sep = " | ";
    }
    char from = (char)(a[0] + !low_zeros), to = (char)(b[0] - !high_nines);
    if (from <= to) {
        fprintf(f, "%s[%c-%c]", sep, from, to);
        if (d > 1) fprintf(f, " [0-9]{%zu}", d - 1);
        sep = " | ";
    }
    if (!high_nines) {
        fprintf(f, "%s\"%c\" ", sep, b[0]);
        put_digits_between(f, zeros, b + 1, d - 1);
    }
    fputs(" )", f);
}

/* The integers lo..hi, 0 <= lo <= hi <= INT_LIMIT, without leading zeros. */
static void put_nonneg_range(FILE *f, int64_t lo, int64_t hi) {
    int64_t start = 1; /* 10^(d-1) */
    fputs("( ", f);
    const char *sep = "";
    for (size_t d = 1; d <= 16; d++, start *= 10) {
        int64_t end = start * 10 - 1, a = d == 1 ? 0 : start; /* the d-digit numbers: a..end */
        if (a > hi) break;
        if (end < lo) continue;
        a = lo > a ? lo : a;
        int64_t b = hi < end ? hi : end;
        char sa[20], sb[20];
        snprintf(sa, sizeof sa, "%lld", (long long)a);
        snprintf(sb, sizeof sb, "%lld", (long long)b);
        fputs(sep, f);
        put_digits_between(f, sa, sb, d);
        sep = " | ";
    }
    fputs(" )", f);
}

/* Reads an integer schema's bounds into [*lo, *hi]; 1 when there are any. */
static int get_int_bounds(converter *c, const cJSON *s, const char *path, int64_t *lo, int64_t *hi, int *bounded) {
    static const char *const keys[] = {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"};
    *lo = -INT_LIMIT, *hi = INT_LIMIT, *bounded = 0;
    for (int k = 0; k < 4; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, keys[k]);
        if (!v) continue;
        if (!cJSON_IsNumber(v))
            return refuse(c, CLLM_ERR_ARG, "'%s' at %s must be a number%s", keys[k], at(path),
                          cJSON_IsBool(v) ? " (the boolean form of draft 4 is not supported)" : "");
        double x = v->valuedouble;
        *bounded = 1;
        if (k < 2) { /* a lower bound */
            double b = k == 0 ? ceil(x) : floor(x) + 1;
            if (b > -1e16 && (double)*lo < b) *lo = b >= 1e16 ? INT_LIMIT + 1 : (int64_t)b;
        } else {
            double b = k == 2 ? floor(x) : ceil(x) - 1;
            if (b < 1e16 && (double)*hi > b) *hi = b <= -1e16 ? -INT_LIMIT - 1 : (int64_t)b;
        }
    }
    if (*lo > *hi) return refuse(c, CLLM_ERR_ARG, "no integer at %s is within its minimum and maximum", at(path));
    return 1;
}

static void put_int_range(FILE *f, int64_t lo, int64_t hi) {
    if (hi < 0) {
        fputs("\"-\" ", f);
        put_nonneg_range(f, -hi, -lo);
    } else if (lo >= 0) {
        put_nonneg_range(f, lo, hi);
    } else {
        fputs("( \"-\" ", f);
        put_nonneg_range(f, 1, -lo);
        fputs(" | ", f);
        put_nonneg_range(f, 0, hi);
        fputs(" )", f);
    }
}

static const char *convert(converter *c, const cJSON *s, const char *hint, const char *path);

static int get_count(converter *c, const cJSON *s, const char *key, const char *path, int64_t *v) {
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(s, key);
    if (!n) return 1;
    if (!cJSON_IsNumber(n) || n->valuedouble < 0 || n->valuedouble != (double)(int64_t)n->valuedouble)
        return refuse(c, CLLM_ERR_ARG, "'%s' at %s must be a non-negative integer", key, at(path));
    if (n->valuedouble > CLLM_GRAMMAR_MAX_REPEAT)
        return refuse(c, CLLM_ERR_LIMIT, "'%s' at %s is above the limit of %d", key, at(path), CLLM_GRAMMAR_MAX_REPEAT);
    *v = (int64_t)n->valuedouble;
    return 1;
}

/* " X{min,max}" in GBNF, for max -1 = unbounded. */
static void put_repeat(FILE *f, const char *x, int64_t min, int64_t max) {
    if (max < 0) fprintf(f, " %s{%lld,}", x, (long long)min);
    else fprintf(f, " %s{%lld,%lld}", x, (long long)min, (long long)max);
}

static const char *convert_array(converter *c, const cJSON *s, const char *name, const char *path) {
    int64_t min = 0, max = -1;
    if (!get_count(c, s, "minItems", path, &min) || !get_count(c, s, "maxItems", path, &max)) return NULL;
    if (max >= 0 && max < min) return refuse(c, CLLM_ERR_ARG, "maxItems < minItems at %s", at(path)), NULL;
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(s, "items");
    char sub[600], hint[200];
    snprintf(sub, sizeof sub, "%s/items", path);
    snprintf(hint, sizeof hint, "%s-item", name);
    const char *item = items ? convert(c, items, hint, sub) : "value";
    if (!item) return NULL;
    fprintf(c->out, "%s ::= \"[\" ws", name);
    if (max != 0) {
        fprintf(c->out, " %s%s ws", min == 0 ? "( " : "", item);
        char more[300];
        snprintf(more, sizeof more, "( \",\" ws %s ws )", item);
        put_repeat(c->out, more, min > 0 ? min - 1 : 0, max < 0 ? -1 : max - 1);
        if (min == 0) fputs(" )?", c->out);
    }
    fputs(" \"]\"\n", c->out);
    return name;
}

static const char *convert_object(converter *c, const cJSON *s, const char *name, const char *path) {
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(s, "properties");
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(s, "required");
    const cJSON *extra = cJSON_GetObjectItemCaseSensitive(s, "additionalProperties");
    char sub[600], hint[300];
    if (props && !cJSON_IsObject(props)) return refuse(c, CLLM_ERR_ARG, "'properties' at %s must be an object", at(path)), NULL;
    if (req && !cJSON_IsArray(req)) return refuse(c, CLLM_ERR_ARG, "'required' at %s must be an array", at(path)), NULL;
    for (const cJSON *r = req ? req->child : NULL; r; r = r->next)
        if (!cJSON_IsString(r) || !cJSON_GetObjectItemCaseSensitive(props, r->valuestring))
            return refuse(c, CLLM_ERR_ARG, "'required' at %s names '%s', which is not in 'properties'", at(path),
                          cJSON_IsString(r) ? r->valuestring : "(not a string)"),
                   NULL;
    if (!props || !props->child) { /* a map: any keys, values per additionalProperties */
        if (extra && cJSON_IsFalse(extra)) {
            fprintf(c->out, "%s ::= \"{\" ws \"}\"\n", name);
            return name;
        }
        const char *v = "value";
        if (extra && !cJSON_IsTrue(extra)) {
            snprintf(sub, sizeof sub, "%s/additionalProperties", path);
            snprintf(hint, sizeof hint, "%s-value", name);
            if (!(v = convert(c, extra, hint, sub))) return NULL;
        }
        fprintf(c->out,
                "%s ::= \"{\" ws ( string ws \":\" ws %s ws ( \",\" ws string ws \":\" ws %s ws )* )? \"}\"\n", name, v, v);
        return name;
    }
    if (extra && !cJSON_IsFalse(extra))
        return refuse(c, CLLM_ERR_ARG,
                      "unsupported JSON Schema keyword 'additionalProperties' at %s (only false is supported "
                      "beside 'properties': no other property is ever generated)",
                      at(path)),
               NULL;
    int n = cJSON_GetArraySize(props);
    const char **kv = calloc((size_t)n, sizeof *kv);
    if (!kv) return refuse(c, CLLM_ERR_NOMEM, "out of memory"), NULL;
    int k = 0;
    for (const cJSON *p = props->child; p; p = p->next, k++) {
        snprintf(sub, sizeof sub, "%s/properties/%s", path, p->string);
        snprintf(hint, sizeof hint, "%s-%s", name, p->string);
        const char *v = convert(c, p, hint, sub);
        if (!v) break;
        snprintf(hint, sizeof hint, "%s-%s-kv", name, p->string);
        if (!(kv[k] = unique_name(c, hint))) break;
        char *key = cJSON_PrintUnformatted(&(cJSON){.type = cJSON_String, .valuestring = p->string});
        if (!key) {
            refuse(c, CLLM_ERR_NOMEM, "out of memory");
            break;
        }
        fprintf(c->out, "%s ::= ", kv[k]);
        int ok = put_literal(c, key, sub);
        free(key);
        if (!ok) break;
        fprintf(c->out, " ws \":\" ws %s ws\n", v);
    }
    if (c->st != CLLM_OK) {
        free(kv);
        return NULL;
    }
    /* first-K: properties K.. with none written yet; next-K: after at least
     * one (each needs a comma). Optional properties add the skip branch. */
    const char *first = NULL, *next_after = NULL;
    for (k = n - 1; k >= 0; k--) {
        const cJSON *p = cJSON_GetArrayItem(props, k);
        int required = 0;
        for (const cJSON *r = req ? req->child : NULL; r; r = r->next) required |= !strcmp(r->valuestring, p->string);
        snprintf(hint, sizeof hint, "%s-next%d", name, k);
        const char *nx = unique_name(c, hint);
        snprintf(hint, sizeof hint, "%s-first%d", name, k);
        const char *fs = unique_name(c, hint);
        if (!nx || !fs) break;
        const char *tail = next_after ? next_after : "\"\""; /* "" is the empty string */
        fprintf(c->out, "%s ::= \",\" ws %s %s", nx, kv[k], tail);
        if (!required) fprintf(c->out, " | %s", tail);
        fprintf(c->out, "\n%s ::= %s %s", fs, kv[k], tail);
        if (!required) fprintf(c->out, " | %s", first ? first : "\"\"");
        fputc('\n', c->out);
        first = fs;
        next_after = nx;
    }
    free(kv);
    if (c->st != CLLM_OK) return NULL;
    fprintf(c->out, "%s ::= \"{\" ws %s \"}\"\n", name, first);
    return name;
}

static const char *convert(converter *c, const cJSON *s, const char *hint, const char *path) {
    if (c->st != CLLM_OK) return NULL;
    if (cJSON_IsTrue(s)) return "value";
    if (!cJSON_IsObject(s)) return refuse(c, CLLM_ERR_ARG, "the schema at %s must be an object or true", at(path)), NULL;
    if (++c->depth > MAX_SCHEMA_DEPTH) return refuse(c, CLLM_ERR_LIMIT, "the schema nests deeper than %d at %s",
                                                     MAX_SCHEMA_DEPTH, at(path)), NULL;
    static const char *const handled[] = {"type", "properties", "required", "additionalProperties", "items",
                                          "minItems", "maxItems", "enum", "const", "anyOf", "minLength", "maxLength",
                                          "pattern", "format", "minimum", "maximum", "exclusiveMinimum",
                                          "exclusiveMaximum"};
    for (const cJSON *k = s->child; k; k = k->next) {
        if (is_one_of(k->string, annotations, sizeof annotations / sizeof *annotations)) continue;
        if (!is_one_of(k->string, handled, sizeof handled / sizeof *handled))
            return refuse(c, CLLM_ERR_ARG, "unsupported JSON Schema keyword '%s' at %s", k->string, at(path)), NULL;
    }
    const char *name = unique_name(c, hint);
    if (!name) return NULL;
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(s, "enum"), *cn = cJSON_GetObjectItemCaseSensitive(s, "const");
    const cJSON *any = cJSON_GetObjectItemCaseSensitive(s, "anyOf"), *type = cJSON_GetObjectItemCaseSensitive(s, "type");
    char sub[600], h[300];
    if (cn) { /* the value itself, whatever the other keywords say (it must satisfy them) */
        fprintf(c->out, "%s ::= ", name);
        if (!put_json_literal(c, cn, path)) return NULL;
        fputc('\n', c->out);
    } else if (en) {
        if (!cJSON_IsArray(en) || !en->child)
            return refuse(c, CLLM_ERR_ARG, "'enum' at %s must be a non-empty array", at(path)), NULL;
        fprintf(c->out, "%s ::= ", name);
        for (const cJSON *v = en->child; v; v = v->next) {
            if (v != en->child) fputs(" | ", c->out);
            if (!put_json_literal(c, v, path)) return NULL;
        }
        fputc('\n', c->out);
    } else if (any) {
        if (!cJSON_IsArray(any) || !any->child)
            return refuse(c, CLLM_ERR_ARG, "'anyOf' at %s must be a non-empty array", at(path)), NULL;
        const char **alts = calloc((size_t)cJSON_GetArraySize(any), sizeof *alts);
        if (!alts) return refuse(c, CLLM_ERR_NOMEM, "out of memory"), NULL;
        int i = 0;
        for (const cJSON *v = any->child; v && c->st == CLLM_OK; v = v->next, i++) {
            snprintf(sub, sizeof sub, "%s/anyOf/%d", path, i);
            snprintf(h, sizeof h, "%s-%d", name, i);
            alts[i] = convert(c, v, h, sub);
        }
        if (c->st == CLLM_OK) {
            fprintf(c->out, "%s ::= %s", name, alts[0]);
            for (int j = 1; j < i; j++) fprintf(c->out, " | %s", alts[j]);
            fputc('\n', c->out);
        }
        free(alts);
    } else if (!type) {
        static const char *const typed[] = {"minLength", "maxLength", "pattern", "format", "minimum", "maximum",
                                            "exclusiveMinimum", "exclusiveMaximum"};
        for (size_t i = 0; i < sizeof typed / sizeof *typed; i++)
            if (cJSON_GetObjectItemCaseSensitive(s, typed[i]))
                return refuse(c, CLLM_ERR_ARG, "'%s' at %s needs a 'type' (any JSON value would be generated "
                                               "without it)", typed[i], at(path)), NULL;
        fprintf(c->out, "%s ::= value\n", name);
    } else {
        int n_types = cJSON_IsArray(type) ? cJSON_GetArraySize(type) : 1;
        if (n_types == 0) return refuse(c, CLLM_ERR_ARG, "'type' at %s is an empty array", at(path)), NULL;
        const char **alts = calloc((size_t)n_types, sizeof *alts);
        if (!alts) return refuse(c, CLLM_ERR_NOMEM, "out of memory"), NULL;
        for (int i = 0; i < n_types && c->st == CLLM_OK; i++) {
            const cJSON *t = cJSON_IsArray(type) ? cJSON_GetArrayItem(type, i) : type;
            const char *tn = cJSON_IsString(t) ? t->valuestring : "";
            snprintf(h, sizeof h, "%s-%s", name, tn);
            if (!strcmp(tn, "object")) {
                const char *r = n_types > 1 ? unique_name(c, h) : name;
                alts[i] = r ? convert_object(c, s, r, path) : NULL;
            } else if (!strcmp(tn, "array")) {
                const char *r = n_types > 1 ? unique_name(c, h) : name;
                alts[i] = r ? convert_array(c, s, r, path) : NULL;
            } else if (!strcmp(tn, "string")) {
                int64_t min = 0, max = -1;
                if (!get_count(c, s, "minLength", path, &min) || !get_count(c, s, "maxLength", path, &max)) break;
                if (max >= 0 && max < min) {
                    refuse(c, CLLM_ERR_ARG, "maxLength < minLength at %s", at(path));
                    break;
                }
                const cJSON *pattern = cJSON_GetObjectItemCaseSensitive(s, "pattern");
                const cJSON *format = cJSON_GetObjectItemCaseSensitive(s, "format");
                if (pattern || format) {
                    const char *kw = pattern ? "pattern" : "format";
                    if (pattern && format) {
                        refuse(c, CLLM_ERR_ARG, "'pattern' and 'format' together at %s are not supported", at(path));
                        break;
                    }
                    if (min > 0 || max >= 0) {
                        refuse(c, CLLM_ERR_ARG, "'%s' together with 'minLength' or 'maxLength' at %s is not "
                                                "supported", kw, at(path));
                        break;
                    }
                    if (pattern && !cJSON_IsString(pattern)) {
                        refuse(c, CLLM_ERR_ARG, "'pattern' at %s must be a string", at(path));
                        break;
                    }
                    const char *r = unique_name(c, h);
                    if (!r || !(pattern ? put_pattern_rule(c, r, pattern->valuestring, path)
                                        : put_format_rule(c, r, format, path)))
                        break;
                    alts[i] = r;
                    continue;
                }
                if (min == 0 && max < 0) {
                    alts[i] = "string";
                    continue;
                }
                const char *r = unique_name(c, h);
                if (!r) break;
                fprintf(c->out, "%s ::= \"\\\"\"", r);
                put_repeat(c->out, "char", min, max);
                fputs(" \"\\\"\"\n", c->out);
                alts[i] = r;
            } else if (!strcmp(tn, "integer")) {
                int64_t lo, hi;
                int bounded;
                if (!get_int_bounds(c, s, path, &lo, &hi, &bounded)) break;
                if (!bounded) {
                    alts[i] = "integer";
                    continue;
                }
                const char *r = unique_name(c, h);
                if (!r) break;
                fprintf(c->out, "%s ::= ", r);
                put_int_range(c->out, lo, hi);
                fputc('\n', c->out);
                alts[i] = r;
            } else if (!strcmp(tn, "number") &&
                       (cJSON_GetObjectItemCaseSensitive(s, "minimum") || cJSON_GetObjectItemCaseSensitive(s, "maximum") ||
                        cJSON_GetObjectItemCaseSensitive(s, "exclusiveMinimum") ||
                        cJSON_GetObjectItemCaseSensitive(s, "exclusiveMaximum"))) {
                refuse(c, CLLM_ERR_ARG, "unsupported JSON Schema keyword bounds ('minimum', 'maximum', ...) on type "
                                        "'number' at %s: they are supported on 'integer' only", at(path));
            } else if (!strcmp(tn, "number") || !strcmp(tn, "boolean") || !strcmp(tn, "null")) {
                alts[i] = !strcmp(tn, "number") ? "number" : !strcmp(tn, "boolean") ? "boolean" : "null";
            } else {
                refuse(c, CLLM_ERR_ARG, "'type' at %s: unknown type '%s' (object, array, string, number, integer, "
                                        "boolean, null)", at(path), tn);
            }
        }
        if (c->st == CLLM_OK && !(n_types == 1 && alts[0] == name)) {
            fprintf(c->out, "%s ::= %s", name, alts[0]);
            for (int j = 1; j < n_types; j++) fprintf(c->out, " | %s", alts[j]);
            fputc('\n', c->out);
        }
        free(alts);
    }
    c->depth--;
    return c->st == CLLM_OK ? name : NULL;
}

cllm_status cllm_json_schema_to_gbnf(const char *schema, size_t len, const char *name, char **gbnf,
                                     cllm_error *err) {
    return cllm_json_schema_to_gbnf_root(schema, len, name, NULL, gbnf, err);
}

cllm_status cllm_json_schema_to_gbnf_root(const char *schema, size_t len, const char *name, const char *root_body,
                                          char **gbnf, cllm_error *err) {
    *gbnf = NULL;
    converter c = {.name = name ? name : "json_schema", .err = err, .st = CLLM_OK};
    cJSON *root = cJSON_ParseWithLength(schema, len);
    if (!root) return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: the schema is not valid JSON", c.name);
    char *text = NULL;
    size_t text_len = 0;
    if (!(c.out = open_memstream(&text, &text_len))) {
        cJSON_Delete(root);
        return cllm_error_set(err, CLLM_ERR_NOMEM, "%s: out of memory", c.name);
    }
    static const char *const lexicon[] = {"value", "object", "array", "string", "char", "number",
                                          "integer", "boolean", "null", "ws", "root", "schema"};
    for (size_t i = 0; i < sizeof lexicon / sizeof *lexicon && c.st == CLLM_OK; i++) unique_name(&c, lexicon[i]);
    fputs(JSON_LEXICON, c.out);
    const char *top = c.st == CLLM_OK ? convert(&c, root, "value-of-schema", "") : NULL;
    if (top) fprintf(c.out, "schema ::= %s\nroot ::= %s\n", top, root_body ? root_body : "schema");
    fclose(c.out);
    for (size_t i = 0; i < c.n_names; i++) free(c.names[i]);
    free(c.names);
    cJSON_Delete(root);
    if (c.st != CLLM_OK) {
        free(text);
        return c.st;
    }
    *gbnf = text;
    return CLLM_OK;
}

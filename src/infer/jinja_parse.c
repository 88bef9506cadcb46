/*
 * jinja_parse.c: Jinja template text -> syntax tree (jinja_internal.h).
 *
 * The lexer follows jinja2/lexer.py (3.1) with trim_blocks and lstrip_blocks
 * on, as Hugging Face's apply_chat_template sets them: CRLF and CR become
 * LF, one trailing newline is dropped, '-' after "{%", "{{", "{#" strips
 * all whitespace before the tag and before "%}", "}}", "#}" all whitespace
 * after it; without a sign "%}" and "#}" eat one following newline and
 * "{%", "{#" alone on a line drop the spaces before them ('+' keeps them).
 * The parser follows jinja2/parser.py's precedence: ternary < or < and <
 * not < comparisons < + - < ~ < * / // % < ** < unary - + < postfix
 * (.attr, [ ], calls, | filters, is tests).
 *
 * What it deliberately does not do: tags that reach other templates
 * (include, import, extends, block) or change the environment (call,
 * filter, with, autoescape, do) are refused with the line, as are filters
 * and tests the renderer lacks, so a template is accepted only if every
 * construct in it can run.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/core/utf8.h"
#include "jinja_internal.h"

/* ---------------------------------------------------------------- arena */

void *jarena_alloc(jarena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        if (a->total + cap > a->limit) return NULL;
        jarena_block *b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
        a->total += cap;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    memset(p, 0, n);
    return p;
}

void jarena_free(jarena *a) {
    jarena_block *b = a->head;
    while (b) {
        jarena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->total = 0;
}

/* ------------------------------------------------------------ whitespace */

static uint32_t utf8_cp(const char *s, size_t n, size_t *len) {
    const unsigned char *u = (const unsigned char *)s;
    if (u[0] < 0x80 || n < 2) return *len = 1, u[0];
    if ((u[0] & 0xe0) == 0xc0) return *len = 2, ((u[0] & 0x1fu) << 6) | (u[1] & 0x3fu);
    if ((u[0] & 0xf0) == 0xe0 && n >= 3) return *len = 3, ((u[0] & 0x0fu) << 12) | ((u[1] & 0x3fu) << 6) | (u[2] & 0x3fu);
    return *len = 1, 0xfffd;
}

static int is_py_space(uint32_t c) {
    return (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

size_t jinja_space_at(const char *s, size_t n) {
    if (n == 0) return 0;
    size_t len;
    uint32_t c = utf8_cp(s, n, &len);
    return is_py_space(c) ? len : 0;
}

size_t jinja_space_before(const char *s, size_t n) {
    if (n == 0) return 0;
    if ((unsigned char)s[n - 1] < 0x80) return is_py_space((unsigned char)s[n - 1]) ? 1 : 0;
    for (size_t k = 2; k <= 3 && k <= n; k++) {
        size_t len;
        uint32_t c = utf8_cp(s + n - k, k, &len);
        if (len == k) return is_py_space(c) ? k : 0;
    }
    return 0;
}

/* ----------------------------------------------------------------- lexer */

typedef enum { T_TEXT, T_VAR_BEGIN, T_VAR_END, T_BLOCK_BEGIN, T_BLOCK_END, T_NAME, T_STRING, T_INT, T_FLOAT, T_OP, T_EOF } ttype;

typedef struct {
    ttype type;
    int line;
    const char *s; /* text, name, operator, decoded string (arena) */
    size_t n;
    int64_t i;
    double f;
} token;

typedef struct {
    cllm_jinja *t;
    cllm_error *err;
    token *tok;
    size_t ntok, cap;
    size_t pos; /* parser position */
    int depth, loops;
    int failed;
} parser;

static int fail(parser *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int jinja_error(cllm_error *err, int *failed, cllm_status status, const char *name, int line, const char *fmt, va_list ap) {
    if (*failed) return -1;
    char msg[900];
    vsnprintf(msg, sizeof msg, fmt, ap);
    cllm_error_set(err, status, "%s: line %d: %s", name, line, msg);
    *failed = 1;
    return -1;
}

static int fail(parser *p, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    jinja_error(p->err, &p->failed, CLLM_ERR_FORMAT, p->t->name, line, fmt, ap);
    va_end(ap);
    return -1;
}

static int nomem(parser *p) {
    if (!p->failed) cllm_error_set(p->err, CLLM_ERR_NOMEM, "%s: out of memory compiling the template", p->t->name);
    p->failed = 1;
    return -1;
}

static token *push(parser *p, ttype type, int line, const char *s, size_t n) {
    if (p->ntok == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        token *t = realloc(p->tok, cap * sizeof *t);
        if (!t) return nomem(p), NULL;
        p->tok = t;
        p->cap = cap;
    }
    token *t = &p->tok[p->ntok++];
    memset(t, 0, sizeof *t);
    t->type = type;
    t->line = line;
    t->s = s;
    t->n = n;
    return t;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_name0(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int hexval(char c) {
    return is_digit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
}

/* Python's "unicode-escape" decoding of a string literal's body. */
static int unescape(parser *p, int line, const char *s, size_t n, token *t) {
    char *o = jarena_alloc(&p->t->arena, n + 1);
    if (!o) return nomem(p);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\' || i + 1 == n) {
            o[k++] = s[i];
            continue;
        }
        char c = s[++i];
        const char *simple = "\\\\''\"\"a\ab\bf\fn\nr\rt\tv\v";
        const char *hit = NULL;
        for (const char *q = simple; *q; q += 2)
            if (*q == c) hit = q;
        if (hit) {
            o[k++] = hit[1];
        } else if (c == '\n') {
            /* line continuation */
        } else if (c >= '0' && c <= '7') {
            uint32_t v = 0;
            size_t d = 0;
            while (d < 3 && i < n && s[i] >= '0' && s[i] <= '7') v = v * 8 + (uint32_t)(s[i++] - '0'), d++;
            i--;
            k += cllm_utf8_put(v, (uint8_t *)(o + k));
        } else if (c == 'x' || c == 'u' || c == 'U') {
            size_t digits = c == 'x' ? 2 : c == 'u' ? 4 : 8;
            uint32_t v = 0;
            for (size_t d = 0; d < digits; d++) {
                if (i + 1 + d >= n || hexval(s[i + 1 + d]) < 0)
                    return fail(p, line, "truncated \\%c escape in a string literal", c);
                v = v * 16 + (uint32_t)hexval(s[i + 1 + d]);
            }
            if (v > 0x10ffff || (v >= 0xd800 && v < 0xe000))
                return fail(p, line, "\\%c escape out of range in a string literal", c);
            i += digits;
            k += cllm_utf8_put(v, (uint8_t *)(o + k)); /* never longer than the escape it replaces */
        } else if (c == 'N') {
            return fail(p, line, "\\N{...} escapes are not supported");
        } else {
            o[k++] = '\\';
            o[k++] = c;
        }
    }
    t->s = o;
    t->n = k;
    return 0;
}

static int lex_skip_space(const char *src, size_t len, size_t *pos, int *line) {
    int nl = 0;
    size_t w;
    while (*pos < len && (w = jinja_space_at(src + *pos, len - *pos))) {
        if (src[*pos] == '\n') (*line)++, nl = 1;
        *pos += w;
    }
    return nl;
}

/* Tokens of one {{ ... }} or {% ... %} body, through its end tag. */
static int lex_tag(parser *p, const char *src, size_t len, size_t *pos_io, int *line_io, int block, int *line_starting) {
    size_t pos = *pos_io;
    int line = *line_io;
    char stack[CLLM_JINJA_MAX_NESTING];
    int depth = 0;
    const char end_c = block ? '%' : '}';
    for (;;) {
        lex_skip_space(src, len, &pos, &line);
        if (pos >= len) return fail(p, line, "unexpected end of template, expected '%s'", block ? "%}" : "}}");
        if (depth == 0) {
            size_t at = pos;
            char sign = 0;
            if ((src[at] == '-' || (block && src[at] == '+')) && at + 1 < len && src[at + 1] == end_c) sign = src[at++];
            if (at + 1 < len && src[at] == end_c && src[at + 1] == '}') {
                pos = at + 2;
                if (!push(p, block ? T_BLOCK_END : T_VAR_END, line, NULL, 0)) return -1;
                *line_starting = 0;
                if (sign == '-') *line_starting = lex_skip_space(src, len, &pos, &line) && src[pos - 1] == '\n';
                else if (block && !sign && pos < len && src[pos] == '\n') pos++, line++, *line_starting = 1;
                *pos_io = pos;
                *line_io = line;
                return 0;
            }
        }
        char c = src[pos];
        size_t start = pos;
        token *t;
        if (is_digit(c)) {
            while (pos < len && (is_digit(src[pos]) || (src[pos] == '_' && pos + 1 < len && is_digit(src[pos + 1])))) pos++;
            int is_float = 0;
            if (pos + 1 < len && src[pos] == '.' && is_digit(src[pos + 1])) {
                is_float = 1;
                pos++;
                while (pos < len && (is_digit(src[pos]) || src[pos] == '_')) pos++;
            }
            if (pos < len && (src[pos] == 'e' || src[pos] == 'E')) {
                size_t q = pos + 1;
                if (q < len && (src[q] == '+' || src[q] == '-')) q++;
                if (q < len && is_digit(src[q])) {
                    is_float = 1;
                    pos = q;
                    while (pos < len && is_digit(src[pos])) pos++;
                }
            }
            char num[64];
            size_t k = 0;
            for (size_t i = start; i < pos && k < sizeof num - 1; i++)
                if (src[i] != '_') num[k++] = src[i];
            num[k] = 0;
            if (pos - start >= sizeof num) return fail(p, line, "number literal too long");
            if (!(t = push(p, is_float ? T_FLOAT : T_INT, line, src + start, pos - start))) return -1;
            if (is_float) {
                t->f = strtod(num, NULL);
            } else {
                char *end;
                unsigned long long v = strtoull(num, &end, 10);
                if (v > INT64_MAX) return fail(p, line, "integer literal %s is too large", num);
                t->i = (int64_t)v;
            }
        } else if (is_name0(c)) {
            while (pos < len && (is_name0(src[pos]) || is_digit(src[pos]))) pos++;
            if (!push(p, T_NAME, line, src + start, pos - start)) return -1;
        } else if (c == '\'' || c == '"') {
            pos++;
            int sline = line;
            while (pos < len && src[pos] != c) {
                if (src[pos] == '\\' && pos + 1 < len) pos++;
                if (src[pos] == '\n') line++;
                pos++;
            }
            if (pos >= len) return fail(p, sline, "unterminated string literal");
            pos++;
            if (!(t = push(p, T_STRING, sline, NULL, 0))) return -1;
            if (unescape(p, sline, src + start + 1, pos - start - 2, t)) return -1;
        } else {
            static const char *const ops[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "[",
                                              "]",  "(",  ")",  "{",  "}",  "<",  ">", "=", ".", ":", "|", ",", ";"};
            size_t k = 0;
            for (; k < sizeof ops / sizeof ops[0]; k++)
                if (!strncmp(src + pos, ops[k], strlen(ops[k])) && pos + strlen(ops[k]) <= len) break;
            if (k == sizeof ops / sizeof ops[0]) {
                if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f)
                    return fail(p, line, "unexpected character 0x%02x", (unsigned char)c);
                return fail(p, line, "unexpected character '%c'", c);
            }
            pos += strlen(ops[k]);
            if (!push(p, T_OP, line, ops[k], strlen(ops[k]))) return -1;
            if (c == '(' || c == '[' || c == '{') {
                if (depth == CLLM_JINJA_MAX_NESTING) return fail(p, line, "brackets nested deeper than %d", CLLM_JINJA_MAX_NESTING);
                stack[depth++] = c == '(' ? ')' : c == '[' ? ']' : '}';
            } else if (c == ')' || c == ']' || c == '}') {
                if (!depth) return fail(p, line, "unexpected '%c'", c);
                if (stack[--depth] != c) return fail(p, line, "unexpected '%c', expected '%c'", c, stack[depth]);
            }
        }
    }
}

static int lex(parser *p, const char *src, size_t len) {
    size_t pos = 0;
    int line = 1, line_starting = 1;
    while (pos < len) {
        size_t q = pos;
        while (q + 1 < len && !(src[q] == '{' && (src[q + 1] == '{' || src[q + 1] == '%' || src[q + 1] == '#'))) q++;
        if (q + 1 >= len) {
            if (!push(p, T_TEXT, line, src + pos, len - pos)) return -1;
            break;
        }
        char kind = src[q + 1];
        char sign = q + 2 < len && (src[q + 2] == '-' || src[q + 2] == '+') ? src[q + 2] : 0;
        size_t tend = q, w;
        if (sign == '-') {
            while (tend > pos && (w = jinja_space_before(src + pos, tend - pos))) tend -= w;
        } else if (sign != '+' && kind != '{') {
            size_t l_pos = q;
            while (l_pos > pos && src[l_pos - 1] != '\n') l_pos--;
            if ((l_pos > pos || (l_pos == pos && line_starting)) && l_pos < q) {
                size_t i = l_pos;
                while (i < q && (w = jinja_space_at(src + i, q - i))) i += w;
                if (i == q) tend = l_pos;
            }
        }
        if (tend > pos && !push(p, T_TEXT, line, src + pos, tend - pos)) return -1;
        for (size_t i = pos; i < q; i++) line += src[i] == '\n';
        pos = q + 2 + (sign ? 1 : 0);
        if (kind == '#') {
            const char *e = NULL;
            for (size_t i = pos; i + 1 < len; i++)
                if (src[i] == '#' && src[i + 1] == '}') {
                    e = src + i;
                    break;
                }
            if (!e) return fail(p, line, "missing end of comment tag");
            size_t at = (size_t)(e - src);
            char esign = at > pos && (src[at - 1] == '-' || src[at - 1] == '+') ? src[at - 1] : 0;
            for (size_t i = pos; i < at; i++) line += src[i] == '\n';
            pos = at + 2;
            line_starting = 0;
            if (esign == '-') line_starting = lex_skip_space(src, len, &pos, &line) && src[pos - 1] == '\n';
            else if (!esign && pos < len && src[pos] == '\n') pos++, line++, line_starting = 1;
            continue;
        }
        if (!push(p, kind == '%' ? T_BLOCK_BEGIN : T_VAR_BEGIN, line, NULL, 0)) return -1;
        if (lex_tag(p, src, len, &pos, &line, kind == '%', &line_starting)) return -1;
    }
    return push(p, T_EOF, line, NULL, 0) ? 0 : -1;
}

/* ---------------------------------------------------------------- parser */

static const char *const filter_names[JF_COUNT] = {
    "abs", "capitalize", "count", "default", "first", "float", "indent", "int", "items", "join",
    "last", "length", "list", "lower", "map", "reject", "rejectattr", "replace", "reverse",
    "safe", "select", "selectattr", "sort", "string", "title", "tojson", "trim", "upper"};
static const char *const test_names[JT_COUNT] = {
    "boolean", "callable", "defined", "divisibleby", "eq", "even", "false", "float", "ge", "gt",
    "in", "integer", "iterable", "le", "lower", "lt", "mapping", "ne", "none", "number", "odd",
    "sameas", "sequence", "string", "true", "undefined", "upper"};

static int lookup(const char *const *names, int count, const char *name, size_t n) {
    for (int i = 0; i < count; i++)
        if (strlen(names[i]) == n && !memcmp(names[i], name, n)) return i;
    return -1;
}

int jinja_filter_lookup(const char *name, size_t n) {
    if (n == 1 && name[0] == 'd') return JF_DEFAULT;
    if (n == 5 && !memcmp(name, "count", 5)) return JF_LENGTH;
    return lookup(filter_names, JF_COUNT, name, n);
}

int jinja_test_lookup(const char *name, size_t n) {
    if (n == 2 && !memcmp(name, "==", 2)) return JT_EQ;
    if (n == 7 && !memcmp(name, "equalto", 7)) return JT_EQ;
    if (n == 2 && !memcmp(name, "!=", 2)) return JT_NE;
    if (n == 1 && name[0] == '<') return JT_LT;
    if (n == 1 && name[0] == '>') return JT_GT;
    if (n == 2 && !memcmp(name, "<=", 2)) return JT_LE;
    if (n == 2 && !memcmp(name, ">=", 2)) return JT_GE;
    if (n == 8 && !memcmp(name, "lessthan", 8)) return JT_LT;
    if (n == 11 && !memcmp(name, "greaterthan", 11)) return JT_GT;
    return lookup(test_names, JT_COUNT, name, n);
}

static token *cur(parser *p) { return &p->tok[p->pos]; }
static int is_op(const token *t, const char *op) { return t->type == T_OP && t->n == strlen(op) && !memcmp(t->s, op, t->n); }
static int is_name(const token *t, const char *name) {
    return t->type == T_NAME && t->n == strlen(name) && !memcmp(t->s, name, t->n);
}
static int accept_op(parser *p, const char *op) { return is_op(cur(p), op) ? (p->pos++, 1) : 0; }
static int accept_name(parser *p, const char *name) { return is_name(cur(p), name) ? (p->pos++, 1) : 0; }

static const char *describe(const token *t, char *buf, size_t cap) {
    switch (t->type) {
    case T_TEXT: return "template text";
    case T_VAR_BEGIN: return "'{{'";
    case T_VAR_END: return "'}}'";
    case T_BLOCK_BEGIN: return "'{%'";
    case T_BLOCK_END: return "'%}'";
    case T_STRING: return "a string";
    case T_INT:
    case T_FLOAT: return "a number";
    case T_EOF: return "the end of the template";
    default: snprintf(buf, cap, "'%.*s'", (int)(t->n > 40 ? 40 : t->n), t->s); return buf;
    }
}

static int expect_op(parser *p, const char *op) {
    if (accept_op(p, op)) return 0;
    char buf[64];
    return fail(p, cur(p)->line, "expected '%s', got %s", op, describe(cur(p), buf, sizeof buf));
}

static int expect_type(parser *p, ttype type, const char *what) {
    if (cur(p)->type == type) return p->pos++, 0;
    char buf[64];
    return fail(p, cur(p)->line, "expected %s, got %s", what, describe(cur(p), buf, sizeof buf));
}

static jnode *node(parser *p, jnode_kind kind, int line) {
    jnode *n = jarena_alloc(&p->t->arena, sizeof *n);
    if (!n) return nomem(p), NULL;
    n->kind = kind;
    n->line = line;
    return n;
}

/* Growable node list; the final array lives in the arena. */
typedef struct {
    jnode **v;
    size_t n, cap;
} nlist;

static int nl_push(parser *p, nlist *l, jnode *n) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        jnode **v = jarena_alloc(&p->t->arena, cap * sizeof *v);
        if (!v) return nomem(p);
        if (l->n) memcpy(v, l->v, l->n * sizeof *v);
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = n;
    return 0;
}

static jnodes nl_done(nlist *l) { return (jnodes){l->v, l->n}; }

static jnode *parse_expr(parser *p);
static jnode *parse_or(parser *p);
static jnode *parse_unary(parser *p, int with_filter);

static int enter(parser *p) {
    if (++p->depth > CLLM_JINJA_MAX_NESTING) {
        if (!p->failed) {
            cllm_error_set(p->err, CLLM_ERR_LIMIT, "%s: line %d: nested deeper than %d (blocks and expressions)",
                           p->t->name, cur(p)->line, CLLM_JINJA_MAX_NESTING);
            p->failed = 1;
        }
        return -1;
    }
    return 0;
}

static int parse_call_args(parser *p, nlist *args) {
    /* after '(' */
    while (!accept_op(p, ")")) {
        if (args->n && expect_op(p, ",")) return -1;
        if (accept_op(p, ")")) break;
        if (is_op(cur(p), "*") || is_op(cur(p), "**")) return fail(p, cur(p)->line, "*args and **kwargs are not supported");
        jnode *a;
        if (cur(p)->type == T_NAME && is_op(&p->tok[p->pos + 1], "=")) {
            if (!(a = node(p, JN_KWARG, cur(p)->line))) return -1;
            a->s = cur(p)->s;
            a->n = cur(p)->n;
            p->pos += 2;
            if (!(a->a = parse_expr(p))) return -1;
        } else if (!(a = parse_expr(p))) {
            return -1;
        }
        if (nl_push(p, args, a)) return -1;
    }
    return 0;
}

static jnode *parse_primary(parser *p) {
    token *t = cur(p);
    jnode *n = NULL;
    char buf[64];
    if (t->type == T_NAME) {
        p->pos++;
        if (is_name(t, "true") || is_name(t, "True") || is_name(t, "false") || is_name(t, "False")) {
            if ((n = node(p, JN_BOOL, t->line))) n->i = t->s[0] == 't' || t->s[0] == 'T';
        } else if (is_name(t, "none") || is_name(t, "None")) {
            n = node(p, JN_NONE, t->line);
        } else if ((n = node(p, JN_NAME, t->line))) {
            n->s = t->s;
            n->n = t->n;
        }
        return n;
    }
    if (t->type == T_STRING) {
        size_t total = 0, k = p->pos;
        while (p->tok[k].type == T_STRING) total += p->tok[k++].n;
        if (!(n = node(p, JN_STR, t->line))) return NULL;
        char *s = jarena_alloc(&p->t->arena, total + 1);
        if (!s) return nomem(p), NULL;
        n->s = s;
        while (cur(p)->type == T_STRING) {
            memcpy(s + n->n, cur(p)->s, cur(p)->n);
            n->n += cur(p)->n;
            p->pos++;
        }
        return n;
    }
    if (t->type == T_INT || t->type == T_FLOAT) {
        p->pos++;
        if ((n = node(p, t->type == T_INT ? JN_INT : JN_FLOAT, t->line))) n->i = t->i, n->f = t->f;
        return n;
    }
    if (is_op(t, "(") || is_op(t, "[") || is_op(t, "{")) {
        p->pos++;
        const char *close = is_op(t, "(") ? ")" : is_op(t, "[") ? "]" : "}";
        nlist items = {0};
        int tuple = is_op(t, "(") ? 0 : 1;
        while (!accept_op(p, close)) {
            if (items.n && expect_op(p, ",")) return NULL;
            if (items.n && close[0] == ')') tuple = 1;
            if (accept_op(p, close)) break;
            jnode *e = parse_expr(p);
            if (!e || nl_push(p, &items, e)) return NULL;
            if (close[0] == '}') {
                if (expect_op(p, ":") || !(e = parse_expr(p)) || nl_push(p, &items, e)) return NULL;
            }
        }
        if (close[0] == ')' && items.n == 1 && !tuple) return items.v[0];
        if (!(n = node(p, close[0] == ')' ? JN_TUPLE : close[0] == ']' ? JN_LIST : JN_DICT, t->line))) return NULL;
        n->args = nl_done(&items);
        return n;
    }
    fail(p, t->line, "unexpected %s in an expression", describe(t, buf, sizeof buf));
    return NULL;
}

static jnode *parse_subscript(parser *p, jnode *obj, int line) {
    /* after '[' */
    jnode *parts[3] = {0};
    int slice = 0;
    if (!is_op(cur(p), ":") && !(parts[0] = parse_expr(p))) return NULL;
    for (int k = 1; k < 3 && accept_op(p, ":"); k++) {
        slice = 1;
        if (!is_op(cur(p), "]") && !is_op(cur(p), ":") && !(parts[k] = parse_expr(p))) return NULL;
    }
    if (expect_op(p, "]")) return NULL;
    jnode *n = node(p, slice ? JN_SLICE : JN_ITEM, line);
    if (!n) return NULL;
    n->a = obj;
    if (!slice) {
        n->b = parts[0];
        return n;
    }
    jnode **v = jarena_alloc(&p->t->arena, 3 * sizeof *v);
    if (!v) return nomem(p), NULL;
    memcpy(v, parts, sizeof parts);
    n->args = (jnodes){v, 3};
    return n;
}

static jnode *parse_postfix(parser *p, jnode *n, int with_filter) {
    for (;;) {
        token *t = cur(p);
        if (is_op(t, ".")) {
            p->pos++;
            token *a = cur(p);
            jnode *m;
            if (a->type == T_NAME) {
                if (!(m = node(p, JN_ATTR, t->line))) return NULL;
                m->s = a->s;
                m->n = a->n;
            } else if (a->type == T_INT) {
                if (!(m = node(p, JN_ITEM, t->line)) || !(m->b = node(p, JN_INT, t->line))) return NULL;
                m->b->i = a->i;
            } else {
                fail(p, a->line, "expected an attribute name after '.'");
                return NULL;
            }
            p->pos++;
            m->a = n;
            n = m;
        } else if (is_op(t, "[")) {
            p->pos++;
            if (!(n = parse_subscript(p, n, t->line))) return NULL;
        } else if (is_op(t, "(")) {
            p->pos++;
            jnode *m = node(p, JN_CALL, t->line);
            nlist args = {0};
            if (!m || parse_call_args(p, &args)) return NULL;
            m->a = n;
            m->args = nl_done(&args);
            n = m;
        } else if (with_filter && (is_op(t, "|") || is_name(t, "is"))) {
            int filter = is_op(t, "|");
            p->pos++;
            jnode *m = node(p, filter ? JN_FILTER : JN_TEST, t->line);
            if (!m) return NULL;
            if (!filter && accept_name(p, "not")) m->i = 1;
            token *name = cur(p);
            if (name->type != T_NAME && !(!filter && name->type == T_OP)) {
                fail(p, name->line, "expected a %s name after '%s'", filter ? "filter" : "test", filter ? "|" : "is");
                return NULL;
            }
            p->pos++;
            m->s = name->s;
            m->n = name->n;
            m->op = filter ? jinja_filter_lookup(name->s, name->n) : jinja_test_lookup(name->s, name->n);
            if (m->op < 0) {
                fail(p, name->line, "%s '%.*s' is not supported", filter ? "filter" : "test", (int)(name->n > 40 ? 40 : name->n),
                     name->s);
                return NULL;
            }
            m->a = n;
            nlist args = {0};
            if (accept_op(p, "(")) {
                if (parse_call_args(p, &args)) return NULL;
            } else if (!filter) {
                token *c = cur(p);
                int starts = c->type == T_NAME || c->type == T_STRING || c->type == T_INT || c->type == T_FLOAT ||
                             is_op(c, "[") || is_op(c, "{");
                if (starts && !is_name(c, "else") && !is_name(c, "or") && !is_name(c, "and")) {
                    if (is_name(c, "is")) {
                        fail(p, c->line, "tests cannot be chained with 'is'");
                        return NULL;
                    }
                    jnode *arg = parse_primary(p);
                    if (!arg || !(arg = parse_postfix(p, arg, 0)) || nl_push(p, &args, arg)) return NULL;
                }
            }
            m->args = nl_done(&args);
            n = m;
        } else {
            return n;
        }
    }
}

static jnode *parse_unary(parser *p, int with_filter) {
    if (enter(p)) return NULL;
    token *t = cur(p);
    jnode *n;
    if (is_op(t, "-") || is_op(t, "+")) {
        p->pos++;
        if (!(n = node(p, t->s[0] == '-' ? JN_NEG : JN_POS, t->line)) || !(n->a = parse_unary(p, 0))) return NULL;
    } else if (!(n = parse_primary(p))) {
        return NULL;
    }
    n = parse_postfix(p, n, 0);
    if (n && with_filter) n = parse_postfix(p, n, 1);
    p->depth--;
    return n;
}

static jnode *binary(parser *p, jnode_kind kind, int op, int line, jnode *a, jnode *b) {
    if (!b) return NULL;
    jnode *n = node(p, kind, line);
    if (n) n->op = op, n->a = a, n->b = b;
    return n;
}

static jnode *parse_pow(parser *p) {
    jnode *n = parse_unary(p, 1);
    while (n && is_op(cur(p), "**")) {
        int line = cur(p)->line;
        p->pos++;
        n = binary(p, JN_BIN, JOP_POW, line, n, parse_unary(p, 1));
    }
    return n;
}

static jnode *parse_math2(parser *p) {
    jnode *n = parse_pow(p);
    for (;;) {
        token *t = cur(p);
        int op = is_op(t, "*") ? JOP_MUL : is_op(t, "/") ? JOP_DIV : is_op(t, "//") ? JOP_FLOORDIV : is_op(t, "%") ? JOP_MOD : -1;
        if (!n || op < 0) return n;
        p->pos++;
        n = binary(p, JN_BIN, op, t->line, n, parse_pow(p));
    }
}

static jnode *parse_concat(parser *p) {
    jnode *n = parse_math2(p);
    if (!n || !is_op(cur(p), "~")) return n;
    nlist args = {0};
    jnode *c = node(p, JN_CONCAT, cur(p)->line);
    if (!c || nl_push(p, &args, n)) return NULL;
    while (accept_op(p, "~")) {
        jnode *e = parse_math2(p);
        if (!e || nl_push(p, &args, e)) return NULL;
    }
    c->args = nl_done(&args);
    return c;
}

static jnode *parse_math1(parser *p) {
    jnode *n = parse_concat(p);
    for (;;) {
        token *t = cur(p);
        int op = is_op(t, "+") ? JOP_ADD : is_op(t, "-") ? JOP_SUB : -1;
        if (!n || op < 0) return n;
        p->pos++;
        n = binary(p, JN_BIN, op, t->line, n, parse_concat(p));
    }
}

static jnode *parse_compare(parser *p) {
    jnode *first = parse_math1(p);
    if (!first) return NULL;
    nlist operands = {0};
    int ops[64], nops = 0;
    int line = cur(p)->line;
    for (;;) {
        token *t = cur(p);
        int op = is_op(t, "==") ? JOP_EQ : is_op(t, "!=") ? JOP_NE : is_op(t, "<") ? JOP_LT : is_op(t, "<=") ? JOP_LE
               : is_op(t, ">") ? JOP_GT : is_op(t, ">=") ? JOP_GE : is_name(t, "in") ? JOP_IN : -1;
        if (op < 0 && is_name(t, "not") && is_name(&p->tok[p->pos + 1], "in")) {
            op = JOP_NOTIN;
            p->pos++;
        }
        if (op < 0) break;
        if (nops == 64) return fail(p, t->line, "more than 64 chained comparisons"), NULL;
        p->pos++;
        if (!operands.n && nl_push(p, &operands, first)) return NULL;
        jnode *e = parse_math1(p);
        if (!e || nl_push(p, &operands, e)) return NULL;
        ops[nops++] = op;
    }
    if (!nops) return first;
    jnode *n = node(p, JN_CMP, line);
    if (!n || !(n->ops = jarena_alloc(&p->t->arena, (size_t)nops * sizeof(int)))) return nomem(p), NULL;
    memcpy(n->ops, ops, (size_t)nops * sizeof(int));
    n->args = nl_done(&operands);
    return n;
}

static jnode *parse_not(parser *p) {
    if (is_name(cur(p), "not")) {
        int line = cur(p)->line;
        p->pos++;
        if (enter(p)) return NULL;
        jnode *n = node(p, JN_NOT, line);
        if (!n || !(n->a = parse_not(p))) return NULL;
        p->depth--;
        return n;
    }
    return parse_compare(p);
}

static jnode *parse_and(parser *p) {
    jnode *n = parse_not(p);
    while (n && is_name(cur(p), "and")) {
        int line = cur(p)->line;
        p->pos++;
        n = binary(p, JN_AND, 0, line, n, parse_not(p));
    }
    return n;
}

static jnode *parse_or(parser *p) {
    jnode *n = parse_and(p);
    while (n && is_name(cur(p), "or")) {
        int line = cur(p)->line;
        p->pos++;
        n = binary(p, JN_OR, 0, line, n, parse_and(p));
    }
    return n;
}

static jnode *parse_expr(parser *p) {
    if (enter(p)) return NULL;
    jnode *n = parse_or(p);
    while (n && is_name(cur(p), "if")) {
        jnode *c = node(p, JN_COND, cur(p)->line);
        p->pos++;
        if (!c || !(c->b = parse_or(p))) return NULL;
        c->a = n;
        if (accept_name(p, "else") && !(c->c = parse_expr(p))) return NULL;
        n = c;
    }
    p->depth--;
    return n;
}

/* Statements up to one of the `ends` tags (NULL-terminated; NULL list at
 * the top level). Leaves p->pos after the end tag's name and returns its
 * index, -1 on error. */
static int parse_body(parser *p, jnodes *out, const char *const *ends, const char *opener, int open_line);

static int block_end(parser *p) { return expect_type(p, T_BLOCK_END, "'%}'"); }

static jnode *parse_target(parser *p, int allow_attr) {
    nlist names = {0};
    int line = cur(p)->line;
    do {
        token *t = cur(p);
        if (t->type != T_NAME) return fail(p, t->line, "expected a variable name"), NULL;
        p->pos++;
        jnode *n = node(p, JN_NAME, t->line);
        if (!n) return NULL;
        n->s = t->s;
        n->n = t->n;
        if (allow_attr && !names.n && is_op(cur(p), ".")) {
            p->pos++;
            token *a = cur(p);
            if (a->type != T_NAME) return fail(p, a->line, "expected an attribute name after '.'"), NULL;
            p->pos++;
            jnode *m = node(p, JN_ATTR, a->line);
            if (!m) return NULL;
            m->a = n;
            m->s = a->s;
            m->n = a->n;
            return m;
        }
        if (nl_push(p, &names, n)) return NULL;
    } while (accept_op(p, ","));
    if (names.n == 1) return names.v[0];
    jnode *t = node(p, JN_TUPLE, line);
    if (t) t->args = nl_done(&names);
    return t;
}

static jnode *parse_statement(parser *p) {
    token *t = cur(p);
    int line = t->line;
    if (t->type != T_NAME) return fail(p, line, "expected a tag name after '{%%'"), NULL;
    p->pos++;
    jnode *n = NULL;
    if (is_name(t, "if") || is_name(t, "elif")) {
        static const char *const ends[] = {"elif", "else", "endif", NULL};
        if (!(n = node(p, JN_IF, line)) || !(n->a = parse_expr(p)) || block_end(p)) return NULL;
        int which = parse_body(p, &n->body, ends, "if", line);
        if (which < 0) return NULL;
        if (which == 0) {
            p->pos--; /* parse the elif as a nested if */
            jnode *e = parse_statement(p);
            if (!e) return NULL;
            jnode **v = jarena_alloc(&p->t->arena, sizeof *v);
            if (!v) return nomem(p), NULL;
            v[0] = e;
            n->orelse = (jnodes){v, 1};
            return n;
        }
        if (block_end(p)) return NULL;
        if (which == 1) {
            static const char *const endif[] = {"endif", NULL};
            if (parse_body(p, &n->orelse, endif, "if", line) < 0 || block_end(p)) return NULL;
        }
        return n;
    }
    if (is_name(t, "for")) {
        static const char *const ends[] = {"else", "endfor", NULL};
        static const char *const endfor[] = {"endfor", NULL};
        if (!(n = node(p, JN_FOR, line))) return NULL;
        jnode *target = parse_target(p, 0);
        if (!target) return NULL;
        if (target->kind == JN_TUPLE) {
            n->args = target->args;
        } else {
            jnode **v = jarena_alloc(&p->t->arena, sizeof *v);
            if (!v) return nomem(p), NULL;
            v[0] = target;
            n->args = (jnodes){v, 1};
        }
        if (!accept_name(p, "in")) return fail(p, cur(p)->line, "expected 'in' in a for tag"), NULL;
        if (enter(p) || !(n->a = parse_or(p))) return NULL;
        p->depth--;
        if (accept_name(p, "if") && !(n->b = parse_expr(p))) return NULL;
        if (is_name(cur(p), "recursive")) return fail(p, line, "recursive for loops are not supported"), NULL;
        if (block_end(p)) return NULL;
        p->loops++;
        int which = parse_body(p, &n->body, ends, "for", line);
        p->loops--;
        if (which < 0 || block_end(p)) return NULL;
        if (which == 0 && (parse_body(p, &n->orelse, endfor, "for", line) < 0 || block_end(p))) return NULL;
        return n;
    }
    if (is_name(t, "set")) {
        static const char *const ends[] = {"endset", NULL};
        if (!(n = node(p, JN_SET, line)) || !(n->a = parse_target(p, 1))) return NULL;
        if (accept_op(p, "=")) {
            if (!(n->b = parse_expr(p))) return NULL;
            if (is_op(cur(p), ",")) {
                nlist items = {0};
                if (nl_push(p, &items, n->b)) return NULL;
                while (accept_op(p, ",")) {
                    jnode *e = parse_expr(p);
                    if (!e || nl_push(p, &items, e)) return NULL;
                }
                if (!(n->b = node(p, JN_TUPLE, line))) return NULL;
                n->b->args = nl_done(&items);
            }
            return block_end(p) ? NULL : n;
        }
        if (n->a->kind != JN_NAME) return fail(p, line, "a {%% set %%} block assigns one plain name"), NULL;
        if (block_end(p) || parse_body(p, &n->body, ends, "set", line) < 0 || block_end(p)) return NULL;
        return n;
    }
    if (is_name(t, "macro")) {
        static const char *const ends[] = {"endmacro", NULL};
        token *name = cur(p);
        if (name->type != T_NAME) return fail(p, name->line, "expected a macro name"), NULL;
        p->pos++;
        if (!(n = node(p, JN_MACRO, line)) || expect_op(p, "(")) return NULL;
        n->s = name->s;
        n->n = name->n;
        nlist params = {0};
        while (!accept_op(p, ")")) {
            if (params.n && expect_op(p, ",")) return NULL;
            if (accept_op(p, ")")) break;
            token *a = cur(p);
            if (a->type != T_NAME) return fail(p, a->line, "expected a macro parameter name"), NULL;
            p->pos++;
            jnode *param = node(p, JN_NAME, a->line);
            if (!param || nl_push(p, &params, param)) return NULL;
            param->s = a->s;
            param->n = a->n;
            if (accept_op(p, "=") && !(param->a = parse_expr(p))) return NULL;
        }
        n->args = nl_done(&params);
        int loops = p->loops;
        p->loops = 0;
        if (block_end(p) || parse_body(p, &n->body, ends, "macro", line) < 0 || block_end(p)) return NULL;
        p->loops = loops;
        return n;
    }
    if (is_name(t, "break") || is_name(t, "continue")) {
        if (!p->loops) return fail(p, line, "'%.*s' outside a for loop", (int)t->n, t->s), NULL;
        if (!(n = node(p, t->s[0] == 'b' ? JN_BREAK : JN_CONTINUE, line)) || block_end(p)) return NULL;
        return n;
    }
    if (is_name(t, "generation")) {
        static const char *const ends[] = {"endgeneration", NULL};
        if (!(n = node(p, JN_BLOCK, line)) || block_end(p) || parse_body(p, &n->body, ends, "generation", line) < 0 ||
            block_end(p))
            return NULL;
        return n;
    }
    static const char *const jinja_tags[] = {"include", "import", "from", "extends", "block", "call", "filter",
                                             "with", "autoescape", "raw", "do", "trans", NULL};
    for (const char *const *k = jinja_tags; *k; k++)
        if (is_name(t, *k)) return fail(p, line, "unknown tag '%s' (not in cllm's Jinja subset)", *k), NULL;
    fail(p, line, "unknown tag '%.*s'", (int)(t->n > 40 ? 40 : t->n), t->s);
    return NULL;
}

static int parse_body(parser *p, jnodes *out, const char *const *ends, const char *opener, int open_line) {
    nlist body = {0};
    if (enter(p)) return -1;
    for (;;) {
        token *t = cur(p);
        jnode *n = NULL;
        if (t->type == T_EOF) {
            if (!ends) break;
            return fail(p, open_line, "'%s' block is never closed (missing {%% %s %%})", opener, ends[0] && !ends[1] ? ends[0]
                        : ends[1] && !ends[2] ? ends[1] : ends[2]);
        }
        if (t->type == T_TEXT) {
            p->pos++;
            if (!(n = node(p, JN_TEXT, t->line))) return -1;
            n->s = t->s;
            n->n = t->n;
        } else if (t->type == T_VAR_BEGIN) {
            p->pos++;
            if (!(n = node(p, JN_OUTPUT, t->line)) || !(n->a = parse_expr(p)) || expect_type(p, T_VAR_END, "'}}'")) return -1;
        } else if (t->type == T_BLOCK_BEGIN) {
            p->pos++;
            token *name = cur(p);
            for (int k = 0; ends && ends[k]; k++)
                if (is_name(name, ends[k])) {
                    p->pos++;
                    *out = nl_done(&body);
                    p->depth--;
                    return k;
                }
            if (name->type == T_NAME &&
                (is_name(name, "elif") || is_name(name, "else") || (name->n > 3 && !memcmp(name->s, "end", 3)))) {
                if (ends) return fail(p, name->line, "unexpected '%.*s' inside '%s' (opened on line %d)", (int)name->n, name->s, opener, open_line);
                return fail(p, name->line, "unexpected '%.*s' with no open block", (int)(name->n > 40 ? 40 : name->n), name->s);
            }
            if (!(n = parse_statement(p))) return -1;
        } else {
            char buf[64];
            return fail(p, t->line, "unexpected %s", describe(t, buf, sizeof buf));
        }
        if (nl_push(p, &body, n)) return -1;
    }
    *out = nl_done(&body);
    p->depth--;
    return 0;
}

cllm_status jinja_parse(cllm_jinja *t, const char *src, size_t len, cllm_error *err) {
    /* Jinja's newline handling: \r\n and \r become \n, one trailing \n goes. */
    char *norm = malloc(len + 1);
    if (!norm) return cllm_error_set(err, CLLM_ERR_NOMEM, "%s: out of memory compiling the template", t->name);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            norm[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            norm[n++] = src[i];
        }
    }
    if (n && norm[n - 1] == '\n') n--;
    /* token texts point into the source: keep a copy in the arena */
    char *kept = jarena_alloc(&t->arena, n + 1);
    if (kept) memcpy(kept, norm, n);
    free(norm);
    parser p = {.t = t, .err = err};
    if (!kept) return nomem(&p), err->status;
    int rc = lex(&p, kept, n);
    if (rc == 0) rc = parse_body(&p, &t->body, NULL, NULL, 0) < 0 ? -1 : 0;
    free(p.tok);
    return rc ? (err ? err->status : CLLM_ERR_FORMAT) : CLLM_OK;
}

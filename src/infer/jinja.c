/*
 * jinja.c: renders a compiled chat template (jinja_parse.c builds the tree)
 * with a JSON context, the way Jinja2 under Hugging Face's
 * apply_chat_template would (include/cllm/infer/jinja.h lists the subset).
 *
 * Values are Python's: None, bool, int (64-bit here), float, str, list,
 * tuple, dict (insertion-ordered), plus Jinja's Undefined, namespace(), the
 * loop object, macros and a few global functions. Every value built while
 * rendering lives in one arena capped at CLLM_JINJA_MAX_MEMORY; scopes
 * follow Jinja's (a for loop's body gets a fresh scope per iteration, so a
 * plain {% set %} inside it is gone afterwards, which is why templates use
 * namespace()). str() and repr() of values, tojson (json.dumps with
 * ensure_ascii=False) and float formatting (repr's shortest digits) are
 * Python's, byte for byte, because templates print them.
 *
 * What it deliberately does not do: no attribute of a value reaches
 * anything but the value's own data (no Python-object introspection, no
 * files, no clock except strftime_now), and every loop, macro call and
 * byte of output counts against a limit.
 */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jinja_internal.h"

/* ---------------------------------------------------------------- values */

typedef enum { V_UNDEF, V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_LIST, V_DICT, V_NS, V_LOOP, V_MACRO, V_FUNC, V_METHOD } vtype;

typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jloop jloop;

typedef struct {
    vtype t;
    uint8_t tuple; /* V_LIST: a tuple (prints with parentheses) */
    union {
        int64_t i; /* V_BOOL, V_INT, V_FUNC (builtin id) */
        double f;
        struct {
            const char *p;
            size_t n;
        } s;           /* V_STR; V_UNDEF: the error text for using it (may be NULL) */
        jlist *l;
        jdict *d;      /* V_DICT, V_NS */
        jloop *loop;
        const jnode *m;
    } u;
} jv;

struct jlist {
    size_t n, cap;
    jv *v;
};
struct jdict {
    size_t n, cap;
    jv *k, *v;
};
struct jloop {
    const jlist *items;
    size_t i;
};

enum { FN_RANGE, FN_NAMESPACE, FN_DICT, FN_RAISE, FN_STRFTIME, FN_COUNT };
static const char *const fn_names[FN_COUNT] = {"range", "namespace", "dict", "raise_exception", "strftime_now"};

typedef struct scope {
    struct scope *parent;
    jdict vars;
} scope;

typedef struct {
    char *p;
    size_t n, cap, limit;
} sbuf;

typedef struct {
    const cllm_jinja *t;
    jarena a;
    cllm_error *err;
    scope *root;
    long iterations;
    int64_t steps; /* expressions evaluated + bytes copied or scanned / 16 */
    int depth;
    int ctl; /* 1 break, 2 continue pending */
    int failed;
} rs;

#define V_OF(type) ((jv){.t = (type)})

static int rfail(rs *st, int line, cllm_status status, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int rfail(rs *st, int line, cllm_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    jinja_error(st->err, &st->failed, status, st->t->name, line, fmt, ap);
    va_end(ap);
    return -1;
}

static int charge(rs *st, size_t bytes, int line);

static void *ralloc(rs *st, size_t n, int line) {
    if (n >= 4096 && charge(st, n, line)) return NULL;
    void *p = jarena_alloc(&st->a, n);
    if (!p) rfail(st, line, CLLM_ERR_LIMIT, "template needs more than %u bytes of working memory (CLLM_JINJA_MAX_MEMORY)",
                  CLLM_JINJA_MAX_MEMORY);
    return p;
}

/* Output buffers (malloc'ed, capped). */
static int sb_put(rs *st, sbuf *b, const char *s, size_t n, int line) {
    if (n >= 4096 && charge(st, n, line)) return -1;
    if (n > b->limit - b->n) {
        return rfail(st, line, CLLM_ERR_LIMIT, "template output passed %zu bytes (%s)", b->limit,
                     b->limit == CLLM_JINJA_MAX_OUTPUT ? "CLLM_JINJA_MAX_OUTPUT" : "CLLM_JINJA_MAX_MEMORY");
    }
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return rfail(st, line, CLLM_ERR_NOMEM, "out of memory rendering the template");
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}
static int sb_str(rs *st, sbuf *b, const char *s, int line) { return sb_put(st, b, s, strlen(s), line); }

static jv mk_str(const char *p, size_t n) {
    jv v = V_OF(V_STR);
    v.u.s.p = p;
    v.u.s.n = n;
    return v;
}
static jv mk_int(int64_t i) {
    jv v = V_OF(V_INT);
    v.u.i = i;
    return v;
}
static jv mk_bool(int b) {
    jv v = V_OF(V_BOOL);
    v.u.i = b != 0;
    return v;
}
static jv mk_float(double f) {
    jv v = V_OF(V_FLOAT);
    v.u.f = f;
    return v;
}
static jv mk_undef(const char *why) {
    jv v = V_OF(V_UNDEF);
    v.u.s.p = why;
    return v;
}

/* A string copied into the arena (from a malloc'ed buffer that is freed). */
static int sb_to_str(rs *st, sbuf *b, jv *out, int line) {
    char *p = ralloc(st, b->n + 1, line);
    if (p && b->n) memcpy(p, b->p, b->n);
    free(b->p);
    b->p = NULL;
    if (!p) return -1;
    *out = mk_str(p, b->n);
    return 0;
}

static const char *fmt_undef(rs *st, const char *fmt, const char *name, size_t n) {
    char buf[256];
    snprintf(buf, sizeof buf, fmt, (int)(n > 100 ? 100 : n), name);
    char *p = jarena_alloc(&st->a, strlen(buf) + 1);
    if (p) strcpy(p, buf);
    return p;
}

static int list_push(rs *st, jlist *l, jv v, int line) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        jv *nv = ralloc(st, cap * sizeof *nv, line);
        if (!nv) return -1;
        if (l->n) memcpy(nv, l->v, l->n * sizeof *nv);
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = v;
    return 0;
}

static jlist *new_list(rs *st, int line) { return ralloc(st, sizeof(jlist), line); }
static jv list_val(jlist *l, int tuple) {
    jv v = V_OF(V_LIST);
    v.u.l = l;
    v.tuple = (uint8_t)tuple;
    return v;
}

static int str_eq(jv a, const char *s, size_t n) { return a.t == V_STR && a.u.s.n == n && !memcmp(a.u.s.p, s, n); }

static int values_equal(jv a, jv b);

static jv *dict_find(const jdict *d, jv key) {
    for (size_t i = 0; i < d->n; i++)
        if (values_equal(d->k[i], key)) return &d->v[i];
    return NULL;
}

static jv *dict_find_s(const jdict *d, const char *s, size_t n) {
    for (size_t i = 0; i < d->n; i++)
        if (str_eq(d->k[i], s, n)) return &d->v[i];
    return NULL;
}

static int dict_set(rs *st, jdict *d, jv key, jv val, int line) {
    jv *slot = dict_find(d, key);
    if (slot) return *slot = val, 0;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        jv *k = ralloc(st, cap * sizeof *k, line), *v = ralloc(st, cap * sizeof *v, line);
        if (!k || !v) return -1;
        if (d->n) memcpy(k, d->k, d->n * sizeof *k), memcpy(v, d->v, d->n * sizeof *v);
        d->k = k;
        d->v = v;
        d->cap = cap;
    }
    d->k[d->n] = key;
    d->v[d->n++] = val;
    return 0;
}

static const char *type_name(jv v) {
    switch (v.t) {
    case V_UNDEF: return "Undefined";
    case V_NONE: return "NoneType";
    case V_BOOL: return "bool";
    case V_INT: return "int";
    case V_FLOAT: return "float";
    case V_STR: return "str";
    case V_LIST: return v.tuple ? "tuple" : "list";
    case V_DICT: return "dict";
    case V_NS: return "Namespace";
    case V_LOOP: return "LoopContext";
    case V_MACRO: return "Macro";
    default: return "builtin_function_or_method";
    }
}

static int truthy(jv v) {
    switch (v.t) {
    case V_UNDEF:
    case V_NONE: return 0;
    case V_BOOL:
    case V_INT: return v.u.i != 0;
    case V_FLOAT: return v.u.f != 0.0;
    case V_STR: return v.u.s.n != 0;
    case V_LIST: return v.u.l->n != 0;
    case V_DICT: return v.u.d->n != 0;
    default: return 1;
    }
}

/* Using an undefined value where Jinja raises UndefinedError. */
static int undef_fail(rs *st, int line, jv v) {
    return rfail(st, line, CLLM_ERR_FORMAT, "%s", v.u.s.p ? v.u.s.p : "value is undefined");
}

/* ------------------------------------------------------- str(), repr(), json */

static size_t utf8_len(const char *s, size_t n, size_t i) {
    unsigned char c = (unsigned char)s[i];
    size_t k = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 1;
    if (i + k > n) return 1;
    for (size_t j = 1; j < k; j++)
        if (((unsigned char)s[i + j] & 0xc0) != 0x80) return 1;
    return k;
}

static size_t utf8_count(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i += utf8_len(s, n, i)) c++;
    return c;
}

/* Python's repr(float). */
static void fmt_float(double x, char *out, size_t cap) {
    if (isnan(x)) {
        snprintf(out, cap, "nan");
        return;
    }
    if (isinf(x)) {
        snprintf(out, cap, x < 0 ? "-inf" : "inf");
        return;
    }
    char tmp[48];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, x);
        if (strtod(tmp, NULL) == x) break;
    }
    /* tmp: [-]d[.ddd]e(+|-)XX */
    const char *q = tmp;
    int neg = *q == '-';
    if (neg) q++;
    char digits[24];
    int nd = 0;
    for (; *q && *q != 'e'; q++)
        if (*q != '.') digits[nd++] = *q;
    int e = atoi(q + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    int decpt = e + 1;
    char *o = out;
    size_t left = cap;
#define PUT(...) do { int w_ = snprintf(o, left, __VA_ARGS__); o += w_; left -= (size_t)w_; } while (0)
    if (neg) PUT("-");
    if (decpt > 16 || decpt < -3) {
        PUT("%c", digits[0]);
        if (nd > 1) PUT(".%s", digits + 1);
        PUT("e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    } else if (decpt <= 0) {
        PUT("0.");
        for (int i = 0; i < -decpt; i++) PUT("0");
        PUT("%s", digits);
    } else if (decpt >= nd) {
        PUT("%s", digits);
        for (int i = nd; i < decpt; i++) PUT("0");
        PUT(".0");
    } else {
        PUT("%.*s.%s", decpt, digits, digits + decpt);
    }
#undef PUT
}

static int put_repr(rs *st, sbuf *b, jv v, int line, int depth);

static int put_str(rs *st, sbuf *b, jv v, int line, int depth) {
    char num[64];
    switch (v.t) {
    case V_UNDEF: return 0;
    case V_NONE: return sb_str(st, b, "None", line);
    case V_BOOL: return sb_str(st, b, v.u.i ? "True" : "False", line);
    case V_INT: snprintf(num, sizeof num, "%" PRId64, v.u.i); return sb_str(st, b, num, line);
    case V_FLOAT: fmt_float(v.u.f, num, sizeof num); return sb_str(st, b, num, line);
    case V_STR: return sb_put(st, b, v.u.s.p, v.u.s.n, line);
    case V_LIST:
    case V_DICT:
    case V_NS: return put_repr(st, b, v, line, depth);
    case V_LOOP: return sb_str(st, b, "<LoopContext>", line);
    case V_MACRO: return sb_str(st, b, "<Macro>", line);
    default: return sb_str(st, b, "<built-in function>", line);
    }
}

static int put_repr(rs *st, sbuf *b, jv v, int line, int depth) {
    if (depth > CLLM_JINJA_MAX_NESTING) return rfail(st, line, CLLM_ERR_LIMIT, "value nested deeper than %d", CLLM_JINJA_MAX_NESTING);
    if (v.t == V_STR) {
        const char *s = v.u.s.p;
        size_t n = v.u.s.n;
        char q = memchr(s, '\'', n) && !memchr(s, '"', n) ? '"' : '\'';
        if (sb_put(st, b, &q, 1, line)) return -1;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)s[i];
            char esc[8];
            if (c == '\\' || c == (unsigned char)q) esc[0] = '\\', esc[1] = (char)c, esc[2] = 0;
            else if (c == '\n') strcpy(esc, "\\n");
            else if (c == '\r') strcpy(esc, "\\r");
            else if (c == '\t') strcpy(esc, "\\t");
            else if (c < 0x20 || c == 0x7f) snprintf(esc, sizeof esc, "\\x%02x", c);
            else esc[0] = (char)c, esc[1] = 0;
            if (sb_put(st, b, esc, strlen(esc), line)) return -1;
        }
        return sb_put(st, b, &q, 1, line);
    }
    if (v.t == V_LIST) {
        if (sb_str(st, b, v.tuple ? "(" : "[", line)) return -1;
        for (size_t i = 0; i < v.u.l->n; i++)
            if ((i && sb_str(st, b, ", ", line)) || put_repr(st, b, v.u.l->v[i], line, depth + 1)) return -1;
        if (v.tuple && v.u.l->n == 1 && sb_str(st, b, ",", line)) return -1;
        return sb_str(st, b, v.tuple ? ")" : "]", line);
    }
    if (v.t == V_DICT || v.t == V_NS) {
        if (sb_str(st, b, v.t == V_NS ? "<Namespace {" : "{", line)) return -1;
        for (size_t i = 0; i < v.u.d->n; i++)
            if ((i && sb_str(st, b, ", ", line)) || put_repr(st, b, v.u.d->k[i], line, depth + 1) ||
                sb_str(st, b, ": ", line) || put_repr(st, b, v.u.d->v[i], line, depth + 1))
                return -1;
        return sb_str(st, b, v.t == V_NS ? "}>" : "}", line);
    }
    if (v.t == V_UNDEF) return sb_str(st, b, "Undefined", line);
    return put_str(st, b, v, line, depth);
}

typedef struct {
    int indent; /* -1: none */
    const char *indent_s; /* indent given as a string */
    const char *item_sep, *key_sep;
    int ascii, sort_keys;
} json_opts;

static int put_json_str(rs *st, sbuf *b, const char *s, size_t n, int ascii, int line) {
    if (sb_put(st, b, "\"", 1, line)) return -1;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        char esc[16];
        size_t k = 1;
        esc[0] = 0;
        if (c == '"') strcpy(esc, "\\\"");
        else if (c == '\\') strcpy(esc, "\\\\");
        else if (c == '\n') strcpy(esc, "\\n");
        else if (c == '\r') strcpy(esc, "\\r");
        else if (c == '\t') strcpy(esc, "\\t");
        else if (c == '\b') strcpy(esc, "\\b");
        else if (c == '\f') strcpy(esc, "\\f");
        else if (c < 0x20 || (ascii && c == 0x7f)) snprintf(esc, sizeof esc, "\\u%04x", c);
        else if (ascii && c >= 0x80) {
            k = utf8_len(s, n, i);
            uint32_t cp = k == 1 ? 0xfffd : k == 2 ? (c & 0x1fu) : k == 3 ? (c & 0x0fu) : (c & 0x07u);
            for (size_t j = 1; j < k; j++) cp = (cp << 6) | ((unsigned char)s[i + j] & 0x3fu);
            if (cp >= 0x10000) {
                cp -= 0x10000;
                snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
            } else {
                snprintf(esc, sizeof esc, "\\u%04x", cp);
            }
        }
        if (esc[0] ? sb_str(st, b, esc, line) : sb_put(st, b, s + i, 1, line)) return -1;
        i += k;
    }
    return sb_put(st, b, "\"", 1, line);
}

static int json_newline(rs *st, sbuf *b, const json_opts *o, int level, int line) {
    if (sb_str(st, b, "\n", line)) return -1;
    for (int i = 0; i < level; i++) {
        if (o->indent_s ? sb_str(st, b, o->indent_s, line) : 0) return -1;
        for (int k = 0; !o->indent_s && k < o->indent; k++)
            if (sb_put(st, b, " ", 1, line)) return -1;
    }
    return 0;
}

static int cmp_values(rs *st, jv a, jv b, int line, int *out);

static int put_json(rs *st, sbuf *b, jv v, const json_opts *o, int level, int line) {
    if (level > CLLM_JINJA_MAX_NESTING) return rfail(st, line, CLLM_ERR_LIMIT, "tojson: value nested deeper than %d", CLLM_JINJA_MAX_NESTING);
    char num[64];
    int pretty = o->indent >= 0 || o->indent_s;
    switch (v.t) {
    case V_NONE: return sb_str(st, b, "null", line);
    case V_BOOL: return sb_str(st, b, v.u.i ? "true" : "false", line);
    case V_INT: snprintf(num, sizeof num, "%" PRId64, v.u.i); return sb_str(st, b, num, line);
    case V_FLOAT:
        if (isnan(v.u.f)) return sb_str(st, b, "NaN", line);
        if (isinf(v.u.f)) return sb_str(st, b, v.u.f < 0 ? "-Infinity" : "Infinity", line);
        fmt_float(v.u.f, num, sizeof num);
        return sb_str(st, b, num, line);
    case V_STR: return put_json_str(st, b, v.u.s.p, v.u.s.n, o->ascii, line);
    case V_LIST:
        if (!v.u.l->n) return sb_str(st, b, "[]", line);
        if (sb_str(st, b, "[", line)) return -1;
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i && sb_str(st, b, o->item_sep, line)) return -1;
            if (pretty && json_newline(st, b, o, level + 1, line)) return -1;
            if (put_json(st, b, v.u.l->v[i], o, level + 1, line)) return -1;
        }
        if (pretty && json_newline(st, b, o, level, line)) return -1;
        return sb_str(st, b, "]", line);
    case V_DICT: {
        jdict *d = v.u.d;
        if (!d->n) return sb_str(st, b, "{}", line);
        size_t *order = ralloc(st, d->n * sizeof *order, line);
        if (!order) return -1;
        for (size_t i = 0; i < d->n; i++) order[i] = i;
        if (o->sort_keys) /* insertion sort: dicts in templates are small */
            for (size_t i = 1; i < d->n; i++)
                for (size_t j = i; j > 0; j--) {
                    int c;
                    if (cmp_values(st, d->k[order[j - 1]], d->k[order[j]], line, &c)) return -1;
                    if (c <= 0) break;
                    size_t t = order[j];
                    order[j] = order[j - 1];
                    order[j - 1] = t;
                }
        if (sb_str(st, b, "{", line)) return -1;
        for (size_t i = 0; i < d->n; i++) {
            jv k = d->k[order[i]];
            if (i && sb_str(st, b, o->item_sep, line)) return -1;
            if (pretty && json_newline(st, b, o, level + 1, line)) return -1;
            if (k.t == V_STR) {
                if (put_json_str(st, b, k.u.s.p, k.u.s.n, o->ascii, line)) return -1;
            } else if (k.t == V_INT || k.t == V_BOOL || k.t == V_NONE || k.t == V_FLOAT) {
                sbuf t = {.limit = CLLM_JINJA_MAX_OUTPUT};
                if (put_json(st, &t, k, o, level + 1, line)) return free(t.p), -1;
                int rc = sb_str(st, b, "\"", line) || sb_put(st, b, t.p, t.n, line) || sb_str(st, b, "\"", line);
                free(t.p);
                if (rc) return -1;
            } else {
                return rfail(st, line, CLLM_ERR_FORMAT, "tojson: keys must be str, int, float, bool or None, not %s", type_name(k));
            }
            if (sb_str(st, b, o->key_sep, line) || put_json(st, b, d->v[order[i]], o, level + 1, line)) return -1;
        }
        if (pretty && json_newline(st, b, o, level, line)) return -1;
        return sb_str(st, b, "}", line);
    }
    default:
        return rfail(st, line, CLLM_ERR_FORMAT, "tojson: Object of type %s is not JSON serializable", type_name(v));
    }
}

/* str(v) as a value (strings returned as they are). */
static int to_str(rs *st, jv v, jv *out, int line) {
    if (v.t == V_STR) return *out = v, 0;
    sbuf b = {.limit = CLLM_JINJA_MAX_MEMORY};
    if (put_str(st, &b, v, line, 0)) return free(b.p), -1;
    return sb_to_str(st, &b, out, line);
}

/* ------------------------------------------------------- comparisons */

static int is_num(jv v) { return v.t == V_BOOL || v.t == V_INT || v.t == V_FLOAT; }
static double num_f(jv v) { return v.t == V_FLOAT ? v.u.f : (double)v.u.i; }

static int values_equal(jv a, jv b) {
    if (is_num(a) && is_num(b)) {
        if (a.t != V_FLOAT && b.t != V_FLOAT) return a.u.i == b.u.i;
        return num_f(a) == num_f(b);
    }
    if (a.t != b.t) return 0;
    switch (a.t) {
    case V_UNDEF:
    case V_NONE: return 1;
    case V_STR: return a.u.s.n == b.u.s.n && !memcmp(a.u.s.p, b.u.s.p, a.u.s.n);
    case V_LIST:
        if (a.tuple != b.tuple || a.u.l->n != b.u.l->n) return 0;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!values_equal(a.u.l->v[i], b.u.l->v[i])) return 0;
        return 1;
    case V_DICT:
        if (a.u.d->n != b.u.d->n) return 0;
        for (size_t i = 0; i < a.u.d->n; i++) {
            jv *o = dict_find(b.u.d, a.u.d->k[i]);
            if (!o || !values_equal(a.u.d->v[i], *o)) return 0;
        }
        return 1;
    case V_NS: return a.u.d == b.u.d;
    case V_LOOP: return a.u.loop == b.u.loop;
    case V_MACRO: return a.u.m == b.u.m;
    default: return a.u.i == b.u.i;
    }
}

/* Python's <, as -1/0/1; TypeError for unordered types. */
static int cmp_values(rs *st, jv a, jv b, int line, int *out) {
    if (is_num(a) && is_num(b)) {
        if (a.t != V_FLOAT && b.t != V_FLOAT) *out = a.u.i < b.u.i ? -1 : a.u.i > b.u.i;
        else *out = num_f(a) < num_f(b) ? -1 : num_f(a) > num_f(b);
        return 0;
    }
    if (a.t == V_STR && b.t == V_STR) {
        size_t n = a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n;
        int c = memcmp(a.u.s.p, b.u.s.p, n);
        *out = c ? (c < 0 ? -1 : 1) : a.u.s.n < b.u.s.n ? -1 : a.u.s.n > b.u.s.n;
        return 0;
    }
    if (a.t == V_LIST && b.t == V_LIST) {
        for (size_t i = 0; i < a.u.l->n && i < b.u.l->n; i++) {
            if (values_equal(a.u.l->v[i], b.u.l->v[i])) continue;
            return cmp_values(st, a.u.l->v[i], b.u.l->v[i], line, out);
        }
        *out = a.u.l->n < b.u.l->n ? -1 : a.u.l->n > b.u.l->n;
        return 0;
    }
    if (a.t == V_UNDEF) return undef_fail(st, line, a);
    if (b.t == V_UNDEF) return undef_fail(st, line, b);
    return rfail(st, line, CLLM_ERR_FORMAT, "'<' not supported between instances of '%s' and '%s'", type_name(a), type_name(b));
}

static int contains(rs *st, jv hay, jv needle, int line, int *out) {
    switch (hay.t) {
    case V_STR:
        if (charge(st, hay.u.s.n, line)) return -1;
        if (needle.t != V_STR)
            return rfail(st, line, CLLM_ERR_FORMAT, "'in <string>' requires string as left operand, not %s", type_name(needle));
        *out = needle.u.s.n == 0 || (needle.u.s.n <= hay.u.s.n && memmem(hay.u.s.p, hay.u.s.n, needle.u.s.p, needle.u.s.n));
        return 0;
    case V_LIST:
        *out = 0;
        for (size_t i = 0; i < hay.u.l->n && !*out; i++) *out = values_equal(hay.u.l->v[i], needle);
        return 0;
    case V_DICT:
    case V_NS: *out = dict_find(hay.u.d, needle) != NULL; return 0;
    case V_UNDEF: *out = 0; return 0;
    default: return rfail(st, line, CLLM_ERR_FORMAT, "argument of type '%s' is not iterable", type_name(hay));
    }
}

/* ------------------------------------------------------- sequences */

/* Items of an iterable as a list: list/tuple items, dict keys, string
 * characters; Undefined iterates as empty. */
static int iterate(rs *st, jv v, jlist **out, int line) {
    if (v.t == V_LIST) return *out = v.u.l, 0;
    if (v.t == V_STR && charge(st, v.u.s.n * 4, line)) return -1;
    jlist *l = new_list(st, line);
    if (!l) return -1;
    *out = l;
    if (v.t == V_UNDEF) return 0;
    if (v.t == V_DICT || v.t == V_NS) {
        for (size_t i = 0; i < v.u.d->n; i++)
            if (list_push(st, l, v.u.d->k[i], line)) return -1;
        return 0;
    }
    if (v.t == V_STR) {
        for (size_t i = 0; i < v.u.s.n;) {
            size_t k = utf8_len(v.u.s.p, v.u.s.n, i);
            if (list_push(st, l, mk_str(v.u.s.p + i, k), line)) return -1;
            i += k;
        }
        return 0;
    }
    return rfail(st, line, CLLM_ERR_FORMAT, "'%s' object is not iterable", type_name(v));
}

static int py_index(int64_t i, size_t n, size_t *out) {
    if (i < 0) i += (int64_t)n;
    if (i < 0 || (uint64_t)i >= n) return 0;
    *out = (size_t)i;
    return 1;
}

static int get_item(rs *st, jv obj, jv key, jv *out, int line) {
    if (obj.t == V_UNDEF) return undef_fail(st, line, obj);
    if (obj.t == V_DICT || obj.t == V_NS) {
        jv *v = dict_find(obj.u.d, key);
        if (v) return *out = *v, 0;
        if (key.t == V_STR) *out = mk_undef(fmt_undef(st, "'dict object' has no attribute '%.*s'", key.u.s.p, key.u.s.n));
        else *out = mk_undef("'dict object' has no such element");
        return 0;
    }
    if ((obj.t == V_LIST || obj.t == V_STR) && (key.t == V_INT || key.t == V_BOOL)) {
        size_t i;
        if (obj.t == V_LIST) {
            if (py_index(key.u.i, obj.u.l->n, &i)) return *out = obj.u.l->v[i], 0;
        } else {
            jlist *chars;
            if (iterate(st, obj, &chars, line)) return -1;
            if (py_index(key.u.i, chars->n, &i)) return *out = chars->v[i], 0;
        }
        char buf[96];
        snprintf(buf, sizeof buf, "%s object has no element %" PRId64, type_name(obj), key.u.i);
        *out = mk_undef(fmt_undef(st, "%.*s", buf, strlen(buf)));
        return 0;
    }
    if (key.t == V_STR) *out = mk_undef(fmt_undef(st, "object has no attribute '%.*s'", key.u.s.p, key.u.s.n));
    else *out = mk_undef("no such element");
    return 0;
}

static int loop_attr(rs *st, const jloop *lp, const char *s, size_t n, jv *out, int line) {
    size_t len = lp->items->n, i = lp->i;
#define IS(name) (n == strlen(name) && !memcmp(s, name, n))
    if (IS("index0")) *out = mk_int((int64_t)i);
    else if (IS("index")) *out = mk_int((int64_t)i + 1);
    else if (IS("revindex")) *out = mk_int((int64_t)(len - i));
    else if (IS("revindex0")) *out = mk_int((int64_t)(len - i - 1));
    else if (IS("first")) *out = mk_bool(i == 0);
    else if (IS("last")) *out = mk_bool(i + 1 == len);
    else if (IS("length")) *out = mk_int((int64_t)len);
    else if (IS("depth")) *out = mk_int(1);
    else if (IS("depth0")) *out = mk_int(0);
    else if (IS("previtem")) *out = i ? lp->items->v[i - 1] : mk_undef("there is no previous item");
    else if (IS("nextitem")) *out = i + 1 < len ? lp->items->v[i + 1] : mk_undef("there is no next item");
    else *out = mk_undef(fmt_undef(st, "'LoopContext' object has no attribute '%.*s'", s, n));
#undef IS
    (void)line;
    return 0;
}

static int get_attr(rs *st, jv obj, const char *s, size_t n, jv *out, int line) {
    if (obj.t == V_UNDEF) return undef_fail(st, line, obj);
    if (obj.t == V_LOOP) return loop_attr(st, obj.u.loop, s, n, out, line);
    if (obj.t == V_DICT || obj.t == V_NS) {
        jv *v = dict_find_s(obj.u.d, s, n);
        if (v) return *out = *v, 0;
        *out = mk_undef(fmt_undef(st, obj.t == V_NS ? "'Namespace' object has no attribute '%.*s'"
                                                     : "'dict object' has no attribute '%.*s'", s, n));
        return 0;
    }
    char buf[64];
    snprintf(buf, sizeof buf, "'%s object' has no attribute", type_name(obj));
    char msg[200];
    snprintf(msg, sizeof msg, "%s '%.*s'", buf, (int)(n > 60 ? 60 : n), s);
    *out = mk_undef(fmt_undef(st, "%.*s", msg, strlen(msg)));
    return 0;
}

/* Python slice semantics on n items: fills idx[0..*count). */
static int slice_indices(rs *st, jv *parts, size_t n, size_t **idx, size_t *count, int line) {
    int64_t v[3];
    int has[3];
    for (int k = 0; k < 3; k++) {
        has[k] = parts[k].t != V_NONE && parts[k].t != V_UNDEF;
        if (has[k] && parts[k].t != V_INT && parts[k].t != V_BOOL)
            return rfail(st, line, CLLM_ERR_FORMAT, "slice indices must be integers or None, not %s", type_name(parts[k]));
        v[k] = has[k] ? parts[k].u.i : 0;
    }
    int64_t step = has[2] ? v[2] : 1, len = (int64_t)n;
    if (step == 0) return rfail(st, line, CLLM_ERR_FORMAT, "slice step cannot be zero");
    int64_t lo, hi;
    if (step > 0) {
        lo = has[0] ? (v[0] < 0 ? (v[0] + len < 0 ? 0 : v[0] + len) : (v[0] > len ? len : v[0])) : 0;
        hi = has[1] ? (v[1] < 0 ? (v[1] + len < 0 ? 0 : v[1] + len) : (v[1] > len ? len : v[1])) : len;
    } else {
        lo = has[0] ? (v[0] < 0 ? (v[0] + len < 0 ? -1 : v[0] + len) : (v[0] >= len ? len - 1 : v[0])) : len - 1;
        hi = has[1] ? (v[1] < 0 ? (v[1] + len < 0 ? -1 : v[1] + len) : (v[1] >= len ? len - 1 : v[1])) : -1;
    }
    *idx = ralloc(st, (n + 1) * sizeof **idx, line);
    if (!*idx) return -1;
    *count = 0;
    for (int64_t i = lo; step > 0 ? i < hi : i > hi; i += step) (*idx)[(*count)++] = (size_t)i;
    return 0;
}

/* ------------------------------------------------------- arithmetic */

static int arith(rs *st, int op, jv a, jv b, jv *out, int line) {
    if (a.t == V_UNDEF) return undef_fail(st, line, a);
    if (b.t == V_UNDEF) return undef_fail(st, line, b);
    static const char *const sym[] = {"+", "-", "*", "/", "//", "%", "**"};
    if (is_num(a) && is_num(b)) {
        if (a.t != V_FLOAT && b.t != V_FLOAT && op != JOP_DIV) {
            int64_t x = a.u.i, y = b.u.i, r;
            int ovf = 0;
            switch (op) {
            case JOP_ADD: ovf = __builtin_add_overflow(x, y, &r); break;
            case JOP_SUB: ovf = __builtin_sub_overflow(x, y, &r); break;
            case JOP_MUL: ovf = __builtin_mul_overflow(x, y, &r); break;
            case JOP_FLOORDIV:
            case JOP_MOD:
                if (!y) return rfail(st, line, CLLM_ERR_FORMAT, "integer division or modulo by zero");
                if (x == INT64_MIN && y == -1) {
                    ovf = op == JOP_FLOORDIV;
                    r = 0;
                    break;
                }
                r = op == JOP_FLOORDIV ? x / y - ((x % y != 0) && ((x < 0) != (y < 0))) : x % y;
                if (op == JOP_MOD && r != 0 && ((r < 0) != (y < 0))) r += y;
                break;
            default: /* POW */
                if (y < 0) {
                    *out = mk_float(pow((double)x, (double)y));
                    return 0;
                }
                r = 1;
                for (int64_t k = 0; k < y && !ovf; k++) {
                    ovf = __builtin_mul_overflow(r, x, &r);
                    if (r == 0 || r == 1 || (r == -1 && x == -1)) {
                        if (x == -1) r = (y % 2) ? -1 : 1;
                        break;
                    }
                }
            }
            if (ovf) return rfail(st, line, CLLM_ERR_FORMAT, "integer overflow in '%s' (cllm's integers are 64-bit)", sym[op]);
            *out = mk_int(r);
            return 0;
        }
        double x = num_f(a), y = num_f(b), r;
        switch (op) {
        case JOP_ADD: r = x + y; break;
        case JOP_SUB: r = x - y; break;
        case JOP_MUL: r = x * y; break;
        case JOP_DIV:
            if (y == 0) return rfail(st, line, CLLM_ERR_FORMAT, "division by zero");
            r = x / y;
            break;
        case JOP_FLOORDIV:
        case JOP_MOD:
            if (y == 0) return rfail(st, line, CLLM_ERR_FORMAT, "float division or modulo by zero");
            r = fmod(x, y);
            if (r != 0 && ((r < 0) != (y < 0))) r += y;
            if (op == JOP_FLOORDIV) r = floor((x - r) / y + 0.5) == (x - r) / y ? (x - r) / y : floor(x / y);
            else if (r == 0) r = copysign(0.0, y);
            break;
        default: r = pow(x, y);
        }
        *out = mk_float(r);
        return 0;
    }
    if (op == JOP_ADD && a.t == V_STR && b.t == V_STR) {
        if (a.u.s.n + b.u.s.n > CLLM_JINJA_MAX_MEMORY) return ralloc(st, CLLM_JINJA_MAX_MEMORY + 1u, line) ? 0 : -1;
        char *p = ralloc(st, a.u.s.n + b.u.s.n + 1, line);
        if (!p) return -1;
        memcpy(p, a.u.s.p, a.u.s.n);
        memcpy(p + a.u.s.n, b.u.s.p, b.u.s.n);
        *out = mk_str(p, a.u.s.n + b.u.s.n);
        return 0;
    }
    if (op == JOP_ADD && a.t == V_LIST && b.t == V_LIST && a.tuple == b.tuple) {
        jlist *l = new_list(st, line);
        if (!l) return -1;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (list_push(st, l, a.u.l->v[i], line)) return -1;
        for (size_t i = 0; i < b.u.l->n; i++)
            if (list_push(st, l, b.u.l->v[i], line)) return -1;
        *out = list_val(l, a.tuple);
        return 0;
    }
    if (op == JOP_MUL && ((a.t == V_STR || a.t == V_LIST) && (b.t == V_INT || b.t == V_BOOL))) {
        int64_t times = b.u.i < 0 ? 0 : b.u.i;
        if (a.t == V_STR) {
            if (a.u.s.n && (uint64_t)times > CLLM_JINJA_MAX_MEMORY / a.u.s.n)
                return rfail(st, line, CLLM_ERR_LIMIT, "string repetition passes CLLM_JINJA_MAX_MEMORY");
            char *p = ralloc(st, a.u.s.n * (size_t)times + 1, line);
            if (!p) return -1;
            for (int64_t k = 0; k < times; k++) memcpy(p + (size_t)k * a.u.s.n, a.u.s.p, a.u.s.n);
            *out = mk_str(p, a.u.s.n * (size_t)times);
            return 0;
        }
        if (a.u.l->n && (uint64_t)times > CLLM_JINJA_MAX_MEMORY / (a.u.l->n * sizeof(jv)))
            return rfail(st, line, CLLM_ERR_LIMIT, "list repetition passes CLLM_JINJA_MAX_MEMORY");
        jlist *l = new_list(st, line);
        if (!l) return -1;
        for (int64_t k = 0; k < times; k++)
            for (size_t i = 0; i < a.u.l->n; i++)
                if (list_push(st, l, a.u.l->v[i], line)) return -1;
        *out = list_val(l, a.tuple);
        return 0;
    }
    if (op == JOP_MUL && (b.t == V_STR || b.t == V_LIST) && (a.t == V_INT || a.t == V_BOOL)) return arith(st, op, b, a, out, line);
    return rfail(st, line, CLLM_ERR_FORMAT, "unsupported operand type(s) for %s: '%s' and '%s'", sym[op], type_name(a),
                 type_name(b));
}

/* ------------------------------------------------------- scopes */

static jv *scope_lookup(scope *sc, const char *s, size_t n) {
    for (; sc; sc = sc->parent) {
        jv *v = dict_find_s(&sc->vars, s, n);
        if (v) return v;
    }
    return NULL;
}

static scope *new_scope(rs *st, scope *parent, int line) {
    scope *sc = ralloc(st, sizeof *sc, line);
    if (sc) sc->parent = parent;
    return sc;
}

static int scope_set(rs *st, scope *sc, const char *s, size_t n, jv v, int line) {
    return dict_set(st, &sc->vars, mk_str(s, n), v, line);
}

/* ------------------------------------------------------- evaluation */

static int eval(rs *st, const jnode *n, scope *sc, jv *out);
static int exec_body(rs *st, const jnodes *body, scope *sc, sbuf *out);

typedef struct {
    jv pos[16];
    size_t npos;
    const char *kw[16];
    size_t kwn[16];
    jv kwv[16];
    size_t nkw;
} jargs;

static int eval_args(rs *st, const jnodes *args, scope *sc, jargs *a, int line) {
    a->npos = a->nkw = 0;
    for (size_t i = 0; i < args->n; i++) {
        const jnode *x = args->v[i];
        if ((x->kind == JN_KWARG ? a->nkw : a->npos) == 16) return rfail(st, line, CLLM_ERR_LIMIT, "more than 16 arguments");
        if (x->kind == JN_KWARG) {
            a->kw[a->nkw] = x->s;
            a->kwn[a->nkw] = x->n;
            if (eval(st, x->a, sc, &a->kwv[a->nkw++])) return -1;
        } else if (eval(st, x, sc, &a->pos[a->npos++])) {
            return -1;
        }
    }
    return 0;
}

/* Argument `i` by position or by keyword `name`; *v unchanged if absent. */
static int arg(const jargs *a, size_t i, const char *name, jv *v) {
    if (i < a->npos) return *v = a->pos[i], 1;
    for (size_t k = 0; k < a->nkw; k++)
        if (strlen(name) == a->kwn[k] && !memcmp(name, a->kw[k], a->kwn[k])) return *v = a->kwv[k], 1;
    return 0;
}

static int need_str(rs *st, jv v, const char *what, int line) {
    if (v.t == V_STR) return 0;
    return rfail(st, line, CLLM_ERR_FORMAT, "%s expects a string, got %s", what, type_name(v));
}

static int apply_filter(rs *st, int f, jv v, jargs *a, const jnode *n, scope *sc, jv *out);
static int apply_test(rs *st, int t, jv v, jargs *a, int line, int *out);

/* strip/lstrip/rstrip with optional chars (Python semantics). */
static jv strip(jv s, const jv *chars, int left, int right) {
    const char *p = s.u.s.p;
    size_t b = 0, e = s.u.s.n, w;
    if (chars && chars->t == V_STR) {
        const char *c = chars->u.s.p;
        size_t cn = chars->u.s.n;
        while (left && b < e) {
            size_t k = utf8_len(p, e, b);
            if (!memmem(c, cn, p + b, k)) break;
            b += k;
        }
        while (right && e > b) {
            size_t k = 1;
            while (k < 4 && e - k > b && ((unsigned char)p[e - k] & 0xc0) == 0x80) k++;
            if (!memmem(c, cn, p + e - k, k)) break;
            e -= k;
        }
    } else {
        while (left && b < e && (w = jinja_space_at(p + b, e - b))) b += w;
        while (right && e > b && (w = jinja_space_before(p + b, e - b))) e -= w;
    }
    return mk_str(p + b, e - b);
}

static int str_replace(rs *st, jv s, jv old, jv new, int64_t count, jv *out, int line) {
    if (charge(st, s.u.s.n, line)) return -1;
    sbuf b = {.limit = CLLM_JINJA_MAX_MEMORY};
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, i = 0;
    int64_t done = 0;
    if (old.u.s.n == 0) { /* Python inserts `new` around every character */
        while (1) {
            if ((count < 0 || done < count) && sb_put(st, &b, new.u.s.p, new.u.s.n, line)) return free(b.p), -1;
            done++;
            if (i >= n) break;
            size_t k = utf8_len(p, n, i);
            if (sb_put(st, &b, p + i, k, line)) return free(b.p), -1;
            i += k;
        }
        return sb_to_str(st, &b, out, line);
    }
    while (i < n) {
        const char *hit = (count < 0 || done < count) ? memmem(p + i, n - i, old.u.s.p, old.u.s.n) : NULL;
        if (!hit) break;
        if (sb_put(st, &b, p + i, (size_t)(hit - p) - i, line) || sb_put(st, &b, new.u.s.p, new.u.s.n, line))
            return free(b.p), -1;
        i = (size_t)(hit - p) + old.u.s.n;
        done++;
    }
    if (sb_put(st, &b, p + i, n - i, line)) return free(b.p), -1;
    return sb_to_str(st, &b, out, line);
}

/* upper/lower/title/capitalize on ASCII letters. */
static int str_case(rs *st, jv s, int mode, jv *out, int line) {
    char *p = ralloc(st, s.u.s.n + 1, line);
    if (!p) return -1;
    int prev_cased = 0;
    for (size_t i = 0; i < s.u.s.n; i++) {
        char c = s.u.s.p[i];
        int up = c >= 'A' && c <= 'Z', low = c >= 'a' && c <= 'z';
        int want_up = mode == 0 ? 1 : mode == 1 ? 0 : mode == 2 ? !prev_cased : i == 0;
        if (want_up && low) c = (char)(c - 32);
        else if (!want_up && up) c = (char)(c + 32);
        p[i] = c;
        prev_cased = up || low || ((unsigned char)c >= 0x80 && mode == 2 && prev_cased);
    }
    *out = mk_str(p, s.u.s.n);
    return 0;
}

static int call_method(rs *st, jv obj, const char *m, size_t mn, jargs *a, int line, jv *out) {
#define IS(name) (mn == strlen(name) && !memcmp(m, name, mn))
    jv x = V_OF(V_NONE), y = V_OF(V_NONE);
    if (obj.t == V_STR) {
        if (IS("strip") || IS("lstrip") || IS("rstrip")) {
            int has = arg(a, 0, "chars", &x) && x.t != V_NONE;
            if (has && need_str(st, x, "strip", line)) return -1;
            *out = strip(obj, has ? &x : NULL, m[0] != 'r', m[0] != 'l');
            return 0;
        }
        if (IS("upper") || IS("lower") || IS("title") || IS("capitalize"))
            return str_case(st, obj, m[0] == 'u' ? 0 : m[0] == 'l' ? 1 : m[0] == 't' ? 2 : 3, out, line);
        if (IS("startswith") || IS("endswith")) {
            if (!arg(a, 0, "prefix", &x)) return rfail(st, line, CLLM_ERR_FORMAT, "%.*s() takes one argument", (int)mn, m);
            jlist one = {1, 1, &x};
            const jlist *cands = x.t == V_LIST && x.tuple ? x.u.l : &one;
            int hit = 0;
            for (size_t i = 0; i < cands->n; i++) {
                jv c = cands->v[i];
                if (need_str(st, c, "startswith/endswith", line)) return -1;
                if (c.u.s.n <= obj.u.s.n &&
                    !memcmp(m[0] == 's' ? obj.u.s.p : obj.u.s.p + obj.u.s.n - c.u.s.n, c.u.s.p, c.u.s.n))
                    hit = 1;
            }
            *out = mk_bool(hit);
            return 0;
        }
        if (IS("replace")) {
            jv cnt = mk_int(-1);
            if (!arg(a, 0, "old", &x) || !arg(a, 1, "new", &y) || need_str(st, x, "replace", line) ||
                need_str(st, y, "replace", line))
                return rfail(st, line, CLLM_ERR_FORMAT, "replace() takes two strings");
            arg(a, 2, "count", &cnt);
            return str_replace(st, obj, x, y, cnt.t == V_INT ? cnt.u.i : -1, out, line);
        }
        if (IS("find") || IS("count")) {
            if (!arg(a, 0, "sub", &x) || need_str(st, x, "find", line)) return -1;
            const char *p = obj.u.s.p;
            size_t n = obj.u.s.n;
            if (m[0] == 'f') {
                const char *h = x.u.s.n ? memmem(p, n, x.u.s.p, x.u.s.n) : p;
                *out = mk_int(h ? (int64_t)utf8_count(p, (size_t)(h - p)) : -1);
            } else {
                int64_t c = 0;
                if (!x.u.s.n) c = (int64_t)utf8_count(p, n) + 1;
                else
                    for (const char *h = p; (h = memmem(h, n - (size_t)(h - p), x.u.s.p, x.u.s.n)); h += x.u.s.n) c++;
                *out = mk_int(c);
            }
            return 0;
        }
        if (IS("split")) {
            int64_t maxsplit = -1;
            jv ms;
            if (arg(a, 1, "maxsplit", &ms) && ms.t == V_INT) maxsplit = ms.u.i;
            int has = arg(a, 0, "sep", &x) && x.t != V_NONE;
            if (has && need_str(st, x, "split", line)) return -1;
            if (has && !x.u.s.n) return rfail(st, line, CLLM_ERR_FORMAT, "split(): empty separator");
            jlist *l = new_list(st, line);
            if (!l) return -1;
            const char *p = obj.u.s.p;
            size_t n = obj.u.s.n, i = 0, w;
            if (has) {
                for (;;) {
                    const char *h = maxsplit != 0 ? memmem(p + i, n - i, x.u.s.p, x.u.s.n) : NULL;
                    if (!h) break;
                    if (list_push(st, l, mk_str(p + i, (size_t)(h - p) - i), line)) return -1;
                    i = (size_t)(h - p) + x.u.s.n;
                    if (maxsplit > 0) maxsplit--;
                }
                if (list_push(st, l, mk_str(p + i, n - i), line)) return -1;
            } else {
                for (;;) {
                    while (i < n && (w = jinja_space_at(p + i, n - i))) i += w;
                    if (i >= n) break;
                    if (maxsplit == 0) {
                        jv rest = strip(mk_str(p + i, n - i), NULL, 0, 1);
                        if (list_push(st, l, rest, line)) return -1;
                        break;
                    }
                    size_t b = i;
                    while (i < n && !jinja_space_at(p + i, n - i)) i += utf8_len(p, n, i);
                    if (list_push(st, l, mk_str(p + b, i - b), line)) return -1;
                    if (maxsplit > 0) maxsplit--;
                }
            }
            *out = list_val(l, 0);
            return 0;
        }
        if (IS("join")) {
            jlist *items;
            if (!arg(a, 0, "iterable", &x) || iterate(st, x, &items, line)) return -1;
            sbuf b = {.limit = CLLM_JINJA_MAX_MEMORY};
            for (size_t i = 0; i < items->n; i++) {
                if (need_str(st, items->v[i], "str.join", line) || (i && sb_put(st, &b, obj.u.s.p, obj.u.s.n, line)) ||
                    sb_put(st, &b, items->v[i].u.s.p, items->v[i].u.s.n, line))
                    return free(b.p), -1;
            }
            return sb_to_str(st, &b, out, line);
        }
    } else if (obj.t == V_DICT) {
        if (IS("items") || IS("keys") || IS("values")) {
            jlist *l = new_list(st, line);
            if (!l) return -1;
            for (size_t i = 0; i < obj.u.d->n; i++) {
                jv item = m[0] == 'k' ? obj.u.d->k[i] : obj.u.d->v[i];
                if (m[0] == 'i') {
                    jlist *pair = new_list(st, line);
                    if (!pair || list_push(st, pair, obj.u.d->k[i], line) || list_push(st, pair, obj.u.d->v[i], line)) return -1;
                    item = list_val(pair, 1);
                }
                if (list_push(st, l, item, line)) return -1;
            }
            *out = list_val(l, 0);
            return 0;
        }
        if (IS("get")) {
            if (!arg(a, 0, "key", &x)) return rfail(st, line, CLLM_ERR_FORMAT, "get() takes a key");
            arg(a, 1, "default", &y);
            jv *v = dict_find(obj.u.d, x);
            *out = v ? *v : y;
            return 0;
        }
    } else if (obj.t == V_LOOP && IS("cycle")) {
        if (!a->npos) return rfail(st, line, CLLM_ERR_FORMAT, "no items for cycling given");
        *out = a->pos[obj.u.loop->i % a->npos];
        return 0;
    } else if (obj.t == V_UNDEF) {
        return undef_fail(st, line, obj);
    }
#undef IS
    return rfail(st, line, CLLM_ERR_FORMAT, "'%s' object has no method '%.*s' (not in cllm's Jinja subset)", type_name(obj),
                 (int)(mn > 60 ? 60 : mn), m);
}

static int call_macro(rs *st, const jnode *m, jargs *a, int line, jv *out) {
    if (st->depth >= CLLM_JINJA_MAX_DEPTH)
        return rfail(st, line, CLLM_ERR_LIMIT, "macro calls nested deeper than %d (CLLM_JINJA_MAX_DEPTH)", CLLM_JINJA_MAX_DEPTH);
    if (a->npos > m->args.n)
        return rfail(st, line, CLLM_ERR_FORMAT, "macro '%.*s' takes %zu arguments, got %zu", (int)m->n, m->s, m->args.n, a->npos);
    scope *sc = new_scope(st, st->root, line);
    if (!sc) return -1;
    for (size_t i = 0; i < a->nkw; i++) {
        size_t k = 0;
        while (k < m->args.n && !(m->args.v[k]->n == a->kwn[i] && !memcmp(m->args.v[k]->s, a->kw[i], a->kwn[i]))) k++;
        if (k == m->args.n)
            return rfail(st, line, CLLM_ERR_FORMAT, "macro '%.*s' has no parameter '%.*s'", (int)m->n, m->s, (int)a->kwn[i], a->kw[i]);
    }
    st->depth++;
    for (size_t k = 0; k < m->args.n; k++) {
        const jnode *p = m->args.v[k];
        jv v = mk_undef(NULL);
        if (!arg(a, k, "", &v)) {
            int found = 0;
            for (size_t i = 0; i < a->nkw; i++)
                if (p->n == a->kwn[i] && !memcmp(p->s, a->kw[i], p->n)) v = a->kwv[i], found = 1;
            if (!found && p->a && eval(st, p->a, sc, &v)) return -1;
            if (!found && !p->a) v = mk_undef(fmt_undef(st, "'%.*s' is undefined", p->s, p->n));
        }
        if (scope_set(st, sc, p->s, p->n, v, line)) return -1;
    }
    sbuf b = {.limit = CLLM_JINJA_MAX_OUTPUT};
    int rc = exec_body(st, &m->body, sc, &b);
    st->depth--;
    if (rc) return free(b.p), -1;
    return sb_to_str(st, &b, out, line);
}

static int call_builtin(rs *st, int fn, jargs *a, int line, jv *out) {
    jv x = V_OF(V_NONE);
    switch (fn) {
    case FN_RANGE: {
        int64_t v[3] = {0, 0, 1};
        if (a->npos < 1 || a->npos > 3) return rfail(st, line, CLLM_ERR_FORMAT, "range() takes 1 to 3 integers");
        for (size_t i = 0; i < a->npos; i++) {
            if (a->pos[i].t != V_INT && a->pos[i].t != V_BOOL) return rfail(st, line, CLLM_ERR_FORMAT, "range() takes integers");
            v[a->npos == 1 ? 1 : i] = a->pos[i].u.i;
        }
        if (!v[2]) return rfail(st, line, CLLM_ERR_FORMAT, "range() arg 3 must not be zero");
        double count = ceil(((double)v[1] - (double)v[0]) / (double)v[2]);
        if (count > (double)CLLM_JINJA_MAX_ITERATIONS)
            return rfail(st, line, CLLM_ERR_LIMIT, "range() of %.0f items passes CLLM_JINJA_MAX_ITERATIONS (%ld)", count,
                         CLLM_JINJA_MAX_ITERATIONS);
        jlist *l = new_list(st, line);
        if (!l) return -1;
        for (int64_t i = v[0]; v[2] > 0 ? i < v[1] : i > v[1]; i += v[2])
            if (list_push(st, l, mk_int(i), line)) return -1;
        *out = list_val(l, 0);
        return 0;
    }
    case FN_NAMESPACE:
    case FN_DICT: {
        jdict *d = ralloc(st, sizeof *d, line);
        if (!d) return -1;
        if (a->npos && a->pos[0].t == V_DICT)
            for (size_t i = 0; i < a->pos[0].u.d->n; i++)
                if (dict_set(st, d, a->pos[0].u.d->k[i], a->pos[0].u.d->v[i], line)) return -1;
        for (size_t i = 0; i < a->nkw; i++)
            if (dict_set(st, d, mk_str(a->kw[i], a->kwn[i]), a->kwv[i], line)) return -1;
        *out = V_OF(fn == FN_NAMESPACE ? V_NS : V_DICT);
        out->u.d = d;
        return 0;
    }
    case FN_RAISE: {
        jv msg;
        if (!arg(a, 0, "message", &x) || to_str(st, x, &msg, line)) return -1;
        return rfail(st, line, CLLM_ERR_FORMAT, "%.*s", (int)(msg.u.s.n > 800 ? 800 : msg.u.s.n), msg.u.s.p);
    }
    default: { /* strftime_now */
        if (!arg(a, 0, "format", &x) || need_str(st, x, "strftime_now", line)) return -1;
        char fmtz[256], buf[512];
        snprintf(fmtz, sizeof fmtz, "%.*s", (int)(x.u.s.n > 255 ? 255 : x.u.s.n), x.u.s.p);
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        size_t n = strftime(buf, sizeof buf, fmtz, &tm);
        char *p = ralloc(st, n + 1, line);
        if (!p) return -1;
        memcpy(p, buf, n);
        *out = mk_str(p, n);
        return 0;
    }
    }
}

static int eval_call(rs *st, const jnode *n, scope *sc, jv *out) {
    jargs a;
    const jnode *callee = n->a;
    if (callee->kind == JN_ATTR) {
        jv obj;
        if (eval(st, callee->a, sc, &obj)) return -1;
        if (obj.t == V_DICT || obj.t == V_NS) {
            jv *v = dict_find_s(obj.u.d, callee->s, callee->n);
            if (v && v->t == V_MACRO) return eval_args(st, &n->args, sc, &a, n->line) ? -1 : call_macro(st, v->u.m, &a, n->line, out);
        }
        if (eval_args(st, &n->args, sc, &a, n->line)) return -1;
        return call_method(st, obj, callee->s, callee->n, &a, n->line, out);
    }
    jv f;
    if (eval(st, callee, sc, &f) || eval_args(st, &n->args, sc, &a, n->line)) return -1;
    if (f.t == V_MACRO) return call_macro(st, f.u.m, &a, n->line, out);
    if (f.t == V_FUNC) return call_builtin(st, (int)f.u.i, &a, n->line, out);
    if (f.t == V_UNDEF) return undef_fail(st, n->line, f);
    return rfail(st, n->line, CLLM_ERR_FORMAT, "'%s' object is not callable", type_name(f));
}

static int eval_slice(rs *st, const jnode *n, scope *sc, jv *out) {
    jv obj, parts[3];
    if (eval(st, n->a, sc, &obj)) return -1;
    for (int k = 0; k < 3; k++) {
        parts[k] = V_OF(V_NONE);
        if (n->args.v[k] && eval(st, n->args.v[k], sc, &parts[k])) return -1;
    }
    if (obj.t == V_UNDEF) return undef_fail(st, n->line, obj);
    if (obj.t != V_LIST && obj.t != V_STR)
        return rfail(st, n->line, CLLM_ERR_FORMAT, "'%s' object is not subscriptable with a slice", type_name(obj));
    jlist *items;
    size_t *idx = NULL, count = 0;
    if (iterate(st, obj, &items, n->line) || slice_indices(st, parts, items->n, &idx, &count, n->line)) return -1;
    if (obj.t == V_LIST) {
        jlist *l = new_list(st, n->line);
        if (!l) return -1;
        for (size_t i = 0; i < count; i++)
            if (list_push(st, l, items->v[idx[i]], n->line)) return -1;
        *out = list_val(l, obj.tuple);
        return 0;
    }
    char *p = ralloc(st, obj.u.s.n + 1, n->line);
    if (!p) return -1;
    size_t len = 0;
    for (size_t i = 0; i < count; i++) {
        memcpy(p + len, items->v[idx[i]].u.s.p, items->v[idx[i]].u.s.n);
        len += items->v[idx[i]].u.s.n;
    }
    *out = mk_str(p, len);
    return 0;
}

static int charge(rs *st, size_t bytes, int line) {
    st->steps += 1 + (int64_t)(bytes >> 4);
    if (st->steps <= CLLM_JINJA_MAX_STEPS) return 0;
    return rfail(st, line, CLLM_ERR_LIMIT, "template did more than %lld steps of work (CLLM_JINJA_MAX_STEPS)",
                 (long long)CLLM_JINJA_MAX_STEPS);
}

static int eval(rs *st, const jnode *n, scope *sc, jv *out) {
    jv a, b;
    if (charge(st, 0, n->line)) return -1;
    switch (n->kind) {
    case JN_STR: *out = mk_str(n->s, n->n); return 0;
    case JN_INT: *out = mk_int(n->i); return 0;
    case JN_FLOAT: *out = mk_float(n->f); return 0;
    case JN_BOOL: *out = mk_bool((int)n->i); return 0;
    case JN_NONE: *out = V_OF(V_NONE); return 0;
    case JN_NAME: {
        jv *v = scope_lookup(sc, n->s, n->n);
        if (v) return *out = *v, 0;
        for (int k = 0; k < FN_COUNT; k++)
            if (strlen(fn_names[k]) == n->n && !memcmp(fn_names[k], n->s, n->n)) {
                *out = V_OF(V_FUNC);
                out->u.i = k;
                return 0;
            }
        *out = mk_undef(fmt_undef(st, "'%.*s' is undefined", n->s, n->n));
        return 0;
    }
    case JN_LIST:
    case JN_TUPLE: {
        jlist *l = new_list(st, n->line);
        if (!l) return -1;
        for (size_t i = 0; i < n->args.n; i++)
            if (eval(st, n->args.v[i], sc, &a) || list_push(st, l, a, n->line)) return -1;
        *out = list_val(l, n->kind == JN_TUPLE);
        return 0;
    }
    case JN_DICT: {
        jdict *d = ralloc(st, sizeof *d, n->line);
        if (!d) return -1;
        for (size_t i = 0; i + 1 < n->args.n; i += 2)
            if (eval(st, n->args.v[i], sc, &a) || eval(st, n->args.v[i + 1], sc, &b) || dict_set(st, d, a, b, n->line)) return -1;
        *out = V_OF(V_DICT);
        out->u.d = d;
        return 0;
    }
    case JN_ATTR:
        if (eval(st, n->a, sc, &a)) return -1;
        return get_attr(st, a, n->s, n->n, out, n->line);
    case JN_ITEM:
        if (eval(st, n->a, sc, &a) || eval(st, n->b, sc, &b)) return -1;
        if (a.t == V_LOOP && b.t == V_STR) return loop_attr(st, a.u.loop, b.u.s.p, b.u.s.n, out, n->line);
        return get_item(st, a, b, out, n->line);
    case JN_SLICE: return eval_slice(st, n, sc, out);
    case JN_CALL: return eval_call(st, n, sc, out);
    case JN_FILTER: {
        jargs args;
        if (eval(st, n->a, sc, &a) || eval_args(st, &n->args, sc, &args, n->line)) return -1;
        return apply_filter(st, n->op, a, &args, n, sc, out);
    }
    case JN_TEST: {
        jargs args;
        int r;
        if (eval(st, n->a, sc, &a) || eval_args(st, &n->args, sc, &args, n->line) || apply_test(st, n->op, a, &args, n->line, &r))
            return -1;
        *out = mk_bool(n->i ? !r : r);
        return 0;
    }
    case JN_NOT:
        if (eval(st, n->a, sc, &a)) return -1;
        *out = mk_bool(!truthy(a));
        return 0;
    case JN_NEG:
    case JN_POS:
        if (eval(st, n->a, sc, &a)) return -1;
        if (!is_num(a)) {
            if (a.t == V_UNDEF) return undef_fail(st, n->line, a);
            return rfail(st, n->line, CLLM_ERR_FORMAT, "bad operand type for unary %c: '%s'", n->kind == JN_NEG ? '-' : '+', type_name(a));
        }
        if (a.t == V_FLOAT) *out = mk_float(n->kind == JN_NEG ? -a.u.f : a.u.f);
        else if (n->kind == JN_NEG && a.u.i == INT64_MIN) return rfail(st, n->line, CLLM_ERR_FORMAT, "integer overflow in unary -");
        else *out = mk_int(n->kind == JN_NEG ? -a.u.i : a.u.i);
        return 0;
    case JN_BIN:
        if (eval(st, n->a, sc, &a) || eval(st, n->b, sc, &b)) return -1;
        return arith(st, n->op, a, b, out, n->line);
    case JN_CONCAT: {
        sbuf s = {.limit = CLLM_JINJA_MAX_MEMORY};
        for (size_t i = 0; i < n->args.n; i++)
            if (eval(st, n->args.v[i], sc, &a) || put_str(st, &s, a, n->line, 0)) return free(s.p), -1;
        return sb_to_str(st, &s, out, n->line);
    }
    case JN_AND:
    case JN_OR:
        if (eval(st, n->a, sc, &a)) return -1;
        if (n->kind == JN_AND ? !truthy(a) : truthy(a)) return *out = a, 0;
        return eval(st, n->b, sc, out);
    case JN_CMP: {
        if (eval(st, n->args.v[0], sc, &a)) return -1;
        for (size_t i = 0; i + 1 < n->args.n; i++) {
            if (eval(st, n->args.v[i + 1], sc, &b)) return -1;
            int op = n->ops[i], r = 0, c;
            switch (op) {
            case JOP_EQ: r = values_equal(a, b); break;
            case JOP_NE: r = !values_equal(a, b); break;
            case JOP_IN:
            case JOP_NOTIN:
                if (contains(st, b, a, n->line, &r)) return -1;
                if (op == JOP_NOTIN) r = !r;
                break;
            default:
                if (cmp_values(st, a, b, n->line, &c)) return -1;
                r = op == JOP_LT ? c < 0 : op == JOP_LE ? c <= 0 : op == JOP_GT ? c > 0 : c >= 0;
            }
            if (!r) return *out = mk_bool(0), 0;
            a = b;
        }
        *out = mk_bool(1);
        return 0;
    }
    case JN_COND:
        if (eval(st, n->b, sc, &a)) return -1;
        if (truthy(a)) return eval(st, n->a, sc, out);
        if (n->c) return eval(st, n->c, sc, out);
        *out = mk_undef("the inline if-expression had no else and its condition was false");
        return 0;
    default: return rfail(st, n->line, CLLM_ERR_INTERNAL, "node kind %d is not an expression", (int)n->kind);
    }
}

/* ------------------------------------------------------- filters, tests */

static int apply_test(rs *st, int t, jv v, jargs *a, int line, int *out) {
    jv x = V_OF(V_UNDEF);
    int have = arg(a, 0, "value", &x);
    int c;
    switch (t) {
    case JT_DEFINED: *out = v.t != V_UNDEF; return 0;
    case JT_UNDEFINED: *out = v.t == V_UNDEF; return 0;
    case JT_NONE: *out = v.t == V_NONE; return 0;
    case JT_BOOLEAN: *out = v.t == V_BOOL; return 0;
    case JT_TRUE: *out = v.t == V_BOOL && v.u.i; return 0;
    case JT_FALSE: *out = v.t == V_BOOL && !v.u.i; return 0;
    case JT_STRING: *out = v.t == V_STR; return 0;
    case JT_MAPPING: *out = v.t == V_DICT; return 0;
    case JT_NUMBER: *out = is_num(v); return 0;
    case JT_INTEGER: *out = v.t == V_INT; return 0;
    case JT_FLOAT: *out = v.t == V_FLOAT; return 0;
    case JT_SEQUENCE: *out = v.t == V_STR || v.t == V_LIST || v.t == V_DICT; return 0;
    case JT_ITERABLE: *out = v.t == V_STR || v.t == V_LIST || v.t == V_DICT || v.t == V_UNDEF || v.t == V_NS; return 0;
    case JT_CALLABLE: *out = v.t == V_MACRO || v.t == V_FUNC; return 0;
    case JT_LOWER:
    case JT_UPPER: {
        if (v.t != V_STR) return need_str(st, v, t == JT_LOWER ? "lower" : "upper", line);
        jv conv;
        if (str_case(st, v, t == JT_LOWER ? 1 : 0, &conv, line)) return -1;
        *out = values_equal(v, conv);
        return 0;
    }
    case JT_EVEN:
    case JT_ODD:
    case JT_DIVISIBLEBY: {
        if (v.t != V_INT && v.t != V_BOOL) return rfail(st, line, CLLM_ERR_FORMAT, "test expects an integer, got %s", type_name(v));
        int64_t d = 2;
        if (t == JT_DIVISIBLEBY) {
            if (!have || (x.t != V_INT && x.t != V_BOOL) || !x.u.i) return rfail(st, line, CLLM_ERR_FORMAT, "divisibleby expects a non-zero integer");
            d = x.u.i;
        }
        int64_t r = d == -1 ? 0 : v.u.i % d;
        *out = t == JT_ODD ? r != 0 : r == 0;
        return 0;
    }
    default: break;
    }
    if (!have) return rfail(st, line, CLLM_ERR_FORMAT, "test needs an argument");
    switch (t) {
    case JT_EQ: *out = values_equal(v, x); return 0;
    case JT_NE: *out = !values_equal(v, x); return 0;
    case JT_SAMEAS:
        *out = (v.t == x.t && (v.t == V_NONE || v.t == V_UNDEF || ((v.t == V_BOOL || v.t == V_INT) && v.u.i == x.u.i) ||
                               (v.t == V_LIST && v.u.l == x.u.l) || ((v.t == V_DICT || v.t == V_NS) && v.u.d == x.u.d)));
        return 0;
    case JT_IN: return contains(st, x, v, line, out);
    default:
        if (cmp_values(st, v, x, line, &c)) return -1;
        *out = t == JT_LT ? c < 0 : t == JT_LE ? c <= 0 : t == JT_GT ? c > 0 : c >= 0;
        return 0;
    }
}

/* select/reject/selectattr/rejectattr/map over an iterable. */
static int filter_seq(rs *st, int f, jv v, jargs *a, const jnode *n, scope *sc, jv *out) {
    int line = n->line;
    jlist *items, *res = new_list(st, line);
    if (!res || iterate(st, v, &items, line)) return -1;
    int attr = f == JF_SELECTATTR || f == JF_REJECTATTR;
    size_t first_test_arg = attr ? 1 : 0;
    jv name = V_OF(V_UNDEF), tname = V_OF(V_UNDEF), mattr = V_OF(V_UNDEF), mdefault = V_OF(V_UNDEF);
    int test = -1, filt = -1;
    if (f == JF_MAP) {
        if (arg(a, 99, "attribute", &mattr)) {
            if (mattr.t != V_STR) return need_str(st, mattr, "map(attribute=)", line);
            arg(a, 99, "default", &mdefault);
        } else {
            if (!a->npos || need_str(st, a->pos[0], "map", line)) return -1;
            filt = jinja_filter_lookup(a->pos[0].u.s.p, a->pos[0].u.s.n);
            if (filt < 0 || filt == JF_MAP)
                return rfail(st, line, CLLM_ERR_FORMAT, "map: filter '%.*s' is not supported", (int)a->pos[0].u.s.n, a->pos[0].u.s.p);
        }
    } else {
        if (attr && (!a->npos || need_str(st, a->pos[0], "selectattr", line))) return -1;
        if (attr) name = a->pos[0];
        if (a->npos > first_test_arg) {
            tname = a->pos[first_test_arg];
            if (need_str(st, tname, "select test name", line)) return -1;
            test = jinja_test_lookup(tname.u.s.p, tname.u.s.n);
            if (test < 0) return rfail(st, line, CLLM_ERR_FORMAT, "test '%.*s' is not supported", (int)tname.u.s.n, tname.u.s.p);
        }
    }
    jargs sub = {0};
    if (test >= 0)
        for (size_t i = first_test_arg + 1; i < a->npos; i++) sub.pos[sub.npos++] = a->pos[i];
    if (filt >= 0)
        for (size_t i = 1; i < a->npos; i++) sub.pos[sub.npos++] = a->pos[i];
    if (filt >= 0)
        for (size_t i = 0; i < a->nkw; i++)
            sub.kw[sub.nkw] = a->kw[i], sub.kwn[sub.nkw] = a->kwn[i], sub.kwv[sub.nkw++] = a->kwv[i];
    for (size_t i = 0; i < items->n; i++) {
        jv item = items->v[i], subject = item, r;
        if (attr || f == JF_MAP) {
            jv key = attr ? name : mattr;
            if (f != JF_MAP || mattr.t == V_STR) {
                if (item.t == V_DICT || item.t == V_NS) {
                    jv *hit = dict_find_s(item.u.d, key.u.s.p, key.u.s.n);
                    subject = hit ? *hit : mk_undef(fmt_undef(st, "'dict object' has no attribute '%.*s'", key.u.s.p, key.u.s.n));
                } else if (get_attr(st, item, key.u.s.p, key.u.s.n, &subject, line)) {
                    return -1;
                }
                if (f == JF_MAP && subject.t == V_UNDEF && mdefault.t != V_UNDEF) subject = mdefault;
            }
        }
        if (f == JF_MAP) {
            if (filt >= 0 && apply_filter(st, filt, item, &sub, n, sc, &r)) return -1;
            if (list_push(st, res, filt >= 0 ? r : subject, line)) return -1;
            continue;
        }
        int ok;
        if (test >= 0) {
            if (apply_test(st, test, subject, &sub, line, &ok)) return -1;
        } else {
            ok = truthy(subject);
        }
        if ((f == JF_SELECT || f == JF_SELECTATTR) ? ok : !ok)
            if (list_push(st, res, item, line)) return -1;
    }
    *out = list_val(res, 0);
    return 0;
}

static int apply_filter(rs *st, int f, jv v, jargs *a, const jnode *n, scope *sc, jv *out) {
    int line = n->line;
    jv x = V_OF(V_UNDEF), y = V_OF(V_UNDEF), s;
    jlist *items;
    switch (f) {
    case JF_SAFE: *out = v; return 0;
    case JF_DEFAULT: {
        jv def = mk_str("", 0), boolean = mk_bool(0);
        arg(a, 0, "default_value", &def);
        arg(a, 1, "boolean", &boolean);
        *out = (v.t == V_UNDEF || (truthy(boolean) && !truthy(v))) ? def : v;
        return 0;
    }
    case JF_STRING: return to_str(st, v, out, line);
    case JF_TRIM:
        if (to_str(st, v, &s, line)) return -1;
        if (arg(a, 0, "chars", &x) && x.t != V_NONE && x.t != V_UNDEF) {
            if (need_str(st, x, "trim", line)) return -1;
            *out = strip(s, &x, 1, 1);
        } else {
            *out = strip(s, NULL, 1, 1);
        }
        return 0;
    case JF_UPPER:
    case JF_LOWER:
    case JF_TITLE:
    case JF_CAPITALIZE:
        if (to_str(st, v, &s, line)) return -1;
        return str_case(st, s, f == JF_UPPER ? 0 : f == JF_LOWER ? 1 : f == JF_TITLE ? 2 : 3, out, line);
    case JF_LENGTH:
        switch (v.t) {
        case V_STR: *out = mk_int((int64_t)utf8_count(v.u.s.p, v.u.s.n)); return 0;
        case V_LIST: *out = mk_int((int64_t)v.u.l->n); return 0;
        case V_DICT:
        case V_NS: *out = mk_int((int64_t)v.u.d->n); return 0;
        case V_UNDEF: *out = mk_int(0); return 0;
        default: return rfail(st, line, CLLM_ERR_FORMAT, "object of type '%s' has no len()", type_name(v));
        }
    case JF_FIRST:
    case JF_LAST:
        if (v.t == V_UNDEF) return undef_fail(st, line, v);
        if (iterate(st, v, &items, line)) return -1;
        *out = items->n ? items->v[f == JF_FIRST ? 0 : items->n - 1] : mk_undef("No first item, sequence was empty.");
        return 0;
    case JF_SORT: { /* Jinja's sort(reverse=false, case_sensitive=false, attribute=none): stable */
        jv rev = mk_bool(0), cs = mk_bool(0), attr = V_OF(V_UNDEF);
        arg(a, 0, "reverse", &rev);
        arg(a, 1, "case_sensitive", &cs);
        arg(a, 2, "attribute", &attr);
        if (attr.t != V_UNDEF && attr.t != V_STR) return need_str(st, attr, "sort(attribute=)", line);
        if (iterate(st, v, &items, line)) return -1;
        const size_t cnt = items->n;
        jv *key = ralloc(st, (cnt ? cnt : 1) * sizeof *key, line);
        size_t *ix = ralloc(st, (cnt ? cnt : 1) * sizeof *ix, line);
        if (!key || !ix) return -1;
        for (size_t i = 0; i < cnt; i++) {
            jv k = items->v[i];
            if (attr.t == V_STR) {
                if (k.t == V_DICT || k.t == V_NS) {
                    jv *hit = dict_find_s(k.u.d, attr.u.s.p, attr.u.s.n);
                    k = hit ? *hit : mk_undef(fmt_undef(st, "'dict object' has no attribute '%.*s'", attr.u.s.p, attr.u.s.n));
                } else if (get_attr(st, k, attr.u.s.p, attr.u.s.n, &k, line)) {
                    return -1;
                }
            }
            if (k.t == V_STR && !truthy(cs) && str_case(st, k, 1, &k, line)) return -1;
            key[i] = k;
            ix[i] = i;
        }
        /* bottom-up merge sort of the indices: stable like Python's sorted, O(n log n) */
        const int descending = truthy(rev);
        size_t *tmp = ralloc(st, (cnt ? cnt : 1) * sizeof *tmp, line);
        if (!tmp) return -1;
        for (size_t w = 1; w < cnt; w *= 2) {
            for (size_t lo = 0; lo < cnt; lo += 2 * w) {
                size_t mid = lo + w < cnt ? lo + w : cnt, hi = lo + 2 * w < cnt ? lo + 2 * w : cnt;
                size_t i = lo, j = mid, k = lo;
                while (i < mid && j < hi) {
                    int c;
                    if (cmp_values(st, key[ix[j]], key[ix[i]], line, &c)) return -1;
                    /* take the right one only when strictly before the left one */
                    tmp[k++] = (descending ? c > 0 : c < 0) ? ix[j++] : ix[i++];
                }
                while (i < mid) tmp[k++] = ix[i++];
                while (j < hi) tmp[k++] = ix[j++];
            }
            memcpy(ix, tmp, cnt * sizeof *ix);
        }
        jlist *l = new_list(st, line);
        if (!l) return -1;
        for (size_t i = 0; i < cnt; i++)
            if (list_push(st, l, items->v[ix[i]], line)) return -1;
        *out = list_val(l, 0);
        return 0;
    }
    case JF_LIST:
    case JF_REVERSE: {
        if (f == JF_REVERSE && v.t == V_STR) {
            if (iterate(st, v, &items, line)) return -1;
            char *p = ralloc(st, v.u.s.n + 1, line);
            if (!p) return -1;
            size_t len = 0;
            for (size_t i = items->n; i-- > 0;) memcpy(p + len, items->v[i].u.s.p, items->v[i].u.s.n), len += items->v[i].u.s.n;
            *out = mk_str(p, len);
            return 0;
        }
        if (iterate(st, v, &items, line)) return -1;
        jlist *l = new_list(st, line);
        if (!l) return -1;
        for (size_t i = 0; i < items->n; i++)
            if (list_push(st, l, items->v[f == JF_LIST ? i : items->n - 1 - i], line)) return -1;
        *out = list_val(l, 0);
        return 0;
    }
    case JF_ITEMS:
        if (v.t == V_UNDEF) {
            jlist *l = new_list(st, line);
            if (!l) return -1;
            *out = list_val(l, 0);
            return 0;
        }
        if (v.t != V_DICT) return rfail(st, line, CLLM_ERR_FORMAT, "Can only get item pairs from a mapping.");
        {
            jargs none = {0};
            return call_method(st, v, "items", 5, &none, line, out);
        }
    case JF_JOIN: {
        jv sep = mk_str("", 0), attr = V_OF(V_UNDEF);
        arg(a, 0, "d", &sep);
        arg(a, 1, "attribute", &attr);
        if (iterate(st, v, &items, line)) return -1;
        sbuf b = {.limit = CLLM_JINJA_MAX_MEMORY};
        for (size_t i = 0; i < items->n; i++) {
            jv item = items->v[i];
            if (attr.t == V_STR && get_attr(st, item, attr.u.s.p, attr.u.s.n, &item, line)) return free(b.p), -1;
            if ((i && put_str(st, &b, sep, line, 0)) || put_str(st, &b, item, line, 0)) return free(b.p), -1;
        }
        return sb_to_str(st, &b, out, line);
    }
    case JF_REPLACE: {
        jv cnt = V_OF(V_NONE);
        if (!arg(a, 0, "old", &x) || !arg(a, 1, "new", &y)) return rfail(st, line, CLLM_ERR_FORMAT, "replace needs old and new");
        arg(a, 2, "count", &cnt);
        jv xs, ys;
        if (to_str(st, v, &s, line) || to_str(st, x, &xs, line) || to_str(st, y, &ys, line)) return -1;
        return str_replace(st, s, xs, ys, cnt.t == V_INT ? cnt.u.i : -1, out, line);
    }
    case JF_INT:
    case JF_FLOAT: {
        jv def = f == JF_INT ? mk_int(0) : mk_float(0.0);
        arg(a, 0, "default", &def);
        double d;
        if (is_num(v)) d = num_f(v);
        else if (v.t == V_STR) {
            char buf[64], *end;
            snprintf(buf, sizeof buf, "%.*s", (int)(v.u.s.n > 63 ? 63 : v.u.s.n), v.u.s.p);
            d = strtod(buf, &end);
            while (*end == ' ') end++;
            if (end == buf || *end) return *out = def, 0;
        } else {
            return *out = def, 0;
        }
        if (f == JF_FLOAT) return *out = mk_float(d), 0;
        if (v.t == V_INT || v.t == V_BOOL) return *out = mk_int(v.u.i), 0;
        if (!(d > -9.2e18 && d < 9.2e18)) return *out = def, 0;
        *out = mk_int((int64_t)d);
        return 0;
    }
    case JF_ABS:
        if (v.t == V_FLOAT) *out = mk_float(fabs(v.u.f));
        else if ((v.t == V_INT || v.t == V_BOOL) && v.u.i != INT64_MIN) *out = mk_int(v.u.i < 0 ? -v.u.i : v.u.i);
        else return rfail(st, line, CLLM_ERR_FORMAT, "bad operand type for abs(): '%s'", type_name(v));
        return 0;
    case JF_INDENT: {
        jv width = mk_int(4), first = mk_bool(0), blank = mk_bool(0);
        arg(a, 0, "width", &width);
        arg(a, 1, "first", &first);
        arg(a, 2, "blank", &blank);
        jv pad;
        if (width.t == V_STR) pad = width;
        else if (width.t == V_INT && width.u.i >= 0 && width.u.i <= 1000) {
            char *p = ralloc(st, (size_t)width.u.i + 1, line);
            if (!p) return -1;
            memset(p, ' ', (size_t)width.u.i);
            pad = mk_str(p, (size_t)width.u.i);
        } else return rfail(st, line, CLLM_ERR_FORMAT, "indent width must be a string or an integer 0..1000");
        if (to_str(st, v, &s, line)) return -1;
        sbuf b = {.limit = CLLM_JINJA_MAX_MEMORY};
        size_t i = 0;
        int first_line = 1;
        while (i <= s.u.s.n) {
            const char *nl = memchr(s.u.s.p + i, '\n', s.u.s.n - i);
            size_t e = nl ? (size_t)(nl - s.u.s.p) : s.u.s.n;
            int empty = e == i;
            if (!(first_line ? !truthy(first) : (empty && !truthy(blank))))
                if (sb_put(st, &b, pad.u.s.p, pad.u.s.n, line)) return free(b.p), -1;
            if (sb_put(st, &b, s.u.s.p + i, e - i, line)) return free(b.p), -1;
            if (!nl) break;
            if (sb_put(st, &b, "\n", 1, line)) return free(b.p), -1;
            i = e + 1;
            first_line = 0;
        }
        return sb_to_str(st, &b, out, line);
    }
    case JF_TOJSON: {
        json_opts o = {.indent = -1, .item_sep = ", ", .key_sep = ": "};
        jv ind = V_OF(V_NONE), asc = mk_bool(0), seps = V_OF(V_NONE), sk = mk_bool(0);
        arg(a, 0, "ensure_ascii", &asc);
        arg(a, 1, "indent", &ind);
        arg(a, 2, "separators", &seps);
        arg(a, 3, "sort_keys", &sk);
        o.ascii = truthy(asc);
        o.sort_keys = truthy(sk);
        if (ind.t == V_INT || ind.t == V_BOOL) {
            if (ind.u.i > 64) return rfail(st, line, CLLM_ERR_LIMIT, "tojson indent over 64");
            o.indent = ind.u.i < 0 ? 0 : (int)ind.u.i;
            o.item_sep = ",";
        } else if (ind.t == V_STR) {
            char *p = ralloc(st, ind.u.s.n + 1, line);
            if (!p) return -1;
            memcpy(p, ind.u.s.p, ind.u.s.n);
            o.indent_s = p;
            o.item_sep = ",";
        } else if (ind.t != V_NONE) {
            return rfail(st, line, CLLM_ERR_FORMAT, "tojson indent must be an integer or a string");
        }
        if (seps.t == V_LIST && seps.u.l->n == 2 && seps.u.l->v[0].t == V_STR && seps.u.l->v[1].t == V_STR) {
            char *i0 = ralloc(st, seps.u.l->v[0].u.s.n + 1, line), *k0 = ralloc(st, seps.u.l->v[1].u.s.n + 1, line);
            if (!i0 || !k0) return -1;
            memcpy(i0, seps.u.l->v[0].u.s.p, seps.u.l->v[0].u.s.n);
            memcpy(k0, seps.u.l->v[1].u.s.p, seps.u.l->v[1].u.s.n);
            o.item_sep = i0;
            o.key_sep = k0;
        } else if (seps.t != V_NONE) {
            return rfail(st, line, CLLM_ERR_FORMAT, "tojson separators must be a pair of strings");
        }
        sbuf b = {.limit = CLLM_JINJA_MAX_MEMORY};
        if (put_json(st, &b, v, &o, 0, line)) return free(b.p), -1;
        return sb_to_str(st, &b, out, line);
    }
    default: return filter_seq(st, f, v, a, n, sc, out);
    }
}

/* ------------------------------------------------------- statements */

static int assign(rs *st, const jnode *target, jv v, scope *sc, int line) {
    if (target->kind == JN_NAME) return scope_set(st, sc, target->s, target->n, v, line);
    if (target->kind == JN_ATTR) {
        jv *ns = scope_lookup(sc, target->a->s, target->a->n);
        if (!ns || ns->t != V_NS)
            return rfail(st, line, CLLM_ERR_FORMAT, "cannot assign attribute on non-namespace object '%.*s'", (int)target->a->n,
                         target->a->s);
        return dict_set(st, ns->u.d, mk_str(target->s, target->n), v, line);
    }
    /* tuple of names */
    jlist *items;
    if (iterate(st, v, &items, line)) return -1;
    if (items->n != target->args.n)
        return rfail(st, line, CLLM_ERR_FORMAT, "cannot unpack %zu values into %zu names", items->n, target->args.n);
    for (size_t i = 0; i < items->n; i++)
        if (scope_set(st, sc, target->args.v[i]->s, target->args.v[i]->n, items->v[i], line)) return -1;
    return 0;
}

static int exec_for(rs *st, const jnode *n, scope *sc, sbuf *out) {
    jv it;
    jlist *items;
    if (eval(st, n->a, sc, &it) || iterate(st, it, &items, n->line)) return -1;
    jnode tuple = {.kind = JN_TUPLE, .args = n->args};
    const jnode *target = n->args.n == 1 ? n->args.v[0] : &tuple;
    if (n->b) { /* {% for x in xs if cond %}: filter first, loop.length counts what is left */
        jlist *kept = new_list(st, n->line);
        if (!kept) return -1;
        for (size_t i = 0; i < items->n; i++) {
            scope *fs = new_scope(st, sc, n->line);
            jv c;
            if (!fs || assign(st, target, items->v[i], fs, n->line) || eval(st, n->b, fs, &c)) return -1;
            if (truthy(c) && list_push(st, kept, items->v[i], n->line)) return -1;
        }
        items = kept;
    }
    if (!items->n) return exec_body(st, &n->orelse, sc, out);
    jloop *lp = ralloc(st, sizeof *lp, n->line);
    if (!lp) return -1;
    lp->items = items;
    scope *it_sc = new_scope(st, sc, n->line);
    if (!it_sc) return -1;
    for (size_t i = 0; i < items->n; i++) {
        if (++st->iterations > CLLM_JINJA_MAX_ITERATIONS)
            return rfail(st, n->line, CLLM_ERR_LIMIT, "more than %ld loop iterations (CLLM_JINJA_MAX_ITERATIONS)",
                         CLLM_JINJA_MAX_ITERATIONS);
        lp->i = i;
        it_sc->vars.n = 0; /* a fresh scope each iteration, reusing its memory */
        jv loopv = V_OF(V_LOOP);
        loopv.u.loop = lp;
        if (scope_set(st, it_sc, "loop", 4, loopv, n->line) ||
            assign(st, target, items->v[i], it_sc, n->line))
            return -1;
        if (exec_body(st, &n->body, it_sc, out)) return -1;
        if (st->ctl == 1) {
            st->ctl = 0;
            break;
        }
        st->ctl = 0;
    }
    return 0;
}

static int exec_body(rs *st, const jnodes *body, scope *sc, sbuf *out) {
    for (size_t i = 0; i < body->n && !st->ctl; i++) {
        const jnode *n = body->v[i];
        jv v;
        switch (n->kind) {
        case JN_TEXT:
            if (sb_put(st, out, n->s, n->n, n->line)) return -1;
            break;
        case JN_OUTPUT:
            if (eval(st, n->a, sc, &v) || put_str(st, out, v, n->line, 0)) return -1;
            break;
        case JN_IF:
            if (eval(st, n->a, sc, &v)) return -1;
            if (exec_body(st, truthy(v) ? &n->body : &n->orelse, sc, out)) return -1;
            break;
        case JN_FOR:
            if (exec_for(st, n, sc, out)) return -1;
            break;
        case JN_SET:
            if (n->b) {
                if (eval(st, n->b, sc, &v)) return -1;
            } else {
                sbuf b = {.limit = CLLM_JINJA_MAX_OUTPUT};
                if (exec_body(st, &n->body, sc, &b)) return free(b.p), -1;
                if (sb_to_str(st, &b, &v, n->line)) return -1;
            }
            if (assign(st, n->a, v, sc, n->line)) return -1;
            break;
        case JN_MACRO:
            v = V_OF(V_MACRO);
            v.u.m = n;
            if (scope_set(st, sc, n->s, n->n, v, n->line)) return -1;
            break;
        case JN_BREAK: st->ctl = 1; break;
        case JN_CONTINUE: st->ctl = 2; break;
        case JN_BLOCK:
            if (exec_body(st, &n->body, sc, out)) return -1;
            break;
        default: return rfail(st, n->line, CLLM_ERR_INTERNAL, "node kind %d is not a statement", (int)n->kind);
        }
    }
    return 0;
}

/* ------------------------------------------------------- JSON context */

static int from_json(rs *st, const cJSON *j, jv *out, int depth) {
    if (depth > CLLM_JINJA_MAX_NESTING) return rfail(st, 0, CLLM_ERR_LIMIT, "context JSON nested deeper than %d", CLLM_JINJA_MAX_NESTING);
    if (cJSON_IsNull(j)) *out = V_OF(V_NONE);
    else if (cJSON_IsBool(j)) *out = mk_bool(cJSON_IsTrue(j));
    else if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (d == floor(d) && d >= -9.2e18 && d <= 9.2e18) *out = mk_int((int64_t)d);
        else *out = mk_float(d);
    } else if (cJSON_IsString(j)) {
        const char *s = j->valuestring ? j->valuestring : "";
        *out = mk_str(s, strlen(s));
    } else if (cJSON_IsArray(j)) {
        jlist *l = new_list(st, 0);
        if (!l) return -1;
        for (const cJSON *c = j->child; c; c = c->next) {
            jv v;
            if (from_json(st, c, &v, depth + 1) || list_push(st, l, v, 0)) return -1;
        }
        *out = list_val(l, 0);
    } else if (cJSON_IsObject(j)) {
        jdict *d = ralloc(st, sizeof *d, 0);
        if (!d) return -1;
        for (const cJSON *c = j->child; c; c = c->next) {
            jv v;
            const char *k = c->string ? c->string : "";
            if (from_json(st, c, &v, depth + 1) || dict_set(st, d, mk_str(k, strlen(k)), v, 0)) return -1;
        }
        *out = V_OF(V_DICT);
        out->u.d = d;
    } else {
        *out = V_OF(V_NONE);
    }
    return 0;
}

/* ------------------------------------------------------- public API */

cllm_status cllm_jinja_compile(const char *src, size_t len, const char *name, cllm_jinja **out, cllm_error *err) {
    cllm_error local;
    if (!err) err = &local;
    *out = NULL;
    if (!name) name = "template";
    if (!src && len) return cllm_error_set(err, CLLM_ERR_ARG, "%s: NULL template text", name);
    if (len > CLLM_JINJA_MAX_SOURCE)
        return cllm_error_set(err, CLLM_ERR_LIMIT, "%s: template of %zu bytes is over the %u-byte limit (CLLM_JINJA_MAX_SOURCE)",
                              name, len, CLLM_JINJA_MAX_SOURCE);
    cllm_jinja *t = calloc(1, sizeof *t);
    if (!t) return cllm_error_set(err, CLLM_ERR_NOMEM, "%s: out of memory", name);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->arena.limit = 64 * (size_t)len + (1u << 20); /* nodes and tokens are a bounded multiple of the text */
    cllm_status s = jinja_parse(t, src ? src : "", len, err);
    if (s != CLLM_OK) {
        cllm_jinja_free(t);
        return s;
    }
    *out = t;
    return CLLM_OK;
}

cllm_status cllm_jinja_render(const cllm_jinja *t, const cJSON *context, char **out, size_t *out_len, cllm_error *err) {
    cllm_error local;
    if (!err) err = &local;
    *out = NULL;
    if (out_len) *out_len = 0;
    if (context && !cJSON_IsObject(context))
        return cllm_error_set(err, CLLM_ERR_ARG, "%s: the render context must be a JSON object", t->name);
    rs st = {.t = t, .err = err, .a = {.limit = CLLM_JINJA_MAX_MEMORY}};
    sbuf b = {.limit = CLLM_JINJA_MAX_OUTPUT};
    int rc = -1;
    st.root = new_scope(&st, NULL, 0);
    if (st.root) {
        rc = 0;
        for (const cJSON *c = context ? context->child : NULL; c && !rc; c = c->next) {
            jv v;
            const char *k = c->string ? c->string : "";
            rc = from_json(&st, c, &v, 0) || scope_set(&st, st.root, k, strlen(k), v, 0);
        }
        if (!rc) rc = exec_body(&st, &t->body, st.root, &b);
        if (!rc && !b.p) rc = sb_put(&st, &b, "", 0, 0);
    }
    jarena_free(&st.a);
    if (rc) {
        free(b.p);
        return err->status != CLLM_OK ? err->status : CLLM_ERR_INTERNAL;
    }
    *out = b.p;
    if (out_len) *out_len = b.n;
    return CLLM_OK;
}

void cllm_jinja_free(cllm_jinja *t) {
    if (!t) return;
    jarena_free(&t->arena);
    free(t);
}

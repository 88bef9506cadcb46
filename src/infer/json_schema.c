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
 * Not here: $ref, allOf/oneOf/not, if/then/else, numeric bounds, string
 * pattern and format (docs/GRAMMAR.md lists them).
 */
#include <cjson/cJSON.h>
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
                                          "minItems", "maxItems", "enum", "const", "anyOf", "minLength", "maxLength"};
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
            } else if (!strcmp(tn, "number") || !strcmp(tn, "integer") || !strcmp(tn, "boolean") ||
                       !strcmp(tn, "null")) {
                alts[i] = !strcmp(tn, "number") ? "number" : !strcmp(tn, "integer") ? "integer"
                          : !strcmp(tn, "boolean") ? "boolean" : "null";
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

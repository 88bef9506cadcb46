/*
 * jinja.h: a small interpreter for the Jinja subset that chat templates use.
 *
 * Model files carry their chat template as Jinja text (GGUF
 * tokenizer.chat_template, HF tokenizer_config.json). This module compiles
 * such text once and renders it with a conversation, giving the same bytes
 * as Hugging Face's apply_chat_template (Jinja2 with trim_blocks=True,
 * lstrip_blocks=True, raise_exception, tojson(ensure_ascii=False) and
 * strftime_now). tests/test_jinja.c checks that against Debian's
 * python3-jinja2 on the templates of ChatML, Qwen2/2.5 (tools), Llama 2,
 * Llama 3/3.1 (tools), Mistral, Gemma, Phi-3 and SmolLM.
 *
 * Safety, by construction: a template sees only the JSON context it is
 * given (no files, no host objects, no imports); rendering is bounded in
 * output bytes, loop iterations, working memory and macro recursion depth
 * and work (CLLM_JINJA_MAX_*), and errors name the limit. Compile errors name the
 * template line and reason ("chat_template: line 3: unknown tag 'include'").
 *
 * Supported subset:
 *   syntax   {{ }}, {% %}, {# #}, whitespace control '-' and '+',
 *            trim_blocks and lstrip_blocks on (as apply_chat_template),
 *            CRLF normalised and one trailing newline dropped (as Jinja)
 *   tags     if/elif/else, for (with `if` filter, `else`, tuple targets,
 *            loop.index/index0/revindex/revindex0/first/last/length/
 *            previtem/nextitem/cycle), break, continue, set (names, tuples,
 *            ns.attr, and {% set x %}...{% endset %}), macro (positional,
 *            keyword and default arguments), generation (HF's marker,
 *            renders its body)
 *   exprs    literals (strings with Python escapes, ints, floats, true/
 *            false/none in both cases, lists, tuples, dicts), attribute and
 *            subscript access, slices [a:b:c], calls, filters, tests,
 *            + - * / // % ** ~, comparisons (chained), in / not in,
 *            and/or/not, x if c else y
 *   filters  abs capitalize count d default first float indent int items
 *            join last length list lower map (attribute= or a filter name)
 *            reject rejectattr replace reverse safe select selectattr
 *            string title tojson(ensure_ascii, indent, separators, sort_keys) trim upper
 *   tests    boolean callable defined divisibleby eq equalto even false
 *            float ge gt in integer iterable le lower lt mapping ne none
 *            number odd sameas sequence string true undefined upper
 *   methods  str: strip lstrip rstrip split startswith endswith upper lower
 *            replace title capitalize find count join;
 *            dict: items keys values get; loop.cycle
 *   globals  range, namespace, dict, raise_exception(msg) (a render error,
 *            CLLM_ERR_FORMAT, whose message ends with msg), strftime_now
 * Values behave as in Python: str() of None is "None", of a list "['a', 1]",
 * / gives a float, % and // floor, floats print with repr's shortest digits.
 * Undefined names render as "" (Jinja's default Undefined); attribute access
 * on an undefined value is a render error, as in Jinja.
 *
 * Not supported (refused at compile time, naming the tag or filter):
 * include, import, from, extends, block, call, filter blocks, with,
 * autoescape, raw, do, and any filter or test not listed above. Integers are
 * 64-bit (overflow is a render error, not a bignum); upper/lower/title/
 * capitalize change ASCII letters only; JSON numbers in the context that
 * are integral become ints (cJSON does not keep "1.0" apart from "1").
 */
#ifndef CLLM_JINJA_H
#define CLLM_JINJA_H

#include <stddef.h>

#include "cllm/core/status.h"

struct cJSON;

/* Limits every render stays within (CLLM_ERR_LIMIT naming the limit). */
#define CLLM_JINJA_MAX_OUTPUT (4u << 20)      /* bytes of rendered text */
#define CLLM_JINJA_MAX_ITERATIONS 1000000L    /* loop iterations, all loops together */
#define CLLM_JINJA_MAX_MEMORY (64u << 20)     /* bytes of values built while rendering */
#define CLLM_JINJA_MAX_STEPS 50000000LL  /* expressions evaluated + bytes copied or scanned / 16 */
#define CLLM_JINJA_MAX_DEPTH 64               /* macro calls nested */
#define CLLM_JINJA_MAX_NESTING 200            /* blocks + expression nesting at compile time */
#define CLLM_JINJA_MAX_SOURCE (1u << 20)      /* bytes of template text */

typedef struct cllm_jinja cllm_jinja; /* a compiled template (opaque) */

/* Compiles src[len] (UTF-8 Jinja text). name labels errors (e.g.
 * "tokenizer.chat_template"; copied). On success *out is owned by the caller
 * (cllm_jinja_free). CLLM_ERR_FORMAT naming "name: line N: reason" for
 * syntax errors and unsupported features, CLLM_ERR_LIMIT for oversized or
 * too deeply nested text. */
cllm_status cllm_jinja_compile(const char *src, size_t len, const char *name, cllm_jinja **out, cllm_error *err);

/* Renders t with the variables of context, a JSON object (borrowed; NULL
 * means no variables). For a chat: messages (list of {role, content,
 * optional tool_calls, name, tool_call_id}), add_generation_prompt,
 * bos_token, eos_token, optional tools, and any extra variables. On success
 * *out is a NUL-terminated string of *out_len bytes owned by the caller
 * (free()). Errors name the template line: CLLM_ERR_FORMAT for
 * raise_exception and type errors, CLLM_ERR_LIMIT for the limits above. A
 * compiled template may be rendered from several threads at once. */
cllm_status cllm_jinja_render(const cllm_jinja *t, const struct cJSON *context, char **out, size_t *out_len,
                              cllm_error *err);

void cllm_jinja_free(cllm_jinja *t); /* accepts NULL */

#endif

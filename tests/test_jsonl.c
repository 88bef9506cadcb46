/*
 * test_jsonl.c: the JSONL walker every training-data reader shares
 * (cllm_jsonl_each, chat_data.h): SFT chat data (chat_data.c) and
 * preference / prompt data (pref_data.c).
 *
 *  - one line longer than CLLM_JSONL_MAX_LINE is rejected before it is
 *    parsed, by both readers, with name:line and the limit (issue 15 8b: a
 *    100 MB line cost dpo/reward 34 s and 2.7 GB before their error);
 *  - a first record whose first rendered piece is empty (an empty prompt)
 *    loads (issue 15 item 7: memset on a NULL mask with length 0, UBSan).
 */
#include <stdlib.h>
#include <string.h>

#include "cllm/train/chat_data.h"
#include "cllm/core/progress.h"
#include "cllm/train/rlhf.h"
#include "test.h"

static cllm_tokenizer *bytes_tok(void) {
    cllm_tokenizer *t = NULL;
    cllm_error err;
    cllm_tokenizer_new_bytes(&t, &err);
    return t;
}

/* A good first line, then one record of CLLM_JSONL_MAX_LINE + 1 bytes. */
static char *long_line_data(size_t *len) {
    const char *first = "{\"prompt\":\"1+1\",\"completion\":\"2\",\"chosen\":\"2\",\"rejected\":\"3\"}\n";
    const char *head = "{\"prompt\":\"", *tail = "\",\"completion\":\"2\",\"chosen\":\"2\",\"rejected\":\"3\"}";
    size_t line = (size_t)CLLM_JSONL_MAX_LINE + 1, pad = line - strlen(head) - strlen(tail);
    *len = strlen(first) + line + 1;
    char *d = malloc(*len + 1);
    if (!d) return NULL;
    char *p = d;
    p += sprintf(p, "%s%s", first, head);
    memset(p, 'a', pad);
    p += pad;
    p += sprintf(p, "%s\n", tail);
    return d;
}

static void test_jsonl_long_line_rejected_by_every_reader(void) {
    size_t len;
    char *data = long_line_data(&len);
    cllm_tokenizer *tok = bytes_tok();
    CHECK(data && tok, "setup");
    if (!data || !tok) return;
    cllm_error err;
    /* chat data (sft) */
    cllm_chat_data_params cp = cllm_chat_data_default_params(tok);
    cp.chat_template = cllm_chat_template_builtin(CLLM_CHAT_TEMPLATE_PLAIN);
    cllm_sft_dataset ds;
    memset(&ds, 0, sizeof ds);
    cllm_status st = cllm_chat_data_parse(data, len, "t.jsonl", tok, &cp, &ds, &err);
    CHECK(st == CLLM_ERR_LIMIT, "chat data: status %d (%s)", st, err.msg);
    CHECK(strstr(err.msg, "t.jsonl:2:") && strstr(err.msg, "limit"), "chat data message: %s", err.msg);
    cllm_sft_dataset_free(&ds);
    /* preference pairs (reward, dpo) and prompts (ppo, grpo) */
    for (int prompt_only = 0; prompt_only < 2; prompt_only++) {
        cllm_pref_load_params pp = {prompt_only, 1 << 30};
        cllm_pref_data d = {0};
        st = cllm_pref_data_parse(data, len, "t.jsonl", tok, cllm_chat_template_builtin(CLLM_CHAT_TEMPLATE_PLAIN), &pp, &d,
                                 &err);
        CHECK(st == CLLM_ERR_LIMIT, "pref data (prompt_only %d): status %d (%s)", prompt_only, st, err.msg);
        CHECK(strstr(err.msg, "t.jsonl:2:") && strstr(err.msg, "limit"), "pref data message: %s", err.msg);
        CHECK(d.items == NULL && d.n == 0, "nothing returned on error");
    }
    cllm_tokenizer_destroy(tok);
    free(data);
}

static void test_jsonl_empty_first_prompt_loads(void) {
    cllm_tokenizer *tok = bytes_tok();
    cllm_error err;
    const char *text = "{\"prompt\": \"\", \"completion\": \"xyz\"}\n{\"prompt\": \"a\", \"completion\": \"b\"}\n";
    for (int tmpl = 0; tmpl <= CLLM_CHAT_TEMPLATE_PLAIN; tmpl++) { /* the built-ins */
        cllm_chat_data_params cp = cllm_chat_data_default_params(tok);
        cp.chat_template = cllm_chat_template_builtin((cllm_chat_template_kind)tmpl);
        cllm_sft_dataset ds;
        memset(&ds, 0, sizeof ds);
        cllm_status st = cllm_chat_data_parse(text, strlen(text), "t.jsonl", tok, &cp, &ds, &err);
        CHECK(st == CLLM_OK, "template %d: %s", tmpl, st ? err.msg : "");
        if (st == CLLM_OK) {
            CHECK(ds.n == 2, "template %d: %zu examples", tmpl, ds.n);
            /* the learned tokens of the first example are its completion "xyz" (+ a turn end) */
            size_t learned = 0;
            for (size_t i = 0; ds.n && i < ds.ex[0].n; i++) learned += ds.ex[0].mask[i];
            CHECK(learned >= 2 && learned <= 5, "template %d: %zu learned tokens in the first example", tmpl, learned);
        }
        cllm_sft_dataset_free(&ds);
    }
    cllm_tokenizer_destroy(tok);
}

/* Prompt-only data (PPO, GRPO) in the messages form of cllm's task files:
 * the turns before the last assistant one are the prompt (the same ids as
 * {"prompt": ...}), the answer is "answer", else "reference", else that
 * assistant turn (grpo refused these files: field "prompt" missing). */
static void test_jsonl_prompts_from_messages(void) {
    cllm_tokenizer *tok = bytes_tok();
    cllm_error err;
    const char *text =
        "{\"messages\": [{\"role\": \"user\", \"content\": \"2+3?\"}, {\"role\": \"assistant\", \"content\": \"five\"}],"
        " \"reference\": \"5\"}\n"
        "{\"messages\": [{\"role\": \"user\", \"content\": \"1+1?\"}, {\"role\": \"assistant\", \"content\": \"2\"}]}\n"
        "{\"prompt\": \"2+3?\"}\n";
    cllm_pref_load_params pp = {1, 256};
    cllm_pref_data d = {0};
    cllm_status st = cllm_pref_data_parse(text, strlen(text), "t.jsonl", tok,
                                          cllm_chat_template_builtin(CLLM_CHAT_TEMPLATE_PLAIN), &pp, &d, &err);
    CHECK(st == CLLM_OK && d.n == 3, "loads: %s", st ? err.msg : "");
    if (st == CLLM_OK && d.n == 3) {
        CHECK(d.items[0].answer && !strcmp(d.items[0].answer, "5"), "reference is the answer");
        CHECK(d.items[1].answer && !strcmp(d.items[1].answer, "2"), "else the last assistant turn");
        CHECK(!d.items[2].answer, "a plain prompt has none");
        CHECK(d.items[0].n_prompt == d.items[2].n_prompt &&
                  !memcmp(d.items[0].prompt, d.items[2].prompt, (size_t)d.items[0].n_prompt * sizeof(int32_t)),
              "the prompt is the turns before the reply, rendered as a plain prompt is");
    }
    cllm_pref_data_free(&d);
    cllm_tokenizer_destroy(tok);
}

int main(void) {
    TEST_RUN(test_jsonl_empty_first_prompt_loads);
    TEST_RUN(test_jsonl_prompts_from_messages);
    TEST_RUN(test_jsonl_long_line_rejected_by_every_reader);
    return test_finish();
}

/*
 * fuzz_jsonl.c: the JSONL readers of the trainers, chosen by the input's
 * first byte: SFT chat data (messages or prompt/completion records),
 * preference pairs (DPO, reward) and prompt-only RL records (PPO, GRPO),
 * tokenized with the byte-level vocabulary and the ChatML template.
 */
#include "cllm/train/chat_data.h"
#include "cllm/train/rlhf.h"
#include "cllm/tokenizer/tokenizer.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static cllm_tokenizer *tok;
    cllm_error err;
    if (!tok && cllm_tokenizer_new_bytes(&tok, &err) != CLLM_OK) return 0;
    if (size < 1) return 0;
    int which = data[0] % 3;
    const char *text = (const char *)data + 1;
    size--;
    if (which == 0) {
        cllm_chat_data_params p = cllm_chat_data_default_params(tok);
        p.max_tokens = 256;
        p.truncate = size & 1;
        cllm_sft_dataset ds = {0};
        if (cllm_chat_data_parse(text, size, "fuzz.jsonl", tok, &p, &ds, &err) == CLLM_OK) cllm_sft_dataset_free(&ds);
    } else {
        cllm_pref_load_params p = {.prompt_only = which == 2, .max_tokens = 256};
        cllm_pref_data d = {0};
        if (cllm_pref_data_parse(text, size, "fuzz.jsonl", tok, cllm_chat_template_builtin(CLLM_CHAT_TEMPLATE_CHATML), &p, &d, &err) == CLLM_OK)
            cllm_pref_data_free(&d);
    }
    return 0;
}

/*
 * bytes.c: the byte-level vocabulary (id b = byte b) that `cllm pretrain`
 * uses for raw text files, so such models carry a real tokenizer too.
 */
#include "cllm/tokenizer/tokenizer.h"

cllm_status cllm_tokenizer_new_bytes(cllm_tokenizer **out, cllm_error *err) {
    cllm_status st = cllm_tokenizer_new(out, 256, CLLM_PRETOK_NONE, NULL, err);
    for (uint32_t b = 0; st == CLLM_OK && b < 256; b++) {
        uint8_t c = (uint8_t)b;
        st = cllm_tokenizer_set_token(*out, b, &c, 1, CLLM_TOKEN_NORMAL, err);
    }
    if (st == CLLM_OK) st = cllm_tokenizer_finalize(*out, CLLM_BPE_RANKS, err);
    if (st != CLLM_OK) {
        cllm_tokenizer_destroy(*out);
        *out = NULL;
    }
    return st;
}

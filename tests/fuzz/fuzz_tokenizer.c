/*
 * fuzz_tokenizer.c: cllm's own tokenizer file (docs/FORMATS.md), then an
 * encode and decode round of a fixed text with whatever vocabulary loaded.
 */
#include <string.h>

#include "cllm/tokenizer/tokenizer.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cllm_tokenizer *tok = NULL;
    cllm_error err;
    if (cllm_tokenizer_parse((const char *)data, size, "fuzz.tok", &tok, &err) != CLLM_OK) return 0;
    static const char text[] = "Hello, world! 안녕하세요 <|im_start|>user\n 123 \xff\xfe";
    cllm_tokens ids = {0};
    if (cllm_tokenizer_encode(tok, text, sizeof text - 1, NULL, &ids, &err) == CLLM_OK) {
        char *out = NULL;
        size_t n = 0;
        if (cllm_tokenizer_decode(tok, ids.ids, ids.n, &out, &n, &err) == CLLM_OK) free(out);
    }
    cllm_tokens_free(&ids);
    cllm_tokenizer_destroy(tok);
    return 0;
}

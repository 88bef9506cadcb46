/*
 * fuzz_gguf.c: the GGUF container, then what cllm reads out of one: the
 * model configuration, the tokenizer (tokenizer.ggml.*, which then encodes a
 * fixed text) and the weights' placement (cllm_model_from_gguf maps tensors
 * without copying them).
 */
#include "cllm/formats/gguf.h"
#include "cllm/model/gguf_io.h"
#include "cllm/tokenizer/tokenizer.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cllm_gguf *g = NULL;
    cllm_error err;
    if (cllm_gguf_open_memory(&g, data, size, "fuzz.gguf", &err) != CLLM_OK) return 0;
    cllm_model_config cfg;
    cllm_status st = cllm_model_config_from_gguf(g, &cfg, &err);
    (void)st;
    if (st == CLLM_OK) {
        cllm_model_options opts = cllm_model_default_options();
        opts.max_seq = 8;
        cllm_model *m = NULL;
        if (cllm_model_from_gguf(g, &opts, 1, &m, &err) == CLLM_OK) cllm_model_destroy(m);
    }
    cllm_tokenizer *tok = NULL;
    if (cllm_tokenizer_from_gguf(g, &tok, &err) == CLLM_OK) {
        /* A loaded vocabulary encodes a fixed text (llama.cpp's vocabularies:
         * special partition, invalid UTF-8 as U+FFFD, multi-regex splits). */
        static const char text[] = "It's 12345 caf\xc3\xa9 \xff\xe4\xb8 \xc0\xaf <|endoftext|><s> \xe4\xb8\x96  \n\n";
        cllm_tokens ids = {0};
        cllm_special_set all = {1, NULL, 0};
        (void)cllm_tokenizer_encode(tok, text, sizeof text - 1, NULL, &ids, &err);
        (void)cllm_tokenizer_encode(tok, text, sizeof text - 1, &all, &ids, &err);
        cllm_tokens_free(&ids);
        cllm_tokenizer_destroy(tok);
    }
    cllm_gguf_close(g);
    return 0;
}

/*
 * fuzz_gguf.c: the GGUF container, then what cllm reads out of one: the
 * model configuration, the tokenizer (tokenizer.ggml.*) and the weights'
 * placement (cllm_model_from_gguf maps tensors without copying them).
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
    if (cllm_tokenizer_from_gguf(g, &tok, &err) == CLLM_OK) cllm_tokenizer_destroy(tok);
    cllm_gguf_close(g);
    return 0;
}

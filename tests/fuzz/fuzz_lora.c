/*
 * fuzz_lora.c: LoRA adapter files (GGUF with the cllm.lora.* keys),
 * attached to a fresh model per input (so an adapter half-attached by a
 * failed load cannot leak into the next one). The model is tiny-llama
 * narrowed to the shape of the seed adapter in corpus/fuzz_lora/ (byte
 * vocabulary, 1 layer, 8 wide), so seeds reach past the shape checks.
 */
#include "cllm/model/lora.h"
#include "cllm/model/model.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static cllm_model_config cfg;
    static int have_cfg;
    cllm_error err;
    if (!have_cfg) {
        if (cllm_model_preset("tiny-llama", &cfg, &err) != CLLM_OK) return 0;
        cfg.vocab_size = 256, cfg.context_length = 8, cfg.n_layer = 1;
        cfg.n_head = 2, cfg.n_kv_head = 1, cfg.n_embd = 8, cfg.ffn_hidden = 16;
        have_cfg = 1;
    }
    cllm_model_options opts = cllm_model_default_options();
    opts.max_seq = 8;
    cllm_model *m = NULL;
    if (cllm_model_create(&cfg, &opts, &m, &err) != CLLM_OK) return 0;
    char path[64];
    int fd = fuzz_file_open(data, size, path, sizeof path);
    if (fd >= 0) (void)cllm_model_lora_load_gguf(m, path, &err);
    fuzz_file_close(fd);
    cllm_model_destroy(m);
    return 0;
}

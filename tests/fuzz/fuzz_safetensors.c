/*
 * fuzz_safetensors.c: the safetensors reader over arbitrary bytes: header
 * length, JSON header, dtypes, shapes, offsets, coverage of the data area.
 * Every tensor view it hands out is read end to end, so a range outside the
 * buffer shows up under ASan.
 */
#include "cllm/formats/safetensors.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cllm_safetensors *s = NULL;
    cllm_error err;
    if (cllm_safetensors_open_memory(&s, data, size, "fuzz.safetensors", &err) != CLLM_OK) return 0;
    volatile uint8_t sink = 0;
    for (uint64_t i = 0; i < cllm_safetensors_n_tensors(s); i++) {
        const cllm_safetensors_tensor *t = cllm_safetensors_tensor_at(s, i);
        const uint8_t *p = t->data;
        for (size_t k = 0; k < t->nbytes; k++) sink ^= p[k];
        if (cllm_safetensors_find(s, t->name) != t) abort();
    }
    (void)sink;
    cllm_safetensors_close(s);
    return 0;
}

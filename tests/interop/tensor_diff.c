/*
 * tensor_diff.c: compares the tensors of two GGUF files by name: same set of
 * names, and for each the same type, dims and data bytes. Prints one line
 * per tensor that differs (with the count of differing bytes) and a summary
 * "N tensors, N identical, N differ: types TYPE:COUNT ...". Exit 0 when
 * every tensor is identical, 1 otherwise, 2 on usage or read errors.
 *
 * Not part of `make test`; tests/interop/llama_tools.sh uses it to check
 * that `cllm quantize` writes the bytes llama-quantize writes.
 * Usage: tensor_diff A.gguf B.gguf
 */
#include <stdio.h>
#include <string.h>

#include "cllm/formats/ggml_types.h"
#include "cllm/formats/gguf.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: tensor_diff A.gguf B.gguf\n");
        return 2;
    }
    cllm_gguf *a = NULL, *b = NULL;
    cllm_error err = {0};
    if (cllm_gguf_open(&a, argv[1], &err) != CLLM_OK || cllm_gguf_open(&b, argv[2], &err) != CLLM_OK) {
        fprintf(stderr, "tensor_diff: %s\n", err.msg);
        return 2;
    }
    int same = 0, differ = 0, count[CLLM_GGML_TYPE_COUNT] = {0};
    const uint64_t n = cllm_gguf_n_tensors(a);
    for (uint64_t i = 0; i < n; i++) {
        const cllm_gguf_tensor *ta = cllm_gguf_tensor_at(a, i), *tb = cllm_gguf_find_tensor(b, ta->name);
        if (ta->type < CLLM_GGML_TYPE_COUNT) count[ta->type]++;
        if (!tb) {
            printf("  %s: only in %s\n", ta->name, argv[1]);
            differ++;
            continue;
        }
        if (ta->type != tb->type || memcmp(ta->dims, tb->dims, sizeof ta->dims) != 0 || ta->nbytes != tb->nbytes) {
            printf("  %s: %s vs %s\n", ta->name, cllm_ggml_type_name(ta->type), cllm_ggml_type_name(tb->type));
            differ++;
            continue;
        }
        size_t nd = 0;
        for (size_t k = 0; k < ta->nbytes; k++) nd += ((const unsigned char *)ta->data)[k] != ((const unsigned char *)tb->data)[k];
        if (nd) {
            printf("  %s (%s): %zu of %zu bytes differ\n", ta->name, cllm_ggml_type_name(ta->type), nd, ta->nbytes);
            differ++;
        } else {
            same++;
        }
    }
    if (cllm_gguf_n_tensors(b) != n) {
        printf("  %s has %llu tensors, %s %llu\n", argv[1], (unsigned long long)n, argv[2],
               (unsigned long long)cllm_gguf_n_tensors(b));
        differ++;
    }
    printf("%llu tensors, %d identical, %d differ: types", (unsigned long long)n, same, differ);
    for (int t = 0; t < CLLM_GGML_TYPE_COUNT; t++)
        if (count[t]) printf(" %s:%d", cllm_ggml_type_name((uint32_t)t), count[t]);
    printf("\n");
    cllm_gguf_close(a);
    cllm_gguf_close(b);
    return differ ? 1 : 0;
}

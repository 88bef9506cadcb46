/*
 * fuzz_shard.c: token shard files (header, size, ids below the vocabulary).
 */
#include "cllm/train/shard.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    int fd = fuzz_file_open(data, size, path, sizeof path);
    if (fd < 0) return 0;
    cllm_shard shard;
    cllm_error err;
    if (cllm_shard_open(&shard, path, &err) == CLLM_OK) {
        if (cllm_shard_validate_ids(&shard, &err) == CLLM_OK && shard.info.n_tokens > 0)
            (void)cllm_shard_token(&shard, shard.info.n_tokens - 1);
        cllm_shard_close(&shard);
    }
    fuzz_file_close(fd);
    return 0;
}

/*
 * shard.c: write, map and validate token shard files (layout in shard.h).
 */
#include "cllm/train/shard.h"

#include <stdlib.h>
#include <string.h>

#include "cllm/core/byteorder.h"

static const char shard_magic[8] = {'C', 'L', 'L', 'M', 'T', 'O', 'K', '\0'};


cllm_status cllm_shard_write(const char *path, const uint32_t *ids, uint64_t n_tokens,
                             uint32_t vocab_size, uint32_t eot_id, uint64_t tokenizer_hash,
                             cllm_error *err) {
    if (vocab_size == 0) return cllm_error_set(err, CLLM_ERR_ARG, "%s: vocab_size must be > 0", path);
    for (uint64_t i = 0; i < n_tokens; i++)
        if (ids[i] >= vocab_size)
            return cllm_error_set(err, CLLM_ERR_ARG, "%s: token %llu has id %u >= vocab_size %u", path,
                                  (unsigned long long)i, ids[i], vocab_size);
    uint32_t token_bytes = vocab_size <= 65536 ? 2 : 4;
    uint8_t header[CLLM_SHARD_HEADER_BYTES] = {0};
    memcpy(header, shard_magic, 8);
    cllm_put_le32(header + 8, CLLM_SHARD_VERSION);
    cllm_put_le32(header + 12, token_bytes);
    cllm_put_le64(header + 16, n_tokens);
    cllm_put_le32(header + 24, vocab_size);
    cllm_put_le32(header + 28, eot_id);
    cllm_put_le64(header + 32, tokenizer_hash);
    cllm_atomic_file af;
    cllm_status st = cllm_atomic_begin(&af, path, err);
    if (st != CLLM_OK) return st;
    cllm_atomic_write(&af, header, sizeof header);
    uint8_t buf[8192];
    size_t fill = 0;
    for (uint64_t i = 0; i < n_tokens; i++) {
        if (token_bytes == 2) {
            buf[fill++] = (uint8_t)ids[i];
            buf[fill++] = (uint8_t)(ids[i] >> 8);
        } else {
            cllm_put_le32(buf + fill, ids[i]);
            fill += 4;
        }
        if (fill + 4 > sizeof buf) {
            cllm_atomic_write(&af, buf, fill);
            fill = 0;
        }
    }
    cllm_atomic_write(&af, buf, fill);
    return cllm_atomic_commit(&af, err);
}

cllm_status cllm_shard_open(cllm_shard *shard, const char *path, cllm_error *err) {
    memset(shard, 0, sizeof *shard);
    snprintf(shard->path, sizeof shard->path, "%s", path);
    cllm_status st = cllm_mmap_open(&shard->map, path, err);
    if (st != CLLM_OK) return st;
    const uint8_t *h = shard->map.data;
    size_t size = shard->map.size;
    if (size < CLLM_SHARD_HEADER_BYTES) {
        cllm_shard_close(shard);
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: %zu bytes is too short for a token shard header (64)",
                              path, size);
    }
    if (memcmp(h, shard_magic, 8) != 0) {
        cllm_shard_close(shard);
        return cllm_error_set(err, CLLM_ERR_FORMAT,
                              "%s: not a cllm token shard (bad magic at offset 0); create one with 'cllm tokenize'",
                              path);
    }
    uint32_t version = cllm_get_le32(h + 8);
    cllm_shard_info info = {
        .token_bytes = cllm_get_le32(h + 12),
        .n_tokens = cllm_get_le64(h + 16),
        .vocab_size = cllm_get_le32(h + 24),
        .eot_id = cllm_get_le32(h + 28),
        .tokenizer_hash = cllm_get_le64(h + 32),
    };
    const char *bad = NULL;
    if (version != CLLM_SHARD_VERSION) bad = "version (offset 8) is not 1";
    else if (info.token_bytes != 2 && info.token_bytes != 4) bad = "token_bytes (offset 12) is not 2 or 4";
    else if (info.vocab_size == 0) bad = "vocab_size (offset 24) is 0";
    else if (info.token_bytes == 2 && info.vocab_size > 65536) bad = "vocab_size (offset 24) does not fit u16 ids";
    else if (info.eot_id != CLLM_SHARD_NO_EOT && info.eot_id >= info.vocab_size) bad = "eot_id (offset 28) >= vocab_size";
    if (bad) {
        cllm_shard_close(shard);
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: %s", path, bad);
    }
    size_t payload, expected;
    if (!cllm_size_mul((size_t)info.n_tokens, info.token_bytes, &payload) || info.n_tokens > SIZE_MAX ||
        !cllm_size_add(payload, CLLM_SHARD_HEADER_BYTES, &expected) || expected != size) {
        cllm_shard_close(shard);
        return cllm_error_set(err, CLLM_ERR_FORMAT,
                              "%s: n_tokens (offset 16) = %llu does not match the file size %zu (truncated or corrupt)",
                              path, (unsigned long long)info.n_tokens, size);
    }
    shard->info = info;
    shard->ids = h + CLLM_SHARD_HEADER_BYTES;
    return CLLM_OK;
}

cllm_status cllm_shard_validate_ids(const cllm_shard *shard, cllm_error *err) {
    for (uint64_t i = 0; i < shard->info.n_tokens; i++) {
        uint32_t id = cllm_shard_token(shard, i);
        if (id >= shard->info.vocab_size)
            return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: token %llu (offset %llu) has id %u >= vocab_size %u",
                                  shard->path, (unsigned long long)i,
                                  (unsigned long long)(CLLM_SHARD_HEADER_BYTES + i * shard->info.token_bytes), id,
                                  shard->info.vocab_size);
    }
    return CLLM_OK;
}

void cllm_shard_close(cllm_shard *shard) {
    if (!shard) return;
    cllm_mmap_close(&shard->map);
    shard->ids = NULL;
}

/*
 * shard.h: token shard files, the output of `cllm tokenize` and the input of
 * every trainer. Layout (docs/FORMATS.md, "Token shard v1"), little-endian:
 *
 *   offset size  field
 *   0      8     magic "CLLMTOK\0"
 *   8      4     version (1)
 *   12     4     token_bytes: 2 (u16 ids) or 4 (u32 ids)
 *   16     8     n_tokens
 *   24     4     vocab_size: every id is < vocab_size
 *   28     4     eot_id: document separator id, or 0xFFFFFFFF for none
 *   32     8     tokenizer_hash: 64-bit FNV-1a fingerprint of the tokenizer
 *                (0 = byte-level, no tokenizer file)
 *   40     24    reserved, zero
 *   64     ...   n_tokens ids of token_bytes each
 *
 * The reader maps the file, validates the header, that the size is exactly
 * 64 + n_tokens * token_bytes, and (cllm_shard_validate_ids) that every id is
 * below vocab_size, before any training step runs.
 */
#ifndef CLLM_SHARD_H
#define CLLM_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "cllm/core/byteorder.h"
#include "cllm/core/fileio.h"
#include "cllm/core/hash.h" /* cllm_fnv1a64: callers fingerprint shards with it */
#include "cllm/core/status.h"

#define CLLM_SHARD_HEADER_BYTES 64
#define CLLM_SHARD_VERSION 1
#define CLLM_SHARD_NO_EOT 0xFFFFFFFFu

typedef struct {
    uint32_t token_bytes;
    uint64_t n_tokens;
    uint32_t vocab_size;
    uint32_t eot_id;
    uint64_t tokenizer_hash;
} cllm_shard_info;

typedef struct {
    cllm_shard_info info;
    cllm_mmap map;
    const uint8_t *ids; /* [n_tokens * token_bytes], borrowed from map */
    char path[4096];
} cllm_shard;

/* Writes a shard atomically; ids must all be < vocab_size (checked).
 * token_bytes is chosen automatically: 2 when vocab_size <= 65536, else 4. */
cllm_status cllm_shard_write(const char *path, const uint32_t *ids, uint64_t n_tokens,
                             uint32_t vocab_size, uint32_t eot_id, uint64_t tokenizer_hash,
                             cllm_error *err);

/* Maps and validates the header and size. Close with cllm_shard_close. */
cllm_status cllm_shard_open(cllm_shard *shard, const char *path, cllm_error *err);
/* Checks every id < vocab_size; names the first bad offset. */
cllm_status cllm_shard_validate_ids(const cllm_shard *shard, cllm_error *err);
void cllm_shard_close(cllm_shard *shard);

/* Token i of the shard (i < n_tokens). */
static inline uint32_t cllm_shard_token(const cllm_shard *shard, uint64_t i) {
    return shard->info.token_bytes == 2 ? cllm_get_le16(shard->ids + 2 * i) : cllm_get_le32(shard->ids + 4 * i);
}

#endif

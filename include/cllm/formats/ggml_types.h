/*
 * ggml_types.h: the tensor element types of GGUF files (ggml's type ids),
 * their block layouts, and scalar conversions between them and float32.
 *
 * Ids and block layouts follow ggml's `enum ggml_type` so files interoperate
 * with llama.cpp. A "block" is the unit a row is cut into: f32/f16/bf16 have
 * blocks of 1 element; q8_0 and q4_0 have blocks of 32 elements:
 *
 *   q8_0 block (34 bytes): u16 d (fp16 scale), int8 qs[32];  x[j] = d * qs[j]
 *   q4_0 block (18 bytes): u16 d (fp16 scale), u8 qs[16];
 *                          x[j]      = d * ((qs[j] & 0x0F) - 8)   for j < 16
 *                          x[j + 16] = d * ((qs[j] >> 4)   - 8)
 *
 * The table also knows the sizes of ggml's other common types (q4_1, q5_*,
 * q8_1, k-quants, integer types, f64) so that files containing them can be
 * validated and listed; only types with `has_kernels` set can be converted
 * here or used by the model. Type ids ggml never defined (4, 5, negative, or
 * beyond the table) are unknown and make a file invalid.
 *
 * Not here: SIMD dot products (src/kernels/), quantization of whole models
 * (src/model/gguf_io.c and src/infer/).
 */
#ifndef CLLM_GGML_TYPES_H
#define CLLM_GGML_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    CLLM_GGML_F32 = 0,
    CLLM_GGML_F16 = 1,
    CLLM_GGML_Q4_0 = 2,
    CLLM_GGML_Q4_1 = 3,
    /* 4 and 5 were removed from ggml (q4_2, q4_3): unknown here */
    CLLM_GGML_Q5_0 = 6,
    CLLM_GGML_Q5_1 = 7,
    CLLM_GGML_Q8_0 = 8,
    CLLM_GGML_Q8_1 = 9,
    CLLM_GGML_Q2_K = 10,
    CLLM_GGML_Q3_K = 11,
    CLLM_GGML_Q4_K = 12,
    CLLM_GGML_Q5_K = 13,
    CLLM_GGML_Q6_K = 14,
    CLLM_GGML_Q8_K = 15,
    /* 16..23: i-quants, not described here (unknown) */
    CLLM_GGML_I8 = 24,
    CLLM_GGML_I16 = 25,
    CLLM_GGML_I32 = 26,
    CLLM_GGML_I64 = 27,
    CLLM_GGML_F64 = 28,
    /* 29: iq1_m (unknown here) */
    CLLM_GGML_BF16 = 30,
    CLLM_GGML_TYPE_COUNT = 31 /* one past the largest id this table covers */
} cllm_ggml_type;

#define CLLM_QK8_0 32 /* elements per q8_0 block */
#define CLLM_QK4_0 32 /* elements per q4_0 block */
#define CLLM_Q8_0_BYTES 34 /* bytes per q8_0 block: fp16 d + 32 int8 */
#define CLLM_Q4_0_BYTES 18 /* bytes per q4_0 block: fp16 d + 16 bytes of nibbles */

typedef struct {
    const char *name;    /* ggml's lower-case name: "f32", "q8_0", ... */
    uint32_t block_size; /* elements per block */
    uint32_t type_size;  /* bytes per block */
    bool has_kernels;    /* cllm can convert to/from f32 and compute with it */
} cllm_ggml_type_info;

/* The layout of type id `id` (as read from a file: any uint32), or NULL if the
 * id is not one ggml defines with a layout known here. */
const cllm_ggml_type_info *cllm_ggml_type_get(uint32_t id);

/* "f32", ..., or "unknown" for an id cllm_ggml_type_get rejects. */
const char *cllm_ggml_type_name(uint32_t id);

/* Parses a name ("f32", "f16", "bf16", "q8_0", "q4_0", case-insensitive) of a
 * type with kernels. Returns 0 and fills *out, or -1 if unknown. */
int cllm_ggml_type_parse(const char *name, cllm_ggml_type *out);

/* Bytes taken by one row of n elements of `type`. Returns 0 and leaves *out
 * unchanged if the type is unknown, n <= 0, n is not a multiple of the block
 * size, or the size overflows; returns 1 otherwise. */
int cllm_ggml_row_size(uint32_t type, int64_t n, size_t *out);

/* Scalar conversions, IEEE round-to-nearest-even; NaN stays NaN, Inf stays
 * Inf, fp16 overflow gives Inf, subnormals are kept. */
uint16_t cllm_fp32_to_fp16(float f);
float cllm_fp16_to_fp32(uint16_t h);
uint16_t cllm_fp32_to_bf16(float f);
float cllm_bf16_to_fp32(uint16_t b);

/* Converts n float32 values into `type` (f32, f16, bf16, q8_0, q4_0), writing
 * exactly cllm_ggml_row_size(type, n) bytes to dst. Quantization follows
 * ggml's reference rounding (q8_0: d = amax/127, q = round(x/d); q4_0: d =
 * (value of largest magnitude)/-8, q = min(15, trunc(x/d + 8.5))), so files
 * match llama.cpp's quantizer byte for byte on finite input. Non-finite
 * inputs give a defined but meaningless block. Returns 0 on success, -1 if
 * the type has no kernels or n is not a multiple of its block size. */
int cllm_ggml_from_f32(uint32_t type, const float *src, void *dst, int64_t n);

/* The inverse: n elements of `type` at src into float32. Same return codes. */
int cllm_ggml_to_f32(uint32_t type, const void *src, float *dst, int64_t n);

#endif

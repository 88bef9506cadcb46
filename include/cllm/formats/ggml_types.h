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
 *   q4_1 block (20 bytes): u16 d, u16 m (fp16), u8 qs[16] (nibbles as q4_0);
 *                          x = d * q + m, q in [0, 15]
 *   q5_0 block (22 bytes): u16 d, u8 qh[4] (u32 LE: bit j = fifth bit of
 *                          value j), u8 qs[16] (low nibbles as q4_0);
 *                          x = d * (q - 16), q in [0, 31]
 *   q5_1 block (24 bytes): u16 d, u16 m, u8 qh[4], u8 qs[16]; x = d * q + m
 *
 * The k-quants cut a row into super-blocks of 256 elements, themselves cut
 * into sub-blocks of 16 or 32 elements whose scales (and mins) are small
 * integers times one or two fp16 super-scales (docs/FORMATS.md draws them):
 *
 *   q2_K (84 bytes):  u8 scales[16] (low nibble scale, high nibble min of
 *                     each 16), u8 qs[64] (2 bits), u16 d, u16 dmin;
 *                     x = d * sc * q - dmin * m, q in [0, 3]
 *   q3_K (110 bytes): u8 hmask[32] (third bit), u8 qs[64] (low 2 bits),
 *                     u8 scales[12] (16 6-bit scales), u16 d;
 *                     x = d * (sc - 32) * (q - 4), q in [0, 7]
 *   q4_K (144 bytes): u16 d, u16 dmin, u8 scales[12] (8 6-bit scales and
 *                     8 6-bit mins, one per 32), u8 qs[128];
 *                     x = d * sc * q - dmin * m, q in [0, 15]
 *   q5_K (176 bytes): u16 d, u16 dmin, u8 scales[12], u8 qh[32] (fifth
 *                     bit), u8 qs[128]; as q4_K with q in [0, 31]
 *   q6_K (210 bytes): u8 ql[128] (low 4 bits), u8 qh[64] (high 2 bits),
 *                     int8 scales[16] (one per 16), u16 d;
 *                     x = d * sc * (q - 32), q in [0, 63]
 *   q8_K (292 bytes): f32 d, int8 qs[256], int16 bsums[16] (sums of each
 *                     16 qs): not a file type, the activations the k-quant
 *                     rows are multiplied with (cllm_ggml_quantize_q8_K)
 *
 * The table also knows the sizes of ggml's other common types (q8_1,
 * integer types, f64) so that files containing them can be validated and
 * listed; only types with `has_kernels` set can be converted here or used
 * by the model. Type ids ggml never defined (4, 5, negative, or
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
#define CLLM_QK_K 256      /* elements per k-quant super-block (q2_K .. q6_K, q8_K) */
#define CLLM_Q8_K_BYTES 292 /* bytes per q8_K block: f32 d + 256 int8 + 16 int16 sums */

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

/* Parses a name ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0",
 * "q5_1", "q2_K" .. "q6_K", case-insensitive) of a type with kernels. Returns 0 and fills *out, or -1 if unknown. */
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

/* Converts n float32 values into `type` (any type with kernels), writing
 * exactly cllm_ggml_row_size(type, n) bytes to dst. Quantization follows
 * ggml's reference quantizers (q8_0: d = amax/127, q = round(x/d); q4_0: d =
 * (value of largest magnitude)/-8, q = min(15, trunc(x/d + 8.5)); the
 * k-quants: ggml's scale searches, ggml_kquants.c), so files match
 * llama.cpp's quantizer without an importance matrix byte for byte on
 * finite input. Non-finite
 * inputs give a defined but meaningless block. Returns 0 on success, -1 if
 * the type has no kernels or n is not a multiple of its block size. */
int cllm_ggml_from_f32(uint32_t type, const float *src, void *dst, int64_t n);

/* The inverse: n elements of `type` at src into float32. Same return codes. */
int cllm_ggml_to_f32(uint32_t type, const void *src, float *dst, int64_t n);

/* y: n / 256 q8_K blocks from x[n] (n a multiple of 256), ggml's
 * quantize_row_q8_K_ref: d = -max / 127 with max the value of largest
 * magnitude, q = round-half-even(x / d), bsums the sums of each 16 q. */
void cllm_ggml_quantize_q8_K(const float *x, void *y, int64_t n);

/* One k-quant super-block (q2_K .. q6_K) unpacked for dot products and
 * dequantization: value j = d * sc[j / 16] * q[j] - dmin * mn[j / 16]
 * (sub-blocks of 32 repeat their scale and min over two entries; q3_K and
 * q6_K have dmin = 0 and mn = 0, and q[] already has the offset taken off). */
typedef struct {
    float d, dmin;
    int16_t sc[16], mn[16];
    int8_t q[CLLM_QK_K];
} cllm_ggml_kq_block;

/* Unpacks one block of `type` (a k-quant; asserted) at src. */
void cllm_ggml_kq_unpack(uint32_t type, const uint8_t *src, cllm_ggml_kq_block *out);

#endif

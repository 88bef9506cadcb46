/*
 * quant.h: dot products and matrix-vector products over weights stored in
 * ggml's types (f32, f16, bf16, q8_0, q4_0, and q4_1, q5_0, q5_1, q2_K ..
 * q6_K at the end of the table; layouts in ggml_types.h), the kernels
 * behind quantized inference.
 *
 * As in llama.cpp, a quantized weight row (q8_0 or q4_0) is multiplied with
 * the activation vector quantized to q8_0 ("q8_0 activations"): per block of
 * 32, an integer dot product times the two fp16 scales. f16 and bf16 rows
 * are multiplied with the f32 activations directly (widened to f32, f32
 * accumulation). The activation quantizer here is
 *     d = amax / 127 (stored as fp16), q = round-half-even(x * (1/d)),
 * which is what llama.cpp's SIMD quantize_row_q8_0 computes; it can differ
 * from the weight quantizer in ggml_types.h (round-half-away of x / d) by one
 * unit on exact ties, which does not matter for activations.
 *
 * Implementations: a plain scalar reference (ground truth for tests), AVX2
 * (maddubs), AVX-512BW (maddubs, two blocks per register), AVX-512 VNNI
 * (vpdpbusd) and AMX (VNNI's table with the x16 prompt products on AMX-INT8
 * tiles), chosen once at run time from the CPU features in
 * cllm_kernels_get(); CLLM_KERNELS=reference forces the reference. Integer
 * sums inside a block are exact in every path, so the paths differ from the
 * reference only by the order of the float accumulation over blocks.
 *
 * The other block types have dot products only (no batched or x16 form):
 * the model decodes them row by row on q8_0 / q8_K activations and runs
 * their prompt chunks on dequantized rows + cllm_sgemm; AVX2 versions of
 * all of them serve the AVX2 and AVX-512 tables.
 *
 * Not here: quantizing weights for files (ggml_types.h), model inference
 * (model/mapped.h). Model inference runs cllm_quant_gemm_x16 on repacked
 * q8_0/q4_0 weights (cllm_quant_gemm on the file layout without VNNI or
 * with keep_file_layout), and dequantized row blocks + cllm_sgemm for the
 * float types' prompt chunks.
 */
#ifndef CLLM_QUANT_H
#define CLLM_QUANT_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    CLLM_QUANT_REFERENCE = 0,
    CLLM_QUANT_AVX2,        /* AVX2 + FMA + F16C */
    CLLM_QUANT_AVX512,      /* AVX-512 F/BW/VL/DQ */
    CLLM_QUANT_AVX512_VNNI, /* + VNNI (vpdpbusd) for the integer dots */
    CLLM_QUANT_AMX,         /* + AMX-INT8 tiles for x16 products of 16+ tokens (quant_amx.c) */
    CLLM_QUANT_COUNT
} cllm_quant_backend;

/* One implementation of every primitive. n is the element count (a multiple
 * of 32 for the q8_0/q4_0 entries, any n >= 0 for f16/bf16/f32). x/y point to
 * rows in the file layout (unaligned is fine). */
typedef struct {
    cllm_quant_backend backend;
    const char *name; /* "reference", "avx2", "avx512", "avx512_vnni", "amx" */
    /* y: n/32 q8_0 blocks from x[n] (activation quantizer above). */
    void (*quantize_q8_0)(const float *x, void *y, int64_t n);
    float (*dot_q8_0_q8_0)(const void *w, const void *xq, int64_t n);
    float (*dot_q4_0_q8_0)(const void *w, const void *xq, int64_t n);
    float (*dot_f16_f32)(const void *w, const float *x, int64_t n);
    float (*dot_bf16_f32)(const void *w, const float *x, int64_t n);
    float (*dot_f32_f32)(const void *w, const float *x, int64_t n);
    /* dst[n] = the values of one row of q8_0 / q4_0 / f16 / bf16 (exact). */
    void (*dequant_q8_0)(const void *src, float *dst, int64_t n);
    void (*dequant_q4_0)(const void *src, float *dst, int64_t n);
    void (*dequant_f16)(const void *src, float *dst, int64_t n);
    void (*dequant_bf16)(const void *src, float *dst, int64_t n);
    /* Batched integer product, one thread: out[t * ld_out + r] = dot(row r
     * of W, activation row t) for r < rows, t < n, where W is q8_0 or q4_0
     * (`type`) with rows `row_bytes` apart and the activations are n q8_0
     * rows `xq_stride` bytes apart, K elements each (multiple of 32). Each
     * result equals the matching dot_* up to float summation order.
     * Overwrites out. The VNNI version tiles 4 rows x 4 tokens. */
    void (*gemm_q8)(uint32_t type, const void *W, size_t row_bytes, int rows, const void *xq,
                    size_t xq_stride, int n, int64_t K, float *out, size_t ld_out);
    /* The same product on weights repacked by cllm_quant_x16_pack (`groups`
     * groups of 16 rows), one thread: out[t * ld_out + r] for r < 16 *
     * groups. dy[t * K/32 + b] is activation block b's scale as float and
     * corr[t * K/32 + b] = -c * (sum of its 32 int8 values), c = 128 for
     * q8_0 and 8 for q4_0 weights (cllm_quant_gemm_x16 prepares both). NULL
     * in a table without such a kernel (only the VNNI one has it). */
    void (*gemm_x16)(uint32_t type, const void *P, int groups, int64_t K, const void *xq, size_t xq_stride,
                     const float *dy, const int32_t *corr, int n, float *out, size_t ld_out);
    /* The same for bf16 weights packed by cllm_quant_x16_pack (type bf16)
     * and activations xb rounded to bf16 (n rows of K, contiguous), one
     * thread; products exact in f32, accumulation in f32 (vdpbf16ps). NULL
     * without AVX512-BF16. */
    void (*gemm_x16_bf16)(const void *P, int groups, int64_t K, const uint16_t *xb, int n, float *out,
                          size_t ld_out);
    /* y[n] = x rounded to bf16 (nearest even), the activations of gemm_x16_bf16; set with it. */
    void (*round_bf16)(const float *x, uint16_t *y, int64_t n);
    /* y[n] = x rounded to fp16 (nearest even, as cllm_fp32_to_fp16): the rows of an f16 KV cache. */
    void (*round_f16)(const float *x, uint16_t *y, int64_t n);
    /* ---- the other block types (ggml_types.h) ----
     * q4_1, q5_0 and q5_1 rows are multiplied with q8_0 activations (as
     * q4_0; a block's min times the activation block's sum adds the
     * offset), the k-quants q2_K .. q6_K with q8_K activations (n a multiple
     * of 256): per sub-block an integer dot times its integer scale, per
     * super-block the fp16 scale times the activation scale, the mins
     * through q8_K's per-16 sums. Tables without a SIMD version of an entry
     * hold the reference's. */
    /* y: n/256 q8_K blocks from x[n] (cllm_ggml_quantize_q8_K's rounding). */
    void (*quantize_q8_K)(const float *x, void *y, int64_t n);
    float (*dot_q4_1_q8_0)(const void *w, const void *xq, int64_t n);
    float (*dot_q5_0_q8_0)(const void *w, const void *xq, int64_t n);
    float (*dot_q5_1_q8_0)(const void *w, const void *xq, int64_t n);
    float (*dot_q2_K_q8_K)(const void *w, const void *xq, int64_t n);
    float (*dot_q3_K_q8_K)(const void *w, const void *xq, int64_t n);
    float (*dot_q4_K_q8_K)(const void *w, const void *xq, int64_t n);
    float (*dot_q5_K_q8_K)(const void *w, const void *xq, int64_t n);
    float (*dot_q6_K_q8_K)(const void *w, const void *xq, int64_t n);
    /* dst[n] = the values of one row of any of these types (exact, as cllm_ggml_to_f32). */
    void (*dequant_other)(uint32_t type, const void *src, float *dst, int64_t n);
} cllm_quant_kernels;

/* The implementation this CPU runs best (the reference under
 * CLLM_KERNELS=reference). Borrowed, valid for the process; thread-safe. */
const cllm_quant_kernels *cllm_quant_kernels_get(void);

/* A specific implementation, or NULL when this CPU cannot run it (tests
 * compare every available one against CLLM_QUANT_REFERENCE). */
const cllm_quant_kernels *cllm_quant_kernels_backend(cllm_quant_backend b);

/* 1 when `type` is one the kernels below handle: f32, f16, bf16, q8_0,
 * q4_0, q4_1, q5_0, q5_1, q2_K, q3_K, q4_K, q5_K, q6_K. */
int cllm_quant_type_supported(uint32_t type);

/* The activation type rows of `type` are multiplied with: CLLM_GGML_Q8_0
 * (q8_0, q4_0, q4_1, q5_0, q5_1), CLLM_GGML_Q8_K (the k-quants) or
 * CLLM_GGML_F32 (f32, f16, bf16: the float activations). */
uint32_t cllm_quant_act_type(uint32_t type);

/* Bytes of the q8_0 activation buffer for a vector of n (multiple of 32). */
size_t cllm_quant_q8_0_bytes(int64_t n);

/* Bytes of the q8_K activation buffer for a vector of n (multiple of 256). */
size_t cllm_quant_q8_K_bytes(int64_t n);

/* The dot product of one row of `type` with activations of
 * cllm_quant_act_type(type), from table k; NULL for the float types (their
 * dot_* take f32 activations). */
float (*cllm_quant_dot_fn(const cllm_quant_kernels *k, uint32_t type))(const void *, const void *, int64_t);

/* out[r] = dot(row r of W, x) for r in [0, rows), W rows `row_bytes` apart
 * in `type` (cols elements each). For quantized weights xq must hold x
 * quantized to cllm_quant_act_type(type) by k->quantize_q8_0 (cols multiple
 * of 32) or k->quantize_q8_K (multiple of 256); for the float types xq is
 * ignored and may be NULL. Rows are split over the OpenMP threads. k NULL
 * means cllm_quant_kernels_get(). Overwrites out. */
void cllm_quant_matvec(const cllm_quant_kernels *k, uint32_t type, const void *W, size_t row_bytes,
                       int rows, int cols, const float *x, const void *xq, float *out);

/* out[t * ld_out + r] = dot(row r of W, activation row t) for r < rows,
 * t < n: W q8_0 or q4_0, xq n rows of k->quantize_q8_0 output xq_stride
 * bytes apart (cols multiple of 32). Rows are split over the OpenMP threads
 * in one parallel region (when the product is large enough). Overwrites out. */
void cllm_quant_gemm(const cllm_quant_kernels *k, uint32_t type, const void *W, size_t row_bytes, int rows,
                     int cols, const void *xq, size_t xq_stride, int n, float *out, size_t ld_out);

/* ---- the interleaved 16-row layout ("x16") ----
 * A q8_0 or q4_0 matrix repacked once at load so that one 64-byte register
 * holds the same 4 weights of 16 rows: vpdpbusd then multiplies 16 rows by
 * one broadcast group of 4 activation bytes, every 16-row output lands in
 * one register without horizontal sums, and the float work (convert, scale,
 * accumulate) is one step per block of 32 and token instead of one per lane
 * and row. llama.cpp repacks q4_0 for its AVX-512 GEMM for the same reason.
 * Per group of 16 rows: the 16 fp16 scales of each block b < cols/32 (32
 * bytes per block, padded to 64 bytes), then the quants of each block (a
 * group is one forward stream, as decoding reads it). Quants of block b:
 *   q8_0: 8 vectors of 64 bytes; vector v, lane j (bytes 4j..4j+3) holds
 *         row j's values 4v..4v+3 plus 128 (unsigned, vpdpbusd's first
 *         operand; the activation sum times 128 is subtracted back);
 *   q4_0: 4 vectors; vector h, lane j holds row j's packed bytes qs[4h..4h+3]
 *         as in the file: low nibbles are values 4h.., high ones 16+4h..
 *         (offset 8, subtracted back through 8 x the activation sum).
 *   bf16: no scales; for each pair p < cols/2 one vector: lane j holds row
 *         j's values 2p, 2p+1 (vdpbf16ps multiplies 16 rows by a broadcast
 *         activation pair). As llama.cpp does for bf16 weights, the
 *         activations are rounded to bf16.
 * Rows past the last full group stay in the file layout (cllm_quant_gemm). */
#define CLLM_QUANT_X16_ROWS 16

/* Bytes of `groups` packed groups of cols (multiple of 32) columns. */
size_t cllm_quant_x16_bytes(uint32_t type, int groups, int cols);

/* Packs rows 0 .. 16 * groups - 1 of W (q8_0, q4_0 or bf16, rows row_bytes apart)
 * into dst (cllm_quant_x16_bytes of it, 64-byte aligned for the kernels). */
void cllm_quant_x16_pack(uint32_t type, const void *W, size_t row_bytes, int groups, int cols, void *dst);

/* cllm_quant_gemm on packed weights: out[t * ld_out + r] for r < 16 * groups,
 * groups split over the OpenMP threads. Requires k->gemm_x16. Overwrites out. */
void cllm_quant_gemm_x16(const cllm_quant_kernels *k, uint32_t type, const void *P, int groups, int cols,
                         const void *xq, size_t xq_stride, int n, float *out, size_t ld_out);

/* out[t * ld_out + r] = dot(bf16 row r, bf16(x row t)) for r < 16 * groups,
 * t < n, on bf16 weights packed by cllm_quant_x16_pack: x[n, cols] rounded
 * to bf16 once (per-thread scratch), groups split over the OpenMP threads.
 * Requires k->gemm_x16_bf16 (cols multiple of 32). Overwrites out. */
void cllm_quant_gemm_x16_bf16(const cllm_quant_kernels *k, const void *P, int groups, int cols, const float *x,
                              int n, float *out, size_t ld_out);

/* out[t * ld_out + r] = dot(bf16 row r of W, bf16(x row t)) for r < rows,
 * t < n, W bf16 rows row_bytes apart in the file layout, through oneDNN's
 * bf16 matmul (gemm_bf16_onednn.c): AMX tiles where the CPU and OS offer
 * them, else AVX512-BF16 or AVX-512, threaded by oneDNN. Activations are
 * rounded to bf16 (nearest even), accumulation is f32. Returns 1, or 0
 * having written nothing when oneDNN has no bf16 matmul for this CPU (below
 * AVX-512), memory ran out, or the caller is inside a parallel region. */
int cllm_quant_gemm_bf16_onednn(const cllm_quant_kernels *k, const void *W, size_t row_bytes, int rows, int cols,
                                const float *x, int n, float *out, size_t ld_out);

/* oneDNN's name for the kernel the last new bf16 product shape got
 * ("brg:avx512_core_amx" on AMX, "brg:avx512_core_bf16" here), or "none". */
const char *cllm_quant_bf16_onednn_impl(void);

/* dst[rows, cols] (row stride ld_dst floats) = rows of W dequantized to f32,
 * split over the OpenMP threads. */
void cllm_quant_dequant_rows(const cllm_quant_kernels *k, uint32_t type, const void *W,
                             size_t row_bytes, int rows, int cols, float *dst, size_t ld_dst);

#endif

/*
 * gemm_bf16_onednn.c: every bf16 matrix product that runs through oneDNN's
 * matmul primitive, with one cache of primitives for both users:
 *
 *   - inference (quant.h's cllm_quant_gemm_bf16_onednn): bf16 weight rows
 *     as stored in the file times f32 activations rounded to bf16, the
 *     prompt route for bf16 weights on CPUs with AMX;
 *   - mixed-precision training (kernels.h's cllm_gemm_bf16 through
 *     matmul_bf16.c): any C = alpha op(A) op(B) + beta C whose operands
 *     matmul_bf16.c has rounded to bf16 (or found in its weight mirror).
 *
 * Does: describe the operands to oneDNN where they lie (a transposed
 * operand is the same bytes with swapped strides, so nothing is copied),
 * f32 result and f32 accumulation; alpha becomes an output scale and beta a
 * sum post-op, both baked into the cached primitive. oneDNN picks its kernel
 * from the CPU at run time: AMX tiles (brg:avx512_core_amx_bf16; Debian's
 * libdnnl 2.6 asks Linux for the tile-data permission itself, its
 * amx::is_available calls arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA)) where
 * the CPU and the kernel offer them, else AVX512-BF16 (brg:avx512_core_bf16,
 * ~220 GFLOP/s per core against ~110 for fp32 on the AMD EPYC project
 * machine), else AVX-512 emulation; below AVX-512 it has no bf16 matmul and
 * the call reports 0 so the caller takes its own route. Primitives are cached
 * per (shape, strides, alpha, beta, threads): creating one costs tens of
 * microseconds and a training step runs hundreds of products.
 * Threads: the lock covers the cache only; products run outside it, each
 * thread on its own stream and scratchpad (user scratchpad mode: oneDNN's
 * default shares one buffer between all primitives), so the attention heads' small products can run
 * concurrently from inside an OpenMP loop (oneDNN then uses one thread).
 * Cached primitives are never destroyed while the process runs (a product
 * may be executing one); a shape that finds the cache full gets a primitive
 * of its own for that call.
 * Does not: keep or reorder weights (oneDNN copies the blocks it needs per
 * call), round anything except the inference route's activations.
 */
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cllm/formats/ggml_types.h"
#include "cllm/kernels/quant.h"
#include "kernels_internal.h"

#define BF16_CACHE_SLOTS 256 /* a training step: ~12 linear shapes x 3 products + attention; prompts: chunk lengths */

typedef struct {
    int M, N, K, threads;
    dnnl_dim_t sa[2], sb[2], ldc; /* element strides of A (M x K), B (K x N) and C's rows */
    float alpha, beta;
} prim_key;

typedef struct {
    prim_key key;
    dnnl_primitive_t prim; /* NULL: empty slot */
    dnnl_memory_desc_t src, wei, dst, scratch; /* scratch: the primitive's scratchpad (ours) */
} bf16_prim;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static bf16_prim cache[BF16_CACHE_SLOTS];
static int cache_used;
static dnnl_engine_t engine;    /* created on first use, kept for the process */
static int unavailable;         /* 1 once oneDNN has refused a bf16 matmul on this CPU */
static char impl_name[64];      /* oneDNN's name for the kernel it chose, for reports */
static __thread dnnl_stream_t stream; /* one per thread: products may run concurrently */

/* A primitive for key (cache_lock held): a cached one, or one built into *own
 * (the caller destroys it) when the cache is full; NULL when oneDNN has none. */
static bf16_prim *primitive_for(const prim_key *key, bf16_prim *own) {
    for (int i = 0; i < cache_used; i++)
        if (!memcmp(&cache[i].key, key, sizeof *key)) return &cache[i];
    if (!engine && dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success) return NULL;
    bf16_prim e = {.key = *key};
    const dnnl_dims_t sd = {key->M, key->K}, wd = {key->K, key->N}, dd = {key->M, key->N};
    const dnnl_dims_t as = {key->sa[0], key->sa[1]}, bs = {key->sb[0], key->sb[1]}, ds = {key->ldc, 1};
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    int ok = dnnl_memory_desc_init_by_strides(&e.src, 2, sd, dnnl_bf16, as) == dnnl_success &&
             dnnl_memory_desc_init_by_strides(&e.wei, 2, wd, dnnl_bf16, bs) == dnnl_success &&
             dnnl_memory_desc_init_by_strides(&e.dst, 2, dd, dnnl_f32, ds) == dnnl_success &&
             dnnl_matmul_desc_init(&md, &e.src, &e.wei, NULL, &e.dst) == dnnl_success &&
             dnnl_primitive_attr_create(&attr) == dnnl_success &&
             dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success;
    if (ok && key->alpha != 1.0f) ok = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &key->alpha) == dnnl_success;
    if (ok && key->beta != 0.0f)
        ok = dnnl_post_ops_create(&ops) == dnnl_success && dnnl_post_ops_append_sum(ops, key->beta) == dnnl_success &&
             dnnl_primitive_attr_set_post_ops(attr, ops) == dnnl_success;
    if (ok) ok = dnnl_primitive_desc_create(&pd, &md, attr, engine, NULL) == dnnl_success;
    if (ops) dnnl_post_ops_destroy(ops);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (!ok) return NULL;
    const dnnl_memory_desc_t *scratch = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (scratch) e.scratch = *scratch;
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl)
        snprintf(impl_name, sizeof impl_name, "%s", impl);
    const dnnl_status_t st = dnnl_primitive_create(&e.prim, pd);
    dnnl_primitive_desc_destroy(pd);
    if (st != dnnl_success) return NULL;
    bf16_prim *slot = cache_used < BF16_CACHE_SLOTS ? &cache[cache_used++] : own;
    *slot = e;
    return slot;
}

/* C = alpha A B + beta C on bf16 A, B described by key; 0 when oneDNN cannot. */
static int run_product(const prim_key *key, const uint16_t *A, const uint16_t *B, float *C) {
    bf16_prim own = {0};
    pthread_mutex_lock(&cache_lock);
    bf16_prim *e = unavailable ? NULL : primitive_for(key, &own);
    if (!e) unavailable = 1;
    pthread_mutex_unlock(&cache_lock);
    if (!e) return 0;
    if (!stream && dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success) stream = NULL;
    /* oneDNN's own (library) scratchpad is one buffer shared by every
     * primitive: two threads running products at once would both write it */
    const size_t scratch_bytes = dnnl_memory_desc_get_size(&e->scratch);
    void *scratch = scratch_bytes ? cllm_thread_scratch(CLLM_SCRATCH_ONEDNN, scratch_bytes) : NULL;
    int done = 0;
    dnnl_memory_t ms = NULL, mw = NULL, md = NULL, mp = NULL;
    /* oneDNN reads A and B and never writes them; its API takes plain pointers */
    if (stream && (scratch || !scratch_bytes) &&
        dnnl_memory_create(&ms, &e->src, engine, (void *)(uintptr_t)A) == dnnl_success &&
        dnnl_memory_create(&mw, &e->wei, engine, (void *)(uintptr_t)B) == dnnl_success &&
        dnnl_memory_create(&md, &e->dst, engine, C) == dnnl_success &&
        dnnl_memory_create(&mp, &e->scratch, engine, scratch) == dnnl_success) {
        const dnnl_exec_arg_t args[4] = {
            {DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, md}, {DNNL_ARG_SCRATCHPAD, mp}};
        done = dnnl_primitive_execute(e->prim, stream, 4, args) == dnnl_success &&
               dnnl_stream_wait(stream) == dnnl_success;
    }
    dnnl_memory_destroy(ms);
    dnnl_memory_destroy(mw);
    dnnl_memory_destroy(md);
    dnnl_memory_destroy(mp);
    if (e == &own) dnnl_primitive_destroy(own.prim);
    return done;
}

int cllm_kernels_gemm_bf16_onednn(int trans_a, int trans_b, int M, int N, int K, float alpha, const uint16_t *A,
                                  int lda, const uint16_t *B, int ldb, float beta, float *C, int ldc) {
    prim_key key;
    memset(&key, 0, sizeof key); /* the key is compared bytewise */
    key.M = M, key.N = N, key.K = K;
    key.threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    key.sa[0] = trans_a ? 1 : lda, key.sa[1] = trans_a ? lda : 1;
    key.sb[0] = trans_b ? 1 : ldb, key.sb[1] = trans_b ? ldb : 1;
    key.ldc = ldc, key.alpha = alpha, key.beta = beta;
    return run_product(&key, A, B, C);
}

/* y = x rounded to bf16, by token rows over the threads. */
static void round_rows(const cllm_quant_kernels *k, const float *x, uint16_t *y, int n, int cols) {
#pragma omp parallel for schedule(static) if ((size_t)n * (size_t)cols >= ((size_t)1 << 16))
    for (int t = 0; t < n; t++) {
        const float *xr = x + (size_t)t * (size_t)cols;
        uint16_t *yr = y + (size_t)t * (size_t)cols;
        if (k->round_bf16)
            k->round_bf16(xr, yr, cols);
        else
            for (int i = 0; i < cols; i++) yr[i] = cllm_fp32_to_bf16(xr[i]);
    }
}

int cllm_quant_gemm_bf16_onednn(const cllm_quant_kernels *k, const void *W, size_t row_bytes, int rows, int cols,
                                const float *x, int n, float *out, size_t ld_out) {
    if (!k) k = cllm_quant_kernels_get();
    CLLM_ASSERT(row_bytes % 2 == 0 && rows > 0 && cols > 0 && n > 0);
    if (omp_in_parallel()) return 0; /* oneDNN would run on one thread: the caller's route is better */
    uint16_t *xb = cllm_thread_scratch(CLLM_SCRATCH_PRODUCT_ACT, (size_t)n * (size_t)cols * sizeof(uint16_t));
    if (!xb) return 0;
    round_rows(k, x, xb, n, cols);
    /* out[n, rows] = xb[n, cols] W^T: the weights' file rows are B transposed */
    return cllm_kernels_gemm_bf16_onednn(0, 1, n, rows, cols, 1.0f, xb, cols, W, (int)(row_bytes / 2), 0.0f, out,
                                         (int)ld_out);
}

const char *cllm_quant_bf16_onednn_impl(void) { return impl_name[0] ? impl_name : "none"; }

/*
 * kv_cache.c: the key/value cache of incremental decoding: writing a
 * position's rows (model_kv_store), attending to them (model_kv_attend),
 * copying a slot's positions (cllm_model_kv_copy), its length and reset.
 * The decode pass that calls these is decode.c's.
 *
 * Layout: per cache type, rows [L, slots, kv_context, row] where a row is
 * one position's NKV*HS keys (or values):
 *   f32 (default): k, v hold NKV*HS floats per row;
 *   q8_0 (llama.cpp's --cache-type-k/-v q8_0): kq, vq hold NKV*HS/32 q8_0
 *     blocks (fp16 scale + 32 int8), quantized by the kernels' activation
 *     quantizer when a position is stored;
 *   f16 (llama.cpp's default type): kq, vq hold NKV*HS fp16 values (round
 *     to nearest even), half the f32 bytes.
 * Buffers are sized at creation (tensors.c); nothing allocates per token.
 * Rewinding only moves the slot length: stale rows are overwritten.
 *
 * Attention, by the shape of the rows (model_decode_rows):
 * - one row per query (single-token decode, batched decode, prompt rows of
 *   several slots): per row and head, the kernels of kv_attn.h over the
 *   row's slot: cllm_kv_attend_f32 on the f32 cache (several heads at once,
 *   positions outer); on q8_0 the query is quantized to q8_0 too and scored
 *   with exact integer dots per block (cllm_kv_attend_q8_0: the same choice
 *   as llama.cpp's CPU flash attention, where the query takes the key
 *   type's vec_dot_type; no key is ever converted to float, and the query's
 *   own rounding, at most 1/254 of its block max, is the same size as the
 *   key's), values summed in f32 as o += (p_j * d_j) * q_j; on f16 the f32
 *   query against the widened rows (cllm_kv_attend_f16).
 * - a chunk of n > 1 consecutive positions of one slot (a prompt): causal
 *   attention through GEMMs per KV head; q8_0 / f16 rows are widened one KV
 *   head at a time into f32 scratch first, so a chunk sees exactly the
 *   stored values (tests/test_kv_cache.c checks the two paths agree).
 * Sliding window (cfg.sliding_window > 0): the query at position p attends
 * to cached positions p - window + 1 .. p only (window_start); the cache
 * still keeps every position.
 * Not here: the block loop (decode.c), sampling (src/infer).
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "cllm/formats/ggml_types.h"
#include "cllm/kernels/kernels.h"
#include "cllm/kernels/kv_attn.h"
#include "cllm/kernels/quant.h"
#include "model_internal.h"

/* First cached position a query at position p attends to. */
static int window_start(const cllm_model *m, int p) {
    const int w = m->cfg.sliding_window;
    return w > 0 && p - w + 1 > 0 ? p - w + 1 : 0;
}

/* Offset (floats for f32, bytes for q8_0 / f16; unit = rowb) of position 0
 * of `slot` in layer l's cache. */
static size_t slot_base(const cllm_model *m, int l, int slot, size_t rowb) {
    return ((size_t)l * (size_t)m->opts.kv_slots + (size_t)slot) * (size_t)m->opts.kv_context * rowb;
}

/* Causal attention of a chunk of n > 1 queries through GEMMs for the query
 * heads of KV head kvh: S = scale * Q K^T over the cached positions
 * 0..pos+n-1, a masked softmax per row, then O = P V. K and V are f32 rows
 * [pos+n, HS] with row stride ld. The scalar loop would make prompt
 * processing quadratic in scalar code (most of a 512-token prompt's time).
 * Uses m->kv.scores as [n, kv_context] (sized max(NH, max_seq) rows). */
static void chunk_group(cllm_model *m, float *out, const float *qkv, const float *K, const float *V, int ld, int kvh,
                        int n, int pos) {
    const int NH = m->cfg.n_head, HS = m->HS, group = NH / m->cfg.n_kv_head, total = pos + n, C = NH * HS;
    const float scale = 1.0f / sqrtf((float)HS);
    float *S = m->kv.scores; /* [n, total], row stride total */
    for (int h = kvh * group; h < (kvh + 1) * group; h++) {
        cllm_sgemm(0, 1, n, total, HS, scale, qkv + (size_t)h * HS, m->QKV, K, ld, 0.0f, S, total);
#pragma omp parallel for schedule(static) if ((long)n * total >= 16384)
        for (int i = 0; i < n; i++) {
            float *row = S + (size_t)i * total;
            const int valid = pos + i + 1, lo = window_start(m, pos + i); /* causal: keys lo..pos+i */
            const float mx = cllm_vmax(row + lo, (size_t)(valid - lo));
            const float inv = (float)(1.0 / cllm_vexp_shift_sum(row + lo, row + lo, mx, (size_t)(valid - lo)));
            for (int j = 0; j < lo; j++) row[j] = 0.0f;
            for (int j = lo; j < valid; j++) row[j] *= inv;
            for (int j = valid; j < total; j++) row[j] = 0.0f;
        }
        cllm_sgemm(0, 0, n, HS, total, 1.0f, S, total, V, ld, 0.0f, out + (size_t)h * HS, C);
    }
}

/* A chunk against one slot's f32 cache kc, vc [kv_context, NKV*HS]: the
 * GEMMs read each KV head's columns in place. */
static void chunk_attention(cllm_model *m, float *out, const float *qkv, const float *kc, const float *vc,
                            int n, int pos) {
    const int NKV = m->cfg.n_kv_head, HS = m->HS;
    for (int kvh = 0; kvh < NKV; kvh++)
        chunk_group(m, out, qkv, kc + (size_t)kvh * HS, vc + (size_t)kvh * HS, NKV * HS, kvh, n, pos);
}

/* Bytes of one KV head's values in a q8_0 or f16 cache row (a row holds NKV heads). */
static size_t packed_head_bytes(const cllm_model *m) { return model_kv_row_bytes(m) / (size_t)m->cfg.n_kv_head; }

/* The same against a q8_0 or f16 cache: each KV head's rows 0..pos+n-1 are
 * widened into kv.kdq / kv.vdq [total, HS] first (exactly the stored values). */
static void chunk_attention_packed(cllm_model *m, float *out, const float *qkv, const uint8_t *kc,
                                   const uint8_t *vc, int n, int pos) {
    const int NKV = m->cfg.n_kv_head, HS = m->HS, total = pos + n;
    const size_t headb = packed_head_bytes(m), rowb = (size_t)NKV * headb;
    const cllm_quant_kernels *qk = cllm_quant_kernels_get();
    void (*widen)(const void *, float *, int64_t) =
        m->opts.kv_type == CLLM_GGML_Q8_0 ? qk->dequant_q8_0 : qk->dequant_f16;
    float *K = m->kv.kdq, *V = m->kv.vdq;
    for (int kvh = 0; kvh < NKV; kvh++) {
#pragma omp parallel for schedule(static) if ((long)total * HS >= 65536)
        for (int j = 0; j < total; j++) {
            widen(kc + (size_t)j * rowb + (size_t)kvh * headb, K + (size_t)j * HS, HS);
            widen(vc + (size_t)j * rowb + (size_t)kvh * headb, V + (size_t)j * HS, HS);
        }
        chunk_group(m, out, qkv, K, V, HS, kvh, n, pos);
    }
}

/* Single-token attention on a q8_0 or f16 cache: each (row, head) runs
 * cllm_kv_attend_q8_0 (the row's query heads quantized to q8_0 in kv.qq
 * first; integer score dots) or cllm_kv_attend_f16 (the f32 query against
 * widened fp16 rows), softmax and an f32 value sum, over its slot's
 * positions 0..pos. Row i reads its slot's rows of layer l's kq / vq.
 * out[n, NH*HS]. */
static void attention_rows_packed(cllm_model *m, int l, float *out, const float *qkv, const model_decode_rows *rows) {
    const uint8_t *kcache = m->kv.kq, *vcache = m->kv.vq;
    const int n = rows->n;
    const int NH = m->cfg.n_head, NKV = m->cfg.n_kv_head, HS = m->HS, group = NH / NKV;
    const size_t ctx = (size_t)m->opts.kv_context, QKV = (size_t)m->QKV;
    const size_t headb = packed_head_bytes(m), rowb = (size_t)NKV * headb;
    const float scale = 1.0f / sqrtf((float)HS);
    const int q8 = m->opts.kv_type == CLLM_GGML_Q8_0;
    const cllm_quant_kernels *qk = cllm_quant_kernels_get();
    if (q8)
        for (int i = 0; i < n; i++)
            for (int h = 0; h < NH; h++)
                qk->quantize_q8_0(qkv + (size_t)i * QKV + (size_t)h * HS, m->kv.qq + ((size_t)i * NH + h) * headb, HS);
    long work = 0;
    for (int i = 0; i < n; i++) work += (long)(model_row_pos(rows, i) + 1) * NH * HS;
#pragma omp parallel for schedule(static) if (work >= 16384)
    for (int h = 0; h < NH; h++) {
        const size_t hoff = (size_t)(h / group) * headb;
        for (int i = 0; i < n; i++) {
            const int lo = window_start(m, model_row_pos(rows, i)), np = model_row_pos(rows, i) + 1 - lo;
            const size_t base = slot_base(m, l, model_row_slot(rows, i), rowb) + (size_t)lo * rowb;
            float *o = out + (size_t)i * (size_t)(NH * HS) + (size_t)h * HS, *sc = m->kv.scores + (size_t)h * ctx;
            if (q8)
                cllm_kv_attend_q8_0(o, sc, m->kv.qq + ((size_t)i * NH + h) * headb, kcache + base + hoff,
                                    vcache + base + hoff, rowb, np, HS, scale);
            else
                cllm_kv_attend_f16(o, sc, qkv + (size_t)i * QKV + (size_t)h * HS, kcache + base + hoff,
                                   vcache + base + hoff, rowb, np, HS, scale);
        }
    }
}

/* Below this many query x cached-position x head-dim products (a few
 * microseconds vectorized) attention stays on the calling thread: a
 * fork/join costs microseconds when the other core is idle and much more
 * when it is busy. At 2^18 one decoded token of a 768-wide model attended
 * on one thread up to position 341, 7% of a 2-thread q4_0 decode step with
 * the other thread waiting; at 2^14 it splits from position ~21 (Llama
 * 110M q4_0, 2 threads: ~460 -> ~500 tokens/s). */
#define ATTN_PAR_MIN (1L << 14)

/* Single-token attention on the f32 cache: every row's query heads against
 * its own slot's rows through cllm_kv_attend_f32. Work items are whole rows
 * when there are at least as many rows as threads, else (row, K/V head)
 * pairs, so one row's attention still spreads over the threads. One
 * parallel region per layer (a fork/join costs microseconds, far more when
 * the other core is busy). Thread t uses its own rows of m->kv.scores
 * ([max(NH, max_seq), ctx]), which bounds the thread count. out[n, NH*HS]. */
static void attention_rows_f32(cllm_model *m, int l, float *out, const float *qkv, const model_decode_rows *rows) {
    const int NH = m->cfg.n_head, NKV = m->cfg.n_kv_head, HS = m->HS, KVW = NKV * HS, n = rows->n;
    const int G = NH / NKV;
    const size_t ctx = (size_t)m->opts.kv_context, QKV = (size_t)m->QKV;
    const float scale = 1.0f / sqrtf((float)HS);
    const int scratch_rows = NH > m->opts.max_seq ? NH : m->opts.max_seq;
    int threads = omp_get_max_threads();
    const int nk = n >= threads ? NKV : 1; /* K/V heads per item */
    if (threads > scratch_rows / (nk * G)) threads = scratch_rows / (nk * G);
    long work = 0;
    for (int i = 0; i < n; i++) work += (long)(model_row_pos(rows, i) + 1) * NH * HS;
    const int per_row = NKV / nk, items = n * per_row;
#pragma omp parallel for schedule(static) num_threads(threads) if (work >= ATTN_PAR_MIN && threads > 1)
    for (int it = 0; it < items; it++) {
        const int i = it / per_row, k0 = (it % per_row) * nk;
        const int lo = window_start(m, model_row_pos(rows, i));
        const size_t base = slot_base(m, l, model_row_slot(rows, i), (size_t)KVW) + (size_t)lo * (size_t)KVW;
        float *sc = m->kv.scores + (size_t)omp_get_thread_num() * (size_t)(nk * G) * ctx;
        const size_t kvo = (size_t)k0 * (size_t)HS, qo = (size_t)k0 * (size_t)G * (size_t)HS;
        cllm_kv_attend_f32(out + (size_t)i * (size_t)(NH * HS) + qo, sc, ctx, qkv + (size_t)i * QKV + qo,
                           m->kv.k + base + kvo, m->kv.v + base + kvo, (size_t)KVW, model_row_pos(rows, i) + 1 - lo, nk,
                           G, HS, scale);
    }
}

void model_kv_store(cllm_model *m, int l, int slot, int pos, const float *kvrow) {
    const size_t KVW = (size_t)m->cfg.n_kv_head * (size_t)m->HS, ctx = (size_t)m->opts.kv_context;
    const size_t cell = ((size_t)l * (size_t)m->opts.kv_slots + (size_t)slot) * ctx + (size_t)pos;
    if (m->opts.kv_type == CLLM_GGML_F32) {
        memcpy(m->kv.k + cell * KVW, kvrow, KVW * sizeof(float));
        memcpy(m->kv.v + cell * KVW, kvrow + KVW, KVW * sizeof(float));
        return;
    }
    const size_t rowb = model_kv_row_bytes(m);
    uint8_t *kd = m->kv.kq + cell * rowb, *vd = m->kv.vq + cell * rowb;
    const cllm_quant_kernels *qk = cllm_quant_kernels_get();
    if (m->opts.kv_type == CLLM_GGML_Q8_0) {
        qk->quantize_q8_0(kvrow, kd, (int64_t)KVW);
        qk->quantize_q8_0(kvrow + KVW, vd, (int64_t)KVW);
    } else { /* f16 */
        qk->round_f16(kvrow, (uint16_t *)(void *)kd, (int64_t)KVW);
        qk->round_f16(kvrow + KVW, (uint16_t *)(void *)vd, (int64_t)KVW);
    }
}

void model_kv_attend(cllm_model *m, int l, float *out, const float *qkv, const model_decode_rows *rows) {
    const int packed = m->opts.kv_type != CLLM_GGML_F32; /* q8_0 or f16 rows in kq / vq */
    if (!rows->slots && rows->n > 1) { /* a prompt chunk of one slot */
        const size_t cell0 = slot_base(m, l, rows->slot, 1);
        if (packed) {
            const size_t rowb = model_kv_row_bytes(m);
            chunk_attention_packed(m, out, qkv, m->kv.kq + cell0 * rowb, m->kv.vq + cell0 * rowb, rows->n,
                                   rows->pos0);
        } else {
            const size_t KVW = (size_t)m->cfg.n_kv_head * (size_t)m->HS;
            chunk_attention(m, out, qkv, m->kv.k + cell0 * KVW, m->kv.v + cell0 * KVW, rows->n, rows->pos0);
        }
    } else if (packed) {
        attention_rows_packed(m, l, out, qkv, rows);
    } else {
        attention_rows_f32(m, l, out, qkv, rows);
    }
}

/* Copies the cached positions of one KV slot into another, so sequences
 * that share a prompt prefill it once (the RL rollouts' groups). Copies the
 * stored bytes of either cache type, so the copy is exact; slots never
 * share memory (later writes to one do not touch the other). */
cllm_status cllm_model_kv_copy(cllm_model *m, int dst, int src, int n, cllm_error *err) {
    const int S = m->opts.kv_slots;
    if (S <= 0 || !m->kv_len)
        return cllm_error_set(err, CLLM_ERR_ARG, "model kv copy: the model was created without a KV cache");
    if (src < 0 || src >= S || dst < 0 || dst >= S)
        return cllm_error_set(err, CLLM_ERR_ARG, "model kv copy: slots %d -> %d outside [0, %d)", src, dst, S);
    if (n < 0 || n > m->kv_len[src])
        return cllm_error_set(err, CLLM_ERR_ARG, "model kv copy: %d positions but slot %d holds %d", n, src,
                              m->kv_len[src]);
    if (dst == src) return CLLM_OK;
    const size_t ctx = (size_t)m->opts.kv_context, cellb = model_kv_row_bytes(m);
    const int packed = m->opts.kv_type != CLLM_GGML_F32; /* q8_0 or f16 rows in kq / vq */
    uint8_t *kb = packed ? m->kv.kq : (uint8_t *)m->kv.k;
    uint8_t *vb = packed ? m->kv.vq : (uint8_t *)m->kv.v;
    for (int l = 0; l < m->cfg.n_layer; l++) {
        const size_t s0 = ((size_t)l * (size_t)S + (size_t)src) * ctx * cellb;
        const size_t d0 = ((size_t)l * (size_t)S + (size_t)dst) * ctx * cellb;
        memcpy(kb + d0, kb + s0, (size_t)n * cellb);
        memcpy(vb + d0, vb + s0, (size_t)n * cellb);
    }
    m->kv_len[dst] = n;
    return CLLM_OK;
}

int cllm_model_kv_length(const cllm_model *m, int slot) {
    return m->kv_len && slot >= 0 && slot < m->opts.kv_slots ? m->kv_len[slot] : 0;
}

void cllm_model_kv_reset(cllm_model *m, int slot) {
    if (m->kv_len && slot >= 0 && slot < m->opts.kv_slots) m->kv_len[slot] = 0;
}

/*
 * kv_copy.c: copying the cached positions of one KV slot into another
 * (cllm_model_kv_copy), so sequences that share a prompt prefill it once:
 * the RL rollouts' groups (GRPO samples several completions per prompt).
 * Works on either cache type (f32 rows or q8_0 blocks) by copying the stored
 * bytes, so the copy is exact. Does not: decode, or share memory between
 * slots (each slot keeps its own rows; later writes to one do not touch the
 * other).
 */
#include <string.h>

#include "cllm/ggml_types.h"
#include "model_internal.h"

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

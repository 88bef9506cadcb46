/*
 * segments.c: packed sequences. Several examples share one row of T
 * positions; seg[B,T] names the example of each position (contiguous runs).
 * cllm_model_forward_packed stores the ids so that forward and backward
 * (a) keep attention inside each run (cllm_attention_forward_seg) and
 * (b) restart positions at 0 at each run's start, for learned/sinusoidal
 * position tables (added here instead of by the embedding layer) and for
 * RoPE (applied run by run with the layer's pos0 = 0). A packed row then
 * computes exactly what its examples compute alone.
 * Does not: build the rows (sft.c) or change the unpacked path.
 */
#include <stdlib.h>
#include <string.h>

#include "cllm/layers/layers.h"
#include "cllm/model/model.h"
#include "model_internal.h"

cllm_status cllm_model_forward_packed(cllm_model *m, const int32_t *tokens, const int32_t *targets,
                                      const int32_t *seg, int B, int T, float *loss, cllm_error *err) {
    if (!seg) return cllm_model_forward(m, tokens, targets, B, T, loss, err);
    if (B < 1 || B > m->opts.max_batch || T < 1 || T > m->opts.max_seq)
        return cllm_error_set(err, CLLM_ERR_LIMIT,
                              "model forward: B = %d, T = %d outside the model's limits (max_batch %d, max_seq %d)",
                              B, T, m->opts.max_batch, m->opts.max_seq);
    if (!m->seg) {
        m->seg = malloc((size_t)m->opts.max_batch * (size_t)m->opts.max_seq * sizeof *m->seg);
        if (!m->seg) return cllm_error_set(err, CLLM_ERR_NOMEM, "model forward: out of memory for segment ids");
    }
    memcpy(m->seg, seg, (size_t)B * (size_t)T * sizeof *seg);
    m->seg_pending = 1;
    return cllm_model_forward(m, tokens, targets, B, T, loss, err);
}

/* Position of (b, t) inside its run. */
static int run_pos(const int32_t *sg, int t) {
    int s = t;
    while (s > 0 && sg[s - 1] == sg[t]) s--;
    return t - s;
}

void model_seg_add_pos(const cllm_model *m, float *x, const float *pos_table, int B, int T) {
    const int C = m->cfg.n_embd;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const float *p = pos_table + (size_t)run_pos(m->seg + (size_t)b * T, t) * C;
            float *o = x + ((size_t)b * T + t) * C;
            for (int c = 0; c < C; c++) o[c] += p[c];
        }
}

void model_seg_pos_backward(const cllm_model *m, float *dpos, const float *dx, int B, int T) {
    const int C = m->cfg.n_embd;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            float *p = dpos + (size_t)run_pos(m->seg + (size_t)b * T, t) * C;
            const float *d = dx + ((size_t)b * T + t) * C;
            for (int c = 0; c < C; c++) p[c] += d[c];
        }
}

void model_seg_rope(const cllm_model *m, float *qkv, int B, int T, int backward) {
    const size_t S = (size_t)m->QKV;
    for (int b = 0; b < B; b++) {
        const int32_t *sg = m->seg + (size_t)b * T;
        for (int t0 = 0; t0 < T;) {
            int t1 = t0 + 1;
            while (t1 < T && sg[t1] == sg[t0]) t1++;
            model_rope(m, qkv + ((size_t)b * T + t0) * S, 1, t1 - t0, S, 0, backward);
            t0 = t1;
        }
    }
}

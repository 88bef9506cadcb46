/*
 * rl_losses.c: the preference-tuning objectives as pure functions of small
 * arrays, each returning its mean and writing the gradient of that mean:
 * Bradley-Terry (reward model), DPO, PPO's clipped policy and value losses,
 * GAE, and GRPO's group-normalised advantages and per-token loss.
 *
 * Numerics: softplus(x) = max(x,0) + log1p(exp(-|x|)) and the sigmoid
 * written for either sign never overflow, so identical pairs (z = 0), huge
 * margins and long sequences (sums of thousands of log-probs, kept in
 * double) stay finite. Checked against PyTorch (tests/reference/
 * rlhf_reference.py) and by finite differences (tests/test_rlhf_losses.c).
 * Does not: touch a model (the callers turn these gradients into
 * cllm_model_backward_heads calls).
 */
#include <math.h>

#include "cllm/train/rlhf.h"

static double softplus(double x) { return (x > 0 ? x : 0.0) + log1p(exp(-fabs(x))); }
static double sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

double cllm_bt_loss(const float *r_chosen, const float *r_rejected, int n, float *d_chosen,
                    float *d_rejected, int *n_correct) {
    double total = 0;
    int correct = 0;
    for (int i = 0; i < n; i++) {
        double z = (double)r_chosen[i] - (double)r_rejected[i];
        total += softplus(-z);
        correct += z > 0;
        double g = -sigmoid(-z) / n; /* d softplus(-z) / dz, over the mean */
        if (d_chosen) d_chosen[i] = (float)g;
        if (d_rejected) d_rejected[i] = (float)-g;
    }
    if (n_correct) *n_correct = correct;
    return n > 0 ? total / n : 0.0;
}

double cllm_dpo_loss(const double *pi_c, const double *pi_r, const double *ref_c, const double *ref_r,
                     int n, double beta, double *d_pi_c, double *d_pi_r, cllm_dpo_stats *st) {
    double total = 0, rc_sum = 0, rr_sum = 0, acc = 0;
    for (int i = 0; i < n; i++) {
        double rc = beta * (pi_c[i] - ref_c[i]), rr = beta * (pi_r[i] - ref_r[i]);
        double z = rc - rr;
        total += softplus(-z);
        rc_sum += rc;
        rr_sum += rr;
        acc += rc > rr;
        double g = -sigmoid(-z) / n;
        if (d_pi_c) d_pi_c[i] = beta * g;
        if (d_pi_r) d_pi_r[i] = -beta * g;
    }
    double loss = n > 0 ? total / n : 0.0;
    if (st) {
        st->loss = loss;
        st->reward_chosen = n ? rc_sum / n : 0;
        st->reward_rejected = n ? rr_sum / n : 0;
        st->margin = st->reward_chosen - st->reward_rejected;
        st->accuracy = n ? acc / n : 0;
    }
    return loss;
}

void cllm_gae(const float *rewards, const float *values, int T, float gamma, float lam, float *adv,
              float *ret) {
    double next_adv = 0, next_value = 0;
    for (int t = T - 1; t >= 0; t--) {
        double delta = (double)rewards[t] + gamma * next_value - (double)values[t];
        next_adv = delta + (double)gamma * lam * next_adv;
        adv[t] = (float)next_adv;
        ret[t] = (float)(next_adv + values[t]);
        next_value = values[t];
    }
}

double cllm_ppo_policy_loss(const float *logp, const float *old_logp, const float *adv, int n, float eps,
                            float *dlogp, cllm_ppo_stats *st) {
    double total = 0, clipped = 0, kl = 0;
    for (int i = 0; i < n; i++) {
        double lr = (double)logp[i] - (double)old_logp[i];
        double r = exp(lr), a = adv[i];
        double rc = r < 1 - eps ? 1 - eps : r > 1 + eps ? 1 + eps : r;
        double l1 = -a * r, l2 = -a * rc;
        /* the max picks the clipped branch (zero gradient) only when it is
         * strictly larger, as torch.max's gradient goes to the first argument on ties */
        int use_clip = l2 > l1;
        total += use_clip ? l2 : l1;
        clipped += use_clip;
        kl += (r - 1) - lr;
        if (dlogp) dlogp[i] = use_clip ? 0.0f : (float)(-a * r / n);
    }
    double loss = n ? total / n : 0;
    if (st) {
        st->policy_loss = loss;
        st->clip_frac = n ? clipped / n : 0;
        st->approx_kl = n ? kl / n : 0;
    }
    return loss;
}

double cllm_ppo_value_loss(const float *v, const float *v_old, const float *ret, int n, float eps,
                           float *dv, cllm_ppo_stats *st) {
    double total = 0;
    for (int i = 0; i < n; i++) {
        double d = (double)v[i] - v_old[i];
        double dc = d < -eps ? -eps : d > eps ? eps : d;
        double vc = v_old[i] + dc;
        double e1 = (double)v[i] - ret[i], e2 = vc - ret[i];
        int use_clip = e2 * e2 > e1 * e1;
        total += 0.5 * (use_clip ? e2 * e2 : e1 * e1);
        if (dv) {
            /* d vc / d v is 1 inside the clip range, 0 outside */
            double g = use_clip ? (fabs(d) < eps ? e2 : 0.0) : e1;
            dv[i] = (float)(g / n);
        }
    }
    double loss = n ? total / n : 0;
    if (st) st->value_loss = loss;
    return loss;
}

void cllm_grpo_advantages(const float *rewards, int n_groups, int group_size, float *adv) {
    for (int g = 0; g < n_groups; g++) {
        const float *r = rewards + (size_t)g * group_size;
        double mean = 0, var = 0;
        for (int i = 0; i < group_size; i++) mean += r[i];
        mean /= group_size;
        for (int i = 0; i < group_size; i++) var += (r[i] - mean) * (r[i] - mean);
        double sd = sqrt(var / group_size);
        for (int i = 0; i < group_size; i++)
            adv[(size_t)g * group_size + i] = (float)((r[i] - mean) / (sd + 1e-4));
    }
}

double cllm_grpo_loss(const float *logp, const float *old_logp, const float *ref_logp, const float *adv,
                      int n, float eps, float beta, float *dlogp, cllm_grpo_stats *st) {
    cllm_ppo_stats ps;
    double pl = cllm_ppo_policy_loss(logp, old_logp, adv, n, eps, dlogp, &ps);
    double kl = 0;
    for (int i = 0; i < n; i++) {
        double d = (double)ref_logp[i] - (double)logp[i];
        double e = exp(d);
        kl += e - d - 1;
        if (dlogp) dlogp[i] += (float)(beta * (1.0 - e) / n); /* d k3 / d logp = -e + 1 */
    }
    kl = n ? kl / n : 0;
    double loss = pl + beta * kl;
    if (st) {
        st->loss = loss;
        st->kl = kl;
        st->clip_frac = ps.clip_frac;
    }
    return loss;
}

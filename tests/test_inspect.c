/*
 * test_inspect.c: cllm_model_attention (src/model/inspect.c): every layer's
 * probabilities are available after a training-mode forward, each row is a
 * causal distribution, layers differ, and the accessor refuses models
 * without saved activations, missing forwards and bad layer numbers.
 */
#include <math.h>
#include <string.h>

#include "cllm/model/model.h"
#include "test.h"

static cllm_model *tiny(int training) {
    cllm_model_config cfg;
    cllm_error err;
    CHECK(cllm_model_preset("tiny-gpt2", &cfg, &err) == CLLM_OK, "%s", err.msg);
    cfg.vocab_size = 64;
    cllm_model_options o = cllm_model_default_options();
    o.max_seq = 12;
    o.training = training;
    cllm_model *m = NULL;
    CHECK(cllm_model_create(&cfg, &o, &m, &err) == CLLM_OK, "%s", err.msg);
    if (m) cllm_model_init_weights(m, 3);
    return m;
}

static void test_inspect_attention_rows(void) {
    cllm_model *m = tiny(1);
    if (!m) return;
    CHECK(cllm_model_attention(m, 0, NULL, NULL, NULL) == NULL, "no forward yet");
    int32_t tok[10];
    for (int i = 0; i < 10; i++) tok[i] = (i * 5 + 1) % 64;
    cllm_error err;
    CHECK(cllm_model_forward(m, tok, NULL, 1, 10, NULL, &err) == CLLM_OK, "%s", err.msg);
    const int L = cllm_model_get_config(m)->n_layer;
    const float *first = NULL;
    for (int l = 0; l < L; l++) {
        int B = 0, T = 0, NH = 0;
        const float *att = cllm_model_attention(m, l, &B, &T, &NH);
        CHECK(att && B == 1 && T == 10 && NH == cllm_model_get_config(m)->n_head, "layer %d shape", l);
        if (!att) continue;
        double worst = 0;
        int above = 0;
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < T; i++) {
                double s = 0;
                for (int j = 0; j < T; j++) {
                    float p = att[((size_t)h * T + i) * T + j];
                    if (j > i) above += p != 0.0f;
                    else s += p;
                }
                worst = fmax(worst, fabs(s - 1));
            }
        /* float softmax rows: 1e-5 */
        CHECK(worst < 1e-5, "layer %d rows sum to 1 (worst error %g)", l, worst);
        CHECK(above == 0, "layer %d: %d weights above the diagonal", l, above);
        CHECK(att[0] == 1.0f || fabsf(att[0] - 1.0f) < 1e-6f, "the first token attends only to itself");
        if (l == 0) first = att;
        else CHECK(att != first && memcmp(att, first, sizeof(float) * 100) != 0, "layer %d has its own buffer", l);
    }
    CHECK(cllm_model_attention(m, L, NULL, NULL, NULL) == NULL, "layer L out of range");
    CHECK(cllm_model_attention(m, -1, NULL, NULL, NULL) == NULL, "layer -1 out of range");
    cllm_model_destroy(m);
    m = tiny(0);
    if (m) {
        CHECK(cllm_model_forward(m, tok, NULL, 1, 10, NULL, &err) == CLLM_OK, "%s", err.msg);
        CHECK(cllm_model_attention(m, 0, NULL, NULL, NULL) == NULL, "inference models keep no probabilities");
    }
    cllm_model_destroy(m);
}

int main(void) {
    TEST_RUN(test_inspect_attention_rows);
    return test_finish();
}

/*
 * routes.c: the routes answered on the network thread without the model
 * (/health, /metrics, /v1/models, /tokenize, /detokenize, the chat page)
 * and the URL table that picks one (srv_route_simple).
 *
 * Not here: generation and embedding requests (parsed in request.c, run by
 * scheduler.c, answered by render.c), sockets and limits (http.c).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/infer/chat_template.h"
#include "server_internal.h"

#define BAD(param, ...) srv_error(400, "invalid_request_error", param, NULL, __VA_ARGS__)

static srv_reply route_tokenize(cllm_server *s, const char *body, size_t len) {
    cJSON *root = NULL;
    srv_reply e = srv_parse_root(body, len, &root);
    if (!root) return e;
    cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "content");
    /* llama.cpp's meanings: parse_special turns special-token text into
     * those tokens; add_special puts the vocabulary's BOS token first (when
     * it has one: <|begin_of_text|> or <s>; byte and GPT-2 vocabularies have
     * none). */
    int add_special = 0, parse_special = 0, pieces = 0;
    if (!cJSON_IsString(c)) {
        cJSON_Delete(root);
        return BAD("content", "'content' is required and must be a string");
    }
    if (srv_opt_bool(root, "add_special", &add_special, &e) || srv_opt_bool(root, "parse_special", &parse_special, &e) ||
        srv_opt_bool(root, "with_pieces", &pieces, &e)) {
        cJSON_Delete(root);
        return e;
    }
    cllm_tokens toks = {0};
    cllm_special_set all = {1, NULL, 0};
    cllm_error err;
    int64_t bos = cllm_tokenizer_special_id(s->tok, "<|begin_of_text|>");
    if (bos < 0) bos = cllm_tokenizer_special_id(s->tok, "<s>");
    if ((add_special && bos >= 0 && cllm_tokens_push(&toks, (uint32_t)bos, &err) != CLLM_OK) ||
        cllm_tokenizer_encode(s->tok, c->valuestring, strlen(c->valuestring), parse_special ? &all : NULL, &toks,
                              &err) != CLLM_OK) {
        cllm_tokens_free(&toks);
        cJSON_Delete(root);
        return BAD("content", "%s", err.msg);
    }
    cJSON_Delete(root);
    cJSON *o = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(o, "tokens");
    for (size_t i = 0; i < toks.n; i++) {
        if (pieces) {
            cJSON *p = cJSON_CreateObject();
            cJSON_AddNumberToObject(p, "id", toks.ids[i]);
            cJSON_AddItemToObject(p, "piece", srv_token_text(s->tok, (int32_t)toks.ids[i]));
            cJSON_AddItemToArray(a, p);
        } else {
            cJSON_AddItemToArray(a, cJSON_CreateNumber(toks.ids[i]));
        }
    }
    cllm_tokens_free(&toks);
    return srv_reply_json(o);
}

static srv_reply route_detokenize(cllm_server *s, const char *body, size_t len) {
    cJSON *root = NULL;
    srv_reply e = srv_parse_root(body, len, &root);
    if (!root) return e;
    cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "tokens");
    if (!cJSON_IsArray(t)) {
        cJSON_Delete(root);
        return BAD("tokens", "'tokens' is required and must be an array of token ids");
    }
    int n = cJSON_GetArraySize(t), i = 0;
    uint32_t *ids = malloc(((size_t)n + 1) * sizeof *ids);
    cJSON *it;
    cJSON_ArrayForEach(it, t) {
        if (!ids || !cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) || it->valuedouble < 0 ||
            it->valuedouble >= s->V) {
            free(ids);
            cJSON_Delete(root);
            char param[32];
            snprintf(param, sizeof param, "tokens[%d]", i);
            return BAD(param, "'%s' is not a token id in [0, %d)", param, s->V);
        }
        ids[i++] = (uint32_t)it->valuedouble;
    }
    cJSON_Delete(root);
    char *text = NULL;
    size_t tl = 0;
    cllm_error err;
    if (cllm_tokenizer_decode(s->tok, ids, (size_t)n, &text, &tl, &err) != CLLM_OK) {
        free(ids);
        return BAD("tokens", "%s", err.msg);
    }
    free(ids);
    /* Raw token bytes may not be valid UTF-8: repair for JSON. */
    char *fixed = srv_utf8_repair(text, tl);
    free(text);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "content", fixed ? fixed : "");
    free(fixed);
    return srv_reply_json(o);
}

static srv_reply route_models(cllm_server *s) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *d = cJSON_AddArrayToObject(o, "data"), *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", s->p.model_name);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", 0);
    cJSON_AddStringToObject(m, "owned_by", "cllm");
    cJSON *meta = cJSON_AddObjectToObject(m, "meta");
    const cllm_model_config *c = cllm_model_get_config(s->model);
    cJSON_AddNumberToObject(meta, "n_vocab", c->vocab_size);
    cJSON_AddNumberToObject(meta, "n_ctx_train", c->context_length);
    cJSON_AddNumberToObject(meta, "n_ctx", s->ctx);
    cJSON_AddNumberToObject(meta, "n_embd", c->n_embd);
    cJSON_AddNumberToObject(meta, "n_params", (double)cllm_model_num_params(s->model));
    cJSON_AddStringToObject(meta, "chat_template", cllm_chat_template_name(s->tmpl));
    /* the file's own words (GGUF general.name / general.description): the chat page's header */
    cJSON_AddStringToObject(meta, "name", s->p.model_title ? s->p.model_title : "");
    cJSON_AddStringToObject(meta, "description", s->p.model_description ? s->p.model_description : "");
    cJSON_AddItemToArray(d, m);
    return srv_reply_json(o);
}

static srv_reply route_health(cllm_server *s) {
    cJSON *o = cJSON_CreateObject();
    pthread_mutex_lock(&s->mu);
    cJSON_AddStringToObject(o, "status", s->stopping ? "stopping" : s->broken[0] ? "error" : "ok");
    if (s->broken[0]) cJSON_AddStringToObject(o, "error", s->broken);
    cJSON_AddNumberToObject(o, "slots_idle", s->p.parallel - s->busy);
    cJSON_AddNumberToObject(o, "slots_processing", s->busy);
    cJSON_AddNumberToObject(o, "queued", s->queued + s->n_embed);
    const int broken = s->broken[0] != 0;
    pthread_mutex_unlock(&s->mu);
    srv_reply rep = srv_reply_json(o);
    if (broken) rep.status = 503; /* load balancers take it out of rotation */
    return rep;
}

static srv_reply route_metrics(cllm_server *s) {
    srv_buf b = {0};
    char line[256];
    pthread_mutex_lock(&s->mu);
    srv_metrics m = s->m;
    int busy = s->busy, queued = s->queued + s->n_embed;
    pthread_mutex_unlock(&s->mu);
    static const char *kinds[SRV_KIND_COUNT] = {"chat", "completion", "embedding"};
#define PUT(...)                                          \
    do {                                                  \
        int n_ = snprintf(line, sizeof line, __VA_ARGS__); \
        srv_buf_append(&b, line, (size_t)n_);             \
    } while (0)
    PUT("# HELP cllm_requests_total Requests accepted into the queue, by kind.\n# TYPE cllm_requests_total counter\n");
    for (int k = 0; k < SRV_KIND_COUNT; k++) PUT("cllm_requests_total{kind=\"%s\"} %" PRIu64 "\n", kinds[k], m.requests[k]);
#define COUNTER(name, help, v) PUT("# HELP " name " " help "\n# TYPE " name " counter\n" name " %" PRIu64 "\n", (uint64_t)(v))
#define GAUGE(name, help, v) PUT("# HELP " name " " help "\n# TYPE " name " gauge\n" name " %" PRIu64 "\n", (uint64_t)(v))
    COUNTER("cllm_requests_rejected_total", "Requests refused with 429 because slots and queue were full.", m.rejected_busy);
    COUNTER("cllm_requests_invalid_total", "Requests answered with a 4xx error.", m.errors_4xx);
    COUNTER("cllm_requests_cancelled_total", "Requests whose client disconnected before the end.", m.cancelled);
    COUNTER("cllm_requests_failed_total", "Requests that failed inside the model.", m.failures);
    COUNTER("cllm_prompt_tokens_total", "Prompt tokens computed (reused prefixes excluded).", m.prompt_tokens);
    COUNTER("cllm_prompt_tokens_reused_total", "Prompt tokens served from a slot's cached prefix.", m.reused_tokens);
    COUNTER("cllm_prompt_tokens_copied_total", "Of those, prompt tokens copied from another slot's cache.",
            m.copied_tokens);
    COUNTER("cllm_generated_tokens_total", "Tokens sampled.", m.generated_tokens);
    COUNTER("cllm_decode_steps_total", "Model passes (each: every generating sequence's next token plus prompt chunks).",
            m.decode_steps);
    COUNTER("cllm_decode_rows_total", "Sequences decoded over all batched steps.", m.batched_rows);
    static const char *phases[SRV_PH_COUNT] = {"forward", "embed", "sample", "emit", "schedule", "idle"};
    /* Phases: forward = model passes (decode rows + prompt chunks); embed = embedding jobs; sample = sampler,
     * detokenize, stop strings; emit = SSE chunks and waking connections; schedule = admitting, reaping; idle. */
    PUT("# HELP cllm_worker_seconds_total Inference worker wall time by phase.\n"
        "# TYPE cllm_worker_seconds_total counter\n");
    for (int k = 0; k < SRV_PH_COUNT; k++)
        PUT("cllm_worker_seconds_total{phase=\"%s\"} %.9f\n", phases[k], (double)m.phase_ns[k] * 1e-9);
    PUT("# HELP cllm_worker_cpu_seconds_total CPU time of the inference worker thread (not its OpenMP helpers).\n"
        "# TYPE cllm_worker_cpu_seconds_total counter\ncllm_worker_cpu_seconds_total %.9f\n",
        (double)m.worker_cpu_ns * 1e-9);
    GAUGE("cllm_worker_threads", "OpenMP threads the inference worker decodes with (--threads).", m.worker_threads);
    GAUGE("cllm_slots", "KV slots.", s->p.parallel);
    GAUGE("cllm_slots_busy", "Slots holding a sequence.", busy);
    GAUGE("cllm_queue_depth", "Sequences and embedding jobs waiting.", queued);
    /* The same counters under llama.cpp's names, for its dashboards. */
    COUNTER("llamacpp:prompt_tokens_total", "Number of prompt tokens processed.", m.prompt_tokens);
    PUT("# HELP llamacpp:prompt_seconds_total Prompt process time\n# TYPE llamacpp:prompt_seconds_total counter\n"
        "llamacpp:prompt_seconds_total %.9f\n", (double)m.prompt_ns * 1e-9);
    COUNTER("llamacpp:tokens_predicted_total", "Number of generation tokens processed.", m.generated_tokens);
    PUT("# HELP llamacpp:tokens_predicted_seconds_total Predict process time\n"
        "# TYPE llamacpp:tokens_predicted_seconds_total counter\nllamacpp:tokens_predicted_seconds_total %.9f\n",
        (double)m.predict_ns * 1e-9);
    COUNTER("llamacpp:n_decode_total", "Total number of llama_decode() calls.", m.decode_steps);
    PUT("# HELP llamacpp:n_busy_slots_per_decode Average number of busy slots per llama_decode() call\n"
        "# TYPE llamacpp:n_busy_slots_per_decode counter\nllamacpp:n_busy_slots_per_decode %.6f\n",
        m.decode_steps ? (double)m.batched_rows / (double)m.decode_steps : 0.0);
    GAUGE("llamacpp:requests_processing", "Number of requests processing.", busy);
    GAUGE("llamacpp:requests_deferred", "Number of requests deferred.", queued);
#undef PUT
#undef COUNTER
#undef GAUGE
    return (srv_reply){200, b.data, "text/plain; version=0.0.4"};
}

static srv_reply route_props(cllm_server *s) {
    cJSON *o = cJSON_CreateObject();
    cJSON *d = cJSON_AddObjectToObject(o, "default_generation_settings");
    cJSON_AddNumberToObject(d, "n_ctx", s->ctx);
    cJSON *p = cJSON_AddObjectToObject(d, "params");
    cllm_sampler_params sp = cllm_sampler_default_params();
    if (s->p.sampling) sp = *s->p.sampling;
    else sp.temperature = 1.0f, sp.top_k = 0, sp.top_p = 1.0f, sp.min_p = 0.0f;
    cJSON_AddNumberToObject(p, "n_predict", s->p.n_predict > 0 ? s->p.n_predict : -1);
    cJSON_AddNumberToObject(p, "temperature", sp.temperature);
    cJSON_AddNumberToObject(p, "top_k", sp.top_k);
    cJSON_AddNumberToObject(p, "top_p", sp.top_p);
    cJSON_AddNumberToObject(p, "min_p", sp.min_p);
    cJSON_AddNumberToObject(p, "repeat_penalty", sp.repeat_penalty);
    cJSON_AddNumberToObject(p, "presence_penalty", sp.presence_penalty);
    cJSON_AddNumberToObject(p, "frequency_penalty", sp.frequency_penalty);
    cJSON_AddNumberToObject(p, "seed", s->p.seed >= 0 ? (double)s->p.seed : -1);
    cJSON_AddNumberToObject(o, "total_slots", s->p.parallel);
    cJSON_AddStringToObject(o, "model_path", s->p.model_name);
    cJSON_AddStringToObject(o, "chat_template", s->tmpl.text ? s->tmpl.text : ""); /* llama.cpp: the text */
    cJSON_AddStringToObject(o, "build_info", s->fingerprint);
    return srv_reply_json(o);
}

static srv_reply route_slots(cllm_server *s) {
    cJSON *a = cJSON_CreateArray();
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->p.parallel; i++) {
        const srv_seq *q = s->slots[i].seq;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", i);
        cJSON_AddNumberToObject(o, "n_ctx", s->ctx);
        cJSON_AddBoolToObject(o, "is_processing", q != NULL);
        cJSON_AddNumberToObject(o, "n_cached", s->slots[i].n_cached);
        if (q) {
            cJSON_AddStringToObject(o, "id_task", q->req->id);
            cJSON_AddNumberToObject(o, "n_prompt_tokens", q->req->n_prompt);
            cJSON_AddNumberToObject(o, "n_decoded", q->n_gen);
        }
        cJSON_AddItemToArray(a, o);
    }
    pthread_mutex_unlock(&s->mu);
    return srv_reply_json(a);
}

srv_reply srv_route_simple(cllm_server *s, const char *method, const char *url, const char *body, size_t len,
                           int *handled) {
    *handled = 1;
    int get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    if ((s->p.no_ui && strcmp(url, "/") == 0) || (s->p.no_metrics && strcmp(url, "/metrics") == 0) ||
        (!s->p.slots_endpoint && strcmp(url, "/slots") == 0))
        return srv_error(404, "not_found_error", NULL, "not_found", "%s is turned off on this server", url);
    if (strcmp(url, "/health") == 0 && get) return route_health(s);
    if (strcmp(url, "/metrics") == 0 && get && !s->p.no_metrics) return route_metrics(s);
    if (strcmp(url, "/props") == 0 && get) return route_props(s);
    if (strcmp(url, "/slots") == 0 && get && s->p.slots_endpoint) return route_slots(s);
    if (strcmp(url, "/apply-template") == 0 && post) return srv_apply_template(s, body, len);
    if ((strcmp(url, "/v1/models") == 0 || strcmp(url, "/models") == 0) && get) return route_models(s);
    if (strcmp(url, "/tokenize") == 0 && post) return route_tokenize(s, body, len);
    if (strcmp(url, "/detokenize") == 0 && post) return route_detokenize(s, body, len);
    if (strcmp(url, "/") == 0 && get && !s->p.no_ui) {
        return (srv_reply){200, strdup(srv_webui_html), "text/html; charset=utf-8"};
    }
    *handled = 0;
    return (srv_reply){0, NULL, NULL};
}


/*
 * server.h: an OpenAI-compatible HTTP server over one model.
 *
 * Routes (src/server/: request.c parses, render.c answers, routes.c holds
 * the model-free routes): POST /v1/chat/completions, POST
 * /v1/completions (streaming as server-sent events, or one JSON answer),
 * GET /v1/models, POST /v1/embeddings, POST /tokenize, POST /detokenize,
 * GET /health, GET /metrics (Prometheus text, also under llama.cpp's
 * llamacpp:* names), GET / (the chat page); and llama.cpp's native routes:
 * POST /completion (prompt, n_predict, n_probs; answers content, stop,
 * tokens_predicted, timings, completion_probabilities; streams end without
 * [DONE]), POST /embedding, GET /props, GET /slots (with slots_endpoint),
 * POST /apply-template. Answers carry system_fingerprint, timings and
 * usage.prompt_tokens_details.cached_tokens.
 * Errors use OpenAI's shape {"error": {"message", "type", "param", "code"}}.
 *
 * Concurrency (src/server/scheduler.c): one worker thread owns the model.
 * It keeps `parallel` KV slots; every step it admits queued sequences into
 * free slots (preferring the slot whose cached tokens share the longest
 * prefix with the new prompt, whose cached part is then not recomputed),
 * feeds one prompt chunk per prefilling slot, and decodes one token for all
 * generating slots in one batched forward (cllm_model_decode_batch).
 * Beyond the slots a bounded queue holds `queue` sequences; a request that
 * does not fit gets 429. A client that disconnects mid-stream has its
 * sequence cancelled and its slot freed at the next step; so does a
 * non-stream request's (the worker polls its suspended socket each step).
 *
 * The network side (src/server/http.c, libmicrohttpd, one polling thread)
 * never waits on the model: connections waiting for tokens are suspended
 * and resumed by the worker when it has output for them.
 *
 * Limits: body size (413), header size (431, libmicrohttpd's per-connection
 * memory), idle connection timeout, optional API key (401, constant-time
 * compare; GET /health and the page at / need no key), no CORS headers
 * unless cors_origin is set (then preflight OPTIONS requests get a 204 with
 * the allowed methods and headers, before any key check).
 */
#ifndef CLLM_SERVER_H
#define CLLM_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "cllm/infer/chat_template.h"
#include "cllm/model/model.h"
#include "cllm/infer/sampler.h"
#include "cllm/core/status.h"
#include "cllm/tokenizer/tokenizer.h"

typedef struct {
    const char *host;        /* bind address, default "127.0.0.1" */
    int port;                /* 0: any free port (see cllm_server_port) */
    const char *api_key;     /* NULL or "": no key required */
    const char *model_name;  /* id shown by /v1/models */
    const char *model_title; /* the file's general.name, shown on the chat page; NULL: none */
    const char *model_description; /* general.description: what it was trained to do; NULL: none */
    const char *cors_origin; /* NULL: no CORS headers (default) */
    int parallel;            /* KV slots decoded together, >= 1 */
    int queue;               /* sequences waiting beyond the slots, >= 0 */
    size_t max_body;         /* bytes; larger bodies get 413 */
    size_t max_header;       /* bytes of per-connection header memory; over it: 431 */
    int timeout_s;           /* idle connection timeout, seconds (slow clients) */
    int max_n;               /* largest `n` (choices per request) */
    int debug_step_delay_ms; /* sleep after each worker step (tests: makes slots stay busy); 0 */
    int n_predict;           /* tokens generated when a request gives no max_tokens; 0: to the end of the
                                context for chat, 16 for completions (OpenAI's defaults) */
    const cllm_sampler_params *sampling; /* defaults of requests' sampling fields; NULL: the API's
                                (temperature 1, top_p 1, top_k/min_p/penalties off); borrowed */
    int64_t seed;            /* seed of requests that give none; -1: a different one per request */
    int request_timeout_s;   /* a generation running longer ends with finish_reason "length"; 0: none */
    int no_ui;               /* 1: GET / answers 404 */
    int no_metrics;          /* 1: GET /metrics answers 404 */
    int slots_endpoint;      /* 1: GET /slots answers (llama.cpp's --slots) */
} cllm_server_params;

/* host 127.0.0.1, port 8080, no key, model_name "cllm", parallel 4,
 * queue 16, max_body 1 MiB, max_header 16 KiB, timeout 30 s, max_n 8,
 * n_predict 0, sampling NULL, seed -1, no request timeout, UI and metrics on,
 * /slots off. */
cllm_server_params cllm_server_default_params(void);

typedef struct cllm_server cllm_server;

/* Starts the worker and the HTTP daemon. The model must have been created
 * with kv_slots >= parallel + 1 (the extra slot serves /v1/embeddings) and
 * max_seq >= parallel. model, tok and the strings in p are borrowed and must
 * outlive the server. */
cllm_status cllm_server_start(cllm_model *model, const cllm_tokenizer *tok, cllm_chat_template tmpl,
                              const cllm_server_params *p, cllm_server **out, cllm_error *err);
/* The port actually bound (useful with port 0). */
int cllm_server_port(const cllm_server *s);
/* Cancels everything in flight, stops the daemon and the worker, frees. NULL ok. */
void cllm_server_stop(cllm_server *s);

#endif

/*
 * fuzz_http.c: the server's request bodies (src/server/request.c), chosen
 * by the input's first byte: OpenAI chat and completions, llama.cpp's
 * /completion, embeddings (both forms) and /apply-template, parsed and
 * validated against a running server's model, tokenizer and limits (a
 * tiny model with the byte vocabulary; nothing is generated). A rejected
 * body is a 4xx reply; the fuzzer looks for crashes, sanitizer reports,
 * leaks and runaway allocations.
 */
#include <stdlib.h>

#include "../../src/server/server_internal.h"
#include "cllm/model/model.h"
#include "cllm/tokenizer/tokenizer.h"
#include "fuzz.h"

static cllm_server *server;

static void start(void) {
    static cllm_model *m;
    static cllm_tokenizer *tok;
    cllm_error err;
    cllm_model_config cfg;
    if (cllm_model_preset("tiny-llama", &cfg, &err) != CLLM_OK) abort();
    cfg.vocab_size = 256;
    cllm_model_options o = cllm_model_default_options();
    o.max_seq = 4;
    o.kv_slots = 3;
    o.kv_context = cfg.context_length;
    if (cllm_model_create(&cfg, &o, &m, &err) != CLLM_OK || cllm_tokenizer_new_bytes(&tok, &err) != CLLM_OK) abort();
    cllm_server_params p = cllm_server_default_params();
    p.port = 0;
    p.parallel = 2;
    if (cllm_server_start(m, tok, cllm_chat_template_for(tok), &p, &server, &err) != CLLM_OK) abort();
}

static void done(srv_reply r, srv_request *req) {
    free(r.body);
    if (req) srv_request_free(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!server) start();
    if (size < 1) return 0;
    const int which = data[0] % 6;
    const char *body = (const char *)data + 1;
    size--;
    srv_request *req = NULL;
    switch (which) {
    case 0: done(srv_parse_generation(server, SRV_CHAT, 0, body, size, &req), req); break;
    case 1: done(srv_parse_generation(server, SRV_COMPLETION, 0, body, size, &req), req); break;
    case 2: done(srv_parse_generation(server, SRV_COMPLETION, 1, body, size, &req), req); break;
    case 3: done(srv_parse_embeddings(server, body, size, 0, &req), req); break;
    case 4: done(srv_parse_embeddings(server, body, size, 1, &req), req); break;
    default: done(srv_apply_template(server, body, size), NULL); break;
    }
    return 0;
}

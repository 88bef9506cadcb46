/*
 * http.c: the libmicrohttpd side: daemon setup, limits, the API key, body
 * collection, dispatch, suspended connections and streaming responses.
 *
 * One internal polling thread serves every connection and never waits on
 * the model. A generation request is parsed here, handed to the worker
 * (srv_submit), and its connection is suspended; the worker resumes it when
 * output is ready. Streams are a callback response that copies out the SSE
 * bytes the worker appended and suspends again when there are none; a
 * failed write (client gone) ends the connection, and the completion
 * callback then cancels the request so the worker frees its slot.
 *
 * Limits: Content-Length or received body over max_body -> 413; headers
 * that do not fit the per-connection memory (max_header) -> 431 from
 * libmicrohttpd itself; idle connections are closed after timeout_s.
 * API key: "Authorization: Bearer K" (or "x-api-key: K"), compared in
 * constant time; /health and / are open. No CORS headers unless configured.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "server_internal.h"

typedef struct {
    srv_buf body;
    int too_big;
    int waiting;      /* a non-stream request is with the worker */
    srv_request *req; /* shared with the worker */
    cllm_server *srv;
} conn_state;

cllm_server_params cllm_server_default_params(void) {
    cllm_server_params p;
    memset(&p, 0, sizeof p);
    p.host = "127.0.0.1";
    p.port = 8080;
    p.model_name = "cllm";
    p.parallel = 4;
    p.queue = 16;
    p.max_body = 1 << 20;
    p.max_header = 16 << 10;
    p.timeout_s = 30;
    p.max_n = 8;
    p.seed = -1;
    return p;
}

/* With --cors ORIGIN every answer names the origin allowed to read it, and
 * preflights learn the methods and headers the API uses. */
static void add_cors(cllm_server *s, struct MHD_Response *r) {
    if (!s->p.cors_origin) return;
    MHD_add_response_header(r, "Access-Control-Allow-Origin", s->p.cors_origin);
    MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    MHD_add_response_header(r, "Access-Control-Allow-Headers", "Authorization, Content-Type, X-Api-Key");
    MHD_add_response_header(r, "Access-Control-Max-Age", "600");
    if (strcmp(s->p.cors_origin, "*") != 0) MHD_add_response_header(r, "Vary", "Origin");
}

static enum MHD_Result send_reply(cllm_server *s, struct MHD_Connection *c, srv_reply rep) {
    if (!rep.body) rep = srv_error(500, "server_error", NULL, NULL, "out of memory");
    if (rep.status >= 400 && rep.status < 500) {
        pthread_mutex_lock(&s->mu);
        s->m.errors_4xx++;
        pthread_mutex_unlock(&s->mu);
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(rep.body), rep.body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(rep.body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", rep.type ? rep.type : "application/json");
    add_cors(s, r);
    if (rep.status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)rep.status, r);
    MHD_destroy_response(r);
    return ok;
}

/* Constant-time in the key's content: every byte of the longer string is
 * looked at whatever the first difference. */
static int key_equal(const char *given, const char *want) {
    size_t a = strlen(given), b = strlen(want), n = a > b ? a : b;
    unsigned char diff = (unsigned char)(a != b);
    for (size_t i = 0; i < n; i++) {
        unsigned char x = i < a ? (unsigned char)given[i] : 0, y = i < b ? (unsigned char)want[i] : 0;
        diff |= (unsigned char)(x ^ y);
    }
    return diff == 0;
}

static int authorized(cllm_server *s, struct MHD_Connection *c) {
    if (!s->p.api_key || !s->p.api_key[0]) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (h && strncasecmp(h, "Bearer ", 7) == 0) return key_equal(h + 7, s->p.api_key);
    h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-api-key");
    return h ? key_equal(h, s->p.api_key) : 0;
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    conn_state *cs = cls;
    srv_request *r = cs->req;
    ssize_t n;
    pthread_mutex_t *mu = &cs->srv->mu;
    pthread_mutex_lock(mu);
    size_t avail = r->out.len - r->out.off;
    if (avail > 0) {
        n = (ssize_t)(avail < max ? avail : max);
        memcpy(buf, r->out.data + r->out.off, (size_t)n);
        r->out.off += (size_t)n;
        if (r->out.off == r->out.len) r->out.off = r->out.len = 0;
    } else if (r->finished) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        r->suspended = 1;
        MHD_suspend_connection(r->conn);
        n = 0;
    }
    pthread_mutex_unlock(mu);
    return n;
}

static enum MHD_Result start_generation(cllm_server *s, struct MHD_Connection *c, conn_state *cs, srv_kind kind,
                                        int native) {
    srv_request *r = NULL;
    srv_reply rep = kind == SRV_EMBED ? srv_parse_embeddings(s, cs->body.data, cs->body.len, native, &r)
                                      : srv_parse_generation(s, kind, native, cs->body.data, cs->body.len, &r);
    if (!r) return send_reply(s, c, rep);
    r->conn = c;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    r->fd = ci ? ci->connect_fd : -1;
    cs->req = r; /* the connection's reference */
    if (srv_submit(s, r) != 0) {
        pthread_mutex_lock(&s->mu);
        int stopping = s->stopping;
        pthread_mutex_unlock(&s->mu);
        return send_reply(s, c,
                          stopping ? srv_error(503, "server_error", NULL, "shutting_down", "the server is shutting down")
                                   : srv_error(429, "rate_limit_error", NULL, "queue_full",
                                               "all %d slots are busy and the queue of %d is full; retry later",
                                               s->p.parallel, s->p.queue));
    }
    pthread_mutex_lock(&s->mu);
    s->m.requests[kind]++;
    pthread_mutex_unlock(&s->mu);
    if (r->stream) {
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_reader, cs, NULL);
        if (!resp) return MHD_NO;
        MHD_add_response_header(resp, "Content-Type", "text/event-stream");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        add_cors(s, resp);
        enum MHD_Result ok = MHD_queue_response(c, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        return ok;
    }
    pthread_mutex_lock(&s->mu);
    cs->waiting = 1;
    if (!r->finished) {
        r->suspended = 1;
        MHD_suspend_connection(c);
    }
    pthread_mutex_unlock(&s->mu);
    return MHD_YES;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    cllm_server *s = cls;
    conn_state *cs = *con_cls;
    if (!cs) {
        cs = calloc(1, sizeof *cs);
        if (!cs) return MHD_NO;
        *con_cls = cs;
        cs->srv = s;
        /* A CORS preflight carries no credentials: answer it before the key check. */
        if (s->p.cors_origin && strcmp(method, "OPTIONS") == 0 &&
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin") &&
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Access-Control-Request-Method")) {
            struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
            if (!r) return MHD_NO;
            add_cors(s, r);
            enum MHD_Result ok = MHD_queue_response(c, MHD_HTTP_NO_CONTENT, r);
            MHD_destroy_response(r);
            return ok;
        }
        int open_route = strcmp(url, "/health") == 0 || strcmp(url, "/") == 0;
        if (!open_route && !authorized(s, c))
            return send_reply(s, c, srv_error(401, "authentication_error", NULL, "invalid_api_key",
                                              "missing or wrong API key (send Authorization: Bearer <key>)"));
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->p.max_body)
            return send_reply(s, c, srv_error(413, "invalid_request_error", NULL, "request_too_large",
                                              "the body has %s bytes; the limit is %zu", cl, s->p.max_body));
        return MHD_YES;
    }
    if (*upload_size) {
        if (cs->body.len + *upload_size > s->p.max_body) cs->too_big = 1;
        else if (srv_buf_append(&cs->body, upload, *upload_size)) return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    if (cs->too_big)
        return send_reply(s, c, srv_error(413, "invalid_request_error", NULL, "request_too_large",
                                          "the body is larger than the limit of %zu bytes", s->p.max_body));
    if (cs->waiting) { /* resumed: the worker has finished (or produced tokens) */
        srv_request *r = cs->req;
        pthread_mutex_lock(&s->mu);
        int done = r->finished;
        if (!done) {
            r->suspended = 1;
            MHD_suspend_connection(c);
        }
        pthread_mutex_unlock(&s->mu);
        if (!done) return MHD_YES;
        cs->waiting = 0;
        return send_reply(s, c, srv_final_reply(s, r));
    }
    int post = strcmp(method, "POST") == 0;
    if (post && (strcmp(url, "/v1/chat/completions") == 0 || strcmp(url, "/chat/completions") == 0))
        return start_generation(s, c, cs, SRV_CHAT, 0);
    if (post && (strcmp(url, "/v1/completions") == 0 || strcmp(url, "/completions") == 0))
        return start_generation(s, c, cs, SRV_COMPLETION, 0);
    if (post && (strcmp(url, "/v1/embeddings") == 0 || strcmp(url, "/embeddings") == 0))
        return start_generation(s, c, cs, SRV_EMBED, 0);
    if (post && strcmp(url, "/completion") == 0) return start_generation(s, c, cs, SRV_COMPLETION, 1);
    if (post && strcmp(url, "/embedding") == 0) return start_generation(s, c, cs, SRV_EMBED, 1);
    int handled = 0;
    srv_reply rep = srv_route_simple(s, method, url, cs->body.data, cs->body.len, &handled);
    if (handled) return send_reply(s, c, rep);
    static const char *known[] = {"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/tokenize",
                                  "/detokenize", "/health", "/metrics", "/v1/models", "/", "/completion",
                                  "/embedding", "/props", "/slots", "/apply-template"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(url, known[i]) == 0)
            return send_reply(s, c, srv_error(405, "invalid_request_error", NULL, "method_not_allowed",
                                              "%s does not accept %s", url, method));
    return send_reply(s, c, srv_error(404, "not_found_error", NULL, "not_found", "no route %s %s", method, url));
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)c;
    (void)toe;
    cllm_server *s = cls;
    conn_state *cs = *con_cls;
    if (!cs) return;
    if (cs->req) {
        pthread_mutex_lock(&s->mu);
        srv_request *r = cs->req;
        r->conn = NULL;
        r->suspended = 0;
        if (!r->finished) {
            r->cancelled = 1;
            pthread_cond_signal(&s->cv);
        }
        srv_request_release_locked(s, r);
        pthread_mutex_unlock(&s->mu);
    }
    srv_buf_free(&cs->body);
    free(cs);
    *con_cls = NULL;
}

cllm_status cllm_server_start(cllm_model *model, const cllm_tokenizer *tok, cllm_chat_template tmpl,
                              const cllm_server_params *p, cllm_server **out, cllm_error *err) {
    *out = NULL;
    const cllm_model_options *o = cllm_model_get_options(model);
    const cllm_model_config *cfg = cllm_model_get_config(model);
    if (p->parallel < 1 || p->queue < 0 || p->max_n < 1 || p->timeout_s < 1 || p->max_body < 1)
        return cllm_error_set(err, CLLM_ERR_ARG, "server: parallel, max_n, timeout and max_body must be >= 1, queue >= 0");
    if (o->kv_slots < p->parallel + 1 || o->max_seq < p->parallel)
        return cllm_error_set(err, CLLM_ERR_ARG,
                              "server: the model needs kv_slots >= parallel + 1 (%d) and max_seq >= parallel, has %d and %d",
                              p->parallel + 1, o->kv_slots, o->max_seq);
    if ((int64_t)cllm_tokenizer_n_vocab(tok) != cfg->vocab_size)
        return cllm_error_set(err, CLLM_ERR_ARG, "server: tokenizer has %u tokens, the model %d",
                              cllm_tokenizer_n_vocab(tok), cfg->vocab_size);
    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof addr);
    const char *host = p->host && strcmp(p->host, "localhost") != 0 ? p->host : "127.0.0.1";
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&addr;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)p->port);
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)p->port);
        flags |= MHD_USE_IPv6;
    } else {
        return cllm_error_set(err, CLLM_ERR_ARG, "server: host '%s' is not an IPv4 or IPv6 address", host);
    }
    cllm_server *s = calloc(1, sizeof *s);
    if (!s) return cllm_error_set(err, CLLM_ERR_NOMEM, "server: out of memory");
    s->p = *p;
    if (!s->p.model_name) s->p.model_name = "cllm";
    s->model = model;
    s->tok = tok;
    s->tmpl = tmpl;
    s->ctx = o->kv_context > 0 ? o->kv_context : cfg->context_length;
    s->V = cfg->vocab_size;
    s->C = cfg->n_embd;
    s->max_seq = o->max_seq;
    s->gen = cllm_generate_default_params();
    cllm_generate_add_default_eog(&s->gen, tok);
    int32_t ends[CLLM_CHAT_MAX_END_TOKENS]; /* the template's end of turn (<end_of_turn>, </s>, ...) */
    for (int k = 0, n_end = cllm_chat_end_tokens(tok, tmpl, ends); k < n_end; k++)
        if (!cllm_generate_is_eog(&s->gen, ends[k]) && s->gen.n_eog < CLLM_GENERATE_MAX_EOG)
            s->gen.eog[s->gen.n_eog++] = ends[k];
    s->turn_stop = cllm_chat_stop_string(tok, tmpl);
    if (!(s->gvocab = cllm_grammar_vocab_from_tokenizer(tok, s->gen.eog, s->gen.n_eog, err))) {
        free(s);
        return err->status;
    }
    snprintf(s->fingerprint, sizeof s->fingerprint, "fp_cllm_%08llx",
             (unsigned long long)(cllm_model_num_params(model) * 2654435761ull + (uint64_t)cfg->vocab_size) & 0xffffffffull);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (srv_worker_start(s) != 0) {
        cllm_server_stop(s);
        return cllm_error_set(err, CLLM_ERR_NOMEM, "server: cannot start the worker");
    }
    s->daemon = MHD_start_daemon(flags, (uint16_t)p->port, NULL, NULL, handler, s, MHD_OPTION_SOCK_ADDR, &addr,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)p->timeout_s,
                                 MHD_OPTION_CONNECTION_MEMORY_LIMIT, p->max_header, MHD_OPTION_CONNECTION_LIMIT,
                                 (unsigned)256, MHD_OPTION_NOTIFY_COMPLETED, completed, s, MHD_OPTION_END);
    if (!s->daemon) {
        cllm_server_stop(s);
        return cllm_error_set(err, CLLM_ERR_IO, "server: cannot listen on %s:%d (in use, or not an address of this host)",
                              host, p->port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : p->port;
    *out = s;
    return CLLM_OK;
}

int cllm_server_port(const cllm_server *s) { return s ? s->port : 0; }

void cllm_server_stop(cllm_server *s) {
    if (!s) return;
    srv_worker_stop(s); /* ends every request and resumes its connection */
    if (s->daemon) MHD_stop_daemon(s->daemon);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    cllm_grammar_vocab_destroy(s->gvocab);
    free(s);
}

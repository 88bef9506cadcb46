/*
 * server_internal.h: the structs shared by the files of src/server/ (not public API).
 *
 * Ownership: a srv_request is shared by its HTTP connection and the worker
 * (refs counts both; the last one to let go frees it). Every field that both
 * sides touch is guarded by the server mutex `mu`; fields marked "worker"
 * are touched only by the worker thread while the request is live, and
 * read by the HTTP side only after `finished` is set.
 */
#ifndef CLLM_SERVER_INTERNAL_H
#define CLLM_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "cllm/infer/chat_template.h"
#include "cllm/infer/generate.h"
#include "cllm/infer/sampler.h"
#include "cllm/server/server.h"
#include "cllm/infer/stop.h"

struct MHD_Connection;
struct MHD_Daemon;

/* A growable byte buffer; off = bytes already consumed from the front. */
typedef struct {
    char *data; /* [cap] */
    size_t len, cap, off;
} srv_buf;

int srv_buf_append(srv_buf *b, const char *s, size_t n); /* 0 ok, -1 no memory */
void srv_buf_free(srv_buf *b);

typedef enum { SRV_CHAT = 0, SRV_COMPLETION, SRV_EMBED, SRV_KIND_COUNT } srv_kind;
/* tool_choice: off ("none", or no tools), auto (parse what the model
 * writes), required (a grammar: the reply is tool calls only). */
typedef enum { SRV_TOOLS_OFF = 0, SRV_TOOLS_AUTO, SRV_TOOLS_REQUIRED, SRV_TOOLS_MODE_COUNT } srv_tool_mode;
typedef enum { SEQ_QUEUED = 0, SEQ_PREFILL, SEQ_GEN, SEQ_DONE } srv_seq_state;

typedef struct srv_request srv_request;

/* One choice of a request: the unit the scheduler puts in a slot. */
typedef struct srv_seq {
    srv_request *req;
    int index;                  /* choice index */
    srv_seq_state state;        /* mu */
    int slot;                   /* -1 while queued (mu) */
    cllm_sampler *sampler;      /* worker */
    cllm_text_stream text_stream; /* token ids -> released text (worker) */
    char utf8_carry[4];         /* bytes of a character not yet complete in the released text */
    int n_carry;
    int n_prefilled;            /* prompt tokens already in the slot's cache */
    int pos;                    /* position of last_token */
    int32_t last_token;         /* sampled, not yet fed to the model */
    int n_gen;                  /* tokens sampled */
    int sent_role;              /* chat stream: the role-only first chunk was sent */
    int n_reused;               /* prompt tokens served from a cached prefix (worker) */
    int slot_used;              /* the slot it ran in (kept after it is freed) */
    uint64_t t_admit_ns, t_prompt_ns, t_end_ns; /* admitted, prompt done (first token), finished (worker) */
    cllm_finish_reason finish;
    srv_buf text;               /* non-stream: the whole text */
    cJSON *logprobs;            /* non-stream with logprobs: per-token entries (array) */
    struct srv_seq *next;       /* queue link (mu) */
} srv_seq;

struct srv_request {
    int refs;                   /* connection + worker (mu) */
    srv_kind kind;
    int stream, include_usage;
    int native;                 /* llama.cpp's /completion or /embedding: its request and response shapes */
    int want_logprobs;          /* chat: logprobs true; completion: logprobs given */
    int n_top;                  /* alternatives per token */
    char id[48];
    int64_t created;
    uint32_t *prompt;           /* [n_prompt] */
    int n_prompt;
    int max_tokens;
    cllm_sampler_params sp;
    int n_stop;
    char *stops[CLLM_STOP_MAX]; /* owned copies */
    int n;                      /* choices */
    srv_seq *seqs;              /* [n] */
    cllm_grammar *grammar;      /* response_format / grammar / json_schema / a required tool call,
                                   or NULL (owned; the samplers borrow it) */
    cJSON *tools;               /* chat: the request's tools (owned copy), NULL without */
    int tool_mode;              /* srv_tool_mode */
    int parallel_tools;         /* parallel_tool_calls (default 1) */
    int n_done;                 /* mu */
    int completion_tokens;      /* mu */
    int cancelled;              /* client went away (mu) */
    int fd;                     /* the connection's socket, polled for a hang-up while a
                                   non-stream request is suspended; -1 unknown (mu) */
    uint64_t t_submit_ns;       /* CLOCK_MONOTONIC at submission (request timeout) */
    int failed;                 /* the model failed mid-request (mu) */
    char errmsg[256];
    srv_buf out;                /* stream: SSE bytes ready to send (mu) */
    int finished;               /* all output produced (mu) */
    struct MHD_Connection *conn;/* NULL once the connection is gone (mu) */
    int suspended;              /* conn is suspended waiting for output (mu) */
    int wake_queued;            /* in the worker's end-of-step wake list, holding a reference (mu) */
    /* embeddings */
    int n_inputs;
    uint32_t **inputs;          /* [n_inputs][input_len[i]] */
    int *input_len;             /* [n_inputs] */
    float *embeddings;          /* [n_inputs, C] (worker) */
    int base64;
};

typedef struct {
    srv_seq *seq;               /* NULL when free */
    uint32_t *cached;           /* [ctx] tokens whose K/V the slot holds */
    int n_cached;
} srv_slot;

/* Where the worker's wall time goes (cllm_worker_seconds_total{phase=...}):
 * model passes (decode rows and prompt chunks together), embedding jobs,
 * sampling (sampler + detokenize + stop strings), emitting (lock, SSE JSON,
 * waking the connection), scheduling (lock, reaping, admitting) and waiting
 * for work. */
typedef enum { SRV_PH_FORWARD = 0, SRV_PH_EMBED, SRV_PH_SAMPLE, SRV_PH_EMIT, SRV_PH_SCHEDULE, SRV_PH_IDLE,
               SRV_PH_COUNT } srv_phase;

typedef struct {
    uint64_t requests[SRV_KIND_COUNT], rejected_busy, errors_4xx, cancelled, prompt_tokens,
        generated_tokens, reused_tokens, copied_tokens, decode_steps, batched_rows, failures;
    uint64_t prompt_ns, predict_ns;  /* per request: admission -> first token, first token -> end (first choice) */
    uint64_t phase_ns[SRV_PH_COUNT]; /* worker wall time per phase */
    uint64_t worker_cpu_ns;          /* the worker thread's CPU time (its OpenMP helpers excluded) */
    int worker_threads;              /* OpenMP threads the worker decodes with */
} srv_metrics;

struct cllm_server {
    cllm_server_params p;
    cllm_model *model;
    const cllm_tokenizer *tok;
    cllm_chat_template tmpl;
    int ctx, V, C, max_seq;
    cllm_generate_params gen;   /* eog ids */
    cllm_grammar_vocab *gvocab; /* the vocabulary trie for constrained requests (owned) */
    const char *turn_stop;      /* chat template's text stop (PLAIN without eot), or NULL */
    struct MHD_Daemon *daemon;
    int port;
    pthread_t worker;
    int worker_started;
    int threads;                /* OpenMP threads of the starting thread, applied in the worker */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stopping;
    char broken[512];           /* why the model can no longer run (its file truncated or rewritten
                                   under the map, cllm_model_check_file), "" while healthy (mu) */
    srv_seq *q_head, *q_tail;   /* waiting sequences (mu) */
    int queued;
    srv_request *embed_head[64];/* waiting embedding requests, ring (mu) */
    int n_embed, embed_first;
    srv_slot *slots;            /* [parallel] (worker) */
    uint64_t wk_ns[SRV_PH_COUNT], wk_t; /* phase time not yet added to m, last lap (worker) */
    srv_request **wake;         /* [parallel] streams with new output this step (worker, mu) */
    int n_wake;
    int busy;                   /* slots in use (mu) */
    uint64_t next_id;           /* mu */
    char fingerprint[48];       /* system_fingerprint: build and model */
    srv_metrics m;              /* mu */
};

/* ---- scheduler.c -------------------------------------------------------- */
uint64_t srv_now_ns(void); /* CLOCK_MONOTONIC */
int srv_worker_start(cllm_server *s);
void srv_worker_stop(cllm_server *s);
/* Queues a request's sequences (or an embedding job). Returns 0, or -1 when
 * the queue is full (the caller answers 429). Takes the worker's reference. */
int srv_submit(cllm_server *s, srv_request *r);
/* Drops one reference (mu held); frees at zero. */
void srv_request_release_locked(cllm_server *s, srv_request *r);
void srv_request_free(srv_request *r);

/* ---- sse.c --------------------------------------------------------------- */
/* Appends `data: <json>\n\n` (json printed unformatted) to b. */
int srv_sse_event(srv_buf *b, const cJSON *json);
int srv_sse_done(srv_buf *b);
/* Length of the longest prefix of s[len] that ends on a UTF-8 character
 * boundary (a trailing incomplete character is left out). */
size_t srv_utf8_complete(const char *s, size_t len);
/* A token's bytes as valid UTF-8 text (invalid bytes -> U+FFFD), and the
 * raw bytes as a JSON int array. */
cJSON *srv_token_text(const cllm_tokenizer *tok, int32_t id);
/* s[n] as a new NUL-terminated valid UTF-8 string (invalid bytes -> U+FFFD);
 * owned by the caller; NULL when out of memory. */
char *srv_utf8_repair(const char *s, size_t n);
cJSON *srv_token_bytes(const cllm_tokenizer *tok, int32_t id);

typedef struct {
    int status;       /* HTTP status; 0 from a parser means "no error" */
    char *body;       /* owned JSON/text */
    const char *type; /* content type */
} srv_reply;

/* ---- tools.c: tool calling (chat) ----------------------------------------- */
/* Validates tools / tool_choice / parallel_tool_calls into r (tools, tool_mode,
 * parallel_tools; for a required call also r->grammar, which must be unset).
 * 0, or -1 with the 400 in *e. */
int srv_tools_parse(cJSON *root, srv_request *r, srv_reply *e);
/* The tool calls in choice `choice`'s text (an OpenAI tool_calls array), or
 * NULL when there are none (or tools are off); *content receives the text
 * around them, trimmed (NULL when empty). Both owned by the caller. */
cJSON *srv_tools_extract(const srv_request *r, int choice, const char *text, char **content);

/* ---- request.c: request bodies -> srv_request ---------------------------- */
/* Parses a generation request; on success *out is a new request (refs 1,
 * the connection's) and the reply's status is 0. */
srv_reply srv_parse_generation(cllm_server *s, srv_kind kind, int native, const char *body, size_t len,
                               srv_request **out);
srv_reply srv_parse_embeddings(cllm_server *s, const char *body, size_t len, int native, srv_request **out);
/* The body as a JSON object: on success *out is owned by the caller and the
 * reply's status is 0; else *out is NULL and the reply is a 400. */
srv_reply srv_parse_root(const char *body, size_t len, cJSON **out);
/* Optional boolean field: absent or null leaves *out. Returns 0, or -1 with
 * a 400 in *e naming the field. */
int srv_opt_bool(cJSON *root, const char *key, int *out, srv_reply *e);
/* POST /apply-template: {"messages"} -> {"prompt"}, the chat template's text. */
srv_reply srv_apply_template(cllm_server *s, const char *body, size_t len);

/* ---- render.c: responses -------------------------------------------------- */
/* Errors in OpenAI's shape. param may be NULL. */
srv_reply srv_error(int status, const char *type, const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* A 200 with root printed unformatted; takes and frees root. */
srv_reply srv_reply_json(cJSON *root);
/* The final non-stream JSON of a finished request. */
srv_reply srv_final_reply(cllm_server *s, srv_request *r);
/* Stream chunk builders used by the worker (mu held). */
/* token: the sampled id; an end-of-generation token (eog) adds neither
 * text nor a logprobs entry, as the returned text omits it. */
void srv_emit_token(cllm_server *s, srv_seq *q, const char *text, size_t len, int32_t token, int eog, float lp,
                    const cllm_token_logprob *top, int n_top);
void srv_emit_finish(cllm_server *s, srv_seq *q);
void srv_emit_request_end(cllm_server *s, srv_request *r);

/* ---- routes.c: routes answered without the model --------------------------- */
/* Sets *handled to 0 when the method and URL are not one of them. */
srv_reply srv_route_simple(cllm_server *s, const char *method, const char *url, const char *body, size_t len,
                           int *handled);

/* ---- webui.c ------------------------------------------------------------- */
extern const char srv_webui_html[];

#endif

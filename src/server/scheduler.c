/*
 * scheduler.c: the inference worker: slots, the bounded queue, continuous
 * batching, prefix reuse and cancellation (see server.h for the contract).
 *
 * One step of the worker:
 *   1. (mu held) finish sequences whose client went away or whose request
 *      failed, freeing their slots; admit queued sequences into free slots,
 *      each into the free slot whose cached tokens share the longest prefix
 *      with its prompt, copying a longer cached prefix from any other slot
 *      (busy or free) when one has it; take one waiting embedding job.
 *   2. (no lock) run the embedding job; then ONE model pass
 *      (cllm_model_decode_rows) over the last sampled token of every
 *      generating slot plus prompt tokens of the prefilling slots, as many
 *      as fit in max_seq rows (a long prompt continues next step), so all
 *      projections are one GEMM per step; sample each generating slot and
 *      each slot whose prompt this pass completed.
 *   3. (mu held, per token) hand the text to the request's output and
 *      resume its suspended connection.
 * Requests join between steps and leave as soon as they finish, so a long
 * generation never holds back a short one, and a long prompt delays the
 * others' next token by at most one pass of max_seq rows.
 * Time per phase (forward, embed, sample, emit, schedule, idle) and the
 * worker's CPU time go to /metrics, to find where a step's time goes.
 *
 * Not here: HTTP (http.c), request JSON (request.c), response JSON (render.c).
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "cllm/kernels/kernels.h"
#include "cllm/model/mapped.h"
#include "server_internal.h"

static uint64_t clock_ns(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t srv_now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

/* (mu held) 1 when the client of a suspended non-stream request has closed
 * its connection. libmicrohttpd does not watch a suspended connection, so
 * the worker looks at the socket itself, once per step: a hang-up, an error
 * or an orderly close (recv of 0 bytes; pipelined bytes are left queued).
 * The socket stays open until the completion callback has run, which takes
 * mu and clears r->conn, so r->fd is valid here while r->conn is set. */
static int client_gone_locked(srv_request *r) {
    if (r->stream || !r->conn || r->fd < 0) return 0;
    struct pollfd pf = {.fd = r->fd, .events = POLLIN | POLLRDHUP};
    if (poll(&pf, 1, 0) <= 0) return 0;
    if (pf.revents & (POLLHUP | POLLERR | POLLNVAL | POLLRDHUP)) return 1;
    char b;
    return (pf.revents & POLLIN) && recv(r->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* (worker) Charges the time since the last lap to phase ph. */
static void lap(cllm_server *s, srv_phase ph) {
    uint64_t t = clock_ns(CLOCK_MONOTONIC);
    s->wk_ns[ph] += t - s->wk_t;
    s->wk_t = t;
}

/* (worker, mu held) Publishes the phase times for /metrics. */
static void flush_times_locked(cllm_server *s) {
    for (int i = 0; i < SRV_PH_COUNT; i++) {
        s->m.phase_ns[i] += s->wk_ns[i];
        s->wk_ns[i] = 0;
    }
    s->m.worker_cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

static void wake_locked(srv_request *r) {
    if (r->conn && r->suspended) {
        r->suspended = 0;
        MHD_resume_connection(r->conn);
    }
}

void srv_request_free(srv_request *r) {
    if (!r) return;
    for (int i = 0; i < r->n && r->seqs; i++) {
        cllm_sampler_destroy(r->seqs[i].sampler);
        srv_buf_free(&r->seqs[i].text);
        cJSON_Delete(r->seqs[i].logprobs);
    }
    free(r->seqs);
    cllm_grammar_destroy(r->grammar);
    cJSON_Delete(r->tools);
    for (int i = 0; i < r->n_stop; i++) free(r->stops[i]);
    for (int i = 0; i < r->n_inputs && r->inputs; i++) free(r->inputs[i]);
    free(r->inputs);
    free(r->input_len);
    free(r->embeddings);
    free(r->prompt);
    srv_buf_free(&r->out);
    free(r);
}

void srv_request_release_locked(cllm_server *s, srv_request *r) {
    (void)s;
    if (--r->refs == 0) srv_request_free(r);
}

int srv_submit(cllm_server *s, srv_request *r) {
    r->t_submit_ns = srv_now_ns();
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (s->stopping) {
        rc = -1;
    } else if (r->kind == SRV_EMBED) {
        if (s->n_embed >= (int)(sizeof s->embed_head / sizeof s->embed_head[0]) || s->n_embed >= s->p.queue + 1)
            rc = -1;
        else {
            s->embed_head[(s->embed_first + s->n_embed++) % 64] = r;
            r->refs++;
        }
    } else if (s->queued + s->busy + r->n > s->p.parallel + s->p.queue) {
        rc = -1;
    } else {
        r->refs++;
        for (int i = 0; i < r->n; i++) {
            srv_seq *q = &r->seqs[i];
            q->next = NULL;
            if (s->q_tail) s->q_tail->next = q;
            else s->q_head = q;
            s->q_tail = q;
            s->queued++;
        }
    }
    if (rc) s->m.rejected_busy++;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Marks a sequence finished (mu held): frees its slot, emits its end, and
 * ends the request when it was the last one. */
static void seq_finish_locked(cllm_server *s, srv_seq *q, cllm_finish_reason why) {
    srv_request *r = q->req;
    if (q->state == SEQ_DONE) return;
    if (q->slot >= 0) {
        s->slots[q->slot].seq = NULL;
        s->busy--;
        q->slot = -1;
    }
    q->state = SEQ_DONE;
    q->finish = why;
    q->t_end_ns = srv_now_ns();
    if (!q->t_prompt_ns) q->t_prompt_ns = q->t_end_ns;
    if (!r->cancelled && !r->failed) srv_emit_finish(s, q);
    if (q->index == 0 && r->kind != SRV_EMBED) {
        s->m.prompt_ns += q->t_prompt_ns - (q->t_admit_ns ? q->t_admit_ns : q->t_prompt_ns);
        s->m.predict_ns += q->t_end_ns - q->t_prompt_ns;
    }
    if (++r->n_done == r->n) {
        if (r->cancelled) s->m.cancelled++;
        if (r->failed) s->m.failures++;
        if (!r->cancelled) srv_emit_request_end(s, r);
        r->finished = 1;
        wake_locked(r);
        srv_request_release_locked(s, r);
    }
}

static void request_fail_locked(srv_request *r, const char *msg) {
    if (!r->failed) snprintf(r->errmsg, sizeof r->errmsg, "%s", msg);
    r->failed = 1;
}

static int lcp(const uint32_t *a, int na, const uint32_t *b, int nb) {
    int i = 0;
    while (i < na && i < nb && a[i] == b[i]) i++;
    return i;
}

/* (mu held) Reap cancelled work, admit queued sequences, pick an embed job.
 * Once the model is broken every request fails with the reason. */
static srv_request *schedule_locked(cllm_server *s) {
    for (int i = 0; i < s->p.parallel; i++) {
        srv_seq *q = s->slots[i].seq;
        if (q && s->broken[0]) request_fail_locked(q->req, s->broken);
        if (q && !q->req->cancelled && client_gone_locked(q->req)) q->req->cancelled = 1;
        if (q && (q->req->cancelled || q->req->failed)) seq_finish_locked(s, q, CLLM_FINISH_CANCELLED);
    }
    while (s->q_head && s->busy < s->p.parallel) {
        srv_seq *q = s->q_head;
        s->q_head = q->next;
        if (!s->q_head) s->q_tail = NULL;
        s->queued--;
        q->next = NULL;
        srv_request *r = q->req;
        if (s->broken[0]) request_fail_locked(r, s->broken);
        if (!r->cancelled && client_gone_locked(r)) r->cancelled = 1;
        if (r->cancelled || r->failed) {
            seq_finish_locked(s, q, CLLM_FINISH_CANCELLED);
            continue;
        }
        int best = -1, best_len = -1;
        for (int i = 0; i < s->p.parallel; i++) {
            if (s->slots[i].seq) continue;
            int l = lcp(s->slots[i].cached, s->slots[i].n_cached, r->prompt, r->n_prompt);
            if (l > best_len) best = i, best_len = l;
        }
        /* Another slot (busy or free) may hold a longer prefix of this
         * prompt, e.g. a shared system prompt: copy its cached positions
         * instead of computing them again. Done here, in admission order,
         * so a later admission sees this slot's new contents. */
        int src = -1, src_len = best_len;
        for (int i = 0; i < s->p.parallel; i++) {
            if (i == best) continue;
            int l = lcp(s->slots[i].cached, s->slots[i].n_cached, r->prompt, r->n_prompt);
            if (l > src_len) src = i, src_len = l;
        }
        if (src >= 0 && src_len > 1) {
            cllm_error err;
            int n = src_len < r->n_prompt - 1 ? src_len : r->n_prompt - 1;
            if (cllm_model_kv_copy(s->model, best, src, n, &err) == CLLM_OK) {
                memcpy(s->slots[best].cached, s->slots[src].cached, (size_t)n * sizeof(uint32_t));
                s->slots[best].n_cached = n;
                best_len = n;
                s->m.copied_tokens += (uint64_t)n;
            }
        }
        int reuse = best_len < r->n_prompt - 1 ? best_len : r->n_prompt - 1;
        s->slots[best].seq = q;
        s->busy++;
        q->slot = best;
        q->state = SEQ_PREFILL;
        q->n_prefilled = reuse;
        q->n_reused = reuse;
        q->slot_used = best;
        q->t_admit_ns = srv_now_ns();
        s->m.reused_tokens += (uint64_t)reuse;
    }
    srv_request *ej = NULL;
    if (s->n_embed > 0) {
        ej = s->embed_head[s->embed_first];
        s->embed_first = (s->embed_first + 1) % 64;
        s->n_embed--;
    }
    return ej;
}

/* Samples the next token of q from logits[V], emits its text and decides
 * whether q is finished. Called without the lock; takes it to emit. */
static void take_token(cllm_server *s, srv_seq *q, const float *logits) {
    srv_request *r = q->req;
    cllm_token_logprob top[CLLM_GENERATE_MAX_TOP];
    float lp = 0.0f;
    int32_t tok = cllm_sampler_sample(q->sampler, logits, &lp, top, r->n_top);
    if (tok < 0) { /* no finite logit, or a grammar dead end: the request fails (500 / SSE error event) */
        char msg[200];
        if (tok == CLLM_SAMPLER_GRAMMAR_DEAD_END)
            snprintf(msg, sizeof msg,
                     "at position %d no token keeps the output valid under the grammar (the vocabulary cannot "
                     "spell what it needs next)",
                     cllm_model_kv_length(s->model, q->slot));
        else
            snprintf(msg, sizeof msg,
                     "the model produced no finite logit at position %d (every logit is NaN or infinite)",
                     cllm_model_kv_length(s->model, q->slot));
        lap(s, SRV_PH_SAMPLE);
        pthread_mutex_lock(&s->mu);
        request_fail_locked(r, msg);
        seq_finish_locked(s, q, CLLM_FINISH_CANCELLED);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    cllm_sampler_advance(q->sampler, tok);
    if (q->n_gen++ == 0) q->t_prompt_ns = srv_now_ns();
    char out[CLLM_TEXT_STREAM_OUT_MAX];
    size_t rlen = 0;
    int finish = -1;
    int next_pos = cllm_model_kv_length(s->model, q->slot);
    if (cllm_generate_is_eog(&s->gen, tok)) {
        rlen = cllm_text_stream_end(&q->text_stream, out);
        finish = CLLM_FINISH_STOP;
    } else {
        cllm_error err; /* an undecodable token adds no text (the sampler only draws ids < V) */
        if (cllm_text_stream_token(&q->text_stream, s->tok, (uint32_t)tok, out, &rlen, &err) != CLLM_OK) rlen = 0;
        if (cllm_text_stream_stopped(&q->text_stream)) {
            finish = CLLM_FINISH_STOP;
        } else if (cllm_sampler_grammar_finished(q->sampler)) { /* nothing may follow: as at an eog token */
            finish = CLLM_FINISH_STOP;
            rlen += cllm_text_stream_end(&q->text_stream, out + rlen);
        } else if (q->n_gen >= r->max_tokens || next_pos >= s->ctx ||
                 (s->p.request_timeout_s > 0 && srv_now_ns() - r->t_submit_ns >= (uint64_t)s->p.request_timeout_s * 1000000000u)) {
            finish = next_pos >= s->ctx && q->n_gen < r->max_tokens ? CLLM_FINISH_CONTEXT : CLLM_FINISH_LENGTH;
            rlen += cllm_text_stream_end(&q->text_stream, out + rlen);
        }
    }
    q->last_token = tok;
    q->pos = next_pos;
    lap(s, SRV_PH_SAMPLE);
    pthread_mutex_lock(&s->mu);
    s->m.generated_tokens++;
    r->completion_tokens++;
    if (!r->cancelled && !r->failed) {
        srv_emit_token(s, q, out, rlen, tok, cllm_generate_is_eog(&s->gen, tok), lp, top, r->n_top);
        /* A stream's connection is resumed once per step, after every row
         * is sampled (wake_all): resuming per token woke the network thread
         * in the middle of the step, taking the core from the worker. A
         * non-stream answer waits for the end. */
        if (r->stream && r->conn && r->suspended && !r->wake_queued && s->n_wake < s->p.parallel) {
            r->wake_queued = 1;
            r->refs++;
            s->wake[s->n_wake++] = r;
        }
    }
    if (finish >= 0) seq_finish_locked(s, q, (cllm_finish_reason)finish);
    else q->state = SEQ_GEN;
    pthread_mutex_unlock(&s->mu);
    lap(s, SRV_PH_EMIT);
}

static void fail_seq(cllm_server *s, srv_seq *q, const cllm_error *err) {
    pthread_mutex_lock(&s->mu);
    request_fail_locked(q->req, err->msg);
    seq_finish_locked(s, q, CLLM_FINISH_CANCELLED);
    pthread_mutex_unlock(&s->mu);
}

static void run_embed(cllm_server *s, srv_request *r) {
    cllm_error err;
    int failed = 0;
    for (int i = 0; i < r->n_inputs && !failed; i++) {
        int32_t *ids = malloc((size_t)r->input_len[i] * sizeof *ids);
        if (!ids) {
            cllm_error_set(&err, CLLM_ERR_NOMEM, "out of memory");
            failed = 1;
            break;
        }
        for (int k = 0; k < r->input_len[i]; k++) ids[k] = (int32_t)r->inputs[i][k];
        failed = cllm_model_embed(s->model, s->p.parallel, ids, r->input_len[i], r->embeddings + (size_t)i * s->C,
                                  &err) != CLLM_OK;
        free(ids);
    }
    lap(s, SRV_PH_EMBED);
    pthread_mutex_lock(&s->mu);
    flush_times_locked(s); /* published before the client hears back */
    if (failed) request_fail_locked(r, err.msg);
    r->finished = 1;
    wake_locked(r);
    srv_request_release_locked(s, r);
    pthread_mutex_unlock(&s->mu);
}

/* Resumes the connections of the streams that got output this step. */
static void wake_all(cllm_server *s) {
    if (s->n_wake == 0) return;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n_wake; i++) {
        srv_request *r = s->wake[i];
        r->wake_queued = 0;
        wake_locked(r);
        srv_request_release_locked(s, r);
    }
    s->n_wake = 0;
    pthread_mutex_unlock(&s->mu);
    lap(s, SRV_PH_EMIT);
}

/* One model pass over the step's rows: first the last sampled token of
 * every generating slot, then prompt tokens of prefilling slots (in slot
 * order, each continuing where it stopped) while rows remain under max_seq.
 * Logits are asked for the decode rows and the last row of each prompt
 * that this step completes. */
static int gather_rows(cllm_server *s, int *slot, int *pos, int32_t *tok, unsigned char *want, srv_seq **seq,
                       int *n_decode) {
    const int P = s->p.parallel;
    int n = 0;
    for (int i = 0; i < P; i++) {
        srv_seq *q = s->slots[i].seq; /* only the worker changes slot owners */
        if (!q || q->state != SEQ_GEN) continue;
        slot[n] = i, pos[n] = q->pos, tok[n] = q->last_token, want[n] = 1, seq[n] = q;
        n++;
    }
    *n_decode = n;
    for (int i = 0; i < P && n < s->max_seq; i++) {
        srv_seq *q = s->slots[i].seq;
        if (!q || q->state != SEQ_PREFILL) continue;
        const srv_request *r = q->req;
        const int start = q->n_prefilled;
        const int cnt = r->n_prompt - start < s->max_seq - n ? r->n_prompt - start : s->max_seq - n;
        for (int t = 0; t < cnt; t++) {
            slot[n] = i, pos[n] = start + t, tok[n] = (int32_t)r->prompt[start + t], seq[n] = q;
            want[n] = t == cnt - 1 && start + cnt == r->n_prompt;
            n++;
        }
    }
    return n;
}

static void *worker_main(void *arg) {
    cllm_server *s = arg;
    const int R = s->max_seq; /* rows per model pass (>= parallel, checked at start) */
    int *rows_slot = malloc((size_t)R * sizeof *rows_slot), *rows_pos = malloc((size_t)R * sizeof *rows_pos);
    int32_t *rows_tok = malloc((size_t)R * sizeof *rows_tok);
    unsigned char *rows_want = malloc((size_t)R);
    srv_seq **rows_seq = malloc((size_t)R * sizeof *rows_seq);
    pthread_setname_np(pthread_self(), "cllm-worker");
    /* The OpenMP thread count is per thread: a new thread starts from the
     * default (every CPU), not from the caller's cllm_kernels_set_threads. */
    int threads = cllm_kernels_set_threads(s->threads);
    pthread_mutex_lock(&s->mu);
    s->m.worker_threads = threads;
    const int no_memory = !rows_slot || !rows_pos || !rows_tok || !rows_want || !rows_seq;
    if (no_memory) s->stopping = 1; /* requests are ended with an error by srv_worker_stop */
    pthread_mutex_unlock(&s->mu);
    s->wk_t = clock_ns(CLOCK_MONOTONIC);
    for (;;) {
        srv_request *ej = NULL;
        pthread_mutex_lock(&s->mu);
        for (;;) {
            if (s->stopping) break;
            ej = schedule_locked(s);
            if (s->busy > 0 || ej) break;
            lap(s, SRV_PH_SCHEDULE);
            flush_times_locked(s);
            pthread_cond_wait(&s->cv, &s->mu);
            lap(s, SRV_PH_IDLE);
        }
        int stop = s->stopping;
        pthread_mutex_unlock(&s->mu);
        lap(s, SRV_PH_SCHEDULE);
        if (stop) {
            if (ej) { /* taken from the queue: give it back to the shutdown path */
                pthread_mutex_lock(&s->mu);
                request_fail_locked(ej, "the server is shutting down");
                ej->finished = 1;
                wake_locked(ej);
                srv_request_release_locked(s, ej);
                pthread_mutex_unlock(&s->mu);
            }
            break;
        }
        if (ej) run_embed(s, ej);
        int n_decode = 0;
        const int n = gather_rows(s, rows_slot, rows_pos, rows_tok, rows_want, rows_seq, &n_decode);
        if (s->p.debug_step_delay_ms > 0) {
            struct timespec ts = {s->p.debug_step_delay_ms / 1000, (long)(s->p.debug_step_delay_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
            lap(s, SRV_PH_IDLE);
        }
        if (n == 0) continue;
        const float *logits = NULL;
        int n_logits = 0;
        cllm_error err;
        cllm_status st = cllm_model_decode_rows(s->model, n, rows_slot, rows_tok, rows_pos, rows_want, &logits,
                                                &n_logits, &err);
        /* A model file truncated or rewritten under the map (the SIGBUS guard
         * turned its pages into zeros) makes this pass's logits meaningless:
         * its sequences fail, and so does everything after (/health says why). */
        if (st == CLLM_OK && (st = cllm_model_check_file(s->model, &err)) != CLLM_OK) {
            pthread_mutex_lock(&s->mu);
            snprintf(s->broken, sizeof s->broken, "%s", err.msg);
            pthread_mutex_unlock(&s->mu);
        }
        lap(s, SRV_PH_FORWARD);
        if (st != CLLM_OK) {
            for (int k = 0; k < n; k++) {
                if (k > 0 && rows_seq[k] == rows_seq[k - 1]) continue; /* a prompt's rows: one sequence */
                s->slots[rows_slot[k]].n_cached = 0;
                fail_seq(s, rows_seq[k], &err);
            }
            continue;
        }
        pthread_mutex_lock(&s->mu);
        s->m.decode_steps++;
        s->m.batched_rows += (uint64_t)n_decode;
        s->m.prompt_tokens += (uint64_t)(n - n_decode);
        flush_times_locked(s);
        pthread_mutex_unlock(&s->mu);
        lap(s, SRV_PH_EMIT);
        int li = 0;
        for (int k = 0; k < n; k++) {
            srv_seq *q = rows_seq[k];
            srv_slot *sl = &s->slots[rows_slot[k]];
            sl->cached[rows_pos[k]] = (uint32_t)rows_tok[k];
            sl->n_cached = rows_pos[k] + 1;
            if (q->state == SEQ_PREFILL) q->n_prefilled = rows_pos[k] + 1;
            /* a sequence's wanted row is its last in this pass: take_token may free it */
            if (rows_want[k]) take_token(s, q, logits + (size_t)li++ * s->V);
        }
        wake_all(s);
    }
    free(rows_slot);
    free(rows_pos);
    free(rows_tok);
    free(rows_want);
    free(rows_seq);
    return NULL;
}

int srv_worker_start(cllm_server *s) {
    s->threads = cllm_kernels_threads();
    s->slots = calloc((size_t)s->p.parallel, sizeof *s->slots);
    s->wake = calloc((size_t)s->p.parallel, sizeof *s->wake);
    if (!s->slots || !s->wake) return -1;
    for (int i = 0; i < s->p.parallel; i++) {
        s->slots[i].cached = malloc((size_t)s->ctx * sizeof(uint32_t));
        if (!s->slots[i].cached) return -1;
    }
    if (pthread_create(&s->worker, NULL, worker_main, s) != 0) return -1;
    s->worker_started = 1;
    return 0;
}

/* Stops the worker, then ends every request it still holds with an error. */
void srv_worker_stop(cllm_server *s) {
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->worker_started) pthread_join(s->worker, NULL);
    s->worker_started = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; s->slots && i < s->p.parallel; i++) {
        srv_seq *q = s->slots[i].seq;
        if (q) {
            request_fail_locked(q->req, "the server is shutting down");
            seq_finish_locked(s, q, CLLM_FINISH_CANCELLED);
        }
    }
    while (s->q_head) {
        srv_seq *q = s->q_head;
        s->q_head = q->next;
        s->queued--;
        request_fail_locked(q->req, "the server is shutting down");
        seq_finish_locked(s, q, CLLM_FINISH_CANCELLED);
    }
    s->q_tail = NULL;
    while (s->n_embed > 0) {
        srv_request *r = s->embed_head[s->embed_first];
        s->embed_first = (s->embed_first + 1) % 64;
        s->n_embed--;
        request_fail_locked(r, "the server is shutting down");
        r->finished = 1;
        wake_locked(r);
        srv_request_release_locked(s, r);
    }
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; s->slots && i < s->p.parallel; i++) free(s->slots[i].cached);
    free(s->slots);
    s->slots = NULL;
    free(s->wake);
    s->wake = NULL;
}

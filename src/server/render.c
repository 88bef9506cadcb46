/*
 * render.c: response JSON: OpenAI-shaped errors, the final answer of a
 * finished request (chat, text completion, embeddings), and the SSE chunks
 * the worker appends to a streaming request's output (mu held).
 *
 * Streamed text is cut on whole UTF-8 characters (a partial one waits for
 * the next token; a dangling one ends as U+FFFD). Completions' logprobs use
 * the legacy shape (tokens, token_logprobs, top_logprobs, text_offset).
 * Not here: parsing requests (request.c), routing (routes.c), sockets
 * (http.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_internal.h"

srv_reply srv_error(int status, const char *type, const char *param, const char *code, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* The message and param may quote the request (a field name, a role):
     * JSON must be valid UTF-8, so bad bytes (or a character cut by %.40s)
     * become U+FFFD rather than being copied. */
    char *m = srv_utf8_repair(msg, strlen(msg)), *pm = param ? srv_utf8_repair(param, strlen(param)) : NULL;
    cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(e, "message", m ? m : "");
    cJSON_AddStringToObject(e, "type", type);
    if (param) cJSON_AddStringToObject(e, "param", pm ? pm : "");
    else cJSON_AddNullToObject(e, "param");
    free(m);
    free(pm);
    if (code) cJSON_AddStringToObject(e, "code", code);
    else cJSON_AddNullToObject(e, "code");
    srv_reply r = {status, cJSON_PrintUnformatted(root), "application/json"};
    cJSON_Delete(root);
    return r;
}

srv_reply srv_reply_json(cJSON *root) {
    srv_reply r = {200, cJSON_PrintUnformatted(root), "application/json"};
    cJSON_Delete(root);
    return r;
}

/* ---- responses --------------------------------------------------------- */

static const char *finish_name(cllm_finish_reason f) {
    return f == CLLM_FINISH_LENGTH || f == CLLM_FINISH_CONTEXT ? "length" : "stop";
}

static cJSON *logprob_entry(cllm_server *s, int32_t token, float lp, const cllm_token_logprob *top, int n_top) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "token", srv_token_text(s->tok, token));
    cJSON_AddNumberToObject(o, "logprob", lp);
    cJSON_AddItemToObject(o, "bytes", srv_token_bytes(s->tok, token));
    cJSON *a = cJSON_AddArrayToObject(o, "top_logprobs");
    for (int k = 0; k < n_top; k++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddItemToObject(t, "token", srv_token_text(s->tok, top[k].token));
        cJSON_AddNumberToObject(t, "logprob", top[k].logprob);
        cJSON_AddItemToObject(t, "bytes", srv_token_bytes(s->tok, top[k].token));
        cJSON_AddItemToArray(a, t);
    }
    return o;
}

/* Chat-style entries -> the legacy completions logprobs object. */
static cJSON *legacy_logprobs(const cJSON *entries, size_t text_base) {
    cJSON *o = cJSON_CreateObject();
    cJSON *toks = cJSON_AddArrayToObject(o, "tokens"), *lps = cJSON_AddArrayToObject(o, "token_logprobs");
    cJSON *tops = cJSON_AddArrayToObject(o, "top_logprobs"), *offs = cJSON_AddArrayToObject(o, "text_offset");
    size_t off = text_base;
    const cJSON *e;
    cJSON_ArrayForEach(e, entries) {
        const char *t = cJSON_GetObjectItemCaseSensitive(e, "token")->valuestring;
        cJSON_AddItemToArray(toks, cJSON_CreateString(t));
        cJSON_AddItemToArray(lps, cJSON_CreateNumber(cJSON_GetObjectItemCaseSensitive(e, "logprob")->valuedouble));
        cJSON *m = cJSON_CreateObject();
        const cJSON *alt;
        cJSON_ArrayForEach(alt, cJSON_GetObjectItemCaseSensitive(e, "top_logprobs")) {
            const char *at = cJSON_GetObjectItemCaseSensitive(alt, "token")->valuestring;
            if (!cJSON_GetObjectItemCaseSensitive(m, at))
                cJSON_AddNumberToObject(m, at, cJSON_GetObjectItemCaseSensitive(alt, "logprob")->valuedouble);
        }
        cJSON_AddItemToArray(tops, m);
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        off += strlen(t);
    }
    return o;
}

/* llama.cpp's `timings` of a request, from its first choice: prompt
 * tokens computed (cached ones excluded) and generated tokens, with times. */
static cJSON *timings_json(const srv_request *r) {
    const srv_seq *q = &r->seqs[0];
    cJSON *t = cJSON_CreateObject();
    double prompt_ms = (double)(q->t_prompt_ns - q->t_admit_ns) * 1e-6;
    double pred_ms = (double)(q->t_end_ns - q->t_prompt_ns) * 1e-6;
    int prompt_n = r->n_prompt - q->n_reused, pred_n = q->n_gen;
    cJSON_AddNumberToObject(t, "cache_n", q->n_reused);
    cJSON_AddNumberToObject(t, "prompt_n", prompt_n);
    cJSON_AddNumberToObject(t, "prompt_ms", prompt_ms);
    cJSON_AddNumberToObject(t, "prompt_per_token_ms", prompt_n > 0 ? prompt_ms / prompt_n : 0);
    cJSON_AddNumberToObject(t, "prompt_per_second", prompt_ms > 0 ? 1e3 * prompt_n / prompt_ms : 0);
    cJSON_AddNumberToObject(t, "predicted_n", pred_n);
    cJSON_AddNumberToObject(t, "predicted_ms", pred_ms);
    cJSON_AddNumberToObject(t, "predicted_per_token_ms", pred_n > 0 ? pred_ms / pred_n : 0);
    cJSON_AddNumberToObject(t, "predicted_per_second", pred_ms > 0 ? 1e3 * pred_n / pred_ms : 0);
    return t;
}

/* llama.cpp's stop_type: "word" (a stop string, named in stopping_word), "eos" or "limit". */
static const char *stop_type(const srv_seq *q) {
    if (q->finish != CLLM_FINISH_STOP) return "limit";
    return cllm_stop_matched(&q->text_stream.stop) ? "word" : "eos";
}

/* llama.cpp's /completion fields common to its stream chunks and answers. */
static void add_native_end(cllm_server *s, cJSON *o, const srv_request *r, const srv_seq *q) {
    cJSON_AddStringToObject(o, "model", s->p.model_name);
    cJSON_AddNumberToObject(o, "tokens_predicted", q->n_gen);
    cJSON_AddNumberToObject(o, "tokens_evaluated", r->n_prompt);
    cJSON_AddNumberToObject(o, "tokens_cached", q->n_reused);
    cJSON_AddStringToObject(o, "stop_type", stop_type(q));
    const char *word = cllm_stop_matched(&q->text_stream.stop);
    cJSON_AddStringToObject(o, "stopping_word", word ? word : "");
    cJSON_AddBoolToObject(o, "truncated", 0);
    cJSON_AddItemToObject(o, "timings", timings_json(r));
}

static void emit_native_chunk(cllm_server *s, srv_seq *q, const char *text, size_t len, cJSON *entry,
                              const char *finish) {
    srv_request *r = q->req;
    cJSON *c = cJSON_CreateObject();
    char *t = srv_utf8_repair(text, len);
    cJSON_AddStringToObject(c, "content", t ? t : "");
    free(t);
    cJSON_AddNumberToObject(c, "index", q->index);
    cJSON_AddNumberToObject(c, "id_slot", q->slot);
    cJSON_AddBoolToObject(c, "stop", finish != NULL);
    if (entry) {
        cJSON *a = cJSON_AddArrayToObject(c, "completion_probabilities");
        cJSON_AddItemToArray(a, entry); /* the chat-style entry: token, logprob, bytes, top_logprobs */
    }
    if (finish) add_native_end(s, c, r, q);
    srv_sse_event(&r->out, c);
    cJSON_Delete(c);
}

static cJSON *chunk_base(cllm_server *s, srv_request *r) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "id", r->id);
    cJSON_AddStringToObject(c, "object", r->kind == SRV_CHAT ? "chat.completion.chunk" : "text_completion");
    cJSON_AddNumberToObject(c, "created", (double)r->created);
    cJSON_AddStringToObject(c, "model", s->p.model_name);
    cJSON_AddStringToObject(c, "system_fingerprint", s->fingerprint);
    return c;
}

static void add_usage(cJSON *o, srv_request *r) {
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", r->n_prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", r->completion_tokens);
    cJSON_AddNumberToObject(u, "total_tokens", r->n_prompt + r->completion_tokens);
    /* Prompt tokens served from a slot's cached prefix (first choice). */
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "prompt_tokens_details"), "cached_tokens", r->seqs[0].n_reused);
}

static void emit_chunk(cllm_server *s, srv_seq *q, const char *text, size_t len, cJSON *logprobs_entry,
                       const char *finish) {
    srv_request *r = q->req;
    if (r->native) {
        emit_native_chunk(s, q, text, len, logprobs_entry, finish);
        return;
    }
    if (r->kind == SRV_CHAT && !q->sent_role) {
        /* First a chunk with only the role (as OpenAI and llama.cpp send). */
        q->sent_role = 1;
        cJSON *c = chunk_base(s, r);
        cJSON *ch = cJSON_CreateObject();
        cJSON_AddItemToArray(cJSON_AddArrayToObject(c, "choices"), ch);
        cJSON_AddNumberToObject(ch, "index", q->index);
        cJSON *delta = cJSON_AddObjectToObject(ch, "delta");
        cJSON_AddStringToObject(delta, "role", "assistant");
        cJSON_AddStringToObject(delta, "content", "");
        cJSON_AddNullToObject(ch, "logprobs");
        cJSON_AddNullToObject(ch, "finish_reason");
        srv_sse_event(&r->out, c);
        cJSON_Delete(c);
    }
    cJSON *c = chunk_base(s, r);
    cJSON *choices = cJSON_AddArrayToObject(c, "choices"), *ch = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, ch);
    cJSON_AddNumberToObject(ch, "index", q->index);
    char *t = malloc(len + 1);
    if (t) {
        memcpy(t, text, len);
        t[len] = '\0';
    }
    if (r->kind == SRV_CHAT) {
        cJSON *delta = cJSON_AddObjectToObject(ch, "delta");
        if (!finish) cJSON_AddStringToObject(delta, "content", t ? t : "");
        if (logprobs_entry) {
            cJSON *lo = cJSON_AddObjectToObject(ch, "logprobs");
            cJSON *a = cJSON_AddArrayToObject(lo, "content");
            cJSON_AddItemToArray(a, logprobs_entry);
        } else {
            cJSON_AddNullToObject(ch, "logprobs");
        }
    } else {
        cJSON_AddStringToObject(ch, "text", t ? t : "");
        if (logprobs_entry) {
            cJSON *tmp = cJSON_CreateArray();
            cJSON_AddItemToArray(tmp, logprobs_entry);
            cJSON_AddItemToObject(ch, "logprobs", legacy_logprobs(tmp, q->text.len));
            cJSON_Delete(tmp);
        } else {
            cJSON_AddNullToObject(ch, "logprobs");
        }
    }
    if (finish) cJSON_AddStringToObject(ch, "finish_reason", finish);
    else cJSON_AddNullToObject(ch, "finish_reason");
    free(t);
    srv_sse_event(&r->out, c);
    cJSON_Delete(c);
}

void srv_emit_token(cllm_server *s, srv_seq *q, const char *text, size_t len, int32_t token, int eog, float lp,
                    const cllm_token_logprob *top, int n_top) {
    srv_request *r = q->req;
    /* Join with a held incomplete character; send only whole characters. */
    char buf[4 + CLLM_TEXT_STREAM_OUT_MAX];
    size_t n = 0;
    memcpy(buf, q->utf8_carry, (size_t)q->n_carry);
    n = (size_t)q->n_carry;
    if (len > sizeof buf - n) len = sizeof buf - n;
    memcpy(buf + n, text, len);
    n += len;
    size_t whole = srv_utf8_complete(buf, n);
    q->n_carry = (int)(n - whole);
    memcpy(q->utf8_carry, buf + whole, (size_t)q->n_carry);
    cJSON *entry = r->want_logprobs && !eog ? logprob_entry(s, token, lp, top, n_top) : NULL;
    if (r->stream && r->kind == SRV_CHAT && r->tools && r->tool_mode != SRV_TOOLS_OFF) {
        /* With tools the text is held until the end: it may be tool calls (tools.c). */
        srv_buf_append(&q->text, buf, whole);
        cJSON_Delete(entry);
        return;
    }
    if (!r->stream) {
        srv_buf_append(&q->text, buf, whole);
        if (entry) cJSON_AddItemToArray(q->logprobs, entry);
        return;
    }
    if (whole == 0 && !entry) return;
    emit_chunk(s, q, buf, whole, entry, NULL);
    /* Completions' text_offset counts the text sent so far. */
    if (r->kind == SRV_COMPLETION) srv_buf_append(&q->text, buf, whole);
}

/* A stream's tool calls, in one delta (each with its index, as OpenAI's). */
static void emit_tool_calls_chunk(cllm_server *s, srv_seq *q, cJSON *calls) {
    srv_request *r = q->req;
    cJSON *c = chunk_base(s, r), *ch = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(c, "choices"), ch);
    cJSON_AddNumberToObject(ch, "index", q->index);
    int k = 0;
    cJSON *tc;
    cJSON_ArrayForEach(tc, calls) cJSON_AddNumberToObject(tc, "index", k++);
    cJSON_AddItemReferenceToObject(cJSON_AddObjectToObject(ch, "delta"), "tool_calls", calls);
    cJSON_AddNullToObject(ch, "logprobs");
    cJSON_AddNullToObject(ch, "finish_reason");
    srv_sse_event(&r->out, c);
    cJSON_Delete(c);
}

void srv_emit_finish(cllm_server *s, srv_seq *q) {
    srv_request *r = q->req;
    int held = r->stream && r->kind == SRV_CHAT && r->tools && r->tool_mode != SRV_TOOLS_OFF;
    if (q->n_carry) { /* a dangling partial character: U+FFFD, as the decoder does */
        const char *rep = "\xEF\xBF\xBD";
        q->n_carry = 0;
        if (r->stream && !held) emit_chunk(s, q, rep, 3, NULL, NULL);
        else srv_buf_append(&q->text, rep, 3);
    }
    if (!r->stream) return;
    const char *finish = finish_name(q->finish);
    if (held) { /* the held text: its tool calls, and the text around them */
        srv_buf_append(&q->text, "", 0);
        char *content = NULL;
        cJSON *calls = srv_tools_extract(r, q->index, q->text.data ? q->text.data : "", &content);
        const char *text = calls ? content : q->text.data;
        if (text && *text) emit_chunk(s, q, text, strlen(text), NULL, NULL);
        if (calls) {
            if (!q->sent_role) emit_chunk(s, q, "", 0, NULL, NULL);
            emit_tool_calls_chunk(s, q, calls);
            finish = "tool_calls";
        }
        cJSON_Delete(calls);
        free(content);
    }
    emit_chunk(s, q, "", 0, NULL, finish);
}

void srv_emit_request_end(cllm_server *s, srv_request *r) {
    if (!r->stream) return;
    if (r->failed) {
        cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error");
        cJSON_AddStringToObject(e, "message", r->errmsg);
        cJSON_AddStringToObject(e, "type", "server_error");
        cJSON_AddNullToObject(e, "param");
        cJSON_AddNullToObject(e, "code");
        srv_sse_event(&r->out, root);
        cJSON_Delete(root);
    } else if (r->include_usage && !r->native) {
        cJSON *c = chunk_base(s, r);
        cJSON_AddArrayToObject(c, "choices");
        add_usage(c, r);
        cJSON_AddItemToObject(c, "timings", timings_json(r));
        srv_sse_event(&r->out, c);
        cJSON_Delete(c);
    }
    if (!r->native) srv_sse_done(&r->out); /* llama.cpp's /completion stream ends without [DONE] */
}

srv_reply srv_final_reply(cllm_server *s, srv_request *r) {
    if (r->failed) return srv_error(500, "server_error", NULL, NULL, "%s", r->errmsg);
    if (r->kind == SRV_EMBED && r->native) { /* llama.cpp's /embedding: [{"index", "embedding"}] */
        cJSON *root = cJSON_CreateArray();
        for (int i = 0; i < r->n_inputs; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "index", i);
            cJSON_AddItemToObject(o, "embedding", cJSON_CreateFloatArray(r->embeddings + (size_t)i * s->C, s->C));
            cJSON_AddItemToArray(root, o);
        }
        return srv_reply_json(root);
    }
    if (r->kind == SRV_EMBED) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "object", "list");
        cJSON *data = cJSON_AddArrayToObject(root, "data");
        int total = 0;
        for (int i = 0; i < r->n_inputs; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "object", "embedding");
            cJSON_AddNumberToObject(o, "index", i);
            const float *v = r->embeddings + (size_t)i * s->C;
            if (r->base64) { /* little-endian float32, base64 (what OpenAI's clients request by default) */
                static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
                const uint8_t *b = (const uint8_t *)v;
                size_t nb = (size_t)s->C * 4, k = 0;
                char *enc = malloc(4 * ((nb + 2) / 3) + 1);
                for (size_t j = 0; enc && j < nb; j += 3) {
                    uint32_t w = (uint32_t)b[j] << 16 | (j + 1 < nb ? (uint32_t)b[j + 1] << 8 : 0) |
                                 (j + 2 < nb ? b[j + 2] : 0);
                    enc[k++] = tab[w >> 18 & 63];
                    enc[k++] = tab[w >> 12 & 63];
                    enc[k++] = j + 1 < nb ? tab[w >> 6 & 63] : '=';
                    enc[k++] = j + 2 < nb ? tab[w & 63] : '=';
                }
                if (enc) enc[k] = '\0';
                cJSON_AddStringToObject(o, "embedding", enc ? enc : "");
                free(enc);
            } else {
                cJSON *a = cJSON_AddArrayToObject(o, "embedding");
                for (int k = 0; k < s->C; k++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[k]));
            }
            cJSON_AddItemToArray(data, o);
            total += r->input_len[i];
        }
        cJSON_AddStringToObject(root, "model", s->p.model_name);
        cJSON *u = cJSON_AddObjectToObject(root, "usage");
        cJSON_AddNumberToObject(u, "prompt_tokens", total);
        cJSON_AddNumberToObject(u, "total_tokens", total);
        return srv_reply_json(root);
    }
    if (r->native) { /* llama.cpp's /completion answer (first choice) */
        srv_seq *q = &r->seqs[0];
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "content", q->text.data ? q->text.data : "");
        cJSON_AddNumberToObject(root, "index", 0);
        cJSON_AddNumberToObject(root, "id_slot", q->slot_used);
        cJSON_AddBoolToObject(root, "stop", 1);
        add_native_end(s, root, r, q);
        if (q->logprobs) {
            cJSON *a = cJSON_AddArrayToObject(root, "completion_probabilities");
            const cJSON *e;
            cJSON_ArrayForEach(e, q->logprobs) cJSON_AddItemToArray(a, cJSON_Duplicate(e, 1));
        }
        return srv_reply_json(root);
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "id", r->id);
    cJSON_AddStringToObject(root, "object", r->kind == SRV_CHAT ? "chat.completion" : "text_completion");
    cJSON_AddStringToObject(root, "system_fingerprint", s->fingerprint);
    cJSON_AddNumberToObject(root, "created", (double)r->created);
    cJSON_AddStringToObject(root, "model", s->p.model_name);
    cJSON *choices = cJSON_AddArrayToObject(root, "choices");
    for (int i = 0; i < r->n; i++) {
        srv_seq *q = &r->seqs[i];
        cJSON *ch = cJSON_CreateObject();
        cJSON_AddNumberToObject(ch, "index", i);
        const char *text = q->text.data ? q->text.data : "";
        const char *finish = finish_name(q->finish);
        if (r->kind == SRV_CHAT) {
            cJSON *m = cJSON_AddObjectToObject(ch, "message");
            cJSON_AddStringToObject(m, "role", "assistant");
            char *content = NULL;
            cJSON *calls = srv_tools_extract(r, i, text, &content);
            if (!calls) cJSON_AddStringToObject(m, "content", text);
            else if (content) cJSON_AddStringToObject(m, "content", content);
            else cJSON_AddNullToObject(m, "content");
            if (calls) {
                cJSON_AddItemToObject(m, "tool_calls", calls);
                finish = "tool_calls";
            }
            free(content);
            if (q->logprobs) {
                cJSON *lo = cJSON_AddObjectToObject(ch, "logprobs");
                cJSON_AddItemReferenceToObject(lo, "content", q->logprobs);
            } else {
                cJSON_AddNullToObject(ch, "logprobs");
            }
        } else {
            cJSON_AddStringToObject(ch, "text", text);
            if (q->logprobs) cJSON_AddItemToObject(ch, "logprobs", legacy_logprobs(q->logprobs, 0));
            else cJSON_AddNullToObject(ch, "logprobs");
        }
        cJSON_AddStringToObject(ch, "finish_reason", finish);
        cJSON_AddItemToArray(choices, ch);
    }
    add_usage(root, r);
    cJSON_AddItemToObject(root, "timings", timings_json(r));
    return srv_reply_json(root);
}


/*
 * cmd_generate.c: `cllm generate`: a prompt in, tokens streamed out.
 *
 * Reads a GGUF model (and its tokenizer), runs the sampler chain with the
 * KV cache and streams whole UTF-8 characters to stdout as they are
 * decided. Timings go to stderr. --json prints one object instead (text,
 * token ids, log-probabilities, finish reason, timings) for scripts.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cllm/core/fileio.h"
#include "cllm/infer/generate.h"
#include "model_session.h"
#include "sampler_args.h"

#define CMD "generate"

static void usage(FILE *out) {
    fprintf(out,
            "Usage: cllm generate -m MODEL.gguf (-p PROMPT | -f FILE) [options]\n\n"
            "Continues a prompt with a model and streams the text to stdout.\n\n"
            "Options:\n" MODEL_SESSION_HELP
            "  -p, --prompt TEXT      the prompt\n"
            "  -f, --file FILE        read the prompt from FILE ('-' for stdin)\n"
            "  -n, --max-tokens N     tokens to generate at most (default 128)\n"
            "  --stop TEXT            stop before TEXT (repeatable, up to 16)\n"
            "  --ignore-eos           do not stop at end-of-text tokens\n"
            "  --chat                 send the prompt as a user message through the chat template\n"
            "  --system TEXT          system message for --chat\n"
            "  --no-echo              do not print the prompt before the continuation\n"
            "  --logprobs N           with --json: N most likely alternatives per token (<= 20)\n"
            "  --json                 print one JSON object instead of streaming text\n"
            "  -h, --help             this help\n\n" SAMPLER_HELP "\n" GRAMMAR_HELP);
}

typedef struct {
    int json;
    cli_text out; /* accumulated released text (json mode) */
    cllm_generate_event *events; /* json mode: per-token records */
    cllm_token_logprob (*tops)[CLLM_GENERATE_MAX_TOP];
    int n_events, max_events;
} stream_ctx;

static int on_token(void *ctx, const cllm_generate_event *ev) {
    stream_ctx *s = ctx;
    if (!s->json) {
        fwrite(ev->text, 1, ev->len, stdout);
        fflush(stdout);
        return 0;
    }
    if (!cli_text_append(&s->out, ev->text, ev->len)) return 1;
    if (ev->token >= 0 && s->n_events < s->max_events) {
        s->events[s->n_events] = *ev;
        memcpy(s->tops[s->n_events], ev->top, (size_t)ev->n_top * sizeof *ev->top);
        s->n_events++;
    }
    return 0;
}

static void json_string(const char *s, size_t len) {
    putchar('"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') printf("\\n");
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

/* A log-probability as JSON: JSON has no NaN or infinity, so a token the
 * model gave no finite logit (-inf) prints as null. */
static void json_logprob(float v) {
    if (isfinite(v)) printf("%.6f", v);
    else printf("null");
}

int cllm_cmd_generate(int argc, char **argv) {
    model_session_args margs;
    model_session_args_init(&margs);
    cllm_sampler_params sp = cllm_sampler_default_params();
    cllm_generate_params gp = cllm_generate_default_params();
    grammar_args ga = {0};
    const char *prompt = NULL, *prompt_file = NULL, *system = NULL;
    const char *stops[CLLM_STOP_MAX];
    int n_stops = 0, chat = 0, echo = 1, json = 0, ignore_eos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = model_session_arg(CMD, &margs, argc, argv, &i);
        if (r == 0) r = sampler_arg(CMD, &sp, argc, argv, &i);
        if (r == 0) r = grammar_arg(CMD, &ga, argc, argv, &i);
        if (r < 0) return CLI_EXIT_USAGE;
        if (r > 0) continue;
        if (cli_is_help(a)) {
            usage(stdout);
            return CLI_EXIT_OK;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!(prompt = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (!(prompt_file = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--max-tokens")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_int(CMD, a, v, 1, 1 << 20, &gp.max_tokens))
                return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--stop")) {
            if (!(v = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
            if (n_stops >= CLLM_STOP_MAX) return cli_usage_error(CMD, "at most %d --stop strings", CLLM_STOP_MAX);
            if (strlen(v) > CLLM_STOP_MAX_LEN)
                return cli_usage_error(CMD, "--stop strings are limited to %d bytes", CLLM_STOP_MAX_LEN);
            stops[n_stops++] = v;
        } else if (!strcmp(a, "--system")) {
            if (!(system = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--logprobs")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) ||
                !cli_parse_int(CMD, a, v, 0, CLLM_GENERATE_MAX_TOP, &gp.n_top_logprobs))
                return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--chat")) chat = 1;
        else if (!strcmp(a, "--no-echo")) echo = 0;
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--ignore-eos")) ignore_eos = 1;
        else return cli_unknown_flag(CMD, a);
    }
    if (!prompt == !prompt_file) return cli_usage_error(CMD, "give exactly one of --prompt or --file");
    if (system && !chat) return cli_usage_error(CMD, "--system needs --chat");
    int rc = grammar_args_load(CMD, &ga);
    if (rc != CLI_EXIT_OK) return rc;
    cllm_error err;
    char *file_text = NULL;
    size_t prompt_len = prompt ? strlen(prompt) : 0;
    if (prompt_file) {
        if (!strcmp(prompt_file, "-")) {
            size_t cap = 0;
            FILE *in = stdin;
            for (;;) {
                if (prompt_len + 4096 + 1 > cap) {
                    cap = (cap + 4096) * 2;
                    char *t = realloc(file_text, cap);
                    if (!t) {
                        free(file_text);
                        grammar_args_free(&ga);
                        fprintf(stderr, "cllm %s: out of memory reading stdin\n", CMD);
                        return CLI_EXIT_DATA;
                    }
                    file_text = t;
                }
                size_t got = fread(file_text + prompt_len, 1, 4096, in);
                prompt_len += got;
                if (got == 0) break;
            }
            file_text[prompt_len] = 0;
        } else if (cllm_file_read_all(prompt_file, 64u << 20, &file_text, &prompt_len, &err) != CLLM_OK) {
            grammar_args_free(&ga);
            return cli_fail(CMD, &err);
        }
        prompt = file_text;
    }
    margs.template_optional = !chat; /* plain generation never renders the chat template */
    model_session s;
    rc = model_session_open(CMD, &margs, 1, &s);
    if (rc != 0) {
        free(file_text);
        grammar_args_free(&ga);
        return rc;
    }
    cllm_sampler *sampler = NULL;
    cllm_tokens ids = {0};
    cllm_status st = CLLM_OK;
    if (chat) {
        cllm_chat_message msgs[2];
        int n = 0;
        if (system) msgs[n++] = (cllm_chat_message){CLLM_ROLE_SYSTEM, system, strlen(system), NULL};
        msgs[n++] = (cllm_chat_message){CLLM_ROLE_USER, prompt, prompt_len, NULL};
        st = cllm_chat_render(s.tok, s.chat_template, msgs, n, 1, &ids, NULL, &err);
        int32_t ends[CLLM_CHAT_MAX_END_TOKENS];
        int n_end = cllm_chat_end_tokens(s.tok, s.chat_template, ends);
        for (int k = 0; k < n_end && gp.n_eog < CLLM_GENERATE_MAX_EOG; k++) gp.eog[gp.n_eog++] = ends[k];
        const char *stop_text = cllm_chat_stop_string(s.tok, s.chat_template);
        if (stop_text && n_stops < CLLM_STOP_MAX) stops[n_stops++] = stop_text;
    } else {
        int64_t bos = cllm_tokenizer_prompt_bos(s.tok); /* SentencePiece vocabularies ask for <s>, as in llama.cpp */
        if (bos >= 0) st = cllm_tokens_push(&ids, (uint32_t)bos, &err);
        if (st == CLLM_OK) st = cllm_tokenizer_encode(s.tok, prompt, prompt_len, NULL, &ids, &err);
    }
    if (!ignore_eos) cllm_generate_add_default_eog(&gp, s.tok);
    gp.stop = stops;
    gp.n_stop = n_stops;
    if (st == CLLM_OK && ids.n == 0) st = cllm_error_set(&err, CLLM_ERR_ARG, "the prompt is empty");
    if (st == CLLM_OK && !(sampler = cllm_sampler_create(&sp, (int)cllm_tokenizer_n_vocab(s.tok), &err)))
        st = err.status;
    if (st == CLLM_OK) st = cllm_sampler_exclude_unused(sampler, s.tok, &err);
    if (st == CLLM_OK) st = grammar_args_attach(&ga, sampler, s.tok, gp.eog, gp.n_eog, &err);
    stream_ctx sc = {.json = json, .max_events = gp.max_tokens};
    if (st == CLLM_OK && json) {
        sc.events = calloc((size_t)gp.max_tokens, sizeof *sc.events);
        sc.tops = calloc((size_t)gp.max_tokens, sizeof *sc.tops);
        if (!sc.events || !sc.tops) st = cllm_error_set(&err, CLLM_ERR_NOMEM, "out of memory");
    }
    cllm_generate_result res;
    if (st == CLLM_OK) {
        if (echo && !json && !chat) {
            fwrite(prompt, 1, prompt_len, stdout);
            fflush(stdout);
        }
        st = cllm_generate(s.model, 0, s.tok, sampler, ids.ids, (int)ids.n, &gp, on_token, &sc, &res, &err);
    }
    if (st == CLLM_OK) {
        if (json) {
            printf("{\"text\": ");
            json_string(sc.out.text ? sc.out.text : "", sc.out.len);
            printf(", \"finish_reason\": \"%s\", \"prompt_tokens\": %d, \"completion_tokens\": %d, \"tokens\": [",
                   cllm_finish_reason_name(res.finish), res.n_prompt, res.n_generated);
            for (int k = 0; k < sc.n_events; k++) {
                printf("%s{\"id\": %d, \"logprob\": ", k ? ", " : "", sc.events[k].token);
                json_logprob(sc.events[k].logprob);
                if (gp.n_top_logprobs > 0) {
                    printf(", \"top\": [");
                    for (int j = 0; j < gp.n_top_logprobs; j++)
                    {
                        printf("%s[%d, ", j ? ", " : "", sc.tops[k][j].token);
                        json_logprob(sc.tops[k][j].logprob);
                        printf("]");
                    }
                    printf("]");
                }
                printf("}");
            }
            printf("], \"prompt_seconds\": %.4f, \"generate_seconds\": %.4f}\n", res.prompt_seconds,
                   res.generate_seconds);
        } else {
            printf("\n");
        }
        fflush(stdout);
        fprintf(stderr, "[prompt %d token%s, %.1f tok/s | generated %d token%s, %.1f tok/s | finish: %s]\n",
                res.n_prompt, res.n_prompt == 1 ? "" : "s", res.prompt_seconds > 0 ? res.n_prompt / res.prompt_seconds : 0.0,
                res.n_generated, res.n_generated == 1 ? "" : "s",
                res.generate_seconds > 0 ? res.n_generated / res.generate_seconds : 0.0,
                cllm_finish_reason_name(res.finish));
    }
    free(sc.out.text);
    free(sc.events);
    free(sc.tops);
    cllm_sampler_destroy(sampler);
    grammar_args_free(&ga);
    cllm_tokens_free(&ids);
    model_session_close(&s);
    free(file_text);
    if (st != CLLM_OK) return cli_fail(CMD, &err);
    return CLI_EXIT_OK;
}

/*
 * cmd_serve.c: `cllm serve`: the OpenAI-compatible HTTP server
 * (include/cllm/server/server.h) over one model, until SIGINT or SIGTERM.
 *
 * Prints "cllm serve: listening on http://HOST:PORT" to stderr once the
 * socket is bound (with --port 0 the port is the one the kernel chose), so
 * scripts can wait for it. Binding to anything but loopback without
 * an API key prints a loud warning. The key comes from --api-key-file
 * (first line), the CLLM_API_KEY environment variable, or --api-key (which
 * shows in ps: prefer the other two).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cllm/core/fileio.h"
#include "cllm/server/server.h"
#include "model_session.h"
#include "sampler_args.h"

#define CMD "serve"

static void usage(FILE *out) {
    fprintf(out,
            "Usage: cllm serve -m MODEL.gguf [options]\n\n"
            "Serve a model over HTTP with OpenAI's API: /v1/chat/completions, /v1/completions,\n"
            "/v1/embeddings, /v1/models, /tokenize, /detokenize, /health, /metrics, and a chat\n"
            "page at /. Stops on Ctrl-C (SIGINT) or SIGTERM.\n\n"
            "Options:\n" MODEL_SESSION_HELP
            "  --host ADDR        address to bind (default 127.0.0.1; 0.0.0.0 = every interface)\n"
            "  --port N           TCP port (default 8080; 0 = any free port, printed at start)\n"
            "  --api-key KEY      require 'Authorization: Bearer KEY' (default: no key; visible in ps)\n"
            "  --api-key-file F   read the key from the first line of F (or set CLLM_API_KEY)\n"
            "  --parallel N       sequences decoded together in one batch (default 4, max 64)\n"
            "  --queue N          sequences waiting beyond those; more get 429 (default 16)\n"
            "  --max-body BYTES   largest request body; larger gets 413 (default 1048576)\n"
            "  --max-header BYTES per-connection header memory; more gets 431 (default 16384)\n"
            "  --timeout S        close connections idle for S seconds (default 30)\n"
            "  --max-n N          largest 'n' (choices per request) (default 8)\n"
            "  --name NAME        model id shown by /v1/models (default: the file name)\n"
            "  --cors ORIGIN      allow browser pages from ORIGIN ('*' = any): CORS headers and\n"
            "                     answers to preflight OPTIONS requests (default: none)\n"
            "  -n, --n-predict N  tokens generated when a request gives no max_tokens (default: chat to\n"
            "                     the end of the context, completions 16)\n"
            "  --request-timeout S  end generations running longer than S seconds (finish_reason\n"
            "                     \"length\"; default 0 = none)\n"
            "  --no-ui            no chat page at /\n"
            "  --no-metrics       no /metrics\n"
            "  --slots            enable GET /slots (per-slot state, as llama.cpp's --slots)\n"
            "Request defaults (a request's own fields win; --temp is --temperature; without\n"
            "--seed each request gets its own):\n"
            "  --debug-step-delay MS  sleep MS after every decode step (tests and demos of the queue)\n"
            "  -h, --help         this help\n\n" SAMPLER_HELP);
}

int cllm_cmd_serve(int argc, char **argv) {
    model_session_args margs;
    model_session_args_init(&margs);
    cllm_error err;
    cllm_server_params p = cllm_server_default_params();
    const char *name = NULL, *key_file = NULL;
    /* The API's sampling defaults unless flags change them. */
    cllm_sampler_params sp = cllm_sampler_default_params();
    sp.temperature = 1.0f, sp.top_k = 0, sp.top_p = 1.0f, sp.min_p = 0.0f, sp.penalty_window = 256;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = model_session_arg(CMD, &margs, argc, argv, &i);
        if (r < 0) return CLI_EXIT_USAGE;
        if (r > 0) continue;
        if (!strcmp(a, "--temp")) argv[i] = "--temperature"; /* llama.cpp's spelling */
        if (!strcmp(a, "--seed")) p.seed = 0;                 /* set below from sp.seed */
        r = sampler_arg(CMD, &sp, argc, argv, &i);
        if (r < 0) return CLI_EXIT_USAGE;
        if (r > 0) continue;
        int64_t big;
        if (cli_is_help(a)) {
            usage(stdout);
            return CLI_EXIT_OK;
        } else if (!strcmp(a, "--host")) {
            if (!(p.host = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--port")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_int(CMD, a, v, 0, 65535, &p.port))
                return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--api-key")) {
            if (!(p.api_key = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
            if (!p.api_key[0]) return cli_usage_error(CMD, "--api-key must not be empty");
        } else if (!strcmp(a, "--parallel")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_int(CMD, a, v, 1, 64, &p.parallel))
                return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--queue")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_int(CMD, a, v, 0, 4096, &p.queue))
                return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--max-body")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_i64(CMD, a, v, 64, 1 << 30, &big))
                return CLI_EXIT_USAGE;
            p.max_body = (size_t)big;
        } else if (!strcmp(a, "--max-header")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_i64(CMD, a, v, 4096, 1 << 24, &big))
                return CLI_EXIT_USAGE;
            p.max_header = (size_t)big;
        } else if (!strcmp(a, "--timeout")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_int(CMD, a, v, 1, 86400, &p.timeout_s))
                return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--max-n")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_int(CMD, a, v, 1, 64, &p.max_n))
                return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--name")) {
            if (!(name = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--debug-step-delay")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_int(CMD, a, v, 0, 10000, &p.debug_step_delay_ms))
                return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--api-key-file")) {
            if (!(key_file = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_int(CMD, a, v, 1, 1 << 30, &p.n_predict))
                return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--request-timeout")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_int(CMD, a, v, 0, 86400 * 7, &p.request_timeout_s))
                return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--no-ui")) {
            p.no_ui = 1;
        } else if (!strcmp(a, "--no-metrics")) {
            p.no_metrics = 1;
        } else if (!strcmp(a, "--slots")) {
            p.slots_endpoint = 1;
        } else if (!strcmp(a, "--cors")) {
            if (!(p.cors_origin = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else {
            return cli_unknown_flag(CMD, a);
        }
    }
    if (!margs.model_path) return cli_usage_error(CMD, "a model is required: -m MODEL.gguf");
    if (p.seed >= 0) p.seed = (int64_t)(sp.seed & INT64_MAX);
    p.sampling = &sp;
    char *file_key = NULL;
    if (key_file) {
        if (p.api_key) return cli_usage_error(CMD, "give --api-key or --api-key-file, not both");
        size_t len = 0;
        cllm_error ferr;
        if (cllm_file_read_all(key_file, 4096, &file_key, &len, &ferr) != CLLM_OK) return cli_fail(CMD, &ferr);
        file_key[strcspn(file_key, "\r\n")] = '\0'; /* the first line */
        if (!file_key[0]) {
            free(file_key);
            return cli_usage_error(CMD, "--api-key-file %s: the first line is empty", key_file);
        }
        p.api_key = file_key;
    } else if (!p.api_key && getenv("CLLM_API_KEY") && getenv("CLLM_API_KEY")[0]) {
        p.api_key = getenv("CLLM_API_KEY");
    }
    if (!name) {
        const char *slash = strrchr(margs.model_path, '/');
        name = slash ? slash + 1 : margs.model_path;
    }
    p.model_name = name;
    int loopback = !strcmp(p.host, "127.0.0.1") || !strcmp(p.host, "localhost") || !strcmp(p.host, "::1");
    if (cllm_sampler_params_validate(&sp, 1 << 30, &err) != CLLM_OK) {
        free(file_key);
        return cli_usage_error(CMD, "%s", err.msg);
    }
    if (!loopback && !p.api_key)
        fprintf(stderr,
                "\n*** WARNING: cllm serve is listening on %s WITHOUT an API key: anyone who can reach\n"
                "*** this machine can use the model. Pass --api-key KEY, or bind 127.0.0.1. ***\n\n",
                p.host);
    model_session s;
    int rc = model_session_open(CMD, &margs, p.parallel + 1, &s);
    if (rc != 0) {
        free(file_key);
        return rc;
    }
    p.model_title = s.name;
    p.model_description = s.description;
    if (p.parallel > s.context || p.parallel > cllm_model_get_options(s.model)->max_seq) {
        model_session_close(&s);
        free(file_key);
        return cli_usage_error(CMD, "--parallel %d is larger than the context window %d", p.parallel, s.context);
    }
    /* Signals go to sigwait below; every thread started later inherits the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    cllm_server *srv = NULL;
    if (cllm_server_start(s.model, s.tok, s.chat_template, &p, &srv, &err) != CLLM_OK) {
        model_session_close(&s);
        free(file_key);
        return cli_fail(CMD, &err);
    }
    fprintf(stderr, "cllm serve: model %s, %d slots x %d tokens, queue %d, template %s\n", name, p.parallel,
            s.context, p.queue, cllm_chat_template_name(s.chat_template));
    /* The address actually bound: an IPv6 literal in brackets (:: is every interface, not [::1]). */
    int v6 = strchr(p.host, ':') != NULL;
    fprintf(stderr, "cllm serve: listening on http://%s%s%s:%d\n", v6 ? "[" : "", p.host, v6 ? "]" : "",
            cllm_server_port(srv));
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "cllm serve: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    cllm_server_stop(srv);
    model_session_close(&s);
    free(file_key);
    return CLI_EXIT_OK;
}

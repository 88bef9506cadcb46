/*
 * cmd_serve.c: `cllm serve`: the OpenAI-compatible HTTP server
 * (include/cllm/server.h) over one model, until SIGINT or SIGTERM.
 *
 * Prints "cllm serve: listening on http://HOST:PORT" to stderr once the
 * socket is bound (with --port 0 the port is the one the kernel chose), so
 * scripts can wait for it. Binding to anything but loopback without
 * --api-key prints a loud warning.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cllm/server.h"
#include "model_session.h"

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
            "  --api-key KEY      require 'Authorization: Bearer KEY' (default: no key)\n"
            "  --parallel N       sequences decoded together in one batch (default 4, max 64)\n"
            "  --queue N          sequences waiting beyond those; more get 429 (default 16)\n"
            "  --max-body BYTES   largest request body; larger gets 413 (default 1048576)\n"
            "  --max-header BYTES per-connection header memory; more gets 431 (default 16384)\n"
            "  --timeout S        close connections idle for S seconds (default 30)\n"
            "  --max-n N          largest 'n' (choices per request) (default 8)\n"
            "  --name NAME        model id shown by /v1/models (default: the file name)\n"
            "  --cors ORIGIN      send Access-Control-Allow-Origin: ORIGIN (default: none)\n"
            "  --debug-step-delay MS  sleep MS after every decode step (tests and demos of the queue)\n"
            "  -h, --help         this help\n");
}

int cllm_cmd_serve(int argc, char **argv) {
    model_session_args margs;
    model_session_args_init(&margs);
    cllm_server_params p = cllm_server_default_params();
    const char *name = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = model_session_arg(CMD, &margs, argc, argv, &i);
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
        } else if (!strcmp(a, "--cors")) {
            if (!(p.cors_origin = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else {
            return cli_usage_error(CMD, "unknown argument '%s'", a);
        }
    }
    if (!margs.model_path) return cli_usage_error(CMD, "a model is required: -m MODEL.gguf");
    if (!name) {
        const char *slash = strrchr(margs.model_path, '/');
        name = slash ? slash + 1 : margs.model_path;
    }
    p.model_name = name;
    int loopback = !strcmp(p.host, "127.0.0.1") || !strcmp(p.host, "localhost") || !strcmp(p.host, "::1");
    if (!loopback && !p.api_key)
        fprintf(stderr,
                "\n*** WARNING: cllm serve is listening on %s WITHOUT an API key: anyone who can reach\n"
                "*** this machine can use the model. Pass --api-key KEY, or bind 127.0.0.1. ***\n\n",
                p.host);
    model_session s;
    int rc = model_session_open(CMD, &margs, p.parallel + 1, &s);
    if (rc != 0) return rc;
    if (p.parallel > s.context || p.parallel > cllm_model_get_options(s.model)->max_seq) {
        model_session_close(&s);
        return cli_usage_error(CMD, "--parallel %d is larger than the context window %d", p.parallel, s.context);
    }
    /* Signals go to sigwait below; every thread started later inherits the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    cllm_error err;
    cllm_server *srv = NULL;
    if (cllm_server_start(s.model, s.tok, s.chat_template, &p, &srv, &err) != CLLM_OK) {
        model_session_close(&s);
        return cli_fail(CMD, &err);
    }
    fprintf(stderr, "cllm serve: model %s, %d slots x %d tokens, queue %d, template %s\n", name, p.parallel,
            s.context, p.queue, cllm_chat_template_name(s.chat_template));
    fprintf(stderr, "cllm serve: listening on http://%s:%d\n", strchr(p.host, ':') ? "[::1]" : p.host,
            cllm_server_port(srv));
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "cllm serve: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    cllm_server_stop(srv);
    model_session_close(&s);
    return CLI_EXIT_OK;
}

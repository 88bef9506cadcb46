/*
 * cmd_chat.c: `cllm chat`: a terminal conversation with a model.
 *
 * Each turn renders the whole conversation with the model's chat template
 * and generates the assistant's reply, streamed. When the conversation no
 * longer fits the context window (prompt + the reply budget), the oldest
 * turns are dropped (the system message stays) and a notice says so: the
 * guide's "context limit". Lines starting with '/' are commands (/help).
 * Without a terminal (a pipe, a script), or with --prompt, every input line
 * is one user turn and only the replies are printed.
 *
 * Input: on a terminal, lines are read with libedit (Debian's libedit-dev:
 * Emacs-style editing, arrow keys, history of this session); from a pipe,
 * with getline, so scripts and tests need no terminal. Either way one turn
 * may span lines: a line ending in '\' continues on the next, and a line
 * holding only """ opens a block that the next such line closes.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <editline/readline.h>

#include "cli.h"
#include "cllm/core/fileio.h"
#include "cllm/infer/agent.h"
#include "cllm/infer/generate.h"
#include "model_session.h"
#include "sampler_args.h"

#define CMD "chat"
#define CHAT_MAX_LINE (64 * 1024)

static void usage(FILE *out) {
    fprintf(out,
            "Usage: cllm chat -m MODEL.gguf [options]\n\n"
            "Talk with a model in the terminal, its chat template applied. Reads one\n"
            "user turn per line; without a terminal (or with --prompt) prints only replies.\n\n"
            "Options:\n" MODEL_SESSION_HELP
            "  --system TEXT          system message\n"
            "  -p, --prompt TEXT      one user turn, print the reply and exit\n"
            "  -n, --max-tokens N     reply budget in tokens (default 256)\n"
            "  --tools FILE           let the model call the built-in tools this toolbox declares\n"
            "                         (calculator, shop; the world's tools.json): each call is run,\n"
            "                         shown on stderr and its result given back (docs/TOOLS.md)\n"
            "  --max-steps N          model turns per message with --tools (default 4)\n"
            "  -h, --help             this help\n\n" SAMPLER_HELP "\n" GRAMMAR_HELP
            "\nCommands in the chat:\n"
            "  /reset              forget the conversation (keeps the system message)\n"
            "  /system [TEXT]      set the system message; without TEXT, clear it\n"
            "  /set NAME VALUE     change sampling, e.g. /set temperature 0.2, /set max-tokens 64\n"
            "  /save FILE          write the transcript as JSON ({\"messages\": [...]})\n"
            "  /quit               leave (Ctrl-D too); Ctrl-C stops a reply\n"
            "\nA turn of several lines: end a line with \\ to continue it, or put it between\n"
            "two lines holding only \"\"\" (the summary task's story, say). On a terminal, lines\n"
            "are edited with libedit (arrows, Ctrl-A/E/K/W...) and Up/Down recall earlier ones.\n");
}

typedef struct {
    cllm_chat_role role;
    char *content;
} turn;

typedef struct {
    turn *turns;
    int n, cap;
    char *system;
} conversation;

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

static int conversation_add(conversation *c, cllm_chat_role role, const char *text, size_t len) {
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 16;
        turn *t = realloc(c->turns, (size_t)cap * sizeof *t);
        if (!t) return 0;
        c->turns = t;
        c->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) return 0;
    memcpy(copy, text, len);
    copy[len] = 0;
    c->turns[c->n++] = (turn){role, copy};
    return 1;
}

/* Drops the oldest turn (a user turn and the reply after it). */
static void conversation_drop_oldest(conversation *c) {
    int drop = c->n >= 2 && c->turns[1].role == CLLM_ROLE_ASSISTANT ? 2 : 1;
    for (int i = 0; i < drop; i++) free(c->turns[i].content);
    memmove(c->turns, c->turns + drop, (size_t)(c->n - drop) * sizeof *c->turns);
    c->n -= drop;
}

static void conversation_reset(conversation *c) {
    for (int i = 0; i < c->n; i++) free(c->turns[i].content);
    c->n = 0;
}

static cllm_status render(const model_session *s, const conversation *c, cllm_tokens *ids, cllm_error *err) {
    cllm_chat_message *msgs = malloc((size_t)(c->n + 1) * sizeof *msgs);
    if (!msgs) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
    int n = 0;
    if (c->system) msgs[n++] = (cllm_chat_message){CLLM_ROLE_SYSTEM, c->system, strlen(c->system), NULL};
    for (int i = 0; i < c->n; i++)
        msgs[n++] = (cllm_chat_message){c->turns[i].role, c->turns[i].content, strlen(c->turns[i].content), NULL};
    ids->n = 0;
    cllm_status st = cllm_chat_render(s->tok, s->chat_template, msgs, n, 1, ids, NULL, err);
    free(msgs);
    return st;
}

typedef struct {
    cli_text out;
    int print;
} reply;

static int on_token(void *ctx, const cllm_generate_event *ev) {
    reply *r = ctx;
    if (!cli_text_append(&r->out, ev->text, ev->len)) return 1;
    if (r->print) {
        fwrite(ev->text, 1, ev->len, stdout);
        fflush(stdout);
    }
    return interrupted ? 1 : 0;
}

static void json_write_string(cllm_atomic_file *f, const char *s) {
    cllm_atomic_write(f, "\"", 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') cllm_atomic_printf(f, "\\%c", ch);
        else if (ch == '\n') cllm_atomic_write(f, "\\n", 2);
        else if (ch < 0x20) cllm_atomic_printf(f, "\\u%04x", ch);
        else cllm_atomic_write(f, s, 1);
    }
    cllm_atomic_write(f, "\"", 1);
}

/* Writes {"messages": [...]} atomically (the file is whole or untouched). */
static int save_transcript(const conversation *c, const char *path) {
    cllm_atomic_file f;
    cllm_error err;
    if (cllm_atomic_begin(&f, path, &err) != CLLM_OK) {
        fprintf(stderr, "cllm %s: %s\n", CMD, err.msg);
        return 0;
    }
    cllm_atomic_printf(&f, "{\"messages\": [");
    int first = 1;
    if (c->system) {
        cllm_atomic_printf(&f, "{\"role\": \"system\", \"content\": ");
        json_write_string(&f, c->system);
        cllm_atomic_printf(&f, "}");
        first = 0;
    }
    for (int i = 0; i < c->n; i++) {
        cllm_atomic_printf(&f, "%s{\"role\": \"%s\", \"content\": ", first ? "" : ", ",
                           cllm_chat_role_name(c->turns[i].role));
        json_write_string(&f, c->turns[i].content);
        cllm_atomic_printf(&f, "}");
        first = 0;
    }
    cllm_atomic_printf(&f, "]}\n");
    if (cllm_atomic_commit(&f, &err) != CLLM_OK) {
        fprintf(stderr, "cllm %s: %s\n", CMD, err.msg);
        return 0;
    }
    return 1;
}

/* One user turn: fit the context, generate, record the reply. Returns 0 on a fatal error. */
static int chat_turn(model_session *s, conversation *c, cllm_sampler_params *sp, grammar_args *ga, int max_tokens,
                     const char *line, int print_notices) {
    cllm_error err;
    if (!conversation_add(c, CLLM_ROLE_USER, line, strlen(line))) return 0;
    cllm_tokens ids = {0};
    int budget = max_tokens < s->context - 1 ? max_tokens : s->context - 1;
    for (;;) {
        if (render(s, c, &ids, &err) != CLLM_OK) {
            fprintf(stderr, "cllm %s: error: %s\n", CMD, err.msg);
            cllm_tokens_free(&ids);
            return 0;
        }
        if ((int)ids.n + budget <= s->context || c->n <= 1) break;
        conversation_drop_oldest(c);
        if (print_notices) fprintf(stderr, "[context full: dropped the oldest turn to stay within %d tokens]\n", s->context);
    }
    if ((int)ids.n >= s->context) {
        fprintf(stderr, "[this message is %zu tokens; the context holds %d: shorten it or /reset]\n", ids.n,
                s->context);
        free(c->turns[--c->n].content);
        cllm_tokens_free(&ids);
        return 1;
    }
    cllm_generate_params gp = cllm_generate_default_params();
    gp.max_tokens = budget;
    cllm_generate_chat_ends(&gp, s->tok, s->chat_template);
    cllm_sampler *sampler = cllm_sampler_create(sp, (int)cllm_tokenizer_n_vocab(s->tok), &err);
    if (sampler && (cllm_sampler_exclude_unused(sampler, s->tok, &err) != CLLM_OK ||
                    grammar_args_attach(ga, sampler, s->tok, gp.eog, gp.n_eog, &err) != CLLM_OK)) {
        cllm_sampler_destroy(sampler);
        sampler = NULL;
    }
    if (!sampler) {
        fprintf(stderr, "cllm %s: error: %s\n", CMD, err.msg);
        cllm_tokens_free(&ids);
        return 0;
    }
    reply r = {.print = 1};
    cllm_generate_result res;
    interrupted = 0;
    cllm_status st = cllm_generate(s->model, 0, s->tok, sampler, ids.ids, (int)ids.n, &gp, on_token, &r, &res, &err);
    cllm_sampler_destroy(sampler);
    cllm_tokens_free(&ids);
    printf("\n");
    fflush(stdout);
    if (st != CLLM_OK) {
        fprintf(stderr, "cllm %s: error: %s\n", CMD, err.msg);
        free(r.out.text);
        return 0;
    }
    if (res.finish == CLLM_FINISH_CANCELLED && print_notices) fprintf(stderr, "[stopped]\n");
    if (res.finish == CLLM_FINISH_CONTEXT && print_notices) fprintf(stderr, "[the reply filled the context window]\n");
    int ok = conversation_add(c, CLLM_ROLE_ASSISTANT, r.out.text ? r.out.text : "", r.out.len);
    free(r.out.text);
    return ok;
}

/* ---- with --tools: the agent loop on an OpenAI message list ---- */

/* Calls and results go to stderr as they happen; a turn's text is printed
 * when it ends, unless it was calls. ctx is the conversation. */
static int on_agent_event(void *ctx, const cllm_agent_event *ev) {
    const cJSON *messages = ctx;
    if (ev->kind == CLLM_AGENT_CALL) {
        fprintf(stderr, "[tool] %s %.*s\n", ev->name, (int)ev->len, ev->text);
    } else if (ev->kind == CLLM_AGENT_RESULT) {
        fprintf(stderr, "[tool] -> %.*s\n", (int)ev->len, ev->text);
    } else if (ev->kind == CLLM_AGENT_TURN_END) {
        const cJSON *last = cJSON_GetArrayItem(messages, cJSON_GetArraySize(messages) - 1);
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(last, "content");
        if (!cJSON_GetObjectItemCaseSensitive(last, "tool_calls") && cJSON_IsString(content))
            printf("%s\n", content->valuestring);
        fflush(stdout);
    }
    return interrupted ? 1 : 0;
}

/* Removes the oldest user message and what followed it up to the next user
 * message (the system message stays). 0 when there is nothing to drop. */
static int messages_drop_oldest(cJSON *msgs) {
    int n = cJSON_GetArraySize(msgs), first = -1, next = -1;
    for (int i = 0; i < n; i++) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(msgs, i), "role");
        int user = cJSON_IsString(r) && !strcmp(r->valuestring, "user");
        if (user && first < 0) first = i;
        else if (user && next < 0) next = i;
    }
    if (first < 0 || next < 0) return 0;
    for (int i = first; i < next; i++) cJSON_DeleteItemFromArray(msgs, first);
    return 1;
}

static int tools_turn(model_session *s, cJSON *msgs, const cllm_agent *agent, const cllm_agent_params *p,
                      const char *line, int print_notices) {
    cJSON *u = cJSON_CreateObject();
    if (!u || !cJSON_AddItemToArray(msgs, u)) {
        cJSON_Delete(u);
        return 0;
    }
    cJSON_AddStringToObject(u, "role", "user");
    cJSON_AddStringToObject(u, "content", line);
    for (;;) {
        int before = cJSON_GetArraySize(msgs);
        cllm_agent_stats st;
        cllm_error err;
        interrupted = 0;
        if (cllm_agent_run(agent, s->model, s->context, p, msgs, on_agent_event, msgs, &st, &err) != CLLM_OK) {
            fprintf(stderr, "cllm %s: error: %s\n", CMD, err.msg);
            return 0;
        }
        if (st.over_context && cJSON_GetArraySize(msgs) == before && messages_drop_oldest(msgs)) {
            if (print_notices) fprintf(stderr, "[context full: dropped the oldest turn to stay within %d tokens]\n", s->context);
            continue;
        }
        if (st.over_context) fprintf(stderr, "[the conversation no longer fits the %d-token context: /reset]\n", s->context);
        if (st.out_of_steps) fprintf(stderr, "[stopped after %d model turns (--max-steps)]\n", p->max_steps);
        if (st.cancelled && print_notices) fprintf(stderr, "[stopped]\n");
        return 1;
    }
}

/* One physical line without its newline (malloc'd), or NULL at end of input.
 * On a terminal through libedit's readline, which also keeps the history. */
static char *read_line(int interactive, const char *prompt) {
    if (interactive) {
        char *line = readline(prompt);
        if (line && *line) add_history(line);
        return line;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len = getline(&line, &cap, stdin);
    if (len < 0) {
        free(line);
        return NULL;
    }
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
    return line;
}

/* One user turn (malloc'd), joined from several lines when it continues
 * ('\' at the end) or is a """ block; NULL at end of input. An unfinished
 * turn at end of input is returned as it is. Turns are capped at
 * CHAT_MAX_LINE bytes: the rest of a longer one is dropped, with a notice. */
static char *read_turn(int interactive) {
    char *first = read_line(interactive, "> ");
    if (!first) return NULL;
    size_t n = strlen(first);
    int block = !strcmp(first, "\"\"\"");
    if (!block && !(n && first[n - 1] == '\\')) return first;
    cli_text t = {0};
    int ok = 1, cut = 0;
    if (!block) ok = cli_text_append(&t, first, n - 1) && cli_text_append(&t, "\n", 1);
    free(first);
    for (char *line; ok && (line = read_line(interactive, "... ")) != NULL;) {
        size_t len = strlen(line);
        int done;
        if (block) {
            done = !strcmp(line, "\"\"\"");
            if (!done && t.len + len + 1 < CHAT_MAX_LINE) ok = cli_text_append(&t, line, len) && cli_text_append(&t, "\n", 1);
            else if (!done) cut = 1;
        } else {
            done = !(len && line[len - 1] == '\\');
            if (!done) len--;
            if (t.len + len + 1 < CHAT_MAX_LINE) ok = cli_text_append(&t, line, len) && (done || cli_text_append(&t, "\n", 1));
            else cut = 1;
        }
        free(line);
        if (done) break;
    }
    if (cut) fprintf(stderr, "[the message was cut to %d bytes]\n", CHAT_MAX_LINE);
    while (t.len && t.text[t.len - 1] == '\n') t.text[--t.len] = 0; /* a block's last newline */
    if (!ok) {
        free(t.text);
        fprintf(stderr, "cllm %s: out of memory\n", CMD);
        return NULL;
    }
    return t.text ? t.text : strdup("");
}

/* With --tools: /reset, /system and /save act on the message list. 1 when handled. */
static int tools_command(cJSON *msgs, const char *cmd, const char *arg) {
    const cJSON *first = cJSON_GetArrayItem(msgs, 0);
    const cJSON *r0 = cJSON_GetObjectItemCaseSensitive(first, "role");
    int has_system = cJSON_IsString(r0) && !strcmp(r0->valuestring, "system");
    if (!strcmp(cmd, "/reset")) {
        while (cJSON_GetArraySize(msgs) > has_system) cJSON_DeleteItemFromArray(msgs, has_system);
        fprintf(stderr, "[conversation cleared]\n");
    } else if (!strcmp(cmd, "/system")) {
        if (has_system) cJSON_DeleteItemFromArray(msgs, 0);
        if (arg && *arg) {
            cJSON *sm = cJSON_CreateObject();
            cJSON_AddStringToObject(sm, "role", "system");
            cJSON_AddStringToObject(sm, "content", arg);
            cJSON_InsertItemInArray(msgs, 0, sm);
        }
        fprintf(stderr, arg && *arg ? "[system message set]\n" : "[system message cleared]\n");
    } else if (!strcmp(cmd, "/save") && arg) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemReferenceToObject(o, "messages", msgs);
        char *text = cJSON_Print(o);
        cJSON_Delete(o);
        cllm_error err;
        if (text && cllm_file_write_atomic(arg, text, strlen(text), &err) == CLLM_OK) fprintf(stderr, "[saved %s]\n", arg);
        else fprintf(stderr, "cllm %s: %s\n", CMD, text ? err.msg : "out of memory");
        free(text);
    } else {
        return 0;
    }
    return 1;
}

/* Handles a /command; returns 0 to quit. */
static int chat_command(conversation *c, cJSON *tool_msgs, cllm_sampler_params *sp, int *max_tokens, char *line) {
    char *arg = strchr(line, ' ');
    if (arg) *arg++ = 0;
    if (!strcmp(line, "/quit") || !strcmp(line, "/exit")) return 0;
    if (tool_msgs && tools_command(tool_msgs, line, arg)) return 1;
    if (!strcmp(line, "/reset")) {
        conversation_reset(c);
        fprintf(stderr, "[conversation cleared]\n");
    } else if (!strcmp(line, "/system")) {
        free(c->system);
        c->system = arg && *arg ? strdup(arg) : NULL;
        fprintf(stderr, c->system ? "[system message set]\n" : "[system message cleared]\n");
    } else if (!strcmp(line, "/set") && arg) {
        char *value = strchr(arg, ' ');
        if (!value) {
            fprintf(stderr, "usage: /set NAME VALUE\n");
            return 1;
        }
        *value++ = 0;
        cllm_sampler_params trial = *sp;
        if (!strcmp(arg, "max-tokens") || !strcmp(arg, "max_tokens")) {
            int v;
            if (cli_parse_int(CMD, "max-tokens", value, 1, 1 << 20, &v)) *max_tokens = v;
        } else if (sampler_set(CMD, &trial, arg, value)) {
            *sp = trial;
            fprintf(stderr, "[%s = %s]\n", arg, value);
        }
    } else if (!strcmp(line, "/save") && arg) {
        if (save_transcript(c, arg)) fprintf(stderr, "[saved %s]\n", arg);
    } else {
        fprintf(stderr, "commands: /reset, /system [TEXT], /set NAME VALUE, /save FILE, /quit; a line ending in \\ "
                        "continues, \"\"\" opens and closes a block of lines\n");
    }
    return 1;
}

int cllm_cmd_chat(int argc, char **argv) {
    model_session_args margs;
    model_session_args_init(&margs);
    cllm_sampler_params sp = cllm_sampler_default_params();
    grammar_args ga = {0};
    const char *system = NULL, *one_prompt = NULL, *tools_path = NULL;
    int max_tokens = 256, max_steps = 4;
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
        } else if (!strcmp(a, "--system")) {
            if (!(system = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!(one_prompt = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--max-tokens")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_int(CMD, a, v, 1, 1 << 20, &max_tokens))
                return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--tools")) {
            if (!(tools_path = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--max-steps")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_int(CMD, a, v, 1, 64, &max_steps))
                return CLI_EXIT_USAGE;
        } else {
            return cli_unknown_flag(CMD, a);
        }
    }
    cllm_error err;
    if (cllm_sampler_params_validate(&sp, 1 << 24, &err) != CLLM_OK) return cli_usage_error(CMD, "%s", err.msg);
    if (tools_path && (ga.grammar_path || ga.schema_path))
        return cli_usage_error(CMD, "--tools constrains calls with the tools' own grammar; it cannot be combined with "
                                    "--grammar or --json-schema");
    int rc = grammar_args_load(CMD, &ga);
    if (rc != CLI_EXIT_OK) return rc;
    cllm_toolbox *tb = NULL;
    if (tools_path && cllm_toolbox_load(tools_path, &tb, &err) != CLLM_OK) return cli_fail(CMD, &err);
    model_session s;
    rc = model_session_open(CMD, &margs, 1, &s);
    if (rc != 0) {
        grammar_args_free(&ga);
        cllm_toolbox_free(tb);
        return rc;
    }
    cllm_agent *agent = NULL;
    if (tb && cllm_agent_create(s.tok, s.chat_template, tb, &agent, &err) != CLLM_OK) {
        grammar_args_free(&ga);
        cllm_toolbox_free(tb);
        model_session_close(&s);
        return cli_fail(CMD, &err);
    }
    cllm_agent_params ap = cllm_agent_default_params();
    ap.sampler = sp;
    ap.max_steps = max_steps;
    ap.max_tokens = max_tokens;
    cJSON *msgs = tb ? cJSON_CreateArray() : NULL; /* with --tools, the conversation */
    if (msgs && system) {
        cJSON *sm = cJSON_CreateObject();
        cJSON_AddItemToArray(msgs, sm);
        cJSON_AddStringToObject(sm, "role", "system");
        cJSON_AddStringToObject(sm, "content", system);
    }
    conversation c = {0};
    if (system) c.system = strdup(system);
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    int ok = 1;
    if (one_prompt) {
        ok = tb ? tools_turn(&s, msgs, agent, &ap, one_prompt, 0) : chat_turn(&s, &c, &sp, &ga, max_tokens, one_prompt, 0);
    } else {
        int interactive = isatty(STDIN_FILENO);
        if (interactive)
            fprintf(stderr, "cllm chat: %s (template %s, context %d tokens). /help for commands, Ctrl-D to quit;\n"
                            "end a line with \\ (or open a block with \"\"\") to write several lines.\n",
                    margs.model_path, cllm_chat_template_name(s.chat_template), s.context);
        for (char *line; ok && (interrupted = 0, line = read_turn(interactive)) != NULL; free(line)) {
            if (line[0] == 0) continue;
            if (line[0] == '/' && !strchr(line, '\n')) {
                if (!chat_command(&c, msgs, &sp, &max_tokens, line)) {
                    free(line);
                    break;
                }
                continue;
            }
            ap.sampler = sp, ap.max_tokens = max_tokens; /* as /set left them */
            ok = tb ? tools_turn(&s, msgs, agent, &ap, line, interactive)
                    : chat_turn(&s, &c, &sp, &ga, max_tokens, line, interactive);
        }
    }
    cJSON_Delete(msgs);
    cllm_agent_destroy(agent);
    cllm_toolbox_free(tb);
    conversation_reset(&c);
    free(c.turns);
    free(c.system);
    grammar_args_free(&ga);
    model_session_close(&s);
    return ok ? CLI_EXIT_OK : CLI_EXIT_DATA;
}

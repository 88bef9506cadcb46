/*
 * rl_args.c: the shared flag parser and runner of the preference-tuning
 * commands (see rl_args.h).
 */
#include <libgen.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cllm/core/fileio.h"
#include "rl_args.h"

static int check_in(const char *cmd, const char *flag, const char *path) {
    cllm_error err;
    if (!path) return cli_usage_error(cmd, "%s is required", flag);
    if (cllm_file_check_regular(path, NULL, &err) != CLLM_OK) return cli_fail(cmd, &err);
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "cllm %s: error: %s: not readable\n", cmd, path);
        return CLI_EXIT_DATA;
    }
    return 0;
}

int rl_args_parse(const char *cmd, int argc, char **argv, unsigned flags, void (*usage)(void), cllm_rl_params *p,
                  cllm_vreward **vr, int *json) {
    const char *verify = NULL, *pattern = NULL;
    int threads = 0;
    *vr = NULL;
    p->progress = isatty(STDERR_FILENO); /* a bar with ETA; logs (not a terminal) get a line every few steps */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            usage();
            return -1;
        }
        if (strncmp(a, "-", 1) != 0) return cli_usage_error(cmd, "unexpected argument '%s'", a);
        if (!strcmp(a, "--resume")) {
            p->resume = 1;
            continue;
        }
        if (!strcmp(a, "--precision-change")) {
            p->precision_change = 1;
            continue;
        }
        if (!strcmp(a, "--no-progress")) {
            p->progress = 0;
            continue;
        }
        if (!strcmp(a, "--json")) {
            *json = 1;
            continue;
        }
        const char *v = cli_value(cmd, argc, argv, &i);
        if (!v) return CLI_EXIT_USAGE;
        double d;
        int iv;
        int64_t i64;
#define DBL(f, lo, hi, dst, need) else if (!strcmp(a, f) && (flags & (need)) == (need)) { if (!cli_parse_double(cmd, f, v, lo, hi, &d)) return CLI_EXIT_USAGE; dst = (float)d; }
#define INT(f, lo, hi, dst, need) else if (!strcmp(a, f) && (flags & (need)) == (need)) { if (!cli_parse_int(cmd, f, v, lo, hi, &iv)) return CLI_EXIT_USAGE; dst = iv; }
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) p->model_path = v;
        else if (!strcmp(a, "--data")) p->data_path = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--out")) p->run_dir = v;
        else if (!strcmp(a, "--ref") && (flags & RL_F_REF)) p->ref_path = v;
        else if (!strcmp(a, "--reward-model") && (flags & RL_F_REWARD)) p->reward_path = v;
        else if (!strcmp(a, "--verify") && (flags & RL_F_GROUP)) verify = v;
        else if (!strcmp(a, "--pattern") && (flags & RL_F_GROUP)) pattern = v;
        else if (!strcmp(a, "--precision")) {
            if (!cli_parse_precision(cmd, v, &p->precision)) return CLI_EXIT_USAGE;
        }
        else if (!strcmp(a, "--seed")) {
            if (!cli_parse_i64(cmd, "--seed", v, 0, INT64_MAX, &i64)) return CLI_EXIT_USAGE;
            p->seed = (uint64_t)i64;
        }
        INT("--steps", 1, 100000000, p->steps, 0)
        INT("--batch", 1, 4096, p->batch, 0)
        DBL("--lr", 1e-12, 1.0, p->lr, 0)
        DBL("--weight-decay", 0.0, 10.0, p->weight_decay, 0)
        DBL("--clip", 0.0, 1e6, p->clip_grad, 0)
        INT("--threads", 0, 4096, threads, 0)
        INT("--save-every", 0, 100000000, p->save_every, 0)
        INT("--keep", 1, 1000, p->keep, 0)
        DBL("--val-frac", 0.0, 0.9, p->val_frac, RL_F_VAL)
        DBL("--beta", 1e-6, 100.0, p->beta, RL_F_BETA)
        DBL("--rpo-alpha", 0.0, 100.0, p->rpo_alpha, RL_F_VAL | RL_F_BETA)
        INT("--max-new", 1, 1 << 20, p->max_new, RL_F_ROLLOUT)
        DBL("--temperature", 0.01, 100.0, p->temperature, RL_F_ROLLOUT)
        DBL("--temp", 0.01, 100.0, p->temperature, RL_F_ROLLOUT)
        INT("--epochs", 1, 100, p->epochs, RL_F_ROLLOUT)
        DBL("--clip-eps", 1e-4, 10.0, p->clip_eps, RL_F_ROLLOUT)
        DBL("--missing-eos-penalty", 0.0, 1e6, p->missing_eos_penalty, RL_F_ROLLOUT)
        INT("--group", 2, 1024, p->group, RL_F_GROUP)
        DBL("--kl-coef", 0.0, 100.0, p->kl_coef, RL_F_PPO)
        DBL("--gamma", 0.0, 1.0, p->gamma, RL_F_PPO)
        DBL("--lam", 0.0, 1.0, p->lam, RL_F_PPO)
        DBL("--vf-coef", 0.0, 100.0, p->vf_coef, RL_F_PPO)
        DBL("--vf-clip", 1e-4, 1e6, p->vf_clip, RL_F_PPO)
        else return cli_unknown_flag(cmd, a);
#undef DBL
#undef INT
    }
    if (!p->run_dir) return cli_usage_error(cmd, "-o/--out RUN_DIR is required");
    if (pattern && !verify) return cli_usage_error(cmd, "--pattern needs --verify regex");
    int rc;
    if ((rc = check_in(cmd, "-m/--model", p->model_path)) || (rc = check_in(cmd, "--data", p->data_path))) return rc;
    if (p->ref_path && (rc = check_in(cmd, "--ref", p->ref_path))) return rc;
    if (p->reward_path && (rc = check_in(cmd, "--reward-model", p->reward_path))) return rc;
    if (verify) {
        int k = cllm_vreward_parse(verify);
        if (k < 0) return cli_usage_error(cmd, "--verify must be exact, number, regex or tool_call, got '%s'", verify);
        if (k == CLLM_VREWARD_REGEX && !pattern) return cli_usage_error(cmd, "--verify regex needs --pattern");
        cllm_error err;
        if (cllm_vreward_create((cllm_vreward_kind)k, pattern, vr, &err)) return cli_usage_error(cmd, "%s", err.msg);
        p->vreward = *vr;
    }
    if ((flags & RL_F_GROUP) && !verify && !p->reward_path)
        return cli_usage_error(cmd, "give --reward-model FILE or --verify exact|number|regex|tool_call");
    if ((flags & RL_F_REWARD) && !(flags & RL_F_GROUP) && !p->reward_path)
        return cli_usage_error(cmd, "--reward-model is required");
    if (threads > 0) omp_set_num_threads(threads);
    return 0;
}

int rl_args_run(const char *cmd, cllm_status (*fn)(const cllm_rl_params *, cllm_rl_result *, cllm_error *),
                cllm_rl_params *p, int json) {
    p->log = cli_log_line;
    p->stop_flag = cli_stop_on_signal(cmd);
    cllm_rl_result res;
    cllm_error err;
    if (fn(p, &res, &err) != CLLM_OK) return cli_fail(cmd, &err);
    cli_print_train_summary(&res.summary, json);
    return CLI_EXIT_OK;
}

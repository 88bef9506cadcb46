/*
 * checkpoint.c: the checkpoint protocol of checkpoint.h: the run-directory
 * lock, float-array files (AdamW moments, raw weights), the text state
 * record, the completion marker, finding the newest complete checkpoint,
 * loading with verification, and pruning.
 *
 * Does not: serialise the model itself (the caller's callback does) or decide
 * when to save.
 */
#include "cllm/train/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cllm/core/byteorder.h"
#include "cllm/core/fileio.h"
#include "cllm/train/shard.h" /* cllm_fnv1a64 */

#define FLOATS_MAGIC "CLLMFLT"
#define FLOATS_VERSION 1u
#define FLOATS_HEADER 64
#define FLOATS_MAX_ARRAYS 4
#define STATE_MAGIC_LINE "cllm-train-state 1"
#define MARKER_MAGIC_LINE "cllm-checkpoint 1"
#define STATE_MAX_BYTES (1u << 20)
#define STEP_DIGITS 10


/* ---- float-array files -------------------------------------------------- */

cllm_status cllm_ckpt_write_floats(const char *path, const float *const *arrays, int n_arrays,
                                   size_t n, uint64_t layout_hash, int64_t aux, cllm_error *err) {
    if (n_arrays < 1 || n_arrays > FLOATS_MAX_ARRAYS)
        return cllm_error_set(err, CLLM_ERR_ARG, "%s: %d arrays (1..%d allowed)", path, n_arrays,
                              FLOATS_MAX_ARRAYS);
    uint8_t header[FLOATS_HEADER] = {0};
    memcpy(header, FLOATS_MAGIC, 8);
    cllm_put_le32(header + 8, FLOATS_VERSION);
    cllm_put_le32(header + 12, (uint32_t)n_arrays);
    cllm_put_le64(header + 16, (uint64_t)n);
    cllm_put_le64(header + 24, layout_hash);
    cllm_put_le64(header + 32, (uint64_t)aux);
    cllm_atomic_file af;
    cllm_status st = cllm_atomic_begin(&af, path, err);
    if (st != CLLM_OK) return st;
    uint64_t h = cllm_fnv1a64(header, sizeof header, CLLM_FNV_OFFSET);
    cllm_atomic_write(&af, header, sizeof header);
    /* Floats are stored in host order; cllm targets little-endian x86-64/ARM64. */
    const size_t chunk = 1u << 20;
    for (int a = 0; a < n_arrays; a++) {
        for (size_t off = 0; off < n; off += chunk) {
            size_t len = (n - off < chunk ? n - off : chunk) * sizeof(float);
            h = cllm_fnv1a64(arrays[a] + off, len, h);
            cllm_atomic_write(&af, arrays[a] + off, len);
        }
    }
    uint8_t tail[8];
    cllm_put_le64(tail, h);
    cllm_atomic_write(&af, tail, sizeof tail);
    return cllm_atomic_commit(&af, err);
}

cllm_status cllm_ckpt_read_floats(const char *path, float *const *arrays, int n_arrays, size_t n,
                                  uint64_t layout_hash, int64_t *aux, cllm_error *err) {
    cllm_mmap map;
    cllm_status st = cllm_mmap_open(&map, path, err);
    if (st != CLLM_OK) return st;
    const uint8_t *d = map.data;
    size_t size = map.size;
    const char *bad = NULL;
    char detail[256] = "";
    size_t payload = 0, expected = 0;
    if (size < FLOATS_HEADER + 8) {
        snprintf(detail, sizeof detail, "%zu bytes is too short for the 72-byte minimum (truncated)", size);
        bad = detail;
    } else if (memcmp(d, FLOATS_MAGIC, 8) != 0) {
        bad = "bad magic at offset 0 (not a cllm float-array file)";
    } else if (cllm_get_le32(d + 8) != FLOATS_VERSION) {
        snprintf(detail, sizeof detail, "version %u at offset 8 is not %u", cllm_get_le32(d + 8), FLOATS_VERSION);
        bad = detail;
    } else if (cllm_get_le32(d + 12) != (uint32_t)n_arrays) {
        snprintf(detail, sizeof detail, "n_arrays %u at offset 12, expected %d", cllm_get_le32(d + 12), n_arrays);
        bad = detail;
    } else if (cllm_get_le64(d + 16) != (uint64_t)n) {
        snprintf(detail, sizeof detail, "holds %" PRIu64 " values per array (offset 16), the model has %zu",
                 cllm_get_le64(d + 16), n);
        bad = detail;
    } else if (cllm_get_le64(d + 24) != layout_hash) {
        bad = "layout hash (offset 24) does not match this model's tensor layout";
    } else if (!cllm_size_mul(n, sizeof(float) * (size_t)n_arrays, &payload) ||
               !cllm_size_add(payload, FLOATS_HEADER + 8, &expected) || expected != size) {
        snprintf(detail, sizeof detail, "file is %zu bytes, expected %zu (truncated or corrupt)", size, expected);
        bad = detail;
    } else {
        uint64_t h = cllm_fnv1a64(d, size - 8, CLLM_FNV_OFFSET);
        if (h != cllm_get_le64(d + size - 8)) {
            snprintf(detail, sizeof detail, "checksum at offset %zu does not match the contents (corrupt)",
                     size - 8);
            bad = detail;
        }
    }
    if (bad) {
        cllm_mmap_close(&map);
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: %s", path, bad);
    }
    for (int a = 0; a < n_arrays; a++)
        memcpy(arrays[a], d + FLOATS_HEADER + (size_t)a * n * sizeof(float), n * sizeof(float));
    if (aux) *aux = (int64_t)cllm_get_le64(d + 32);
    cllm_mmap_close(&map);
    return CLLM_OK;
}

/* ---- state record ------------------------------------------------------- */

void cllm_train_state_init(cllm_train_state *s) {
    memset(s, 0, sizeof *s);
    s->best_val_loss = INFINITY;
}

cllm_status cllm_train_state_write(const char *path, const cllm_train_state *s, cllm_error *err) {
    /* Build the text in memory so the checksum covers exactly what is written. */
    size_t cap = 2 * CLLM_CKPT_CONFIG_MAX + 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) return cllm_error_set(err, CLLM_ERR_NOMEM, "%s: cannot allocate the state text", path);
#define EMIT(...) len += (size_t)snprintf(buf + len, len < cap ? cap - len : 0, __VA_ARGS__)
    EMIT("%s\n", STATE_MAGIC_LINE);
    EMIT("step %" PRId64 "\n", s->step);
    EMIT("tokens_seen %" PRIu64 "\n", s->tokens_seen);
    for (int i = 0; i < 4; i++) EMIT("loader_rng%d %016" PRIx64 "\n", i, s->loader.rng.s[i]);
    EMIT("loader_position %" PRIu64 "\n", s->loader.position);
    EMIT("loader_epoch %" PRIu64 "\n", s->loader.epoch);
    EMIT("loader_batches %" PRIu64 "\n", s->loader.batches);
    EMIT("dropout_seed %016" PRIx64 "\n", s->dropout_seed);
    EMIT("best_val_loss %a\n", s->best_val_loss);
    EMIT("evals_since_best %" PRId64 "\n", s->evals_since_best);
    EMIT("nonfinite_streak %" PRId64 "\n", s->nonfinite_streak);
    EMIT("nonfinite_total %" PRId64 "\n", s->nonfinite_total);
    EMIT("data_fingerprint %016" PRIx64 "\n", s->data_fingerprint);
    EMIT("tokenizer_hash %016" PRIx64 "\n", s->tokenizer_hash);
    EMIT("layout_hash %016" PRIx64 "\n", s->layout_hash);
    EMIT("elapsed_s %a\n", s->elapsed_s);
    const char *c = s->config;
    while (*c) {
        const char *nl = strchr(c, '\n');
        size_t l = nl ? (size_t)(nl - c) : strlen(c);
        if (l > 0) EMIT("config %.*s\n", (int)l, c);
        c += l + (nl ? 1 : 0);
    }
    if (len + 32 >= cap) {
        free(buf);
        return cllm_error_set(err, CLLM_ERR_LIMIT, "%s: state record too large", path);
    }
    uint64_t h = cllm_fnv1a64(buf, len, CLLM_FNV_OFFSET);
    EMIT("checksum %016" PRIx64 "\n", h);
#undef EMIT
    cllm_status st = cllm_file_write_atomic(path, buf, len, err);
    free(buf);
    return st;
}

static int parse_u64(const char *v, int base, uint64_t *out) {
    if (!*v || *v == '-' || *v == '+' || *v == ' ') return 0;
    errno = 0;
    char *end;
    unsigned long long x = strtoull(v, &end, base);
    if (errno || *end) return 0;
    *out = x;
    return 1;
}
static int parse_i64(const char *v, int64_t *out) {
    if (!*v || *v == ' ') return 0;
    errno = 0;
    char *end;
    long long x = strtoll(v, &end, 10);
    if (errno || *end) return 0;
    *out = x;
    return 1;
}
static int parse_f64(const char *v, double *out) {
    if (!*v || *v == ' ') return 0;
    errno = 0;
    char *end;
    double x = strtod(v, &end);
    if (*end || isnan(x)) return 0;
    *out = x;
    return 1;
}

cllm_status cllm_train_state_read(const char *path, cllm_train_state *s, cllm_error *err) {
    char *data = NULL;
    size_t len = 0;
    cllm_status st = cllm_file_read_all(path, STATE_MAX_BYTES, &data, &len, err);
    if (st != CLLM_OK) return st;
    cllm_train_state_init(s);
    /* The last line must be the checksum of everything before it. */
    st = CLLM_ERR_FORMAT;
    size_t body = len;
    if (len > 0 && data[len - 1] == '\n') {
        size_t i = len - 1;
        while (i > 0 && data[i - 1] != '\n') i--;
        body = i;
    }
    uint64_t want = 0;
    if (body == len || strncmp(data + body, "checksum ", 9) != 0 || memchr(data, '\0', len)) {
        cllm_error_set(err, CLLM_ERR_FORMAT,
                       "%s: no checksum line at the end (truncated or not a cllm state record)", path);
        free(data);
        return CLLM_ERR_FORMAT;
    }
    data[len - 1] = '\0';
    if (!parse_u64(data + body + 9, 16, &want) ||
        want != cllm_fnv1a64(data, body, CLLM_FNV_OFFSET)) {
        cllm_error_set(err, CLLM_ERR_FORMAT,
                       "%s: checksum at offset %zu does not match the contents (corrupt)", path, body);
        free(data);
        return CLLM_ERR_FORMAT;
    }
    data[body] = '\0';
    enum { K_STEP, K_TOKENS, K_RNG0, K_RNG1, K_RNG2, K_RNG3, K_POS, K_EPOCH, K_BATCHES, K_DROP,
           K_BEST, K_SINCE, K_STREAK, K_TOTAL, K_FP, K_TOK, K_LAYOUT, K_ELAPSED, K_COUNT };
    static const char *const names[K_COUNT] = {
        "step", "tokens_seen", "loader_rng0", "loader_rng1", "loader_rng2", "loader_rng3",
        "loader_position", "loader_epoch", "loader_batches", "dropout_seed", "best_val_loss",
        "evals_since_best", "nonfinite_streak", "nonfinite_total", "data_fingerprint",
        "tokenizer_hash", "layout_hash", "elapsed_s"};
    int seen[K_COUNT] = {0};
    size_t config_len = 0;
    int line_no = 0;
    char *line = data;
    char msg[512] = "";
    while (*line && !msg[0]) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        line_no++;
        if (line_no == 1) {
            if (strcmp(line, STATE_MAGIC_LINE) != 0)
                snprintf(msg, sizeof msg, "line 1 is not '%s' (not a cllm state record, or a newer version)",
                         STATE_MAGIC_LINE);
        } else {
            char *sp = strchr(line, ' ');
            if (!sp) {
                snprintf(msg, sizeof msg, "line %d has no value", line_no);
                break;
            }
            *sp = '\0';
            const char *key = line, *val = sp + 1;
            if (strcmp(key, "config") == 0) {
                size_t l = strlen(val);
                if (config_len + l + 2 > sizeof s->config) {
                    snprintf(msg, sizeof msg, "line %d: config text longer than %d bytes", line_no,
                             CLLM_CKPT_CONFIG_MAX);
                } else {
                    memcpy(s->config + config_len, val, l);
                    config_len += l;
                    s->config[config_len++] = '\n';
                    s->config[config_len] = '\0';
                }
            } else {
                int k = 0;
                while (k < K_COUNT && strcmp(names[k], key) != 0) k++;
                int ok = 1;
                uint64_t u = 0;
                int64_t i64 = 0;
                switch (k) {
                case K_STEP: ok = parse_i64(val, &s->step) && s->step >= 0; break;
                case K_TOKENS: ok = parse_u64(val, 10, &s->tokens_seen); break;
                case K_RNG0: case K_RNG1: case K_RNG2: case K_RNG3:
                    ok = parse_u64(val, 16, &u);
                    s->loader.rng.s[k - K_RNG0] = u;
                    break;
                case K_POS: ok = parse_u64(val, 10, &s->loader.position); break;
                case K_EPOCH: ok = parse_u64(val, 10, &s->loader.epoch); break;
                case K_BATCHES: ok = parse_u64(val, 10, &s->loader.batches); break;
                case K_DROP: ok = parse_u64(val, 16, &s->dropout_seed); break;
                case K_BEST: ok = parse_f64(val, &s->best_val_loss); break;
                case K_SINCE: ok = parse_i64(val, &i64) && i64 >= 0; s->evals_since_best = i64; break;
                case K_STREAK: ok = parse_i64(val, &i64) && i64 >= 0; s->nonfinite_streak = i64; break;
                case K_TOTAL: ok = parse_i64(val, &i64) && i64 >= 0; s->nonfinite_total = i64; break;
                case K_FP: ok = parse_u64(val, 16, &s->data_fingerprint); break;
                case K_TOK: ok = parse_u64(val, 16, &s->tokenizer_hash); break;
                case K_LAYOUT: ok = parse_u64(val, 16, &s->layout_hash); break;
                case K_ELAPSED: ok = parse_f64(val, &s->elapsed_s); break;
                default:
                    snprintf(msg, sizeof msg, "line %d: unknown key '%.64s'", line_no, key);
                    break;
                }
                if (!msg[0] && !ok)
                    snprintf(msg, sizeof msg, "line %d: bad value '%.64s' for %s", line_no, val, key);
                else if (!msg[0] && seen[k]++)
                    snprintf(msg, sizeof msg, "line %d: duplicate key %s", line_no, key);
            }
        }
        if (!nl) break;
        line = nl + 1;
    }
    for (int k = 0; k < K_COUNT && !msg[0]; k++)
        if (!seen[k]) snprintf(msg, sizeof msg, "missing key %s", names[k]);
    free(data);
    if (msg[0]) return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: %s", path, msg);
    return CLLM_OK;
}

/* ---- lock --------------------------------------------------------------- */

/* 1 when fd is still the file at path (not removed or replaced since open). */
static int lock_is_current(int fd, const char *path) {
    struct stat a, b;
    return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

cllm_status cllm_ckpt_lock(const char *run_dir, int *fd, cllm_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/lock", run_dir);
    *fd = -1;
    for (int attempt = 0;; attempt++) {
        int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (f < 0) return cllm_error_set(err, CLLM_ERR_IO, "%s: cannot open the lock file: %s", path, strerror(errno));
        if (flock(f, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            char other[32] = "";
            ssize_t got = pread(f, other, sizeof other - 1, 0);
            other[got > 0 ? got : 0] = '\0';
            other[strcspn(other, "\n")] = '\0';
            close(f);
            if (e == EWOULDBLOCK)
                return cllm_error_set(err, CLLM_ERR_IO,
                                      "%s: another trainer (pid %s) is using run directory %s; wait for it "
                                      "or choose another --out",
                                      path, other[0] ? other : "unknown", run_dir);
            return cllm_error_set(err, CLLM_ERR_IO, "%s: cannot lock: %s", path, strerror(e));
        }
        if (lock_is_current(f, path)) {
            char pid[32];
            int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
            if (ftruncate(f, 0) != 0 || pwrite(f, pid, (size_t)n, 0) != n) {
                /* The lock is held; the pid is only for the message. */
            }
            *fd = f;
            return CLLM_OK;
        }
        close(f); /* the holder removed this file as it finished: lock the new one */
        if (attempt == 8)
            return cllm_error_set(err, CLLM_ERR_IO, "%s: the lock file keeps being replaced; is another trainer starting?",
                                  path);
    }
}

void cllm_ckpt_unlock(int fd, const char *run_dir) {
    if (fd < 0) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/lock", run_dir);
    if (lock_is_current(fd, path)) unlink(path); /* still ours: remove it while holding the lock */
    close(fd);
}

/* ---- save / find / load / prune ------------------------------------------ */

void cllm_ckpt_path(char *out, size_t cap, const char *run_dir, int64_t step, const char *ext) {
    snprintf(out, cap, "%s/ckpt-%0*" PRId64 ".%s", run_dir, STEP_DIGITS, step, ext);
}

static cllm_status hash_file(const char *path, uint64_t *size, uint64_t *hash, cllm_error *err) {
    cllm_mmap map;
    cllm_status st = cllm_mmap_open(&map, path, err);
    if (st != CLLM_OK) return st;
    *size = map.size;
    *hash = cllm_fnv1a64(map.data, map.size, CLLM_FNV_OFFSET);
    cllm_mmap_close(&map);
    return CLLM_OK;
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

cllm_status cllm_ckpt_save(const char *run_dir, cllm_ckpt_io *io, const cllm_train_state *state,
                           cllm_error *err) {
    char model_p[4096], optim_p[4096], state_p[4096], done_p[4096];
    cllm_ckpt_path(model_p, sizeof model_p, run_dir, state->step, io->model_ext);
    cllm_ckpt_path(optim_p, sizeof optim_p, run_dir, state->step, "optim");
    cllm_ckpt_path(state_p, sizeof state_p, run_dir, state->step, "state");
    cllm_ckpt_path(done_p, sizeof done_p, run_dir, state->step, "done");
    /* A marker left from an earlier run at this step would vouch for the new
     * files before they are all written: remove it first. */
    if (unlink(done_p) == 0) {
        cllm_status st = cllm_fsync_dir_of(done_p, err);
        if (st != CLLM_OK) return st;
    }
    cllm_status st = io->write_model(model_p, io->ctx, err);
    if (st != CLLM_OK) return st;
    const float *arrays[2] = {io->m, io->v};
    st = cllm_ckpt_write_floats(optim_p, arrays, 2, io->n, state->layout_hash, io->adam_step, err);
    if (st != CLLM_OK) return st;
    st = cllm_train_state_write(state_p, state, err);
    if (st != CLLM_OK) return st;
    const char *paths[3] = {model_p, optim_p, state_p};
    const char *roles[3] = {"model", "optim", "state"};
    char marker[4096 * 3 + 256];
    size_t len = (size_t)snprintf(marker, sizeof marker, "%s\nstep %" PRId64 "\n", MARKER_MAGIC_LINE,
                                  state->step);
    for (int i = 0; i < 3; i++) {
        uint64_t size = 0, h = 0;
        st = hash_file(paths[i], &size, &h, err);
        if (st != CLLM_OK) return st;
        len += (size_t)snprintf(marker + len, sizeof marker - len, "%s %s %" PRIu64 " %016" PRIx64 "\n",
                                roles[i], base_name(paths[i]), size, h);
    }
    len += (size_t)snprintf(marker + len, sizeof marker - len, "end\n");
    return cllm_file_write_atomic(done_p, marker, len, err);
}

/* Parses "ckpt-<digits>.<ext>"; returns the step or -1. */
static int64_t name_step(const char *name, const char *ext) {
    if (strncmp(name, "ckpt-", 5) != 0) return -1;
    const char *p = name + 5;
    int64_t step = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 18) {
        step = step * 10 + (*p - '0');
        p++;
        digits++;
    }
    if (digits == 0 || *p != '.') return -1;
    if (ext && strcmp(p + 1, ext) != 0) return -1;
    return step;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Steps of all complete markers, sorted ascending; *steps owned by the caller. */
static cllm_status list_complete(const char *run_dir, int64_t **steps, size_t *count, cllm_error *err) {
    *steps = NULL;
    *count = 0;
    DIR *d = opendir(run_dir);
    if (!d) return cllm_error_set(err, CLLM_ERR_IO, "%s: cannot list: %s", run_dir, strerror(errno));
    size_t cap = 0;
    struct dirent *e;
    cllm_status st = CLLM_OK;
    while ((e = readdir(d)) != NULL) {
        int64_t s = name_step(e->d_name, "done");
        if (s < 0) continue;
        if (*count == cap) {
            cap = cap ? cap * 2 : 16;
            int64_t *n = realloc(*steps, cap * sizeof *n);
            if (!n) {
                st = cllm_error_set(err, CLLM_ERR_NOMEM, "%s: out of memory listing checkpoints", run_dir);
                break;
            }
            *steps = n;
        }
        (*steps)[(*count)++] = s;
    }
    closedir(d);
    if (st != CLLM_OK) {
        free(*steps);
        *steps = NULL;
        *count = 0;
        return st;
    }
    if (*count) qsort(*steps, *count, sizeof **steps, cmp_i64);
    return CLLM_OK;
}

cllm_status cllm_ckpt_find_latest(const char *run_dir, int64_t *step, cllm_error *err) {
    int64_t *steps;
    size_t count;
    *step = -1;
    cllm_status st = list_complete(run_dir, &steps, &count, err);
    if (st != CLLM_OK) return st;
    if (count) *step = steps[count - 1];
    free(steps);
    return CLLM_OK;
}

/* Checks the marker of `step` against the files on disk. */
static cllm_status verify_marker(const char *run_dir, int64_t step, const char *model_ext, cllm_error *err) {
    char done_p[4096];
    cllm_ckpt_path(done_p, sizeof done_p, run_dir, step, "done");
    char *text = NULL;
    size_t len = 0;
    cllm_status st = cllm_file_read_all(done_p, 65536, &text, &len, err);
    if (st != CLLM_OK) return st;
    char msg[512] = "";
    char *save = NULL;
    char *line = strtok_r(text, "\n", &save);
    if (!line || strcmp(line, MARKER_MAGIC_LINE) != 0) snprintf(msg, sizeof msg, "line 1 is not '%s'", MARKER_MAGIC_LINE);
    int64_t mstep = -1;
    if (!msg[0]) {
        line = strtok_r(NULL, "\n", &save);
        if (!line || sscanf(line, "step %" SCNd64, &mstep) != 1 || mstep != step)
            snprintf(msg, sizeof msg, "line 2 does not name step %" PRId64, step);
    }
    const char *roles[3] = {"model", "optim", "state"};
    const char *exts[3] = {model_ext, "optim", "state"};
    for (int i = 0; i < 3 && !msg[0]; i++) {
        line = strtok_r(NULL, "\n", &save);
        char role[16], name[256];
        uint64_t size = 0, hash = 0;
        if (!line || sscanf(line, "%15s %255s %" SCNu64 " %" SCNx64, role, name, &size, &hash) != 4 ||
            strcmp(role, roles[i]) != 0) {
            snprintf(msg, sizeof msg, "line %d is not the '%s' entry", i + 3, roles[i]);
            break;
        }
        char path[4096], expect_name[4096];
        cllm_ckpt_path(expect_name, sizeof expect_name, "", step, exts[i]);
        if (strcmp(name, expect_name + 1) != 0) {
            snprintf(msg, sizeof msg, "names %s but this run stores %s (weights format changed?)", name,
                     expect_name + 1);
            break;
        }
        snprintf(path, sizeof path, "%s/%s", run_dir, name);
        uint64_t got_size = 0, got_hash = 0;
        st = hash_file(path, &got_size, &got_hash, err);
        if (st != CLLM_OK) {
            cllm_error_prefix(err, "checkpoint %s", done_p);
            free(text);
            return st;
        }
        if (got_size != size || got_hash != hash)
            snprintf(msg, sizeof msg, "%s is %" PRIu64 " bytes with hash %016" PRIx64
                     ", the marker recorded %" PRIu64 " bytes, hash %016" PRIx64 " (file changed or corrupt)",
                     path, got_size, got_hash, size, hash);
    }
    if (!msg[0]) {
        line = strtok_r(NULL, "\n", &save);
        if (!line || strcmp(line, "end") != 0) snprintf(msg, sizeof msg, "no 'end' line (truncated)");
    }
    free(text);
    if (msg[0]) return cllm_error_set(err, CLLM_ERR_FORMAT, "checkpoint marker %s: %s", done_p, msg);
    return CLLM_OK;
}

cllm_status cllm_ckpt_load(const char *run_dir, int64_t step, cllm_ckpt_io *io,
                           cllm_train_state *state, cllm_error *err) {
    cllm_status st = verify_marker(run_dir, step, io->model_ext, err);
    if (st != CLLM_OK) return st;
    char model_p[4096], optim_p[4096], state_p[4096];
    cllm_ckpt_path(model_p, sizeof model_p, run_dir, step, io->model_ext);
    cllm_ckpt_path(optim_p, sizeof optim_p, run_dir, step, "optim");
    cllm_ckpt_path(state_p, sizeof state_p, run_dir, step, "state");
    st = cllm_train_state_read(state_p, state, err);
    if (st != CLLM_OK) return st;
    if (state->step != step)
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: records step %" PRId64 ", its name says %" PRId64,
                              state_p, state->step, step);
    float *arrays[2] = {io->m_out, io->v_out};
    st = cllm_ckpt_read_floats(optim_p, arrays, 2, io->n, state->layout_hash, &io->adam_step, err);
    if (st != CLLM_OK) return st;
    /* not bounded by the step: PPO/GRPO take several updates per step */
    if (io->adam_step < 0)
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: Adam step %" PRId64 " is negative", optim_p, io->adam_step);
    return io->read_model(model_p, io->ctx, err);
}

static int is_stale_temp(const char *name) {
    const char *t = strstr(name, ".tmp.");
    if (!t || t == name) return 0;
    for (const char *p = t + 5; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    if (strncmp(name, "ckpt-", 5) == 0) return 1;
    static const char *const ours[] = {"train.csv.tmp.", "loss.svg.tmp.", "model.gguf.tmp.", "best.gguf.tmp.",
                                       "model.params.tmp."};
    for (size_t i = 0; i < sizeof ours / sizeof *ours; i++)
        if (strncmp(name, ours[i], strlen(ours[i])) == 0) return 1;
    return 0;
}

cllm_status cllm_ckpt_prune(const char *run_dir, int keep, cllm_error *err) {
    if (keep < 1) keep = 1;
    int64_t *steps;
    size_t count;
    cllm_status st = list_complete(run_dir, &steps, &count, err);
    if (st != CLLM_OK) return st;
    char path[4096];
    /* 1. old complete checkpoints: marker first, so a half-deleted one is never "complete" */
    size_t n_delete = count > (size_t)keep ? count - (size_t)keep : 0;
    for (size_t i = 0; i < n_delete && st == CLLM_OK; i++) {
        cllm_ckpt_path(path, sizeof path, run_dir, steps[i], "done");
        if (unlink(path) != 0 && errno != ENOENT)
            st = cllm_error_set(err, CLLM_ERR_IO, "%s: cannot delete: %s", path, strerror(errno));
        else
            st = cllm_fsync_dir_of(path, err);
    }
    /* 2. files of checkpoints without a marker (now including those just
     *    unmarked), and temp files of dead writers */
    DIR *d = st == CLLM_OK ? opendir(run_dir) : NULL;
    if (st == CLLM_OK && !d) st = cllm_error_set(err, CLLM_ERR_IO, "%s: cannot list: %s", run_dir, strerror(errno));
    struct dirent *e;
    while (d && st == CLLM_OK && (e = readdir(d)) != NULL) {
        int64_t s = name_step(e->d_name, NULL);
        int remove_it = is_stale_temp(e->d_name);
        if (!remove_it && s >= 0 && !strstr(e->d_name, ".tmp.")) {
            int complete = 0;
            for (size_t i = n_delete; i < count; i++) complete |= steps[i] == s;
            remove_it = !complete;
        }
        if (!remove_it) continue;
        snprintf(path, sizeof path, "%s/%s", run_dir, e->d_name);
        if (unlink(path) != 0 && errno != ENOENT)
            st = cllm_error_set(err, CLLM_ERR_IO, "%s: cannot delete: %s", path, strerror(errno));
    }
    if (d) closedir(d);
    free(steps);
    return st;
}

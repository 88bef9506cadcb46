/*
 * dist.c: data-parallel training over MPI (train/dist.h, dist_internal.h,
 * docs/MPI.md). The only file that includes <mpi.h>; without CLLM_MPI every
 * MPI call below is replaced by its one-rank meaning (the shim at the top),
 * so the trainers and the harness have one code path.
 *
 * A step's global batch is a list of units (pretrain and SFT micro-batches,
 * preference pairs); th_unit splits them into G contiguous groups, G = the
 * number of ranks, rank r computing group r. Each rank accumulates its
 * group's gradients from zero as one process does (backward's +=); the
 * groups' partial gradients are then added in group order,
 * ((P0 + P1) + P2) + ..., one fp32 add per element, by a reduce-scatter
 * whose owner of each slice adds the N pieces in rank order (MPI_Alltoallv
 * moves them; no MPI reduction operator is used, so the order is ours, not
 * the library's). Without ZeRO-1 the summed slices are all-gathered and
 * every rank updates the whole block; with ZeRO-1 (default for N > 1) each
 * rank updates its slice with its slice of the moments, then the
 * parameters are all-gathered. Slices under ZeRO-1 are whole 64 Ki-element
 * chunks, the chunks cllm_grad_norm sums, so the norm from per-slice chunk
 * sums is the same number and the sharded update equals the unsharded one.
 *
 * One process given CLLM_GRAD_GROUPS=G sums its units in the same G groups
 * (stashing each group's gradients, adding them in order), so it gives the
 * bits of a G-rank run.
 */
#include "cllm/train/dist.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/core/fileio.h"
#include "cllm/core/hash.h"
#include "cllm/kernels/kernels.h"
#include "dist_internal.h"

#ifdef CLLM_MPI
#include <mpi.h>
#include <pthread.h>
#include <signal.h>

/* SIGINT/SIGTERM (the trainers' stop request) are held while this thread is
 * inside MPI: a signal that interrupts the shared-memory transport's copy
 * system calls corrupted a collective (seen as heap corruption in about 1 of
 * 10 runs stopped by SIGTERM). A held signal is delivered on release. */
typedef struct { sigset_t old; } sig_hold;
static sig_hold hold_signals(void) {
    sig_hold h;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGINT);
    sigaddset(&s, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &s, &h.old);
    return h;
}
static void release_signals(sig_hold h) { pthread_sigmask(SIG_SETMASK, &h.old, NULL); }
#else
/* ---- one-rank shim: the few MPI calls used here, for a build without MPI ---- */
typedef int MPI_Comm;
typedef int MPI_Datatype;
#define MPI_COMM_WORLD 0
#define MPI_FLOAT 1
#define MPI_DOUBLE 2
#define MPI_INT 3
#define MPI_BYTE 4
#define MPI_UINT64_T 5
#define MPI_IN_PLACE NULL
typedef int sig_hold;
static sig_hold hold_signals(void) { return 0; }
static void release_signals(sig_hold h) { (void)h; }
static int MPI_Bcast(void *b, int n, MPI_Datatype t, int root, MPI_Comm c) { (void)b, (void)n, (void)t, (void)root, (void)c; return 0; }
#endif

/* ---- process level ---------------------------------------------------------------- */

static int g_rank = 0, g_size = 1, g_tried = 0;
#ifdef CLLM_MPI
static int g_inited = 0;
#endif

static int launched_by_mpi(void) {
    const char *force = getenv("CLLM_MPI");
    if (force && *force) return atoi(force) != 0;
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

int cllm_dist_compiled(void) {
#ifdef CLLM_MPI
    return 1;
#else
    return 0;
#endif
}

int cllm_dist_init(void) {
    if (g_tried) return g_size;
    g_tried = 1;
#ifdef CLLM_MPI
    if (!launched_by_mpi()) return g_size;
    int provided = 0;
    /* The threads MPI starts inherit this mask: with SIGINT/SIGTERM blocked
     * there, a stop request never lands in MPI's own threads while this one
     * holds it inside a collective (the likely cause of rank 1 aborting with
     * SIGABRT in test_mpi's SIGTERM case, 2 of about 10 full test runs on
     * 2026-12-07/08); this thread and the compute threads still take it. */
    sig_hold held = hold_signals();
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    release_signals(held);
    if (rc != MPI_SUCCESS) return g_size;
    g_inited = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    if (g_rank != 0) {
        fflush(stdout);
        if (!freopen("/dev/null", "w", stdout)) { /* keep printing; harmless */
        }
    }
#else
    if (launched_by_mpi())
        fprintf(stderr, "cllm: started by an MPI launcher, but this binary was built without MPI (make MPI=0 or "
                        "no Open MPI found): every rank trains alone\n");
#endif
    return g_size;
}

int cllm_dist_rank(void) { return g_rank; }
int cllm_dist_size(void) { return g_size; }

int cllm_dist_exit(int rc) {
#ifdef CLLM_MPI
    if (g_inited) {
        fflush(stdout);
        fflush(stderr);
        if (rc != 0 && g_size > 1) MPI_Abort(MPI_COMM_WORLD, rc);
        MPI_Finalize();
        g_inited = 0;
    }
#endif
    return rc;
}

#define CHUNK 65536 /* cllm_grad_norm's chunk (clip.c) */

double cllm_dist_optimizer_bytes(size_t n, int ranks, int zero) {
    if (ranks < 1) ranks = 1;
    size_t mine = n;
    if (zero && ranks > 1) {
        size_t chunks = (n + CHUNK - 1) / CHUNK, most = (chunks + (size_t)ranks - 1) / (size_t)ranks;
        mine = most * CHUNK < n ? most * CHUNK : n;
    }
    return 2.0 * sizeof(float) * (double)mine;
}

/* Elements of one rank's slice that one reduce-scatter round moves: the
 * receive buffer (ranks x this) stays near 64 MiB whatever the model size. */
static size_t round_elems(int ranks) {
    const char *t = getenv("CLLM_REDUCE_ROUND"); /* tests: many rounds on a small model */
    if (t && atol(t) > 0) return (size_t)atol(t);
    size_t e = ((size_t)16 << 20) / (size_t)(ranks > 0 ? ranks : 1);
    return e < CHUNK ? CHUNK : e;
}

double cllm_dist_reduce_buffer_bytes(size_t n, int ranks, int zero) {
    if (ranks <= 1) return 0;
    size_t chunks = (n + CHUNK - 1) / CHUNK, most = zero ? (chunks + (size_t)ranks - 1) / (size_t)ranks * CHUNK
                                                          : (n + (size_t)ranks - 1) / (size_t)ranks;
    if (most > n) most = n;
    if (most > round_elems(ranks)) most = round_elems(ranks);
    return (double)sizeof(float) * (double)most * ranks;
}

/* ---- harness level ------------------------------------------------------------------- */

struct th_dist {
    int rank, size;
    int groups;              /* gradient groups per step: size, or CLLM_GRAD_GROUPS on one rank */
    int zero;                /* ZeRO-1: moments sharded (size > 1 and data parallel) */
    int group;               /* one rank with groups > 1: group of the last unit, -1 none yet */
    int stashed;             /* ... and acc holds the groups before it */
    float *acc;              /* [total] stashed partial gradients (groups > 1 on one rank) */
    float *recv;             /* [size x round_elems] reduce-scatter receive buffer (size > 1) */
    size_t lo[TH_MAX_EXTRA + 1], hi[TH_MAX_EXTRA + 1]; /* this rank's slice per optimizer */
    int stop_any, warned;
    double comm_s, *compute_s; /* this step: rank 0's communication time, each rank's compute time */
    int overlap;             /* CLLM_OVERLAP=1: reduce block by block during backward (ov_*) */
    struct ov_plan *ov;      /* its plan, built at the first unit (NULL: blocking rounds) */
#ifdef CLLM_MPI
    MPI_Comm comm2;          /* the overlapped reductions' own communicator (size > 1) */
#endif
};

static th_optim *optim_k(th_run *h, int k) { return k == 0 ? &h->opt : &h->extra[k - 1]; }

static size_t total_params(const th_run *h) {
    size_t n = h->opt.n;
    for (int i = 0; i < h->n_extra; i++) n += h->extra[i].n;
    return n;
}

/* Slice r of [0, n) among `size`: whole `align`-element pieces, contiguous. */
__attribute__((unused)) static void slice(size_t n, int r, int size, size_t align, size_t *lo, size_t *hi) {
    size_t pieces = (n + align - 1) / align;
    size_t a = pieces * (size_t)r / (size_t)size, b = pieces * (size_t)(r + 1) / (size_t)size;
    *lo = a * align < n ? a * align : n;
    *hi = b * align < n ? b * align : n;
}

static int env_int(const char *name, int dflt) {
    const char *s = getenv(name);
    return s && *s ? atoi(s) : dflt;
}

cllm_status th_dist_open(th_run *h, cllm_error *err) {
    if (h->dist) return CLLM_OK;
    th_dist *d = calloc(1, sizeof *d);
    if (!d) return cllm_error_set(err, CLLM_ERR_NOMEM, "%s: out of memory", h->name);
    cllm_dist_init();
    d->rank = g_rank;
    d->size = g_size;
    d->groups = d->size;
    if (d->size == 1) {
        int g = env_int("CLLM_GRAD_GROUPS", 1);
        if (g < 1 || g > 4096) {
            free(d);
            return cllm_error_set(err, CLLM_ERR_ARG, "CLLM_GRAD_GROUPS=%d must be in [1, 4096]", g);
        }
        d->groups = g;
    }
    d->zero = d->size > 1 && env_int("CLLM_ZERO", 1) != 0;
    d->overlap = d->size > 1 && env_int("CLLM_OVERLAP", 0) != 0;
#ifdef CLLM_MPI
    /* every rank, overlap or not: a collective that all ranks reach here */
    if (d->size > 1) MPI_Comm_dup(MPI_COMM_WORLD, &d->comm2);
#endif
    d->group = -1;
    d->compute_s = calloc((size_t)d->size, sizeof *d->compute_s);
    if (!d->compute_s) {
        free(d);
        return cllm_error_set(err, CLLM_ERR_NOMEM, "%s: out of memory", h->name);
    }
    h->dist = d;
    return CLLM_OK;
}

#ifdef CLLM_MPI
static void ov_free(th_run *h);
#endif

void th_dist_free(th_run *h) {
    th_dist *d = h->dist;
    if (!d) return;
#ifdef CLLM_MPI
    ov_free(h);
#endif
    free(d->acc);
    free(d->recv);
    free(d->compute_s);
    free(d);
    h->dist = NULL;
}

int th_dist_writer(const th_run *h) { return !h->dist || h->dist->rank == 0; }
int th_dist_ranks(const th_run *h) { return h->dist ? h->dist->size : 1; }

static int parallel(const th_run *h) { return h->dist && h->dist->size > 1 && h->data_parallel; }

static cllm_status th_dist_share_open_impl(th_run *h, cllm_status st, cllm_error *err) {
    th_dist *d = h->dist;
    if (!d || d->size == 1) return st;
    int64_t msg[2] = {st, h->latest};
    MPI_Bcast(msg, 2, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    if (d->rank == 0) return st;
    h->latest = msg[1];
    if (msg[0] != CLLM_OK)
        return cllm_error_set(err, (cllm_status)msg[0], "%s: rank 0 could not open the run directory %s (its message "
                              "says why)", h->name, h->run_dir);
    return CLLM_OK;
}

/* First line of two config texts that differs, into a[]/b[]; 0 when equal. */
__attribute__((unused)) static int first_diff(const char *x, const char *y, char *a, char *b, size_t cap) {
    while (*x || *y) {
        size_t lx = strcspn(x, "\n"), ly = strcspn(y, "\n");
        if (lx != ly || memcmp(x, y, lx) != 0) {
            snprintf(a, cap, "%.*s", (int)(lx < 200 ? lx : 200), x);
            snprintf(b, cap, "%.*s", (int)(ly < 200 ? ly : 200), y);
            return 1;
        }
        x += lx + (x[lx] == '\n');
        y += ly + (y[ly] == '\n');
    }
    return 0;
}

static cllm_status th_dist_check_same_impl(th_run *h, cllm_error *err) {
    th_dist *d = h->dist;
    if (!d || d->size == 1) return CLLM_OK;
#ifdef CLLM_MPI
    const cllm_train_state *s = &h->state;
    uint64_t mine[6] = {cllm_fnv1a64(s->config, strlen(s->config), CLLM_FNV_OFFSET), s->data_fingerprint,
                        s->tokenizer_hash, s->layout_hash, (uint64_t)h->data_parallel,
                        (uint64_t)(d->overlap * 2 + d->zero)};
    uint64_t *all = malloc(sizeof mine * (size_t)d->size);
    char *cfg0 = malloc(CLLM_CKPT_CONFIG_MAX), *cfgr = malloc(CLLM_CKPT_CONFIG_MAX);
    if (!all || !cfg0 || !cfgr) {
        free(all);
        free(cfg0);
        free(cfgr);
        return cllm_error_set(err, CLLM_ERR_NOMEM, "%s: out of memory", h->name);
    }
    MPI_Allgather(mine, 6, MPI_UINT64_T, all, 6, MPI_UINT64_T, MPI_COMM_WORLD);
    memcpy(cfg0, s->config, CLLM_CKPT_CONFIG_MAX);
    MPI_Bcast(cfg0, CLLM_CKPT_CONFIG_MAX, MPI_BYTE, 0, MPI_COMM_WORLD);
    static const char *what[6] = {"settings", "training data (fingerprint)", "tokenizer", "model layout",
                                  "trainer", "CLLM_OVERLAP / CLLM_ZERO environment"};
    /* The first mismatch (rank r, item k), the same on every rank; every rank
     * builds the same message, since whichever stops first may end the job
     * (MPI_Abort) before another prints anything. */
    int r = 1, k = 0;
    for (; r < d->size; r++) {
        for (k = 0; k < 6 && all[r * 6 + k] == all[k]; k++) {}
        if (k < 6) break;
    }
    cllm_status st = CLLM_OK;
    if (r < d->size) {
        char a[256] = "", b[256] = "";
        if (k == 0) { /* rank r's settings text, to name the first differing line */
            memcpy(cfgr, s->config, CLLM_CKPT_CONFIG_MAX);
            MPI_Bcast(cfgr, CLLM_CKPT_CONFIG_MAX, MPI_BYTE, r, MPI_COMM_WORLD);
        }
        if (k == 0 && first_diff(cfg0, cfgr, a, b, sizeof a))
            st = cllm_error_set(err, CLLM_ERR_ARG,
                                "%s: rank %d was started with other settings than rank 0 ('%s' on rank %d, '%s' "
                                "on rank 0); every rank must get the same options",
                                h->name, r, b, r, a);
        else
            st = cllm_error_set(err, CLLM_ERR_ARG,
                                "%s: rank %d's %s does not match rank 0's (%016" PRIx64 " vs %016" PRIx64
                                "); every rank must get the same options and the same data files",
                                h->name, r, what[k], all[r * 6 + k], all[k]);
    }
    free(all);
    free(cfg0);
    free(cfgr);
    if (st == CLLM_OK && !h->data_parallel)
        th_log(h, "%s: not split across ranks yet: each of the %d ranks computes the whole step (the result of one "
               "process, without a speedup)", h->name, d->size);
    return st;
#else
    (void)err;
    return CLLM_OK;
#endif
}

void th_dist_config_line(th_run *h) {
    if (!h->data_parallel || !h->dist) return;
    size_t l = strlen(h->state.config);
    snprintf(h->state.config + l, sizeof h->state.config - l, "%sgrad_groups=%d\n",
             l && h->state.config[l - 1] != '\n' ? "\n" : "", h->dist->groups);
}

void th_dist_resume_note(th_run *h, const char *saved) {
    if (!h->data_parallel || !h->dist) return;
    const char *p = strstr(saved, "grad_groups=");
    int was = p && (p == saved || p[-1] == '\n') ? atoi(p + strlen("grad_groups=")) : 1;
    if (was != h->dist->groups)
        th_log(h, "note: the checkpoint was trained with its gradients summed in %d group(s) (ranks) and this run "
               "sums them in %d: training continues from it correctly, but the sums round differently, so the "
               "result is not bit-identical to continuing with %d rank(s)",
               was, h->dist->groups, was);
}

#ifdef CLLM_MPI
/* Slices of optimizer o's block: ZeRO's chunk-aligned ones, or even ones. */
static void slices_of(const th_dist *d, const th_optim *o, int r, size_t *lo, size_t *hi) {
    slice(o->n, r, d->size, d->zero ? CHUNK : 1, lo, hi);
}

static void counts_of(const th_dist *d, const th_optim *o, int *cnt, int *disp) {
    for (int r = 0; r < d->size; r++) {
        size_t lo, hi;
        slices_of(d, o, r, &lo, &hi);
        cnt[r] = (int)(hi - lo);
        disp[r] = (int)lo;
    }
}

/* ---- overlap (CLLM_OVERLAP=1): optimizer 0's block reduced range by range -------------
 * The block is cut into ranges by the backward event that completes them
 * (block l's tensors: cllm_model_set_grad_ready_hook's l; everything else:
 * -1, the end of backward), ordered by event, last block first. When the
 * backward of a rank's last unit reports block l, the ranges of events >= l
 * start (MPI_Ialltoallv on comm2, the same pieces as the blocking rounds);
 * th_dist_reduce starts the rest (a rank whose last unit ran no backward
 * starts them all there), waits, and adds every range's pieces in rank
 * order: the same fp32 adds as the blocking path, so the same bits. All
 * ranks start the ranges in the same order on comm2, so the blocking
 * collectives on MPI_COMM_WORLD in between do not interleave with them.
 * The receive buffer is size x this rank's slice (about the gradient
 * block), not a 64 MiB round. */
typedef struct {
    size_t lo, hi;   /* [lo, hi) of optimizer 0's block */
    int event;       /* block whose backward completes it; -1: the end of backward */
    size_t mlo, mhi; /* its part inside this rank's slice */
    size_t rbase;    /* where the ranks' pieces of [mlo, mhi) land in recv, rank after rank */
    int *cnt;        /* [4 x size] send counts, send offsets, receive counts, receive offsets */
} ov_range;

struct ov_plan {
    ov_range *r;
    int n, next;              /* ranges; the first not started this step */
    MPI_Request *req;
    float *recv;
    int armed;                /* the backward running now is this rank's last of the step */
    double bytes, bytes_early; /* over the run: bytes of the ranges, and of those this rank saw done in backward */
};

static int cmp_tensor_off(const void *a, const void *b) {
    const cllm_tensor *x = *(const cllm_tensor *const *)a, *y = *(const cllm_tensor *const *)b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

static int cmp_range(const void *a, const void *b) {
    const ov_range *x = a, *y = b;
    if (x->event != y->event) return x->event < y->event ? 1 : -1; /* descending: L-1 .. 0, then -1 */
    return (x->lo > y->lo) - (x->lo < y->lo);
}

static void ov_hook(void *ctx, int layer);

/* Builds the plan once (NULL on failure: the blocking rounds are used). */
static void ov_prepare(th_run *h) {
    th_dist *d = h->dist;
    th_optim *o = &h->opt;
    if (d->ov || !d->overlap || !o->model || !o->tensor || o->n == 0) return;
    struct ov_plan *p = calloc(1, sizeof *p);
    const cllm_tensor **t = malloc(sizeof *t * (size_t)(o->n_tensors > 0 ? o->n_tensors : 1));
    p->r = p ? calloc(2 * (size_t)o->n_tensors + 2, sizeof *p->r) : NULL;
    if (!p || !t || !p->r) goto fail;
    for (int i = 0; i < o->n_tensors; i++) t[i] = o->tensor(o->model, i);
    qsort(t, (size_t)o->n_tensors, sizeof *t, cmp_tensor_off);
    size_t at = 0; /* [0, at) is covered */
    for (int i = 0; i <= o->n_tensors; i++) {
        size_t start = i < o->n_tensors ? t[i]->offset : o->n;
        if (start > at) p->r[p->n++] = (ov_range){at, start, -1, 0, 0, 0, NULL}; /* a gap */
        if (i == o->n_tensors) break;
        int ev = t[i]->layer >= 0 ? t[i]->layer : -1;
        size_t end = t[i]->offset + t[i]->numel;
        if (p->n > 0 && p->r[p->n - 1].event == ev && p->r[p->n - 1].hi == t[i]->offset) p->r[p->n - 1].hi = end;
        else p->r[p->n++] = (ov_range){t[i]->offset, end, ev, 0, 0, 0, NULL};
        at = end;
    }
    qsort(p->r, (size_t)p->n, sizeof *p->r, cmp_range);
    size_t mlo, mhi, total = 0;
    slices_of(d, o, d->rank, &mlo, &mhi);
    for (int k = 0; k < p->n; k++) {
        ov_range *x = &p->r[k];
        x->cnt = malloc(sizeof(int) * 4 * (size_t)d->size);
        if (!x->cnt) goto fail;
        x->mlo = x->lo > mlo ? x->lo : mlo;
        x->mhi = x->hi < mhi ? x->hi : mhi;
        if (x->mhi < x->mlo) x->mhi = x->mlo;
        x->rbase = total;
        const int len = (int)(x->mhi - x->mlo);
        total += (size_t)len * (size_t)d->size;
        for (int r = 0; r < d->size; r++) {
            size_t a, b;
            slices_of(d, o, r, &a, &b);
            a = a > x->lo ? a : x->lo;
            b = b < x->hi ? b : x->hi;
            x->cnt[r] = b > a ? (int)(b - a) : 0;
            x->cnt[d->size + r] = (int)a;
            x->cnt[2 * d->size + r] = len;
            x->cnt[3 * d->size + r] = r * len;
        }
    }
    p->req = malloc(sizeof *p->req * (size_t)p->n);
    p->recv = malloc((total ? total : 1) * sizeof *p->recv);
    if (!p->req || !p->recv) goto fail;
    for (int k = 0; k < p->n; k++) p->req[k] = MPI_REQUEST_NULL;
    free(t);
    d->ov = p;
    cllm_model_set_grad_ready_hook((cllm_model *)o->model, ov_hook, h);
    return;
fail:
    if (p && p->r)
        for (int k = 0; k < p->n; k++) free(p->r[k].cnt);
    if (p) free(p->r), free(p->req), free(p->recv);
    free(p);
    free(t);
    d->overlap = 0; /* the blocking rounds: every rank must agree, so a rank that cannot plan stops */
    fprintf(stderr, "%s: rank %d: out of memory for the overlapped reduction\n", h->name, d->rank);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

static void ov_start(th_run *h, int k) {
    th_dist *d = h->dist;
    ov_range *x = &d->ov->r[k];
    int *c = x->cnt;
    MPI_Ialltoallv(h->opt.grads, c, c + d->size, MPI_FLOAT, d->ov->recv + x->rbase, c + 2 * d->size,
                   c + 3 * d->size, MPI_FLOAT, d->comm2, &d->ov->req[k]);
}

/* Ranges started so far that have finished count as hidden. */
static void ov_poll(th_run *h, int upto) {
    struct ov_plan *p = h->dist->ov;
    for (int k = 0; k < upto; k++) {
        if (p->req[k] == MPI_REQUEST_NULL) continue;
        int done = 0;
        MPI_Test(&p->req[k], &done, MPI_STATUS_IGNORE);
        if (done) p->bytes_early += 4.0 * (double)(p->r[k].hi - p->r[k].lo);
    }
}

static void ov_hook(void *ctx, int layer) {
    th_run *h = ctx;
    struct ov_plan *p = h->dist->ov;
    if (!p || !p->armed) return;
    sig_hold held = hold_signals();
    while (p->next < p->n && (layer < 0 || p->r[p->next].event >= layer)) ov_start(h, p->next++);
    ov_poll(h, p->next); /* also drives the transfers: Open MPI progresses inside MPI calls */
    release_signals(held);
}

static void ov_free(th_run *h) {
    struct ov_plan *p = h->dist->ov;
    if (!p) return;
    if (p->bytes > 0)
        th_log(h, "overlap: %.0f%% of the gradient bytes had been exchanged when backward ended (reduced while "
               "it ran)", 100.0 * p->bytes_early / p->bytes);
    for (int k = 0; k < p->n; k++) free(p->r[k].cnt);
    free(p->r);
    free(p->req);
    free(p->recv);
    free(p);
    h->dist->ov = NULL; /* the model's hook still points at h: trainers free the model with the run */
}

/* th_dist_reduce for optimizer 0 with a plan: start the rest, wait, add in rank order. */
static void ov_finish(th_run *h) {
    th_dist *d = h->dist;
    struct ov_plan *p = d->ov;
    ov_poll(h, p->next);
    while (p->next < p->n) ov_start(h, p->next++);
    MPI_Waitall(p->n, p->req, MPI_STATUSES_IGNORE);
    float *g = h->opt.grads;
    for (int k = 0; k < p->n; k++) {
        const ov_range *x = &p->r[k];
        const size_t len = x->mhi - x->mlo;
        const float *in = p->recv + x->rbase;
        memcpy(g + x->mlo, in, len * sizeof *g);
        for (int r = 1; r < d->size; r++)
            for (size_t i = 0; i < len; i++) g[x->mlo + i] += in[(size_t)r * len + i];
        p->bytes += 4.0 * (double)(x->hi - x->lo);
    }
    p->next = 0;
    p->armed = 0;
}
#endif

static cllm_status th_dist_share_resume_impl(th_run *h, cllm_status st, cllm_error *err) {
    th_dist *d = h->dist;
    if (!d || d->size == 1) return st;
#ifdef CLLM_MPI
    int s = st;
    MPI_Bcast(&s, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (s != CLLM_OK) {
        if (d->rank == 0) return st;
        return cllm_error_set(err, (cllm_status)s, "%s: rank 0 could not resume from %s (its message says why)",
                              h->name, h->run_dir);
    }
    char config[CLLM_CKPT_CONFIG_MAX];
    memcpy(config, h->state.config, sizeof config); /* each rank keeps its own (equal) text */
    MPI_Bcast(&h->state, (int)sizeof h->state, MPI_BYTE, 0, MPI_COMM_WORLD);
    memcpy(h->state.config, config, sizeof config);
    for (int k = 0; k <= h->n_extra; k++) {
        th_optim *o = optim_k(h, k);
        int64_t step = o->step;
        MPI_Bcast(&step, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
        o->step = step;
        const int sharded = parallel(h) && d->zero;
        for (size_t off = 0; off < o->n; off += (size_t)1 << 28) {
            int cnt = (int)(o->n - off < ((size_t)1 << 28) ? o->n - off : ((size_t)1 << 28));
            MPI_Bcast(o->params + off, cnt, MPI_FLOAT, 0, MPI_COMM_WORLD);
            cllm_bf16_mirror_stale(o->params + off, (size_t)cnt);
            if (sharded) continue;
            MPI_Bcast(o->m + off, cnt, MPI_FLOAT, 0, MPI_COMM_WORLD);
            MPI_Bcast(o->v + off, cnt, MPI_FLOAT, 0, MPI_COMM_WORLD);
        }
        if (sharded) { /* ZeRO-1: each rank receives (and touches) only its slice of the moments */
            int *cnt = malloc(sizeof(int) * 2 * (size_t)d->size);
            if (!cnt) return cllm_error_set(err, CLLM_ERR_NOMEM, "%s: out of memory", h->name);
            counts_of(d, o, cnt, cnt + d->size);
            float *bufs[2] = {o->m, o->v};
            for (int b = 0; b < 2; b++) {
                if (d->rank == 0)
                    MPI_Scatterv(bufs[b], cnt, cnt + d->size, MPI_FLOAT, MPI_IN_PLACE, 0, MPI_FLOAT, 0, MPI_COMM_WORLD);
                else
                    MPI_Scatterv(NULL, NULL, NULL, MPI_FLOAT, bufs[b] + cnt[d->size + d->rank], cnt[d->rank], MPI_FLOAT,
                                 0, MPI_COMM_WORLD);
            }
            free(cnt);
        }
    }
    h->resumed = 1;
    return CLLM_OK;
#else
    (void)err;
    return st;
#endif
}

/* ---- gradient groups on one rank ----------------------------------------------------- */

static void grads_zero(th_run *h) {
    for (int k = 0; k <= h->n_extra; k++) memset(optim_k(h, k)->grads, 0, optim_k(h, k)->n * sizeof(float));
}

/* acc = grads (first group) or acc += grads, then zero grads. */
static void stash(th_run *h) {
    th_dist *d = h->dist;
    float *a = d->acc;
    for (int k = 0; k <= h->n_extra; k++) {
        th_optim *o = optim_k(h, k);
        if (!d->stashed) memcpy(a, o->grads, o->n * sizeof *a);
        else
            for (size_t i = 0; i < o->n; i++) a[i] += o->grads[i];
        a += o->n;
    }
    d->stashed = 1;
    grads_zero(h);
}

int th_unit(th_run *h, int i, int n) {
    th_dist *d = h->dist;
    if (!d || !h->data_parallel || d->groups <= 1 || n <= 0) return 1;
    if (n < d->groups && !d->warned) {
        d->warned = 1;
        th_log(h, "%s: warning: a step has %d unit(s) (micro-batches or pairs) for %d gradient groups (ranks): %d "
               "of them idle; raise --total-batch / --accum / --batch to a multiple of %d",
               h->name, n, d->groups, d->groups - n, d->groups);
    }
    const int g = (int)((int64_t)i * d->groups / n);
    if (d->size > 1) {
#ifdef CLLM_MPI
        ov_prepare(h);
        /* the last unit of this rank's group: its backward completes the step's gradients */
        if (d->ov && g == d->rank && (int)((int64_t)(i + 1) * d->groups / n) != g) d->ov->armed = 1;
#endif
        return g == d->rank;
    }
    if (g != d->group) {
        if (d->group >= 0) {
            if (!d->acc) d->acc = malloc(total_params(h) * sizeof *d->acc);
            if (!d->acc) { /* no memory for the exact grouping: keep accumulating in place */
                d->groups = 1;
                return 1;
            }
            stash(h);
        }
        d->group = g;
    }
    return 1;
}

int th_groups(const th_run *h) { return h->dist && h->data_parallel ? h->dist->groups : 1; }

int th_group(th_run *h, int g, int n, int *lo, int *hi) {
    const int G = th_groups(h);
    *lo = (int)(((int64_t)g * n + G - 1) / G); /* the units i with i * G / n == g (th_unit) */
    *hi = (int)(((int64_t)(g + 1) * n + G - 1) / G);
    if (G <= 1) return 1;
    if (h->dist->size > 1) {
#ifdef CLLM_MPI
        ov_prepare(h);
        if (h->dist->ov && g == h->dist->rank && *lo < *hi) h->dist->ov->armed = 1; /* one backward per group */
#endif
        return g == h->dist->rank;
    }
    if (*lo < *hi) return th_unit(h, *lo, n); /* starts the group (stashes the one before) */
    return 1;
}

void th_dist_step_begin(th_run *h) {
    th_dist *d = h->dist;
    if (!d) return;
    d->group = -1;
    d->stashed = 0;
    d->comm_s = 0;
}

static cllm_status th_dist_step_end_impl(th_run *h, double *loss, double *tokens, double compute_s, cllm_error *err) {
    th_dist *d = h->dist;
    if (!d) return CLLM_OK;
    if (d->size == 1) {
        d->compute_s[0] = compute_s;
        if (d->stashed) { /* the last group, then the sum back into the gradients */
            const float *a = d->acc;
            for (int k = 0; k <= h->n_extra; k++) {
                th_optim *o = optim_k(h, k);
                for (size_t i = 0; i < o->n; i++) o->grads[i] = a[i] + o->grads[i];
                a += o->n;
            }
        }
        return CLLM_OK;
    }
#ifdef CLLM_MPI
    /* loss and tokens (each rank's share when data parallel), compute time, stop flag */
    double mine[4] = {*loss, *tokens, compute_s, h->stop_flag && *h->stop_flag ? 1.0 : 0.0};
    double *all = malloc(sizeof mine * (size_t)d->size);
    if (!all) return cllm_error_set(err, CLLM_ERR_NOMEM, "%s: out of memory", h->name);
    const double t = cllm_now_seconds();
    MPI_Allgather(mine, 4, MPI_DOUBLE, all, 4, MPI_DOUBLE, MPI_COMM_WORLD);
    d->comm_s += cllm_now_seconds() - t;
    d->stop_any = 0;
    if (h->data_parallel) {
        *loss = all[0];
        *tokens = all[1];
    }
    for (int r = 0; r < d->size; r++) {
        if (h->data_parallel && r > 0) {
            *loss += all[r * 4];
            *tokens += all[r * 4 + 1];
        }
        d->compute_s[r] = all[r * 4 + 2];
        d->stop_any |= all[r * 4 + 3] != 0;
    }
    free(all);
    return CLLM_OK;
#else
    (void)loss, (void)tokens, (void)err;
    return CLLM_OK;
#endif
}

int th_dist_stop_requested(const th_run *h) {
    if (h->dist && h->dist->size > 1) return h->dist->stop_any;
    return h->stop_flag && *h->stop_flag;
}

/* ---- reduction and update ------------------------------------------------------------ */


static void th_dist_reduce_impl(th_run *h) {
    th_dist *d = h->dist;
    if (!parallel(h)) return;
#ifdef CLLM_MPI
    const double t0 = cllm_now_seconds();
    const size_t per_round = round_elems(d->size);
    if (!d->recv) d->recv = malloc(per_round * (size_t)d->size * sizeof *d->recv);
    int *sc = malloc(sizeof(int) * 4 * (size_t)d->size);
    if (!d->recv || !sc) {
        fprintf(stderr, "%s: rank %d: out of memory for the gradient reduction\n", h->name, d->rank);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    int *sd = sc + d->size, *rc = sd + d->size, *rd = rc + d->size;
    for (int k = 0; k <= h->n_extra; k++) {
        th_optim *o = optim_k(h, k);
        size_t lo, hi, most = 0;
        slices_of(d, o, d->rank, &lo, &hi);
        d->lo[k] = lo;
        d->hi[k] = hi;
        if (k == 0 && d->overlap) ov_prepare(h); /* normally built at the first unit */
        if (k == 0 && d->ov) ov_finish(h);
        else
            for (int r = 0; r < d->size; r++) { /* the blocking path: rounds over the slices */
            size_t a, b;
            slices_of(d, o, r, &a, &b);
            if (b - a > most) most = b - a;
            }
        /* rounds of at most per_round elements of every slice: all ranks take the same number */
        for (size_t off = 0; off < most; off += per_round) {
            for (int r = 0; r < d->size; r++) {
                size_t a, b;
                slices_of(d, o, r, &a, &b);
                size_t s0 = a + off < b ? a + off : b, s1 = s0 + per_round < b ? s0 + per_round : b;
                sc[r] = (int)(s1 - s0); /* my gradients of rank r's slice, this round */
                sd[r] = (int)s0;
            }
            size_t m0 = lo + off < hi ? lo + off : hi, m1 = m0 + per_round < hi ? m0 + per_round : hi;
            const int len = (int)(m1 - m0);
            for (int r = 0; r < d->size; r++) {
                rc[r] = len;
                rd[r] = r * len;
            }
            /* every rank's piece of my slice, in rank order, added in rank order */
            MPI_Alltoallv(o->grads, sc, sd, MPI_FLOAT, d->recv, rc, rd, MPI_FLOAT, MPI_COMM_WORLD);
            float *g = o->grads + m0;
            memcpy(g, d->recv, (size_t)len * sizeof *g);
            for (int r = 1; r < d->size; r++) {
                const float *p = d->recv + (size_t)r * len;
                for (int i = 0; i < len; i++) g[i] += p[i];
            }
        }
        if (!d->zero) {
            counts_of(d, o, sc, sd);
            MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, o->grads, sc, sd, MPI_FLOAT, MPI_COMM_WORLD);
        }
    }
    free(sc);
    d->comm_s += cllm_now_seconds() - t0;
#else
    (void)d;
#endif
}

static double th_dist_norm_impl(th_run *h, int k) {
    th_optim *o = optim_k(h, k);
    if (!parallel(h) || !h->dist->zero) return th_optim_norm(o);
#ifdef CLLM_MPI
    /* cllm_grad_norm's chunk sums, each chunk summed by its slice's owner, added in chunk order */
    th_dist *d = h->dist;
    const double t0 = cllm_now_seconds();
    const size_t n = o->n, n_chunks = (n + CHUNK - 1) / CHUNK;
    if (n == 0) return 0.0;
    double *parts = malloc(n_chunks * sizeof *parts);
    int *cnt = malloc(sizeof(int) * 2 * (size_t)d->size);
    if (!parts || !cnt) {
        fprintf(stderr, "%s: rank %d: out of memory for the gradient norm\n", h->name, d->rank);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    int *disp = cnt + d->size;
    for (int r = 0; r < d->size; r++) {
        size_t lo, hi;
        slice(n_chunks, r, d->size, 1, &lo, &hi);
        cnt[r] = (int)(hi - lo);
        disp[r] = (int)lo;
    }
    for (int c = disp[d->rank]; c < disp[d->rank] + cnt[d->rank]; c++) {
        size_t lo = (size_t)c * CHUNK, hi = lo + CHUNK < n ? lo + CHUNK : n;
        parts[c] = cllm_vsumsq(o->grads + lo, hi - lo);
    }
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DOUBLE, parts, cnt, disp, MPI_DOUBLE, MPI_COMM_WORLD);
    double total = 0.0;
    for (size_t c = 0; c < n_chunks; c++) total += parts[c];
    free(parts);
    free(cnt);
    d->comm_s += cllm_now_seconds() - t0;
    return sqrt(total);
#else
    return th_optim_norm(o);
#endif
}

static void th_dist_update_impl(th_run *h, int k, float lr, double norm) {
    th_optim *o = optim_k(h, k);
    if (!parallel(h) || !h->dist->zero) {
        th_optim_update(o, lr, norm);
        return;
    }
#ifdef CLLM_MPI
    th_dist *d = h->dist;
    th_optim_update_range(o, lr, norm, d->lo[k], d->hi[k]);
    const double t0 = cllm_now_seconds();
    int *cnt = malloc(sizeof(int) * 2 * (size_t)d->size);
    if (!cnt) MPI_Abort(MPI_COMM_WORLD, 1);
    counts_of(d, o, cnt, cnt + d->size);
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, o->params, cnt, cnt + d->size, MPI_FLOAT, MPI_COMM_WORLD);
    cllm_bf16_mirror_stale(o->params, o->n); /* the other ranks' slices changed outside AdamW */
    free(cnt);
    d->comm_s += cllm_now_seconds() - t0;
#endif
}

static void th_dist_gather_moments_impl(th_run *h) {
    if (!parallel(h) || !h->dist->zero) return;
#ifdef CLLM_MPI
    th_dist *d = h->dist;
    int *cnt = malloc(sizeof(int) * 2 * (size_t)d->size);
    if (!cnt) MPI_Abort(MPI_COMM_WORLD, 1);
    for (int k = 0; k <= h->n_extra; k++) {
        th_optim *o = optim_k(h, k);
        counts_of(d, o, cnt, cnt + d->size);
        const int me = d->rank;
        float *bufs[2] = {o->m, o->v};
        for (int b = 0; b < 2; b++) {
            if (me == 0)
                MPI_Gatherv(MPI_IN_PLACE, 0, MPI_FLOAT, bufs[b], cnt, cnt + d->size, MPI_FLOAT, 0, MPI_COMM_WORLD);
            else
                MPI_Gatherv(bufs[b] + cnt[d->size + me], cnt[me], MPI_FLOAT, NULL, NULL, NULL, MPI_FLOAT, 0,
                            MPI_COMM_WORLD);
        }
    }
    free(cnt);
#endif
}

void th_dist_csv_columns(const th_run *h, char *out, size_t cap) {
    const th_dist *d = h->dist;
    if (!d) {
        snprintf(out, cap, ",1,0,");
        return;
    }
    size_t n = (size_t)snprintf(out, cap, ",%d,%.6f,", d->size, d->comm_s);
    for (int r = 0; r < d->size && n < cap; r++)
        n += (size_t)snprintf(out + n, cap - n, "%s%.6f", r ? ";" : "", d->compute_s[r]);
}

cllm_status th_dist_share_open(th_run *h, cllm_status st, cllm_error *err) {
    sig_hold held = hold_signals();
    cllm_status r = th_dist_share_open_impl(h, st, err);
    release_signals(held);
    return r;
}

cllm_status th_dist_check_same(th_run *h, cllm_error *err) {
    sig_hold held = hold_signals();
    cllm_status r = th_dist_check_same_impl(h, err);
    release_signals(held);
    return r;
}

cllm_status th_dist_share_resume(th_run *h, cllm_status st, cllm_error *err) {
    sig_hold held = hold_signals();
    cllm_status r = th_dist_share_resume_impl(h, st, err);
    release_signals(held);
    return r;
}

cllm_status th_dist_step_end(th_run *h, double *loss, double *tokens, double compute_s, cllm_error *err) {
    sig_hold held = hold_signals();
    cllm_status r = th_dist_step_end_impl(h, loss, tokens, compute_s, err);
    release_signals(held);
    return r;
}

void th_dist_reduce(th_run *h) {
    sig_hold held = hold_signals();
    th_dist_reduce_impl(h);
    release_signals(held);
}

double th_dist_norm(th_run *h, int k) {
    sig_hold held = hold_signals();
    double r = th_dist_norm_impl(h, k);
    release_signals(held);
    return r;
}

void th_dist_update(th_run *h, int k, float lr, double norm) {
    sig_hold held = hold_signals();
    th_dist_update_impl(h, k, lr, norm);
    release_signals(held);
}

void th_dist_gather_moments(th_run *h) {
    sig_hold held = hold_signals();
    th_dist_gather_moments_impl(h);
    release_signals(held);
}

/*
 * fileio.c: checked reads, read-only mmaps and atomic (crash-safe) writes.
 *
 * The atomic protocol is the one docs/FORMATS.md relies on for checkpoints:
 * write "<path>.tmp.<pid>", fflush + fsync, rename onto <path>, fsync the
 * directory. A reader therefore sees either the old complete file or the new
 * complete file, never a mixture, even after kill -9 or power loss.
 */
#include "cllm/core/fileio.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *file_kind(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}

cllm_status cllm_file_check_regular(const char *path, uint64_t *size, cllm_error *err) {
    struct stat st;
    if (!path || !*path) return cllm_error_set(err, CLLM_ERR_ARG, "empty file path");
    if (stat(path, &st) != 0)
        return cllm_error_set(err, CLLM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return cllm_error_set(err, CLLM_ERR_IO, "%s: is %s; expected a regular file", path,
                              file_kind(st.st_mode));
    if (size) *size = (uint64_t)st.st_size;
    return CLLM_OK;
}

cllm_status cllm_file_read_all(const char *path, uint64_t max_len, char **data,
                               size_t *len, cllm_error *err) {
    *data = NULL;
    *len = 0;
    uint64_t size = 0;
    cllm_status st = cllm_file_check_regular(path, &size, err);
    if (st != CLLM_OK) return st;
    if (max_len && size > max_len)
        return cllm_error_set(err, CLLM_ERR_LIMIT, "%s: file is %llu bytes, more than the %llu allowed",
                              path, (unsigned long long)size, (unsigned long long)max_len);
    if (size > (uint64_t)SIZE_MAX - 1)
        return cllm_error_set(err, CLLM_ERR_LIMIT, "%s: file too large for this machine", path);
    FILE *fp = fopen(path, "rb");
    if (!fp) return cllm_error_set(err, CLLM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = malloc((size_t)size + 1);
    if (!buf) {
        fclose(fp);
        return cllm_error_set(err, CLLM_ERR_NOMEM, "%s: cannot allocate %llu bytes", path,
                              (unsigned long long)size);
    }
    size_t got = fread(buf, 1, (size_t)size, fp);
    int read_error = ferror(fp);
    fclose(fp);
    if (read_error || got != (size_t)size) {
        free(buf);
        return cllm_error_set(err, CLLM_ERR_IO, "%s: read %zu of %llu bytes (file changed or I/O error)",
                              path, got, (unsigned long long)size);
    }
    buf[size] = '\0';
    *data = buf;
    *len = (size_t)size;
    return CLLM_OK;
}

/* ---- the SIGBUS guard (fileio.h) -------------------------------------------
 * A table of the live mappings' address ranges, written at open and close
 * and read by the handler; atomics, because the handler may run on any
 * thread while another opens or closes a map. 64 slots: a process maps a
 * few model files and shards; a map that finds no free slot is unguarded. */
#define GUARD_SLOTS 64
static struct {
    atomic_uintptr_t lo, hi; /* [lo, hi) page-rounded; lo == 0: free */
    atomic_int used, damaged;
} guard[GUARD_SLOTS];
static size_t guard_page_size = 4096; /* set before the handler is installed (sysconf is not signal-safe) */

static void on_sigbus(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    const uintptr_t a = (uintptr_t)si->si_addr;
    for (int i = 0; i < GUARD_SLOTS; i++) {
        const uintptr_t lo = atomic_load(&guard[i].lo), hi = atomic_load(&guard[i].hi);
        if (!lo || a < lo || a >= hi) continue;
        /* The file no longer backs [lo, hi): zero pages take its place, so
         * the faulting read and every later one complete. mmap is one system
         * call (not on POSIX's list of async-signal-safe functions, but it
         * touches no user-space state). */
        if (mmap((void *)lo, hi - lo, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) {
            atomic_store(&guard[i].damaged, 1);
            return;
        }
    }
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, NULL); /* not one of ours: die as without the guard */
    raise(sig);
}

static void guard_install(void) {
    long page = sysconf(_SC_PAGESIZE);
    if (page > 0) guard_page_size = (size_t)page;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
}

void cllm_mmap_guard_enable(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, guard_install);
}

static int guard_register(const void *p, size_t n) {
    const uintptr_t lo = (uintptr_t)p, hi = lo + (n + guard_page_size - 1) / guard_page_size * guard_page_size;
    for (int i = 0; i < GUARD_SLOTS; i++) {
        int expect = 0;
        if (!atomic_compare_exchange_strong(&guard[i].used, &expect, 1)) continue;
        atomic_store(&guard[i].damaged, 0);
        atomic_store(&guard[i].hi, hi);
        atomic_store(&guard[i].lo, lo);
        return i + 1;
    }
    return 0;
}

static void guard_unregister(int slot) {
    if (slot <= 0) return;
    atomic_store(&guard[slot - 1].lo, 0);
    atomic_store(&guard[slot - 1].hi, 0);
    atomic_store(&guard[slot - 1].used, 0);
}

cllm_status cllm_mmap_open(cllm_mmap *map, const char *path, cllm_error *err) {
    memset(map, 0, sizeof *map);
    uint64_t size = 0;
    cllm_status st = cllm_file_check_regular(path, &size, err);
    if (st != CLLM_OK) return st;
    if (size == 0) return CLLM_OK;
    if (size > (uint64_t)SIZE_MAX)
        return cllm_error_set(err, CLLM_ERR_LIMIT, "%s: file too large to map", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cllm_error_set(err, CLLM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat id;
    void *p = fstat(fd, &id) == 0 ? mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    int map_errno = errno;
    close(fd);
    if (p == MAP_FAILED)
        return cllm_error_set(err, CLLM_ERR_IO, "%s: cannot map: %s", path, strerror(map_errno));
    map->data = p;
    map->size = (size_t)size;
    map->dev = (uint64_t)id.st_dev;
    map->ino = (uint64_t)id.st_ino;
    map->mtime_ns = (int64_t)id.st_mtim.tv_sec * 1000000000 + id.st_mtim.tv_nsec;
    map->guard_slot = guard_register(p, map->size);
    return CLLM_OK;
}

void cllm_mmap_close(cllm_mmap *map) {
    if (!map) return;
    guard_unregister(map->guard_slot); /* before the range can be reused by another mapping */
    if (map->data) munmap((void *)map->data, map->size);
    memset(map, 0, sizeof *map);
}

cllm_status cllm_mmap_check(const cllm_mmap *map, const char *path, cllm_error *err) {
    if (!map->data) return CLLM_OK;
    if (map->guard_slot > 0 && atomic_load(&guard[map->guard_slot - 1].damaged))
        return cllm_error_set(err, CLLM_ERR_IO,
                              "%s: the file was truncated while in use (its mapped pages now read as zeros); "
                              "restart to load it again",
                              path);
    struct stat now;
    if (stat(path, &now) != 0 || (uint64_t)now.st_dev != map->dev || (uint64_t)now.st_ino != map->ino)
        return CLLM_OK; /* removed or replaced by rename: the mapped inode is intact */
    const int64_t mtime = (int64_t)now.st_mtim.tv_sec * 1000000000 + now.st_mtim.tv_nsec;
    if ((uint64_t)now.st_size != (uint64_t)map->size || mtime != map->mtime_ns)
        return cllm_error_set(err, CLLM_ERR_IO,
                              "%s: the file was modified in place while in use (size %llu -> %llu bytes); "
                              "replace model files by rename (mv) and restart to load the new one",
                              path, (unsigned long long)map->size, (unsigned long long)now.st_size);
    return CLLM_OK;
}

cllm_status cllm_dir_check_writable(const char *dir, cllm_error *err) {
    struct stat st;
    if (stat(dir, &st) != 0)
        return cllm_error_set(err, CLLM_ERR_IO, "%s: output directory does not exist: %s", dir,
                              strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return cllm_error_set(err, CLLM_ERR_IO, "%s: is not a directory", dir);
    if (access(dir, W_OK | X_OK) != 0)
        return cllm_error_set(err, CLLM_ERR_IO, "%s: directory is not writable: %s", dir,
                              strerror(errno));
    return CLLM_OK;
}

cllm_status cllm_dir_ensure(const char *dir, cllm_error *err) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return cllm_error_set(err, CLLM_ERR_IO, "%s: cannot create directory: %s", dir, strerror(errno));
    return cllm_dir_check_writable(dir, err);
}

cllm_status cllm_fsync_dir_of(const char *path, cllm_error *err) {
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", path);
    struct stat st;
    const char *dir = (stat(copy, &st) == 0 && S_ISDIR(st.st_mode)) ? copy : dirname(copy);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return cllm_error_set(err, CLLM_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    /* Some filesystems refuse fsync on directories (EINVAL); the rename is still durable there. */
    if (rc != 0 && e != EINVAL)
        return cllm_error_set(err, CLLM_ERR_IO, "%s: cannot fsync directory: %s", dir, strerror(e));
    return CLLM_OK;
}

static void atomic_fail(cllm_atomic_file *af, const char *what, int e) {
    if (af->status != CLLM_OK) return;
    af->status = CLLM_ERR_IO;
    cllm_error_set(&af->error, CLLM_ERR_IO, "%s: %s failed: %s", af->path, what, strerror(e));
}

cllm_status cllm_atomic_begin(cllm_atomic_file *af, const char *path, cllm_error *err) {
    memset(af, 0, sizeof *af);
    if (strlen(path) + 32 >= sizeof af->tmp_path)
        return cllm_error_set(err, CLLM_ERR_ARG, "%s: path too long", path);
    snprintf(af->path, sizeof af->path, "%s", path);
    snprintf(af->tmp_path, sizeof af->tmp_path, "%s.tmp.%ld", path, (long)getpid());
    af->fp = fopen(af->tmp_path, "wb");
    if (!af->fp)
        return cllm_error_set(err, CLLM_ERR_IO, "%s: cannot create temporary file %s: %s", path,
                              af->tmp_path, strerror(errno));
    af->status = CLLM_OK;
    return CLLM_OK;
}

void cllm_atomic_write(cllm_atomic_file *af, const void *data, size_t len) {
    if (af->status != CLLM_OK || len == 0) return;
    if (fwrite(data, 1, len, af->fp) != len) {
        atomic_fail(af, "write", errno ? errno : EIO);
        return;
    }
    af->bytes += len;
}

void cllm_atomic_printf(cllm_atomic_file *af, const char *fmt, ...) {
    if (af->status != CLLM_OK) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vfprintf(af->fp, fmt, ap);
    va_end(ap);
    if (n < 0) atomic_fail(af, "write", errno ? errno : EIO);
    else af->bytes += (uint64_t)n;
}

void cllm_atomic_pad(cllm_atomic_file *af, size_t alignment) {
    static const uint8_t zeros[256];
    if (alignment == 0) return;
    size_t pad = (size_t)((alignment - af->bytes % alignment) % alignment);
    while (pad > 0) {
        size_t n = pad < sizeof zeros ? pad : sizeof zeros;
        cllm_atomic_write(af, zeros, n);
        pad -= n;
    }
}

void cllm_atomic_abort(cllm_atomic_file *af) {
    if (af->fp) {
        fclose(af->fp);
        af->fp = NULL;
        unlink(af->tmp_path);
    }
}

cllm_status cllm_atomic_commit(cllm_atomic_file *af, cllm_error *err) {
    if (af->status == CLLM_OK && fflush(af->fp) != 0) atomic_fail(af, "flush", errno);
    if (af->status == CLLM_OK && fsync(fileno(af->fp)) != 0) atomic_fail(af, "fsync", errno);
    if (af->fp) {
        if (fclose(af->fp) != 0) atomic_fail(af, "close", errno);
        af->fp = NULL;
    }
    if (af->status == CLLM_OK && rename(af->tmp_path, af->path) != 0) atomic_fail(af, "rename", errno);
    if (af->status != CLLM_OK) {
        unlink(af->tmp_path);
        if (err) *err = af->error;
        return af->status;
    }
    return cllm_fsync_dir_of(af->path, err);
}

cllm_status cllm_file_write_atomic(const char *path, const void *data, size_t len,
                                   cllm_error *err) {
    cllm_atomic_file af;
    cllm_status st = cllm_atomic_begin(&af, path, err);
    if (st != CLLM_OK) return st;
    cllm_atomic_write(&af, data, len);
    return cllm_atomic_commit(&af, err);
}

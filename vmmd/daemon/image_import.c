/* Image import: hashing, sparse copies and qemu-img conversions (see image_import.h). */
#include "image_import.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK            (1u << 20)
#define ZERO_BLOCK       4096u /* the granularity of holes */
#define QEMU_IMG         "qemu-img"
#define SOURCE_FD        3 /* where qemu-img finds the source */
#define SOURCE_FD_PATH   "/dev/fd/3"
#define PROBE_TIMEOUT_MS 15000
/* qemu-img reads hostile files: bounded in memory, and in time far beyond any real image. */
#define QEMU_IMG_AS_LIMIT  (4ull << 30)
#define QEMU_IMG_CPU_LIMIT 3600

struct image_hash {
    gnutls_hash_hd_t hd;
};

struct image_hash *image_hash_new(void)
{
    struct image_hash *h = calloc(1, sizeof(*h));

    if (h && gnutls_hash_init(&h->hd, GNUTLS_DIG_SHA256) < 0) {
        free(h);
        return NULL;
    }
    return h;
}

void image_hash_update(struct image_hash *h, const void *data, size_t len)
{
    gnutls_hash(h->hd, data, len);
}

void image_hash_finish(struct image_hash *h, char out[65])
{
    unsigned char digest[32];

    gnutls_hash_deinit(h->hd, digest);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
    free(h);
}

void image_hash_free(struct image_hash *h)
{
    if (h) {
        gnutls_hash_deinit(h->hd, NULL);
        free(h);
    }
}

enum api_image_format image_detect_format(int fd)
{
    char magic[4];

    return pread(fd, magic, sizeof(magic), 0) == sizeof(magic) &&
                   memcmp(magic, IMAGE_QCOW2_MAGIC, sizeof(magic)) == 0
               ? API_IMAGE_QCOW2
               : API_IMAGE_RAW;
}

bool image_all_zero(const void *data, size_t n)
{
    const char *buf = data;

    return n == 0 || (buf[0] == 0 && memcmp(buf, buf + 1, n - 1) == 0);
}

/* Records the failure of what ("writing the image: No space left on device"). */
static int fail(struct image_job *job, int rc, const char *what)
{
    job->rc = rc;
    snprintf(job->error, sizeof(job->error), "%s: %s", what, strerror(-rc));
    return rc;
}

int image_write_sparse(int fd, const void *data, size_t n, off_t off)
{
    const char *buf = data;
    size_t i = 0;

    while (i < n) {
        size_t start, end;

        while (i < n && image_all_zero(buf + i, n - i < ZERO_BLOCK ? n - i : ZERO_BLOCK))
            i += ZERO_BLOCK;
        start = i;
        while (i < n && !image_all_zero(buf + i, n - i < ZERO_BLOCK ? n - i : ZERO_BLOCK))
            i += ZERO_BLOCK;
        end = i < n ? i : n;
        while (end > start) {
            ssize_t w = pwrite(fd, buf + start, end - start, off + (off_t)start);

            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                if (w == 0)
                    errno = EIO;
                return -1;
            }
            start += (size_t)w;
        }
    }
    return 0;
}

/*
 * One pass over the source: its digest (when asked) and, with dst_fd, a sparse
 * copy (blocks of zeros are left as holes). Counts progress as it goes.
 */
static int read_source(struct image_job *job, int src_fd, int dst_fd, struct image_hash *h)
{
    char *buf = malloc(CHUNK);
    off_t off = 0;
    ssize_t n;

    if (!buf)
        return fail(job, -ENOMEM, "reading the source");
    while ((n = pread(src_fd, buf, CHUNK, off)) > 0) {
        if (atomic_load(&job->cancel)) {
            free(buf);
            return fail(job, -ECANCELED, "the import");
        }
        if (h)
            image_hash_update(h, buf, (size_t)n);
        if (dst_fd >= 0 && image_write_sparse(dst_fd, buf, (size_t)n, off) < 0) {
            free(buf);
            return fail(job, errno ? -errno : -EIO, "writing the image");
        }
        off += n;
        atomic_fetch_add(&job->done, (uint64_t)n);
    }
    free(buf);
    if (n < 0)
        return fail(job, -errno, "reading the source");
    job->source_bytes = (uint64_t)off;
    if (dst_fd >= 0 && ftruncate(dst_fd, off) < 0)
        return fail(job, -errno, "writing the image");
    job->size_bytes = (uint64_t)off;
    return 0;
}

static void qemu_img_child(const char *const argv[], int src_fd, int out_fd)
{
    struct rlimit as = {QEMU_IMG_AS_LIMIT, QEMU_IMG_AS_LIMIT};
    struct rlimit cpu = {QEMU_IMG_CPU_LIMIT, QEMU_IMG_CPU_LIMIT};
    sigset_t all;
    int null = open("/dev/null", O_RDONLY);

    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL);
    setrlimit(RLIMIT_AS, &as);
    setrlimit(RLIMIT_CPU, &cpu);
    if (null < 0 || dup2(null, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
        _exit(127);
    /* The source is the file the daemon opened and checked, never its path again. */
    if (src_fd == SOURCE_FD ? fcntl(src_fd, F_SETFD, 0) < 0 : dup2(src_fd, SOURCE_FD) < 0)
        _exit(127);
    execvp(argv[0], (char *const *)argv);
    _exit(127);
}

/* "    (45.00/100%)\r": qemu-img -p's progress, as a fraction of the virtual size. */
static void parse_progress(struct image_job *job, const char *text, uint64_t base)
{
    const char *p = strrchr(text, '(');
    double pct;

    if (p && sscanf(p, "(%lf/100%%)", &pct) == 1 && pct >= 0 && pct <= 100)
        atomic_store(&job->done, base + (uint64_t)(pct / 100.0 * (double)job->virtual_size));
}

/*
 * Runs qemu-img on src_fd (SOURCE_FD_PATH in argv) with its output in out
 * (the tail when it is longer). With a job: its progress is read as it
 * comes, it is killed when the job is cancelled, and h (if any) hashes
 * src_fd meanwhile: both read the same file from the page cache, so the
 * digest costs next to nothing on top of the conversion. Returns the exit
 * status, 128 + signal, -ETIMEDOUT (after timeout_ms, 0: none) or -errno.
 */
static int run_qemu_img(const char *const argv[], int src_fd, char *out, size_t outlen,
                        int timeout_ms, struct image_job *job, uint64_t base)
{
    struct timespec t0, t;
    char line[512];
    size_t used = 0;
    int pipefd[2], status = 0;
    bool timed_out = false;
    pid_t pid;

    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return -errno;
    pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        return -errno;
    }
    if (pid == 0)
        qemu_img_child(argv, src_fd, pipefd[1]);
    close(pipefd[1]);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* Its progress lines are a few bytes each: the pipe holds them while we hash. */
    if (job && job->hash && read_source(job, src_fd, -1, job->hash))
        atomic_store(&job->cancel, true);
    for (;;) {
        struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
        ssize_t n;

        clock_gettime(CLOCK_MONOTONIC, &t);
        if (timeout_ms &&
            (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > timeout_ms)
            timed_out = true;
        if (timed_out || (job && atomic_load(&job->cancel)))
            kill(pid, SIGKILL);
        if (poll(&p, 1, 200) == 0)
            continue;
        n = read(pipefd[0], line, sizeof(line) - 1);
        if (n <= 0)
            break;
        line[n] = 0;
        if (job)
            parse_progress(job, line, base);
        /* Keep the tail: on failure its last line says why. */
        if (used + (size_t)n >= outlen)
            used = 0;
        if ((size_t)n < outlen) {
            memcpy(out + used, line, (size_t)n + 1);
            used += (size_t)n;
        }
    }
    close(pipefd[0]);
    waitpid(pid, &status, 0);
    while (used && (out[used - 1] == '\n' || out[used - 1] == '\r'))
        out[--used] = 0;
    if (timed_out)
        return -ETIMEDOUT;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int image_qcow2_probe(int fd, uint64_t *virtual_size, char *err, size_t errlen)
{
    const char *argv[] = {QEMU_IMG, "info", "--output=json", "-f", "qcow2", SOURCE_FD_PATH, NULL};
    char out[8192] = "";
    json_t *info, *fs;
    int rc = run_qemu_img(argv, fd, out, sizeof(out), PROBE_TIMEOUT_MS, NULL, 0);

    if (rc == -ENOENT || rc == 127) {
        snprintf(err, errlen, "qemu-img is not installed (Debian package qemu-utils)");
        return -ENOENT;
    }
    if (rc) {
        /* qemu-img's own words say what is wrong with the file; the first line is enough. */
        out[strcspn(out, "\n")] = 0;
        snprintf(err, errlen, "not a readable qcow2 image: %.200s",
                 rc == -ETIMEDOUT ? "qemu-img info took too long" : out);
        return -EINVAL;
    }
    info = json_loads(out, 0, NULL);
    fs = json_object_get(json_object_get(info, "format-specific"), "data");
    rc = -EINVAL;
    if (!json_is_integer(json_object_get(info, "virtual-size")))
        snprintf(err, errlen, "qemu-img info gave no virtual size");
    else if (json_object_get(info, "backing-filename") ||
             json_object_get(info, "full-backing-filename"))
        snprintf(err, errlen,
                 "a qcow2 image with a backing file is refused: import a flattened image "
                 "(qemu-img convert -O qcow2 in.qcow2 out.qcow2)");
    else if (json_object_get(fs, "data-file"))
        snprintf(err, errlen, "a qcow2 image with an external data file is refused");
    else {
        *virtual_size = (uint64_t)json_integer_value(json_object_get(info, "virtual-size"));
        rc = 0;
    }
    json_decref(info);
    return rc;
}

static int convert_qcow2(struct image_job *job, int src_fd)
{
    const char *argv[] = {QEMU_IMG, "convert", "-p",           "-f",     "qcow2",
                          "-O",     "raw",     SOURCE_FD_PATH, job->dst, NULL};
    uint64_t base = atomic_load(&job->total) - job->virtual_size; /* the hash's share */
    char out[512] = "", *last;
    int rc = run_qemu_img(argv, src_fd, out, sizeof(out), 0, job, base);

    if (job->rc)
        return job->rc; /* the hash failed: its reason is kept */
    if (atomic_load(&job->cancel))
        return fail(job, -ECANCELED, "the import");
    if (rc < 0)
        return fail(job, rc, "qemu-img");
    if (rc) {
        last = strrchr(out, '\n');
        job->rc = strstr(out, "No space left") ? -ENOSPC : -EINVAL;
        snprintf(job->error, sizeof(job->error), "qemu-img convert failed: %.200s",
                 last ? last + 1 : out);
        return job->rc;
    }
    /* On disk before the image is called ready, as a raw import's copy is. */
    int fd = open(job->dst, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0) {
        rc = -errno;
        if (fd >= 0)
            close(fd);
        return fail(job, rc, "writing the image");
    }
    close(fd);
    job->size_bytes = job->virtual_size;
    atomic_store(&job->done, atomic_load(&job->total));
    return 0;
}

void image_job_run(struct image_job *job)
{
    int src = job->src_fd, dst = -1;

    job->src_fd = -1;
    job->rc = 0;
    job->hash = job->hash_source ? image_hash_new() : NULL;
    if (job->hash_source && !job->hash) {
        fail(job, -ENOMEM, "sha256");
        goto out;
    }
    if (job->format == API_IMAGE_RAW) {
        dst = open(job->dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (dst < 0) {
            fail(job, -errno, "creating the image");
            goto out;
        }
        if (read_source(job, src, dst, job->hash) == 0 && fsync(dst) < 0)
            fail(job, -errno, "writing the image");
    } else {
        convert_qcow2(job, src);
    }
out:
    if (job->hash && job->rc == 0)
        image_hash_finish(job->hash, job->sha256);
    else
        image_hash_free(job->hash);
    job->hash = NULL;
    if (src >= 0)
        close(src);
    if (dst >= 0)
        close(dst);
    /* Ours to remove: a raw copy we created, or what qemu-img left of a conversion. */
    if (job->rc && (dst >= 0 || job->format == API_IMAGE_QCOW2))
        unlink(job->dst);
}

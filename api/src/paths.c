/*
 * Paths a VM definition points at (kernel, initrd, disks) must lie under one
 * of the host's image directories, so that an API client cannot make a
 * worker read /etc/shadow as a "disk". The check is on the canonical path
 * (realpath: symlinks and ".." resolved), component by component, and the
 * canonical path is what gets stored, so a later edit of a symlink in the
 * image directory cannot redirect a VM that was already checked.
 */
#include "api_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * Whole components: /images2/x is not under /images. A file must lie strictly
 * below the directory (or_equal: the directory itself also counts).
 */
static bool under_dir(const char *canon, const char *dir, bool or_equal)
{
    size_t n = strlen(dir);

    while (n > 1 && dir[n - 1] == '/') /* tolerate "/images/" in the configuration */
        n--;
    if (n == 1 && dir[0] == '/')
        return canon[0] == '/' && (or_equal || canon[1] != '\0');
    if (strncmp(canon, dir, n) != 0)
        return false;
    if (canon[n] == '\0')
        return or_equal;
    return canon[n] == '/' && canon[n + 1] != '\0';
}

static bool under_image_dirs(const char *canon, const struct api_limits *limits, bool or_equal)
{
    for (size_t i = 0; limits && i < limits->n_image_dirs; i++)
        if (limits->image_dirs[i] && under_dir(canon, limits->image_dirs[i], or_equal))
            return true;
    return false;
}

/*
 * For a path that does not resolve: does its nearest existing ancestor lie
 * in (or be) an image directory? Outside the image directories a missing
 * file is answered like a present one (403), so the API does not tell
 * clients which files exist elsewhere on the host.
 */
static int missing_path_inside(const char *path, const struct api_limits *limits)
{
    char *buf = strdup(path);
    int inside = 0;

    if (!buf)
        return -ENOMEM;
    for (;;) {
        char *slash = strrchr(buf, '/');
        char *canon;

        if (!slash)
            break;
        slash[slash == buf ? 1 : 0] = '\0';
        canon = realpath(buf, NULL);
        if (canon) {
            inside = under_image_dirs(canon, limits, true);
            free(canon);
            break;
        }
        if (errno == ENOMEM) {
            inside = -ENOMEM;
            break;
        }
        if (slash == buf)
            break;
    }
    free(buf);
    return inside;
}

int api__check_path(const char *field, const char *path, const struct api_limits *limits,
                    bool allow_blockdev, char **canonical, struct api_error *err)
{
    struct stat st;
    char *canon;
    json_t *utf8;

    *canonical = NULL;
    if (!path || path[0] != '/')
        return api_fail(err, API_ERR_UNPROCESSABLE, "%s: must be an absolute path", field);
    if (strlen(path) >= PATH_MAX)
        return api_fail(err, API_ERR_UNPROCESSABLE, "%s: longer than %d bytes", field,
                        PATH_MAX - 1);
    if (!limits || limits->n_image_dirs == 0)
        return api_fail(err, API_ERR_FORBIDDEN,
                        "%s: no image directories are configured on this host", field);

    canon = realpath(path, NULL);
    if (!canon) {
        int e = errno;
        int inside;

        if (e == ENOMEM)
            return api_fail(err, API_ERR_INTERNAL, "%s: out of memory", field);
        inside = missing_path_inside(path, limits);
        if (inside < 0)
            return api_fail(err, API_ERR_INTERNAL, "%s: out of memory", field);
        if (!inside)
            return api_fail(err, API_ERR_FORBIDDEN, "%s: %s is outside the image directories",
                            field, path);
        if (e == ENOENT)
            return api_fail(err, API_ERR_UNPROCESSABLE, "%s: %s does not exist", field, path);
        return api_fail(err, API_ERR_UNPROCESSABLE, "%s: %s cannot be resolved: %s", field, path,
                        strerror(e));
    }
    /* The detail names the path the client gave, not where a symlink led. */
    if (!under_image_dirs(canon, limits, false)) {
        free(canon);
        return api_fail(err, API_ERR_FORBIDDEN, "%s: %s is outside the image directories", field,
                        path);
    }
    if (stat(canon, &st) < 0) {
        int e = errno;

        free(canon);
        return api_fail(err, API_ERR_UNPROCESSABLE, "%s: %s cannot be read: %s", field, path,
                        strerror(e));
    }
    if (!S_ISREG(st.st_mode) && !(allow_blockdev && S_ISBLK(st.st_mode))) {
        free(canon);
        return api_fail(err, API_ERR_UNPROCESSABLE, "%s: %s is not a regular file%s", field, path,
                        allow_blockdev ? " or block device" : "");
    }
    /* The worker's --disk flag separates its options with commas. */
    if (allow_blockdev && strchr(canon, ',')) {
        free(canon);
        return api_fail(err, API_ERR_UNPROCESSABLE,
                        "%s: %s: a disk's path may not contain ','", field, path);
    }
    /* Stored paths go out again as JSON strings, which must be UTF-8; a
     * symlink may lead to a name that is not. */
    utf8 = json_string(canon);
    if (!utf8) {
        free(canon);
        return api_fail(err, API_ERR_UNPROCESSABLE, "%s: %s resolves to a name that is not UTF-8",
                        field, path);
    }
    json_decref(utf8);
    *canonical = canon;
    return 0;
}

/* Disk fields ("disks", "disks[3].path") may also name block devices. */
int api_check_path(const char *field, const char *path, const struct api_limits *limits,
                   char **canonical, struct api_error *err)
{
    bool disk = field && strncmp(field, "disks", 5) == 0;

    return api__check_path(field ? field : "path", path, limits, disk, canonical, err);
}

static int openat2_nofollow(int dirfd, const char *path, int flags, uint64_t resolve)
{
    struct open_how how = {.flags = (uint64_t)flags, .resolve = resolve | RESOLVE_NO_SYMLINKS};

    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

int api_open_beneath(const char *field, const char *path, const struct api_limits *limits,
                     bool writable, bool allow_blockdev, int *fd, struct api_error *err)
{
    const char *dir = NULL, *rel = NULL;
    struct stat st;
    int dirfd, f, e;

    *fd = -1;
    if (!path)
        return api_fail(err, API_ERR_UNPROCESSABLE, "%s: no path", field);
    for (size_t i = 0; limits && i < limits->n_image_dirs && !dir; i++) {
        size_t n = strlen(limits->image_dirs[i]);
        if (strncmp(path, limits->image_dirs[i], n) == 0 && path[n] == '/' && path[n + 1]) {
            dir = limits->image_dirs[i];
            rel = path + n + 1;
        }
    }
    if (!dir)
        return api_fail(err, API_ERR_FORBIDDEN, "%s: %s is outside the image directories", field,
                        path);
    /* The image directory itself is canonical: a symlink on its way is a swap too. */
    dirfd = openat2_nofollow(AT_FDCWD, dir, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
    if (dirfd < 0) {
        e = errno;
        if (e == ENOSYS)
            return api_fail(err, API_ERR_INTERNAL, "%s: this kernel has no openat2 (Linux 5.6 "
                            "or later is needed to open VM files safely)", field);
        return api_fail(err, e == ELOOP ? API_ERR_FORBIDDEN : API_ERR_UNPROCESSABLE,
                        "%s: image directory %s cannot be opened: %s", field, dir,
                        e == ELOOP ? "it has become a symlink" : strerror(e));
    }
    /* O_PATH first: the type is checked before anything is really opened (a FIFO would wait
     * for a writer, a device node would see an open), then the file itself is reopened
     * through its descriptor, which names that inode and no path. */
    f = openat2_nofollow(dirfd, rel, O_PATH | O_CLOEXEC, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
    e = errno;
    close(dirfd);
    if (f < 0) {
        if (e == ELOOP || e == EXDEV)
            return api_fail(err, API_ERR_FORBIDDEN,
                            "%s: %s is (or passes through) a symlink now; VM files are opened "
                            "with no symlink in their path", field, path);
        if (e == ENOENT)
            return api_fail(err, API_ERR_UNPROCESSABLE, "%s: %s does not exist", field, path);
        return api_fail(err, API_ERR_UNPROCESSABLE, "%s: %s cannot be opened%s: %s", field, path,
                        writable ? " for writing" : "", strerror(e));
    }
    if (fstat(f, &st) < 0 || !(S_ISREG(st.st_mode) || (allow_blockdev && S_ISBLK(st.st_mode)))) {
        close(f);
        return api_fail(err, API_ERR_UNPROCESSABLE, "%s: %s is not a regular file%s", field, path,
                        allow_blockdev ? " or block device" : "");
    }
    char self[32];
    snprintf(self, sizeof(self), "/proc/self/fd/%d", f);
    *fd = open(self, (writable ? O_RDWR : O_RDONLY) | O_NOCTTY | O_CLOEXEC);
    e = errno;
    close(f);
    if (*fd < 0)
        return api_fail(err, API_ERR_UNPROCESSABLE, "%s: %s cannot be opened%s: %s", field, path,
                        writable ? " for writing" : "", strerror(e));
    return 0;
}

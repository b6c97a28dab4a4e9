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
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

/*
 * `vmctl storage`, `vmctl image ...` and `vmctl volume ...`: the storage
 * pools, images and volumes of the API (/v1/storage, /v1/images,
 * /v1/volumes), with the conventions of the other commands: a table or a
 * key/value block by default, the API's body as sent with --output json,
 * the problem's detail on stderr and exit 1 when the API refuses, 2 for a
 * usage error.
 *
 * `image import` uploads a file as the request body, read a chunk at a time
 * (an image may be larger than memory), with a progress bar on stderr. An
 * import the daemon finishes in the background (202: a qcow2 converted, or
 * a --path import) is then followed on the event stream until the image is
 * ready or failed.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "output.h"
#include "progress.h"
#include "sse.h"
#include "storagespec.h"

/* Both lists have eight columns (images a ninth, MEMBERS, in a cluster). */
#define LIST_COLUMNS 8

const char cli_image_help[] =
    "  Subcommands (vmctl image SUBCOMMAND --help for each):\n"
    "    list                      the images: state, format, size, sha256, volumes (members)\n"
    "    show NAME                 one image\n"
    "    download NAME FILE        its raw bytes into FILE\n"
    "    import NAME FILE [--format auto|raw|qcow2] [--pool P]\n"
    "                              upload FILE, with a progress bar\n"
    "    import NAME --path PATH [--format auto|raw|qcow2] [--pool P]\n"
    "                              import a file under an import directory of the daemon\n"
    "    delete NAME               refused while volumes are cloned from it\n";

const char cli_volume_help[] =
    "  Subcommands (vmctl volume SUBCOMMAND --help for each):\n"
    "    list                      the volumes: size, image, clone kind, VMs using them\n"
    "    show NAME                 one volume\n"
    "    create NAME (--size MIB | --image IMAGE [--size MIB]) [--pool P] [--readonly]\n"
    "    resize NAME SIZE_MIB      grow a volume (no VM using it may run)\n"
    "    delete NAME               refused while a VM's definition uses it\n";

static void bytes_or_dash(json_t *o, const char *key, char out[32])
{
    if (json_is_integer(json_object_get(o, key)))
        cli_format_bytes(cli_jint(o, key), out);
    else
        snprintf(out, 32, "-");
}

/* A JSON array of strings joined by ", " into out ("-" when empty). */
static void join_names(json_t *names, char *out, size_t size)
{
    json_t *v;
    size_t i, used = 0;

    snprintf(out, size, "-");
    json_array_foreach(names, i, v)
    {
        int n = snprintf(out + used, size - used, "%s%s", i ? ", " : "",
                         json_is_string(v) ? json_string_value(v) : "?");
        if (n < 0 || (size_t)n >= size - used)
            break;
        used += (size_t)n;
    }
}

/* `image list`, `volume list`: the body with --output json, else a row per element. A last
 * column for the field optional (headers has one more) is shown when an element has it. */
static int list_command(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv,
                        const char *path, const char *const *headers, const char *optional,
                        void (*row)(json_t *o, struct cli_table *t))
{
    struct cli_response r;
    struct cli_table t;
    json_t *list, *o;
    size_t i, ncols = LIST_COLUMNS;
    int first, rc;

    if ((rc = cli_parse_options(ctx, cmd, argc, argv, NULL, NULL, NULL, 0, 0, &first)))
        return rc;
    if ((rc = cli_call(ctx, "GET", path, NULL, &r, &list)))
        return rc;
    if (ctx->output == CLI_OUTPUT_JSON) {
        cli_print_body(&r);
    } else {
        json_array_foreach(list, i, o) if (optional && json_object_get(o, optional))
            ncols = LIST_COLUMNS + 1;
        cli_table_init(&t, ncols, headers);
        json_array_foreach(list, i, o) row(o, &t);
        cli_table_print(&t, stdout, false);
        cli_table_free(&t);
    }
    json_decref(list);
    cli_response_free(&r);
    return 0;
}

/* ---- storage ------------------------------------------------------------------ */

int cli_cmd_storage(struct cli_ctx *ctx, int argc, char **argv)
{
    static const char *const headers[] = {"POOL", "PATH",   "SIZE",    "FREE",
                                          "USED", "IMAGES", "VOLUMES", "REFLINK"};
    struct cli_response r;
    struct cli_table t;
    json_t *st, *pool, *dir;
    size_t i;
    int first, rc;

    if ((rc = cli_parse_options(ctx, cli_find_command("storage"), argc, argv, NULL, NULL, NULL, 0,
                                0, &first)))
        return rc;
    if ((rc = cli_call(ctx, "GET", "/v1/storage", NULL, &r, &st)))
        return rc;
    if (ctx->output == CLI_OUTPUT_JSON) {
        cli_print_body(&r);
        json_decref(st);
        cli_response_free(&r);
        return 0;
    }
    cli_table_init(&t, 8, headers);
    json_array_foreach(json_object_get(st, "pools"), i, pool)
    {
        char size[32], free_[32], used[32], images[32], volumes[32];
        const char *cells[8] = {cli_jstr(pool, "name"),
                                cli_jstr(pool, "path"),
                                size,
                                free_,
                                used,
                                images,
                                volumes,
                                json_is_true(json_object_get(pool, "reflink")) ? "yes" : "no"};
        cli_format_bytes(cli_jint(pool, "size_bytes"), size);
        cli_format_bytes(cli_jint(pool, "free_bytes"), free_);
        cli_format_bytes(cli_jint(pool, "used_bytes"), used);
        snprintf(images, sizeof(images), "%lld", cli_jint(pool, "images"));
        snprintf(volumes, sizeof(volumes), "%lld", cli_jint(pool, "volumes"));
        cli_table_add(&t, cells);
    }
    cli_table_print(&t, stdout, false);
    cli_table_free(&t);
    putchar('\n');
    if (json_array_size(json_object_get(st, "import_dirs")) == 0)
        cli_kv("import dirs:", "-");
    json_array_foreach(json_object_get(st, "import_dirs"), i, dir)
        cli_kv(i == 0 ? "import dirs:" : "", json_string_value(dir));
    json_decref(st);
    cli_response_free(&r);
    return 0;
}

/* ---- images: list, show, delete ------------------------------------------------- */

/* "ready", "failed", "importing 42%". */
static void image_state(json_t *img, char out[32])
{
    json_t *p = json_object_get(img, "progress");
    long long total = cli_jint(p, "total_bytes");

    if (json_is_object(p) && total > 0)
        snprintf(out, 32, "%s %lld%%", cli_jstr(img, "state") ? cli_jstr(img, "state") : "?",
                 cli_jint(p, "done_bytes") * 100 / total);
    else
        snprintf(out, 32, "%s", cli_jstr(img, "state") ? cli_jstr(img, "state") : "?");
}

static void image_row(json_t *img, struct cli_table *t)
{
    char state[32], size[32], alloc[32], sha[13], vols[32], members[256];
    const char *cells[LIST_COLUMNS + 1] = {cli_jstr(img, "name"),
                                           state,
                                           cli_jstr(img, "format"),
                                           size,
                                           alloc,
                                           cli_jstr(img, "pool"),
                                           sha,
                                           vols,
                                           members};

    image_state(img, state);
    bytes_or_dash(img, "size_bytes", size);
    bytes_or_dash(img, "allocated_bytes", alloc);
    cli_sha256_short(cli_jstr(img, "sha256"), sha);
    snprintf(vols, sizeof(vols), "%zu", json_array_size(json_object_get(img, "volumes")));
    join_names(json_object_get(img, "members"), members, sizeof(members));
    cli_table_add(t, cells);
}

static void print_image(json_t *img)
{
    char buf[512];

    cli_kv("name:", cli_jstr(img, "name"));
    cli_kv("pool:", cli_jstr(img, "pool"));
    image_state(img, buf);
    cli_kv("state:", buf);
    if (cli_jstr(img, "error"))
        cli_kv("error:", cli_jstr(img, "error"));
    cli_kv("format:", cli_jstr(img, "format"));
    bytes_or_dash(img, "size_bytes", buf);
    cli_kv("size:", buf);
    bytes_or_dash(img, "allocated_bytes", buf);
    cli_kv("allocated:", buf);
    bytes_or_dash(img, "source_bytes", buf);
    cli_kv("source size:", buf);
    cli_kv("source:", cli_jstr(img, "source"));
    cli_kv("sha256:", cli_jstr(img, "sha256"));
    join_names(json_object_get(img, "volumes"), buf, sizeof(buf));
    cli_kv("volumes:", buf);
    if (json_object_get(img, "members")) { /* a cluster's image */
        join_names(json_object_get(img, "members"), buf, sizeof(buf));
        cli_kv("members:", buf);
        cli_kv("defined by:", cli_jstr(img, "member"));
    }
    cli_kv("created:", cli_jstr(img, "created_at"));
}

static int img_list(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    static const char *const headers[LIST_COLUMNS + 1] = {
        "NAME", "STATE", "FORMAT", "SIZE", "ALLOCATED", "POOL", "SHA256", "VOLUMES", "MEMBERS"};

    return list_command(ctx, cmd, argc, argv, "/v1/images", headers, "members", image_row);
}

/* GET or PATCH of /v1/COLLECTION/NAME, its answer printed by print. */
static int call_and_print(struct cli_ctx *ctx, const char *method, const char *collection,
                          const char *name, const char *body, void (*print)(json_t *obj))
{
    struct cli_response r;
    json_t *obj;
    int rc = cli_call_object(ctx, method, collection, name, NULL, body, &r, &obj);

    if (rc)
        return rc;
    return cli_print_answer(ctx, &r, obj, print);
}

static int img_show(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    int first, rc;

    if ((rc = cli_parse_options(ctx, cmd, argc, argv, NULL, NULL, NULL, 1, 1, &first)))
        return rc;
    return call_and_print(ctx, "GET", "images", argv[first], NULL, print_image);
}

static int img_delete(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    return cli_delete_named(ctx, cmd, argc, argv, "images", "deleted image");
}

struct download {
    FILE *f;
    int64_t got;
    int error; /* errno of a failed write */
};

static int write_chunk(void *opaque, const char *data, size_t len)
{
    struct download *dl = opaque;

    if (fwrite(data, 1, len, dl->f) != len) {
        dl->error = errno;
        return 1;
    }
    dl->got += (int64_t)len;
    return 0;
}

/* GET /v1/images/NAME/content into FILE, a chunk at a time; nothing is left of a failure. */
static int img_download(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    struct download dl = {0};
    char path[512], *esc;
    const char *file;
    int first, rc;

    if ((rc = cli_parse_options(ctx, cmd, argc, argv, NULL, NULL, NULL, 2, 2, &first)))
        return rc;
    file = argv[first + 1];
    if (!(esc = cli_http_escape(argv[first])))
        return CLI_EXIT_USAGE;
    snprintf(path, sizeof(path), "/v1/images/%s/content", esc);
    free(esc);
    if (!(dl.f = fopen(file, "wb"))) {
        fprintf(stderr, "vmctl: cannot write %s: %s\n", file, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    rc = cli_http_stream(ctx, path, write_chunk, &dl, 0, 0);
    if (fclose(dl.f) && !dl.error)
        dl.error = errno;
    if (!rc && dl.error) {
        fprintf(stderr, "vmctl: writing %s: %s\n", file, strerror(dl.error));
        rc = CLI_EXIT_REFUSED;
    }
    if (rc) {
        unlink(file);
        return rc;
    }
    printf("downloaded image %s to %s (%lld bytes)\n", argv[first], file, (long long)dl.got);
    return 0;
}

/* ---- images: import ----------------------------------------------------------- */

enum { OPT_FORMAT = CLI_OPT_FIRST, OPT_POOL, OPT_PATH, OPT_SIZE, OPT_IMAGE, OPT_READONLY };

struct import_opts {
    const struct cli_command *cmd;
    const char *format, *pool, *path;
};

static int import_opt(void *st, int id, const char *arg)
{
    struct import_opts *o = st;

    if (id == OPT_FORMAT) {
        if (!cli_image_format_valid(arg))
            return cli_usage_error(o->cmd, "--format must be auto, raw or qcow2, not '%s'", arg);
        o->format = arg;
    } else if (id == OPT_POOL) {
        o->pool = arg;
    } else {
        o->path = arg;
    }
    return 0;
}

/* Following an import on the event stream until its image is ready or failed. */
struct import_watch {
    struct cli_ctx *ctx;
    const char *name;
    struct cli_progress *bar;
    long long last_id; /* of the last event seen, -1 before any */
    bool checked;      /* the image was looked at since the stream connected */
    int outcome;       /* 0 importing, 1 ready, -1 failed */
    char error[512];
};

/* Looks at the image itself: ready, failed or gone settle the watch. */
static void check_image(struct import_watch *w)
{
    struct cli_response r;
    json_t *img;
    char *path = cli_object_path("images", w->name, NULL);
    const char *state;

    if (!path || cli_http_request(w->ctx, "GET", path, NULL, &r)) {
        free(path);
        return;
    }
    free(path);
    if (r.status == 404) {
        w->outcome = -1;
        snprintf(w->error, sizeof(w->error), "the image was deleted while importing");
    }
    img = r.status == 200 ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    state = cli_jstr(img, "state");
    if (state && !strcmp(state, "ready")) {
        w->outcome = 1;
    } else if (state && !strcmp(state, "failed")) {
        w->outcome = -1;
        snprintf(w->error, sizeof(w->error), "%s",
                 cli_jstr(img, "error") ? cli_jstr(img, "error") : "no reason given");
    } else if (json_is_object(json_object_get(img, "progress"))) {
        json_t *p = json_object_get(img, "progress");
        cli_progress_update(w->bar, cli_jint(p, "done_bytes"), cli_jint(p, "total_bytes"));
    }
    json_decref(img);
    cli_response_free(&r);
}

static int on_import_event(void *opaque, const char *id, const char *type, const char *data)
{
    struct import_watch *w = opaque;
    json_t *ev;
    const char *name;

    if (strcmp(id, "-"))
        w->last_id = strtoll(id, NULL, 10);
    if (strncmp(type, "image.", 6))
        return 0;
    ev = json_loads(data, 0, NULL);
    name = cli_jstr(ev, "name");
    if (name && !strcmp(name, w->name)) {
        if (!strcmp(type, "image.import_progress")) {
            cli_progress_update(w->bar, cli_jint(ev, "done_bytes"), cli_jint(ev, "total_bytes"));
        } else if (!strcmp(type, "image.ready")) {
            w->outcome = 1;
        } else if (!strcmp(type, "image.failed")) {
            w->outcome = -1;
            snprintf(w->error, sizeof(w->error), "%s",
                     cli_jstr(ev, "error") ? cli_jstr(ev, "error") : "no reason given");
        } else if (!strcmp(type, "image.deleted")) {
            w->outcome = -1;
            snprintf(w->error, sizeof(w->error), "the image was deleted while importing");
        }
    }
    json_decref(ev);
    return w->outcome != 0;
}

/*
 * The stream's data: the first bytes (its retry line) mean it is connected, and from then on
 * no event of the image can be missed; only then is the image itself looked at, so one that
 * finished before the stream began is not waited for forever.
 */
static int on_import_stream(void *opaque, const char *data, size_t len)
{
    struct cli_sse *sse = opaque;
    struct import_watch *w = sse->opaque;

    if (!w->checked) {
        w->checked = true;
        check_image(w);
        if (w->outcome)
            return 1;
    }
    return cli_sse_feed(sse, data, len);
}

/* Quiet this long: reconnect and look at the image again (events are never lost: ?since=). */
#define WATCH_IDLE_MS 5000

static int follow_import(struct cli_ctx *ctx, const char *name, const char *label)
{
    struct cli_progress bar;
    struct import_watch w = {.ctx = ctx, .name = name, .bar = &bar, .last_id = -1};
    struct cli_sse sse = {.on_event = on_import_event, .opaque = &w};
    char path[64];
    int rc = 0;

    cli_progress_start(&bar, stderr, isatty(STDERR_FILENO), label);
    while (!w.outcome) {
        if (w.last_id >= 0)
            snprintf(path, sizeof(path), "/v1/events?since=%lld", w.last_id);
        else
            snprintf(path, sizeof(path), "/v1/events");
        w.checked = false;
        sse.len = 0;
        rc = cli_http_stream(ctx, path, on_import_stream, &sse, 0, WATCH_IDLE_MS);
        if (rc)
            break;
        if (!w.outcome)
            check_image(&w);
    }
    free(sse.buf);
    cli_progress_end(&bar);
    if (rc)
        return rc;
    if (w.outcome < 0) {
        fprintf(stderr, "vmctl: importing %s failed: %s\n", name, w.error);
        return CLI_EXIT_REFUSED;
    }
    return 0;
}

static void on_uploaded(void *opaque, int64_t sent)
{
    struct cli_progress *bar = opaque;

    cli_progress_update(bar, sent, bar->total);
}

/* POSTs FILE as the body; *status is the answer's (201 ready, 202 converting). */
static int upload_image(struct cli_ctx *ctx, const struct import_opts *o, const char *name,
                        const char *file, long *status)
{
    struct cli_progress bar;
    struct cli_response r;
    struct stat st;
    char *esc_name = cli_http_escape(name), *esc_pool = o->pool ? cli_http_escape(o->pool) : NULL;
    char path[1024], label[160];
    FILE *f = fopen(file, "rb");
    int rc;

    if (!f || fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "vmctl: cannot upload %s: %s\n", file,
                f ? "not a regular file" : strerror(errno));
        if (f)
            fclose(f);
        free(esc_name);
        free(esc_pool);
        return CLI_EXIT_USAGE;
    }
    snprintf(path, sizeof(path), "/v1/images?name=%s%s%s%s%s", esc_name ? esc_name : "",
             o->format ? "&format=" : "", o->format ? o->format : "", esc_pool ? "&pool=" : "",
             esc_pool ? esc_pool : "");
    free(esc_name);
    free(esc_pool);
    snprintf(label, sizeof(label), "uploading %s", name);
    cli_progress_start(&bar, stderr, isatty(STDERR_FILENO), label);
    bar.total = st.st_size;
    rc = cli_http_upload(ctx, path, f, st.st_size, on_uploaded, &bar, &r);
    fclose(f);
    cli_progress_end(&bar);
    if (rc)
        return rc;
    *status = r.status;
    rc = cli_http_check(&r);
    cli_response_free(&r);
    return rc;
}

static int img_import(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, OPT_FORMAT},
        {"pool", required_argument, NULL, OPT_POOL},
        {"path", required_argument, NULL, OPT_PATH},
        {0},
    };
    struct import_opts o = {.cmd = cmd};
    const char *name;
    char label[160];
    long status = 0;
    int first, rc;

    if ((rc = cli_parse_options(ctx, cmd, argc, argv, opts, import_opt, &o, 1, 2, &first)))
        return rc;
    name = argv[first];
    if (o.path && first + 1 < argc)
        return cli_usage_error(cmd, "give FILE (an upload) or --path (on the daemon's host), "
                                    "not both");
    if (!o.path && first + 1 >= argc)
        return cli_usage_error(cmd, "missing FILE (or --path PATH)");
    if (o.path) {
        json_t *req = json_pack("{s:s, s:s, s:s}", "name", name, "path", o.path, "format",
                                o.format ? o.format : "auto");
        struct cli_response r;
        char *body;

        if (o.pool)
            json_object_set_new(req, "pool", json_string(o.pool));
        body = json_dumps(req, JSON_COMPACT);
        json_decref(req);
        rc = cli_call(ctx, "POST", "/v1/images", body, &r, NULL);
        free(body);
        if (rc)
            return rc;
        status = r.status;
        cli_response_free(&r);
        snprintf(label, sizeof(label), "importing %s", name);
    } else {
        if ((rc = upload_image(ctx, &o, name, argv[first + 1], &status)))
            return rc;
        snprintf(label, sizeof(label), "converting %s", name);
    }
    /* 202: the daemon goes on in the background (a conversion, a copy from --path). */
    if (status == 202 && (rc = follow_import(ctx, name, label)))
        return rc;
    /* The image as it is now, whichever way it came. */
    return call_and_print(ctx, "GET", "images", name, NULL, print_image);
}

/* ---- volumes ------------------------------------------------------------------ */

static void volume_size(json_t *vol, char out[32])
{
    if (json_is_integer(json_object_get(vol, "size_mib")))
        cli_format_mib(cli_jint(vol, "size_mib"), out);
    else
        snprintf(out, 32, "-");
}

static void volume_row(json_t *vol, struct cli_table *t)
{
    char size[32], alloc[32], users[256];
    const char *cells[8] = {cli_jstr(vol, "name"),
                            cli_jstr(vol, "pool"),
                            size,
                            alloc,
                            cli_jstr(vol, "image"),
                            cli_jstr(vol, "clone"),
                            json_is_true(json_object_get(vol, "readonly")) ? "yes" : "no",
                            users};

    volume_size(vol, size);
    bytes_or_dash(vol, "allocated_bytes", alloc);
    cli_volume_users(vol, users, sizeof(users));
    cli_table_add(t, cells);
}

static void print_volume(json_t *vol)
{
    char buf[512];

    cli_kv("name:", cli_jstr(vol, "name"));
    cli_kv("pool:", cli_jstr(vol, "pool"));
    volume_size(vol, buf);
    cli_kv("size:", buf);
    bytes_or_dash(vol, "allocated_bytes", buf);
    cli_kv("allocated:", buf);
    cli_volume_origin(vol, buf, sizeof(buf));
    cli_kv("origin:", buf);
    cli_kv("readonly:", json_is_true(json_object_get(vol, "readonly")) ? "yes" : "no");
    cli_volume_users(vol, buf, sizeof(buf));
    cli_kv("vms:", buf);
    cli_kv("created:", cli_jstr(vol, "created_at"));
}

static int vol_list(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    static const char *const headers[LIST_COLUMNS] = {"NAME",  "POOL",  "SIZE",     "ALLOCATED",
                                                      "IMAGE", "CLONE", "READONLY", "VMS"};

    return list_command(ctx, cmd, argc, argv, "/v1/volumes", headers, NULL, volume_row);
}

static int vol_show(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    int first, rc;

    if ((rc = cli_parse_options(ctx, cmd, argc, argv, NULL, NULL, NULL, 1, 1, &first)))
        return rc;
    return call_and_print(ctx, "GET", "volumes", argv[first], NULL, print_volume);
}

static int size_arg(const struct cli_command *cmd, const char *what, const char *arg, long *out)
{
    if (cli_parse_long(arg, 1, CLI_VOLUME_MIB_MAX, out))
        return cli_usage_error(cmd, "%s wants MiB from 1 to %ld, not '%s'", what,
                               CLI_VOLUME_MIB_MAX, arg);
    return 0;
}

static int volume_opt(void *st, int id, const char *arg)
{
    struct cli_body_opts *o = st;
    long n;

    switch (id) {
    case OPT_SIZE:
        if (size_arg(o->cmd, "--size", arg, &n))
            return CLI_EXIT_USAGE;
        json_object_set_new(o->body, "size_mib", json_integer(n));
        break;
    case OPT_IMAGE:
        json_object_set_new(o->body, "image", json_string(arg));
        break;
    case OPT_POOL:
        json_object_set_new(o->body, "pool", json_string(arg));
        break;
    case OPT_READONLY:
        json_object_set_new(o->body, "readonly", json_true());
        break;
    }
    return 0;
}

static int vol_create(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"size", required_argument, NULL, OPT_SIZE},
        {"image", required_argument, NULL, OPT_IMAGE},
        {"pool", required_argument, NULL, OPT_POOL},
        {"readonly", no_argument, NULL, OPT_READONLY},
        {0},
    };
    struct cli_body_opts o = {.cmd = cmd, .body = json_object()};
    int first, rc;

    rc = cli_parse_options(ctx, cmd, argc, argv, opts, volume_opt, &o, 1, 1, &first);
    if (rc == 0 && !json_object_get(o.body, "size_mib") && !json_object_get(o.body, "image"))
        rc = cli_usage_error(cmd, "give --size (an empty volume) or --image (a clone)");
    if (rc) {
        json_decref(o.body);
        return rc;
    }
    return cli_post_named(ctx, "/v1/volumes", argv[first], o.body, print_volume);
}

static int vol_resize(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    char body[64];
    long n;
    int first, rc;

    if ((rc = cli_parse_options(ctx, cmd, argc, argv, NULL, NULL, NULL, 2, 2, &first)))
        return rc;
    if (size_arg(cmd, "SIZE_MIB", argv[first + 1], &n))
        return CLI_EXIT_USAGE;
    snprintf(body, sizeof(body), "{\"size_mib\":%ld}", n);
    return call_and_print(ctx, "PATCH", "volumes", argv[first], body, print_volume);
}

static int vol_delete(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    return cli_delete_named(ctx, cmd, argc, argv, "volumes", "deleted volume");
}

/* ---- dispatch ------------------------------------------------------------------- */

static const struct cli_subcommand image_subcommands[] = {
    {{"image list", NULL, "", "List the images.", NULL}, "list", img_list},
    {{"image show", NULL, "NAME",
      "Show an image: state, format, sizes, sha256, the volumes cloned from it.", NULL},
     "show",
     img_show},
    {{"image import", NULL,
      "NAME FILE [--format auto|raw|qcow2] [--pool P]\n"
      "       vmctl image import NAME --path PATH [--format auto|raw|qcow2] [--pool P]",
      "Import an image: upload FILE (a progress bar on stderr), or have the daemon read PATH; "
      "wait until it is ready.",
      "      --format F           auto (default: the daemon looks), raw or qcow2 (stored raw)\n"
      "      --pool P             the pool to keep it in (default images)\n"
      "      --path PATH          a file under one of the daemon's import directories\n"
      "                           (vmctl storage lists them), instead of an upload\n"},
     "import",
     img_import},
    {{"image delete", NULL, "NAME", "Delete an image (refused while volumes are cloned from it).",
      NULL},
     "delete",
     img_delete},
    {{"image download", NULL, "NAME FILE",
      "Download a ready image's raw bytes into FILE (streamed; FILE is removed on failure).",
      NULL},
     "download",
     img_download},
};

static const struct cli_subcommand volume_subcommands[] = {
    {{"volume list", NULL, "", "List the volumes and the VMs that use them.", NULL},
     "list",
     vol_list},
    {{"volume show", NULL, "NAME", "Show a volume: size, the image it was cloned from, its VMs.",
      NULL},
     "show",
     vol_show},
    {{"volume create", NULL,
      "NAME (--size MIB | --image IMAGE [--size MIB]) [--pool P] [--readonly]",
      "Create a volume: empty (sparse), or a clone of an image (copy-on-write where the pool's "
      "filesystem can).",
      "      --size MIB           its size; with --image, at least the image's (it grows)\n"
      "      --image IMAGE        clone a ready image\n"
      "      --pool P             the pool to keep it in (default volumes)\n"
      "      --readonly           read-only: it may be attached to many VMs\n"},
     "create",
     vol_create},
    {{"volume resize", NULL, "NAME SIZE_MIB",
      "Grow a volume to SIZE_MIB (never shrinks; no VM using it may run).", NULL},
     "resize",
     vol_resize},
    {{"volume delete", NULL, "NAME", "Delete a volume (refused while a VM's definition uses it).",
      NULL},
     "delete",
     vol_delete},
};

int cli_cmd_image(struct cli_ctx *ctx, int argc, char **argv)
{
    return cli_dispatch(ctx, "image", image_subcommands,
                        sizeof(image_subcommands) / sizeof(image_subcommands[0]), argc, argv);
}

int cli_cmd_volume(struct cli_ctx *ctx, int argc, char **argv)
{
    return cli_dispatch(ctx, "volume", volume_subcommands,
                        sizeof(volume_subcommands) / sizeof(volume_subcommands[0]), argc, argv);
}

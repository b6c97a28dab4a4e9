/*
 * The file side of storage: how a clone is made (a reflink where the
 * filesystem can, else a sparse copy that keeps holes), image format
 * detection, zero blocks, the streaming sha256, and qcow2 probing by qemu-img
 * (refusing corrupt files and backing files) where qemu-img is installed.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "file_clone.h"
#include "image_import.h"

#define MIB (1u << 20)

static char dir[] = "/tmp/vmmd-storage-test-XXXXXX";

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int make_file(const char *name, int flags)
{
    char path[256];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | flags, 0600);
    assert_true(fd >= 0);
    return fd;
}

/* 16 MiB with data at 0 and at 9 MiB, holes elsewhere. */
static int sparse_source(void)
{
    int fd = make_file("src", 0);
    char block[4096];

    memset(block, 0xab, sizeof(block));
    assert_int_equal(pwrite(fd, block, sizeof(block), 0), sizeof(block));
    assert_int_equal(pwrite(fd, block, sizeof(block), 9 * MIB), sizeof(block));
    assert_int_equal(ftruncate(fd, 16 * MIB), 0);
    return fd;
}

static void assert_same_content(int a, int b, off_t len)
{
    static char ba[1 << 16], bb[1 << 16];

    for (off_t off = 0; off < len; off += sizeof(ba)) {
        assert_int_equal(pread(a, ba, sizeof(ba), off), sizeof(ba));
        assert_int_equal(pread(b, bb, sizeof(bb), off), sizeof(bb));
        assert_memory_equal(ba, bb, sizeof(ba));
    }
}

static void test_sparse_copy_keeps_holes(void **state)
{
    int src = sparse_source(), dst = make_file("dst", 0);
    enum file_clone_kind kind = FILE_CLONE_REFLINK;
    struct stat st;

    (void)state;
    assert_int_equal(file_clone(src, dst, 0, false, &kind), 0);
    assert_int_equal(kind, FILE_CLONE_SPARSE);
    assert_int_equal(fstat(dst, &st), 0);
    assert_int_equal(st.st_size, 16 * MIB);
    /* Two 4 KiB blocks of data, not 16 MiB (the filesystem may round up a little). */
    assert_true(file_allocated_bytes(dst) <= 512 * 1024);
    assert_same_content(src, dst, 16 * MIB);
    close(src);
    close(dst);
}

static void test_clone_grows_to_size(void **state)
{
    int src = sparse_source(), dst = make_file("grown", 0);
    enum file_clone_kind kind;
    struct stat st;

    (void)state;
    assert_int_equal(file_clone(src, dst, 64 * MIB, true, &kind), 0);
    assert_int_equal(fstat(dst, &st), 0);
    assert_int_equal(st.st_size, 64 * MIB);
    assert_same_content(src, dst, 16 * MIB);
    /* The strategy follows what the filesystem can do. */
    assert_int_equal(kind,
                     file_clone_reflink_supported(dir) ? FILE_CLONE_REFLINK : FILE_CLONE_SPARSE);
    assert_string_equal(file_clone_kind_name(FILE_CLONE_SPARSE), "sparse-copy");
    assert_string_equal(file_clone_kind_name(FILE_CLONE_REFLINK), "reflink");
    close(src);
    close(dst);
}

static void test_clone_errors(void **state)
{
    int src = sparse_source(), ro;
    enum file_clone_kind kind;
    char path[256];

    (void)state;
    snprintf(path, sizeof(path), "%s/ro", dir);
    close(make_file("ro", 0));
    ro = open(path, O_RDONLY);
    /* A destination that cannot be written: an error, never a silent partial copy. */
    assert_true(file_clone(src, ro, 0, false, &kind) < 0);
    assert_true(file_clone(-1, ro, 0, false, &kind) == -EBADF);
    close(ro);
    close(src);
}

static void test_zero_blocks_and_format(void **state)
{
    char buf[4096] = {0};
    int fd = make_file("fmt", 0);

    (void)state;
    assert_true(image_all_zero(buf, sizeof(buf)));
    assert_true(image_all_zero(buf, 0));
    buf[4095] = 1;
    assert_false(image_all_zero(buf, sizeof(buf)));
    assert_int_equal(image_detect_format(fd), API_IMAGE_RAW); /* empty */
    assert_int_equal(pwrite(fd, "QFI\xfb\0\0\0\3", 8, 0), 8);
    assert_int_equal(image_detect_format(fd), API_IMAGE_QCOW2);
    assert_int_equal(pwrite(fd, "QFI\xfa", 4, 0), 4);
    assert_int_equal(image_detect_format(fd), API_IMAGE_RAW);
    close(fd);
}

static void test_sha256(void **state)
{
    struct image_hash *h = image_hash_new();
    char out[65];

    (void)state;
    assert_non_null(h);
    /* FIPS 180-2's "abc", fed in two pieces. */
    image_hash_update(h, "a", 1);
    image_hash_update(h, "bc", 2);
    image_hash_finish(h, out);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    image_hash_free(image_hash_new()); /* abandoned midway: no leak */
}

/* image_qcow2_probe on the file at path, opened here (the daemon hands qemu-img its fd). */
static int probe(const char *path, uint64_t *size, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

    assert_true(fd >= 0);
    rc = image_qcow2_probe(fd, size, err, errlen);
    close(fd);
    return rc;
}

static void test_qcow2_probe(void **state)
{
    char raw[128], qcow[128], overlay[128], cmd[1024], err[300];
    uint64_t size = 0;
    int fd;

    (void)state;
    if (system("command -v qemu-img >/dev/null") != 0) {
        print_message("SKIPPED (part): qemu-img is not installed; the qcow2 probe is not tested\n");
        return;
    }
    snprintf(raw, sizeof(raw), "%s/p.raw", dir);
    snprintf(qcow, sizeof(qcow), "%s/p.qcow2", dir);
    snprintf(overlay, sizeof(overlay), "%s/o.qcow2", dir);
    snprintf(cmd, sizeof(cmd),
             "truncate -s 3M %s && qemu-img convert -q -f raw -O qcow2 %s %s && "
             "qemu-img create -q -f qcow2 -b %s -F qcow2 %s",
             raw, raw, qcow, qcow, overlay);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(probe(qcow, &size, err, sizeof(err)), 0);
    assert_int_equal(size, 3 * MIB);
    assert_int_equal(probe(overlay, &size, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "backing file"));
    assert_int_equal(probe(raw, &size, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not a readable qcow2"));
    fd = open(qcow, O_WRONLY);
    assert_int_equal(pwrite(fd, "\xff\xff\xff\xff", 4, 4), 4); /* the version field */
    close(fd);
    assert_int_equal(probe(qcow, &size, err, sizeof(err)), -EINVAL);
}

static void test_import_job_raw(void **state)
{
    struct image_job job = {0};
    int src = sparse_source(), dst;

    (void)state;
    close(src);
    snprintf(job.src, sizeof(job.src), "%s/src", dir);
    job.src_fd = open(job.src, O_RDONLY | O_CLOEXEC);
    snprintf(job.dst, sizeof(job.dst), "%s/imported", dir);
    job.format = API_IMAGE_RAW;
    job.hash_source = true;
    atomic_store(&job.total, 16 * MIB);
    image_job_run(&job);
    assert_int_equal(job.rc, 0);
    assert_int_equal(job.size_bytes, 16 * MIB);
    assert_int_equal(job.source_bytes, 16 * MIB);
    assert_int_equal(atomic_load(&job.done), 16 * MIB);
    assert_int_equal(strlen(job.sha256), 64);
    dst = open(job.dst, O_RDONLY);
    assert_true(dst >= 0);
    assert_true(file_allocated_bytes(dst) <= 512 * 1024); /* the zeros became holes */
    close(dst);
    /* A destination that exists already is never overwritten, nor removed. */
    job.src_fd = open(job.src, O_RDONLY | O_CLOEXEC);
    image_job_run(&job);
    assert_int_equal(job.rc, -EEXIST);
    assert_int_equal(access(job.dst, F_OK), 0);
    assert_int_equal(job.src_fd, -1); /* the job closed the source */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sparse_copy_keeps_holes),
        cmocka_unit_test(test_clone_grows_to_size),
        cmocka_unit_test(test_clone_errors),
        cmocka_unit_test(test_zero_blocks_and_format),
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_qcow2_probe),
        cmocka_unit_test(test_import_job_raw),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

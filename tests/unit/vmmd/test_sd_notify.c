/* sd_notify(3) to a real datagram socket, by path and by abstract name; the journal check. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "sd_notify.h"

/* Binds a datagram socket at name (a path, or "@abstract") and points $NOTIFY_SOCKET at it. */
static int listen_at(const char *name)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t len = strlen(name);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    memcpy(addr.sun_path, name, len);
    if (name[0] == '@')
        addr.sun_path[0] = 0;
    else
        unlink(name);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr,
                          (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
                                      (name[0] != '@'))),
                     0);
    setenv("NOTIFY_SOCKET", name, 1);
    return fd;
}

static void expect_datagram(int fd, const char *want)
{
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

    assert_true(n >= 0);
    buf[n] = 0;
    assert_string_equal(buf, want);
}

static void test_path_socket(void **state)
{
    char path[64];
    int fd;

    (void)state;
    snprintf(path, sizeof(path), "/tmp/vmmd-notify-%d", (int)getpid());
    fd = listen_at(path);
    assert_int_equal(vmmd_sd_notify("READY=1\nSTATUS=serving"), 1);
    expect_datagram(fd, "READY=1\nSTATUS=serving");
    close(fd);
    unlink(path);
}

static void test_abstract_socket(void **state)
{
    char name[64];
    int fd;

    (void)state;
    snprintf(name, sizeof(name), "@vmmd-notify-%d", (int)getpid());
    fd = listen_at(name);
    assert_int_equal(vmmd_sd_notify("STOPPING=1"), 1);
    expect_datagram(fd, "STOPPING=1");
    close(fd);
}

static void test_not_under_a_service_manager(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(vmmd_sd_notify("READY=1"), 0);
    setenv("NOTIFY_SOCKET", "relative/path", 1);
    assert_int_equal(vmmd_sd_notify("READY=1"), -EINVAL);
    setenv("NOTIFY_SOCKET", "/nonexistent/vmmd-notify", 1);
    assert_true(vmmd_sd_notify("READY=1") < 0);
    unsetenv("NOTIFY_SOCKET");
}

static void test_journal_stream(void **state)
{
    struct stat st;
    char v[64];

    (void)state;
    unsetenv("JOURNAL_STREAM");
    assert_false(vmmd_stderr_is_journal());
    assert_int_equal(fstat(STDERR_FILENO, &st), 0);
    snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", v, 1);
    assert_true(vmmd_stderr_is_journal());
    snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino + 1);
    setenv("JOURNAL_STREAM", v, 1); /* stderr was redirected since systemd connected it */
    assert_false(vmmd_stderr_is_journal());
    setenv("JOURNAL_STREAM", "garbage", 1);
    assert_false(vmmd_stderr_is_journal());
    unsetenv("JOURNAL_STREAM");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_socket),
        cmocka_unit_test(test_abstract_socket),
        cmocka_unit_test(test_not_under_a_service_manager),
        cmocka_unit_test(test_journal_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#include "command.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Appends what the pipe holds now to out, keeping the tail when it overflows. */
static void drain(int fd, char *out, size_t outlen, size_t *used)
{
    char buf[1024];
    ssize_t n;

    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (*used + 1 >= outlen) {
                memmove(out, out + outlen / 2, *used - outlen / 2);
                *used -= outlen / 2;
            }
            out[(*used)++] = buf[i];
        }
    }
    out[*used] = 0;
}

static void child(const char *const argv[], int in_fd, int out_fd)
{
    sigset_t all;

    /* The daemon's loop blocks or handles signals that a tool expects at their defaults. */
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL);
    if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
        _exit(127);
    execvp(argv[0], (char *const *)argv);
    dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

int vmmd_run_command(const char *const argv[], const char *input, char *out, size_t outlen,
                     int timeout_ms)
{
    int in[2], outp[2], status = 0, ret;
    long long deadline = now_ms() + timeout_ms;
    size_t used = 0;
    pid_t pid;

    out[0] = 0;
    if (pipe2(in, O_CLOEXEC) < 0)
        return -errno;
    if (pipe2(outp, O_CLOEXEC) < 0) {
        ret = -errno;
        goto err_in;
    }
    pid = fork();
    if (pid < 0) {
        ret = -errno;
        goto err_out;
    }
    if (pid == 0)
        child(argv, in[0], outp[1]);
    close(in[0]);
    close(outp[1]);
    /* The input is small (a ruleset): it fits the pipe, so writing first cannot deadlock. */
    if (input && write(in[1], input, strlen(input)) < 0) {
        /* It exited without reading: its status says why. */
    }
    close(in[1]);
    fcntl(outp[0], F_SETFL, O_NONBLOCK);
    for (;;) {
        struct pollfd p = {.fd = outp[0], .events = POLLIN};
        pid_t done = waitpid(pid, &status, WNOHANG);

        drain(outp[0], out, outlen, &used);
        if (done == pid)
            break;
        if (now_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            close(outp[0]);
            return -ETIMEDOUT;
        }
        poll(&p, 1, 10);
    }
    close(outp[0]);
    while (used && out[used - 1] == '\n')
        out[--used] = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);

err_out:
    close(outp[0]);
    close(outp[1]);
err_in:
    close(in[0]);
    close(in[1]);
    return ret;
}

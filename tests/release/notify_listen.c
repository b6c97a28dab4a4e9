/*
 * Stands in for systemd's end of sd_notify(3) in the install test: binds a
 * datagram socket at PATH, then prints each datagram it receives on a line
 * of its own until one contains "READY=1" (exit 0) or the timeout passes
 * (exit 1). Usage: notify_listen PATH TIMEOUT_S
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    time_t deadline;
    int fd;

    if (argc != 3 || strlen(argv[1]) >= sizeof(addr.sun_path)) {
        fprintf(stderr, "usage: notify_listen PATH TIMEOUT_S\n");
        return 2;
    }
    strcpy(addr.sun_path, argv[1]);
    unlink(argv[1]);
    fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        perror("notify_listen");
        return 2;
    }
    deadline = time(NULL) + atoi(argv[2]);
    while (time(NULL) < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        char buf[1024];
        ssize_t n;

        if (poll(&p, 1, 200) <= 0)
            continue;
        n = recv(fd, buf, sizeof(buf) - 1, 0);
        if (n < 0)
            continue;
        buf[n] = 0;
        printf("%s\n", buf);
        fflush(stdout);
        if (strstr(buf, "READY=1"))
            return 0;
    }
    return 1;
}

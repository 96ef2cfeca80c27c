// What the shim's close and syscall hooks cost an app that never touches a
// listener, and what a listener's whole life (bind to port 0, listen, close)
// costs under the shim. Prints one line per figure: `NAME NS_PER_OP`.
//
// Usage: calls N
#define _GNU_SOURCE
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 100000;
    double start = now_ns();
    for (long i = 0; i < n; i++) {
        close(dup(0));
    }
    printf("dup_close %.1f\n", (now_ns() - start) / n);
    start = now_ns();
    for (long i = 0; i < n; i++) {
        syscall(SYS_getppid);
    }
    printf("syscall %.1f\n", (now_ns() - start) / n);
    long cycles = n / 100 > 0 ? n / 100 : 1;
    start = now_ns();
    for (long i = 0; i < cycles; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) || listen(fd, 8)) {
            perror("listener");
            return 1;
        }
        close(fd);
    }
    printf("listener_life %.1f\n", (now_ns() - start) / cycles);
    return 0;
}

/* The connect benchmark's client: COUNT small HTTP calls in a row, each
 * connect, request, answer to EOF, close, timed with CLOCK_MONOTONIC.
 *
 * Usage: client HOST PORT COUNT     HOST numeric (127.0.0.1, ::1)
 * Prints one line: calls N call_p50_us X call_p99_us Y connect_p50_us Z
 * connect_p99_us W. The first WARMUP calls are made but not counted. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WARMUP 200

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(double *values, int n, double p) {
    qsort(values, n, sizeof *values, by_value);
    return values[(int)(p * (n - 1))];
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: client HOST PORT COUNT\n");
        return 2;
    }
    int count = atoi(argv[3]);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST}, *ai;
    if (count <= 0 || getaddrinfo(argv[1], argv[2], &hints, &ai) != 0) {
        fprintf(stderr, "client: bad HOST, PORT or COUNT\n");
        return 2;
    }
    double *calls = malloc(sizeof(double) * count), *connects = malloc(sizeof(double) * count);
    const char request[] = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    char answer[4096];
    for (int i = -WARMUP; i < count; i++) {
        double start = now_us();
        int fd = socket(ai->ai_family, SOCK_STREAM, 0);
        double before = now_us();
        if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            perror("client: connect");
            return 1;
        }
        double connected = now_us();
        if (write(fd, request, sizeof request - 1) != (ssize_t)(sizeof request - 1)) {
            perror("client: write");
            return 1;
        }
        ssize_t n, got = 0;
        while ((n = read(fd, answer, sizeof answer)) > 0) got += n;
        close(fd);
        if (got == 0) {
            fprintf(stderr, "client: empty answer\n");
            return 1;
        }
        if (i >= 0) {
            calls[i] = now_us() - start;
            connects[i] = connected - before;
        }
    }
    double call_p50 = percentile(calls, count, 0.5), call_p99 = percentile(calls, count, 0.99);
    double connect_p50 = percentile(connects, count, 0.5), connect_p99 = percentile(connects, count, 0.99);
    printf("calls %d call_p50_us %.2f call_p99_us %.2f connect_p50_us %.2f connect_p99_us %.2f\n", count,
           call_p50, call_p99, connect_p50, connect_p99);
    return 0;
}

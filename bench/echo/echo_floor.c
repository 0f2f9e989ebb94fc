/*
 * echo_floor: a hand-written liburing TCP echo server in C, the floor that coring's echo servers
 * are measured against (bench/echo/compare.sh).
 *
 * It does what a tuned io_uring server does and nothing else: the ring is set up with
 * SINGLE_ISSUER | DEFER_TASKRUN (what coring's loop asks for), one multishot accept, per
 * connection one multishot recv into a provided-buffer ring (256 buffers of 4 KiB, as
 * examples/echo_server), each chunk sent back from the buffer the kernel filled, the buffer
 * recycled when the send completes; one io_uring_submit_and_wait per loop iteration.
 *
 *   echo_floor [--port P]     prints "listening on 127.0.0.1:P"; SIGINT/SIGTERM stop it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

enum { BUFFER_COUNT = 256, BUFFER_SIZE = 4096, GROUP = 0 };
enum { OP_ACCEPT = 1, OP_RECV = 2, OP_SEND = 3 };

static struct io_uring ring;
static struct io_uring_buf_ring* buffers_ring;
static char* buffers;
static volatile sig_atomic_t stopping;

/* A send in flight, per buffer: where it goes and how much of the buffer is still to send. */
static struct {
    int fd;
    unsigned offset;
    unsigned length;
} sends[BUFFER_COUNT];

static uint64_t tag(int op, int fd, unsigned bid) { return ((uint64_t)op << 56) | ((uint64_t)bid << 32) | (uint32_t)fd; }

static struct io_uring_sqe* sqe_or_die(void) {
    struct io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    if (!sqe) {
        io_uring_submit(&ring);
        sqe = io_uring_get_sqe(&ring);
    }
    if (!sqe) {
        fprintf(stderr, "echo_floor: no SQE\n");
        exit(1);
    }
    return sqe;
}

static void arm_accept(int listener) {
    struct io_uring_sqe* sqe = sqe_or_die();
    io_uring_prep_multishot_accept(sqe, listener, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, tag(OP_ACCEPT, listener, 0));
}

static void arm_recv(int fd) {
    struct io_uring_sqe* sqe = sqe_or_die();
    io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = GROUP;
    io_uring_sqe_set_data64(sqe, tag(OP_RECV, fd, 0));
}

static void send_buffer(unsigned bid) {
    struct io_uring_sqe* sqe = sqe_or_die();
    io_uring_prep_send(sqe, sends[bid].fd, buffers + (size_t)bid * BUFFER_SIZE + sends[bid].offset, sends[bid].length, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, tag(OP_SEND, sends[bid].fd, bid));
}

static void recycle(unsigned bid) {
    io_uring_buf_ring_add(buffers_ring, buffers + (size_t)bid * BUFFER_SIZE, BUFFER_SIZE, (unsigned short)bid, BUFFER_COUNT - 1, 0);
    io_uring_buf_ring_advance(buffers_ring, 1);
}

static void on_signal(int sig) {
    (void)sig;
    stopping = 1;
}

int main(int argc, char** argv) {
    int port = 8888;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: echo_floor [--port P]\n");
            return 2;
        }
    }

    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    if (io_uring_queue_init_params(256, &ring, &params) < 0) {
        memset(&params, 0, sizeof params);
        if (io_uring_queue_init_params(256, &ring, &params) < 0) {
            perror("io_uring_queue_init");
            return 1;
        }
    }

    buffers_ring = mmap(NULL, BUFFER_COUNT * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    buffers = mmap(NULL, (size_t)BUFFER_COUNT * BUFFER_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buffers_ring == MAP_FAILED || buffers == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (unsigned long)buffers_ring;
    reg.ring_entries = BUFFER_COUNT;
    reg.bgid = GROUP;
    int r = io_uring_register_buf_ring(&ring, &reg, 0);
    if (r < 0) {
        fprintf(stderr, "io_uring_register_buf_ring: %s\n", strerror(-r));
        return 1;
    }
    io_uring_buf_ring_init(buffers_ring);
    for (unsigned bid = 0; bid < BUFFER_COUNT; ++bid)
        io_uring_buf_ring_add(buffers_ring, buffers + (size_t)bid * BUFFER_SIZE, BUFFER_SIZE, (unsigned short)bid, BUFFER_COUNT - 1, (int)bid);
    io_uring_buf_ring_advance(buffers_ring, BUFFER_COUNT);

    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr*)&addr, sizeof addr) < 0 || listen(listener, SOMAXCONN) < 0) {
        perror("bind/listen");
        return 1;
    }
    socklen_t length = sizeof addr;
    getsockname(listener, (struct sockaddr*)&addr, &length);
    printf("listening on 127.0.0.1:%u\n", ntohs(addr.sin_port));
    fflush(stdout);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: the wait returns EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    arm_accept(listener);
    while (!stopping) {
        r = io_uring_submit_and_wait(&ring, 1);
        if (r < 0 && r != -EINTR && r != -ETIME && r != -EAGAIN && r != -EBUSY) {
            fprintf(stderr, "io_uring_submit_and_wait: %s\n", strerror(-r));
            return 1;
        }
        struct io_uring_cqe* cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            ++seen;
            const uint64_t data = cqe->user_data;
            const int op = (int)(data >> 56);
            const unsigned bid_tag = (unsigned)((data >> 32) & 0xffff);
            const int fd = (int)(uint32_t)data;
            const int res = cqe->res;
            const int more = (cqe->flags & IORING_CQE_F_MORE) != 0;
            if (op == OP_ACCEPT) {
                if (res >= 0) {
                    setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    arm_recv(res);
                }
                if (!more) arm_accept(listener);
            } else if (op == OP_RECV) {
                if (res > 0) {
                    const unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
                    sends[bid].fd = fd;
                    sends[bid].offset = 0;
                    sends[bid].length = (unsigned)res;
                    send_buffer(bid);
                    if (!more) arm_recv(fd);
                } else if (res == -ENOBUFS) {
                    if (!more) arm_recv(fd);
                } else if (!more) {
                    close(fd); /* end of stream or an error */
                }
            } else if (op == OP_SEND) {
                const unsigned bid = bid_tag;
                if (res > 0 && (unsigned)res < sends[bid].length) {
                    sends[bid].offset += (unsigned)res;
                    sends[bid].length -= (unsigned)res;
                    send_buffer(bid);
                } else {
                    recycle(bid);
                }
            }
        }
        io_uring_cq_advance(&ring, seen);
    }
    io_uring_queue_exit(&ring);
    printf("echo_floor: stopped\n");
    return 0;
}

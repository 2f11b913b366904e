/*
 * A WebSocket server in C on top of roost.h alone.
 *
 *   echo_server PORT [HOST]
 *
 * /ws    answers each text message with "Echo: <message>" (binary is echoed as is)
 * /chat  broadcasts each message to every /chat client, the sender included
 *
 * One thread: poll(2) on the server's ready descriptor, drain events, repeat.
 * SIGINT or SIGTERM stops the server gracefully (every client gets close 1001).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "roost.h"

#define BATCH 256
#define ECHO_PREFIX "Echo: "

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int signo) {
    (void)signo;
    stop_requested = 1;
}

static int fail(const char *what, roost_status status) {
    fprintf(stderr, "echo_server: %s failed (status %d): %s\n", what, (int)status,
            roost_last_error());
    return 1;
}

/* Reusable buffer for "Echo: " + message. */
static unsigned char *reply_buf = NULL;
static size_t reply_cap = 0;

static const unsigned char *echo_reply(const roost_event *ev, size_t *len) {
    size_t need = sizeof(ECHO_PREFIX) - 1 + ev->data_len;
    if (need > reply_cap) {
        unsigned char *grown = realloc(reply_buf, need);
        if (grown == NULL) return NULL;
        reply_buf = grown;
        reply_cap = need;
    }
    memcpy(reply_buf, ECHO_PREFIX, sizeof(ECHO_PREFIX) - 1);
    if (ev->data_len > 0) memcpy(reply_buf + sizeof(ECHO_PREFIX) - 1, ev->data, ev->data_len);
    *len = need;
    return reply_buf;
}

static void handle(roost_server *server, const roost_event *ev, uint32_t ws_route,
                   uint32_t chat_route) {
    roost_status status = ROOST_OK;
    size_t len = 0;
    const unsigned char *reply;
    switch (ev->kind) {
    case ROOST_EVENT_TEXT:
        if (ev->route == chat_route) {
            status = roost_server_broadcast_text(server, chat_route, ev->data, ev->data_len, NULL);
        } else if (ev->route == ws_route) {
            reply = echo_reply(ev, &len);
            if (reply == NULL) return;
            status = roost_connection_send_text(server, ev->connection, reply, len);
        }
        break;
    case ROOST_EVENT_BINARY:
        if (ev->route == chat_route) {
            status = roost_server_broadcast_binary(server, chat_route, ev->data, ev->data_len, NULL);
        } else {
            status = roost_connection_send_binary(server, ev->connection, ev->data, ev->data_len);
        }
        break;
    default:
        /* CONNECT, DISCONNECT and WRITABLE need nothing here. */
        break;
    }
    /* WOULD_BLOCK drops the echo for a client that does not read its replies; CLOSED
     * and NOT_FOUND mean the client left meanwhile. Neither concerns the others. */
    (void)status;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [HOST]\n", argv[0]);
        return 2;
    }
    char *end = NULL;
    long port = strtol(argv[1], &end, 10);
    if (*argv[1] == '\0' || *end != '\0' || port < 0 || port > 65535) {
        fprintf(stderr, "echo_server: invalid port '%s'\n", argv[1]);
        return 2;
    }
    const char *host = argc > 2 ? argv[2] : "127.0.0.1";

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    roost_server *server = NULL;
    roost_status status = roost_server_new(NULL, &server);
    if (status != ROOST_OK) return fail("roost_server_new", status);

    uint32_t ws_route = 0, chat_route = 0;
    if ((status = roost_server_add_route(server, (const uint8_t *)"/ws", 3, &ws_route)) != ROOST_OK ||
        (status = roost_server_add_route(server, (const uint8_t *)"/chat", 5, &chat_route)) != ROOST_OK) {
        int rc = fail("roost_server_add_route", status);
        roost_server_free(server);
        return rc;
    }
    uint16_t bound = 0;
    status = roost_server_start(server, (const uint8_t *)host, strlen(host), (uint16_t)port, &bound);
    if (status != ROOST_OK) {
        int rc = fail("roost_server_start", status);
        roost_server_free(server);
        return rc;
    }
    int fd = -1;
    roost_server_ready_fd(server, &fd);
    printf("echo_server listening on ws://%s:%u (/ws echo, /chat broadcast)\n", host, bound);
    fflush(stdout);

    static roost_event events[BATCH];
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    while (!stop_requested) {
        size_t n = 0;
        status = roost_server_poll(server, events, BATCH, &n);
        if (status != ROOST_OK) {
            fail("roost_server_poll", status);
            break;
        }
        for (size_t i = 0; i < n; i++) handle(server, &events[i], ws_route, chat_route);
        if (n > 0) continue;
        /* The empty poll re-armed the descriptor: sleep until it says "poll me". */
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR) {
            perror("poll");
            break;
        }
    }

    printf("echo_server stopping\n");
    roost_server_stop(server, 2000);
    roost_server_free(server);
    free(reply_buf);
    return 0;
}

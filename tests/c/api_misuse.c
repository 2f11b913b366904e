/*
 * Every documented way to call roost.h wrongly, and the status each must give: NULL
 * handles and out-parameters, NULL data with a length, freed and forged handles,
 * unknown and retired connection ids, sends to a closing connection, bad UTF-8, bad
 * close codes and reasons, wrong lifecycle order, a port in use, and calls after stop,
 * for the topic calls and stats too.
 * Under AddressSanitizer, so "no crash" includes "no invalid memory access".
 *
 * Each error status must also leave a message in roost_last_error().
 */
#define _POSIX_C_SOURCE 200809L

#include "roost.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "ws_client.h"

#define PROGRAM "api_misuse"
#define EVENT_TIMEOUT_MS 5000
#define SOCKET_TIMEOUT_MS 5000

#define BYTES(s) ((const uint8_t *)(s))

static const uint8_t bad_utf8[] = {'o', 'k', 0xc3, 0x28, 0xff}; /* truncated sequence, 0xff */
static const uint8_t overlong_nul[] = {0xc0, 0x80};                /* overlong encoding */
static const uint8_t surrogate[] = {0xed, 0xa0, 0x80};             /* UTF-16 surrogate half */

/* A started server with routes /ws (0) and /chat (1) on 127.0.0.1, port 0. */
static roost_server *started_server(uint16_t *port, int *ready_fd, const char *label) {
    roost_options options;
    roost_options_init(&options, sizeof(roost_options));
    options.ping_interval_ms = 0;
    options.close_timeout_ms = 1000;
    roost_server *server = NULL;
    if (!check_status(roost_server_new(&options, &server), ROOST_OK, "%s: roost_server_new", label)) return NULL;
    uint32_t route = 0;
    int ok = check_status(roost_server_add_route(server, BYTES("/ws"), 3, &route), ROOST_OK,
                          "%s: add_route(\"/ws\")", label);
    ok = ok && check_status(roost_server_add_route(server, BYTES("/chat"), 5, &route), ROOST_OK,
                            "%s: add_route(\"/chat\")", label);
    ok = ok && check_status(roost_server_start(server, BYTES("127.0.0.1"), 9, 0, port), ROOST_OK,
                            "%s: start(127.0.0.1, 0)", label);
    ok = ok && check_status(roost_server_ready_fd(server, ready_fd), ROOST_OK, "%s: ready_fd", label);
    if (!ok) {
        roost_server_free(server);
        return NULL;
    }
    return server;
}

/* Connects a client on `target` and waits for its CONNECT. Returns the socket (or -1)
 * and writes the connection id. */
static int connect_client(event_pump *pump, uint16_t port, const char *target, uint64_t *conn, const char *label) {
    return pump_connect(pump, port, target, 0, EVENT_TIMEOUT_MS, conn, label);
}

static void ignore_topic(void *context, const uint8_t *topic, size_t topic_len) {
    (void)context;
    (void)topic;
    (void)topic_len;
}

/* Calls every topic function and roost_server_stats on `server` with arguments that are
 * otherwise valid; each must give `want`. */
static void topic_calls(roost_server *server, roost_status want, const char *label) {
    bool flag = false;
    size_t n = 0;
    roost_stats stats;
    check_status(roost_connection_subscribe(server, 1, BYTES("t"), 1, &flag), want, "subscribe(%s)", label);
    check_status(roost_connection_unsubscribe(server, 1, BYTES("t"), 1, &flag), want, "unsubscribe(%s)", label);
    check_status(roost_connection_topics(server, 1, ignore_topic, NULL, &n), want, "topics(%s)", label);
    check_status(roost_server_publish_text(server, BYTES("t"), 1, BYTES("x"), 1, ROOST_NO_CONNECTION, &n), want,
                 "publish_text(%s)", label);
    check_status(roost_server_publish_binary(server, BYTES("t"), 1, BYTES("x"), 1, ROOST_NO_CONNECTION, &n), want,
                 "publish_binary(%s)", label);
    check_status(roost_server_subscriber_count(server, BYTES("t"), 1, &n), want, "subscriber_count(%s)", label);
    check_status(ROOST_SERVER_STATS(server, &stats), want, "stats(%s)", label);
}

/* roost_last_error is per thread: a thread that never failed sees "". */
static void *fresh_thread_error(void *arg) {
    const char *message = roost_last_error();
    *(int *)arg = message != NULL && message[0] == '\0';
    return NULL;
}

static void null_arguments(void) {
    printf("# NULL handles, NULL out-parameters, NULL data with a length\n");
    roost_server *null_server = NULL;
    uint32_t route = 0;
    uint16_t port = 0;
    int fd = 0;
    size_t count = 0;
    roost_event events[4];

    check_status(roost_options_init(NULL, sizeof(roost_options)), ROOST_INVALID_ARGUMENT, "roost_options_init(NULL, sizeof(roost_options))");
    check_status(roost_server_new(NULL, NULL), ROOST_INVALID_ARGUMENT, "roost_server_new(NULL, NULL)");

    check_status(roost_server_add_route(null_server, BYTES("/ws"), 3, &route), ROOST_INVALID_ARGUMENT,
                 "add_route(NULL server)");
    check_status(roost_server_start(null_server, BYTES("127.0.0.1"), 9, 0, &port), ROOST_INVALID_ARGUMENT,
                 "start(NULL server)");
    check_status(roost_server_ready_fd(null_server, &fd), ROOST_INVALID_ARGUMENT, "ready_fd(NULL server)");
    check_status(roost_server_poll(null_server, events, 4, sizeof(roost_event), &count), ROOST_INVALID_ARGUMENT, "poll(NULL server)");
    check_status(roost_connection_send_text(null_server, 1, BYTES("x"), 1), ROOST_INVALID_ARGUMENT,
                 "send_text(NULL server)");
    check_status(roost_connection_send_binary(null_server, 1, BYTES("x"), 1), ROOST_INVALID_ARGUMENT,
                 "send_binary(NULL server)");
    check_status(roost_server_broadcast_text(null_server, 0, BYTES("x"), 1, &count), ROOST_INVALID_ARGUMENT,
                 "broadcast_text(NULL server)");
    check_status(roost_server_broadcast_binary(null_server, 0, BYTES("x"), 1, &count), ROOST_INVALID_ARGUMENT,
                 "broadcast_binary(NULL server)");
    check_status(roost_connection_close(null_server, 1, 1000, NULL, 0), ROOST_INVALID_ARGUMENT,
                 "close(NULL server)");
    check_status(roost_connection_pause_reading(null_server, 1, true), ROOST_INVALID_ARGUMENT,
                 "pause_reading(NULL server)");
    check_status(roost_server_stop(null_server, 0), ROOST_INVALID_ARGUMENT, "stop(NULL server)");
    check_status(roost_server_connection_count(null_server, &count), ROOST_INVALID_ARGUMENT,
                 "connection_count(NULL server)");
    check_status(roost_server_route_subprotocols(null_server, 0, BYTES("chat"), 4, false), ROOST_INVALID_ARGUMENT,
                 "route_subprotocols(NULL server)");
    topic_calls(null_server, ROOST_INVALID_ARGUMENT, "NULL server");
    check_status(roost_server_free(NULL), ROOST_OK, "roost_server_free(NULL) does nothing");

    /* A forged handle is recognised as unknown, not dereferenced. */
    roost_server *forged = (roost_server *)(uintptr_t)0xdead0;
    check_status(roost_server_connection_count(forged, &count), ROOST_INVALID_ARGUMENT,
                 "connection_count(forged handle)");
    topic_calls(forged, ROOST_INVALID_ARGUMENT, "forged handle");
    check_status(roost_server_free(forged), ROOST_INVALID_ARGUMENT, "roost_server_free(forged handle)");

    int fresh = 0;
    pthread_t thread;
    if (pthread_create(&thread, NULL, fresh_thread_error, &fresh) == 0) pthread_join(thread, NULL);
    check(fresh, "roost_last_error() is per thread: empty on a thread that never failed");

    /* NULL out-parameters on a live server; nothing may happen then. */
    roost_server *server = NULL;
    if (!check_status(roost_server_new(NULL, &server), ROOST_OK, "roost_server_new(NULL options)")) return;
    check_status(roost_server_add_route(server, BYTES("/ws"), 3, NULL), ROOST_INVALID_ARGUMENT,
                 "add_route(out_route NULL)");
    route = 77;
    check_status(roost_server_add_route(server, NULL, 3, &route), ROOST_INVALID_ARGUMENT,
                 "add_route(path NULL, length 3)");
    check(route == 77, "a failed call leaves its out-parameter alone (route %u)", route);
    check_status(roost_server_add_route(server, NULL, 0, &route), ROOST_INVALID_ARGUMENT,
                 "add_route(path NULL, length 0): empty path");
    check_status(roost_server_add_route(server, BYTES("ws"), 2, &route), ROOST_INVALID_ARGUMENT,
                 "add_route(\"ws\"): no leading '/'");
    check_status(roost_server_add_route(server, BYTES("/a?b=1"), 6, &route), ROOST_INVALID_ARGUMENT,
                 "add_route(\"/a?b=1\"): query string");
    check_status(roost_server_add_route(server, bad_utf8, sizeof bad_utf8, &route), ROOST_INVALID_ARGUMENT,
                 "add_route(invalid UTF-8)");
    check_status(roost_server_start(server, BYTES("127.0.0.1"), 9, 0, &port), ROOST_INVALID_STATE,
                 "start with no route");
    check_status(roost_server_add_route(server, BYTES("/ws"), 3, &route), ROOST_OK, "add_route(\"/ws\")");
    check(route == 0, "the NULL-out call added nothing: \"/ws\" is route 0 (got %u)", route);
    check_status(roost_server_add_route(server, BYTES("/ws"), 3, &route), ROOST_INVALID_ARGUMENT,
                 "add_route(\"/ws\") twice: duplicate");
    check_status(roost_server_route_subprotocols(server, route, NULL, 4, false), ROOST_INVALID_ARGUMENT,
                 "route_subprotocols(list NULL, length 4)");
    check_status(roost_server_route_subprotocols(server, route, NULL, 0, false), ROOST_INVALID_ARGUMENT,
                 "route_subprotocols(empty list)");
    check_status(roost_server_route_subprotocols(server, route, BYTES("a b"), 3, false), ROOST_INVALID_ARGUMENT,
                 "route_subprotocols(\"a b\"): not a token");
    check_status(roost_server_route_subprotocols(server, route + 1, BYTES("chat"), 4, false), ROOST_NOT_FOUND,
                 "route_subprotocols(route never added)");
    check_status(roost_server_route_subprotocols(server, route, BYTES("v2, v1"), 6, true), ROOST_OK,
                 "route_subprotocols(\"v2, v1\", required)");
    port = 4242;
    check_status(roost_server_start(server, BYTES("127.0.0.1"), 9, 0, NULL), ROOST_INVALID_ARGUMENT,
                 "start(out_port NULL)");
    check_status(roost_server_start(server, NULL, 9, 0, &port), ROOST_INVALID_ARGUMENT, "start(host NULL, length 9)");
    check(port == 4242, "failed starts leave out_port alone");
    check_status(roost_server_ready_fd(server, NULL), ROOST_INVALID_ARGUMENT, "ready_fd(out_fd NULL)");
    check_status(roost_server_poll(server, events, 4, sizeof(roost_event), NULL), ROOST_INVALID_ARGUMENT, "poll(out_count NULL)");
    check_status(roost_server_poll(server, NULL, 4, sizeof(roost_event), &count), ROOST_INVALID_ARGUMENT, "poll(events NULL)");
    check_status(roost_server_poll(server, events, 0, sizeof(roost_event), &count), ROOST_INVALID_ARGUMENT, "poll(capacity 0)");
    check_status(roost_server_connection_count(server, NULL), ROOST_INVALID_ARGUMENT,
                 "connection_count(out_count NULL)");
    check_status(roost_server_subscriber_count(server, BYTES("t"), 1, NULL), ROOST_INVALID_ARGUMENT,
                 "subscriber_count(out_count NULL)");
    check_status(roost_server_stats(server, NULL, sizeof(roost_stats)), ROOST_INVALID_ARGUMENT, "stats(out NULL)");
    check_status(roost_connection_topics(server, 1, NULL, NULL, NULL), ROOST_INVALID_ARGUMENT, "topics(visit NULL)");
    check_status(roost_connection_subscribe(server, 1, NULL, 1, NULL), ROOST_INVALID_ARGUMENT,
                 "subscribe(topic NULL, length 1)");
    check_status(roost_server_publish_text(server, BYTES("t"), 1, NULL, 5, ROOST_NO_CONNECTION, NULL),
                 ROOST_INVALID_ARGUMENT, "publish_text(data NULL, length 5)");
    check_status(roost_connection_send_text(server, 1, NULL, 5), ROOST_INVALID_ARGUMENT,
                 "send_text(data NULL, length 5)");
    check_status(roost_connection_send_binary(server, 1, NULL, 5), ROOST_INVALID_ARGUMENT,
                 "send_binary(data NULL, length 5)");
    check_status(roost_server_broadcast_text(server, 0, NULL, 5, &count), ROOST_INVALID_ARGUMENT,
                 "broadcast_text(data NULL, length 5)");
    check_status(roost_server_broadcast_binary(server, 0, NULL, 5, &count), ROOST_INVALID_ARGUMENT,
                 "broadcast_binary(data NULL, length 5)");
    check_status(roost_connection_close(server, 1, 1000, NULL, 5), ROOST_INVALID_ARGUMENT,
                 "close(reason NULL, length 5)");
    /* Before start there are no connections. */
    check_status(roost_connection_send_text(server, 1, BYTES("x"), 1), ROOST_NOT_FOUND,
                 "send_text before start: no such connection");
    check_status(roost_connection_subscribe(server, 1, BYTES("t"), 1, NULL), ROOST_NOT_FOUND,
                 "subscribe before start: no such connection");
    size_t recipients = 99;
    check_status(roost_server_publish_text(server, BYTES("t"), 1, BYTES("x"), 1, ROOST_NO_CONNECTION, &recipients),
                 ROOST_OK, "publish_text before start");
    check(recipients == 0, "it reached nobody (got %zu)", recipients);
    check_status(roost_server_stop(server, 0), ROOST_OK, "stop of a server never started");
    check_status(roost_server_free(server), ROOST_OK, "roost_server_free");

    /* Options out of range are refused by name. */
    roost_options options;
    roost_options_init(&options, sizeof(roost_options));
    options.worker_threads = 0;
    server = NULL;
    roost_status st = roost_server_new(&options, &server);
    check_status(st, ROOST_INVALID_ARGUMENT, "roost_server_new(worker_threads 0)");
    check(strstr(roost_last_error(), "worker_threads") != NULL, "the message names worker_threads");
    check(server == NULL, "no handle is written on failure");
    if (st == ROOST_OK) roost_server_free(server);

    /* An allowed origin with a path is not an origin. */
    roost_options_init(&options, sizeof(roost_options));
    options.allowed_origins = BYTES("https://example.com/app");
    options.allowed_origins_len = strlen("https://example.com/app");
    st = roost_server_new(&options, &server);
    check_status(st, ROOST_INVALID_ARGUMENT, "roost_server_new(allowed_origins with a path)");
    check(strstr(roost_last_error(), "https://example.com/app") != NULL, "the message names the entry");
    if (st == ROOST_OK) roost_server_free(server);
}

static void freed_handle(void) {
    printf("# a freed handle\n");
    uint16_t port = 0;
    int fd = -1;
    roost_server *server = started_server(&port, &fd, "freed");
    if (server == NULL) return;
    /* Freed while running, with a client connected: free stops it first. */
    int client = ws_connect(port, SOCKET_TIMEOUT_MS);
    char response[WS_RESPONSE_MAX];
    check(client >= 0 && ws_handshake(client, "/ws", NULL, response, sizeof response) == 101,
          "freed: a client is connected");
    check_status(roost_server_free(server), ROOST_OK, "roost_server_free of a running server");
    check_status(roost_server_free(server), ROOST_INVALID_ARGUMENT, "roost_server_free twice");
    if (client >= 0) close(client);

    uint32_t route = 0;
    size_t count = 0;
    roost_event events[4];
    check_status(roost_server_add_route(server, BYTES("/x"), 2, &route), ROOST_INVALID_ARGUMENT,
                 "add_route on a freed handle");
    check_status(roost_server_start(server, BYTES("127.0.0.1"), 9, 0, &port), ROOST_INVALID_ARGUMENT,
                 "start on a freed handle");
    check_status(roost_server_ready_fd(server, &fd), ROOST_INVALID_ARGUMENT, "ready_fd on a freed handle");
    check_status(roost_server_poll(server, events, 4, sizeof(roost_event), &count), ROOST_INVALID_ARGUMENT, "poll on a freed handle");
    check_status(roost_connection_send_text(server, 1, BYTES("x"), 1), ROOST_INVALID_ARGUMENT,
                 "send_text on a freed handle");
    check_status(roost_connection_send_binary(server, 1, BYTES("x"), 1), ROOST_INVALID_ARGUMENT,
                 "send_binary on a freed handle");
    check_status(roost_server_broadcast_text(server, 0, BYTES("x"), 1, &count), ROOST_INVALID_ARGUMENT,
                 "broadcast_text on a freed handle");
    check_status(roost_server_broadcast_binary(server, 0, BYTES("x"), 1, &count), ROOST_INVALID_ARGUMENT,
                 "broadcast_binary on a freed handle");
    check_status(roost_connection_close(server, 1, 1000, NULL, 0), ROOST_INVALID_ARGUMENT,
                 "close on a freed handle");
    check_status(roost_connection_pause_reading(server, 1, true), ROOST_INVALID_ARGUMENT,
                 "pause_reading on a freed handle");
    check_status(roost_server_stop(server, 0), ROOST_INVALID_ARGUMENT, "stop on a freed handle");
    check_status(roost_server_connection_count(server, &count), ROOST_INVALID_ARGUMENT,
                 "connection_count on a freed handle");
    check_status(roost_server_route_subprotocols(server, 0, BYTES("chat"), 4, false), ROOST_INVALID_ARGUMENT,
                 "route_subprotocols on a freed handle");
    topic_calls(server, ROOST_INVALID_ARGUMENT, "freed handle");
    check_status(roost_server_free(server), ROOST_INVALID_ARGUMENT, "roost_server_free a third time");

    /* A new server never gets the old handle back. */
    roost_server *other = NULL;
    if (check_status(roost_server_new(NULL, &other), ROOST_OK, "roost_server_new after a free")) {
        check(other != server, "the new handle differs from the freed one");
        check_status(roost_server_connection_count(server, &count), ROOST_INVALID_ARGUMENT,
                     "the freed handle stays dead");
        check_status(roost_server_free(other), ROOST_OK, "roost_server_free(new)");
    }
}

static void lifecycle(void) {
    printf("# lifecycle: start twice, routes after start, a port in use\n");
    uint16_t port = 0;
    int fd = -1;
    roost_server *server = started_server(&port, &fd, "lifecycle");
    if (server == NULL) return;
    uint16_t port2 = 0;
    uint32_t route = 0;
    check_status(roost_server_start(server, BYTES("127.0.0.1"), 9, 0, &port2), ROOST_INVALID_STATE, "start twice");
    check_status(roost_server_add_route(server, BYTES("/late"), 5, &route), ROOST_INVALID_STATE,
                 "add_route after start");
    check_status(roost_server_route_subprotocols(server, 0, BYTES("chat"), 4, false), ROOST_INVALID_STATE,
                 "route_subprotocols after start");

    roost_server *second = NULL;
    if (check_status(roost_server_new(NULL, &second), ROOST_OK, "roost_server_new (second)")) {
        check_status(roost_server_add_route(second, BYTES("/ws"), 3, &route), ROOST_OK, "second: add_route");
        port2 = 1;
        check_status(roost_server_start(second, BYTES("127.0.0.1"), 9, port, &port2), ROOST_IO,
                     "second: start on the port in use (%u)", port);
        check(port2 == 1, "second: out_port untouched by the failed start");
        check_status(roost_server_free(second), ROOST_OK, "second: roost_server_free");
    }
    check_status(roost_server_free(server), ROOST_OK, "lifecycle: roost_server_free");
}

static void connections(void) {
    printf("# connection ids, UTF-8, close codes, closing and closed connections\n");
    uint16_t port = 0;
    int ready_fd = -1;
    roost_server *server = started_server(&port, &ready_fd, "conn");
    if (server == NULL) return;
    event_pump pump;
    pump_init(&pump, server, ready_fd, 8);
    size_t recipients = 0;

    /* Unknown ids and routes. */
    const uint64_t unknown[] = {0, 12345, UINT64_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        unsigned long long id = (unsigned long long)unknown[i];
        check_status(roost_connection_send_text(server, unknown[i], BYTES("x"), 1), ROOST_NOT_FOUND,
                     "send_text to unknown id %llu", id);
        check_status(roost_connection_send_binary(server, unknown[i], BYTES("x"), 1), ROOST_NOT_FOUND,
                     "send_binary to unknown id %llu", id);
        check_status(roost_connection_close(server, unknown[i], 1000, NULL, 0), ROOST_NOT_FOUND,
                     "close unknown id %llu", id);
        check_status(roost_connection_pause_reading(server, unknown[i], true), ROOST_NOT_FOUND,
                     "pause_reading unknown id %llu", id);
        check_status(roost_connection_subscribe(server, unknown[i], BYTES("t"), 1, NULL), ROOST_NOT_FOUND,
                     "subscribe unknown id %llu", id);
        check_status(roost_connection_unsubscribe(server, unknown[i], BYTES("t"), 1, NULL), ROOST_NOT_FOUND,
                     "unsubscribe unknown id %llu", id);
        check_status(roost_connection_topics(server, unknown[i], ignore_topic, NULL, NULL), ROOST_NOT_FOUND,
                     "topics of unknown id %llu", id);
    }
    check_status(roost_server_broadcast_text(server, 2, BYTES("x"), 1, &recipients), ROOST_NOT_FOUND,
                 "broadcast_text to unknown route 2");
    check_status(roost_server_broadcast_binary(server, 4000000000u, BYTES("x"), 1, &recipients), ROOST_NOT_FOUND,
                 "broadcast_binary to unknown route 4000000000");
    recipients = 99;
    check_status(roost_server_broadcast_text(server, 1, BYTES("x"), 1, &recipients), ROOST_OK,
                 "broadcast_text to a route with no connection");
    check(recipients == 0, "it reached nobody (got %zu)", recipients);

    uint64_t conn = 0;
    int client = connect_client(&pump, port, "/ws", &conn, "conn");
    if (client < 0) goto out;

    /* Bad UTF-8 in text. */
    check_status(roost_connection_send_text(server, conn, bad_utf8, sizeof bad_utf8), ROOST_INVALID_ARGUMENT,
                 "send_text(invalid UTF-8)");
    check_status(roost_connection_send_text(server, conn, overlong_nul, sizeof overlong_nul), ROOST_INVALID_ARGUMENT,
                 "send_text(overlong encoding)");
    check_status(roost_connection_send_text(server, conn, surrogate, sizeof surrogate), ROOST_INVALID_ARGUMENT,
                 "send_text(surrogate half)");
    check_status(roost_server_broadcast_text(server, 0, bad_utf8, sizeof bad_utf8, &recipients),
                 ROOST_INVALID_ARGUMENT, "broadcast_text(invalid UTF-8)");
    check_status(roost_server_broadcast_text(server, 0, surrogate, sizeof surrogate, &recipients),
                 ROOST_INVALID_ARGUMENT, "broadcast_text(surrogate half)");
    check_status(roost_connection_send_binary(server, conn, bad_utf8, sizeof bad_utf8), ROOST_OK,
                 "send_binary of the same bytes is fine");
    check_status(roost_connection_send_text(server, conn, NULL, 0), ROOST_OK, "send_text(NULL, 0): empty message");
    ws_frame frame;
    if (check(ws_read_frame(client, &frame) == 0, "the client reads the binary message")) {
        check(frame.opcode == WS_OP_BINARY && frame.len == sizeof bad_utf8, "binary, %zu bytes", frame.len);
        ws_frame_free(&frame);
    }
    if (check(ws_read_frame(client, &frame) == 0, "the client reads the empty text message")) {
        check(frame.opcode == WS_OP_TEXT && frame.len == 0, "text, 0 bytes (opcode 0x%x, %zu bytes)", frame.opcode,
              frame.len);
        ws_frame_free(&frame);
    }

    /* Close codes a server may not send, and reasons that do not fit. */
    const uint16_t bad_codes[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof bad_codes / sizeof bad_codes[0]; i++)
        check_status(roost_connection_close(server, conn, bad_codes[i], NULL, 0), ROOST_INVALID_ARGUMENT,
                     "close with code %u", bad_codes[i]);
    char reason[200];
    memset(reason, 'r', sizeof reason);
    check_status(roost_connection_close(server, conn, 1000, BYTES(reason), 124), ROOST_INVALID_ARGUMENT,
                 "close with a 124-byte reason");
    check_status(roost_connection_close(server, conn, 1000, BYTES(reason), sizeof reason), ROOST_INVALID_ARGUMENT,
                 "close with a 200-byte reason");
    check_status(roost_connection_close(server, conn, 1000, bad_utf8, sizeof bad_utf8), ROOST_INVALID_ARGUMENT,
                 "close with an invalid UTF-8 reason");
    check_status(roost_connection_send_text(server, conn, BYTES("still open"), 10), ROOST_OK,
                 "the refused closes left the connection open");
    if (check(ws_read_frame(client, &frame) == 0, "the client reads \"still open\"")) {
        check(frame.opcode == WS_OP_TEXT && frame.len == 10 && memcmp(frame.payload, "still open", 10) == 0,
              "text \"still open\"");
        ws_frame_free(&frame);
    }

    /* Closing: a 123-byte reason fits exactly; then the connection refuses sends. */
    check_status(roost_connection_close(server, conn, 4999, BYTES(reason), 123), ROOST_OK,
                 "close with code 4999 and a 123-byte reason");
    check_status(roost_connection_send_text(server, conn, BYTES("x"), 1), ROOST_CLOSED, "send_text while closing");
    check_status(roost_connection_send_binary(server, conn, BYTES("x"), 1), ROOST_CLOSED,
                 "send_binary while closing");
    check_status(roost_connection_close(server, conn, 1000, NULL, 0), ROOST_CLOSED, "close while closing");
    recipients = 99;
    check_status(roost_server_broadcast_text(server, 0, BYTES("x"), 1, &recipients), ROOST_OK,
                 "broadcast_text while its only connection is closing");
    check(recipients == 0, "the closing connection is not a recipient (got %zu)", recipients);
    if (check(ws_read_frame(client, &frame) == 0, "the client reads the close frame")) {
        check(frame.opcode == WS_OP_CLOSE && ws_close_code(&frame) == 4999 && frame.len == 125,
              "close 4999 with the 123-byte reason (opcode 0x%x, code %u, %zu bytes)", frame.opcode,
              ws_close_code(&frame), frame.len);
        ws_frame_free(&frame);
    }
    check(ws_send_close(client, 4999, "") == 0, "the client answers the close");
    test_event ev;
    if (check(pump_wait(&pump, ROOST_EVENT_DISCONNECT, conn, EVENT_TIMEOUT_MS, &ev) == 0, "DISCONNECT event")) {
        check(ev.close_code == 4999 && ev.data_len == 123, "DISCONNECT 4999 with the reason (code %u, %zu bytes)",
              ev.close_code, ev.data_len);
        test_event_free(&ev);
    }
    /* After the DISCONNECT the id is retired. */
    check_status(roost_connection_send_text(server, conn, BYTES("x"), 1), ROOST_NOT_FOUND,
                 "send_text after DISCONNECT");
    check_status(roost_connection_send_binary(server, conn, BYTES("x"), 1), ROOST_NOT_FOUND,
                 "send_binary after DISCONNECT");
    check_status(roost_connection_close(server, conn, 1000, NULL, 0), ROOST_NOT_FOUND, "close after DISCONNECT");
    check_status(roost_connection_pause_reading(server, conn, false), ROOST_NOT_FOUND,
                 "pause_reading after DISCONNECT");
    close(client);

    /* A client that drops its socket: DISCONNECT 1006, then the id is retired. */
    uint64_t dropped = 0;
    client = connect_client(&pump, port, "/chat", &dropped, "conn (drop)");
    if (client >= 0) {
        check(dropped != conn, "the new connection has a new id (%llu, old %llu)", (unsigned long long)dropped,
              (unsigned long long)conn);
        close(client);
        if (check(pump_wait(&pump, ROOST_EVENT_DISCONNECT, dropped, EVENT_TIMEOUT_MS, &ev) == 0,
                  "DISCONNECT for the dropped client")) {
            check(ev.close_code == 1006, "DISCONNECT code 1006 (got %u)", ev.close_code);
            test_event_free(&ev);
        }
        check_status(roost_connection_send_text(server, dropped, BYTES("x"), 1), ROOST_NOT_FOUND,
                     "send_text to the dropped connection");
    }

    /* Calls after stop: a client that does not answer the 1001 close is dropped at the
     * end of the grace period. */
    uint64_t last = 0;
    client = connect_client(&pump, port, "/ws", &last, "conn (stop)");
    check_status(roost_server_stop(server, 300), ROOST_OK, "roost_server_stop(300)");
    size_t count = 99;
    roost_event events[4];
    check_status(roost_connection_send_text(server, last, BYTES("x"), 1), ROOST_CLOSED,
                 "send_text after stop");
    check_status(roost_connection_send_binary(server, last, BYTES("x"), 1), ROOST_CLOSED,
                 "send_binary after stop");
    check_status(roost_connection_send_text(server, 12345, BYTES("x"), 1), ROOST_CLOSED,
                 "send_text to an unknown id after stop");
    check_status(roost_server_broadcast_text(server, 0, BYTES("x"), 1, &recipients), ROOST_CLOSED,
                 "broadcast_text after stop");
    check_status(roost_server_broadcast_binary(server, 0, BYTES("x"), 1, &recipients), ROOST_CLOSED,
                 "broadcast_binary after stop");
    check_status(roost_connection_close(server, last, 1000, NULL, 0), ROOST_CLOSED, "close after stop");
    check_status(roost_connection_subscribe(server, last, BYTES("t"), 1, NULL), ROOST_CLOSED, "subscribe after stop");
    check_status(roost_server_publish_text(server, BYTES("t"), 1, BYTES("x"), 1, ROOST_NO_CONNECTION, &recipients),
                 ROOST_CLOSED, "publish_text after stop");
    if (client >= 0 &&
        check(pump_wait(&pump, ROOST_EVENT_DISCONNECT, last, EVENT_TIMEOUT_MS, &ev) == 0,
              "the DISCONNECT of the unanswered connection is polled after stop")) {
        check(ev.close_code == 1006, "its code is 1006 (got %u)", ev.close_code);
        test_event_free(&ev);
    }
    check_status(roost_server_poll(server, events, 4, sizeof(roost_event), &count), ROOST_OK, "poll after stop");
    check(count == 0, "nothing left to poll (got %zu)", count);
    check_status(roost_server_connection_count(server, &count), ROOST_OK, "connection_count after stop");
    check(count == 0, "no connections (got %zu)", count);
    uint32_t route = 0;
    check_status(roost_server_add_route(server, BYTES("/late"), 5, &route), ROOST_INVALID_STATE,
                 "add_route after stop");
    check_status(roost_server_start(server, BYTES("127.0.0.1"), 9, 0, &port), ROOST_INVALID_STATE,
                 "start after stop");
    check_status(roost_server_stop(server, 0), ROOST_OK, "stop again");
    if (client >= 0) close(client);

out:
    check(pump.contract_violations == 0, "every polled event kept roost.h's pointer contract");
    pump_free(&pump);
    check_status(roost_server_free(server), ROOST_OK, "conn: roost_server_free");
}

int main(void) {
    install_watchdog(30, PROGRAM);
    setvbuf(stdout, NULL, _IOLBF, 0);

    const char *version = roost_version();
    check(version != NULL && version[0] != '\0', "roost_version() is \"%s\"", version ? version : "");

    null_arguments();
    freed_handle();
    lifecycle();
    connections();
    return check_summary(PROGRAM);
}

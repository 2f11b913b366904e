/*
 * Topics through roost.h, with this program as its own WebSocket clients over raw TCP
 * sockets to 127.0.0.1: subscribe and unsubscribe (and what they report), publish of
 * text and binary with and without an excluded connection, subscriber counts, a
 * connection's topics through a visitor (one that unsubscribes as it goes included),
 * topics left when a connection ends, publishing from a second thread while the main
 * thread publishes and polls, bad topics and payloads, calls after stop, the counters
 * of roost_server_stats, and both slow-consumer policies against a client that never
 * reads.
 */
#define _POSIX_C_SOURCE 200809L

#include "roost.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "ws_client.h"

#define PROGRAM "api_topics"
#define EVENT_TIMEOUT_MS 5000

#define BYTES(s) ((const uint8_t *)(s))
/* A topic argument from a C string: pointer and length. */
#define TOPIC(s) BYTES(s), strlen(s)
/* What an out-parameter holds before a call; a failed call must leave it so. A bool
 * out-parameter is a byte holding FLAG_UNSET, which neither true nor false is. */
#define SENTINEL ((size_t)0xa5a5a5a5u)
#define FLAG_UNSET 0x5a

static const uint8_t bad_utf8[] = {'o', 'k', 0xc3, 0x28, 0xff};

/* Options of every server here: no pings (the raw clients do not answer them) and a
 * short close timeout. */
static roost_options test_options(void) {
    roost_options options;
    ROOST_OPTIONS_INIT(&options);
    options.ping_interval_ms = 0;
    options.close_timeout_ms = 1000;
    return options;
}

/* Prints the title of a part of the test, and starts its server: the one route /t on
 * 127.0.0.1 port 0, with `options` (NULL: test_options()), and a pump for it. */
static roost_server *start_server(const char *title, const roost_options *options, uint16_t *port,
                                  event_pump *pump, const char *label) {
    printf("# %s\n", title);
    roost_options defaults = test_options();
    roost_server *server = NULL;
    if (!check_status(roost_server_new(options ? options : &defaults, &server), ROOST_OK, "%s: roost_server_new",
                      label))
        return NULL;
    uint32_t route = 0;
    int fd = -1;
    int ok = check_status(roost_server_add_route(server, BYTES("/t"), 2, &route), ROOST_OK,
                          "%s: add_route(\"/t\")", label);
    ok = ok && check_status(roost_server_start(server, BYTES("127.0.0.1"), 9, 0, port), ROOST_OK,
                            "%s: start(127.0.0.1, 0)", label);
    ok = ok && check_status(roost_server_ready_fd(server, &fd), ROOST_OK, "%s: ready_fd", label);
    if (!ok) {
        roost_server_free(server);
        return NULL;
    }
    pump_init(pump, server, fd, 16);
    return server;
}

/* Connects a client to /t (with a receive buffer of `rcvbuf` bytes, 0: the system's)
 * and waits for its CONNECT. Returns the socket (or -1) and writes the connection id. */
static int connect_client(event_pump *pump, uint16_t port, int rcvbuf, uint64_t *conn, const char *label) {
    return pump_connect(pump, port, "/t", rcvbuf, EVENT_TIMEOUT_MS, conn, label);
}

/* Reads one frame and checks it is a final data frame with `opcode` and `payload`. */
static void expect_frame(int fd, int opcode, const void *payload, size_t len, const char *label) {
    ws_frame frame;
    if (!check(ws_read_frame(fd, &frame) == 0, "%s: a frame arrives", label)) return;
    check(frame.fin && frame.opcode == opcode && frame.len == len &&
              (len == 0 || memcmp(frame.payload, payload, len) == 0),
          "%s: opcode 0x%x, %zu bytes as queued (got opcode 0x%x, %zu bytes)", label, opcode, len,
          frame.opcode, frame.len);
    ws_frame_free(&frame);
}

/* Checks that nothing reached `fd` before now: a message sent to the connection
 * directly arrives next (a connection's messages keep the order they were queued in),
 * and nothing follows it. */
static void expect_nothing(roost_server *server, uint64_t conn, int fd, const char *label) {
    static const char marker[] = "marker";
    check_status(roost_connection_send_text(server, conn, BYTES(marker), strlen(marker)), ROOST_OK,
                 "%s: send a marker", label);
    expect_frame(fd, WS_OP_TEXT, marker, strlen(marker), label);
    struct pollfd pfd = {.fd = fd, .events = POLLIN, .revents = 0};
    check(poll(&pfd, 1, 100) == 0, "%s: nothing else arrives (100 ms)", label);
}

/* The counters of `server`; the call must succeed. */
static roost_stats stats_of(roost_server *server, const char *label) {
    roost_stats stats;
    memset(&stats, 0xAB, sizeof stats);
    check_status(ROOST_SERVER_STATS(server, &stats), ROOST_OK, "%s: roost_server_stats", label);
    return stats;
}

/* The subscriber count of `topic`, or SENTINEL when the call fails. */
static size_t subscribers(roost_server *server, const char *topic) {
    size_t n = SENTINEL;
    roost_status st = roost_server_subscriber_count(server, TOPIC(topic), &n);
    if (st != ROOST_OK)
        printf("     (subscriber_count(\"%s\") gave %s: %s)\n", topic, status_name(st), roost_last_error());
    return n;
}

/* Subscribes (`join`) or unsubscribes connection `who` and checks the flag the call
 * reports: whether it became a subscriber now, or whether it was one. */
static void join_or_leave(roost_server *server, int join, uint64_t conn, const char *who, const char *topic,
                          bool want) {
    bool flag = !want;
    const char *verb = join ? "subscribe" : "unsubscribe";
    roost_status st = join ? roost_connection_subscribe(server, conn, TOPIC(topic), &flag)
                           : roost_connection_unsubscribe(server, conn, TOPIC(topic), &flag);
    check_status(st, ROOST_OK, "%s(%s, %s)", verb, who, topic);
    check(flag == want, "%s(%s, %s) reports %s", verb, who, topic, want ? "true" : "false");
}

/* ---- visitors ------------------------------------------------------------------ */

#define LIST_MAX 8

/* What a visitor saw, and (for unsubscribe_each) the connection it works on. */
typedef struct {
    size_t calls;
    char names[LIST_MAX][64];
    roost_server *server;
    uint64_t connection;
    size_t unsubscribed; /* unsubscribes from inside the visitor that gave OK, true */
    size_t refused;      /* and those that did not */
} topic_list;

static void collect(void *context, const uint8_t *topic, size_t topic_len) {
    topic_list *list = context;
    if (list->calls < LIST_MAX) {
        size_t n = topic_len < 63 ? topic_len : 63;
        memcpy(list->names[list->calls], topic, n);
        list->names[list->calls][n] = '\0';
    }
    list->calls++;
}

/* Collects the topic, then unsubscribes the connection from it. */
static void unsubscribe_each(void *context, const uint8_t *topic, size_t topic_len) {
    topic_list *list = context;
    collect(context, topic, topic_len);
    bool was = false;
    roost_status st = roost_connection_unsubscribe(list->server, list->connection, topic, topic_len, &was);
    if (st == ROOST_OK && was)
        list->unsubscribed++;
    else
        list->refused++;
}

/* Subscribe, unsubscribe and topics of `conn` all give `want`, and write no
 * out-parameter and call no visitor. */
static void refused(roost_server *server, uint64_t conn, roost_status want, const char *who) {
    unsigned char flag = FLAG_UNSET;
    topic_list list;
    memset(&list, 0, sizeof list);
    size_t n = SENTINEL;
    check_status(roost_connection_subscribe(server, conn, TOPIC("shared"), (bool *)&flag), want, "subscribe(%s)",
                 who);
    check_status(roost_connection_unsubscribe(server, conn, TOPIC("shared"), (bool *)&flag), want,
                 "unsubscribe(%s)", who);
    check_status(roost_connection_topics(server, conn, collect, &list, &n), want, "topics(%s)", who);
    check(flag == FLAG_UNSET && n == SENTINEL && list.calls == 0, "the refused calls wrote nothing, visited nothing");
}

static int list_has(const topic_list *list, const char *name) {
    for (size_t i = 0; i < list->calls && i < LIST_MAX; i++)
        if (strcmp(list->names[i], name) == 0) return 1;
    return 0;
}

/* ---- subscribe, publish, unsubscribe, topics, a connection's end, stop ---------- */

static void subscribe_and_publish(void) {
    uint16_t port = 0;
    event_pump pump;
    roost_server *server =
        start_server("subscribe, publish, unsubscribe, a connection's topics, its end, stop", NULL, &port, &pump,
                     "pubsub");
    if (server == NULL) return;
    uint64_t a_id = 0, b_id = 0, c_id = 0;
    int a = connect_client(&pump, port, 0, &a_id, "client A");
    int b = connect_client(&pump, port, 0, &b_id, "client B");
    int c = connect_client(&pump, port, 0, &c_id, "client C");
    if (a < 0 || b < 0 || c < 0) goto out;

    join_or_leave(server, 1, a_id, "A", "room", true);
    join_or_leave(server, 1, a_id, "A", "room", false); /* already one */
    join_or_leave(server, 1, b_id, "B", "room", true);
    check_status(roost_connection_subscribe(server, b_id, TOPIC("other"), NULL), ROOST_OK,
                 "subscribe(B, other) with NULL out_subscribed");
    check(subscribers(server, "room") == 2, "room has 2 subscribers (got %zu)", subscribers(server, "room"));
    check(subscribers(server, "other") == 1, "other has 1 subscriber (got %zu)", subscribers(server, "other"));
    check(subscribers(server, "nobody") == 0, "nobody has 0 subscribers (got %zu)", subscribers(server, "nobody"));
    roost_stats stats = stats_of(server, "pubsub");
    check(stats.size == sizeof stats, "stats.size is sizeof(roost_stats) (%u)", stats.size);
    check(stats.connections == 3 && stats.topics == 2, "stats: 3 connections, 2 topics (got %llu, %llu)",
          (unsigned long long)stats.connections, (unsigned long long)stats.topics);
    check(stats.deliveries_skipped == 0 && stats.slow_consumers_closed == 0,
          "stats: nothing skipped or closed yet (%llu, %llu)", (unsigned long long)stats.deliveries_skipped,
          (unsigned long long)stats.slow_consumers_closed);

    /* Publishes, each followed by what each client reads. */
    const char *all = "to all of room";
    size_t recipients = SENTINEL;
    check_status(roost_server_publish_text(server, TOPIC("room"), BYTES(all), strlen(all), ROOST_NO_CONNECTION,
                                           &recipients),
                 ROOST_OK, "publish_text(room) excluding no one");
    check(recipients == 2, "it reached 2 recipients (got %zu)", recipients);
    expect_frame(a, WS_OP_TEXT, all, strlen(all), "A reads the publish");
    expect_frame(b, WS_OP_TEXT, all, strlen(all), "B reads the publish");
    expect_nothing(server, c_id, c, "C, subscribed to nothing");

    const uint8_t blob[] = {0x00, 0xff, 0x80, 0x7f, 0x01};
    recipients = SENTINEL;
    check_status(roost_server_publish_binary(server, TOPIC("room"), blob, sizeof blob, a_id, &recipients), ROOST_OK,
                 "publish_binary(room) excluding A");
    check(recipients == 1, "it reached 1 recipient (got %zu)", recipients);
    expect_frame(b, WS_OP_BINARY, blob, sizeof blob, "B reads the binary publish");
    expect_nothing(server, a_id, a, "A, excluded");

    const char *again = "to room, text, excluding B";
    recipients = SENTINEL;
    check_status(roost_server_publish_text(server, TOPIC("room"), BYTES(again), strlen(again), b_id, &recipients),
                 ROOST_OK, "publish_text(room) excluding B");
    check(recipients == 1, "it reached 1 recipient (got %zu)", recipients);
    expect_frame(a, WS_OP_TEXT, again, strlen(again), "A reads it");
    expect_nothing(server, b_id, b, "B, excluded");

    recipients = SENTINEL;
    check_status(roost_server_publish_binary(server, TOPIC("room"), blob, sizeof blob, c_id, &recipients), ROOST_OK,
                 "publish_binary(room) excluding C, who is no subscriber");
    check(recipients == 2, "it reached 2 recipients (got %zu)", recipients);
    expect_frame(a, WS_OP_BINARY, blob, sizeof blob, "A reads it");
    expect_frame(b, WS_OP_BINARY, blob, sizeof blob, "B reads it");
    check_status(roost_server_publish_text(server, TOPIC("room"), BYTES("null out"), 8, 987654321, NULL), ROOST_OK,
                 "publish_text(room) excluding an unknown id, NULL out_recipients");
    expect_frame(a, WS_OP_TEXT, "null out", 8, "A reads it");
    expect_frame(b, WS_OP_TEXT, "null out", 8, "B reads it");

    recipients = SENTINEL;
    check_status(roost_server_publish_text(server, TOPIC("nobody"), BYTES("x"), 1, ROOST_NO_CONNECTION, &recipients),
                 ROOST_OK, "publish_text to a topic with no subscriber");
    check(recipients == 0, "it reached nobody (got %zu)", recipients);
    recipients = SENTINEL;
    check_status(roost_server_publish_binary(server, TOPIC("other"), blob, sizeof blob, b_id, &recipients), ROOST_OK,
                 "publish_binary(other) excluding its only subscriber");
    check(recipients == 0, "it reached nobody (got %zu)", recipients);
    expect_nothing(server, b_id, b, "B, the excluded only subscriber");

    /* The longest topic, and a topic of bytes that are not text. */
    char longest[ROOST_MAX_TOPIC_LENGTH];
    memset(longest, 'L', sizeof longest);
    const uint8_t raw_topic[] = {0xff, 0x00, 'b', 'i', 'n'};
    bool subscribed = false;
    check_status(roost_connection_subscribe(server, c_id, BYTES(longest), sizeof longest, &subscribed), ROOST_OK,
                 "subscribe(C, a topic of ROOST_MAX_TOPIC_LENGTH bytes)");
    check(subscribed, "C became a subscriber of it");
    subscribed = false;
    check_status(roost_connection_subscribe(server, c_id, raw_topic, sizeof raw_topic, &subscribed), ROOST_OK,
                 "subscribe(C, a topic of bytes that are not UTF-8)");
    check(subscribed, "C became a subscriber of it");
    recipients = SENTINEL;
    check_status(roost_server_publish_text(server, BYTES(longest), sizeof longest, BYTES("long"), 4,
                                           ROOST_NO_CONNECTION, &recipients),
                 ROOST_OK, "publish_text to the longest topic");
    check(recipients == 1, "it reached C (got %zu)", recipients);
    expect_frame(c, WS_OP_TEXT, "long", 4, "C reads it");
    size_t n = SENTINEL;
    check_status(roost_server_subscriber_count(server, raw_topic, sizeof raw_topic, &n), ROOST_OK,
                 "subscriber_count of the binary topic");
    check(n == 1, "it has 1 subscriber (got %zu)", n);
    n = SENTINEL;
    check_status(roost_server_subscriber_count(server, raw_topic, 1, &n), ROOST_OK,
                 "subscriber_count of its first byte alone");
    check(n == 0, "topics match exactly: a prefix has none (got %zu)", n);

    /* A connection's topics. */
    topic_list list;
    memset(&list, 0, sizeof list);
    n = SENTINEL;
    check_status(roost_connection_topics(server, b_id, collect, &list, &n), ROOST_OK, "topics(B)");
    check(n == 2 && list.calls == 2, "B has 2 topics, the visitor was called twice (count %zu, calls %zu)", n,
          list.calls);
    check(list_has(&list, "room") && list_has(&list, "other"), "the visitor got room and other (\"%s\", \"%s\")",
          list.names[0], list.names[1]);
    memset(&list, 0, sizeof list);
    check_status(roost_connection_topics(server, a_id, collect, &list, NULL), ROOST_OK,
                 "topics(A) with NULL out_count");
    check(list.calls == 1 && list_has(&list, "room"), "A's one topic is room (%zu calls)", list.calls);
    uint64_t d_id = 0;
    int d = connect_client(&pump, port, 0, &d_id, "client D");
    memset(&list, 0, sizeof list);
    n = SENTINEL;
    check_status(roost_connection_topics(server, d_id, collect, &list, &n), ROOST_OK, "topics(D), who has none");
    check(n == 0 && list.calls == 0, "count 0, the visitor never called (count %zu, calls %zu)", n, list.calls);

    /* A visitor that unsubscribes its connection from each topic it is given. */
    memset(&list, 0, sizeof list);
    list.server = server;
    list.connection = b_id;
    n = SENTINEL;
    check_status(roost_connection_topics(server, b_id, unsubscribe_each, &list, &n), ROOST_OK,
                 "topics(B) with a visitor that unsubscribes B");
    check(n == 2 && list.calls == 2, "the list was taken before the first call: 2 topics, 2 calls (%zu, %zu)", n,
          list.calls);
    check(list.unsubscribed == 2 && list.refused == 0,
          "each unsubscribe inside the visitor gave ROOST_OK and was_subscribed (%zu, %zu refused)",
          list.unsubscribed, list.refused);
    memset(&list, 0, sizeof list);
    n = SENTINEL;
    check_status(roost_connection_topics(server, b_id, collect, &list, &n), ROOST_OK, "topics(B) afterwards");
    check(n == 0 && list.calls == 0, "B has no topic left (count %zu)", n);
    check(subscribers(server, "room") == 1 && subscribers(server, "other") == 0,
          "room has 1 subscriber, other none (%zu, %zu)", subscribers(server, "room"), subscribers(server, "other"));

    /* Unsubscribe results. */
    join_or_leave(server, 0, a_id, "A", "room", true);
    join_or_leave(server, 0, a_id, "A", "room", false); /* no longer one */
    join_or_leave(server, 0, a_id, "A", "never", false);
    check_status(roost_connection_unsubscribe(server, c_id, raw_topic, sizeof raw_topic, NULL), ROOST_OK,
                 "unsubscribe(C, the binary topic) with NULL out_was_subscribed");
    recipients = SENTINEL;
    check_status(roost_server_publish_text(server, TOPIC("room"), BYTES("empty"), 5, ROOST_NO_CONNECTION,
                                           &recipients),
                 ROOST_OK, "publish_text(room) after everyone left it");
    check(recipients == 0, "it reached nobody (got %zu)", recipients);
    expect_nothing(server, a_id, a, "A, unsubscribed");
    stats = stats_of(server, "after unsubscribes");
    check(stats.connections == 4 && stats.topics == 1, "stats: 4 connections, 1 topic (got %llu, %llu)",
          (unsigned long long)stats.connections, (unsigned long long)stats.topics);

    refused(server, 987654321, ROOST_NOT_FOUND, "an unknown id");

    /* A leaves: its topics go with it. */
    check_status(roost_connection_subscribe(server, a_id, TOPIC("a-only"), NULL), ROOST_OK, "subscribe(A, a-only)");
    check_status(roost_connection_subscribe(server, a_id, TOPIC("shared"), NULL), ROOST_OK, "subscribe(A, shared)");
    check_status(roost_connection_subscribe(server, d_id, TOPIC("shared"), NULL), ROOST_OK, "subscribe(D, shared)");
    check(subscribers(server, "shared") == 2, "shared has 2 subscribers (got %zu)", subscribers(server, "shared"));
    stats = stats_of(server, "before A leaves");
    check(stats.topics == 3, "stats: 3 topics (got %llu)", (unsigned long long)stats.topics);
    check(ws_send_close(a, 1000, "leaving") == 0, "client A sends close 1000");
    check(ws_wait_eof(a) == 0, "the server answers and closes A's TCP connection");
    test_event ev;
    if (check(pump_wait(&pump, ROOST_EVENT_DISCONNECT, a_id, EVENT_TIMEOUT_MS, &ev) == 0, "DISCONNECT event for A"))
        test_event_free(&ev);
    check(subscribers(server, "a-only") == 0, "a-only has no subscriber left (got %zu)",
          subscribers(server, "a-only"));
    check(subscribers(server, "shared") == 1, "shared has 1 subscriber left (got %zu)",
          subscribers(server, "shared"));
    stats = stats_of(server, "after A left");
    check(stats.connections == 3 && stats.topics == 2, "stats: 3 connections, 2 topics (got %llu, %llu)",
          (unsigned long long)stats.connections, (unsigned long long)stats.topics);
    refused(server, a_id, ROOST_NOT_FOUND, "A after its DISCONNECT");
    recipients = SENTINEL;
    check_status(roost_server_publish_text(server, TOPIC("shared"), BYTES("still"), 5, ROOST_NO_CONNECTION,
                                           &recipients),
                 ROOST_OK, "publish_text(shared)");
    check(recipients == 1, "it reached D alone (got %zu)", recipients);
    expect_frame(d, WS_OP_TEXT, "still", 5, "D reads it");

    /* After stop: ROOST_CLOSED; counts and stats still answer. */
    check_status(roost_server_stop(server, 0), ROOST_OK, "roost_server_stop");
    refused(server, d_id, ROOST_CLOSED, "D after stop");
    recipients = SENTINEL;
    check_status(roost_server_publish_text(server, TOPIC("shared"), BYTES("x"), 1, ROOST_NO_CONNECTION, &recipients),
                 ROOST_CLOSED, "publish_text after stop");
    check_status(roost_server_publish_binary(server, TOPIC("shared"), blob, sizeof blob, ROOST_NO_CONNECTION,
                                             &recipients),
                 ROOST_CLOSED, "publish_binary after stop");
    check(recipients == SENTINEL, "the refused publishes left out_recipients alone");
    for (int i = 0; i < 3; i++)
        if (pump_wait(&pump, ROOST_EVENT_DISCONNECT, 0, EVENT_TIMEOUT_MS, &ev) == 0) test_event_free(&ev);
    n = SENTINEL;
    check_status(roost_server_subscriber_count(server, TOPIC("shared"), &n), ROOST_OK, "subscriber_count after stop");
    check(n == 0, "no subscriber once every connection ended (got %zu)", n);
    stats = stats_of(server, "after stop");
    check(stats.connections == 0 && stats.topics == 0, "stats: no connection, no topic (got %llu, %llu)",
          (unsigned long long)stats.connections, (unsigned long long)stats.topics);
    if (d >= 0) close(d);

out:
    check(pump.contract_violations == 0, "pubsub: every polled event kept roost.h's pointer contract");
    pump_free(&pump);
    if (a >= 0) close(a);
    if (b >= 0) close(b);
    if (c >= 0) close(c);
    check_status(roost_server_free(server), ROOST_OK, "pubsub: roost_server_free");
}

/* ---- bad arguments ------------------------------------------------------------- */

static void bad_arguments(void) {
    uint16_t port = 0;
    event_pump pump;
    roost_server *server = start_server("bad topics, payloads, visitors and stats sizes", NULL, &port, &pump, "bad");
    if (server == NULL) return;
    uint64_t id = 0;
    int fd = connect_client(&pump, port, 0, &id, "bad");
    if (fd < 0) goto out;

    static char too_long[ROOST_MAX_TOPIC_LENGTH + 1];
    memset(too_long, 't', sizeof too_long);
    const struct {
        const uint8_t *topic;
        size_t len;
        const char *what;
    } bad[] = {
        {BYTES("room"), 0, "an empty topic"},
        {NULL, 0, "a NULL topic of length 0"},
        {BYTES(too_long), sizeof too_long, "a topic of ROOST_MAX_TOPIC_LENGTH + 1 bytes"},
        {NULL, 5, "a NULL topic with length 5"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const uint8_t *t = bad[i].topic;
        size_t len = bad[i].len;
        const char *what = bad[i].what;
        unsigned char flag = FLAG_UNSET;
        size_t out = SENTINEL;
        check_status(roost_connection_subscribe(server, id, t, len, (bool *)&flag), ROOST_INVALID_ARGUMENT,
                     "subscribe(%s)", what);
        check(strstr(roost_last_error(), "topic") != NULL, "the message names the topic (\"%s\")", roost_last_error());
        check_status(roost_connection_unsubscribe(server, id, t, len, (bool *)&flag), ROOST_INVALID_ARGUMENT,
                     "unsubscribe(%s)", what);
        check_status(roost_server_publish_text(server, t, len, BYTES("x"), 1, ROOST_NO_CONNECTION, &out),
                     ROOST_INVALID_ARGUMENT, "publish_text(%s)", what);
        check_status(roost_server_publish_binary(server, t, len, BYTES("x"), 1, ROOST_NO_CONNECTION, &out),
                     ROOST_INVALID_ARGUMENT, "publish_binary(%s)", what);
        check_status(roost_server_subscriber_count(server, t, len, &out), ROOST_INVALID_ARGUMENT,
                     "subscriber_count(%s)", what);
        check(flag == FLAG_UNSET && out == SENTINEL, "the refused calls wrote no out-parameter");
    }
    check(strstr(roost_last_error(), "topic") != NULL, "the message names the topic (\"%s\")", roost_last_error());
    size_t n = SENTINEL;
    check_status(roost_server_subscriber_count(server, TOPIC("room"), NULL), ROOST_INVALID_ARGUMENT,
                 "subscriber_count(out_count NULL)");
    check_status(roost_connection_topics(server, id, NULL, NULL, &n), ROOST_INVALID_ARGUMENT, "topics(NULL visitor)");
    check(n == SENTINEL, "it left out_count alone");

    size_t recipients = SENTINEL;
    check_status(roost_connection_subscribe(server, id, TOPIC("room"), NULL), ROOST_OK, "subscribe(room)");
    check_status(roost_server_publish_text(server, TOPIC("room"), bad_utf8, sizeof bad_utf8, ROOST_NO_CONNECTION,
                                           &recipients),
                 ROOST_INVALID_ARGUMENT, "publish_text of bytes that are not UTF-8");
    check(strstr(roost_last_error(), "UTF-8") != NULL, "the message says UTF-8 (\"%s\")", roost_last_error());
    check_status(roost_server_publish_text(server, TOPIC("room"), NULL, 3, ROOST_NO_CONNECTION, &recipients),
                 ROOST_INVALID_ARGUMENT, "publish_text(data NULL, length 3)");
    check_status(roost_server_publish_binary(server, TOPIC("room"), NULL, 3, ROOST_NO_CONNECTION, &recipients),
                 ROOST_INVALID_ARGUMENT, "publish_binary(data NULL, length 3)");
    check(recipients == SENTINEL, "the refused publishes left out_recipients alone");
    check_status(roost_server_publish_binary(server, TOPIC("room"), bad_utf8, sizeof bad_utf8, ROOST_NO_CONNECTION,
                                             &recipients),
                 ROOST_OK, "publish_binary of the same bytes is fine");
    check(recipients == 1, "it reached the subscriber (got %zu)", recipients);
    expect_frame(fd, WS_OP_BINARY, bad_utf8, sizeof bad_utf8, "the subscriber reads it");
    check_status(roost_server_publish_text(server, TOPIC("room"), NULL, 0, ROOST_NO_CONNECTION, &recipients),
                 ROOST_OK, "publish_text(NULL, 0): an empty message");
    expect_frame(fd, WS_OP_TEXT, "", 0, "the subscriber reads the empty message");

    /* The stats struct: too small, the first header's (0.1.0, through
     * slow_consumers_closed), NULL, and larger than this header's. */
    const size_t first_size = offsetof(roost_stats, backplane_published);
    roost_stats stats, untouched;
    memset(&stats, 0xAB, sizeof stats);
    memcpy(&untouched, &stats, sizeof stats);
    check_status(roost_server_stats(server, &stats, first_size - 1), ROOST_INVALID_ARGUMENT,
                 "roost_server_stats(size one byte short of the first roost_stats)");
    check(memcmp(&stats, &untouched, sizeof stats) == 0, "it left the struct alone");
    check_status(roost_server_stats(server, &stats, first_size), ROOST_OK, "roost_server_stats(the first size)");
    check(stats.size == first_size, "it set the size to the first size (got %u)", stats.size);
    check(memcmp((char *)&stats + first_size, (char *)&untouched + first_size, sizeof stats - first_size) == 0,
          "and nothing past them");
    check_status(roost_server_stats(server, NULL, sizeof stats), ROOST_INVALID_ARGUMENT, "roost_server_stats(NULL)");
    struct {
        roost_stats known;
        uint64_t later[3];
    } newer;
    memset(&newer, 0xFF, sizeof newer);
    check_status(roost_server_stats(server, (roost_stats *)&newer, sizeof newer), ROOST_OK,
                 "roost_server_stats with a struct of a newer header");
    check(newer.known.size == sizeof newer && newer.known.connections == 1 && newer.known.topics == 1,
          "size %u, 1 connection, 1 topic (got %u, %llu, %llu)", (unsigned)sizeof newer, newer.known.size,
          (unsigned long long)newer.known.connections, (unsigned long long)newer.known.topics);
    check(newer.later[0] == 0 && newer.later[1] == 0 && newer.later[2] == 0,
          "the fields this library does not know are zeroed");

    /* Options: an unknown slow-consumer policy is refused by name. */
    roost_options odd = test_options();
    check(odd.slow_consumer == ROOST_SLOW_CONSUMER_CLOSE, "the default slow_consumer is ROOST_SLOW_CONSUMER_CLOSE (%u)",
          odd.slow_consumer);
    odd.slow_consumer = 7;
    roost_server *never = NULL;
    roost_status st = roost_server_new(&odd, &never);
    check_status(st, ROOST_INVALID_ARGUMENT, "roost_server_new(slow_consumer 7)");
    check(strstr(roost_last_error(), "slow_consumer") != NULL, "the message names slow_consumer (\"%s\")",
          roost_last_error());
    check(never == NULL, "no handle is written");
    if (st == ROOST_OK) roost_server_free(never);
    odd.slow_consumer = ROOST_SLOW_CONSUMER_SKIP;
    st = roost_server_new(&odd, &never);
    check_status(st, ROOST_OK, "roost_server_new(ROOST_SLOW_CONSUMER_SKIP)");
    if (st == ROOST_OK) check_status(roost_server_free(never), ROOST_OK, "roost_server_free");
    close(fd);

out:
    pump_free(&pump);
    check_status(roost_server_free(server), ROOST_OK, "bad: roost_server_free");
}

/* ---- publishing from two threads ----------------------------------------------- */

#define EACH 400

typedef struct {
    roost_server *server;
    int wrong; /* publishes that failed or did not reach both subscribers */
} publisher;

static int numbered(char *buf, size_t cap, char tag, int i) {
    return snprintf(buf, cap, "%c:%d", tag, i);
}

/* The second thread: EACH text publishes "p:<i>" to feed. */
static void *publisher_main(void *arg) {
    publisher *p = arg;
    char msg[32];
    for (int i = 0; i < EACH; i++) {
        int len = numbered(msg, sizeof msg, 'p', i);
        size_t recipients = SENTINEL;
        roost_status st = roost_server_publish_text(p->server, TOPIC("feed"), BYTES(msg), (size_t)len,
                                                    ROOST_NO_CONNECTION, &recipients);
        if (st != ROOST_OK || recipients != 2) p->wrong++;
    }
    return NULL;
}

/* Reads 2 * EACH frames: "p:<i>" as text and "m:<i>" as binary, each numbering in
 * order. Returns whether all came, each kind in order. */
static int read_both_orders(int fd, const char *label) {
    int next_p = 0, next_m = 0, bad = 0;
    ws_frame f;
    for (int k = 0; k < 2 * EACH && ws_read_frame(fd, &f) == 0; k++) {
        char tag = 0;
        int i = -1;
        if (f.len > 2 && f.len < 16) {
            tag = (char)f.payload[0];
            i = atoi((const char *)f.payload + 2);
        }
        if (tag == 'p' && f.opcode == WS_OP_TEXT && i == next_p)
            next_p++;
        else if (tag == 'm' && f.opcode == WS_OP_BINARY && i == next_m)
            next_m++;
        else if (bad++ == 0)
            printf("     (%s: unexpected \"%s\" (opcode 0x%x) after p:%d, m:%d)\n", label, f.payload, f.opcode,
                   next_p - 1, next_m - 1);
        ws_frame_free(&f);
    }
    return check(next_p == EACH && next_m == EACH && bad == 0,
                 "%s: every publish of both threads, each thread's in order (p %d, m %d, %d out of place)", label,
                 next_p, next_m, bad);
}

static void two_threads(void) {
    uint16_t port = 0;
    event_pump pump;
    roost_server *server = start_server("a second thread publishes while the main thread publishes and polls", NULL,
                                        &port, &pump, "threads");
    if (server == NULL) return;
    uint64_t x_id = 0, y_id = 0;
    int x = connect_client(&pump, port, 0, &x_id, "client X");
    int y = connect_client(&pump, port, 0, &y_id, "client Y");
    if (x < 0 || y < 0) goto out;
    check_status(roost_connection_subscribe(server, x_id, TOPIC("feed"), NULL), ROOST_OK, "subscribe(X, feed)");
    check_status(roost_connection_subscribe(server, y_id, TOPIC("feed"), NULL), ROOST_OK, "subscribe(Y, feed)");

    publisher p = {server, 0};
    pthread_t thread;
    int started = pthread_create(&thread, NULL, publisher_main, &p) == 0;
    check(started, "the publishing thread started");
    int wrong = 0, polled = 0, ticks = 0;
    char msg[32];
    for (int i = 0; i < EACH; i++) {
        int len = numbered(msg, sizeof msg, 'm', i);
        size_t recipients = SENTINEL;
        roost_status st = roost_server_publish_binary(server, TOPIC("feed"), BYTES(msg), (size_t)len,
                                                      ROOST_NO_CONNECTION, &recipients);
        if (st != ROOST_OK || recipients != 2) wrong++;
        if (i % 20 == 0) {
            /* X talks; the main thread polls its message while the other thread publishes. */
            ticks++;
            int tl = snprintf(msg, sizeof msg, "tick %d", i);
            test_event ev;
            if (ws_send_frame(x, 1, WS_OP_TEXT, msg, (size_t)tl) == 0 &&
                pump_wait(&pump, ROOST_EVENT_TEXT, x_id, EVENT_TIMEOUT_MS, &ev) == 0) {
                polled += ev.data_len == (size_t)tl && memcmp(ev.data, msg, (size_t)tl) == 0;
                test_event_free(&ev);
            }
        }
    }
    if (started) pthread_join(thread, NULL);
    check(wrong == 0, "every publish of the main thread reached 2 subscribers (%d did not)", wrong);
    check(p.wrong == 0, "every publish of the second thread reached 2 subscribers (%d did not)", p.wrong);
    check(polled == ticks, "the main thread polled each of X's %d messages meanwhile (%d)", ticks, polled);
    read_both_orders(x, "X");
    read_both_orders(y, "Y");
    roost_stats stats = stats_of(server, "threads");
    check(stats.deliveries_skipped == 0 && stats.slow_consumers_closed == 0,
          "no delivery skipped, no subscriber closed (%llu, %llu)", (unsigned long long)stats.deliveries_skipped,
          (unsigned long long)stats.slow_consumers_closed);

out:
    pump_free(&pump);
    if (x >= 0) close(x);
    if (y >= 0) close(y);
    check_status(roost_server_free(server), ROOST_OK, "threads: roost_server_free");
}

/* ---- slow consumers ------------------------------------------------------------ */

#define SLOW_LIMIT (64 * 1024)
#define SLOW_MESSAGE (16 * 1024)
#define SLOW_MAX_PUBLISHES 4096
#define SLOW_AFTER 20 /* deliveries the sleeper misses before the last publish */

/* A client that reads every publish: each must carry the next number. */
typedef struct {
    int fd;
    atomic_size_t received;
    int out_of_order;
    int malformed;
    int saw_last;
} reader;

static uint64_t seq_of(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
}

static void *reader_main(void *arg) {
    reader *r = arg;
    ws_frame f;
    while (ws_read_frame(r->fd, &f) == 0) {
        size_t n = atomic_load(&r->received);
        int ok = f.opcode == WS_OP_BINARY && f.len == SLOW_MESSAGE;
        if (!ok) r->malformed++;
        if (ok && seq_of(f.payload) != n) r->out_of_order++;
        int last = ok && f.payload[8] == 1;
        ws_frame_free(&f);
        if (!ok) break;
        atomic_store(&r->received, n + 1);
        if (last) {
            r->saw_last = 1;
            break;
        }
    }
    return NULL;
}

/* Publishes numbered 16 KiB binary messages to feed, to which a reader that keeps up
 * and a sleeper that never reads are subscribed, until the sleeper has missed SLOW_AFTER
 * of them (skipped over its limit, or closed and gone); then one marked last. The reader is never more
 * than one message behind. Writes what each publish reached to `reached` and returns
 * how many were made (0 on a failure, which it reports). */
static size_t publish_past_sleeper(roost_server *server, reader *r, unsigned char *reached, const char *label) {
    unsigned char *msg = calloc(1, SLOW_MESSAGE);
    if (msg == NULL) return 0;
    size_t sent = 0, missed = 0;
    long slow_since = -1;
    for (;;) {
        int64_t deadline = now_ms() + EVENT_TIMEOUT_MS;
        while (atomic_load(&r->received) + 1 < sent && now_ms() < deadline) sleep_ms(1);
        if (atomic_load(&r->received) + 1 < sent) {
            check(0, "%s: the reader fell behind: %zu of %zu publishes read", label, atomic_load(&r->received), sent);
            break;
        }
        /* Counted in misses, not in publishes since the first: while the kernel's send
         * buffer for the sleeper grows (autotuning), its queue can drain below the limit
         * again, and a later publish reaches it after all. */
        int last = missed >= SLOW_AFTER;
        for (int i = 0; i < 8; i++) msg[i] = (unsigned char)((uint64_t)sent >> (56 - 8 * i));
        msg[8] = (unsigned char)last;
        size_t n = SENTINEL;
        roost_status st = roost_server_publish_binary(server, TOPIC("feed"), msg, SLOW_MESSAGE,
                                                      ROOST_NO_CONNECTION, &n);
        if (!(st == ROOST_OK && (n == 1 || n == 2))) {
            check_status(st, ROOST_OK, "%s: publish %zu reached 1 or 2 (got %zu)", label, sent, n);
            break;
        }
        reached[sent++] = (unsigned char)n;
        missed += 2 - n;
        if (n < 2 && slow_since < 0) slow_since = (long)sent - 1;
        if (last) {
            free(msg);
            printf("     (%s: %zu publishes, the sleeper first missed publish %ld)\n", label, sent, slow_since);
            return sent;
        }
        if (sent == SLOW_MAX_PUBLISHES) {
            check(0, "%s: the client that never reads was not found slow in %d publishes", label, SLOW_MAX_PUBLISHES);
            break;
        }
    }
    free(msg);
    return 0;
}

static void slow_consumer(uint32_t policy) {
    int skip = policy == ROOST_SLOW_CONSUMER_SKIP;
    const char *label = skip ? "skip" : "close";
    roost_options options = test_options();
    options.outbound_queue_bytes = SLOW_LIMIT;
    options.slow_consumer = policy;
    uint16_t port = 0;
    event_pump pump;
    roost_server *server = start_server(skip ? "slow consumers: ROOST_SLOW_CONSUMER_SKIP"
                                             : "slow consumers: ROOST_SLOW_CONSUMER_CLOSE",
                                        &options, &port, &pump, label);
    if (server == NULL) return;
    reader r;
    memset(&r, 0, sizeof r);
    atomic_init(&r.received, 0);
    uint64_t reader_id = 0, sleeper_id = 0;
    r.fd = connect_client(&pump, port, 0, &reader_id, "reader");
    int sleeper = connect_client(&pump, port, 16 * 1024, &sleeper_id, "sleeper (16 KiB receive buffer)");
    unsigned char *reached = calloc(1, SLOW_MAX_PUBLISHES);
    if (r.fd < 0 || sleeper < 0 || reached == NULL) goto out;
    check_status(roost_connection_subscribe(server, reader_id, TOPIC("feed"), NULL), ROOST_OK, "subscribe(reader)");
    check_status(roost_connection_subscribe(server, sleeper_id, TOPIC("feed"), NULL), ROOST_OK, "subscribe(sleeper)");

    pthread_t thread;
    if (!check(pthread_create(&thread, NULL, reader_main, &r) == 0, "%s: the reader's thread started", label)) goto out;
    size_t sent = publish_past_sleeper(server, &r, reached, label);
    if (sent == 0) shutdown(r.fd, SHUT_RDWR); /* ends the reader's wait */
    pthread_join(thread, NULL);
    if (sent == 0) goto out;
    check(atomic_load(&r.received) == sent && r.out_of_order == 0 && r.malformed == 0 && r.saw_last,
          "%s: the reader got all %zu publishes, in order (%zu, %d out of order, %d malformed)", label, sent,
          atomic_load(&r.received), r.out_of_order, r.malformed);

    size_t missed = 0, first_miss = sent;
    for (size_t i = 0; i < sent; i++) {
        missed += 2 - reached[i];
        if (reached[i] < 2 && first_miss == sent) first_miss = i;
    }
    roost_stats stats = stats_of(server, label);
    test_event ev;
    if (skip) {
        check(missed >= SLOW_AFTER, "skip: the sleeper missed %zu publishes (at least %d)", missed, SLOW_AFTER);
        check(stats.deliveries_skipped == missed,
              "skip: stats.deliveries_skipped is the sum of (2 - recipients), %zu (got %llu)", missed,
              (unsigned long long)stats.deliveries_skipped);
        check(stats.slow_consumers_closed == 0, "skip: stats.slow_consumers_closed is 0 (got %llu)",
              (unsigned long long)stats.slow_consumers_closed);
        check(pump_drain(&pump) >= 0 && pump_count(&pump, ROOST_EVENT_DISCONNECT, 0) == 0,
              "skip: no DISCONNECT: the sleeper stays connected");
        check(stats.connections == 2 && subscribers(server, "feed") == 2,
              "skip: 2 connections, 2 subscribers of feed (%llu, %zu)", (unsigned long long)stats.connections,
              subscribers(server, "feed"));
        /* What the sleeper did get, in order: exactly the publishes that reached 2. */
        size_t expected = 0, wrong = 0, got = 0;
        ws_frame f;
        while (got < sent - missed && ws_read_frame(sleeper, &f) == 0) {
            while (expected < sent && reached[expected] != 2) expected++;
            wrong += !(f.opcode == WS_OP_BINARY && f.len == SLOW_MESSAGE && seq_of(f.payload) == expected);
            expected++;
            got++;
            ws_frame_free(&f);
        }
        check(got == sent - missed && wrong == 0,
              "skip: the sleeper, reading at last, gets the %zu publishes that reached it, in order (%zu, %zu wrong)",
              sent - missed, got, wrong);
        size_t n = SENTINEL;
        check_status(roost_server_publish_text(server, TOPIC("feed"), BYTES("caught up"), 9, ROOST_NO_CONNECTION, &n),
                     ROOST_OK, "skip: publish once the sleeper caught up");
        check(n == 2, "skip: it reached both (got %zu)", n);
        expect_frame(sleeper, WS_OP_TEXT, "caught up", 9, "skip: the sleeper reads it");
    } else {
        size_t after = 0;
        for (size_t i = first_miss; i < sent; i++) after += reached[i] == 1;
        check(first_miss < sent && after == sent - first_miss,
              "close: every publish reached 2 until the sleeper was closed, then 1 (first miss %zu of %zu)",
              first_miss, sent);
        if (check(pump_wait(&pump, ROOST_EVENT_DISCONNECT, sleeper_id, EVENT_TIMEOUT_MS, &ev) == 0,
                  "close: DISCONNECT for the sleeper")) {
            check(ev.close_code == 1008, "close: its code is 1008 (got %u)", ev.close_code);
            test_event_free(&ev);
        }
        stats = stats_of(server, "close, after the DISCONNECT");
        check(stats.slow_consumers_closed == 1, "close: stats.slow_consumers_closed is 1 (got %llu)",
              (unsigned long long)stats.slow_consumers_closed);
        check(stats.deliveries_skipped == 0, "close: stats.deliveries_skipped is 0 (got %llu)",
              (unsigned long long)stats.deliveries_skipped);
        check(stats.connections == 1 && subscribers(server, "feed") == 1,
              "close: 1 connection, 1 subscriber of feed left (%llu, %zu)", (unsigned long long)stats.connections,
              subscribers(server, "feed"));
    }

out:
    free(reached);
    pump_free(&pump);
    if (r.fd >= 0) close(r.fd);
    if (sleeper >= 0) close(sleeper);
    check_status(roost_server_free(server), ROOST_OK, "%s: roost_server_free", label);
}

int main(void) {
    install_watchdog(30, PROGRAM);
    setvbuf(stdout, NULL, _IOLBF, 0);

    subscribe_and_publish();
    bad_arguments();
    two_threads();
    slow_consumer(ROOST_SLOW_CONSUMER_SKIP);
    slow_consumer(ROOST_SLOW_CONSUMER_CLOSE);
    return check_summary(PROGRAM);
}

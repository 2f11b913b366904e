/*
 * Drives roost.h end to end from C, with this program as its own WebSocket client over
 * raw TCP sockets (ws_client.c): options, server, routes /ws and /chat, start on
 * 127.0.0.1 port 0, the handshake by hand, masked frames in, events out through the
 * ready descriptor, replies, broadcasts, a close from each side, and a graceful stop
 * whose close handshake a client thread answers.
 */
#define _POSIX_C_SOURCE 200809L

#include "roost.h"

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "ws_client.h"

#define PROGRAM "api_end_to_end"
#define EVENT_TIMEOUT_MS 5000
#define SOCKET_TIMEOUT_MS 5000

#define BYTES(s) ((const uint8_t *)(s))

static int fd_readable(int fd, int timeout_ms) {
    struct pollfd pfd;
    pfd.fd = fd;
    pfd.events = POLLIN;
    pfd.revents = 0;
    return poll(&pfd, 1, timeout_ms) > 0 && (pfd.revents & POLLIN);
}

static int is_uuid4(const char *s, size_t len) {
    if (len != 36) return 0;
    for (size_t i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return 0;
        }
    }
    return s[14] == '4';
}

/* Connects and upgrades a client on `target`; checks the 101 response. Returns the
 * socket or -1. */
static int open_client(uint16_t port, const char *target, const char *extra_headers, const char *label) {
    int fd = ws_connect(port, SOCKET_TIMEOUT_MS);
    if (!check(fd >= 0, "%s: TCP connect to 127.0.0.1:%u", label, port)) return -1;
    char response[WS_RESPONSE_MAX];
    int status = ws_handshake(fd, target, extra_headers, response, sizeof response);
    char accept[128] = "";
    ws_response_header(response, "Sec-WebSocket-Accept", accept, sizeof accept);
    int ok = check(status == 101, "%s: GET %s answered 101 (got %d)", label, target, status);
    ok = check(strcmp(accept, WS_SAMPLE_ACCEPT) == 0, "%s: Sec-WebSocket-Accept is %s (got \"%s\")",
               label, WS_SAMPLE_ACCEPT, accept) && ok;
    if (!ok) {
        printf("     response was:\n%s\n", response);
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads one frame and checks it is an unmasked, final data frame with `opcode` and
 * `payload`. */
static void expect_frame(int fd, int opcode, const void *payload, size_t len, const char *label) {
    ws_frame frame;
    if (!check(ws_read_frame(fd, &frame) == 0, "%s: a frame arrives", label)) return;
    int ok = frame.fin && !frame.masked && frame.rsv == 0 && frame.opcode == opcode &&
             frame.len == len && (len == 0 || memcmp(frame.payload, payload, len) == 0);
    check(ok, "%s: FIN, unmasked, opcode 0x%x, %zu bytes as sent (got fin=%d masked=%d opcode=0x%x len=%zu)",
          label, opcode, len, frame.fin, frame.masked, frame.opcode, frame.len);
    ws_frame_free(&frame);
}

/* The client of the graceful stop: answers the server's close frame. */
struct stop_client {
    int fd;
    int got_close;
    uint16_t code;
    char reason[128];
    int replied;
    int eof;
};

static void *stop_client_main(void *arg) {
    struct stop_client *c = arg;
    ws_frame frame;
    while (ws_read_frame(c->fd, &frame) == 0) {
        if (frame.opcode == WS_OP_CLOSE) {
            c->got_close = 1;
            c->code = ws_close_code(&frame);
            snprintf(c->reason, sizeof c->reason, "%s", ws_close_reason(&frame));
            c->replied = ws_send_close(c->fd, c->code, "") == 0;
            ws_frame_free(&frame);
            c->eof = ws_wait_eof(c->fd) == 0;
            return NULL;
        }
        ws_frame_free(&frame);
    }
    return NULL;
}

int main(void) {
    install_watchdog(30, PROGRAM);
    setvbuf(stdout, NULL, _IOLBF, 0);

    const char *version = roost_version();
    check(version != NULL && version[0] != '\0', "roost_version() is \"%s\"", version ? version : "");

    /* ---- options, server, routes, start -------------------------------------- */
    roost_options options;
    memset(&options, 0xAB, sizeof options);
    check_status(ROOST_OPTIONS_INIT(&options), ROOST_OK, "roost_options_init");
    check(options.size == sizeof options && options.max_message_size == 1048576 && options.max_frame_size == 0 &&
              options.inbound_queue_depth == 16 && options.read_buffer_size == 4096 &&
              options.outbound_queue_bytes == 1048576 && options.write_buffer_size == 16384 &&
              options.ping_interval_ms == 20000 && options.ping_timeout_ms == 20000 &&
              options.handshake_timeout_ms == 10000 && options.close_timeout_ms == 5000 &&
              options.max_connections == 100000 && options.max_pending_handshakes == 10000 &&
              options.worker_threads == 1,
          "roost_options_init writes the documented defaults");
    options.ping_interval_ms = 0; /* no pings to skip in the raw client */
    options.max_message_size = 64 * 1024;
    options.close_timeout_ms = 2000;
    options.handshake_timeout_ms = 5000;
    options.worker_threads = 2;

    roost_server *server = NULL;
    if (!check_status(roost_server_new(&options, &server), ROOST_OK, "roost_server_new(changed options)") ||
        server == NULL)
        return check_summary(PROGRAM);

    uint32_t ws_route = 99, chat_route = 99;
    check_status(roost_server_add_route(server, BYTES("/ws"), 3, &ws_route), ROOST_OK,
                 "roost_server_add_route(\"/ws\")");
    check(ws_route == 0, "route /ws has id 0 (got %u)", ws_route);
    check_status(roost_server_add_route(server, BYTES("/chat"), 5, &chat_route), ROOST_OK,
                 "roost_server_add_route(\"/chat\")");
    check(chat_route == 1, "route /chat has id 1 (got %u)", chat_route);

    uint16_t port = 0;
    if (!check_status(roost_server_start(server, BYTES("127.0.0.1"), 9, 0, &port), ROOST_OK,
                      "roost_server_start(127.0.0.1, port 0)")) {
        roost_server_free(server);
        return check_summary(PROGRAM);
    }
    check(port != 0, "the bound port is written (%u)", port);

    int ready_fd = -1;
    check_status(roost_server_ready_fd(server, &ready_fd), ROOST_OK, "roost_server_ready_fd");
    check(ready_fd >= 0, "the ready descriptor is valid (%d)", ready_fd);

    int a = -1, b = -1, c = -1, d = -1;
    event_pump pump;
    pump_init(&pump, server, ready_fd, 4);
    check(pump_drain(&pump) == 0, "a fresh server polls no events");
    check(!fd_readable(ready_fd, 0), "after the empty poll the ready descriptor is not readable");

    size_t count = 99;
    check_status(roost_server_connection_count(server, &count), ROOST_OK, "roost_server_connection_count");
    check(count == 0, "no connections yet (got %zu)", count);

    /* ---- client A on /ws: handshake, a text message, CONNECT and TEXT events ---- */
    a = open_client(port, "/ws?room=lobby&x=1", "X-Roost-Test: hello\r\n", "client A");
    if (a < 0) goto out;
    const char *hello = "hello roost";
    check(ws_send_frame(a, 1, WS_OP_TEXT, hello, strlen(hello)) == 0, "client A sends a masked text frame");
    check(fd_readable(ready_fd, EVENT_TIMEOUT_MS), "the ready descriptor becomes readable");

    test_event ev;
    uint64_t conn_a = 0;
    if (check(pump_wait(&pump, ROOST_EVENT_CONNECT, 0, EVENT_TIMEOUT_MS, &ev) == 0, "CONNECT event for client A")) {
        conn_a = ev.connection;
        check(ev.connection != 0, "CONNECT has a connection id (%llu)", (unsigned long long)ev.connection);
        check(ev.route == ws_route, "CONNECT route is /ws (%u)", ev.route);
        check(strcmp(ev.path, "/ws") == 0 && ev.path_len == 3, "CONNECT path is \"/ws\" (got \"%s\")", ev.path);
        check(strcmp(ev.query, "room=lobby&x=1") == 0, "CONNECT query is \"room=lobby&x=1\" (got \"%s\")",
              ev.query);
        const char *h = test_event_header(&ev, "x-roost-test");
        check(h != NULL && strcmp(h, "hello") == 0, "CONNECT header X-Roost-Test is \"hello\" (got \"%s\")",
              h ? h : "(missing)");
        h = test_event_header(&ev, "Sec-WebSocket-Key");
        check(h != NULL && strcmp(h, WS_SAMPLE_KEY) == 0, "CONNECT carries the Sec-WebSocket-Key header");
        check(ev.header_count >= 6 && strcmp(ev.header_names[0], "Host") == 0,
              "CONNECT headers come in the order sent (%zu headers, first \"%s\")", ev.header_count,
              ev.header_count ? ev.header_names[0] : "");
        check(ev.uuid_len == 36, "CONNECT uuid has length 36 (got %zu)", ev.uuid_len);
        check(is_uuid4(ev.uuid, ev.uuid_len), "CONNECT uuid is a canonical UUID4 (\"%s\")", ev.uuid);
        check(strncmp(ev.peer, "127.0.0.1:", 10) == 0, "CONNECT peer is 127.0.0.1:port (\"%s\")", ev.peer);
        test_event_free(&ev);
    }
    if (check(pump_wait(&pump, ROOST_EVENT_TEXT, conn_a, EVENT_TIMEOUT_MS, &ev) == 0, "TEXT event from client A")) {
        check(ev.data_len == strlen(hello) && memcmp(ev.data, hello, ev.data_len) == 0,
              "TEXT data is \"%s\" (got \"%s\")", hello, ev.data);
        check(ev.route == ws_route, "TEXT route is /ws");
        test_event_free(&ev);
    }
    check_status(roost_server_connection_count(server, &count), ROOST_OK, "roost_server_connection_count");
    check(count == 1, "one connection (got %zu)", count);

    /* ---- replies ------------------------------------------------------------- */
    const char *reply = "hi from C";
    check_status(roost_connection_send_text(server, conn_a, BYTES(reply), strlen(reply)), ROOST_OK,
                 "roost_connection_send_text to client A");
    expect_frame(a, WS_OP_TEXT, reply, strlen(reply), "client A reads the reply");

    const uint8_t blob[] = {0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff};
    check_status(roost_connection_send_binary(server, conn_a, blob, sizeof blob), ROOST_OK,
                 "roost_connection_send_binary to client A");
    expect_frame(a, WS_OP_BINARY, blob, sizeof blob, "client A reads the binary reply");

    /* A 70000-byte reply needs the 64-bit length form. */
    size_t big_len = 70000;
    uint8_t *big = malloc(big_len);
    if (big != NULL) {
        for (size_t i = 0; i < big_len; i++) big[i] = (uint8_t)('a' + i % 26);
        check_status(roost_connection_send_text(server, conn_a, big, big_len), ROOST_OK,
                     "roost_connection_send_text of %zu bytes", big_len);
        expect_frame(a, WS_OP_TEXT, big, big_len, "client A reads the large reply");
        free(big);
    }

    /* A fragmented text message and a binary one arrive whole, in order. */
    check(ws_send_frame(a, 0, WS_OP_TEXT, "frag", 4) == 0 && ws_send_frame(a, 1, WS_OP_CONT, "mented", 6) == 0,
          "client A sends a text message in two fragments");
    check(ws_send_frame(a, 1, WS_OP_BINARY, blob, sizeof blob) == 0, "client A sends a binary frame");
    if (check(pump_wait(&pump, ROOST_EVENT_TEXT, conn_a, EVENT_TIMEOUT_MS, &ev) == 0, "TEXT event for the fragments")) {
        check(ev.data_len == 10 && memcmp(ev.data, "fragmented", 10) == 0,
              "the fragments are joined (\"%s\")", ev.data);
        test_event_free(&ev);
    }
    if (check(pump_wait(&pump, ROOST_EVENT_BINARY, conn_a, EVENT_TIMEOUT_MS, &ev) == 0, "BINARY event from client A")) {
        check(ev.data_len == sizeof blob && memcmp(ev.data, blob, sizeof blob) == 0, "BINARY data as sent");
        test_event_free(&ev);
    }

    /* ---- clients B and C on /chat; broadcasts --------------------------------- */
    b = open_client(port, "/chat", NULL, "client B");
    c = open_client(port, "/chat", NULL, "client C");
    if (b < 0 || c < 0) goto out;
    uint64_t conn_b = 0, conn_c = 0;
    for (int i = 0; i < 2; i++) {
        if (check(pump_wait(&pump, ROOST_EVENT_CONNECT, 0, EVENT_TIMEOUT_MS, &ev) == 0,
                  "CONNECT event %d on /chat", i + 1)) {
            check(ev.route == chat_route && strcmp(ev.path, "/chat") == 0 && ev.query_len == 0,
                  "CONNECT route /chat, path \"/chat\", empty query (route %u, \"%s\", \"%s\")", ev.route,
                  ev.path, ev.query);
            if (i == 0) conn_b = ev.connection; else conn_c = ev.connection;
            test_event_free(&ev);
        }
    }
    /* Which CONNECT is B's: B sends a message, its TEXT names its id. */
    check(ws_send_frame(b, 1, WS_OP_TEXT, "I am B", 6) == 0, "client B sends a text frame");
    if (check(pump_wait(&pump, ROOST_EVENT_TEXT, 0, EVENT_TIMEOUT_MS, &ev) == 0, "TEXT event from client B")) {
        check(ev.data_len == 6 && memcmp(ev.data, "I am B", 6) == 0 && ev.route == chat_route,
              "TEXT from B on /chat");
        if (ev.connection == conn_c) {
            conn_c = conn_b;
            conn_b = ev.connection;
        }
        check(ev.connection == conn_b, "B's TEXT names one of the /chat connections");
        test_event_free(&ev);
    }
    check(conn_a != conn_b && conn_b != conn_c && conn_a != conn_c, "connection ids are distinct");
    check_status(roost_server_connection_count(server, &count), ROOST_OK, "roost_server_connection_count");
    check(count == 3, "three connections (got %zu)", count);

    const char *news = "news for /chat";
    size_t recipients = 99;
    check_status(roost_server_broadcast_text(server, chat_route, BYTES(news), strlen(news), &recipients), ROOST_OK,
                 "roost_server_broadcast_text to /chat");
    check(recipients == 2, "the broadcast reached 2 recipients (got %zu)", recipients);
    expect_frame(b, WS_OP_TEXT, news, strlen(news), "client B reads the broadcast");
    expect_frame(c, WS_OP_TEXT, news, strlen(news), "client C reads the broadcast");

    const char *ws_news = "news for /ws";
    recipients = 99;
    check_status(roost_server_broadcast_text(server, ws_route, BYTES(ws_news), strlen(ws_news), &recipients),
                 ROOST_OK, "roost_server_broadcast_text to /ws");
    check(recipients == 1, "the broadcast reached 1 recipient (got %zu)", recipients);
    expect_frame(a, WS_OP_TEXT, ws_news, strlen(ws_news), "client A reads the /ws broadcast");

    recipients = 99;
    check_status(roost_server_broadcast_binary(server, chat_route, blob, sizeof blob, &recipients), ROOST_OK,
                 "roost_server_broadcast_binary to /chat");
    check(recipients == 2, "the binary broadcast reached 2 recipients (got %zu)", recipients);
    expect_frame(b, WS_OP_BINARY, blob, sizeof blob, "client B reads the binary broadcast");
    expect_frame(c, WS_OP_BINARY, blob, sizeof blob, "client C reads the binary broadcast");
    check_status(roost_server_broadcast_text(server, chat_route, BYTES(news), strlen(news), NULL), ROOST_OK,
                 "roost_server_broadcast_text with NULL out_recipients");
    expect_frame(b, WS_OP_TEXT, news, strlen(news), "client B reads that broadcast");
    expect_frame(c, WS_OP_TEXT, news, strlen(news), "client C reads that broadcast");

    /* ---- client D on /ws: pause_reading, then WOULD_BLOCK and WRITABLE -------- */
    d = open_client(port, "/ws", NULL, "client D");
    if (d < 0) goto out;
    uint64_t conn_d = 0;
    if (check(pump_wait(&pump, ROOST_EVENT_CONNECT, 0, EVENT_TIMEOUT_MS, &ev) == 0, "CONNECT event for client D")) {
        conn_d = ev.connection;
        test_event_free(&ev);
    }
    check_status(roost_connection_pause_reading(server, conn_d, true), ROOST_OK, "pause_reading(D, true)");
    check(ws_send_frame(d, 1, WS_OP_TEXT, "while paused", 12) == 0, "client D sends a text frame");
    check(pump_wait(&pump, ROOST_EVENT_TEXT, conn_d, 300, &ev) != 0, "no TEXT event from D while paused (300 ms)");
    check_status(roost_connection_pause_reading(server, conn_d, false), ROOST_OK, "pause_reading(D, false)");
    if (check(pump_wait(&pump, ROOST_EVENT_TEXT, conn_d, EVENT_TIMEOUT_MS, &ev) == 0,
              "the TEXT event arrives once reading resumes")) {
        check(ev.data_len == 12 && memcmp(ev.data, "while paused", 12) == 0, "it is \"while paused\"");
        test_event_free(&ev);
    }

    /* D does not read: sends queue up until the outbound limit gives WOULD_BLOCK. */
    size_t chunk = 64 * 1024;
    uint8_t *payload = malloc(chunk);
    if (payload != NULL) {
        for (size_t i = 0; i < chunk; i++) payload[i] = (uint8_t)(i * 7 + 3);
        /* WOULD_BLOCK comes first when this loop outruns the core's writes; it stays
         * once the socket buffers are full too. Saturated: refused for 300 ms. */
        size_t queued = 0, refused = 0;
        int64_t refused_since = -1;
        roost_status st = ROOST_OK;
        while (queued < 4000) {
            st = roost_connection_send_binary(server, conn_d, payload, chunk);
            if (st == ROOST_OK) {
                queued++;
                refused_since = -1;
                continue;
            }
            if (st != ROOST_WOULD_BLOCK) break;
            refused++;
            if (refused_since < 0) refused_since = now_ms();
            else if (now_ms() - refused_since >= 300) break;
            sleep_ms(10);
        }
        check_status(st, ROOST_WOULD_BLOCK,
                     "send_binary to a client that does not read: WOULD_BLOCK after %zu x 64 KiB (%zu refused)",
                     queued, refused);
        check_status(roost_connection_send_binary(server, conn_d, payload, chunk), ROOST_WOULD_BLOCK,
                     "send_binary again while the queue is over its limit");
        /* WRITABLE events of the transient refusals are not the one under test. */
        pump_drain(&pump);
        size_t early = pump_discard(&pump, ROOST_EVENT_WRITABLE, conn_d);
        printf("     (%zu WRITABLE events from transient refusals)\n", early);
        size_t frames = 0, intact = 0;
        ws_frame f;
        while (frames < queued && ws_read_frame(d, &f) == 0) {
            frames++;
            intact += f.opcode == WS_OP_BINARY && f.fin && f.len == chunk && memcmp(f.payload, payload, chunk) == 0;
            ws_frame_free(&f);
        }
        check(frames == queued && intact == queued, "client D reads the %zu queued messages intact (%zu read, %zu intact)",
              queued, frames, intact);
        if (check(pump_wait(&pump, ROOST_EVENT_WRITABLE, conn_d, EVENT_TIMEOUT_MS, &ev) == 0,
                  "WRITABLE event for D once its queue drained")) {
            check(ev.connection == conn_d && ev.data_len == 0, "WRITABLE names D and carries no data");
            test_event_free(&ev);
        }
        free(payload);
    }
    check_status(roost_connection_send_text(server, conn_d, BYTES("again"), 5), ROOST_OK,
                 "send_text to D after WRITABLE");
    expect_frame(d, WS_OP_TEXT, "again", 5, "client D reads it");
    check(ws_send_close(d, 1000, "") == 0, "client D closes with 1000");
    ws_frame frame;
    if (check(ws_read_frame(d, &frame) == 0, "client D reads the close reply")) {
        check(frame.opcode == WS_OP_CLOSE && ws_close_code(&frame) == 1000, "close reply 1000 (opcode 0x%x, code %u)",
              frame.opcode, ws_close_code(&frame));
        ws_frame_free(&frame);
    }
    if (check(pump_wait(&pump, ROOST_EVENT_DISCONNECT, conn_d, EVENT_TIMEOUT_MS, &ev) == 0, "DISCONNECT event for D")) {
        check(ev.close_code == 1000 && ev.data_len == 0, "DISCONNECT 1000 with no reason (code %u)", ev.close_code);
        test_event_free(&ev);
    }
    close(d);
    d = -1;

    /* ---- the server closes A with 4001 --------------------------------------- */
    const char *bye = "bye from server";
    check_status(roost_connection_close(server, conn_a, 4001, BYTES(bye), strlen(bye)), ROOST_OK,
                 "roost_connection_close(A, 4001, \"%s\")", bye);
    if (check(ws_read_frame(a, &frame) == 0, "client A reads a frame after the close")) {
        check(frame.opcode == WS_OP_CLOSE && frame.fin && !frame.masked, "it is an unmasked close frame (opcode 0x%x)",
              frame.opcode);
        check(ws_close_code(&frame) == 4001, "close frame code is 4001 (got %u)", ws_close_code(&frame));
        check(strcmp(ws_close_reason(&frame), bye) == 0, "close frame reason is \"%s\" (got \"%s\")", bye,
              ws_close_reason(&frame));
        ws_frame_free(&frame);
    }
    check(ws_send_close(a, 4001, "") == 0, "client A answers the close");
    check(ws_wait_eof(a) == 0, "the server then closes A's TCP connection");
    if (check(pump_wait(&pump, ROOST_EVENT_DISCONNECT, conn_a, EVENT_TIMEOUT_MS, &ev) == 0, "DISCONNECT event for A")) {
        check(ev.close_code == 4001, "DISCONNECT code is 4001 (got %u)", ev.close_code);
        check(strcmp(ev.data, bye) == 0, "DISCONNECT reason is \"%s\" (got \"%s\")", bye, ev.data);
        check(ev.route == ws_route, "DISCONNECT route is /ws");
        test_event_free(&ev);
    }
    check_status(roost_connection_send_text(server, conn_a, BYTES("late"), 4), ROOST_NOT_FOUND,
                 "send to A after its DISCONNECT");
    close(a);
    a = -1;

    /* ---- B closes from its side with 1000 ------------------------------------ */
    check(ws_send_close(b, 1000, "client done") == 0, "client B sends close 1000 \"client done\"");
    if (check(ws_read_frame(b, &frame) == 0, "client B reads the server's close reply")) {
        check(frame.opcode == WS_OP_CLOSE && ws_close_code(&frame) == 1000,
              "the reply is a close frame with 1000 (opcode 0x%x, code %u)", frame.opcode, ws_close_code(&frame));
        ws_frame_free(&frame);
    }
    check(ws_wait_eof(b) == 0, "the server then closes B's TCP connection");
    if (check(pump_wait(&pump, ROOST_EVENT_DISCONNECT, conn_b, EVENT_TIMEOUT_MS, &ev) == 0, "DISCONNECT event for B")) {
        check(ev.close_code == 1000, "DISCONNECT code is 1000 (got %u)", ev.close_code);
        check(strcmp(ev.data, "client done") == 0, "DISCONNECT reason is \"client done\" (got \"%s\")", ev.data);
        check(ev.route == chat_route, "DISCONNECT route is /chat");
        test_event_free(&ev);
    }
    close(b);
    b = -1;
    check_status(roost_server_connection_count(server, &count), ROOST_OK, "roost_server_connection_count");
    check(count == 1, "one connection left (got %zu)", count);
    recipients = 99;
    check_status(roost_server_broadcast_text(server, chat_route, BYTES(news), strlen(news), &recipients), ROOST_OK,
                 "roost_server_broadcast_text to /chat after B left");
    check(recipients == 1, "it reached 1 recipient (got %zu)", recipients);
    expect_frame(c, WS_OP_TEXT, news, strlen(news), "client C reads it");

    /* ---- graceful stop: C answers the 1001 close from a thread ----------------- */
    struct stop_client sc;
    memset(&sc, 0, sizeof sc);
    sc.fd = c;
    pthread_t thread;
    int started = pthread_create(&thread, NULL, stop_client_main, &sc) == 0;
    check(started, "client C's thread started");
    int64_t t0 = now_ms();
    check_status(roost_server_stop(server, 5000), ROOST_OK, "roost_server_stop(5000)");
    int64_t took = now_ms() - t0;
    check(took < 4000, "stop returned once the close handshake ended (%lld ms)", (long long)took);
    if (started) pthread_join(thread, NULL);
    check(sc.got_close && sc.code == 1001, "client C got close 1001 (code %u, reason \"%s\")", sc.code, sc.reason);
    check(sc.replied && sc.eof, "client C answered and saw the TCP connection end");
    if (check(pump_wait(&pump, ROOST_EVENT_DISCONNECT, conn_c, EVENT_TIMEOUT_MS, &ev) == 0,
              "DISCONNECT event for C is polled after stop")) {
        check(ev.close_code == 1001, "DISCONNECT code is 1001 (got %u)", ev.close_code);
        test_event_free(&ev);
    }
    check(pump_drain(&pump) == 0 && pump.len == 0, "no event is left over (%zu queued)", pump.len);
    check_status(roost_server_connection_count(server, &count), ROOST_OK, "roost_server_connection_count");
    check(count == 0, "no connections after stop (got %zu)", count);
    check_status(roost_connection_send_text(server, conn_c, BYTES("x"), 1), ROOST_CLOSED, "send after stop");
    check_status(roost_server_broadcast_text(server, chat_route, BYTES("x"), 1, NULL), ROOST_CLOSED,
                 "broadcast after stop");

out:
    check(pump.contract_violations == 0, "every polled event kept roost.h's pointer contract (%zu polls, %zu empty)",
          pump.polls, pump.empty_polls);
    pump_free(&pump);
    if (a >= 0) close(a);
    if (b >= 0) close(b);
    if (c >= 0) close(c);
    if (d >= 0) close(d);
    check_status(roost_server_stop(server, 0), ROOST_OK, "roost_server_stop again does nothing");
    check_status(roost_server_free(server), ROOST_OK, "roost_server_free");
    return check_summary(PROGRAM);
}

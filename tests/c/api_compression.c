/*
 * permessage-deflate through roost.h: the defaults of roost_options.compression and
 * compression_min_size, an invalid mode refused by roost_server_new, the answer to a
 * client that offers the extension and to one that does not, and a broadcast that
 * reaches the first compressed (RSV1 set, fewer bytes) and the second plain.
 */
#define _POSIX_C_SOURCE 200809L

#include "roost.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "ws_client.h"

#define PROGRAM "api_compression"
#define EVENT_TIMEOUT_MS 5000
#define SOCKET_TIMEOUT_MS 5000
#define BYTES(s) ((const uint8_t *)(s))

/* Upgrades a client on /ws with `extra_headers`, waits for its CONNECT and writes the
 * answer's Sec-WebSocket-Extensions ("" when absent) into `extensions`. */
static int open_client(event_pump *pump, uint16_t port, const char *extra_headers, char *extensions,
                       size_t cap, const char *label) {
    int fd = ws_connect(port, SOCKET_TIMEOUT_MS);
    if (!check(fd >= 0, "%s: TCP connect", label)) return -1;
    char response[WS_RESPONSE_MAX];
    int status = ws_handshake(fd, "/ws", extra_headers, response, sizeof response);
    extensions[0] = '\0';
    ws_response_header(response, "Sec-WebSocket-Extensions", extensions, cap);
    test_event event;
    int connected = pump_wait(pump, ROOST_EVENT_CONNECT, 0, EVENT_TIMEOUT_MS, &event) == 0;
    if (connected) test_event_free(&event);
    if (!check(status == 101 && connected, "%s: upgraded and connected (status %d)", label, status)) {
        close(fd);
        return -1;
    }
    return fd;
}

int main(void) {
    install_watchdog(30, PROGRAM);
    setvbuf(stdout, NULL, _IOLBF, 0);

    roost_options options;
    check_status(ROOST_OPTIONS_INIT(&options), ROOST_OK, "roost_options_init");
    check(options.compression == ROOST_COMPRESSION_OFF && options.compression_min_size == 256,
          "compression is off by default, from 256 bytes when on");

    roost_server *server = NULL;
    options.compression = 7;
    check_status(roost_server_new(&options, &server), ROOST_INVALID_ARGUMENT, "roost_server_new(compression 7)");
    check(server == NULL, "a refused server is not written");

    options.compression = ROOST_COMPRESSION_DEFLATE;
    options.compression_min_size = 100;
    options.ping_interval_ms = 0;
    if (!check_status(roost_server_new(&options, &server), ROOST_OK, "roost_server_new(deflate)"))
        return check_summary(PROGRAM);
    uint32_t route = 99;
    check_status(roost_server_add_route(server, BYTES("/ws"), 3, &route), ROOST_OK, "add /ws");
    uint16_t port = 0;
    check_status(roost_server_start(server, BYTES("127.0.0.1"), 9, 0, &port), ROOST_OK, "start");
    int ready_fd = -1;
    check_status(roost_server_ready_fd(server, &ready_fd), ROOST_OK, "ready fd");
    event_pump pump;
    pump_init(&pump, server, ready_fd, 8);

    char extensions[256];
    int deflating = open_client(&pump, port, "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
                                extensions, sizeof extensions, "deflating client");
    check(strcmp(extensions, "permessage-deflate; server_no_context_takeover; client_no_context_takeover") == 0,
          "the offer is accepted without context takeover (got \"%s\")", extensions);
    int plain = open_client(&pump, port, NULL, extensions, sizeof extensions, "plain client");
    check(extensions[0] == '\0', "a client that offers nothing gets no extension (got \"%s\")", extensions);

    char message[1000];
    for (size_t i = 0; i < sizeof message; i++) message[i] = "roost "[i % 6];
    size_t recipients = 0;
    check_status(roost_server_broadcast_text(server, route, BYTES(message), sizeof message, &recipients), ROOST_OK,
                 "broadcast");
    check(recipients == 2, "both clients receive the broadcast (%zu)", recipients);
    ws_frame frame;
    if (deflating >= 0 && check(ws_read_frame(deflating, &frame) == 0, "the deflating client reads a frame")) {
        check(frame.opcode == WS_OP_TEXT && frame.rsv == 4 && frame.len < sizeof message / 4,
              "it is compressed: RSV1, %zu bytes for %zu", frame.len, sizeof message);
        ws_frame_free(&frame);
    }
    if (plain >= 0 && check(ws_read_frame(plain, &frame) == 0, "the plain client reads a frame")) {
        check(frame.opcode == WS_OP_TEXT && frame.rsv == 0 && frame.len == sizeof message &&
                  memcmp(frame.payload, message, sizeof message) == 0,
              "it is the plain message");
        ws_frame_free(&frame);
    }
    /* Below compression_min_size a message goes out plain to both. */
    check_status(roost_server_broadcast_text(server, route, BYTES(message), 99, &recipients), ROOST_OK,
                 "small broadcast");
    if (deflating >= 0 && check(ws_read_frame(deflating, &frame) == 0, "the deflating client reads a frame")) {
        check(frame.rsv == 0 && frame.len == 99, "a message under the minimum size is not compressed");
        ws_frame_free(&frame);
    }

    if (deflating >= 0) close(deflating);
    if (plain >= 0) close(plain);
    check_status(roost_server_stop(server, 2000), ROOST_OK, "stop");
    pump_free(&pump);
    roost_server_free(server);

    /* A compressor per connection: the second copy of a message refers to the first. */
    options.compression = ROOST_COMPRESSION_DEFLATE_PER_CONNECTION;
    server = NULL;
    if (!check_status(roost_server_new(&options, &server), ROOST_OK, "roost_server_new(deflate per connection)"))
        return check_summary(PROGRAM);
    check_status(roost_server_add_route(server, BYTES("/ws"), 3, &route), ROOST_OK, "add /ws");
    check_status(roost_server_start(server, BYTES("127.0.0.1"), 9, 0, &port), ROOST_OK, "start");
    check_status(roost_server_ready_fd(server, &ready_fd), ROOST_OK, "ready fd");
    pump_init(&pump, server, ready_fd, 8);
    deflating = open_client(&pump, port, "Sec-WebSocket-Extensions: permessage-deflate\r\n", extensions,
                            sizeof extensions, "client of a server with context takeover");
    check(strcmp(extensions, "permessage-deflate; client_no_context_takeover") == 0,
          "the server keeps its context (got \"%s\")", extensions);
    /* Letters that deflate alone shrinks little. */
    uint32_t state = 2463534242u;
    for (size_t i = 0; i < sizeof message; i++) {
        state ^= state << 13, state ^= state >> 17, state ^= state << 5;
        message[i] = (char)('a' + state % 26);
    }
    size_t sizes[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        check_status(roost_server_broadcast_text(server, route, BYTES(message), sizeof message, &recipients),
                     ROOST_OK, "broadcast");
        if (deflating >= 0 && check(ws_read_frame(deflating, &frame) == 0, "the client reads a frame")) {
            check(frame.rsv == 4, "it is compressed");
            sizes[i] = frame.len;
            ws_frame_free(&frame);
        }
    }
    check(sizes[1] > 0 && sizes[1] * 4 < sizes[0], "the repeat costs %zu bytes, the first %zu", sizes[1],
          sizes[0]);
    if (deflating >= 0) close(deflating);
    check_status(roost_server_stop(server, 2000), ROOST_OK, "stop");
    pump_free(&pump);
    roost_server_free(server);
    return check_summary(PROGRAM);
}

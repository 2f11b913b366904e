/*
 * The HTTP side of roost.h from C, with raw TCP clients: an HTTP route's REQUEST event
 * (method, path, query, headers, body) answered with roost_request_respond, an answer
 * that injects a header refused, a late answer NOT_FOUND, the health path, a vetted
 * upgrade accepted (CONNECT with the request's id) and one refused with the program's
 * own status and body, and the http_requests counter.
 */
#define _POSIX_C_SOURCE 200809L

#include "roost.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "ws_client.h"

#define PROGRAM "api_http"
#define EVENT_TIMEOUT_MS 5000
#define SOCKET_TIMEOUT_MS 5000

#define BYTES(s) ((const uint8_t *)(s))

static int send_all(int fd, const char *data) {
    size_t len = strlen(data);
    while (len > 0) {
        ssize_t n = send(fd, data, len, 0);
        if (n <= 0) return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads one response into `buf` (NUL-terminated): its head, then as many bytes as its
 * Content-Length says. Returns its status, or -1. */
static int read_response(int fd, char *buf, size_t cap) {
    size_t len = 0;
    char *end = NULL;
    while (end == NULL) {
        if (len + 1 >= cap) return -1;
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0) return -1;
        len += (size_t)n;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    size_t body = 0;
    const char *length = strstr(buf, "Content-Length: ");
    if (length != NULL && length < end) body = strtoul(length + strlen("Content-Length: "), NULL, 10);
    size_t total = (size_t)(end + 4 - buf) + body;
    while (len < total) {
        if (total >= cap) return -1;
        ssize_t n = recv(fd, buf + len, total - len, 0);
        if (n <= 0) return -1;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return atoi(buf + strlen("HTTP/1.1 "));
}

/* roost_request_respond with NUL-terminated header lines and body. */
static roost_status respond(roost_server *server, uint64_t request, uint16_t status, const char *headers,
                            const char *body) {
    return roost_request_respond(server, request, status, BYTES(headers), strlen(headers), BYTES(body),
                                 strlen(body));
}

static const char *body_of(const char *response) {
    const char *end = strstr(response, "\r\n\r\n");
    return end ? end + 4 : "";
}

static void request_and_answer(roost_server *server, event_pump *pump, uint16_t port, uint32_t route) {
    int fd = ws_connect(port, SOCKET_TIMEOUT_MS);
    check(fd >= 0, "connect for a request");
    send_all(fd, "POST /items?x=1 HTTP/1.1\r\nHost: c\r\nX-Test: yes\r\nContent-Length: 5\r\n\r\nhello");
    test_event request;
    if (!check(pump_wait(pump, ROOST_EVENT_REQUEST, 0, EVENT_TIMEOUT_MS, &request) == 0, "a REQUEST event")) return;
    check(request.route == route, "on the HTTP route (%u)", request.route);
    check(strcmp(request.method, "POST") == 0 && strcmp(request.path, "/items") == 0 &&
              strcmp(request.query, "x=1") == 0,
          "method, path and query: %s %s ? %s", request.method, request.path, request.query);
    check(request.data_len == 5 && memcmp(request.data, "hello", 5) == 0, "the body in data");
    const char *header = test_event_header(&request, "x-test");
    check(header != NULL && strcmp(header, "yes") == 0, "the request's headers");

    uint64_t id = request.connection;
    check_status(respond(server, id, 200, "X-A: 1\r\nContent-Length: 0\r\n", "x"), ROOST_INVALID_ARGUMENT,
                 "an answer that sets Content-Length");
    check_status(respond(server, id, 101, "", ""), ROOST_INVALID_ARGUMENT, "an answer with a 1xx status");
    check_status(respond(server, id, 201, "X-Made: yes\r\n", "made"), ROOST_OK, "the answer");
    check_status(respond(server, id, 200, "", ""), ROOST_NOT_FOUND, "a second answer");
    char response[4096];
    int status = read_response(fd, response, sizeof response);
    check(status == 201 && strstr(response, "X-Made: yes\r\n") && strcmp(body_of(response), "made") == 0,
          "the client reads the answer (%d)", status);

    send_all(fd, "GET /health HTTP/1.1\r\nHost: c\r\n\r\n");
    status = read_response(fd, response, sizeof response);
    check(status == 200 && strcmp(body_of(response), "ok\n") == 0, "the health path on the same connection");
    test_event_free(&request);
    close(fd);
}

static void vetted_upgrades(roost_server *server, event_pump *pump, uint16_t port, uint32_t ws) {
    char upgrade[512];
    snprintf(upgrade, sizeof upgrade,
             "GET /ws?token=1 HTTP/1.1\r\nHost: c\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
             WS_SAMPLE_KEY);
    char response[4096];

    int fd = ws_connect(port, SOCKET_TIMEOUT_MS);
    send_all(fd, upgrade);
    test_event asked;
    if (!check(pump_wait(pump, ROOST_EVENT_UPGRADE_REQUEST, 0, EVENT_TIMEOUT_MS, &asked) == 0,
               "an UPGRADE_REQUEST event"))
        return;
    check(asked.route == ws && strcmp(asked.method, "GET") == 0 && strcmp(asked.query, "token=1") == 0,
          "its route, method and query");
    check_status(roost_upgrade_accept(server, asked.connection), ROOST_OK, "accept");
    check(read_response(fd, response, sizeof response) == 101, "the client is upgraded");
    test_event connect;
    if (check(pump_wait(pump, ROOST_EVENT_CONNECT, asked.connection, EVENT_TIMEOUT_MS, &connect) == 0,
              "CONNECT with the id of the upgrade request (%llu)", (unsigned long long)asked.connection))
        test_event_free(&connect);
    test_event_free(&asked);
    close(fd);

    fd = ws_connect(port, SOCKET_TIMEOUT_MS);
    send_all(fd, upgrade);
    if (!check(pump_wait(pump, ROOST_EVENT_UPGRADE_REQUEST, 0, EVENT_TIMEOUT_MS, &asked) == 0,
               "a second UPGRADE_REQUEST"))
        return;
    check_status(respond(server, asked.connection, 200, "", ""), ROOST_INVALID_ARGUMENT,
                 "a 2xx does not refuse an upgrade");
    check_status(respond(server, asked.connection, 403, "", "no"), ROOST_OK, "refuse it");
    int status = read_response(fd, response, sizeof response);
    check(status == 403 && strcmp(body_of(response), "no") == 0, "the client reads the refusal (%d)", status);
    check(ws_wait_eof(fd) == 0, "and the connection is closed");
    check_status(roost_upgrade_accept(server, asked.connection), ROOST_NOT_FOUND, "a late accept");
    test_event_free(&asked);
    close(fd);
}

int main(void) {
    install_watchdog(30, PROGRAM);
    roost_options options;
    ROOST_OPTIONS_INIT(&options);
    options.ping_interval_ms = 0;
    options.health_path = BYTES("/health");
    options.health_path_len = strlen("/health");
    roost_server *server = NULL;
    check_status(roost_server_new(&options, &server), ROOST_OK, "server with a health path");
    uint32_t items = 0, ws = 0;
    check_status(roost_server_add_http_route(server, BYTES("POST"), 4, BYTES("/items"), 6, &items), ROOST_OK,
                 "HTTP route POST /items");
    check_status(roost_server_add_route(server, BYTES("/ws"), 3, &ws), ROOST_OK, "WebSocket route /ws");
    check(ws == items + 1, "route ids share one sequence (%u, %u)", items, ws);
    check_status(roost_server_route_vet_upgrades(server, ws, true), ROOST_OK, "vet /ws's upgrades");
    check_status(roost_server_route_vet_upgrades(server, items, true), ROOST_INVALID_ARGUMENT,
                 "an HTTP route has no upgrades to vet");
    uint16_t port = 0;
    check_status(roost_server_start(server, BYTES("127.0.0.1"), 9, 0, &port), ROOST_OK, "start");
    int fd = -1;
    roost_server_ready_fd(server, &fd);
    event_pump pump;
    pump_init(&pump, server, fd, 16);

    request_and_answer(server, &pump, port, items);
    vetted_upgrades(server, &pump, port, ws);

    roost_stats stats;
    check_status(ROOST_SERVER_STATS(server, &stats), ROOST_OK, "stats");
    check(stats.http_requests == 2, "two HTTP requests answered (%llu)", (unsigned long long)stats.http_requests);
    check(pump.contract_violations == 0, "every event kept roost.h's contract (%zu breaches)",
          pump.contract_violations);
    pump_free(&pump);
    check_status(roost_server_free(server), ROOST_OK, "free");
    return check_summary(PROGRAM);
}

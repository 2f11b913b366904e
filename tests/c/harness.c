#define _POSIX_C_SOURCE 200809L

#include "harness.h"
#include "ws_client.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int checks_run = 0;
static int checks_failed = 0;

static void vreport(int ok, const char *suffix, const char *fmt, va_list args) {
    checks_run++;
    if (!ok) checks_failed++;
    printf("%s %d - ", ok ? "ok  " : "FAIL", checks_run);
    vprintf(fmt, args);
    if (suffix != NULL) fputs(suffix, stdout);
    putchar('\n');
    fflush(stdout);
}

int check(int ok, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    vreport(ok, NULL, fmt, args);
    va_end(args);
    return ok;
}

int check_status(roost_status got, roost_status want, const char *fmt, ...) {
    char suffix[512];
    const char *message = roost_last_error();
    int ok = got == want;
    if (want != ROOST_OK) {
        int has_message = message != NULL && message[0] != '\0';
        ok = ok && has_message;
        snprintf(suffix, sizeof suffix, " -> %s (want %s; last error: \"%s\")", status_name(got),
                 status_name(want), message ? message : "(NULL)");
    } else if (got != ROOST_OK) {
        snprintf(suffix, sizeof suffix, " -> %s (want ROOST_OK; last error: \"%s\")",
                 status_name(got), message ? message : "(NULL)");
    } else {
        snprintf(suffix, sizeof suffix, " -> ROOST_OK");
    }
    va_list args;
    va_start(args, fmt);
    vreport(ok, suffix, fmt, args);
    va_end(args);
    return ok;
}

int check_summary(const char *program) {
    printf("%s: %d checks, %d failed\n", program, checks_run, checks_failed);
    fflush(stdout);
    return checks_failed == 0 && checks_run > 0 ? 0 : 1;
}

const char *status_name(roost_status status) {
    switch (status) {
    case ROOST_OK: return "ROOST_OK";
    case ROOST_WOULD_BLOCK: return "ROOST_WOULD_BLOCK";
    case ROOST_CLOSED: return "ROOST_CLOSED";
    case ROOST_NOT_FOUND: return "ROOST_NOT_FOUND";
    case ROOST_INVALID_ARGUMENT: return "ROOST_INVALID_ARGUMENT";
    case ROOST_INVALID_STATE: return "ROOST_INVALID_STATE";
    case ROOST_IO: return "ROOST_IO";
    case ROOST_PANIC: return "ROOST_PANIC";
    }
    return "(unknown status)";
}

const char *event_kind_name(roost_event_kind kind) {
    switch (kind) {
    case ROOST_EVENT_CONNECT: return "CONNECT";
    case ROOST_EVENT_TEXT: return "TEXT";
    case ROOST_EVENT_BINARY: return "BINARY";
    case ROOST_EVENT_DISCONNECT: return "DISCONNECT";
    case ROOST_EVENT_WRITABLE: return "WRITABLE";
    case ROOST_EVENT_REQUEST: return "REQUEST";
    case ROOST_EVENT_UPGRADE_REQUEST: return "UPGRADE_REQUEST";
    }
    return "(unknown kind)";
}

int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(int ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static const char *watchdog_program = "test";

static size_t watchdog_program_len = 4;

static void on_alarm(int signo) {
    (void)signo;
    static const char msg[] = ": watchdog: did not finish in time, giving up\n";
    ssize_t ignored = write(STDERR_FILENO, watchdog_program, watchdog_program_len);
    ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)ignored;
    _exit(3);
}

void install_watchdog(unsigned seconds, const char *program) {
    watchdog_program = program;
    watchdog_program_len = strlen(program);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    /* A client whose peer is gone must get an error, not a signal. */
    signal(SIGPIPE, SIG_IGN);
    alarm(seconds);
}

/* ---- events -------------------------------------------------------------------- */

static char *copy_bytes(const uint8_t *p, size_t len) {
    char *s = malloc(len + 1);
    if (s == NULL) abort();
    if (len > 0) memcpy(s, p, len);
    s[len] = '\0';
    return s;
}

/* A pointer the kind does not use must be NULL with length 0. */
static int unused(const void *p, size_t len) {
    return p == NULL && len == 0;
}

/* A pointer the kind uses may only be NULL when its length is 0. */
static int usable(const void *p, size_t len) {
    return p != NULL || len == 0;
}

static int conforms(const roost_event *e) {
    switch (e->kind) {
    case ROOST_EVENT_CONNECT:
        return unused(e->data, e->data_len) && e->uuid != NULL && e->path != NULL &&
               usable(e->query, e->query_len) && usable(e->headers, e->header_count) &&
               e->peer != NULL && e->close_code == 0 && unused(e->method, e->method_len);
    case ROOST_EVENT_REQUEST:
    case ROOST_EVENT_UPGRADE_REQUEST:
        if (e->kind == ROOST_EVENT_UPGRADE_REQUEST && !unused(e->data, e->data_len)) return 0;
        return usable(e->data, e->data_len) && unused(e->uuid, e->uuid_len) && e->path != NULL &&
               usable(e->query, e->query_len) && usable(e->headers, e->header_count) &&
               e->peer != NULL && e->method != NULL && e->method_len > 0 && e->close_code == 0;
    case ROOST_EVENT_TEXT:
    case ROOST_EVENT_BINARY:
    case ROOST_EVENT_DISCONNECT:
    case ROOST_EVENT_WRITABLE:
        if (!(unused(e->uuid, e->uuid_len) && unused(e->path, e->path_len) &&
              unused(e->query, e->query_len) && unused(e->headers, e->header_count) &&
              unused(e->peer, e->peer_len) && unused(e->method, e->method_len)))
            return 0;
        if (e->kind == ROOST_EVENT_WRITABLE) return unused(e->data, e->data_len);
        if (e->kind == ROOST_EVENT_DISCONNECT) return usable(e->data, e->data_len) && e->close_code != 0;
        return usable(e->data, e->data_len) && e->close_code == 0;
    }
    return 0;
}

static void copy_event(const roost_event *e, test_event *out) {
    memset(out, 0, sizeof *out);
    out->kind = e->kind;
    out->close_code = e->close_code;
    out->route = e->route;
    out->connection = e->connection;
    out->data = copy_bytes(e->data, e->data ? e->data_len : 0);
    out->data_len = e->data_len;
    out->uuid = copy_bytes(e->uuid, e->uuid ? e->uuid_len : 0);
    out->uuid_len = e->uuid_len;
    out->path = copy_bytes(e->path, e->path ? e->path_len : 0);
    out->path_len = e->path_len;
    out->query = copy_bytes(e->query, e->query ? e->query_len : 0);
    out->query_len = e->query_len;
    out->peer = copy_bytes(e->peer, e->peer ? e->peer_len : 0);
    out->peer_len = e->peer_len;
    out->method = copy_bytes(e->method, e->method ? e->method_len : 0);
    out->method_len = e->method_len;
    if (e->headers != NULL && e->header_count > 0) {
        out->header_count = e->header_count;
        out->header_names = calloc(e->header_count, sizeof(char *));
        out->header_values = calloc(e->header_count, sizeof(char *));
        if (out->header_names == NULL || out->header_values == NULL) abort();
        for (size_t i = 0; i < e->header_count; i++) {
            const roost_header *h = &e->headers[i];
            out->header_names[i] = copy_bytes(h->name, h->name ? h->name_len : 0);
            out->header_values[i] = copy_bytes(h->value, h->value ? h->value_len : 0);
        }
    }
}

void test_event_free(test_event *event) {
    free(event->data);
    free(event->uuid);
    free(event->path);
    free(event->query);
    free(event->peer);
    free(event->method);
    for (size_t i = 0; i < event->header_count; i++) {
        free(event->header_names[i]);
        free(event->header_values[i]);
    }
    free(event->header_names);
    free(event->header_values);
    memset(event, 0, sizeof *event);
}

const char *test_event_header(const test_event *event, const char *name) {
    size_t name_len = strlen(name);
    for (size_t i = 0; i < event->header_count; i++) {
        const char *h = event->header_names[i];
        if (strlen(h) != name_len) continue;
        size_t j;
        for (j = 0; j < name_len; j++)
            if (tolower((unsigned char)h[j]) != tolower((unsigned char)name[j])) break;
        if (j == name_len) return event->header_values[i];
    }
    return NULL;
}

void pump_init(event_pump *pump, roost_server *server, int ready_fd, size_t capacity) {
    memset(pump, 0, sizeof *pump);
    pump->server = server;
    pump->fd = ready_fd;
    pump->capacity = capacity > 0 ? capacity : 1;
    pump->last_status = ROOST_OK;
}

static void enqueue(event_pump *pump, const roost_event *e) {
    if (pump->len == pump->cap) {
        size_t cap = pump->cap ? pump->cap * 2 : 16;
        test_event *grown = realloc(pump->queue, cap * sizeof *grown);
        if (grown == NULL) abort();
        pump->queue = grown;
        pump->cap = cap;
    }
    if (!conforms(e)) {
        pump->contract_violations++;
        printf("     (event contract breach: %s on connection %llu)\n", event_kind_name(e->kind),
               (unsigned long long)e->connection);
    }
    copy_event(e, &pump->queue[pump->len++]);
}

/* One roost_server_poll. Returns the number of events, or -1. */
static long poll_once(event_pump *pump) {
    roost_event events[64];
    size_t cap = pump->capacity < 64 ? pump->capacity : 64;
    size_t n = (size_t)-1;
    roost_status status = ROOST_SERVER_POLL(pump->server, events, cap, &n);
    pump->last_status = status;
    pump->polls++;
    if (status != ROOST_OK) return -1;
    if (n > cap) {
        pump->contract_violations++;
        printf("     (poll wrote count %zu over capacity %zu)\n", n, cap);
        return -1;
    }
    for (size_t i = 0; i < n; i++) enqueue(pump, &events[i]);
    if (n == 0) pump->empty_polls++;
    return (long)n;
}

long pump_drain(event_pump *pump) {
    long total = 0;
    for (;;) {
        long n = poll_once(pump);
        if (n < 0) return -1;
        if (n == 0) return total;
        total += n;
    }
}

static int matches(const test_event *e, roost_event_kind kind, uint64_t connection) {
    return e->kind == kind && (connection == 0 || e->connection == connection);
}

size_t pump_count(const event_pump *pump, roost_event_kind kind, uint64_t connection) {
    size_t count = 0;
    for (size_t i = 0; i < pump->len; i++) count += matches(&pump->queue[i], kind, connection);
    return count;
}

int pump_wait(event_pump *pump, roost_event_kind kind, uint64_t connection, int timeout_ms,
              test_event *out) {
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        for (size_t i = 0; i < pump->len; i++) {
            if (matches(&pump->queue[i], kind, connection)) {
                *out = pump->queue[i];
                memmove(&pump->queue[i], &pump->queue[i + 1], (pump->len - i - 1) * sizeof *out);
                pump->len--;
                return 0;
            }
        }
        long n = poll_once(pump);
        if (n < 0) return -1;
        if (n > 0) continue;
        /* The empty poll re-armed the descriptor: wait until it says "poll me". */
        int64_t left = deadline - now_ms();
        if (left <= 0) return -1;
        struct pollfd pfd;
        pfd.fd = pump->fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        int rc = poll(&pfd, 1, (int)left);
        if (rc < 0 && errno != EINTR) return -1;
    }
}

size_t pump_discard(event_pump *pump, roost_event_kind kind, uint64_t connection) {
    size_t kept = 0, dropped = 0;
    for (size_t i = 0; i < pump->len; i++) {
        if (matches(&pump->queue[i], kind, connection)) {
            test_event_free(&pump->queue[i]);
            dropped++;
        } else {
            pump->queue[kept++] = pump->queue[i];
        }
    }
    pump->len = kept;
    return dropped;
}

void pump_free(event_pump *pump) {
    for (size_t i = 0; i < pump->len; i++) test_event_free(&pump->queue[i]);
    free(pump->queue);
    pump->queue = NULL;
    pump->len = pump->cap = 0;
}

int pump_connect(event_pump *pump, uint16_t port, const char *target, int rcvbuf, int timeout_ms, uint64_t *conn,
                 const char *label) {
    *conn = 0;
    int fd = ws_connect_rcvbuf(port, timeout_ms, rcvbuf);
    char response[WS_RESPONSE_MAX];
    int status = fd >= 0 ? ws_handshake(fd, target, NULL, response, sizeof response) : -1;
    if (!check(status == 101, "%s: client upgraded on %s (HTTP %d)", label, target, status)) {
        if (fd >= 0) close(fd);
        return -1;
    }
    test_event ev;
    if (!check(pump_wait(pump, ROOST_EVENT_CONNECT, 0, timeout_ms, &ev) == 0, "%s: CONNECT event", label)) {
        close(fd);
        return -1;
    }
    *conn = ev.connection;
    test_event_free(&ev);
    return fd;
}

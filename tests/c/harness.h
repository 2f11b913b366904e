/*
 * Shared by the C test programs: one printed line per check with a running count, and
 * an event pump that follows roost.h's documented loop (poll until a poll returns 0
 * events, then wait for the ready descriptor) and keeps copies of the events, because
 * an event's pointers die at the next roost_server_poll.
 */
#ifndef ROOST_TESTS_HARNESS_H
#define ROOST_TESTS_HARNESS_H

#include "roost.h"

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define HARNESS_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define HARNESS_PRINTF(fmt, args)
#endif

/* ---- checks -------------------------------------------------------------------- */

/* Prints "ok N - <what>" or "FAIL N - <what>" and counts it. Returns `ok`. */
int check(int ok, const char *fmt, ...) HARNESS_PRINTF(2, 3);

/* Checks that a call returned `want`. For an error status it also checks that
 * roost_last_error() is non-empty, and prints it. Returns whether both held. */
int check_status(roost_status got, roost_status want, const char *fmt, ...) HARNESS_PRINTF(3, 4);

/* Prints "<program>: N checks, F failed" and returns the exit status (0 when none
 * failed). */
int check_summary(const char *program);

/* The enumerator name of a status ("ROOST_OK", ...). */
const char *status_name(roost_status status);

/* Milliseconds of a monotonic clock. */
int64_t now_ms(void);

/* Sleeps for `ms` milliseconds. */
void sleep_ms(int ms);

/* Sets alarm(seconds) with a handler that prints a message and exits with 3: the
 * backstop against a test that hangs. */
void install_watchdog(unsigned seconds, const char *program);

/* ---- events -------------------------------------------------------------------- */

/* A polled event, copied (every string NUL-terminated, lengths as polled). */
typedef struct {
    roost_event_kind kind;
    uint16_t close_code;
    uint32_t route;
    uint64_t connection;
    char *data;
    size_t data_len;
    char *uuid;
    size_t uuid_len;
    char *path;
    size_t path_len;
    char *query;
    size_t query_len;
    char *peer;
    size_t peer_len;
    char *method; /* REQUEST, UPGRADE_REQUEST */
    size_t method_len;
    size_t header_count;
    char **header_names;
    char **header_values;
} test_event;

typedef struct {
    roost_server *server;
    int fd;
    size_t capacity; /* events per roost_server_poll */
    test_event *queue;
    size_t len;
    size_t cap;
    size_t polls;
    size_t empty_polls;
    /* Events whose unused pointers were not NULL with length 0, or whose used
     * pointers were NULL with a length (a breach of roost.h's event contract). */
    size_t contract_violations;
    roost_status last_status;
} event_pump;

void pump_init(event_pump *pump, roost_server *server, int ready_fd, size_t capacity);

/* Waits up to `timeout_ms` for an event of `kind` on `connection` (0: any connection)
 * and moves it into `out` (free it with test_event_free). Other events stay queued, in
 * order. Returns 0, or -1 on timeout or a failing poll (see last_status). */
int pump_wait(event_pump *pump, roost_event_kind kind, uint64_t connection, int timeout_ms,
              test_event *out);

/* Polls until a poll returns 0 events (queuing them), without waiting. Returns the
 * number of events queued by this call, or -1 when a poll failed. */
long pump_drain(event_pump *pump);

/* Number of queued events of `kind` on `connection` (0: any). */
size_t pump_count(const event_pump *pump, roost_event_kind kind, uint64_t connection);

/* Drops the queued events of `kind` on `connection` (0: any); returns how many. */
size_t pump_discard(event_pump *pump, roost_event_kind kind, uint64_t connection);

void pump_free(event_pump *pump);

/* Connects a raw client (ws_client.h) to 127.0.0.1:port with `timeout_ms` as its socket
 * timeout and a receive buffer of `rcvbuf` bytes (0: the system's), upgrades it on
 * `target` and waits up to `timeout_ms` for its CONNECT event, checking each step.
 * Returns the socket (or -1) and writes the connection id (0 on failure). */
int pump_connect(event_pump *pump, uint16_t port, const char *target, int rcvbuf, int timeout_ms, uint64_t *conn,
                 const char *label);

/* The value of header `name` (case-insensitive) of a CONNECT, REQUEST or UPGRADE_REQUEST
 * event, or NULL. */
const char *test_event_header(const test_event *event, const char *name);

void test_event_free(test_event *event);

const char *event_kind_name(roost_event_kind kind);

#endif /* ROOST_TESTS_HARNESS_H */

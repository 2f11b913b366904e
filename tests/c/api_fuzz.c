/*
 * Seeded random sequences of roost.h calls, misuse included, under AddressSanitizer
 * and LeakSanitizer: NULL and forged handles, freed handles, NULL data with a length,
 * lengths over PTRDIFF_MAX, invalid UTF-8, bad close codes and reasons, empty and
 * 8 MiB payloads, stale and never-issued connection ids, empty, over-long and NULL
 * topics, NULL and re-entrant topic visitors, stats structs of every size, calls after
 * stop and after free; then four threads calling send / broadcast / close / pause /
 * join / connection_count / the topic calls / stats at once while the main thread polls
 * and two threads of raw clients connect, talk (and misbehave) and leave over
 * 127.0.0.1.
 *
 * Every call must return a status roost.h documents for it (never ROOST_PANIC), leave a
 * message in roost_last_error when it fails and write no out-parameter then; every
 * polled event must keep the pointer contract and the per-connection order (CONNECT,
 * messages, one DISCONNECT); after every client has left, connection_count must be 0.
 * The program ends with nothing leaked (LeakSanitizer runs at exit).
 *
 * The choices come from a xorshift generator seeded from ROOST_FUZZ_SEED (decimal or
 * 0x-hex; a fixed default otherwise): rerun a failure with the seed it prints. Thread
 * interleavings and network timing are not deterministic, so expectations are exact
 * where roost.h pins them and sets where timing decides.
 */
#define _POSIX_C_SOURCE 200809L

#include "roost.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "ws_client.h"

#define PROGRAM "api_fuzz"
#define DEFAULT_SEED 0x5eed2026c0ffee01ull
#define HUGE_LEN ((size_t)8 << 20)
#define SCRATCH_CAP (((size_t)1 << 20) + 4096)
#define MAX_IDS 65536 /* connection ids are per-server counters from 1 */
#define ABUSERS 4
#define CLIENT_THREADS 2

#define BYTES(s) ((const uint8_t *)(s))
#define BIT(s) (1u << (unsigned)(s))
#define S_OK BIT(ROOST_OK)
#define S_IA BIT(ROOST_INVALID_ARGUMENT)
#define S_CLOSED BIT(ROOST_CLOSED)
#define S_NOT_FOUND BIT(ROOST_NOT_FOUND)
#define S_SEND_LIVE (S_OK | BIT(ROOST_WOULD_BLOCK) | S_CLOSED | S_NOT_FOUND)
#define S_SEND_CLOSING (S_CLOSED | S_NOT_FOUND)
#define S_CLOSE_LIVE (S_OK | S_CLOSED | S_NOT_FOUND)
#define S_ID_LIVE (S_OK | S_NOT_FOUND)
/* Subscribing an id that may be live: a closing connection joins no topic. */
#define S_ID_JOIN (S_ID_LIVE | S_CLOSED)
#define OUT_SENTINEL ((size_t)0xa5a5a5a5u)
#define FLAG_UNSET 0x5a /* a bool out-parameter's byte before a call: neither true nor false */

typedef unsigned set_t;

/* ---- seeded randomness ------------------------------------------------------------ */

typedef struct {
    uint64_t s;
} rng_t;

static uint64_t seed_value;

static void rng_init(rng_t *r, uint64_t seed, uint64_t stream) {
    uint64_t z = seed + stream * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    r->s = z | 1;
}

static uint64_t rng_next(rng_t *r) {
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545f4914f6cdd1dull;
}

static uint64_t below(rng_t *r, uint64_t n) { return n == 0 ? 0 : rng_next(r) % n; }
static int chance(rng_t *r, unsigned percent) { return below(r, 100) < percent; }

/* ---- the audit of every call --------------------------------------------------------- */

enum {
    F_OPTIONS_INIT, F_NEW, F_FREE, F_ADD_ROUTE, F_START, F_READY_FD, F_POLL, F_SEND_TEXT,
    F_SEND_BINARY, F_BROADCAST_TEXT, F_BROADCAST_BINARY, F_CLOSE, F_JOIN, F_PAUSE, F_STOP,
    F_COUNT, F_SUBSCRIBE, F_UNSUBSCRIBE, F_TOPICS, F_PUBLISH_TEXT, F_PUBLISH_BINARY, F_SUBSCRIBER_COUNT,
    F_STATS, F_FUNCTIONS
};

static const char *const function_names[F_FUNCTIONS] = {
    "options_init", "server_new", "server_free", "add_route", "start", "ready_fd",
    "poll", "send_text", "send_binary", "broadcast_text", "broadcast_binary", "close",
    "join_broadcast", "pause_reading", "stop", "connection_count", "subscribe", "unsubscribe", "topics",
    "publish_text", "publish_binary", "subscriber_count", "stats"};

typedef struct {
    unsigned long calls;
    unsigned long counts[F_FUNCTIONS][9]; /* [8]: a value outside roost_status */
    unsigned long panics;
    unsigned long undocumented;
    unsigned long no_message;
    unsigned long out_written; /* an out-parameter written by a failing call */
    unsigned long contract;    /* event contract breaches */
    unsigned long other;       /* other properties: recipients, route ids, CONNECT seen */
} audit_t;

static atomic_int violations_printed;

static void report(const char *fmt, ...) HARNESS_PRINTF(1, 2);
static void report(const char *fmt, ...) {
    if (atomic_fetch_add(&violations_printed, 1) >= 40) return;
    char line[1024];
    va_list args;
    va_start(args, fmt);
    vsnprintf(line, sizeof line, fmt, args);
    va_end(args);
    printf("# VIOLATION (seed 0x%llx): %s\n", (unsigned long long)seed_value, line);
    fflush(stdout);
}

/* Records one call's status against the documented set `allowed`. */
static void record(audit_t *a, int fn, roost_status got, set_t allowed, const char *fmt, ...)
    HARNESS_PRINTF(5, 6);
static void record(audit_t *a, int fn, roost_status got, set_t allowed, const char *fmt, ...) {
    unsigned code = (unsigned)got;
    a->calls++;
    a->counts[fn][code <= 7 ? code : 8]++;
    const char *problem = NULL;
    const char *message = roost_last_error();
    if (code == ROOST_PANIC) {
        a->panics++;
        problem = "ROOST_PANIC crossed the boundary";
    } else if (code > 7 || !(allowed & BIT(code))) {
        a->undocumented++;
        problem = "status outside the documented set";
    } else if (got != ROOST_OK && (message == NULL || message[0] == '\0')) {
        a->no_message++;
        problem = "failed without a message in roost_last_error";
    }
    if (problem == NULL) return;
    char context[512];
    va_list args;
    va_start(args, fmt);
    vsnprintf(context, sizeof context, fmt, args);
    va_end(args);
    char wanted[160] = "";
    for (unsigned s = 0; s <= 7; s++)
        if (allowed & BIT(s)) {
            strncat(wanted, status_name((roost_status)s), sizeof wanted - strlen(wanted) - 2);
            strncat(wanted, " ", sizeof wanted - strlen(wanted) - 1);
        }
    report("%s: %s: got %u (%s), allowed { %s}, last error \"%s\"; %s", function_names[fn], problem, code,
           code <= 7 ? status_name(got) : "?", wanted, message ? message : "(NULL)", context);
}

static void out_written(audit_t *a, const char *what) {
    a->out_written++;
    report("%s wrote an out-parameter on failure", what);
}

static void merge(audit_t *into, const audit_t *from) {
    into->calls += from->calls;
    for (int f = 0; f < F_FUNCTIONS; f++)
        for (int s = 0; s < 9; s++) into->counts[f][s] += from->counts[f][s];
    into->panics += from->panics;
    into->undocumented += from->undocumented;
    into->no_message += from->no_message;
    into->out_written += from->out_written;
    into->contract += from->contract;
    into->other += from->other;
}

static const char *short_status(int s) {
    static const char *const names[9] = {"OK", "WOULD_BLOCK", "CLOSED", "NOT_FOUND", "INVALID_ARGUMENT",
                                         "INVALID_STATE", "IO", "PANIC", "(not a status)"};
    return names[s];
}

static void print_tallies(const char *label, const audit_t *a) {
    printf("# %s: %lu calls\n", label, a->calls);
    for (int f = 0; f < F_FUNCTIONS; f++) {
        unsigned long total = 0;
        for (int s = 0; s < 9; s++) total += a->counts[f][s];
        if (total == 0) continue;
        printf("#   %-17s", function_names[f]);
        for (int s = 0; s < 9; s++)
            if (a->counts[f][s] > 0) printf(" %s=%lu", short_status(s), a->counts[f][s]);
        printf("\n");
    }
}

static void check_audit(const char *label, const audit_t *a) {
    check(a->calls > 0, "%s: %lu random calls made", label, a->calls);
    check(a->panics == 0, "%s: no call returned ROOST_PANIC (%lu did)", label, a->panics);
    check(a->undocumented == 0, "%s: every status is one roost.h documents for that call (%lu were not)", label,
          a->undocumented);
    check(a->no_message == 0, "%s: every failure left a message in roost_last_error (%lu did not)", label,
          a->no_message);
    check(a->out_written == 0, "%s: no failing call wrote an out-parameter (%lu did)", label, a->out_written);
    check(a->contract == 0, "%s: every polled event kept the pointer contract and per-connection order (%lu breaches)",
          label, a->contract);
    check(a->other == 0,
          "%s: route ids, ready_fd, recipients, counts, visits, stats and CONNECTs of upgraded clients as expected "
          "(%lu not)",
          label, a->other);
}

/* ---- hostile arguments ---------------------------------------------------------------- */

/* Strict UTF-8, as the core checks it: no overlongs, surrogates or code points above
 * U+10FFFF. */
static int utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i - 1 < need) return 0;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) return 0;
        if (need == 3 && (cp < 0x10000 || cp > 0x10ffff)) return 0;
        i += need + 1;
    }
    return 1;
}

typedef struct {
    const uint8_t *ptr;
    size_t len;
    int bad_pointer; /* refused whatever else: NULL with a length, length > PTRDIFF_MAX */
    int utf8;
    const char *label;
} data_t;

static uint8_t *huge;              /* HUGE_LEN bytes of UTF-8, then one 0xff */
static atomic_int huge_budget;     /* 8 MiB payloads left */

static const char *const invalid_utf8[] = {"\xff", "ok\xc3\x28", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                           "abc\xe2\x82", "\xf0\x9f\xa6", "\x80\x80", "valid until \xfe"};
static const char *const valid_utf8[] = {"h\xc3\xa9llo w\xc3\xb6rld", "\xf0\x9f\xa6\x80 crab",
                                         "\xe6\x97\xa5\xe6\x9c\xac", "\xf4\x8f\xbf\xbf", "a"};
#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

static data_t data_of(const uint8_t *p, size_t len, const char *label) {
    data_t d = {p, len, 0, utf8_valid(p, len), label};
    return d;
}

static data_t payload(rng_t *r, uint8_t *scratch) {
    data_t d;
    switch (below(r, 20)) {
    case 0: return (data_t){NULL, 0, 0, 1, "NULL, 0"};
    case 1: return (data_t){(const uint8_t *)(uintptr_t)1, 0, 0, 1, "0x1, 0"};
    case 2: return (data_t){NULL, 1 + (size_t)below(r, (uint64_t)1 << 40), 1, 0, "NULL with a length"};
    case 3: return (data_t){scratch, (size_t)PTRDIFF_MAX + 1 + (size_t)below(r, 1000), 1, 0, "length > PTRDIFF_MAX"};
    case 4:
    case 5: {
        const char *s = invalid_utf8[below(r, COUNT_OF(invalid_utf8))];
        memcpy(scratch, s, strlen(s));
        return data_of(scratch, strlen(s), "invalid UTF-8");
    }
    case 6:
    case 7: {
        const char *s = valid_utf8[below(r, COUNT_OF(valid_utf8))];
        memcpy(scratch, s, strlen(s));
        return data_of(scratch, strlen(s), "multi-byte UTF-8");
    }
    case 8:
    case 9: {
        size_t len = (size_t)below(r, 300);
        for (size_t i = 0; i < len; i++) scratch[i] = (uint8_t)rng_next(r);
        return data_of(scratch, len, "random bytes");
    }
    case 10: {
        static const size_t sizes[] = {(64u << 10) - 1, 64u << 10, (64u << 10) + 1, 1u << 20, (1u << 20) + 1};
        size_t len = sizes[below(r, COUNT_OF(sizes))];
        memset(scratch, 'm', len);
        if (chance(r, 30)) scratch[len - 1] = 0xc3;
        d = (data_t){scratch, len, 0, scratch[len - 1] == 'm', "medium"};
        return d;
    }
    case 11:
        if (atomic_fetch_sub(&huge_budget, 1) > 0) {
            if (chance(r, 50)) return (data_t){huge, HUGE_LEN, 0, 1, "8 MiB text"};
            return (data_t){huge, HUGE_LEN + 1, 0, 0, "8 MiB + invalid byte"};
        }
        /* fall through */
    default: {
        size_t len = 1 + (size_t)below(r, 120);
        for (size_t i = 0; i < len; i++) scratch[i] = (uint8_t)('a' + below(r, 26));
        return data_of(scratch, len, "ASCII");
    }
    }
}

/* A close reason; *fits says whether a close frame can carry it (UTF-8, <= 123 bytes). */
static data_t reason(rng_t *r, uint8_t *scratch, int *fits) {
    data_t d;
    switch (below(r, 10)) {
    case 0: d = (data_t){NULL, 0, 0, 1, "no reason"}; break;
    case 1: d = (data_t){NULL, 7, 1, 0, "NULL reason with a length"}; break;
    case 2: {
        const char *s = invalid_utf8[below(r, COUNT_OF(invalid_utf8))];
        memcpy(scratch, s, strlen(s));
        d = data_of(scratch, strlen(s), "invalid UTF-8 reason");
        break;
    }
    case 3:
        for (int i = 0; i < 61; i++) memcpy(scratch + 2 * i, "\xc3\xa9", 2);
        scratch[122] = '!';
        d = data_of(scratch, 123, "123-byte reason");
        break;
    case 4: {
        size_t len = 124 + (size_t)below(r, 300);
        memset(scratch, 'r', len);
        d = data_of(scratch, len, "reason too long");
        break;
    }
    default: {
        size_t len = (size_t)below(r, 40);
        for (size_t i = 0; i < len; i++) scratch[i] = (uint8_t)('a' + below(r, 26));
        d = data_of(scratch, len, "short reason");
    }
    }
    *fits = !d.bad_pointer && d.utf8 && d.len <= 123;
    return d;
}

static int sendable_code(unsigned code) {
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

static uint16_t close_code(rng_t *r, unsigned bad_percent) {
    static const uint16_t bad[] = {0, 1, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535};
    static const uint16_t good[] = {1000, 1001, 1002, 1003, 1007, 1008, 1011, 1014, 3000, 4000, 4999};
    if (chance(r, bad_percent)) return bad[below(r, COUNT_OF(bad))];
    if (chance(r, 20)) return (uint16_t)rng_next(r);
    return good[below(r, COUNT_OF(good))];
}

/* Handles that no live server has: tokens are small multiples of 16, so odd values,
 * the top of the address space, or freed handles (never reused) are safe to forge. */
static roost_server *forged_handle(rng_t *r, roost_server *const *freed, size_t nfreed) {
    if (nfreed > 0 && chance(r, 50)) return freed[below(r, nfreed)];
    switch (below(r, 3)) {
    case 0: return (roost_server *)(uintptr_t)(rng_next(r) | 1);
    case 1: return (roost_server *)(uintptr_t)(UINTPTR_MAX & ~(uintptr_t)15);
    default: return (roost_server *)(uintptr_t)0xdeadbeefu;
    }
}

/* ---- events: pointer contract and order ------------------------------------------------ */

enum { ID_UNKNOWN = 0, ID_LIVE, ID_CLOSING, ID_RETIRED };

typedef struct {
    unsigned char *state; /* MAX_IDS entries */
    uint64_t max_id;
    unsigned long connects, disconnects, messages, writables;
    unsigned long breaches;
} event_log;

static void log_init(event_log *log) {
    memset(log, 0, sizeof *log);
    log->state = calloc(MAX_IDS, 1);
}

static void log_free(event_log *log) {
    free(log->state);
    log->state = NULL;
}

static int id_state(const event_log *log, uint64_t id) { return id < MAX_IDS ? log->state[id] : ID_UNKNOWN; }

static size_t live_count(const event_log *log) {
    size_t n = 0;
    for (uint64_t id = 1; id <= log->max_id; id++) n += log->state[id] == ID_LIVE || log->state[id] == ID_CLOSING;
    return n;
}

static int unused_ptr(const void *p, size_t len) { return p == NULL && len == 0; }
static int usable_ptr(const void *p, size_t len) { return len == 0 || p != NULL; }

static void breach(event_log *log, const char *what, uint64_t id) {
    log->breaches++;
    report("event contract: %s (connection %llu)", what, (unsigned long long)id);
}

/* Checks one event and reads every byte it points to (ASan sees a bad pointer). Returns
 * its kind, or 0 when it broke the contract. */
static int take_event(event_log *log, const roost_event *e, uint32_t routes) {
    unsigned kind = (unsigned)e->kind;
    uint64_t id = e->connection;
    int st = id_state(log, id);
    int no_connect_fields = unused_ptr(e->uuid, e->uuid_len) && unused_ptr(e->path, e->path_len) &&
                            unused_ptr(e->query, e->query_len) && unused_ptr(e->peer, e->peer_len) &&
                            e->headers == NULL && e->header_count == 0;
    volatile unsigned sum = 0;
    switch (kind) {
    case ROOST_EVENT_CONNECT:
        if (id == 0 || id >= MAX_IDS || st != ID_UNKNOWN) return breach(log, "CONNECT for a known or bad id", id), 0;
        if (e->route >= routes || !unused_ptr(e->data, e->data_len)) return breach(log, "CONNECT route or data", id), 0;
        if (e->uuid == NULL || e->uuid_len != 36 || e->path == NULL || e->path_len == 0 || e->path[0] != '/' ||
            !usable_ptr(e->query, e->query_len) || e->peer == NULL || e->peer_len < 10 ||
            memcmp(e->peer, "127.0.0.1:", 10) != 0 || (e->header_count > 0 && e->headers == NULL))
            return breach(log, "CONNECT fields", id), 0;
        for (size_t i = 0; i < e->uuid_len; i++) sum += e->uuid[i];
        for (size_t i = 0; i < e->query_len; i++) sum += e->query[i];
        for (size_t h = 0; h < e->header_count; h++) {
            const roost_header *hd = &e->headers[h];
            if (hd->name == NULL || hd->name_len == 0 || !usable_ptr(hd->value, hd->value_len))
                return breach(log, "CONNECT header view", id), 0;
            for (size_t i = 0; i < hd->name_len; i++) sum += hd->name[i];
            for (size_t i = 0; i < hd->value_len; i++) sum += hd->value[i];
        }
        log->state[id] = ID_LIVE;
        if (id > log->max_id) log->max_id = id;
        log->connects++;
        return (int)kind;
    case ROOST_EVENT_TEXT:
    case ROOST_EVENT_BINARY:
        if (st != ID_LIVE && st != ID_CLOSING) return breach(log, "message outside CONNECT..DISCONNECT", id), 0;
        if (!no_connect_fields || e->route >= routes || !usable_ptr(e->data, e->data_len))
            return breach(log, "message fields", id), 0;
        if (kind == ROOST_EVENT_TEXT && !utf8_valid(e->data, e->data_len)) return breach(log, "TEXT not UTF-8", id), 0;
        for (size_t i = 0; i < e->data_len; i++) sum += e->data[i];
        log->messages++;
        return (int)kind;
    case ROOST_EVENT_DISCONNECT: {
        unsigned c = e->close_code;
        if (st != ID_LIVE && st != ID_CLOSING) return breach(log, "DISCONNECT without CONNECT, or twice", id), 0;
        if (!no_connect_fields || !usable_ptr(e->data, e->data_len) || e->data_len > 123 ||
            !utf8_valid(e->data, e->data_len))
            return breach(log, "DISCONNECT fields", id), 0;
        if (!((c >= 1000 && c <= 1003) || (c >= 1005 && c <= 1015) || (c >= 3000 && c <= 4999)))
            return breach(log, "DISCONNECT close code", id), 0;
        log->state[id] = ID_RETIRED;
        log->disconnects++;
        return (int)kind;
    }
    case ROOST_EVENT_WRITABLE:
        if (st != ID_LIVE && st != ID_CLOSING) return breach(log, "WRITABLE outside CONNECT..DISCONNECT", id), 0;
        if (!no_connect_fields || !unused_ptr(e->data, e->data_len)) return breach(log, "WRITABLE fields", id), 0;
        log->writables++;
        return (int)kind;
    default:
        breach(log, "kind is not a roost_event_kind", id);
        return 0;
    }
    (void)sum;
}

/* ---- raw clients --------------------------------------------------------------------- */

/* A masked client frame (unmasked when `unmasked`: a protocol error), written in one
 * send. Thread-safe, unlike ws_send_frame: the mask comes from the caller's generator. */
static int raw_frame(rng_t *r, int fd, int fin, int rsv, int opcode, const void *payload_bytes, size_t len,
                     int unmasked) {
    unsigned char *frame = malloc(len + 14);
    if (frame == NULL) return -1;
    size_t h = 0;
    frame[h++] = (unsigned char)((fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f));
    unsigned char mask_bit = unmasked ? 0 : 0x80;
    if (len < 126) {
        frame[h++] = (unsigned char)(mask_bit | len);
    } else if (len <= 0xffff) {
        frame[h++] = mask_bit | 126;
        frame[h++] = (unsigned char)(len >> 8);
        frame[h++] = (unsigned char)len;
    } else {
        frame[h++] = mask_bit | 127;
        for (int i = 7; i >= 0; i--) frame[h++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    unsigned char mask[4] = {0, 0, 0, 0};
    if (!unmasked) {
        uint64_t m = rng_next(r);
        memcpy(mask, &m, 4);
        memcpy(frame + h, mask, 4);
        h += 4;
    }
    const unsigned char *src = payload_bytes;
    for (size_t i = 0; i < len; i++) frame[h + i] = unmasked ? src[i] : (unsigned char)(src[i] ^ mask[i % 4]);
    size_t total = h + len, sent = 0;
    int rc = 0;
    while (sent < total) {
        ssize_t n = send(fd, frame + sent, total - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            rc = -1;
            break;
        }
        sent += (size_t)n;
    }
    free(frame);
    return rc;
}

/* Reads what has arrived and drops it. Returns -1 once the server has closed. */
static int drain(int fd) {
    static _Thread_local unsigned char buf[65536];
    for (int rounds = 0; rounds < 256; rounds++) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0) return -1;
        if (n < 0) {
            if (errno == EINTR) continue;
            return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
        }
    }
    return 0;
}

/* Upgrades a client on `target`; returns the socket or -1 (refused or failed). */
static int open_client(uint16_t port, const char *target) {
    int fd = ws_connect(port, 1000);
    if (fd < 0) return -1;
    char response[WS_RESPONSE_MAX];
    if (ws_handshake(fd, target, "X-Fuzz: 1\r\n", response, sizeof response) != 101) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One thing a client does: mostly ordinary frames, one step in five a protocol error
 * or a limit. Returns -1 when the client is done. */
static int client_step(rng_t *r, int fd, int lazy, uint8_t *scratch) {
    int rc;
    size_t len;
    unsigned roll = chance(r, 20) ? 12 + (unsigned)below(r, 7) : (unsigned)below(r, 14);
    switch (roll) {
    case 0: case 1: case 2: case 3: case 4: case 5:
        len = (size_t)below(r, 200);
        for (size_t i = 0; i < len; i++) scratch[i] = (uint8_t)('a' + below(r, 26));
        rc = raw_frame(r, fd, 1, 0, WS_OP_TEXT, scratch, len, 0);
        break;
    case 6: case 7: case 8:
        len = (size_t)below(r, 3000);
        for (size_t i = 0; i < len; i++) scratch[i] = (uint8_t)rng_next(r);
        rc = raw_frame(r, fd, 1, 0, WS_OP_BINARY, scratch, len, 0);
        break;
    case 9:
        rc = raw_frame(r, fd, 0, 0, WS_OP_TEXT, "frag", 4, 0);
        rc = rc || raw_frame(r, fd, 1, 0, WS_OP_PING, "p", 1, 0);
        rc = rc || raw_frame(r, fd, 1, 0, WS_OP_CONT, "mented", 6, 0);
        break;
    case 10: rc = raw_frame(r, fd, 1, 0, WS_OP_PING, "ping", 4, 0); break;
    case 11: rc = raw_frame(r, fd, 1, 0, WS_OP_PONG, "unsolicited", 11, 0); break;
    /* The server closes these: 1007, 1002, 1009. */
    case 12: rc = raw_frame(r, fd, 1, 0, WS_OP_TEXT, "bad \xff utf-8", 12, 0); break;
    case 13: rc = raw_frame(r, fd, 1, 0, WS_OP_BINARY, "unmasked", 8, 1); break;
    case 14: rc = raw_frame(r, fd, 1, 5, WS_OP_BINARY, "rsv", 3, 0); break;
    case 15: rc = raw_frame(r, fd, 1, 0, 0x3, "reserved opcode", 15, 0); break;
    case 16:
        memset(scratch, 'o', 70 << 10);
        rc = raw_frame(r, fd, 1, 0, WS_OP_BINARY, scratch, 70 << 10, 0);
        break;
    case 17: rc = raw_frame(r, fd, 1, 0, WS_OP_CONT, "continuation of nothing", 23, 0); break;
    case 18:
        len = 1 + (size_t)below(r, 64);
        for (size_t i = 0; i < len; i++) scratch[i] = (uint8_t)rng_next(r);
        rc = send(fd, scratch, len, MSG_NOSIGNAL) < 0 ? -1 : 0;
        break;
    default: rc = 0;
    }
    if (rc != 0) return -1;
    return lazy ? 0 : drain(fd);
}

/* A client leaves: a close frame, a half-close, a full shutdown, or just close(). */
static void client_leave(rng_t *r, int fd) {
    switch (below(r, 4)) {
    case 0: {
        unsigned char bye[5] = {0x03, 0xe8, 'b', 'y', 'e'};
        if (raw_frame(r, fd, 1, 0, WS_OP_CLOSE, bye, sizeof bye, 0) == 0) {
            int64_t end = now_ms() + 200;
            while (now_ms() < end && drain(fd) == 0) sleep_ms(5);
        }
        break;
    }
    case 1: shutdown(fd, SHUT_WR); break;
    case 2: shutdown(fd, SHUT_RDWR); break;
    default: break;
    }
    close(fd);
}

/* A client that never upgrades: junk, unknown path, not an upgrade, a partial head. */
static void hostile_handshake(rng_t *r, uint16_t port, uint8_t *scratch) {
    int fd = ws_connect(port, 1000);
    if (fd < 0) return;
    char response[WS_RESPONSE_MAX];
    switch (below(r, 6)) {
    case 0: (void)ws_handshake(fd, "/nope", NULL, response, sizeof response); break;
    case 1: {
        const char req[] = "GET /a HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: " WS_SAMPLE_KEY "\r\nSec-WebSocket-Version: 8\r\n\r\n";
        if (send(fd, req, sizeof req - 1, MSG_NOSIGNAL) > 0) (void)ws_wait_eof(fd);
        break;
    }
    case 2: {
        const char req[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
        if (send(fd, req, sizeof req - 1, MSG_NOSIGNAL) > 0) (void)ws_wait_eof(fd);
        break;
    }
    case 3: {
        size_t len = 1 + (size_t)below(r, 400);
        for (size_t i = 0; i < len; i++) scratch[i] = (uint8_t)rng_next(r);
        memcpy(scratch + len, "\r\n\r\n", 4);
        if (send(fd, scratch, len + 4, MSG_NOSIGNAL) > 0) (void)ws_wait_eof(fd);
        break;
    }
    case 4: {
        const char req[] = "GET /a HTTP/1.1\r\nUpgrade: websocket\r\nConn";
        (void)send(fd, req, sizeof req - 1, MSG_NOSIGNAL);
        break;
    }
    default: {
        memcpy(scratch, "GET /a HTTP/1.1\r\n", 17);
        memset(scratch + 17, 'X', 20 << 10);
        (void)send(fd, scratch, 17 + (20 << 10), MSG_NOSIGNAL);
        (void)ws_wait_eof(fd);
    }
    }
    close(fd);
}

/* ---- calls --------------------------------------------------------------------------- */

static roost_options sane_options(rng_t *r) {
    roost_options o;
    roost_options_init(&o, sizeof(roost_options));
    o.ping_interval_ms = chance(r, 30) ? 300 : 0;
    o.ping_timeout_ms = 300;
    o.close_timeout_ms = 1000;
    o.handshake_timeout_ms = 1000;
    o.max_message_size = 64 << 10;
    o.max_frame_size = 64 << 10;
    o.outbound_queue_bytes = chance(r, 50) ? (64 << 10) : (1 << 20);
    o.inbound_queue_depth = chance(r, 30) ? 1 : 16;
    o.worker_threads = chance(r, 50) ? 1 : 2;
    o.join_broadcast_on_connect = chance(r, 70);
    o.slow_consumer = chance(r, 50) ? ROOST_SLOW_CONSUMER_SKIP : ROOST_SLOW_CONSUMER_CLOSE;
    return o;
}

/* Random options, often out of range, and whether roost_server_new must accept them. */
static roost_options random_options(rng_t *r, int *valid) {
    static const uint64_t u64s[] = {1 << 20, 1 << 20, 0, 1, UINT64_MAX};
    static const uint32_t u32s[] = {4096, 4096, 0, 1, UINT32_MAX};
    static const uint32_t threads[] = {1, 2, 0, 256, 257, UINT32_MAX};
    static const uint32_t policies[] = {ROOST_SLOW_CONSUMER_CLOSE, ROOST_SLOW_CONSUMER_SKIP, 2, UINT32_MAX};
    roost_options o = sane_options(r);
    o.max_message_size = u64s[below(r, 5)];
    o.max_frame_size = u64s[below(r, 5)];
    o.outbound_queue_bytes = u64s[below(r, 5)];
    o.inbound_queue_depth = u32s[below(r, 5)];
    o.read_buffer_size = u32s[below(r, 5)];
    o.write_buffer_size = u32s[below(r, 5)];
    o.max_connections = u32s[below(r, 5)];
    o.worker_threads = threads[below(r, 6)];
    o.handshake_timeout_ms = u32s[below(r, 5)];
    o.ping_interval_ms = u32s[below(r, 5)];
    o.ping_timeout_ms = u32s[below(r, 5)];
    o.slow_consumer = policies[below(r, 4)];
    *valid = o.max_message_size > 0 && o.inbound_queue_depth > 0 && o.outbound_queue_bytes > 0 &&
             o.read_buffer_size > 0 && o.read_buffer_size <= (16u << 20) && o.max_connections > 0 &&
             o.worker_threads >= 1 && o.worker_threads <= 256 && o.handshake_timeout_ms > 0 &&
             (o.ping_interval_ms == 0 || o.ping_timeout_ms > 0) && o.slow_consumer <= ROOST_SLOW_CONSUMER_SKIP;
    return o;
}

/* ---- topics and stats ------------------------------------------------------------------ */

static uint8_t long_topic[ROOST_MAX_TOPIC_LENGTH + 1]; /* [..MAX] the longest topic, all of it too long */

/* A topic argument; *valid says whether it names a topic (1 to ROOST_MAX_TOPIC_LENGTH
 * bytes, any bytes). */
static data_t topic_arg(rng_t *r, int *valid) {
    static const data_t names[] = {{BYTES("room"), 4, 0, 1, "topic"},
                                   {BYTES("feed"), 4, 0, 1, "topic"},
                                   {BYTES("r"), 1, 0, 1, "topic"},
                                   {BYTES("\xff\x00 not text"), 11, 0, 0, "topic of bytes"}};
    data_t d;
    switch (below(r, 20)) {
    case 0: d = (data_t){NULL, 0, 0, 1, "NULL topic, 0"}; break;
    case 1: d = (data_t){BYTES("room"), 0, 0, 1, "empty topic"}; break;
    case 2: d = (data_t){NULL, 1 + (size_t)below(r, 1000), 1, 0, "NULL topic with a length"}; break;
    case 3: d = (data_t){long_topic, (size_t)PTRDIFF_MAX + 1, 1, 0, "topic length > PTRDIFF_MAX"}; break;
    case 4: d = (data_t){long_topic, ROOST_MAX_TOPIC_LENGTH, 0, 1, "longest topic"}; break;
    case 5: d = (data_t){long_topic, ROOST_MAX_TOPIC_LENGTH + 1, 0, 1, "topic one byte too long"}; break;
    default: d = names[below(r, COUNT_OF(names))]; break;
    }
    *valid = !d.bad_pointer && d.len >= 1 && d.len <= ROOST_MAX_TOPIC_LENGTH;
    return d;
}

/* The context of the topic visitor: it reads each topic (ASan checks the pointer) and,
 * with `unsubscribe`, unsubscribes the connection from it, recording the status. */
typedef struct {
    audit_t *audit;
    roost_server *server;
    uint64_t id;
    int unsubscribe;
    set_t allowed; /* for those unsubscribes */
    size_t visits;
    unsigned sum;
} visit_ctx;

static void visit_topic(void *context, const uint8_t *topic, size_t topic_len) {
    visit_ctx *v = context;
    v->visits++;
    if (topic == NULL || topic_len == 0 || topic_len > ROOST_MAX_TOPIC_LENGTH) {
        v->audit->contract++;
        report("topics visited %s topic of %zu bytes", topic == NULL ? "a NULL" : "a", topic_len);
        return;
    }
    for (size_t i = 0; i < topic_len; i++) v->sum += topic[i];
    if (!v->unsubscribe) return;
    unsigned char flag = FLAG_UNSET;
    roost_status st = roost_connection_unsubscribe(v->server, v->id, topic, topic_len, (bool *)&flag);
    record(v->audit, F_UNSUBSCRIBE, st, v->allowed, "from a visitor, connection %llu", (unsigned long long)v->id);
    if (st == ROOST_OK && flag > 1) {
        v->audit->other++;
        report("unsubscribe wrote %u to its bool out-parameter", flag);
    }
}

/* One topic call made by topic_call, for its caller to record. */
typedef struct {
    int fn;
    roost_status st;
    int args_ok;   /* the arguments are valid, the handle aside */
    int conn_call; /* subscribe, unsubscribe or topics: the connection id matters */
    size_t count;  /* on success: recipients, subscriber count or stats.connections; else SIZE_MAX */
    char what[128];
} topic_result;

/* The first roost_stats (0.1.0's, through slow_consumers_closed): the smallest size
 * roost_server_stats accepts, from a program compiled with that header. */
#define STATS_FIRST_SIZE offsetof(roost_stats, backplane_published)

/* Sizes for roost_server_stats, valid and not, into a buffer of 256 bytes. */
static size_t stats_size(rng_t *r, int *valid) {
    const size_t known = sizeof(roost_stats);
    *valid = 1;
    switch (below(r, 7)) {
    case 0: *valid = 0; return STATS_FIRST_SIZE - 1;
    case 1: *valid = 0; return (size_t)below(r, STATS_FIRST_SIZE);
    case 2: return known + 8 * (1 + (size_t)below(r, 8));
    case 3: return STATS_FIRST_SIZE + (size_t)below(r, known - STATS_FIRST_SIZE);
    default: return known;
    }
}

/* roost_server_stats into a buffer filled with a pattern: a failure must leave it
 * whole; a success writes `size` bytes, `size` in the first field, zeros after the
 * known fields and nothing past `size`. */
static roost_status stats_call(audit_t *a, roost_server *h, size_t size, int out, size_t *connections) {
    const size_t known = sizeof(roost_stats);
    uint64_t buf[32];
    unsigned char *raw = (unsigned char *)buf;
    memset(buf, 0xa5, sizeof buf);
    roost_status st = roost_server_stats(h, out ? (roost_stats *)buf : NULL, size);
    int changed = 0, wrong = 0;
    for (size_t i = 0; i < sizeof buf; i++) {
        changed |= raw[i] != 0xa5;
        if (st == ROOST_OK && (i >= known || i >= size)) wrong |= raw[i] != (i < size ? 0 : 0xa5);
    }
    if (st != ROOST_OK) {
        if (changed) out_written(a, "stats");
        return st;
    }
    roost_stats got;
    memcpy(&got, buf, known);
    if (wrong || got.size != size) {
        a->other++;
        report("stats of size %zu: size field %u, or the bytes after the known fields wrong", size, got.size);
    }
    *connections = (size_t)got.connections;
    return st;
}

/* Makes one random topic or stats call on `h` (subscribe, unsubscribe, topics with or
 * without a visitor, publish, subscriber_count, stats), checking what its status cannot
 * tell: no out-parameter written and nothing visited on failure, counts that agree on
 * success. `inner` is the set allowed to unsubscribes made from a visitor. */
static topic_result topic_call(audit_t *a, rng_t *r, roost_server *h, uint64_t id, uint8_t *scratch, set_t inner) {
    topic_result t;
    memset(&t, 0, sizeof t);
    t.count = SIZE_MAX;
    int topic_ok, out = !chance(r, 15);
    data_t topic = topic_arg(r, &topic_ok);
    size_t n = OUT_SENTINEL;
    unsigned long long cid = (unsigned long long)id;
    uint64_t kind = below(r, 7);
    if (kind <= 1) {
        unsigned char flag = FLAG_UNSET;
        bool *flagp = out ? (bool *)&flag : NULL;
        t.fn = kind == 0 ? F_SUBSCRIBE : F_UNSUBSCRIBE;
        t.st = kind == 0 ? roost_connection_subscribe(h, id, topic.ptr, topic.len, flagp)
                         : roost_connection_unsubscribe(h, id, topic.ptr, topic.len, flagp);
        t.args_ok = topic_ok;
        t.conn_call = 1;
        if (t.st != ROOST_OK && flag != FLAG_UNSET) out_written(a, function_names[t.fn]);
        if (t.st == ROOST_OK && out && flag > 1) {
            a->other++;
            report("%s wrote %u to its bool out-parameter", function_names[t.fn], flag);
        }
        snprintf(t.what, sizeof t.what, "connection %llu, %s (%zu bytes), out %d", cid, topic.label, topic.len, out);
    } else if (kind <= 3) {
        int text = chance(r, 50);
        uint64_t exclude = chance(r, 50) ? id : ROOST_NO_CONNECTION;
        data_t d = payload(r, scratch);
        t.fn = text ? F_PUBLISH_TEXT : F_PUBLISH_BINARY;
        t.st = text ? roost_server_publish_text(h, topic.ptr, topic.len, d.ptr, d.len, exclude, out ? &n : NULL)
                    : roost_server_publish_binary(h, topic.ptr, topic.len, d.ptr, d.len, exclude, out ? &n : NULL);
        t.args_ok = topic_ok && !d.bad_pointer && (!text || d.utf8);
        snprintf(t.what, sizeof t.what, "%s (%zu bytes), %s (%zu bytes), exclude %llu", topic.label, topic.len,
                 d.label, d.len, (unsigned long long)exclude);
    } else if (kind == 4) {
        t.fn = F_SUBSCRIBER_COUNT;
        t.st = roost_server_subscriber_count(h, topic.ptr, topic.len, out ? &n : NULL);
        t.args_ok = topic_ok && out;
        snprintf(t.what, sizeof t.what, "%s (%zu bytes), out %d", topic.label, topic.len, out);
    } else if (kind == 5) {
        int visitor = !chance(r, 10);
        visit_ctx v = {a, h, id, chance(r, 40), inner, 0, 0};
        t.fn = F_TOPICS;
        t.st = roost_connection_topics(h, id, visitor ? visit_topic : NULL, &v, out ? &n : NULL);
        t.args_ok = visitor;
        t.conn_call = 1;
        if (t.st != ROOST_OK && (n != OUT_SENTINEL || v.visits > 0)) out_written(a, "topics (or it visited)");
        if (t.st == ROOST_OK && out && n != v.visits) {
            a->other++;
            report("topics wrote count %zu after %zu visits", n, v.visits);
        }
        snprintf(t.what, sizeof t.what, "connection %llu, visitor %d (unsubscribing %d), out %d", cid, visitor,
                 v.unsubscribe, out);
        return t;
    } else {
        int size_ok;
        size_t size = stats_size(r, &size_ok), connections = 0;
        t.fn = F_STATS;
        t.st = stats_call(a, h, size, out, &connections);
        t.args_ok = size_ok && out;
        if (t.st == ROOST_OK) t.count = connections;
        snprintf(t.what, sizeof t.what, "size %zu, out %d", size, out);
        return t;
    }
    if (t.st != ROOST_OK && n != OUT_SENTINEL) out_written(a, function_names[t.fn]);
    if (t.st == ROOST_OK && out && !t.conn_call) t.count = n;
    return t;
}

/* ---- phase 1: one thread, a model of each server ------------------------------------- */

enum { LIFE_CREATED, LIFE_RUNNING, LIFE_STOPPED, LIFE_FREED };

#define MAX_ROUTES 16
#define MAX_CLIENTS 6

typedef struct {
    roost_server *handle;
    int life;
    char routes[MAX_ROUTES][64];
    size_t route_len[MAX_ROUTES];
    uint32_t nroutes;
    uint16_t port;
    int fd;
    event_log log;
    int clients[MAX_CLIENTS];
    int nclients;
} model;

static roost_server *freed_handles[64];
static size_t nfreed;

static void remember_freed(roost_server *h) {
    if (nfreed < COUNT_OF(freed_handles)) freed_handles[nfreed++] = h;
}

/* Polls until a poll returns nothing; with `wait_ms`, waits on the ready descriptor
 * and goes on until `want_connects` CONNECTs (or, when `all_retired`, no live id). */
static int pump(model *m, audit_t *a, rng_t *r, int wait_ms, unsigned long want_connects, int all_retired) {
    if (m->life == LIFE_FREED) return 0;
    roost_event events[16];
    int64_t deadline = now_ms() + wait_ms;
    for (;;) {
        size_t cap = 1 + (size_t)below(r, 16), n = OUT_SENTINEL;
        roost_status st = roost_server_poll(m->handle, events, cap, sizeof(roost_event), &n);
        record(a, F_POLL, st, S_OK, "pump, capacity %zu", cap);
        if (st != ROOST_OK) return -1;
        if (n > cap) {
            report("poll returned %zu events for capacity %zu", n, cap);
            a->contract++;
            return -1;
        }
        for (size_t i = 0; i < n; i++) take_event(&m->log, &events[i], m->nroutes);
        int target = want_connects > 0 || all_retired;
        int done = m->log.connects >= want_connects && (!all_retired || live_count(&m->log) == 0);
        if (target && done) return 0;
        if (n == 0) {
            if (!target) return 0;
            int left = (int)(deadline - now_ms());
            if (left <= 0) return -1;
            struct pollfd p = {m->fd, POLLIN, 0};
            poll(&p, 1, left < 100 ? left : 100);
        }
    }
}

/* Picks a connection id; *exact says whether its state is known for sure. */
static uint64_t choose_id(rng_t *r, const event_log *log, int *exact) {
    uint64_t pick = below(r, 10);
    *exact = 1;
    if (pick <= 6 && log->max_id > 0) {
        uint64_t id = 1 + below(r, log->max_id);
        return id; /* live, closing or retired: all known from the log */
    }
    if (pick == 7) {
        *exact = 0;
        return log->max_id + 1 + below(r, 3);
    }
    static const uint64_t never[] = {0, UINT64_MAX};
    if (chance(r, 50)) return never[below(r, 2)];
    return log->max_id + 1000000 + below(r, (uint64_t)1 << 40);
}

/* Expected set for a connection call with valid arguments on a live handle. */
static set_t conn_expect(const model *m, uint64_t id, int exact, set_t live, set_t closing) {
    switch (m->life) {
    case LIFE_FREED: return S_IA;
    case LIFE_STOPPED: return S_CLOSED;
    case LIFE_CREATED: return S_NOT_FOUND;
    default: break;
    }
    if (!exact) return S_NOT_FOUND | live;
    switch (id_state(&m->log, id)) {
    case ID_LIVE: return live;
    case ID_CLOSING: return closing;
    case ID_RETIRED: return S_NOT_FOUND;
    default: /* issued to a client whose CONNECT was never polled: may be live */
        return id != 0 && id <= m->log.max_id ? (S_NOT_FOUND | live) : S_NOT_FOUND;
    }
}

static int add_route_call(model *m, audit_t *a, roost_server *h, const uint8_t *p, size_t len, int out, set_t want,
                          const char *label) {
    uint32_t route = UINT32_MAX;
    roost_status st = roost_server_add_route(h, p, len, out ? &route : NULL);
    record(a, F_ADD_ROUTE, st, want, "path %s (%zu bytes), out %d", label, len, out);
    if (st != ROOST_OK) {
        if (route != UINT32_MAX) out_written(a, "add_route");
        return -1;
    }
    if (route != m->nroutes) { a->other++; report("add_route gave route %u, expected %u", route, m->nroutes); }
    if (m->nroutes < MAX_ROUTES && len < sizeof m->routes[0]) {
        memcpy(m->routes[m->nroutes], p, len);
        m->route_len[m->nroutes] = len;
    }
    m->nroutes++;
    return 0;
}

static void sequential_round(uint64_t round, uint16_t taken_port, audit_t *a, unsigned long *rounds_clean,
                             uint8_t *scratch, uint8_t *scratch2) {
    rng_t rr, *r = &rr;
    rng_init(r, seed_value, round);

    /* Creation with out-of-range options and NULL out. */
    for (int i = 0; i < 4; i++) {
        int valid;
        roost_options o = random_options(r, &valid);
        roost_server *s = (roost_server *)(uintptr_t)0x10;
        int null_out = chance(r, 15);
        roost_status st = roost_server_new(&o, null_out ? NULL : &s);
        record(a, F_NEW, st, valid && !null_out ? S_OK : S_IA, "random options, out NULL %d", null_out);
        if (st == ROOST_OK) {
            record(a, F_FREE, roost_server_free(s), S_OK, "fresh server");
            remember_freed(s);
        } else if (s != (roost_server *)(uintptr_t)0x10) {
            out_written(a, "server_new");
        }
    }
    record(a, F_OPTIONS_INIT, roost_options_init(NULL, sizeof(roost_options)), S_IA, "NULL");

    model m;
    memset(&m, 0, sizeof m);
    log_init(&m.log);
    roost_options o = sane_options(r);
    roost_status st = roost_server_new(chance(r, 20) ? NULL : &o, &m.handle);
    record(a, F_NEW, st, S_OK, "sane options");
    if (st != ROOST_OK) {
        log_free(&m.log);
        return;
    }
    record(a, F_READY_FD, roost_server_ready_fd(m.handle, &m.fd), S_OK, "fresh server");
    m.life = LIFE_CREATED;
    if (chance(r, 70)) {
        add_route_call(&m, a, m.handle, BYTES("/a"), 2, 1, S_OK, "/a");
        if (chance(r, 50)) add_route_call(&m, a, m.handle, BYTES("/b"), 2, 1, S_OK, "/b");
        st = roost_server_start(m.handle, BYTES("127.0.0.1"), 9, 0, &m.port);
        record(a, F_START, st, S_OK, "prelude");
        if (st == ROOST_OK) m.life = LIFE_RUNNING;
    }

    const int steps = 300;
    int free_at = chance(r, 50) ? steps - 40 : steps;
    for (int step = 0; step < steps; step++) {
        if (step == free_at && m.life != LIFE_FREED) {
            record(a, F_FREE, roost_server_free(m.handle), S_OK, "mid-sequence");
            m.life = LIFE_FREED;
            remember_freed(m.handle);
        }
        roost_server *h = m.handle;
        int h_live = m.life != LIFE_FREED;
        uint64_t hp = below(r, 20);
        if (hp == 0) {
            h = NULL;
            h_live = 0;
        } else if (hp == 1) {
            h = forged_handle(r, freed_handles, nfreed);
            h_live = 0;
        }
#define DEAD(args_ok, set) ((!h_live || !(args_ok)) ? S_IA : (set))
        uint64_t op = below(r, 46);
        if (op <= 1) {
            /* add_route: bad paths, duplicates, after start */
            static const char *const paths[] = {"noslash", "/a?b=1", "/a b", "/nbsp\xc2\xa0", "", "/\xff",
                                                "/", "/\xc3\xbcn\xc3\xaf", "/a", "/b"};
            int out = !chance(r, 10);
            if (chance(r, 10)) {
                add_route_call(&m, a, h, NULL, 3, out, S_IA, "NULL with a length");
                continue;
            }
            char path[32];
            if (chance(r, 40))
                snprintf(path, sizeof path, "/r%u", (unsigned)below(r, 1000));
            else
                snprintf(path, sizeof path, "%s", paths[below(r, COUNT_OF(paths))]);
            size_t len = strlen(path);
            int syntax_ok = len > 0 && path[0] == '/' && utf8_valid(BYTES(path), len) && !strchr(path, '?') &&
                            !strchr(path, ' ') && !strstr(path, "\xc2\xa0");
            int duplicate = 0;
            for (uint32_t i = 0; i < m.nroutes && i < MAX_ROUTES; i++)
                duplicate |= m.route_len[i] == len && memcmp(m.routes[i], path, len) == 0;
            set_t want = (!out || !syntax_ok || !h_live) ? S_IA
                         : m.life != LIFE_CREATED        ? BIT(ROOST_INVALID_STATE)
                         : duplicate                     ? S_IA
                                                         : S_OK;
            add_route_call(&m, a, h, BYTES(path), len, out, want, path);
        } else if (op <= 3) {
            /* start: bad hosts, the port in use, twice, without routes */
            int out = !chance(r, 10);
            const uint8_t *host = BYTES("127.0.0.1");
            size_t host_len = 9;
            set_t host_set = S_OK;
            uint64_t hk = below(r, 6);
            if (hk == 0) {
                host = NULL;
                host_set = S_IA;
            } else if (hk == 1) {
                host = BYTES("127.0.0.1\xff");
                host_len = 10;
                host_set = S_IA;
            } else if (hk == 2) {
                host = BYTES("127.0.0.1\0evil");
                host_len = 14;
                host_set = BIT(ROOST_IO);
            }
            uint16_t port = chance(r, 15) ? taken_port : 0;
            if (port == taken_port && host_set == S_OK) host_set = BIT(ROOST_IO);
            set_t want = (!out || host_set == S_IA || !h_live)                 ? S_IA
                         : (m.life != LIFE_CREATED || m.nroutes == 0) ? BIT(ROOST_INVALID_STATE)
                                                                      : host_set;
            uint16_t bound = 1;
            st = roost_server_start(h, host, host_len, port, out ? &bound : NULL);
            record(a, F_START, st, want, "host kind %u, port %u, out %d", (unsigned)hk, port, out);
            if (st == ROOST_OK) {
                m.life = LIFE_RUNNING;
                m.port = bound;
            } else if (bound != 1) {
                out_written(a, "start");
            }
        } else if (op == 4) {
            int out = !chance(r, 20), fd = -7;
            st = roost_server_ready_fd(h, out ? &fd : NULL);
            record(a, F_READY_FD, st, DEAD(out, S_OK), "out %d", out);
            if (st == ROOST_OK && fd != m.fd) { a->other++; report("ready_fd changed: %d != %d", fd, m.fd); }
            if (st != ROOST_OK && fd != -7) out_written(a, "ready_fd");
        } else if (op <= 8) {
            if (h_live && chance(r, 85)) {
                pump(&m, a, r, 0, 0, 0);
            } else {
                roost_event events[4];
                size_t n = OUT_SENTINEL;
                uint64_t bad = below(r, 3);
                st = roost_server_poll(h, bad == 0 ? NULL : events, bad == 1 ? 0 : 4, sizeof(roost_event), bad == 2 ? NULL : &n);
                record(a, F_POLL, st, S_IA, "bad arguments (%u) or dead handle", (unsigned)bad);
                if (n != OUT_SENTINEL) out_written(a, "poll");
            }
        } else if (op <= 15) {
            int exact, text = chance(r, 50);
            uint64_t id = choose_id(r, &m.log, &exact);
            data_t d = payload(r, scratch);
            int args_ok = !d.bad_pointer && (!text || d.utf8);
            set_t want = DEAD(args_ok, conn_expect(&m, id, exact, S_SEND_LIVE, S_SEND_CLOSING));
            st = text ? roost_connection_send_text(h, id, d.ptr, d.len)
                      : roost_connection_send_binary(h, id, d.ptr, d.len);
            record(a, text ? F_SEND_TEXT : F_SEND_BINARY, st, want, "connection %llu, %s (%zu bytes)",
                   (unsigned long long)id, d.label, d.len);
        } else if (op <= 18) {
            int text = chance(r, 50), out = chance(r, 80);
            uint32_t route = chance(r, 25) ? (uint32_t)rng_next(r) : (uint32_t)below(r, m.nroutes + 1);
            data_t d = payload(r, scratch);
            int args_ok = !d.bad_pointer && (!text || d.utf8);
            set_t want = m.life == LIFE_RUNNING ? (route < m.nroutes ? S_OK : S_NOT_FOUND)
                         : m.life == LIFE_CREATED ? S_NOT_FOUND
                         : m.life == LIFE_STOPPED ? S_CLOSED
                                                  : S_IA;
            size_t recipients = OUT_SENTINEL;
            size_t *outp = out ? &recipients : NULL;
            st = text ? roost_server_broadcast_text(h, route, d.ptr, d.len, outp)
                      : roost_server_broadcast_binary(h, route, d.ptr, d.len, outp);
            record(a, text ? F_BROADCAST_TEXT : F_BROADCAST_BINARY, st, DEAD(args_ok, want), "route %u, %s (%zu bytes)",
                   route, d.label, d.len);
            if (st != ROOST_OK && recipients != OUT_SENTINEL) out_written(a, "broadcast");
            if (st == ROOST_OK && out && recipients > live_count(&m.log))
                { a->other++; report("broadcast reached %zu recipients with %zu live connections", recipients, live_count(&m.log)); }
        } else if (op <= 21) {
            int exact, fits;
            uint64_t id = choose_id(r, &m.log, &exact);
            uint16_t code = close_code(r, 30);
            data_t why = reason(r, scratch2, &fits);
            set_t want = DEAD(fits && sendable_code(code), conn_expect(&m, id, exact, S_CLOSE_LIVE, S_SEND_CLOSING));
            st = roost_connection_close(h, id, code, why.ptr, why.len);
            record(a, F_CLOSE, st, want, "connection %llu, code %u, %s (%zu bytes)", (unsigned long long)id, code,
                   why.label, why.len);
            if (st == ROOST_OK && id < MAX_IDS) m.log.state[id] = ID_CLOSING;
        } else if (op == 22 || op == 23) {
            int exact;
            uint64_t id = choose_id(r, &m.log, &exact);
            set_t want = DEAD(1, conn_expect(&m, id, exact, S_ID_LIVE, S_ID_LIVE));
            if (op == 22) {
                int paused = chance(r, 50);
                st = roost_connection_pause_reading(h, id, paused);
                record(a, F_PAUSE, st, want, "connection %llu, paused %d", (unsigned long long)id, paused);
            } else {
                st = roost_connection_join_broadcast(h, id);
                record(a, F_JOIN, st, want, "connection %llu", (unsigned long long)id);
            }
        } else if (op == 24) {
            int out = !chance(r, 15);
            size_t n = OUT_SENTINEL;
            st = roost_server_connection_count(h, out ? &n : NULL);
            record(a, F_COUNT, st, DEAD(out, S_OK), "out %d", out);
            if (st != ROOST_OK && n != OUT_SENTINEL) out_written(a, "connection_count");
            if (st == ROOST_OK && m.life != LIFE_RUNNING && n != 0)
                { a->other++; report("connection_count %zu on a server that is not running", n); }
        } else if (op <= 35 && m.life == LIFE_RUNNING) {
            /* Real clients: connect and see the CONNECT, talk, leave. */
            if (m.nclients < MAX_CLIENTS && chance(r, 60)) {
                uint32_t route = (uint32_t)below(r, m.nroutes < MAX_ROUTES ? m.nroutes : MAX_ROUTES);
                char target[96];
                snprintf(target, sizeof target, "%.*s%s", (int)m.route_len[route], m.routes[route],
                         chance(r, 30) ? "?q=1&x" : "");
                unsigned long before = m.log.connects;
                int fd = open_client(m.port, target);
                if (fd >= 0) {
                    m.clients[m.nclients++] = fd;
                    if (pump(&m, a, r, 5000, before + 1, 0) != 0) { a->other++; report("no CONNECT for an upgraded client"); }
                }
            } else if (chance(r, 20)) {
                hostile_handshake(r, m.port, scratch);
            } else if (m.nclients > 0) {
                int i = (int)below(r, (uint64_t)m.nclients);
                if (chance(r, 15)) {
                    client_leave(r, m.clients[i]);
                    m.clients[i] = m.clients[--m.nclients];
                } else if (client_step(r, m.clients[i], chance(r, 20), scratch) != 0) {
                    close(m.clients[i]);
                    m.clients[i] = m.clients[--m.nclients];
                }
            }
        } else if (op == 36 && chance(r, 25)) {
            uint32_t grace = (uint32_t)below(r, 100);
            st = roost_server_stop(h, grace);
            record(a, F_STOP, st, DEAD(1, S_OK), "grace %u", grace);
            if (st == ROOST_OK && h_live && m.life == LIFE_RUNNING) m.life = LIFE_STOPPED;
        } else if (op == 37 && chance(r, 8)) {
            st = roost_server_free(h);
            record(a, F_FREE, st, h == NULL ? S_OK : DEAD(1, S_OK), "random free");
            if (st == ROOST_OK && h_live) {
                m.life = LIFE_FREED;
                remember_freed(m.handle);
            }
        } else if (op >= 38 && op <= 44) {
            int exact;
            uint64_t id = choose_id(r, &m.log, &exact);
            topic_result t = topic_call(a, r, h, id, scratch, S_ID_LIVE);
            set_t live = t.fn == F_SUBSCRIBE ? S_ID_JOIN : S_ID_LIVE;
            set_t want = t.conn_call                                  ? conn_expect(&m, id, exact, live, live)
                         : m.life == LIFE_FREED                       ? S_IA
                         : t.fn == F_SUBSCRIBER_COUNT || t.fn == F_STATS ? S_OK
                         : m.life == LIFE_STOPPED                     ? S_CLOSED
                                                                      : S_OK;
            record(a, t.fn, t.st, DEAD(t.args_ok, want), "%s", t.what);
            /* Every registered connection's CONNECT was polled: none counts more. */
            if (t.st == ROOST_OK && t.count != SIZE_MAX && t.count > live_count(&m.log)) {
                a->other++;
                report("%s gave %zu with %zu live connections", function_names[t.fn], t.count, live_count(&m.log));
            }
        } else if (chance(r, 25)) {
            record(a, F_FREE, roost_server_free(NULL), S_OK, "NULL");
        } else {
            pump(&m, a, r, 0, 0, 0);
        }
#undef DEAD
    }

    /* Every client leaves; then every connection must be retired and counted out. */
    while (m.nclients > 0) client_leave(r, m.clients[--m.nclients]);
    int clean = 1;
    if (m.life != LIFE_FREED) {
        if (pump(&m, a, r, 8000, 0, 1) != 0) {
            report("round %llu: connections never disconnected", (unsigned long long)round);
            clean = 0;
        }
        size_t n = OUT_SENTINEL;
        record(a, F_COUNT, roost_server_connection_count(m.handle, &n), S_OK, "end of round");
        if (n != 0) {
            report("round %llu: connection_count %zu after every client left", (unsigned long long)round, n);
            clean = 0;
        }
        record(a, F_FREE, roost_server_free(m.handle), S_OK, "end of round");
        remember_freed(m.handle);
    }
    record(a, F_FREE, roost_server_free(m.handle), S_IA, "double free");
    size_t n = OUT_SENTINEL;
    record(a, F_COUNT, roost_server_connection_count(m.handle, &n), S_IA, "after free");
    a->contract += m.log.breaches;
    *rounds_clean += clean;
    log_free(&m.log);
}

/* ---- phase 2: four threads calling, one polling, clients coming and going ------------ */

enum { P_RUNNING, P_LEAVING, P_STOPPING, P_STOPPED, P_FREEING, P_FREED };

static struct {
    roost_server *handle;
    uint16_t port;
    uint32_t routes;
    atomic_int phase;
    atomic_int done;
    pthread_mutex_t lock; /* guards live[] and retired[] */
    uint64_t live[4096];
    size_t nlive;
    uint64_t retired[64];
    size_t nretired;
    atomic_ullong max_id;
} shared;

static set_t in_phase(int phase, set_t running, set_t stopped) {
    switch (phase) {
    case P_RUNNING:
    case P_LEAVING: return running;
    case P_STOPPING: return running | stopped;
    case P_STOPPED: return stopped;
    case P_FREEING: return stopped | S_IA;
    default: return S_IA;
    }
}

static set_t across(int before, int after, set_t running, set_t stopped) {
    set_t s = 0;
    for (int p = before; p <= after; p++) s |= in_phase(p, running, stopped);
    return s;
}

typedef struct {
    int index;
    audit_t audit;
    unsigned long upgraded;
} worker;

static void *abuser(void *arg) {
    worker *w = arg;
    audit_t *a = &w->audit;
    rng_t rr, *r = &rr;
    rng_init(r, seed_value, 100 + (uint64_t)w->index);
    uint8_t *scratch = malloc(SCRATCH_CAP), *scratch2 = malloc(1024);
    if (scratch == NULL || scratch2 == NULL) {
        free(scratch);
        free(scratch2);
        return NULL;
    }
    unsigned long ops = 0;
    while (!atomic_load(&shared.done)) {
        if (++ops % 16 == 0) sleep_ms(1);
        roost_server *h = shared.handle;
        int h_ok = 1;
        uint64_t hp = below(r, 25);
        if (hp == 0) {
            h = NULL;
            h_ok = 0;
        } else if (hp == 1) {
            h = forged_handle(r, NULL, 0);
            h_ok = 0;
        }
        uint64_t id;
        int never = 0;
        uint64_t idp = below(r, 10);
        pthread_mutex_lock(&shared.lock);
        if (idp <= 4 && shared.nlive > 0) {
            id = shared.live[below(r, shared.nlive)];
        } else if (idp <= 6 && shared.nretired > 0) {
            id = shared.retired[below(r, shared.nretired)];
        } else if (idp <= 7) {
            id = atomic_load(&shared.max_id) + 1 + below(r, 3);
        } else {
            never = 1;
            id = chance(r, 50) ? (chance(r, 50) ? 0 : UINT64_MAX) : ((uint64_t)1 << 50) + below(r, 1 << 20);
        }
        pthread_mutex_unlock(&shared.lock);
        int before = atomic_load(&shared.phase);
        uint64_t op = below(r, 23);
        roost_status st;
        if (op <= 5) {
            int text = chance(r, 50);
            data_t d = payload(r, scratch);
            int args_ok = h_ok && !d.bad_pointer && (!text || d.utf8);
            st = text ? roost_connection_send_text(h, id, d.ptr, d.len)
                      : roost_connection_send_binary(h, id, d.ptr, d.len);
            int after = atomic_load(&shared.phase);
            set_t want = args_ok ? across(before, after, never ? S_NOT_FOUND : S_SEND_LIVE, S_CLOSED) : S_IA;
            record(a, text ? F_SEND_TEXT : F_SEND_BINARY, st, want, "connection %llu, %s (%zu bytes), phase %d..%d",
                   (unsigned long long)id, d.label, d.len, before, after);
        } else if (op <= 7) {
            int text = chance(r, 50);
            uint32_t route = chance(r, 85) ? (uint32_t)below(r, shared.routes) : ((uint32_t)rng_next(r) | 2);
            data_t d = payload(r, scratch);
            int args_ok = h_ok && !d.bad_pointer && (!text || d.utf8);
            size_t recipients = OUT_SENTINEL;
            st = text ? roost_server_broadcast_text(h, route, d.ptr, d.len, &recipients)
                      : roost_server_broadcast_binary(h, route, d.ptr, d.len, &recipients);
            int after = atomic_load(&shared.phase);
            set_t want = args_ok ? across(before, after, route < shared.routes ? S_OK : S_NOT_FOUND, S_CLOSED) : S_IA;
            record(a, text ? F_BROADCAST_TEXT : F_BROADCAST_BINARY, st, want, "route %u, %s (%zu bytes), phase %d..%d",
                   route, d.label, d.len, before, after);
            if (st != ROOST_OK && recipients != OUT_SENTINEL) out_written(a, "broadcast");
        } else if (op <= 9) {
            int fits;
            uint16_t code = close_code(r, 85); /* mostly refused: clients should live to talk */
            data_t why = reason(r, scratch2, &fits);
            int args_ok = h_ok && fits && sendable_code(code);
            st = roost_connection_close(h, id, code, why.ptr, why.len);
            int after = atomic_load(&shared.phase);
            set_t want = args_ok ? across(before, after, never ? S_NOT_FOUND : S_CLOSE_LIVE, S_CLOSED) : S_IA;
            record(a, F_CLOSE, st, want, "connection %llu, code %u, %s, phase %d..%d", (unsigned long long)id, code,
                   why.label, before, after);
        } else if (op <= 11) {
            int paused = chance(r, 60);
            st = roost_connection_pause_reading(h, id, paused);
            int after = atomic_load(&shared.phase);
            set_t want = h_ok ? across(before, after, never ? S_NOT_FOUND : S_ID_LIVE, S_CLOSED) : S_IA;
            record(a, F_PAUSE, st, want, "connection %llu, phase %d..%d", (unsigned long long)id, before, after);
        } else if (op == 12) {
            st = roost_connection_join_broadcast(h, id);
            int after = atomic_load(&shared.phase);
            set_t want = h_ok ? across(before, after, never ? S_NOT_FOUND : S_ID_LIVE, S_CLOSED) : S_IA;
            record(a, F_JOIN, st, want, "connection %llu, phase %d..%d", (unsigned long long)id, before, after);
        } else if (op <= 19) {
            /* Unsubscribes from a visitor may meet a stop or a free. */
            topic_result t = topic_call(a, r, h, id, scratch, S_ID_LIVE | S_CLOSED | S_IA);
            int after = atomic_load(&shared.phase);
            int any_time = t.fn == F_SUBSCRIBER_COUNT || t.fn == F_STATS;
            set_t running = !t.conn_call ? S_OK : never ? S_NOT_FOUND : t.fn == F_SUBSCRIBE ? S_ID_JOIN : S_ID_LIVE;
            set_t want = h_ok && t.args_ok ? across(before, after, running, any_time ? S_OK : S_CLOSED) : S_IA;
            record(a, t.fn, t.st, want, "%s, phase %d..%d", t.what, before, after);
        } else {
            int out = chance(r, 90);
            size_t n = OUT_SENTINEL;
            st = roost_server_connection_count(h, out ? &n : NULL);
            int after = atomic_load(&shared.phase);
            set_t want = h_ok && out ? across(before, after, S_OK, S_OK) : S_IA;
            record(a, F_COUNT, st, want, "out %d, phase %d..%d", out, before, after);
            if (st != ROOST_OK && n != OUT_SENTINEL) out_written(a, "connection_count");
        }
    }
    free(scratch);
    free(scratch2);
    return NULL;
}

static void *client_thread(void *arg) {
    worker *w = arg;
    rng_t rr, *r = &rr;
    rng_init(r, seed_value, 200 + (uint64_t)w->index);
    uint8_t *scratch = malloc(SCRATCH_CAP);
    if (scratch == NULL) return NULL;
    static const char *const targets[] = {"/a", "/b", "/a?x=1&y=%20", "/b?"};
    int pool[4], lazy[4], n = 0;
    while (atomic_load(&shared.phase) == P_RUNNING) {
        uint64_t op = below(r, 20);
        if (op <= 2 && n < 4) {
            int fd = open_client(shared.port, targets[below(r, 4)]);
            if (fd >= 0) {
                w->upgraded++;
                lazy[n] = chance(r, 15);
                pool[n++] = fd;
            }
        } else if (op == 3) {
            hostile_handshake(r, shared.port, scratch);
        } else if (op == 4 && n > 0 && chance(r, 40)) {
            int i = (int)below(r, (uint64_t)n);
            client_leave(r, pool[i]);
            pool[i] = pool[--n];
            lazy[i] = lazy[n];
        } else if (n > 0) {
            int i = (int)below(r, (uint64_t)n);
            if (client_step(r, pool[i], lazy[i], scratch) != 0) {
                close(pool[i]);
                pool[i] = pool[--n];
                lazy[i] = lazy[n];
            }
        }
        sleep_ms((int)below(r, 3));
    }
    while (n > 0) client_leave(r, pool[--n]);
    free(scratch);
    return NULL;
}

static void *stop_thread(void *arg) {
    roost_status *out = arg;
    *out = roost_server_stop(shared.handle, 50);
    return NULL;
}

static void *free_thread(void *arg) {
    roost_status *out = arg;
    *out = roost_server_free(shared.handle);
    return NULL;
}

/* The main thread's share: poll by the documented loop, check every event, echo some
 * messages back, and sometimes poll with bad arguments. Returns when `until` holds
 * (checked after each empty poll) or at `deadline`. */
typedef int (*until_fn)(const event_log *log);

static void poll_until(audit_t *a, rng_t *r, event_log *log, int fd, int64_t deadline, until_fn until) {
    roost_event events[64];
    for (;;) {
        if (chance(r, 3)) {
            size_t n = OUT_SENTINEL;
            int null_events = chance(r, 50);
            roost_status st = roost_server_poll(shared.handle, null_events ? NULL : events, null_events ? 8 : 0, sizeof(roost_event), &n);
            record(a, F_POLL, st, S_IA, "bad arguments");
        }
        size_t cap = 1 + (size_t)below(r, 64), n = OUT_SENTINEL;
        roost_status st = roost_server_poll(shared.handle, events, cap, sizeof(roost_event), &n);
        record(a, F_POLL, st, S_OK, "capacity %zu", cap);
        if (st != ROOST_OK) return;
        if (n > cap) {
            report("poll returned %zu events for capacity %zu", n, cap);
            a->contract++;
            return;
        }
        for (size_t i = 0; i < n; i++) {
            const roost_event *e = &events[i];
            int kind = take_event(log, e, shared.routes);
            pthread_mutex_lock(&shared.lock);
            if (kind == ROOST_EVENT_CONNECT) {
                if (shared.nlive < COUNT_OF(shared.live)) shared.live[shared.nlive++] = e->connection;
                if (e->connection > atomic_load(&shared.max_id)) atomic_store(&shared.max_id, e->connection);
            } else if (kind == ROOST_EVENT_DISCONNECT) {
                for (size_t j = 0; j < shared.nlive; j++)
                    if (shared.live[j] == e->connection) {
                        shared.live[j] = shared.live[--shared.nlive];
                        break;
                    }
                memmove(shared.retired + 1, shared.retired, (COUNT_OF(shared.retired) - 1) * sizeof shared.retired[0]);
                shared.retired[0] = e->connection;
                if (shared.nretired < COUNT_OF(shared.retired)) shared.nretired++;
            }
            pthread_mutex_unlock(&shared.lock);
            if ((kind == ROOST_EVENT_TEXT || kind == ROOST_EVENT_BINARY) && chance(r, 30)) {
                int before = atomic_load(&shared.phase);
                st = kind == ROOST_EVENT_TEXT
                         ? roost_connection_send_text(shared.handle, e->connection, e->data, e->data_len)
                         : roost_connection_send_binary(shared.handle, e->connection, e->data, e->data_len);
                int after = atomic_load(&shared.phase);
                record(a, kind == ROOST_EVENT_TEXT ? F_SEND_TEXT : F_SEND_BINARY, st,
                       across(before, after, S_SEND_LIVE, S_CLOSED), "echo");
            }
        }
        if (n == 0) {
            if ((until != NULL && until(log)) || now_ms() >= deadline) return;
            struct pollfd p = {fd, POLLIN, 0};
            poll(&p, 1, 20);
        }
    }
}

static int nobody_live(const event_log *log) {
    size_t n = OUT_SENTINEL;
    return live_count(log) == 0 && roost_server_connection_count(shared.handle, &n) == ROOST_OK && n == 0;
}

static void concurrent_phase(void) {
    printf("# phase 2: %d threads calling at once, the main thread polling, %d threads of raw clients\n", ABUSERS,
           CLIENT_THREADS);
    audit_t a;
    memset(&a, 0, sizeof a);
    rng_t rr, *r = &rr;
    rng_init(r, seed_value, 1);
    event_log log;
    log_init(&log);

    roost_options o = sane_options(r);
    uint32_t route = 0;
    int fd = -1;
    int ok = check_status(roost_server_new(&o, &shared.handle), ROOST_OK, "phase 2: roost_server_new");
    ok = ok && check_status(roost_server_add_route(shared.handle, BYTES("/a"), 2, &route), ROOST_OK, "add_route(/a)");
    ok = ok && check_status(roost_server_add_route(shared.handle, BYTES("/b"), 2, &route), ROOST_OK, "add_route(/b)");
    ok = ok && check_status(roost_server_start(shared.handle, BYTES("127.0.0.1"), 9, 0, &shared.port), ROOST_OK,
                            "start(127.0.0.1, 0)");
    ok = ok && check_status(roost_server_ready_fd(shared.handle, &fd), ROOST_OK, "ready_fd");
    if (!ok) {
        roost_server_free(shared.handle);
        log_free(&log);
        return;
    }
    shared.routes = 2;
    atomic_store(&shared.phase, P_RUNNING);
    atomic_store(&shared.done, 0);

    worker abusers[ABUSERS], clients[CLIENT_THREADS];
    pthread_t abuser_threads[ABUSERS], client_threads[CLIENT_THREADS];
    memset(abusers, 0, sizeof abusers);
    memset(clients, 0, sizeof clients);
    int started_abusers = 0, started_clients = 0;
    for (int i = 0; i < ABUSERS; i++) {
        abusers[i].index = i;
        if (pthread_create(&abuser_threads[i], NULL, abuser, &abusers[i]) == 0) started_abusers++;
        else break;
    }
    for (int i = 0; i < CLIENT_THREADS; i++) {
        clients[i].index = i;
        if (pthread_create(&client_threads[i], NULL, client_thread, &clients[i]) == 0) started_clients++;
        else break;
    }
    check(started_abusers == ABUSERS && started_clients == CLIENT_THREADS, "phase 2: all threads started");

    int64_t t0 = now_ms();
    poll_until(&a, r, &log, fd, t0 + 4000, NULL);

    /* Every client leaves (the threads close their sockets); the abusers keep going. */
    atomic_store(&shared.phase, P_LEAVING);
    unsigned long upgraded = 0;
    int64_t leaving = now_ms();
    for (int i = 0; i < started_clients; i++) {
        /* Keep polling while the client threads wind down. */
        poll_until(&a, r, &log, fd, now_ms() + 50, NULL);
        pthread_join(client_threads[i], NULL);
        upgraded += clients[i].upgraded;
    }
    poll_until(&a, r, &log, fd, now_ms() + 10000, nobody_live);
    size_t count = OUT_SENTINEL;
    check_status(roost_server_connection_count(shared.handle, &count), ROOST_OK, "phase 2: connection_count");
    check(count == 0, "phase 2: connection_count is 0 once all %lu upgraded clients left (got %zu, %lld ms after "
          "they were told to leave)", upgraded, count, (long long)(now_ms() - leaving));
    check(live_count(&log) == 0, "phase 2: every CONNECT had its DISCONNECT polled (%lu connects, %lu disconnects)",
          log.connects, log.disconnects);
    check(upgraded > 0 && log.connects >= upgraded, "phase 2: every upgraded client was seen (%lu upgraded, %lu CONNECTs)",
          upgraded, log.connects);

    /* Two threads stop at once while the abusers call; then drain the last events. */
    atomic_store(&shared.phase, P_STOPPING);
    roost_status other = ROOST_PANIC;
    pthread_t helper;
    int helper_ok = pthread_create(&helper, NULL, stop_thread, &other) == 0;
    roost_status mine = roost_server_stop(shared.handle, 200);
    if (helper_ok) pthread_join(helper, NULL);
    atomic_store(&shared.phase, P_STOPPED);
    check(mine == ROOST_OK && (!helper_ok || other == ROOST_OK), "phase 2: two concurrent stops both give ROOST_OK (%s, %s)",
          status_name(mine), status_name(other));
    poll_until(&a, r, &log, fd, now_ms() + 300, NULL);
    count = OUT_SENTINEL;
    roost_status counted = roost_server_connection_count(shared.handle, &count);
    check(counted == ROOST_OK && count == 0, "phase 2: connection_count is 0 after stop (%s, %zu)",
          status_name(counted), count);

    /* Two threads free at once while the abusers call: exactly one succeeds. */
    atomic_store(&shared.phase, P_FREEING);
    other = ROOST_PANIC;
    helper_ok = pthread_create(&helper, NULL, free_thread, &other) == 0;
    mine = roost_server_free(shared.handle);
    if (helper_ok) pthread_join(helper, NULL);
    atomic_store(&shared.phase, P_FREED);
    int one_ok = helper_ok ? ((mine == ROOST_OK) + (other == ROOST_OK) == 1 &&
                              (mine == ROOST_INVALID_ARGUMENT || other == ROOST_INVALID_ARGUMENT))
                           : mine == ROOST_OK;
    check(one_ok, "phase 2: two concurrent frees: one ROOST_OK, one ROOST_INVALID_ARGUMENT (%s, %s)",
          status_name(mine), status_name(other));
    sleep_ms(300); /* the abusers go on against the dead handle */
    atomic_store(&shared.done, 1);
    for (int i = 0; i < started_abusers; i++) {
        pthread_join(abuser_threads[i], NULL);
        merge(&a, &abusers[i].audit);
    }
    a.contract += log.breaches;
    printf("# phase 2: %lu clients upgraded; events: %lu connects, %lu disconnects, %lu messages, %lu writables\n",
           upgraded, log.connects, log.disconnects, log.messages, log.writables);
    print_tallies("phase 2", &a);
    check_audit("phase 2", &a);
    log_free(&log);
}

int main(void) {
    install_watchdog(40, PROGRAM);
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *env = getenv("ROOST_FUZZ_SEED");
    seed_value = env != NULL && env[0] != '\0' ? strtoull(env, NULL, 0) : DEFAULT_SEED;
    printf("# seed 0x%llx (set ROOST_FUZZ_SEED to replay another)\n", (unsigned long long)seed_value);

    huge = malloc(HUGE_LEN + 1);
    uint8_t *scratch = malloc(SCRATCH_CAP), *scratch2 = malloc(1024);
    if (!check(huge != NULL && scratch != NULL && scratch2 != NULL, "buffers allocated")) {
        free(huge);
        free(scratch);
        free(scratch2);
        return check_summary(PROGRAM);
    }
    static const char pattern[] = "huge payload \xe2\x9c\x93 "; /* 17 bytes, with a 3-byte character */
    for (size_t i = 0; i < HUGE_LEN; i++) huge[i] = (uint8_t)pattern[i % (sizeof pattern - 1)];
    size_t cut = HUGE_LEN;
    while (!utf8_valid(huge, cut)) cut--; /* end on a character boundary */
    memset(huge + cut, '.', HUGE_LEN - cut);
    huge[HUGE_LEN] = 0xff;
    memset(long_topic, 't', sizeof long_topic);

    /* A port in use on 127.0.0.1, for starts that must fail with ROOST_IO. */
    uint16_t taken_port = 0;
    roost_server *taker = NULL;
    uint32_t route;
    if (roost_server_new(NULL, &taker) == ROOST_OK && roost_server_add_route(taker, BYTES("/t"), 2, &route) == ROOST_OK)
        roost_server_start(taker, BYTES("127.0.0.1"), 9, 0, &taken_port);
    check(taken_port != 0, "a server holds port %u for the port-in-use cases", taken_port);

    printf("# phase 1: one thread, random call sequences against a model of each server\n");
    audit_t a;
    memset(&a, 0, sizeof a);
    atomic_store(&huge_budget, 6);
    unsigned long rounds = 12, clean = 0;
    for (uint64_t round = 0; round < rounds; round++) sequential_round(round, taken_port, &a, &clean, scratch, scratch2);
    print_tallies("phase 1", &a);
    check_audit("phase 1", &a);
    check(clean == rounds, "phase 1: every round ended with connection_count 0 once its clients left (%lu of %lu)",
          clean, rounds);
    roost_server_free(taker);

    pthread_mutex_init(&shared.lock, NULL);
    atomic_store(&huge_budget, 16);
    concurrent_phase();
    pthread_mutex_destroy(&shared.lock);

    free(huge);
    free(scratch);
    free(scratch2);
    return check_summary(PROGRAM);
}

#define _POSIX_C_SOURCE 200809L

#include "ws_client.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* Largest frame payload the client accepts; the tests never need more. */
#define WS_MAX_PAYLOAD (16u << 20)

static int write_all(int fd, const void *buf, size_t len) {
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads exactly `len` bytes. Returns 0, or -1 on EOF, timeout or error. */
static int read_exact(int fd, void *buf, size_t len) {
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int ws_connect(uint16_t port, int timeout_ms) {
    return ws_connect_rcvbuf(port, timeout_ms, 0);
}

int ws_connect_rcvbuf(uint16_t port, int timeout_ms, int rcvbuf) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) != 0) {
        close(fd);
        return -1;
    }
    struct timeval tv;
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (const struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int ws_handshake(int fd, const char *target, const char *extra_headers, char *response,
                 size_t response_cap) {
    if (response_cap < 16) return -1;
    response[0] = '\0';
    char request[2048];
    int n = snprintf(request, sizeof request,
                     "GET %s HTTP/1.1\r\n"
                     "Host: 127.0.0.1\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: " WS_SAMPLE_KEY "\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "%s"
                     "\r\n",
                     target, extra_headers ? extra_headers : "");
    if (n < 0 || (size_t)n >= sizeof request) return -1;
    if (write_all(fd, request, (size_t)n) != 0) return -1;

    /* One byte at a time up to the blank line, so that frames stay in the socket. */
    size_t used = 0;
    for (;;) {
        if (used + 1 >= response_cap) return -1;
        if (read_exact(fd, response + used, 1) != 0) {
            response[used] = '\0';
            return -1;
        }
        used++;
        response[used] = '\0';
        if (used >= 4 && memcmp(response + used - 4, "\r\n\r\n", 4) == 0) break;
    }
    int status = -1;
    if (sscanf(response, "HTTP/1.1 %d", &status) != 1) return -1;
    return status;
}

int ws_response_header(const char *response, const char *name, char *out, size_t out_cap) {
    size_t name_len = strlen(name);
    /* Skip the status line. */
    const char *line = strstr(response, "\r\n");
    while (line != NULL) {
        line += 2;
        const char *end = strstr(line, "\r\n");
        if (end == NULL || end == line) break;
        const char *colon = memchr(line, ':', (size_t)(end - line));
        if (colon != NULL && (size_t)(colon - line) == name_len) {
            size_t i;
            for (i = 0; i < name_len; i++)
                if (tolower((unsigned char)line[i]) != tolower((unsigned char)name[i])) break;
            if (i == name_len) {
                const char *v = colon + 1;
                while (v < end && (*v == ' ' || *v == '\t')) v++;
                const char *ve = end;
                while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
                size_t len = (size_t)(ve - v);
                if (len + 1 > out_cap) return -1;
                memcpy(out, v, len);
                out[len] = '\0';
                return 0;
            }
        }
        line = end;
    }
    return -1;
}

/* Not thread-safe (the mask sequence): one thread writes frames at a time. */
int ws_send_frame(int fd, int fin, int opcode, const void *payload, size_t len) {
    static uint32_t mask_seed = 0x9e3779b9u;
    unsigned char header[14];
    size_t h = 0;
    header[h++] = (unsigned char)((fin ? 0x80 : 0x00) | (opcode & 0x0f));
    if (len < 126) {
        header[h++] = (unsigned char)(0x80 | len);
    } else if (len <= 0xffff) {
        header[h++] = 0x80 | 126;
        header[h++] = (unsigned char)(len >> 8);
        header[h++] = (unsigned char)len;
    } else {
        header[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) header[h++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    /* A different, never-zero mask per frame, so that unmasking is really exercised. */
    mask_seed = mask_seed * 1664525u + 1013904223u;
    unsigned char mask[4] = {(unsigned char)(mask_seed >> 24) | 1, (unsigned char)(mask_seed >> 16),
                             (unsigned char)(mask_seed >> 8), (unsigned char)mask_seed | 1};
    memcpy(header + h, mask, 4);
    h += 4;

    unsigned char *frame = malloc(h + len + 1);
    if (frame == NULL) return -1;
    memcpy(frame, header, h);
    const unsigned char *src = payload;
    for (size_t i = 0; i < len; i++) frame[h + i] = src[i] ^ mask[i % 4];
    int rc = write_all(fd, frame, h + len);
    free(frame);
    return rc;
}

int ws_send_close(int fd, uint16_t code, const char *reason) {
    unsigned char payload[125];
    size_t len = 0;
    if (code != 0) {
        size_t rlen = reason ? strlen(reason) : 0;
        if (rlen > 123) return -1;
        payload[0] = (unsigned char)(code >> 8);
        payload[1] = (unsigned char)code;
        if (rlen > 0) memcpy(payload + 2, reason, rlen);
        len = 2 + rlen;
    }
    return ws_send_frame(fd, 1, WS_OP_CLOSE, payload, len);
}

int ws_read_frame(int fd, ws_frame *out) {
    memset(out, 0, sizeof *out);
    unsigned char head[2];
    if (read_exact(fd, head, 2) != 0) return -1;
    out->fin = (head[0] & 0x80) != 0;
    out->rsv = (head[0] >> 4) & 0x07;
    out->opcode = head[0] & 0x0f;
    out->masked = (head[1] & 0x80) != 0;
    uint64_t len = head[1] & 0x7f;
    if (len == 126) {
        unsigned char ext[2];
        if (read_exact(fd, ext, 2) != 0) return -1;
        len = ((uint64_t)ext[0] << 8) | ext[1];
    } else if (len == 127) {
        unsigned char ext[8];
        if (read_exact(fd, ext, 8) != 0) return -1;
        len = 0;
        for (int i = 0; i < 8; i++) len = (len << 8) | ext[i];
    }
    if (len > WS_MAX_PAYLOAD) return -1;
    unsigned char mask[4] = {0, 0, 0, 0};
    if (out->masked && read_exact(fd, mask, 4) != 0) return -1;
    out->payload = malloc((size_t)len + 1);
    if (out->payload == NULL) return -1;
    if (len > 0 && read_exact(fd, out->payload, (size_t)len) != 0) {
        ws_frame_free(out);
        return -1;
    }
    if (out->masked)
        for (size_t i = 0; i < (size_t)len; i++) out->payload[i] ^= mask[i % 4];
    out->payload[len] = '\0';
    out->len = (size_t)len;
    return 0;
}

void ws_frame_free(ws_frame *frame) {
    free(frame->payload);
    frame->payload = NULL;
    frame->len = 0;
}

uint16_t ws_close_code(const ws_frame *frame) {
    if (frame->len < 2) return 0;
    return (uint16_t)((frame->payload[0] << 8) | frame->payload[1]);
}

const char *ws_close_reason(const ws_frame *frame) {
    if (frame->len < 2) return "";
    return (const char *)frame->payload + 2;
}

int ws_wait_eof(int fd) {
    unsigned char buf[512];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0) return 0;
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == ECONNRESET) return 0;
            return -1; /* EAGAIN: the receive timeout passed */
        }
    }
}

// The sockets the addons bind: the address, "1.2.3.4" or "::1" (with an optional zone,
// "fe80::1%eth0" or "fe80::1%2") and a port; and the socket bound to it. Shared by the UDP and
// TCP addons.
#ifndef TRACKER_BIND_ADDRESS_H
#define TRACKER_BIND_ADDRESS_H
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

// Fills `addr` and `len`; returns 0, or EINVAL when `host` (changed in place at its zone) is not
// an address of `family` (4 or 6).
static inline int bind_address(int family, char *host, int port, struct sockaddr_in6 *addr, socklen_t *len) {
  memset(addr, 0, sizeof *addr);
  if (family == 4) {
    struct sockaddr_in *a4 = (struct sockaddr_in *)addr;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &a4->sin_addr) != 1) return EINVAL;
    *len = sizeof(struct sockaddr_in);
    return 0;
  }
  addr->sin6_family = AF_INET6;
  addr->sin6_port = htons((uint16_t)port);
  char *zone = strchr(host, '%');
  if (zone != NULL) {
    *zone++ = 0;
    unsigned index = if_nametoindex(zone);
    addr->sin6_scope_id = index != 0 ? index : (unsigned)strtoul(zone, NULL, 10);
  }
  if (inet_pton(AF_INET6, host, &addr->sin6_addr) != 1) return EINVAL;
  *len = sizeof(struct sockaddr_in6);
  return 0;
}

// The port a bound socket got (the one asked for, or the kernel's choice for port 0).
static inline int bound_port(int fd) {
  struct sockaddr_in6 local;
  socklen_t local_len = sizeof local;
  if (getsockname(fd, (struct sockaddr *)&local, &local_len) != 0) return 0;
  return ntohs(local.sin6_port);  // sin_port and sin6_port share their offset
}

// A non-blocking socket of `type` (SOCK_DGRAM, SOCK_STREAM) bound to host:port, in *fd. Returns
// 0, or an errno with *what naming the step that failed (for the error JS gets).
static inline int bound_socket(int type, int family, char *host, int port, int reuse_addr, int reuse_port, int v6only, int *fd, const char **what) {
  struct sockaddr_in6 addr;
  socklen_t addr_len;
  if (bind_address(family, host, port, &addr, &addr_len) != 0) {
    *what = family == 4 ? "invalid IPv4 address" : "invalid IPv6 address";
    return EINVAL;
  }
  int s = socket(family == 4 ? AF_INET : AF_INET6, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0) {
    *what = "socket";
    return errno;
  }
  int one = 1;
  if (reuse_addr) setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuse_port && setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    int err = errno;
    close(s);
    *what = "SO_REUSEPORT";
    return err;
  }
  if (family == 6) {
    int only = v6only ? 1 : 0;
    setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &only, sizeof only);
  }
  if (bind(s, (struct sockaddr *)&addr, addr_len) != 0) {
    int err = errno;
    close(s);
    *what = "bind";
    return err;
  }
  *fd = s;
  return 0;
}

#endif

// The socket address an addon binds: "1.2.3.4" or "::1" (with an optional zone, "fe80::1%eth0"
// or "fe80::1%2") and a port. Shared by the UDP and TCP addons.
#ifndef TRACKER_BIND_ADDRESS_H
#define TRACKER_BIND_ADDRESS_H
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

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

#endif

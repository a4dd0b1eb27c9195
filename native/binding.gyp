{
  "targets": [
    {
      "target_name": "udp_batch",
      "sources": ["udp_batch.c"],
      "cflags": ["-O2", "-Wall"],
      "conditions": [["OS!='linux'", {"type": "none"}]]
    },
    {
      "target_name": "tcp_batch",
      "sources": ["tcp_batch.c", "tcp_accept.c"],
      "cflags": ["-O2", "-Wall"],
      "libraries": ["-ldl"],
      "conditions": [["OS!='linux'", {"type": "none"}]]
    }
  ]
}

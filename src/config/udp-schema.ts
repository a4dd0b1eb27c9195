import {bool, int, schema, type ConfigOf} from './schema.js'
import {accessList, cleaning, limits, metrics, network, privileges, serverTop} from './sections.js'

export const udpSchema = schema('udp', 'UDP BitTorrent tracker (BEP 15)', serverTop('udp'), {
  network: network(6969, {
    socket_recv_buffer_size: int(
      8_000_000,
      `Receive buffer size of each socket in bytes; 0 = OS default. A large buffer
keeps bursts from being dropped. Linux caps it at net.core.rmem_max, e.g.
  sudo sysctl -w net.core.rmem_max=8000000`,
      0,
      1 << 30,
    ),
    batched_io: bool(
      true,
      `Read and answer datagrams in batches (recvmmsg/sendmmsg, through the addon built at
install on Linux): one syscall per batch instead of one per packet. Without the addon,
or when false, node:dgram is used.`,
    ),
  }),
  protocol: {
    help: 'Protocol limits and timings.',
    keys: {
      max_scrape_torrents: int(70, 'Most info hashes answered per scrape; extra ones are ignored (not an error).', 1, 255),
      max_response_peers: int(30, 'Most peers returned per announce (numwant is honoured below it).', 0, 200),
      peer_announce_interval: int(900, 'Ask peers to announce this often (seconds).', 1, 86_400),
    },
  },
  cleaning: cleaning(120, 1200, {
    max_connection_age: int(120, 'Connection ids are valid this long (seconds; BEP 15 says two minutes).', 1, 3600),
  }),
  limits,
  metrics: metrics(9000),
  privileges,
  access_list: accessList,
})

export type UdpConfig = ConfigOf<typeof udpSchema>

import {test} from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import {fetchMetrics, sample, startUdpTracker, UdpClient} from './harness.js'
import {nastyId} from './helpers.js'
import {nodeHasReusePort} from '../src/server/listen.js'
import {batchIo} from '../src/io/udp.js'
import {descendants} from '../loadtest/bench/proc.js'

// Both socket paths: the batched addon (each worker binds its own socket, SO_REUSEPORT) and
// node:dgram (on Node 20 the cluster primary shares one socket).
for (const batched of [true, false])
  test(`2 workers (${batched ? 'batched I/O' : 'node:dgram'}): one consistent swarm, ids valid across workers, every request answered`, async () => {
    const t = await startUdpTracker({
      socket_workers: 2,
      network: {batched_io: batched},
      protocol: {max_response_peers: 100, max_scrape_torrents: 70, peer_announce_interval: 900},
    })
    const N = 40
    const clients: UdpClient[] = []
    try {
      clients.push(...(await Promise.all(Array.from({length: N}, (_, i) => UdpClient.open(4, t.port4, `127.0.0.${1 + (i % 8)}`)))))
      // Several torrents so both shards own some (by first byte modulo 2).
      const hashes = Array.from({length: 8}, (_, i) => {
        const h = nastyId()
        h[0] = i
        return h
      })
      const peerIds = clients.map(() => nastyId())
      for (const c of clients) await c.connect()
      let answered = 0
      for (let round = 0; round < 2; round++) {
        // One request in flight per client (40 at once): an unpaced burst of hundreds of datagrams
        // can overflow the kernel's default receive buffer, which would be loss, not a tracker bug.
        const replies = await Promise.all(
          clients.map(async (c, i) => {
            const out = []
            for (const h of hashes) out.push(await c.announce({infoHash: h, peerId: peerIds[i], port: 10_000 + i, numWant: 100}))
            return out
          }),
        )
        answered += replies.flat().length
        if (round === 1) {
          // Every announcer sees all the others, on every torrent.
          replies.forEach((perHash, i) =>
            perHash.forEach(r => {
              assert.equal(r.leechers, N - 1)
              assert.equal(r.peers.length, N - 1)
              assert.ok(!r.peers.some(p => p.port === 10_000 + i && Buffer.from(p.ip).equals(Buffer.from([127, 0, 0, 1 + (i % 8)]))))
            }),
          )
        }
      }
      assert.equal(answered, 2 * N * hashes.length, 'no request went unanswered')
      const s = await clients[0].scrape(hashes)
      assert.ok(s.action === 2)
      if (s.action === 2)
        assert.deepEqual(
          s.torrents.map(x => x.leechers),
          hashes.map(() => N),
        )
      const text = await fetchMetrics(t.metricsUrl)
      const connects = ['0', '1'].map(w => sample(text, `tracker_requests_total{type="connect",ip_version="4",worker_index="${w}"}`) ?? 0)
      assert.ok(connects[0] + connects[1] >= N, 'every client connected')
      // With a socket per worker (SO_REUSEPORT) the kernel spreads the 40 client sockets by address
      // hash, so both serve connects. A socket shared through cluster (node:dgram on Node 20) goes to
      // whichever worker reads first: all connects may land on one, and only announces show both.
      if (batched || nodeHasReusePort()) for (const w of [0, 1]) assert.ok(connects[w] > 0, `worker ${w} served connects`)
      for (const w of ['0', '1']) {
        assert.ok((sample(text, `tracker_responses_total{type="announce",ip_version="4",worker_index="${w}"}`) ?? 0) > 0, `worker ${w} served announces`)
        assert.ok((sample(text, `tracker_torrents{worker_index="${w}"}`) ?? 0) > 0, `worker ${w} owns torrents`)
      }
    } finally {
      clients.forEach(c => c.close())
      await t.stop()
    }
  })

test('metrics with a worker that does not answer: the endpoint says so within 10 s; scrapes meanwhile share one question', async () => {
  const t = await startUdpTracker({socket_workers: 2})
  const stopped = descendants(process.pid).at(-1)!
  try {
    assert.ok((await fetchMetrics(t.metricsUrl)).includes('tracker_info'))
    process.kill(stopped, 'SIGSTOP')
    const started = Date.now()
    const answers = await Promise.all(Array.from({length: 5}, () => fetch(t.metricsUrl).then(async r => ({status: r.status, text: await r.text()}))))
    assert.ok(Date.now() - started < 15_000)
    for (const a of answers) {
      assert.equal(a.status, 500)
      assert.match(a.text, /worker 1 did not answer within 10 s/)
    }
    process.kill(stopped, 'SIGCONT')
    assert.ok((await fetchMetrics(t.metricsUrl)).includes('tracker_info'), 'served again once the worker answers')
  } finally {
    try {
      process.kill(stopped, 'SIGCONT')
    } catch {
      // gone
    }
    await t.stop()
  }
})

/** Announces for `n` random torrents from one client per IP version; the tracker's forwarded count and the workers' announce counts after. */
async function announceMany(
  t: {port4: number; port6: number; metricsUrl: string},
  n: number,
): Promise<{forwarded: number; perWorker: number[]; mesh: Record<'sent' | 'received', {frames: number; bytes: number}>}> {
  for (const [family, host, port] of [
    [4, '127.0.0.1', t.port4],
    [6, '::1', t.port6],
  ] as const) {
    const c = await UdpClient.open(family, port, host)
    try {
      await c.connect()
      for (let i = 0; i < n; i++) await c.announce({infoHash: nastyId(), peerId: nastyId(), port: 1000 + i})
    } finally {
      c.close()
    }
  }
  const text = await fetchMetrics(t.metricsUrl)
  const forwarded = [0, 1].reduce((s, w) => s + (sample(text, `tracker_forwarded_total{worker_index="${w}"}`) ?? 0), 0)
  const perWorker = [0, 1].map(w =>
    ['4', '6'].reduce((s, v) => s + (sample(text, `tracker_requests_total{type="announce",ip_version="${v}",worker_index="${w}"}`) ?? 0), 0),
  )
  const meshSum = (metric: string, direction: string): number =>
    [0, 1].reduce((s, w) => s + (sample(text, `${metric}{direction="${direction}",worker_index="${w}"}`) ?? 0), 0)
  const mesh = {
    sent: {frames: meshSum('tracker_mesh_frames_total', 'sent'), bytes: meshSum('tracker_mesh_bytes_total', 'sent')},
    received: {frames: meshSum('tracker_mesh_frames_total', 'received'), bytes: meshSum('tracker_mesh_bytes_total', 'received')},
  }
  return {forwarded, perWorker, mesh}
}

test('2 workers, batched I/O: the kernel steers every announce to the worker of its torrent (no hop); node:dgram forwards', {
  skip: batchIo() ? false : 'the addon is built on Linux only',
}, async () => {
  for (const batched of [true, false]) {
    const t = await startUdpTracker({socket_workers: 2, network: {batched_io: batched}})
    try {
      const {forwarded, perWorker, mesh} = await announceMany(t, 200)
      // A forward is one frame (the owner answers the client from its own socket); every frame sent is read at the other end.
      assert.equal(mesh.sent.frames, forwarded, JSON.stringify(mesh))
      assert.equal(mesh.received.frames, mesh.sent.frames, JSON.stringify(mesh))
      assert.ok(mesh.received.bytes >= mesh.sent.bytes && (forwarded === 0 || mesh.sent.bytes > 60 * forwarded), JSON.stringify(mesh))
      if (batched) {
        assert.equal(forwarded, 0, 'no announce forwarded')
        // Each worker received (and answered) the announces of its own shard: about half each.
        assert.ok(
          perWorker.every(n => n > 100 && n < 300),
          perWorker.join(' '),
        )
      } else if (!nodeHasReusePort()) {
        // One socket shared through cluster: the primary hands datagrams round robin.
        assert.ok(forwarded > 50, `${forwarded} forwarded`)
      }
    } finally {
      await t.stop()
    }
  }
})

test('steering that cannot be verified (a stranger socket in the SO_REUSEPORT group) is taken off: requests are forwarded and all answered', {
  skip: batchIo() ? false : 'the addon is built on Linux only',
}, async () => {
  // A free port, then a socket of another program joining its group first (index 0).
  const probe = dgram.createSocket('udp4')
  await new Promise<void>(resolve => probe.bind(0, '127.0.0.1', resolve))
  const port = probe.address().port
  probe.close()
  const stranger = batchIo()!.open(4, '127.0.0.1', port, true, false, 0, 0, () => {})
  try {
    const t = await startUdpTracker({socket_workers: 2, network: {address_ipv4: `127.0.0.1:${port}`, use_ipv6: false}})
    try {
      // The kernel spreads by its hash of the client's address and port: some clients reach the
      // stranger (as without steering); every client that reaches the tracker gets all answers.
      let answered = 0
      for (let k = 0; k < 8; k++) {
        const c = await UdpClient.open(4, t.port4, '127.0.0.1')
        try {
          await c.connect()
        } catch {
          c.close()
          continue
        }
        try {
          for (let i = 0; i < 20; i++) {
            await c.announce({infoHash: nastyId(), peerId: nastyId(), port: 1000 + i})
            answered++
          }
        } finally {
          c.close()
        }
      }
      assert.ok(answered > 0)
      const text = await fetchMetrics(t.metricsUrl)
      const forwarded = [0, 1].reduce((s, w) => s + (sample(text, `tracker_forwarded_total{worker_index="${w}"}`) ?? 0), 0)
      assert.ok(forwarded > 0, 'not steered: announces for the other worker are forwarded')
    } finally {
      await t.stop()
    }
  } finally {
    batchIo()!.close(stranger.handle)
  }
})

import {test} from 'node:test'
import assert from 'node:assert/strict'
import {fetchMetrics, sample, startUdpTracker, UdpClient} from './harness.js'
import {nastyId} from './helpers.js'
import {nodeHasReusePort} from '../src/server/listen.js'
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

/** Abuse: forged ids from many ports, thousands of idle or trickling connections, hash floods. */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import {randomBytes} from 'node:crypto'
import {setTimeout as sleep} from 'node:timers/promises'
import * as udp from '../src/protocol/udp/index.js'
import {fetchMetrics, sample, HTTP_IO, httpTrackerOn, startUdpTracker, UdpClient} from './harness.js'
import {decode, httpGet, query} from './http-client.js'
import {nastyId} from './helpers.js'

test('UDP: forged connection ids from 64 source ports get no reply at all', async () => {
  const t = await startUdpTracker()
  const clients = await Promise.all(Array.from({length: 64}, (_, i) => UdpClient.open(4, t.port4, `127.0.0.${1 + (i % 4)}`)))
  try {
    for (const c of clients) {
      // Paced a little: the kernel's receive buffer must not be what drops them.
      await sleep(5)
      c.connectionId = randomBytes(8)
      c.socket.on('message', () => assert.fail('a forged connection id got a reply'))
      for (let k = 0; k < 20; k++) {
        c.socket.send(c.announceBytes({infoHash: nastyId(), peerId: nastyId(), port: 1000 + k}), t.port4, '127.0.0.1')
        const scrape = Buffer.alloc(36)
        udp.writeScrapeRequest(scrape, c.connectionId, k, [nastyId()])
        c.socket.send(scrape, t.port4, '127.0.0.1')
      }
    }
    await sleep(500)
    const text = await fetchMetrics(t.metricsUrl)
    assert.equal(sample(text, 'tracker_dropped_total{reason="bad_connection_id",worker_index="0"}'), 64 * 40)
  } finally {
    clients.forEach(c => c.close())
    await t.stop()
  }
})

test('UDP: a flood of unique info hashes stays under max_torrents; refusals are counted', async () => {
  const t = await startUdpTracker({limits: {max_torrents: 100}})
  const c = await UdpClient.open(4, t.port4)
  try {
    await c.connect()
    let refused = 0
    for (let i = 0; i < 300; i++) {
      const r = await c.request(c.announceBytes({infoHash: nastyId(), peerId: nastyId(), port: 2000}))
      if (r.action === 3) {
        assert.equal(r.message, 'Tracker is at its torrent limit; try again later')
        refused++
      }
    }
    assert.equal(refused, 200)
    const text = await fetchMetrics(t.metricsUrl)
    assert.equal(sample(text, 'tracker_torrents{worker_index="0"}'), 100)
    assert.equal(sample(text, 'tracker_refusals_total{reason="torrent_limit",worker_index="0"}'), 200)
  } finally {
    c.close()
    await t.stop()
  }
})

for (const io of HTTP_IO)
  test(`HTTP on ${io.name}: 2000 idle and trickling connections from 127.0.0.2 and beyond do not stop normal clients`, async () => {
    const t = await httpTrackerOn(io.batched)({connections: {request_timeout: 30}})
    const held: net.Socket[] = []
    const trickle: NodeJS.Timeout[] = []
    try {
      for (let i = 0; i < 2000; i++) {
        const socket = net.connect({port: t.port4, host: '127.0.0.1', localAddress: `127.0.0.${2 + (i % 200)}`})
        socket.on('error', () => {})
        held.push(socket)
        // Half stay silent; half send a request a byte at a time, never finishing it.
        if (i % 2 === 1) {
          const bytes = Buffer.from('GET /announce?info_hash=')
          let at = 0
          trickle.push(setInterval(() => socket.writable && at < bytes.length && socket.write(bytes.subarray(at, ++at)), 500))
        }
        if (i % 200 === 199) await sleep(10)
      }
      await sleep(500)
      // With batched I/O the silent half waits in the kernel (TCP_DEFER_ACCEPT) until request_timeout;
      // every trickling one is held by the tracker.
      const expected = io.batched ? 950 : 1900
      let openConnections = 0
      for (let i = 0; i < 50 && openConnections < expected; i++) {
        await sleep(200)
        openConnections = sample(await fetchMetrics(t.metricsUrl), 'tracker_connections{worker_index="0"}') ?? 0
      }
      assert.ok(openConnections >= expected, `the connections are held (${openConnections})`)
      // A normal client is served promptly.
      const started = Date.now()
      const h = nastyId()
      for (let i = 0; i < 20; i++) {
        const r = await httpGet(t.port4, '/announce?' + query({info_hash: h, peer_id: nastyId(), port: 3000 + i, uploaded: 0, downloaded: 0, left: 1}))
        assert.equal(decode(r.body).incomplete, i)
      }
      assert.ok(Date.now() - started < 10_000, `20 announces took ${Date.now() - started} ms`)
    } finally {
      trickle.forEach(clearInterval)
      held.forEach(s => s.destroy())
      await t.stop()
    }
  })

/** `/stats` on a real UDP tracker with two workers: real announces in, real figures out. */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {setTimeout as sleep} from 'node:timers/promises'
import * as udp from '../src/protocol/udp/index.js'
import type {Stats} from '../src/metrics/stats.js'
import {fetchMetricsText} from '../src/top/index.js'
import {startUdpTracker, UdpClient} from './harness.js'
import {nastyId} from './helpers.js'

test('a UDP tracker with 2 workers: /stats and /stats?format=json show its swarm, rates and workers; other paths 404, other methods 405', async () => {
  const t = await startUdpTracker({socket_workers: 2})
  const base = t.metricsUrl.replace(/\/metrics$/, '')
  const clients: UdpClient[] = []
  try {
    // Four torrents, two in each worker's shard (first byte modulo 2).
    const hashes = [0, 1, 2, 3].map(i => {
      const h = nastyId()
      h[0] = i
      return h
    })
    const [a, b, c] = await Promise.all([UdpClient.open(4, t.port4), UdpClient.open(4, t.port4), UdpClient.open(6, t.port6)])
    clients.push(a, b, c)
    for (const x of clients) await x.connect()
    const [idA, idB, idC] = [nastyId(), nastyId(), nastyId()]
    for (const h of hashes) await a.announce({infoHash: h, peerId: idA, port: 6001})
    for (const h of hashes.slice(0, 2)) await b.announce({infoHash: h, peerId: idB, port: 6002, left: 0, event: udp.EVENT_COMPLETED})
    await c.announce({infoHash: hashes[2], peerId: idC, port: 6003})

    // The first view compares with the sample taken at start; poll (bounded) in case it is not in yet.
    let stats: Stats | undefined
    for (let i = 0; i < 50; i++) {
      const res = await fetch(`${base}/stats?format=json`)
      assert.equal(res.status, 200)
      assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8')
      assert.equal(res.headers.get('cache-control'), 'no-store')
      stats = (await res.json()) as Stats
      if ((stats.protocols[0]?.requestsPerSecond.announce ?? 0) > 0) break
      await sleep(100)
    }
    assert.ok(stats)
    assert.equal(stats.protocols.length, 1)
    const [p] = stats.protocols
    assert.equal(p.protocol, 'udp')
    assert.match(stats.version, /^\d+\.\d+\.\d+/)
    assert.ok(stats.uptimeSeconds >= 0)
    assert.ok(stats.rateWindowSeconds > 0)
    assert.deepEqual([p.torrents, p.peers, p.seeders, p.leechers, p.completed], [4, {ipv4: 6, ipv6: 1}, 2, 5, 2])
    assert.ok(p.requestsPerSecond.announce > 0, JSON.stringify(p.requestsPerSecond))
    assert.ok(p.requestsPerSecond.connect > 0, JSON.stringify(p.requestsPerSecond))
    assert.deepEqual(
      p.workers.map(w => [w.index, w.torrents]),
      [
        [0, 2],
        [1, 2],
      ],
    )
    assert.ok(p.workers.some(w => w.requestsPerSecond > 0))
    assert.deepEqual(stats.totals.peers, p.peers)

    const json = await fetch(`${base}/stats.json`)
    assert.equal(((await json.json()) as Stats).protocols[0].torrents, 4, '/stats.json is the same')

    const page = await fetch(`${base}/stats`)
    assert.equal(page.status, 200)
    assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8')
    assert.equal(page.headers.get('cache-control'), 'no-store')
    assert.equal(page.headers.get('x-content-type-options'), 'nosniff')
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'; style-src 'unsafe-inline'/)
    const html = await page.text()
    assert.match(html, /<meta http-equiv="refresh" content="5">/)
    assert.match(html, /<h2>udp<\/h2>/)
    assert.match(html, /<tr><td>udp<\/td><td>4<\/td><td>6<\/td><td>1<\/td><td>2<\/td><td>5<\/td><td>2<\/td>/)
    assert.doesNotMatch(html, /<script/)

    const head = await fetch(`${base}/stats`, {method: 'HEAD'})
    assert.equal(head.status, 200)
    assert.equal(await head.text(), '')

    const metrics = await fetch(`${base}/metrics?anything`)
    assert.equal(metrics.status, 200)
    assert.match(await metrics.text(), /^tracker_info\{protocol="udp",version="[^"]+"\} 1$/m)

    for (const path of ['/', '/metric', '/stats/', '/favicon.ico']) {
      const res = await fetch(base + path)
      assert.equal(res.status, 404, path)
      assert.match(await res.text(), /^not found: this is a tracker's metrics endpoint: GET \/metrics .*\/stats/, path)
    }
    await assert.rejects(
      fetchMetricsText(`${base}/`),
      {message: `${base}/ answered HTTP 404 (a tracker serves its Prometheus metrics on /metrics)`},
      'tracker top points at /metrics',
    )
    const bad = await fetch(`${base}/stats?format=xml`)
    assert.equal(bad.status, 400)
    assert.match(await bad.text(), /format must be html or json/)
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const res = await fetch(`${base}/stats`, {method})
      assert.equal(res.status, 405, method)
      assert.equal(res.headers.get('allow'), 'GET, HEAD')
      assert.match(await res.text(), /^method not allowed: .*\/metrics/)
    }
  } finally {
    for (const x of clients) x.close()
    await t.stop()
  }
})

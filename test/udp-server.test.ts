import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import * as udp from '../src/protocol/udp/index.js'
import {fetchMetrics, sample, startUdpTracker, tempDir, UdpClient, type TestTracker} from './harness.js'
import {batchIo} from '../src/io/udp.js'
import {formatListener} from '../src/server/runtime/listener.js'
import {nastyId} from './helpers.js'

test('on Linux the batched I/O addon is built and used by default; batched_io = false uses node:dgram', {
  skip: process.platform === 'linux' ? false : 'the addon is built on Linux only',
}, async () => {
  assert.ok(batchIo(), 'native/build/Release/udp_batch.node loads (npm ci builds it)')
  for (const [batched, kind] of [
    [true, 'batched I/O'],
    [false, 'node:dgram'],
  ] as const) {
    const t = await startUdpTracker({network: {batched_io: batched}})
    try {
      assert.ok(
        t.tracker.listeners.filter(l => l.service === 'udp').every(l => l.io === kind),
        t.tracker.listeners.map(formatListener).join('\n'),
      )
    } finally {
      await t.stop()
    }
  }
})

// Every test of the socket path runs on both: the batched addon and node:dgram.
for (const batched of [true, false])
  describe(`UDP tracker over real sockets (${batched ? 'batched I/O' : 'node:dgram'})`, () => {
    let t: TestTracker
    before(async () => {
      t = await startUdpTracker({network: {batched_io: batched}, protocol: {max_scrape_torrents: 3, max_response_peers: 50, peer_announce_interval: 900}})
    })
    after(() => t.stop())

    for (const family of [4, 6] as const) {
      test(`IPv${family}: connect, announce, scrape; counts exclude the announcer; completed is real`, async () => {
        const port = family === 4 ? t.port4 : t.port6
        const hash = nastyId()
        const clients = await Promise.all([0, 1, 2].map(() => UdpClient.open(family, port)))
        for (const c of clients) await c.connect()
        const [a, b, c] = clients
        let r = await a.announce({infoHash: hash, peerId: nastyId(), port: 7001})
        assert.deepEqual([r.seeders, r.leechers, r.peers.length, r.interval], [0, 0, 0, 900])
        r = await b.announce({infoHash: hash, peerId: nastyId(), port: 7002, left: 0, event: udp.EVENT_COMPLETED})
        assert.deepEqual([r.seeders, r.leechers], [0, 1])
        assert.equal(r.peers.length, 1)
        assert.equal(r.peers[0].port, 7001)
        assert.equal(r.peers[0].ip.length, family === 4 ? 4 : 16, 'peer size follows the IP version')
        r = await c.announce({infoHash: hash, peerId: nastyId(), port: 7003})
        assert.deepEqual([r.seeders, r.leechers], [1, 1])
        assert.deepEqual(r.peers.map(p => p.port).sort(), [7001, 7002])
        const s = await a.scrape([hash, nastyId()])
        assert.equal(s.action, 2)
        if (s.action === 2)
          assert.deepEqual(s.torrents, [
            {seeders: 1, completed: 1, leechers: 2},
            {seeders: 0, completed: 0, leechers: 0},
          ])
        // The source address is the peer's address, whatever the ip field says.
        r = await a.announce({infoHash: hash, peerId: nastyId(), port: 7004, ip: 0x01020304})
        const expected = family === 4 ? '127.0.0.1' : '0000000000000000000000000000001'
        assert.ok(
          r.peers.every(p =>
            Buffer.from(p.ip)
              .toString('hex')
              .endsWith(family === 4 ? '7f000001' : expected),
          ),
        )
        clients.forEach(x => x.close())
      })
    }

    test('a forged, expired or other-address connection id gets no reply at all', async () => {
      const c = await UdpClient.open(4, t.port4)
      await c.connect()
      const hash = nastyId()
      // Forged: flip one byte of a valid id.
      const good = c.connectionId
      c.connectionId = Uint8Array.from(good)
      c.connectionId[7] ^= 1
      c.sendRaw(c.announceBytes({infoHash: hash, peerId: nastyId(), port: 1}))
      c.sendRaw(c.announceBytes({infoHash: hash, peerId: nastyId(), port: 0}))
      const scrape = Buffer.alloc(16)
      udp.writeScrapeRequest(scrape, c.connectionId, 1, [])
      c.sendRaw(scrape)
      // Random ids.
      for (let i = 0; i < 50; i++) {
        c.connectionId = randomBytes(8)
        c.sendRaw(c.announceBytes({infoHash: hash, peerId: nastyId(), port: 1}))
      }
      assert.equal(await c.receive(500), undefined)
      // An id issued to 127.0.0.1 is not valid from 127.0.0.2.
      const other = await UdpClient.open(4, t.port4, '127.0.0.2')
      other.connectionId = good
      other.sendRaw(other.announceBytes({infoHash: hash, peerId: nastyId(), port: 1}))
      assert.equal(await other.receive(500), undefined)
      // The good id still works.
      c.connectionId = good
      const r = await c.announce({infoHash: hash, peerId: nastyId(), port: 5})
      assert.equal(r.action, 1)
      c.close()
      other.close()
    })

    test('errors go out only with a valid id: port 0, full scrape, bad hash list', async () => {
      const c = await UdpClient.open(6, t.port6)
      await c.connect()
      let r = await c.request(c.announceBytes({infoHash: nastyId(), peerId: nastyId(), port: 0}))
      assert.deepEqual(r.action === 3 && r.message, "Port can't be 0")
      const b = Buffer.alloc(16 + 19)
      udp.writeScrapeRequest(b, c.connectionId, 5, [])
      r = await c.request(b.subarray(0, 16))
      assert.deepEqual(r.action === 3 && r.message, 'Full scrapes are not allowed')
      r = await c.request(b)
      assert.deepEqual(r.action === 3 && r.message, 'Invalid info hash list')
      c.close()
    })

    test('scrape is limited to max_scrape_torrents; a 100-byte announce (BEP 41 options) is answered', async () => {
      const c = await UdpClient.open(4, t.port4)
      await c.connect()
      const s = await c.scrape([nastyId(), nastyId(), nastyId(), nastyId(), nastyId()])
      assert.ok(s.action === 2 && s.torrents.length === 3)
      const withOptions = Buffer.concat([c.announceBytes({infoHash: nastyId(), peerId: nastyId(), port: 9}), Buffer.from([2, 0])])
      const r = await c.request(withOptions)
      assert.equal(r.action, 1)
      c.close()
    })

    test('numwant is honoured and never exceeded', async () => {
      const hash = nastyId()
      const c = await UdpClient.open(4, t.port4)
      await c.connect()
      for (let p = 1; p <= 20; p++) await c.announce({infoHash: hash, peerId: nastyId(), port: p})
      const r = await c.announce({infoHash: hash, peerId: nastyId(), port: 100, numWant: 5})
      assert.equal(r.peers.length, 5)
      const all = await c.announce({infoHash: hash, peerId: nastyId(), port: 101, numWant: -1})
      assert.equal(all.peers.length, 21)
      c.close()
    })

    test('garbage, truncated and oversized packets never stop the server', async () => {
      const c = await UdpClient.open(4, t.port4)
      await c.connect()
      const valid = c.announceBytes({infoHash: nastyId(), peerId: nastyId(), port: 77})
      for (let i = 0; i < 2000; i++) {
        const kind = i % 3
        if (kind === 0) c.sendRaw(randomBytes(1 + (i % 200)))
        else if (kind === 1) c.sendRaw(valid.subarray(0, i % 98))
        else {
          const m = Buffer.from(valid)
          m[8 + (i % 90)] ^= 1 + (i % 255)
          c.sendRaw(m)
        }
      }
      c.sendRaw(Buffer.alloc(9000))
      await sleep(200)
      // Drain whatever error replies came back, then check it still serves.
      while (await c.receive(50)) {
        /* drained */
      }
      const r = await c.announce({infoHash: nastyId(), peerId: nastyId(), port: 78})
      assert.equal(r.action, 1)
      const text = await fetchMetrics(t.metricsUrl)
      assert.ok((sample(text, 'tracker_dropped_total{reason="malformed",worker_index="0"}') ?? 0) > 0)
      c.close()
    })
  })

test('connection ids expire after max_connection_age', async () => {
  const t = await startUdpTracker({cleaning: {max_connection_age: 1, max_peer_age: 1200, torrent_cleaning_interval: 120}})
  try {
    const c = await UdpClient.open(4, t.port4)
    await c.connect()
    await c.announce({infoHash: nastyId(), peerId: nastyId(), port: 3})
    await sleep(2100)
    c.sendRaw(c.announceBytes({infoHash: nastyId(), peerId: nastyId(), port: 3}))
    assert.equal(await c.receive(500), undefined)
    c.close()
  } finally {
    await t.stop()
  }
})

test('peers expire after max_peer_age and empty torrents are freed', async () => {
  const t = await startUdpTracker({cleaning: {max_connection_age: 120, max_peer_age: 1, torrent_cleaning_interval: 1}})
  try {
    const c = await UdpClient.open(4, t.port4)
    await c.connect()
    const hash = nastyId()
    await c.announce({infoHash: hash, peerId: nastyId(), port: 3})
    await c.announce({infoHash: hash, peerId: nastyId(), port: 4})
    let text = await fetchMetrics(t.metricsUrl)
    assert.equal(sample(text, 'tracker_peers{ip_version="4",worker_index="0"}'), 2)
    await sleep(3300)
    text = await fetchMetrics(t.metricsUrl)
    assert.equal(sample(text, 'tracker_peers{ip_version="4",worker_index="0"}'), 0)
    assert.equal(sample(text, 'tracker_torrents{worker_index="0"}'), 0)
    const s = await c.scrape([hash])
    assert.ok(s.action === 2 && s.torrents[0].leechers === 0)
    c.close()
  } finally {
    await t.stop()
  }
})

test('access list: allow mode refuses unlisted hashes; a reload swaps it; a bad reload keeps it', async () => {
  const dir = tempDir()
  const path = join(dir, 'list.txt')
  const listed = nastyId()
  const later = nastyId()
  writeFileSync(path, `# test list\n${listed.toString('hex')}\n`)
  const t = await startUdpTracker({access_list: {mode: 'allow', path}, cleaning: {torrent_cleaning_interval: 1, max_peer_age: 1200, max_connection_age: 120}})
  try {
    const c = await UdpClient.open(4, t.port4)
    await c.connect()
    assert.equal((await c.announce({infoHash: listed, peerId: nastyId(), port: 1})).action, 1)
    let r = await c.request(c.announceBytes({infoHash: later, peerId: nastyId(), port: 1}))
    assert.deepEqual(r.action === 3 && r.message, 'Info hash not allowed')
    writeFileSync(path, `${later.toString('hex')}\n`)
    let status = await t.tracker.reloadAccessList()
    assert.deepEqual([status.ok, status.entries, status.generation], [true, 1, 2])
    assert.equal((await c.announce({infoHash: later, peerId: nastyId(), port: 1})).action, 1)
    r = await c.request(c.announceBytes({infoHash: listed, peerId: nastyId(), port: 2}))
    assert.deepEqual(r.action === 3 && r.message, 'Info hash not allowed')
    // The newly refused torrent is purged at the next cleaning; scrape is not filtered.
    await sleep(1500)
    const s = await c.scrape([listed, later])
    assert.ok(s.action === 2)
    if (s.action === 2)
      assert.deepEqual(
        s.torrents.map(x => x.leechers),
        [0, 1],
      )
    writeFileSync(path, 'not a hash\n')
    status = await t.tracker.reloadAccessList()
    assert.equal(status.ok, false)
    assert.match(status.error!, /line 1/)
    assert.equal(status.entries, 1)
    assert.equal((await c.announce({infoHash: later, peerId: nastyId(), port: 3})).action, 1)
    c.close()
  } finally {
    await t.stop()
  }
})

for (const batched of [true, false]) {
  test(`a dual-stack IPv6 socket (set_only_ipv6 = false) serves IPv4 clients as IPv4 peers (${batched ? 'batched I/O' : 'node:dgram'})`, async () => {
    const t = await startUdpTracker({network: {batched_io: batched, use_ipv4: false, address_ipv6: '[::]:0', set_only_ipv6: false}})
    try {
      const hash = nastyId()
      const [a, b] = await Promise.all([UdpClient.open(4, t.port6), UdpClient.open(4, t.port6)])
      await a.connect()
      await b.connect()
      await a.announce({infoHash: hash, peerId: nastyId(), port: 6001})
      const r = await b.announce({infoHash: hash, peerId: nastyId(), port: 6002})
      assert.equal(r.peers.length, 1)
      assert.deepEqual([...r.peers[0].ip], [127, 0, 0, 1], 'a 6-byte IPv4 peer, not an IPv4-mapped IPv6 one')
      assert.equal(r.peers[0].port, 6001)
      const text = await fetchMetrics(t.metricsUrl)
      assert.ok((sample(text, 'tracker_requests_total{type="announce",ip_version="4",worker_index="0"}') ?? 0) >= 2, 'counted as IPv4')
      a.close()
      b.close()
    } finally {
      await t.stop()
    }
  })
}

test('a tracker with only IPv4 serves IPv4', async () => {
  const t = await startUdpTracker({network: {use_ipv6: false} as never})
  try {
    assert.ok(!t.tracker.listeners.some(l => l.family === 6))
    const c = await UdpClient.open(4, t.port4)
    await c.connect()
    c.close()
  } finally {
    await t.stop()
  }
})

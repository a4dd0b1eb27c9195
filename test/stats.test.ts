/** The `/stats` figures, page and sampler, from synthetic Prometheus text (no network). */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {StatsSampler, escapeHtml, statsFrom, statsHtml} from '../src/metrics/stats.js'
import {parsePrometheus, splitByProtocol} from '../src/top/prometheus.js'
import {computeView, snapshot, viewText} from '../src/top/view.js'

/** What a single-protocol UDP tracker with 2 workers writes: no `protocol` label on the series. */
function udpOnly(k: number): string {
  return `tracker_info{protocol="udp",version="0.1.0"} 1
tracker_uptime_seconds ${60 + k}
tracker_requests_total{type="announce",ip_version="4",worker_index="0"} ${100 * k}
tracker_requests_total{type="announce",ip_version="6",worker_index="1"} ${300 * k}
tracker_requests_total{type="connect",ip_version="4",worker_index="0"} ${10 * k}
tracker_responses_total{type="announce",ip_version="4",worker_index="0"} ${100 * k}
tracker_responses_total{type="announce",ip_version="6",worker_index="1"} ${300 * k}
tracker_torrents{worker_index="0"} 3
tracker_torrents{worker_index="1"} 4
tracker_peers{ip_version="4",worker_index="0"} 20
tracker_peers{ip_version="6",worker_index="1"} 5
tracker_seeders{worker_index="0"} 8
tracker_leechers{worker_index="0"} 17
tracker_completed_total{worker_index="1"} 2
`
}

/** What `tracker serve all` writes: every series labelled with its protocol, tracker_info once per protocol. */
function twoProtocols(k: number): string {
  return `# HELP tracker_info Constant 1
# TYPE tracker_info gauge
tracker_info{protocol="ws",version="0.2.0"} 1
tracker_info{protocol="udp",version="0.2.0"} 1
tracker_uptime_seconds{protocol="udp"} ${10 + k}
tracker_uptime_seconds{protocol="ws"} ${10 + k}
tracker_requests_total{protocol="udp",type="announce",ip_version="4",worker_index="0"} ${200 * k}
tracker_requests_total{protocol="udp",type="scrape",ip_version="4",worker_index="0"} ${20 * k}
tracker_requests_total{protocol="ws",type="announce",ip_version="4",worker_index="0"} ${50 * k}
tracker_requests_total{protocol="ws",type="announce",ip_version="6",worker_index="1"} ${30 * k}
tracker_responses_total{protocol="ws",type="offer",ip_version="4",worker_index="0"} ${40 * k}
tracker_torrents{protocol="udp",worker_index="0"} 11
tracker_torrents{protocol="ws",worker_index="0"} 5
tracker_torrents{protocol="ws",worker_index="1"} 6
tracker_peers{protocol="udp",ip_version="4",worker_index="0"} 100
tracker_peers{protocol="udp",ip_version="6",worker_index="0"} 7
tracker_peers{protocol="ws",ip_version="4",worker_index="0"} 9
tracker_seeders{protocol="udp",worker_index="0"} 60
tracker_leechers{protocol="udp",worker_index="0"} 47
tracker_seeders{protocol="ws",worker_index="1"} 3
tracker_completed_total{protocol="ws",worker_index="0"} 4
tracker_connections{protocol="ws",worker_index="0"} 9
process_resident_memory_bytes 1000000
`
}

test('two protocols: every series goes to its protocol, in udp, http, ws order; totals add them up', () => {
  const s = statsFrom(snapshot(twoProtocols(1), 0), snapshot(twoProtocols(3), 2000))
  assert.equal(s.version, '0.2.0')
  assert.equal(s.uptimeSeconds, 13, 'one uptime, not the sum of the per-protocol ones')
  assert.equal(s.rateWindowSeconds, 2)
  assert.equal(s.time, '1970-01-01T00:00:02.000Z')
  assert.deepEqual(
    s.protocols.map(p => p.protocol),
    ['udp', 'ws'],
  )
  const [udp, ws] = s.protocols
  assert.deepEqual(
    {torrents: udp.torrents, peers: udp.peers, seeders: udp.seeders, leechers: udp.leechers, completed: udp.completed, connections: udp.connections},
    {torrents: 11, peers: {ipv4: 100, ipv6: 7}, seeders: 60, leechers: 47, completed: 0, connections: 0},
  )
  assert.deepEqual(udp.requestsPerSecond, {announce: 200, scrape: 20})
  assert.deepEqual(udp.workers, [{index: 0, requestsPerSecond: 220, responsesPerSecond: 0, torrents: 11}])
  assert.deepEqual(
    {torrents: ws.torrents, peers: ws.peers, seeders: ws.seeders, completed: ws.completed, connections: ws.connections},
    {torrents: 11, peers: {ipv4: 9, ipv6: 0}, seeders: 3, completed: 4, connections: 9},
  )
  assert.deepEqual(ws.requestsPerSecond, {announce: 80})
  assert.deepEqual(ws.workers, [
    {index: 0, requestsPerSecond: 50, responsesPerSecond: 40, torrents: 5},
    {index: 1, requestsPerSecond: 30, responsesPerSecond: 0, torrents: 6},
  ])
  assert.deepEqual(s.totals, {
    torrents: 22,
    peers: {ipv4: 109, ipv6: 7},
    seeders: 63,
    leechers: 47,
    completed: 4,
    connections: 9,
    requestsPerSecond: {announce: 280, scrape: 20},
  })
  // Series without a protocol label (process_*) belong to no protocol.
  assert.equal(
    splitByProtocol(parsePrometheus(twoProtocols(1)))
      .get('udp')!
      .has('process_resident_memory_bytes'),
    false,
  )
})

test('one protocol: series carry no protocol label, and tracker_info names the one entry', () => {
  const s = statsFrom(snapshot(udpOnly(2), 1000), snapshot(udpOnly(6), 5000))
  assert.equal(s.protocols.length, 1)
  const [udp] = s.protocols
  assert.equal(udp.protocol, 'udp')
  assert.deepEqual([udp.torrents, udp.peers, udp.seeders, udp.leechers, udp.completed], [7, {ipv4: 20, ipv6: 5}, 8, 17, 2])
  assert.deepEqual(udp.requestsPerSecond, {announce: 400, connect: 10})
  assert.deepEqual(
    udp.workers.map(w => [w.index, w.requestsPerSecond, w.torrents]),
    [
      [0, 110, 3],
      [1, 300, 4],
    ],
  )
  const {protocol: _p, workers: _w, ...figures} = udp
  assert.deepEqual(s.totals, figures, 'one protocol: the totals are its figures')
  assert.equal(s.uptimeSeconds, 66)
  const first = statsFrom(undefined, snapshot(udpOnly(6), 5000))
  assert.equal(first.rateWindowSeconds, 0)
  assert.deepEqual(first.protocols[0].requestsPerSecond, {announce: 0, connect: 0}, 'no rates from one sample')
  assert.deepEqual(statsFrom(undefined, snapshot('', 0)).protocols[0].protocol, '?', 'an empty text still gives a page')
})

test('the page: figures per protocol and worker, every value escaped, refreshes itself, no script', () => {
  const s = statsFrom(snapshot(twoProtocols(1), 0), snapshot(twoProtocols(3), 2000))
  const html = statsHtml(s)
  assert.match(html, /^<!doctype html>/)
  assert.match(html, /<meta http-equiv="refresh" content="5">/)
  assert.match(html, /<h2>udp<\/h2>/)
  assert.match(html, /<h2>ws<\/h2>/)
  assert.match(html, /<tr><td>udp<\/td><td>11<\/td><td>100<\/td><td>7<\/td><td>60<\/td><td>47<\/td><td>0<\/td><td>0<\/td><td>220\/s<\/td><\/tr>/)
  assert.match(html, /<tr class="total"><td>all<\/td><td>22<\/td>/, 'a totals row with more than one protocol')
  assert.match(html, /<tr><td>1<\/td><td>30\/s<\/td><td>0\/s<\/td><td>6<\/td><\/tr>/, 'ws worker 1')
  assert.match(html, /rates over the last 2 s/)
  assert.doesNotMatch(html, /<script|src=|https?:/i)
  assert.doesNotMatch(statsHtml(statsFrom(undefined, snapshot(udpOnly(1), 0))), /class="total"/, 'one protocol: no totals row')

  const hostile = `tracker_info{protocol="<script>alert(1)</script>",version="1\\"><img src=x onerror=alert(2)>&"} 1
tracker_requests_total{type="<b>announce</b>",ip_version="4",worker_index="0"} 5
`
  const page = statsHtml(statsFrom(undefined, snapshot(hostile, 0)))
  assert.doesNotMatch(page, /<script|<img|<b>/)
  assert.match(page, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/)
  assert.match(page, /1&quot;&gt;&lt;img src=x onerror=alert\(2\)&gt;&amp;/)
  assert.match(page, /&lt;b&gt;announce&lt;\/b&gt;/)
  assert.equal(escapeHtml(`<a href='x'>&"`), '&lt;a href=&#39;x&#39;&gt;&amp;&quot;')
})

/** A render whose counters grow by 100 per call, with a count of calls and a hand-moved clock. */
function fakeTracker() {
  const t = {clock: 0, renders: 0, fail: false}
  const render = async () => {
    t.renders++
    if (t.fail) throw new Error('worker 1 did not answer')
    return udpOnly(t.renders)
  }
  return {t, sampler: new StatsSampler(render, () => t.clock)}
}

test('the sampler: one read per 250 ms whatever the number of requests, concurrent requests share it', async () => {
  const {t, sampler} = fakeTracker()
  await sampler.start()
  assert.equal(t.renders, 1, 'a sample at start')
  t.clock = 100
  const many = await Promise.all(Array.from({length: 50}, () => sampler.stats()))
  assert.equal(t.renders, 2, '50 concurrent requests, one read')
  assert.ok(many.every(s => s === many[0]))
  t.clock = 349
  assert.equal(await sampler.stats(), many[0], 'cached for 250 ms')
  assert.equal(t.renders, 2)
  t.clock = 350
  await sampler.stats()
  assert.equal(t.renders, 3)

  t.fail = true
  t.clock = 1000
  await assert.rejects(sampler.stats(), /worker 1 did not answer/)
  await assert.rejects(sampler.stats(), /worker 1 did not answer/)
  assert.equal(t.renders, 4, 'a failed read is cached too')
  t.fail = false
  t.clock = 1250
  await sampler.stats()
  assert.equal(t.renders, 5)
})

test('the sampler: rates are real on the first view, then against a sample at least 1 s old', async () => {
  const {t, sampler} = fakeTracker()
  await sampler.start() // at 0, render 1
  t.clock = 400
  let s = await sampler.stats() // render 2, against the start sample
  assert.equal(s.rateWindowSeconds, 0.4)
  assert.equal(s.protocols[0].requestsPerSecond.announce, 1000, '400 more requests in 0.4 s')
  t.clock = 1000
  s = await sampler.stats() // render 3: the start sample is 1 s old, and this read is kept
  assert.equal(s.rateWindowSeconds, 1)
  t.clock = 1500
  s = await sampler.stats() // render 4: the newest kept (1000) is too young, so against the start one
  assert.equal(s.rateWindowSeconds, 1.5)
  t.clock = 2000
  s = await sampler.stats() // render 5: against 1000, kept
  assert.equal(s.rateWindowSeconds, 1)
  assert.equal(s.protocols[0].requestsPerSecond.announce, 800, '(5 - 3) * 400 in 1 s')
  t.clock = 9000
  s = await sampler.stats()
  assert.equal(s.rateWindowSeconds, 7, 'after a pause: the time since the last view')

  const late = fakeTracker()
  late.t.fail = true
  await late.sampler.start()
  late.t.fail = false
  late.t.clock = 500
  assert.equal((await late.sampler.stats()).rateWindowSeconds, 0, 'no sample at start: no rates on the first view')
  late.t.clock = 1500
  assert.equal((await late.sampler.stats()).rateWindowSeconds, 1)
})

test('tracker top under serve all: a row per protocol, workers named by protocol, one uptime and one access list', () => {
  const v = computeView(snapshot(twoProtocols(1), 0), snapshot(twoProtocols(3), 2000))
  assert.equal(v.protocol, 'udp+ws', 'every protocol, in the order serve all lists them')
  assert.equal(v.uptimeSeconds, 13)
  assert.deepEqual(v.protocols, [
    {protocol: 'udp', requestsPerSecond: 220, responsesPerSecond: 0, torrents: 11, peers: 107, connections: 0},
    {protocol: 'ws', requestsPerSecond: 80, responsesPerSecond: 40, torrents: 11, peers: 9, connections: 9},
  ])
  assert.deepEqual(
    v.workers.map(w => [w.index, w.requestsPerSecond, w.torrents, Math.round(w.share * 100)]),
    [
      ['udp 0', 220, 11, 73],
      ['ws 0', 50, 5, 17],
      ['ws 1', 30, 6, 10],
    ],
  )
  const text = viewText(v, 'http://x/metrics')
  assert.match(text, /^protocol {2}requests\/s {2}responses\/s {2}torrents {5}peers {2}connections\n {5}udp +220 +0 +11 +107 +0\n {6}ws +80 +40 +11 +9 +9$/m)
  // One protocol: no protocol table, workers by index alone.
  const one = computeView(undefined, snapshot('tracker_info{protocol="udp",version="1"} 1\ntracker_torrents{worker_index="0"} 2\n', 0))
  assert.deepEqual([one.protocol, one.protocols, one.workers.map(w => w.index)], ['udp', [], ['0']])
  assert.doesNotMatch(viewText(one, 'u'), /^protocol /m)
})

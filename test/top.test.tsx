/** `tracker top`: the Prometheus parser, rates from snapshots, and the Ink screen (no network). */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {setTimeout as sleep} from 'node:timers/promises'
import {render} from 'ink-testing-library'
import {parsePrometheus, sum} from '../src/top/prometheus.js'
import {computeView, notTrackerMetrics, snapshot, sparkline, viewText} from '../src/top/view.js'
import {readOnce} from '../src/top/index.js'
import {Dashboard} from '../src/top/Dashboard.js'

/** Metrics text as a 2-worker UDP tracker writes it, with counters scaled by `k`. */
function recorded(k: number): string {
  return `# HELP tracker_info Constant 1
# TYPE tracker_info gauge
tracker_info{protocol="udp",version="0.1.0"} 1
tracker_uptime_seconds ${100 + k}
tracker_requests_total{type="announce",ip_version="4",worker_index="0"} ${1000 * k}
tracker_requests_total{type="announce",ip_version="4",worker_index="1"} ${3000 * k}
tracker_requests_total{type="connect",ip_version="6",worker_index="0"} ${10 * k}
tracker_responses_total{type="announce",ip_version="4",worker_index="0"} ${1000 * k}
tracker_responses_total{type="announce",ip_version="4",worker_index="1"} ${3000 * k}
tracker_responses_total{type="error",ip_version="4",worker_index="1"} ${5 * k}
tracker_rx_bytes_total{ip_version="4",worker_index="0"} ${98_000 * k}
tracker_tx_bytes_total{ip_version="4",worker_index="0"} ${200_000 * k}
tracker_dropped_total{reason="bad_connection_id",worker_index="0"} ${2 * k}
tracker_refusals_total{reason="access_list",worker_index="1"} ${k}
tracker_torrents{worker_index="0"} 1200
tracker_torrents{worker_index="1"} 1300
tracker_peers{ip_version="4",worker_index="0"} 40000
tracker_peers{ip_version="6",worker_index="1"} 2000
tracker_seeders{worker_index="0"} 10000
tracker_leechers{worker_index="0"} 32000
tracker_completed_total{worker_index="0"} 77
tracker_access_list_entries 5
process_resident_memory_bytes 104857600
process_cpu_seconds_total ${0.5 * k}
nodejs_heap_size_used_bytes 52428800
nodejs_eventloop_lag_seconds 0.002
weird_line_without_value
bad{label="unterminated 3
`
}

test('the Prometheus text parser: labels with escapes, special values, odd lines skipped', () => {
  const s = parsePrometheus('# HELP x y\na{b="q\\"uote",c="back\\\\slash",d="new\\nline"} 1.5e3\nb +Inf\nc NaN\nd{} 7 1700000000000\nnope\n  \n')
  assert.deepEqual(s.get('a'), [{labels: {b: 'q"uote', c: 'back\\slash', d: 'new\nline'}, value: 1500}])
  assert.equal(s.get('b')![0].value, Infinity)
  assert.ok(Number.isNaN(s.get('c')![0].value))
  assert.equal(s.get('d')![0].value, 7)
  assert.equal(s.has('nope'), false)
  assert.equal(sum(parsePrometheus(recorded(1)), 'tracker_torrents'), 2500)
})

test('rates come from two snapshots; a restart (counters going down) does not give negative rates', () => {
  const a = snapshot(recorded(10), 0)
  const b = snapshot(recorded(12), 2000)
  const v = computeView(a, b)
  assert.equal(v.protocol, 'udp')
  assert.deepEqual(v.requests, {announce: 4000, connect: 10})
  assert.equal(v.responses.error, 5)
  assert.equal(v.errorsPerSecond, 5)
  assert.equal(v.bytesInPerSecond, 98_000)
  assert.equal(v.drops.bad_connection_id, 2)
  assert.deepEqual(
    v.workers.map(w => [w.index, Math.round(w.share * 100)]),
    [
      ['0', 25],
      ['1', 75],
    ],
  )
  assert.equal(v.swarm.peersIpv6, 2000)
  assert.equal(v.process.cpuPercent, 50)
  const restarted = computeView(b, snapshot(recorded(1), 3000))
  assert.ok(Object.values(restarted.requests).every(x => x >= 0))
  assert.deepEqual(computeView(undefined, a).requests, {announce: 0, connect: 0}, 'no rates from one snapshot')
  const text = viewText(v, 'http://x/metrics')
  assert.match(text, /tracker udp 0\.1\.0/)
  assert.match(text, /announce 4000\/s/)
  assert.match(text, /torrents 2500/)
  assert.match(text, /worker {2}requests\/s/)
  assert.equal(sparkline([0, 1, 2, 4], 3), '▂▄█')
})

test('the screen: numbers from recorded metrics, unreachable then recovered, keys', async () => {
  let k = 1
  let down = false
  const fetchText = async () => {
    if (down) throw new Error('connection refused')
    return recorded(k++)
  }
  const {lastFrame, stdin, unmount} = render(<Dashboard url="http://t/metrics" fetchText={fetchText} intervalMs={30} />)
  try {
    await sleep(150)
    let frame = lastFrame() ?? ''
    assert.match(frame, /tracker udp 0\.1\.0/)
    assert.match(frame, /live/)
    assert.match(frame, /torrents 2500/)
    assert.match(frame, /announce [\d.k]+\/s/)
    assert.match(frame, /worker {2}requests\/s/)
    // Keys: hide the worker table, show help.
    stdin.write('w')
    await sleep(60)
    assert.doesNotMatch(lastFrame() ?? '', /worker {2}requests\/s/)
    stdin.write('?')
    await sleep(60)
    assert.match(lastFrame() ?? '', /show or hide the worker table/)
    // The tracker goes away: reconnecting, then unreachable; the screen stays up.
    down = true
    await sleep(200)
    frame = lastFrame() ?? ''
    assert.match(frame, /unreachable/)
    assert.match(frame, /connection refused/)
    // And comes back.
    down = false
    await sleep(150)
    assert.match(lastFrame() ?? '', /live/)
    // Pause: the numbers stop moving.
    stdin.write('p')
    await sleep(60)
    const paused = lastFrame()
    assert.match(paused ?? '', /paused/)
    await sleep(150)
    assert.equal(lastFrame(), paused)
  } finally {
    unmount()
  }
})

test('q quits the screen', async () => {
  let k = 1
  const app = render(<Dashboard url="http://t/metrics" fetchText={async () => recorded(k++)} intervalMs={20} />)
  await sleep(80)
  // Reads change the screen (uptime grows with k)...
  const before = app.lastFrame()
  await sleep(80)
  assert.notEqual(app.lastFrame(), before)
  app.stdin.write('q')
  await sleep(80)
  // ...and after q, Ink has stopped: the last frame no longer changes.
  const frame = app.lastFrame()
  await sleep(150)
  assert.equal(app.lastFrame(), frame)
  app.unmount()
})

/** What a Prometheus exporter that is not a tracker serves. */
const NODE_EXPORTER = '# HELP node_load1 1m load average.\n# TYPE node_load1 gauge\nnode_load1 0.42\nnode_boot_time_seconds 1.7e9\n'

test('an endpoint without tracker_info is not a tracker: readOnce rejects, saying so', async () => {
  assert.equal(notTrackerMetrics(snapshot(recorded(1), 0), 'http://t/metrics'), undefined)
  assert.equal(
    notTrackerMetrics(snapshot(NODE_EXPORTER, 0), 'http://n/metrics'),
    "http://n/metrics is not a tracker's metrics endpoint (it answered with 2 metrics, none of them tracker_info): check the URL, or the [metrics] prometheus_endpoint_address of the tracker's config",
  )
  assert.match(notTrackerMetrics(snapshot('<html>hello</html>', 0), 'http://w/')!, /it answered with no Prometheus metrics at all/)
  await assert.rejects(
    readOnce('http://n/metrics', async () => NODE_EXPORTER, 0),
    /is not a tracker's metrics endpoint/,
  )
  const view = await readOnce('http://t/metrics', async () => recorded(1), 0)
  assert.equal(view.swarm.torrents, 2500)
})

test('the screen at a URL that is not a tracker: "not a tracker" and why, no numbers; live once it is one', async () => {
  let tracker = false
  let k = 1
  const fetchText = async () => (tracker ? recorded(k++) : NODE_EXPORTER)
  const {lastFrame, unmount} = render(<Dashboard url="http://n/metrics" fetchText={fetchText} intervalMs={30} />)
  try {
    await sleep(120)
    const frame = lastFrame() ?? ''
    assert.match(frame, /not a tracker/)
    assert.match(frame, /none of them\s+tracker_info/)
    assert.doesNotMatch(frame, /torrents|waiting for the first read/)
    tracker = true
    await sleep(120)
    assert.match(lastFrame() ?? '', /live/)
    assert.match(lastFrame() ?? '', /torrents 2500/)
    assert.doesNotMatch(lastFrame() ?? '', /not a tracker/)
  } finally {
    unmount()
  }
})

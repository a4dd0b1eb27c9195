import {test} from 'node:test'
import assert from 'node:assert/strict'
import {defaultsOf, loadtestUdpSchema, type LoadtestUdpConfig} from '../src/config/index.js'
import {runUdpLoadtest} from '../loadtest/udp.js'
import {formatReport} from '../loadtest/report.js'
import {startUdpTracker} from './harness.js'

test('loadtest udp: every request answered, peers returned, summary and progress lines', async () => {
  const t = await startUdpTracker()
  try {
    const config = defaultsOf(loadtestUdpSchema) as LoadtestUdpConfig
    config.server_address = `127.0.0.1:${t.port4}`
    config.duration = 2
    config.network.requests_in_flight_per_socket = 8
    config.requests.number_of_torrents = 50
    config.requests.number_of_peers = 500
    const lines: string[] = []
    const r = await runUdpLoadtest(config, {onProgress: l => lines.push(l)})
    assert.ok(r.responses.connect >= config.network.sockets_per_worker)
    assert.ok(r.responses.announce > 100, JSON.stringify(r))
    assert.ok(r.responses.scrape > 0)
    assert.equal(r.responses.error, 0)
    assert.equal(r.unanswered, 0)
    assert.ok(r.extra['peers per announce'] > 1, 'a populated swarm returns peers')
    assert.ok(r.latencyMs.p99 >= r.latencyMs.p50 && r.latencyMs.p50 > 0)
    assert.ok(lines.length >= 1 && /announce [\d,]+\/s/.test(lines[0]), lines.join('\n'))
    assert.match(formatReport(r), /responses\/s \(total\)/)
  } finally {
    await t.stop()
  }
})

test('loadtest udp: an unreachable tracker shows up as unanswered requests, not a hang', async () => {
  const config = defaultsOf(loadtestUdpSchema) as LoadtestUdpConfig
  config.server_address = '127.0.0.1:9' // discard: nothing answers
  config.duration = 2
  const r = await runUdpLoadtest(config)
  assert.equal(r.responses.announce, 0)
  assert.ok(r.unanswered > 0)
})

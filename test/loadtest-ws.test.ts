import {test} from 'node:test'
import assert from 'node:assert/strict'
import Server from 'bittorrent-tracker/server'
import {defaultsOf, loadtestWsSchema, type LoadtestWsConfig} from '../src/config/index.js'
import {runWsLoadtest} from '../loadtest/ws.js'
import {formatReport} from '../loadtest/report.js'
import {startWsTracker, tempDir} from './harness.js'
import {makeCertificate} from './certs.js'
import {member, numberMember} from '../loadtest/ws-worker.js'

function smallRun(address: string): LoadtestWsConfig {
  const config = defaultsOf(loadtestWsSchema) as LoadtestWsConfig
  config.server_address = address
  config.duration = 2
  config.network.connections = 16
  config.requests.number_of_torrents = 20
  return config
}

test('loadtest ws against ours (IPv4 and IPv6): offers relayed and answered, summary and progress', async () => {
  const t = await startWsTracker()
  try {
    for (const address of [`127.0.0.1:${t.port4}`, `[::1]:${t.port6}`]) {
      const lines: string[] = []
      const r = await runWsLoadtest(smallRun(address), {onProgress: l => lines.push(l)})
      assert.ok(r.responses.announce > 50, JSON.stringify(r))
      assert.ok(r.responses.offer > 10, 'offers were relayed')
      assert.ok(r.responses.answer > 10, 'answers came back')
      assert.ok(r.responses.scrape > 0)
      assert.equal(r.responses.error, 0, JSON.stringify(r.errors))
      assert.equal(r.unanswered, 0)
      assert.ok(lines.length >= 1 && /offer [\d,]+\/s/.test(lines[0]), lines.join('\n'))
      assert.match(formatReport(r), /responses\/s \(total\)/)
    }
  } finally {
    await t.stop()
  }
})

test('loadtest ws over wss:// (certificates not verified), and a refused handshake is a clear error', async () => {
  const {cert, key} = makeCertificate(tempDir(), 'ws')
  const t = await startWsTracker({network: {enable_tls: true, tls_certificate_path: cert, tls_private_key_path: key}})
  try {
    const config = smallRun(`127.0.0.1:${t.port4}`)
    config.network.tls = true
    const r = await runWsLoadtest(config)
    assert.ok(r.responses.announce > 50 && r.responses.answer > 10, JSON.stringify(r.responses))
    assert.equal(r.responses.error, 0, JSON.stringify(r.errors))
    // Plain WebSocket to a TLS port: the handshake fails and says so.
    await assert.rejects(runWsLoadtest(smallRun(`127.0.0.1:${t.port4}`)), /could not connect to ws:\/\/127\.0\.0\.1:\d+: /)
  } finally {
    await t.stop()
  }
})

test('loadtest ws against the bittorrent-tracker npm server', async () => {
  const server = new Server({udp: false, http: false, ws: true, stats: false})
  server.on('warning', () => {})
  server.on('error', () => {})
  const port = 28_000 + (process.pid % 3000)
  await new Promise<void>(resolve => server.listen(port, '127.0.0.1', () => resolve()))
  try {
    const r = await runWsLoadtest(smallRun(`127.0.0.1:${port}`))
    assert.ok(r.responses.announce > 20, JSON.stringify(r))
    assert.ok(r.responses.offer > 0 && r.responses.answer > 0, JSON.stringify(r.responses))
  } finally {
    await new Promise<void>(resolve => server.close(() => resolve()))
  }
})

test('loadtest ws: an unreachable tracker is a clear error, not a hang', async () => {
  await assert.rejects(runWsLoadtest(smallRun('127.0.0.1:9')), /could not connect to ws:\/\/127\.0\.0\.1:9/)
})

test('loadtest ws reads members of relayed messages without parsing them: escapes kept, keys in SDP text ignored', () => {
  const key = (name: string) => Buffer.from(`"${name}":`)
  const ids = ['"\\\u0000\n\u00ff"x"\\', '\\', 'plain-twenty-chars!!', String.fromCharCode(...Array.from({length: 20}, (_, i) => i * 13))]
  for (const id of ids) {
    const text = JSON.stringify({
      action: 'announce',
      offer: {type: 'offer', sdp: 'v=0 "offer_id":"fake" "complete":7 \\"peer_id\\":'},
      offer_id: id,
      peer_id: id.split('').reverse().join(''),
      complete: 12,
      info_hash: id,
    })
    const data = Buffer.from(text)
    assert.equal(JSON.parse(member(data, key('offer_id'))!.toString()), id)
    assert.equal(JSON.parse(member(data, key('peer_id'))!.toString()), id.split('').reverse().join(''))
    assert.equal(JSON.parse(member(data, key('info_hash'))!.toString()), id)
    assert.equal(numberMember(data, key('complete')), 12)
  }
  assert.equal(member(Buffer.from('{"offer_id":12}'), key('offer_id')), null)
  assert.equal(member(Buffer.from('{"offer_id":"unterminated}'), key('offer_id')), null)
  assert.equal(numberMember(Buffer.from('{"a":1}'), key('complete')), 0)
})

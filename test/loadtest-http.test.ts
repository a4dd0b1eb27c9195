import {test} from 'node:test'
import assert from 'node:assert/strict'
import {join} from 'node:path'
import {writeFileSync} from 'node:fs'
import {defaultsOf, loadtestHttpSchema, type LoadtestHttpConfig} from '../src/config/index.js'
import {runHttpLoadtest} from '../loadtest/http.js'
import {formatReport} from '../loadtest/report.js'
import {startHttpTracker, tempDir} from './harness.js'
import {makeCertificate} from './certs.js'

function smallRun(port: number, host = '127.0.0.1'): LoadtestHttpConfig {
  const config = defaultsOf(loadtestHttpSchema) as LoadtestHttpConfig
  config.server_address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
  config.duration = 2
  config.network.connections = 8
  config.requests.number_of_torrents = 50
  config.requests.number_of_peers = 500
  return config
}

test('loadtest http: keep-alive and a connection per request, IPv4 and IPv6; summary and progress', async () => {
  const t = await startHttpTracker()
  try {
    for (const [keepAlive, host, port] of [
      [true, '127.0.0.1', t.port4],
      [false, '::1', t.port6],
    ] as const) {
      const config = smallRun(port, host)
      config.network.keep_alive = keepAlive
      const lines: string[] = []
      const r = await runHttpLoadtest(config, {onProgress: l => lines.push(l)})
      assert.ok(r.responses.announce > 50, JSON.stringify(r))
      assert.ok(r.responses.scrape > 0)
      assert.equal(r.responses.error, 0, JSON.stringify(r.errors))
      assert.equal(r.unanswered, 0)
      assert.ok(r.extra['peers per announce'] > 1, 'a populated swarm returns peers')
      assert.ok(r.latencyMs.p99 >= r.latencyMs.p50 && r.latencyMs.p50 > 0)
      assert.ok(lines.length >= 1 && /announce [\d,]+\/s/.test(lines[0]), lines.join('\n'))
      assert.match(formatReport(r), /responses\/s \(total\)/)
    }
  } finally {
    await t.stop()
  }
})

test('loadtest http: over TLS; failure reasons are counted by text', async () => {
  const dir = tempDir()
  const {cert, key} = makeCertificate(dir, 'load')
  // An access list that allows nothing: every announce gets "Info hash not allowed".
  const list = join(dir, 'empty.txt')
  writeFileSync(list, '')
  const t = await startHttpTracker({
    network: {enable_tls: true, tls_certificate_path: cert, tls_private_key_path: key},
    access_list: {mode: 'allow', path: list},
  })
  try {
    const config = smallRun(t.port4)
    config.network.tls = true
    const r = await runHttpLoadtest(config)
    assert.equal(r.responses.announce, 0)
    assert.ok(r.errors['Info hash not allowed'] > 10, JSON.stringify(r.errors))
    assert.ok(r.responses.scrape > 0, 'scrapes are not filtered')
  } finally {
    await t.stop()
  }
})

test('loadtest http: an unreachable tracker shows up as unanswered requests, not a hang', async () => {
  const config = smallRun(9)
  const r = await runHttpLoadtest(config)
  assert.equal(r.responses.announce, 0)
  assert.ok(r.unanswered > 0)
})

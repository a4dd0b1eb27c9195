/** `tracker serve all`: its config, and UDP, HTTP and WebTorrent served as one tracker. */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {type AllConfig, ConfigError, enabledProtocols, loadAllConfig, printAllConfig, type ServerName} from '../src/config/index.js'
import {version} from '../src/version.js'
import {serverOverrides} from '../src/config/flags.js'
import {readStatus} from '../src/process/status.js'
import {runTrackers} from '../src/server/runtime/supervisor.js'
import type {RunningTracker} from '../src/server/runtime/worker-api.js'
import {fetchMetrics, sample, tempDir, UdpClient} from './harness.js'
import {decode, httpGet, query} from './http-client.js'
import {binaryId, WsTestClient} from './ws-client.js'

const refusal = (f: () => unknown): string => {
  try {
    f()
  } catch (error) {
    if (error instanceof ConfigError) return error.message
    throw error
  }
  assert.fail('expected a ConfigError')
}

const file = (name: string, text: string): string => {
  const path = join(tempDir(), name)
  writeFileSync(path, text)
  return path
}

test('config print all parses back to exactly the defaults; shared keys at the top, each protocol in its table', () => {
  const printed = printAllConfig()
  const path = file('all.toml', printed)
  assert.deepEqual(loadAllConfig({file: path}), loadAllConfig())
  for (const table of ['[metrics]', '[access_list]', '[udp]', '[udp.network]', '[http.connections]', '[ws.network]'])
    assert.ok(printed.includes(`\n${table}\n`), table)
  assert.ok(!printed.includes('[udp.metrics]') && !printed.includes('[http.privileges]'), 'shared sections are printed once, at the top')
  const c = loadAllConfig()
  assert.equal(c.pid_file, './tracker-all.pid')
  assert.equal(c.metrics.prometheus_endpoint_address, '127.0.0.1:9000')
  // Each protocol's config is whole: the shared values are in it, its own defaults too.
  assert.equal(c.udp.network.address_ipv4, '0.0.0.0:6969')
  assert.equal(c.http.network.address_ipv4, '0.0.0.0:6969')
  assert.equal(c.ws.network.address_ipv4, '0.0.0.0:8000')
  for (const p of ['udp', 'http', 'ws'] as const) {
    assert.equal(c[p].pid_file, c.pid_file)
    assert.deepEqual(c[p].metrics, c.metrics)
    assert.deepEqual(c[p].access_list, c.access_list)
  }
  assert.deepEqual(
    enabledProtocols(c).map(e => e.protocol),
    ['udp', 'http', 'ws'],
  )
})

test('an all config: a value in a table reaches only its protocol; refusals name the table', () => {
  const c = loadAllConfig({
    file: file(
      'a.toml',
      'log_level = "warn"\n[access_list]\nmode = "deny"\n[udp]\nsocket_workers = 2\n[udp.network]\naddress_ipv4 = "127.0.0.1:7001"\n[ws]\nenabled = false\n',
    ),
  })
  assert.equal(c.udp.socket_workers, 2)
  assert.equal(c.http.socket_workers, 1)
  assert.equal(c.udp.network.address_ipv4, '127.0.0.1:7001')
  assert.equal(c.http.log_level, 'warn')
  assert.equal(c.ws.access_list.mode, 'deny')
  assert.deepEqual(
    enabledProtocols(c).map(e => e.protocol),
    ['udp', 'http'],
  )

  const shared = file('s.toml', '[udp]\npid_file = "/tmp/x.pid"\n')
  assert.equal(
    refusal(() => loadAllConfig({file: shared})),
    `config file ${shared}: udp.pid_file: pid_file is shared by every protocol of an "all" config (one process tree): set it at the top of the file, not in [udp]`,
  )
  const sharedSection = file('m.toml', '[http.metrics]\nrun_prometheus_endpoint = false\n')
  assert.match(
    refusal(() => loadAllConfig({file: sharedSection})),
    /http\.metrics: \[metrics\] is shared by every protocol .*at the top of the file, not in \[http\]$/,
  )
  const typo = file('t.toml', '[ws.network]\nenable_tsl = true\n')
  assert.match(
    refusal(() => loadAllConfig({file: typo})),
    /: unknown key ws\.network\.enable_tsl: keys in \[ws\.network\] are use_ipv4, /,
  )
  const bad = file('b.toml', '[udp.network]\naddress_ipv4 = "[::]:6969"\n')
  assert.match(
    refusal(() => loadAllConfig({file: bad})),
    /: udp\.network\.address_ipv4 = "\[::\]:6969" is not valid: expected an IPv4/,
  )
  const unknownTop = file('u.toml', '[network]\nuse_ipv6 = false\n')
  assert.match(
    refusal(() => loadAllConfig({file: unknownTop})),
    /unknown section \[network\]: expected one of \[metrics\], \[privileges\], \[access_list\], \[udp\], \[http\], \[ws\]$/,
  )
  const none = file('n.toml', '[udp]\nenabled = false\n[http]\nenabled = false\n[ws]\nenabled = false\n')
  assert.match(
    refusal(() => loadAllConfig({file: none})),
    /udp\.enabled, http\.enabled and ws\.enabled are all false/,
  )
  const noFamily = file('f.toml', '[http.network]\nuse_ipv4 = false\nuse_ipv6 = false\n')
  assert.match(
    refusal(() => loadAllConfig({file: noFamily})),
    /http\.network\.use_ipv4 and http\.network\.use_ipv6 are both false/,
  )
})

test('serve all flags: --ipv4 ADDR serves every protocol there on its own port and turns IPv6 off; a port is refused', () => {
  const c = loadAllConfig({overrides: serverOverrides({ipv4: '127.0.0.1', workers: 2, metrics: '127.0.0.1:9400', 'log-format': 'json'})})
  assert.deepEqual(
    (['udp', 'http', 'ws'] as const).map(p => [c[p].network.address_ipv4, c[p].network.use_ipv4, c[p].network.use_ipv6, c[p].socket_workers]),
    [
      ['127.0.0.1:6969', true, false, 2],
      ['127.0.0.1:6969', true, false, 2],
      ['127.0.0.1:8000', true, false, 2],
    ],
  )
  assert.equal(c.metrics.prometheus_endpoint_address, '127.0.0.1:9400')
  assert.equal(c.ws.log_format, 'json')
  const v6 = loadAllConfig({overrides: serverOverrides({ipv6: '::1'})})
  assert.deepEqual([v6.ws.network.address_ipv6, v6.ws.network.use_ipv4], ['[::1]:8000', false])
  assert.equal(loadAllConfig({overrides: serverOverrides({ipv6: '[::1]'})}).udp.network.address_ipv6, '[::1]:6969')
  assert.equal(loadAllConfig({overrides: serverOverrides({ipv4: 'localhost'})}).http.network.address_ipv4, '127.0.0.1:6969')
  assert.match(
    refusal(() => loadAllConfig({overrides: serverOverrides({ipv4: '127.0.0.1:6969'})})),
    /^flag --ipv4: 127\.0\.0\.1:6969 names a port; in `serve all` --ipv4 takes an address only/,
  )
  assert.match(
    refusal(() => loadAllConfig({overrides: serverOverrides({ipv6: '[::1]:6969'})})),
    /^flag --ipv6: \[::1\]:6969 names a port/,
  )
  assert.match(
    refusal(() => loadAllConfig({overrides: serverOverrides({ipv4: '::1'})})),
    /^flag --ipv4: network\.address_ipv4 = "\[::1\]:6969" is not valid: expected an IPv4/,
  )
  assert.match(
    refusal(() => loadAllConfig({file: file('p.toml', '[ws.network]\naddress_ipv4 = "0.0.0.0:6969"\n')})),
    /: http\.network\.address_ipv4 and ws\.network\.address_ipv4 are both "0\.0\.0\.0:6969": HTTP and WS both listen on TCP/,
  )
  assert.match(
    refusal(() =>
      loadAllConfig({
        file: file('z.toml', '[http.network]\naddress_ipv4 = "127.0.0.1:0"\n[ws]\nsocket_workers = 2\n[ws.network]\naddress_ipv4 = "127.0.0.1:0"\n'),
      }),
    ),
    /port 0 with several workers would give both protocols one socket/,
  )
  const off = loadAllConfig({overrides: serverOverrides({'no-ipv6': true})})
  assert.deepEqual([off.udp.network.use_ipv6, off.http.network.use_ipv6, off.ws.network.use_ipv6, off.ws.network.use_ipv4], [false, false, false, true])
})

/** An `all` tracker in this process on loopback ephemeral ports. */
async function startAll(
  edit: (c: AllConfig) => void = () => {},
): Promise<{tracker: RunningTracker; config: AllConfig; port(service: string): number; metricsUrl: string}> {
  const c = loadAllConfig()
  c.pid_file = join(tempDir(), 'tracker-all.pid')
  c.log_level = 'off'
  c.metrics.prometheus_endpoint_address = '127.0.0.1:0'
  for (const p of ['udp', 'http', 'ws'] as const) {
    c[p].network.address_ipv4 = '127.0.0.1:0'
    c[p].network.use_ipv6 = false
    if (p === 'udp') c.udp.network.socket_recv_buffer_size = 0
  }
  edit(c)
  // The shared keys reach each protocol's config, as loadAllConfig puts them there.
  for (const p of ['udp', 'http', 'ws'] as const)
    Object.assign(c[p], {pid_file: c.pid_file, log_level: c.log_level, metrics: c.metrics, access_list: c.access_list})
  const specs = enabledProtocols(c).map(({protocol, config}) => ({
    protocol,
    config,
    workerModule: new URL(`../src/server/${protocol}/worker.js`, import.meta.url).href,
  }))
  const tracker = await runTrackers(specs)
  const port = (service: string) => tracker.listeners.find(l => l.service === service)!.port
  return {tracker, config: c, port, metricsUrl: `http://127.0.0.1:${port('metrics')}/metrics`}
}

const httpAnnounce = (port: number, infoHash: Uint8Array, peerId: Uint8Array, peerPort: number) =>
  httpGet(port, `/announce?${query({info_hash: infoHash, peer_id: peerId, port: peerPort, uploaded: 0, downloaded: 0, left: 100, compact: 1})}`)

for (const workers of [1, 2]) {
  test(`serve all (${workers} worker${workers > 1 ? 's' : ''} each): UDP, HTTP and WS answer; one status file; metrics labelled by protocol; one reload reaches every protocol; one stop ends all`, async () => {
    const allowed = randomBytes(20)
    const later = randomBytes(20)
    const listPath = join(tempDir(), 'list.txt')
    writeFileSync(listPath, `${allowed.toString('hex')}\n`)
    const t = await startAll(c => {
      c.access_list.mode = 'allow'
      c.access_list.path = listPath
      for (const p of ['udp', 'http', 'ws'] as const) c[p].socket_workers = workers
      // Port 0 on one address would be one socket for HTTP's and WS's worker processes (refused by the config).
      c.ws.network.address_ipv4 = '127.0.0.2:0'
    })
    const udp = await UdpClient.open(4, t.port('udp'))
    let ws: WsTestClient | undefined
    try {
      await udp.connect()
      const u = await udp.announce({infoHash: allowed, peerId: randomBytes(20), port: 1001})
      assert.equal(u.action, 1)
      const h = decode((await httpAnnounce(t.port('http'), allowed, randomBytes(20), 1002)).body)
      // Counts leave out the peer that asks: 0 here says that the UDP peer is not in HTTP's swarm.
      assert.equal(h.incomplete, 0, 'HTTP has its own swarm: the UDP peer is not in it')
      ws = await WsTestClient.open(`ws://127.0.0.2:${t.port('ws')}`)
      const wsInfoHash = allowed.toString('latin1')
      ws.send({action: 'announce', info_hash: wsInfoHash, peer_id: binaryId(), left: 100, numwant: 0, uploaded: 0, downloaded: 0})
      const reply = await ws.next(m => m.action === 'announce')
      assert.equal(reply.incomplete, 0, 'WS has its own swarm too')

      // Refused everywhere until the list names it; one reload puts the new list in force in all three.
      const refusedUdp = await udp.request(udp.announceBytes({infoHash: later, peerId: randomBytes(20), port: 1003}))
      assert.equal(refusedUdp.action, 3)
      assert.ok(decode((await httpAnnounce(t.port('http'), later, randomBytes(20), 1004)).body)['failure reason'])
      writeFileSync(listPath, `${allowed.toString('hex')}\n${later.toString('hex')}\n`)
      const status = await t.tracker.reloadAccessList()
      assert.deepEqual([status.ok, status.entries, status.generation], [true, 2, 2])
      assert.equal((await udp.announce({infoHash: later, peerId: randomBytes(20), port: 1003})).action, 1)
      assert.equal(decode((await httpAnnounce(t.port('http'), later, randomBytes(20), 1004)).body).incomplete, 0)
      ws.send({action: 'announce', info_hash: later.toString('latin1'), peer_id: binaryId(), left: 100, numwant: 0, uploaded: 0, downloaded: 0})
      assert.equal((await ws.next(m => m.action === 'announce' && m.info_hash === later.toString('latin1'))).incomplete, 0)

      const onDisk = readStatus(t.config.pid_file)!
      assert.equal(onDisk.protocol, 'all')
      assert.equal(onDisk.generation, 2)
      assert.deepEqual(
        onDisk.listening.map(l => l.split(/[ :]/)[0]),
        ['udp', 'http', 'ws', 'metrics'],
      )
      assert.equal(readFileSync(t.config.pid_file, 'utf8').trim(), String(process.pid))

      const text = await fetchMetrics(t.metricsUrl)
      for (const p of ['udp', 'http', 'ws']) assert.equal(sample(text, `tracker_info{protocol="${p}",version="${version}"}`), 1, p)
      const torrents = (p: ServerName) =>
        [...Array(workers).keys()].reduce((n, w) => n + (sample(text, `tracker_torrents{worker_index="${w}",protocol="${p}"}`) ?? 0), 0)
      assert.deepEqual([torrents('udp'), torrents('http'), torrents('ws')], [2, 2, 2])
      assert.equal(sample(text, 'tracker_access_list_entries{protocol="udp"}'), 2)
      assert.ok((sample(text, 'process_resident_memory_bytes') ?? 0) > 0, 'one process_* series for the tree, without a protocol label')
      assert.ok(!/^process_resident_memory_bytes\{/m.test(text))
    } finally {
      udp.close()
      ws?.ws.close()
      await t.tracker.stop()
    }
    assert.equal(await t.tracker.done, 0)
    assert.ok(!existsSync(t.config.pid_file), 'the pid file is removed at stop')
  })
}

test('serve all: a protocol that cannot bind stops the start, the others are closed, and the error names its table', async () => {
  const first = await startAll(c => {
    c.ws.enabled = false
    c.http.enabled = false
  })
  try {
    const taken = first.port('udp')
    await assert.rejects(
      startAll(c => {
        c.udp.network.address_ipv4 = '127.0.0.1:0'
        c.http.network.address_ipv4 = '127.0.0.1:0'
        // WS on a port that is taken (the first tracker's metrics endpoint, TCP).
        c.ws.network.address_ipv4 = `127.0.0.1:${first.port('metrics')}`
      }),
      (error: Error) => error.name === 'BindError' && error.message.includes('([ws.network] address_ipv4)'),
    )
    assert.ok(taken > 0)
  } finally {
    await first.tracker.stop()
  }
})

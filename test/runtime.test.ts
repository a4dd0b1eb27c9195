import {test} from 'node:test'
import assert from 'node:assert/strict'
import cluster from 'node:cluster'
import {existsSync} from 'node:fs'
import {createServer, type AddressInfo} from 'node:net'
import {join} from 'node:path'
import {defaultsOf, httpSchema, type HttpConfig} from '../src/config/index.js'
import {BindError} from '../src/server/listen.js'
import {runTracker} from '../src/server/runtime/supervisor.js'
import {tempDir} from './harness.js'
import {formatListener, listenerAt} from '../src/server/runtime/listener.js'
import {OneAtATime} from '../src/server/runtime/one-at-a-time.js'

test('listeners: parsed from the configured address, shown as the lines logs and the status file have always had', () => {
  assert.deepEqual(listenerAt('udp', '127.0.0.1:0', 6969, {io: 'batched I/O'}), {service: 'udp', family: 4, host: '127.0.0.1', port: 6969, io: 'batched I/O'})
  assert.deepEqual(listenerAt('http', '[::1]:0', 80, {path: '/announce'}), {service: 'http', family: 6, host: '::1', port: 80, path: '/announce'})
  const lines = [
    [listenerAt('udp', '127.0.0.1:6969', 6969, {io: 'batched I/O'}), 'udp 127.0.0.1:6969 (batched I/O)'],
    [listenerAt('udp', '[::]:0', 40000, {io: 'node:dgram'}), 'udp [::]:40000 (node:dgram)'],
    [listenerAt('http', '[::1]:6969', 6969, {path: '/announce'}), 'http://[::1]:6969/announce'],
    [listenerAt('https', '0.0.0.0:443', 443, {path: '/announce'}), 'https://0.0.0.0:443/announce'],
    [listenerAt('ws', '127.0.0.1:8000', 8000, {io: 'batched I/O'}), 'ws://127.0.0.1:8000 (batched I/O)'],
    [listenerAt('wss', '[::1]:0', 8443), 'wss://[::1]:8443'],
    [listenerAt('metrics', '127.0.0.1:0', 9000, {path: '/metrics'}), 'metrics http://127.0.0.1:9000/metrics'],
  ] as const
  for (const [listener, line] of lines) assert.equal(formatListener(listener), line)
})

test('OneAtATime: a request during a run makes one more run after it, shared by every request until it starts', async () => {
  let runs = 0
  const gates: Array<() => void> = []
  const serial = new OneAtATime(async () => {
    const n = ++runs
    await new Promise<void>(resolve => gates.push(resolve))
    return n
  })
  const first = serial.request()
  const second = serial.request()
  const third = serial.request()
  assert.equal(second, third, 'requests during a run share the next one')
  assert.equal(runs, 1, 'the next run waits for the one under way')
  gates.shift()!()
  assert.equal(await first, 1)
  await new Promise(resolve => setImmediate(resolve))
  assert.equal(runs, 2)
  const fourth = serial.request()
  assert.notEqual(fourth, second, 'a request once the queued run has started queues another')
  gates.shift()!()
  assert.equal(await second, 2)
  await new Promise(resolve => setImmediate(resolve))
  gates.shift()!()
  assert.equal(await fourth, 3)
})

test('a worker process that cannot bind fails the start with the bind error, and every worker process stops', async () => {
  const held = createServer()
  await new Promise<void>(resolve => held.listen(0, '127.0.0.1', resolve))
  const port = (held.address() as AddressInfo).port
  const config = defaultsOf(httpSchema) as HttpConfig
  config.pid_file = join(tempDir(), 'tracker-http.pid')
  config.log_level = 'off'
  config.socket_workers = 2
  config.network.address_ipv4 = `127.0.0.1:${port}`
  config.network.use_ipv6 = false
  config.metrics.run_prometheus_endpoint = false
  try {
    const started = runTracker({protocol: 'http', config, workerModule: new URL('../src/server/http/worker.js', import.meta.url).href})
    await assert.rejects(started, (error: unknown) => {
      assert.ok(error instanceof BindError, `a BindError, not ${String(error)}`)
      assert.equal(error.code, 'EADDRINUSE')
      assert.equal(error.key, '[network] address_ipv4')
      return true
    })
    assert.deepEqual(
      Object.values(cluster.workers ?? {}).filter(w => w && !w.isDead()),
      [],
      'no worker process is left running',
    )
    assert.ok(!existsSync(config.pid_file), 'the pid file is released')
  } finally {
    held.close()
  }
})
